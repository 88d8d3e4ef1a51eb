/*
 * fs_gen: determinism, CSV read-back through the real reader, and the process it promises
 * (the Sparkov simulator's): fraud share, fraud episodes (a few days, the victim's own
 * purchases of those days absent), per-segment differences, the category/half-day coupling,
 * customers unique on name_1|name_2|street|post_code, weekly and seasonal rhythm, all
 * computed here from the generated rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_gen.h"
#include "fs_txn.h"

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Digest of the first n rows' cells. */
static uint64_t digest(const fs_gen_opts *o, int n)
{
    char err[256];
    fs_gen *g = fs_gen_new(o, err, sizeof err);
    CHECK(g != NULL);
    if (g == NULL)
        return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; i++) {
        const fs_txn *t;
        const char *const *v;
        const size_t *l;
        if (fs_gen_next(g, &t, &v, &l) != 0) {
            CHECK(!"fs_gen_next failed");
            break;
        }
        for (int f = 0; f < FS_TXN_NFIELDS; f++)
            h = fnv(h, v[f], l[f] + 1);
        h = fnv(h, &t->target, sizeof t->target);
    }
    fs_gen_free(g);
    return h;
}

static void test_determinism(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 12345;
    uint64_t a = digest(&o, 20000), b = digest(&o, 20000);
    CHECK(a == b);
    o.seed = 12346;
    CHECK(digest(&o, 20000) != a);
    /* Option errors. */
    char err[256];
    o.fraud_rate = 0.7;
    CHECK(fs_gen_new(&o, err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "fraud rate 0.7 outside [0, 0.5]");
    o.fraud_rate = 0.005;
    o.merchants = 5;
    CHECK(fs_gen_new(&o, err, sizeof err) == NULL);
}

/* ---- read-back: the CSV written equals the records handed out ---- */

typedef struct {
    fs_gen *g;
    long rows, mismatches;
} readback;

static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int readback_cb(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    readback *r = opaque;
    const fs_txn *w;
    (void)row;
    if (fs_gen_next(r->g, &w, NULL, NULL) != 0) {
        r->mismatches++;
        return 1;
    }
    if (t->time != w->time || t->target != w->target || !same(t->amount, w->amount) ||
        !same(t->lat, w->lat) || !same(t->lon, w->lon) || !same(t->post_code, w->post_code) ||
        !same(t->population_city, w->population_city) ||
        !same(t->merchant_lat, w->merchant_lat) || !same(t->merchant_lon, w->merchant_lon) ||
        strcmp(t->merch, w->merch) != 0 || strcmp(t->cat_id, w->cat_id) != 0 ||
        strcmp(t->name_1, w->name_1) != 0 || strcmp(t->name_2, w->name_2) != 0 ||
        strcmp(t->gender, w->gender) != 0 || strcmp(t->street, w->street) != 0 ||
        strcmp(t->one_city, w->one_city) != 0 || strcmp(t->us_state, w->us_state) != 0 ||
        strcmp(t->jobs, w->jobs) != 0 || strcmp(t->transaction_time, w->transaction_time) != 0)
        r->mismatches++;
    r->rows++;
    return 0;
}

static void test_readback(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 99;
    char err[512];
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_EQ_INT(fs_gen_write_csv(f, &o, 20000, 1, err, sizeof err), 0);
    rewind(f);
    /* The header is exactly the train.csv column order. */
    char header[512];
    CHECK(fgets(header, sizeof header, f) != NULL);
    CHECK_EQ_STR(header,
                 "transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,"
                 "us_state,post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon,"
                 "target\n");
    rewind(f);
    readback r = {0};
    r.g = fs_gen_new(&o, err, sizeof err);
    CHECK(r.g != NULL);
    CHECK_EQ_INT(fs_txn_read_stream(f, readback_cb, &r, err, sizeof err), 0);
    CHECK_EQ_INT(r.rows, 20000);
    CHECK_EQ_INT(r.mismatches, 0);
    fs_gen_free(r.g);
    fclose(f);

    /* --no-target: the test.csv schema, same rows otherwise. */
    f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL)
        return;
    CHECK_EQ_INT(fs_gen_write_csv(f, &o, 10, 0, err, sizeof err), 0);
    rewind(f);
    CHECK(fgets(header, sizeof header, f) != NULL);
    CHECK(strstr(header, "target") == NULL);
    CHECK(strcmp(header + strlen(header) - 14, ",merchant_lon\n") == 0);
    fclose(f);
}

/* ---- statistics ---- */

static int hour_of(int64_t t)
{
    return (int)((((t % 86400) + 86400) % 86400) / 3600);
}

static int is_night(int64_t t)
{
    int h = hour_of(t);
    return h >= 22 || h < 4;
}

