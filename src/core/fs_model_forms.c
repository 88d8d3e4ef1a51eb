/*
 * fs_model form compiler: turns the parsed trees of a model (fs_model_parse.c fills nodes[],
 * trees[], leaf_value[] and the columns) into the execution forms the evaluator runs
 * (fs_model.c): the 16-byte double form every path can use, the binned form and the
 * QuickScorer table of the single-row path, and the choice between them (fs_model_impl.h
 * describes each form). Nothing here reads text: every input was checked by the parser.
 * Every allocation is bounded by the model's node count or the QuickScorer table budget.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_model_impl.h"

/* The execution kind of a split: its column kind and, for missing values, the direction
 * they default to. */
static int xkind_of(const fs_model *m, const fsm_node *nd)
{
    int kind = m->col_kind[nd->col], dl = (nd->flags & FSM_DEFAULT_LEFT) != 0;
    if (kind == FSM_COL_CAT)
        return FSM_X_CAT;
    if (kind == FSM_COL_ZERO)
        return dl ? FSM_X_ZERO_L : FSM_X_ZERO_R;
    if (kind == FSM_COL_NAN)
        return dl ? FSM_X_NAN_L : FSM_X_NAN_R;
    return FSM_X_NONE;
}

/* Execution column for (feature, kind), created on first use. */
static int32_t xcolumn_for(fs_model *m, int32_t *xcol_of, int feature, int kind)
{
    int32_t *slot = &xcol_of[(size_t)feature * FSM_X_KINDS + (size_t)kind];
    if (*slot < 0) {
        m->xcol_feat[m->num_xcols] = feature;
        m->xcol_kind[m->num_xcols] = (uint8_t)kind;
        *slot = m->num_xcols++;
    }
    return *slot;
}

