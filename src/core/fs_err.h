/*
 * fs_err: the one helper every module uses to fill a caller's errstr/errstr_size buffer
 * (the error convention of the whole project: a function that fails returns -1 or NULL and
 * says what and where in the caller's buffer).
 */
#ifndef FS_ERR_H
#define FS_ERR_H

#include <stddef.h>

/* Formats into errstr (at most errstr_size bytes, always NUL-terminated, cut if longer).
 * Does nothing when errstr is NULL or errstr_size is 0. */
void fs_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short, printable rendering of bad input for an error message: at most max bytes of
 * s[0..len), bytes outside printable ASCII and quotes and backslashes as \xHH, "..." when
 * cut. dst (size bytes; 4 * max + 4 always suffice) is always NUL-terminated. */
void fs_excerpt(char *dst, size_t size, const char *s, size_t len, size_t max);

#endif
