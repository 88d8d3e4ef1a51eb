/*
 * bench_engine: single-row latency and one-thread batch throughput of our engine (fs_model)
 * against LightGBM's own C API, both in this process, on the same model files and rows.
 *
 *   bench_engine LIB_LIGHTGBM_SO DATA_DIR [BUNDLE_DIR]
 *
 * DATA_DIR holds fraud.txt, large.txt and X.f64 (written by bench/engine/train.py).
 * BUNDLE_DIR (bench/engine/run passes models/default) adds its model.txt, scored on the
 * feature rows of 40,000 generated transactions (fs_gen seed 2024, each customer's state
 * updated as the services do): the model the services really run.
 * LightGBM paths: LGBM_BoosterPredictForMatSingleRowFast (after ...FastInit, num_threads=1)
 * and LGBM_BoosterPredictForMat (num_threads=1). Ours: fs_model_predict and
 * fs_model_predict_batch. Rows are timed in chunks, alternating the engines, and the best of
 * several repetitions of each chunk counts (robust on a shared machine); the two engines'
 * outputs are compared bit for bit on every row as a sanity check. Prints ratios
 * (LightGBM time / our time), so > 1 means we are faster. Each model's line "form:" says
 * which single-row form scores it (fs_model_impl.h) and the ISA the engine dispatched to; the
 * first lines name the CPU (/proc/cpuinfo) and the ISA it offers. Knobs: FS_ENGINE_ISA=
 * avx512|avx2|scalar (the engine's own setting: caps the ISA, so one machine measures the
 * narrower paths), BENCH_QS_BUDGET=BYTES (the QuickScorer table budget; 0 = the binned walk).
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_rows.h"
#include "bench_util.h"
#include "fs_bundle.h"
#include "fs_features.h"
#include "fs_gen.h"
#include "fs_model.h"
#include "fs_model_impl.h"
#include "fs_profile_store.h"

typedef void *BoosterHandle;
typedef void *FastConfigHandle;
typedef int (*create_fn)(const char *, int *, BoosterHandle *);
typedef int (*free_fn)(BoosterHandle);
typedef int (*fast_init_fn)(BoosterHandle, int, int, int, int, int32_t, const char *,
                            FastConfigHandle *);
typedef int (*fast_fn)(FastConfigHandle, const void *, int64_t *, double *);
typedef int (*fast_free_fn)(FastConfigHandle);
typedef int (*mat_fn)(BoosterHandle, const void *, int, int32_t, int32_t, int, int, int, int,
                      const char *, int64_t *, double *);
typedef const char *(*err_fn)(void);

#define C_API_DTYPE_FLOAT64 1
#define C_API_PREDICT_NORMAL 0

static struct {
    create_fn create;
    free_fn free_booster;
    fast_init_fn fast_init;
    fast_fn fast;
    fast_free_fn fast_free;
    mat_fn mat;
    err_fn last_error;
} lgb;

/* The QuickScorer table budget models are loaded with (BENCH_QS_BUDGET). */
static size_t qs_budget = FSM_QS_TABLE_BUDGET;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int load_lib(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "bench_engine: %s: %s\n", path, dlerror());
        return -1;
    }
    struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"LGBM_BoosterCreateFromModelfile", (void **)&lgb.create},
        {"LGBM_BoosterFree", (void **)&lgb.free_booster},
        {"LGBM_BoosterPredictForMatSingleRowFastInit", (void **)&lgb.fast_init},
        {"LGBM_BoosterPredictForMatSingleRowFast", (void **)&lgb.fast},
        {"LGBM_FastConfigFree", (void **)&lgb.fast_free},
        {"LGBM_BoosterPredictForMat", (void **)&lgb.mat},
        {"LGBM_GetLastError", (void **)&lgb.last_error},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(h, syms[i].name);
        if (p == NULL) {
            fprintf(stderr, "bench_engine: %s: no symbol %s\n", path, syms[i].name);
            return -1;
        }
        memcpy(syms[i].slot, &p, sizeof p);
    }
    return 0;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* One model: returns 0 if both engines ran and agreed. */
