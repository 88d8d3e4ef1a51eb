/*
 * fs_model internals: the in-memory form of a loaded LightGBM model, shared by the parser
 * (fs_model_parse.c: the text format into nodes[], trees[], leaves and columns), the form
 * compiler (fs_model_forms.c: the execution forms below and the single-row form choice), the
 * evaluator (fs_model.c) and TreeSHAP (fs_model_shap.c). Not a public header: only
 * fs_model*.c (and the engine's tests, fuzzer and benchmark) include it.
 *
 * Layout, built for evaluation speed:
 *  - All internal nodes of all trees live in one flat array of 24-byte fsm_node records
 *    (threshold, input column, flags, both children). A child >= 0 is a global node index;
 *    a child < 0 is ~(global leaf index) into one flat leaf_value array.
 *  - Missing-value handling is folded into a per-row preprocessing step. Every node reads a
 *    "column", a (feature, missing type) pair: for the None type NaN becomes 0.0; for the Zero
 *    type NaN and |x| <= 1e-35 become NaN; for the NaN type NaN stays NaN. After that every
 *    numerical node decides with one formula: left = (v <= threshold) | (isnan(v) & default_left),
 *    which is exactly LightGBM's Tree::NumericalDecision on the original value.
 *  - Before anything, like LightGBM's predictor, a value with |x| <= kZeroThreshold is 0.0.
 *  - The evaluator runs on a second, execution form (fsm_xnode) described in struct fs_model.
 */
#ifndef FS_MODEL_IMPL_H
#define FS_MODEL_IMPL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fs_model.h"

/* LightGBM's kZeroThreshold is declared `const double kZeroThreshold = 1e-35f;`: the float
 * literal, widened. */
#define FSM_ZERO_THRESHOLD ((double)1e-35f)

/* Largest num_leaves LightGBM can train (its documented bound); anything above is rejected. */
#define FSM_MAX_LEAVES 131072
/* Caps on header counts; each is also bounded by the text that must back it. */
#define FSM_MAX_CLASSES 65536
#define FSM_MAX_FEATURES (1 << 22)
/* Trees deeper than this are evaluated, but contributions refuse them (TreeSHAP's path
 * memory grows with the square of the depth). */
#define FSM_MAX_SHAP_DEPTH 1024
/* Cap on the flat paths' entries (28 bytes each, 7 MiB); past it, the remaining trees are
 * walked. */
#define FSM_SHAP_FLAT_MAX ((size_t)1 << 18)
/* Pattern tables: the deepest leaf (in unique features) tabulated, and the total bytes. */
#define FSM_SHAP_TABLE_D 8
#define FSM_SHAP_TABLE_BUDGET ((size_t)16 << 20)

/* Column kinds: how a raw feature value is preprocessed for the nodes reading it. */
enum fsm_kind { FSM_COL_NONE = 0, FSM_COL_ZERO = 1, FSM_COL_NAN = 2, FSM_COL_CAT = 3 };

/* Node flags. */
#define FSM_DEFAULT_LEFT 1u
#define FSM_CATEGORICAL 2u

typedef struct fsm_node {
    double thr;         /* numerical threshold */
    int32_t col;        /* preprocessed input column */
    uint32_t flags;     /* FSM_DEFAULT_LEFT, FSM_CATEGORICAL */
    int32_t child[2];   /* [0] left, [1] right: >= 0 node, < 0 ~leaf (global indices) */
} fsm_node;

/* Execution-form column kinds: the missing-value rule and default direction folded into
 * the value, so a numerical node only tests v <= thr. A missing value that must go left
 * becomes -inf (-inf <= any threshold); one that must go right becomes NaN (NaN <= t is
 * false). */
enum fsm_xkind {
    FSM_X_NONE = 0, /* NaN -> 0.0 */
    FSM_X_ZERO_L,   /* NaN or 0 -> -inf */
    FSM_X_ZERO_R,   /* NaN or 0 -> NaN */
    FSM_X_NAN_L,    /* NaN -> -inf */
    FSM_X_NAN_R,    /* NaN stays */
    FSM_X_CAT,      /* value as is */
    FSM_X_KINDS
};

