/*
 * Unit tests of TreeSHAP contributions: fs_model_predict_contrib (the closed form per leaf)
 * against fsm_predict_contrib_ref (LightGBM's extend / unwind recursion, ported as is) on
 * many rows of random models (numerical splits of every missing type, categorical splits,
 * features split several times on one path, deep trees, several classes, iteration ranges,
 * zero training counts; trees small enough for the pattern tables and trees that are walked)
 * and of the default bundle's model. Contributions must agree within
 * 1e-12 of the row's scale, the bias column bit for bit, and bias + contributions must be
 * the raw score.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_model.h"
#include "fs_model_impl.h"

#define MAXL 160
#define MAXF 14

typedef struct gtree {
    int nleaves;
    int feat[MAXL], dtype[MAXL], child[MAXL][2]; /* child >= 0 node, < 0 ~leaf */
    double thr[MAXL], leaf[MAXL];
    int lcount[MAXL], icount[MAXL];
    unsigned catw[MAXL];                         /* a categorical node's one bitset word */
} gtree;

static unsigned long long rng = 0x2545F4914F6CDD1DULL;

static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11) % n;
}

static int count_of(const gtree *t, int c)
{
    return c < 0 ? t->lcount[~c] : t->icount[c];
}

/* A random shape (split a random leaf, or the deepest one for a chain-like tree), random
 * splits on nfeat features (few, so features repeat on a path). zero_counts: some leaves
 * have no training rows. */
static void gen_tree(gtree *t, int nleaves, int nfeat, int chain, int zero_counts)
{
    int parent[MAXL][2];
    t->nleaves = nleaves;
    for (int l = 0; l < nleaves; l++) {
        t->leaf[l] = (double)((int)rnd(20001) - 10000) / 113.0;
        t->lcount[l] = zero_counts && rnd(4) == 0 ? 0 : 1 + (int)rnd(500);
    }
    if (nleaves == 1)
        return;
    t->child[0][0] = ~0;
    t->child[0][1] = ~1;
    parent[0][0] = parent[1][0] = 0;
    parent[0][1] = 0;
    parent[1][1] = 1;
    for (int n = 1, nl = 2; nl < nleaves; n++, nl++) {
        int l = chain ? nl - 1 : (int)rnd((unsigned)nl);
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
        t->feat[n] = (int)rnd((unsigned)nfeat);
        if (t->feat[n] == nfeat - 1) {
            /* The last feature is categorical: categories 0..31 in one word. */
            t->dtype[n] = 1;
            t->catw[n] = (unsigned)rnd(0xFFFFFFFFu) | 1u;
            t->thr[n] = 0;
        } else {
            t->dtype[n] = (int)(rnd(3) << 2 | rnd(2) << 1);
            t->thr[n] = (double)((int)rnd(41) - 20) / 4.0;
        }
    }
    /* internal_count: children's sum, computed bottom up (children have larger indices). */
    for (int n = nleaves - 2; n >= 0; n--) {
        t->icount[n] = count_of(t, t->child[n][0]) + count_of(t, t->child[n][1]);
        if (t->icount[n] == 0) {
            /* Two empty leaves: a node has rows, so one of them gets one. */
            t->lcount[~t->child[n][1]] = 1;
            t->icount[n] = 1;
        }
    }
}

#define APPEND(...) n += (size_t)snprintf(t + n, n < cap ? cap - n : 0, __VA_ARGS__)