static int category_index(const char *name)
{
    for (int c = 0; c < FS_GEN_NCATEGORIES; c++)
        if (strcmp(name, fs_gen_category(c)) == 0)
            return c;
    return -1;
}

/* Per customer (key name_1|name_2|street|post_code), what the tests look at. */
enum { MAXC = 4096, MAXDAYS = 512 };
typedef struct {
    char key[160];
    int profile, city_mismatch;
    char city[64];
    long legit;
    int64_t f_first, f_last;
    int f_count;
    unsigned char legit_day[MAXDAYS], fraud_day[MAXDAYS];
} card;

typedef struct {
    card *c;
    int n;
    int slot[2 * MAXC];
    int64_t day0;
} cards;

static card *card_of(cards *cs, const fs_txn *t)
{
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%s|%.0f", t->name_1, t->name_2, t->street, t->post_code);
    uint64_t h = fnv(0xcbf29ce484222325ull, key, strlen(key));
    size_t s = (size_t)(h % (2 * MAXC));
    while (cs->slot[s] >= 0) {
        if (strcmp(cs->c[cs->slot[s]].key, key) == 0)
            return &cs->c[cs->slot[s]];
        s = (s + 1) % (2 * MAXC);
    }
    if (cs->n == MAXC)
        return NULL;
    card *c = &cs->c[cs->n];
    memset(c, 0, sizeof *c);
    memcpy(c->key, key, sizeof key);
    snprintf(c->city, sizeof c->city, "%s", t->one_city);
    c->profile = -1;
    cs->slot[s] = cs->n++;
    return c;
}

typedef struct {
    long rows, fraud, bad_target, ooo, far, night_fraud, night_legit;
    long cat_legit[FS_GEN_NCATEGORIES], cat_fraud[FS_GEN_NCATEGORIES];
    double amt_legit[FS_GEN_NCATEGORIES], amt_fraud[FS_GEN_NCATEGORIES];
    long weekday_rows[7];
    /* Per segment: legitimate rows, those before noon, gas_transport rows, gas_transport
     * rows after noon, travel rows before noon. */
    long p_rows[FS_GEN_NPROFILES], p_am[FS_GEN_NPROFILES], p_gas[FS_GEN_NPROFILES];
    long gas_pm, travel_am, profile_mismatch;
    int64_t first, last;
} tally;

/* Runs n rows of o through the tally and the per-card table. */
static void run(const fs_gen_opts *o, int n, tally *ta, cards *cs)
{
    char err[256];
    memset(ta, 0, sizeof *ta);
    cs->n = 0;
    for (size_t s = 0; s < 2 * MAXC; s++)
        cs->slot[s] = -1;
    fs_gen *g = fs_gen_new(o, err, sizeof err);
    CHECK(g != NULL);
    if (g == NULL)
        return;
    int64_t prev = INT64_MIN;
    for (int i = 0; i < n; i++) {
        const fs_txn *t;
        if (fs_gen_next(g, &t, NULL, NULL) != 0) {
            CHECK(!"fs_gen_next failed");
            break;
        }
        int p = fs_gen_profile(g);
        if (i == 0) {
            ta->first = t->time;
            cs->day0 = t->time / 86400;
        }
        ta->last = t->time;
        ta->rows++;
        if (t->time < prev)
            ta->ooo++;
        prev = t->time;
        int k = category_index(t->cat_id);
        CHECK(k >= 0 && p >= 0 && p < FS_GEN_NPROFILES);
        if (k < 0 || p < 0 || p >= FS_GEN_NPROFILES)
            continue;
        if (fabs(t->merchant_lat - t->lat) > 1.0001 || fabs(t->merchant_lon - t->lon) > 1.0001)
            ta->far++;
        int64_t days = t->time / 86400;
        ta->weekday_rows[((days % 7) + 7 + 3) % 7]++;
        card *c = card_of(cs, t);
        CHECK(c != NULL);
        if (c == NULL)
            continue;
        if (c->profile >= 0 && c->profile != p)
            ta->profile_mismatch++;
        c->profile = p;
        if (strcmp(c->city, t->one_city) != 0)
            c->city_mismatch++;
        int64_t d = days - cs->day0;
        if (t->target == 1) {
            ta->fraud++;
            ta->cat_fraud[k]++;
            ta->amt_fraud[k] += t->amount;
            ta->night_fraud += is_night(t->time);
            if (c->f_count == 0)
                c->f_first = t->time;
            c->f_last = t->time;
            c->f_count++;
            if (d >= 0 && d < MAXDAYS)
                c->fraud_day[d] = 1;
        } else {
            ta->bad_target += t->target != 0;
            ta->cat_legit[k]++;
            ta->amt_legit[k] += t->amount;
            ta->night_legit += is_night(t->time);
            c->legit++;
            if (d >= 0 && d < MAXDAYS)
                c->legit_day[d] = 1;
            int am = hour_of(t->time) < 12;
            ta->p_rows[p]++;
            ta->p_am[p] += am;
            if (k == 0) {
                ta->p_gas[p]++;
                ta->gas_pm += !am;
            }
            if (k == FS_GEN_NCATEGORIES - 1)
                ta->travel_am += am;
        }
    }
    fs_gen_free(g);
}