/* Builds the execution form (see fs_model_impl.h) from the parsed trees. */
static int build_exec(fs_model *m)
{
    int rc = -1;
    int32_t *xcol_of = NULL, *stack = NULL, *patch = NULL;
    size_t total = 0;
    int32_t max_leaves = 1;
    for (int t = 0; t < m->num_trees; t++) {
        total += 2 * (size_t)m->trees[t].num_leaves - 1;
        if (m->trees[t].num_leaves > max_leaves)
            max_leaves = m->trees[t].num_leaves;
    }
    if (total > INT32_MAX)
        goto out;
    size_t nt = total ? total : 1;
    /* At most one execution column per (old column, default direction), plus the NaN one. */
    size_t maxcols = 2 * (size_t)m->num_cols + 1;
    m->xnodes = malloc(nt * sizeof(fsm_xnode));
    m->xleaf = malloc(nt * sizeof(int32_t));
    m->xcat_off = calloc(nt, sizeof(int32_t));
    m->xcat_len = calloc(nt, sizeof(int32_t));
    m->xcol_feat = malloc(maxcols * sizeof(int32_t));
    m->xcol_kind = malloc(maxcols);
    xcol_of = malloc((size_t)m->num_features * FSM_X_KINDS * sizeof(int32_t));
    stack = malloc(2 * (size_t)max_leaves * sizeof(int32_t));
    patch = malloc(2 * (size_t)max_leaves * sizeof(int32_t));
    if (!m->xnodes || !m->xleaf || !m->xcat_off || !m->xcat_len || !m->xcol_feat ||
        !m->xcol_kind || !xcol_of || !stack || !patch)
        goto out;
    for (size_t i = 0; i < (size_t)m->num_features * FSM_X_KINDS; i++)
        xcol_of[i] = -1;
    /* Execution columns first, so the NaN column's index is known. */
    for (int32_t g = 0; g < m->num_nodes; g++) {
        const fsm_node *nd = &m->nodes[g];
        xcolumn_for(m, xcol_of, m->col_feat[nd->col], xkind_of(m, nd));
    }
    int32_t nan_col = m->num_xcols++;
    m->xcol_feat[nan_col] = -1;
    m->xcol_kind[nan_col] = FSM_X_NAN_R;

    int32_t pos = 0;
    for (int ti = 0; ti < m->num_trees; ti++) {
        fsm_tree *t = &m->trees[ti];
        int sp = 0;
        t->xroot = pos;
        /* Children as in nodes[]: >= 0 node, < 0 ~leaf (global). Preorder, left first. */
        stack[sp] = t->root;
        patch[sp++] = -1;
        while (sp > 0) {
            sp--;
            int32_t c = stack[sp], at = pos++;
            if (patch[sp] >= 0)
                m->xnodes[patch[sp]].skip = at - (patch[sp] + 1);
            fsm_xnode *x = &m->xnodes[at];
            m->xcat_off[at] = m->xcat_len[at] = 0;
            if (c < 0) {
                x->thr = m->leaf_value[~c];
                x->col = nan_col;
                x->skip = -1;
                m->xleaf[at] = ~c;
                continue;
            }
            const fsm_node *nd = &m->nodes[c];
            int xk = xkind_of(m, nd);
            int32_t col = xcolumn_for(m, xcol_of, m->col_feat[nd->col], xk);
            x->thr = nd->thr;
            x->col = col;
            x->skip = 0;
            m->xleaf[at] = -1;
            if (xk == FSM_X_CAT) {
                x->col = ~col;
                m->xcat_off[at] = m->cat_off[c];
                m->xcat_len[at] = m->cat_len[c];
                m->has_cat = 1;
            }
            stack[sp] = nd->child[1];
            patch[sp++] = at;
            stack[sp] = nd->child[0];
            patch[sp++] = -1;
        }
    }
    m->num_xnodes = pos;
    rc = 0;
out:
    free(xcol_of);
    free(stack);
    free(patch);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Entries of a feature's threshold array in the binned and QuickScorer forms: k sorted
 * thresholds padded with +inf to the next 2^p - 1, the shape their branch-free search needs. */
static int32_t padded_len(int32_t k)
{
    int32_t padded = 0;
    while (padded < k)
        padded = 2 * padded + 1;
    return padded;
}

/* The bin of 0.0 among the k sorted thresholds t: #{i : !(0.0 <= t[i])}. */
static int32_t zero_bin(const double *t, int32_t k)
{
    int32_t b = 0;
    while (b < k && !(0.0 <= t[b]))
        b++;
    return b;
}

static void free_bins(fs_model *m)
{
    free(m->bnodes);
    free(m->bthr);
    free(m->bfeat);
    free(m->bfeat_off);
    free(m->bfeat_step);
    free(m->bcol_use);
    free(m->bcol_alt);
    free(m->bcol_toff);
    free(m->bcol_tlen);
    m->bcol_toff = m->bcol_tlen = NULL;
    m->bnodes = NULL;
    m->bthr = NULL;
    m->bfeat = m->bfeat_off = m->bfeat_step = m->bcol_use = NULL;
    m->bcol_alt = NULL;
}

/* Builds the binned form (see fs_model_impl.h) when the model fits it. Returns -1 only when
 * out of memory; a model that does not fit keeps bnodes NULL. */
static int build_bins(fs_model *m)
{
    int rc = -1;
    size_t nf = (size_t)m->num_features;
    int32_t *cnt = NULL, *uoff = NULL, *fill = NULL, *poff = NULL, *plen = NULL;
    double *all = NULL;
    if (m->has_cat || m->num_xcols > FSM_BIN_MAX_COLS || m->num_xnodes == 0)
        return 0;
    for (int ti = 0; ti < m->num_trees; ti++) {
        const fsm_tree *t = &m->trees[ti];
        if (2 * (int64_t)t->num_leaves - 1 > INT16_MAX)
            return 0;
    }
    cnt = calloc(nf + 1, sizeof(int32_t));
    uoff = calloc(nf + 1, sizeof(int32_t));
    fill = calloc(nf + 1, sizeof(int32_t));
    poff = calloc(nf + 1, sizeof(int32_t));
    plen = calloc(nf + 1, sizeof(int32_t));
    all = malloc((size_t)m->num_xnodes * sizeof(double));
    if (!cnt || !uoff || !fill || !poff || !plen || !all)
        goto out;
    /* Thresholds grouped by feature. */
    for (int32_t n = 0; n < m->num_xnodes; n++)
        if (m->xleaf[n] < 0)
            cnt[m->xcol_feat[m->xnodes[n].col]]++;
    for (size_t f = 0; f < nf; f++)
        uoff[f + 1] = uoff[f] + cnt[f];
    for (int32_t n = 0; n < m->num_xnodes; n++)
        if (m->xleaf[n] < 0) {
            int32_t f = m->xcol_feat[m->xnodes[n].col];
            all[uoff[f] + fill[f]++] = m->xnodes[n].thr;
        }
    /* Sorted, distinct (by ==, so -0.0 and +0.0 are one threshold), padded to 2^p - 1. */
    size_t total = 0;
    for (size_t f = 0; f < nf; f++) {
        double *u = all + uoff[f];
        int32_t k = 0;
        qsort(u, (size_t)cnt[f], sizeof(double), cmp_double);
        for (int32_t i = 0; i < cnt[f]; i++)
            if (k == 0 || !(u[i] == u[k - 1]))
                u[k++] = u[i];
        if (k > FSM_BIN_MAX_THR) {
            rc = 0;
            goto out;
        }
        cnt[f] = k;
        int32_t padded = padded_len(k);
        poff[f] = (int32_t)total;
        plen[f] = padded;
        total += (size_t)padded;
    }
    m->bthr = malloc((total ? total : 1) * sizeof(double));
    m->bfeat = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bfeat_off = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bfeat_step = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bcol_use = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bcol_alt = malloc(2 * (size_t)m->num_xcols);
    m->bcol_toff = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bcol_tlen = malloc((size_t)m->num_xcols * sizeof(int32_t));
    m->bnodes = malloc((size_t)m->num_xnodes * sizeof(fsm_bnode));
    if (!m->bthr || !m->bfeat || !m->bfeat_off || !m->bfeat_step || !m->bcol_use ||
        !m->bcol_alt || !m->bcol_toff || !m->bcol_tlen || !m->bnodes)
        goto out;
    for (size_t f = 0; f < nf; f++)
        for (int32_t i = 0; i < plen[f]; i++)
            m->bthr[poff[f] + i] = i < cnt[f] ? all[uoff[f] + i] : INFINITY;
    /* Used features, in order of first column; fill[] now maps feature -> use index. */
    int32_t nan_col = m->num_xcols - 1;
    m->bnum_feat = 0;
    m->btable = FSM_BIN_SEG;
    for (size_t f = 0; f < nf; f++)
        fill[f] = -1;
    for (int32_t c = 0; c < nan_col; c++) {
        int32_t f = m->xcol_feat[c];
        if (fill[f] < 0) {
            int32_t u = m->bnum_feat++;
            fill[f] = u;
            m->bfeat[u] = f;
            m->bfeat_off[u] = poff[f];
            m->bfeat_step[u] = (plen[f] + 1) / 2;
        }
        m->bcol_use[c] = fill[f];
        int32_t b0 = zero_bin(all + uoff[f], cnt[f]);
        /* Bins of a zero and of a NaN base value in this column (see enum fsm_xkind). */
        uint8_t zb = (uint8_t)b0, nb;
        switch (m->xcol_kind[c]) {
        case FSM_X_NONE:
            nb = (uint8_t)b0;
            break;
        case FSM_X_ZERO_L:
            zb = nb = 0;
            break;
        case FSM_X_ZERO_R:
            zb = nb = 255;
            break;
        case FSM_X_NAN_L:
            nb = 0;
            break;
        default:
            nb = 255;
            break;
        }
        m->bcol_alt[2 * c] = zb;
        m->bcol_alt[2 * c + 1] = nb;
        m->bcol_toff[c] = m->btable;
        m->bcol_tlen[c] = (cnt[f] + FSM_BIN_SEG - 1) / FSM_BIN_SEG * FSM_BIN_SEG;
        m->btable += m->bcol_tlen[c];
    }
    m->bcol_use[nan_col] = 0;
    m->bcol_alt[2 * nan_col] = m->bcol_alt[2 * nan_col + 1] = 255;
    m->bcol_toff[nan_col] = 0;
    m->bcol_tlen[nan_col] = 0;
    if (m->btable > FSM_BIN_MAX_TABLE) {
        free_bins(m);
        rc = 0;
        goto out;
    }
    for (int32_t n = 0; n < m->num_xnodes; n++) {
        const fsm_xnode *x = &m->xnodes[n];
        fsm_bnode *b = &m->bnodes[n];
        uint32_t skip = (uint32_t)(uint16_t)(int16_t)x->skip << 16;
        if (m->xleaf[n] >= 0) {
            *b = skip;
            continue;
        }
        int32_t f = m->xcol_feat[x->col];
        const double *u = all + uoff[f];
        int32_t lo = 0, hi = cnt[f] - 1;
        while (lo < hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (u[mid] < x->thr)
                lo = mid + 1;
            else
                hi = mid;
        }
        *b = skip | (uint32_t)(m->bcol_toff[x->col] + lo);
    }
    rc = 0;
out:
    if (rc != 0) {
        free_bins(m);
    }
    free(cnt);
    free(uoff);
    free(fill);
    free(poff);
    free(plen);
    free(all);
    return rc;
}

static void free_qs(fs_model *m)
{
    free(m->qs_feat);
    free(m->qs_toff);
    free(m->qs_tstep);
    free(m->qs_ncp);
    free(m->qs_row);
    free(m->qs_dbase);
    free(m->qs_thr);
    free(m->qs_srch);
    free(m->qs_soff);
    free(m->qs_s1n);
    m->qs_srch = NULL;
    m->qs_soff = m->qs_s1n = NULL;
    free(m->qs_tab);
    free(m->qs_dpos);
    free(m->qs_dnode);
    free(m->qs_masks);
    free(m->qs_leaf);
    free(m->qs_lbase);
    m->qs_feat = m->qs_toff = m->qs_tstep = m->qs_ncp = m->qs_row = m->qs_dbase = NULL;
    m->qs_dpos = m->qs_lbase = NULL;
    m->qs_thr = m->qs_leaf = NULL;
    m->qs_tab = NULL;
    m->qs_dnode = NULL;
    m->qs_masks = NULL;
    m->qs_bits = 0;
    m->qs_shift = 0;
    m->qs_tab_bytes = 0;
}

/* One internal node as the QuickScorer builder sees it. */
typedef struct qs_ent {
    int32_t u;          /* feature (then used-feature index) */
    int32_t j;          /* threshold index among the feature's distinct thresholds */
    int32_t tree;
    int32_t kind;       /* enum fsm_xkind */
    double thr;
    uint64_t mask;      /* all ones but the node's left-subtree leaves */
    uint32_t pack;      /* the same as leaf count << 6 | first leaf (FSM_QS_NODE_MASK) */
} qs_ent;

static int cmp_qs_thr(const void *a, const void *b)
{
    const qs_ent *x = a, *y = b;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    return (x->thr > y->thr) - (x->thr < y->thr);
}

static int cmp_qs_ent(const void *a, const void *b)
{
    const qs_ent *x = a, *y = b;
    if (x->u != y->u)
        return x->u < y->u ? -1 : 1;
    if (x->j != y->j)
        return x->j < y->j ? -1 : 1;
    return (x->tree > y->tree) - (x->tree < y->tree);
}

/* Is the node false (does the row go right) for a zero (zero = 1) or a NaN base value?
 * b0 is the bin of 0.0 on the node's feature. */
static int qs_false_special(const qs_ent *e, int32_t b0, int zero)
{
    switch (e->kind) {
    case FSM_X_ZERO_L:
        return 0;
    case FSM_X_ZERO_R:
        return 1;
    case FSM_X_NAN_L:
        return zero ? b0 > e->j : 0;
    case FSM_X_NAN_R:
        return zero ? b0 > e->j : 1;
    default:
        return b0 > e->j;
    }
}

/* Stores one table row (masks of trees 0..nt) at row r. */
static void qs_put_row(fs_model *m, int32_t r, const uint64_t *cur, int32_t nt)
{
    size_t at = (size_t)r * (size_t)m->qs_stride;
    if (m->qs_bits == 32) {
        uint32_t *row = (uint32_t *)m->qs_tab + at;
        for (int32_t t = 0; t < nt; t++)
            row[t] = (uint32_t)cur[t];
    } else {
        uint64_t *row = (uint64_t *)m->qs_tab + at;
        for (int32_t t = 0; t < nt; t++)
            row[t] = cur[t];
    }
}

/* Builds the QuickScorer form (see fs_model_impl.h) when the model fits it: numerical
 * splits only, no linear trees, at most 64 leaves per tree, at most FSM_QS_MAX_TREES32/64
 * trees and FSM_QS_MAX_FEAT used features, and a table within `budget` bytes for some
 * checkpoint distance K <= 2^16. Returns -1 only when out of memory; a model that does not fit
 * keeps qs_bits 0. Every allocation is bounded by the model's node count or the budget. */
static int build_qs(fs_model *m, size_t budget, int form)
{
    int rc = -1;
    int32_t nt = m->num_trees, max_leaves = 1, nint = 0, nused = 0;
    size_t nf = (size_t)m->num_features;
    double walk_steps = 0.0;
    qs_ent *ent = NULL;
    int32_t *umap = NULL, *kcnt = NULL, *b0 = NULL, *ustart = NULL;
    uint64_t *cur = NULL;
    m->qs_bits = 0;
    if (form == FSM_ENV_FORM_WALK || m->has_cat || m->has_linear || nt == 0 ||
        m->num_xnodes == 0)
        return 0;
    for (int32_t t = 0; t < nt; t++)
        if (m->trees[t].num_leaves > max_leaves)
            max_leaves = m->trees[t].num_leaves;
    if (max_leaves > 64 || nt > (max_leaves <= 32 ? FSM_QS_MAX_TREES32 : FSM_QS_MAX_TREES64))
        return 0;
    int bits = max_leaves <= 32 ? 32 : 64;
    for (int32_t n = 0; n < m->num_xnodes; n++)
        nint += m->xleaf[n] < 0;
    ent = malloc((nint ? (size_t)nint : 1) * sizeof(qs_ent));
    umap = malloc((nf + 1) * sizeof(int32_t));
    cur = malloc((size_t)nt * sizeof(uint64_t));
    m->qs_leaf = malloc(((size_t)m->num_leaves_total + 64) * sizeof(double));
    m->qs_lbase = malloc((size_t)nt * sizeof(int32_t));
    if (!ent || !umap || !cur || !m->qs_leaf || !m->qs_lbase)
        goto out;
    /* Nodes with their left-subtree masks; leaves left to right. */
    int32_t e = 0, nl = 0;
    for (int32_t t = 0; t < nt; t++) {
        const fsm_tree *tr = &m->trees[t];
        int32_t base = tr->xroot, size = 2 * tr->num_leaves - 1;
        int32_t lpre[128], dep[128];
        double wsum = 0.0, wdep = 0.0, udep = 0.0;
        lpre[0] = 0;
        dep[0] = 0;
        for (int32_t i = 0; i < size; i++)
            lpre[i + 1] = lpre[i] + (m->xleaf[base + i] >= 0);
        m->qs_lbase[t] = nl;
        for (int32_t i = 0; i < size; i++) {
            const fsm_xnode *x = &m->xnodes[base + i];
            if (m->xleaf[base + i] >= 0) {
                /* The walk's expected path: leaf depths weighted by the training counts. */
                double w = m->leaf_count[m->xleaf[base + i]];
                wsum += w;
                wdep += w * dep[i];
                udep += dep[i];
                m->qs_leaf[nl++] = x->thr;
                continue;
            }
            dep[i + 1] = dep[i + 1 + x->skip] = dep[i] + 1;
            int32_t a = lpre[i + 1], b = lpre[i + 1 + x->skip];
            qs_ent *q = &ent[e++];
            q->u = m->xcol_feat[x->col];
            q->kind = m->xcol_kind[x->col];
            q->thr = x->thr;
            q->tree = t;
            q->j = 0;
            q->mask = ~((((uint64_t)1 << (b - a)) - 1) << a);
            q->pack = (uint32_t)(b - a) << 6 | (uint32_t)a;
        }
        walk_steps += wsum > 0.0 ? wdep / wsum : udep / tr->num_leaves;
    }
    for (int32_t i = 0; i < 64; i++)
        m->qs_leaf[nl + i] = 0.0;
    /* Distinct thresholds per feature (by ==, so -0.0 and +0.0 are one). */
    qsort(ent, (size_t)nint, sizeof(qs_ent), cmp_qs_thr);
    for (size_t f = 0; f <= nf; f++)
        umap[f] = -1;
    int32_t nthr = 0;
    for (int32_t i = 0; i < nint; i++) {
        if (umap[ent[i].u] < 0)
            umap[ent[i].u] = nused++;
        int newf = i == 0 || ent[i].u != ent[i - 1].u;
        if (!newf && !(ent[i].thr == ent[i - 1].thr))
            ent[i].j = ent[i - 1].j + 1;
        else if (!newf)
            ent[i].j = ent[i - 1].j;
        nthr += newf || !(ent[i].thr == ent[i - 1].thr);
    }
    if (nused > FSM_QS_MAX_FEAT) {
        rc = 0;
        goto out;
    }
    /* Per used feature: k (distinct thresholds), padded thresholds, bin of 0.0. */
    kcnt = calloc((size_t)nused + 1, sizeof(int32_t));
    b0 = calloc((size_t)nused + 1, sizeof(int32_t));
    ustart = calloc((size_t)nused + 1, sizeof(int32_t));
    m->qs_feat = malloc(((size_t)nused + 1) * sizeof(int32_t));
    m->qs_toff = malloc(((size_t)nused + 1) * sizeof(int32_t));
    m->qs_tstep = malloc(((size_t)nused + 1) * sizeof(int32_t));
    m->qs_ncp = malloc(((size_t)nused + 1) * sizeof(int32_t));
    m->qs_row = malloc(((size_t)nused + 1) * sizeof(int32_t));
    m->qs_dbase = malloc(((size_t)nused + 1) * sizeof(int32_t));
    /* Padded lengths sum to less than 2 * (thresholds + features); one slot before them (see
     * qs_select: a search waiting for its steps reads there). */
    m->qs_thr = malloc((2 * ((size_t)nthr + (size_t)nused) + 2) * sizeof(double));
    if (!kcnt || !b0 || !ustart || !m->qs_feat || !m->qs_toff || !m->qs_tstep || !m->qs_ncp ||
        !m->qs_row || !m->qs_dbase || !m->qs_thr)
        goto out;
    int32_t toff = 1;
    m->qs_thr[0] = INFINITY;
    m->qs_maxstep = 0;
    for (int32_t i = 0; i < nint; i++) {
        int32_t u = umap[ent[i].u];
        if (i == 0 || ent[i].u != ent[i - 1].u) {
            m->qs_feat[u] = ent[i].u;
            ustart[u] = i;
        }
        kcnt[u] = ent[i].j + 1;
    }
    for (int32_t u = 0; u < nused; u++) {
        int32_t k = kcnt[u], padded = padded_len(k), at = 0;
        m->qs_toff[u] = toff;
        m->qs_tstep[u] = (padded + 1) / 2;
        if (m->qs_tstep[u] > m->qs_maxstep)
            m->qs_maxstep = m->qs_tstep[u];
        for (int32_t i = ustart[u]; i < nint && umap[ent[i].u] == u; i++)
            if (i == ustart[u] || ent[i].j != ent[i - 1].j)
                m->qs_thr[toff + at++] = ent[i].thr;
        while (at < padded)
            m->qs_thr[toff + at++] = INFINITY;
        b0[u] = zero_bin(m->qs_thr + toff, k);
        toff += padded;
    }
    /* The two-level search of each used feature (see qs_srch in fs_model_impl.h): level 1
     * the last threshold of each block of 8, padded with +inf to whole vectors of 8; level 2
     * the thresholds in blocks of 8 padded with +inf, plus one block of +inf (a value above
     * every threshold lands there when k is a multiple of 8). */
    {
        size_t total = 0;
        for (int32_t u = 0; u < nused; u++) {
            size_t nb = ((size_t)kcnt[u] + 7) / 8, n1 = (nb + 7) / 8;
            total += 8 * n1 + 8 * (nb + 1);
        }
        m->qs_srch = aligned_alloc(64, (total ? total : 8) * sizeof(double));
        m->qs_soff = malloc(((size_t)nused + 1) * sizeof(int32_t));
        m->qs_s1n = malloc(((size_t)nused + 1) * sizeof(int32_t));
        if (!m->qs_srch || !m->qs_soff || !m->qs_s1n || total > INT32_MAX)
            goto out;
        size_t at = 0;
        for (int32_t u = 0; u < nused; u++) {
            int32_t k = kcnt[u];
            size_t nb = ((size_t)k + 7) / 8, n1 = (nb + 7) / 8;
            const double *t = m->qs_thr + m->qs_toff[u];
            m->qs_soff[u] = (int32_t)at;
            m->qs_s1n[u] = (int32_t)n1;
            for (size_t j = 0; j < 8 * n1; j++) {
                size_t last = 8 * j + 7;
                m->qs_srch[at + j] = j < nb && last < (size_t)k ? t[last] : INFINITY;
            }
            at += 8 * n1;
            for (size_t i = 0; i < 8 * (nb + 1); i++)
                m->qs_srch[at + i] = i < (size_t)k ? t[i] : INFINITY;
            at += 8 * (nb + 1);
        }
    }
    for (int32_t i = 0; i < nint; i++)
        ent[i].u = umap[ent[i].u];
    qsort(ent, (size_t)nint, sizeof(qs_ent), cmp_qs_ent);
    /* The smallest checkpoint distance whose table fits the budget. */
    size_t per = 64 / ((size_t)bits / 8);
    m->qs_stride = (int32_t)(((size_t)nt + per - 1) / per * per);
    size_t rowbytes = (size_t)m->qs_stride * ((size_t)bits / 8), rows = 0;
    int shift = 0;
    for (; shift <= 16; shift++) {
        rows = 0;
        for (int32_t u = 0; u < nused; u++)
            rows += (size_t)(kcnt[u] >> shift) + 3;
        if (rows <= budget / rowbytes)
            break;
    }
    if (shift > 16) {
        rc = 0;
        goto out;
    }
    m->qs_bits = bits;
    m->qs_shift = shift;
    m->qs_nfeat = nused;
    m->qs_tab_bytes = rows * rowbytes;
    m->qs_tab = aligned_alloc(64, m->qs_tab_bytes + FSM_QS_SLACK);
    if (m->qs_tab == NULL)
        goto out;
    memset((char *)m->qs_tab + m->qs_tab_bytes, 0xff, FSM_QS_SLACK);
    if (shift > 0) {
        m->qs_dpos = malloc(((size_t)nthr + (size_t)nused + 1) * sizeof(int32_t));
        m->qs_dnode = malloc((nint ? (size_t)nint : 1) * sizeof(uint32_t));
        m->qs_masks = malloc(4096 * sizeof(uint64_t));
        if (!m->qs_dpos || !m->qs_dnode || !m->qs_masks)
            goto out;
        for (uint32_t w = 0; w < 4096; w++)
            m->qs_masks[w] = FSM_QS_NODE_MASK(w);
        for (int32_t i = 0; i < nint; i++)
            m->qs_dnode[i] = (uint32_t)ent[i].tree << 12 | ent[i].pack;
    }
    /* Rows: walking the bins up, a row holds the nodes with threshold index < its bin. */
    int32_t row = 0, dbase = 0, i = 0;
    for (int32_t u = 0; u < nused; u++) {
        int32_t k = kcnt[u], first = i, K = (int32_t)1 << shift;
        m->qs_row[u] = row;
        m->qs_ncp[u] = (k >> shift) + 1;
        m->qs_dbase[u] = dbase;
        for (int32_t t = 0; t < nt; t++)
            cur[t] = ~(uint64_t)0;
        for (int32_t b = 0; b <= k; b++) {
            if ((b & (K - 1)) == 0)
                qs_put_row(m, row + (b >> shift), cur, nt);
            if (m->qs_dpos != NULL)
                m->qs_dpos[dbase + b] = i;
            for (; i < nint && ent[i].u == u && ent[i].j == b; i++)
                cur[ent[i].tree] &= ent[i].mask;
        }
        for (int zero = 1; zero >= 0; zero--) {
            for (int32_t t = 0; t < nt; t++)
                cur[t] = ~(uint64_t)0;
            for (int32_t q = first; q < i; q++)
                if (qs_false_special(&ent[q], b0[u], zero))
                    cur[ent[q].tree] &= ent[q].mask;
            qs_put_row(m, row + m->qs_ncp[u] + !zero, cur, nt);
        }
        row += m->qs_ncp[u] + 2;
        dbase += k + 1;
    }
    /* Is the table worth it? The expected number of single nodes a row applies (its value
     * falling in each bin of a feature equally often: LightGBM's bins are quantiles of the
     * training data) must stay under FSM_QS_MAX_DELTA per tree (on the large benchmark model
     * K = 32, 3.7 per tree, beat the binned walk; K = 64, 7.5 per tree, lost). And a rough time
     * model fitted on six measured models (docs/engine.md): the table rows a row reads at
     * ~50 bytes/ns plus ~0.7 ns per tree, against ~2 ns per expected walk step; the walk is
     * kept when it is estimated faster and the table's estimate is above 250 ns (below that
     * both are fast: many used features on small trees is where the table loses). */
    double expect = 0.0;
    if (shift > 0) {
        for (int32_t u = 0; u < nused; u++) {
            const int32_t *pos = m->qs_dpos + m->qs_dbase[u];
            int64_t sum = 0;
            for (int32_t b = 0; b <= kcnt[u]; b++)
                sum += pos[b] - pos[b >> shift << shift];
            expect += (double)sum / (double)(kcnt[u] + 1);
        }
    }
    m->qs_est_ns = (double)nused * (double)rowbytes / 50.0 + 0.7 * nt;
    m->walk_est_ns = 2.0 * walk_steps;
    /* FSM_ENV_FORM_AUTO keeps a table the time model rejects when the two estimates are
     * close (within FSM_CAL_WINDOW): the loader then measures both (calibrate). */
    m->qs_rule = !(m->qs_est_ns > m->walk_est_ns && m->qs_est_ns > 250.0);
    int close = m->qs_est_ns < FSM_CAL_WINDOW * m->walk_est_ns &&
                m->walk_est_ns < FSM_CAL_WINDOW * m->qs_est_ns;
    if ((form != FSM_ENV_FORM_TABLE && expect > FSM_QS_MAX_DELTA * (double)nt) ||
        ((form == FSM_ENV_FORM_AUTO || form == FSM_ENV_FORM_RULE) && !m->qs_rule &&
         !(form == FSM_ENV_FORM_AUTO && close))) {
        m->qs_bits = 0;
        rc = 0;
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 || m->qs_bits == 0)
        free_qs(m);
    free(ent);
    free(umap);
    free(kcnt);
    free(b0);
    free(ustart);
    free(cur);
    return rc;
}

/* The widest table-AND variant this CPU runs. */
static int cpu_isa(void)
{
#ifdef FSM_QS_HAVE_SIMD
    if (__builtin_cpu_supports("avx512f"))
        return FSM_QS_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return FSM_QS_AVX2;
#endif
    return FSM_QS_PORTABLE;
}

int fsm_env_read(fsm_env *env, char *why, size_t why_size)
{
    static const char *const isa_names[] = {"scalar", "avx2", "avx512"};
    const char *isa = getenv("FS_ENGINE_ISA");
    int cpu = cpu_isa();
    env->isa = cpu;
    if (isa != NULL && isa[0] != '\0' && strcmp(isa, "auto") != 0) {
        int want = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(isa, isa_names[i]) == 0)
                want = i;
        if (want < 0) {
            snprintf(why, why_size, "FS_ENGINE_ISA=%.40s: expected auto, avx512, avx2 or scalar",
                     isa);
            return -1;
        }
        env->isa = want < cpu ? want : cpu;
    }
    const char *form = getenv("FS_ENGINE_FORM");
    env->form = FSM_ENV_FORM_AUTO;
    if (form != NULL && form[0] != '\0' && strcmp(form, "auto") != 0) {
        if (strcmp(form, "table") == 0) {
            env->form = FSM_ENV_FORM_TABLE;
        } else if (strcmp(form, "walk") == 0) {
            env->form = FSM_ENV_FORM_WALK;
        } else if (strcmp(form, "rule") == 0) {
            env->form = FSM_ENV_FORM_RULE;
        } else {
            snprintf(why, why_size, "FS_ENGINE_FORM=%.40s: expected auto, rule, table or walk",
                     form);
            return -1;
        }
    }
    return 0;
}

