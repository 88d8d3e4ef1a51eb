/*
 * fs_bundle: loads model.txt + stats.json + metadata.json and refuses any bundle whose
 * feature names are not the pipeline's, naming the ones that differ.
 */
#include "fs_bundle.h"
#include "fs_err.h"
#include "fs_file.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_MAX_BYTES (4u << 20)
#define DEFAULT_THRESHOLD 0.95

struct fs_bundle {
    fs_model *model;
    fs_stats *stats;
    double threshold;
};

/* Appends to buf (always NUL-terminated, silently capped: it is a message). */
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* Compares a list of names with the pipeline's. Returns 0 if equal; else -1 and describes
 * the difference in errstr: positions that differ, names missing and names extra. */
typedef const char *(*name_at_fn)(const void *ctx, int i);

static int compare_names(const char *what, name_at_fn name_at, const void *ctx, int n,
                         char *errstr, size_t errstr_size)
{
    int np = fs_features_count();
    int differ = n != np;
    for (int i = 0; i < n && i < np && !differ; i++)
        if (strcmp(name_at(ctx, i), fs_features_name(i)) != 0)
            differ = 1;
    if (!differ)
        return 0;
    /* Room for the longest path (`what`, up to 4095 bytes) and the details after it: the
     * path is never cut, the details are capped by append. */
    char msg[4096 + 1536];
    snprintf(msg, sizeof msg, "%s: feature names differ from the pipeline's (%d vs %d):", what,
             n, np);
    int shown = 0;
    for (int i = 0; i < n && i < np; i++) {
        if (strcmp(name_at(ctx, i), fs_features_name(i)) == 0)
            continue;
        if (shown++ < 8)
            append(msg, sizeof msg, " [%d] '%.48s' != '%s';", i, name_at(ctx, i),
                   fs_features_name(i));
    }
    append(msg, sizeof msg, " missing:");
    for (int p = 0; p < np; p++) {
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(name_at(ctx, i), fs_features_name(p)) == 0;
        if (!found)
            append(msg, sizeof msg, " %s", fs_features_name(p));
    }
    append(msg, sizeof msg, "; unknown:");
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int p = 0; p < np && !found; p++)
            found = strcmp(name_at(ctx, i), fs_features_name(p)) == 0;
        if (!found)
            append(msg, sizeof msg, " %.48s", name_at(ctx, i));
    }
    fs_errf(errstr, errstr_size, "%s", msg);
    return -1;
}

static const char *json_name_at(const void *ctx, int i)
{
    const json_t *v = json_array_get((const json_t *)ctx, (size_t)i);
    return json_is_string(v) ? json_string_value(v) : "(not a string)";
}

static const char *model_name_at(const void *ctx, int i)
{
    const char *s = fs_model_feature_name((const fs_model *)ctx, i);
    return s ? s : "(none)";
}

