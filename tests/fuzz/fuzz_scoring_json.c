/*
 * Fuzz harness for the scoring message parser. Its two paths must agree: the public
 * fs_msg_parse_scoring gives the jansson reference path's answer on every input (same
 * return, same fields, same error text), and whatever the allocation-free fast path accepts
 * the reference accepts with the same fields. An accepted message formats back and parses
 * to the same id, the same score bit for bit and the same flag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_msg(const fs_scoring_msg *a, const fs_scoring_msg *b)
{
    return strcmp(a->transaction_id, b->transaction_id) == 0 &&
           memcmp(&a->score, &b->score, sizeof a->score) == 0 && a->fraud_flag == b->fraud_flag;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fs_scoring_msg a, b, r, f;
    char buf[FS_MSG_SCORING_MAX];
    char err[512] = "", ref_err[512] = "";
    const char *msg = (const char *)data;
    int rc = fs_msg_parse_scoring(msg, size, &a, err, sizeof err);
    int ref = fs_msg_parse_scoring_ref(msg, size, &r, ref_err, sizeof ref_err);
    if (rc != ref || (rc != 0 && strcmp(err, ref_err) != 0) || (rc == 0 && !same_msg(&a, &r)))
        abort(); /* the public parser must be the reference */
    if (fs_msg_parse_scoring_fast(msg, size, &f) && (ref != 0 || !same_msg(&f, &r)))
        abort(); /* the fast path accepted what the reference refuses, or differently */
    if (rc != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    if (a.score < 0.0 || a.score > 1.0 || (a.fraud_flag != 0 && a.fraud_flag != 1))
        abort();
    int n = fs_msg_format_scoring(buf, sizeof buf, a.transaction_id, a.score, a.fraud_flag);
    if (n < 0)
        abort();
    if (fs_msg_parse_scoring(buf, (size_t)n, &b, err, sizeof err) != 0)
        abort();
    if (strcmp(a.transaction_id, b.transaction_id) != 0 ||
        memcmp(&a.score, &b.score, sizeof a.score) != 0 || a.fraud_flag != b.fraud_flag)
        abort();
    return 0;
}
