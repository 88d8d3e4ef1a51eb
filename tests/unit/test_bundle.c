/*
 * Unit tests of fs_bundle: a bundle written here by hand (a two-split model on the pipeline's
 * 30 features, statistics fitted on one row, metadata) loads and scores with hand-computed
 * probabilities; bundles whose feature names differ are refused naming them; the threshold
 * and the flag rule.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fs_bundle.h"

static char dir[64];

static const char *names_line =
    "amount lat lon population_city hour log1p_amount log1p_population_city high_amount "
    "cat_id_risk freq_merch freq_name_1 freq_name_2 freq_jobs freq_us_state freq_street "
    "freq_one_city amount_to_cat_median "
    "cust_secs_since_prev cust_cnt_1h cust_amt_1h cust_cnt_24h cust_amt_24h cust_night_24h "
    "cust_big_24h cust_amount_z cust_hour_dist cust_cat_share cust_amount_to_max "
    "cust_spend24_to_daily cust_n_prev";

/* The same with log1p_amount named log_amount. */
static const char *renamed_line =
    "amount lat lon population_city hour log_amount log1p_population_city high_amount "
    "cat_id_risk freq_merch freq_name_1 freq_name_2 freq_jobs freq_us_state freq_street "
    "freq_one_city amount_to_cat_median "
    "cust_secs_since_prev cust_cnt_1h cust_amt_1h cust_cnt_24h cust_amt_24h cust_night_24h "
    "cust_big_24h cust_amount_z cust_hour_dist cust_cat_share cust_amount_to_max "
    "cust_spend24_to_daily cust_n_prev";

/* One tree: node 0 splits amount_to_cat_median (16) <= 1.5: left leaf 0 = -2; right node 1
 * splits amount (0) <= 100: leaf 1 = 0.5, leaf 2 = 3. The statistics are fitted on one
 * travel row of amount 10, so the travel median is 10. */
static void write_model(const char *names, int max_feature_idx, int split_feature)
{
    char path[128];
    snprintf(path, sizeof path, "%s/model.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fprintf(f,
            "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
            "max_feature_idx=%d\nobjective=binary sigmoid:1\nfeature_names=%s\n"
            "tree_sizes=1\n\n"
            "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=%d 0\nsplit_gain=1 1\n"
            "threshold=1.5 100\ndecision_type=2 2\nleft_child=-1 -2\nright_child=1 -3\n"
            "leaf_value=-2 0.5 3\nleaf_weight=1 1 1\nleaf_count=1 1 1\n"
            "internal_value=0 0\ninternal_weight=0 0\ninternal_count=3 2\nis_linear=0\n"
            "shrinkage=1\n\n\nend of trees\n",
            max_feature_idx, names, split_feature);
    fclose(f);
}

static void write_text(const char *file, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs(text, f);
    fclose(f);
}

/* metadata.json with the names given as a JSON array body. */
static void write_metadata(const char *names_json, const char *extra)
{
    char text[2048];
    snprintf(text, sizeof text, "{\"feature_names\": [%s]%s}\n", names_json, extra);
    write_text("metadata.json", text);
}

static const char *names_json =
    "\"amount\",\"lat\",\"lon\",\"population_city\",\"hour\",\"log1p_amount\","
    "\"log1p_population_city\",\"high_amount\",\"cat_id_risk\",\"freq_merch\","
    "\"freq_name_1\",\"freq_name_2\",\"freq_jobs\",\"freq_us_state\",\"freq_street\","
    "\"freq_one_city\",\"amount_to_cat_median\",\"cust_secs_since_prev\",\"cust_cnt_1h\","
    "\"cust_amt_1h\",\"cust_cnt_24h\",\"cust_amt_24h\",\"cust_night_24h\",\"cust_big_24h\","
    "\"cust_amount_z\",\"cust_hour_dist\",\"cust_cat_share\",\"cust_amount_to_max\","
    "\"cust_spend24_to_daily\",\"cust_n_prev\"";

static fs_txn txn;

/* An empty customer profile: these tests score single rows. */
static fs_profile *blank(void)
{
    static fs_profile p;
    fs_profile_init(&p);
    return &p;
}

