/* Per-message CPU time of the Kafka message parsers: the jansson reference path against the
 * public entry point (allocation-free fast path, reference as fallback), on the generated
 * transactions messages and on scoring messages formatted from them. Prints µs per message
 * and the ratio, both measured in the same run (CPU time of this process, so a loaded
 * machine slows both alike).
 *   fd_bench_parse [MESSAGES.jsonl] [ROUNDS]
 * (defaults tests/unit/data/msg_generated.jsonl and 200; run from the repository root)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fs_msg.h"

#define MAX_MSGS 4096
#define MAX_LEN 8192

static char *msgs[MAX_MSGS], *scs[MAX_MSGS];
static size_t lens[MAX_MSGS], sc_lens[MAX_MSGS];

typedef int (*txn_fn)(const char *, size_t, fs_txn *, char *, size_t);
typedef int (*sc_fn)(const char *, size_t, fs_scoring_msg *, char *, size_t);

static double time_txn(txn_fn fn, int n, int rounds, int *fails)
{
    static fs_txn t;
    char err[256];
    *fails = 0;
    double t0 = bench_cpu_seconds();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            *fails += fn(msgs[i], lens[i], &t, err, sizeof err) != 0;
    return (bench_cpu_seconds() - t0) / ((double)n * rounds) * 1e6;
}

static double time_sc(sc_fn fn, int n, int rounds, int *fails)
{
    fs_scoring_msg s;
    char err[256];
    *fails = 0;
    double t0 = bench_cpu_seconds();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            *fails += fn(scs[i], sc_lens[i], &s, err, sizeof err) != 0;
    return (bench_cpu_seconds() - t0) / ((double)n * rounds) * 1e6;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "tests/unit/data/msg_generated.jsonl";
    int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 200;
    FILE *f = fopen(path, "r");
    if (f == NULL || rounds < 1) {
        fprintf(stderr, "fd_bench_parse: cannot open %s (or bad ROUNDS)\n", path);
        return 2;
    }
    static char line[MAX_LEN];
    static fs_txn t;
    int n = 0;
    char err[256];
    while (n < MAX_MSGS && fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, "\n");
        msgs[n] = malloc(len + 1);
        scs[n] = malloc(FS_MSG_SCORING_MAX);
        if (msgs[n] == NULL || scs[n] == NULL)
            return 2;
        memcpy(msgs[n], line, len);
        lens[n] = len;
        if (fs_msg_parse_transaction_ref(line, len, &t, err, sizeof err) != 0) {
            fprintf(stderr, "fd_bench_parse: %s line %d: %s\n", path, n + 1, err);
            return 2;
        }
        /* A score with 17 significant digits, as the detector writes them. */
        double score = (double)(n * 7919 % 10007) / 10007.0;
        int m = fs_msg_format_scoring(scs[n], FS_MSG_SCORING_MAX, t.transaction_id, score,
                                      score >= 0.95);
        if (m < 0)
            return 2;
        sc_lens[n] = (size_t)m;
        n++;
    }
    fclose(f);
    int fb, fn;
    double tb = time_txn(fs_msg_parse_transaction_ref, n, rounds, &fb);
    double tn = time_txn(fs_msg_parse_transaction, n, rounds, &fn);
    printf("transactions: %d messages x %d rounds: reference %.3f us/msg, "
           "fs_msg_parse_transaction %.3f us/msg, ratio %.2fx (refusals %d/%d)\n",
           n, rounds, tb, tn, tb / tn, fb, fn);
    double sb = time_sc(fs_msg_parse_scoring_ref, n, rounds * 4, &fb);
    double sn = time_sc(fs_msg_parse_scoring, n, rounds * 4, &fn);
    printf("scoring:      %d messages x %d rounds: reference %.3f us/msg, "
           "fs_msg_parse_scoring %.3f us/msg, ratio %.2fx (refusals %d/%d)\n",
           n, rounds * 4, sb, sn, sb / sn, fb, fn);
    for (int i = 0; i < n; i++) {
        free(msgs[i]);
        free(scs[i]);
    }
    return 0;
}
