/*
 * fraudctl predict: evaluates a LightGBM model.txt on a CSV of features.
 *
 *   fraudctl predict --model FILE [--raw] [--contrib] [--input FILE] [--output FILE]
 *                    [--start-iteration N] [--num-iteration N] [--row-by-row]
 *
 * The CSV's header row names the columns; each model feature is matched by name (a model
 * feature missing from the header is an error; extra columns are ignored). An empty cell or
 * `nan` (any case) is NaN. One output line per input row: the prediction with %.17g,
 * comma-separated per class for multiclass, and with --contrib per feature plus the bias
 * column, per class, in LightGBM's order (pred_contrib=True).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_io.h"
#include "fraudctl.h"
#include "fs_csv.h"
#include "fs_model.h"

#define PREDICT_BLOCK 256
/* Longest cell accepted in a model-feature column. */
#define PREDICT_MAX_CELL 4096
/* Caps of the CSV reader: any field, fields per row. */
#define PREDICT_MAX_FIELD (1u << 20)
#define PREDICT_MAX_FIELDS 65536

typedef struct predict_ctx {
    const fs_model *model;
    FILE *out;
    int raw, contrib, row_by_row;
    fs_predict_opts opts;
    int nf, nout;

    int *col_to_feat;  /* header column -> model feature, or -1 to ignore */
    size_t ncols;
    char **names;      /* header names */

    double *x;         /* PREDICT_BLOCK * nf */
    size_t nrows;      /* rows in the block */
    double *y;         /* PREDICT_BLOCK * nout, or one contrib row */

    int failed;
    char err[512];
} predict_ctx;

/* Records the first failure; later ones are consequences of it. */
static void fail(predict_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(predict_ctx *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static int parse_cell(const char *s, size_t len, double *out)
{
    if (len == 0) {
        *out = NAN;
        return 0;
    }
    if (len == 3 && strncasecmp(s, "nan", 3) == 0) {
        *out = NAN;
        return 0;
    }
    if (len > PREDICT_MAX_CELL)
        return -1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || (size_t)(end - s) != len)
        return -1;
    *out = v;
    return 0;
}

static int print_values(FILE *out, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fprintf(out, i ? ",%.17g" : "%.17g", v[i]) < 0)
            return -1;
    return fputc('\n', out) == EOF ? -1 : 0;
}

static void flush_block(predict_ctx *c)
{
    if (c->failed || c->nrows == 0)
        return;
    size_t nf = (size_t)c->nf, nout = (size_t)c->nout;
    if (c->contrib) {
        for (size_t r = 0; r < c->nrows; r++) {
            if (fs_model_predict_contrib(c->model, c->x + r * nf, c->y, &c->opts) != 0) {
                fail(c, "contributions: out of memory or a tree too deep");
                return;
            }
            if (print_values(c->out, c->y, nout * (nf + 1)) != 0) {
                fail(c, "write error on the output");
                return;
            }
        }
    } else if (c->row_by_row) {
        for (size_t r = 0; r < c->nrows; r++) {
            if (c->raw)
                fs_model_predict_raw(c->model, c->x + r * nf, c->y + r * nout, &c->opts);
            else
                fs_model_predict(c->model, c->x + r * nf, c->y + r * nout, &c->opts);
        }
    } else {
        if (c->raw)
            fs_model_predict_raw_batch(c->model, c->x, c->nrows, c->y, &c->opts);
        else
            fs_model_predict_batch(c->model, c->x, c->nrows, c->y, &c->opts);
    }
    if (!c->contrib) {
        for (size_t r = 0; r < c->nrows; r++)
            if (print_values(c->out, c->y + r * nout, nout) != 0) {
                fail(c, "write error on the output");
                return;
            }
    }
    c->nrows = 0;
}

