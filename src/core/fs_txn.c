/*
 * fs_txn_record: typed, validated transaction records from text values.
 */
#include "fs_txn_impl.h"
#include "fs_err.h"
#include "fs_utf8.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


const char *const fs_txni_field_names[FS_TXN_NFIELDS] = {
    "transaction_time", "merch",           "cat_id", "amount",       "name_1",
    "name_2",           "gender",          "street", "one_city",     "us_state",
    "post_code",        "lat",             "lon",    "population_city", "jobs",
    "merchant_lat",     "merchant_lon",
};

/* Longest numeric cell accepted; real data needs a few dozen bytes. */
#define NUMBER_MAX 64

const char *fs_txn_field_name(enum fs_txn_field f)
{
    if ((int)f < 0 || f >= FS_TXN_NFIELDS)
        return "?";
    return fs_txni_field_names[f];
}

int fs_txn_field_lookup(const char *name, size_t len)
{
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        if (strlen(fs_txni_field_names[f]) == len && memcmp(fs_txni_field_names[f], name, len) == 0)
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

/* A short, printable rendering of a bad value for an error message (fs_excerpt). */
void fs_txni_excerpt(char *dst, size_t size, const char *s, size_t len)
{
    fs_excerpt(dst, size, s, len, FS_TXNI_EXCERPT_MAX);
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
    char ex[FS_TXNI_EXCERPT_SIZE];
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
        fs_txni_excerpt(ex, sizeof ex, s, len);
        fs_errf(errstr, errstr_size, "not a number: \"%s\"", ex);
        return -1;
    }
    if (len > NUMBER_MAX) {
        fs_txni_excerpt(ex, sizeof ex, s, len);
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
        fs_txni_excerpt(ex, sizeof ex, s, len);
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

void fs_txni_init(fs_txn *t)
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

const char **fs_txni_string_slot(fs_txn *t, enum fs_txn_field f)
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

double *fs_txni_number_slot(fs_txn *t, enum fs_txn_field f)
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
int fs_txni_set_string(fs_txn *t, enum fs_txn_field f, const char *s, size_t len, char *errstr,
                      size_t errstr_size)
{
    char ex[FS_TXNI_EXCERPT_SIZE];
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
            fs_txni_excerpt(ex, sizeof ex, s, len);
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
    *fs_txni_string_slot(t, f) = p;
    return 0;
}

int fs_txni_set_number(fs_txn *t, enum fs_txn_field f, double v, char *errstr,
                      size_t errstr_size)
{
    if (check_range(f, v, errstr, errstr_size) != 0)
        return -1;
    *fs_txni_number_slot(t, f) = v;
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
    char ex[FS_TXNI_EXCERPT_SIZE];
    if (len == 1 && (s[0] == '0' || s[0] == '1')) {
        t->target = s[0] - '0';
        return 0;
    }
    fs_txni_excerpt(ex, sizeof ex, s, len);
    fs_errf(errstr, errstr_size, "target: expected 0 or 1, got \"%s\"", ex);
    return -1;
}

int fs_txn_from_strings(fs_txn *t, const char *const values[FS_TXN_NFIELDS],
                        const size_t lens[FS_TXN_NFIELDS], const char *transaction_id,
                        const char *target, int *bad_field, char *errstr, size_t errstr_size)
{
    char why[256];
    int bad = -1;
    fs_txni_init(t);
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        const char *s = values[f] != NULL ? values[f] : "";
        size_t len = values[f] != NULL ? lens[f] : 0;
        int rc;
        if (fs_txn_field_is_numeric((enum fs_txn_field)f)) {
            double v;
            rc = fs_parse_number(s, len, &v, why, sizeof why);
            if (rc == 0)
                rc = fs_txni_set_number(t, (enum fs_txn_field)f, v, why, sizeof why);
        } else {
            rc = fs_txni_set_string(t, (enum fs_txn_field)f, s, len, why, sizeof why);
        }
        if (rc != 0) {
            bad = f;
            fs_errf(errstr, errstr_size, "%s: %s", fs_txni_field_names[f], why);
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