static card card_store[MAXC];
static cards card_table = {card_store, 0, {0}, 0};
static tally stats_tally; /* test_statistics' run, read again by test_profiles */
static int64_t stats_last; /* time of the last row test_statistics saw */

static void test_statistics(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 2024;
    tally ta;
    run(&o, 200000, &ta, &card_table);
    stats_tally = ta;
    double rate = (double)ta.fraud / (double)ta.rows;
    long legit = ta.rows - ta.fraud;
    printf("fraud share %.5f, night share fraud %.3f legit %.3f, customers %d\n", rate,
           (double)ta.night_fraud / (double)ta.fraud, (double)ta.night_legit / (double)legit,
           card_table.n);
    CHECK_EQ_INT(ta.ooo, 0);
    CHECK_EQ_INT(ta.bad_target, 0);
    CHECK_EQ_INT(ta.far, 0);
    /* The simulator's ~0.5%: 200k rows hold ~100 episodes, so allow +-40%. */
    CHECK(rate > 0.003 && rate < 0.007);
    /* Customers: about the 1000 of the world (a few have no row yet), each key one person. */
    CHECK(card_table.n > 900 && card_table.n <= 1000);
    CHECK_EQ_INT(ta.profile_mismatch, 0);
    long city_mismatch = 0;
    for (int c = 0; c < card_table.n; c++)
        city_mismatch += card_store[c].city_mismatch;
    CHECK_EQ_INT(city_mismatch, 0);
    for (int k = 0; k < FS_GEN_NCATEGORIES; k++)
        CHECK(ta.cat_legit[k] > 0);
    /* Fraud: grocery_pos, misc_net and shopping_net dominate, mostly at night, at amounts
     * far above the legitimate ones; legitimate purchases are mostly not at night. */
    long high = ta.cat_fraud[2] + ta.cat_fraud[3] + ta.cat_fraud[5];
    CHECK((double)high / (double)ta.fraud > 0.45);
    CHECK((double)ta.night_fraud / (double)ta.fraud > 0.7);
    CHECK((double)ta.night_legit / (double)legit < 0.35);
    for (int k = 2; k <= 5; k += (k == 3 ? 2 : 1))
        CHECK(ta.cat_fraud[k] > 0 && ta.amt_fraud[k] / (double)ta.cat_fraud[k] >
                                         2.5 * ta.amt_legit[k] / (double)ta.cat_legit[k]);
    /* gas_transport is cheap under fraud (the thief tests the card). */
    CHECK(ta.cat_fraud[0] > 0 && ta.amt_fraud[0] / (double)ta.cat_fraud[0] < 30.0);
    /* Weekends are busier than midweek. */
    CHECK(ta.weekday_rows[5] + ta.weekday_rows[6] > ta.weekday_rows[1] + ta.weekday_rows[2]);
    CHECK(ta.last - ta.first > 30 * 86400);
    stats_last = ta.last;
}

/* Fraud comes as episodes: per compromised customer a handful of rows within two days, and
 * none of the customer's own purchases on a day that has fraud. */
static void test_episodes(void)
{
    long episodes = 0, long_eps = 0, small = 0, big = 0, overlap = 0, victim_legit = 0;
    for (int i = 0; i < card_table.n; i++) {
        const card *c = &card_store[i];
        if (c->f_count == 0)
            continue;
        episodes++;
        /* 200k rows are ~100 days, far shorter than the ~2-year period: one episode. */
        if (c->f_last - c->f_first >= 2 * 86400)
            long_eps++;
        /* An episode cut by the end of the run may show fewer rows than it has. */
        if (c->f_count < 2 && c->f_first < stats_last - 2 * 86400)
            small++;
        if (c->f_count > 19)
            big++;
        victim_legit += c->legit;
        for (int d = 0; d < MAXDAYS; d++)
            overlap += c->fraud_day[d] && c->legit_day[d];
    }
    printf("episodes %ld, victims' legitimate rows %ld\n", episodes, victim_legit);
    CHECK(episodes > 50);
    CHECK_EQ_INT(long_eps, 0);
    CHECK_EQ_INT(small, 0);
    CHECK_EQ_INT(big, 0);
    CHECK_EQ_INT(overlap, 0);
    /* The victims do buy on other days (so the absence above is the blocking, not silence). */
    CHECK(victim_legit > 100 * episodes);
}

