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
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "fs_model_impl.h"

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

const char *fs_model_isa(const fs_model *m)
{
    return m->qs_simd == FSM_QS_AVX512 ? "avx512" : m->qs_simd == FSM_QS_AVX2 ? "avx2" : "scalar";
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

/* LightGBM's CategoricalDecision on the bitset of `len` words at cat_words + off: NaN and
 * negative categories go right; the value is cut to int like static_cast<int> (x86 yields
 * INT_MIN, negative, for out-of-range values); a category past the bitset goes right. */
static inline int cat_left(const fs_model *m, int32_t off, int32_t len, double v)
{
    if (!(v > -1.0) || v >= 2147483648.0)
        return 0;
    int iv = (int)v;
    uint32_t word = (uint32_t)iv >> 5;
    if (word >= (uint32_t)len)
        return 0;
    return (m->cat_words[off + (int32_t)word] >> (iv & 31)) & 1u;
}

int32_t fsm_decide_base(const fs_model *m, int32_t node, double base)
{
    const fsm_node *nd = &m->nodes[node];
    int kind = m->col_kind[nd->col];
    if (kind == FSM_COL_CAT)
        return nd->child[!cat_left(m, m->cat_off[node], m->cat_len[node], base)];
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
        left = cat_left(m, m->xcat_off[n], m->xcat_len[n], cols[~nd->col]);
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

/* bin(v) = #{i : !(v <= t[i])} over sorted thresholds padded with +inf to 2^p - 1 entries
 * (step = 2^(p-1)), by a branch-free binary search: +inf pads are never below a non-NaN v,
 * and a NaN counts all of them. Shared by the binned and the QuickScorer forms. */
static inline uint32_t bin_of(const double *t, uint32_t step, double v)
{
    uint32_t b = 0;
    for (; step != 0; step >>= 1)
        b += step & -(uint32_t)!(v <= t[b + step - 1]);
    return b;
}

/* 256 bytes -1 then 256 bytes 0: a table segment for bin b is copied from 256 - b on. */
static const int8_t fsm_ramp[512] = {
#define FSM_R16 -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1
    FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16,
    FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16, FSM_R16,
#undef FSM_R16
};

/* The per-row mask table of the binned form (see fs_model_impl.h). Per used feature, the
 * number of its thresholds T[i] with !(v <= T[i]) on the base value v (bin_of; a NaN counts
 * all of them, more than any node's bin). Then per execution column the
 * missing-value rule: a missing value that goes left gets bin 0 (left of every node), one
 * that goes right 255 (right of every node), a None-type NaN the bin of 0.0. Then its table
 * segment: byte j is -1 when the bin is > j (16-byte copies the compiler makes vector
 * moves). */
static inline void bin_row(const fs_model *m, const double *x, int8_t *tab)
{
    /* Per used feature: [0] its bin, [1] 1 for a zero, 2 for NaN, else 0. */
    uint8_t fb[FSM_BIN_MAX_COLS][2];
    for (int32_t u = 0; u < m->bnum_feat; u++) {
        double v = fsm_base_value(x[m->bfeat[u]]);
        uint32_t b = bin_of(m->bthr + m->bfeat_off[u], (uint32_t)m->bfeat_step[u], v);
        fb[u][0] = (uint8_t)b;
        fb[u][1] = (uint8_t)(isnan(v) ? 2 : v == 0.0);
    }
    memset(tab, -1, FSM_BIN_SEG);
    int32_t n = m->num_xcols - 1;
    for (int32_t c = 0; c < n; c++) {
        const uint8_t *f = fb[m->bcol_use[c]];
        /* Without a branch: a zero or a NaN takes the column's fixed bin. */
        uint8_t sel[3] = {f[0], m->bcol_alt[2 * c], m->bcol_alt[2 * c + 1]};
        uint8_t b = sel[f[1]];
        /* Byte j of the segment is ramp[256 - b + j]: -1 exactly when j < b. */
        int8_t *seg = tab + m->bcol_toff[c];
        const int8_t *src = fsm_ramp + 256 - b;
        int32_t len = m->bcol_tlen[c];
#ifdef __SSE2__
        /* Inline vector moves: GCC turns a plain copy loop (even of vectors) into a call to
         * memcpy, whose size dispatch costs more than these few bytes; the empty asm hides the
         * copy from it. */
        for (int32_t j = 0; j < len; j += FSM_BIN_SEG) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(src + j));
            __asm__("" : "+x"(v));
            _mm_storeu_si128((__m128i *)(void *)(seg + j), v);
        }
#else
        memcpy(seg, src, (size_t)len);
#endif
    }
}

/* One step of walk `i` (a node pointer) on the binned form; `all` collects the skips
 * stepped from: it stays -1 only if every walk already sat on a leaf (skip -1) before this
 * step. About 8 instructions, two loads (one 4-byte load of the node: reading key and skip
 * as two loads was 5% slower, the load ports are the limit), no branch. */
