/*
 * Unit tests of fs_features: fitting on a handful of hand-made rows, stats.json round trip,
 * the feature vector with hand-computed values, missing and unseen values, loader errors,
 * and the transactions CSV reader (bad rows with line and column).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs_features.h"

/* One row: time, merch, cat_id, amount, name_1, street, one_city, lat, lon, pop, mlat, mlon;
 * the other fields get fixed values. */
static int make_txn(fs_txn *t, const char *time, const char *merch, const char *cat,
                    const char *amount, const char *name_1, const char *lat, const char *lon,
                    const char *pop, const char *mlat, const char *mlon)
{
    const char *v[FS_TXN_NFIELDS];
    size_t len[FS_TXN_NFIELDS];
    v[FS_F_TRANSACTION_TIME] = time;
    v[FS_F_MERCH] = merch;
    v[FS_F_CAT_ID] = cat;
    v[FS_F_AMOUNT] = amount;
    v[FS_F_NAME_1] = name_1;
    v[FS_F_NAME_2] = "Smith";
    v[FS_F_GENDER] = "F";
    v[FS_F_STREET] = "1 Main St";
    v[FS_F_ONE_CITY] = "Springfield";
    v[FS_F_US_STATE] = "IL";
    v[FS_F_POST_CODE] = "62701";
    v[FS_F_LAT] = lat;
    v[FS_F_LON] = lon;
    v[FS_F_POPULATION_CITY] = pop;
    v[FS_F_JOBS] = "Engineer";
    v[FS_F_MERCHANT_LAT] = mlat;
    v[FS_F_MERCHANT_LON] = mlon;
    for (int i = 0; i < FS_TXN_NFIELDS; i++)
        len[i] = strlen(v[i]);
    char err[256];
    int bad;
    int rc = fs_txn_from_strings(t, v, len, NULL, NULL, &bad, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "make_txn: %s\n", err);
    return rc;
}

static fs_txn txn;

/* An empty customer profile: these tests look at the stateless features of single rows. */
static fs_profile *blank(void)
{
    static fs_profile p;
    fs_profile_init(&p);
    return &p;
}

/* Four training rows:
 *   amounts 10, 20, 30, 1000 (sorted) -> median 25; p99 = 30 + 0.97 * 970 = 970.9
 *   cat grocery_pos: 10, 30 -> median 20; travel: 20, 1000 -> median 510
 *   merch A x3, B x1 -> 0.75, 0.25; name_1 Ann x2, Bob x2 -> 0.5
 *   lat 40, 41, 42, 43 -> median 41.5; pop 100, 200, 300, 400 -> 250
 *   hours 23, 23, 10, 2 -> mode 23; days: 2019-01-07 is a Monday (0) */
static fs_stats *fit_four(void)
{
    fs_stats_fitter *f = fs_stats_fitter_new();
    char err[256];
    CHECK(f != NULL);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 23:00", "A", "grocery_pos", "10", "Ann", "40",
                          "-90", "100", "40", "-90"),
                 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 23:30", "A", "travel", "20", "Ann", "41", "-91",
                          "200", "41", "-91"),
                 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-08 10:00", "A", "grocery_pos", "30", "Bob", "42",
                          "-92", "300", "42", "-92"),
                 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-09 02:15", "B", "travel", "1000", "Bob", "43", "-93",
                          "400", "43", "-93"),
                 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    fs_stats *s = fs_stats_fitter_finish(f, err, sizeof err);
    CHECK(s != NULL);
    fs_stats_fitter_free(f);
    return s;
}

static void test_names(void)
{
    CHECK_EQ_INT(fs_features_count(), 30);
    CHECK_EQ_INT(fs_features_all_count(), 33);
    CHECK_EQ_STR(fs_features_name(0), "amount");
    CHECK_EQ_STR(fs_features_name(9), "freq_merch");
    CHECK_EQ_STR(fs_features_name(16), "amount_to_cat_median");
    CHECK_EQ_STR(fs_features_name(17), "cust_secs_since_prev");
    CHECK_EQ_STR(fs_features_name(29), "cust_n_prev");
    CHECK(fs_features_name(30) == NULL);
    CHECK(fs_features_name(-1) == NULL);
    /* The model's list is a prefix of the full list. */
    for (int i = 0; i < FS_FEATURES_N; i++)
        CHECK_EQ_STR(fs_features_all_name(i), fs_features_name(i));
    CHECK_EQ_STR(fs_features_all_name(30), "night");
    CHECK_EQ_STR(fs_features_all_name(31), "day_of_week");
    CHECK_EQ_STR(fs_features_all_name(32), "distance_km");
    CHECK(fs_features_all_name(33) == NULL);
}

