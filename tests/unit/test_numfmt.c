/*
 * fs_numfmt: fs_fmt_g17 against snprintf("%.17g") and fs_fmt_shortest against the loop
 * fs_msg's out_number had (copied below as the reference), byte for byte, on millions of
 * doubles: random bit patterns over every exponent, scores, values next to every power of
 * ten, short decimals (amounts, coordinates) and their neighbours, integers below and above
 * 2^53, exact ties at 15, 16 and 17 digits, subnormals and the special values.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fs_numfmt.h"

/* The reference: out_number's loop before fs_numfmt. */
static void shortest_ref(double v, char *num, size_t cap)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, cap, "%.*g", prec, v);
        if (prec == 17 || strtod(num, NULL) == v)
            break;
    }
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static long compared;

static void report(const char *what, double v, const char *got, size_t got_len,
                   const char *want)
{
    check_count++;
    if (strcmp(got, want) == 0 && got_len == strlen(want))
        return;
    if (check_failures < 20)
        fprintf(stderr, "%s(%a): \"%s\" (length %zu), want \"%s\"\n", what, v, got, got_len,
                want);
    check_failures++;
}

/* %.17g only (the cheaper half, for the bulk of the random values). */
static void check_g17(double v)
{
    char got[FS_FMT_CAP], want[64];
    memset(got, 'x', sizeof got);
    size_t n = fs_fmt_g17(v, got);
    snprintf(want, sizeof want, "%.17g", v);
    report("fs_fmt_g17", v, got, n, want);
    compared++;
}

static void check_both(double v)
{
    char got[FS_FMT_CAP], want[64];
    check_g17(v);
    memset(got, 'x', sizeof got);
    size_t n = fs_fmt_shortest(v, got);
    shortest_ref(v, want, sizeof want);
    report("fs_fmt_shortest", v, got, n, want);
    compared++;
}

/* v, -v and a few neighbours on each side. */
static void check_around(double v, int steps)
{
    double up = v, down = v;
    check_both(v);
    check_both(-v);
    for (int i = 0; i < steps; i++) {
        up = nextafter(up, INFINITY);
        down = nextafter(down, -INFINITY);
        check_both(up);
        check_both(down);
    }
}

static void test_special(void)
{
    const double vals[] = {0.0,          -0.0,       1.0,       -1.0,      0.1,     0.5,
                           0.25,         1e-6,       1e-7,      0.3,       2.0 / 3, 123.45,
                           40.7128,      -73.9352,   62701.0,   1e15,      1e16,    1e17,
                           1e22,         1e23,       DBL_MAX,   -DBL_MAX,  DBL_MIN, DBL_TRUE_MIN,
                           DBL_EPSILON,  9007199254740992.0,    9007199254740993.0,
                           9.9999999999999995e-5,   9.9999999999999995e-8,
                           0.99999999999999989,     0.99999999999999994, 9.5,
                           999999999999999.9,       99999999999999999.0,
                           1.7014118346046923e38,   1.7014118346046921e38,
                           1.1102230246251565e-16,  1.1102230246251564e-16,
                           INFINITY,     -INFINITY,  NAN,       -NAN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        check_both(vals[i]);
    /* Every power of two, normal and subnormal. */
    for (int e = -1074; e <= 1023; e++)
        check_around(ldexp(1.0, e), 1);
    /* Next to every power of ten (as strtod reads "1e<k>"), where carries happen. */
    for (int k = -323; k <= 308; k++) {
        char s[16];
        snprintf(s, sizeof s, "1e%d", k);
        check_around(strtod(s, NULL), 6);
        snprintf(s, sizeof s, "9.5e%d", k);
        check_around(strtod(s, NULL), 3);
        snprintf(s, sizeof s, "5e%d", k);
        check_around(strtod(s, NULL), 3);
    }
}

/* Random bit patterns: every exponent, subnormals, NaN and inf included. */
static void test_random_bits(uint64_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t bits = mix(s);
        /* Three in four inside the exact range 2^-53 .. 2^127 (biased exponents 970..1149),
         * where fs_numfmt computes the digits itself; the rest anywhere (snprintf there). */
        if (i % 4 != 3)
            bits = (bits & 0x800FFFFFFFFFFFFFull) | ((uint64_t)(970 + (bits >> 52) % 180) << 52);
        double v = from_bits(bits);
        if (i % 4 == 0)
            check_both(v);
        else
            check_g17(v);
    }
}

