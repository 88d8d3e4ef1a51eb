/* fs_uuid7 against RFC 9562's layout worked by hand, and its ordering promise: every id a
 * generator makes sorts after the one before, within a millisecond, past the counter's end
 * and when the clock steps back. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "fs_uuid7.h"

static const unsigned char RND[FS_UUID7_RANDOM_BYTES] = {0x12, 0x34, 0xff, 0x01, 0x23,
                                                         0x45, 0x67, 0x89, 0xab, 0xcd};

static void test_layout(void)
{
    fs_uuid7_gen g = {0};
    char id[37];
    /* 0x0190f1e27a3c ms; counter seed 0x1234 & 0x7ff = 0x234 behind version 7; variant 10
     * over 0xff's low six bits (0xbf); then the seven last random bytes. */
    fs_uuid7_next(&g, 0x0190f1e27a3cull, RND, id);
    CHECK_EQ_STR(id, "0190f1e2-7a3c-7234-bf01-23456789abcd");
    /* Same millisecond: the counter moves on, the random tail is the new one. */
    unsigned char r2[FS_UUID7_RANDOM_BYTES] = {0};
    fs_uuid7_next(&g, 0x0190f1e27a3cull, r2, id);
    CHECK_EQ_STR(id, "0190f1e2-7a3c-7235-8000-000000000000");
    /* A new millisecond reseeds the counter: below 2048 whatever the random bytes. */
    unsigned char r3[FS_UUID7_RANDOM_BYTES];
    memset(r3, 0xff, sizeof r3);
    fs_uuid7_next(&g, 0x0190f1e27a3dull, r3, id);
    CHECK_EQ_STR(id, "0190f1e2-7a3d-77ff-bfff-ffffffffffff");
}

static void test_order(void)
{
    fs_uuid7_gen g = {0};
    char prev[37], id[37];
    unsigned char r[FS_UUID7_RANDOM_BYTES];
    memset(r, 0xff, sizeof r); /* the highest seed: the counter runs out soonest */
    fs_uuid7_next(&g, 1000, r, prev);
    int borrowed = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t now = i < 5000 ? 1000 : 900; /* stuck, then stepped back */
        for (int k = 0; k < FS_UUID7_RANDOM_BYTES; k++)
            r[k] = (unsigned char)(i * 7 + k * 13);
        fs_uuid7_next(&g, now, r, id);
        CHECK(strcmp(prev, id) < 0);
        CHECK(id[14] == '7' && strchr("89ab", id[19]) != NULL && strlen(id) == 36);
        borrowed |= strncmp(id, "00000000-03e8", 13) != 0;
        memcpy(prev, id, sizeof id);
    }
    CHECK(borrowed); /* 10000 ids in "one" millisecond outran the 12-bit counter */
    /* The clock catching up past the borrowed milliseconds reseeds. */
    fs_uuid7_next(&g, 2000, RND, id);
    CHECK_EQ_STR(id, "00000000-07d0-7234-bf01-23456789abcd");
}

int main(void)
{
    test_layout();
    test_order();
    return CHECK_DONE();
}
