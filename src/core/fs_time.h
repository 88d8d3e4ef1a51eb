/*
 * fs_time: calendar arithmetic on event times (seconds since 1970-01-01 00:00 UTC, the
 * data has no zone) shared by the features and the customer profile. Division rounds
 * toward minus infinity, so times before 1970 fall in the right day and hour.
 */
#ifndef FS_TIME_H
#define FS_TIME_H

#include <stdint.h>

#define FS_DAY_SECONDS 86400

static inline int64_t fs_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of time t. */
static inline int64_t fs_day_of(int64_t t)
{
    return fs_floor_div(t, FS_DAY_SECONDS);
}

/* Seconds since midnight of time t, 0..86399. */
static inline int64_t fs_second_of_day(int64_t t)
{
    return t - fs_day_of(t) * FS_DAY_SECONDS;
}

#endif
