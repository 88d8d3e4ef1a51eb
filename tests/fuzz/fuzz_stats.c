/*
 * libFuzzer harness for the bundle's JSON loaders: the input is tried as a stats.json
 * (fs_stats_load_buffer; on success a feature vector is computed with it and every value
 * must be a number, never NaN) and as a metadata.json (fs_bundle_parse_metadata).
 */
#include <math.h>
#include <stdint.h>
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
            if (fs_features_compute(s, &txn[k], x, err, sizeof err) != 0)
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
    return 0;
}
