/*
 * fs_txn: time parsing (checked against an independent day count), strict numbers, field
 * validation, header mapping, CSV rows with their errors, JSON data objects, copies.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fs_txn.h"

/* Independent epoch reference: count days year by year and month by month. */
static int64_t ref_epoch(int y, int mo, int d, int h, int mi, int s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0) ? 366 : 365;
    for (int m = 1; m < mo; m++)
        days += mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    days += d - 1;
    return days * 86400 + h * 3600 + mi * 60 + s;
}

static int64_t t_of(const char *s)
{
    int64_t v = INT64_MIN;
    if (fs_parse_time(s, strlen(s), &v) != 0)
        return INT64_MIN;
    return v;
}

static void test_time(void)
{
    CHECK_EQ_INT(t_of("1970-01-01 00:00"), 0);
    CHECK_EQ_INT(t_of("2019-01-01 00:00"), 1546300800); /* date -u -d 2019-01-01 +%s */
    CHECK_EQ_INT(t_of("2020-06-21 12:34:56"), 1592742896);
    CHECK_EQ_INT(t_of("2000-02-29 23:59:59"), ref_epoch(2000, 2, 29, 23, 59, 59));
    CHECK_EQ_INT(t_of("2024-02-29 00:00"), ref_epoch(2024, 2, 29, 0, 0, 0));
    CHECK_EQ_INT(t_of("2019-12-31 23:59"), ref_epoch(2019, 12, 31, 23, 59, 0));
    /* Every day 2019..2021 against the reference. */
    int bad = 0;
    for (int y = 2019; y <= 2021; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 1; d <= 31; d++) {
                char s[32];
                snprintf(s, sizeof s, "%04d-%02d-%02d 13:07:05", y % 10000, m % 100, d % 100);
                int64_t got = t_of(s);
                static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
                int dim = mdays[m - 1] + (m == 2 && y % 4 == 0);
                if (d <= dim ? got != ref_epoch(y, m, d, 13, 7, 5) : got != INT64_MIN)
                    bad++;
            }
    CHECK_EQ_INT(bad, 0);
    /* Before 1970 works too. */
    CHECK_EQ_INT(t_of("1969-12-31 23:59:59"), -1);
    /* Bad dates and shapes. */
    static const char *const bad_times[] = {
        "2019-02-29 00:00", "1900-02-29 00:00", "2019-13-01 00:00", "2019-00-10 00:00",
        "2019-04-31 00:00", "2019-01-00 00:00", "2019-01-01 24:00", "2019-01-01 23:60",
        "2019-01-01 23:59:60", "2019-01-01T00:00", "2019-1-01 00:00", "2019-01-01 00:00:",
        "2019-01-01 00:00:0", "2019-01-01", "", "0000-01-01 00:00", "2019-01-01 0a:00",
        "2019-01-01 00:00 ", " 2019-01-01 00:00", "2019/01/01 00:00", "+019-01-01 00:00",
    };
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        int64_t v;
        int rc = fs_parse_time(bad_times[i], strlen(bad_times[i]), &v);
        CHECK_EQ_INT(rc, -1);
        if (rc != -1)
            fprintf(stderr, "  accepted \"%s\"\n", bad_times[i]);
    }
}

