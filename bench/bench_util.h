/*
 * bench_util.h: the measuring helpers the benchmark programs share: CPU time of the process,
 * a monotonic wall clock, the epoch clock in microseconds, the resident set (/proc/self/statm) and the CPU's model name with
 * whether it has AVX-512. Header-only (static functions): each benchmark is one executable.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of this process in seconds (the machine is shared: wall time would measure the
 * neighbours). */
static inline double bench_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Monotonic wall-clock time in seconds. */
static inline double bench_wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall-clock time since the epoch in microseconds: the clock two processes can compare
 * (fd_load notes produce times, fd_watch receipt times). */
static inline long long bench_epoch_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Resident set in bytes (second field of /proc/self/statm, in pages), 0 if unreadable. */
static inline size_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    size_t out = 0;
    char line[256];
    if (f == NULL)
        return 0;
    if (fgets(line, sizeof line, f) != NULL) {
        char *end;
        strtoull(line, &end, 10); /* total pages, then resident pages */
        out = (size_t)strtoull(end, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE);
    }
    fclose(f);
    return out;
}

/* The CPU's model name ("unknown" if /proc/cpuinfo says none) into model (cap bytes), and
 * whether its flags list avx512f into *avx512. */
static inline void bench_cpu_info(char *model, size_t cap, int *avx512)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    static char line[16384]; /* the flags line is long */
    snprintf(model, cap, "unknown");
    *avx512 = 0;
    if (f == NULL)
        return;
    int have_model = 0, have_flags = 0;
    while ((!have_model || !have_flags) && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        if (!have_model && strncmp(line, "model name", 10) == 0) {
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            v[strcspn(v, "\n")] = '\0';
            snprintf(model, cap, "%s", v);
            have_model = 1;
        } else if (!have_flags && strncmp(line, "flags", 5) == 0) {
            *avx512 = strstr(colon, " avx512f") != NULL;
            have_flags = 1;
        }
    }
    fclose(f);
}

#endif