typedef struct fsm_xnode {
    double thr;         /* threshold; a leaf's value */
    int32_t col;        /* execution column; ~column for a categorical node */
    int32_t skip;       /* right child - (this node + 1); the left child is the next node */
} fsm_xnode;

/* Binned node: one 32-bit word, low 16 bits the key (index of its go-right mask in the
 * per-row table), high 16 bits the signed skip. See struct fs_model. */
typedef uint32_t fsm_bnode;

#define FSM_BIN_MAX_COLS 255
#define FSM_BIN_MAX_THR 255
/* Largest per-row mask table (bytes, on the stack). */
#define FSM_BIN_MAX_TABLE 16384
/* Table segment granularity (one SSE2 vector). */
#define FSM_BIN_SEG 16

typedef struct fsm_tree {
    int32_t root;       /* global node index, or ~leaf for a single-leaf tree */
    int32_t num_leaves;
    int32_t node_base;  /* first global node index of this tree */
    int32_t leaf_base;  /* first global leaf index */
    int32_t xroot;      /* root in the execution array (xnodes) */
    int32_t depth;      /* longest root-to-leaf path, in edges */
    uint8_t has_cat;
    uint8_t is_linear;
} fsm_tree;

enum fsm_transform {
    FSM_T_IDENTITY = 0,
    FSM_T_SIGMOID,      /* binary, multiclassova: 1 / (1 + exp(-sigmoid * x)) */
    FSM_T_SOFTMAX,      /* multiclass */
    FSM_T_XENT,         /* cross_entropy: 1 / (1 + exp(-x)) */
    FSM_T_XENT_LAMBDA,  /* cross_entropy_lambda: log1p(exp(x)) */
    FSM_T_EXP,          /* poisson, gamma, tweedie */
    FSM_T_SQUARE,       /* regression family with sqrt: sign(x) * x * x */
};

struct fs_model {
    int num_class;
    int num_tree_per_iteration;
    int num_features;      /* max_feature_idx + 1 */
    int num_trees;
    int num_iterations;    /* num_trees / num_tree_per_iteration */
    int average_output;
    int transform;         /* enum fsm_transform */
    double sigmoid;
    int max_depth;         /* deepest tree */
    int has_linear;

    char *objective;       /* as written, "" if absent */
    char **feature_names;  /* num_features pointers into names_buf */
    char *names_buf;

    fsm_tree *trees;       /* num_trees */
    fsm_node *nodes;       /* num_nodes */
    int32_t num_nodes;
    double *node_count;    /* internal_count per node (TreeSHAP) */
    int32_t *cat_off;      /* per node: first bitset word of a categorical node */
    int32_t *cat_len;      /* per node: its number of words */
    uint32_t *cat_words;
    int32_t num_cat_words;

    double *leaf_value;    /* num_leaves_total */
    double *leaf_count;    /* leaf_count per leaf (TreeSHAP) */
    int32_t num_leaves_total;

    /* Linear trees, per global leaf (only when has_linear). */
    double *lin_const;
    int32_t *lin_off;
    int32_t *lin_n;
    int32_t *lin_feat;
    double *lin_coeff;
    int32_t num_lin_terms;

    /* Execution form (built after loading; see the file comment): 16-byte nodes in
     * depth-first order, so a left child is always the next node. A leaf is a node too: it
     * reads the column that is always NaN (so it "goes right") and its right child is itself,
     * with thr holding the leaf value. A walk of exactly `depth` steps from xroot ends on the
     * leaf whatever the path, so 16 trees (or 16 rows) are walked in lockstep without a
     * data-dependent branch: independent chains of loads the CPU overlaps. A categorical
     * node has col = ~(its column); its bitset is xcat_off/xcat_len. */
    fsm_xnode *xnodes;
    int32_t *xleaf;        /* global leaf index of a leaf xnode, -1 for internal nodes */
    int32_t *xcat_off;
    int32_t *xcat_len;
    int32_t num_xnodes;
    int has_cat;
    /* Execution columns: (feature, xkind) pairs, then one column that is always NaN. */
    int32_t num_xcols;     /* including the NaN column */
    int32_t *xcol_feat;
    uint8_t *xcol_kind;

