#include "fd_parse.h"

#include <string.h>

#include "fs_msg.h"

/* Longest number text taken by the fast path; integers longer than 15 digits (where jansson's
 * integer conversion and strtod could differ, or jansson overflows) go the slow way. */
#define FD_NUMBER_MAX 32
#define FD_INT_DIGITS_MAX 15

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes; s and len point into the payload. */
static int plain_string(cursor *c, const char **s, size_t *len)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return 0;
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *s = start;
            *len = (size_t)(c->p - start);
            c->p++;
            return 1;
        }
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return 0;
        c->p++;
    }
    return 0;
}

/* A JSON number in plain decimal notation (no exponent). */
static int plain_number(cursor *c, const char **s, size_t *len)
{
    skip_ws(c);
    const char *start = c->p;
    const char *q = c->p;
    if (q < c->end && *q == '-')
        q++;
    const char *digits = q;
    if (q >= c->end || *q < '0' || *q > '9')
        return 0;
    if (*q == '0') {
        q++;
        if (q < c->end && *q >= '0' && *q <= '9')
            return 0; /* leading zero: not JSON */
    } else {
        while (q < c->end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t int_digits = (size_t)(q - digits);
    int is_real = 0;
    if (q < c->end && *q == '.') {
        is_real = 1;
        q++;
        const char *frac = q;
        while (q < c->end && *q >= '0' && *q <= '9')
            q++;
        if (q == frac)
            return 0;
    }
    if (q < c->end && (*q == 'e' || *q == 'E'))
        return 0;
    if (!is_real) {
        /* jansson reads integers as int64 then converts; keep to where that equals strtod,
         * and -0 (integer 0 in jansson, -0.0 for strtod) to the slow path. */
        if (int_digits > FD_INT_DIGITS_MAX)
            return 0;
        if (*start == '-' && *digits == '0')
            return 0;
    }
    if ((size_t)(q - start) > FD_NUMBER_MAX)
        return 0;
    *s = start;
    *len = (size_t)(q - start);
    c->p = q;
    return 1;
}

static int is_null(cursor *c)
{
    skip_ws(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return 1;
    }
    return 0;
}

/* The data object: every key one of the 17 fields, at most once. */
static int data_object(cursor *c, const char *vals[FS_TXN_NFIELDS],
                       size_t lens[FS_TXN_NFIELDS])
{
    unsigned seen = 0;
    if (!eat(c, '{'))
        return 0;
    if (eat(c, '}'))
        return 1;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(c, &k, &klen) || !eat(c, ':'))
            return 0;
        int f = fs_txn_field_lookup(k, klen);
        if (f < 0 || (seen & (1u << f)))
            return 0;
        seen |= 1u << f;
        skip_ws(c);
        if (c->p >= c->end)
            return 0;
        if (*c->p == '"') {
            if (!plain_string(c, &vals[f], &lens[f]))
                return 0;
        } else if (*c->p == 'n') {
            if (!is_null(c))
                return 0;
            vals[f] = NULL; /* missing, as absent or null is for fs_txn_from_json */
            lens[f] = 0;
        } else if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            if (!plain_number(c, &vals[f], &lens[f]))
                return 0;
        } else {
            return 0; /* a number or anything else where a string belongs */
        }
        if (eat(c, ','))
            continue;
        return eat(c, '}');
    }
}

int fd_parse_fast(const char *payload, size_t len, fs_txn *t)
{
    const char *vals[FS_TXN_NFIELDS] = {0};
    size_t lens[FS_TXN_NFIELDS] = {0};
    const char *id = NULL;
    size_t id_len = 0;
    int have_data = 0;
    cursor c = {payload, payload + len};

    if (payload == NULL || !eat(&c, '{'))
        return 0;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(&c, &k, &klen) || !eat(&c, ':'))
            return 0;
        if (klen == 14 && memcmp(k, "transaction_id", 14) == 0 && id == NULL) {
            if (!plain_string(&c, &id, &id_len))
                return 0;
        } else if (klen == 4 && memcmp(k, "data", 4) == 0 && !have_data) {
            if (!data_object(&c, vals, lens))
                return 0;
            have_data = 1;
        } else {
            return 0; /* unknown or repeated key */
        }
        if (eat(&c, ','))
            continue;
        if (!eat(&c, '}'))
            return 0;
        break;
    }
    skip_ws(&c);
    if (c.p != c.end || id == NULL || !have_data || id_len == 0 || id_len > FS_TXN_ID_MAX)
        return 0;
    /* plain_string already limits the id to printable ASCII, as fs_msg requires. */
    char idbuf[FS_TXN_ID_MAX + 1];
    memcpy(idbuf, id, id_len);
    idbuf[id_len] = '\0';
    char why[256];
    int bad;
    if (fs_txn_from_strings(t, vals, lens, idbuf, NULL, &bad, why, sizeof why) != 0)
        return 0; /* the slow path reports it in its own words */
    return 1;
}

int fd_parse_transaction(const char *payload, size_t len, fs_txn *t, char *errstr,
                         size_t errstr_size)
{
    if (fd_parse_fast(payload, len, t))
        return 0;
    return fs_msg_parse_transaction(payload, len, t, errstr, errstr_size);
}
