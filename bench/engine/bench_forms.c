/*
 * bench_forms: one model, one form, our engine alone: the single-row (or batch) time per row
 * of fs_model_predict_raw over a file of rows, best of REPS passes, thread CPU time. The form
 * and the ISA are the engine's own settings (FS_ENGINE_FORM=auto|rule|table|walk,
 * FS_ENGINE_ISA=auto|avx512|avx2|scalar), so bench/engine/forms runs it once per setting to
 * compare the table and the walk on each ISA (docs/engine.md, "Form choice").
 *
 *   bench_forms MODEL ROWS.f64 NROWS REPS [batch]
 *
 * ROWS.f64: row-major float64, the model's feature count per row (bench/engine/forms.py
 * writes them). Prints the form the loader chose, the ISA, us/row, the loader's estimates
 * and, if it calibrated, what it measured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_model.h"
#include "fs_model_impl.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    static const char *const forms[] = {"walk", "binned", "table", "table-checkpoints"};
    char err[512];
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: bench_forms MODEL ROWS.f64 NROWS REPS [batch]\n");
        return 2;
    }
    fs_model *m = fs_model_load_file(argv[1], err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "bench_forms: %s\n", err);
        return 1;
    }
    size_t nf = (size_t)fs_model_num_features(m), n = strtoul(argv[3], NULL, 10);
    int reps = atoi(argv[4]), batch = argc == 6 && strcmp(argv[5], "batch") == 0;
    FILE *f = fopen(argv[2], "rb");
    double *x = malloc(n * nf * sizeof(double)), *out = malloc(n * sizeof(double) * 64);
    if (f == NULL || x == NULL || out == NULL || reps < 1 || fs_model_num_outputs(m) > 64) {
        fprintf(stderr, "bench_forms: %s: cannot read rows\n", argv[2]);
        return 1;
    }
    n = fread(x, sizeof(double) * nf, n, f);
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "bench_forms: %s: no rows\n", argv[2]);
        return 1;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        if (batch)
            fs_model_predict_raw_batch(m, x, n, out, NULL);
        else
            for (size_t i = 0; i < n; i++)
                fs_model_predict_raw(m, x + i * nf, out + i * (size_t)fs_model_num_outputs(m),
                                     NULL);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    printf("%s: form %s, isa %s, %s %.3f us/row (%zu rows, best of %d); estimates table %.0f, "
           "walk %.0f ns",
           argv[1], forms[fsm_single_form(m)], fs_model_isa(m), batch ? "batch" : "single",
           best / (double)n * 1e6, n, reps, m->qs_est_ns, m->walk_est_ns);
    if (m->calibrated)
        printf("; calibrated: table %.0f, walk %.0f ns", m->cal_ns[0], m->cal_ns[1]);
    printf("\n");
    free(x);
    free(out);
    fs_model_free(m);
    return 0;
}
