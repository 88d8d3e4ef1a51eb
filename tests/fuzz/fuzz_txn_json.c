/*
 * Fuzz harness for the transactions message parser. Its two paths must agree: the public
 * fs_msg_parse_transaction gives the jansson reference path's answer on every input (same
 * return, same record, same error text), and whatever the allocation-free fast path accepts
 * the reference accepts with the same record. Then any accepted message must format back
 * into a message that parses to the same record, and formatting that record again must give
 * the same bytes (the canonical form is a fixed point).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_msg.h"
#include "fs_txn.h"
#include "../unit/txn_same.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_num(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fs_txn t, u, r, f;
    static char one[16384], two[16384];
    char err[512] = "", ref_err[512] = "";
    const char *msg = (const char *)data;
    int rc = fs_msg_parse_transaction(msg, size, &t, err, sizeof err);
    int ref = fs_msg_parse_transaction_ref(msg, size, &r, ref_err, sizeof ref_err);
    if (rc != ref || (rc != 0 && strcmp(err, ref_err) != 0) || (rc == 0 && !txn_same(&t, &r)))
        abort(); /* the public parser must be the reference */
    if (fs_msg_parse_transaction_fast(msg, size, &f) && (ref != 0 || !txn_same(&f, &r)))
        abort(); /* the fast path accepted what the reference refuses, or differently */
    if (rc != 0) {
        if (err[0] == '\0')
            abort(); /* every refusal says why */
        return 0;
    }
    int n = fs_msg_format_transaction(one, sizeof one, t.transaction_id, &t);
    if (n < 0)
        abort();
    if (fs_msg_parse_transaction(one, (size_t)n, &u, err, sizeof err) != 0)
        abort();
    if (u.time != t.time || strcmp(u.transaction_id, t.transaction_id) != 0 ||
        !same_num(u.amount, t.amount) || !same_num(u.lat, t.lat) || !same_num(u.lon, t.lon) ||
        !same_num(u.post_code, t.post_code) || !same_num(u.population_city, t.population_city) ||
        !same_num(u.merchant_lat, t.merchant_lat) || !same_num(u.merchant_lon, t.merchant_lon) ||
        strcmp(u.merch, t.merch) != 0 || strcmp(u.jobs, t.jobs) != 0 ||
        strcmp(u.street, t.street) != 0 || strcmp(u.transaction_time, t.transaction_time) != 0)
        abort(); /* target is not part of the message: a label never travels to scoring */
    int m = fs_msg_format_transaction(two, sizeof two, u.transaction_id, &u);
    if (m != n || memcmp(one, two, (size_t)n) != 0)
        abort();
    json_t *j = fs_txn_to_json(&t);
    if (j == NULL)
        abort();
    json_decref(j);
    return 0;
}