    /* Binned form (single-row path; NULL when the model does not fit it: categorical
     * splits, more than FSM_BIN_MAX_COLS execution columns, more than FSM_BIN_MAX_THR distinct
     * thresholds on one feature, a table above FSM_BIN_MAX_TABLE, or a tree too large for a
     * 16-bit skip). Each used feature's distinct numerical thresholds T[0..k) are kept
     * sorted, padded with +inf to 2^p - 1 entries. A row value v gets bin(v) =
     * #{i : !(v <= T[i])} (NaN: all of them) by a branch-free binary search; for a node
     * whose threshold is T[j], `v <= T[j]` is exactly `bin(v) <= j`. Per row, a byte table
     * holds, per execution column c and j < its feature's k, -1 if bin > j (go right) else
     * 0, at bcol_toff[c] + j; entries 0..FSM_BIN_SEG-1 are always -1 (leaves). A node is
     * then {key = table index, skip}: next = n + 1 + (skip & table[key]). A leaf has key 0
     * and skip -1, so it steps onto itself. bnodes parallels xnodes (same indices; a leaf's
     * value is still read from xnodes / xleaf). */
    fsm_bnode *bnodes;
    double *bthr;          /* padded sorted thresholds, per used feature back to back */
    int32_t bnum_feat;     /* features read by some node */
    int32_t *bfeat;        /* per used feature: feature index */
    int32_t *bfeat_off;    /* per used feature: offset of its thresholds in bthr */
    int32_t *bfeat_step;   /* per used feature: (padded length + 1) / 2 */
    int32_t *bcol_use;     /* per execution column: its used-feature index */
    uint8_t *bcol_alt;     /* per execution column: its bin for a zero, then for a NaN base
                            * value (the missing-value rule of its kind applied) */
    int32_t *bcol_toff;    /* per execution column: its table segment */
    int32_t *bcol_tlen;    /* per execution column: segment length (multiple of 16) */
    int32_t btable;        /* table bytes */

