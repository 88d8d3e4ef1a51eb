/*
 * fs_profile: the per-customer record and its behaviour features (see fs_profile.h).
 *
 * The arithmetic is written out in one fixed order with plain double operations and the C
 * library's exp, log1p, sqrt, sin, cos and atan2, so that the pandas reference in
 * tests/features can repeat it bit for bit (the build never contracts to FMA: ISO C mode).
 */
#include "fs_profile.h"
#include "fs_err.h"
#include "fs_numfmt.h"
#include "fs_time.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(fs_profile) == FS_PROFILE_BYTES, "fs_profile is 128 bytes");

#define TAU_1H 3600.0
#define TAU_24H 86400.0
#define DAY FS_DAY_SECONDS
#define TWO_PI 6.28318530717958647692
#define PI 3.14159265358979323846
/* Amounts above this are taken as this much: sums stay finite for any input. */
#define AMOUNT_MAX 1e12
/* No sum of amounts gets near this (2^32 events of AMOUNT_MAX are 4.3e21), and a sum at
 * most this stays so (AMOUNT_MAX is below half its ulp): a decoded record above it would make
 * cust_spend24_to_daily (up to 100x the 24 h amount) overflow. */
#define AMOUNT_SUM_MAX 1e30
/* The seconds of 0001-01-01 00:00:00 and 9999-12-31 23:59:59, the range of fs_parse_time. */
#define TIME_MIN (-62135596800LL)
#define TIME_MAX 253402300799LL
/* Counts of earlier events beyond this read as this much (cust_n_prev). */
#define N_PREV_CAP 1000.0
/* Added to the variance of log1p(amount) before the square root: a customer whose amounts
 * were all equal still gets a finite z-score. */
#define Z_VAR_FLOOR 0.01

static const char *const names[FS_PROFILE_NFEATURES] = {
    "cust_secs_since_prev", /* seconds since the previous event; -1 for the first */
    "cust_cnt_1h",          /* decayed count, tau 1 h, this event included */
    "cust_amt_1h",          /* decayed amount, tau 1 h */
    "cust_cnt_24h",         /* decayed count, tau 24 h */
    "cust_amt_24h",         /* decayed amount, tau 24 h */
    "cust_night_24h",       /* decayed count (24 h) of events at 22:00-03:59 */
    "cust_big_24h",         /* decayed count (24 h) of events above 3x the earlier mean */
    "cust_amount_z",        /* z of log1p(amount) vs earlier ones; 0 before 2 events */
    "cust_hour_dist",       /* hours (0..12) from the mean time of day; -1 for the first */
    "cust_cat_share",       /* share of earlier events in this category; 0 = new */
    "cust_amount_to_max",   /* amount / earlier largest; -1 for the first */
    "cust_spend24_to_daily", /* 24 h amount / earlier average per day; -1 for the first */
    "cust_n_prev",          /* earlier events, capped at 1000 */
};

const char *fs_profile_feature_name(int i)
{
    if (i < 0 || i >= FS_PROFILE_NFEATURES)
        return NULL;
    return names[i];
}

void fs_profile_init(fs_profile *p)
{
    memset(p, 0, sizeof *p);
}

static double clamp_amount(double a)
{
    if (!(a > 0.0)) /* NaN and negatives */
        return 0.0;
    return a < AMOUNT_MAX ? a : AMOUNT_MAX;
}

/* What features and update share: the event's effective time, the decays since the
 * customer's latest event, the angle of its time of day. */
typedef struct step {
    int64_t te;       /* effective time: never before the latest event */
    double dt;        /* seconds since the latest event (0 for the first) */
    double d1, d24;   /* exp(-dt / tau) */
    double amount;    /* clamped */
    double log_amount;
    double angle;     /* 2 pi * second of the day / 86400, of the event's own time */
    int night;
    int big;
    int cat;
} step;

static void prepare(const fs_profile *p, const fs_profile_event *e, step *s)
{
    s->te = e->time;
    if (p->n > 0 && s->te < p->last_time)
        s->te = p->last_time;
    s->dt = p->n > 0 ? (double)(s->te - p->last_time) : 0.0;
    s->d1 = exp(-s->dt / TAU_1H);
    s->d24 = exp(-s->dt / TAU_24H);
    s->amount = clamp_amount(e->amount);
    s->log_amount = log1p(s->amount);
    int64_t sod = fs_second_of_day(e->time);
    int hour = (int)(sod / 3600);
    s->night = hour >= 22 || hour < 4;
    s->angle = TWO_PI * (double)sod / (double)DAY;
    s->big = p->n > 0 && s->amount > 3.0 * (p->sum_amount / (double)p->n);
    s->cat = e->cat >= 0 && e->cat < FS_PROFILE_NCAT ? e->cat : FS_PROFILE_CAT_OTHER;
}

