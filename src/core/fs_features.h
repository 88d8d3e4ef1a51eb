/*
 * fs_features: the one feature pipeline, used both to build the training matrix
 * (`fraudctl features`) and to score live transactions (fraud_detector, `fraudctl score`),
 * so training and serving cannot drift.
 *
 * Two parts:
 *  - fs_stats: statistics fitted on training data only (frequencies of the high-cardinality
 *    strings, the 99th percentile of amount, per-category median amounts, the values that
 *    replace missing numbers). Fitted by streaming rows through an fs_stats_fitter, stored
 *    as stats.json, loaded read-only. Nothing is ever recomputed from the row being scored.
 *  - the fixed, named feature list (fs_features_count / fs_features_name); a model's
 *    feature_names must equal it, in order.
 *  (Transactions CSV are read with fs_txn_reader / fs_txn_read_file, fs_txn.h.)
 *
 * Missing values (NaN numbers, empty strings, empty time) are replaced as the statistics say:
 * numbers by their training median, hour and day of week by their training mode; an empty
 * or unseen string has frequency 0 (it was seen 0 times in training); an empty or unseen
 * category uses the overall median amount.
 *
 * Ownership: every *_new / *_load / *_finish returns an object the caller frees with the
 * matching *_free. A loaded fs_stats is immutable: any number of threads may compute
 * features with it at once.
 */
#ifndef FS_FEATURES_H
#define FS_FEATURES_H

#include <stddef.h>
#include <stdio.h>

#include "fs_profile.h"
#include "fs_profile_store.h"
#include "fs_txn.h"

/* The model's features: their number and names, in the fixed order of the feature vector.
 * The 16 features of the original design, the analyst feature that earned its place on the
 * time-based holdout (amount_to_cat_median), then the customer's behaviour (fs_profile's
 * cust_* features; see docs/features.md). */
#define FS_FEATURES_N 30
int fs_features_count(void);
const char *fs_features_name(int i); /* NULL if out of range */

/* Every feature the pipeline can compute: the model's features (a prefix, same order), then
 * candidate analyst features that did not earn their place on the holdout (night, day_of_week,
 * distance_km). They stay computable so that the ablation can be re-run on other data
 * (`fraudctl features --candidates`, `scripts/train --ablation`). */
#define FS_FEATURES_ALL_N 33
int fs_features_all_count(void);
const char *fs_features_all_name(int i); /* NULL if out of range */

typedef struct fs_stats fs_stats;
typedef struct fs_stats_fitter fs_stats_fitter;

/* A fitter accumulates training rows. Returns NULL if memory ran out. */
fs_stats_fitter *fs_stats_fitter_new(void);
/* Adds one training row. Returns 0, or -1 with the reason in errstr (a string that is not
 * valid UTF-8 and so cannot be stored in stats.json, a cap reached, memory). */
int fs_stats_fitter_add(fs_stats_fitter *fitter, const fs_txn *t, char *errstr,
                        size_t errstr_size);
/* Fits the statistics on the rows added so far (at least one). Returns a new fs_stats the
 * caller owns, or NULL with the reason in errstr. The fitter stays owned by the caller. */
fs_stats *fs_stats_fitter_finish(fs_stats_fitter *fitter, char *errstr, size_t errstr_size);
void fs_stats_fitter_free(fs_stats_fitter *fitter);

/* Loads stats.json from a file, or from memory (`name` stands for the path in messages;
 * text need not be NUL-terminated). NULL with "path: what was expected" in errstr. */
fs_stats *fs_stats_load(const char *path, char *errstr, size_t errstr_size);
fs_stats *fs_stats_load_buffer(const char *text, size_t len, const char *name, char *errstr,
                               size_t errstr_size);
/* Writes stats.json (keys sorted, numbers %.17g: the same statistics give the same bytes).
 * Returns 0, or -1 with the reason in errstr. */
int fs_stats_save(const fs_stats *stats, const char *path, char *errstr, size_t errstr_size);
void fs_stats_free(fs_stats *stats);

/* Number of training rows the statistics were fitted on. */
long long fs_stats_rows(const fs_stats *stats);

/* The feature vector of one transaction into x (FS_FEATURES_N doubles, never NaN), and the
 * transaction added to its customer's profile (the record of fs_features_customer, or any
 * record the caller keeps for that customer): call it once per transaction, in the
 * customer's order. Returns 0, or -1 with the reason in errstr naming the field (the profile
 * is then unchanged). */
int fs_features_compute(const fs_stats *stats, const fs_txn *t, fs_profile *profile,
                        double *x, char *errstr, size_t errstr_size);
/* The same with the candidates: x receives FS_FEATURES_ALL_N doubles. */
int fs_features_compute_all(const fs_stats *stats, const fs_txn *t, fs_profile *profile,
                            double *x, char *errstr, size_t errstr_size);

/* The profile record of the transaction's customer in store: created empty for a new
 * customer, emptied for one idle longer than expiry seconds (fs_profile_expired; pass
 * FS_PROFILE_EXPIRY_DEFAULT unless configured). NULL with the reason in errstr: a key too
 * long, the store full (its maximum), memory. The record lives in the store. */
fs_profile *fs_features_customer(fs_profile_store *store, const fs_txn *t, int64_t expiry,
                                 char *errstr, size_t errstr_size);


#endif
