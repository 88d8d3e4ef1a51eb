/*
 * fraudctl fit --input train.csv --out DIR
 * Learns the feature statistics from a training CSV (streamed, never loaded whole) and writes
 * DIR/stats.json. Any invalid row stops the fit with file:line:column: statistics are not
 * fitted on data that could not be read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_io.h"
#include "fraudctl.h"
#include "fs_features.h"
#include "fs_txn.h"

typedef struct fit_ctx {
    fs_stats_fitter *fitter;
    const char *name;
    char err[512];
} fit_ctx;

static int fit_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    fit_ctx *c = opaque;
    char why[256];
    if (fs_stats_fitter_add(c->fitter, t, why, sizeof why) != 0) {
        snprintf(c->err, sizeof c->err, "%s:%zu: %s", c->name, row->line, why);
        return 1;
    }
    return 0;
}

static void fit_usage(FILE *out)
{
    fprintf(out, "usage: fraudctl fit --input FILE --out DIR\n"
                 "  --input FILE  training CSV (test.csv columns [+ target]; - = stdin)\n"
                 "  --out DIR     where stats.json is written (created if missing)\n");
}

int cmd_fit(int argc, char **argv)
{
    const char *input = NULL, *outdir = NULL;
    int rc = FS_EXIT_FAILURE;
    FILE *in = NULL;
    fs_stats *stats = NULL;
    fit_ctx ctx = {0};
    char err[1024] = "", path[4096];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fit_usage(stdout);
            return FS_EXIT_OK;
        } else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
            input = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            outdir = argv[++i];
        } else {
            fprintf(stderr, "fraudctl fit: unknown or incomplete option '%s'\n", argv[i]);
            fit_usage(stderr);
            return FS_EXIT_USAGE;
        }
    }
    if (input == NULL || outdir == NULL) {
        fit_usage(stderr);
        return FS_EXIT_USAGE;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/stats.json", outdir) >= sizeof path) {
        fprintf(stderr, "fraudctl fit: %s: path too long\n", outdir);
        return FS_EXIT_USAGE;
    }
    in = cli_open_input("fit", input);
    if (in == NULL)
        goto out;
    ctx.fitter = fs_stats_fitter_new();
    ctx.name = input;
    if (ctx.fitter == NULL) {
        fprintf(stderr, "fraudctl fit: out of memory\n");
        goto out;
    }
    /* No bad-row callback: the first invalid row stops the fit. */
    int r = fs_txn_read_file(in, cli_name(input, "stdin"), fit_row, NULL, &ctx, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "fraudctl fit: %s\n", r > 0 ? ctx.err : err);
        goto out;
    }
    stats = fs_stats_fitter_finish(ctx.fitter, err, sizeof err);
    if (stats == NULL) {
        fprintf(stderr, "fraudctl fit: %s: %s\n", input, err);
        goto out;
    }
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "fraudctl fit: %s: cannot create: %s\n", outdir, strerror(errno));
        goto out;
    }
    if (fs_stats_save(stats, path, err, sizeof err) != 0) {
        fprintf(stderr, "fraudctl fit: %s\n", err);
        goto out;
    }
    fprintf(stderr, "fraudctl fit: %lld rows -> %s\n", fs_stats_rows(stats), path);
    rc = FS_EXIT_OK;
out:
    cli_close_input(in);
    fs_stats_free(stats);
    fs_stats_fitter_free(ctx.fitter);
    return rc;
}
