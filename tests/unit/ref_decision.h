/*
 * ref_decision: LightGBM's numerical split rule (Tree::NumericalDecision, predictor side),
 * written from its documented behaviour, independent of the engine, for the tests that
 * compare the engine's forms against a reference walker, and the generator and threshold
 * pool those tests draw their random models from.
 *   dtype: decision_type; bit 1 = default_left, bits 2-3 = missing type (0 None, 1 Zero,
 *   2 NaN).
 */
#ifndef REF_DECISION_H
#define REF_DECISION_H

#include <math.h>

/* The predictor first turns every |x| <= kZeroThreshold (the float 1e-35f) into 0.0. */
static inline double ref_base(double x)
{
    return fabs(x) <= (double)1e-35f ? 0.0 : x;
}

/* 1 = the row goes left at a node with threshold thr and decision type dtype. */
static inline int ref_left(double v, double thr, int dtype)
{
    int missing = (dtype >> 2) & 3, default_left = (dtype >> 1) & 1;
    if (missing != 2 && isnan(v))
        v = 0.0;
    if ((missing == 1 && fabs(v) <= (double)1e-35f) || (missing == 2 && isnan(v)))
        return default_left;
    return v <= thr;
}

/* Deterministic xorshift generator: a number in [0, n); each test keeps its own state. */
static inline unsigned ref_rnd(unsigned long long *state, unsigned n)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (unsigned)(*state % n);
}

/* Thresholds a tree may use: duplicates, both zeros, values around kZeroThreshold (the float
 * 1e-35f widened is 1.0000000180025095e-35), huge and tiny. */
static const double ref_thr_pool[] = {0.0,   -0.0,   0.5, -0.5, 1e-35,  -1e-35, 1.0000000180025095e-35,
                                      2.5,   -3.25,  100, 1e300, -1e300, 0.1,   7.0,
                                      1e-300, -7.0};
#define REF_NPOOL (unsigned)(sizeof ref_thr_pool / sizeof ref_thr_pool[0])

#endif