/* The header row: every model feature must be named exactly once. */
static int on_header(predict_ctx *c, const fs_csv_row *row)
{
    size_t n0 = row->nfields;
    c->names = calloc(n0 ? n0 : 1, sizeof(char *));
    c->col_to_feat = malloc((n0 ? n0 : 1) * sizeof(int));
    if (c->names == NULL || c->col_to_feat == NULL) {
        fail(c, "out of memory");
        return 1;
    }
    c->ncols = n0;
    for (size_t i = 0; i < c->ncols; i++) {
        c->col_to_feat[i] = -1;
        size_t n = row->lens[i];
        c->names[i] = malloc(n + 1);
        if (c->names[i] == NULL) {
            fail(c, "out of memory");
            return 1;
        }
        memcpy(c->names[i], row->fields[i], n + 1);
    }
    for (int f = 0; f < c->nf; f++) {
        const char *name = fs_model_feature_name(c->model, f);
        int found = 0;
        for (size_t i = 0; i < c->ncols; i++) {
            if (strcmp(c->names[i], name) != 0)
                continue;
            if (found) {
                fail(c, "header: feature '%.200s' appears twice", name);
                return 1;
            }
            c->col_to_feat[i] = f;
            found = 1;
        }
        if (!found) {
            fail(c, "header: the model's feature '%.200s' is missing", name);
            return 1;
        }
    }
    return 0;
}

static int on_row(const fs_csv_row *row, void *opaque)
{
    predict_ctx *c = opaque;
    if (row->index == 0)
        return on_header(c, row);
    if (row->nfields != c->ncols) {
        fail(c, "line %zu: expected %zu fields as in the header, found %zu", row->line,
             c->ncols, row->nfields);
        return 1;
    }
    double *x = c->x + c->nrows * (size_t)c->nf;
    for (size_t i = 0; i < c->ncols; i++) {
        int f = c->col_to_feat[i];
        if (f < 0)
            continue;
        if (parse_cell(row->fields[i], row->lens[i], &x[f]) != 0) {
            fail(c, "line %zu, column %zu: %.100s: expected a number, empty or nan, found "
                 "'%.60s'", row->line, i + 1, c->names[i], row->fields[i]);
            return 1;
        }
    }
    if (++c->nrows == PREDICT_BLOCK)
        flush_block(c);
    return c->failed;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fraudctl predict --model FILE [--raw] [--contrib] [--input FILE] "
            "[--output FILE]\n"
            "                        [--start-iteration N] [--num-iteration N] [--row-by-row]\n"
            "  --model FILE          LightGBM text model (model.txt)\n"
            "  --raw                 print raw scores (no objective transform)\n"
            "  --contrib             print TreeSHAP contributions: per class, every feature "
            "then the bias\n"
            "  --input FILE          CSV with a header row naming the features (default stdin)\n"
            "  --output FILE         where to write one line per row (default stdout)\n"
            "  --start-iteration N   first boosting iteration to use (default 0)\n"
            "  --num-iteration N     iterations to use, <= 0 for all (default all)\n"
            "  --row-by-row          score each row alone (the service's latency path) instead\n"
            "                        of in blocks; the results are the same bit for bit\n");
}

static int parse_int_arg(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < -2147483647L || v > 2147483647L)
        return -1;
    *out = (int)v;
    return 0;
}