int fs_bundle_parse_metadata(const char *text, size_t len, const char *name, double *threshold,
                             char *errstr, size_t errstr_size)
{
    int rc = -1;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fs_errf(errstr, errstr_size, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        fs_errf(errstr, errstr_size, "%s: expected a JSON object", name);
        goto out;
    }
    const json_t *names = json_object_get(root, "feature_names");
    if (!json_is_array(names) || json_array_size(names) > 100000) {
        fs_errf(errstr, errstr_size, "%s: feature_names: expected an array of names", name);
        goto out;
    }
    if (compare_names(name, json_name_at, names, (int)json_array_size(names), errstr,
                      errstr_size) != 0)
        goto out;
    const json_t *th = json_object_get(root, "threshold");
    *threshold = DEFAULT_THRESHOLD;
    if (th != NULL) {
        double v = json_is_number(th) ? json_number_value(th) : -1.0;
        if (!(v >= 0.0 && v <= 1.0)) {
            fs_errf(errstr, errstr_size, "%s: threshold: expected a number in [0, 1]", name);
            goto out;
        }
        *threshold = v;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

fs_bundle *fs_bundle_load(const char *dir, char *errstr, size_t errstr_size)
{
    fs_bundle *b = NULL;
    char *meta = NULL;
    char path[4096];
    size_t len;
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        fs_errf(errstr, errstr_size, "%s: out of memory", dir);
        goto fail;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/metadata.json", dir) >= sizeof path) {
        fs_errf(errstr, errstr_size, "%s: path too long", dir);
        goto fail;
    }
    char why[256];
    meta = fs_read_file(path, METADATA_MAX_BYTES, &len, why, sizeof why);
    if (meta == NULL) {
        fs_errf(errstr, errstr_size, "%s: %s", path, why);
        goto fail;
    }
    if (fs_bundle_parse_metadata(meta, len, path, &b->threshold, errstr, errstr_size) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/stats.json", dir);
    b->stats = fs_stats_load(path, errstr, errstr_size);
    if (b->stats == NULL)
        goto fail;
    snprintf(path, sizeof path, "%s/model.txt", dir);
    b->model = fs_model_load_file(path, errstr, errstr_size);
    if (b->model == NULL)
        goto fail;
    if (fs_model_num_outputs(b->model) != 1) {
        fs_errf(errstr, errstr_size, "%s: %d outputs per row; a fraud model has one", path,
               fs_model_num_outputs(b->model));
        goto fail;
    }
    if (compare_names(path, model_name_at, b->model, fs_model_num_features(b->model), errstr,
                      errstr_size) != 0)
        goto fail;
    free(meta);
    return b;
fail:
    free(meta);
    fs_bundle_free(b);
    return NULL;
}

void fs_bundle_free(fs_bundle *b)
{
    if (b == NULL)
        return;
    fs_model_free(b->model);
    fs_stats_free(b->stats);
    free(b);
}

double fs_bundle_threshold(const fs_bundle *b)
{
    return b->threshold;
}

const fs_model *fs_bundle_model(const fs_bundle *b)
{
    return b->model;
}

int fs_bundle_num_features(const fs_bundle *b)
{
    (void)b;
    return fs_features_count();
}

const char *fs_bundle_feature_name(const fs_bundle *b, int i)
{
    (void)b;
    return fs_features_name(i);
}

const fs_stats *fs_bundle_stats(const fs_bundle *b)
{
    return b->stats;
}

int fs_bundle_features(const fs_bundle *b, const fs_txn *t, fs_profile *profile, double *x,
                       char *errstr, size_t errstr_size)
{
    return fs_features_compute(b->stats, t, profile, x, errstr, errstr_size);
}

int fs_bundle_score(const fs_bundle *b, const fs_txn *t, fs_profile *profile, double *score,
                    char *errstr, size_t errstr_size)
{
    double x[FS_FEATURES_N];
    if (fs_features_compute(b->stats, t, profile, x, errstr, errstr_size) != 0)
        return -1;
    fs_model_predict(b->model, x, score, NULL);
    return 0;
}

int fs_bundle_flag(double score, double threshold)
{
    return score >= threshold ? 1 : 0;
}

/* ---- scoring a CSV in batches ---- */

#define SCORE_BATCH 256

typedef struct score_batch {
    const fs_bundle *bundle;
    double threshold;
    const char *name;
    fs_bundle_score_cb on_score;
    fs_txn_reader_bad_cb on_bad;
    void *opaque;
    fs_profile_store *store;
    size_t n;
    char err[1024];
    double x[SCORE_BATCH * FS_FEATURES_N];
    double score[SCORE_BATCH];
    size_t row[SCORE_BATCH];
    char id[SCORE_BATCH][FS_TXN_ID_MAX + 1];
} score_batch;

/* Scores the buffered rows and hands them out. Returns 0, or 1 if on_score stopped. */
static int flush_batch(score_batch *b)
{
    if (b->n == 0)
        return 0;
    fs_model_predict_batch(b->bundle->model, b->x, b->n, b->score, NULL);
    size_t n = b->n;
    b->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (b->on_score(b->row[i], b->id[i], b->score[i],
                        fs_bundle_flag(b->score[i], b->threshold), b->opaque) != 0)
            return 1;
    }
    return 0;
}

static int batch_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    score_batch *b = opaque;
    char why[256];
    /* The reader guarantees "" or 1..FS_TXN_ID_MAX printable ASCII; checked again because
     * id[] is sized by it. */
    size_t len = strlen(t->transaction_id);
    if (len > FS_TXN_ID_MAX) {
        fs_errf(b->err, sizeof b->err, "%s:%zu: transaction_id longer than %d", b->name,
               row->line, FS_TXN_ID_MAX);
        return 1;
    }
    fs_profile *profile = fs_features_customer(b->store, t, FS_PROFILE_EXPIRY_DEFAULT, why, sizeof why);
    if (profile == NULL ||
        fs_features_compute(b->bundle->stats, t, profile, b->x + b->n * FS_FEATURES_N, why,
                            sizeof why) != 0) {
        fs_errf(b->err, sizeof b->err, "%s:%zu: %s", b->name, row->line, why);
        return 1;
    }
    memcpy(b->id[b->n], t->transaction_id, len + 1);
    b->row[b->n] = row->index - 1;
    if (++b->n == SCORE_BATCH)
        return flush_batch(b);
    return 0;
}

/* Hands an invalid row to the caller's on_bad with the caller's opaque. */
static int batch_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    score_batch *b = opaque;
    return b->on_bad(row, msg, b->opaque) != 0 ? 1 : 0;
}

int fs_bundle_score_csv(const fs_bundle *bundle, double threshold, FILE *in, const char *name,
                        fs_profile_store *store, fs_bundle_score_cb on_score,
                        fs_txn_reader_bad_cb on_bad, void *opaque, char *errstr,
                        size_t errstr_size)
{
    int rc;
    fs_profile_store *own = NULL;
    score_batch *b = calloc(1, sizeof *b);
    if (store == NULL)
        store = own = fs_profile_store_new(0);
    if (b == NULL || store == NULL) {
        free(b);
        fs_profile_store_free(own);
        fs_errf(errstr, errstr_size, "%s: out of memory", name);
        return -1;
    }
    b->store = store;
    b->bundle = bundle;
    b->threshold = threshold;
    b->name = name;
    b->on_score = on_score;
    b->on_bad = on_bad;
    b->opaque = opaque;
    rc = fs_txn_read_file(in, name, batch_row, on_bad != NULL ? batch_bad : NULL, b, errstr,
                          errstr_size);
    if (rc > 0 && b->err[0] != '\0') {
        /* batch_row stopped the read with its own error. */
        fs_errf(errstr, errstr_size, "%s", b->err);
        rc = -1;
    } else if (rc > 0) {
        rc = 1;
    } else if (rc == 0 && flush_batch(b) != 0) {
        rc = 1;
    }
    free(b);
    fs_profile_store_free(own);
    return rc;
}
