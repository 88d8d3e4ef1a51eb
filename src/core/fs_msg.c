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
#include "fs_numfmt.h"
#include "fs_utf8.h"

#include <math.h>
#include <stdint.h>
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

/* A JSON string literal of s[0..len); bytes >= 0x80 pass through (callers hold valid
 * UTF-8). */
static void out_json_stringn(outbuf *o, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const char *end = s + len;
    out_bytes(o, "\"", 1);
    const char *run = s;
    for (; s < end; s++) {
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

static void out_json_string(outbuf *o, const char *s)
{
    out_json_stringn(o, s, strlen(s));
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double; null for NaN. */
static void out_number(outbuf *o, double v)
{
    char num[FS_FMT_CAP];
    if (isnan(v)) {
        out_str(o, "null");
        return;
    }
    if (v == 0.0 && signbit(v)) {
        out_str(o, "-0.0"); /* "-0" would read back as the integer 0, losing the sign */
        return;
    }
    out_bytes(o, num, fs_fmt_shortest(v, num));
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

/* ---- Scoring messages ---- */

static const char *const sc_names[FS_SC_NSTR] = {
    [FS_SC_TRANSACTION_TIME] = "transaction_time",
    [FS_SC_MERCH] = "merch",
    [FS_SC_CAT_ID] = "cat_id",
    [FS_SC_NAME_1] = "name_1",
    [FS_SC_NAME_2] = "name_2",
    [FS_SC_ONE_CITY] = "one_city",
    [FS_SC_US_STATE] = "us_state",
};

const char *fs_scoring_str_name(enum fs_scoring_str f)
{
    return (unsigned)f < FS_SC_NSTR ? sc_names[f] : NULL;
}

const char *fs_scoring_str(const fs_scoring_msg *m, enum fs_scoring_str f)
{
    return m->text + m->str_off[f];
}

int fs_scoring_str_null(const fs_scoring_msg *m, enum fs_scoring_str f)
{
    return (int)((m->str_null >> f) & 1u);
}

const char *fs_scoring_reasons(const fs_scoring_msg *m, size_t *len)
{
    if (m->reasons_len == 0)
        return NULL;
    if (len != NULL)
        *len = m->reasons_len;
    return m->text + m->reasons_off;
}

void fs_scoring_txn_of_record(fs_scoring_txn *out, const fs_txn *t)
{
    const char *s[FS_SC_NSTR] = {t->transaction_time, t->merch,    t->cat_id,  t->name_1,
                                 t->name_2,           t->one_city, t->us_state};
    for (int f = 0; f < FS_SC_NSTR; f++)
        out->str[f] = s[f] != NULL && s[f][0] != '\0' ? s[f] : NULL;
    out->amount = t->amount;
}

void fs_scoring_txn_of_msg(fs_scoring_txn *out, const fs_scoring_msg *m)
{
    for (int f = 0; f < FS_SC_NSTR; f++)
        out->str[f] = fs_scoring_str_null(m, (enum fs_scoring_str)f)
                          ? NULL
                          : fs_scoring_str(m, (enum fs_scoring_str)f);
    out->amount = m->amount;
}

/* A message without the optional members: no block (strings null, amount NaN), no reasons.
 * text[0] is the "" every null string points to. */
static void sc_init(fs_scoring_msg *m)
{
    m->has_transaction = 0;
    m->amount = NAN;
    m->str_null = (1u << FS_SC_NSTR) - 1;
    for (int f = 0; f < FS_SC_NSTR; f++)
        m->str_off[f] = 0;
    m->reasons_off = 0;
    m->reasons_len = 0;
    m->text[0] = '\0';
    m->text_len = 1;
}

/* Stores string f (s[0..len), no NUL inside). -1 if the block's strings would take more
 * than FS_TXN_TEXT_MAX bytes together with their NULs. */
static int sc_put_str(fs_scoring_msg *m, int f, const char *s, size_t len)
{
    size_t used = (size_t)m->text_len - 1 - (m->reasons_len ? (size_t)m->reasons_len + 1 : 0);
    if (len >= FS_TXN_TEXT_MAX - used)
        return -1;
    memcpy(m->text + m->text_len, s, len);
    m->text[m->text_len + len] = '\0';
    m->str_off[f] = m->text_len;
    m->text_len = (uint16_t)(m->text_len + len + 1);
    m->str_null &= ~(1u << f);
    return 0;
}

/* Where the reasons text is written: after the text so far, at most FS_MSG_REASONS_MAX
 * bytes (out_bytes keeps a byte for the NUL). */
static outbuf sc_reasons_buf(fs_scoring_msg *m)
{
    size_t room = sizeof m->text - m->text_len;
    if (room > FS_MSG_REASONS_MAX + 1)
        room = FS_MSG_REASONS_MAX + 1;
    return (outbuf){m->text + m->text_len, room, 0, 0};
}

static void sc_reasons_keep(fs_scoring_msg *m, const outbuf *o)
{
    m->reasons_off = m->text_len;
    m->reasons_len = (uint16_t)o->len;
    m->text[m->text_len + o->len] = '\0';
    m->text_len = (uint16_t)(m->text_len + o->len + 1);
}

/* The canonical reasons text, in three parts: {"bias":B,"top":[ entries ]}. */
static void out_reasons_head(outbuf *o, double bias)
{
    out_str(o, "{\"bias\":");
    out_number(o, bias);
    out_str(o, ",\"top\":[");
}

static void out_reason(outbuf *o, size_t i, const char *feature, size_t flen, double value,
                       double contribution)
{
    if (i > 0)
        out_bytes(o, ",", 1);
    out_str(o, "{\"feature\":");
    out_json_stringn(o, feature, flen);
    out_str(o, ",\"value\":");
    out_number(o, value);
    out_str(o, ",\"contribution\":");
    out_number(o, contribution);
    out_bytes(o, "}", 1);
}

int fs_msg_format_reasons(char *buf, size_t size, double bias, const fs_reason *top, size_t n)
{
    if (buf == NULL || size == 0 || !isfinite(bias) || (n > 0 && top == NULL))
        return -1;
    outbuf o = {buf, size < FS_MSG_REASONS_MAX + 1 ? size : FS_MSG_REASONS_MAX + 1, 0, 0};
    out_reasons_head(&o, bias);
    for (size_t i = 0; i < n; i++) {
        const char *f = top[i].feature;
        if (f == NULL || f[0] == '\0' || !fs_utf8_valid(f, strlen(f)) ||
            !isfinite(top[i].contribution) || isinf(top[i].value))
            return -1;
        out_reason(&o, i, f, strlen(f), top[i].value, top[i].contribution);
    }
    out_str(&o, "]}");
    if (o.full)
        return -1;
    buf[o.len] = '\0';
    return (int)o.len;
}

/* The reasons member (reference path), validated and written canonically into m. */
static int reasons_ref(const json_t *r, fs_scoring_msg *m, char *errstr, size_t errstr_size)
{
    if (!json_is_object(r)) {
        fs_errf(errstr, errstr_size, "reasons: expected an object");
        return -1;
    }
    const json_t *bias = json_object_get(r, "bias");
    if (bias == NULL || !json_is_number(bias)) {
        fs_errf(errstr, errstr_size, "reasons.bias: expected a number");
        return -1;
    }
    const json_t *top = json_object_get(r, "top");
    if (top == NULL || !json_is_array(top)) {
        fs_errf(errstr, errstr_size, "reasons.top: expected an array");
        return -1;
    }
    outbuf o = sc_reasons_buf(m);
    out_reasons_head(&o, json_number_value(bias));
    for (size_t i = 0; i < json_array_size(top); i++) {
        const json_t *e = json_array_get(top, i);
        if (!json_is_object(e)) {
            fs_errf(errstr, errstr_size, "reasons.top[%zu]: expected an object", i);
            return -1;
        }
        const json_t *f = json_object_get(e, "feature");
        if (f == NULL || !json_is_string(f) || json_string_length(f) == 0) {
            fs_errf(errstr, errstr_size, "reasons.top[%zu].feature: expected a non-empty string",
                    i);
            return -1;
        }
        if (memchr(json_string_value(f), '\0', json_string_length(f)) != NULL) {
            fs_errf(errstr, errstr_size, "reasons.top[%zu].feature: contains a NUL character", i);
            return -1;
        }
        const json_t *v = json_object_get(e, "value");
        double value = NAN;
        if (v != NULL && !json_is_null(v)) {
            if (!json_is_number(v)) {
                fs_errf(errstr, errstr_size, "reasons.top[%zu].value: expected a number or null",
                        i);
                return -1;
            }
            value = json_number_value(v);
        }
        const json_t *c = json_object_get(e, "contribution");
        if (c == NULL || !json_is_number(c)) {
            fs_errf(errstr, errstr_size, "reasons.top[%zu].contribution: expected a number", i);
            return -1;
        }
        out_reason(&o, i, json_string_value(f), json_string_length(f), value,
                   json_number_value(c));
    }
    out_str(&o, "]}");
    if (o.full) {
        fs_errf(errstr, errstr_size, "reasons: longer than %d bytes", FS_MSG_REASONS_MAX);
        return -1;
    }
    sc_reasons_keep(m, &o);
    return 0;
}

/* The transaction member (reference path), validated into m. */
static int txn_ref(const json_t *txn, fs_scoring_msg *m, char *errstr, size_t errstr_size)
{
    if (!json_is_object(txn)) {
        fs_errf(errstr, errstr_size, "transaction: expected an object");
        return -1;
    }
    m->has_transaction = 1;
    for (int f = 0; f < FS_SC_NSTR; f++) {
        const json_t *v = json_object_get(txn, sc_names[f]);
        if (v == NULL || json_is_null(v))
            continue;
        if (!json_is_string(v)) {
            fs_errf(errstr, errstr_size, "transaction.%s: expected a string", sc_names[f]);
            return -1;
        }
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (memchr(s, '\0', len) != NULL) {
            fs_errf(errstr, errstr_size, "transaction.%s: contains a NUL character",
                    sc_names[f]);
            return -1;
        }
        int64_t when;
        if (f == FS_SC_TRANSACTION_TIME && fs_parse_time(s, len, &when) != 0) {
            fs_errf(errstr, errstr_size,
                    "transaction.transaction_time: expected \"YYYY-MM-DD HH:MM[:SS]\"");
            return -1;
        }
        if (sc_put_str(m, f, s, len) != 0) {
            fs_errf(errstr, errstr_size, "transaction: strings longer than %d bytes together",
                    FS_TXN_TEXT_MAX);
            return -1;
        }
    }
    const json_t *amount = json_object_get(txn, "amount");
    if (amount != NULL && !json_is_null(amount)) {
        if (!json_is_number(amount)) {
            fs_errf(errstr, errstr_size, "transaction.amount: expected a number");
            return -1;
        }
        m->amount = json_number_value(amount);
    }
    return 0;
}

/* Writes a score as %.17g would (-0 as 0), as scoring messages always had it. */
static void out_score(outbuf *o, double score)
{
    char num[FS_FMT_CAP];
    out_bytes(o, num, fs_fmt_g17(score + 0.0, num));
}

/* 1 if the reasons text parses as reasons (so the message will parse back). */
static int reasons_valid(const char *text);

int fs_msg_format_scoring_full(char *buf, size_t size, const char *transaction_id,
                               double score, int fraud_flag, const fs_scoring_txn *txn,
                               const char *reasons)
{
    if (buf == NULL || size == 0 || transaction_id == NULL ||
        !fs_txn_id_valid(transaction_id, strlen(transaction_id)) ||
        !(score >= 0.0 && score <= 1.0) || (fraud_flag != 0 && fraud_flag != 1))
        return -1;
    if (txn != NULL) {
        size_t total = 0;
        for (int f = 0; f < FS_SC_NSTR; f++) {
            const char *s = txn->str[f];
            if (s == NULL)
                continue;
            size_t len = strlen(s);
            int64_t when;
            if (!fs_utf8_valid(s, len) ||
                (f == FS_SC_TRANSACTION_TIME && fs_parse_time(s, len, &when) != 0))
                return -1;
            total += len + 1;
        }
        if (total > FS_TXN_TEXT_MAX || isinf(txn->amount))
            return -1;
    }
    if (reasons != NULL && !reasons_valid(reasons))
        return -1;
    outbuf o = {buf, size, 0, 0};
    out_str(&o, "{\"transaction_id\":");
    out_json_string(&o, transaction_id);
    out_str(&o, ",\"score\":");
    out_score(&o, score);
    out_str(&o, fraud_flag ? ",\"fraud_flag\":1" : ",\"fraud_flag\":0");
    if (txn != NULL) {
        out_str(&o, ",\"transaction\":{");
        for (int f = 0; f < FS_SC_NSTR; f++) {
            if (f > 0)
                out_bytes(&o, ",", 1);
            out_bytes(&o, "\"", 1);
            out_str(&o, sc_names[f]);
            out_bytes(&o, "\":", 2);
            if (txn->str[f] != NULL)
                out_json_string(&o, txn->str[f]);
            else
                out_str(&o, "null");
            if (f == FS_SC_TRANSACTION_TIME) {
                out_str(&o, ",\"amount\":");
                out_number(&o, txn->amount);
            }
        }
        out_bytes(&o, "}", 1);
    }
    if (reasons != NULL) {
        out_str(&o, ",\"reasons\":");
        out_str(&o, reasons);
    }
    out_bytes(&o, "}", 1);
    if (o.full)
        return -1;
    buf[o.len] = '\0';
    return (int)o.len;
}

int fs_msg_format_scoring(char *buf, size_t size, const char *transaction_id, double score,
                          int fraud_flag)
{
    return fs_msg_format_scoring_full(buf, size, transaction_id, score, fraud_flag, NULL, NULL);
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
    sc_init(out);
    json_t *txn = json_object_get(root, "transaction");
    if (txn != NULL && !json_is_null(txn) && txn_ref(txn, out, errstr, errstr_size) != 0)
        goto out;
    json_t *reasons = json_object_get(root, "reasons");
    if (reasons != NULL && !json_is_null(reasons) &&
        reasons_ref(reasons, out, errstr, errstr_size) != 0)
        goto out;
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

/* 1 if the key k[0..klen) is name. */
static int key_is(const char *k, size_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

/* The field a data key names: usually the one after the previous key (the column order
 * every writer uses), else looked up. -1 if none. */
static int field_of(const char *k, size_t klen, int prev)
{
    if (prev + 1 < FS_TXN_NFIELDS) {
        if (key_is(k, klen, fs_txn_field_name((enum fs_txn_field)(prev + 1))))
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
        if (key_is(k, klen, "transaction_id") && id == NULL) {
            if (!plain_string(&c, &id, &id_len))
                return 0;
        } else if (key_is(k, klen, "data") && !have_data) {
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

/* A number as a finite double (the same as jansson's, see plain_number). */
static int fast_double(cursor *c, double *v)
{
    const char *num;
    size_t len;
    if (!plain_number(c, 1, &num, &len))
        return 0;
    char text[FAST_NUMBER_MAX + 1];
    memcpy(text, num, len);
    text[len] = '\0';
    *v = strtod(text, NULL);
    return isfinite(*v);
}

/* The transaction block: keys among its eight members, each at most once. */
static int fast_sc_txn(cursor *c, fs_scoring_msg *m)
{
    unsigned seen = 0;
    if (!eat(c, '{'))
        return 0;
    m->has_transaction = 1;
    if (eat(c, '}'))
        return 1;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(c, &k, &klen) || !eat(c, ':'))
            return 0;
        int f = key_is(k, klen, "amount") ? FS_SC_NSTR : -1;
        for (int i = 0; i < FS_SC_NSTR && f < 0; i++)
            if (key_is(k, klen, sc_names[i]))
                f = i;
        if (f < 0 || (seen & (1u << f)))
            return 0;
        seen |= 1u << f;
        if (is_null(c)) {
            /* stays null */
        } else if (f == FS_SC_NSTR) {
            if (!fast_double(c, &m->amount))
                return 0;
        } else {
            const char *s;
            size_t len;
            int64_t when;
            if (!plain_string(c, &s, &len) ||
                (f == FS_SC_TRANSACTION_TIME && fs_parse_time(s, len, &when) != 0) ||
                sc_put_str(m, f, s, len) != 0)
                return 0;
        }
        if (eat(c, ','))
            continue;
        return eat(c, '}');
    }
}

/* The top array of the reasons; with o, its entries are also written there. */
static int fast_top(cursor *c, outbuf *o)
{
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    for (size_t i = 0;; i++) {
        const char *feat = NULL;
        size_t flen = 0;
        double value = NAN, contribution = 0;
        int have_value = 0, have_contribution = 0;
        if (!eat(c, '{'))
            return 0;
        for (;;) {
            const char *k;
            size_t klen;
            if (!plain_string(c, &k, &klen) || !eat(c, ':'))
                return 0;
            if (key_is(k, klen, "feature") && feat == NULL) {
                if (!plain_string(c, &feat, &flen) || flen == 0)
                    return 0;
            } else if (key_is(k, klen, "value") && !have_value) {
                have_value = 1;
                if (!is_null(c) && !fast_double(c, &value))
                    return 0;
            } else if (key_is(k, klen, "contribution") && !have_contribution) {
                have_contribution = 1;
                if (!fast_double(c, &contribution))
                    return 0;
            } else {
                return 0;
            }
            if (eat(c, ','))
                continue;
            if (!eat(c, '}'))
                return 0;
            break;
        }
        if (feat == NULL || !have_contribution)
            return 0;
        if (o != NULL)
            out_reason(o, i, feat, flen, value, contribution);
        if (eat(c, ','))
            continue;
        return eat(c, ']');
    }
}

/* The reasons block: bias and top, each once; written canonically into m. */
static int fast_reasons(cursor *c, fs_scoring_msg *m)
{
    double bias = 0;
    int have_bias = 0;
    cursor top = {NULL, NULL};
    if (!eat(c, '{'))
        return 0;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(c, &k, &klen) || !eat(c, ':'))
            return 0;
        if (key_is(k, klen, "bias") && !have_bias) {
            if (!fast_double(c, &bias))
                return 0;
            have_bias = 1;
        } else if (key_is(k, klen, "top") && top.p == NULL) {
            skip_ws(c);
            top = *c;
            if (!fast_top(c, NULL))
                return 0;
        } else {
            return 0;
        }
        if (eat(c, ','))
            continue;
        if (!eat(c, '}'))
            return 0;
        break;
    }
    if (!have_bias || top.p == NULL)
        return 0;
    outbuf o = sc_reasons_buf(m);
    out_reasons_head(&o, bias);
    fast_top(&top, &o);
    out_str(&o, "]}");
    if (o.full)
        return 0;
    sc_reasons_keep(m, &o);
    return 1;
}

static int reasons_valid(const char *text)
{
    fs_scoring_msg m;
    char why[256];
    size_t len = strlen(text);
    cursor c = {text, text + len};
    sc_init(&m);
    if (fast_reasons(&c, &m)) {
        skip_ws(&c);
        if (c.p == c.end)
            return 1;
    }
    /* Escapes, non-ASCII names, other spacing: the reference decides. */
    json_error_t je;
    json_t *r = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (r == NULL)
        return 0;
    sc_init(&m);
    int ok = reasons_ref(r, &m, why, sizeof why) == 0;
    json_decref(r);
    return ok;
}

int fs_msg_parse_scoring_fast(const char *payload, size_t len, fs_scoring_msg *out)
{
    const char *id = NULL, *num = NULL;
    size_t id_len = 0, num_len = 0;
    int flag = -1, have_txn = 0, have_reasons = 0;
    if (payload == NULL)
        return 0;
    cursor c = {payload, payload + len};
    sc_init(out);
    if (!eat(&c, '{'))
        return 0;
    for (;;) {
        const char *k;
        size_t klen;
        if (!plain_string(&c, &k, &klen) || !eat(&c, ':'))
            return 0;
        if (key_is(k, klen, "transaction_id") && id == NULL) {
            if (!plain_string(&c, &id, &id_len))
                return 0;
        } else if (key_is(k, klen, "score") && num == NULL) {
            if (!plain_number(&c, 1, &num, &num_len))
                return 0;
        } else if (key_is(k, klen, "fraud_flag") && flag < 0) {
            skip_ws(&c);
            if (c.p >= c.end || (*c.p != '0' && *c.p != '1'))
                return 0;
            flag = *c.p++ - '0'; /* a following digit, '.' or 'e' fails the ',' or '}' */
        } else if (key_is(k, klen, "transaction") && !have_txn) {
            if (!fast_sc_txn(&c, out))
                return 0;
            have_txn = 1;
        } else if (key_is(k, klen, "reasons") && !have_reasons) {
            if (!fast_reasons(&c, out))
                return 0;
            have_reasons = 1;
        } else {
            return 0; /* an unknown or repeated key, or a null block */
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