    /* QuickScorer form (single-row path; qs_bits 0 when the model does not fit it: see
     * build_qs in fs_model_forms.c). Leaves of each tree are numbered left to right (their
     * order in xnodes); a tree's state is one bitvector (uint32 when every tree has <= 32
     * leaves, else uint64) with bit i = leaf i still possible. A node that is false for a row
     * (the row goes right) clears the bits of its left subtree's leaves; the exit leaf is the
     * lowest bit left set once every false node has been applied (QuickScorer). Per used
     * feature u, the distinct thresholds T[0..k) are sorted (padded with +inf to 2^p - 1 for
     * a branch-free search) and a row value v (after the predictor's kZeroThreshold rule) has
     * bin(v) = #{i : !(v <= T[i])}: a node with threshold T[j] is false exactly when
     * bin(v) > j. The table holds, per u and per "row" r, per tree, the AND of the masks of
     * every node on u that is false: rows 0..ncp-1 are the checkpoint bins 0, K, 2K, ...
     * (K = 1 << qs_shift; K = 1 is the dense table, one row per bin), row ncp is v == 0 (each
     * node's own missing rule: Zero type takes its default direction, the others compare
     * 0.0), row ncp + 1 is NaN (None type compares 0.0, Zero and NaN types take their
     * default direction). Between checkpoints the nodes with threshold index in
     * [checkpoint, bin) are applied one by one from a list sorted by (u, j, tree):
     * qs_dtree / qs_dmask, entries qs_dpos[qs_dbase[u] + j] .. for threshold j of u. */
    int qs_bits;           /* 0 (no form), 32 or 64 */
    int qs_shift;          /* log2 of the checkpoint distance K */
    int qs_simd;           /* the ISA the engine dispatches to (enum fsm_qs_simd): what the
                            * CPU runs, capped by FS_ENGINE_ISA; set for every model */
    int32_t qs_stride;     /* masks per table row (num_trees rounded up to 64 bytes) */
    int32_t qs_nfeat;      /* used features */
    int32_t *qs_feat;      /* per used feature: feature index */
    int32_t *qs_toff;      /* per used feature: offset of its padded thresholds in qs_thr (>= 1:
                            * qs_thr[0] is a slot the searches may read, never count) */
    int32_t *qs_tstep;     /* per used feature: first step of the search ((padded + 1) / 2) */
    int32_t qs_maxstep;    /* the largest qs_tstep */
    /* The per-row search, in two levels of vectors of 8 (qs_select): per used feature u,
     * level 1 at qs_srch + qs_soff[u] is qs_s1n[u] vectors of 8 separators, the last
     * threshold of each block of 8 (+inf where the block is partial or absent); c = how many
     * separators are below the value. Level 2 follows it: the k thresholds in blocks of 8
     * padded with +inf, then a block of +inf; the bin is 8 c + how many of block c are below
     * the value (NaN: 0, never used: a NaN selects its own row). 64-byte aligned. */
    double *qs_srch;
    int32_t *qs_soff;
    int32_t *qs_s1n;
    int32_t *qs_ncp;       /* per used feature: number of checkpoint rows */
    int32_t *qs_row;       /* per used feature: its first table row */
    int32_t *qs_dbase;     /* per used feature: its k + 1 entries in qs_dpos */
    double *qs_thr;
    void *qs_tab;          /* rows x qs_stride masks, 64-byte aligned, + FSM_QS_SLACK bytes */
    size_t qs_tab_bytes;
    int32_t *qs_dpos;      /* NULL when K = 1 */
    uint32_t *qs_dnode;    /* a node in 4 bytes: tree << 12 | left-subtree leaf count << 6 |
                            * its first leaf; its mask is qs_masks[w & 4095] */
    uint64_t *qs_masks;    /* 4096: all ones but `len` bits from bit `a`, at len << 6 | a */
    double *qs_leaf;       /* leaf values, tree by tree, left to right, + 64 slack */
    int32_t *qs_lbase;     /* per tree: its first leaf in qs_leaf */
    double qs_est_ns;      /* the loader's time estimates per row (table, walk), for the */
    double walk_est_ns;    /* choice between them; 0 if not computed */
    int single_form;       /* enum fsm_form: what fs_model_predict_raw scores with (and the
                            * batch path, row by row, unless it is FSM_FORM_WALK) */
    int qs_rule;           /* 1 if the cost rule's time model picks the table */
    int calibrated;        /* 1 if the choice was measured at load (calibrate) */
    double cal_ns[2];      /* the measured ns per row then: table, walk */

    /* TreeSHAP tables (fsm_build_shap; NULL for linear models and trees deeper than
     * FSM_MAX_SHAP_DEPTH, which contributions refuse): per tree its expected value (the bias
     * column's share, summed as LightGBM sums it); per node and child, count(child) /
     * count(node) at shap_ratio[2 * node + side]; Shapley weights k! (d-1-k)! / d! for a
     * path of d unique features at shap_w[d (d - 1) / 2 + k], k < d, d <= max_depth. */
    double *shap_ev;
    double *shap_ratio;
    double *shap_w;
    /* Flat paths (NULL when the model has none): for a tree with at most 64 internal nodes,
     * each leaf's unique path features precomputed, leaf L's entries at
     * [shap_loff[2 L], shap_loff[2 L + 1]): feature, z (LightGBM's zero fraction), and the
     * path's nodes on that feature as bits of the tree's local node index (mask) with the
     * bits of those the path leaves to the right (want). A row sets bit j of its go-right
     * word for each node j going right; o = ((goright ^ want) & mask) == 0. shap_flat[t] says
     * whether tree t has them (else contributions walk the tree). */
    int32_t *shap_loff;    /* 2 num_leaves_total */
    int32_t *shap_ef;
    double *shap_ez;
    uint64_t *shap_em;
    uint64_t *shap_ewant;
    uint8_t *shap_flat;
    /* Pattern tables (within FSM_SHAP_TABLE_BUDGET): for a flat leaf with d <=
     * FSM_SHAP_TABLE_D entries, its d contributions for each of the 2^d values of (o_j) (bit
     * j = o_j) at shap_tab + shap_ltab[L] + pattern * d; shap_ltab[L] = -1 for the others. */
    int64_t *shap_ltab;    /* num_leaves_total */
    double *shap_tab;

