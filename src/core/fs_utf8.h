/*
 * fs_utf8: the one definition of "valid text" in the project: strict UTF-8 as jansson
 * checks it (no overlong forms, no surrogates, nothing above U+10FFFF), so any string that
 * passes can be written into a JSON message, a status document or stats.json.
 */
#ifndef FS_UTF8_H
#define FS_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid UTF-8 character at s[0..len), or 0 if the bytes there are not
 * one (or len is 0). An ASCII byte, NUL and control characters included, is 1. */
size_t fs_utf8_char(const char *s, size_t len);

/* 1 if s[0..len) is valid UTF-8 and holds no NUL byte, else 0. */
int fs_utf8_valid(const char *s, size_t len);

#endif
