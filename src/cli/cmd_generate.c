/*
 * fraudctl generate: synthetic labelled transactions (fs_gen) as CSV in the train.csv
 * schema (or test.csv with --no-target).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_io.h"
#include "fraudctl.h"
#include "fs_gen.h"
#include "fs_txn.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fraudctl generate --rows N [--seed S] [--output FILE] [--start YYYY-MM-DD]\n"
            "                         [--fraud-rate R] [--customers N] [--merchants N]\n"
            "                         [--no-target]\n"
            "\n"
            "Writes N synthetic transactions in chronological order as CSV (train.csv columns:\n"
            "the 17 test.csv columns, then target). Same options, same bytes.\n"
            "\n"
            "  --rows N          rows to write (required)\n"
            "  --seed S          random seed, 0..2^64-1 (default 1)\n"
            "  --output FILE     write to FILE instead of stdout\n"
            "  --start DATE      first day, YYYY-MM-DD (default 2019-01-01)\n"
            "  --fraud-rate R    share of fraud rows, 0..0.5 (default 0.005)\n"
            "  --customers N     cards in the simulated world, 1..100000 (default 1000)\n"
            "  --merchants N     merchants, 14..10000 (default 700)\n"
            "  --no-target       leave out the target column (the test.csv schema)\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (parse_u64(s, &v) != 0 || v < (uint64_t)lo || v > (uint64_t)hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cmd_generate(int argc, char **argv)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    uint64_t rows = 0;
    int have_rows = 0, with_target = 1;
    const char *output = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return FS_EXIT_OK;
        } else if (strcmp(a, "--no-target") == 0) {
            with_target = 0;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "fraudctl generate: %s needs a value\n", a);
            return FS_EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "--rows") == 0) {
            if (parse_u64(v, &rows) != 0) {
                fprintf(stderr, "fraudctl generate: --rows: expected a count, got '%s'\n", v);
                return FS_EXIT_USAGE;
            }
            have_rows = 1;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(v, &o.seed) != 0) {
                fprintf(stderr, "fraudctl generate: --seed: expected 0..2^64-1, got '%s'\n", v);
                return FS_EXIT_USAGE;
            }
        } else if (strcmp(a, "--output") == 0) {
            output = v;
        } else if (strcmp(a, "--start") == 0) {
            char buf[32];
            int64_t t;
            int n = snprintf(buf, sizeof buf, "%s 00:00", v);
            if (strlen(v) != 10 || n < 0 || (size_t)n >= sizeof buf ||
                fs_parse_time(buf, (size_t)n, &t) != 0) {
                fprintf(stderr, "fraudctl generate: --start: expected YYYY-MM-DD, got '%s'\n",
                        v);
                return FS_EXIT_USAGE;
            }
            o.start = t;
        } else if (strcmp(a, "--fraud-rate") == 0) {
            double r;
            char err[128];
            if (fs_parse_number(v, strlen(v), &r, err, sizeof err) != 0 || isnan(r) ||
                r < 0.0 || r > 0.5) {
                fprintf(stderr, "fraudctl generate: --fraud-rate: expected 0..0.5, got '%s'\n",
                        v);
                return FS_EXIT_USAGE;
            }
            o.fraud_rate = r;
        } else if (strcmp(a, "--customers") == 0) {
            if (parse_int(v, 1, 100000, &o.customers) != 0) {
                fprintf(stderr, "fraudctl generate: --customers: expected 1..100000, got '%s'\n",
                        v);
                return FS_EXIT_USAGE;
            }
        } else if (strcmp(a, "--merchants") == 0) {
            if (parse_int(v, FS_GEN_NCATEGORIES, 10000, &o.merchants) != 0) {
                fprintf(stderr, "fraudctl generate: --merchants: expected %d..10000, got '%s'\n",
                        FS_GEN_NCATEGORIES, v);
                return FS_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "fraudctl generate: unknown option '%s'\n", a);
            usage(stderr);
            return FS_EXIT_USAGE;
        }
    }
    if (!have_rows) {
        fprintf(stderr, "fraudctl generate: --rows is required\n");
        usage(stderr);
        return FS_EXIT_USAGE;
    }
    int rc = FS_EXIT_FAILURE;
    char err[256];
    FILE *out = cli_open_output("generate", output);
    if (out == NULL)
        return FS_EXIT_FAILURE;
    static char obuf[1 << 16];
    setvbuf(out, obuf, _IOFBF, sizeof obuf);
    if (fs_gen_write_csv(out, &o, rows, with_target, err, sizeof err) != 0) {
        fprintf(stderr, "fraudctl generate: %s: %s\n", cli_name(output, "stdout"), err);
        goto out;
    }
    rc = FS_EXIT_OK;
out:
    if (rc != FS_EXIT_OK)
        cli_discard_output(out);
    else if (cli_close_output("generate", output, out) != 0)
        rc = FS_EXIT_FAILURE;
    return rc;
}
