/*
 * Unit tests of the engine's binned single-row form (fs_model_impl.h: rows cut into bins of
 * each feature's distinct thresholds, 4-byte nodes, trees walked 16/8/4 at a time), the
 * fallback of models the QuickScorer form does not take (loaded here with no table budget so
 * that this form scores them). Models are
 * generated here; the expected raw score comes from a separate reference walker written in
 * this file from LightGBM's documented decision rules (Tree::NumericalDecision, the
 * predictor's kZeroThreshold), summing trees in file order from +0.0. Every row value that
 * matters is tried: each threshold, its neighbouring doubles, +-0, values around 1e-35, NaN,
 * +-inf. Both the single-row and the batch path are checked against the reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_model.h"
#include "fs_model_impl.h"
#include "ref_decision.h"

#define NF 3

/* Reference tree: the chain node0 -> (left node1, right leaf0); node1 -> (left leaf1, right
 * node2); node2 -> (left leaf2, right leaf3). */
typedef struct ref_tree {
    int feat[3];
    double thr[3];
    int dtype[3];     /* LightGBM decision_type: bit 1 default_left, bits 2-3 missing type */
    double leaf[4];
} ref_tree;

static double ref_tree_value(const ref_tree *t, const double *x)
{
    if (!ref_left(ref_base(x[t->feat[0]]), t->thr[0], t->dtype[0]))
        return t->leaf[0];
    if (ref_left(ref_base(x[t->feat[1]]), t->thr[1], t->dtype[1]))
        return t->leaf[1];
    return ref_left(ref_base(x[t->feat[2]]), t->thr[2], t->dtype[2]) ? t->leaf[2] : t->leaf[3];
}

static double ref_raw(const ref_tree *trees, int first, int count, const double *x)
{
    double s = 0.0;
    for (int i = first; i < first + count; i++)
        s += ref_tree_value(&trees[i], x);
    return s;
}

/* Model text of the trees (capped buffer; NULL if it does not fit). */
static char *model_text(const ref_tree *trees, int ntrees, size_t *len)
{
    size_t cap = 64 + (size_t)ntrees * 640, n = 0;
    char *t = malloc(cap);
    if (t == NULL)
        return NULL;
#define APPEND(...) n += (size_t)snprintf(t + n, n < cap ? cap - n : 0, __VA_ARGS__)
    APPEND("tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=%d\n",
           NF - 1);
    APPEND("objective=regression\nfeature_names=a b c\n\n");
    for (int i = 0; i < ntrees; i++) {
        const ref_tree *r = &trees[i];
        APPEND("Tree=%d\nnum_leaves=4\nnum_cat=0\nsplit_feature=%d %d %d\n", i, r->feat[0],
               r->feat[1], r->feat[2]);
        APPEND("threshold=%.17g %.17g %.17g\n", r->thr[0], r->thr[1], r->thr[2]);
        APPEND("decision_type=%d %d %d\nleft_child=1 -2 -3\nright_child=-1 2 -4\n",
               r->dtype[0], r->dtype[1], r->dtype[2]);
        APPEND("leaf_value=%.17g %.17g %.17g %.17g\n", r->leaf[0], r->leaf[1], r->leaf[2],
               r->leaf[3]);
        APPEND("leaf_count=1 1 1 1\ninternal_count=4 3 2\nis_linear=0\nshrinkage=1\n\n");
    }
    APPEND("end of trees\n");
#undef APPEND
    if (n >= cap) {
        free(t);
        return NULL;
    }
    *len = n;
    return t;
}

/* Deterministic generator (xorshift). */
static unsigned long long rng_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
    return ref_rnd(&rng_state, n);
}

static void gen_trees(ref_tree *trees, int ntrees, int distinct_thr)
{
    for (int i = 0; i < ntrees; i++) {
        for (int k = 0; k < 3; k++) {
            trees[i].feat[k] = distinct_thr ? 0 : (int)rnd(NF);
            /* missing type None / Zero / NaN, default left or not */
            trees[i].dtype[k] = (int)(rnd(3) << 2 | rnd(2) << 1);
            if (distinct_thr)
                trees[i].thr[k] = 1000.0 + i * 3 + k;
            else
                trees[i].thr[k] = ref_thr_pool[rnd(REF_NPOOL)];
        }
        for (int k = 0; k < 4; k++)
            trees[i].leaf[k] = (double)((int)rnd(2001) - 1000) / 7.0 + 1e-3 * i;
    }
}

