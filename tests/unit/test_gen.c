/*
 * fs_gen: determinism, CSV read-back through the real reader, and the statistics the model
 * promises (fraud rate, categories, night fraud, weekly and seasonal rhythm, merchant
 * distance, fraud episodes), all computed here from the generated rows.
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

static int is_night(int64_t t)
{
    int64_t sod = ((t % 86400) + 86400) % 86400;
    int h = (int)(sod / 3600);
    return h >= 22 || h < 4;
}

static void test_statistics(void)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    o.seed = 2024;
    char err[256];
    fs_gen *g = fs_gen_new(&o, err, sizeof err);
    CHECK(g != NULL);
    if (g == NULL)
        return;
    const int n = 200000;
    long bad_target = 0, fraud = 0, night_fraud = 0, night_legit = 0, ooo = 0, far = 0;
    long cat_legit[FS_GEN_NCATEGORIES] = {0}, cat_fraud[FS_GEN_NCATEGORIES] = {0};
    double amt_legit[FS_GEN_NCATEGORIES] = {0}, amt_fraud[FS_GEN_NCATEGORIES] = {0};
    long weekday_rows[7] = {0};
    int64_t prev = INT64_MIN, first = 0, last = 0;
    /* Fraud per card: first and last fraud time and count, to see episodes. */
    enum { MAXC = 4096 };
    static char card[MAXC][128];
    static int64_t f_first[MAXC], f_last[MAXC];
    static int f_count[MAXC];
    int ncards = 0;
    for (int i = 0; i < n; i++) {
        const fs_txn *t;
        if (fs_gen_next(g, &t, NULL, NULL) != 0) {
            CHECK(!"fs_gen_next failed");
            break;
        }
        if (i == 0)
            first = t->time;
        last = t->time;
        if (t->time < prev)
            ooo++;
        prev = t->time;
        int k = -1;
        for (int c = 0; c < FS_GEN_NCATEGORIES; c++)
            if (strcmp(t->cat_id, fs_gen_category(c)) == 0)
                k = c;
        CHECK(k >= 0);
        if (k < 0)
            continue;
        if (fabs(t->merchant_lat - t->lat) > 1.0001 || fabs(t->merchant_lon - t->lon) > 1.0001)
            far++;
        int64_t days = t->time / 86400;
        weekday_rows[((days % 7) + 7 + 3) % 7]++;
        if (t->target == 1) {
            fraud++;
            cat_fraud[k]++;
            amt_fraud[k] += t->amount;
            night_fraud += is_night(t->time);
            char key[128];
            snprintf(key, sizeof key, "%s|%s|%s", t->name_1, t->name_2, t->street);
            int c = 0;
            while (c < ncards && strcmp(card[c], key) != 0)
                c++;
            if (c == ncards && ncards < MAXC) {
                memcpy(card[c], key, sizeof key);
                f_first[c] = t->time;
                ncards++;
            }
            if (c < ncards) {
                f_last[c] = t->time;
                f_count[c]++;
            }
        } else {
            bad_target += t->target != 0;
            cat_legit[k]++;
            amt_legit[k] += t->amount;
            night_legit += is_night(t->time);
        }
    }
    fs_gen_free(g);
    long legit = n - fraud;
    double rate = (double)fraud / n;
    printf("fraud rate %.5f, night share fraud %.3f legit %.3f, cards with fraud %d\n", rate,
           (double)night_fraud / (double)fraud, (double)night_legit / (double)legit, ncards);
    CHECK_EQ_INT(ooo, 0);
    CHECK_EQ_INT(bad_target, 0);
    CHECK_EQ_INT(far, 0);
    /* About 0.5%: within 30% of the target over 200k rows (about 3 standard deviations of
     * the episode-clustered count). */
    CHECK(rate > 0.0035 && rate < 0.0065);
    /* Every category appears in legitimate rows; fraud is concentrated in the high-risk
     * three, and happens mostly at night while legitimate purchases mostly do not. */
    for (int k = 0; k < FS_GEN_NCATEGORIES; k++)
        CHECK(cat_legit[k] > 0);
    long high = cat_fraud[2] + cat_fraud[3] + cat_fraud[5]; /* grocery_pos misc_net shopping_net */
    CHECK((double)high / (double)fraud > 0.45);
    CHECK((double)night_fraud / (double)fraud > 0.7);
    CHECK((double)night_legit / (double)legit < 0.35);
    /* In the high-risk categories a fraud purchase is several times the legitimate mean. */
    for (int k = 2; k <= 5; k += (k == 3 ? 2 : 1)) {
        if (cat_fraud[k] == 0 || cat_legit[k] == 0)
            continue;
        CHECK(amt_fraud[k] / (double)cat_fraud[k] > 2.5 * amt_legit[k] / (double)cat_legit[k]);
    }
    /* Weekends are busier than midweek. */
    CHECK(weekday_rows[5] + weekday_rows[6] > weekday_rows[1] + weekday_rows[2]);
    /* Fraud comes as episodes: a handful of rows per card within a few days. */
    long short_eps = 0, total_f = 0;
    for (int c = 0; c < ncards; c++) {
        total_f += f_count[c];
        if (f_last[c] - f_first[c] <= 4 * 86400)
            short_eps += f_count[c];
    }
    CHECK(ncards > 0 && (double)total_f / ncards >= 2.0);
    CHECK((double)short_eps / (double)total_f > 0.5);
    CHECK(last - first > 30 * 86400);
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
    /* December (31 days) busier than any other month, and than November (30 days) by more
     * than the extra day explains. */
    for (int m = 0; m < 11; m++)
        CHECK(month_rows[11] > month_rows[m]);
    CHECK((double)month_rows[11] / 31.0 > 1.2 * (double)month_rows[10] / 30.0);
}

int main(void)
{
    test_determinism();
    test_readback();
    test_statistics();
    test_season();
    return CHECK_DONE();
}
