/*
 * fs_model loader: LightGBM's text format (v3/v4) into the flat form of fs_model_impl.h;
 * the execution forms are then compiled from it by fs_model_forms.c (fsm_build_forms).
 *
 * Robustness: the input is copied once into a NUL-terminated buffer and cut into lines.
 * Every array is counted in its line before anything is allocated, so an allocation is never
 * larger than a small multiple of the input's size. Every tree is checked to be a proper
 * binary tree (each node and leaf reached exactly once from the root: no cycles, no sharing,
 * no index out of range) before it is accepted. Errors say "name:line: what was expected".
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_file.h"
#include "fs_model_impl.h"

/* Largest model text accepted (a 1000 x 63 model is ~3 MB). */
#define FSM_MAX_TEXT ((size_t)1 << 30)

typedef struct parser {
    const char *name;
    char *buf;         /* NUL-terminated copy; newlines replaced by NUL */
    size_t len;
    size_t pos;        /* start of the next line */
    size_t line;       /* 1-based number of the line last returned */
    char *errstr;
    size_t errstr_size;
    int failed;
} parser;

static void perr(parser *p, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void perr(parser *p, size_t line, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    if (p->errstr == NULL || p->errstr_size == 0)
        return;
    int n = snprintf(p->errstr, p->errstr_size, "%s:%zu: ", p->name, line);
    if (n < 0 || (size_t)n >= p->errstr_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errstr + n, p->errstr_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Returns the next line (without its end-of-line, a trailing '\r' removed), or NULL at the
 * end of the input. */
static char *next_line(parser *p)
{
    if (p->pos >= p->len)
        return NULL;
    char *s = p->buf + p->pos;
    char *nl = memchr(s, '\n', p->len - p->pos);
    size_t n = nl ? (size_t)(nl - s) : p->len - p->pos;
    s[n] = '\0';
    if (n > 0 && s[n - 1] == '\r')
        s[n - 1] = '\0';
    p->pos += n + 1;
    p->line++;
    return s;
}

/* Peeks whether the next line starts with `prefix` without consuming it. */
static int peek_prefix(const parser *p, const char *prefix)
{
    size_t n = strlen(prefix);
    return p->pos < p->len && p->len - p->pos >= n && memcmp(p->buf + p->pos, prefix, n) == 0;
}

/* Counts space-separated tokens. */
static size_t count_tokens(const char *s)
{
    size_t n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        n++;
        while (*s && *s != ' ' && *s != '\t')
            s++;
    }
    return n;
}

/* Parses exactly `n` doubles from a value string. */
static int parse_doubles(parser *p, size_t line, const char *key, const char *s, double *out,
                         size_t n, int allow_nan)
{
    size_t have = count_tokens(s);
    if (have != n) {
        perr(p, line, "%s: expected %zu values, found %zu", key, n, have);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        while (*s == ' ' || *s == '\t')
            s++;
        char *end = NULL;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || (*end != '\0' && *end != ' ' && *end != '\t')) {
            perr(p, line, "%s: value %zu: expected a number", key, i + 1);
            return -1;
        }
        if (isnan(v) && !allow_nan) {
            perr(p, line, "%s: value %zu: expected a number, found NaN", key, i + 1);
            return -1;
        }
        out[i] = v;
        s = end;
    }
    return 0;
}

static int parse_long_token(const char **sp, long long lo, long long hi, long long *out)
{
    const char *s = *sp;
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno != 0 || (*end != '\0' && *end != ' ' && *end != '\t'))
        return -1;
    if (v < lo || v > hi)
        return -2;
    *out = v;
    *sp = end;
    return 0;
}

/* Parses exactly `n` integers in [lo, hi]. */
static int parse_ints(parser *p, size_t line, const char *key, const char *s, int32_t *out,
                      size_t n, long long lo, long long hi)
{
    size_t have = count_tokens(s);
    if (have != n) {
        perr(p, line, "%s: expected %zu values, found %zu", key, n, have);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        long long v = 0;
        int rc = parse_long_token(&s, lo, hi, &v);
        if (rc == -1) {
            perr(p, line, "%s: value %zu: expected an integer", key, i + 1);
            return -1;
        }
        if (rc == -2) {
            perr(p, line, "%s: value %zu: expected an integer in [%lld, %lld]", key, i + 1, lo,
                 hi);
            return -1;
        }
        out[i] = (int32_t)v;
    }
    return 0;
}

static int parse_int_value(parser *p, size_t line, const char *key, const char *s, long long lo,
                           long long hi, int *out)
{
    int32_t v = 0;
    if (parse_ints(p, line, key, s, &v, 1, lo, hi) != 0)
        return -1;
    *out = v;
    return 0;
}

/* Growable arrays for the model's flat storage. Growth is bounded by the input: every element
 * stands for at least one token of the text. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    if (nc > SIZE_MAX / elem)
        return -1;
    void *na = realloc(*arr, nc * elem);
    if (na == NULL)
        return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

typedef struct caps {
    size_t nodes, leaves, lin_leaves, cat_words, lin_terms, cols;
} caps;

/* Resizes an array to exactly n elements. */
static int resize(void **arr, size_t n, size_t elem)
{
    if (n > SIZE_MAX / elem)
        return -1;
    void *na = realloc(*arr, n * elem);
    if (na == NULL)
        return -1;
    *arr = na;
    return 0;
}