#define FSM_BSTEP(i)                                                                      \
    do {                                                                                  \
        int64_t w_ = (int32_t)*p##i;                                                      \
        int64_t right_ = tab[w_ & 0xffff];                                                \
        int64_t skip_ = w_ >> 16;                                                         \
        all &= skip_;                                                                     \
        p##i = p##i + 1 + (skip_ & right_);                                               \
    } while (0)

/* walk_bG: walks trees t[0..G) together on one row until all sit on leaves (checked every
 * step, from the skips already loaded); their leaf nodes into n. G independent load chains
 * the CPU overlaps; the positions stay in registers (16 was the best of 4..32 measured on
 * the fraud shape and the large model: fewer chains leave the core waiting on loads, more
 * spill and lengthen the slowest walk of the group). */
static void walk_b16(const fsm_bnode *bn, const fsm_tree *t, const int8_t *tab, int32_t *n)
{
    const fsm_bnode *p0 = bn + t[0].xroot;
    const fsm_bnode *p1 = bn + t[1].xroot;
    const fsm_bnode *p2 = bn + t[2].xroot;
    const fsm_bnode *p3 = bn + t[3].xroot;
    const fsm_bnode *p4 = bn + t[4].xroot;
    const fsm_bnode *p5 = bn + t[5].xroot;
    const fsm_bnode *p6 = bn + t[6].xroot;
    const fsm_bnode *p7 = bn + t[7].xroot;
    const fsm_bnode *p8 = bn + t[8].xroot;
    const fsm_bnode *p9 = bn + t[9].xroot;
    const fsm_bnode *p10 = bn + t[10].xroot;
    const fsm_bnode *p11 = bn + t[11].xroot;
    const fsm_bnode *p12 = bn + t[12].xroot;
    const fsm_bnode *p13 = bn + t[13].xroot;
    const fsm_bnode *p14 = bn + t[14].xroot;
    const fsm_bnode *p15 = bn + t[15].xroot;
    for (;;) {
        int64_t all = -1;
        FSM_BSTEP(0);
        FSM_BSTEP(1);
        FSM_BSTEP(2);
        FSM_BSTEP(3);
        FSM_BSTEP(4);
        FSM_BSTEP(5);
        FSM_BSTEP(6);
        FSM_BSTEP(7);
        FSM_BSTEP(8);
        FSM_BSTEP(9);
        FSM_BSTEP(10);
        FSM_BSTEP(11);
        FSM_BSTEP(12);
        FSM_BSTEP(13);
        FSM_BSTEP(14);
        FSM_BSTEP(15);
        if (all == -1)
            break;
    }
    n[0] = (int32_t)(p0 - bn);
    n[1] = (int32_t)(p1 - bn);
    n[2] = (int32_t)(p2 - bn);
    n[3] = (int32_t)(p3 - bn);
    n[4] = (int32_t)(p4 - bn);
    n[5] = (int32_t)(p5 - bn);
    n[6] = (int32_t)(p6 - bn);
    n[7] = (int32_t)(p7 - bn);
    n[8] = (int32_t)(p8 - bn);
    n[9] = (int32_t)(p9 - bn);
    n[10] = (int32_t)(p10 - bn);
    n[11] = (int32_t)(p11 - bn);
    n[12] = (int32_t)(p12 - bn);
    n[13] = (int32_t)(p13 - bn);
    n[14] = (int32_t)(p14 - bn);
    n[15] = (int32_t)(p15 - bn);
}

static void walk_b8(const fsm_bnode *bn, const fsm_tree *t, const int8_t *tab, int32_t *n)
{
    const fsm_bnode *p0 = bn + t[0].xroot;
    const fsm_bnode *p1 = bn + t[1].xroot;
    const fsm_bnode *p2 = bn + t[2].xroot;
    const fsm_bnode *p3 = bn + t[3].xroot;
    const fsm_bnode *p4 = bn + t[4].xroot;
    const fsm_bnode *p5 = bn + t[5].xroot;
    const fsm_bnode *p6 = bn + t[6].xroot;
    const fsm_bnode *p7 = bn + t[7].xroot;
    for (;;) {
        int64_t all = -1;
        FSM_BSTEP(0);
        FSM_BSTEP(1);
        FSM_BSTEP(2);
        FSM_BSTEP(3);
        FSM_BSTEP(4);
        FSM_BSTEP(5);
        FSM_BSTEP(6);
        FSM_BSTEP(7);
        if (all == -1)
            break;
    }
    n[0] = (int32_t)(p0 - bn);
    n[1] = (int32_t)(p1 - bn);
    n[2] = (int32_t)(p2 - bn);
    n[3] = (int32_t)(p3 - bn);
    n[4] = (int32_t)(p4 - bn);
    n[5] = (int32_t)(p5 - bn);
    n[6] = (int32_t)(p6 - bn);
    n[7] = (int32_t)(p7 - bn);
}

