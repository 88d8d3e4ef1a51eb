#include "fs_uuid7.h"

void fs_uuid7_next(fs_uuid7_gen *g, uint64_t now_ms,
                   const unsigned char rnd[FS_UUID7_RANDOM_BYTES], char out[37])
{
    now_ms &= 0xFFFFFFFFFFFFull;
    if (now_ms > g->ms) {
        g->ms = now_ms;
        g->seq = (((unsigned)rnd[0] << 8) | rnd[1]) & 0x7FF; /* room for 2048 more */
    } else if (++g->seq > 0xFFF) {
        g->ms = (g->ms + 1) & 0xFFFFFFFFFFFFull;
        g->seq = 0;
    }
    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(g->ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (g->seq >> 8));
    b[7] = (unsigned char)(g->seq & 0xFF);
    b[8] = (unsigned char)(0x80 | (rnd[2] & 0x3F));
    for (int i = 9; i < 16; i++)
        b[i] = rnd[i - 6];
    static const char hex[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}