/* The per-leaf arrays all have capacity c->leaves. */
static int grow_leaves(fs_model *m, caps *c, size_t need)
{
    size_t cap = c->leaves;
    if (grow((void **)&m->leaf_value, &cap, need, sizeof(double)) != 0)
        return -1;
    if (cap != c->leaves && resize((void **)&m->leaf_count, cap, sizeof(double)) != 0)
        return -1;
    c->leaves = cap;
    return 0;
}

/* The per-node arrays all have capacity c->nodes. */
static int grow_nodes(fs_model *m, caps *c, size_t need)
{
    size_t cap = c->nodes;
    if (grow((void **)&m->nodes, &cap, need, sizeof(fsm_node)) != 0)
        return -1;
    if (cap != c->nodes && (resize((void **)&m->node_count, cap, sizeof(double)) != 0 ||
                            resize((void **)&m->cat_off, cap, sizeof(int32_t)) != 0 ||
                            resize((void **)&m->cat_len, cap, sizeof(int32_t)) != 0))
        return -1;
    c->nodes = cap;
    return 0;
}

/* The linear per-leaf arrays follow the leaf capacity, zero-filled (a non-linear tree's
 * leaves have no terms). */
static int grow_linear(fs_model *m, caps *c)
{
    size_t old = c->lin_leaves, cap = c->leaves;
    if (cap <= old)
        return 0;
    if (resize((void **)&m->lin_const, cap, sizeof(double)) != 0 ||
        resize((void **)&m->lin_off, cap, sizeof(int32_t)) != 0 ||
        resize((void **)&m->lin_n, cap, sizeof(int32_t)) != 0)
        return -1;
    for (size_t i = old; i < cap; i++) {
        m->lin_const[i] = 0.0;
        m->lin_off[i] = 0;
        m->lin_n[i] = 0;
    }
    c->lin_leaves = cap;
    return 0;
}

/* One tree's key=value lines, by key. */
enum tkey {
    TK_NUM_LEAVES, TK_NUM_CAT, TK_SPLIT_FEATURE, TK_THRESHOLD, TK_DECISION_TYPE,
    TK_LEFT_CHILD, TK_RIGHT_CHILD, TK_LEAF_VALUE, TK_LEAF_COUNT, TK_INTERNAL_COUNT,
    TK_CAT_BOUNDARIES, TK_CAT_THRESHOLD, TK_IS_LINEAR, TK_LEAF_CONST, TK_NUM_FEATURES,
    TK_LEAF_FEATURES, TK_LEAF_COEFF, TK_COUNT
};

static const char *const tkey_names[TK_COUNT] = {
    "num_leaves", "num_cat", "split_feature", "threshold", "decision_type",
    "left_child", "right_child", "leaf_value", "leaf_count", "internal_count",
    "cat_boundaries", "cat_threshold", "is_linear", "leaf_const", "num_features",
    "leaf_features", "leaf_coeff",
};

typedef struct tree_text {
    const char *val[TK_COUNT];
    size_t line[TK_COUNT];
} tree_text;

/* Column for (feature, kind), created on first use. */
static int32_t column_for(fs_model *m, int32_t *col_of, caps *c, int feature, int kind)
{
    int32_t *slot = &col_of[(size_t)feature * 4 + (size_t)kind];
    if (*slot >= 0)
        return *slot;
    size_t need = (size_t)m->num_cols + 1;
    if (grow((void **)&m->col_feat, &c->cols, need, sizeof *m->col_feat) != 0)
        return -1;
    size_t kcap = c->cols;
    uint8_t *nk = realloc(m->col_kind, kcap);
    if (nk == NULL)
        return -1;
    m->col_kind = nk;
    m->col_feat[m->num_cols] = feature;
    m->col_kind[m->num_cols] = (uint8_t)kind;
    *slot = m->num_cols++;
    return *slot;
}