static void check_known_row(const fs_stats *s)
{
    double x[FS_FEATURES_ALL_N];
    char err[256];
    /* Sunday 2019-01-13 22:00, 971 > p99, grocery_pos (median 20), merch A, name Ann, one
     * degree of longitude east of the customer on the equator. */
    CHECK_EQ_INT(make_txn(&txn, "2019-01-13 22:00", "A", "grocery_pos", "971", "Ann", "0", "0",
                          "1000", "0", "1"),
                 0);
    CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
    CHECK_EQ_BITS(x[0], 971.0);
    CHECK_EQ_BITS(x[1], 0.0);
    CHECK_EQ_BITS(x[3], 1000.0);
    CHECK_EQ_BITS(x[4], 22.0);
    CHECK_NEAR(x[5], log(972.0), 1e-12);
    CHECK_NEAR(x[6], log(1001.0), 1e-12);
    CHECK_EQ_BITS(x[7], 1.0);                   /* 971 > 970.9 */
    CHECK_EQ_BITS(x[8], 2.0);                   /* grocery_pos */
    CHECK_EQ_BITS(x[9], 0.75);                  /* merch A: 3 of 4 */
    CHECK_EQ_BITS(x[10], 0.5);                  /* Ann: 2 of 4 */
    CHECK_EQ_BITS(x[11], 1.0);                  /* Smith: 4 of 4 */
    CHECK_EQ_BITS(x[30], 1.0);                  /* 22:00 is night */
    CHECK_EQ_BITS(x[31], 6.0);                  /* Sunday */
    CHECK_NEAR(x[32], 6371.0 * M_PI / 180.0, 1e-9); /* 111.19 km */
    CHECK_NEAR(x[16], 971.0 / 20.0, 1e-12);
    /* The model's vector is the prefix of the full one. */
    double m[FS_FEATURES_N];
    CHECK_EQ_INT(fs_features_compute(s, &txn, blank(), m, err, sizeof err), 0);
    for (int i = 0; i < FS_FEATURES_N; i++)
        CHECK_EQ_BITS(m[i], x[i]);
}

static void test_fit_and_compute(void)
{
    fs_stats *s = fit_four();
    if (s == NULL)
        return;
    CHECK_EQ_INT(fs_stats_rows(s), 4);
    check_known_row(s);

    /* Round trip through stats.json gives the very same features. */
    char err[256], path[64], path2[64], tmpl[] = "/tmp/test_features.XXXXXX";
    /* A private directory: other build trees may run this test at the same time. */
    const char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);
    if (tmp == NULL)
        return;
    snprintf(path, sizeof path, "%s/stats.json", tmp);
    snprintf(path2, sizeof path2, "%s/stats2.json", tmp);
    CHECK_EQ_INT(fs_stats_save(s, path, err, sizeof err), 0);
    fs_stats *l = fs_stats_load(path, err, sizeof err);
    CHECK(l != NULL);
    if (l != NULL) {
        double a[FS_FEATURES_ALL_N], b[FS_FEATURES_ALL_N];
        CHECK_EQ_INT(make_txn(&txn, "2020-02-29 03:59", "B", "travel", "7.5", "Zed", "12.5",
                              "-45", "77", "13", "-44"),
                     0);
        CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), a, err, sizeof err), 0);
        CHECK_EQ_INT(fs_features_compute_all(l, &txn, blank(), b, err, sizeof err), 0);
        for (int i = 0; i < FS_FEATURES_ALL_N; i++)
            CHECK_EQ_BITS(a[i], b[i]);
        CHECK_EQ_BITS(a[10], 0.0);         /* unseen name: frequency 0 */
        CHECK_EQ_BITS(a[9], 0.25);         /* merch B: 1 of 4 */
        CHECK_EQ_BITS(a[30], 1.0);         /* 03:59 is night */
        CHECK_EQ_BITS(a[31], 5.0);         /* 2020-02-29 was a Saturday */
        CHECK_NEAR(a[16], 7.5 / 510.0, 1e-12); /* travel median (20 + 1000) / 2 */
        CHECK_EQ_BITS(a[8], 0.0);
        /* Saving the loaded statistics gives the same bytes. */
        CHECK_EQ_INT(fs_stats_save(l, path2, err, sizeof err), 0);
        FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
        CHECK(f1 != NULL && f2 != NULL);
        if (f1 != NULL && f2 != NULL) {
            int c1, c2;
            do {
                c1 = fgetc(f1);
                c2 = fgetc(f2);
            } while (c1 == c2 && c1 != EOF);
            CHECK(c1 == c2);
        }
        if (f1)
            fclose(f1);
        if (f2)
            fclose(f2);
        fs_stats_free(l);
    }
    remove(path);
    remove(path2);
    rmdir(tmp);
    fs_stats_free(s);
}