int cmd_predict(int argc, char **argv)
{
    const char *model_path = NULL, *input = NULL, *output = NULL;
    predict_ctx c;
    fs_csv *csv = NULL;
    int rc = FS_EXIT_FAILURE;
    fs_model *model = NULL;
    FILE *in = NULL;
    char errbuf[1024];

    memset(&c, 0, sizeof c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        static const char *const with_value[] = {"--model", "--input", "--output",
                                                 "--start-iteration", "--num-iteration"};
        int takes = 0;
        size_t which = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(a, with_value[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                takes = 1;
                which = k;
                val = a[n] == '=' ? a + n + 1 : NULL;
                break;
            }
        }
        if (takes) {
            if (val == NULL) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "fraudctl predict: %s needs a value\n", a);
                    return FS_EXIT_USAGE;
                }
                val = argv[++i];
            }
            switch (which) {
            case 0: model_path = val; break;
            case 1: input = val; break;
            case 2: output = val; break;
            case 3:
            case 4:
                if (parse_int_arg(val, which == 3 ? &c.opts.start_iteration
                                                  : &c.opts.num_iteration) != 0) {
                    fprintf(stderr, "fraudctl predict: %s: expected an integer, found '%s'\n",
                            with_value[which], val);
                    return FS_EXIT_USAGE;
                }
                break;
            default: break;
            }
        } else if (strcmp(a, "--raw") == 0) {
            c.raw = 1;
        } else if (strcmp(a, "--contrib") == 0) {
            c.contrib = 1;
        } else if (strcmp(a, "--row-by-row") == 0) {
            c.row_by_row = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return FS_EXIT_OK;
        } else {
            fprintf(stderr, "fraudctl predict: unknown option '%s'\n", a);
            usage(stderr);
            return FS_EXIT_USAGE;
        }
    }
    if (model_path == NULL) {
        fprintf(stderr, "fraudctl predict: --model FILE is required\n");
        usage(stderr);
        return FS_EXIT_USAGE;
    }

    model = fs_model_load_file(model_path, errbuf, sizeof errbuf);
    if (model == NULL) {
        fprintf(stderr, "fraudctl predict: %s\n", errbuf);
        goto out;
    }
    if (c.contrib && fs_model_has_linear_trees(model)) {
        fprintf(stderr, "fraudctl predict: %s: --contrib: contributions are not defined for "
                "linear trees (LightGBM refuses them too)\n", model_path);
        goto out;
    }
    c.model = model;
    c.nf = fs_model_num_features(model);
    c.nout = fs_model_num_outputs(model);
    const char *input_name = cli_name(input, "stdin");
    c.x = calloc((size_t)PREDICT_BLOCK * (size_t)c.nf, sizeof(double));
    /* One contributions row at a time, or a block of predictions. */
    c.y = calloc(c.contrib ? (size_t)c.nout * ((size_t)c.nf + 1)
                           : (size_t)PREDICT_BLOCK * (size_t)c.nout,
                 sizeof(double));
    if (c.x == NULL || c.y == NULL) {
        fprintf(stderr, "fraudctl predict: out of memory\n");
        goto out;
    }
    in = cli_open_input("predict", input);
    if (in == NULL)
        goto out;
    c.out = cli_open_output("predict", output);
    if (c.out == NULL)
        goto out;
    csv = fs_csv_new(on_row, &c, PREDICT_MAX_FIELD, PREDICT_MAX_FIELDS);
    if (csv == NULL) {
        fprintf(stderr, "fraudctl predict: out of memory\n");
        goto out;
    }
    char buf[1 << 16];
    int prc = 0;
    for (;;) {
        size_t n = fread(buf, 1, sizeof buf, in);
        if (n > 0 && (prc = fs_csv_feed(csv, buf, n)) != 0)
            break;
        if (n == 0) {
            if (ferror(in)) {
                fprintf(stderr, "fraudctl predict: %s: read error\n", input_name);
                goto out;
            }
            prc = fs_csv_finish(csv);
            break;
        }
    }
    if (prc < 0 && !c.failed)
        fail(&c, "%s", fs_csv_error(csv));
    if (!c.failed && c.names == NULL)
        fail(&c, "expected a header row naming the features");
    flush_block(&c);
    if (c.failed) {
        fprintf(stderr, "fraudctl predict: %s: %s\n", input_name, c.err);
        goto out;
    }
    int closed = cli_close_output("predict", output, c.out);
    c.out = NULL;
    if (closed != 0)
        goto out;
    rc = FS_EXIT_OK;
out:
    fs_csv_free(csv);
    cli_close_input(in);
    cli_discard_output(c.out);
    for (size_t i = 0; i < c.ncols; i++)
        free(c.names[i]);
    free(c.names);
    free(c.col_to_feat);
    free(c.x);
    free(c.y);
    fs_model_free(model);
    return rc;
}
