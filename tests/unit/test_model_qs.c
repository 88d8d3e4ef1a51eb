/*
 * Unit tests of the engine's QuickScorer single-row form (fs_model_impl.h: per feature and
 * bin a precomputed AND of the bitvectors of every false node, dense or with checkpoints and
 * single nodes in between; zero and NaN rows) and of the choice between it and the fallback
 * forms. Models are generated here with random tree shapes (2 to 64 leaves, so both 32- and
 * 64-bit bitvectors), random features, thresholds (shared, +-0, around 1e-35, huge), every
 * missing type and default direction, one or three classes; the expected raw score comes from
 * a reference walker written in this file from LightGBM's documented decision rules
 * (Tree::NumericalDecision, the predictor's kZeroThreshold), summing each class's trees in file
 * order from +0.0. Every model is loaded with several table budgets (dense table, checkpoint
 * distances 2, 4, ..., no QuickScorer form) and scored single row and batch on rows made of
 * every threshold, its neighbouring doubles and the special values, on several iteration
 * ranges, bit for bit against the reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_model.h"
#include "fs_model_impl.h"
#include "ref_decision.h"

#define NF 4
#define MAXL 80

typedef struct gtree {
    int nleaves;
    int feat[MAXL], dtype[MAXL], child[MAXL][2]; /* child >= 0 node, < 0 ~leaf */
    double thr[MAXL], leaf[MAXL];
} gtree;

static unsigned long long rng_state = 0x9E3779B97F4A7C15ULL;

static unsigned rnd(unsigned n)
{
    return ref_rnd(&rng_state, n);
}

/* Appends printf-formatted text at t + n (a buffer of cap bytes); n counts what would have
 * been written, so n >= cap after the last APPEND means the text did not fit. */
#define APPEND(...) n += (size_t)snprintf(t + n, n < cap ? cap - n : 0, __VA_ARGS__)

/* The header of a regression model on nfeat features f0 f1 ...; returns its length. */
static size_t regression_header(char *t, size_t cap, int nfeat)
{
    size_t n = 0;
    APPEND("tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=%d\n"
           "objective=regression\nfeature_names=",
           nfeat - 1);
    for (int i = 0; i < nfeat; i++)
        APPEND("f%d%s", i, i + 1 < nfeat ? " " : "\n\n");
    return n;
}

/* A random tree shape: split a random leaf until there are `nleaves`. */
static void gen_tree(gtree *t, int nleaves, double leaf_shift)
{
    int parent[MAXL][2]; /* per leaf: its node and side */
    t->nleaves = nleaves;
    for (int l = 0; l < nleaves; l++)
        t->leaf[l] = (double)((int)rnd(2001) - 1000) / 7.0 + leaf_shift;
    if (nleaves == 1)
        return;
    t->child[0][0] = ~0;
    t->child[0][1] = ~1;
    parent[0][0] = 0;
    parent[0][1] = 0;
    parent[1][0] = 0;
    parent[1][1] = 1;
    for (int n = 1, nl = 2; nl < nleaves; n++, nl++) {
        int l = (int)rnd((unsigned)nl);
        int p = parent[l][0], side = parent[l][1];
        t->child[p][side] = n;
        t->child[n][0] = ~l;
        t->child[n][1] = ~nl;
        parent[l][0] = n;
        parent[l][1] = 0;
        parent[nl][0] = n;
        parent[nl][1] = 1;
    }
    for (int n = 0; n < nleaves - 1; n++) {
        t->feat[n] = (int)rnd(NF);
        /* missing type None / Zero / NaN, default left or not */
        t->dtype[n] = (int)(rnd(3) << 2 | rnd(2) << 1);
        t->thr[n] = rnd(3) ? ref_thr_pool[rnd(REF_NPOOL)] : (double)((int)rnd(4001) - 2000) / 16.0;
    }
}

