/*
 * Fuzz harness for the scores download's binary COPY parser (src/interface/ui_copybin.c).
 * The input is cut into CopyData messages: each starts with a length byte (0..255, capped
 * by what is left); the longest possible CSV line (a 512-byte id of quotes) is checked
 * directly, as such ids do not fit that framing. Checks: the parser never reads past a message (ASan), a row's id lies
 * inside its message, every CSV line fits UI_COPYBIN_LINE_MAX, ends with exactly one newline,
 * and reads back to the same row number, id, flag and the same score bit for bit (a NaN
 * stays a NaN).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ui_copybin.h"

/* Undoes ui_copybin_csv_line's quoting of the id field starting at s; returns its end. */
static const char *read_id(const char *s, char *out, size_t *n)
{
    *n = 0;
    if (*s != '"') {
        while (*s != ',' && *s != '\0')
            out[(*n)++] = *s++;
        return s;
    }
    s++;
    for (;;) {
        if (*s == '\0')
            abort();
        if (*s == '"' && s[1] == '"') {
            out[(*n)++] = '"';
            s += 2;
        } else if (*s == '"') {
            return s + 1;
        } else {
            out[(*n)++] = *s++;
        }
    }
}

static void check_line(const ui_copybin_row *r)
{
    char line[UI_COPYBIN_LINE_MAX + 1];
    char id[UI_COPYBIN_ID_MAX + 1];
    memset(line, 0, sizeof line);
    size_t n = ui_copybin_csv_line(r, line);
    if (n == 0 || n >= UI_COPYBIN_LINE_MAX || line[n - 1] != '\n')
        abort();
    if (memchr(r->id, '\0', r->id_len) != NULL)
        return; /* PostgreSQL text never holds NUL; the read-back below would stop at it */
    line[n - 1] = '\0';
    char *end = NULL;
    unsigned long row = strtoul(line, &end, 10);
    if (row != r->row || *end != ',')
        abort();
    size_t idn = 0;
    const char *p = read_id(end + 1, id, &idn);
    if (idn != r->id_len || memcmp(id, r->id, idn) != 0 || *p != ',')
        abort();
    double score = strtod(p + 1, &end);
    if (*end != ',')
        abort();
    if (isnan(r->score) ? !isnan(score) : memcmp(&score, &r->score, sizeof score) != 0)
        abort();
    long flag = strtol(end + 1, &end, 10);
    if (flag != r->flag || *end != '\0')
        abort();
}

/* The longest line: the largest row number, an id of UI_COPYBIN_ID_MAX quotes (each
 * doubled), the longest %.17g and a negative flag. The length-byte framing keeps fuzzed
 * ids under 256 bytes, so this bound is checked here directly, once per process. */
static void check_longest_line(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    static char id[UI_COPYBIN_ID_MAX];
    memset(id, '"', sizeof id);
    ui_copybin_row r = {UINT32_MAX, id, sizeof id, -2.2250738585072014e-308, INT32_MIN};
    check_line(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_longest_line();
    ui_copybin st = {0, 0};
    size_t at = 0;
    while (at < size) {
        size_t len = data[at++];
        if (len > size - at)
            len = size - at;
        /* A copy of its own, so ASan sees a read past the message. */
        unsigned char *msg = malloc(len > 0 ? len : 1);
        if (msg == NULL)
            return 0;
        memcpy(msg, data + at, len);
        at += len;
        size_t pos = 0;
        ui_copybin_row r;
        int rc;
        while ((rc = ui_copybin_next(&st, msg, len, &pos, &r)) == 1) {
            if (pos > len || (const unsigned char *)r.id < msg ||
                (const unsigned char *)r.id + r.id_len > msg + len)
                abort();
            check_line(&r);
        }
        free(msg);
        if (rc < 0)
            break;
    }
    return 0;
}