static int make_txn(const char *time, const char *amount)
{
    const char *v[FS_TXN_NFIELDS] = {time,    "m",         "travel", amount, "Ann",
                                     "Smith", "F",         "1 Main", "City", "IL",
                                     "62701", "40",        "-90",    "1000", "Engineer",
                                     "40.5",  "-90.5"};
    size_t len[FS_TXN_NFIELDS];
    char err[256];
    int bad;
    for (int i = 0; i < FS_TXN_NFIELDS; i++)
        len[i] = strlen(v[i]);
    return fs_txn_from_strings(&txn, v, len, NULL, NULL, &bad, err, sizeof err);
}

static void write_stats(void)
{
    char err[256], path[128];
    fs_stats_fitter *f = fs_stats_fitter_new();
    CHECK_EQ_INT(make_txn("2019-01-07 12:00", "10"), 0);
    CHECK_EQ_INT(fs_stats_fitter_add(f, &txn, err, sizeof err), 0);
    fs_stats *s = fs_stats_fitter_finish(f, err, sizeof err);
    CHECK(s != NULL);
    snprintf(path, sizeof path, "%s/stats.json", dir);
    CHECK_EQ_INT(fs_stats_save(s, path, err, sizeof err), 0);
    fs_stats_free(s);
    fs_stats_fitter_free(f);
}

static void test_good_bundle(void)
{
    char err[2048] = "";
    write_model(names_line, 29, 16);
    write_metadata(names_json, ", \"threshold\": 0.9");
    fs_bundle *b = fs_bundle_load(dir, err, sizeof err);
    if (b == NULL) {
        fprintf(stderr, "load: %s\n", err);
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(fs_bundle_num_features(b), 30);
    CHECK_EQ_STR(fs_bundle_feature_name(b, 16), "amount_to_cat_median");
    CHECK(fs_bundle_stats(b) != NULL);
    CHECK(fs_bundle_model(b) != NULL);
    CHECK_EQ_BITS(fs_bundle_threshold(b), 0.9);

    double score, x[FS_FEATURES_N];
    /* 12 / 10 = 1.2 <= 1.5: leaf -2. */
    CHECK_EQ_INT(make_txn("2019-01-07 12:00", "12"), 0);
    CHECK_EQ_INT(fs_bundle_score(b, &txn, blank(), &score, err, sizeof err), 0);
    CHECK_NEAR(score, 1.0 / (1.0 + exp(2.0)), 1e-15);
    CHECK_EQ_INT(fs_bundle_flag(score, fs_bundle_threshold(b)), 0);
    /* 50 / 10 = 5 > 1.5, amount 50 <= 100: leaf 0.5. */
    CHECK_EQ_INT(make_txn("2019-01-07 23:00", "50"), 0);
    CHECK_EQ_INT(fs_bundle_score(b, &txn, blank(), &score, err, sizeof err), 0);
    CHECK_NEAR(score, 1.0 / (1.0 + exp(-0.5)), 1e-15);
    /* Amount 500: leaf 3 -> 0.9526 >= 0.9: flagged. */
    CHECK_EQ_INT(make_txn("2019-01-08 02:00", "500"), 0);
    CHECK_EQ_INT(fs_bundle_score(b, &txn, blank(), &score, err, sizeof err), 0);
    CHECK_NEAR(score, 1.0 / (1.0 + exp(-3.0)), 1e-15);
    CHECK_EQ_INT(fs_bundle_flag(score, fs_bundle_threshold(b)), 1);
    CHECK_EQ_INT(fs_bundle_features(b, &txn, blank(), x, err, sizeof err), 0);
    CHECK_EQ_BITS(x[16], 50.0);
    CHECK_EQ_BITS(x[0], 500.0);
    fs_bundle_free(b);

    /* No threshold in the metadata: 0.95. */
    write_metadata(names_json, "");
    b = fs_bundle_load(dir, err, sizeof err);
    CHECK(b != NULL);
    if (b != NULL)
        CHECK_EQ_BITS(fs_bundle_threshold(b), 0.95);
    fs_bundle_free(b);
}

typedef struct csv_log {
    int rows, bad;
    size_t row[8];
    double score[8];
    int flag[8];
    char id[8][16];
} csv_log;

static int on_score(size_t row, const char *id, double score, int flag, void *opaque)
{
    csv_log *l = opaque;
    if (l->rows < 8) {
        l->row[l->rows] = row;
        l->score[l->rows] = score;
        l->flag[l->rows] = flag;
        snprintf(l->id[l->rows], sizeof l->id[0], "%s", id);
    }
    l->rows++;
    return 0;
}

static int on_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    csv_log *l = opaque; /* must be the caller's pointer, not an internal one */
    CHECK_EQ_INT(row->index - 1, 1);
    CHECK_EQ_INT(row->line, 3);
    CHECK(strstr(msg, "t.csv:3:5: amount: not a number") != NULL);
    l->bad++;
    return 0;
}

