#include "dbw_upload.h"

#include <stdio.h>
#include <string.h>

/* Up to 40 bytes of a header value, printable ASCII, others as '?', for an error message. */
static void quote(char *dst, size_t size, const unsigned char *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < size && i < 40; i++)
        dst[k++] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
    if (n > 40 && k + 4 < size) {
        memcpy(dst + k, "...", 3);
        k += 3;
    }
    dst[k] = '\0';
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int dbw_upload_parse_id(const void *value, size_t n, unsigned char out[16], char *errstr,
                        size_t errstr_size)
{
    const unsigned char *v = value;
    char got[48];
    if (v == NULL || n != 36)
        goto bad;
    size_t k = 0;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (v[i] != '-')
                goto bad;
            continue;
        }
        int hi = hex_digit(v[i]);
        int lo = i + 1 < 36 ? hex_digit(v[i + 1]) : -1;
        if (hi < 0 || lo < 0)
            goto bad;
        out[k++] = (unsigned char)(hi << 4 | lo);
        i++;
    }
    return 0;
bad:
    if (v == NULL)
        snprintf(got, sizeof got, "no value");
    else
        quote(got, sizeof got, v, n);
    snprintf(errstr, errstr_size,
             "header upload_id: expected a 36-character lowercase UUID, got \"%s\" (%zu bytes)",
             got, v == NULL ? (size_t)0 : n);
    return -1;
}

int dbw_upload_parse_row(const void *value, size_t n, int32_t *out, char *errstr,
                         size_t errstr_size)
{
    const unsigned char *v = value;
    char got[48];
    int64_t row = 0;
    if (v == NULL || n == 0 || n > 10 || v[0] == '0')
        goto bad;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            goto bad;
        row = row * 10 + (v[i] - '0');
    }
    if (row > INT32_MAX)
        goto bad;
    *out = (int32_t)row;
    return 0;
bad:
    if (v == NULL)
        snprintf(got, sizeof got, "no value");
    else
        quote(got, sizeof got, v, n);
    snprintf(errstr, errstr_size,
             "header upload_row: expected a row number 1..2147483647 in decimal, got \"%s\"",
             got);
    return -1;
}
