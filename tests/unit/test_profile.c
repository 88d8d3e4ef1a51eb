/*
 * Unit tests of fs_profile and fs_profile_store: every cust_* feature against a reference
 * that keeps the customer's whole history (a list of earlier events, sums and moments
 * computed from the list), over random sequences and hand cases (first transaction, equal
 * times, out-of-order events, long gaps, night, big amounts, categories, the halving of the
 * category counts at 255, expiry, amounts that are huge, NaN or negative); the wire form
 * (round trip, refusals); the customer key; the store (thousands of keys with removals in
 * the middle of probe runs, expiry, the maximum, count and bytes).
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_features.h"
#include "fs_profile.h"
#include "fs_profile_store.h"

/* ---- random numbers (splitmix64: the same sequences on every machine) ---- */

static uint64_t rng_state = 12;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rnd_unit(void) /* [0, 1) */
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static int64_t rnd_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- the reference: the whole history, features from the list ---- */

#define REF_MAX 256

typedef struct ref_event {
    int64_t te;    /* effective time */
    int64_t time;  /* own time */
    double amount; /* as the record sees it */
    int big, night, cat;
} ref_event;

typedef struct ref {
    int n;
    ref_event ev[REF_MAX];
} ref;

static double ref_amount(double a)
{
    if (isnan(a) || a <= 0.0)
        return 0.0;
    return a > 1e12 ? 1e12 : a;
}

static int64_t ref_second_of_day(int64_t t)
{
    int64_t r = t % 86400;
    return r < 0 ? r + 86400 : r;
}

/* The event as the reference records it. */
static ref_event ref_event_of(const ref *r, const fs_profile_event *e)
{
    ref_event v;
    v.time = e->time;
    v.te = e->time;
    if (r->n > 0 && v.te < r->ev[r->n - 1].te)
        v.te = r->ev[r->n - 1].te;
    v.amount = ref_amount(e->amount);
    int64_t hour = ref_second_of_day(e->time) / 3600;
    v.night = hour >= 22 || hour <= 3;
    double sum = 0.0;
    for (int i = 0; i < r->n; i++)
        sum += r->ev[i].amount;
    v.big = r->n > 0 && v.amount > 3.0 * sum / r->n;
    v.cat = e->cat >= 0 && e->cat < FS_PROFILE_NCAT ? e->cat : FS_PROFILE_NCAT - 1;
    return v;
}

/* The resultant length of the earlier times of day (for skipping hour_dist when the mean
 * direction is undefined up to rounding). */
static double ref_resultant(const ref *r)
{
    double s = 0.0, c = 0.0;
    for (int i = 0; i < r->n; i++) {
        double a = 2.0 * M_PI * (double)ref_second_of_day(r->ev[i].time) / 86400.0;
        s += sin(a);
        c += cos(a);
    }
    return hypot(s, c);
}

static void ref_features(const ref *r, const fs_profile_event *e, double *x)
{
    ref_event v = ref_event_of(r, e);
    int n = r->n;
    double c1 = 1.0, a1 = v.amount, c24 = 1.0, a24 = v.amount, night = v.night, big = v.big;
    double sum = 0.0, max = 0.0, lsum = 0.0, s = 0.0, c = 0.0;
    int same_cat = 0;
    for (int i = 0; i < n; i++) {
        const ref_event *p = &r->ev[i];
        double age = (double)(v.te - p->te);
        double w1 = exp(-age / 3600.0), w24 = exp(-age / 86400.0);
        c1 += w1;
        a1 += w1 * p->amount;
        c24 += w24;
        a24 += w24 * p->amount;
        night += w24 * p->night;
        big += w24 * p->big;
        sum += p->amount;
        max = p->amount > max ? p->amount : max;
        lsum += log1p(p->amount);
        double ang = 2.0 * M_PI * (double)ref_second_of_day(p->time) / 86400.0;
        s += sin(ang);
        c += cos(ang);
        same_cat += p->cat == v.cat;
    }
    x[0] = n ? (double)(v.te - r->ev[n - 1].te) : -1.0;
    x[1] = c1;
    x[2] = a1;
    x[3] = c24;
    x[4] = a24;
    x[5] = night;
    x[6] = big;
    if (n >= 2) {
        double mean = lsum / n, ss = 0.0;
        for (int i = 0; i < n; i++) {
            double d = log1p(r->ev[i].amount) - mean;
            ss += d * d;
        }
        x[7] = (log1p(v.amount) - mean) / sqrt(ss / (n - 1) + 0.01);
    } else {
        x[7] = 0.0;
    }
    if (n) {
        double mean_h = atan2(s, c) * 24.0 / (2.0 * M_PI); /* (-12, 12] */
        double h = (double)ref_second_of_day(v.time) / 3600.0;
        double d = fmod(fabs(h - mean_h), 24.0);
        x[8] = d > 12.0 ? 24.0 - d : d;
    } else {
        x[8] = -1.0;
    }
    x[9] = n ? (double)same_cat / n : 0.0;
    x[10] = n ? v.amount / (max > 0.01 ? max : 0.01) : -1.0;
    if (n) {
        int64_t t0 = r->ev[0].time;
        int64_t day0 = t0 >= 0 ? t0 / 86400 : -((-t0 + 86399) / 86400);
        double days = (double)(v.te - day0 * 86400) / 86400.0;
        double daily = sum / (days > 1.0 ? days : 1.0);
        x[11] = a24 / (daily > 0.01 ? daily : 0.01);
    } else {
        x[11] = -1.0;
    }
    x[12] = n < 1000 ? n : 1000;
}

