/*
 * fs_model contributions: TreeSHAP (Lundberg et al., arXiv:1706.06060) with the values
 * LightGBM's Tree::PredictContrib computes: per tree, the bias column receives the tree's
 * expected value (leaf values weighted by leaf_count / internal_count of the root) and each
 * feature its Shapley value for the path-dependent value function (a feature not in the
 * coalition follows both branches, weighted by the training counts).
 *
 * fs_model_predict_contrib computes them leaf by leaf in closed form rather than by
 * LightGBM's extend / unwind recursion. For a leaf of value v, let P be the unique features
 * on its root-to-leaf path (d = |P|), z_j the product over the path's splits on feature j of
 * count(child on the path) / count(node) (the same products, in the same order, as
 * LightGBM's zero fractions) and o_j = 1 if the row goes the path's way at every split on j,
 * else 0. The leaf's value function is f(S) = v prod_{j in S} o_j prod_{j in P\S} z_j, and
 * with w_k = k! (d-1-k)! / d! its Shapley values are
 *   phi_i = v (o_i - z_i) sum_{S subset of P\{i}} w_|S| prod_{j in S} o_j prod_{P\{i}\S} z_j.
 * Only coalitions within H = {j : o_j = 1} survive, so with Q(t) = prod_{j in H} (t + z_j) =
 * sum_m q_m t^m and Zc = prod_{j in P\H} z_j:
 *   i in H:     phi_i = v (1 - z_i) Zc sum_m w_m b_m,  b = Q / (t + z_i) (synthetic division);
 *   i not in H: phi_i = -v z_i prod_{j in P\H, j != i} z_j sum_m w_m q_m.
 * Two ways to evaluate it per row:
 *  - Pattern tables (trees of at most 65 leaves whose leaves have at most FSM_SHAP_TABLE_D
 *    unique features, within FSM_SHAP_TABLE_BUDGET): z is row-independent, so at load each
 *    leaf's d contributions are computed for all 2^d values of (o_j). Per row: one decision
 *    per internal node into a 64-bit go-right word, then per leaf its pattern (each o_j from
 *    precomputed node masks), one prefetched table row, d additions.
 *  - Otherwise a walk of the tree keeping H, C, Q's coefficients for every prefix of H and
 *    C's prefix products incrementally, the closed form at each leaf.
 * Neither divides at run time. On the default bundle about 8x less time than LightGBM's
 * recursion, which is kept as fsm_predict_contrib_ref: the reference the unit tests and
 * bench_contrib compare against; they agree far below the 1e-9 the contract asks.
 */
#include <stdlib.h>
#include <string.h>

#include "fs_model_impl.h"

/* ---- The reference: LightGBM's recursion, in LightGBM's arithmetic order. ---- */

typedef struct path_elem {
    int feature;
    double zero_fraction;
    double one_fraction;
    double pweight;
} path_elem;

static void extend_path(path_elem *path, int depth, double zero_fraction, double one_fraction,
                        int feature)
{
    path[depth].feature = feature;
    path[depth].zero_fraction = zero_fraction;
    path[depth].one_fraction = one_fraction;
    path[depth].pweight = depth == 0 ? 1.0 : 0.0;
    for (int i = depth - 1; i >= 0; i--) {
        path[i + 1].pweight += one_fraction * path[i].pweight * (i + 1) / (double)(depth + 1);
        path[i].pweight = zero_fraction * path[i].pweight * (depth - i) / (double)(depth + 1);
    }
}

