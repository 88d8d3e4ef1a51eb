/*
 * libFuzzer harness for the model loader (fs_model_load_buffer). Any input must either be
 * rejected with a "name:line: ..." message or load into a model that evaluates without a
 * crash: every accepted model is scored (single row, batch, transformed, contributions) on
 * rows of zeros, NaN and values taken from the input's own bytes. The single-row path (the
 * QuickScorer table when the model fits it) must equal the batch path bit for bit; the model is
 * loaded a second time with a small table budget, so the checkpoint variant (or the fallback
 * walk) scores the same rows and must agree too.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_model.h"
#include "fs_model_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    fs_model *m = fs_model_load_buffer((const char *)data, size, "fuzz", err, sizeof err);
    if (m == NULL) {
        /* The message must be terminated and say where. */
        if (memchr(err, '\0', sizeof err) == NULL || strncmp(err, "fuzz:", 5) != 0)
            abort();
        return 0;
    }
    int nf = fs_model_num_features(m), nout = fs_model_num_outputs(m);
    if (nf <= 0 || nout <= 0 || nf > (1 << 16) || nout > 1024)
        goto out;
    size_t rows = 3;
    double *x = calloc(rows * (size_t)nf, sizeof(double));
    double *y = calloc(rows * (size_t)nout * ((size_t)nf + 1), sizeof(double));
    if (x == NULL || y == NULL) {
        free(x);
        free(y);
        goto out;
    }
    for (int i = 0; i < nf; i++) {
        x[nf + i] = NAN;
        double v = 0;
        if (size >= sizeof v) {
            memcpy(&v, data + ((size_t)i * 7) % (size - sizeof v + 1), sizeof v);
        }
        x[2 * nf + i] = v;
    }
    fs_predict_opts opts = {(int)(size % 3), (int)(size % 5)};
    /* Differential check: the single-row and the batch paths walk the trees differently
     * (trees in lockstep vs rows in lockstep) and must agree bit for bit. */
    double single[3 * 1024];
    for (size_t r = 0; r < rows; r++) {
        fs_model_predict_raw(m, x + r * (size_t)nf, single + r * (size_t)nout, &opts);
        fs_model_predict(m, x + r * (size_t)nf, y, &opts);
        fs_model_predict_contrib(m, x + r * (size_t)nf, y, NULL);
    }
    fs_model_predict_raw_batch(m, x, rows, y, &opts);
    if (memcmp(single, y, rows * (size_t)nout * sizeof(double)) != 0)
        abort();
    fs_model *small = fsm_load_buffer((const char *)data, size, "fuzz", 2048, err, sizeof err);
    if (small == NULL)
        abort();
    for (size_t r = 0; r < rows; r++) {
        double again[1024];
        fs_model_predict_raw(small, x + r * (size_t)nf, again, &opts);
        if (memcmp(again, single + r * (size_t)nout, (size_t)nout * sizeof(double)) != 0)
            abort();
    }
    fs_model_free(small);
    fs_model_predict_batch(m, x, rows, y, NULL);
    for (int i = 0; i < nf; i++)
        (void)fs_model_feature_name(m, i);
    (void)fs_model_objective(m);
    free(x);
    free(y);
out:
    fs_model_free(m);
    return 0;
}
