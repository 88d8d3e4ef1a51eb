/* fs_utf8 against hand-written cases from the UTF-8 definition (RFC 3629, Table 3-7 of the
 * Unicode standard): the boundaries of each sequence length, overlong forms, surrogates,
 * code points above U+10FFFF, truncated and stray continuation bytes, NUL. Each case is also
 * checked at every position of a longer ASCII text, so the eight-byte fast path and the
 * byte loop of fs_utf8_valid both meet it. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fs_utf8.h"

typedef struct {
    const char *bytes;
    size_t len;
    size_t char_len; /* fs_utf8_char of the whole case */
} utf8_case;

#define C(s, n) {s, sizeof s - 1, n}

static const utf8_case cases[] = {
    C("A", 1),
    C("\x7f", 1),
    C("\xc2\x80", 2),             /* U+0080, the first two-byte character */
    C("\xdf\xbf", 2),             /* U+07FF */
    C("\xe0\xa0\x80", 3),         /* U+0800 */
    C("\xed\x9f\xbf", 3),         /* U+D7FF, just below the surrogates */
    C("\xee\x80\x80", 3),         /* U+E000, just above them */
    C("\xef\xbf\xbf", 3),         /* U+FFFF */
    C("\xf0\x90\x80\x80", 4),     /* U+10000 */
    C("\xf4\x8f\xbf\xbf", 4),     /* U+10FFFF, the last code point */
    C("\xc0\x80", 0),             /* overlong NUL */
    C("\xc1\xbf", 0),             /* overlong U+007F */
    C("\xe0\x9f\xbf", 0),         /* overlong U+07FF */
    C("\xf0\x8f\xbf\xbf", 0),     /* overlong U+FFFF */
    C("\xed\xa0\x80", 0),         /* U+D800, a surrogate */
    C("\xed\xbf\xbf", 0),         /* U+DFFF */
    C("\xf4\x90\x80\x80", 0),     /* U+110000 */
    C("\xf5\x80\x80\x80", 0),
    C("\xff", 0),
    C("\x80", 0),                 /* a continuation byte alone */
    C("\xc2", 0),                 /* truncated */
    C("\xe2\x82", 0),
    C("\xf0\x9f\x98", 0),
    C("\xc2\x41", 0),             /* a lead byte before ASCII */
};

static void test_cases(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const utf8_case *c = &cases[i];
        CHECK_EQ_INT(fs_utf8_char(c->bytes, c->len), c->char_len);
        CHECK_EQ_INT(fs_utf8_valid(c->bytes, c->len), c->char_len == c->len);
        /* Inside ASCII text, at every offset of a 24-byte run. */
        for (size_t at = 0; at <= 16; at++) {
            char text[64];
            memset(text, 'x', sizeof text);
            memcpy(text + at, c->bytes, c->len);
            CHECK_EQ_INT(fs_utf8_valid(text, at + c->len + 8), c->char_len == c->len);
        }
    }
    CHECK_EQ_INT(fs_utf8_char("", 0), 0);
    CHECK_EQ_INT(fs_utf8_char("\xe2\x82\xac", 2), 0); /* the length, not the bytes, ends it */
    CHECK_EQ_INT(fs_utf8_valid("", 0), 1);
}

static void test_nul(void)
{
    /* NUL is one ASCII character, but never valid text: in the fast path and the tail. */
    CHECK_EQ_INT(fs_utf8_char("\0", 1), 1);
    CHECK_EQ_INT(fs_utf8_valid("a\0b", 3), 0);
    CHECK_EQ_INT(fs_utf8_valid("abcdefg\0ijklmnop", 16), 0);
    CHECK_EQ_INT(fs_utf8_valid("abcdefghijklmno\0", 16), 0);
    CHECK_EQ_INT(fs_utf8_valid("abcdefghijklmnop", 16), 1);
}

int main(void)
{
    test_cases();
    test_nul();
    return CHECK_DONE();
}
