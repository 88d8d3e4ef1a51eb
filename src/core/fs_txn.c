/*
 * fs_txn: typed, validated transaction records from CSV cells or a JSON `data` object.
 */
#include "fs_txn.h"
#include "fs_err.h"
#include "fs_utf8.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


static const char *const field_names[FS_TXN_NFIELDS] = {
    "transaction_time", "merch",           "cat_id", "amount",       "name_1",
    "name_2",           "gender",          "street", "one_city",     "us_state",
    "post_code",        "lat",             "lon",    "population_city", "jobs",
    "merchant_lat",     "merchant_lon",
};

/* Longest numeric cell accepted; real data needs a few dozen bytes. */
#define NUMBER_MAX 64
/* Bytes of an offending value quoted in an error message. */
#define EXCERPT_MAX 40

const char *fs_txn_field_name(enum fs_txn_field f)
{
    if ((int)f < 0 || f >= FS_TXN_NFIELDS)
        return "?";
    return field_names[f];
}

int fs_txn_field_lookup(const char *name, size_t len)
{
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        if (strlen(field_names[f]) == len && memcmp(field_names[f], name, len) == 0)
            return f;
    return -1;
}

int fs_txn_field_is_numeric(enum fs_txn_field f)
{
    switch (f) {
    case FS_F_AMOUNT:
    case FS_F_LAT:
    case FS_F_LON:
    case FS_F_POPULATION_CITY:
    case FS_F_POST_CODE:
    case FS_F_MERCHANT_LAT:
    case FS_F_MERCHANT_LON:
        return 1;
    default:
        return 0;
    }
}

/* A short, printable rendering of a bad value for an error message: at most EXCERPT_MAX
 * bytes, non-printable bytes as \xHH, "..." when cut. */
static void excerpt(char *dst, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len && i < EXCERPT_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
            if (o + 2 > size)
                break;
            dst[o++] = (char)ch;
        } else {
            if (o + 5 > size)
                break;
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[ch >> 4];
            dst[o++] = hex[ch & 15];
        }
    }
    if (len > EXCERPT_MAX && o + 4 <= size) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o < size ? o : size - 1] = '\0';
}

/* ---- time ---- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil); no libc time zone involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int fs_parse_time(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec = 0;
    if (len != 16 && len != 19)
        return -1;
    if (s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':')
        return -1;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi))
        return -1;
    if (len == 19 && (s[16] != ':' || digits(s + 17, 2, &sec)))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return -1;
    int dim = mdays[mo - 1] + (mo == 2 && is_leap(y));
    if (d > dim)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

/* ---- numbers ---- */

static int is_nan_text(const char *s, size_t len)
{
    return len == 3 && (s[0] == 'n' || s[0] == 'N') && (s[1] == 'a' || s[1] == 'A') &&
           (s[2] == 'n' || s[2] == 'N');
}

int fs_parse_number(const char *s, size_t len, double *out, char *errstr, size_t errstr_size)
{
    char ex[EXCERPT_MAX * 4 + 8];
    char buf[NUMBER_MAX + 1];
    if (len == 0 || is_nan_text(s, len)) {
        *out = NAN;
        return 0;
    }
    /* Grammar check first: strtod alone would take spaces, hex, inf, nan(...). */
    size_t i = 0, mant = 0;
    if (s[i] == '+' || s[i] == '-')
        i++;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        mant++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            mant++;
        }
    }
    if (mant > 0 && i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t ed = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            ed++;
        }
        if (ed == 0)
            mant = 0;
    }
    if (mant == 0 || i != len) {
        excerpt(ex, sizeof ex, s, len);
        fs_errf(errstr, errstr_size, "not a number: \"%s\"", ex);
        return -1;
    }
    if (len > NUMBER_MAX) {
        excerpt(ex, sizeof ex, s, len);
        fs_errf(errstr, errstr_size, "number longer than %d characters: \"%s\"", NUMBER_MAX, ex);
        return -1;
    }
    /* Clinger's fast path: up to 15 significant digits and a power of ten up to 22 are
     * both exact doubles, so one IEEE multiply or divide rounds correctly, as strtod
     * would; everything else goes to strtod. */
    {
        uint64_t m = 0;
        int nd = 0, scale = 0, neg = s[0] == '-';
        size_t k = (s[0] == '-' || s[0] == '+') ? 1 : 0;
        for (; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
            if (m == 0 && s[k] == '0')
                continue;
            m = m * 10 + (uint64_t)(s[k] - '0');
            nd++;
        }
        if (k < len && s[k] == '.') {
            for (k++; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
                scale--;
                if (m == 0 && s[k] == '0')
                    continue;
                m = m * 10 + (uint64_t)(s[k] - '0');
                nd++;
                if (nd > 15)
                    break;
            }
        }
        if (k == len && nd <= 15 && scale >= -22) {
            static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
            double v = (double)m / p10[-scale];
            *out = neg ? -v : v;
            return 0;
        }
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end = NULL;
    double v = strtod(buf, &end);
    if (end != buf + len || !isfinite(v)) {
        excerpt(ex, sizeof ex, s, len);
        fs_errf(errstr, errstr_size, "number out of range: \"%s\"", ex);
        return -1;
    }
    *out = v;
    return 0;
}