/* Checks the children form a binary tree rooted at node 0 and computes its depth. */
static int check_structure(parser *p, size_t line, const int32_t *left, const int32_t *right,
                           int num_leaves, int *depth_out)
{
    int ni = num_leaves - 1;
    int rc = -1;
    uint8_t *seen_node = calloc((size_t)ni, 1);
    uint8_t *seen_leaf = calloc((size_t)num_leaves, 1);
    int32_t *stack = malloc(sizeof(int32_t) * (size_t)num_leaves * 2);
    int32_t *sdepth = malloc(sizeof(int32_t) * (size_t)num_leaves * 2);
    if (seen_node == NULL || seen_leaf == NULL || stack == NULL || sdepth == NULL) {
        perr(p, line, "out of memory");
        goto out;
    }
    for (int i = 0; i < ni; i++) {
        int32_t ch[2] = {left[i], right[i]};
        for (int k = 0; k < 2; k++) {
            if (ch[k] >= ni || ch[k] < -num_leaves) {
                perr(p, line, "node %d: %s child %d: expected a node in [0, %d) or a leaf in "
                     "[-%d, -1]", i, k ? "right" : "left", ch[k], ni, num_leaves);
                goto out;
            }
            if (ch[k] == 0) {
                perr(p, line, "node %d: child 0 is the root: a cycle", i);
                goto out;
            }
        }
    }
    int sp = 0, depth = 0;
    stack[sp] = 0;
    sdepth[sp++] = 0;
    seen_node[0] = 1;
    while (sp > 0) {
        sp--;
        int32_t n = stack[sp], d = sdepth[sp];
        int32_t ch[2] = {left[n], right[n]};
        for (int k = 0; k < 2; k++) {
            if (ch[k] >= 0) {
                if (seen_node[ch[k]]) {
                    perr(p, line, "node %d is reached twice: expected a tree (a cycle or a "
                         "shared child)", ch[k]);
                    goto out;
                }
                seen_node[ch[k]] = 1;
                stack[sp] = ch[k];
                sdepth[sp++] = d + 1;
            } else {
                int32_t leaf = ~ch[k];
                if (seen_leaf[leaf]) {
                    perr(p, line, "leaf %d is reached twice: expected a tree", leaf);
                    goto out;
                }
                seen_leaf[leaf] = 1;
                if (d + 1 > depth)
                    depth = d + 1;
            }
        }
    }
    for (int i = 0; i < ni; i++)
        if (!seen_node[i]) {
            perr(p, line, "node %d is not reachable from the root (a cycle or a detached subtree): "
                 "expected a tree", i);
            goto out;
        }
    for (int i = 0; i < num_leaves; i++)
        if (!seen_leaf[i]) {
            perr(p, line, "leaf %d is not reachable from the root: expected a tree", i);
            goto out;
        }
    *depth_out = depth;
    rc = 0;
out:
    free(seen_node);
    free(seen_leaf);
    free(stack);
    free(sdepth);
    return rc;
}

static const char *need_key(parser *p, const tree_text *tt, enum tkey k, size_t tree_line,
                            int tree_index)
{
    if (tt->val[k] == NULL)
        perr(p, tree_line, "Tree=%d: expected a %s= line", tree_index, tkey_names[k]);
    return tt->val[k];
}