static void test_numbers(void)
{
    static const struct {
        const char *in;
        double want;
    } good[] = {
        {"0", 0.0},        {"12.5", 12.5},     {"-3", -3.0},     {"+4.25", 4.25},
        {".5", 0.5},       {"5.", 5.0},        {"1e3", 1000.0},  {"1E-2", 0.01},
        {"2.5e+1", 25.0},  {"007", 7.0},       {"-0.0", -0.0},   {"1e-400", 0.0},
        {"36.0788", 36.0788},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        char err[128] = "";
        CHECK_EQ_INT(fs_parse_number(good[i].in, strlen(good[i].in), &v, err, sizeof err), 0);
        CHECK_EQ_BITS(v, good[i].want);
    }
    static const char *const missing[] = {"", "nan", "NaN", "NAN"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        double v = 0;
        char err[128];
        CHECK_EQ_INT(fs_parse_number(missing[i], strlen(missing[i]), &v, err, sizeof err), 0);
        CHECK(isnan(v));
    }
    static const char *const bad[] = {
        "abc", " 1", "1 ", "0x10", "inf", "-inf", "infinity", "nan(1)", "1e", "e5", ".",
        "-", "+", "1.2.3", "1e400", "-1e400", "1,5", "--1", "1e+", "12a",
        "1234567890123456789012345678901234567890123456789012345678901234567890",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = 0;
        char err[128] = "";
        int rc = fs_parse_number(bad[i], strlen(bad[i]), &v, err, sizeof err);
        CHECK_EQ_INT(rc, -1);
        CHECK(err[0] != '\0');
        if (rc != -1)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
    }
    char err[128];
    double v;
    fs_parse_number("abc", 3, &v, err, sizeof err);
    CHECK_EQ_STR(err, "not a number: \"abc\"");
    fs_parse_number("1e400", 5, &v, err, sizeof err);
    CHECK_EQ_STR(err, "number out of range: \"1e400\"");
}

static void test_fields(void)
{
    CHECK_EQ_INT(FS_TXN_NFIELDS, 17);
    CHECK_EQ_STR(fs_txn_field_name(FS_F_TRANSACTION_TIME), "transaction_time");
    CHECK_EQ_STR(fs_txn_field_name(FS_F_MERCHANT_LON), "merchant_lon");
    CHECK_EQ_INT(fs_txn_field_lookup("amount", 6), FS_F_AMOUNT);
    CHECK_EQ_INT(fs_txn_field_lookup("amoun", 5), -1);
    CHECK_EQ_INT(fs_txn_field_lookup("Amount", 6), -1);
    CHECK_EQ_INT(fs_txn_field_lookup("target", 6), -1);
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        const char *n = fs_txn_field_name((enum fs_txn_field)f);
        CHECK_EQ_INT(fs_txn_field_lookup(n, strlen(n)), f);
    }
    CHECK(fs_txn_field_is_numeric(FS_F_POST_CODE));
    CHECK(!fs_txn_field_is_numeric(FS_F_JOBS));
}

/* ---- CSV reading through the reader ---- */

typedef struct {
    int n;
    fs_txn first, last;
    size_t last_line;
} collect;

static int collect_cb(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    collect *c = opaque;
    if (c->n == 0)
        fs_txn_copy(&c->first, t);
    fs_txn_copy(&c->last, t);
    c->last_line = row->line;
    c->n++;
    return 0;
}

/* Feeds text[0..len) to r in pieces of chunk bytes, finishes, copies the reader's error
 * to err and frees r. Returns the first non-zero feed or finish result, else 0. */
static int feed_reader(fs_txn_reader *r, const char *text, size_t len, size_t chunk,
                       char *err, size_t errsz)
{
    int rc = 0;
    for (size_t o = 0; o < len && rc == 0; o += chunk)
        rc = fs_txn_reader_feed(r, text + o, len - o < chunk ? len - o : chunk);
    if (rc == 0)
        rc = fs_txn_reader_finish(r);
    snprintf(err, errsz, "%s", fs_txn_reader_error(r));
    fs_txn_reader_free(r);
    return rc;
}

static int read_text(const char *text, collect *c, char *err, size_t errsz, size_t chunk)
{
    memset(c, 0, sizeof *c);
    fs_txn_reader *r = fs_txn_reader_new(collect_cb, c);
    CHECK(r != NULL);
    return feed_reader(r, text, strlen(text), chunk, err, errsz);
}

#define HDR                                                                             \
    "transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,us_state," \
    "post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon"
