/*
 * scoring_same: 1 if two parsed scoring messages hold the same content (id, score bit for
 * bit, flag, the transaction block's presence, strings, null markers and amount bit for
 * bit, the reasons text), whatever the layout of their text buffers. For the unit tests and
 * the fuzz harness.
 */
#ifndef FS_TEST_SCORING_SAME_H
#define FS_TEST_SCORING_SAME_H

#include <string.h>

#include "fs_msg.h"

static inline int scoring_same(const fs_scoring_msg *a, const fs_scoring_msg *b)
{
    if (strcmp(a->transaction_id, b->transaction_id) != 0 ||
        memcmp(&a->score, &b->score, sizeof a->score) != 0 || a->fraud_flag != b->fraud_flag ||
        a->has_transaction != b->has_transaction || a->str_null != b->str_null ||
        memcmp(&a->amount, &b->amount, sizeof a->amount) != 0)
        return 0;
    for (int f = 0; f < FS_SC_NSTR; f++)
        if (strcmp(fs_scoring_str(a, (enum fs_scoring_str)f),
                   fs_scoring_str(b, (enum fs_scoring_str)f)) != 0)
            return 0;
    size_t la = 0, lb = 0;
    const char *ra = fs_scoring_reasons(a, &la), *rb = fs_scoring_reasons(b, &lb);
    if ((ra == NULL) != (rb == NULL))
        return 0;
    return ra == NULL || (la == lb && memcmp(ra, rb, la) == 0);
}

#endif
