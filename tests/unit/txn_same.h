/*
 * txn_same: whether two transaction records are the same, bit for bit: numbers compared as
 * bits (NaN payloads included: the parsers build them the same way), strings byte for byte,
 * time and target equal. Shared by the unit tests and fuzz harnesses that compare a
 * parser's paths.
 */
#ifndef TXN_SAME_H
#define TXN_SAME_H

#include <string.h>

#include "fs_txn.h"

static inline int txn_same(const fs_txn *a, const fs_txn *b)
{
    const double na[] = {a->amount, a->lat, a->lon, a->population_city, a->merchant_lat,
                         a->merchant_lon, a->post_code};
    const double nb[] = {b->amount, b->lat, b->lon, b->population_city, b->merchant_lat,
                         b->merchant_lon, b->post_code};
    const char *sa[] = {a->transaction_time, a->merch, a->cat_id, a->name_1, a->name_2,
                        a->gender, a->street, a->one_city, a->us_state, a->jobs,
                        a->transaction_id};
    const char *sb[] = {b->transaction_time, b->merch, b->cat_id, b->name_1, b->name_2,
                        b->gender, b->street, b->one_city, b->us_state, b->jobs,
                        b->transaction_id};
    if (memcmp(na, nb, sizeof na) != 0 || a->time != b->time || a->target != b->target)
        return 0;
    for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++)
        if (strcmp(sa[i], sb[i]) != 0)
            return 0;
    return 1;
}

#endif
