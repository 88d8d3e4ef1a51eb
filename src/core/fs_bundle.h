/*
 * fs_bundle: a model bundle directory, everything the detector needs to score a
 * transaction exactly as the model was trained:
 *   model.txt      the LightGBM model (fs_model)
 *   stats.json     the feature statistics fitted on the training data (fs_features)
 *   metadata.json  feature list in order, threshold (default 0.95), training data checksum,
 *                  metrics, creation time
 * Loading refuses a bundle whose model feature_names differ from the pipeline's feature
 * list, naming the features that differ.
 *
 * Ownership: fs_bundle_load returns a bundle the caller frees with fs_bundle_free; pointers
 * it hands out live as long as the bundle. A loaded bundle is immutable and thread-safe.
 */
#ifndef FS_BUNDLE_H
#define FS_BUNDLE_H

#include <stddef.h>
#include <stdio.h>

#include "fs_features.h"
#include "fs_model.h"
#include "fs_txn.h"

typedef struct fs_bundle fs_bundle;

fs_bundle *fs_bundle_load(const char *dir, char *errstr, size_t errstr_size);
void fs_bundle_free(fs_bundle *bundle);

/* The threshold from metadata.json (0.95 if it names none). */
double fs_bundle_threshold(const fs_bundle *bundle);
const fs_model *fs_bundle_model(const fs_bundle *bundle);
int fs_bundle_num_features(const fs_bundle *bundle);
const char *fs_bundle_feature_name(const fs_bundle *bundle, int i);
/* The fitted statistics of the bundle. */
const fs_stats *fs_bundle_stats(const fs_bundle *bundle);

/* Features of one transaction into x (fs_bundle_num_features doubles), the transaction added
 * to its customer's profile (fs_features_compute). Returns 0, or -1 with the reason in
 * errstr (naming the field). */
int fs_bundle_features(const fs_bundle *bundle, const fs_txn *t, fs_profile *profile,
                       double *x, char *errstr, size_t errstr_size);

/* Features + model: the fraud probability (the model's transformed output). */
int fs_bundle_score(const fs_bundle *bundle, const fs_txn *t, fs_profile *profile,
                    double *score, char *errstr, size_t errstr_size);

/* Scores a transactions CSV: the path of `fraudctl score`, shared with its benchmark. Rows
 * are read with fs_txn_read_file (`name` names the input in messages), their features
 * computed with each customer's profile in store (NULL: a store of its own for this call; a
 * store passed in keeps every customer's state at the end, and may already hold earlier
 * history), and the model evaluated in batches (fs_model_predict_batch: the same bits as one
 * row at a time). on_score receives every valid row in input order (row = 0-based data row;
 * transaction_id "" if the input has none; flag by fs_bundle_flag with `threshold`) and
 * returns 0 to go on. on_bad is the reader's bad-row callback (fs_txn.h), called with this
 * opaque: "name:line:column: field: why" for each invalid row, skipped when it returns 0
 * (NULL: the first invalid row is an error). Invalid rows may be reported before valid rows
 * that precede them are passed to on_score. Returns 0 when all was read, 1 when a callback
 * stopped it, -1 with "name:line:column: why" in errstr (rows still buffered then are not
 * passed on). */
typedef int (*fs_bundle_score_cb)(size_t row, const char *transaction_id, double score,
                                  int fraud_flag, void *opaque);
int fs_bundle_score_csv(const fs_bundle *bundle, double threshold, FILE *in, const char *name,
                        fs_profile_store *store, fs_bundle_score_cb on_score,
                        fs_txn_reader_bad_cb on_bad, void *opaque, char *errstr,
                        size_t errstr_size);

/* The fraud flag of a score: 1 when score >= threshold (a score equal to the threshold is
 * flagged), else 0. Every consumer of a bundle flags this way. */
int fs_bundle_flag(double score, double threshold);

/* Validates the text of a metadata.json (`name` stands for its path in messages): a JSON
 * object whose feature_names equal the pipeline's feature list (fs_features_name) and whose
 * threshold, if present, is in [0, 1]. Sets *threshold (0.95 if absent). Returns 0, or -1
 * with "name: what differs" in errstr. fs_bundle_load uses it; exposed for the fuzzer. */
int fs_bundle_parse_metadata(const char *text, size_t len, const char *name, double *threshold,
                             char *errstr, size_t errstr_size);

#endif