/* Range rules on a parsed (non-NaN) number; message without the field name. */
static int check_range(enum fs_txn_field f, double v, char *errstr, size_t errstr_size)
{
    if (isnan(v))
        return 0;
    switch (f) {
    case FS_F_LAT:
    case FS_F_MERCHANT_LAT:
        if (v < -90.0 || v > 90.0) {
            fs_errf(errstr, errstr_size, "latitude %.17g outside [-90, 90]", v);
            return -1;
        }
        return 0;
    case FS_F_LON:
    case FS_F_MERCHANT_LON:
        if (v < -180.0 || v > 180.0) {
            fs_errf(errstr, errstr_size, "longitude %.17g outside [-180, 180]", v);
            return -1;
        }
        return 0;
    case FS_F_AMOUNT:
    case FS_F_POPULATION_CITY:
    case FS_F_POST_CODE:
        if (v < 0.0) {
            fs_errf(errstr, errstr_size, "negative value %.17g", v);
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/* ---- strings ---- */

static void txn_init(fs_txn *t)
{
    t->time = 0;
    t->amount = t->lat = t->lon = t->population_city = NAN;
    t->merchant_lat = t->merchant_lon = t->post_code = NAN;
    t->text[0] = '\0';
    t->text_len = 1;
    t->transaction_time = t->merch = t->cat_id = t->name_1 = t->name_2 = t->gender =
        t->street = t->one_city = t->us_state = t->jobs = t->transaction_id = t->text;
    t->target = -1;
}

/* Copies s into the record's text; NULL if it does not fit. */
static const char *txn_store(fs_txn *t, const char *s, size_t len)
{
    if (len == 0)
        return t->text;
    if (len >= sizeof t->text - t->text_len)
        return NULL;
    char *p = t->text + t->text_len;
    memcpy(p, s, len);
    p[len] = '\0';
    t->text_len += len + 1;
    return p;
}

static const char **string_slot(fs_txn *t, enum fs_txn_field f)
{
    switch (f) {
    case FS_F_TRANSACTION_TIME: return &t->transaction_time;
    case FS_F_MERCH: return &t->merch;
    case FS_F_CAT_ID: return &t->cat_id;
    case FS_F_NAME_1: return &t->name_1;
    case FS_F_NAME_2: return &t->name_2;
    case FS_F_GENDER: return &t->gender;
    case FS_F_STREET: return &t->street;
    case FS_F_ONE_CITY: return &t->one_city;
    case FS_F_US_STATE: return &t->us_state;
    case FS_F_JOBS: return &t->jobs;
    default: return NULL;
    }
}

static double *number_slot(fs_txn *t, enum fs_txn_field f)
{
    switch (f) {
    case FS_F_AMOUNT: return &t->amount;
    case FS_F_LAT: return &t->lat;
    case FS_F_LON: return &t->lon;
    case FS_F_POPULATION_CITY: return &t->population_city;
    case FS_F_POST_CODE: return &t->post_code;
    case FS_F_MERCHANT_LAT: return &t->merchant_lat;
    case FS_F_MERCHANT_LON: return &t->merchant_lon;
    default: return NULL;
    }
}

/* Stores a string field (transaction_time parsed too). Message without the field name. */
static int set_string(fs_txn *t, enum fs_txn_field f, const char *s, size_t len, char *errstr,
                      size_t errstr_size)
{
    char ex[EXCERPT_MAX * 4 + 8];
    if (!fs_utf8_valid(s, len)) {
        fs_errf(errstr, errstr_size, "not valid UTF-8 text (or contains a NUL byte)");
        return -1;
    }
    if (f == FS_F_TRANSACTION_TIME) {
        if (len == 0) {
            fs_errf(errstr, errstr_size, "missing (required)");
            return -1;
        }
        if (fs_parse_time(s, len, &t->time) != 0) {
            excerpt(ex, sizeof ex, s, len);
            fs_errf(errstr, errstr_size,
                 "not a valid time \"YYYY-MM-DD HH:MM[:SS]\": \"%s\"", ex);
            return -1;
        }
    }
    const char *p = txn_store(t, s, len);
    if (p == NULL) {
        fs_errf(errstr, errstr_size, "record text longer than %d bytes", FS_TXN_TEXT_MAX);
        return -1;
    }
    *string_slot(t, f) = p;
    return 0;
}

static int set_number(fs_txn *t, enum fs_txn_field f, double v, char *errstr,
                      size_t errstr_size)
{
    if (check_range(f, v, errstr, errstr_size) != 0)
        return -1;
    *number_slot(t, f) = v;
    return 0;
}

int fs_txn_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > FS_TXN_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int fs_txn_set_id(fs_txn *t, const char *s, size_t len, char *errstr, size_t errstr_size)
{
    if (len > 0 && !fs_txn_id_valid(s, len)) {
        fs_errf(errstr, errstr_size, "transaction_id: expected 1..%d printable ASCII characters",
             FS_TXN_ID_MAX);
        return -1;
    }
    const char *p = txn_store(t, s, len);
    if (p == NULL) {
        fs_errf(errstr, errstr_size, "record text longer than %d bytes", FS_TXN_TEXT_MAX);
        return -1;
    }
    t->transaction_id = p;
    return 0;
}

static int set_target_text(fs_txn *t, const char *s, size_t len, char *errstr,
                           size_t errstr_size)
{
    char ex[EXCERPT_MAX * 4 + 8];
    if (len == 1 && (s[0] == '0' || s[0] == '1')) {
        t->target = s[0] - '0';
        return 0;
    }
    excerpt(ex, sizeof ex, s, len);
    fs_errf(errstr, errstr_size, "target: expected 0 or 1, got \"%s\"", ex);
    return -1;
}

int fs_txn_from_strings(fs_txn *t, const char *const values[FS_TXN_NFIELDS],
                        const size_t lens[FS_TXN_NFIELDS], const char *transaction_id,
                        const char *target, int *bad_field, char *errstr, size_t errstr_size)
{
    char why[256];
    int bad = -1;
    txn_init(t);
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        const char *s = values[f] != NULL ? values[f] : "";
        size_t len = values[f] != NULL ? lens[f] : 0;
        int rc;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double v;
            rc = fs_parse_number(s, len, &v, why, sizeof why);
            if (rc == 0)
                rc = set_number(t, (enum fs_txn_field)f, v, why, sizeof why);
        } else {
            rc = set_string(t, (enum fs_txn_field)f, s, len, why, sizeof why);
        }
        if (rc != 0) {
            bad = f;
            fs_errf(errstr, errstr_size, "%s: %s", field_names[f], why);
            goto fail;
        }
    }
    if (transaction_id != NULL &&
        fs_txn_set_id(t, transaction_id, strlen(transaction_id), errstr, errstr_size) != 0)
        goto fail;
    if (target != NULL && set_target_text(t, target, strlen(target), errstr, errstr_size) != 0)
        goto fail;
    if (bad_field != NULL)
        *bad_field = -1;
    return 0;
fail:
    if (bad_field != NULL)
        *bad_field = bad;
    return -1;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

int fs_txn_from_json(fs_txn *t, const json_t *data, char *errstr, size_t errstr_size)
{
    char why[256];
    txn_init(t);
    if (!json_is_object(data)) {
        fs_errf(errstr, errstr_size, "data: expected an object, got %s",
             data ? json_type_name(data) : "nothing");
        return -1;
    }
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        const json_t *v = json_object_get(data, field_names[f]);
        int rc = 0;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double x = NAN;
            if (v == NULL || json_is_null(v))
                x = NAN;
            else if (json_is_integer(v))
                x = (double)json_integer_value(v);
            else if (json_is_real(v))
                x = json_real_value(v);
            else if (json_is_string(v))
                rc = fs_parse_number(json_string_value(v), json_string_length(v), &x, why,
                                     sizeof why);
            else {
                snprintf(why, sizeof why, "expected a number or a numeric string, got %s",
                         json_type_name(v));
                rc = -1;
            }
            if (rc == 0)
                rc = set_number(t, (enum fs_txn_field)f, x, why, sizeof why);
        } else {
            if (v == NULL || json_is_null(v))
                rc = set_string(t, (enum fs_txn_field)f, "", 0, why, sizeof why);
            else if (json_is_string(v))
                rc = set_string(t, (enum fs_txn_field)f, json_string_value(v),
                                json_string_length(v), why, sizeof why);
            else {
                snprintf(why, sizeof why, "expected a string, got %s", json_type_name(v));
                rc = -1;
            }
        }
        if (rc != 0) {
            fs_errf(errstr, errstr_size, "data.%s: %s", field_names[f], why);
            return -1;
        }
    }
    const json_t *target = json_object_get(data, "target");
    if (target != NULL && !json_is_null(target)) {
        json_int_t tv = -1;
        if (json_is_integer(target))
            tv = json_integer_value(target);
        else if (json_is_string(target) && json_string_length(target) == 1)
            tv = json_string_value(target)[0] - '0';
        if (tv != 0 && tv != 1) {
            fs_errf(errstr, errstr_size, "data.target: expected 0 or 1");
            return -1;
        }
        t->target = (int)tv;
    }
    return 0;
}