#define ROW                                                                             \
    "2019-01-01 00:00,fraud_Rippin and Sons,misc_net,4.97,Jennifer,Banks,F,"             \
    "561 Perry Cove,Moravian Falls,NC,28654,36.0788,-81.1781,3495,"                      \
    "\"Psychologist, counselling\",36.011293,-82.048315"

static void test_csv_rows(void)
{
    collect c;
    char err[512];
    /* The reference row, whole and byte by byte. */
    for (size_t chunk = 1; chunk <= 4096; chunk *= 4096) {
        CHECK_EQ_INT(read_text(HDR "\n" ROW "\n", &c, err, sizeof err, chunk), 0);
        CHECK_EQ_INT(c.n, 1);
        fs_txn *t = &c.first;
        CHECK_EQ_INT(t->time, 1546300800);
        CHECK_EQ_STR(t->transaction_time, "2019-01-01 00:00");
        CHECK_EQ_STR(t->merch, "fraud_Rippin and Sons");
        CHECK_EQ_STR(t->cat_id, "misc_net");
        CHECK_EQ_BITS(t->amount, 4.97);
        CHECK_EQ_STR(t->name_1, "Jennifer");
        CHECK_EQ_STR(t->name_2, "Banks");
        CHECK_EQ_STR(t->gender, "F");
        CHECK_EQ_STR(t->street, "561 Perry Cove");
        CHECK_EQ_STR(t->one_city, "Moravian Falls");
        CHECK_EQ_STR(t->us_state, "NC");
        CHECK_EQ_BITS(t->post_code, 28654.0);
        CHECK_EQ_BITS(t->lat, 36.0788);
        CHECK_EQ_BITS(t->lon, -81.1781);
        CHECK_EQ_BITS(t->population_city, 3495.0);
        CHECK_EQ_STR(t->jobs, "Psychologist, counselling");
        CHECK_EQ_BITS(t->merchant_lat, 36.011293);
        CHECK_EQ_BITS(t->merchant_lon, -82.048315);
        CHECK_EQ_STR(t->transaction_id, "");
        CHECK_EQ_INT(t->target, -1);
    }
    /* Any column order, extra columns ignored, target and transaction_id read. */
    CHECK_EQ_INT(read_text("extra,target,merchant_lon,merchant_lat,jobs,population_city,lon,"
                           "lat,post_code,us_state,one_city,street,gender,name_2,name_1,"
                           "amount,cat_id,merch,transaction_time,transaction_id\n"
                           "zzz,1,-82.5,36.5,Job,100,-81,36,1234,NC,City,Street,M,Last,"
                           "First,10,travel,M1,2019-03-01 22:15:30,abc-1\n",
                           &c, err, sizeof err, 4096),
                 0);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(c.first.target, 1);
    CHECK_EQ_STR(c.first.transaction_id, "abc-1");
    CHECK_EQ_STR(c.first.merch, "M1");
    CHECK_EQ_BITS(c.first.merchant_lon, -82.5);
    CHECK_EQ_INT(c.first.time, ref_epoch(2019, 3, 1, 22, 15, 30));
    /* Missing numbers are NaN, missing strings "". */
    CHECK_EQ_INT(read_text(HDR "\n2019-01-01 00:00,,,nan,,,,,,,,,,NaN,,,\n", &c, err,
                           sizeof err, 4096),
                 0);
    CHECK(isnan(c.first.amount) && isnan(c.first.lat) && isnan(c.first.population_city));
    CHECK(isnan(c.first.post_code) && isnan(c.first.merchant_lon));
    CHECK_EQ_STR(c.first.merch, "");

    /* Every error kind, with line, column and field. */
    static const struct {
        const char *in, *want;
    } bad[] = {
        {"", "line 1: no header row (empty input)"},
        {"transaction_time,merch\n", "line 1: missing column \"cat_id\" and 14 more: "
         "\"amount\", \"name_1\", \"name_2\", \"gender\", \"street\", \"one_city\", "
         "\"us_state\", \"post_code\", \"lat\", \"lon\", \"population_city\", \"jobs\", "
         "\"merchant_lat\", \"merchant_lon\""},
        {HDR ",amount\n", "line 1, column 18: column \"amount\" appears twice"},
        {HDR ",target,target\n", "line 1, column 19: column \"target\" appears twice"},
        {HDR "\n" ROW ",extra\n", "line 2: expected 17 fields, got 18"},
        {HDR "\n2019-01-01 00:00,m\n", "line 2: expected 17 fields, got 2"},
        {HDR "\n" ROW "\n2019-01-01 00:00,m,c,abc,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 3, column 4: amount: not a number: \"abc\""},
        {HDR "\n2019-01-01 00:00,m,c,-1,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 2, column 4: amount: negative value -1"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,91,1,1,j,1,1\n",
         "line 2, column 12: lat: latitude 91 outside [-90, 90]"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,-180.5,1,j,1,1\n",
         "line 2, column 13: lon: longitude -180.5 outside [-180, 180]"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,-90.01,1\n",
         "line 2, column 16: merchant_lat: latitude -90.010000000000005 outside [-90, 90]"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,200\n",
         "line 2, column 17: merchant_lon: longitude 200 outside [-180, 180]"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,-5,j,1,1\n",
         "line 2, column 14: population_city: negative value -5"},
        {HDR "\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,0x1F,1,1,1,j,1,1\n",
         "line 2, column 11: post_code: not a number: \"0x1F\""},
        {HDR "\n2019-01-01 00:00,m,c,inf,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 2, column 4: amount: not a number: \"inf\""},
        {HDR "\n2019-02-29 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 2, column 1: transaction_time: not a valid time \"YYYY-MM-DD HH:MM[:SS]\": "
         "\"2019-02-29 00:00\""},
        {HDR "\n,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 2, column 1: transaction_time: missing (required)"},
        {HDR "\n2019-01-01 00:00,m\xff,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "line 2, column 2: merch: not valid UTF-8 text (or contains a NUL byte)"},
        {HDR ",target\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1,2\n",
         "line 2, column 18: target: expected 0 or 1, got \"2\""},
        {HDR ",target\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1,\n",
         "line 2, column 18: target: expected 0 or 1, got \"\""},
        {HDR ",transaction_id\n2019-01-01 00:00,m,c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1,\"a\tb\"\n",
         "line 2, column 18: transaction_id: expected 1..128 printable ASCII characters"},
        {HDR "\n" ROW "\n\"2019-01-01 00:00,m\n", "line 3, column 1: quoted field not "
                                                 "closed at end of input"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = read_text(bad[i].in, &c, err, sizeof err, 4096);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_STR(err, bad[i].want);
        /* Same error byte by byte. */
        rc = read_text(bad[i].in, &c, err, sizeof err, 1);
        CHECK_EQ_INT(rc, -1);
        CHECK_EQ_STR(err, bad[i].want);
    }
    /* Record text overflow is an error, never a truncation. */
    {
        static char big[8192];
        size_t o = (size_t)snprintf(big, sizeof big, "%s\n2019-01-01 00:00,", HDR);
        for (int i = 0; i < 2100; i++)
            big[o++] = 'm';
        snprintf(big + o, sizeof big - o, ",c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1\n");
        CHECK_EQ_INT(read_text(big, &c, err, sizeof err, 4096), -1);
        CHECK_EQ_STR(err, "line 2, column 2: merch: record text longer than 2048 bytes");
    }
}

/* ---- the reader with a name and a bad-row callback (fraudctl fit/features/score) ---- */

typedef struct {
    int rows, bad, stop_bad; /* stop_bad: on_bad's return value */
    size_t line[8], bad_row, bad_line;
    char id[8][32];
    char msg[512];
} named_log;

static int named_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    named_log *l = opaque;
    if (l->rows < 8) {
        l->line[l->rows] = row->line;
        snprintf(l->id[l->rows], sizeof l->id[0], "%s", t->transaction_id);
    }
    l->rows++;
    return 0;
}

static int named_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    named_log *l = opaque;
    l->bad++;
    l->bad_row = row->index - 1;
    l->bad_line = row->line;
    snprintf(l->msg, sizeof l->msg, "%s", msg);
    return l->stop_bad;
}