/* Segments differ as the simulator's profiles do (test_statistics' rows and customers). */
static void test_profiles(void)
{
    const tally ta = stats_tally;
    long cust[FS_GEN_NPROFILES] = {0};
    for (int i = 0; i < card_table.n; i++)
        cust[card_store[i].profile]++;
    double per_cust[FS_GEN_NPROFILES], am[FS_GEN_NPROFILES], gas[FS_GEN_NPROFILES];
    for (int p = 0; p < FS_GEN_NPROFILES; p++) {
        CHECK(cust[p] > 0 && ta.p_rows[p] > 0);
        per_cust[p] = cust[p] ? (double)ta.p_rows[p] / (double)cust[p] : 0;
        am[p] = ta.p_rows[p] ? (double)ta.p_am[p] / (double)ta.p_rows[p] : 0;
        gas[p] = ta.p_rows[p] ? (double)ta.p_gas[p] / (double)ta.p_rows[p] : 0;
        printf("%-20s customers %4ld rows/customer %6.1f before noon %.2f gas %.3f\n",
               fs_gen_profile_name(p), cust[p], per_cust[p], am[p], gas[p]);
    }
    /* Segment shares: 50+ the largest band, under-25 the smallest; about half rural. */
    long young = cust[0] + cust[1] + cust[2] + cust[3];
    long senior = cust[8] + cust[9] + cust[10] + cust[11];
    long rural = 0;
    for (int p = 1; p < FS_GEN_NPROFILES; p += 2)
        rural += cust[p];
    CHECK(young < senior / 3);
    CHECK(rural > 400 && rural < 600);
    /* Volume: adult women in towns buy 1..6 a day, urban seniors 0..3. */
    CHECK(per_cust[4] > 1.6 * per_cust[8]);
    /* Half of the day: young people shop in the afternoon (20% mornings), urban seniors in
     * the morning (60%). */
    CHECK(am[0] < 0.3 && am[2] < 0.3);
    CHECK(am[8] > 0.5 && am[10] > 0.5);
    /* Categories: rural adult women buy gas far more often than urban ones (225 vs 50). */
    CHECK(gas[5] > 2.5 * gas[4]);
    /* One draw picks category and half of the day: gas_transport (first in every table,
     * below every morning share) is always a morning purchase, travel (last) never. */
    CHECK_EQ_INT(ta.gas_pm, 0);
    CHECK_EQ_INT(ta.travel_am, 0);
}

/* The fraud share follows fraud_rate, and 0 means no fraud at all. */
static void test_fraud_rate(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 77;
    o.start = 1554076800; /* 2019-04-01: no winter lull (fewer purchases, same fraud) */
    o.fraud_rate = 0.03;
    tally ta;
    run(&o, 150000, &ta, &card_table);
    double rate = (double)ta.fraud / (double)ta.rows;
    printf("fraud_rate 0.03: share %.4f\n", rate);
    CHECK(rate > 0.021 && rate < 0.039);
    o.fraud_rate = 0.0;
    run(&o, 50000, &ta, &card_table);
    CHECK_EQ_INT(ta.fraud, 0);
}

/* Seasonal rhythm needs a year: a small world makes that cheap. */
static void test_season(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 7;
    o.customers = 60;
    char err[256];
    fs_gen *g = fs_gen_new(&o, err, sizeof err);
    CHECK(g != NULL);
    if (g == NULL)
        return;
    long month_rows[12] = {0};
    for (;;) {
        const fs_txn *t;
        if (fs_gen_next(g, &t, NULL, NULL) != 0) {
            CHECK(!"fs_gen_next failed");
            break;
        }
        if (strncmp(t->transaction_time, "2020", 4) == 0)
            break;
        int m = (t->transaction_time[5] - '0') * 10 + (t->transaction_time[6] - '0');
        if (m >= 1 && m <= 12)
            month_rows[m - 1]++;
    }
    fs_gen_free(g);
    /* December (holidays, x2) busier than any other month; July (summer, x1.25) busier than
     * October (x1); February (after the holidays, x0.75) quieter per day than October. */
    for (int m = 0; m < 11; m++)
        CHECK(month_rows[11] > month_rows[m]);
    CHECK((double)month_rows[11] / 31.0 > 1.5 * (double)month_rows[9] / 31.0);
    CHECK(month_rows[6] > 1.1 * month_rows[9]);
    CHECK((double)month_rows[1] / 28.0 < 0.9 * (double)month_rows[9] / 31.0);
}

int main(void)
{
    test_determinism();
    test_readback();
    test_statistics();
    test_episodes();
    test_profiles();
    test_fraud_rate();
    test_season();
    return CHECK_DONE();
}