/* Adds one parsed tree (its key=value lines in tt) to the model. */
static int add_tree(parser *p, fs_model *m, caps *c, int32_t *col_of, const tree_text *tt,
                    size_t tree_line, int ti)
{
    int rc = -1;
    int32_t *split_feature = NULL, *dtype = NULL, *left = NULL, *right = NULL;
    int32_t *icount = NULL, *lcount = NULL, *cat_bound = NULL, *lin_n = NULL;
    double *thr = NULL;
    int num_leaves = 0, num_cat = 0, is_linear = 0, depth = 0;
    const char *v;

    if ((v = need_key(p, tt, TK_NUM_LEAVES, tree_line, ti)) == NULL)
        goto out;
    if (parse_int_value(p, tt->line[TK_NUM_LEAVES], "num_leaves", v, 1, FSM_MAX_LEAVES,
                        &num_leaves) != 0)
        goto out;
    if ((v = need_key(p, tt, TK_NUM_CAT, tree_line, ti)) == NULL)
        goto out;
    if (parse_int_value(p, tt->line[TK_NUM_CAT], "num_cat", v, 0, num_leaves - 1, &num_cat) != 0)
        goto out;
    if (tt->val[TK_IS_LINEAR] != NULL &&
        parse_int_value(p, tt->line[TK_IS_LINEAR], "is_linear", tt->val[TK_IS_LINEAR], 0, 1,
                        &is_linear) != 0)
        goto out;
    if ((v = need_key(p, tt, TK_LEAF_VALUE, tree_line, ti)) == NULL)
        goto out;
    /* Count before allocating: the line must hold num_leaves values. */
    if (count_tokens(v) != (size_t)num_leaves) {
        perr(p, tt->line[TK_LEAF_VALUE], "leaf_value: expected %d values (num_leaves), found %zu",
             num_leaves, count_tokens(v));
        goto out;
    }
    int ni = num_leaves - 1;
    size_t leaf_base = (size_t)m->num_leaves_total, node_base = (size_t)m->num_nodes;
    if (leaf_base + (size_t)num_leaves > INT32_MAX || node_base + (size_t)ni > INT32_MAX) {
        perr(p, tree_line, "Tree=%d: more nodes than this engine holds", ti);
        goto out;
    }
    if (grow_leaves(m, c, leaf_base + (size_t)num_leaves) != 0) {
        perr(p, tree_line, "out of memory");
        goto out;
    }
    if (parse_doubles(p, tt->line[TK_LEAF_VALUE], "leaf_value", v, m->leaf_value + leaf_base,
                      (size_t)num_leaves, 0) != 0)
        goto out;
    for (int i = 0; i < num_leaves; i++)
        m->leaf_count[leaf_base + (size_t)i] = 0.0;

    fsm_tree *t = &m->trees[ti];
    memset(t, 0, sizeof *t);
    t->num_leaves = num_leaves;
    t->leaf_base = (int32_t)leaf_base;
    t->node_base = (int32_t)node_base;
    t->is_linear = (uint8_t)is_linear;
    t->root = ~(int32_t)leaf_base;

    if (num_leaves > 1) {
        size_t nn = (size_t)ni;
        split_feature = malloc(nn * sizeof(int32_t));
        dtype = malloc(nn * sizeof(int32_t));
        left = malloc(nn * sizeof(int32_t));
        right = malloc(nn * sizeof(int32_t));
        icount = calloc(nn, sizeof(int32_t));
        lcount = calloc((size_t)num_leaves, sizeof(int32_t));
        thr = malloc(nn * sizeof(double));
        if (!split_feature || !dtype || !left || !right || !icount || !lcount || !thr) {
            perr(p, tree_line, "out of memory");
            goto out;
        }
        static const enum tkey req[] = {TK_SPLIT_FEATURE, TK_THRESHOLD, TK_LEFT_CHILD,
                                        TK_RIGHT_CHILD};
        for (size_t k = 0; k < sizeof req / sizeof req[0]; k++)
            if (need_key(p, tt, req[k], tree_line, ti) == NULL)
                goto out;
        if (parse_ints(p, tt->line[TK_SPLIT_FEATURE], "split_feature", tt->val[TK_SPLIT_FEATURE],
                       split_feature, nn, 0, m->num_features - 1) != 0)
            goto out;
        if (parse_doubles(p, tt->line[TK_THRESHOLD], "threshold", tt->val[TK_THRESHOLD], thr, nn,
                          0) != 0)
            goto out;
        if (parse_ints(p, tt->line[TK_LEFT_CHILD], "left_child", tt->val[TK_LEFT_CHILD], left, nn,
                       -num_leaves, ni - 1) != 0)
            goto out;
        if (parse_ints(p, tt->line[TK_RIGHT_CHILD], "right_child", tt->val[TK_RIGHT_CHILD], right,
                       nn, -num_leaves, ni - 1) != 0)
            goto out;
        if (tt->val[TK_DECISION_TYPE] != NULL) {
            if (parse_ints(p, tt->line[TK_DECISION_TYPE], "decision_type",
                           tt->val[TK_DECISION_TYPE], dtype, nn, 0, 11) != 0)
                goto out;
        } else {
            memset(dtype, 0, nn * sizeof(int32_t));
        }
        if (tt->val[TK_INTERNAL_COUNT] != NULL &&
            parse_ints(p, tt->line[TK_INTERNAL_COUNT], "internal_count",
                       tt->val[TK_INTERNAL_COUNT], icount, nn, 0, INT32_MAX) != 0)
            goto out;
        if (tt->val[TK_LEAF_COUNT] != NULL &&
            parse_ints(p, tt->line[TK_LEAF_COUNT], "leaf_count", tt->val[TK_LEAF_COUNT], lcount,
                       (size_t)num_leaves, 0, INT32_MAX) != 0)
            goto out;
        if (check_structure(p, tt->line[TK_LEFT_CHILD], left, right, num_leaves, &depth) != 0)
            goto out;

        /* Categorical bitsets. */
        int32_t cat_word_base = m->num_cat_words;
        if (num_cat > 0) {
            if (need_key(p, tt, TK_CAT_BOUNDARIES, tree_line, ti) == NULL ||
                need_key(p, tt, TK_CAT_THRESHOLD, tree_line, ti) == NULL)
                goto out;
            size_t nwords = count_tokens(tt->val[TK_CAT_THRESHOLD]);
            cat_bound = malloc(((size_t)num_cat + 1) * sizeof(int32_t));
            if (cat_bound == NULL) {
                perr(p, tree_line, "out of memory");
                goto out;
            }
            if (parse_ints(p, tt->line[TK_CAT_BOUNDARIES], "cat_boundaries",
                           tt->val[TK_CAT_BOUNDARIES], cat_bound, (size_t)num_cat + 1, 0,
                           (long long)nwords) != 0)
                goto out;
            if (cat_bound[0] != 0 || (size_t)cat_bound[num_cat] != nwords) {
                perr(p, tt->line[TK_CAT_BOUNDARIES], "cat_boundaries: expected 0 first and the "
                     "number of cat_threshold words (%zu) last", nwords);
                goto out;
            }
            for (int i = 0; i < num_cat; i++)
                if (cat_bound[i + 1] < cat_bound[i]) {
                    perr(p, tt->line[TK_CAT_BOUNDARIES], "cat_boundaries: expected "
                         "non-decreasing values");
                    goto out;
                }
            if ((size_t)cat_word_base + nwords > INT32_MAX ||
                grow((void **)&m->cat_words, &c->cat_words, (size_t)cat_word_base + nwords,
                     sizeof(uint32_t)) != 0) {
                perr(p, tree_line, "out of memory");
                goto out;
            }
            const char *s = tt->val[TK_CAT_THRESHOLD];
            for (size_t i = 0; i < nwords; i++) {
                long long w = 0;
                if (parse_long_token(&s, 0, UINT32_MAX, &w) != 0) {
                    perr(p, tt->line[TK_CAT_THRESHOLD], "cat_threshold: value %zu: expected an "
                         "unsigned 32-bit integer", i + 1);
                    goto out;
                }
                m->cat_words[(size_t)cat_word_base + i] = (uint32_t)w;
            }
            m->num_cat_words = cat_word_base + (int32_t)nwords;
        }

        /* Nodes. */
        size_t need_nodes = node_base + nn;
        if (grow_nodes(m, c, need_nodes) != 0) {
            perr(p, tree_line, "out of memory");
            goto out;
        }
        int cats_seen = 0;
        for (int i = 0; i < ni; i++) {
            fsm_node *nd = &m->nodes[node_base + (size_t)i];
            int is_cat = (dtype[i] & 1) != 0;
            int default_left = (dtype[i] & 2) != 0;
            int mtype = (dtype[i] >> 2) & 3;
            if (mtype == 3) {
                perr(p, tt->line[TK_DECISION_TYPE], "decision_type: value %d: expected missing "
                     "type 0 (None), 1 (Zero) or 2 (NaN)", i + 1);
                goto out;
            }
            int kind = is_cat ? FSM_COL_CAT : mtype;
            int32_t col = column_for(m, col_of, c, split_feature[i], kind);
            if (col < 0) {
                perr(p, tree_line, "out of memory");
                goto out;
            }
            nd->col = col;
            nd->thr = thr[i];
            nd->flags = 0;
            m->cat_off[node_base + (size_t)i] = 0;
            m->cat_len[node_base + (size_t)i] = 0;
            if (is_cat) {
                double ci = thr[i];
                if (!(ci >= 0 && ci < num_cat) || ci != floor(ci)) {
                    perr(p, tt->line[TK_THRESHOLD], "threshold: value %d: expected a "
                         "categorical split index in [0, %d)", i + 1, num_cat);
                    goto out;
                }
                int k = (int)ci;
                nd->flags |= FSM_CATEGORICAL;
                m->cat_off[node_base + (size_t)i] = cat_word_base + cat_bound[k];
                m->cat_len[node_base + (size_t)i] = cat_bound[k + 1] - cat_bound[k];
                cats_seen++;
            } else if (default_left && mtype != 0) {
                nd->flags |= FSM_DEFAULT_LEFT;
            }
            for (int k = 0; k < 2; k++) {
                int32_t ch = k ? right[i] : left[i];
                nd->child[k] = ch >= 0 ? (int32_t)node_base + ch : ~((int32_t)leaf_base + ~ch);
            }
            m->node_count[node_base + (size_t)i] = (double)icount[i];
        }
        for (int i = 0; i < num_leaves; i++)
            m->leaf_count[leaf_base + (size_t)i] = (double)lcount[i];
        t->has_cat = cats_seen > 0;
        t->root = (int32_t)node_base;
        t->depth = depth;
        m->num_nodes = (int32_t)need_nodes;
    }
    m->num_leaves_total = (int32_t)(leaf_base + (size_t)num_leaves);

    if (is_linear) {
        m->has_linear = 1;
        static const enum tkey req[] = {TK_LEAF_CONST, TK_NUM_FEATURES, TK_LEAF_FEATURES,
                                        TK_LEAF_COEFF};
        for (size_t k = 0; k < sizeof req / sizeof req[0]; k++)
            if (need_key(p, tt, req[k], tree_line, ti) == NULL)
                goto out;
        if (grow_linear(m, c) != 0) {
            perr(p, tree_line, "out of memory");
            goto out;
        }
        lin_n = malloc((size_t)num_leaves * sizeof(int32_t));
        if (lin_n == NULL) {
            perr(p, tree_line, "out of memory");
            goto out;
        }
        if (parse_doubles(p, tt->line[TK_LEAF_CONST], "leaf_const", tt->val[TK_LEAF_CONST],
                          m->lin_const + leaf_base, (size_t)num_leaves, 0) != 0)
            goto out;
        size_t nfeat_tokens = count_tokens(tt->val[TK_LEAF_FEATURES]);
        if (parse_ints(p, tt->line[TK_NUM_FEATURES], "num_features", tt->val[TK_NUM_FEATURES],
                       lin_n, (size_t)num_leaves, 0, (long long)nfeat_tokens) != 0)
            goto out;
        size_t total = 0;
        for (int i = 0; i < num_leaves; i++)
            total += (size_t)lin_n[i];
        if (total != nfeat_tokens) {
            perr(p, tt->line[TK_LEAF_FEATURES], "leaf_features: expected %zu values (the sum of "
                 "num_features), found %zu", total, nfeat_tokens);
            goto out;
        }
        size_t base = (size_t)m->num_lin_terms;
        if (base + total > INT32_MAX) {
            perr(p, tree_line, "too many linear terms");
            goto out;
        }
        size_t lcap = c->lin_terms;
        if (grow((void **)&m->lin_feat, &lcap, base + total + 1, sizeof(int32_t)) != 0 ||
            (lcap != c->lin_terms && resize((void **)&m->lin_coeff, lcap, sizeof(double)) != 0)) {
            perr(p, tree_line, "out of memory");
            goto out;
        }
        c->lin_terms = lcap;
        if (parse_ints(p, tt->line[TK_LEAF_FEATURES], "leaf_features", tt->val[TK_LEAF_FEATURES],
                       m->lin_feat + base, total, 0, m->num_features - 1) != 0)
            goto out;
        if (parse_doubles(p, tt->line[TK_LEAF_COEFF], "leaf_coeff", tt->val[TK_LEAF_COEFF],
                          m->lin_coeff + base, total, 0) != 0)
            goto out;
        size_t off = base;
        for (int i = 0; i < num_leaves; i++) {
            m->lin_off[leaf_base + (size_t)i] = (int32_t)off;
            m->lin_n[leaf_base + (size_t)i] = lin_n[i];
            off += (size_t)lin_n[i];
        }
        m->num_lin_terms = (int32_t)(base + total);
    }
    if (depth > m->max_depth)
        m->max_depth = depth;
    rc = 0;
out:
    free(split_feature);
    free(dtype);
    free(left);
    free(right);
    free(icount);
    free(lcount);
    free(cat_bound);
    free(lin_n);
    free(thr);
    return rc;
}