static void walk_b4(const fsm_bnode *bn, const fsm_tree *t, const int8_t *tab, int32_t *n)
{
    const fsm_bnode *p0 = bn + t[0].xroot;
    const fsm_bnode *p1 = bn + t[1].xroot;
    const fsm_bnode *p2 = bn + t[2].xroot;
    const fsm_bnode *p3 = bn + t[3].xroot;
    for (;;) {
        int64_t all = -1;
        FSM_BSTEP(0);
        FSM_BSTEP(1);
        FSM_BSTEP(2);
        FSM_BSTEP(3);
        if (all == -1)
            break;
    }
    n[0] = (int32_t)(p0 - bn);
    n[1] = (int32_t)(p1 - bn);
    n[2] = (int32_t)(p2 - bn);
    n[3] = (int32_t)(p3 - bn);
}

/* Adds the leaves n[from..cnt) of trees t[0..cnt) (global tree index base + g). */
static inline void add_leaves(const fs_model *m, const fsm_tree *t, const int32_t *n, size_t from,
                              size_t cnt, size_t base, int k_per, const double *x, double *s,
                              double *out)
{
    if (k_per == 1 && !m->has_linear) {
        double acc = *s;
        for (size_t g = from; g < cnt; g++)
            acc += m->xnodes[n[g]].thr;
        *s = acc;
        return;
    }
    for (size_t g = from; g < cnt; g++) {
        if (k_per == 1)
            *s += xvalue(m, &t[g], n[g], x);
        else
            out[(base + g) % (size_t)k_per] += xvalue(m, &t[g], n[g], x);
    }
}

/* sum_trees on the binned form: groups of 16, then 8, then 4 trees; the last 1..3 trees are
 * walked as the last 4 (walks have no side effects) and only the ones not added yet are
 * added, so the sum stays in file order. */
static void sum_trees_binned(const fs_model *m, const fsm_tree *trees, size_t ntrees, int k_per,
                             const double *x, const int8_t *tab, double *out)
{
    const fsm_bnode *bn = m->bnodes;
    int32_t n[16];
    double s = out[0];
    size_t i = 0;
    for (; ntrees - i >= 16; i += 16) {
        walk_b16(bn, trees + i, tab, n);
        add_leaves(m, trees + i, n, 0, 16, i, k_per, x, &s, out);
    }
    if (ntrees - i >= 8) {
        walk_b8(bn, trees + i, tab, n);
        add_leaves(m, trees + i, n, 0, 8, i, k_per, x, &s, out);
        i += 8;
    }
    if (ntrees - i >= 4) {
        walk_b4(bn, trees + i, tab, n);
        add_leaves(m, trees + i, n, 0, 4, i, k_per, x, &s, out);
        i += 4;
    }
    if (i < ntrees) {
        if (ntrees >= 4) {
            size_t base = ntrees - 4;
            walk_b4(bn, trees + base, tab, n);
            add_leaves(m, trees + base, n, i - base, 4, base, k_per, x, &s, out);
        } else {
            fsm_tree pad[4];
            for (size_t g = 0; g < 4; g++)
                pad[g] = trees[g < ntrees ? g : ntrees - 1];
            walk_b4(bn, pad, tab, n);
            add_leaves(m, pad, n, 0, ntrees, 0, k_per, x, &s, out);
        }
    }
    if (k_per == 1)
        out[0] = s;
}

/* The form fs_model_predict_raw scores with, chosen by the loader (fsm_build_forms). */
int fsm_single_form(const fs_model *m)
{
    return m->single_form;
}

/* QuickScorer, step 1 (see fs_model_impl.h): per used feature, the table row its value
 * selects and the range of single nodes to apply on top of it (empty when K = 1 and for a
 * zero or a NaN, whose rows are exact). The bin is found by the two-level search of qs_srch:
 * per level, vectors of 8 thresholds compared with the value at once and the lanes below it
 * counted; one or two dependent steps per feature instead of a binary search's 6 to 8
 * dependent loads (the search was 43% of a row on the default bundle). `count8(p, v)` is
 * #{i < 8 : p[i] < v}: one AVX-512 compare or two AVX2 compares, so the function is
 * compiled per ISA like the AND (m->qs_simd picks; the portable variant is below). */