static void unwind_path(path_elem *path, int depth, int index)
{
    const double one_fraction = path[index].one_fraction;
    const double zero_fraction = path[index].zero_fraction;
    double next_one_portion = path[depth].pweight;
    for (int i = depth - 1; i >= 0; i--) {
        if (one_fraction != 0) {
            const double tmp = path[i].pweight;
            path[i].pweight = next_one_portion * (depth + 1) / (double)((i + 1) * one_fraction);
            next_one_portion =
                tmp - path[i].pweight * zero_fraction * (depth - i) / (double)(depth + 1);
        } else {
            path[i].pweight =
                (path[i].pweight * (depth + 1)) / (double)(zero_fraction * (depth - i));
        }
    }
    for (int i = index; i < depth; i++) {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

static double unwound_path_sum(const path_elem *path, int depth, int index)
{
    const double one_fraction = path[index].one_fraction;
    const double zero_fraction = path[index].zero_fraction;
    double next_one_portion = path[depth].pweight;
    double total = 0;
    for (int i = depth - 1; i >= 0; i--) {
        if (one_fraction != 0) {
            const double tmp = next_one_portion * (depth + 1) / (double)((i + 1) * one_fraction);
            total += tmp;
            next_one_portion =
                path[i].pweight - tmp * zero_fraction * ((depth - i) / (double)(depth + 1));
        } else {
            total += (path[i].pweight / zero_fraction) / ((depth - i) / (double)(depth + 1));
        }
    }
    return total;
}

static double data_count(const fs_model *m, int32_t n)
{
    return n >= 0 ? m->node_count[n] : m->leaf_count[~n];
}

typedef struct shap_ctx {
    const fs_model *m;
    const double *base; /* base values of the row, per raw feature */
    double *phi;
} shap_ctx;

static void tree_shap(const shap_ctx *c, int32_t node, int depth, path_elem *parent_path,
                      double parent_zero_fraction, double parent_one_fraction,
                      int parent_feature)
{
    const fs_model *m = c->m;
    path_elem *path = parent_path + depth;
    if (depth > 0)
        memcpy(path, parent_path, sizeof(path_elem) * (size_t)depth);
    extend_path(path, depth, parent_zero_fraction, parent_one_fraction, parent_feature);

    if (node < 0) {
        double leaf = m->leaf_value[~node];
        for (int i = 1; i <= depth; i++) {
            const double w = unwound_path_sum(path, depth, i);
            const path_elem *el = &path[i];
            c->phi[el->feature] += w * (el->one_fraction - el->zero_fraction) * leaf;
        }
        return;
    }
    int feature = fsm_node_feature(m, node);
    const fsm_node *nd = &m->nodes[node];
    const int32_t hot = fsm_decide_base(m, node, c->base[feature]);
    const int32_t cold = hot == nd->child[0] ? nd->child[1] : nd->child[0];
    const double w = data_count(m, node);
    const double hot_zero_fraction = data_count(m, hot) / w;
    const double cold_zero_fraction = data_count(m, cold) / w;
    double incoming_zero_fraction = 1;
    double incoming_one_fraction = 1;

    int index = 0;
    for (; index <= depth; index++)
        if (path[index].feature == feature)
            break;
    if (index != depth + 1) {
        incoming_zero_fraction = path[index].zero_fraction;
        incoming_one_fraction = path[index].one_fraction;
        unwind_path(path, depth, index);
        depth -= 1;
    }
    tree_shap(c, hot, depth + 1, path, hot_zero_fraction * incoming_zero_fraction,
              incoming_one_fraction, feature);
    tree_shap(c, cold, depth + 1, path, cold_zero_fraction * incoming_zero_fraction, 0, feature);
}

static double expected_value(const fs_model *m, const fsm_tree *t)
{
    if (t->num_leaves == 1)
        return m->leaf_value[t->leaf_base];
    const double total = m->node_count[t->root];
    double v = 0.0;
    for (int32_t i = 0; i < t->num_leaves; i++)
        v += (m->leaf_count[t->leaf_base + i] / total) * m->leaf_value[t->leaf_base + i];
    return v;
}

int fsm_predict_contrib_ref(const fs_model *m, const double *x, double *out,
                            const fs_predict_opts *opts)
{
    int first, count, rc = -1;
    int k_per = m->num_tree_per_iteration;
    size_t nf = (size_t)m->num_features, stride = nf + 1;
    double *base = NULL, *phi = NULL;
    path_elem *path = NULL;

    if (m->max_depth > FSM_MAX_SHAP_DEPTH || m->has_linear)
        goto out;
    fsm_iteration_range(m, opts, &first, &count);
    size_t max_len = (size_t)m->max_depth + 2;
    base = malloc(nf * sizeof(double));
    phi = calloc(stride * (size_t)k_per, sizeof(double));
    path = malloc(sizeof(path_elem) * (max_len * (max_len + 1) / 2));
    if (base == NULL || phi == NULL || path == NULL)
        goto out;
    for (size_t i = 0; i < nf; i++)
        base[i] = fsm_base_value(x[i]);
    for (int it = first; it < first + count; it++) {
        for (int k = 0; k < k_per; k++) {
            const fsm_tree *t = &m->trees[(size_t)it * (size_t)k_per + (size_t)k];
            double *o = phi + (size_t)k * stride;
            o[nf] += expected_value(m, t);
            if (t->num_leaves > 1) {
                shap_ctx c = {m, base, o};
                tree_shap(&c, t->root, 0, path, 1, 1, -1);
            }
        }
    }
    memcpy(out, phi, sizeof(double) * stride * (size_t)k_per);
    rc = 0;
out:
    free(base);
    free(phi);
    free(path);
    return rc;
}

/* ---- Load-time tables. ---- */

/* Longest path, in unique features, the weight table must cover. */
static int shap_max_unique(const fs_model *m)
{
    return m->max_depth < m->num_features ? m->max_depth : m->num_features;
}

/* One tree's flat paths: a walk keeping, per unique feature on the path, z (LightGBM's
 * product order: the new ratio times the product so far), mask and want. Appends the
 * entries of each leaf at *n (cap entries); returns -1 if they do not fit. */
typedef struct flat_walk {
    fs_model *m;
    const fsm_tree *t;
    int32_t *slot;      /* per feature: its entry on the path, -1 */
    int32_t pf[64];
    double pz[64];
    uint64_t pm[64], pw[64];
    int d;
    size_t n, cap;
} flat_walk;

static int flat_tree(flat_walk *w, int32_t node)
{
    fs_model *m = w->m;
    if (node < 0) {
        const int32_t leaf = ~node;
        if (w->n + (size_t)w->d > w->cap)
            return -1;
        m->shap_loff[2 * (size_t)leaf] = (int32_t)w->n;
        for (int e = 0; e < w->d; e++, w->n++) {
            m->shap_ef[w->n] = w->pf[e];
            m->shap_ez[w->n] = w->pz[e];
            m->shap_em[w->n] = w->pm[e];
            m->shap_ewant[w->n] = w->pw[e];
        }
        m->shap_loff[2 * (size_t)leaf + 1] = (int32_t)w->n;
        return 0;
    }
    const int f = fsm_node_feature(m, node);
    const uint64_t bit = (uint64_t)1 << (node - w->t->node_base);
    const int32_t s = w->slot[f];
    for (int side = 0; side < 2; side++) {
        const double r = m->shap_ratio[2 * (size_t)node + (size_t)side];
        const uint64_t want = side ? bit : 0;
        int rc;
        if (s < 0) {
            const int d = w->d;
            w->pf[d] = f;
            w->pz[d] = r;
            w->pm[d] = bit;
            w->pw[d] = want;
            w->slot[f] = d;
            w->d = d + 1;
            rc = flat_tree(w, m->nodes[node].child[side]);
            w->d = d;
            w->slot[f] = -1;
        } else {
            const double z0 = w->pz[s];
            const uint64_t m0 = w->pm[s], w0 = w->pw[s];
            w->pz[s] = r * z0;
            w->pm[s] = m0 | bit;
            w->pw[s] = w0 | want;
            rc = flat_tree(w, m->nodes[node].child[side]);
            w->pz[s] = z0;
            w->pm[s] = m0;
            w->pw[s] = w0;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Flat paths for every tree with 2..65 leaves, while they fit FSM_SHAP_FLAT_MAX entries. */
static int build_flat(fs_model *m)
{
    size_t nt = (size_t)m->num_trees, total = 0;
    for (size_t t = 0; t < nt; t++)
        if (m->trees[t].num_leaves > 1 && m->trees[t].num_leaves <= 65)
            total += (size_t)m->trees[t].num_leaves * (size_t)m->trees[t].depth;
    if (total > FSM_SHAP_FLAT_MAX)
        total = FSM_SHAP_FLAT_MAX;
    if (total == 0)
        return 0;
    flat_walk w = {.m = m, .cap = total};
    m->shap_loff = malloc(2 * (size_t)m->num_leaves_total * sizeof(int32_t));
    m->shap_ef = malloc(total * sizeof(int32_t));
    m->shap_ez = malloc(total * sizeof(double));
    m->shap_em = malloc(total * sizeof(uint64_t));
    m->shap_ewant = malloc(total * sizeof(uint64_t));
    m->shap_flat = calloc(nt, 1);
    w.slot = malloc((size_t)m->num_features * sizeof(int32_t) + 1);
    if (m->shap_loff == NULL || m->shap_ef == NULL || m->shap_ez == NULL || m->shap_em == NULL ||
        m->shap_ewant == NULL || m->shap_flat == NULL || w.slot == NULL) {
        free(w.slot);
        return -1;
    }
    for (int i = 0; i < m->num_features; i++)
        w.slot[i] = -1;
    for (size_t t = 0; t < nt; t++) {
        const fsm_tree *tr = &m->trees[t];
        if (tr->num_leaves < 2 || tr->num_leaves > 65)
            continue;
        w.t = tr;
        w.d = 0;
        size_t n0 = w.n;
        if (flat_tree(&w, tr->root) != 0) {
            w.n = n0; /* past the cap: this tree (and, likely, the rest) is walked */
            for (int f = 0; f < m->num_features; f++)
                w.slot[f] = -1;
            continue;
        }
        m->shap_flat[t] = 1;
    }
    free(w.slot);
    return 0;
}

/* The closed form for one leaf of d entries (z, o in entry order, weights w for d) into
 * out[0..d); scratch: 4 d + 2 doubles, 2 d ints. */
static void leaf_values(const double *w, const double *z, const uint8_t *o, int d, double v,
                        double *out, double *scr, int *idx)
{
    double *q = scr, *b = scr + d + 1, *s = scr + 2 * d + 1, *pre = scr + 3 * d + 1;
    int *hidx = idx, *cidx = idx + d;
    int h = 0, nc = 0;
    double zc = 1.0;
    for (int e = 0; e < d; e++) {
        if (o[e]) {
            hidx[h++] = e;
        } else {
            pre[nc] = zc;
            zc *= z[e];
            cidx[nc++] = e;
        }
    }
    q[0] = 1.0;
    for (int j = 0; j < h; j++) {
        const double zj = z[hidx[j]];
        q[j + 1] = q[j];
        for (int k = j; k > 0; k--)
            q[k] = q[k - 1] + zj * q[k];
        q[0] *= zj;
    }
    for (int i = 0; i < h; i++) {
        b[i] = q[h];
        s[i] = w[h - 1] * q[h];
    }
    for (int k = h - 1; k > 0; k--)
        for (int i = 0; i < h; i++) {
            b[i] = q[k] - z[hidx[i]] * b[i];
            s[i] += w[k - 1] * b[i];
        }
    for (int i = 0; i < h; i++)
        out[hidx[i]] = v * zc * (1.0 - z[hidx[i]]) * s[i];
    double sh = 0.0;
    for (int k = 0; k <= h && nc > 0; k++)
        sh += w[k] * q[k];
    double suf = 1.0;
    for (int i = nc - 1; i >= 0; i--) {
        const double zi = z[cidx[i]];
        out[cidx[i]] = -(v * sh) * zi * (pre[i] * suf);
        suf *= zi;
    }
}

/* Pattern tables, tree by tree while the budget lasts, for the flat trees whose leaves all
 * have at most FSM_SHAP_TABLE_D entries; the other trees are walked (shap_flat[t] = 0). */
static int build_tables(fs_model *m)
{
    if (m->shap_flat == NULL)
        return 0;
    const size_t L = (size_t)m->num_leaves_total, budget = FSM_SHAP_TABLE_BUDGET / sizeof(double);
    size_t total = 0;
    m->shap_ltab = malloc((L ? L : 1) * sizeof(int64_t));
    if (m->shap_ltab == NULL)
        return -1;
    for (size_t l = 0; l < L; l++)
        m->shap_ltab[l] = -1;
    for (size_t t = 0; t < (size_t)m->num_trees; t++) {
        const fsm_tree *tr = &m->trees[t];
        if (!m->shap_flat[t])
            continue;
        size_t need = 0;
        for (int32_t l = tr->leaf_base; l < tr->leaf_base + tr->num_leaves; l++) {
            size_t d = (size_t)(m->shap_loff[2 * (size_t)l + 1] - m->shap_loff[2 * (size_t)l]);
            need = d > FSM_SHAP_TABLE_D ? budget + 1 : need + (d << d);
        }
        if (need > budget - total) {
            m->shap_flat[t] = 0; /* walked */
            continue;
        }
        for (int32_t l = tr->leaf_base; l < tr->leaf_base + tr->num_leaves; l++) {
            size_t d = (size_t)(m->shap_loff[2 * (size_t)l + 1] - m->shap_loff[2 * (size_t)l]);
            m->shap_ltab[l] = (int64_t)total;
            total += d << d;
        }
    }
    if (total == 0)
        return 0;
    m->shap_tab = malloc(total * sizeof(double));
    if (m->shap_tab == NULL)
        return -1;
    double scr[4 * FSM_SHAP_TABLE_D + 2];
    int idx[2 * FSM_SHAP_TABLE_D];
    uint8_t o[FSM_SHAP_TABLE_D];
    for (size_t l = 0; l < L; l++) {
        if (m->shap_ltab[l] < 0)
            continue;
        const int32_t e0 = m->shap_loff[2 * l];
        const int d = m->shap_loff[2 * l + 1] - e0;
        const double *w = m->shap_w + (size_t)d * (size_t)(d - 1) / 2;
        double *tab = m->shap_tab + m->shap_ltab[l];
        for (int p = 0; p < (1 << d); p++) {
            for (int j = 0; j < d; j++)
                o[j] = (uint8_t)((p >> j) & 1);
            leaf_values(w, m->shap_ez + e0, o, d, m->leaf_value[l], tab + (size_t)p * (size_t)d,
                        scr, idx);
        }
    }
    return 0;
}

int fsm_build_shap(fs_model *m)
{
    if (m->has_linear || m->max_depth > FSM_MAX_SHAP_DEPTH)
        return 0;
    size_t nt = (size_t)m->num_trees, nn = (size_t)m->num_nodes;
    size_t dmax = (size_t)shap_max_unique(m);
    m->shap_ev = malloc((nt ? nt : 1) * sizeof(double));
    m->shap_ratio = malloc((nn ? 2 * nn : 1) * sizeof(double));
    m->shap_w = malloc((dmax ? dmax * (dmax + 1) / 2 : 1) * sizeof(double));
    if (m->shap_ev == NULL || m->shap_ratio == NULL || m->shap_w == NULL) {
        fsm_free_shap(m);
        return -1;
    }
    for (size_t t = 0; t < nt; t++)
        m->shap_ev[t] = expected_value(m, &m->trees[t]);
    for (size_t n = 0; n < nn; n++) {
        const double w = data_count(m, (int32_t)n);
        for (int side = 0; side < 2; side++)
            m->shap_ratio[2 * n + (size_t)side] = data_count(m, m->nodes[n].child[side]) / w;
    }
    /* w_0 = 1/d, w_{k+1} = w_k (k+1) / (d-1-k): no factorial overflows. */
    for (size_t d = 1; d <= dmax; d++) {
        double *w = m->shap_w + d * (d - 1) / 2;
        w[0] = 1.0 / (double)d;
        for (size_t k = 0; k + 1 < d; k++)
            w[k + 1] = w[k] * (double)(k + 1) / (double)(d - 1 - k);
    }
    if (build_flat(m) != 0 || build_tables(m) != 0) {
        fsm_free_shap(m);
        return -1;
    }
    return 0;
}

void fsm_free_shap(fs_model *m)
{
    free(m->shap_ev);
    free(m->shap_ratio);
    free(m->shap_w);
    free(m->shap_loff);
    free(m->shap_ef);
    free(m->shap_ez);
    free(m->shap_em);
    free(m->shap_ewant);
    free(m->shap_flat);
    free(m->shap_ltab);
    free(m->shap_tab);
    m->shap_ltab = NULL;
    m->shap_tab = NULL;
    m->shap_ev = m->shap_ratio = m->shap_w = m->shap_ez = NULL;
    m->shap_loff = m->shap_ef = NULL;
    m->shap_em = m->shap_ewant = NULL;
    m->shap_flat = NULL;
}

/* ---- Per row: one pass over each tree, the closed form at each leaf. ---- */

/* The walk's state: the current path's unique features split into H (o = 1) and C (o = 0),
 * Q's coefficients for every prefix of H (level l, the product over hz[0..l), has l + 1
 * coefficients at q + l (l + 1) / 2), and C's prefix products. */
#define SLOT_NONE INT32_MIN

typedef struct leaf_ctx {
    const fs_model *m;
    const double *base; /* base values of the row, per raw feature */
    double *phi;
    int32_t *slot;      /* per feature: its index in H, ~its index in C, or SLOT_NONE */
    int32_t *hf;        /* H: features */
    double *hz;         /* and z */
    int32_t *cf;        /* C: features */
    double *cz;         /* and z */
    double *cpre;       /* cpre[i] = cz[0] ... cz[i - 1] */
    double *q;          /* Q levels */
    double *bs;         /* scratch: 2 dmax */
    int h, nc;
} leaf_ctx;

static inline double *qlev(double *q, int l)
{
    return q + (size_t)l * (size_t)(l + 1) / 2;
}

/* Recomputes Q levels from + 1 .. h from level `from`. */
static void q_from(leaf_ctx *c, int from)
{
    for (int l = from; l < c->h; l++) {
        const double *a = qlev(c->q, l);
        double *b = qlev(c->q, l + 1);
        const double z = c->hz[l];
        b[l + 1] = a[l];
        for (int k = l; k > 0; k--)
            b[k] = a[k - 1] + z * a[k];
        b[0] = z * a[0];
    }
}

static void cold_from(leaf_ctx *c, int from)
{
    for (int i = from; i < c->nc; i++)
        c->cpre[i + 1] = c->cpre[i] * c->cz[i];
}

static void leaf_shap(const leaf_ctx *c, double v)
{
    const int h = c->h, nc = c->nc, d = h + nc;
    const double *w = c->m->shap_w + (size_t)d * (size_t)(d - 1) / 2;
    const double *q = qlev(c->q, h);
    const double *hz = c->hz;
    double *phi = c->phi;
    if (h > 0) {
        /* For every i in H at once: b = Q / (t + z_i) top down, s_i = sum_m w_m b_m. */
        double *b = c->bs, *s = c->bs + h;
        for (int i = 0; i < h; i++) {
            b[i] = q[h];
            s[i] = w[h - 1] * q[h];
        }
        for (int k = h - 1; k > 0; k--) {
            const double qk = q[k], wk = w[k - 1];
            for (int i = 0; i < h; i++) {
                b[i] = qk - hz[i] * b[i];
                s[i] += wk * b[i];
            }
        }
        const double vz = v * c->cpre[nc];
        for (int i = 0; i < h; i++)
            phi[c->hf[i]] += vz * (1.0 - hz[i]) * s[i];
    }
    if (nc > 0) {
        double s = 0.0;
        for (int k = 0; k <= h; k++)
            s += w[k] * q[k];
        const double vs = v * s;
        double suf = 1.0;
        for (int i = nc - 1; i >= 0; i--) {
            const double z = c->cz[i];
            phi[c->cf[i]] -= vs * z * (c->cpre[i] * suf);
            suf *= z;
        }
    }
}

static void tree_leaves(leaf_ctx *c, int32_t node);

static inline void descend(leaf_ctx *c, int32_t child)
{
    if (child < 0)
        leaf_shap(c, c->m->leaf_value[~child]);
    else
        tree_leaves(c, child);
}

/* A feature split again on the path: its entry's z becomes r z (LightGBM's order), its o the
 * AND; an H entry whose o drops to 0 moves to C for the subtree. */
static void descend_repeat(leaf_ctx *c, int32_t child, int f, int32_t s, double r, int on)
{
    if (s < 0) {
        const int i = ~s;
        const double z0 = c->cz[i];
        c->cz[i] = r * z0;
        cold_from(c, i);
        descend(c, child);
        c->cz[i] = z0;
        cold_from(c, i);
        return;
    }
    const double z0 = c->hz[s];
    if (on) {
        c->hz[s] = r * z0;
        q_from(c, s);
        descend(c, child);
        c->hz[s] = z0;
        q_from(c, s);
        return;
    }
    for (int i = s; i + 1 < c->h; i++) {
        c->hf[i] = c->hf[i + 1];
        c->hz[i] = c->hz[i + 1];
        c->slot[c->hf[i]] = i;
    }
    c->h--;
    q_from(c, s);
    c->cf[c->nc] = f;
    c->cz[c->nc] = r * z0;
    c->cpre[c->nc + 1] = c->cpre[c->nc] * (r * z0);
    c->slot[f] = ~c->nc;
    c->nc++;
    descend(c, child);
    c->nc--;
    for (int i = c->h; i > s; i--) {
        c->hf[i] = c->hf[i - 1];
        c->hz[i] = c->hz[i - 1];
        c->slot[c->hf[i]] = i;
    }
    c->hf[s] = f;
    c->hz[s] = z0;
    c->slot[f] = s;
    c->h++;
    q_from(c, s);
}

static void tree_leaves(leaf_ctx *c, int32_t node)
{
    const fs_model *m = c->m;
    const int f = fsm_node_feature(m, node);
    const fsm_node *nd = &m->nodes[node];
    const int32_t hot = fsm_decide_base(m, node, c->base[f]);
    const int32_t s = c->slot[f];
    for (int side = 0; side < 2; side++) {
        const int32_t child = nd->child[side];
        const double r = m->shap_ratio[2 * (size_t)node + (size_t)side];
        if (s != SLOT_NONE) {
            descend_repeat(c, child, f, s, r, child == hot);
        } else if (child == hot) {
            const int h = c->h;
            c->hf[h] = f;
            c->hz[h] = r;
            c->slot[f] = h;
            c->h = h + 1;
            q_from(c, h);
            descend(c, child);
            c->h = h;
            c->slot[f] = SLOT_NONE;
        } else {
            const int nc = c->nc;
            c->cf[nc] = f;
            c->cz[nc] = r;
            c->cpre[nc + 1] = c->cpre[nc] * r;
            c->slot[f] = ~nc;
            c->nc = nc + 1;
            descend(c, child);
            c->nc = nc;
            c->slot[f] = SLOT_NONE;
        }
    }
}

static void flat_tree_row(const leaf_ctx *c, const fsm_tree *t)
{
    const fs_model *m = c->m;
    const int32_t nn = t->num_leaves - 1;
    uint64_t goright = 0;
    for (int32_t j = 0; j < nn; j++) {
        const int32_t node = t->node_base + j;
        const int32_t to = fsm_decide_base(m, node, c->base[fsm_node_feature(m, node)]);
        goright |= (uint64_t)(to == m->nodes[node].child[1]) << j;
    }
    /* The row's pattern picks each leaf's contributions. The rows of the tables are
     * scattered over megabytes: all of the tree's are requested (prefetch) before any is
     * read. */
    const double *rows[65];
    for (int32_t i = 0; i < t->num_leaves; i++) {
        const int32_t l = t->leaf_base + i;
        const int32_t e0 = m->shap_loff[2 * (size_t)l], e1 = m->shap_loff[2 * (size_t)l + 1];
        unsigned p = 0;
        for (int32_t e = e0; e < e1; e++)
            p |= (unsigned)(((goright ^ m->shap_ewant[e]) & m->shap_em[e]) == 0) << (e - e0);
        rows[i] = m->shap_tab + m->shap_ltab[l] + (size_t)p * (size_t)(e1 - e0);
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(rows[i]);
#endif
    }
    for (int32_t i = 0; i < t->num_leaves; i++) {
        const int32_t l = t->leaf_base + i;
        const int32_t e0 = m->shap_loff[2 * (size_t)l], e1 = m->shap_loff[2 * (size_t)l + 1];
        for (int32_t e = e0; e < e1; e++)
            c->phi[m->shap_ef[e]] += rows[i][e - e0];
    }
}

int fs_model_has_linear_trees(const fs_model *m)
{
    return m->has_linear;
}

int fs_model_predict_contrib(const fs_model *m, const double *x, double *out,
                             const fs_predict_opts *opts)
{
    int first, count, rc = -1;
    int k_per = m->num_tree_per_iteration;
    size_t nf = (size_t)m->num_features, stride = nf + 1;
    size_t dmax = (size_t)shap_max_unique(m);
    double *base = NULL, *phi = NULL, *scratch = NULL;
    int32_t *iscratch = NULL;

    if (m->max_depth > FSM_MAX_SHAP_DEPTH || m->has_linear)
        goto out;
    if (m->shap_ev == NULL) /* no memory for the tables at load: slower, same values */
        return fsm_predict_contrib_ref(m, x, out, opts);
    fsm_iteration_range(m, opts, &first, &count);
    base = malloc((nf ? nf : 1) * sizeof(double));
    phi = calloc(stride * (size_t)k_per, sizeof(double));
    /* hz, cz, cpre (dmax + 1), bs (2 dmax), Q levels ((dmax + 1) (dmax + 2) / 2). */
    scratch = malloc((5 * dmax + 1 + (dmax + 1) * (dmax + 2) / 2) * sizeof(double));
    iscratch = malloc((nf + 2 * dmax + 1) * sizeof(int32_t));
    if (base == NULL || phi == NULL || scratch == NULL || iscratch == NULL)
        goto out;
    for (size_t i = 0; i < nf; i++) {
        base[i] = fsm_base_value(x[i]);
        iscratch[i] = SLOT_NONE;
    }
    leaf_ctx c = {.m = m,
                  .base = base,
                  .slot = iscratch,
                  .hf = iscratch + nf,
                  .cf = iscratch + nf + dmax,
                  .hz = scratch,
                  .cz = scratch + dmax,
                  .cpre = scratch + 2 * dmax,
                  .bs = scratch + 3 * dmax + 1,
                  .q = scratch + 5 * dmax + 1};
    c.cpre[0] = 1.0;
    c.q[0] = 1.0;
    for (int it = first; it < first + count; it++) {
        for (int k = 0; k < k_per; k++) {
            const size_t ti = (size_t)it * (size_t)k_per + (size_t)k;
            const fsm_tree *t = &m->trees[ti];
            double *o = phi + (size_t)k * stride;
            o[nf] += m->shap_ev[ti];
            c.phi = o;
            if (t->num_leaves > 1 && m->shap_flat != NULL && m->shap_flat[ti])
                flat_tree_row(&c, t);
            else if (t->num_leaves > 1) {
                tree_leaves(&c, t->root);
            }
        }
    }
    memcpy(out, phi, sizeof(double) * stride * (size_t)k_per);
    rc = 0;
out:
    free(base);
    free(phi);
    free(scratch);
    free(iscratch);
    return rc;
}
