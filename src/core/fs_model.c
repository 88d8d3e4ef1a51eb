/*
 * fs_model evaluation: raw scores, objective transforms, batch scoring.
 *
 * Exactness: per output, trees are added in file order into a double that starts at +0.0,
 * exactly as LightGBM's GBDT::PredictRaw does, and every decision reproduces
 * Tree::NumericalDecision / Tree::CategoricalDecision on the value LightGBM's predictor sees
 * (|x| <= kZeroThreshold already turned into 0.0). See fs_model_impl.h for the layout.
 *
 * Speed: a row is first preprocessed into one value per (feature, missing type) column, so
 * the inner loop of a numerical tree is a load, two compares and an indexed child load. The
 * batch path scores blocks of rows tree by tree, keeping one tree hot in cache for a block.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_model_impl.h"

/* Columns preprocessed on the stack; wider models fall back to per-node decisions. */
#define FSM_STACK_COLS 512
/* Rows per block in batch scoring, and the stack buffer of their columns (24 KiB). */
#define FSM_BLOCK_ROWS 64
#define FSM_BLOCK_VALUES 3072

int fs_model_num_features(const fs_model *m)
{
    return m->num_features;
}

const char *fs_model_feature_name(const fs_model *m, int i)
{
    if (i < 0 || i >= m->num_features)
        return NULL;
    return m->feature_names[i];
}

int fs_model_num_outputs(const fs_model *m)
{
    return m->num_tree_per_iteration;
}

int fs_model_num_iterations(const fs_model *m)
{
    return m->num_iterations;
}

const char *fs_model_objective(const fs_model *m)
{
    return m->objective;
}

void fsm_iteration_range(const fs_model *m, const fs_predict_opts *opts, int *first, int *count)
{
    int total = m->num_iterations;
    int start = opts ? opts->start_iteration : 0;
    int num = opts ? opts->num_iteration : 0;
    if (start < 0)
        start = 0;
    if (start > total)
        start = total;
    if (num > 0)
        *count = num < total - start ? num : total - start;
    else
        *count = total - start;
    *first = start;
}

/* LightGBM's CategoricalDecision: NaN and negative categories go right; the value is cut to
 * int like static_cast<int> (x86 yields INT_MIN, negative, for out-of-range values). */
static inline int cat_left(const fs_model *m, int32_t node, double v)
{
    if (!(v > -1.0) || v >= 2147483648.0)
        return 0;
    int iv = (int)v;
    uint32_t word = (uint32_t)iv >> 5;
    if (word >= (uint32_t)m->cat_len[node])
        return 0;
    return (m->cat_words[m->cat_off[node] + (int32_t)word] >> (iv & 31)) & 1u;
}

int32_t fsm_decide_base(const fs_model *m, int32_t node, double base)
{
    const fsm_node *nd = &m->nodes[node];
    int kind = m->col_kind[nd->col];
    if (kind == FSM_COL_CAT)
        return nd->child[!cat_left(m, node, base)];
    double v = base;
    if (isnan(v) && kind != FSM_COL_NAN)
        v = 0.0;
    if ((kind == FSM_COL_ZERO && v >= -FSM_ZERO_THRESHOLD && v <= FSM_ZERO_THRESHOLD) ||
        (kind == FSM_COL_NAN && isnan(v)))
        return nd->child[(nd->flags & FSM_DEFAULT_LEFT) ? 0 : 1];
    return nd->child[v <= nd->thr ? 0 : 1];
}

/* Fills the execution columns of one row (see enum fsm_xkind). */
static inline void prep_row(const fs_model *m, const double *x, double *cols)
{
    int32_t n = m->num_xcols - 1;
    for (int32_t c = 0; c < n; c++) {
        double b = fsm_base_value(x[m->xcol_feat[c]]);
        switch (m->xcol_kind[c]) {
        case FSM_X_NONE:
            cols[c] = isnan(b) ? 0.0 : b;
            break;
        case FSM_X_ZERO_L:
            cols[c] = (isnan(b) || b == 0.0) ? -INFINITY : b;
            break;
        case FSM_X_ZERO_R:
            cols[c] = (isnan(b) || b == 0.0) ? NAN : b;
            break;
        case FSM_X_NAN_L:
            cols[c] = isnan(b) ? -INFINITY : b;
            break;
        default:
            cols[c] = b;
            break;
        }
    }
    cols[n] = NAN;
}