#define FSM_QS_SELECT(NAME, ATTR, COUNT8)                                                    \
    ATTR static void NAME(const fs_model *m, const double *x, const char **rowp,             \
                          int32_t *d0, int32_t *d1)                                          \
    {                                                                                       \
        size_t rowbytes = (size_t)m->qs_stride * ((size_t)m->qs_bits / 8);                  \
        const char *tab = m->qs_tab;                                                        \
        const double *srch = m->qs_srch;                                                    \
        int shift = m->qs_shift;                                                            \
        for (int32_t u = 0; u < m->qs_nfeat; u++) {                                         \
            double v = fsm_base_value(x[m->qs_feat[u]]);                                    \
            const double *l1 = srch + m->qs_soff[u];                                        \
            int32_t n1 = m->qs_s1n[u];                                                      \
            uint32_t c = 0;                                                                 \
            for (int32_t j = 0; j < n1; j++)                                                \
                c += COUNT8(l1 + 8 * j, v);                                                 \
            uint32_t b = 8 * c + COUNT8(l1 + 8 * n1 + 8 * c, v);                            \
            /* 0: a bin, 1: zero, 2: NaN; picked without a branch. isnan only promises     \
             * nonzero for a NaN, and cls indexes 3-entry arrays: normalised with !!. */    \
            int cls = 2 * !!isnan(v) + (v == 0.0);                                          \
            int32_t ncp = m->qs_ncp[u];                                                     \
            int32_t sel[3] = {(int32_t)(b >> shift), ncp, ncp + 1};                         \
            rowp[u] = tab + (size_t)(m->qs_row[u] + sel[cls]) * rowbytes;                   \
            if (shift != 0) {                                                               \
                const int32_t *pos = m->qs_dpos + m->qs_dbase[u];                           \
                int32_t hi[3] = {(int32_t)b, 0, 0};                                         \
                int32_t lo[3] = {(int32_t)(b >> shift << shift), 0, 0};                     \
                d0[u] = pos[lo[cls]];                                                       \
                d1[u] = pos[hi[cls]];                                                       \
            }                                                                               \
        }                                                                                   \
    }

/* Without vector compares the two-level search was slower than a binary search (default
 * bundle 0.59 against 0.44-0.47 us/row): the portable variant runs the binary searches of
 * qs_thr, step by step across all features (every feature's step s, then every feature's
 * step s / 2, ...) so the core overlaps their independent chains of loads and compares. A
 * feature whose search is shorter takes step 0 until its steps come (b += 0; its load at
 * b - 1 may read the slot before its thresholds, which qs_thr keeps for that). Same bins for
 * every non-NaN value (a NaN's bin is never used). */
static void qs_select_portable(const fs_model *m, const double *x, const char **rowp,
                               int32_t *d0, int32_t *d1)
{
    size_t rowbytes = (size_t)m->qs_stride * ((size_t)m->qs_bits / 8);
    const char *tab = m->qs_tab;
    const double *thr = m->qs_thr;
    const int32_t *toff = m->qs_toff, *tstep = m->qs_tstep;
    int shift = m->qs_shift;
    int32_t nu = m->qs_nfeat;
    double v[FSM_QS_MAX_FEAT];
    uint32_t *b = (uint32_t *)d1; /* the bins, until d1 is written below */
    for (int32_t u = 0; u < nu; u++) {
        v[u] = fsm_base_value(x[m->qs_feat[u]]);
        b[u] = 0;
    }
    for (uint32_t s = (uint32_t)m->qs_maxstep; s != 0; s >>= 1) {
        for (int32_t u = 0; u < nu; u++) {
            uint32_t step = s & (2 * (uint32_t)tstep[u] - 1);
            const double *t = thr + toff[u] - 1;
            b[u] += step & -(uint32_t)!(v[u] <= t[b[u] + step]);
        }
    }
    for (int32_t u = 0; u < nu; u++) {
        int cls = 2 * !!isnan(v[u]) + (v[u] == 0.0);
        int32_t ncp = m->qs_ncp[u];
        int32_t sel[3] = {(int32_t)(b[u] >> shift), ncp, ncp + 1};
        rowp[u] = tab + (size_t)(m->qs_row[u] + sel[cls]) * rowbytes;
        if (shift != 0) {
            const int32_t *pos = m->qs_dpos + m->qs_dbase[u];
            int32_t hi[3] = {(int32_t)b[u], 0, 0};
            int32_t lo[3] = {(int32_t)(b[u] >> shift << shift), 0, 0};
            d0[u] = pos[lo[cls]];
            d1[u] = pos[hi[cls]];
        }
    }
}