static void test_missing_and_boundaries(void)
{
    fs_stats *s = fit_four();
    if (s == NULL)
        return;
    double x[FS_FEATURES_ALL_N];
    char err[256];
    /* Missing amount, coordinates, population: training medians; unseen category: overall
     * median amount; empty merch: frequency 0. */
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 04:00", "", "kids_pets", "", "Ann", "nan", "", "",
                          "", ""),
                 0);
    CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
    CHECK_EQ_BITS(x[0], 25.0);
    CHECK_EQ_BITS(x[1], 41.5);
    CHECK_EQ_BITS(x[2], -91.5);
    CHECK_EQ_BITS(x[3], 250.0);
    CHECK_EQ_BITS(x[7], 0.0);
    CHECK_EQ_BITS(x[8], 0.0);
    CHECK_EQ_BITS(x[9], 0.0);
    CHECK_EQ_BITS(x[30], 0.0); /* 04:00 is not night */
    CHECK_EQ_BITS(x[31], 0.0); /* Monday */
    CHECK_EQ_BITS(x[32], 0.0); /* customer and merchant both at the medians */
    CHECK_EQ_BITS(x[16], 1.0); /* 25 / 25 */
    for (int i = 0; i < FS_FEATURES_ALL_N; i++)
        CHECK(!isnan(x[i]));
    /* Night boundaries. */
    const char *times[] = {"2019-01-07 21:59", "2019-01-07 22:00", "2019-01-08 03:59:59",
                           "2019-01-08 00:00"};
    double night[] = {0, 1, 1, 1};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(make_txn(&txn, times[i], "A", "home", "5", "Ann", "1", "1", "1", "1", "1"),
                     0);
        CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
        CHECK_EQ_BITS(x[30], night[i]);
    }
    /* Just below p99 (970.9) is not high. */
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 12:00", "A", "home", "970", "Ann", "1", "1", "1",
                          "1", "1"),
                 0);
    CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
    CHECK_EQ_BITS(x[7], 0.0);
    /* Risk classes. */
    const char *cats[] = {"shopping_net", "misc_net", "shopping_pos", "gas_transport", "home"};
    double risk[] = {2, 2, 1, 1, 0};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(make_txn(&txn, "2019-01-07 12:00", "A", cats[i], "5", "Ann", "1", "1", "1",
                              "1", "1"),
                     0);
        CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
        CHECK_EQ_BITS(x[8], risk[i]);
    }
    fs_stats_free(s);
}

static void test_fit_empty(void)
{
    fs_stats_fitter *f = fs_stats_fitter_new();
    char err[256] = "";
    CHECK(fs_stats_fitter_finish(f, err, sizeof err) == NULL);
    CHECK(strstr(err, "no training rows") != NULL);
    fs_stats_fitter_free(f);
}

/* The fitter refuses text that is not UTF-8 even in a record built without fs_txn's checks
 * (stats.json must hold it); a value seen before is not checked again but still counted. */
