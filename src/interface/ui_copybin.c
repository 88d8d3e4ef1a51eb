/*
 * Binary COPY rows of the scores download, and their CSV lines.
 */
#include "ui_copybin.h"

#include "fs_numfmt.h"

#include <stdio.h>
#include <string.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ui_copybin_next(ui_copybin *st, const unsigned char *msg, size_t len, size_t *pos,
                    ui_copybin_row *out)
{
    static const unsigned char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    if (*pos > len)
        return -1;
    if (!st->header_seen) {
        /* Signature, flags (int32), header extension length (int32) and its bytes. */
        if (len - *pos < 19 || memcmp(msg + *pos, sig, sizeof sig) != 0)
            return -1;
        uint32_t ext = be32(msg + *pos + 15);
        if (ext > len - *pos - 19)
            return -1;
        *pos += 19 + (size_t)ext;
        st->header_seen = 1;
    }
    if (st->done)
        return *pos == len ? 0 : -1; /* nothing may follow the trailer */
    size_t left = len - *pos;
    if (left == 0)
        return 0;
    const unsigned char *p = msg + *pos;
    if (left < 2)
        return -1;
    int16_t nf = (int16_t)((uint16_t)p[0] << 8 | p[1]);
    if (nf == -1) {
        *pos += 2;
        st->done = 1;
        return *pos == len ? 0 : -1;
    }
    if (nf != 4)
        return -1;
    size_t off = 2;
    const unsigned char *val[4];
    uint32_t flen[4];
    for (int i = 0; i < 4; i++) {
        if (left - off < 4)
            return -1;
        flen[i] = be32(p + off);
        off += 4;
        /* A NULL (-1) is no value this query can give; any length past the message is bad. */
        if (flen[i] > left - off)
            return -1;
        val[i] = p + off;
        off += flen[i];
    }
    if (flen[0] != 4 || flen[2] != 8 || flen[3] != 4 || flen[1] > UI_COPYBIN_ID_MAX)
        return -1;
    uint64_t bits = (uint64_t)be32(val[2]) << 32 | be32(val[2] + 4);
    out->row = be32(val[0]);
    out->id = (const char *)val[1];
    out->id_len = flen[1];
    memcpy(&out->score, &bits, sizeof out->score);
    out->flag = (int32_t)be32(val[3]);
    *pos += off;
    return 1;
}

size_t ui_copybin_csv_line(const ui_copybin_row *r, char *buf)
{
    size_t n = (size_t)snprintf(buf, UI_COPYBIN_LINE_MAX, "%u,", r->row);
    int quote = 0;
    for (size_t i = 0; i < r->id_len && !quote; i++)
        quote = r->id[i] == ',' || r->id[i] == '"' || r->id[i] == '\r' || r->id[i] == '\n';
    if (quote)
        buf[n++] = '"';
    for (size_t i = 0; i < r->id_len; i++) {
        if (quote && r->id[i] == '"')
            buf[n++] = '"';
        buf[n++] = r->id[i];
    }
    if (quote)
        buf[n++] = '"';
    /* The score as %.17g (fs_fmt_g17 writes at most FS_FMT_CAP bytes: n is at most
     * 2 * UI_COPYBIN_ID_MAX + 14 here, so the line still fits). */
    _Static_assert(UI_COPYBIN_LINE_MAX >= 2 * UI_COPYBIN_ID_MAX + 14 + 1 + FS_FMT_CAP + 13,
                   "a CSV line: row, quoted id, score, flag");
    buf[n++] = ',';
    n += fs_fmt_g17(r->score, buf + n);
    n += (size_t)snprintf(buf + n, UI_COPYBIN_LINE_MAX - n, ",%d\n", (int)r->flag);
    return n;
}
