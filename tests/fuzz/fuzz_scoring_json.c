/*
 * Fuzz harness for the scoring message parser: an accepted message formats back and parses
 * to the same id, the same score bit for bit and the same flag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fs_scoring_msg a, b;
    char buf[FS_MSG_SCORING_MAX];
    char err[512];
    if (fs_msg_parse_scoring((const char *)data, size, &a, err, sizeof err) != 0) {
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
