/*
 * fs_msg: JSON codecs of the transactions and scoring messages.
 */
#include "fs_msg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static void errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (errstr == NULL || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static int id_ok(const char *s, size_t len)
{
    if (len == 0 || len > FS_TXN_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Parses payload as one JSON object (duplicate keys rejected). NULL with errstr set. */
static json_t *load_object(const char *payload, size_t len, char *errstr, size_t errstr_size)
{
    json_error_t je;
    json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        errf(errstr, errstr_size, "not JSON: %s (at byte %d)", je.text, je.position);
        return NULL;
    }
    if (!json_is_object(root)) {
        errf(errstr, errstr_size, "not JSON: expected an object");
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
        errf(errstr, errstr_size, "missing transaction_id");
        return NULL;
    }
    if (!json_is_string(id)) {
        errf(errstr, errstr_size, "transaction_id: expected a string");
        return NULL;
    }
    if (!id_ok(json_string_value(id), json_string_length(id))) {
        errf(errstr, errstr_size, "transaction_id: expected 1..%d printable ASCII characters",
             FS_TXN_ID_MAX);
        return NULL;
    }
    *len = json_string_length(id);
    return json_string_value(id);
}

int fs_msg_parse_transaction(const char *payload, size_t len, fs_txn *t, char *errstr,
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
        errf(errstr, errstr_size, "missing data");
        goto out;
    }
    if (fs_txn_from_json(t, data, errstr, errstr_size) != 0)
        goto out;
    /* The id is stored last so a record's text holds it after the fields. */
    if (id_len >= sizeof t->text - t->text_len) {
        errf(errstr, errstr_size, "record text longer than %d bytes", FS_TXN_TEXT_MAX);
        goto out;
    }
    char *p = t->text + t->text_len;
    memcpy(p, id, id_len);
    p[id_len] = '\0';
    t->text_len += id_len + 1;
    t->transaction_id = p;
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
        !id_ok(transaction_id, strlen(transaction_id)))
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
        !id_ok(transaction_id, strlen(transaction_id)) || !(score >= 0.0 && score <= 1.0) ||
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

int fs_msg_parse_scoring(const char *payload, size_t len, fs_scoring_msg *out, char *errstr,
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
    json_t *score = json_object_get(root, "score");
    if (score == NULL || json_is_null(score)) {
        errf(errstr, errstr_size, "missing score");
        goto out;
    }
    if (!json_is_number(score)) {
        errf(errstr, errstr_size, "score: expected a number");
        goto out;
    }
    double s = json_number_value(score);
    if (!isfinite(s) || s < 0.0 || s > 1.0) {
        errf(errstr, errstr_size, "score: %.17g outside [0, 1]", s);
        goto out;
    }
    json_t *flag = json_object_get(root, "fraud_flag");
    if (flag == NULL || json_is_null(flag)) {
        errf(errstr, errstr_size, "missing fraud_flag");
        goto out;
    }
    if (!json_is_integer(flag) ||
        (json_integer_value(flag) != 0 && json_integer_value(flag) != 1)) {
        errf(errstr, errstr_size, "fraud_flag: expected 0 or 1");
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