static int failing_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    (void)t;
    (void)row;
    (void)opaque;
    return -1;
}

/* Reads text[0..len) (it may hold NUL bytes) through a reader named "in.csv". */
static int read_named(const char *text, size_t len, int with_bad, named_log *l, size_t chunk,
                      char *err, size_t errsz)
{
    int stop_bad = l->stop_bad;
    memset(l, 0, sizeof *l);
    l->stop_bad = stop_bad;
    fs_txn_reader *r = fs_txn_reader_new(named_row, l);
    CHECK(r != NULL);
    fs_txn_reader_set_name(r, "in.csv");
    fs_txn_reader_set_bad(r, with_bad ? named_bad : NULL);
    return feed_reader(r, text, len, chunk, err, errsz);
}

#define IDROW(id, amount)                                                                   \
    "2019-01-01 00:00,m,c," amount ",a,b,F,s,c,NC,1,1,1,1,j,1,1," id "\n"

static void test_named_reader(void)
{
    named_log l = {0};
    char err[1024];
    /* Errors say name:line:column (name:line for the whole line), same whole or byte by byte. */
    static const struct {
        const char *in, *want;
    } bad[] = {
        {"", "in.csv:1: no header row (empty input)"},
        {"transaction_time,merch\n", "in.csv:1: missing column \"cat_id\" and 14 more: "
         "\"amount\", \"name_1\", \"name_2\", \"gender\", \"street\", \"one_city\", "
         "\"us_state\", \"post_code\", \"lat\", \"lon\", \"population_city\", \"jobs\", "
         "\"merchant_lat\", \"merchant_lon\""},
        {HDR ",amount\n", "in.csv:1:18: column \"amount\" appears twice"},
        {HDR "\n2019-01-01 00:00,m\n", "in.csv:2: expected 17 fields, got 2"},
        {HDR "\n" ROW "\n2019-01-01 00:00,m,c,abc,a,b,F,s,c,NC,1,1,1,1,j,1,1\n",
         "in.csv:3:4: amount: not a number: \"abc\""},
        {HDR "\n" ROW "\n\"2019-01-01 00:00,m\n",
         "in.csv:3:1: quoted field not closed at end of input"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t chunk = 1; chunk <= 4096; chunk *= 4096) {
            CHECK_EQ_INT(read_named(bad[i].in, strlen(bad[i].in), 0, &l, chunk, err, sizeof err),
                         -1);
            CHECK_EQ_STR(err, bad[i].want);
        }
    }

    /* A transaction_id with a NUL byte is an invalid row, not the id cut at the NUL. */
    static const char nul_id[] = HDR ",transaction_id\n" IDROW("ok-1", "1") IDROW("ab\0cd", "2")
        IDROW("ok-3", "3");
    CHECK_EQ_INT(read_named(nul_id, sizeof nul_id - 1, 0, &l, 4096, err, sizeof err), -1);
    CHECK_EQ_STR(err, "in.csv:3:18: transaction_id: expected 1..128 printable ASCII characters");
    CHECK_EQ_INT(l.rows, 1);
    /* With a bad-row callback: reported with its row and line, skipped, the rest read. */
    CHECK_EQ_INT(read_named(nul_id, sizeof nul_id - 1, 1, &l, 4096, err, sizeof err), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_INT(l.bad, 1);
    CHECK_EQ_INT(l.bad_row, 1);
    CHECK_EQ_INT(l.bad_line, 3);
    CHECK_EQ_STR(l.msg, "in.csv:3:18: transaction_id: expected 1..128 printable ASCII "
                        "characters");
    CHECK_EQ_STR(l.id[0], "ok-1");
    CHECK_EQ_STR(l.id[1], "ok-3");
    CHECK_EQ_INT(l.line[1], 4);

    /* Several bad rows of different kinds, byte by byte: each reported, none delivered. */
    static const char mixed[] = HDR ",transaction_id\n" IDROW("a", "x") IDROW("b", "1")
        "2019-01-01 00:00,m\n" IDROW("c", "-1") IDROW("d", "2");
    CHECK_EQ_INT(read_named(mixed, sizeof mixed - 1, 1, &l, 1, err, sizeof err), 0);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_INT(l.bad, 3);
    CHECK_EQ_STR(l.id[0], "b");
    CHECK_EQ_STR(l.id[1], "d");
    CHECK_EQ_STR(l.msg, "in.csv:5:4: amount: negative value -1");

    /* on_bad stops the read with its value; a bad header is fatal even with on_bad. */
    l.stop_bad = 7;
    CHECK_EQ_INT(read_named(mixed, sizeof mixed - 1, 1, &l, 4096, err, sizeof err), 7);
    CHECK_EQ_INT(l.rows, 0);
    CHECK_EQ_INT(l.bad, 1);
    l.stop_bad = 0;
    CHECK_EQ_INT(read_named("transaction_time\n", 17, 1, &l, 4096, err, sizeof err), -1);
    CHECK(strncmp(err, "in.csv:1: missing column \"merch\" and 15 more: \"cat_id\"", 50) == 0);
    CHECK_EQ_INT(l.bad, 0);

    /* A 5000-byte cell (under the reader's cap, over a record's text) is an invalid row that
     * on_bad skips, not the end of the input. */
    {
        static char big[8192];
        size_t o = (size_t)snprintf(big, sizeof big, "%s,transaction_id\n%s2019-01-01 00:00,",
                                    HDR, IDROW("a", "1"));
        for (int i = 0; i < 5000; i++)
            big[o++] = 'm';
        snprintf(big + o, sizeof big - o, ",c,1,a,b,F,s,c,NC,1,1,1,1,j,1,1,b\n%s",
                 IDROW("c", "1"));
        CHECK_EQ_INT(read_named(big, strlen(big), 1, &l, 4096, err, sizeof err), 0);
        CHECK_EQ_INT(l.rows, 2);
        CHECK_EQ_INT(l.bad, 1);
        CHECK_EQ_STR(l.msg, "in.csv:3:2: merch: record text longer than 2048 bytes");
    }

    /* A failing (negative) row callback is reported as such, not as a CSV error. */
    {
        fs_txn_reader *r = fs_txn_reader_new(failing_row, NULL);
        CHECK(r != NULL);
        fs_txn_reader_set_name(r, "in.csv");
        CHECK_EQ_INT(fs_txn_reader_feed(r, nul_id, sizeof nul_id - 1), -1);
        CHECK_EQ_STR(fs_txn_reader_error(r), "in.csv:2: the row callback failed");
        fs_txn_reader_free(r);
    }

    /* fs_txn_read_file: the same from a FILE *. */
    FILE *f = fmemopen((void *)mixed, sizeof mixed - 1, "rb");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(fs_txn_read_file(f, "m.csv", named_row, named_bad, &l, err, sizeof err), 0);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_INT(l.bad, 3);
    rewind(f);
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(fs_txn_read_file(f, "m.csv", named_row, NULL, &l, err, sizeof err), -1);
    CHECK_EQ_STR(err, "m.csv:2:4: amount: not a number: \"x\"");
    fclose(f);
}

static void test_json(void)
{
    char err[256];
    fs_txn t, u;
    json_error_t je;
    json_t *d = json_loads("{\"transaction_time\":\"2019-01-01 00:00:18\",\"merch\":\"M\","
                           "\"cat_id\":\"home\",\"amount\":\"12.5\",\"name_1\":\"A\","
                           "\"name_2\":null,\"gender\":\"F\",\"street\":\"S\","
                           "\"one_city\":\"C\",\"us_state\":\"TX\",\"post_code\":75001,"
                           "\"lat\":32.9,\"lon\":-96.8,\"population_city\":\"1000\","
                           "\"jobs\":\"J\",\"merchant_lat\":33,\"extra\":[1]}",
                           0, &je);
    CHECK(d != NULL);
    CHECK_EQ_INT(fs_txn_from_json(&t, d, err, sizeof err), 0);
    CHECK_EQ_INT(t.time, 1546300818);
    CHECK_EQ_BITS(t.amount, 12.5);
    CHECK_EQ_BITS(t.post_code, 75001.0);
    CHECK_EQ_BITS(t.population_city, 1000.0);
    CHECK_EQ_BITS(t.merchant_lat, 33.0);
    CHECK(isnan(t.merchant_lon));
    CHECK_EQ_STR(t.name_2, "");
    /* to_json -> from_json gives the same record; copies survive the original. */
    json_t *back = fs_txn_to_json(&t);
    CHECK(back != NULL);
    CHECK(json_is_null(json_object_get(back, "merchant_lon")));
    CHECK(json_is_integer(json_object_get(back, "post_code")));
    CHECK(json_is_real(json_object_get(back, "amount")));
    CHECK_EQ_INT(fs_txn_from_json(&u, back, err, sizeof err), 0);
    CHECK_EQ_INT(u.time, t.time);
    CHECK_EQ_BITS(u.amount, t.amount);
    CHECK_EQ_BITS(u.lat, t.lat);
    CHECK_EQ_STR(u.cat_id, t.cat_id);
    fs_txn c;
    fs_txn_copy(&c, &u);
    memset(&u, 0x55, sizeof u);
    CHECK_EQ_STR(c.cat_id, "home");
    CHECK_EQ_STR(c.transaction_time, "2019-01-01 00:00:18");
    CHECK(c.cat_id >= c.text && c.cat_id < c.text + sizeof c.text);
    json_decref(back);

    /* Type errors name the field. */
    static const struct {
        const char *set, *want;
    } bad[] = {
        {"{\"amount\":true}", "data.amount: expected a number or a numeric string, got a boolean"},
        {"{\"amount\":\"1 \"}", "data.amount: not a number: \"1 \""},
        {"{\"lat\":95}", "data.lat: latitude 95 outside [-90, 90]"},
        {"{\"merch\":5}", "data.merch: expected a string, got an integer"},
        {"{\"jobs\":{}}", "data.jobs: expected a string, got an object"},
        {"{\"transaction_time\":null}", "data.transaction_time: missing (required)"},
        {"{\"transaction_time\":1546300800}",
         "data.transaction_time: expected a string, got an integer"},
        {"{\"post_code\":[]}",
         "data.post_code: expected a number or a numeric string, got an array"},
        {"{\"target\":2}", "data.target: expected 0 or 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *patch = json_loads(bad[i].set, 0, &je);
        json_t *copy = json_deep_copy(d);
        CHECK(patch != NULL && copy != NULL);
        json_object_update(copy, patch);
        CHECK_EQ_INT(fs_txn_from_json(&t, copy, err, sizeof err), -1);
        CHECK_EQ_STR(err, bad[i].want);
        json_decref(patch);
        json_decref(copy);
    }
    json_t *arr = json_array();
    CHECK_EQ_INT(fs_txn_from_json(&t, arr, err, sizeof err), -1);
    CHECK_EQ_STR(err, "data: expected an object, got an array");
    json_decref(arr);
    json_decref(d);
}

int main(void)
{
    test_time();
    test_numbers();
    test_fields();
    test_csv_rows();
    test_named_reader();
    test_json();
    return CHECK_DONE();
}