/* Categorical decision on the execution array. */
static inline int xcat_left(const fs_model *m, int32_t n, double v)
{
    if (!(v > -1.0) || v >= 2147483648.0)
        return 0;
    int iv = (int)v;
    uint32_t word = (uint32_t)iv >> 5;
    if (word >= (uint32_t)m->xcat_len[n])
        return 0;
    return (m->cat_words[m->xcat_off[n] + (int32_t)word] >> (iv & 31)) & 1u;
}

/* One step down the execution form; a leaf steps onto itself. */
static inline int32_t xstep_num(const fsm_xnode *xn, int32_t n, const double *cols)
{
    const fsm_xnode *nd = &xn[n];
    /* Select without a branch: the comparison is data-dependent and a mispredicted jump
     * costs more than the whole step. */
    int32_t go_right = -(int32_t)!(cols[nd->col] <= nd->thr);
    return n + 1 + (nd->skip & go_right);
}

static inline int32_t xstep_any(const fs_model *m, int32_t n, const double *cols)
{
    const fsm_xnode *nd = &m->xnodes[n];
    int left;
    if (nd->col < 0)
        left = xcat_left(m, n, cols[~nd->col]);
    else
        left = cols[nd->col] <= nd->thr;
    int32_t go_right = -(int32_t)!left;
    return n + 1 + (nd->skip & go_right);
}

/* Leaf from the unprocessed row (fallback for models wider than the stack buffer). */
static int32_t leaf_direct(const fs_model *m, int32_t n, const double *x)
{
    while (n >= 0)
        n = fsm_decide_base(m, n, fsm_base_value(x[fsm_node_feature(m, n)]));
    return ~n;
}

/* Output of a leaf; a linear leaf evaluates its model on the base values (NaN falls back to
 * the constant leaf value, as Tree::Predict does). */
static inline double leaf_output(const fs_model *m, const fsm_tree *t, int32_t leaf,
                                 const double *x)
{
    if (!t->is_linear)
        return m->leaf_value[leaf];
    double out = m->lin_const[leaf];
    const int32_t *f = m->lin_feat + m->lin_off[leaf];
    const double *w = m->lin_coeff + m->lin_off[leaf];
    for (int32_t i = 0; i < m->lin_n[leaf]; i++) {
        double v = fsm_base_value(x[f[i]]);
        if (isnan(v))
            return m->leaf_value[leaf];
        out += w[i] * v;
    }
    return out;
}

/* Value of the leaf xnode n reached in tree t. */
static inline double xvalue(const fs_model *m, const fsm_tree *t, int32_t n, const double *x)
{
    if (!t->is_linear)
        return m->xnodes[n].thr;
    return leaf_output(m, t, m->xleaf[n], x);
}

/* One tree, one row, on preprocessed columns. */
static inline double tree_value(const fs_model *m, const fsm_tree *t, const double *x,
                                const double *cols)
{
    int32_t n = t->xroot;
    if (m->has_cat)
        for (int32_t d = 0; d < t->depth; d++)
            n = xstep_any(m, n, cols);
    else
        for (int32_t d = 0; d < t->depth; d++)
            n = xstep_num(m->xnodes, n, cols);
    return xvalue(m, t, n, x);
}

/* Trees (single row) or rows (batch) walked together. */
#define FSM_GROUP 16
/* Steps between checks whether a whole group has reached its leaves (a power of 2, - 1). */
#define FSM_CHECK_MASK 1

static inline int all_leaves(const fsm_xnode *xn, const int32_t *n)
{
    int done = 1;
    for (int g = 0; g < FSM_GROUP; g++)
        done &= xn[n[g]].skip == -1;
    return done;
}

/* Walks the FSM_GROUP consecutive trees at t together on one row; n receives the leaf
 * nodes reached. */