static void test_fit_rejects_bad_utf8(void)
{
    fs_stats_fitter *f = fs_stats_fitter_new();
    char err[256] = "";
    CHECK(f != NULL);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 23:00", "A", "travel", "10", "Ann", "40", "-90",
                          "100", "40", "-90"),
                 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    txn.text[txn.merch - txn.text] = '\xff';
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), -1);
    CHECK(strstr(err, "merch: not valid UTF-8") != NULL);
    CHECK_EQ_INT(make_txn(&txn, "2019-01-07 23:00", "A", "travel", "10", "Ann", "40", "-90",
                          "100", "40", "-90"),
                 0);
    txn.text[txn.cat_id - txn.text] = '\xc3'; /* a lead byte with no continuation */
    err[0] = '\0';
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), -1);
    CHECK(strstr(err, "cat_id: not valid UTF-8") != NULL);
    fs_stats *st = fs_stats_fitter_finish(f, err, sizeof err);
    CHECK(st != NULL);
    fs_stats_free(st);
    fs_stats_fitter_free(f);
}

static const char *good_stats =
    "{\"format\":\"fs_stats/1\",\"rows\":4,\"amount_p99\":970.9,"
    "\"fill\":{\"amount\":25,\"lat\":41.5,\"lon\":-91.5,\"population_city\":250,"
    "\"merchant_lat\":41.5,\"merchant_lon\":-91.5,\"hour\":23,\"day_of_week\":0},"
    "\"category_median_amount\":{\"travel\":510},"
    "\"frequency_counts\":{\"merch\":{\"A\":3},\"name_1\":{},\"name_2\":{},\"jobs\":{},"
    "\"us_state\":{},\"street\":{},\"one_city\":{}}}";

static void expect_load_error(const char *text, const char *needle)
{
    char err[512] = "";
    fs_stats *s = fs_stats_load_buffer(text, strlen(text), "x.json", err, sizeof err);
    CHECK(s == NULL);
    if (strstr(err, needle) == NULL) {
        fprintf(stderr, "expected '%s' in: %s\n", needle, err);
        CHECK(0);
    }
    fs_stats_free(s);
}

static char *replace(const char *s, const char *from, const char *to)
{
    static char buf[2048];
    const char *p = strstr(s, from);
    if (p == NULL)
        return NULL;
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
    return buf;
}

static void test_load_errors(void)
{
    char err[512];
    fs_stats *s = fs_stats_load_buffer(good_stats, strlen(good_stats), "x.json", err, sizeof err);
    CHECK(s != NULL);
    if (s != NULL) {
        double x[FS_FEATURES_ALL_N];
        CHECK_EQ_INT(make_txn(&txn, "2019-01-07 12:00", "A", "travel", "51", "Ann", "1", "1",
                              "1", "1", "1"),
                     0);
        CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
        CHECK_EQ_BITS(x[9], 0.75);
        CHECK_EQ_BITS(x[16], 0.1);
        /* An amount exactly at the 99th percentile is not high. */
        CHECK_EQ_INT(make_txn(&txn, "2019-01-07 12:00", "A", "travel", "970.9", "Ann", "1",
                              "1", "1", "1", "1"),
                     0);
        CHECK_EQ_INT(fs_features_compute_all(s, &txn, blank(), x, err, sizeof err), 0);
        CHECK_EQ_BITS(x[7], 0.0);
        fs_stats_free(s);
    }
    expect_load_error("{", "x.json:");
    expect_load_error("[]", "expected a JSON object");
    expect_load_error(replace(good_stats, "fs_stats/1", "fs_stats/9"), "format");
    expect_load_error(replace(good_stats, "\"rows\":4", "\"rows\":0"), "rows");
    expect_load_error(replace(good_stats, "\"A\":3", "\"A\":5"), "frequency_counts.merch");
    expect_load_error(replace(good_stats, "\"A\":3", "\"A\":1.5"), "frequency_counts.merch");
    expect_load_error(replace(good_stats, "\"hour\":23", "\"hour\":24"), "fill.hour");
    expect_load_error(replace(good_stats, "\"lat\":41.5", "\"lat\":\"x\""), "fill.lat");
    expect_load_error(replace(good_stats, ",\"one_city\":{}", ""), "frequency_counts.one_city");
    expect_load_error(replace(good_stats, "\"travel\":510", "\"travel\":null"),
                      "category_median_amount");
    expect_load_error(replace(good_stats, "\"rows\":4,", "\"rows\":4,\"rows\":4,"), "x.json:");
    s = fs_stats_load("no/such/stats.json", err, sizeof err);
    CHECK(s == NULL);
    CHECK(strstr(err, "no/such/stats.json: cannot open") != NULL);
}

