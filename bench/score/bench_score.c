/*
 * bench_score: how fast `fraudctl score` scores a transactions CSV, against plain parsing of
 * the same bytes in the same run. The file is read into memory first, so the disk is not
 * measured; every stage runs on one thread, best of --repeat runs:
 *   parse     fs_csv only (the baseline: the least any CSV consumer must pay)
 *   records   + header mapping and fs_txn validation (fs_txn_read_file)
 *   stateless + the feature vector with an empty customer profile for every row (what the
 *               pipeline costs without customer state: the baseline of the state's cost)
 *   features  + the feature vector with each customer's profile looked up in a store and
 *               updated (fs_features_customer + fs_features_compute), as scoring does
 *   score1    + the model one row at a time (fs_bundle_score), for comparison
 *   score     fraudctl score's path (fs_bundle_score_csv: model in batches) without output
 *   output    + the output line formatted as fraudctl score writes it, to /dev/null
 * Times are CPU seconds of this process. Prints rows/s per stage and each stage's time
 * relative to the parse baseline.
 *
 *   bench_score --model-dir DIR --input FILE [--repeat N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fs_bundle.h"
#include "fs_csv.h"
#include "fs_features.h"
#include "fs_txn.h"

enum stage { PARSE, RECORDS, STATELESS, FEATURES, SCORE1, SCORE, OUTPUT, NSTAGES };
static const char *const stage_names[NSTAGES] = {"parse",    "records", "stateless", "features",
                                                 "score1",   "score",   "output"};

typedef struct ctx {
    enum stage stage;
    const fs_bundle *bundle;
    fs_profile_store *store; /* per pass */
    double threshold;
    FILE *devnull;
    size_t rows;
    double sink;
} ctx;

static int on_csv_row(const fs_csv_row *row, void *opaque)
{
    ctx *c = opaque;
    c->rows += row->index > 0;
    return 0;
}

static int on_txn(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    ctx *c = opaque;
    double x[FS_FEATURES_N], score;
    char err[256];
    fs_profile blank, *p = &blank;
    (void)row;
    c->rows++;
    if (c->stage == RECORDS) {
        c->sink += t->amount;
        return 0;
    }
    if (c->stage == STATELESS) {
        fs_profile_init(&blank);
    } else {
        p = fs_features_customer(c->store, t, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err);
        if (p == NULL)
            return 1;
    }
    switch (c->stage) {
    case STATELESS:
    case FEATURES:
        if (fs_bundle_features(c->bundle, t, p, x, err, sizeof err) != 0)
            return 1;
        c->sink += x[0];
        break;
    default:
        if (fs_bundle_score(c->bundle, t, p, &score, err, sizeof err) != 0)
            return 1;
        c->sink += score;
        break;
    }
    return 0;
}

static int on_score(size_t row, const char *transaction_id, double score, int flag,
                    void *opaque)
{
    ctx *c = opaque;
    c->rows++;
    if (c->stage == SCORE)
        c->sink += score;
    else
        fprintf(c->devnull, "%zu,%s,%.17g,%d\n", row, transaction_id, score, flag);
    return 0;
}

static int on_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    (void)row;
    (void)opaque;
    fprintf(stderr, "bench_score: invalid row: %s\n", msg);
    return 1;
}

/* One pass of a stage over the buffer; returns seconds, or -1 on error. */
static double run_stage(ctx *c, const char *buf, size_t len)
{
    char err[1024];
    c->rows = 0;
    double t0 = bench_cpu_seconds();
    if (c->stage == PARSE) {
        fs_csv *csv = fs_csv_new(on_csv_row, c, 8192, 256);
        if (csv == NULL || fs_csv_feed(csv, buf, len) != 0 || fs_csv_finish(csv) != 0) {
            fprintf(stderr, "bench_score: parse: %s\n", csv ? fs_csv_error(csv) : "no memory");
            fs_csv_free(csv);
            return -1;
        }
        fs_csv_free(csv);
    } else {
        FILE *in = fmemopen((void *)buf, len, "rb");
        if (in == NULL)
            return -1;
        c->store = fs_profile_store_new(0);
        if (c->store == NULL) {
            fclose(in);
            return -1;
        }
        int rc = c->stage >= SCORE ? fs_bundle_score_csv(c->bundle, c->threshold, in, "input",
                                                         NULL, on_score, on_bad, c, err, sizeof err)
                                   : fs_txn_read_file(in, "input", on_txn, on_bad, c, err,
                                                      sizeof err);
        fclose(in);
        fs_profile_store_free(c->store);
        c->store = NULL;
        if (rc != 0) {
            fprintf(stderr, "bench_score: %s\n", rc < 0 ? err : "stopped");
            return -1;
        }
    }
    return bench_cpu_seconds() - t0;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *input = NULL;
    int repeat = 5, rc = 1;
    char *buf = NULL, err[2048];
    size_t len = 0, cap = 0;
    fs_bundle *bundle = NULL;
    ctx c = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model-dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--input") == 0)
            input = argv[i + 1];
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (dir == NULL || input == NULL || repeat < 1) {
        fprintf(stderr, "usage: bench_score --model-dir DIR --input FILE [--repeat N]\n");
        return 2;
    }
    bundle = fs_bundle_load(dir, err, sizeof err);
    if (bundle == NULL) {
        fprintf(stderr, "bench_score: %s\n", err);
        goto out;
    }
    FILE *f = fopen(input, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_score: %s: cannot open\n", input);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : (1u << 20);
            char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                fclose(f);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    c.bundle = bundle;
    c.threshold = fs_bundle_threshold(bundle);
    c.devnull = fopen("/dev/null", "w");
    if (c.devnull == NULL)
        goto out;
    double best[NSTAGES];
    size_t rows = 0;
    for (int s = 0; s < NSTAGES; s++) {
        c.stage = (enum stage)s;
        best[s] = -1;
        for (int r = 0; r < repeat; r++) {
            double t = run_stage(&c, buf, len);
            if (t < 0)
                goto out;
            if (best[s] < 0 || t < best[s])
                best[s] = t;
        }
        rows = c.rows;
    }
    printf("bench_score: %s, %zu rows, %.1f MB, model %s, best of %d, one thread, CPU time\n", input,
           rows, (double)len / 1e6, dir, repeat);
    printf("%-9s %12s %14s %16s\n", "stage", "cpu seconds", "rows/s", "time vs parse");
    for (int s = 0; s < NSTAGES; s++)
        printf("%-9s %12.3f %14.0f %15.2fx\n", stage_names[s], best[s], (double)rows / best[s],
               best[s] / best[PARSE]);
    printf("score throughput (output stage): %.0f rows/s (target >= 300000)\n",
           (double)rows / best[OUTPUT]);
    /* The same path without customer state: the output stage less what the store lookups
     * and updates add to the feature stage (features - stateless), both measured above. */
    double state_cost = best[FEATURES] - best[STATELESS];
    printf("customer state: %.3f s of %.3f (features %.3f vs stateless %.3f); throughput with "
           "state / without: %.2f (target >= 0.8)\n",
           state_cost, best[OUTPUT], best[FEATURES], best[STATELESS],
           (best[OUTPUT] - state_cost) / best[OUTPUT]);
    rc = 0;
out:
    if (c.devnull != NULL)
        fclose(c.devnull);
    free(buf);
    fs_bundle_free(bundle);
    return rc;
}