static int set_objective(parser *p, fs_model *m, size_t line)
{
    char name[64];
    const char *s = m->objective;
    size_t n = strcspn(s, " \t");
    if (n == 0 && s[0] == '\0') {
        m->transform = FSM_T_IDENTITY;
        return 0;
    }
    if (n >= sizeof name) {
        perr(p, line, "objective: expected a known objective name");
        return -1;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    /* Parameters: "sigmoid:1", "num_class:3", "sqrt". */
    int has_sqrt = 0;
    m->sigmoid = 1.0;
    const char *q = s + n;
    while (*q) {
        while (*q == ' ' || *q == '\t')
            q++;
        size_t tl = strcspn(q, " \t");
        if (tl == 4 && memcmp(q, "sqrt", 4) == 0)
            has_sqrt = 1;
        if (tl > 8 && memcmp(q, "sigmoid:", 8) == 0) {
            char tmp[64];
            if (tl >= sizeof tmp) {
                perr(p, line, "objective: sigmoid: expected a number");
                return -1;
            }
            memcpy(tmp, q + 8, tl - 8);
            tmp[tl - 8] = '\0';
            char *end = NULL;
            double sg = strtod(tmp, &end);
            if (end == tmp || *end != '\0' || !isfinite(sg) || sg <= 0) {
                perr(p, line, "objective: sigmoid: expected a positive number");
                return -1;
            }
            m->sigmoid = sg;
        }
        q += tl;
    }
    static const struct {
        const char *name;
        int transform;
    } objs[] = {
        {"binary", FSM_T_SIGMOID},
        {"multiclass", FSM_T_SOFTMAX}, {"softmax", FSM_T_SOFTMAX},
        {"multiclassova", FSM_T_SIGMOID}, {"multiclass_ova", FSM_T_SIGMOID},
        {"ova", FSM_T_SIGMOID}, {"ovr", FSM_T_SIGMOID},
        {"cross_entropy", FSM_T_XENT}, {"xentropy", FSM_T_XENT},
        {"cross_entropy_lambda", FSM_T_XENT_LAMBDA}, {"xentlambda", FSM_T_XENT_LAMBDA},
        {"poisson", FSM_T_EXP}, {"gamma", FSM_T_EXP}, {"tweedie", FSM_T_EXP},
        {"regression", FSM_T_IDENTITY}, {"regression_l2", FSM_T_IDENTITY},
        {"l2", FSM_T_IDENTITY}, {"mean_squared_error", FSM_T_IDENTITY},
        {"mse", FSM_T_IDENTITY}, {"l2_root", FSM_T_IDENTITY},
        {"root_mean_squared_error", FSM_T_IDENTITY}, {"rmse", FSM_T_IDENTITY},
        {"regression_l1", FSM_T_IDENTITY}, {"l1", FSM_T_IDENTITY},
        {"mean_absolute_error", FSM_T_IDENTITY}, {"mae", FSM_T_IDENTITY},
        {"huber", FSM_T_IDENTITY}, {"fair", FSM_T_IDENTITY}, {"quantile", FSM_T_IDENTITY},
        {"mape", FSM_T_IDENTITY}, {"mean_absolute_percentage_error", FSM_T_IDENTITY},
        {"lambdarank", FSM_T_IDENTITY}, {"rank_xendcg", FSM_T_IDENTITY},
        {"xendcg", FSM_T_IDENTITY}, {"xe_ndcg", FSM_T_IDENTITY},
        {"xe_ndcg_mart", FSM_T_IDENTITY}, {"xendcg_mart", FSM_T_IDENTITY},
        {"custom", FSM_T_IDENTITY}, {"none", FSM_T_IDENTITY}, {"null", FSM_T_IDENTITY},
        {"na", FSM_T_IDENTITY},
    };
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        if (strcmp(name, objs[i].name) != 0)
            continue;
        m->transform = objs[i].transform;
        /* The regression family squares its output back when trained with sqrt. */
        if (m->transform == FSM_T_IDENTITY && has_sqrt)
            m->transform = FSM_T_SQUARE;
        if (m->transform == FSM_T_SOFTMAX && m->num_class < 2) {
            perr(p, line, "objective %s: expected num_class >= 2", name);
            return -1;
        }
        return 0;
    }
    perr(p, line, "objective: expected a known objective, found '%s'", name);
    return -1;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

fs_model *fs_model_load_buffer(const char *text, size_t len, const char *name, char *errstr,
                               size_t errstr_size)
{
    return fsm_load_buffer(text, len, name, FSM_QS_TABLE_BUDGET, errstr, errstr_size);
}

fs_model *fsm_load_buffer(const char *text, size_t len, const char *name, size_t qs_budget,
                          char *errstr, size_t errstr_size)
{
    parser p = {.name = name ? name : "(model)", .errstr = errstr, .errstr_size = errstr_size};
    fs_model *m = NULL;
    int32_t *col_of = NULL;
    tree_text tt;
    caps c = {0};
    fsm_env env;
    char why[128];
    int ok = 0;

    if (errstr != NULL && errstr_size > 0)
        errstr[0] = '\0';
    if (text == NULL && len > 0) {
        perr(&p, 0, "no input");
        goto out;
    }
    if (len > FSM_MAX_TEXT) {
        perr(&p, 0, "larger than %zu bytes", FSM_MAX_TEXT);
        goto out;
    }
    if (fsm_env_read(&env, why, sizeof why) != 0) {
        perr(&p, 0, "%s", why);
        goto out;
    }
    p.buf = malloc(len + 1);
    m = calloc(1, sizeof *m);
    if (p.buf == NULL || m == NULL) {
        perr(&p, 0, "out of memory");
        goto out;
    }
    if (len > 0)
        memcpy(p.buf, text, len);
    p.buf[len] = '\0';
    p.len = len;
    if (memchr(p.buf, '\0', len) != NULL) {
        /* A NUL byte would silently cut a line short. */
        size_t at = (size_t)((char *)memchr(p.buf, '\0', len) - p.buf), line = 1;
        for (size_t i = 0; i < at; i++)
            line += p.buf[i] == '\n';
        perr(&p, line, "expected text, found a NUL byte");
        goto out;
    }

    /* Header. */
    char *s = next_line(&p);
    if (s == NULL || strcmp(s, "tree") != 0) {
        perr(&p, p.line ? p.line : 1, "expected 'tree' (a LightGBM text model)");
        goto out;
    }
    int num_class = -1, ntpi = -1, max_feature_idx = -1;
    const char *feature_names = NULL, *objective = "";
    size_t names_line = 0, obj_line = 0, header_end_line = 0, sizes_line = 0;
    const char *tree_sizes = NULL;
    for (;;) {
        if (peek_prefix(&p, "Tree=") || peek_prefix(&p, "end of trees"))
            break;
        s = next_line(&p);
        if (s == NULL) {
            perr(&p, p.line + 1, "expected 'Tree=0' or 'end of trees', found the end of the "
                 "file (truncated?)");
            goto out;
        }
        if (s[0] == '\0')
            continue;
        if (strcmp(s, "average_output") == 0) {
            m->average_output = 1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            perr(&p, p.line, "expected key=value in the header");
            goto out;
        }
        *eq = '\0';
        const char *val = eq + 1;
        if (strcmp(s, "num_class") == 0) {
            if (parse_int_value(&p, p.line, "num_class", val, 1, FSM_MAX_CLASSES, &num_class))
                goto out;
        } else if (strcmp(s, "num_tree_per_iteration") == 0) {
            if (parse_int_value(&p, p.line, "num_tree_per_iteration", val, 1, FSM_MAX_CLASSES,
                                &ntpi))
                goto out;
        } else if (strcmp(s, "max_feature_idx") == 0) {
            if (parse_int_value(&p, p.line, "max_feature_idx", val, 0, FSM_MAX_FEATURES - 1,
                                &max_feature_idx))
                goto out;
        } else if (strcmp(s, "objective") == 0) {
            objective = val;
            obj_line = p.line;
        } else if (strcmp(s, "feature_names") == 0) {
            feature_names = val;
            names_line = p.line;
        } else if (strcmp(s, "tree_sizes") == 0) {
            tree_sizes = val;
            sizes_line = p.line;
        }
        /* version, label_index, feature_infos, monotone_constraints, ...: not needed. */
    }
    header_end_line = p.line + 1;
    if (num_class < 0) {
        perr(&p, header_end_line, "expected a num_class= line in the header");
        goto out;
    }
    if (max_feature_idx < 0) {
        perr(&p, header_end_line, "expected a max_feature_idx= line in the header");
        goto out;
    }
    if (ntpi < 0)
        ntpi = num_class;
    if (ntpi != num_class && ntpi != 1) {
        perr(&p, header_end_line, "num_tree_per_iteration=%d: expected 1 or num_class (%d)", ntpi,
             num_class);
        goto out;
    }
    m->num_class = num_class;
    m->num_tree_per_iteration = ntpi;
    m->num_features = max_feature_idx + 1;
    if (feature_names == NULL) {
        perr(&p, header_end_line, "expected a feature_names= line in the header");
        goto out;
    }
    if (count_tokens(feature_names) != (size_t)m->num_features) {
        perr(&p, names_line, "feature_names: expected %d names (max_feature_idx + 1), found %zu",
             m->num_features, count_tokens(feature_names));
        goto out;
    }
    m->names_buf = dup_str(feature_names);
    m->feature_names = calloc((size_t)m->num_features, sizeof(char *));
    m->objective = dup_str(objective);
    col_of = malloc((size_t)m->num_features * 4 * sizeof(int32_t));
    if (m->names_buf == NULL || m->feature_names == NULL || m->objective == NULL ||
        col_of == NULL) {
        perr(&p, names_line, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)m->num_features * 4; i++)
        col_of[i] = -1;
    {
        char *q = m->names_buf;
        for (int i = 0; i < m->num_features; i++) {
            while (*q == ' ' || *q == '\t')
                q++;
            m->feature_names[i] = q;
            while (*q && *q != ' ' && *q != '\t')
                q++;
            if (*q)
                *q++ = '\0';
        }
    }
    if (set_objective(&p, m, obj_line ? obj_line : header_end_line) != 0)
        goto out;

    /* Trees: "Tree=i" then key=value lines up to a blank line, the next tree or the end. */
    size_t tree_cap = 0;
    for (;;) {
        s = next_line(&p);
        if (s == NULL) {
            perr(&p, p.line + 1, "expected 'end of trees', found the end of the file "
                 "(truncated?)");
            goto out;
        }
        if (s[0] == '\0')
            continue;
        if (strcmp(s, "end of trees") == 0)
            break;
        if (strncmp(s, "Tree=", 5) != 0) {
            perr(&p, p.line, "expected 'Tree=%d' or 'end of trees'", m->num_trees);
            goto out;
        }
        long long idx = 0;
        const char *is = s + 5;
        if (parse_long_token(&is, 0, INT32_MAX - 1, &idx) != 0 || idx != m->num_trees) {
            perr(&p, p.line, "expected 'Tree=%d'", m->num_trees);
            goto out;
        }
        size_t tree_line = p.line;
        memset(&tt, 0, sizeof tt);
        while (!peek_prefix(&p, "Tree=") && !peek_prefix(&p, "end of trees")) {
            s = next_line(&p);
            if (s == NULL || s[0] == '\0')
                break;
            char *eq = strchr(s, '=');
            if (eq == NULL) {
                perr(&p, p.line, "Tree=%d: expected key=value", m->num_trees);
                goto out;
            }
            *eq = '\0';
            for (int k = 0; k < TK_COUNT; k++) {
                if (strcmp(s, tkey_names[k]) != 0)
                    continue;
                if (tt.val[k] != NULL) {
                    perr(&p, p.line, "Tree=%d: %s given twice", m->num_trees, s);
                    goto out;
                }
                tt.val[k] = eq + 1;
                tt.line[k] = p.line;
            }
        }
        if (grow((void **)&m->trees, &tree_cap, (size_t)m->num_trees + 1, sizeof(fsm_tree)) != 0) {
            perr(&p, tree_line, "out of memory");
            goto out;
        }
        if (add_tree(&p, m, &c, col_of, &tt, tree_line, m->num_trees) != 0)
            goto out;
        m->num_trees++;
    }
    if (m->num_trees % m->num_tree_per_iteration != 0) {
        perr(&p, p.line, "%d trees: expected a multiple of num_tree_per_iteration (%d)",
             m->num_trees, m->num_tree_per_iteration);
        goto out;
    }
    if (tree_sizes != NULL && count_tokens(tree_sizes) != (size_t)m->num_trees) {
        perr(&p, sizes_line, "tree_sizes: expected one size per tree (%d), found %zu",
             m->num_trees, count_tokens(tree_sizes));
        goto out;
    }
    m->num_iterations = m->num_trees / m->num_tree_per_iteration;
    if (fsm_build_forms(m, qs_budget, &env) != 0) {
        perr(&p, p.line, "out of memory");
        goto out;
    }
    /* The rest (feature_importances, parameters, pandas_categorical) is not needed. */
    ok = 1;
out:
    free(col_of);
    free(p.buf);
    if (!ok) {
        if (!p.failed)
            perr(&p, p.line, "could not load");
        fs_model_free(m);
        return NULL;
    }
    return m;
}

fs_model *fs_model_load_file(const char *path, char *errstr, size_t errstr_size)
{
    return fsm_load_file(path, FSM_QS_TABLE_BUDGET, errstr, errstr_size);
}

fs_model *fsm_load_file(const char *path, size_t qs_budget, char *errstr, size_t errstr_size)
{
    char why[256];
    size_t len;
    char *buf = fs_read_file(path, FSM_MAX_TEXT, &len, why, sizeof why);
    if (buf == NULL) {
        snprintf(errstr, errstr_size, "%s:0: %s", path, why);
        return NULL;
    }
    fs_model *m = fsm_load_buffer(buf, len, path, qs_budget, errstr, errstr_size);
    free(buf);
    return m;
}

void fs_model_free(fs_model *m)
{
    if (m == NULL)
        return;
    free(m->objective);
    free(m->feature_names);
    free(m->names_buf);
    free(m->trees);
    free(m->nodes);
    free(m->node_count);
    free(m->cat_off);
    free(m->cat_len);
    free(m->cat_words);
    free(m->leaf_value);
    free(m->leaf_count);
    free(m->lin_const);
    free(m->lin_off);
    free(m->lin_n);
    free(m->lin_feat);
    free(m->lin_coeff);
    free(m->col_feat);
    free(m->col_kind);
    fsm_free_forms(m);
    free(m);
}
