/*
 * fs_numfmt: %.17g and the shortest round-trip text of a double, exactly, with integers.
 *
 * The exact scaling. A positive normal double is a = m * 2^e with 2^52 <= m < 2^53 and
 * E = e + 52 its binary exponent (2^E <= a < 2^(E+1)). With k = floor(E * log10(2)),
 * 10^k <= 2^E <= a < 2^(E+1) <= 2 * 10^(k+1), so with p = 16 - k
 *     10^16 <= a * 10^p < 2 * 10^17.
 * decompose() computes q = floor(a * 10^p) and where the dropped fraction f lies against
 * 1/2, exactly:
 *   - p >= 0: a * 10^p = m * 5^p * 2^(p+e). For p <= 32, m * 5^p < 2^53 * 5^32 < 2^128 fits
 *     an unsigned 128-bit integer; if p + e >= 0 it is shifted left (the result is q < 2^58),
 *     else q = n >> s, f = (n mod 2^s) / 2^s with s = -(p+e) (s <= 73 in this range).
 *   - p < 0 (a >= 10^17): a is the integer m * 2^e, which fits 128 bits for e <= 74, and
 *     q = (m << e) / 10^-p, f = remainder / 10^-p, with 10^-p <= 10^21 < 2^70.
 * p <= 32 is k >= -16, i.e. E >= -53; e <= 74 is E <= 126. So the exact range is
 * 2^-53 <= a < 2^127 (about 1.1e-16 .. 1.7e38): zero, subnormals and values outside go to
 * snprintf. decompose() also checks q against [10^16, 2 * 10^17) at run time, so an
 * off-by-one k can only send a value to snprintf, never produce wrong digits.
 *
 * Rounding to n <= 17 significant digits (round_to): q has 17 or 18 digits; the digits
 * dropped from q and the sticky fraction f decide, to nearest, ties (exactly half, f = 0) to
 * even, which is what glibc's printf does with the exact binary value in the default
 * rounding mode. A carry to 10^n is 10^(n-1) with the exponent one up (9.99..95e-5 ->
 * 0.0001). Then %g's layout (write_g): fixed notation when -4 <= X < n, else d.ddde+XX with
 * at least two exponent digits; trailing zeros and a bare '.' dropped.
 *
 * Reading back (fs_fmt_shortest). The text of n digits D and exponent X is the decimal
 * D * 10^j, j = X - n + 1, exactly. glibc's strtod rounds that decimal correctly (to
 * nearest). When D <= 2^53 and |j| <= 22, D and 10^|j| are both doubles exactly, and IEEE
 * multiplication or division of exact operands is correctly rounded too (with
 * FLT_EVAL_METHOD 0: no wider intermediate), so (double)D * 10^j (or / 10^-j) equals what
 * strtod would return: one multiplication or division decides "reads back" without strtod.
 * Outside those bounds the text itself goes through strtod, as the reference loop does.
 */
#include "fs_numfmt.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 fs_u128;

static const uint64_t pow10_u64[20] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

/* 5^0 .. 5^27 (5^27 < 2^64 <= 5^28). */
static const uint64_t pow5_u64[28] = {
    1ull,
    5ull,
    25ull,
    125ull,
    625ull,
    3125ull,
    15625ull,
    78125ull,
    390625ull,
    1953125ull,
    9765625ull,
    48828125ull,
    244140625ull,
    1220703125ull,
    6103515625ull,
    30517578125ull,
    152587890625ull,
    762939453125ull,
    3814697265625ull,
    19073486328125ull,
    95367431640625ull,
    476837158203125ull,
    2384185791015625ull,
    11920928955078125ull,
    59604644775390625ull,
    298023223876953125ull,
    1490116119384765625ull,
    7450580596923828125ull,
};