static void ref_add(ref *r, const fs_profile_event *e)
{
    ref_event v = ref_event_of(r, e);
    if (r->n < REF_MAX)
        r->ev[r->n++] = v;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b));
}

/* One step of both: features equal within the tolerance, finite, and the record's own
 * fs_profile_features equal to fs_profile_step's bit for bit. Returns failures. */
static int step_both(fs_profile *p, ref *r, const fs_profile_event *e, const char *what)
{
    double x[FS_PROFILE_NFEATURES], y[FS_PROFILE_NFEATURES], z[FS_PROFILE_NFEATURES];
    fs_profile before = *p;
    fs_profile_features(p, e, z);
    CHECK(memcmp(&before, p, sizeof before) == 0); /* features do not change the record */
    fs_profile_step(p, e, x);
    ref_features(r, e, y);
    int skip_hour = r->n > 0 && ref_resultant(r) < 1e-4 * r->n;
    ref_add(r, e);
    int bad = 0;
    for (int i = 0; i < FS_PROFILE_NFEATURES; i++) {
        if (!isfinite(x[i]) || memcmp(&x[i], &z[i], sizeof x[i]) != 0 ||
            (!(i == 8 && skip_hour) && !near(x[i], y[i]))) {
            fprintf(stderr, "%s: event %d (t=%lld a=%.17g cat=%d): %s = %.17g, reference %.17g\n",
                    what, r->n, (long long)e->time, e->amount, e->cat,
                    fs_profile_feature_name(i), x[i], y[i]);
            bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    return bad;
}

static const int64_t T0 = 1546300800; /* 2019-01-01 00:00 */

static void test_random_sequences(void)
{
    int failures = 0;
    for (int seq = 0; seq < 400 && failures == 0; seq++) {
        fs_profile p;
        static ref r;
        fs_profile_init(&p);
        r.n = 0;
        int len = (int)rnd_range(1, 200);
        int64_t t = T0 + rnd_range(-86400LL * 365 * 60, 86400LL * 365 * 5);
        int ncat = (int)rnd_range(1, 18);
        double scale = exp(rnd_unit() * 8.0);
        for (int k = 0; k < len && failures == 0; k++) {
            int kind = (int)rnd_range(0, 19);
            int64_t dt;
            if (kind == 0)
                dt = 0;
            else if (kind <= 2)
                dt = -rnd_range(1, 86400 * 2); /* out of order */
            else if (kind <= 8)
                dt = rnd_range(1, 3600);
            else if (kind <= 16)
                dt = rnd_range(1, 86400 * 3);
            else if (kind <= 18)
                dt = rnd_range(86400, 86400 * 60);
            else
                dt = rnd_range(86400LL * 365, 86400LL * 365 * 3);
            t += dt;
            double a = scale * exp(3.0 * (rnd_unit() - 0.5));
            int ak = (int)rnd_range(0, 49);
            if (ak == 0)
                a = 0.0;
            else if (ak == 1)
                a = NAN;
            else if (ak == 2)
                a = -a;
            else if (ak == 3)
                a *= 20.0;
            fs_profile_event e = {t, a, (int)rnd_range(0, ncat - 1)};
            failures += step_both(&p, &r, &e, "random");
        }
        if (failures)
            fprintf(stderr, "random sequence %d failed\n", seq);
    }
}

/* ---- hand cases ---- */

static void hand_step(fs_profile *p, ref *r, int64_t t, double a, int cat, double *x)
{
    fs_profile_event e = {t, a, cat};
    fs_profile before = *p;
    step_both(&before, r, &e, "hand");
    fs_profile_step(p, &e, x);
}

static void test_first_transaction(void)
{
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    hand_step(&p, &r, T0 + 23 * 3600, 42.5, 3, x); /* 23:00: night */
    double want[FS_PROFILE_NFEATURES] = {-1, 1, 42.5, 1, 42.5, 1, 0, 0, -1, 0, -1, -1, 0};
    for (int i = 0; i < FS_PROFILE_NFEATURES; i++)
        CHECK_EQ_BITS(x[i], want[i]);
    CHECK_EQ_INT(p.n, 1);
    CHECK_EQ_INT(p.last_time, T0 + 23 * 3600);
    CHECK_EQ_INT(p.first_day, T0 / 86400);
    CHECK_EQ_INT(p.cat[3], 1);
    /* A first transaction before 1970: the day and the hour are floored (23:59:59). */
    fs_profile_init(&p);
    r.n = 0;
    hand_step(&p, &r, -1, 1.0, 0, x);
    CHECK_EQ_INT(p.first_day, -1);
    CHECK_EQ_BITS(x[5], 1.0);
}

static void test_equal_and_out_of_order(void)
{
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    hand_step(&p, &r, T0 + 12 * 3600, 10.0, 0, x);
    /* The same second: age 0, nothing decays. */
    hand_step(&p, &r, T0 + 12 * 3600, 20.0, 0, x);
    CHECK_EQ_BITS(x[0], 0.0);
    CHECK_EQ_BITS(x[1], 2.0);
    CHECK_EQ_BITS(x[2], 30.0);
    CHECK_EQ_BITS(x[3], 2.0);
    CHECK_EQ_BITS(x[12], 1.0);
    /* Older than the latest (by 11 h, at 01:00: night by its own hour): taken at the
     * latest time, ages 0, never negative; the latest time stays. */
    hand_step(&p, &r, T0 + 1 * 3600, 5.0, 0, x);
    CHECK_EQ_BITS(x[0], 0.0);
    CHECK_EQ_BITS(x[1], 3.0);
    CHECK_EQ_BITS(x[2], 35.0);
    CHECK_EQ_BITS(x[3], 3.0);
    CHECK_EQ_BITS(x[5], 1.0);
    CHECK_EQ_INT(p.last_time, T0 + 12 * 3600);
    /* An hour after the latest: one hour of decay, counted from the latest, not from the
     * older event. */
    hand_step(&p, &r, T0 + 13 * 3600, 0.0, 0, x);
    CHECK_EQ_BITS(x[0], 3600.0);
    CHECK_NEAR(x[1], 3.0 * exp(-1.0) + 1.0, 1e-12);
    CHECK_NEAR(x[3], 3.0 * exp(-1.0 / 24.0) + 1.0, 1e-12);
    /* Far in the past (a year back): still age 0. */
    double cnt = p.cnt_1h;
    hand_step(&p, &r, T0 - 365 * 86400, 1.0, 0, x);
    CHECK_EQ_BITS(x[0], 0.0);
    CHECK_EQ_BITS(x[1], cnt + 1.0);
    CHECK_EQ_INT(p.last_time, T0 + 13 * 3600);
}

static void test_long_gap(void)
{
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    for (int i = 0; i < 5; i++)
        hand_step(&p, &r, T0 + i * 60, 100.0, 1, x);
    /* Ten years later: every decayed sum is back to the event alone. */
    hand_step(&p, &r, T0 + 3650LL * 86400, 7.0, 1, x);
    CHECK_EQ_BITS(x[0], 3650.0 * 86400 - 240);
    CHECK_EQ_BITS(x[1], 1.0);
    CHECK_EQ_BITS(x[2], 7.0);
    CHECK_NEAR(x[3], 1.0, 1e-12);
    CHECK_NEAR(x[4], 7.0, 1e-12);
    CHECK_NEAR(x[6], 0.0, 1e-12);
    CHECK_EQ_BITS(x[12], 5.0);
    /* Spend in 24 h over the average per day since the first day (3650 days, 500). */
    CHECK_NEAR(x[11], x[4] / (500.0 / 3650.0), 1e-9);
}

static void test_night_hours(void)
{
    static const struct {
        int64_t sod;
        int night;
    } cases[] = {{22 * 3600, 1},     {22 * 3600 - 1, 0}, {0, 1},
                 {4 * 3600 - 1, 1},  {4 * 3600, 0},      {12 * 3600, 0},
                 {23 * 3600 + 59, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fs_profile p;
        double x[FS_PROFILE_NFEATURES];
        fs_profile_init(&p);
        fs_profile_event e = {T0 + 5 * 86400 + cases[i].sod, 1.0, 0};
        fs_profile_step(&p, &e, x);
        CHECK_EQ_BITS(x[5], (double)cases[i].night);
        /* The next event 12 hours away on the clock: hour_dist 12 from a single earlier one;
         * 1 hour away: 1. */
        fs_profile q = p;
        fs_profile_event f = {e.time + 12 * 3600, 1.0, 0};
        fs_profile_features(&q, &f, x);
        CHECK_NEAR(x[8], 12.0, 1e-9);
        f.time = e.time + 25 * 3600;
        fs_profile_features(&q, &f, x);
        CHECK_NEAR(x[8], 1.0, 1e-9);
        f.time = e.time - 3600; /* out of order: its own hour still counts */
        fs_profile_features(&q, &f, x);
        CHECK_NEAR(x[8], 1.0, 1e-9);
    }
}

static void test_big_amount(void)
{
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    hand_step(&p, &r, T0, 10.0, 0, x);
    CHECK_EQ_BITS(x[6], 0.0); /* the first is never big */
    hand_step(&p, &r, T0 + 60, 10.0, 0, x);
    fs_profile_event e = {T0 + 120, 30.0, 0}; /* exactly 3x the mean: not big */
    fs_profile_features(&p, &e, x);
    CHECK_EQ_BITS(x[6], 0.0);
    CHECK_EQ_BITS(x[10], 3.0);
    hand_step(&p, &r, T0 + 120, 30.5, 0, x); /* above: big */
    CHECK_NEAR(x[6], 1.0, 1e-15);
    CHECK_EQ_BITS(x[10], 3.05);
    CHECK(x[7] > 2.0); /* the z-score of log1p(30.5) against two log1p(10) */
    CHECK_NEAR(x[7], (log1p(30.5) - log1p(10.0)) / sqrt(0.01), 1e-9);
    /* The next big one a day later: the first decays by e^-1. */
    hand_step(&p, &r, T0 + 120 + 86400, 1000.0, 0, x);
    CHECK_NEAR(x[6], exp(-1.0) + 1.0, 1e-12);
    CHECK_EQ_INT(p.n, 4);
}

static void test_categories(void)
{
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    hand_step(&p, &r, T0, 1.0, 2, x);
    CHECK_EQ_BITS(x[9], 0.0); /* no history */
    hand_step(&p, &r, T0 + 1, 1.0, 2, x);
    CHECK_EQ_BITS(x[9], 1.0); /* seen */
    hand_step(&p, &r, T0 + 2, 1.0, 5, x);
    CHECK_EQ_BITS(x[9], 0.0); /* new */
    hand_step(&p, &r, T0 + 3, 1.0, 2, x);
    CHECK_EQ_BITS(x[9], 2.0 / 3.0);
    /* Out-of-range slots are the shared last slot. */
    hand_step(&p, &r, T0 + 4, 1.0, 99, x);
    CHECK_EQ_BITS(x[9], 0.0);
    hand_step(&p, &r, T0 + 5, 1.0, -1, x);
    CHECK_EQ_BITS(x[9], 0.2);
    hand_step(&p, &r, T0 + 6, 1.0, FS_PROFILE_CAT_OTHER, x);
    CHECK_EQ_BITS(x[9], 2.0 / 6.0);
    CHECK_EQ_INT(p.cat[FS_PROFILE_CAT_OTHER], 3);
}

/* 255 events in slot 0 and 3 in slot 1: the next slot-0 event reads 255/258, then halves
 * every count (127, 1) before counting itself (128). */
static void test_category_halving(void)
{
    fs_profile p;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    int64_t t = T0;
    for (int i = 0; i < 255; i++) {
        fs_profile_event e = {t++, 5.0, 0};
        fs_profile_step(&p, &e, x);
    }
    for (int i = 0; i < 3; i++) {
        fs_profile_event e = {t++, 5.0, 1};
        fs_profile_step(&p, &e, x);
    }
    CHECK_EQ_INT(p.cat[0], 255);
    CHECK_EQ_INT(p.cat[1], 3);
    fs_profile_event e = {t++, 5.0, 0};
    fs_profile_step(&p, &e, x);
    CHECK_EQ_BITS(x[9], 255.0 / 258.0);
    CHECK_EQ_INT(p.cat[0], 128);
    CHECK_EQ_INT(p.cat[1], 1);
    CHECK_EQ_INT(p.n, 259);
    e.cat = 1;
    e.time = t++;
    fs_profile_step(&p, &e, x);
    CHECK_EQ_BITS(x[9], 1.0 / 129.0);
    CHECK_EQ_INT(p.cat[1], 2);
    /* A slot filling up while others are empty: halves to 127, then 128. */
    fs_profile_init(&p);
    for (int i = 0; i < 256; i++) {
        e.time = t++;
        e.cat = 7;
        fs_profile_step(&p, &e, x);
    }
    CHECK_EQ_INT(p.cat[7], 128);
    CHECK_EQ_BITS(x[9], 1.0);
    /* n_prev is capped at 1000. */
    for (int i = 0; i < 800; i++) {
        e.time = t++;
        fs_profile_step(&p, &e, x);
    }
    CHECK_EQ_BITS(x[12], 1000.0);
    CHECK_EQ_INT(p.n, 1056);
}

static void test_expiry(void)
{
    fs_profile p;
    double x[FS_PROFILE_NFEATURES];
    const int64_t E = FS_PROFILE_EXPIRY_DEFAULT;
    fs_profile_init(&p);
    CHECK_EQ_INT(fs_profile_expired(&p, T0 + 10 * E, E), 0); /* no events: nothing expires */
    fs_profile_event e = {T0, 10.0, 0};
    fs_profile_step(&p, &e, x);
    CHECK_EQ_INT(fs_profile_expired(&p, T0 + E, E), 0);
    CHECK_EQ_INT(fs_profile_expired(&p, T0 + E + 1, E), 1);
    CHECK_EQ_INT(fs_profile_expired(&p, T0 - 10 * E, E), 0); /* older: never */
    CHECK_EQ_INT(fs_profile_expired(&p, T0 + 61, 60), 1);

    /* Through fs_features_customer: the record of a customer idle too long starts afresh
     * (first-transaction values), one just inside the limit keeps its history. */
    fs_profile_store *s = fs_profile_store_new(0);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    fs_txn t;
    memset(&t, 0, sizeof t);
    t.name_1 = "Ann";
    t.name_2 = "Lee";
    t.street = "2 High St";
    t.post_code = 10001;
    t.transaction_time = "x"; /* only its emptiness is read */
    char err[256];
    t.time = T0;
    fs_profile *r = fs_features_customer(s, &t, 100, err, sizeof err);
    CHECK(r != NULL);
    if (r == NULL) {
        fs_profile_store_free(s);
        return;
    }
    fs_profile_step(r, &e, x);
    t.time = T0 + 100;
    CHECK(fs_features_customer(s, &t, 100, err, sizeof err) == r);
    CHECK_EQ_INT(r->n, 1);
    t.time = T0 + 101;
    CHECK(fs_features_customer(s, &t, 100, err, sizeof err) == r);
    CHECK_EQ_INT(r->n, 0);
    fs_profile empty;
    fs_profile_init(&empty);
    CHECK(memcmp(r, &empty, sizeof empty) == 0);
    /* An empty time never expires a record. */
    fs_profile_step(r, &e, x);
    t.transaction_time = "";
    t.time = T0 + 1000000;
    CHECK(fs_features_customer(s, &t, 100, err, sizeof err) == r);
    CHECK_EQ_INT(r->n, 1);
    CHECK_EQ_INT(fs_profile_store_count(s), 1);
    fs_profile_store_free(s);
}

static void test_bad_amounts(void)
{
    static const double amounts[] = {NAN,     -5.0,    1e300, INFINITY, -INFINITY,
                                     DBL_MIN, DBL_MAX, 0.0,   -0.0,     1e12,
                                     2e12,    1e-300,  5.0,   NAN,      1e300};
    fs_profile p;
    static ref r;
    double x[FS_PROFILE_NFEATURES];
    fs_profile_init(&p);
    r.n = 0;
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        hand_step(&p, &r, T0 + (int64_t)i * 1000, amounts[i], (int)i, x);
        for (int k = 0; k < FS_PROFILE_NFEATURES; k++)
            CHECK(isfinite(x[k]));
    }
    /* NaN and negatives count as 0; huge amounts as 1e12. */
    CHECK_EQ_BITS(p.max_amount, 1e12);
    CHECK(p.sum_amount <= 6e12 + 5.0 && p.sum_amount >= 6e12);
    fs_profile_init(&p);
    fs_profile_event e = {T0, NAN, 0};
    fs_profile_step(&p, &e, x);
    CHECK_EQ_BITS(x[2], 0.0);
    e.amount = -3.0;
    fs_profile_step(&p, &e, x);
    CHECK_EQ_BITS(x[2], 0.0);
    CHECK_EQ_BITS(x[10], 0.0);
    unsigned char w[FS_PROFILE_WIRE_BYTES];
    fs_profile_encode(&p, w);
    CHECK_EQ_INT(fs_profile_decode(&p, w, sizeof w, NULL, 0), 0);
}

/* ---- the wire form ---- */

static void random_record(fs_profile *p, int events)
{
    fs_profile_init(p);
    int64_t t = T0 + rnd_range(0, 86400LL * 365);
    for (int i = 0; i < events; i++) {
        t += rnd_range(-3600, 86400);
        fs_profile_event e = {t, exp(rnd_unit() * 10.0) - 1.0, (int)rnd_range(0, 20)};
        fs_profile_update(p, &e);
    }
}

static void put_double_at(unsigned char *w, size_t off, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    for (int i = 0; i < 8; i++)
        w[off + (size_t)i] = (unsigned char)(v >> (8 * i));
}

static void expect_refused(const unsigned char *w, size_t len, const char *needle)
{
    fs_profile p;
    char err[256] = "";
    fs_profile_init(&p);
    p.n = 77;
    fs_profile before = p;
    CHECK_EQ_INT(fs_profile_decode(&p, w, len, err, sizeof err), -1);
    CHECK(memcmp(&p, &before, sizeof p) == 0); /* untouched */
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, err);
        CHECK(0);
    }
}