    /* Preprocessed columns. */
    int32_t num_cols;
    int32_t *col_feat;
    uint8_t *col_kind;
};

/* Execution columns the walks keep on the stack; wider models without a QuickScorer form
 * take the per-node walk on the raw row. */
#define FSM_STACK_COLS 512

/* The table AND's variants (x86-64 with GCC or clang; elsewhere only the portable one). */
enum fsm_qs_simd { FSM_QS_PORTABLE = 0, FSM_QS_AVX2 = 1, FSM_QS_AVX512 = 2 };
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FSM_QS_HAVE_SIMD 1
#endif

/* QuickScorer caps: trees (the per-row bitvectors live on the stack, 16 KiB), used
 * features (per-row row pointers on the stack) and the default table budget. */
#define FSM_QS_MAX_TREES32 4096
#define FSM_QS_MAX_TREES64 2048
#define FSM_QS_MAX_FEAT 512
#define FSM_QS_TABLE_BUDGET ((size_t)4 << 20)
/* Largest expected number of single nodes (between checkpoints) per tree and row. */
#define FSM_QS_MAX_DELTA 5.0
/* The bitvector of a node packed by the loader into qs_dnode: all ones but `len` bits from
 * bit `a` (its left subtree's leaves). */
#define FSM_QS_NODE_MASK(w)                                                                 \
    (~((((uint64_t)1 << (((w) >> 6) & 63)) - 1) << ((w) & 63)))
/* Bytes after the table the evaluator's vector loads may touch (4 vectors of 64 bytes). */
#define FSM_QS_SLACK 256

/* fs_model_load_buffer / fs_model_load_file with the QuickScorer table budget in bytes
 * (the public loaders pass FSM_QS_TABLE_BUDGET): tests, the fuzzer and the benchmark lower it
 * to reach the checkpoint variant or no table (0, unless the model uses no feature), or raise
 * it. Same ownership and errors as the public loaders; no shared state. */
fs_model *fsm_load_buffer(const char *text, size_t len, const char *name, size_t qs_budget,
                          char *errstr, size_t errstr_size);
fs_model *fsm_load_file(const char *path, size_t qs_budget, char *errstr, size_t errstr_size);

/* The engine's settings from the environment, read once per load (docs/engine.md):
 * FS_ENGINE_ISA = auto | avx512 | avx2 | scalar caps the vector ISA the engine dispatches to
 * (never above what the CPU runs; "scalar" is the portable C variant, which GCC compiles to
 * SSE2 on x86-64). FS_ENGINE_FORM = auto | rule | table | walk sets the single-row form
 * choice: auto = the cost rules, and a short measurement at load when the time model's two
 * estimates are close (see calibrate in fs_model_forms.c); rule = the cost rules alone
 * (deterministic); table = the QuickScorer table whenever it can be built within the budget
 * (the cost rules skipped); walk = never the table. */
enum fsm_env_form { FSM_ENV_FORM_AUTO = 0, FSM_ENV_FORM_RULE, FSM_ENV_FORM_TABLE,
                    FSM_ENV_FORM_WALK };

/* Load-time calibration (FS_ENGINE_FORM=auto): when the estimates are within a factor
 * FSM_CAL_WINDOW of each other and both at least FSM_CAL_MIN_NS (below that the choice
 * matters little and tests keep their forms), both forms score FSM_CAL_ROWS rows, at most
 * FSM_CAL_ROUNDS rounds or FSM_CAL_BUDGET_NS of CPU time; the rule's pick stays unless the
 * other is faster by more than FSM_CAL_MARGIN. Models wider than FSM_CAL_MAX_FEATURES (the
 * rows would take more than 4 MiB) or with more than FSM_CAL_OUTPUTS classes keep the rule. */