static inline void walk_group(const fs_model *m, const fsm_tree *t, const double *cols,
                              int32_t *n)
{
    int32_t maxd = 0;
    for (int g = 0; g < FSM_GROUP; g++) {
        n[g] = t[g].xroot;
        if (t[g].depth > maxd)
            maxd = t[g].depth;
    }
    if (m->has_cat) {
        for (int32_t d = 0; d < maxd; d++)
            for (int g = 0; g < FSM_GROUP; g++)
                n[g] = xstep_any(m, n[g], cols);
        return;
    }
    const fsm_xnode *xn = m->xnodes;
    for (int32_t d = 0; d < maxd; d++) {
        for (int g = 0; g < FSM_GROUP; g++)
            n[g] = xstep_num(xn, n[g], cols);
        /* Leaf-wise trees are lopsided: most rows stop far above the deepest leaf. Every
         * few steps, stop when all walks sit on leaves (skip == -1). */
        if ((d & FSM_CHECK_MASK) == FSM_CHECK_MASK && all_leaves(xn, n))
            break;
    }
}

/* Adds trees [0, ntrees) of `trees` into out (class of tree i: i % k_per), in file order. */
static void sum_trees(const fs_model *m, const fsm_tree *trees, size_t ntrees, int k_per,
                      const double *x, const double *cols, double *out)
{
    int32_t n[FSM_GROUP];
    double s = out[0];
    size_t i = 0;
    while (i < ntrees) {
        size_t base, from;
        if (i + FSM_GROUP <= ntrees) {
            base = from = i;
        } else if (ntrees >= FSM_GROUP) {
            /* The tail: walk the last FSM_GROUP trees (walks have no side effects) and add
             * only those not added yet. */
            base = ntrees - FSM_GROUP;
            from = i;
        } else {
            break;
        }
        const fsm_tree *t = trees + base;
        walk_group(m, t, cols, n);
        for (size_t g = from - base; g < FSM_GROUP; g++) {
            if (k_per == 1)
                s += xvalue(m, &t[g], n[g], x);
            else
                out[(base + g) % (size_t)k_per] += xvalue(m, &t[g], n[g], x);
        }
        i = base + FSM_GROUP;
    }
    for (; i < ntrees; i++) {
        if (k_per == 1)
            s += tree_value(m, &trees[i], x, cols);
        else
            out[i % (size_t)k_per] += tree_value(m, &trees[i], x, cols);
    }
    if (k_per == 1)
        out[0] = s;
}

void fs_model_predict_raw(const fs_model *m, const double *x, double *out,
                          const fs_predict_opts *opts)
{
    double cols[FSM_STACK_COLS];
    int first, count;
    int k_per = m->num_tree_per_iteration;

    fsm_iteration_range(m, opts, &first, &count);
    for (int k = 0; k < k_per; k++)
        out[k] = 0.0;
    if (count == 0)
        return;
    const fsm_tree *t = m->trees + (size_t)first * (size_t)k_per;
    size_t ntrees = (size_t)count * (size_t)k_per;
    if (m->num_xcols > FSM_STACK_COLS) {
        for (size_t i = 0; i < ntrees; i++) {
            const fsm_tree *ti = &t[i];
            int32_t leaf = ti->root < 0 ? ~ti->root : leaf_direct(m, ti->root, x);
            out[i % (size_t)k_per] += leaf_output(m, ti, leaf, x);
        }
        return;
    }
    prep_row(m, x, cols);
    sum_trees(m, t, ntrees, k_per, x, cols, out);
}

/* GBDT::Predict after PredictRaw, in place: a random forest (average_output) divides by the
 * number of iterations used (the raw score stays the plain sum, as LightGBM's raw_score), then
 * the objective's ConvertOutput. */
static void transform(const fs_model *m, double *out, int count)
{
    int k_per = m->num_tree_per_iteration;
    if (m->average_output)
        for (int k = 0; k < k_per; k++)
            out[k] /= count;
    switch (m->transform) {
    case FSM_T_SIGMOID:
        for (int k = 0; k < k_per; k++)
            out[k] = 1.0 / (1.0 + exp(-m->sigmoid * out[k]));
        break;
    case FSM_T_SOFTMAX: {
        double wmax = out[0];
        for (int k = 1; k < k_per; k++)
            if (out[k] > wmax)
                wmax = out[k];
        double wsum = 0.0;
        for (int k = 0; k < k_per; k++) {
            out[k] = exp(out[k] - wmax);
            wsum += out[k];
        }
        for (int k = 0; k < k_per; k++)
            out[k] /= wsum;
        break;
    }
    case FSM_T_XENT:
        out[0] = 1.0 / (1.0 + exp(-out[0]));
        break;
    case FSM_T_XENT_LAMBDA:
        out[0] = log1p(exp(out[0]));
        break;
    case FSM_T_EXP:
        out[0] = exp(out[0]);
        break;
    case FSM_T_SQUARE: {
        double v = out[0];
        int sign = (v > 0.0) - (v < 0.0);
        out[0] = sign * v * v;
        break;
    }
    default:
        break;
    }
}