#ifdef FSM_QS_HAVE_SIMD
/* The search's count for AVX-512 and AVX2 (see FSM_QS_SELECT). */
__attribute__((target("avx512f,popcnt"))) static inline uint32_t count8_avx512(const double *p,
                                                                              double v)
{
    __mmask8 k = _mm512_cmp_pd_mask(_mm512_load_pd(p), _mm512_set1_pd(v), _CMP_LT_OQ);
    return (uint32_t)__builtin_popcount((unsigned)k);
}
__attribute__((target("avx2,popcnt"))) static inline uint32_t count8_avx2(const double *p,
                                                                         double v)
{
    __m256d vv = _mm256_set1_pd(v);
    int lo = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(p), vv, _CMP_LT_OQ));
    int hi = _mm256_movemask_pd(_mm256_cmp_pd(_mm256_load_pd(p + 4), vv, _CMP_LT_OQ));
    return (uint32_t)__builtin_popcount((unsigned)(lo | hi << 4));
}
FSM_QS_SELECT(qs_select_avx512, __attribute__((target("avx512f,popcnt"))), count8_avx512)
FSM_QS_SELECT(qs_select_avx2, __attribute__((target("avx2,popcnt"))), count8_avx2)
#endif

static void qs_select(const fs_model *m, const double *x, const char **rowp, int32_t *d0,
                      int32_t *d1)
{
#ifdef FSM_QS_HAVE_SIMD
    if (m->qs_simd == FSM_QS_AVX512) {
        qs_select_avx512(m, x, rowp, d0, d1);
        return;
    }
    if (m->qs_simd == FSM_QS_AVX2) {
        qs_select_avx2(m, x, rowp, d0, d1);
        return;
    }
#endif
    qs_select_portable(m, x, rowp, d0, d1);
}

/* Steps 2 and 3: acc[i] = the AND over the selected rows of tree t0 + i's mask, i < n.
 * Trees in chunks of 8 vectors whose AND over every selected row stays in registers, stored
 * once per chunk; with checkpoints (K > 1) the single nodes are applied to acc afterwards
 * (qs_singles). The variant before this one loaded and stored acc once per row, each
 * feature's single nodes right after its row: on the default bundle (21 rows of 7 vectors)
 * those stores were most of the AND's time; 0.35 -> 0.285 us/row, large model 4.0 -> 3.7
 * (AVX-512 and AVX2), portable 5.7 -> 4.2-4.6 (standalone loop, AMD EPYC, 2026-12-06). One
 * chunk covers 128 trees of 32-bit masks with AVX-512, 64 with AVX2, 32 portable. Vectors at
 * or past n are neither loaded nor stored. Compiled three times, each with the target's own
 * vector width (GCC spills wider generic vectors through the stack): for AVX-512 and AVX2
 * (picked at load: m->qs_simd) and portable (16-byte vectors, SSE2 on x86-64). */
typedef uint32_t fsm_v16u32 __attribute__((vector_size(64)));
typedef uint64_t fsm_v8u64 __attribute__((vector_size(64)));
typedef uint32_t fsm_v8u32 __attribute__((vector_size(32)));
typedef uint64_t fsm_v4u64 __attribute__((vector_size(32)));
typedef uint32_t fsm_v4u32 __attribute__((vector_size(16)));
typedef uint64_t fsm_v2u64 __attribute__((vector_size(16)));

