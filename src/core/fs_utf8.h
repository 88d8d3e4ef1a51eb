/*
 * fs_utf8: the one definition of "valid text" in the project: strict UTF-8 as jansson
 * checks it (no overlong forms, no surrogates, nothing above U+10FFFF), so any string that
 * passes can be written into a JSON message, a status document or stats.json.
 */
#ifndef FS_UTF8_H
#define FS_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length (1..4) of the valid UTF-8 character at s[0..len), or 0 if the bytes there are not
 * one (or len is 0). An ASCII byte, NUL and control characters included, is 1. */
size_t fs_utf8_char(const char *s, size_t len);

/* 1 if s[0..len) is valid UTF-8 and holds no NUL byte, else 0. Inline: it runs on every
 * string field of every record, and nearly all of them are short plain ASCII. */
static inline int fs_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    /* Eight bytes at a time while they are plain ASCII without NUL (nearly all data). */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if ((w & 0x8080808080808080ull) != 0 ||
            ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull) != 0)
            break;
    }
    while (i < len) {
        if (s[i] == 0)
            return 0;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = fs_utf8_char(str + i, len - i);
        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

#endif
