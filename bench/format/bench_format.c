/* CPU time per number of fs_numfmt's formatters against the snprintf code they replace,
 * both measured in the same run (CPU time of this process, so a loaded machine slows both
 * alike), on the kinds of numbers the messages carry:
 *   scores         full-precision sigmoid outputs in [1e-6, 1]   fs_fmt_g17 vs "%.17g"
 *   amounts        n / 100 up to 100,000                         fs_fmt_shortest vs the loop
 *   coordinates    n / 10^4 in [-180, 180]                       (the loop: %.15g, %.16g,
 *   integers       populations, post codes                        %.17g until strtod reads
 *   contributions  full-precision values in [-5, 5]               the text back as v)
 * and whole scoring messages (fs_msg_format_scoring, µs per message, no baseline).
 *   fd_bench_format [ROUNDS]      (default 20)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fs_msg.h"
#include "fs_numfmt.h"

#define NVALS 4096

static size_t sink;

/* The reference: fs_msg's out_number loop before fs_numfmt. */
static size_t shortest_ref(double v, char *num)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(num, FS_FMT_CAP, "%.*g", prec, v);
        if (prec == 17 || strtod(num, NULL) == v)
            break;
    }
    return (size_t)n;
}

static size_t g17_ref(double v, char *num)
{
    return (size_t)snprintf(num, FS_FMT_CAP, "%.17g", v);
}

typedef size_t (*fmt_fn)(double, char *);

/* Nanoseconds of CPU time per call of fn over vals, rounds times. */
static double time_fmt(fmt_fn fn, const double *vals, int rounds)
{
    char num[FS_FMT_CAP];
    double t0 = bench_cpu_seconds();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < NVALS; i++)
            sink += fn(vals[i], num) + (unsigned char)num[0];
    return (bench_cpu_seconds() - t0) / ((double)NVALS * rounds) * 1e9;
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unit(uint64_t *s)
{
    return (double)(mix(s) >> 11) / 9007199254740992.0;
}

static void bench_one(const char *name, fmt_fn ref, const char *ref_name, fmt_fn fast,
                      const char *fast_name, const double *vals, int rounds)
{
    /* Both once first (warm caches), then the rounds alternate between the two, so a
     * change of the machine's speed meanwhile (a VM's host) weighs on both alike. */
    time_fmt(ref, vals, 1);
    time_fmt(fast, vals, 1);
    double tr = 0, tf = 0;
    for (int r = 0; r < rounds; r++) {
        tr += time_fmt(ref, vals, 1) / rounds;
        tf += time_fmt(fast, vals, 1) / rounds;
    }
    printf("%-14s %s %6.1f ns, %s %6.1f ns, ratio %.2fx\n", name, ref_name, tr, fast_name, tf,
           tr / tf);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 20;
    if (rounds < 1) {
        fprintf(stderr, "usage: fd_bench_format [ROUNDS]\n");
        return 2;
    }
    static double scores[NVALS], amounts[NVALS], coords[NVALS], ints[NVALS], contribs[NVALS];
    uint64_t s = 7;
    for (int i = 0; i < NVALS; i++) {
        /* A sigmoid of a logit in [-13.8, 4]: scores from 1e-6 up to 0.98, mostly small. */
        scores[i] = 1.0 / (1.0 + exp(13.8 - 17.8 * unit(&s)));
        amounts[i] = (double)(mix(&s) % 10000000) / 100.0;
        coords[i] = (double)((int64_t)(mix(&s) % 3600001) - 1800000) / 1e4;
        ints[i] = i % 2 ? (double)(mix(&s) % 100000) : (double)(mix(&s) % 3000000);
        contribs[i] = (unit(&s) - 0.5) * 10.0 * unit(&s);
    }
    char model[256];
    int avx512;
    bench_cpu_info(model, sizeof model, &avx512);
    printf("cpu: %s (AVX-512: %s)\n", model, avx512 ? "yes" : "no");
    printf("%d values x %d rounds per row, CPU time per number\n", NVALS, rounds);
    bench_one("scores", g17_ref, "snprintf %.17g", fs_fmt_g17, "fs_fmt_g17", scores, rounds);
    bench_one("amounts", shortest_ref, "loop", fs_fmt_shortest, "fs_fmt_shortest", amounts,
              rounds);
    bench_one("coordinates", shortest_ref, "loop", fs_fmt_shortest, "fs_fmt_shortest", coords,
              rounds);
    bench_one("integers", shortest_ref, "loop", fs_fmt_shortest, "fs_fmt_shortest", ints,
              rounds);
    bench_one("contributions", shortest_ref, "loop", fs_fmt_shortest, "fs_fmt_shortest",
              contribs, rounds);

    char buf[FS_MSG_SCORING_MAX];
    double t0 = bench_cpu_seconds();
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < NVALS; i++)
            sink += (size_t)fs_msg_format_scoring(buf, sizeof buf, "0b6d2c1e-4f7a-4c1e-9d3b-"
                                                                   "5a8e7f6c2d10",
                                                  scores[i], scores[i] >= 0.5);
    printf("scoring message (fs_msg_format_scoring): %.1f ns\n",
           (bench_cpu_seconds() - t0) / ((double)NVALS * rounds) * 1e9);
    printf("(checksum %zu)\n", sink);
    return 0;
}
