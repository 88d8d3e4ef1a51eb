/*
 * bench_contrib: TreeSHAP contributions per row, fs_model_predict_contrib (closed form per
 * leaf) against fsm_predict_contrib_ref (LightGBM's recursion), on the same rows in the same
 * run, in CPU time; also the largest difference between the two and the largest
 * |bias + sum of contributions - raw score|.
 *   bench_contrib MODEL_TXT ROWS_F64 [NROWS]   rows: raw doubles, num_features per row
 *   bench_contrib --bundle DIR [NROWS]         DIR/model.txt on the feature rows of
 *                                              generated transactions (seed 2024)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_rows.h"
#include "bench_util.h"
#include "fs_bundle.h"
#include "fs_features.h"
#include "fs_gen.h"
#include "fs_model.h"
#include "fs_model_impl.h"
#include "fs_profile_store.h"

int main(int argc, char **argv)
{
    char err[1024], path[4096];
    int rc = 1, nf = 0;
    size_t nrows = 0;
    double *x = NULL, *a = NULL, *b = NULL;
    fs_model *m = NULL;
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: bench_contrib MODEL_TXT ROWS_F64 [NROWS]\n"
                        "       bench_contrib --bundle DIR [NROWS]\n");
        return 2;
    }
    if (argc == 4)
        nrows = (size_t)strtoull(argv[3], NULL, 10);
    int bundle = strcmp(argv[1], "--bundle") == 0;
    if (bundle)
        snprintf(path, sizeof path, "%s/model.txt", argv[2]);
    else
        snprintf(path, sizeof path, "%s", argv[1]);
    m = fs_model_load_file(path, err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "bench_contrib: %s\n", err);
        goto out;
    }
    nf = fs_model_num_features(m);
    if (bundle) {
        int bnf = 0;
        if (nrows == 0)
            nrows = 5000;
        x = bench_bundle_rows("bench_contrib", argv[2], nrows, &bnf);
        if (x != NULL && bnf != nf) {
            fprintf(stderr, "bench_contrib: bundle rows have %d features, model %d\n", bnf, nf);
            goto out;
        }
    } else {
        x = bench_read_rows("bench_contrib", argv[2], nf, &nrows);
    }
    if (x == NULL)
        goto out;
    int k_per = fs_model_num_outputs(m);
    size_t stride = (size_t)(nf + 1) * (size_t)k_per;
    a = malloc(nrows * stride * sizeof(double));
    b = malloc(nrows * stride * sizeof(double));
    if (a == NULL || b == NULL)
        goto out;
    /* Chunks of rows, the two alternating, so a neighbour's load affects both alike. */
    double t_ref = 0, t_new = 0;
    const size_t chunk = 50;
    for (size_t c0 = 0; c0 < nrows; c0 += chunk) {
        size_t n = c0 + chunk < nrows ? chunk : nrows - c0;
        double t0 = bench_cpu_seconds();
        for (size_t r = c0; r < c0 + n; r++)
            if (fsm_predict_contrib_ref(m, x + r * (size_t)nf, a + r * stride, NULL) != 0)
                goto out;
        double t1 = bench_cpu_seconds();
        for (size_t r = c0; r < c0 + n; r++)
            if (fs_model_predict_contrib(m, x + r * (size_t)nf, b + r * stride, NULL) != 0)
                goto out;
        double t2 = bench_cpu_seconds();
        t_ref += t1 - t0;
        t_new += t2 - t1;
    }
    double max_diff = 0, max_sum = 0;
    for (size_t r = 0; r < nrows; r++) {
        double raw[256];
        if (k_per > 256)
            goto out;
        fs_model_predict_raw(m, x + r * (size_t)nf, raw, NULL);
        for (int k = 0; k < k_per; k++) {
            const double *p = b + r * stride + (size_t)k * (size_t)(nf + 1);
            double s = 0;
            for (int j = 0; j <= nf; j++) {
                double d = fabs(p[j] - a[r * stride + (size_t)k * (size_t)(nf + 1) + (size_t)j]);
                if (!(d <= max_diff))
                    max_diff = d;
                s += p[j];
            }
            double d = fabs(s - raw[k]);
            if (!(d <= max_sum))
                max_sum = d;
        }
    }
    printf("%s: %zu rows; contributions per row (CPU): reference %.1f us, ours %.1f us, "
           "%.2fx faster; max |ours - reference| %.3g; max |bias + sum - raw| %.3g\n",
           path, nrows, t_ref / (double)nrows * 1e6, t_new / (double)nrows * 1e6,
           t_ref / t_new, max_diff, max_sum);
    rc = 0;
out:
    free(a);
    free(b);
    free(x);
    fs_model_free(m);
    return rc;
}
