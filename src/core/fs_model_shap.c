/*
 * fs_model contributions: TreeSHAP (Lundberg et al., arXiv:1706.06060) as LightGBM's
 * Tree::PredictContrib computes it: per tree, the bias column receives the tree's expected
 * value (leaf values weighted by leaf_count / internal_count of the root) and each feature
 * its Shapley value, following the hot branch the row takes and weighting the cold branch by
 * the training counts. The arithmetic follows the same order as LightGBM's so results agree
 * far below the 1e-9 the contract asks.
 */
#include <stdlib.h>
#include <string.h>

#include "fs_model_impl.h"

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