#define FSM_CAL_WINDOW 2.0
#define FSM_CAL_MIN_NS 200.0
#define FSM_CAL_ROWS 128
#define FSM_CAL_ROUNDS 5
#define FSM_CAL_BUDGET_NS 10000000
#define FSM_CAL_MARGIN 0.10
#define FSM_CAL_MAX_FEATURES 4096
#define FSM_CAL_OUTPUTS 64
typedef struct fsm_env {
    int isa;               /* enum fsm_qs_simd */
    int form;              /* enum fsm_env_form */
} fsm_env;

/* Reads the settings above. Returns 0, or -1 with "FS_ENGINE_ISA=...: expected ..." (or
 * FS_ENGINE_FORM) in why for a value it does not know (the loader refuses the model: a typo
 * must not silently run another code path). */
int fsm_env_read(fsm_env *env, char *why, size_t why_size);

/* Compiles the execution forms (xnodes, then the binned form and the QuickScorer table when
 * the model fits them) from the parsed model, and picks the single-row form. Called once by
 * the loader after the last tree is parsed. Returns 0, or -1 when out of memory (the model is
 * then only fit for fsm_free_forms / fs_model_free). A model that does not fit an optional
 * form simply lacks it. */
int fsm_build_forms(fs_model *m, size_t qs_budget, const fsm_env *env);
/* Frees what fsm_build_forms allocated (safe on a partly built or zeroed model) and NULLs the
 * pointers. */
void fsm_free_forms(fs_model *m);

/* Computes the TreeSHAP tables above (called by fsm_build_forms). Returns 0, or -1 when out
 * of memory. fsm_free_shap frees them (safe on a zeroed model) and NULLs the pointers. */
int fsm_build_shap(fs_model *m);
void fsm_free_shap(fs_model *m);

/* LightGBM's Tree::PredictContrib ported as is (recursive extend / unwind): the reference
 * fs_model_predict_contrib is tested and benchmarked against. Same contract. */
int fsm_predict_contrib_ref(const fs_model *m, const double *x, double *out,
                            const fs_predict_opts *opts);

/* Which single-row form fs_model_predict_raw scores a model with (chosen at load): for tests
 * and the benchmark's label. FSM_FORM_WALK is the double-form walk, or the per-node walk of a
 * model with more than FSM_STACK_COLS execution columns and no QuickScorer form. */
enum fsm_form { FSM_FORM_WALK = 0, FSM_FORM_BINNED, FSM_FORM_QS_DENSE, FSM_FORM_QS_DELTA };
int fsm_single_form(const fs_model *m);

/* Raw feature of a node (TreeSHAP indexes contributions by it). */
static inline int fsm_node_feature(const fs_model *m, int32_t node)
{
    return m->col_feat[m->nodes[node].col];
}

/* Resolves LightGBM's start_iteration / num_iteration into [*first, *first + *count). */
void fsm_iteration_range(const fs_model *m, const fs_predict_opts *opts, int *first,
                         int *count);

/* LightGBM's predictor input: |x| <= kZeroThreshold becomes +0.0, NaN stays NaN. One
 * compare on |x| (almost never true, so predictable): written as `x >= -T && x <= T` the
 * compiler branched on the first compare, i.e. on the sign of x, a mispredicted jump for
 * every other feature value. */
static inline double fsm_base_value(double x)
{
    return fabs(x) <= FSM_ZERO_THRESHOLD ? 0.0 : x;
}

/* The child LightGBM's Tree::Decision picks at `node` for the base (not preprocessed) value
 * of its feature. Used by TreeSHAP and by the evaluator's fallback for very wide models. */
int32_t fsm_decide_base(const fs_model *m, int32_t node, double base);

#endif