static char *model_text(const gtree *trees, int ntrees, int nclass, int nfeat)
{
    size_t cap = 1024 + (size_t)ntrees * 20000, n = 0;
    char *t = malloc(cap);
    if (t == NULL)
        return NULL;
    APPEND("tree\nversion=v4\nnum_class=%d\nnum_tree_per_iteration=%d\nmax_feature_idx=%d\n",
           nclass, nclass, nfeat - 1);
    if (nclass > 1)
        APPEND("objective=multiclass num_class:%d\nfeature_names=", nclass);
    else
        APPEND("objective=regression\nfeature_names=");
    for (int f = 0; f < nfeat; f++)
        APPEND("f%d%s", f, f + 1 < nfeat ? " " : "\n\n");
    for (int i = 0; i < ntrees; i++) {
        const gtree *r = &trees[i];
        int ni = r->nleaves - 1, ncat = 0;
        for (int k = 0; k < ni; k++)
            ncat += r->dtype[k] & 1;
        APPEND("Tree=%d\nnum_leaves=%d\nnum_cat=%d\n", i, r->nleaves, ncat);
        if (ni > 0) {
            APPEND("split_feature=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->feat[k], k + 1 < ni ? " " : "\n");
            APPEND("threshold=");
            for (int k = 0, c = 0; k < ni; k++)
                if (r->dtype[k] & 1)
                    APPEND("%d%s", c++, k + 1 < ni ? " " : "\n");
                else
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
            APPEND("internal_count=");
            for (int k = 0; k < ni; k++)
                APPEND("%d%s", r->icount[k], k + 1 < ni ? " " : "\n");
            if (ncat > 0) {
                APPEND("cat_boundaries=0");
                for (int c = 1; c <= ncat; c++)
                    APPEND(" %d", c);
                APPEND("\ncat_threshold=");
                for (int k = 0, c = 0; k < ni; k++)
                    if (r->dtype[k] & 1)
                        APPEND("%u%s", r->catw[k], ++c < ncat ? " " : "\n");
            }
        }
        APPEND("leaf_value=");
        for (int k = 0; k < r->nleaves; k++)
            APPEND("%.17g%s", r->leaf[k], k + 1 < r->nleaves ? " " : "\n");
        APPEND("leaf_count=");
        for (int k = 0; k < r->nleaves; k++)
            APPEND("%d%s", r->lcount[k], k + 1 < r->nleaves ? " " : "\n");
        APPEND("is_linear=0\nshrinkage=1\n\n");
    }
    APPEND("end of trees\n");
    if (n >= cap) {
        free(t);
        return NULL;
    }
    return t;
}

/* A random row for m: per feature a threshold some node compares it with, a neighbour of
 * one, a category, or a special value (NaN, zeros, tiny, infinities). */
static void random_row(const fs_model *m, double *x)
{
    static const double special[] = {0.0, -0.0, 1e-36, -1e-36, NAN, INFINITY, -INFINITY, -3.0};
    int nf = fs_model_num_features(m);
    for (int f = 0; f < nf; f++) {
        unsigned how = rnd(8);
        x[f] = (double)((int)rnd(4001) - 2000) / 64.0;
        if (how == 0) {
            x[f] = special[rnd(sizeof special / sizeof special[0])];
        } else if (how == 1) {
            x[f] = (double)rnd(40);
        } else if (m->num_nodes > 0) {
            for (int tries = 0; tries < 16; tries++) {
                int32_t nd = (int32_t)rnd((unsigned)m->num_nodes);
                if (fsm_node_feature(m, nd) != f)
                    continue;
                double t = m->nodes[nd].thr;
                x[f] = how == 2 ? nextafter(t, INFINITY) : how == 3 ? nextafter(t, -INFINITY) : t;
                break;
            }
        }
    }
}

static long rows_checked, values_checked;

/* Contributions of nrows random rows: ours against the reference. Returns the failures. */
static int compare_rows(const fs_model *m, int nrows, const fs_predict_opts *opts,
                        int finite_only)
{
    int nf = fs_model_num_features(m), k_per = fs_model_num_outputs(m), bad = 0;
    size_t stride = (size_t)(nf + 1) * (size_t)k_per;
    double *x = malloc((size_t)nf * sizeof(double) + 1);
    double *a = malloc(stride * sizeof(double)), *b = malloc(stride * sizeof(double));
    double *raw = malloc((size_t)k_per * sizeof(double));
    if (x == NULL || a == NULL || b == NULL || raw == NULL) {
        CHECK(!"out of memory");
        goto out;
    }
    for (int r = 0; r < nrows && bad < 5; r++) {
        random_row(m, x);
        CHECK_EQ_INT(fsm_predict_contrib_ref(m, x, a, opts), 0);
        CHECK_EQ_INT(fs_model_predict_contrib(m, x, b, opts), 0);
        fs_model_predict_raw(m, x, raw, opts);
        rows_checked++;
        for (int k = 0; k < k_per; k++) {
            const double *pa = a + (size_t)k * (size_t)(nf + 1);
            const double *pb = b + (size_t)k * (size_t)(nf + 1);
            double scale = 1.0, sum = 0.0;
            for (int j = 0; j <= nf; j++)
                scale = fmax(scale, fabs(pa[j]));
            for (int j = 0; j <= nf; j++) {
                sum += pb[j];
                values_checked++;
                if (finite_only && !isfinite(pa[j]))
                    continue;
                if (!(fabs(pa[j] - pb[j]) <= 1e-12 * scale)) {
                    fprintf(stderr, "row %d class %d feature %d: ours %.17g, reference %.17g\n",
                            r, k, j, pb[j], pa[j]);
                    bad++;
                }
            }
            /* The bias: the same sum in the same order. */
            CHECK_EQ_BITS(pb[nf], pa[nf]);
            if (!(fabs(sum - raw[k]) <= 1e-9 * scale)) {
                fprintf(stderr, "row %d class %d: bias + contributions %.17g, raw %.17g\n", r,
                        k, sum, raw[k]);
                bad++;
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
out:
    free(x);
    free(a);
    free(b);
    free(raw);
    return bad;
}

static fs_model *load_trees(const gtree *trees, int ntrees, int nclass, int nfeat)
{
    char err[512];
    char *text = model_text(trees, ntrees, nclass, nfeat);
    CHECK(text != NULL);
    if (text == NULL)
        return NULL;
    fs_model *m = fs_model_load_buffer(text, strlen(text), "random", err, sizeof err);
    if (m == NULL)
        fprintf(stderr, "load: %s\n", err);
    CHECK(m != NULL);
    free(text);
    return m;
}

static gtree trees[60];

static void test_random_models(void)
{
    for (int model = 0; model < 40; model++) {
        int nclass = model % 5 == 4 ? 3 : 1;
        int ntrees = nclass * (1 + (int)rnd(12));
        int nfeat = 2 + (int)rnd(MAXF - 1);
        for (int i = 0; i < ntrees; i++) {
            int nl = rnd(8) == 0 ? 1 : 2 + (int)rnd(MAXL - 1);
            gen_tree(&trees[i], nl, nfeat, rnd(6) == 0, 0);
        }
        fs_model *m = load_trees(trees, ntrees, nclass, nfeat);
        if (m == NULL)
            continue;
        compare_rows(m, 200, NULL, 0);
        fs_predict_opts o = {1, 2};
        compare_rows(m, 20, &o, 0);
        fs_model_free(m);
    }
}

/* Chains: one path of up to 63 splits on 2 or 3 features (a feature split again and again,
 * its o and z merged over many splits). */
static void test_chains(void)
{
    for (int model = 0; model < 10; model++) {
        int nfeat = 2 + (model & 1);
        gen_tree(&trees[0], MAXL - (int)rnd(8), nfeat, 1, 0);
        fs_model *m = load_trees(trees, 1, 1, nfeat);
        if (m == NULL)
            continue;
        compare_rows(m, 300, NULL, 0);
        fs_model_free(m);
    }
}

/* Leaves without training rows (z = 0 on their paths): the reference's unwinding divides
 * by zero fractions there, so only its finite values are compared; ours must be finite and
 * add up to the raw score. */
static void test_zero_counts(void)
{
    int nf_total = 0;
    for (int model = 0; model < 10; model++) {
        int nfeat = 3 + (int)rnd(4);
        for (int i = 0; i < 4; i++)
            gen_tree(&trees[i], 2 + (int)rnd(30), nfeat, 0, 1);
        fs_model *m = load_trees(trees, 4, 1, nfeat);
        if (m == NULL)
            continue;
        compare_rows(m, 100, NULL, 1);
        double x[MAXF], phi[MAXF + 1];
        for (int r = 0; r < 50; r++) {
            random_row(m, x);
            CHECK_EQ_INT(fs_model_predict_contrib(m, x, phi, NULL), 0);
            for (int j = 0; j <= nfeat; j++)
                nf_total += !isfinite(phi[j]);
        }
        fs_model_free(m);
    }
    CHECK_EQ_INT(nf_total, 0);
}

/* The default bundle's model (tests run in tests/unit). */
static void test_default_model(void)
{
    char err[512];
    fs_model *m = fs_model_load_file("../../models/default/model.txt", err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    compare_rows(m, 300, NULL, 0);
    fs_model_free(m);
}

/* Without memory for the tables at load (fsm_build_shap failed and freed them), the model
 * still loads and gives the reference's values exactly. */
static void test_no_tables(void)
{
    for (int i = 0; i < 3; i++)
        gen_tree(&trees[i], 2 + (int)rnd(20), 4, 0, 0);
    fs_model *m = load_trees(trees, 3, 1, 4);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    fsm_free_shap(m);
    double x[MAXF], a[MAXF + 1], b[MAXF + 1];
    for (int r = 0; r < 50; r++) {
        random_row(m, x);
        CHECK_EQ_INT(fs_model_predict_contrib(m, x, b, NULL), 0);
        CHECK_EQ_INT(fsm_predict_contrib_ref(m, x, a, NULL), 0);
        for (int j = 0; j <= 4; j++)
            CHECK_EQ_BITS(b[j], a[j]);
    }
    fs_model_free(m);
}

int main(void)
{
    test_random_models();
    test_chains();
    test_zero_counts();
    test_default_model();
    test_no_tables();
    printf("%ld rows, %ld values compared\n", rows_checked, values_checked);
    return CHECK_DONE();
}
