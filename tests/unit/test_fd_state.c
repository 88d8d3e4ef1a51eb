/*
 * Unit tests of fraud_detector's state logic (fd_state), without Kafka: what a batch
 * changes is written out once per customer, an aborted batch (or two, the one committing
 * and the one scored after it) leaves every record exactly as committed, expiry drops with
 * tombstones and is undone too, the maximum refuses new customers without evicting any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fd_state.h"

#define NKEYS 300

static char keys[NKEYS][32];

/* One event of customer k at time t through the detector's path (touch, then the step). */
static int event(fd_state *s, int32_t p, int k, int64_t t, double amount)
{
    int full = 0;
    fs_profile *rec = fd_state_touch(s, p, keys[k], strlen(keys[k]), t, 1, &full);
    if (rec == NULL)
        return full ? 1 : -1;
    fs_profile_event e = {.time = t, .amount = amount, .cat = k % FS_PROFILE_NCAT};
    double x[FS_PROFILE_NFEATURES];
    fs_profile_step(rec, &e, x);
    return 0;
}

/* Everything the state holds, encoded, per customer (absent: all zero bytes). */
typedef struct snapshot {
    unsigned char wire[NKEYS][FS_PROFILE_WIRE_BYTES];
    int present[NKEYS];
} snapshot;

static snapshot snap_a, snap_b;

typedef struct change_list {
    int n;
    int tombstones;
    int seen[NKEYS];
    int wrong_value;
} change_list;

static int on_change(int32_t p, const char *key, size_t key_len, const unsigned char *value,
                     size_t value_len, void *opaque)
{
    change_list *c = opaque;
    (void)p;
    c->n++;
    int k = (int)strtol(key + 1, NULL, 10);
    if (k >= 0 && k < NKEYS)
        c->seen[k]++;
    if (value == NULL) {
        c->tombstones++;
        return 0;
    }
    fs_profile rec;
    char why[128];
    (void)key_len;
    if (fs_profile_decode(&rec, value, value_len, why, sizeof why) != 0)
        c->wrong_value++;
    return 0;
}

/* Takes a snapshot by touching nothing: decoding what each_change would say is not
 * possible for untouched customers, so the test keeps its own reference state instead. */
static void snapshot_take(snapshot *sn, fs_profile *ref[NKEYS])
{
    memset(sn, 0, sizeof *sn);
    for (int k = 0; k < NKEYS; k++) {
        if (ref[k] == NULL)
            continue;
        sn->present[k] = 1;
        fs_profile_encode(ref[k], sn->wire[k]);
    }
}

/* The reference: every customer's record computed directly, in event order. */
static fs_profile ref_rec[NKEYS];
static fs_profile *ref_ptr[NKEYS];

static void ref_event(int k, int64_t t, double amount)
{
    if (ref_ptr[k] == NULL) {
        fs_profile_init(&ref_rec[k]);
        ref_ptr[k] = &ref_rec[k];
    }
    if (fs_profile_expired(ref_ptr[k], t, FS_PROFILE_EXPIRY_DEFAULT))
        fs_profile_init(ref_ptr[k]);
    fs_profile_event e = {.time = t, .amount = amount, .cat = k % FS_PROFILE_NCAT};
    double x[FS_PROFILE_NFEATURES];
    fs_profile_step(ref_ptr[k], &e, x);
}

/* Compares the state's records of partition p's customers (k % 3 == p) with a snapshot of
 * the reference, through a batch that touches nothing (each_change lists nothing). */
static int same_as(fd_state *s, const snapshot *sn)
{
    int differ = 0;
    for (int k = 0; k < NKEYS; k++) {
        int32_t p = k % 3;
        /* Touching logs the customer; compare, then roll the touch back. */
        int full = 0;
        fs_profile *rec = fd_state_touch(s, p, keys[k], strlen(keys[k]), 0, 0, &full);
        unsigned char w[FS_PROFILE_WIRE_BYTES];
        int present = rec != NULL && rec->n > 0;
        if (present)
            fs_profile_encode(rec, w);
        if (present != sn->present[k] || (present && memcmp(w, sn->wire[k], sizeof w) != 0))
            differ++;
    }
    fd_state_rollback(s, 0);
    return differ;
}