enum { OFF_TIME = 1, OFF_DAY = 9, OFF_N = 13, OFF_D = 17, OFF_CAT = 113 };

static void test_wire(void)
{
    CHECK_EQ_INT(FS_PROFILE_WIRE_BYTES, 129);
    for (int k = 0; k < 300; k++) {
        fs_profile p, q;
        unsigned char w[FS_PROFILE_WIRE_BYTES], w2[FS_PROFILE_WIRE_BYTES];
        random_record(&p, (int)rnd_range(0, 600));
        fs_profile_encode(&p, w);
        memset(&q, 0xAB, sizeof q);
        CHECK_EQ_INT(fs_profile_decode(&q, w, sizeof w, NULL, 0), 0);
        CHECK(memcmp(&p, &q, sizeof p) == 0);
        fs_profile_encode(&q, w2);
        CHECK(memcmp(w, w2, sizeof w) == 0);
    }
    /* The layout: format byte, then little-endian fields. */
    fs_profile p;
    unsigned char w[FS_PROFILE_WIRE_BYTES], bad[FS_PROFILE_WIRE_BYTES + 1];
    fs_profile_init(&p);
    fs_profile_event e = {T0 + 3600, 2.5, 4};
    fs_profile_update(&p, &e);
    fs_profile_encode(&p, w);
    static const unsigned char head[] = {1,    0x90, 0xBB, 0x2A, 0x5C, 0,    0, 0, 0,
                                         0xE9, 0x45, 0,    0,    1,    0,    0, 0};
    CHECK(memcmp(w, head, sizeof head) == 0); /* 1546304400, day 17897, n 1 */
    CHECK_EQ_INT(w[OFF_CAT + 4], 1);
    double d;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)w[OFF_D + 8 + i] << (8 * i); /* amt_1h */
    memcpy(&d, &bits, sizeof d);
    CHECK_EQ_BITS(d, 2.5);

    /* Refusals: length, format, non-finite and negative fields, sin/cos sums above n,
     * amounts above the clamp. */
    expect_refused(w, sizeof w - 1, "128 bytes, expected 129");
    memcpy(bad, w, sizeof w);
    bad[sizeof w] = 0;
    expect_refused(bad, sizeof bad, "130 bytes");
    expect_refused(w, 0, "0 bytes");
    memcpy(bad, w, sizeof w);
    bad[0] = 2;
    expect_refused(bad, sizeof w, "format 2");
    static const char *const dnames[12] = {
        "cnt_1h",   "amt_1h", "cnt_24h",    "amt_24h",    "night_24h", "big_24h",
        "mean_log", "m2_log", "sum_amount", "max_amount", "hour_sin",  "hour_cos"};
    for (int i = 0; i < 12; i++) {
        const double vals[] = {NAN, INFINITY, -INFINITY, -1.0};
        for (int k = 0; k < 4; k++) {
            if (k == 3 && i >= 10)
                continue; /* sin/cos sums may be negative */
            memcpy(bad, w, sizeof w);
            put_double_at(bad, OFF_D + 8 * (size_t)i, vals[k]);
            expect_refused(bad, sizeof w, dnames[i]);
        }
    }
    memcpy(bad, w, sizeof w);
    put_double_at(bad, OFF_D + 8 * 10, -1.0); /* |hour_sin| <= n = 1: fine */
    CHECK_EQ_INT(fs_profile_decode(&p, bad, sizeof w, NULL, 0), 0);
    put_double_at(bad, OFF_D + 8 * 10, -1.5);
    expect_refused(bad, sizeof w, "hour_sin");
    memcpy(bad, w, sizeof w);
    put_double_at(bad, OFF_D + 8 * 9, 2e12);
    expect_refused(bad, sizeof w, "amounts above");
    memcpy(bad, w, sizeof w);
    put_double_at(bad, OFF_D + 8 * 6, 40.0);
    expect_refused(bad, sizeof w, "amounts above");
    /* Amount sums no record reaches (at most 2^32 events of at most 1e12 each): refused,
     * else cust_spend24_to_daily (the 24 h amount / at least 0.01) is infinite. */
    for (int i = 0; i < 3; i++) {
        const size_t at[3] = {OFF_D + 8 * 1, OFF_D + 8 * 3, OFF_D + 8 * 8}; /* amt_1h ... */
        memcpy(bad, w, sizeof w);
        put_double_at(bad, at[i], 2.5e307);
        expect_refused(bad, sizeof w, "amounts above");
        /* The limit itself is fine, and stays finite and decodable over more events. */
        put_double_at(bad, at[i], 1e30);
        CHECK_EQ_INT(fs_profile_decode(&p, bad, sizeof w, NULL, 0), 0);
        for (int k = 0; k < 50; k++) {
            double x[FS_PROFILE_NFEATURES];
            fs_profile_event ev = {T0 + 7200 + k, 1e12, 0};
            fs_profile_step(&p, &ev, x);
            for (int j = 0; j < FS_PROFILE_NFEATURES; j++)
                CHECK(isfinite(x[j]));
        }
        unsigned char w2[FS_PROFILE_WIRE_BYTES];
        fs_profile_encode(&p, w2);
        CHECK_EQ_INT(fs_profile_decode(&p, w2, sizeof w2, NULL, 0), 0);
    }
    /* A latest time no transaction can have (fs_txn's years are 1..9999): refused, else the
     * next event's age overflows int64 (seconds since INT64_MIN). */
    static const int64_t times[] = {INT64_MIN, INT64_MIN + 1, -(INT64_C(1) << 41),
                                    INT64_C(1) << 41, INT64_MAX};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        memcpy(bad, w, sizeof w);
        for (int k = 0; k < 8; k++)
            bad[OFF_TIME + k] = (unsigned char)((uint64_t)times[i] >> (8 * k));
        expect_refused(bad, sizeof w, "last_time");
    }
    /* The first and last second of those years are fine. */
    static const int64_t ok[] = {-62135596800, 253402300799};
    for (size_t i = 0; i < 2; i++) {
        memcpy(bad, w, sizeof w);
        for (int k = 0; k < 8; k++)
            bad[OFF_TIME + k] = (unsigned char)((uint64_t)ok[i] >> (8 * k));
        CHECK_EQ_INT(fs_profile_decode(&p, bad, sizeof w, NULL, 0), 0);
        double x[FS_PROFILE_NFEATURES];
        fs_profile_event ev = {ok[1 - i], 1.0, 0};
        fs_profile_step(&p, &ev, x);
        for (int k = 0; k < FS_PROFILE_NFEATURES; k++)
            CHECK(isfinite(x[k]));
    }
}

