/*
 * fs_msg: JSON codecs of the transactions and scoring messages.
 *
 * Each parser has two paths. The fast path reads messages of the common shape in place,
 * without allocating: one object whose keys are exactly the expected ones (each once),
 * strings of printable ASCII without escapes, numbers that convert the same way jansson
 * would (see plain_number), null. It only ever accepts; anything it does not take (escapes,
 * non-ASCII, unknown or duplicate keys, long integers, a value that fails validation,
 * malformed JSON) goes to the reference path (jansson), which gives the canonical result or
 * error message. So accept/reject decisions, records and error texts are those of the
 * reference path; tests/unit/test_msg_fast.c and the fuzz harnesses check that.
 */
#include "fs_msg.h"
#include "fs_err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Parses payload as one JSON object (duplicate keys rejected). NULL with errstr set. */
static json_t *load_object(const char *payload, size_t len, char *errstr, size_t errstr_size)
{
    json_error_t je;
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        fs_errf(errstr, errstr_size, "not JSON: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        fs_errf(errstr, errstr_size, "not JSON: expected an object");
        json_decref(root);
        return NULL;
    }
    return root;
}

/* The transaction_id member: a string of 1..FS_TXN_ID_MAX printable ASCII characters. */
static const char *get_id(json_t *root, size_t *len, char *errstr, size_t errstr_size)
{
    json_t *id = json_object_get(root, "transaction_id");
    if (id == NULL || json_is_null(id)) {
        fs_errf(errstr, errstr_size, "missing transaction_id");
        return NULL;
    }
    if (!json_is_string(id)) {
        fs_errf(errstr, errstr_size, "transaction_id: expected a string");
        return NULL;
    }
    if (!fs_txn_id_valid(json_string_value(id), json_string_length(id))) {
        fs_errf(errstr, errstr_size, "transaction_id: expected 1..%d printable ASCII characters",
             FS_TXN_ID_MAX);
        return NULL;
    }
    *len = json_string_length(id);
    return json_string_value(id);
}