static void features(const fs_profile *p, const step *s, double *x)
{
    int have = p->n > 0;
    x[0] = have ? s->dt : -1.0;
    x[1] = p->cnt_1h * s->d1 + 1.0;
    x[2] = p->amt_1h * s->d1 + s->amount;
    x[3] = p->cnt_24h * s->d24 + 1.0;
    x[4] = p->amt_24h * s->d24 + s->amount;
    x[5] = p->night_24h * s->d24 + (double)s->night;
    x[6] = p->big_24h * s->d24 + (double)s->big;
    x[7] = p->n >= 2 ? (s->log_amount - p->mean_log) /
                           sqrt(p->m2_log / ((double)p->n - 1.0) + Z_VAR_FLOOR)
                     : 0.0;
    if (have) {
        double mean = atan2(p->hour_sin, p->hour_cos);
        double diff = fabs(s->angle - (mean < 0.0 ? mean + TWO_PI : mean));
        if (diff > PI)
            diff = TWO_PI - diff;
        x[8] = diff * 24.0 / TWO_PI;
    } else {
        x[8] = -1.0;
    }
    unsigned total = 0;
    for (int i = 0; i < FS_PROFILE_NCAT; i++)
        total += p->cat[i];
    x[9] = total ? (double)p->cat[s->cat] / (double)total : 0.0;
    x[10] = have ? s->amount / fmax(p->max_amount, 0.01) : -1.0;
    if (have) {
        double days = (double)(s->te - (int64_t)p->first_day * DAY) / (double)DAY;
        double daily = p->sum_amount / fmax(days, 1.0);
        x[11] = x[4] / fmax(daily, 0.01);
    } else {
        x[11] = -1.0;
    }
    x[12] = fmin((double)p->n, N_PREV_CAP);
}

static void update(fs_profile *p, const fs_profile_event *e, const step *s, const double *x)
{
    if (p->n == 0)
        p->first_day = (int32_t)fs_day_of(e->time);
    p->last_time = s->te;
    p->cnt_1h = x[1];
    p->amt_1h = x[2];
    p->cnt_24h = x[3];
    p->amt_24h = x[4];
    p->night_24h = x[5];
    p->big_24h = x[6];
    double n1 = (double)p->n + 1.0;
    double delta = s->log_amount - p->mean_log;
    p->mean_log += delta / n1;
    p->m2_log += delta * (s->log_amount - p->mean_log);
    p->sum_amount += s->amount;
    p->max_amount = fmax(p->max_amount, s->amount);
    p->hour_sin += sin(s->angle);
    p->hour_cos += cos(s->angle);
    if (p->cat[s->cat] == UINT8_MAX) {
        for (int i = 0; i < FS_PROFILE_NCAT; i++)
            p->cat[i] = (uint8_t)(p->cat[i] >> 1);
    }
    p->cat[s->cat]++;
    if (p->n < UINT32_MAX)
        p->n++;
}

int fs_profile_expired(const fs_profile *p, int64_t time, int64_t expiry)
{
    return p->n > 0 && time > p->last_time && time - p->last_time > expiry;
}

void fs_profile_features(const fs_profile *p, const fs_profile_event *e, double *x)
{
    step s;
    prepare(p, e, &s);
    features(p, &s, x);
}

void fs_profile_step(fs_profile *p, const fs_profile_event *e, double *x)
{
    step s;
    prepare(p, e, &s);
    features(p, &s, x);
    update(p, e, &s, x);
}

void fs_profile_update(fs_profile *p, const fs_profile_event *e)
{
    double x[FS_PROFILE_NFEATURES];
    fs_profile_step(p, e, x);
}

int fs_profile_key(const fs_txn *t, char *buf, size_t cap)
{
    char post[FS_FMT_CAP] = "";
    double pc = t->post_code;
    /* %.17g: for an integer below 1e15 the same text as the %.0f this key was first built
     * with (tests/unit/test_numfmt checks it), so stored keys stay valid. */
    if (isfinite(pc))
        fs_fmt_g17(pc, post);
    /* "%s|%s|%s|%s" by hand: snprintf was 3 % of the detector's CPU (once per transaction). */
    const char *parts[4] = {t->name_1, t->name_2, t->street, post};
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(parts[i]), sep = i < 3;
        if (len + sep >= cap - n) /* room for the part, its '|' and, at the end, the NUL */
            return -1;
        memcpy(buf + n, parts[i], len);
        n += len;
        if (sep)
            buf[n++] = '|';
    }
    buf[n] = '\0';
    return (int)n;
}