typedef struct read_log {
    int rows;
    int bad;
    double amount_sum;
    size_t last_row, last_line;
    char msg[512];
} read_log;

static int on_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    read_log *l = opaque;
    l->rows++;
    l->amount_sum += t->amount;
    l->last_row = row->index - 1;
    l->last_line = row->line;
    return 0;
}

static int on_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    read_log *l = opaque;
    (void)row;
    l->bad++;
    snprintf(l->msg, sizeof l->msg, "%s", msg);
    return 0;
}

#define HEADER                                                                              \
    "transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,us_state,"     \
    "post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon\n"
#define ROW(amount, lat)                                                                    \
    "2019-01-01 10:00,m,home," amount ",A,B,F,\"1 Main, St\",C,IL,1," lat ",2,3,J,1,2\n"

static int read_text(const char *text, read_log *l, int with_bad, char *err, size_t errsize)
{
    FILE *f = fmemopen((void *)text, strlen(text), "rb");
    memset(l, 0, sizeof *l);
    int rc = fs_txn_read_file(f, "in.csv", on_row, with_bad ? on_bad : NULL, l, err,
                                  errsize);
    fclose(f);
    return rc;
}

static void test_reader(void)
{
    read_log l;
    char err[512] = "";
    CHECK_EQ_INT(read_text(HEADER ROW("1.5", "1") ROW("2.5", "1"), &l, 0, err, sizeof err), 0);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_BITS(l.amount_sum, 4.0);
    CHECK_EQ_INT(l.last_row, 1);
    CHECK_EQ_INT(l.last_line, 3);

    /* Bad number on line 3, column 4 (amount); strict mode stops with the position. */
    CHECK_EQ_INT(read_text(HEADER ROW("1", "1") ROW("abc", "1") ROW("2", "1"), &l, 0, err,
                           sizeof err),
                 -1);
    CHECK(strstr(err, "in.csv:3:4: amount") != NULL);
    CHECK_EQ_INT(l.rows, 1);
    /* With on_bad the row is skipped and reported, the rest read. */
    CHECK_EQ_INT(read_text(HEADER ROW("1", "1") ROW("abc", "1") ROW("2", "1"), &l, 1, err,
                           sizeof err),
                 0);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_INT(l.bad, 1);
    CHECK(strstr(l.msg, "in.csv:3:4: amount") != NULL);
    /* Out-of-range latitude: column 12. */
    CHECK_EQ_INT(read_text(HEADER ROW("1", "91"), &l, 0, err, sizeof err), -1);
    CHECK(strstr(err, "in.csv:2:12: lat") != NULL);
    /* Missing column. */
    CHECK_EQ_INT(read_text("transaction_time,merch\n2019-01-01 10:00,m\n", &l, 0, err,
                           sizeof err),
                 -1);
    CHECK(strstr(err, "in.csv:1: missing column \"cat_id\"") != NULL);
    /* Wrong field count. */
    CHECK_EQ_INT(read_text(HEADER "2019-01-01 10:00,m\n", &l, 0, err, sizeof err), -1);
    CHECK(strstr(err, "in.csv:2: expected 17 fields, got 2") != NULL);
    /* Empty input. */
    CHECK_EQ_INT(read_text("", &l, 0, err, sizeof err), -1);
    CHECK(strstr(err, "empty input") != NULL);
}

/* The behaviour features are carried per customer by fs_features_customer: two customers
 * interleaved in one store get, row for row, the same 33 values as each alone in a store of
 * its own, and the store then holds the same records. */
