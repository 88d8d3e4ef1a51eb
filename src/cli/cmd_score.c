/*
 * fraudctl score --model-dir DIR --input test.csv [--output FILE] [--state-out FILE]
 * Scores a transactions CSV with a model bundle: CSV `row,transaction_id,score,fraud_flag`
 * (row = 0-based data row of the input, transaction_id from that column or empty, score
 * %.17g, fraud_flag = score >= the bundle's threshold). Each customer's behaviour features
 * see that customer's earlier rows of the file (file order = time order), as the detector
 * sees them in the stream. --state-out writes every customer's final state as CSV
 * `customer,state` (state = the changelog value the detector would hold, fs_profile_encode,
 * in hex), sorted by customer, to compare with the detector's changelog.
 *
 * Invalid rows are never silently dropped: each is reported on stderr as file:line:column
 * (the first 100 in full, then only counted), left out of the output (the row numbers show
 * the gap), and counted in a summary line; the exit code is then 1, so a script notices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_io.h"
#include "fraudctl.h"
#include "fs_bundle.h"

#define MAX_REPORTED 100

/* --state-out: the customers' final records, sorted by key. */
typedef struct state_row {
    char *key;
    unsigned char wire[FS_PROFILE_WIRE_BYTES];
} state_row;

typedef struct state_list {
    state_row *v;
    size_t n, cap;
} state_list;

static int collect_state(const char *key, size_t len, const fs_profile *p, void *opaque)
{
    state_list *l = opaque;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        state_row *nv = realloc(l->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    state_row *r = &l->v[l->n];
    r->key = malloc(len + 1);
    if (r->key == NULL)
        return -1;
    memcpy(r->key, key, len);
    r->key[len] = '\0';
    fs_profile_encode(p, r->wire);
    l->n++;
    return 0;
}

static int cmp_state_row(const void *a, const void *b)
{
    return strcmp(((const state_row *)a)->key, ((const state_row *)b)->key);
}

static void put_csv_field(FILE *out, const char *s);

/* Writes the store as customer,state CSV. Returns 0, or -1 (reported). */
static int write_state(const fs_profile_store *store, const char *path)
{
    state_list l = {0};
    int rc = -1;
    FILE *out = NULL;
    if (fs_profile_store_each(store, collect_state, &l) != 0) {
        fprintf(stderr, "fraudctl score: out of memory writing the state\n");
        goto out;
    }
    if (l.n > 0)
        qsort(l.v, l.n, sizeof *l.v, cmp_state_row);
    out = cli_open_output("score", path);
    if (out == NULL)
        goto out;
    fputs("customer,state\n", out);
    for (size_t i = 0; i < l.n; i++) {
        put_csv_field(out, l.v[i].key);
        fputc(',', out);
        for (size_t k = 0; k < FS_PROFILE_WIRE_BYTES; k++)
            fprintf(out, "%02x", l.v[i].wire[k]);
        fputc('\n', out);
    }
    int closed = cli_close_output("score", path, out);
    out = NULL;
    rc = closed == 0 ? 0 : -1;
out:
    cli_discard_output(out);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].key);
    free(l.v);
    return rc;
}

typedef struct score_ctx {
    FILE *out;
    size_t scored, invalid;
} score_ctx;

/* Writes s as one CSV field, quoted when it holds a comma, quote, CR or LF. */
static void put_csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static int score_row(size_t row, const char *transaction_id, double score, int fraud_flag,
                     void *opaque)
{
    score_ctx *c = opaque;
    fprintf(c->out, "%zu,", row);
    put_csv_field(c->out, transaction_id);
    fprintf(c->out, ",%.17g,%d\n", score, fraud_flag);
    c->scored++;
    return 0;
}

/* The reader's bad-row callback: report (the first MAX_REPORTED), count, skip. */
static int score_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    score_ctx *c = opaque;
    if (c->invalid++ < MAX_REPORTED)
        fprintf(stderr, "fraudctl score: row %zu skipped: %s\n", row->index - 1, msg);
    return 0;
}

static void score_usage(FILE *out)
{
    fprintf(out, "usage: fraudctl score --model-dir DIR --input FILE [--output FILE] "
                 "[--state-out FILE]\n"
                 "  --model-dir DIR  model bundle (model.txt, stats.json, metadata.json)\n"
                 "  --input FILE     transactions CSV (- = stdin)\n"
                 "  --output FILE    row,transaction_id,score,fraud_flag CSV (default "
                 "stdout)\n"
                 "  --state-out FILE every customer's final state: customer,state (hex of "
                 "the\n"
                 "                   changelog value), sorted by customer\n"
                 "Invalid rows are reported on stderr, skipped, and make the exit code 1.\n");
}

int cmd_score(int argc, char **argv)
{
    const char *dir = NULL, *input = NULL, *output = NULL, *state_out = NULL;
    int rc = FS_EXIT_FAILURE;
    fs_profile_store *store = NULL;
    FILE *in = NULL, *out = NULL;
    fs_bundle *bundle = NULL;
    score_ctx ctx = {0};
    char err[2048] = "";
    static char outbuf[1 << 16];

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            score_usage(stdout);
            return FS_EXIT_OK;
        } else if (strcmp(argv[i], "--model-dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc) {
            input = argv[++i];
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
            output = argv[++i];
        } else if (strcmp(argv[i], "--state-out") == 0 && i + 1 < argc) {
            state_out = argv[++i];
        } else {
            fprintf(stderr, "fraudctl score: unknown or incomplete option '%s'\n", argv[i]);
            score_usage(stderr);
            return FS_EXIT_USAGE;
        }
    }
    if (dir == NULL || input == NULL) {
        score_usage(stderr);
        return FS_EXIT_USAGE;
    }
    bundle = fs_bundle_load(dir, err, sizeof err);
    if (bundle == NULL) {
        fprintf(stderr, "fraudctl score: %s\n", err);
        goto out;
    }
    in = cli_open_input("score", input);
    if (in == NULL)
        goto out;
    out = cli_open_output("score", output);
    if (out == NULL)
        goto out;
    setvbuf(out, outbuf, _IOFBF, sizeof outbuf);
    fputs("row,transaction_id,score,fraud_flag\n", out);
    ctx.out = out;
    store = fs_profile_store_new(0);
    if (store == NULL) {
        fprintf(stderr, "fraudctl score: out of memory\n");
        goto out;
    }
    int r = fs_bundle_score_csv(bundle, fs_bundle_threshold(bundle), in, cli_name(input, "stdin"),
                                store, score_row, score_bad, &ctx, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "fraudctl score: %s\n", err);
        goto out;
    }
    int closed = cli_close_output("score", output, out);
    out = NULL;
    if (closed != 0)
        goto out;
    if (state_out != NULL && write_state(store, state_out) != 0)
        goto out;
    if (ctx.invalid > 0) {
        fprintf(stderr, "fraudctl score: %zu rows scored, %zu invalid rows skipped%s\n",
                ctx.scored, ctx.invalid,
                ctx.invalid > MAX_REPORTED ? " (the first 100 are listed above)" : "");
        goto out;
    }
    rc = FS_EXIT_OK;
out:
    cli_close_input(in);
    cli_discard_output(out);
    fs_bundle_free(bundle);
    fs_profile_store_free(store);
    return rc;
}