static int bench_model(const char *label, const char *model_path, const double *x, size_t nrows,
                       int reps)
{
    char err[512];
    int rc = -1, iters = 0;
    BoosterHandle booster = NULL;
    FastConfigHandle fast = NULL;
    double *ours = NULL, *theirs = NULL;
    fs_model *m = fsm_load_file(model_path, qs_budget, err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "bench_engine: %s\n", err);
        goto out;
    }
    int nf = fs_model_num_features(m);
    static const char *const forms[] = {"double-form walk", "binned walk", "QuickScorer dense",
                                        "QuickScorer checkpoints"};
    int form = fsm_single_form(m);
    printf("%-6s form:       %d trees, %d features; %s", label, m->num_trees, nf, forms[form]);
    if (form >= FSM_FORM_QS_DENSE)
        printf(", %d-bit, K = %d, table %zu bytes", m->qs_bits, 1 << m->qs_shift,
               m->qs_tab_bytes);
    printf("; ISA %s\n", fs_model_isa(m));
    if (lgb.create(model_path, &iters, &booster) != 0 ||
        lgb.fast_init(booster, C_API_PREDICT_NORMAL, 0, -1, C_API_DTYPE_FLOAT64, nf,
                      "num_threads=1", &fast) != 0) {
        fprintf(stderr, "bench_engine: LightGBM: %s\n", lgb.last_error());
        goto out;
    }
    ours = malloc(nrows * sizeof(double));
    theirs = malloc(nrows * sizeof(double));
    if (ours == NULL || theirs == NULL)
        goto out;

    /* The machine may be shared: rows are cut into chunks of a few milliseconds, each chunk
     * is timed `reps` times alternating the two engines, and the fastest time of each chunk
     * counts. Both engines see the same interference pattern and the minimum filters it. */
    size_t nsingle = nrows < 20000 ? nrows : 20000, chunk = 250;
    double sum_lgb = 0, sum_ours = 0;
    for (size_t c0 = 0; c0 < nsingle; c0 += chunk) {
        size_t c1 = c0 + chunk < nsingle ? c0 + chunk : nsingle;
        double best_lgb = 1e30, best_ours = 1e30;
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            for (size_t i = c0; i < c1; i++) {
                int64_t len = 0;
                lgb.fast(fast, x + i * (size_t)nf, &len, &theirs[i]);
            }
            double t1 = now();
            for (size_t i = c0; i < c1; i++)
                fs_model_predict(m, x + i * (size_t)nf, &ours[i], NULL);
            double t2 = now();
            if (t1 - t0 < best_lgb)
                best_lgb = t1 - t0;
            if (t2 - t1 < best_ours)
                best_ours = t2 - t1;
        }
        sum_lgb += best_lgb;
        sum_ours += best_ours;
    }
    size_t mism = 0;
    for (size_t i = 0; i < nsingle; i++)
        mism += !same_bits(ours[i], theirs[i]);
    printf("%-6s single row: LightGBM %8.3f us/row, ours %8.3f us/row, ratio %6.1fx  "
           "(%zu rows, %zu differ)\n",
           label, sum_lgb / (double)nsingle * 1e6, sum_ours / (double)nsingle * 1e6,
           sum_lgb / sum_ours, nsingle, mism);
    fflush(stdout);

    /* Batch: chunks of rows per call, one thread, same best-of scheme. */
    size_t bchunk = 2000;
    sum_lgb = sum_ours = 0;
    for (size_t c0 = 0; c0 < nrows; c0 += bchunk) {
        size_t n = c0 + bchunk < nrows ? bchunk : nrows - c0;
        double best_lgb = 1e30, best_ours = 1e30;
        for (int r = 0; r < reps; r++) {
            int64_t len = 0;
            double t0 = now();
            if (lgb.mat(booster, x + c0 * (size_t)nf, C_API_DTYPE_FLOAT64, (int32_t)n, nf, 1,
                        C_API_PREDICT_NORMAL, 0, -1, "num_threads=1", &len, theirs + c0) != 0) {
                fprintf(stderr, "bench_engine: LightGBM: %s\n", lgb.last_error());
                goto out;
            }
            double t1 = now();
            fs_model_predict_batch(m, x + c0 * (size_t)nf, n, ours + c0, NULL);
            double t2 = now();
            if (t1 - t0 < best_lgb)
                best_lgb = t1 - t0;
            if (t2 - t1 < best_ours)
                best_ours = t2 - t1;
        }
        sum_lgb += best_lgb;
        sum_ours += best_ours;
    }
    mism = 0;
    for (size_t i = 0; i < nrows; i++)
        mism += !same_bits(ours[i], theirs[i]);
    printf("%-6s batch:      LightGBM %8.0f rows/s,  ours %8.0f rows/s,  ratio %6.1fx  "
           "(%zu rows, %zu differ)\n",
           label, (double)nrows / sum_lgb, (double)nrows / sum_ours, sum_lgb / sum_ours, nrows,
           mism);
    rc = mism == 0 ? 0 : -1;