void fs_model_predict(const fs_model *m, const double *x, double *out,
                      const fs_predict_opts *opts)
{
    int first, count;
    fsm_iteration_range(m, opts, &first, &count);
    fs_model_predict_raw(m, x, out, opts);
    transform(m, out, count);
}

void fs_model_predict_raw_batch(const fs_model *m, const double *x, size_t nrows, double *out,
                                const fs_predict_opts *opts)
{
    int first, count;
    int k_per = m->num_tree_per_iteration;
    size_t nf = (size_t)m->num_features, ncols = (size_t)m->num_xcols;

    size_t block = ncols ? FSM_BLOCK_VALUES / ncols : FSM_BLOCK_ROWS;
    if (block > FSM_BLOCK_ROWS)
        block = FSM_BLOCK_ROWS;
    if (ncols > FSM_STACK_COLS || block < FSM_GROUP) {
        for (size_t r = 0; r < nrows; r++)
            fs_model_predict_raw(m, x + r * nf, out + r * (size_t)k_per, opts);
        return;
    }
    fsm_iteration_range(m, opts, &first, &count);
    double cols[FSM_BLOCK_VALUES];
    if (count == 0) {
        for (size_t i = 0; i < nrows * (size_t)k_per; i++)
            out[i] = 0.0;
        return;
    }
    const fsm_tree *trees = m->trees + (size_t)first * (size_t)k_per;
    size_t ntrees = (size_t)count * (size_t)k_per;
    for (size_t r0 = 0; r0 < nrows; r0 += block) {
        size_t nb = nrows - r0 < block ? nrows - r0 : block;
        const double *xb = x + r0 * nf;
        double *ob = out + r0 * (size_t)k_per;
        for (size_t r = 0; r < nb; r++)
            prep_row(m, xb + r * nf, cols + r * ncols);
        for (size_t i = 0; i < nb * (size_t)k_per; i++)
            ob[i] = 0.0;
        for (size_t ti = 0; ti < ntrees; ti++) {
            const fsm_tree *t = &trees[ti];
            size_t k = ti % (size_t)k_per;
            int32_t depth = t->depth, root = t->xroot;
            size_t r = 0;
            if (!m->has_cat && !t->is_linear) {
                const fsm_xnode *xn = m->xnodes;
                for (; r + FSM_GROUP <= nb; r += FSM_GROUP) {
                    int32_t n[FSM_GROUP];
                    for (int g = 0; g < FSM_GROUP; g++)
                        n[g] = root;
                    for (int32_t d = 0; d < depth; d++) {
                        for (int g = 0; g < FSM_GROUP; g++)
                            n[g] = xstep_num(xn, n[g], cols + (r + (size_t)g) * ncols);
                        if ((d & FSM_CHECK_MASK) == FSM_CHECK_MASK && all_leaves(xn, n))
                            break;
                    }
                    for (int g = 0; g < FSM_GROUP; g++)
                        ob[(r + (size_t)g) * (size_t)k_per + k] += xn[n[g]].thr;
                }
            }
            for (; r < nb; r++)
                ob[r * (size_t)k_per + k] += tree_value(m, t, xb + r * nf, cols + r * ncols);
        }
    }
}

void fs_model_predict_batch(const fs_model *m, const double *x, size_t nrows, double *out,
                            const fs_predict_opts *opts)
{
    int k_per = m->num_tree_per_iteration, first, count;
    fsm_iteration_range(m, opts, &first, &count);
    fs_model_predict_raw_batch(m, x, nrows, out, opts);
    for (size_t r = 0; r < nrows; r++)
        transform(m, out + r * (size_t)k_per, count);
}