/* Scores: uniform in [0, 1), log-uniform in [1e-9, 1] (sigmoid tails), uniform in
 * [1e-7, 1e-3]. */
static void test_scores(uint64_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t r = mix(s);
        double u = (double)(r >> 11) / 9007199254740992.0;
        double v;
        switch (i % 3) {
        case 0: v = u; break;
        case 1: v = pow(10.0, -9.0 * u); break;
        default: v = 1e-7 + u * (1e-3 - 1e-7); break;
        }
        if (i % 4 == 0)
            check_both(v);
        else
            check_g17(v);
    }
}

/* n / 10^k for random n of 1..17 digits and k in 0..12: amounts (k = 2), coordinates
 * (k = 4..6), negative ones, and their neighbours (the 16- and 17-digit cases). */
static void test_decimals(uint64_t *s, int n)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,
                                 1e7, 1e8, 1e9, 1e10, 1e11, 1e12};
    for (int i = 0; i < n; i++) {
        uint64_t r = mix(s);
        int digits = 1 + (int)(r % 17);
        uint64_t lim = 1;
        for (int d = 0; d < digits; d++)
            lim *= 10;
        uint64_t num = mix(s) % lim;
        int k = (int)((r >> 8) % 13);
        if (i % 4 == 1) { /* an amount */
            num = mix(s) % 100000000;
            k = 2;
        } else if (i % 4 == 2) { /* a coordinate */
            num = mix(s) % 1800000000;
            k = 4 + (int)((r >> 8) % 3);
        }
        double v = (double)num / p10[k];
        if (r & (1ull << 40))
            v = -v;
        check_both(v);
        if (i % 8 == 0) {
            check_both(nextafter(v, INFINITY));
            check_both(nextafter(v, -INFINITY));
        }
    }
}

/* Integers: random below 2^53, random m * 2^e above (up to 2^80), and 10^k * small. */
static void test_integers(uint64_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t r = mix(s);
        double v;
        if (i % 2 == 0)
            v = (double)(r >> (11 + (r & 31)));
        else
            v = ldexp((double)(r >> 11), (int)(r % 80));
        check_both(v);
    }
    /* fs_profile_key writes post codes with fs_fmt_g17, where it had %.0f for integers below
     * 1e15: the same text. */
    for (int i = 0; i < n; i++) {
        uint64_t r = mix(s);
        double v = (double)(r % 1000000000000000ull) / (double)(1ull << (r >> 60));
        v = floor(r & (1ull << 58) ? -v : v);
        if (i == 0)
            v = -0.0;
        char got[FS_FMT_CAP], want[64];
        size_t len = fs_fmt_g17(v, got);
        snprintf(want, sizeof want, "%.0f", v);
        report("fs_fmt_g17 vs %.0f", v, got, len, want);
    }
}

/* Exact ties: a = j / 2^(p+1) with j odd has a * 10^p = j * 5^p / 2, a half; choosing j so
 * that j * 5^p / 2 has d integer digits puts the tie at the d-th significant digit. */
static void test_ties(uint64_t *s)
{
    for (int d = 15; d <= 17; d++) {
        for (int p = 1; p <= 24; p++) {
            double lo = 2.0 * pow(10.0, d - 1) / pow(5.0, p);
            double hi = 2.0 * pow(10.0, d) / pow(5.0, p);
            if (lo < 1.0)
                lo = 1.0;
            if (hi > 9007199254740992.0)
                hi = 9007199254740992.0;
            if (hi <= lo + 2)
                continue;
            for (int i = 0; i < 200; i++) {
                uint64_t j = (uint64_t)lo + mix(s) % (uint64_t)(hi - lo);
                j |= 1;
                if ((double)j >= hi)
                    continue;
                check_both(ldexp((double)j, -(p + 1)));
                check_both(-ldexp((double)j, -(p + 1)));
            }
        }
    }
}

int main(int argc, char **argv)
{
    /* The default sizes (5 million formats) keep the run near 6 s under ASan; a scale as the
     * first argument runs more (test_numfmt 20). */
    int scale = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 1;
    if (scale < 1)
        scale = 1;
    uint64_t s = 20240601;
    test_special();
    test_ties(&s);
    test_random_bits(&s, 1200000 * scale);
    test_scores(&s, 1200000 * scale);
    test_decimals(&s, 600000 * scale);
    test_integers(&s, 300000 * scale);
    printf("%ld formats compared\n", compared);
    return CHECK_DONE();
}
