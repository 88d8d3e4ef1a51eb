/*
 * fs_profile: what the pipeline remembers of one customer, and the behaviour features it
 * gives a new transaction of that customer. Pure functions on a fixed-size record (no I/O,
 * no allocation): the offline tools carry records through a file in file order, the
 * detector through the stream, and both give the same bits for the same per-customer order.
 *
 * The customer is `name_1|name_2|street|post_code` (fs_profile_key), the record key the
 * interface writes to `transactions`.
 *
 * A record holds decayed counters and running moments, never a list of events: 128 bytes
 * per customer whatever the history (FS_PROFILE_BYTES, checked at compile time).
 *
 * Time rule: event time is transaction_time (seconds). An event older than the customer's
 * latest one is taken to happen at that latest time for every age (seconds since the
 * previous transaction is then 0, decays are exp(0) = 1): ages are never negative and the
 * latest time never goes back. Its hour of day is still its own.
 *
 * Every feature includes the current event (a count of 1 for a first transaction), reads
 * only the customer's earlier events and is finite for every input (amounts are finite and
 * clamped at 0 by the caller, see fs_profile_event). For a customer's first transaction the
 * history features have their "no history" values, stated per feature in fs_profile.c.
 */
#ifndef FS_PROFILE_H
#define FS_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "fs_txn.h"

/* Category slots of the per-customer category counts: the training categories in sorted
 * order take slots 0..14, any other (unseen, empty, or the 16th and later) slot 15. */
#define FS_PROFILE_NCAT 16
#define FS_PROFILE_CAT_OTHER (FS_PROFILE_NCAT - 1)

typedef struct fs_profile {
    int64_t last_time;       /* latest event time seen (seconds since the epoch) */
    int32_t first_day;       /* day (floor(time / 86400)) of the first event */
    uint32_t n;              /* events seen (saturates at UINT32_MAX) */
    double cnt_1h, amt_1h;   /* decayed count and amount, tau 1 h, at last_time */
    double cnt_24h, amt_24h; /* the same, tau 24 h */
    double night_24h;        /* decayed count (tau 24 h) of events at 22:00-03:59 */
    double big_24h;          /* decayed count (tau 24 h) of events > 3x the earlier mean */
    double mean_log, m2_log; /* Welford mean and sum of squares of log1p(amount) */
    double sum_amount;       /* total amount */
    double max_amount;       /* largest amount */
    double hour_sin, hour_cos; /* sums of sin/cos of each event's angle of the day */
    uint8_t cat[FS_PROFILE_NCAT]; /* events per category slot, halved together at 255 */
} fs_profile;

#define FS_PROFILE_BYTES 128

/* One event as the profile sees it, prepared by the feature pipeline (fs_features): the
 * amount with a missing value already replaced (finite, >= 0), the category slot. */
typedef struct fs_profile_event {
    int64_t time;
    double amount;
    int cat; /* 0..FS_PROFILE_NCAT-1 */
} fs_profile_event;

/* The behaviour features, in this order (names from fs_profile_feature_name). */
#define FS_PROFILE_NFEATURES 13
const char *fs_profile_feature_name(int i); /* NULL if out of range */

/* An empty record (no events): all zero. */
void fs_profile_init(fs_profile *p);

/* The features of event e for a customer whose record before e is p, into x
 * (FS_PROFILE_NFEATURES finite doubles). p is not changed. */
void fs_profile_features(const fs_profile *p, const fs_profile_event *e, double *x);

/* Adds event e to the record. */
void fs_profile_update(fs_profile *p, const fs_profile_event *e);

/* Expiry: a customer idle for longer than `expiry` seconds of event time starts afresh.
 * 1 if an event at `time` finds p expired (it has events and time - last_time > expiry):
 * the caller then re-initialises the record before the event. The detector also drops
 * records idle that long against its partition's latest event (memory), which by this rule
 * changes no feature unless an event arrives more than a day behind its partition's latest
 * (fs_profile_store_expire's slack, docs/features.md). */
#define FS_PROFILE_EXPIRY_DEFAULT (90LL * 86400)
int fs_profile_expired(const fs_profile *p, int64_t time, int64_t expiry);

/* Features then update: what each transaction does to its customer. */
void fs_profile_step(fs_profile *p, const fs_profile_event *e, double *x);

/* The customer key of a transaction into buf: name_1|name_2|street|post_code, the post code
 * as an integer when it is one ("62701"), else %.17g, "" when missing. Returns the key's
 * length (buf is NUL-terminated), or -1 if it does not fit in cap bytes. */
#define FS_PROFILE_KEY_MAX FS_TXN_TEXT_MAX
int fs_profile_key(const fs_txn *t, char *buf, size_t cap);

/* The record's portable form (the changelog value): FS_PROFILE_WIRE_BYTES bytes, a format
 * byte, then every field little-endian. fs_profile_decode accepts only what encode writes
 * for a reachable record (finite non-negative counters and sums, a category total that
 * fits); -1 with the reason in errstr otherwise. */
#define FS_PROFILE_WIRE_BYTES (1 + FS_PROFILE_BYTES)
void fs_profile_encode(const fs_profile *p, unsigned char out[FS_PROFILE_WIRE_BYTES]);
int fs_profile_decode(fs_profile *p, const void *data, size_t len, char *errstr,
                      size_t errstr_size);

#endif
