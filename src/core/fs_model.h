/*
 * fs_model: a LightGBM text-format model (model.txt, v3/v4) loaded into a compact form built
 * for fast evaluation. Raw scores are bit-identical to LightGBM's Booster.predict(raw_score=
 * True): trees are summed in double, in file order, from +0.0. Transformed outputs apply the
 * model's objective (sigmoid, softmax, exp, ...). Contributions are TreeSHAP values, as
 * LightGBM's pred_contrib=True returns them.
 *
 * Ownership: fs_model_load_* returns a model the caller owns and frees with fs_model_free;
 * every const char * the model returns lives as long as the model. A loaded model is
 * immutable: any number of threads may evaluate it at once (each call keeps its scratch on
 * the stack: at most ~30 KiB, measured with gcc -fstack-usage; see docs/engine.md).
 */
#ifndef FS_MODEL_H
#define FS_MODEL_H

#include <stddef.h>

typedef struct fs_model fs_model;

/* Loads a model from a file. On error returns NULL and writes "path:line: what was expected"
 * into errstr (at most errstr_size bytes, NUL-terminated). */
fs_model *fs_model_load_file(const char *path, char *errstr, size_t errstr_size);

/* Loads from memory; `name` is used in error messages in place of a path. `text` need not be
 * NUL-terminated. */
fs_model *fs_model_load_buffer(const char *text, size_t len, const char *name, char *errstr,
                               size_t errstr_size);

void fs_model_free(fs_model *model);

/* Number of input features (max_feature_idx + 1). */
int fs_model_num_features(const fs_model *model);
/* Name of feature i (from feature_names), or NULL if out of range. */
const char *fs_model_feature_name(const fs_model *model, int i);
/* Number of outputs per row: num_class (1 for binary and regression). */
int fs_model_num_outputs(const fs_model *model);
/* Number of boosting iterations in the file. */
int fs_model_num_iterations(const fs_model *model);
/* The objective string as written in the file ("binary sigmoid:1", ...). */
const char *fs_model_objective(const fs_model *model);

/* Which iterations to use, as LightGBM's start_iteration / num_iteration: num_iteration <= 0
 * means all from start_iteration on. */
typedef struct fs_predict_opts {
    int start_iteration;
    int num_iteration;
} fs_predict_opts;

/* One row: x has fs_model_num_features values (NaN for missing); out receives
 * fs_model_num_outputs values. opts may be NULL (all iterations). */
void fs_model_predict_raw(const fs_model *model, const double *x, double *out,
                          const fs_predict_opts *opts);
void fs_model_predict(const fs_model *model, const double *x, double *out,
                      const fs_predict_opts *opts);

/* Many rows, row-major: x is nrows * num_features, out is nrows * num_outputs. */
void fs_model_predict_raw_batch(const fs_model *model, const double *x, size_t nrows,
                                double *out, const fs_predict_opts *opts);
void fs_model_predict_batch(const fs_model *model, const double *x, size_t nrows, double *out,
                            const fs_predict_opts *opts);

/* The vector ISA this model's evaluation dispatches to: "avx512", "avx2" or "scalar" (a
 * static string). It is what the CPU runs, capped at load by the environment variable
 * FS_ENGINE_ISA (auto | avx512 | avx2 | scalar; an unknown value makes the loaders fail and
 * name it); see docs/engine.md. For logs and benchmarks: scores are the same on every ISA. */
const char *fs_model_isa(const fs_model *model);

/* 1 if the model has linear trees (is_linear=1): contributions are not defined for them
 * (LightGBM refuses pred_contrib on such models too). */
int fs_model_has_linear_trees(const fs_model *model);

/* TreeSHAP contributions for one row: out receives num_outputs * (num_features + 1) values,
 * per class the features in order then the bias, as LightGBM's pred_contrib=True. Returns 0,
 * or -1 if the model has linear trees, a tree is deeper than 1024 or memory could not be had
 * (out is then untouched). */
int fs_model_predict_contrib(const fs_model *model, const double *x, double *out,
                             const fs_predict_opts *opts);

#endif