static void test_commit_and_abort(void)
{
    fd_state *s = fd_state_new(FS_PROFILE_EXPIRY_DEFAULT, 0);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    for (int32_t p = 0; p < 3; p++)
        CHECK_EQ_INT(fd_state_hold(s, p), 0);
    CHECK_EQ_INT(fd_state_hold(s, 7) == 0 && fd_state_has(s, 7), 1);
    CHECK(!fd_state_has(s, 5));

    /* Batch 1: every customer, some twice; committed. */
    int64_t t = 1577836800; /* 2020-01-01 */
    for (int i = 0; i < NKEYS * 2; i++) {
        int k = (i * 7) % NKEYS;
        double amount = 10.0 + (double)(i % 13);
        CHECK_EQ_INT(event(s, k % 3, k, t + i * 60, amount), 0);
        ref_event(k, t + i * 60, amount);
    }
    change_list c = {0};
    CHECK_EQ_INT(fd_state_each_change(s, on_change, &c), 0);
    CHECK_EQ_INT(c.n, NKEYS); /* the last value per customer, not one per event */
    CHECK_EQ_INT(c.tombstones, 0);
    CHECK_EQ_INT(c.wrong_value, 0);
    int once = 1;
    for (int k = 0; k < NKEYS; k++)
        once &= c.seen[k] == 1;
    CHECK(once);
    CHECK_EQ_INT((long long)fd_state_changes(s), NKEYS);
    fd_state_hand_over(s);
    CHECK_EQ_INT((long long)fd_state_changes(s), 0);
    fd_state_commit(s);
    CHECK_EQ_INT((long long)fd_state_customers(s), NKEYS);
    snapshot_take(&snap_a, ref_ptr);
    CHECK_EQ_INT(same_as(s, &snap_a), 0);

    /* Batch 2 (in flight) and batch 3 (in hand), then batch 2 aborts: both are undone,
     * new customers included. */
    for (int i = 0; i < 50; i++)
        CHECK_EQ_INT(event(s, i % 3, i, t + 100000 + i, 999.0), 0);
    fd_state_hand_over(s);
    for (int i = 25; i < 80; i++)
        CHECK_EQ_INT(event(s, i % 3, i, t + 200000 + i, 5.0), 0);
    CHECK(same_as(s, &snap_a) > 0); /* the batches did change something */
    /* same_as rolled back only its own touches (the batch in hand is empty again): redo
     * batch 3 before aborting both. */
    for (int i = 25; i < 80; i++)
        CHECK_EQ_INT(event(s, i % 3, i, t + 200000 + i, 5.0), 0);
    fd_state_rollback(s, 1);
    CHECK_EQ_INT(same_as(s, &snap_a), 0);
    CHECK_EQ_INT((long long)fd_state_customers(s), NKEYS);

    /* Batch 4 in flight commits while batch 5 in hand is aborted alone. */
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(event(s, i % 3, i, t + 300000 + i, 42.0), 0);
        ref_event(i, t + 300000 + i, 42.0);
    }
    fd_state_hand_over(s);
    for (int i = 5; i < 15; i++)
        CHECK_EQ_INT(event(s, i % 3, i, t + 400000 + i, 7.0), 0);
    fd_state_commit(s);
    fd_state_rollback(s, 0);
    snapshot_take(&snap_b, ref_ptr);
    CHECK_EQ_INT(same_as(s, &snap_b), 0);

    /* Expiry: 200 days later, a scan of partition 0 drops its customers (not the one just
     * seen), writes tombstones, and an abort brings them back. */
    int64_t later = t + 200LL * 86400;
    CHECK_EQ_INT(event(s, 0, 0, later, 1.0), 0);
    size_t dropped = fd_state_expire(s, 0);
    CHECK_EQ_INT((long long)dropped, NKEYS / 3 - 1);
    CHECK_EQ_INT((long long)fd_state_expire(s, 0), 0); /* once per new day */
    change_list e = {0};
    CHECK_EQ_INT(fd_state_each_change(s, on_change, &e), 0);
    CHECK_EQ_INT(e.tombstones, NKEYS / 3 - 1);
    CHECK_EQ_INT(e.n, NKEYS / 3);
    fd_state_rollback(s, 0);
    CHECK_EQ_INT(same_as(s, &snap_b), 0);
    CHECK_EQ_INT((long long)fd_state_customers(s), NKEYS);

    /* The expiry rule resets a returning customer exactly as fs_features_customer does. */
    CHECK_EQ_INT(event(s, 1, 1, later, 3.0), 0);
    ref_event(1, later, 3.0);
    fd_state_hand_over(s);
    fd_state_commit(s);
    snapshot_take(&snap_b, ref_ptr);
    CHECK_EQ_INT(same_as(s, &snap_b), 0);
    CHECK_EQ_INT((int)ref_rec[1].n, 1);

    /* A partition not held gives no record. */
    int full = 0;
    CHECK(fd_state_touch(s, 5, "x", 1, t, 1, &full) == NULL && full == 0);
    fd_state_drop_all(s);
    CHECK_EQ_INT((long long)fd_state_customers(s), 0);
    CHECK(!fd_state_has(s, 0));
    fd_state_free(s);
}

static void test_maximum(void)
{
    fd_state *s = fd_state_new(FS_PROFILE_EXPIRY_DEFAULT, 10);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_EQ_INT(fd_state_hold(s, 0), 0);
    for (int k = 0; k < 10; k++)
        CHECK_EQ_INT(event(s, 0, k, 1577836800 + k, 1.0), 0);
    CHECK_EQ_INT(fd_state_full(s), 0);
    CHECK_EQ_INT(event(s, 0, 10, 1577836900, 1.0), 1); /* an 11th customer: refused */
    CHECK_EQ_INT(fd_state_full(s), 1);
    CHECK_EQ_INT(event(s, 0, 3, 1577836900, 1.0), 0); /* a known one still scores */
    CHECK_EQ_INT((long long)fd_state_customers(s), 10); /* nobody was evicted */
    fd_state_rollback(s, 0);
    CHECK_EQ_INT((long long)fd_state_customers(s), 0);
    fd_state_free(s);
}

int main(void)
{
    for (int k = 0; k < NKEYS; k++)
        snprintf(keys[k], sizeof keys[k], "c%d|Doe|%d Main St|%05d", k, k, 10000 + k);
    test_commit_and_abort();
    test_maximum();
    return CHECK_DONE();
}