/* Thread CPU time in ns (0 if the clock cannot be read: calibration then keeps the rule). */
static int64_t cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Load-time calibration (FS_ENGINE_FORM=auto, when the time model's two estimates are within
 * FSM_CAL_WINDOW of each other and both above FSM_CAL_MIN_NS): scores up to FSM_CAL_ROWS
 * deterministic rows with the table and with the walk, alternating, after one untimed round,
 * up to FSM_CAL_ROUNDS rounds or until FSM_CAL_BUDGET_NS of CPU time is spent (at least 2
 * timed rounds), and keeps the rule's pick unless the other form's best round is faster by
 * more than FSM_CAL_MARGIN. The choice is deterministic where it matters: a measured
 * difference under the margin keeps the rule's pick.
 * Rows: every used feature at one of its thresholds, or above them all (xorshift, fixed
 * seed), each bin equally likely as the time model assumes; other features 0. Returns the
 * form (the table's or `walk`); without memory for the rows or a clock, the rule's pick
 * (m->calibrated stays 0). */
static int calibrate(fs_model *m, int walk)
{
    int table = m->qs_shift == 0 ? FSM_FORM_QS_DENSE : FSM_FORM_QS_DELTA;
    int pick = m->qs_rule ? table : walk;
    size_t nf = (size_t)m->num_features;
    /* Rows per round: a round should take about a quarter of the budget by the estimates
     * (which may be off by a few times; the budget still bounds the rounds). */
    double per = (double)FSM_CAL_BUDGET_NS / 4.0 / (m->qs_est_ns + m->walk_est_ns);
    size_t nrows = per < 8.0 ? 8 : per > (double)FSM_CAL_ROWS ? FSM_CAL_ROWS : (size_t)per;
    double *rows = calloc(nrows * nf, sizeof(double));
    double out[FSM_CAL_OUTPUTS];
    uint64_t r = 0x9e3779b97f4a7c15u;
    int64_t best[2] = {INT64_MAX, INT64_MAX}, spent = 0;
    if (rows == NULL)
        return pick; /* no memory to measure with: the rule decides */
    for (size_t i = 0; i < nrows; i++) {
        for (int32_t u = 0; u < m->qs_nfeat; u++) {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            /* k thresholds: bins 0..k, bin k above the last threshold. */
            int32_t k = 0;
            const double *t = m->qs_thr + m->qs_toff[u];
            while (k < 2 * m->qs_tstep[u] - 1 && t[k] != INFINITY)
                k++;
            uint32_t j = (uint32_t)(r % (uint64_t)(k + 1));
            double v = k == 0 ? 0.0 : j < (uint32_t)k ? t[j] : t[k - 1] + fabs(t[k - 1]) + 1.0;
            rows[i * nf + (size_t)m->qs_feat[u]] = v;
        }
    }
    /* Warm up: a freshly built table is partly out of the caches, and the first rows would
     * measure that, not the steady state the services run in. Read the table once, then
     * one untimed round of both forms. */
    {
        const volatile unsigned char *tab = m->qs_tab;
        unsigned char sink = 0;
        for (size_t i = 0; i < m->qs_tab_bytes; i += 64)
            sink ^= tab[i];
        out[0] = sink;
    }
    for (int round = -1; round < FSM_CAL_ROUNDS; round++) {
        for (int f = 0; f < 2; f++) {
            m->single_form = f == 0 ? table : walk;
            int64_t t0 = cpu_ns();
            for (size_t i = 0; i < nrows; i++)
                fs_model_predict_raw(m, rows + i * nf, out, NULL);
            int64_t t1 = cpu_ns();
            if (t0 == 0 || t1 == 0)
                goto out;
            spent += t1 - t0;
            if (round < 0)
                continue;
            if (t1 - t0 < best[f])
                best[f] = t1 - t0;
        }
        if (round >= 1 && spent > FSM_CAL_BUDGET_NS)
            break;
    }
    m->calibrated = 1;
    if (pick == table && (double)best[1] * (1.0 + FSM_CAL_MARGIN) < (double)best[0])
        pick = walk;
    else if (pick == walk && (double)best[0] * (1.0 + FSM_CAL_MARGIN) < (double)best[1])
        pick = table;
out:
    m->cal_ns[0] = best[0] == INT64_MAX ? 0.0 : (double)best[0] / (double)nrows;
    m->cal_ns[1] = best[1] == INT64_MAX ? 0.0 : (double)best[1] / (double)nrows;
    free(rows);
    return pick;
}

int fsm_build_forms(fs_model *m, size_t qs_budget, const fsm_env *env)
{
    m->qs_simd = env->isa;
    /* The TreeSHAP tables only speed contributions up: without memory for them
     * fs_model_predict_contrib uses the reference recursion, so the model still loads. */
    if (fsm_build_shap(m) != 0)
        fsm_free_shap(m);
    if (build_exec(m) != 0 || build_bins(m) != 0 || build_qs(m, qs_budget, env->form) != 0)
        return -1;
    int walk = m->num_xcols <= FSM_STACK_COLS && m->bnodes != NULL ? FSM_FORM_BINNED
                                                                    : FSM_FORM_WALK;
    if (m->qs_bits == 0) {
        m->single_form = walk;
        return 0;
    }
    /* The table first: it reads the row's features directly, not the execution columns, so
     * it also serves models with more columns than the walks keep on the stack (a feature
     * split both default-left and default-right is two columns). */
    m->single_form = m->qs_shift == 0 ? FSM_FORM_QS_DENSE : FSM_FORM_QS_DELTA;
    if (env->form == FSM_ENV_FORM_TABLE || m->num_xcols > FSM_STACK_COLS)
        return 0;
    int close = m->qs_est_ns < FSM_CAL_WINDOW * m->walk_est_ns &&
                m->walk_est_ns < FSM_CAL_WINDOW * m->qs_est_ns;
    int pick = m->single_form;
    if (env->form == FSM_ENV_FORM_AUTO && close && m->qs_est_ns >= FSM_CAL_MIN_NS &&
        m->walk_est_ns >= FSM_CAL_MIN_NS && m->num_tree_per_iteration <= FSM_CAL_OUTPUTS &&
        (size_t)m->num_features <= FSM_CAL_MAX_FEATURES) {
        pick = calibrate(m, walk);
    } else if (!m->qs_rule) {
        pick = walk;
    }
    m->single_form = pick;
    if (pick == walk)
        free_qs(m);
    return 0;
}

void fsm_free_forms(fs_model *m)
{
    free(m->xnodes);
    free(m->xleaf);
    free(m->xcat_off);
    free(m->xcat_len);
    free(m->xcol_feat);
    free(m->xcol_kind);
    m->xnodes = NULL;
    m->xleaf = m->xcat_off = m->xcat_len = m->xcol_feat = NULL;
    m->xcol_kind = NULL;
    free_bins(m);
    free_qs(m);
    fsm_free_shap(m);
}