out:
    if (fast != NULL)
        lgb.fast_free(fast);
    if (booster != NULL)
        lgb.free_booster(booster);
    free(ours);
    free(theirs);
    fs_model_free(m);
    return rc;
}

/* The CPU's model name (bench_cpu_info) and the vector ISA it offers, so every figure printed
 * can be tied to the machine it came from. */
static void print_cpu(void)
{
    char name[256];
    int avx512 = 0;
    bench_cpu_info(name, sizeof name, &avx512);
    const char *cpu_isa = "scalar";
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("avx512f"))
        cpu_isa = "avx512";
    else if (__builtin_cpu_supports("avx2"))
        cpu_isa = "avx2";
#endif
    const char *env = getenv("FS_ENGINE_ISA");
    printf("cpu: %s; offers %s; FS_ENGINE_ISA=%s\n", name, cpu_isa,
           env != NULL && env[0] != '\0' ? env : "(unset: auto)");
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_engine LIB_LIGHTGBM_SO DATA_DIR [BUNDLE_DIR]\n");
        return 2;
    }
    /* BENCH_QS_BUDGET=BYTES: the QuickScorer table budget (docs/engine.md, budget sweep). */
    const char *budget = getenv("BENCH_QS_BUDGET");
    if (budget != NULL)
        qs_budget = (size_t)strtoull(budget, NULL, 10);
    if (load_lib(argv[1]) != 0)
        return 1;
    print_cpu();
    char path[4096];
    size_t nrows = 0;
    snprintf(path, sizeof path, "%s/X.f64", argv[2]);
    double *x = bench_read_rows("bench_engine", path, 16, &nrows);
    if (x == NULL)
        return 1;
    int rc = 0;
    if (argc == 4) {
        int bnf = 0;
        size_t bn = 40000;
        double *bx = bench_bundle_rows("bench_engine", argv[3], bn, &bnf);
        if (bx == NULL) {
            free(x);
            return 1;
        }
        snprintf(path, sizeof path, "%s/model.txt", argv[3]);
        rc |= bench_model("bundle", path, bx, bn, 7) != 0;
        free(bx);
    }
    snprintf(path, sizeof path, "%s/fraud.txt", argv[2]);
    rc |= bench_model("fraud", path, x, nrows < 40000 ? nrows : 40000, 7) != 0;
    snprintf(path, sizeof path, "%s/large.txt", argv[2]);
    rc |= bench_model("large", path, x, nrows < 6000 ? nrows : 6000, 7) != 0;
    free(x);
    return rc;
}
