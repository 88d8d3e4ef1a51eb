/*
 * libFuzzer harness for the feature pipeline's parsers: the input is tried as a stats.json
 * (fs_stats_load_buffer; on success a feature vector is computed with it and every value
 * must be a number, never NaN), as a metadata.json (fs_bundle_parse_metadata), and as a
 * transactions CSV read by fs_txn_read_file (every row's features computed with fixed
 * statistics; invalid rows reported and skipped; the row count must add up).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_bundle.h"
#include "fs_features.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A complete record and one whose numbers are all missing (the fills are used). */
static fs_txn txn[2];
static int txn_ready;

static void make_txn(fs_txn *t, const char *const v[FS_TXN_NFIELDS])
{
    size_t len[FS_TXN_NFIELDS];
    char err[128];
    int bad;
    for (int i = 0; i < FS_TXN_NFIELDS; i++)
        len[i] = strlen(v[i]);
    if (fs_txn_from_strings(t, v, len, NULL, NULL, &bad, err, sizeof err) != 0)
        abort();
}

static fs_stats *fixed_stats;

typedef struct csv_count {
    size_t good, bad, last_row;
    fs_profile_store *store; /* the customers of this input: their state carries row to row */
} csv_count;

static int on_row(const fs_txn *t, const fs_csv_row *csv_row, void *opaque)
{
    csv_count *c = opaque;
    double x[FS_FEATURES_ALL_N];
    char err[256];
    size_t row = csv_row->index - 1;
    if (c->good + c->bad > 0 && row <= c->last_row)
        abort(); /* rows must come in order */
    c->last_row = row;
    fs_profile *p = fs_features_customer(c->store, t, FS_PROFILE_EXPIRY_DEFAULT, err, sizeof err);
    if (p == NULL || fs_features_compute_all(fixed_stats, t, p, x, err, sizeof err) != 0)
        abort();
    /* Behaviour features are finite for any history (the stateless ones may carry an
     * infinite amount through, never a NaN). */
    for (int i = 0; i < FS_FEATURES_ALL_N; i++)
        if (isnan(x[i]) || (i >= FS_FEATURES_N - FS_PROFILE_NFEATURES && i < FS_FEATURES_N &&
                            !isfinite(x[i])))
            abort();
    c->good++;
    return 0;
}

static int on_bad(const fs_csv_row *row, const char *msg, void *opaque)
{
    csv_count *c = opaque;
    (void)row;
    if (msg == NULL || msg[0] == '\0')
        abort();
    c->bad++;
    return 0;
}

static void make_txns(void)
{
    static const char *const full[FS_TXN_NFIELDS] = {
        "2019-01-07 23:10", "fraud_Kirlin and Sons", "travel", "12.5", "Ann", "Smith", "F",
        "1 Main St", "Springfield", "IL", "62701", "40", "-90", "1000", "Engineer", "40.5",
        "-90.5"};
    static const char *const sparse[FS_TXN_NFIELDS] = {
        "2019-01-07 03:10", "", "misc_net", "", "", "", "", "", "", "", "", "", "", "", "",
        "", ""};
    make_txn(&txn[0], full);
    make_txn(&txn[1], sparse);
    fs_stats_fitter *f = fs_stats_fitter_new();
    char err[128];
    if (f == NULL || fs_stats_fitter_add(f, &txn[0], err, sizeof err) != 0)
        abort();
    fixed_stats = fs_stats_fitter_finish(f, err, sizeof err);
    fs_stats_fitter_free(f);
    if (fixed_stats == NULL)
        abort();
    txn_ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    if (!txn_ready)
        make_txns();
    fs_stats *s = fs_stats_load_buffer((const char *)data, size, "fuzz", err, sizeof err);
    if (s != NULL) {
        for (int k = 0; k < 2; k++) {
            double x[FS_FEATURES_N];
            fs_profile p;
            fs_profile_init(&p);
            if (fs_features_compute(s, &txn[k], &p, x, err, sizeof err) != 0)
                abort();
            for (int i = 0; i < FS_FEATURES_N; i++)
                if (isnan(x[i]))
                    abort();
        }
        fs_stats_free(s);
    }
    double threshold;
    if (fs_bundle_parse_metadata((const char *)data, size, "fuzz", &threshold, err,
                                 sizeof err) == 0 &&
        !(threshold >= 0.0 && threshold <= 1.0))
        abort();
    FILE *in = fmemopen((void *)data, size, "rb");
    if (in != NULL) {
        csv_count c = {0, 0, 0, fs_profile_store_new(0)};
        if (c.store == NULL)
            abort();
        fs_txn_read_file(in, "fuzz.csv", on_row, on_bad, &c, err, sizeof err);
        fclose(in);
        fs_profile_store_free(c.store);
    }
    return 0;
}