/* ---- the portable form ---- */

enum { WIRE_FORMAT = 1 };

/* n bytes of v, little-endian. */
static void put_le(unsigned char *o, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        o[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *o, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)o[i] << (8 * i);
    return v;
}

static void put_double(unsigned char *o, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_le(o, v, 8);
}

static double get_double(const unsigned char *o)
{
    uint64_t v = get_le(o, 8);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* The doubles of a record in wire order, for encode and decode alike. */
#define NDOUBLES 12
static void doubles_of(fs_profile *p, double **d)
{
    double *const all[NDOUBLES] = {&p->cnt_1h,    &p->amt_1h,    &p->cnt_24h,  &p->amt_24h,
                                   &p->night_24h, &p->big_24h,   &p->mean_log, &p->m2_log,
                                   &p->sum_amount, &p->max_amount, &p->hour_sin, &p->hour_cos};
    memcpy(d, all, sizeof all);
}

void fs_profile_encode(const fs_profile *p, unsigned char out[FS_PROFILE_WIRE_BYTES])
{
    fs_profile c = *p;
    double *d[NDOUBLES];
    doubles_of(&c, d);
    unsigned char *o = out;
    *o++ = WIRE_FORMAT;
    put_le(o, (uint64_t)c.last_time, 8);
    o += 8;
    put_le(o, (uint32_t)c.first_day, 4);
    o += 4;
    put_le(o, c.n, 4);
    o += 4;
    for (int i = 0; i < NDOUBLES; i++, o += 8)
        put_double(o, *d[i]);
    memcpy(o, c.cat, FS_PROFILE_NCAT);
}

int fs_profile_decode(fs_profile *p, const void *data, size_t len, char *errstr,
                      size_t errstr_size)
{
    static const char *const dnames[NDOUBLES] = {
        "cnt_1h",    "amt_1h",  "cnt_24h",    "amt_24h",    "night_24h", "big_24h",
        "mean_log",  "m2_log",  "sum_amount", "max_amount", "hour_sin",  "hour_cos"};
    const unsigned char *in = data;
    if (len != FS_PROFILE_WIRE_BYTES) {
        fs_errf(errstr, errstr_size, "customer state: %zu bytes, expected %d", len,
                FS_PROFILE_WIRE_BYTES);
        return -1;
    }
    if (in[0] != WIRE_FORMAT) {
        fs_errf(errstr, errstr_size, "customer state: format %u, expected %d", in[0],
                WIRE_FORMAT);
        return -1;
    }
    fs_profile c;
    double *d[NDOUBLES];
    doubles_of(&c, d);
    const unsigned char *o = in + 1;
    c.last_time = (int64_t)get_le(o, 8);
    o += 8;
    c.first_day = (int32_t)(uint32_t)get_le(o, 4);
    o += 4;
    c.n = (uint32_t)get_le(o, 4);
    o += 4;
    for (int i = 0; i < NDOUBLES; i++, o += 8)
        *d[i] = get_double(o);
    memcpy(c.cat, o, FS_PROFILE_NCAT);
    for (int i = 0; i < NDOUBLES; i++) {
        /* Every field but the sin/cos sums is a count, sum, moment or maximum (>= 0);
         * those two are at most n in size. */
        double v = *d[i];
        int sincos = i >= NDOUBLES - 2;
        if (!isfinite(v) || (!sincos && v < 0.0) || (sincos && fabs(v) > (double)c.n)) {
            fs_errf(errstr, errstr_size, "customer state: %s out of range: %.17g", dnames[i],
                    v);
            return -1;
        }
    }
    /* Only the times a transaction can have (fs_parse_time: years 1..9999): any other
     * latest time would overflow the next event's age (te - last_time). */
    if (c.last_time < TIME_MIN || c.last_time > TIME_MAX) {
        fs_errf(errstr, errstr_size, "customer state: last_time out of range: %lld",
                (long long)c.last_time);
        return -1;
    }
    if (c.max_amount > AMOUNT_MAX || c.mean_log > log1p(AMOUNT_MAX) ||
        c.amt_1h > AMOUNT_SUM_MAX || c.amt_24h > AMOUNT_SUM_MAX ||
        c.sum_amount > AMOUNT_SUM_MAX) {
        fs_errf(errstr, errstr_size, "customer state: amounts above %g", AMOUNT_MAX);
        return -1;
    }
    *p = c;
    return 0;
}