/* 10^0 .. 10^22: the powers of ten that are doubles exactly. */
static const double pow10_dbl[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The exact decimal scaling of a positive double a (see the top of the file). */
typedef struct {
    uint64_t q;  /* floor(a * 10^p), in [10^16, 2 * 10^17) */
    int qdigits; /* decimal digits of q: 17 or 18 */
    int half;    /* the dropped fraction f against 1/2: -1 below, 0 equal, 1 above */
    int sticky;  /* f != 0 */
    int x;       /* the decimal exponent of q's first digit: 10^x <= a < 10^(x+1) */
} exact_dec;

/* floor(e * log10(2)) for |e| <= 1100 (315653 / 2^20 is log10(2) within 1.7e-7, and the
 * floor is exact for every such e, checked one by one); a wrong answer would only send the
 * value to snprintf (decompose checks q's range). */
static int floor_log10_pow2(int e)
{
    long t = (long)e * 315653;
    return (int)(t >= 0 ? t / 1048576 : -((-t + 1048575) / 1048576));
}

/* 0 and *d filled if a (> 0, finite) is in the exact range, else -1. */
static int decompose(double a, exact_dec *d)
{
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    int be = (int)(bits >> 52) & 0x7ff;
    if (be == 0 || be == 0x7ff)
        return -1; /* zero, subnormal, inf, NaN */
    uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
    int E = be - 1023, e = E - 52;
    int k = floor_log10_pow2(E);
    int p = 16 - k;
    fs_u128 q;
    if (p >= 0) {
        if (p > 32)
            return -1;
        fs_u128 n = (fs_u128)m * pow5_u64[p < 27 ? p : 27];
        if (p > 27)
            n *= pow5_u64[p - 27]; /* < 2^53 * 5^32 < 2^128 */
        int sh = p + e;
        if (sh >= 0) {
            /* n >= m >= 2^52, so q < 2^58 means sh <= 5: anything else is a wrong k. */
            if (sh > 6 || (n >> 58) != 0)
                return -1;
            q = n << sh;
            d->half = -1;
            d->sticky = 0;
        } else {
            int s = -sh;
            if (s > 120)
                return -1;
            q = n >> s;
            fs_u128 r = n & (((fs_u128)1 << s) - 1), h = (fs_u128)1 << (s - 1);
            d->half = r < h ? -1 : r > h ? 1 : 0;
            d->sticky = r != 0;
        }
    } else {
        if (p < -21 || e < 0 || e > 74)
            return -1;
        fs_u128 n = (fs_u128)m << e; /* < 2^127 */
        fs_u128 div = (fs_u128)pow10_u64[-p < 19 ? -p : 19];
        if (-p > 19)
            div *= pow10_u64[-p - 19];
        q = n / div;
        fs_u128 r = n % div, r2 = r * 2; /* r < 10^21: no overflow */
        d->half = r2 < div ? -1 : r2 > div ? 1 : 0;
        d->sticky = r != 0;
    }
    if (q < pow10_u64[16] || q >= 2 * pow10_u64[17])
        return -1;
    d->q = (uint64_t)q;
    d->qdigits = d->q >= pow10_u64[17] ? 18 : 17;
    d->x = d->qdigits - 1 - p;
    return 0;
}

/* The n (1..17) significant digits of a rounded to nearest, ties to even, and their
 * exponent X in *x (the first digit's place; 10^(n-1) <= result < 10^n). */
static uint64_t round_to(const exact_dec *d, int n, int *x)
{
    int t = d->qdigits - n;
    uint64_t out;
    int up;
    *x = d->x;
    if (t == 0) {
        out = d->q;
        up = d->half > 0 || (d->half == 0 && (out & 1));
    } else {
        uint64_t div = pow10_u64[t], h = div / 2;
        out = d->q / div;
        uint64_t r = d->q % div;
        up = r > h || (r == h && (d->sticky || (out & 1)));
    }
    out += (uint64_t)up;
    if (out == pow10_u64[n]) {
        out = pow10_u64[n - 1];
        ++*x;
    }
    return out;
}

/* Writes the n-digit significand digits (10^(n-1) <= digits < 10^n) with exponent x as %.ng
 * does, NUL-terminated; returns the length. */
static size_t write_g(char *out, int neg, uint64_t digits, int n, int x)
{
    char dig[20];
    for (int i = n - 1; i >= 0; i--) {
        dig[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
    int len = n;
    while (len > 1 && dig[len - 1] == '0')
        len--;
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (x < -4 || x >= n) {
        out[o++] = dig[0];
        if (len > 1) {
            out[o++] = '.';
            memcpy(out + o, dig + 1, (size_t)(len - 1));
            o += (size_t)(len - 1);
        }
        out[o++] = 'e';
        out[o++] = x < 0 ? '-' : '+';
        unsigned ax = (unsigned)(x < 0 ? -x : x);
        if (ax >= 100)
            out[o++] = (char)('0' + ax / 100);
        out[o++] = (char)('0' + ax / 10 % 10);
        out[o++] = (char)('0' + ax % 10);
    } else if (x >= 0) {
        /* x + 1 integer digits (the stripped ones are zeros), then the rest if any. */
        for (int i = 0; i <= x; i++)
            out[o++] = i < len ? dig[i] : '0';
        if (len > x + 1) {
            out[o++] = '.';
            memcpy(out + o, dig + x + 1, (size_t)(len - x - 1));
            o += (size_t)(len - x - 1);
        }
    } else {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -x - 1; i++)
            out[o++] = '0';
        memcpy(out + o, dig, (size_t)len);
        o += (size_t)len;
    }
    out[o] = '\0';
    return o;
}

size_t fs_fmt_g17(double v, char out[FS_FMT_CAP])
{
    exact_dec d;
    if (decompose(fabs(v), &d) == 0) {
        int x;
        uint64_t digits = round_to(&d, 17, &x);
        return write_g(out, signbit(v) != 0, digits, 17, x);
    }
    int n = snprintf(out, FS_FMT_CAP, "%.17g", v);
    return n > 0 && n < FS_FMT_CAP ? (size_t)n : strlen(out);
}

/* 1 if the decimal digits * 10^(x-n+1) reads back (strtod) as a, 0 if not, -1 if this
 * cannot tell without strtod (see the top of the file). */
static int reads_back(uint64_t digits, int n, int x, double a)
{
#if FLT_EVAL_METHOD == 0
    int j = x - n + 1;
    if (digits > (1ull << 53) || j < -22 || j > 22)
        return -1;
    double dd = (double)digits;
    return (j >= 0 ? dd * pow10_dbl[j] : dd / pow10_dbl[-j]) == a;
#else
    (void)digits, (void)n, (void)x, (void)a, (void)pow10_dbl;
    return -1;
#endif
}

/* The reference: the loop fs_msg's out_number always had. */
static size_t shortest_snprintf(double v, char out[FS_FMT_CAP])
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, FS_FMT_CAP, "%.*g", prec, v);
        if (n < 0 || n >= FS_FMT_CAP)
            return strlen(out);
        if (prec == 17 || strtod(out, NULL) == v)
            break;
    }
    return (size_t)n;
}

size_t fs_fmt_shortest(double v, char out[FS_FMT_CAP])
{
    exact_dec d;
    double a = fabs(v);
    if (decompose(a, &d) != 0)
        return shortest_snprintf(v, out);
    int neg = signbit(v) != 0;
    for (int n = 15; n <= 16; n++) {
        int x;
        uint64_t digits = round_to(&d, n, &x);
        int back = reads_back(digits, n, x, a);
        if (back > 0)
            return write_g(out, neg, digits, n, x);
        if (back < 0) {
            size_t len = write_g(out, neg, digits, n, x);
            if (strtod(out, NULL) == v)
                return len;
        }
    }
    int x;
    uint64_t digits = round_to(&d, 17, &x);
    return write_g(out, neg, digits, 17, x);
}
