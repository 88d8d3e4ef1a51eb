/*
 * Data-driven fs_msg cases: data/msg_cases.txt holds scoring and transactions messages with
 * the error expected, or "ok" and the canonical message formatted back from the parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_msg.h"
#include "scoring_same.h"

int main(void)
{
    FILE *f = fopen("data/msg_cases.txt", "r");
    CHECK(f != NULL);
    if (f == NULL)
        return CHECK_DONE();
    static char line[16384], got[1024], canon[16384];
    static fs_txn t;
    int cases = 0, lineno = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        char err[512];
        if (strncmp(line, "scoring: ", 9) == 0) {
            static fs_scoring_msg m, back;
            canon[0] = '\0';
            if (fs_msg_parse_scoring(line + 9, n - 9, &m, err, sizeof err) == 0) {
                snprintf(got, sizeof got, "ok");
                fs_scoring_txn block;
                fs_scoring_txn_of_msg(&block, &m);
                int k = fs_msg_format_scoring_full(canon, sizeof canon, m.transaction_id, m.score,
                                                   m.fraud_flag,
                                                   m.has_transaction ? &block : NULL,
                                                   fs_scoring_reasons(&m, NULL));
                CHECK(k > 0);
                /* The canonical form reads back to the same content. */
                CHECK(k > 0 && fs_msg_parse_scoring(canon, (size_t)k, &back, err, sizeof err) == 0 &&
                      scoring_same(&m, &back));
            } else {
                snprintf(got, sizeof got, "%s", err);
            }
            cases++;
        } else if (strncmp(line, "transaction: ", 13) == 0) {
            canon[0] = '\0';
            if (fs_msg_parse_transaction(line + 13, n - 13, &t, err, sizeof err) == 0) {
                snprintf(got, sizeof got, "ok");
                CHECK(fs_msg_format_transaction(canon, sizeof canon, t.transaction_id, &t) > 0);
            } else {
                snprintf(got, sizeof got, "%s", err);
            }
            cases++;
        } else if (strncmp(line, "want: ", 6) == 0) {
            const char *want = line + 6;
            int ok = strncmp(want, "not JSON: ", 10) == 0
                         ? strncmp(got, want, strlen(want)) == 0
                         : strcmp(got, want) == 0;
            CHECK(ok);
            if (!ok)
                fprintf(stderr, "  data/msg_cases.txt:%d: got \"%s\"\n", lineno, got);
        } else if (strncmp(line, "canon: ", 7) == 0) {
            CHECK_EQ_STR(canon, line + 7);
            if (strcmp(canon, line + 7) != 0)
                fprintf(stderr, "  data/msg_cases.txt:%d\n", lineno);
        }
    }
    fclose(f);
    printf("%d cases\n", cases);
    CHECK(cases >= 25);
    return CHECK_DONE();
}