/* Integral values that are exactly representable go out as JSON integers (post codes
 * read better that way), everything else as reals; NaN as null. */
static json_t *number_json(double v, int prefer_int)
{
    if (isnan(v))
        return json_null();
    if (prefer_int && v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

json_t *fs_txn_to_json(const fs_txn *t)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        json_t *v;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double x = *number_slot((fs_txn *)t, (enum fs_txn_field)f);
            v = number_json(x, f == FS_F_POST_CODE || f == FS_F_POPULATION_CITY);
        } else {
            const char *s = *string_slot((fs_txn *)t, (enum fs_txn_field)f);
            v = json_stringn(s, strlen(s));
        }
        if (v == NULL || json_object_set_new(o, field_names[f], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

void fs_txn_copy(fs_txn *dst, const fs_txn *src)
{
    if (dst == src)
        return;
    memcpy(dst, src, offsetof(fs_txn, text) + src->text_len);
    const char **slots[] = {&dst->transaction_time, &dst->merch,    &dst->cat_id,
                            &dst->name_1,           &dst->name_2,   &dst->gender,
                            &dst->street,           &dst->one_city, &dst->us_state,
                            &dst->jobs,             &dst->transaction_id};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        *slots[i] = dst->text + (*slots[i] - src->text);
}

/* ---- CSV rows ---- */

/* "name:line:column: why" with a name, else "line L, column C: why"; column 0 = the whole
 * line. */
static void where_errf(char *errstr, size_t errstr_size, const char *name, size_t line,
                       size_t column, const char *why)
{
    if (name != NULL && column > 0)
        fs_errf(errstr, errstr_size, "%s:%zu:%zu: %s", name, line, column, why);
    else if (name != NULL)
        fs_errf(errstr, errstr_size, "%s:%zu: %s", name, line, why);
    else if (column > 0)
        fs_errf(errstr, errstr_size, "line %zu, column %zu: %s", line, column, why);
    else
        fs_errf(errstr, errstr_size, "line %zu: %s", line, why);
}

/* Maps a header; on error *column (0 = the whole line) and the reason without the place. */
static int map_header(fs_txn_columns *cols, const fs_csv_row *header, size_t *column,
                      char *why, size_t why_size)
{
    char ex[EXCERPT_MAX * 4 + 8];
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        cols->col[f] = -1;
    cols->transaction_id_col = -1;
    cols->target_col = -1;
    cols->ncols = header->nfields;
    for (size_t i = 0; i < header->nfields; i++) {
        const char *name = header->fields[i];
        size_t len = header->lens[i];
        int *slot = NULL;
        int f = fs_txn_field_lookup(name, len);
        if (f >= 0)
            slot = &cols->col[f];
        else if (len == 14 && memcmp(name, "transaction_id", 14) == 0)
            slot = &cols->transaction_id_col;
        else if (len == 6 && memcmp(name, "target", 6) == 0)
            slot = &cols->target_col;
        if (slot == NULL)
            continue;
        if (*slot >= 0) {
            excerpt(ex, sizeof ex, name, len);
            fs_errf(why, why_size, "column \"%s\" appears twice", ex);
            *column = i + 1;
            return -1;
        }
        *slot = (int)i;
    }
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        if (cols->col[f] < 0) {
            fs_errf(why, why_size, "missing column \"%s\"", field_names[f]);
            *column = 0;
            return -1;
        }
    }
    return 0;
}

int fs_txn_columns_from_header(fs_txn_columns *cols, const fs_csv_row *header, char *errstr,
                               size_t errstr_size)
{
    char why[256];
    size_t column = 0;
    if (map_header(cols, header, &column, why, sizeof why) != 0) {
        where_errf(errstr, errstr_size, NULL, header->line, column, why);
        return -1;
    }
    return 0;
}

/* Builds a record from a data row; on error *column (1-based, 0 = the whole row) and the
 * reason without the place. transaction_id and target are checked here, with their lengths:
 * a cell may hold NUL bytes, and an id is rejected, never cut at one. */
static int parse_row(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
                     size_t *column, char *why, size_t why_size)
{
    const char *values[FS_TXN_NFIELDS];
    size_t lens[FS_TXN_NFIELDS];
    int bad = -1;
    *column = 0;
    if (row->nfields != cols->ncols) {
        fs_errf(why, why_size, "expected %zu fields, got %zu", cols->ncols, row->nfields);
        return -1;
    }
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        values[f] = row->fields[cols->col[f]];
        lens[f] = row->lens[cols->col[f]];
    }
    const char *id = NULL, *target = NULL;
    if (cols->transaction_id_col >= 0) {
        size_t c = (size_t)cols->transaction_id_col;
        id = row->fields[c];
        if (row->lens[c] > 0 && !fs_txn_id_valid(id, row->lens[c])) {
            fs_errf(why, why_size, "transaction_id: expected 1..%d printable ASCII characters",
                 FS_TXN_ID_MAX);
            *column = c + 1;
            return -1;
        }
    }
    if (cols->target_col >= 0) {
        size_t c = (size_t)cols->target_col;
        target = row->fields[c];
        if (!(row->lens[c] == 1 && (target[0] == '0' || target[0] == '1'))) {
            char ex[EXCERPT_MAX * 4 + 8];
            excerpt(ex, sizeof ex, target, row->lens[c]);
            fs_errf(why, why_size, "target: expected 0 or 1, got \"%s\"", ex);
            *column = c + 1;
            return -1;
        }
    }
    if (fs_txn_from_strings(t, values, lens, id, target, &bad, why, why_size) != 0) {
        if (bad >= 0)
            *column = (size_t)cols->col[bad] + 1;
        else if (cols->transaction_id_col >= 0)
            *column = (size_t)cols->transaction_id_col + 1; /* the id made the text too long */
        return -1;
    }
    return 0;
}

int fs_txn_from_row(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
                    char *errstr, size_t errstr_size)
{
    char why[320];
    size_t column = 0;
    if (parse_row(t, cols, row, &column, why, sizeof why) != 0) {
        where_errf(errstr, errstr_size, NULL, row->line, column, why);
        return -1;
    }
    return 0;
}

/* ---- reader ---- */

/* Caps for transaction CSVs: a real cell is well under a kilobyte. A cell up to the cap that
 * does not fit a record (FS_TXN_TEXT_MAX) is an invalid row, which a bad-row callback can
 * skip; beyond the cap the CSV itself is refused. */
#define READER_MAX_FIELD 8192
#define READER_MAX_FIELDS 256
#define READ_CHUNK (1 << 16)

struct fs_txn_reader {
    fs_csv *csv;
    fs_txn_reader_cb cb;
    fs_txn_reader_bad_cb on_bad;
    void *opaque;
    const char *name; /* borrowed; NULL = no name in messages */
    fs_txn_columns cols;
    int have_header;
    int failed;
    fs_txn txn;
    char err[1024];
};

/* A callback's return: 0 goes on, positive stops with that value, negative is a failure of
 * the callback, reported as where it happened (fs_csv's -1 would be taken for a CSV error). */
static int callback_result(fs_txn_reader *r, const fs_csv_row *row, int rc, const char *which)
{
    if (rc >= 0)
        return rc;
    char why[64];
    fs_errf(why, sizeof why, "the %s callback failed", which);
    where_errf(r->err, sizeof r->err, r->name, row->line, 0, why);
    r->failed = 1;
    return -1;
}

static int reader_row(const fs_csv_row *row, void *opaque)
{
    fs_txn_reader *r = opaque;
    char why[320];
    size_t column = 0;
    if (!r->have_header) {
        if (map_header(&r->cols, row, &column, why, sizeof why) != 0) {
            where_errf(r->err, sizeof r->err, r->name, row->line, column, why);
            r->failed = 1;
            return -1;
        }
        r->have_header = 1;
        return 0;
    }
    if (parse_row(&r->txn, &r->cols, row, &column, why, sizeof why) != 0) {
        where_errf(r->err, sizeof r->err, r->name, row->line, column, why);
        if (r->on_bad != NULL) {
            int stop = r->on_bad(row, r->err, r->opaque);
            r->err[0] = '\0';
            return callback_result(r, row, stop, "bad-row");
        }
        r->failed = 1;
        return -1;
    }
    return callback_result(r, row, r->cb(&r->txn, row, r->opaque), "row");
}

fs_txn_reader *fs_txn_reader_new(fs_txn_reader_cb cb, void *opaque)
{
    fs_txn_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->cb = cb;
    r->opaque = opaque;
    r->csv = fs_csv_new(reader_row, r, READER_MAX_FIELD, READER_MAX_FIELDS);
    if (r->csv == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void fs_txn_reader_free(fs_txn_reader *r)
{
    if (r == NULL)
        return;
    fs_csv_free(r->csv);
    free(r);
}

void fs_txn_reader_set_name(fs_txn_reader *r, const char *name)
{
    r->name = name;
}

void fs_txn_reader_set_bad(fs_txn_reader *r, fs_txn_reader_bad_cb on_bad)
{
    r->on_bad = on_bad;
}

/* A CSV syntax error, in the reader's words: "name:L:C: why" when it has a name. */
static void csv_error(fs_txn_reader *r)
{
    size_t line, column;
    const char *why = fs_csv_error_at(r->csv, &line, &column);
    where_errf(r->err, sizeof r->err, r->name, line, column, why);
}

static int reader_result(fs_txn_reader *r, int rc)
{
    if (rc == -1 && !r->failed) {
        csv_error(r);
        r->failed = 1;
    }
    return rc;
}

int fs_txn_reader_feed(fs_txn_reader *r, const void *data, size_t len)
{
    return reader_result(r, fs_csv_feed(r->csv, data, len));
}

int fs_txn_reader_finish(fs_txn_reader *r)
{
    int rc = reader_result(r, fs_csv_finish(r->csv));
    if (rc == 0 && !r->have_header) {
        where_errf(r->err, sizeof r->err, r->name, 1, 0, "no header row (empty input)");
        r->failed = 1;
        rc = -1;
    }
    return rc;
}

const char *fs_txn_reader_error(const fs_txn_reader *r)
{
    return r->failed ? r->err : "";
}

const fs_txn_columns *fs_txn_reader_columns(const fs_txn_reader *r)
{
    return r->have_header ? &r->cols : NULL;
}

int fs_txn_read_file(FILE *in, const char *name, fs_txn_reader_cb cb,
                     fs_txn_reader_bad_cb on_bad, void *opaque, char *errstr,
                     size_t errstr_size)
{
    int rc = -1;
    char *buf = NULL;
    const char *prefix = name != NULL ? name : "", *sep = name != NULL ? ": " : "";
    fs_txn_reader *r = fs_txn_reader_new(cb, opaque);
    buf = malloc(READ_CHUNK);
    if (r == NULL || buf == NULL) {
        fs_errf(errstr, errstr_size, "%s%sout of memory", prefix, sep);
        goto out;
    }
    fs_txn_reader_set_name(r, name);
    fs_txn_reader_set_bad(r, on_bad);
    for (;;) {
        size_t n = fread(buf, 1, READ_CHUNK, in);
        if (n > 0) {
            rc = fs_txn_reader_feed(r, buf, n);
            if (rc != 0)
                goto fail;
        }
        if (n < READ_CHUNK) {
            if (ferror(in)) {
                fs_errf(errstr, errstr_size, "%s%sread error: %s", prefix, sep, strerror(errno));
                rc = -1;
                goto out;
            }
            break;
        }
    }
    rc = fs_txn_reader_finish(r);
    if (rc != 0)
        goto fail;
    goto out;
fail:
    if (rc == -1)
        fs_errf(errstr, errstr_size, "%s", fs_txn_reader_error(r));
out:
    free(buf);
    fs_txn_reader_free(r);
    return rc;
}

int fs_txn_read_stream(FILE *in, fs_txn_reader_cb cb, void *opaque, char *errstr,
                       size_t errstr_size)
{
    return fs_txn_read_file(in, NULL, cb, NULL, opaque, errstr, errstr_size);
}
