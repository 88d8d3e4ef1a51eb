/*
 * Unit tests of the scoring engine (fs_model) on small hand-written model texts. Every
 * expected value is derived by hand from the tree structure written here (which leaf a row
 * reaches, LightGBM's documented missing-value rules), never copied from the engine.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_model.h"
#include "fs_model_impl.h"

/* Tree 0: node 0 splits a <= 0.5 (missing None, default_left: NaN -> 0.0 -> left);
 *         node 1 splits b <= -1 (missing NaN, default right).
 *         leaves: 0 -> 0.25 (a <= 0.5), 1 -> -0.5 (b <= -1), 2 -> 1.0 (else).
 * Tree 1: one leaf, 0.125.
 * Tree 2: node 0 splits c <= 2 with missing Zero, default left (|c| <= 1e-35 or NaN -> left);
 *         leaves 0 -> 0.0625, 1 -> -0.0625. */
static const char *model_basic =
    "tree\n"
    "version=v4\n"
    "num_class=1\n"
    "num_tree_per_iteration=1\n"
    "label_index=0\n"
    "max_feature_idx=2\n"
    "objective=binary sigmoid:1\n"
    "feature_names=a b c\n"
    "feature_infos=none none none\n"
    "tree_sizes=1 1 1\n"
    "\n"
    "Tree=0\n"
    "num_leaves=3\n"
    "num_cat=0\n"
    "split_feature=0 1\n"
    "split_gain=1 1\n"
    "threshold=0.5 -1\n"
    "decision_type=2 8\n"
    "left_child=-1 -2\n"
    "right_child=1 -3\n"
    "leaf_value=0.25 -0.5 1\n"
    "leaf_weight=1 1 1\n"
    "leaf_count=30 6 4\n"
    "internal_value=0 0\n"
    "internal_weight=0 0\n"
    "internal_count=40 10\n"
    "is_linear=0\n"
    "shrinkage=1\n"
    "\n"
    "\n"
    "Tree=1\n"
    "num_leaves=1\n"
    "num_cat=0\n"
    "split_feature=\n"
    "split_gain=\n"
    "threshold=\n"
    "decision_type=\n"
    "left_child=\n"
    "right_child=\n"
    "leaf_value=0.125\n"
    "leaf_weight=\n"
    "leaf_count=\n"
    "internal_value=\n"
    "internal_weight=\n"
    "internal_count=\n"
    "is_linear=0\n"
    "shrinkage=1\n"
    "\n"
    "\n"
    "Tree=2\n"
    "num_leaves=2\n"
    "num_cat=0\n"
    "split_feature=2\n"
    "threshold=2\n"
    "decision_type=6\n"
    "left_child=-1\n"
    "right_child=-2\n"
    "leaf_value=0.0625 -0.0625\n"
    "leaf_count=3 1\n"
    "internal_count=4\n"
    "is_linear=0\n"
    "shrinkage=1\n"
    "\n"
    "\n"
    "end of trees\n"
    "\n"
    "feature_importances:\n"
    "a=1\n"
    "\n"
    "parameters:\n"
    "[boosting: gbdt]\n"
    "end of parameters\n"
    "\n"
    "pandas_categorical:null\n";

static fs_model *load(const char *text, char *err, size_t errsz)
{
    return fs_model_load_buffer(text, strlen(text), "m.txt", err, errsz);
}

static double raw1(const fs_model *m, double a, double b, double c)
{
    double x[3] = {a, b, c}, out = -999;
    fs_model_predict_raw(m, x, &out, NULL);
    /* The batch path must agree with the single-row path bit for bit. */
    double bout = -999;
    fs_model_predict_raw_batch(m, x, 1, &bout, NULL);
    CHECK_EQ_BITS(out, bout);
    return out;
}

