/*
 * ref_decision: LightGBM's numerical split rule (Tree::NumericalDecision, predictor side),
 * written from its documented behaviour, independent of the engine, for the tests that
 * compare the engine's forms against a reference walker.
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

#endif