/* ---- the customer key ---- */

static void key_txn(fs_txn *t, const char *n1, const char *n2, const char *street, double pc)
{
    memset(t, 0, sizeof *t);
    t->name_1 = n1;
    t->name_2 = n2;
    t->street = street;
    t->post_code = pc;
    t->transaction_time = "";
}

static void test_key(void)
{
    fs_txn t;
    char buf[FS_PROFILE_KEY_MAX];
    key_txn(&t, "Ann", "Smith", "1 Main St", 62701.0);
    CHECK_EQ_INT(fs_profile_key(&t, buf, sizeof buf), 25);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|62701");
    key_txn(&t, "Ann", "Smith", "1 Main St", 627.5);
    CHECK(fs_profile_key(&t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|627.5");
    key_txn(&t, "Ann", "Smith", "1 Main St", 0.1);
    CHECK(fs_profile_key(&t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|0.10000000000000001");
    key_txn(&t, "Ann", "Smith", "1 Main St", -5.0);
    CHECK(fs_profile_key(&t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|-5");
    key_txn(&t, "Ann", "Smith", "1 Main St", 1e20); /* integral but too big for %.0f */
    CHECK(fs_profile_key(&t, buf, sizeof buf) > 0);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|1e+20");
    key_txn(&t, "Ann", "Smith", "1 Main St", NAN); /* missing */
    CHECK_EQ_INT(fs_profile_key(&t, buf, sizeof buf), 20);
    CHECK_EQ_STR(buf, "Ann|Smith|1 Main St|");
    key_txn(&t, "", "", "", NAN);
    CHECK_EQ_INT(fs_profile_key(&t, buf, sizeof buf), 3);
    CHECK_EQ_STR(buf, "|||");
    /* Fits exactly (with the NUL) or not at all. */
    key_txn(&t, "Ann", "Smith", "1 Main St", 62701.0);
    CHECK_EQ_INT(fs_profile_key(&t, buf, 26), 25);
    CHECK_EQ_INT(fs_profile_key(&t, buf, 25), -1);
    CHECK_EQ_INT(fs_profile_key(&t, buf, 0), -1);
    /* Too long for FS_PROFILE_KEY_MAX: refused, also by fs_features_customer. */
    static char longname[3000];
    memset(longname, 'x', sizeof longname - 1);
    key_txn(&t, longname, "Smith", "1 Main St", 62701.0);
    CHECK_EQ_INT(fs_profile_key(&t, buf, sizeof buf), -1);
    fs_profile_store *s = fs_profile_store_new(0);
    char err[256] = "";
    CHECK(s != NULL);
    if (s != NULL) {
        CHECK(fs_features_customer(s, &t, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err) == NULL);
        CHECK(strstr(err, "customer key") != NULL);
        CHECK_EQ_INT(fs_profile_store_count(s), 0);
        fs_profile_store_free(s);
    }
}

/* ---- the store ---- */

#define NKEYS 6000

static int make_key(char *buf, size_t cap, int i)
{
    /* ~40 bytes, like name_1|name_2|street|post_code. */
    return snprintf(buf, cap, "Name%d|Surname%d|%d Elm Street|%05d", i % 97, i, i * 7, i % 99991);
}

static int check_all(fs_profile_store *s, const unsigned char *present)
{
    char key[64];
    int bad = 0;
    for (int i = 0; i < NKEYS; i++) {
        int len = make_key(key, sizeof key, i);
        fs_profile *p = fs_profile_store_find(s, key, (size_t)len);
        if (present[i] ? (p == NULL || p->n != (uint32_t)i + 1) : p != NULL)
            bad++;
    }
    return bad;
}

typedef struct drop_log {
    int calls;
    unsigned char *seen;
} drop_log;

static void on_drop(const char *key, size_t len, void *opaque)
{
    drop_log *d = opaque;
    d->calls++;
    /* The key's index is the Surname number. */
    const char *p = memchr(key, '|', len);
    int i = p ? (int)strtol(p + 1 + 7, NULL, 10) : -1;
    if (i >= 0 && i < NKEYS)
        d->seen[i]++;
}

static int count_each(const char *key, size_t len, const fs_profile *p, void *opaque)
{
    (void)key;
    (void)len;
    (void)p;
    (*(int *)opaque)++;
    return 0;
}

static void test_store_many(void)
{
    fs_profile_store *s = fs_profile_store_new(0);
    static unsigned char present[NKEYS], seen[NKEYS];
    char key[64];
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK(fs_profile_store_find(s, "x", 1) == NULL); /* empty store */
    CHECK_EQ_INT(fs_profile_store_remove(s, "x", 1), 0);
    size_t base = fs_profile_store_bytes(s), key_bytes = 0;
    for (int i = 0; i < NKEYS; i++) {
        int len = make_key(key, sizeof key, i), created = -1, full = -1;
        fs_profile *p = fs_profile_store_upsert(s, key, (size_t)len, &created, &full);
        CHECK(p != NULL);
        if (p == NULL)
            break;
        CHECK_EQ_INT(created, 1);
        CHECK_EQ_INT(full, 0);
        CHECK_EQ_INT(p->n, 0); /* empty record */
        p->n = (uint32_t)i + 1;
        p->last_time = i;
        present[i] = 1;
        key_bytes += (size_t)len + 1;
        /* A second upsert finds the same record. */
        CHECK(fs_profile_store_upsert(s, key, (size_t)len, &created, NULL) == p);
        CHECK_EQ_INT(created, 0);
    }
    CHECK_EQ_INT(fs_profile_store_count(s), NKEYS);
    CHECK_EQ_INT(check_all(s, present), 0);
    /* bytes: at least the records, keys and a slot each; 144 bytes per entry (128 + 16). */
    size_t bytes = fs_profile_store_bytes(s);
    CHECK(bytes >= base + (size_t)NKEYS * (144 + sizeof(void *)) + key_bytes);
    CHECK(bytes <= base + (size_t)NKEYS * (144 + 4 * sizeof(void *)) + key_bytes);
    int visited = 0;
    CHECK_EQ_INT(fs_profile_store_each(s, count_each, &visited), 0);
    CHECK_EQ_INT(visited, NKEYS);

    /* Random removals: every remaining key is still found after each batch (the backward
     * shift keeps probe runs whole), removed ones are not. */
    int removed = 0, bad = 0;
    for (int k = 0; k < NKEYS * 2 && removed < NKEYS / 2; k++) {
        int i = (int)rnd_range(0, NKEYS - 1);
        int len = make_key(key, sizeof key, i);
        size_t before = fs_profile_store_bytes(s);
        int rc = fs_profile_store_remove(s, key, (size_t)len);
        CHECK_EQ_INT(rc, present[i]);
        if (rc == 1) {
            CHECK_EQ_INT(before - fs_profile_store_bytes(s), 144 + len + 1);
            present[i] = 0;
            removed++;
            if (removed % 50 == 0)
                bad += check_all(s, present);
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(check_all(s, present), 0);
    CHECK_EQ_INT(fs_profile_store_count(s), NKEYS - removed);

    /* Re-adding some keys works and gives empty records. */
    for (int i = 0; i < NKEYS; i += 7) {
        if (present[i])
            continue;
        int len = make_key(key, sizeof key, i), created = 0;
        fs_profile *p = fs_profile_store_upsert(s, key, (size_t)len, &created, NULL);
        CHECK(p != NULL && created == 1 && p->n == 0);
        if (p != NULL) {
            p->n = (uint32_t)i + 1;
            p->last_time = i;
        }
        present[i] = 1;
    }
    CHECK_EQ_INT(check_all(s, present), 0);

    /* Expiry: everyone whose latest event is before 3000, each reported once. */
    size_t expect = 0;
    for (int i = 0; i < NKEYS; i++)
        expect += present[i] && i < 3000;
    size_t count = fs_profile_store_count(s);
    drop_log d = {0, seen};
    memset(seen, 0, sizeof seen);
    CHECK_EQ_INT(fs_profile_store_expire(s, 3000, on_drop, &d), expect);
    CHECK_EQ_INT(d.calls, expect);
    int twice = 0, wrong = 0;
    for (int i = 0; i < NKEYS; i++) {
        twice += seen[i] > 1;
        wrong += seen[i] != (present[i] && i < 3000);
        if (i < 3000)
            present[i] = 0;
    }
    CHECK_EQ_INT(twice, 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(fs_profile_store_count(s), count - expect);
    CHECK_EQ_INT(check_all(s, present), 0);
    CHECK_EQ_INT(fs_profile_store_expire(s, 3000, NULL, NULL), 0);
    /* Everyone, without a callback. */
    CHECK_EQ_INT(fs_profile_store_expire(s, NKEYS, NULL, NULL), count - expect);
    CHECK_EQ_INT(fs_profile_store_count(s), 0);
    memset(present, 0, sizeof present);
    CHECK_EQ_INT(check_all(s, present), 0);
    /* Empty again: only the table is left. */
    CHECK(fs_profile_store_bytes(s) < bytes);
    CHECK_EQ_INT(fs_profile_store_bytes(s) - base, (bytes - base - (size_t)NKEYS * 144 -
                                                     key_bytes));
    fs_profile_store_free(s);
}

/* Small tables (64 slots, up to 31 customers): probe runs often wrap past the table's end,
 * so removals shift entries across it. Every key is checked after every removal. */
static void test_store_wrap(void)
{
    int bad = 0;
    for (int round = 0; round < 3000 && bad == 0; round++) {
        fs_profile_store *s = fs_profile_store_new(0);
        char keys[31][24];
        int alive[31], n = (int)rnd_range(20, 31);
        CHECK(s != NULL);
        if (s == NULL)
            return;
        for (int i = 0; i < n; i++) {
            snprintf(keys[i], sizeof keys[i], "r%d-k%d", round, i);
            fs_profile *p = fs_profile_store_upsert(s, keys[i], strlen(keys[i]), NULL, NULL);
            if (p != NULL)
                p->n = (uint32_t)i + 1;
            alive[i] = p != NULL;
            bad += p == NULL;
        }
        for (int k = 0; k < n; k++) {
            int i = (int)rnd_range(0, n - 1);
            if (alive[i]) {
                bad += fs_profile_store_remove(s, keys[i], strlen(keys[i])) != 1;
                alive[i] = 0;
            }
            for (int j = 0; j < n; j++) {
                fs_profile *p = fs_profile_store_find(s, keys[j], strlen(keys[j]));
                bad += alive[j] ? (p == NULL || p->n != (uint32_t)j + 1) : p != NULL;
            }
        }
        if (bad)
            fprintf(stderr, "small table round %d: %d keys lost or found after removal\n",
                    round, bad);
        fs_profile_store_free(s);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Keys that differ only in length or bytes after a NUL are different customers. */
static void test_store_keys(void)
{
    fs_profile_store *s = fs_profile_store_new(0);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    fs_profile *a = fs_profile_store_upsert(s, "ab\0c", 4, NULL, NULL);
    fs_profile *b = fs_profile_store_upsert(s, "ab\0d", 4, NULL, NULL);
    fs_profile *c = fs_profile_store_upsert(s, "ab", 2, NULL, NULL);
    fs_profile *e = fs_profile_store_upsert(s, "", 0, NULL, NULL);
    CHECK(a != NULL && b != NULL && c != NULL && e != NULL);
    CHECK(a != b && a != c && b != c && c != e);
    CHECK(fs_profile_store_find(s, "ab\0c", 4) == a);
    CHECK(fs_profile_store_find(s, "", 0) == e);
    CHECK(fs_profile_store_find(s, "ab\0", 3) == NULL);
    CHECK_EQ_INT(fs_profile_store_count(s), 4);
    CHECK_EQ_INT(fs_profile_store_remove(s, "ab", 2), 1);
    CHECK_EQ_INT(fs_profile_store_remove(s, "ab", 2), 0);
    CHECK(fs_profile_store_find(s, "ab\0d", 4) == b);
    fs_profile_store_free(s);
    fs_profile_store_free(NULL);
}

static void test_store_max(void)
{
    fs_profile_store *s = fs_profile_store_new(100);
    char key[64];
    CHECK(s != NULL);
    if (s == NULL)
        return;
    CHECK_EQ_INT(fs_profile_store_max(s), 100);
    for (int i = 0; i < 100; i++) {
        int len = make_key(key, sizeof key, i), full = -1;
        CHECK(fs_profile_store_upsert(s, key, (size_t)len, NULL, &full) != NULL);
        CHECK_EQ_INT(full, 0);
    }
    int len = make_key(key, sizeof key, 100), full = 0, created = 1;
    CHECK(fs_profile_store_upsert(s, key, (size_t)len, &created, &full) == NULL);
    CHECK_EQ_INT(full, 1);
    CHECK_EQ_INT(created, 0);
    CHECK_EQ_INT(fs_profile_store_count(s), 100);
    /* A customer already held is still found when full. */
    int len0 = make_key(key, sizeof key, 0);
    CHECK(fs_profile_store_upsert(s, key, (size_t)len0, NULL, &full) != NULL);
    CHECK_EQ_INT(full, 0);
    /* Through fs_features_customer: the error says full. */
    fs_txn t;
    char err[256] = "";
    key_txn(&t, "New", "Customer", "3 Oak", 1.0);
    CHECK(fs_features_customer(s, &t, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err) == NULL);
    CHECK(strstr(err, "full: 100 customers") != NULL);
    /* One leaves, one more fits. */
    CHECK_EQ_INT(fs_profile_store_remove(s, key, (size_t)len0), 1);
    len = make_key(key, sizeof key, 100);
    CHECK(fs_profile_store_upsert(s, key, (size_t)len, NULL, &full) != NULL);
    CHECK_EQ_INT(fs_profile_store_count(s), 100);
    fs_profile_store_free(s);
    s = fs_profile_store_new(0);
    CHECK_EQ_INT(fs_profile_store_max(s), 0);
    fs_profile_store_free(s);
}

int main(void)
{
    test_first_transaction();
    test_equal_and_out_of_order();
    test_long_gap();
    test_night_hours();
    test_big_amount();
    test_categories();
    test_category_halving();
    test_expiry();
    test_bad_amounts();
    test_random_sequences();
    test_wire();
    test_key();
    test_store_many();
    test_store_wrap();
    test_store_keys();
    test_store_max();
    return CHECK_DONE();
}