static void test_basic(void)
{
    char err[256];
    fs_model *m = load(model_basic, err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    /* Numerical splits only: the QuickScorer table scores single rows. */
    CHECK_EQ_INT(fsm_single_form(m), FSM_FORM_QS_DENSE);
    CHECK_EQ_INT(fs_model_num_features(m), 3);
    CHECK_EQ_STR(fs_model_feature_name(m, 1), "b");
    CHECK(fs_model_feature_name(m, 3) == NULL);
    CHECK_EQ_INT(fs_model_num_outputs(m), 1);
    CHECK_EQ_INT(fs_model_num_iterations(m), 3);
    CHECK_EQ_STR(fs_model_objective(m), "binary sigmoid:1");

    /* a <= 0.5 -> 0.25; + 0.125; c = 5 > 2 -> -0.0625. */
    CHECK_EQ_BITS(raw1(m, 0, 0, 5), 0.25 + 0.125 - 0.0625);
    /* Equal to the threshold goes left; the next double up goes right. */
    CHECK_EQ_BITS(raw1(m, 0.5, 0, 5), 0.3125);
    CHECK_EQ_BITS(raw1(m, nextafter(0.5, 1), 0, 5), 1.0 + 0.125 - 0.0625);
    /* Missing None: NaN is 0.0, which is <= 0.5. */
    CHECK_EQ_BITS(raw1(m, NAN, 0, 5), 0.3125);
    /* b <= -1 -> -0.5; missing NaN with default right: NaN -> 1.0. */
    CHECK_EQ_BITS(raw1(m, 1, -1, 5), -0.5 + 0.125 - 0.0625);
    CHECK_EQ_BITS(raw1(m, 1, NAN, 5), 1.0 + 0.125 - 0.0625);
    /* Missing Zero with default left: 0, tiny and NaN all go left (0.0625); 2 <= 2 also. */
    CHECK_EQ_BITS(raw1(m, 0, 0, 0), 0.25 + 0.125 + 0.0625);
    CHECK_EQ_BITS(raw1(m, 0, 0, 1e-36), 0.4375);
    CHECK_EQ_BITS(raw1(m, 0, 0, -1e-36), 0.4375);
    CHECK_EQ_BITS(raw1(m, 0, 0, NAN), 0.4375);
    CHECK_EQ_BITS(raw1(m, 0, 0, 2), 0.4375);
    CHECK_EQ_BITS(raw1(m, 0, 0, -3), 0.4375);
    CHECK_EQ_BITS(raw1(m, 0, 0, 2.5), 0.3125);
    /* 1e-30 is not zero: compared, 1e-30 <= 2 -> left as well; but +inf goes right. */
    CHECK_EQ_BITS(raw1(m, 0, 0, INFINITY), 0.3125);

    /* Transformed: the sigmoid of the raw score. */
    double x[3] = {0, 0, 5}, p = 0;
    fs_model_predict(m, x, &p, NULL);
    CHECK_EQ_BITS(p, 1.0 / (1.0 + exp(-0.3125)));

    /* Iteration ranges: only tree 1 -> 0.125; trees 1.. -> 0.125 - 0.0625. */
    fs_predict_opts o1 = {1, 1};
    double r = 0;
    fs_model_predict_raw(m, x, &r, &o1);
    CHECK_EQ_BITS(r, 0.125);
    fs_predict_opts o2 = {1, 0};
    fs_model_predict_raw(m, x, &r, &o2);
    CHECK_EQ_BITS(r, 0.0625);
    fs_predict_opts o3 = {5, 0}; /* past the end: no trees, +0.0 */
    fs_model_predict_raw(m, x, &r, &o3);
    CHECK_EQ_BITS(r, 0.0);

    /* Contributions, by hand, from the Shapley formula over path-conditional expectations
     * f(S) (unknown features follow both branches weighted by the training counts).
     * Tree 0 (features a, b), row (0, 0, 5):
     *   f({})   = 0.75*0.25 + 0.15*(-0.5) + 0.1*1           = 0.2125
     *   f({a})  = 0.25                  (a = 0 <= 0.5: leaf 0)
     *   f({b})  = 0.75*0.25 + 0.25*1    (b = 0 > -1: leaf 2)  = 0.4375
     *   f({ab}) = 0.25
     *   phi_a = ((f(a) - f()) + (f(ab) - f(b))) / 2 = (0.0375 - 0.1875) / 2 = -0.075
     *   phi_b = ((f(b) - f()) + (f(ab) - f(a))) / 2 = (0.225 + 0) / 2      =  0.1125
     * Tree 1: bias 0.125. Tree 2 (feature c): E = 0.75*0.0625 + 0.25*(-0.0625) = 0.03125, the
     * row goes right: phi_c = -0.0625 - 0.03125. Bias = 0.2125 + 0.125 + 0.03125. */
    double phi[4];
    CHECK_EQ_INT(fs_model_predict_contrib(m, x, phi, NULL), 0);
    CHECK_NEAR(phi[0], -0.075, 1e-15);
    CHECK_NEAR(phi[1], 0.1125, 1e-15);
    CHECK_NEAR(phi[2], -0.0625 - 0.03125, 1e-15);
    CHECK_NEAR(phi[3], 0.2125 + 0.125 + 0.03125, 1e-15);
    /* Contributions add up to the raw score. */
    CHECK_NEAR(phi[0] + phi[1] + phi[2] + phi[3], 0.3125, 1e-15);
    fs_model_free(m);
}

/* Categorical split: cat_threshold words 5 (categories 0 and 2) and 2^31 (category 63). */
static const char *model_cat =
    "tree\n"
    "version=v4\n"
    "num_class=1\n"
    "num_tree_per_iteration=1\n"
    "label_index=0\n"
    "max_feature_idx=0\n"
    "objective=regression\n"
    "feature_names=k\n"
    "\n"
    "Tree=0\n"
    "num_leaves=2\n"
    "num_cat=1\n"
    "split_feature=0\n"
    "threshold=0\n"
    "decision_type=1\n"
    "left_child=-1\n"
    "right_child=-2\n"
    "leaf_value=10 20\n"
    "cat_boundaries=0 2\n"
    "cat_threshold=5 2147483648\n"
    "is_linear=0\n"
    "\n"
    "end of trees\n";

static void test_categorical(void)
{
    char err[256];
    fs_model *m = load(model_cat, err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    /* Categorical splits: neither the QuickScorer nor the binned form applies. */
    CHECK_EQ_INT(fsm_single_form(m), FSM_FORM_WALK);
    static const struct {
        double x, want;
    } cases[] = {
        {0, 10}, {2, 10}, {63, 10}, {1, 20}, {3, 20}, {62, 20}, {64, 20}, {1000, 20},
        {-1, 20}, {-0.5, 10} /* truncates to 0 */, {2.9, 10}, {NAN, 20}, {1e10, 20},
        {-1e10, 20}, {1e-40, 10} /* zero */, {INFINITY, 20},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double out = 0;
        fs_model_predict(m, &cases[i].x, &out, NULL);
        if (out != cases[i].want)
            fprintf(stderr, "categorical case %zu: x=%g\n", i, cases[i].x);
        CHECK_EQ_BITS(out, cases[i].want);
    }
    fs_model_free(m);
}

/* Multiclass softmax, two iterations of three trees, single leaves: raw per class is the sum
 * of its trees (1+2, 0+0, -1+0.5). Linear tree leaf: 1 + 2*a, NaN falls back to 7. */
static const char *model_multi =
    "tree\n"
    "version=v4\n"
    "num_class=3\n"
    "num_tree_per_iteration=3\n"
    "max_feature_idx=0\n"
    "objective=multiclass num_class:3\n"
    "feature_names=a\n"
    "\n"
    "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=1\n\n"
    "Tree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=0\n\n"
    "Tree=2\nnum_leaves=1\nnum_cat=0\nleaf_value=-1\n\n"
    "Tree=3\nnum_leaves=1\nnum_cat=0\nleaf_value=2\n\n"
    "Tree=4\nnum_leaves=1\nnum_cat=0\nleaf_value=0\n\n"
    "Tree=5\nnum_leaves=1\nnum_cat=0\nis_linear=1\nleaf_value=7\nleaf_const=1\n"
    "num_features=1\nleaf_features=0 \nleaf_coeff=2 \n\n"
    "end of trees\n";

static void test_multiclass_linear(void)
{
    char err[256];
    fs_model *m = load(model_multi, err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    /* A linear tree: no QuickScorer form (leaf values are not constants); binned walk. */
    CHECK_EQ_INT(fsm_single_form(m), FSM_FORM_BINNED);
    CHECK_EQ_INT(fs_model_num_outputs(m), 3);
    CHECK_EQ_INT(fs_model_num_iterations(m), 2);
    double x = 0.25, out[3];
    fs_model_predict_raw(m, &x, out, NULL);
    CHECK_EQ_BITS(out[0], 3.0);
    CHECK_EQ_BITS(out[1], 0.0);
    CHECK_EQ_BITS(out[2], -1.0 + 1.5);
    x = NAN;
    fs_model_predict_raw(m, &x, out, NULL);
    CHECK_EQ_BITS(out[2], -1.0 + 7.0);
    x = 0.25;
    fs_model_predict(m, &x, out, NULL);
    double e0 = exp(3.0 - 3.0), e1 = exp(0.0 - 3.0), e2 = exp(0.5 - 3.0);
    double sum = e0 + e1 + e2;
    CHECK_EQ_BITS(out[0], e0 / sum);
    CHECK_EQ_BITS(out[1], e1 / sum);
    CHECK_EQ_BITS(out[2], e2 / sum);
    CHECK_NEAR(out[0] + out[1] + out[2], 1.0, 1e-15);
    /* Contributions are refused for linear trees, as LightGBM refuses them. */
    CHECK_EQ_INT(fs_model_has_linear_trees(m), 1);
    double phi[6] = {7, 7, 7, 7, 7, 7};
    CHECK_EQ_INT(fs_model_predict_contrib(m, &x, phi, NULL), -1);
    CHECK_EQ_BITS(phi[0], 7.0);
    fs_model_free(m);
}

/* Loader errors: each broken text must be rejected with "m.txt:LINE: ..." naming the line. */
static void expect_error(const char *text, size_t len, const char *want_prefix,
                         const char *want_sub)
{
    char err[512] = "";
    fs_model *m = fs_model_load_buffer(text, len, "m.txt", err, sizeof err);
    CHECK(m == NULL);
    fs_model_free(m);
    int ok = strncmp(err, want_prefix, strlen(want_prefix)) == 0 && strstr(err, want_sub);
    if (!ok)
        fprintf(stderr, "  got error \"%s\", wanted \"%s...%s\"\n", err, want_prefix, want_sub);
    CHECK(ok);
}

/* Replaces the first occurrence of `from` in model_basic by `to`. */
static char *mutate(const char *from, const char *to)
{
    const char *at = strstr(model_basic, from);
    if (at == NULL)
        return NULL;
    size_t n = strlen(model_basic) + strlen(to) + 1;
    char *s = malloc(n);
    if (s == NULL)
        return NULL;
    size_t pre = (size_t)(at - model_basic);
    memcpy(s, model_basic, pre);
    snprintf(s + pre, n - pre, "%s%s", to, at + strlen(from));
    return s;
}

static void expect_mutation_error(const char *from, const char *to, const char *want_prefix,
                                  const char *want_sub)
{
    char *s = mutate(from, to);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    expect_error(s, strlen(s), want_prefix, want_sub);
    free(s);
}

static void test_errors(void)
{
    expect_error("", 0, "m.txt:1:", "expected 'tree'");
    expect_error("hello\n", 6, "m.txt:1:", "expected 'tree'");
    /* Truncated in the middle of tree 1 / before the end marker. */
    size_t cut = (size_t)(strstr(model_basic, "Tree=1") - model_basic);
    expect_error(model_basic, cut, "m.txt:31:", "expected 'end of trees'");
    cut = (size_t)(strstr(model_basic, "internal_count=40") - model_basic);
    expect_error(model_basic, cut, "m.txt:", "expected 'end of trees'");
    /* Wrong counts. */
    expect_mutation_error("leaf_value=0.25 -0.5 1\n", "leaf_value=0.25 -0.5\n", "m.txt:21:",
                          "expected 3 values");
    expect_mutation_error("threshold=0.5 -1\n", "threshold=0.5\n", "m.txt:17:",
                          "threshold: expected 2 values, found 1");
    expect_mutation_error("feature_names=a b c\n", "feature_names=a b\n", "m.txt:8:",
                          "expected 3 names");
    /* Child index out of range, cycles, shared children. */
    expect_mutation_error("right_child=1 -3\n", "right_child=5 -3\n", "m.txt:20:",
                          "right_child: value 1: expected an integer in [-3, 1]");
    expect_mutation_error("right_child=1 -3\n", "right_child=1 1\n", "m.txt:19:", "cycle");
    expect_mutation_error("right_child=1 -3\n", "right_child=1 -2\n", "m.txt:19:",
                          "reached twice");
    expect_mutation_error("left_child=-1 -2\nright_child=1 -3\n",
                          "left_child=-1 -2\nright_child=-3 1\n", "m.txt:19:", "cycle");
    /* NaN in structure. */
    expect_mutation_error("threshold=0.5 -1\n", "threshold=nan -1\n", "m.txt:17:", "NaN");
    expect_mutation_error("leaf_value=0.25 -0.5 1\n", "leaf_value=0.25 NaN 1\n", "m.txt:21:",
                          "NaN");
    /* Huge num_leaves is refused before anything is allocated for it. */
    expect_mutation_error("num_leaves=3\n", "num_leaves=2000000000\n", "m.txt:13:",
                          "expected an integer in [1, 131072]");
    expect_mutation_error("num_leaves=3\n", "num_leaves=131072\n", "m.txt:21:",
                          "expected 131072 values");
    /* Bad feature index, bad numbers, unknown objective, bad decision_type. */
    expect_mutation_error("split_feature=0 1\n", "split_feature=0 3\n", "m.txt:15:",
                          "split_feature: value 2: expected an integer in [0, 2]");
    expect_mutation_error("threshold=0.5 -1\n", "threshold=0.5 x\n", "m.txt:17:",
                          "expected a number");
    expect_mutation_error("objective=binary sigmoid:1\n", "objective=telepathy\n", "m.txt:7:",
                          "known objective");
    expect_mutation_error("decision_type=2 8\n", "decision_type=2 12\n", "m.txt:18:",
                          "decision_type");
    expect_mutation_error("Tree=1\n", "Tree=7\n", "m.txt:31:", "expected 'Tree=1'");
    expect_mutation_error("num_cat=0\n", "", "m.txt:12:", "expected a num_cat= line");
    expect_mutation_error("max_feature_idx=2\n", "", "m.txt:", "max_feature_idx");
    expect_mutation_error("num_tree_per_iteration=1\n", "num_tree_per_iteration=2\n",
                          "m.txt:", "num_tree_per_iteration");
    expect_mutation_error("tree_sizes=1 1 1\n", "tree_sizes=1 1\n", "m.txt:10:",
                          "tree_sizes");
    /* A NUL byte in the text. */
    char with_nul[64] = "tree\nnum_class=1\n";
    with_nul[8] = '\0';
    expect_error(with_nul, 20, "m.txt:2:", "NUL");
    /* A file that does not exist. */
    char err[256] = "";
    CHECK(fs_model_load_file("/nonexistent/model.txt", err, sizeof err) == NULL);
    CHECK(strncmp(err, "/nonexistent/model.txt:0: cannot open", 37) == 0);
    /* A tiny error buffer is still NUL-terminated. */
    char small[8];
    CHECK(fs_model_load_buffer("x", 1, "m.txt", small, sizeof small) == NULL);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
}

/* A chain of 600 splits on 600 different features (wider than the engine's stack buffer of
 * preprocessed columns, so the per-node fallback runs), 600 deep: node i tests x_i <= 0.5,
 * left to leaf i (value i), right to node i + 1; the last node's right is leaf 600. A row
 * with x_j = 1 for j < k and x_k = 0 ends in leaf k. */
static void test_wide_deep(void)
{
    enum { N = 600 };
    size_t cap = 64 * 1024;
    char *t = malloc(cap);
    double *x = calloc(3 * N, sizeof(double));
    double *phi = malloc((N + 1) * sizeof(double));
    CHECK(t != NULL && x != NULL && phi != NULL);
    if (t == NULL || x == NULL || phi == NULL)
        goto out;
    size_t n = 0;
#define APPEND(...) n += (size_t)snprintf(t + n, n < cap ? cap - n : 0, __VA_ARGS__)
    APPEND("tree\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=%d\n", N - 1);
    APPEND("objective=regression\nfeature_names=");
    for (int i = 0; i < N; i++)
        APPEND("%sf%d", i ? " " : "", i);
    APPEND("\n\nTree=0\nnum_leaves=%d\nnum_cat=0\nsplit_feature=", N + 1);
    for (int i = 0; i < N; i++)
        APPEND("%s%d", i ? " " : "", i);
    APPEND("\nthreshold=");
    for (int i = 0; i < N; i++)
        APPEND("%s0.5", i ? " " : "");
    APPEND("\ndecision_type=");
    for (int i = 0; i < N; i++)
        APPEND("%s2", i ? " " : "");
    APPEND("\nleft_child=");
    for (int i = 0; i < N; i++)
        APPEND("%s%d", i ? " " : "", -(i + 1));
    APPEND("\nright_child=");
    for (int i = 0; i < N; i++)
        APPEND("%s%d", i ? " " : "", i + 1 < N ? i + 1 : -(N + 1));
    APPEND("\nleaf_value=");
    for (int i = 0; i <= N; i++)
        APPEND("%s%d", i ? " " : "", i);
    APPEND("\nleaf_count=");
    for (int i = 0; i <= N; i++)
        APPEND("%s1", i ? " " : "");
    APPEND("\ninternal_count=");
    for (int i = 0; i < N; i++)
        APPEND("%s%d", i ? " " : "", N + 1 - i);
    APPEND("\n\nend of trees\n");
#undef APPEND
    CHECK(n < cap);
    if (n >= cap)
        goto out;
    char err[256];
    fs_model *m = fs_model_load_buffer(t, n, "wide.txt", err, sizeof err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "load: %s\n", err);
        goto out;
    }
    /* 601 leaves (no QuickScorer form), 600 columns (no binned form). */
    CHECK_EQ_INT(fsm_single_form(m), FSM_FORM_WALK);
    /* Rows: k = 0, k = 377, and all ones (leaf 600). */
    for (int j = 0; j < 377; j++)
        x[N + j] = 1;
    for (int j = 0; j < N; j++)
        x[2 * N + j] = 1;
    double out[3];
    fs_model_predict_raw_batch(m, x, 3, out, NULL);
    CHECK_EQ_BITS(out[0], 0.0);
    CHECK_EQ_BITS(out[1], 377.0);
    CHECK_EQ_BITS(out[2], 600.0);
    double one = -1;
    fs_model_predict_raw(m, x + N, &one, NULL);
    CHECK_EQ_BITS(one, 377.0);
    /* NaN is 0.0 for missing type None: goes left at node 0. */
    x[0] = NAN;
    fs_model_predict_raw(m, x, &one, NULL);
    CHECK_EQ_BITS(one, 0.0);
    /* Contributions of a 600-deep tree are computed (TreeSHAP's permutation weights lose all
     * precision that deep, in LightGBM as here: only that it runs is checked). */
    CHECK_EQ_INT(fs_model_predict_contrib(m, x + N, phi, NULL), 0);
    fs_model_free(m);
out:
    free(t);
    free(x);
    free(phi);
}

/* FS_ENGINE_ISA caps the ISA at load; scores are the same on every ISA; an unknown value
 * makes the load fail and name the variable. */
static void test_engine_isa(void)
{
    char err[256];
    static const char *const isas[] = {"scalar", "avx2", "avx512", "auto"};
    double x[3] = {0.5, NAN, 0.0}, want = -1.0;
    for (int i = 3; i >= 0; i--) {
        CHECK(setenv("FS_ENGINE_ISA", isas[i], 1) == 0);
        fs_model *m = load(model_basic, err, sizeof err);
        CHECK(m != NULL);
        if (m == NULL)
            continue;
        const char *got = fs_model_isa(m);
        if (i == 0) {
            CHECK_EQ_STR(got, "scalar");
        } else if (i == 1) {
            CHECK(strcmp(got, "avx2") == 0 || strcmp(got, "scalar") == 0);
        } else {
            CHECK(strcmp(got, "avx512") == 0 || strcmp(got, "avx2") == 0 ||
                  strcmp(got, "scalar") == 0);
        }
        double out = raw1(m, x[0], x[1], x[2]);
        if (i == 3)
            want = out;
        CHECK_EQ_BITS(out, want);
        fs_model_free(m);
    }
    CHECK(setenv("FS_ENGINE_ISA", "avx3", 1) == 0);
    CHECK(load(model_basic, err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "m.txt:0: FS_ENGINE_ISA=avx3: expected auto, avx512, avx2 or scalar");
    CHECK(unsetenv("FS_ENGINE_ISA") == 0);
}

int main(void)
{
    /* The tests assert the forms and ISA the defaults pick. */
    unsetenv("FS_ENGINE_ISA");
    test_basic();
    test_categorical();
    test_multiclass_linear();
    test_errors();
    test_wide_deep();
    test_engine_isa();
    return CHECK_DONE();
}