/* fraudctl score's path: rows in order with ids, the bad row reported to the caller's on_bad,
 * scores equal to one-row scoring. */
static void test_score_csv(void)
{
    char err[2048] = "";
    write_model(names_line, 29, 16);
    write_metadata(names_json, "");
    fs_bundle *b = fs_bundle_load(dir, err, sizeof err);
    CHECK(b != NULL);
    if (b == NULL)
        return;
    static const char csv[] =
        "transaction_id,transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,"
        "one_city,us_state,post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon\n"
        "a,2019-01-07 12:00,m,travel,12,Ann,Smith,F,1 Main,City,IL,62701,40,-90,1000,E,40,-90\n"
        "b,2019-01-07 12:00,m,travel,x,Ann,Smith,F,1 Main,City,IL,62701,40,-90,1000,E,40,-90\n"
        "c,2019-01-07 12:00,m,travel,500,Ann,Smith,F,1 Main,City,IL,62701,40,-90,1000,E,40,-90\n";
    FILE *in = fmemopen((void *)csv, sizeof csv - 1, "rb");
    csv_log l;
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(fs_bundle_score_csv(b, 0.95, in, "t.csv", NULL, on_score, on_bad, &l, err, sizeof err),
                 0);
    fclose(in);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_EQ_INT(l.bad, 1);
    CHECK_EQ_INT(l.row[0], 0);
    CHECK_EQ_INT(l.row[1], 2);
    CHECK_EQ_STR(l.id[0], "a");
    CHECK_EQ_STR(l.id[1], "c");
    CHECK_NEAR(l.score[0], 1.0 / (1.0 + exp(2.0)), 1e-15);
    CHECK_NEAR(l.score[1], 1.0 / (1.0 + exp(-3.0)), 1e-15);
    CHECK_EQ_INT(l.flag[0], 0);
    CHECK_EQ_INT(l.flag[1], 1);
    /* Without on_bad the bad row is the error, with its line and column. */
    in = fmemopen((void *)csv, sizeof csv - 1, "rb");
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(fs_bundle_score_csv(b, 0.95, in, "t.csv", NULL, on_score, NULL, &l, err, sizeof err),
                 -1);
    fclose(in);
    CHECK(strstr(err, "t.csv:3:5: amount") != NULL);
    fs_bundle_free(b);
}

typedef struct store_cmp {
    const fs_profile_store *other;
    int seen, differ;
} store_cmp;

static int same_record(const char *key, size_t len, const fs_profile *p, void *opaque)
{
    store_cmp *c = opaque;
    const fs_profile *q = fs_profile_store_find(c->other, key, len);
    c->seen++;
    if (q == NULL || memcmp(p, q, sizeof *p) != 0) {
        fprintf(stderr, "customer %.*s: state differs\n", (int)len, key);
        c->differ++;
    }
    return 0;
}

/* The behaviour features through fraudctl score's path: a model splitting on cust_n_prev
 * (29) <= 1.5 scores a customer's third row differently from its first two, whatever other
 * customers come between; a store passed in keeps every customer's final state, the same
 * record as stepping each customer's rows alone; a second file continues that history. */