#define FSM_QS_AND_REG(NAME, ATTR, VT, ET, PER)                                              \
    ATTR static void NAME(const fs_model *m, const char *const *rowp, size_t t0, size_t n,  \
                          ET *acc)                                                          \
    {                                                                                       \
        int32_t nu = m->qs_nfeat;                                                           \
        for (size_t c = 0; c < n; c += 8 * PER) {                                           \
            size_t nv = (n - c + PER - 1) / PER;                                            \
            VT a[8];                                                                        \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) a[i] = ~(VT){0};            \
            for (int32_t u = 0; u < nu; u++) {                                              \
                const ET *row = (const ET *)(const void *)rowp[u] + t0 + c;                 \
                _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                       \
                    if ((size_t)i < nv) {                                                   \
                        VT r;                                                               \
                        memcpy(&r, row + (size_t)i * PER, sizeof r);                        \
                        a[i] &= r;                                                          \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {                           \
                if ((size_t)i < nv)                                                         \
                    memcpy(acc + c + (size_t)i * PER, &a[i], sizeof a[i]);                  \
            }                                                                               \
        }                                                                                   \
    }

#ifdef FSM_QS_HAVE_SIMD
FSM_QS_AND_REG(qs_andr32_avx512, __attribute__((target("avx512f"))), fsm_v16u32, uint32_t, 16)
FSM_QS_AND_REG(qs_andr64_avx512, __attribute__((target("avx512f"))), fsm_v8u64, uint64_t, 8)
FSM_QS_AND_REG(qs_andr32_avx2, __attribute__((target("avx2"))), fsm_v8u32, uint32_t, 8)
FSM_QS_AND_REG(qs_andr64_avx2, __attribute__((target("avx2"))), fsm_v4u64, uint64_t, 4)
#endif
FSM_QS_AND_REG(qs_andr32, , fsm_v4u32, uint32_t, 4)
FSM_QS_AND_REG(qs_andr64, , fsm_v2u64, uint64_t, 2)


/* The single nodes of a table with checkpoints (K > 1), after the register AND: per used
 * feature, the nodes with threshold index in [checkpoint, bin) (d0[u] .. d1[u]), each
 * clearing its left subtree's leaves in its tree's bitvector. */
#define FSM_QS_SINGLES(NAME, ET)                                                             \
    static void NAME(const fs_model *m, const int32_t *d0, const int32_t *d1, size_t t0,    \
                     size_t n, ET *acc)                                                     \
    {                                                                                       \
        const uint32_t *dnode = m->qs_dnode;                                                \
        const uint64_t *mtab = m->qs_masks;                                                 \
        int full = t0 == 0 && n == (size_t)m->num_trees;                                    \
        for (int32_t u = 0; u < m->qs_nfeat; u++) {                                         \
            if (full) {                                                                     \
                for (int32_t e = d0[u]; e < d1[u]; e++) {                                   \
                    uint32_t w = dnode[e];                                                  \
                    acc[w >> 12] &= (ET)mtab[w & 4095];                                     \
                }                                                                           \
            } else {                                                                        \
                for (int32_t e = d0[u]; e < d1[u]; e++) {                                   \
                    uint32_t w = dnode[e];                                                  \
                    size_t i = (size_t)(w >> 12) - t0;                                      \
                    if (i < n)                                                              \
                        acc[i] &= (ET)mtab[w & 4095];                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }
FSM_QS_SINGLES(qs_singles32, uint32_t)
FSM_QS_SINGLES(qs_singles64, uint64_t)

/* Steps 2 and 3, the variant this model and CPU take: acc receives n bitvectors. */
static void qs_and(const fs_model *m, const char *const *rowp, const int32_t *d0,
                   const int32_t *d1, size_t t0, size_t n, void *acc)
{
    if (m->qs_bits == 32) {
#ifdef FSM_QS_HAVE_SIMD
        if (m->qs_simd == FSM_QS_AVX512)
            qs_andr32_avx512(m, rowp, t0, n, acc);
        else if (m->qs_simd == FSM_QS_AVX2)
            qs_andr32_avx2(m, rowp, t0, n, acc);
        else
#endif
            qs_andr32(m, rowp, t0, n, acc);
        if (m->qs_shift != 0)
            qs_singles32(m, d0, d1, t0, n, acc);
    } else {
#ifdef FSM_QS_HAVE_SIMD
        if (m->qs_simd == FSM_QS_AVX512)
            qs_andr64_avx512(m, rowp, t0, n, acc);
        else if (m->qs_simd == FSM_QS_AVX2)
            qs_andr64_avx2(m, rowp, t0, n, acc);
        else
#endif
            qs_andr64(m, rowp, t0, n, acc);
        if (m->qs_shift != 0)
            qs_singles64(m, d0, d1, t0, n, acc);
    }
}

/* Step 4: per tree the leaf at the lowest set bit, added in file order. The lowest set bit is
 * never past the exit leaf (its bit is never cleared); the top bit is or'ed in so the index
 * stays in bounds regardless. */
#define FSM_QS_SUM(NAME, ET, TOP, CTZ)                                                       \
    static void NAME(const fs_model *m, size_t t0, size_t n, int k_per, const ET *acc,       \
                     double *out)                                                           \
    {                                                                                       \
        const double *leaf = m->qs_leaf;                                                    \
        const int32_t *lbase = m->qs_lbase + t0;                                            \
        if (k_per == 1) {                                                                   \
            double s = out[0];                                                              \
            for (size_t i = 0; i < n; i++)                                                  \
                s += leaf[lbase[i] + CTZ(acc[i] | (TOP))];                                  \
            out[0] = s;                                                                     \
            return;                                                                         \
        }                                                                                   \
        for (size_t i = 0; i < n; i++)                                                      \
            out[(t0 + i) % (size_t)k_per] += leaf[lbase[i] + CTZ(acc[i] | (TOP))];          \
    }

FSM_QS_SUM(qs_sum32, uint32_t, (uint32_t)1 << 31, __builtin_ctz)
FSM_QS_SUM(qs_sum64, uint64_t, (uint64_t)1 << 63, __builtin_ctzll)

/* fs_model_predict_raw on the QuickScorer form, trees [t0, t0 + n); out zeroed. Not inlined
 * so its 16 KiB of bitvectors are not in the caller's frame. */
__attribute__((noinline)) static void qs_predict(const fs_model *m, const double *x, size_t t0,
                                                size_t n, int k_per, double *out)
{
    const char *rowp[FSM_QS_MAX_FEAT];
    int32_t d0[FSM_QS_MAX_FEAT], d1[FSM_QS_MAX_FEAT];
    qs_select(m, x, rowp, d0, d1);
    if (m->qs_bits == 32) {
        /* 64-byte aligned like the table rows: a vector never straddles two lines. */
        _Alignas(64) uint32_t acc[FSM_QS_MAX_TREES32 + 16];
        qs_and(m, rowp, d0, d1, t0, n, acc);
        qs_sum32(m, t0, n, k_per, acc, out);
    } else {
        _Alignas(64) uint64_t acc[FSM_QS_MAX_TREES64 + 8];
        qs_and(m, rowp, d0, d1, t0, n, acc);
        qs_sum64(m, t0, n, k_per, acc, out);
    }
}

/* Batches on the QuickScorer form: the leaf sums of several rows interleaved. A row's sum is
 * a chain of dependent adds in file order (for exactness), whose latency is most of the
 * time the sum takes; the chains of 2 or 4 rows run side by side. Rows are summed from +0.0
 * in file order as in qs_sum32/64, so every row gets the bits fs_model_predict_raw gives. */
#define FSM_QS_SUMR(NAME, ET, TOP, CTZ)                                                      \
    static void NAME(const fs_model *m, size_t t0, size_t n, const ET *acc, size_t per,     \
                     size_t rows, double *out)                                              \
    {                                                                                       \
        const double *leaf = m->qs_leaf;                                                    \
        const int32_t *lbase = m->qs_lbase + t0;                                            \
        const ET *a0 = acc, *a1 = acc + per, *a2 = acc + 2 * per, *a3 = acc + 3 * per;      \
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;                                      \
        if (rows == 4) {                                                                    \
            for (size_t i = 0; i < n; i++) {                                                \
                int32_t lb = lbase[i];                                                      \
                s0 += leaf[lb + CTZ(a0[i] | (TOP))];                                        \
                s1 += leaf[lb + CTZ(a1[i] | (TOP))];                                        \
                s2 += leaf[lb + CTZ(a2[i] | (TOP))];                                        \
                s3 += leaf[lb + CTZ(a3[i] | (TOP))];                                        \
            }                                                                               \
            out[2] = s2;                                                                    \
            out[3] = s3;                                                                    \
        } else {                                                                            \
            for (size_t i = 0; i < n; i++) {                                                \
                int32_t lb = lbase[i];                                                      \
                s0 += leaf[lb + CTZ(a0[i] | (TOP))];                                        \
                s1 += leaf[lb + CTZ(a1[i] | (TOP))];                                        \
            }                                                                               \
        }                                                                                   \
        out[0] = s0;                                                                        \
        out[1] = s1;                                                                        \
    }

FSM_QS_SUMR(qs_sumr32, uint32_t, (uint32_t)1 << 31, __builtin_ctz)
FSM_QS_SUMR(qs_sumr64, uint64_t, (uint64_t)1 << 63, __builtin_ctzll)

/* Bitvector bytes of the batch path on the stack: room for 4 rows of the fraud shape, 2 of
 * 1000 trees of 64-bit masks. */
#define FSM_QS_BATCH_BYTES 16384

/* fs_model_predict_raw_batch on the QuickScorer form, one output per row (k_per 1), trees
 * [t0, t0 + n): rows in groups of 4 (or 2, when 4 rows' bitvectors do not fit
 * FSM_QS_BATCH_BYTES), each selected and AND'ed as in qs_predict, then their sums
 * interleaved. Returns the number of rows done (the caller scores the rest one by one). */
__attribute__((noinline)) static size_t qs_predict_batch(const fs_model *m, const double *x,
                                                        size_t nrows, size_t t0, size_t n,
                                                        double *out)
{
    const char *rowp[FSM_QS_MAX_FEAT];
    int32_t d0[FSM_QS_MAX_FEAT], d1[FSM_QS_MAX_FEAT];
    _Alignas(64) unsigned char buf[FSM_QS_BATCH_BYTES];
    size_t nf = (size_t)m->num_features, eb = (size_t)m->qs_bits / 8;
    /* Per row: n masks plus one vector of room (the AND's stores run past n), in 64-byte
     * units so each row's masks start on a line. */
    size_t per = ((n + 64 / eb) * eb + 63) / 64 * 64;
    size_t group = per * 4 <= sizeof buf ? 4 : per * 2 <= sizeof buf ? 2 : 0;
    size_t r = 0;
    if (group == 0)
        return 0;
    for (; r + group <= nrows; r += group) {
        for (size_t j = 0; j < group; j++) {
            qs_select(m, x + (r + j) * nf, rowp, d0, d1);
            qs_and(m, rowp, d0, d1, t0, n, buf + j * per);
        }
        if (m->qs_bits == 32)
            qs_sumr32(m, t0, n, (const uint32_t *)(const void *)buf, per / eb, group, out + r);
        else
            qs_sumr64(m, t0, n, (const uint64_t *)(const void *)buf, per / eb, group, out + r);
    }
    return r;
}

/* fs_model_predict_raw on the binned form. Not inlined, so its 16 KiB table and the
 * QuickScorer form's bitvectors are never in the same frame. */
__attribute__((noinline)) static void binned_predict(const fs_model *m, const double *x,
                                                    const fsm_tree *t, size_t ntrees, int k_per,
                                                    double *out)
{
    int8_t tab[FSM_BIN_MAX_TABLE];
    bin_row(m, x, tab);
    sum_trees_binned(m, t, ntrees, k_per, x, tab, out);
}

/* fs_model_predict_raw on the double form. Not inlined, so its 4 KiB of columns are not in
 * the frame the QuickScorer and binned forms are called from. */
__attribute__((noinline)) static void walk_predict(const fs_model *m, const double *x,
                                                  const fsm_tree *t, size_t ntrees, int k_per,
                                                  double *out)
{
    double cols[FSM_STACK_COLS];
    prep_row(m, x, cols);
    sum_trees(m, t, ntrees, k_per, x, cols, out);
}

void fs_model_predict_raw(const fs_model *m, const double *x, double *out,
                          const fs_predict_opts *opts)
{
    int first, count;
    int k_per = m->num_tree_per_iteration;

    fsm_iteration_range(m, opts, &first, &count);
    for (int k = 0; k < k_per; k++)
        out[k] = 0.0;
    if (count == 0)
        return;
    const fsm_tree *t = m->trees + (size_t)first * (size_t)k_per;
    size_t ntrees = (size_t)count * (size_t)k_per;
    /* The table first: it reads the row's features directly, not the execution columns, so
     * it also serves models with more columns than the walks keep on the stack (a feature
     * split both default-left and default-right is two columns). fsm_single_form follows
     * this order. */
    if (m->single_form == FSM_FORM_QS_DENSE || m->single_form == FSM_FORM_QS_DELTA) {
        qs_predict(m, x, (size_t)first * (size_t)k_per, ntrees, k_per, out);
        return;
    }
    if (m->num_xcols > FSM_STACK_COLS) {
        for (size_t i = 0; i < ntrees; i++) {
            const fsm_tree *ti = &t[i];
            int32_t leaf = ti->root < 0 ? ~ti->root : leaf_direct(m, ti->root, x);
            out[i % (size_t)k_per] += leaf_output(m, ti, leaf, x);
        }
        return;
    }
    if (m->single_form == FSM_FORM_BINNED) {
        binned_predict(m, x, t, ntrees, k_per, out);
        return;
    }
    walk_predict(m, x, t, ntrees, k_per, out);
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

/* fs_model_predict_raw_batch on the double form: blocks of `block` rows, their columns in a
 * 24 KiB stack buffer, each tree walked by 16 rows in lockstep while it is hot in cache. Not
 * inlined, so the table and binned batch paths do not carry that buffer. */
__attribute__((noinline)) static void block_batch(const fs_model *m, const double *x,
                                                 size_t nrows, double *out, int first,
                                                 int count, size_t block)
{
    int k_per = m->num_tree_per_iteration;
    size_t nf = (size_t)m->num_features, ncols = (size_t)m->num_xcols;
    double cols[FSM_BLOCK_VALUES];
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

void fs_model_predict_raw_batch(const fs_model *m, const double *x, size_t nrows, double *out,
                                const fs_predict_opts *opts)
{
    int first, count;
    int k_per = m->num_tree_per_iteration;
    size_t nf = (size_t)m->num_features, ncols = (size_t)m->num_xcols;

    size_t block = ncols ? FSM_BLOCK_VALUES / ncols : FSM_BLOCK_ROWS;
    if (block > FSM_BLOCK_ROWS)
        block = FSM_BLOCK_ROWS;
    fsm_iteration_range(m, opts, &first, &count);
    if (count == 0) {
        for (size_t i = 0; i < nrows * (size_t)k_per; i++)
            out[i] = 0.0;
        return;
    }
    if (m->single_form != FSM_FORM_WALK || ncols > FSM_STACK_COLS || block < FSM_GROUP) {
        /* The table or the binned walk scores single rows faster than the blocked double
         * form scores a batch (docs/engine.md, "Batch"): rows one by one, and on the table
         * with their sums interleaved. Models too wide for the blocks: one by one too. */
        size_t r = 0;
        if ((m->single_form == FSM_FORM_QS_DENSE || m->single_form == FSM_FORM_QS_DELTA) &&
            k_per == 1)
            r = qs_predict_batch(m, x, nrows, (size_t)first, (size_t)count, out);
        for (; r < nrows; r++)
            fs_model_predict_raw(m, x + r * nf, out + r * (size_t)k_per, opts);
        return;
    }
    block_batch(m, x, nrows, out, first, count, block);
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
