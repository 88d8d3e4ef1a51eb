/*
 * fraudctl features --model-dir DIR --input X.csv [--output FILE] [--with-target]
 *                  [--candidates]
 * fraudctl features --names [--candidates]
 * Writes the feature matrix of a transactions CSV, computed with DIR/stats.json by the same
 * code that scores in production: header = the model's feature names in order, one row per
 * input row, numbers %.17g (they read back bit for bit). --candidates appends the candidate
 * features that are not in the model (for the ablation). Each customer's behaviour features
 * see that customer's earlier rows of the file (file order is taken as time order). With --with-target a last column
 * `target` carries the input's label (-1 when the input has none). Any invalid row stops with
 * file:line:column: the matrix must stay aligned with the input rows. --names only prints
 * the feature names, one per line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_io.h"
#include "fraudctl.h"
#include "fs_features.h"
#include "fs_txn.h"

typedef struct feat_ctx {
    const fs_stats *stats;
    fs_profile_store *store;
    FILE *out;
    const char *name;
    int with_target;
    int n; /* features per row */
    char err[512];
} feat_ctx;

static int feat_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    feat_ctx *c = opaque;
    double x[FS_FEATURES_ALL_N];
    char why[256];
    fs_profile *profile = fs_features_customer(c->store, t, FS_PROFILE_EXPIRY_DEFAULT, why, sizeof why);
    if (profile == NULL || fs_features_compute_all(c->stats, t, profile, x, why, sizeof why) != 0) {
        snprintf(c->err, sizeof c->err, "%s:%zu: %s", c->name, row->line, why);
        return 1;
    }
    for (int i = 0; i < c->n; i++)
        fprintf(c->out, i ? ",%.17g" : "%.17g", x[i]);
    if (c->with_target)
        fprintf(c->out, ",%d", t->target);
    fputc('\n', c->out);
    return 0;
}

static void features_usage(FILE *out)
{
    fprintf(out,
            "usage: fraudctl features --model-dir DIR --input FILE [--output FILE] "
            "[--with-target] [--candidates]\n"
            "       fraudctl features --names [--candidates]\n"
            "  --model-dir DIR  directory holding stats.json (from fraudctl fit)\n"
            "  --input FILE     transactions CSV (- = stdin)\n"
            "  --output FILE    feature matrix CSV (default stdout)\n"
            "  --with-target    append the input's target column (-1 if absent)\n"
            "  --candidates     also the candidate features the model does not use\n"
            "  --names          print the feature names, one per line, and exit\n");
}

int cmd_features(int argc, char **argv)
{
    const char *dir = NULL, *input = NULL, *output = NULL;
    int with_target = 0, candidates = 0, names = 0, rc = FS_EXIT_FAILURE;
    FILE *in = NULL, *out = NULL;
    fs_stats *stats = NULL;
    feat_ctx ctx = {0};
    char err[1024] = "", path[4096];
    static char outbuf[1 << 16];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            features_usage(stdout);
            return FS_EXIT_OK;
        } else if (strcmp(argv[i], "--model-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
            input = argv[++i];
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
            output = argv[++i];
        } else if (strcmp(argv[i], "--with-target") == 0) {
            with_target = 1;
        } else if (strcmp(argv[i], "--candidates") == 0) {
            candidates = 1;
        } else if (strcmp(argv[i], "--names") == 0) {
            names = 1;
        } else {
            fprintf(stderr, "fraudctl features: unknown or incomplete option '%s'\n", argv[i]);
            features_usage(stderr);
            return FS_EXIT_USAGE;
        }
    }
    int n = candidates ? fs_features_all_count() : fs_features_count();
    if (names) {
        for (int i = 0; i < n; i++)
            printf("%s\n", fs_features_all_name(i));
        return fflush(stdout) == 0 ? FS_EXIT_OK : FS_EXIT_FAILURE;
    }
    if (dir == NULL || input == NULL) {
        features_usage(stderr);
        return FS_EXIT_USAGE;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/stats.json", dir) >= sizeof path) {
        fprintf(stderr, "fraudctl features: %s: path too long\n", dir);
        return FS_EXIT_USAGE;
    }
    stats = fs_stats_load(path, err, sizeof err);
    if (stats == NULL) {
        fprintf(stderr, "fraudctl features: %s\n", err);
        goto out;
    }
    in = cli_open_input("features", input);
    if (in == NULL)
        goto out;
    out = cli_open_output("features", output);
    if (out == NULL)
        goto out;
    setvbuf(out, outbuf, _IOFBF, sizeof outbuf);
    for (int i = 0; i < n; i++)
        fprintf(out, i ? ",%s" : "%s", fs_features_all_name(i));
    fputs(with_target ? ",target\n" : "\n", out);
    ctx.stats = stats;
    ctx.store = fs_profile_store_new(0);
    if (ctx.store == NULL) {
        fprintf(stderr, "fraudctl features: out of memory\n");
        goto out;
    }
    ctx.out = out;
    ctx.name = input;
    ctx.with_target = with_target;
    ctx.n = n;
    /* No bad-row callback: the first invalid row stops, the matrix stays row-aligned. */
    int r = fs_txn_read_file(in, cli_name(input, "stdin"), feat_row, NULL, &ctx, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "fraudctl features: %s\n", r > 0 ? ctx.err : err);
        goto out;
    }
    int closed = cli_close_output("features", output, out);
    out = NULL;
    if (closed != 0)
        goto out;
    rc = FS_EXIT_OK;
out:
    cli_close_input(in);
    cli_discard_output(out);
    fs_stats_free(stats);
    fs_profile_store_free(ctx.store);
    return rc;
}