static void test_score_csv_profiles(void)
{
    char err[2048] = "";
    write_model(names_line, 29, 29);
    write_metadata(names_json, "");
    fs_bundle *b = fs_bundle_load(dir, err, sizeof err);
    CHECK(b != NULL);
    if (b == NULL)
        return;
#define PROF_HEADER                                                                         \
    "transaction_id,transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,"       \
    "one_city,us_state,post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon\n"
#define PROF_ROW(id, time, amount, name)                                                    \
    id "," time ",m,travel," amount "," name ",Smith,F,1 Main,City,IL,62701,40,-90,1000,E,40,-90\n"
    static const char csv[] = PROF_HEADER PROF_ROW("a1", "2019-01-07 12:00", "12", "Ann")
        PROF_ROW("b1", "2019-01-07 12:01", "12", "Bob") PROF_ROW("a2", "2019-01-07 12:02", "20",
                                                                 "Ann")
            PROF_ROW("b2", "2019-01-07 12:03", "500", "Bob")
                PROF_ROW("a3", "2019-01-07 12:04", "500", "Ann")
                    PROF_ROW("c1", "2019-01-07 12:05", "7", "Cid");
    fs_profile_store *store = fs_profile_store_new(0);
    CHECK(store != NULL);
    if (store == NULL) {
        fs_bundle_free(b);
        return;
    }
    FILE *in = fmemopen((void *)csv, sizeof csv - 1, "rb");
    csv_log l;
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(
        fs_bundle_score_csv(b, 0.95, in, "p.csv", store, on_score, NULL, &l, err, sizeof err), 0);
    fclose(in);
    CHECK_EQ_INT(l.rows, 6);
    double left = 1.0 / (1.0 + exp(2.0)), far = 1.0 / (1.0 + exp(-3.0));
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(l.score[i], i == 4 ? far : left, 1e-15); /* only a3 has 2 earlier rows */
    CHECK_EQ_INT(fs_profile_store_count(store), 3);

    /* The same state, customer by customer, from fs_features_compute on each one's rows. */
    fs_profile_store *ref = fs_profile_store_new(0);
    CHECK(ref != NULL);
    const struct {
        const char *time, *amount, *name;
    } rows[] = {{"2019-01-07 12:00", "12", "Ann"}, {"2019-01-07 12:02", "20", "Ann"},
                {"2019-01-07 12:04", "500", "Ann"}, {"2019-01-07 12:01", "12", "Bob"},
                {"2019-01-07 12:03", "500", "Bob"}, {"2019-01-07 12:05", "7", "Cid"}};
    for (size_t i = 0; ref != NULL && i < sizeof rows / sizeof rows[0]; i++) {
        const char *v[FS_TXN_NFIELDS] = {rows[i].time, "m",     "travel", rows[i].amount,
                                         rows[i].name, "Smith", "F",      "1 Main",
                                         "City",       "IL",    "62701",  "40",
                                         "-90",        "1000",  "E",      "40",
                                         "-90"};
        size_t len[FS_TXN_NFIELDS];
        int bad;
        double x[FS_FEATURES_N];
        for (int k = 0; k < FS_TXN_NFIELDS; k++)
            len[k] = strlen(v[k]);
        CHECK_EQ_INT(fs_txn_from_strings(&txn, v, len, NULL, NULL, &bad, err, sizeof err), 0);
        fs_profile *p =
            fs_features_customer(ref, &txn, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err);
        CHECK(p != NULL);
        if (p != NULL)
            CHECK_EQ_INT(fs_bundle_features(b, &txn, p, x, err, sizeof err), 0);
    }
    if (ref != NULL) {
        store_cmp c = {ref, 0, 0};
        CHECK_EQ_INT(fs_profile_store_each(store, same_record, &c), 0);
        CHECK_EQ_INT(c.seen, 3);
        CHECK_EQ_INT(c.differ, 0);
        const fs_profile *ann = fs_profile_store_find(store, "Ann|Smith|1 Main|62701", 22);
        CHECK(ann != NULL);
        if (ann != NULL)
            CHECK_EQ_INT(ann->n, 3);
    }
    fs_profile_store_free(ref);

    /* A second file with the same store: Bob's third row has two earlier ones. */
    static const char more[] = PROF_HEADER PROF_ROW("b3", "2019-01-07 13:00", "12", "Bob")
        PROF_ROW("d1", "2019-01-07 13:00", "12", "Dan");
    in = fmemopen((void *)more, sizeof more - 1, "rb");
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(
        fs_bundle_score_csv(b, 0.95, in, "q.csv", store, on_score, NULL, &l, err, sizeof err),
        0);
    fclose(in);
    CHECK_EQ_INT(l.rows, 2);
    CHECK_NEAR(l.score[0], 1.0 / (1.0 + exp(-0.5)), 1e-15); /* n_prev 2, amount 12 <= 100 */
    CHECK_NEAR(l.score[1], left, 1e-15);
    CHECK_EQ_INT(fs_profile_store_count(store), 4);
    /* Without a store each call starts afresh: Bob's row is a first one again. */
    in = fmemopen((void *)more, sizeof more - 1, "rb");
    memset(&l, 0, sizeof l);
    CHECK_EQ_INT(
        fs_bundle_score_csv(b, 0.95, in, "q.csv", NULL, on_score, NULL, &l, err, sizeof err), 0);
    fclose(in);
    CHECK_NEAR(l.score[0], left, 1e-15);
    fs_profile_store_free(store);
    fs_bundle_free(b);
#undef PROF_ROW
#undef PROF_HEADER
}

