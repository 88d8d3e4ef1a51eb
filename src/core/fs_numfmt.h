/*
 * fs_numfmt: decimal text of doubles for the messages, without printf on the common path.
 *
 * Two formats, each byte-identical to the snprintf code it replaces, for every double:
 *   fs_fmt_g17       snprintf("%.17g"): 17 significant digits, enough to read back bit for
 *                    bit (scores, downloads, customer keys).
 *   fs_fmt_shortest  the first of %.15g, %.16g, %.17g whose text strtod reads back as the
 *                    same double (%.17g when none does): "123.45", not "123.45000000000000"
 *                    (numbers in the JSON messages).
 * Both compute the digits exactly with 128-bit integers for 2^-53 <= |v| < 2^127 (about
 * 1.1e-16 .. 1.7e38), rounding the exact binary value to nearest, ties to even, as glibc
 * does; everything else (zero, -0, subnormals, tiny normals below 2^-53 such as 1e-20, huge
 * values, inf, NaN) goes to the snprintf
 * code itself, so the two functions never differ from it. fs_numfmt.c proves the ranges.
 * No I/O, no allocation, no global state: thread-safe.
 *
 * Ownership: out is caller-owned, FS_FMT_CAP bytes; nothing is retained.
 */
#ifndef FS_NUMFMT_H
#define FS_NUMFMT_H

#include <stddef.h>

/* Bytes of the buffer the functions write into: the longest text ("-2.2250738585072014e-308",
 * 24 characters) and its NUL, with room to spare. */
#define FS_FMT_CAP 32

/* Writes v as snprintf(out, FS_FMT_CAP, "%.17g", v) would (NUL-terminated) and returns the
 * length (< FS_FMT_CAP). */
size_t fs_fmt_g17(double v, char out[FS_FMT_CAP]);

/* Writes the shortest of %.15g, %.16g, %.17g whose text reads back (strtod) as v, else the
 * %.17g text, NUL-terminated, and returns the length (< FS_FMT_CAP). NaN gives snprintf's
 * "nan"/"-nan" and -0 gives "-0", as that loop does: callers that need JSON handle those. */
size_t fs_fmt_shortest(double v, char out[FS_FMT_CAP]);

#endif