int fs_msg_parse_transaction_ref(const char *payload, size_t len, fs_txn *t, char *errstr,
                                 size_t errstr_size)
{
    int rc = -1;
    json_t *root = load_object(payload, len, errstr, errstr_size);
    if (root == NULL)
        goto out;
    size_t id_len = 0;
    const char *id = get_id(root, &id_len, errstr, errstr_size);
    if (id == NULL)
        goto out;
    json_t *data = json_object_get(root, "data");
    if (data == NULL || json_is_null(data)) {
        fs_errf(errstr, errstr_size, "missing data");
        goto out;
    }
    if (fs_txn_from_json(t, data, errstr, errstr_size) != 0)
        goto out;
    /* The id is stored last so a record's text holds it after the fields. */
    if (fs_txn_set_id(t, id, id_len, errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* A bounded output buffer: writes stop at the cap and mark the overflow. */
typedef struct {
    char *buf;
    size_t size, len;
    int full;
} outbuf;

static void out_bytes(outbuf *o, const char *s, size_t n)
{
    if (o->full || n >= o->size - o->len) {
        o->full = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(outbuf *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

/* A JSON string literal; bytes >= 0x80 pass through (records hold valid UTF-8). */
static void out_json_string(outbuf *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    out_bytes(o, "\"", 1);
    const char *run = s;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        out_bytes(o, run, (size_t)(s - run));
        run = s + 1;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        switch (c) {
        case '"': out_bytes(o, "\\\"", 2); break;
        case '\\': out_bytes(o, "\\\\", 2); break;
        case '\n': out_bytes(o, "\\n", 2); break;
        case '\r': out_bytes(o, "\\r", 2); break;
        case '\t': out_bytes(o, "\\t", 2); break;
        default: out_bytes(o, esc, sizeof esc); break;
        }
    }
    out_bytes(o, run, (size_t)(s - run));
    out_bytes(o, "\"", 1);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double; null for NaN. */
static void out_number(outbuf *o, double v)
{
    char num[40];
    if (isnan(v)) {
        out_str(o, "null");
        return;
    }
    if (v == 0.0 && signbit(v)) {
        out_str(o, "-0.0"); /* "-0" would read back as the integer 0, losing the sign */
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(num, sizeof num, "%.*g", prec, v);
        if (n < 0 || (size_t)n >= sizeof num) {
            o->full = 1;
            return;
        }
        if (prec == 17 || strtod(num, NULL) == v)
            break;
    }
    out_str(o, num);
}

int fs_msg_format_transaction(char *buf, size_t size, const char *transaction_id,
                              const fs_txn *t)
{
    const double *nums[FS_TXN_NFIELDS] = {
        [FS_F_AMOUNT] = &t->amount,
        [FS_F_POST_CODE] = &t->post_code,
        [FS_F_LAT] = &t->lat,
        [FS_F_LON] = &t->lon,
        [FS_F_POPULATION_CITY] = &t->population_city,
        [FS_F_MERCHANT_LAT] = &t->merchant_lat,
        [FS_F_MERCHANT_LON] = &t->merchant_lon,
    };
    const char *strs[FS_TXN_NFIELDS] = {
        [FS_F_TRANSACTION_TIME] = t->transaction_time,
        [FS_F_MERCH] = t->merch,
        [FS_F_CAT_ID] = t->cat_id,
        [FS_F_NAME_1] = t->name_1,
        [FS_F_NAME_2] = t->name_2,
        [FS_F_GENDER] = t->gender,
        [FS_F_STREET] = t->street,
        [FS_F_ONE_CITY] = t->one_city,
        [FS_F_US_STATE] = t->us_state,
        [FS_F_JOBS] = t->jobs,
    };
    if (buf == NULL || size == 0 || transaction_id == NULL ||
        !fs_txn_id_valid(transaction_id, strlen(transaction_id)))
        return -1;
    /* Non-finite numbers would not be JSON; a validated record has none. */
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        if (nums[f] != NULL && isinf(*nums[f]))
            return -1;
    outbuf o = {buf, size, 0, 0};
    out_str(&o, "{\"transaction_id\":");
    out_json_string(&o, transaction_id);
    out_str(&o, ",\"data\":{");
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        if (f > 0)
            out_bytes(&o, ",", 1);
        out_bytes(&o, "\"", 1);
        out_str(&o, fs_txn_field_name((enum fs_txn_field)f));
        out_bytes(&o, "\":", 2);
        if (nums[f] != NULL)
            out_number(&o, *nums[f]);
        else
            out_json_string(&o, strs[f] != NULL ? strs[f] : "");
    }
    out_bytes(&o, "}}", 2);
    if (o.full)
        return -1;
    buf[o.len] = '\0';
    return (int)o.len;
}

/* Appends s to buf as a JSON string body (no quotes); returns the new length or size when
 * it does not fit. Only printable ASCII reaches here, so '"' and '\\' are all to escape. */
static size_t put_escaped(char *buf, size_t o, size_t size, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            if (o + 2 >= size)
                return size;
            buf[o++] = '\\';
        } else if (o + 1 >= size) {
            return size;
        }
        buf[o++] = *s;
    }
    return o;
}

static size_t put_str(char *buf, size_t o, size_t size, const char *s)
{
    size_t n = strlen(s);
    if (o >= size || n >= size - o)
        return size;
    memcpy(buf + o, s, n);
    return o + n;
}

int fs_msg_format_scoring(char *buf, size_t size, const char *transaction_id, double score,
                          int fraud_flag)
{
    char num[40];
    if (buf == NULL || size == 0 || transaction_id == NULL ||
        !fs_txn_id_valid(transaction_id, strlen(transaction_id)) || !(score >= 0.0 && score <= 1.0) ||
        (fraud_flag != 0 && fraud_flag != 1))
        return -1;
    int n = snprintf(num, sizeof num, "%.17g", score + 0.0); /* -0 is written as 0 */
    if (n < 0 || (size_t)n >= sizeof num)
        return -1;
    size_t o = put_str(buf, 0, size, "{\"transaction_id\":\"");
    o = put_escaped(buf, o, size, transaction_id);
    o = put_str(buf, o, size, "\",\"score\":");
    o = put_str(buf, o, size, num);
    o = put_str(buf, o, size, fraud_flag ? ",\"fraud_flag\":1}" : ",\"fraud_flag\":0}");
    if (o >= size)
        return -1;
    buf[o] = '\0';
    return (int)o;
}

int fs_msg_parse_scoring_ref(const char *payload, size_t len, fs_scoring_msg *out,
                             char *errstr, size_t errstr_size)
{
    int rc = -1;
    json_t *root = load_object(payload, len, errstr, errstr_size);
    if (root == NULL)
        goto out;
    size_t id_len = 0;
    const char *id = get_id(root, &id_len, errstr, errstr_size);
    if (id == NULL)
        goto out;
    json_t *score = json_object_get(root, "score");
    if (score == NULL || json_is_null(score)) {
        fs_errf(errstr, errstr_size, "missing score");
        goto out;
    }
    if (!json_is_number(score)) {
        fs_errf(errstr, errstr_size, "score: expected a number");
        goto out;
    }
    double s = json_number_value(score);
    if (!isfinite(s) || s < 0.0 || s > 1.0) {
        fs_errf(errstr, errstr_size, "score: %.17g outside [0, 1]", s);
        goto out;
    }
    json_t *flag = json_object_get(root, "fraud_flag");
    if (flag == NULL || json_is_null(flag)) {
        fs_errf(errstr, errstr_size, "missing fraud_flag");
        goto out;
    }
    if (!json_is_integer(flag) ||
        (json_integer_value(flag) != 0 && json_integer_value(flag) != 1)) {
        fs_errf(errstr, errstr_size, "fraud_flag: expected 0 or 1");
        goto out;
    }
    memcpy(out->transaction_id, id, id_len);
    out->transaction_id[id_len] = '\0';
    out->score = s + 0.0; /* a probability of -0 is 0 */
    out->fraud_flag = (int)json_integer_value(flag);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

/* ---- The fast path ---- */

/* Longest number text the fast path takes, and the longest integer (more digits could make
 * jansson's int64 conversion differ from strtod, or overflow it). */
#define FAST_NUMBER_MAX 32
#define FAST_INT_DIGITS_MAX 15

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

/* 1 for the bytes a plain string holds: printable ASCII but '"' and '\\'. */
static const unsigned char plain_byte[256] = {
    [0x20] =
    /* 0x20 */ 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x30 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x40 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x50 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    /* 0x60 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x70 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0
};

/* A string of printable ASCII without escapes; s and len point into the payload. */
static int plain_string(cursor *c, const char **s, size_t *len)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return 0;
    const char *start = ++c->p, *q = start;
    while (q < c->end && plain_byte[(unsigned char)*q])
        q++;
    if (q >= c->end || *q != '"')
        return 0; /* the end, a control or non-ASCII byte, or an escape */
    *s = start;
    *len = (size_t)(q - start);
    c->p = q + 1;
    return 1;
}

/* The field a data key names: usually the one after the previous key (the column order
 * every writer uses), else looked up. -1 if none. */
static int field_of(const char *k, size_t klen, int prev)
{
    if (prev + 1 < FS_TXN_NFIELDS) {
        const char *name = fs_txn_field_name((enum fs_txn_field)(prev + 1));
        if (strncmp(name, k, klen) == 0 && name[klen] == '\0')
            return prev + 1;
    }
    return fs_txn_field_lookup(k, klen);
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* A JSON number of at most FAST_NUMBER_MAX characters. jansson reads one with a '.' or an
 * exponent as a real (strtod), otherwise as an int64 then converted to double: integers
 * are taken only up to FAST_INT_DIGITS_MAX digits (exact either way), and not -0 (integer
 * 0 for jansson, -0.0 for strtod). Exponents only if allow_exp (the record's number parser
 * has its own rules for them). */
static int plain_number(cursor *c, int allow_exp, const char **s, size_t *len)
{
    skip_ws(c);
    const char *start = c->p, *q = c->p;
    if (q < c->end && *q == '-')
        q++;
    const char *digits = q;
    if (q >= c->end || !is_digit(*q))
        return 0;
    if (*q == '0') {
        q++;
        if (q < c->end && is_digit(*q))
            return 0; /* leading zero: not JSON */
    } else {
        while (q < c->end && is_digit(*q))
            q++;
    }
    size_t int_digits = (size_t)(q - digits);
    int is_real = 0;
    if (q < c->end && *q == '.') {
        is_real = 1;
        const char *frac = ++q;
        while (q < c->end && is_digit(*q))
            q++;
        if (q == frac)
            return 0;
    }
    if (q < c->end && (*q == 'e' || *q == 'E')) {
        if (!allow_exp)
            return 0;
        is_real = 1;
        q++;
        if (q < c->end && (*q == '+' || *q == '-'))
            q++;
        const char *exp = q;
        while (q < c->end && is_digit(*q))
            q++;
        if (q == exp)
            return 0;
    }
    if (!is_real && (int_digits > FAST_INT_DIGITS_MAX || (*start == '-' && *digits == '0')))
        return 0;
    if ((size_t)(q - start) > FAST_NUMBER_MAX)
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
static int fast_data(cursor *c, const char *vals[FS_TXN_NFIELDS], size_t lens[FS_TXN_NFIELDS])
{
    uint32_t seen = 0;
    int f = -1;
    if (!eat(c, '{'))
        return 0;
    if (eat(c, '}'))
        return 1;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(c, &k, &klen) || !eat(c, ':'))
            return 0;
        f = field_of(k, klen, f);
        if (f < 0 || (seen & (UINT32_C(1) << f)))
            return 0;
        seen |= UINT32_C(1) << f;
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
            if (!plain_number(c, 0, &vals[f], &lens[f]))
                return 0;
        } else {
            return 0; /* a number or anything else where a string belongs */
        }
        if (eat(c, ','))
            continue;
        return eat(c, '}');
    }
}

int fs_msg_parse_transaction_fast(const char *payload, size_t len, fs_txn *t)
{
    const char *vals[FS_TXN_NFIELDS] = {0};
    size_t lens[FS_TXN_NFIELDS] = {0};
    const char *id = NULL;
    size_t id_len = 0;
    int have_data = 0;
    if (payload == NULL)
        return 0;
    cursor c = {payload, payload + len};
    if (!eat(&c, '{'))
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
            if (!fast_data(&c, vals, lens))
                return 0;
            have_data = 1;
        } else {
            return 0; /* an unknown or repeated key */
        }
        if (eat(&c, ','))
            continue;
        if (!eat(&c, '}'))
            return 0;
        break;
    }
    skip_ws(&c);
    /* plain_string already limits the id to printable ASCII. */
    if (c.p != c.end || id == NULL || !have_data || id_len == 0 || id_len > FS_TXN_ID_MAX)
        return 0;
    char idbuf[FS_TXN_ID_MAX + 1];
    memcpy(idbuf, id, id_len);
    idbuf[id_len] = '\0';
    char why[256];
    int bad;
    return fs_txn_from_strings(t, vals, lens, idbuf, NULL, &bad, why, sizeof why) == 0;
}

int fs_msg_parse_transaction(const char *payload, size_t len, fs_txn *t, char *errstr,
                             size_t errstr_size)
{
    if (fs_msg_parse_transaction_fast(payload, len, t))
        return 0;
    return fs_msg_parse_transaction_ref(payload, len, t, errstr, errstr_size);
}

int fs_msg_parse_scoring_fast(const char *payload, size_t len, fs_scoring_msg *out)
{
    const char *id = NULL, *num = NULL;
    size_t id_len = 0, num_len = 0;
    int flag = -1;
    if (payload == NULL)
        return 0;
    cursor c = {payload, payload + len};
    if (!eat(&c, '{'))
        return 0;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(&c, &k, &klen) || !eat(&c, ':'))
            return 0;
        if (klen == 14 && memcmp(k, "transaction_id", 14) == 0 && id == NULL) {
            if (!plain_string(&c, &id, &id_len))
                return 0;
        } else if (klen == 5 && memcmp(k, "score", 5) == 0 && num == NULL) {
            if (!plain_number(&c, 1, &num, &num_len))
                return 0;
        } else if (klen == 10 && memcmp(k, "fraud_flag", 10) == 0 && flag < 0) {
            skip_ws(&c);
            if (c.p >= c.end || (*c.p != '0' && *c.p != '1'))
                return 0;
            flag = *c.p++ - '0'; /* a following digit, '.' or 'e' fails the ',' or '}' */
        } else {
            return 0; /* an unknown or repeated key */
        }
        if (eat(&c, ','))
            continue;
        if (!eat(&c, '}'))
            return 0;
        break;
    }
    skip_ws(&c);
    if (c.p != c.end || id == NULL || num == NULL || flag < 0 || id_len == 0 ||
        id_len > FS_TXN_ID_MAX)
        return 0;
    /* strtod needs a terminated copy; an integer (at most 15 digits, not -0) converts the
     * same way as jansson's int64. */
    char text[FAST_NUMBER_MAX + 1];
    memcpy(text, num, num_len);
    text[num_len] = '\0';
    double s = strtod(text, NULL);
    if (!isfinite(s) || s < 0.0 || s > 1.0)
        return 0;
    memcpy(out->transaction_id, id, id_len);
    out->transaction_id[id_len] = '\0';
    out->score = s + 0.0; /* a probability of -0 is 0 */
    out->fraud_flag = flag;
    return 1;
}

int fs_msg_parse_scoring(const char *payload, size_t len, fs_scoring_msg *out, char *errstr,
                         size_t errstr_size)
{
    if (fs_msg_parse_scoring_fast(payload, len, out))
        return 0;
    return fs_msg_parse_scoring_ref(payload, len, out, errstr, errstr_size);
}
