/*
 * Fuzz harness for the scoring message parser. Its two paths must agree: the public
 * fs_msg_parse_scoring gives the jansson reference path's answer on every input (same
 * return, same fields, same error text), and whatever the allocation-free fast path accepts
 * the reference accepts with the same fields (the transaction block and the reasons text
 * included). An accepted message formats back (with its block and reasons) and parses to
 * the same content: id, score bit for bit, flag, strings, amount bit for bit, reasons.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/scoring_same.h"
#include "fs_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fs_scoring_msg a, b, r, f;
    static char buf[FS_MSG_SCORING_MAX];
    char err[512] = "", ref_err[512] = "";
    const char *msg = (const char *)data;
    int rc = fs_msg_parse_scoring(msg, size, &a, err, sizeof err);
    int ref = fs_msg_parse_scoring_ref(msg, size, &r, ref_err, sizeof ref_err);
    if (rc != ref || (rc != 0 && strcmp(err, ref_err) != 0) || (rc == 0 && !scoring_same(&a, &r)))
        abort(); /* the public parser must be the reference */
    if (fs_msg_parse_scoring_fast(msg, size, &f) && (ref != 0 || !scoring_same(&f, &r)))
        abort(); /* the fast path accepted what the reference refuses, or differently */
    if (rc != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    if (a.score < 0.0 || a.score > 1.0 || (a.fraud_flag != 0 && a.fraud_flag != 1))
        abort();
    fs_scoring_txn block;
    fs_scoring_txn_of_msg(&block, &a);
    int n = fs_msg_format_scoring_full(buf, sizeof buf, a.transaction_id, a.score, a.fraud_flag,
                                       a.has_transaction ? &block : NULL,
                                       fs_scoring_reasons(&a, NULL));
    if (n < 0)
        abort();
    if (fs_msg_parse_scoring(buf, (size_t)n, &b, err, sizeof err) != 0)
        abort();
    if (!scoring_same(&a, &b))
        abort();
    return 0;
}