/* Row values worth trying on a model: every threshold, its neighbours, specials. */
static size_t row_values(const ref_tree *trees, int ntrees, double *v, size_t cap)
{
    static const double special[] = {0.0,   -0.0, 1e-36, -1e-36, 1e-35, -1e-35,  NAN,
                                     -NAN,  INFINITY, -INFINITY, 1e-34, 3.0, -1.0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof special / sizeof special[0] && n < cap; i++)
        v[n++] = special[i];
    for (int i = 0; i < ntrees; i++)
        for (int k = 0; k < 3 && n + 3 <= cap; k++) {
            double t = trees[i].thr[k];
            v[n++] = t;
            v[n++] = nextafter(t, INFINITY);
            v[n++] = nextafter(t, -INFINITY);
        }
    return n;
}

/* Scores rows built from the values on every iteration range tried, single row and batch,
 * against the reference. */
static void check_model(const ref_tree *trees, int ntrees, int expect_binned)
{
    size_t len = 0;
    char *text = model_text(trees, ntrees, &len);
    CHECK(text != NULL);
    if (text == NULL)
        return;
    char err[256];
    /* No table budget: these models would otherwise take the QuickScorer form
     * (test_model_qs.c); here the binned walk is under test. */
    fs_model *m = fsm_load_buffer(text, len, "gen.txt", 0, err, sizeof err);
    free(text);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    CHECK_EQ_INT(m->bnodes != NULL, expect_binned);
    CHECK_EQ_INT(fsm_single_form(m), expect_binned ? FSM_FORM_BINNED : FSM_FORM_WALK);

    enum { NROWS = 400 };
    size_t cap = 16 + (size_t)ntrees * 9;
    double *vals = malloc(cap * sizeof(double));
    double *rows = malloc(NROWS * NF * sizeof(double));
    double *bout = malloc(NROWS * sizeof(double));
    CHECK(vals != NULL && rows != NULL && bout != NULL);
    if (vals == NULL || rows == NULL || bout == NULL)
        goto out;
    size_t nv = row_values(trees, ntrees, vals, cap);
    for (size_t r = 0; r < NROWS; r++)
        for (int f = 0; f < NF; f++)
            rows[r * NF + (size_t)f] = vals[rnd((unsigned)nv)];
    /* Iteration ranges: all (groups of 16, 8, 4 and a 1..3 tail), and short ones (fewer
     * trees than the smallest group). */
    const int ranges[][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 3}, {5, 4}, {3, 7}, {2, 13}, {0, 20},
                             {7, 29}, {0, 35}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        fs_predict_opts o = {.start_iteration = ranges[k][0], .num_iteration = ranges[k][1]};
        int first = o.start_iteration < ntrees ? o.start_iteration : ntrees;
        int count = o.num_iteration > 0 ? o.num_iteration : ntrees - first;
        if (first + count > ntrees)
            count = ntrees - first;
        fs_model_predict_raw_batch(m, rows, NROWS, bout, &o);
        int bad = 0;
        for (size_t r = 0; r < NROWS; r++) {
            double want = ref_raw(trees, first, count, rows + r * NF), got = -1;
            fs_model_predict_raw(m, rows + r * NF, &got, &o);
            if (memcmp(&got, &want, sizeof got) != 0 || memcmp(&bout[r], &want, sizeof got) != 0) {
                if (bad++ < 3)
                    fprintf(stderr,
                            "ntrees %d range %d+%d row (%.17g, %.17g, %.17g): single %.17g "
                            "batch %.17g reference %.17g\n",
                            ntrees, first, count, rows[r * NF], rows[r * NF + 1],
                            rows[r * NF + 2], got, bout[r], want);
            }
        }
        CHECK_EQ_INT(bad, 0);
    }
out:
    free(vals);
    free(rows);
    free(bout);
    fs_model_free(m);
}

int main(void)
{
    static ref_tree trees[300];
    /* Tree counts around the group sizes: 1..3 (smaller than a group), 4, 16 + 8 + 4 + tail. */
    const int counts[] = {1, 2, 3, 4, 5, 8, 15, 16, 17, 23, 31, 33, 47};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        gen_trees(trees, counts[i], 0);
        check_model(trees, counts[i], 1);
    }
    /* More than 255 distinct thresholds on one feature: no binned form (the double form
     * scores the row), same results. */
    gen_trees(trees, 100, 1);
    check_model(trees, 100, 0);
    return CHECK_DONE();
}