static double ref_tree_value(const gtree *t, const double *x)
{
    if (t->nleaves == 1)
        return t->leaf[0];
    int n = 0;
    while (n >= 0)
        n = t->child[n][ref_left(ref_base(x[t->feat[n]]), t->thr[n], t->dtype[n]) ? 0 : 1];
    return t->leaf[~n];
}

/* Model text (capped buffer; NULL if it does not fit). */
static char *model_text(const gtree *trees, int ntrees, int nclass, size_t *len)
{
    size_t cap = 256 + (size_t)ntrees * 6000, n = 0;
    char *t = malloc(cap);
    if (t == NULL)
        return NULL;
    APPEND("tree\nversion=v4\nnum_class=%d\nnum_tree_per_iteration=%d\nmax_feature_idx=%d\n",
           nclass, nclass, NF - 1);
    if (nclass > 1)
        APPEND("objective=multiclass num_class:%d\nfeature_names=a b c d\n\n", nclass);
    else
        APPEND("objective=regression\nfeature_names=a b c d\n\n");
    for (int i = 0; i < ntrees; i++) {
        const gtree *r = &trees[i];
        int ni = r->nleaves - 1;
        APPEND("Tree=%d\nnum_leaves=%d\nnum_cat=0\n", i, r->nleaves);
        if (ni > 0) {
            APPEND("split_feature=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->feat[k], k + 1 < ni ? " " : "\n");
            APPEND("threshold=");
            for (int k = 0; k < ni; k++)
                APPEND("%.17g%s", r->thr[k], k + 1 < ni ? " " : "\n");
            APPEND("decision_type=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->dtype[k], k + 1 < ni ? " " : "\n");
            APPEND("left_child=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->child[k][0], k + 1 < ni ? " " : "\n");
            APPEND("right_child=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->child[k][1], k + 1 < ni ? " " : "\n");
        }
        APPEND("leaf_value=");
        for (int k = 0; k < r->nleaves; k++)
            APPEND("%.17g%s", r->leaf[k], k + 1 < r->nleaves ? " " : "\n");
        APPEND("is_linear=0\nshrinkage=1\n\n");
    }
    APPEND("end of trees\n");
    if (n >= cap) {
        free(t);
        return NULL;
    }
    *len = n;
    return t;
}

/* Row values worth trying: every threshold, its neighbours, specials. */
static size_t row_values(const gtree *trees, int ntrees, double *v, size_t cap)
{
    static const double special[] = {0.0,  -0.0,     1e-36,     -1e-36, 1e-35, -1e-35, NAN,
                                     -NAN, INFINITY, -INFINITY, 1e-34,  3.0,   -1.0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof special / sizeof special[0] && n < cap; i++)
        v[n++] = special[i];
    for (int i = 0; i < ntrees; i++)
        for (int k = 0; k < trees[i].nleaves - 1 && n + 3 <= cap; k++) {
            double t = trees[i].thr[k];
            v[n++] = t;
            v[n++] = nextafter(t, INFINITY);
            v[n++] = nextafter(t, -INFINITY);
        }
    return n;
}

/* Forms reached over the whole run, by enum fsm_form, and the checkpoint distances seen. */
static int forms_seen[4];
static int shifts_seen[17];
/* Rows also scored through the portable (0) and AVX2 (1) variants of the table AND, when
 * the CPU runs a better one. */
static long variants_checked[2];

/* 1 if fs_model_predict_raw scores m with its QuickScorer form (what fsm_single_form reports):
 * every leaf value of the form's own copy (qs_leaf) is set to 1.0 for one call, so a row
 * scores exactly its number of trees per class there, and the walks (which read their leaf
 * values elsewhere) give the model's real score. */
static int qs_scores(fs_model *m, const double *x)
{
    int k_per = fs_model_num_outputs(m), ok = 1;
    size_t nl = (size_t)m->num_leaves_total;
    double *keep = malloc(nl * sizeof(double)), *got = malloc((size_t)k_per * sizeof(double));
    if (keep == NULL || got == NULL) {
        ok = 0;
        goto out;
    }
    memcpy(keep, m->qs_leaf, nl * sizeof(double));
    for (size_t i = 0; i < nl; i++)
        m->qs_leaf[i] = 1.0;
    fs_model_predict_raw(m, x, got, NULL);
    memcpy(m->qs_leaf, keep, nl * sizeof(double));
    for (int c = 0; c < k_per; c++)
        ok &= got[c] == (double)(m->num_trees / k_per);
out:
    free(keep);
    free(got);
    return ok;
}

/* Scores rows built from the values on several iteration ranges, single row and batch,
 * against the reference, with the model loaded under `budget`. Returns the form used. */
static int check_model(const gtree *trees, int ntrees, int nclass, size_t budget,
                       const double *rows, size_t nrows)
{
    size_t len = 0;
    int form = -1;
    char *text = model_text(trees, ntrees, nclass, &len);
    CHECK(text != NULL);
    if (text == NULL)
        return -1;
    char err[256];
    fs_model *m = fsm_load_buffer(text, len, "gen.txt", budget, err, sizeof err);
    free(text);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return -1;
    }
    form = fsm_single_form(m);
    forms_seen[form]++;
    int max_leaves = 1;
    for (int i = 0; i < ntrees; i++)
        if (trees[i].nleaves > max_leaves)
            max_leaves = trees[i].nleaves;
    if (form == FSM_FORM_QS_DENSE || form == FSM_FORM_QS_DELTA) {
        shifts_seen[m->qs_shift]++;
        CHECK_EQ_INT(m->qs_bits, max_leaves <= 32 ? 32 : 64);
        CHECK(m->qs_tab_bytes <= budget);
        CHECK(nrows > 0 && qs_scores(m, rows));
    }

    int niter = ntrees / nclass;
    double *bout = malloc(nrows * (size_t)nclass * sizeof(double));
    CHECK(bout != NULL);
    if (bout == NULL)
        goto out;
    const int ranges[][2] = {{0, 0}, {0, 1}, {1, 3}, {5, 4}, {3, 7}, {2, 13}, {7, 29}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        fs_predict_opts o = {.start_iteration = ranges[k][0], .num_iteration = ranges[k][1]};
        int first = o.start_iteration < niter ? o.start_iteration : niter;
        int count = o.num_iteration > 0 ? o.num_iteration : niter - first;
        if (first + count > niter)
            count = niter - first;
        fs_model_predict_raw_batch(m, rows, nrows, bout, &o);
        int bad = 0;
        for (size_t r = 0; r < nrows; r++) {
            const double *x = rows + r * NF;
            double want[3] = {0.0, 0.0, 0.0}, got[3] = {-1, -1, -1};
            for (int i = first * nclass; i < (first + count) * nclass; i++)
                want[i % nclass] += ref_tree_value(&trees[i], x);
            fs_model_predict_raw(m, x, got, &o);
            /* The other variants of the table AND this CPU can run (portable, AVX2). */
            int simd = m->qs_simd;
            for (int v = 0; v < simd; v++) {
                double alt[3] = {-1, -1, -1};
                m->qs_simd = v;
                fs_model_predict_raw(m, x, alt, &o);
                m->qs_simd = simd;
                variants_checked[v]++;
                for (int c = 0; c < nclass; c++)
                    if (memcmp(&alt[c], &want[c], sizeof alt[c]) != 0 && bad++ < 3)
                        fprintf(stderr, "variant %d: class %d %.17g, reference %.17g\n", v, c,
                                alt[c], want[c]);
            }
            for (int c = 0; c < nclass; c++)
                if (memcmp(&got[c], &want[c], sizeof got[c]) != 0 ||
                    memcmp(&bout[r * (size_t)nclass + (size_t)c], &want[c], sizeof got[c]) != 0) {
                    if (bad++ < 3)
                        fprintf(stderr,
                                "form %d budget %zu ntrees %d class %d range %d+%d row (%.17g, "
                                "%.17g, %.17g, %.17g): single %.17g batch %.17g reference "
                                "%.17g\n",
                                form, budget, ntrees, c, first, count, x[0], x[1], x[2], x[3],
                                got[c], bout[r * (size_t)nclass + (size_t)c], want[c]);
                }
        }
        CHECK_EQ_INT(bad, 0);
    }
out:
    free(bout);
    fs_model_free(m);
    return form;
}

/* One generated model under every budget: the default (dense table expected), budgets that
 * force checkpoints, none (fallback). */
static void check_all_budgets(const gtree *trees, int ntrees, int nclass, int expect_qs)
{
    enum { NROWS = 300 };
    size_t cap = 16 + (size_t)ntrees * 3 * MAXL;
    double *vals = malloc(cap * sizeof(double));
    double *rows = malloc(NROWS * NF * sizeof(double));
    CHECK(vals != NULL && rows != NULL);
    if (vals != NULL && rows != NULL) {
        size_t nv = row_values(trees, ntrees, vals, cap);
        for (size_t r = 0; r < NROWS; r++)
            for (int f = 0; f < NF; f++)
                rows[r * NF + (size_t)f] = vals[rnd((unsigned)nv)];
        int form = check_model(trees, ntrees, nclass, FSM_QS_TABLE_BUDGET, rows, NROWS);
        CHECK_EQ_INT(form, expect_qs ? FSM_FORM_QS_DENSE : FSM_FORM_BINNED);
        form = check_model(trees, ntrees, nclass, 0, rows, NROWS);
        CHECK_EQ_INT(form, FSM_FORM_BINNED);
        for (size_t b = 512; b <= 65536; b *= 2)
            (void)check_model(trees, ntrees, nclass, b, rows, NROWS);
    }
    free(vals);
    free(rows);
}

static gtree trees[120];

/* 200 stumps, each on its own feature of 200: the table would read 200 rows of 832 bytes per
 * row scored against one step per tree for a walk, so the loader's cost rule keeps the walk
 * (with a budget that would fit the table). Scores checked against x[i] <= t_i sums. */
static void check_many_features(void)
{
    enum { N = 200 };
    size_t cap = 64 * 1024, n = 0;
    char *t = malloc(cap);
    double *x = malloc(N * sizeof(double));
    CHECK(t != NULL && x != NULL);
    if (t == NULL || x == NULL)
        goto out;
    n = regression_header(t, cap, N);
    for (int i = 0; i < N; i++)
        APPEND("Tree=%d\nnum_leaves=2\nnum_cat=0\nsplit_feature=%d\nthreshold=%d.5\n"
               "decision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=%d %d.25\n"
               "leaf_count=1 1\ninternal_count=2\nis_linear=0\nshrinkage=1\n\n",
               i, i, i % 7, -i, i);
    APPEND("end of trees\n");
    CHECK(n < cap);
    if (n >= cap)
        goto out;
    char err[256];
    fs_model *m = fsm_load_buffer(t, n, "many.txt", (size_t)64 << 20, err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL)
        goto out;
    CHECK(fsm_single_form(m) != FSM_FORM_QS_DENSE && fsm_single_form(m) != FSM_FORM_QS_DELTA);
    CHECK(m->qs_est_ns > m->walk_est_ns);
    for (int r = 0; r < 20; r++) {
        double want = 0.0, got = -1.0;
        for (int i = 0; i < N; i++) {
            x[i] = (double)rnd(8) - 0.5 * (double)rnd(2);
            want += x[i] <= (double)(i % 7) + 0.5 ? (double)-i : (double)i + 0.25;
        }
        fs_model_predict_raw(m, x, &got, NULL);
        CHECK_EQ_BITS(got, want);
    }
    fs_model_free(m);
out:
    free(t);
    free(x);
}

/* A model whose table and walk estimates are within FSM_CAL_WINDOW (200 chains of 8 leaves
 * over 100 features: table ~1800 ns, walk ~1750 ns): FS_ENGINE_FORM=auto measures both at
 * load and takes one of them; rule takes the time model's pick (the walk), table and walk
 * force theirs; every choice scores the reference bit for bit, single row and batch. An
 * unknown value fails the load. */
static void check_calibration(void)
{
    enum { N = 100, NT = 200, NL = 8, NROWS = 30 };
    static int feat[NT][NL - 1];
    static double thr[NT][NL - 1], leaf[NT][NL];
    size_t cap = 256 * 1024, n = 0;
    char *t = malloc(cap);
    double *x = malloc((size_t)NROWS * N * sizeof(double));
    double want[NROWS], got[NROWS];
    char err[256];
    CHECK(t != NULL && x != NULL);
    if (t == NULL || x == NULL)
        goto out;
    for (int i = 0; i < NT; i++) {
        for (int k = 0; k < NL - 1; k++) {
            feat[i][k] = (i * 7 + k) % N;
            thr[i][k] = (double)((int)rnd(25) - 12) / 4.0;
        }
        for (int k = 0; k < NL; k++)
            leaf[i][k] = (double)((int)rnd(2001) - 1000) / 16.0 + 1e-3 * i;
    }
    n = regression_header(t, cap, N);
    for (int i = 0; i < NT; i++) {
        APPEND("Tree=%d\nnum_leaves=%d\nnum_cat=0\nsplit_feature=", i, NL);
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", feat[i][k], k + 2 < NL ? " " : "\nthreshold=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%.17g%s", thr[i][k], k + 2 < NL ? " " : "\ndecision_type=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("2%s", k + 2 < NL ? " " : "\nleft_child=");
        /* A chain: node k's left child is leaf k, its right child node k + 1. */
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", -(k + 1), k + 2 < NL ? " " : "\nright_child=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", k + 2 < NL ? k + 1 : -NL, k + 2 < NL ? " " : "\nleaf_value=");
        for (int k = 0; k < NL; k++)
            APPEND("%.17g%s", leaf[i][k], k + 1 < NL ? " " : "\nleaf_count=");
        for (int k = 0; k < NL; k++)
            APPEND("1%s", k + 1 < NL ? " " : "\ninternal_count=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", NL - k, k + 2 < NL ? " " : "\nis_linear=0\nshrinkage=1\n\n");
    }
    APPEND("end of trees\n");
    CHECK(n < cap);
    if (n >= cap)
        goto out;
    for (int r = 0; r < NROWS; r++) {
        want[r] = 0.0;
        for (int f = 0; f < N; f++)
            x[r * N + f] = (double)((int)rnd(33) - 16) / 4.0 + (rnd(3) == 0 ? 0.125 : 0.0);
        for (int i = 0; i < NT; i++) {
            int k = 0;
            while (k < NL - 1 && !(x[r * N + feat[i][k]] <= thr[i][k]))
                k++;
            want[r] += leaf[i][k];
        }
    }
    static const char *const modes[] = {"auto", "rule", "table", "walk"};
    for (int mode = 0; mode < 4; mode++) {
        CHECK(setenv("FS_ENGINE_FORM", modes[mode], 1) == 0);
        fs_model *m = fs_model_load_buffer(t, n, "cal.txt", err, sizeof err);
        CHECK(m != NULL);
        if (m == NULL) {
            fprintf(stderr, "cal.txt: %s\n", err);
            continue;
        }
        int form = fsm_single_form(m), table = form == FSM_FORM_QS_DENSE ||
                                                form == FSM_FORM_QS_DELTA;
        if (mode != 3) {
            /* (walk: the table is not even built, so there are no estimates) */
            CHECK(m->qs_est_ns < FSM_CAL_WINDOW * m->walk_est_ns &&
                  m->walk_est_ns < FSM_CAL_WINDOW * m->qs_est_ns);
            CHECK(m->qs_est_ns > m->walk_est_ns);
        }
        CHECK_EQ_INT(m->calibrated, mode == 0);
        if (mode == 0) {
            CHECK(m->cal_ns[0] > 0.0 && m->cal_ns[1] > 0.0);
            CHECK(table || form == FSM_FORM_BINNED);
            fprintf(stderr, "calibration: table %.0f ns, walk %.0f ns per row (estimates %.0f, %.0f): form %d\n",
                    m->cal_ns[0], m->cal_ns[1], m->qs_est_ns, m->walk_est_ns, form);
        } else {
            CHECK_EQ_INT(table, mode == 2);
            /* The table is freed when the walk is chosen. */
            CHECK_EQ_INT(m->qs_bits != 0, mode == 2);
        }
        for (int r = 0; r < NROWS; r++) {
            double one = -1.0;
            fs_model_predict_raw(m, x + r * N, &one, NULL);
            CHECK_EQ_BITS(one, want[r]);
        }
        fs_model_predict_raw_batch(m, x, NROWS, got, NULL);
        for (int r = 0; r < NROWS; r++)
            CHECK_EQ_BITS(got[r], want[r]);
        fs_model_free(m);
    }
    CHECK(setenv("FS_ENGINE_FORM", "fast", 1) == 0);
    CHECK(fs_model_load_buffer(t, n, "cal.txt", err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "cal.txt:0: FS_ENGINE_FORM=fast: expected auto, rule, table or walk");
    CHECK(unsetenv("FS_ENGINE_FORM") == 0);
out:
    free(t);
    free(x);
}

/* 300 features, each split with the NaN missing type both default-left and default-right, so
 * 601 execution columns (one per feature and direction, plus the NaN column): more than the
 * double-form walk keeps on the stack, while the QuickScorer table (300 used features) fits.
 * 16 chain-shaped trees of 64 leaves (a walk of ~32 steps each, so the loader's cost rule
 * picks the table). The table must be what scores (it once was built and reported but the
 * row fell to the per-node walk), exactly: checked against a walk of the same trees by the
 * decision rules written in this file. */
static void check_wide_columns(void)
{
    enum { N = 300, NT = 16, NL = 64, NROWS = 40 };
    static int feat[NT][NL - 1], dtype[NT][NL - 1];
    static double thr[NT][NL - 1], leaf[NT][NL];
    size_t cap = 512 * 1024, n = 0;
    char *t = malloc(cap);
    double *x = malloc((size_t)NROWS * N * sizeof(double));
    double *bout = malloc(NROWS * sizeof(double));
    fs_model *m = NULL;
    CHECK(t != NULL && x != NULL && bout != NULL);
    if (t == NULL || x == NULL || bout == NULL)
        goto out;
    for (int i = 0; i < NT; i++) {
        for (int k = 0; k < NL - 1; k++) {
            int g = i * (NL - 1) + k;
            feat[i][k] = g % N;
            /* NaN missing type (2 << 2), default left on every other pass over the features */
            dtype[i][k] = 8 | ((g / N) % 2) << 1;
            thr[i][k] = (double)((int)rnd(41) - 20) / 4.0;
        }
        for (int k = 0; k < NL; k++)
            leaf[i][k] = (double)((int)rnd(2001) - 1000) / 8.0 + 1e-3 * i;
    }
    n = regression_header(t, cap, N);
    for (int i = 0; i < NT; i++) {
        APPEND("Tree=%d\nnum_leaves=%d\nnum_cat=0\nsplit_feature=", i, NL);
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", feat[i][k], k + 2 < NL ? " " : "\nthreshold=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%.17g%s", thr[i][k], k + 2 < NL ? " " : "\ndecision_type=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", dtype[i][k], k + 2 < NL ? " " : "\nleft_child=");
        /* A chain: node k's left child is leaf k, its right child node k + 1 (the last
         * node's right child is the last leaf). */
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", -(k + 1), k + 2 < NL ? " " : "\nright_child=");
        for (int k = 0; k < NL - 1; k++)
            APPEND("%d%s", k + 2 < NL ? k + 1 : -NL, k + 2 < NL ? " " : "\nleaf_value=");
        for (int k = 0; k < NL; k++)
            APPEND("%.17g%s", leaf[i][k], k + 1 < NL ? " " : "\n");
        APPEND("is_linear=0\nshrinkage=1\n\n");
    }
    APPEND("end of trees\n");
    CHECK(n < cap);
    if (n >= cap)
        goto out;
    char err[256];
    m = fs_model_load_buffer(t, n, "wide.txt", err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        goto out;
    }
    CHECK_EQ_INT(m->num_xcols, 2 * N + 1);
    CHECK_EQ_INT(fsm_single_form(m), FSM_FORM_QS_DENSE);
    for (int r = 0; r < NROWS; r++)
        for (int f = 0; f < N; f++) {
            unsigned c = rnd(8);
            x[r * N + f] = c == 0 ? NAN : c == 1 ? 0.0 : (double)((int)rnd(49) - 24) / 4.0;
        }
    fs_model_predict_raw_batch(m, x, NROWS, bout, NULL);
    for (int r = 0; r < NROWS; r++) {
        const double *xr = x + (size_t)r * N;
        double want = 0.0, got = -1.0;
        for (int i = 0; i < NT; i++) {
            int k = 0;
            while (k < NL - 1 && !ref_left(ref_base(xr[feat[i][k]]), thr[i][k], dtype[i][k]))
                k++;
            want += leaf[i][k];
        }
        fs_model_predict_raw(m, xr, &got, NULL);
        CHECK_EQ_BITS(got, want);
        CHECK_EQ_BITS(bout[r], want);
    }
    CHECK(qs_scores(m, x));
out:
    fs_model_free(m);
    free(t);
    free(x);
    free(bout);
}

/* The tree caps of the QuickScorer form: its per-row bitvectors (acc in qs_predict) hold
 * exactly FSM_QS_MAX_TREES32 + 16 (32-bit) or FSM_QS_MAX_TREES64 + 8 (64-bit) entries, and
 * the table AND writes n + one vector of them, so a model at each cap, scored by every
 * variant the CPU runs under ASan, pins that bound; one tree more must fall back to a walk.
 * Returns the form. */
static int check_cap(int ntrees, int max_leaves)
{
    enum { NROWS = 24 };
    int form = -1;
    gtree *big = malloc((size_t)ntrees * sizeof(gtree));
    size_t cap = 16 + (size_t)ntrees * 3 * MAXL;
    double *vals = malloc(cap * sizeof(double));
    double *rows = malloc(NROWS * NF * sizeof(double));
    CHECK(big != NULL && vals != NULL && rows != NULL);
    if (big == NULL || vals == NULL || rows == NULL)
        goto out;
    for (int t = 0; t < ntrees; t++)
        gen_tree(&big[t], t == 0 ? max_leaves : 2 + (int)rnd((unsigned)max_leaves - 1),
                 1e-3 * t);
    size_t nv = row_values(big, ntrees, vals, cap);
    for (size_t r = 0; r < NROWS; r++)
        for (int f = 0; f < NF; f++)
            rows[r * NF + (size_t)f] = vals[rnd((unsigned)nv)];
    form = check_model(big, ntrees, 1, FSM_QS_TABLE_BUDGET, rows, NROWS);
out:
    free(big);
    free(vals);
    free(rows);
    return form;
}

/* Models of single-leaf trees only: no used feature (the table AND's nu == 0 branch sets
 * every bitvector to all ones), each tree scores its one leaf. */
static void check_no_features(void)
{
    double rows[3 * NF] = {0.0, 1.0, -2.5, 7.0, NAN, NAN, NAN, NAN, -0.0, 1e-36, 1e300, -1.0};
    for (int nclass = 1; nclass <= 3; nclass += 2) {
        int ntrees = 7 * nclass;
        for (int t = 0; t < ntrees; t++)
            gen_tree(&trees[t], 1, 0.25 * t);
        CHECK_EQ_INT(check_model(trees, ntrees, nclass, FSM_QS_TABLE_BUDGET, rows, 3),
                     FSM_FORM_QS_DENSE);
    }
}

int main(void)
{
    /* The forms asserted below are the defaults' (and check_calibration sets its own). */
    unsetenv("FS_ENGINE_FORM");
    unsetenv("FS_ENGINE_ISA");
    /* Tree counts around the vector widths (16 and 8 trees a vector), leaf counts up to 32
     * (32-bit bitvectors) and up to 64 (64-bit), one and three classes. */
    const struct {
        int ntrees, nclass, min_leaves, max_leaves;
    } cases[] = {
        {1, 1, 2, 4},   {3, 1, 1, 8},   {16, 1, 2, 31}, {17, 1, 30, 32}, {40, 1, 2, 32},
        {9, 1, 33, 64}, {25, 1, 2, 64}, {33, 1, 60, 64}, {12, 3, 2, 20},  {36, 3, 2, 64},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int t = 0; t < cases[i].ntrees; t++) {
            int span = cases[i].max_leaves - cases[i].min_leaves + 1;
            int nl = cases[i].min_leaves + (int)rnd((unsigned)span);
            if (t == 0)
                nl = cases[i].max_leaves;
            gen_tree(&trees[t], nl, 1e-3 * t);
        }
        check_all_budgets(trees, cases[i].ntrees, cases[i].nclass, 1);
    }
    /* A tree of 65 leaves: no QuickScorer form (bitvectors are at most 64 bits). */
    for (int t = 0; t < 5; t++)
        gen_tree(&trees[t], t == 2 ? 65 : 20, 0.0);
    check_all_budgets(trees, 5, 1, 0);
    check_many_features();
    check_calibration();
    check_wide_columns();
    check_no_features();
    {
        int f32 = check_cap(FSM_QS_MAX_TREES32, 32), f64 = check_cap(FSM_QS_MAX_TREES64, 64);
        CHECK(f32 == FSM_FORM_QS_DENSE || f32 == FSM_FORM_QS_DELTA);
        CHECK(f64 == FSM_FORM_QS_DENSE || f64 == FSM_FORM_QS_DELTA);
        CHECK_EQ_INT(check_cap(FSM_QS_MAX_TREES32 + 1, 32), FSM_FORM_WALK);
        CHECK_EQ_INT(check_cap(FSM_QS_MAX_TREES64 + 1, 64), FSM_FORM_WALK);
        fprintf(stderr, "at the caps: forms %d (32-bit), %d (64-bit)\n", f32, f64);
    }
    {
        /* The batch path sums 4 rows together while their bitvectors (n masks + one vector,
         * in 64-byte units) fit 4 to FSM_QS_BATCH_BYTES (16 KiB), else 2, else one row at a
         * time: models on each side of both bounds, scored under ASan (single row == batch
         * == reference). */
        static const int at[][2] = {{1008, 32}, {1009, 32}, {2032, 32}, {2033, 32},
                                    {504, 64},  {505, 64},  {1016, 64}, {1017, 64}};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            int f = check_cap(at[i][0], at[i][1]);
            CHECK(f == FSM_FORM_QS_DENSE || f == FSM_FORM_QS_DELTA);
        }
    }
    /* Every form and several checkpoint distances were reached. */
    CHECK(forms_seen[FSM_FORM_QS_DENSE] > 0);
    CHECK(forms_seen[FSM_FORM_QS_DELTA] > 0);
    CHECK(forms_seen[FSM_FORM_BINNED] > 0);
    for (int s = 0; s <= 3; s++)
        CHECK(shifts_seen[s] > 0);
    fprintf(stderr, "rows also scored by the portable / AVX2 table AND: %ld / %ld\n",
            variants_checked[0], variants_checked[1]);
    fprintf(stderr, "forms: dense %d, checkpoints %d, binned %d; shifts 0..4: %d %d %d %d %d\n",
            forms_seen[FSM_FORM_QS_DENSE], forms_seen[FSM_FORM_QS_DELTA],
            forms_seen[FSM_FORM_BINNED], shifts_seen[0], shifts_seen[1], shifts_seen[2],
            shifts_seen[3], shifts_seen[4]);
    return CHECK_DONE();
}