static void test_customers_interleaved(void)
{
    fs_stats *s = fit_four();
    if (s == NULL)
        return;
    static const struct {
        const char *time, *cat, *amount, *name;
    } rows[] = {
        {"2019-01-07 10:00", "travel", "20", "Ann"},    {"2019-01-07 10:05", "grocery_pos", "5", "Bob"},
        {"2019-01-07 10:30", "travel", "400", "Ann"},   {"2019-01-07 09:00", "home", "12", "Bob"},
        {"2019-01-07 23:10", "grocery_pos", "", "Ann"}, {"2019-01-08 02:00", "travel", "70", "Bob"},
        {"2019-01-07 23:10", "kids_pets", "1", "Ann"},  {"2019-01-09 12:00", "", "3000", "Ann"},
        {"2019-01-09 12:00", "travel", "9", "Bob"},     {"2019-01-20 08:00", "travel", "15", "Bob"},
    };
    enum { NROWS = sizeof rows / sizeof rows[0] };
    static double both[NROWS][FS_FEATURES_ALL_N], alone[NROWS][FS_FEATURES_ALL_N];
    char err[256];
    fs_profile_store *mixed = fs_profile_store_new(0);
    fs_profile_store *single[2] = {fs_profile_store_new(0), fs_profile_store_new(0)};
    CHECK(mixed != NULL && single[0] != NULL && single[1] != NULL);
    for (int pass = 0; pass < 3 && mixed && single[0] && single[1]; pass++) {
        /* Pass 0: all rows in one store; pass 1: Ann's alone; pass 2: Bob's alone. */
        for (int i = 0; i < NROWS; i++) {
            int bob = rows[i].name[0] == 'B';
            if (pass > 0 && bob != pass - 1)
                continue;
            CHECK_EQ_INT(make_txn(&txn, rows[i].time, "A", rows[i].cat, rows[i].amount,
                                  rows[i].name, "40", "-90", "100", "40", "-90"),
                         0);
            fs_profile_store *st = pass == 0 ? mixed : single[pass - 1];
            fs_profile *p =
                fs_features_customer(st, &txn, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err);
            CHECK(p != NULL);
            if (p == NULL)
                continue;
            CHECK_EQ_INT(fs_features_compute_all(s, &txn, p, pass == 0 ? both[i] : alone[i],
                                                 err, sizeof err),
                         0);
        }
    }
    for (int i = 0; i < NROWS; i++)
        for (int k = 0; k < FS_FEATURES_ALL_N; k++)
            CHECK_EQ_BITS(both[i][k], alone[i][k]);
    /* The customers really have histories: Ann's fourth row sees three earlier ones, Bob's
     * second (older than his first) is 0 seconds after it, and his last sees 4. */
    CHECK_EQ_BITS(alone[0][FS_FEATURES_N - 1], 0.0);
    CHECK_EQ_BITS(alone[6][FS_FEATURES_N - 1], 3.0);
    CHECK_EQ_BITS(alone[3][17], 0.0);
    CHECK_EQ_BITS(alone[9][FS_FEATURES_N - 1], 4.0);
    CHECK_EQ_BITS(alone[2][17], 1800.0);
    if (mixed && single[0] && single[1]) {
        CHECK_EQ_INT(fs_profile_store_count(mixed), 2);
        const char *keys[2] = {"Ann|Smith|1 Main St|62701", "Bob|Smith|1 Main St|62701"};
        for (int c = 0; c < 2; c++) {
            const fs_profile *a = fs_profile_store_find(mixed, keys[c], strlen(keys[c]));
            const fs_profile *b = fs_profile_store_find(single[c], keys[c], strlen(keys[c]));
            CHECK(a != NULL && b != NULL);
            if (a != NULL && b != NULL)
                CHECK(memcmp(a, b, sizeof *a) == 0);
        }
    }
    fs_profile_store_free(mixed);
    fs_profile_store_free(single[0]);
    fs_profile_store_free(single[1]);
    fs_stats_free(s);
}

int main(void)
{
    test_names();
    test_fit_and_compute();
    test_missing_and_boundaries();
    test_fit_empty();
    test_fit_rejects_bad_utf8();
    test_load_errors();
    test_reader();
    test_customers_interleaved();
    return CHECK_DONE();
}