static void test_flag_rule(void)
{
    CHECK_EQ_INT(fs_bundle_flag(0.95, 0.95), 1);
    CHECK_EQ_INT(fs_bundle_flag(nextafter(0.95, 0.0), 0.95), 0);
    CHECK_EQ_INT(fs_bundle_flag(1.0, 0.95), 1);
    CHECK_EQ_INT(fs_bundle_flag(0.0, 0.0), 1);
}

static void expect_refused(const char *what, const char *n1, const char *n2)
{
    char err[2048] = "";
    fs_bundle *b = fs_bundle_load(dir, err, sizeof err);
    CHECK(b == NULL);
    fs_bundle_free(b);
    const char *needles[] = {what, n1, n2};
    for (int i = 0; i < 3; i++) {
        if (needles[i] != NULL && strstr(err, needles[i]) == NULL) {
            fprintf(stderr, "expected '%s' in: %s\n", needles[i], err);
            CHECK(0);
        }
    }
}

static void test_mismatches(void)
{
    /* The model names log1p_amount "log_amount": refused, naming both. */
    write_metadata(names_json, "");
    write_model(renamed_line, 29, 16);
    expect_refused("model.txt", "'log_amount' != 'log1p_amount'", "missing: log1p_amount");
    /* Twenty-nine features: the last behaviour feature missing. */
    char shorter[1024];
    snprintf(shorter, sizeof shorter, "%s", names_line);
    *strrchr(shorter, ' ') = '\0';
    write_model(shorter, 28, 16);
    expect_refused("model.txt", "(29 vs 30)", "cust_n_prev");
    write_model(names_line, 29, 16);
    /* Metadata with two names swapped. */
    char swapped[2048];
    snprintf(swapped, sizeof swapped, "\"lat\",\"amount\"%s", strstr(names_json, ",\"lon\""));
    write_metadata(swapped, "");
    expect_refused("metadata.json", "'lat' != 'amount'", "'amount' != 'lat'");
    /* Bad threshold, missing files. */
    write_metadata(names_json, ", \"threshold\": 1.5");
    expect_refused("threshold", NULL, NULL);
    write_metadata(names_json, "");
    char path[128], moved[128];
    snprintf(path, sizeof path, "%s/stats.json", dir);
    snprintf(moved, sizeof moved, "%s/stats.json.away", dir);
    rename(path, moved);
    expect_refused("stats.json: cannot open", NULL, NULL);
    rename(moved, path);
    snprintf(path, sizeof path, "%s/metadata.json", dir);
    remove(path);
    expect_refused("metadata.json: cannot open", NULL, NULL);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_bundle.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    write_stats();
    test_good_bundle();
    test_flag_rule();
    test_score_csv();
    test_score_csv_profiles();
    test_mismatches();
    const char *files[] = {"model.txt", "stats.json", "metadata.json"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    rmdir(dir);
    return CHECK_DONE();
}
