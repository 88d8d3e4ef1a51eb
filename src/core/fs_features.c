/*
 * fs_features: fitted statistics, the feature vector, and the transactions CSV reader.
 * See fs_features.h for what each feature means and how missing values are replaced.
 */
#include "fs_features.h"
#include "fs_hash.h"
#include "fs_time.h"
#include "fs_err.h"
#include "fs_file.h"
#include "fs_utf8.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_csv.h"

/* Caps: a training file beyond these is refused, never truncated. */
#define FIT_MAX_ROWS 100000000LL     /* rows a fitter accepts */
#define MAP_MAX_ENTRIES (1u << 22)   /* distinct values of one string column */
#define MAX_CATEGORIES 100000        /* distinct cat_id values */
#define STATS_MAX_BYTES (256u << 20) /* stats.json size */

/* The stateless features, in model order. */
#define NSTATELESS 17
static const char *const stateless_names[NSTATELESS] = {
    "amount",          "lat",
    "lon",             "population_city",
    "hour",            "log1p_amount",
    "log1p_population_city", "high_amount",
    "cat_id_risk",     "freq_merch",
    "freq_name_1",     "freq_name_2",
    "freq_jobs",       "freq_us_state",
    "freq_street",     "freq_one_city",
    "amount_to_cat_median",
};

/* Candidates that did not earn their place (computed after the model's features). */
#define NCANDIDATES 3
static const char *const candidate_names[NCANDIDATES] = {"night", "day_of_week",
                                                         "distance_km"};

_Static_assert(FS_FEATURES_ALL_N == NSTATELESS + FS_PROFILE_NFEATURES + NCANDIDATES,
               "every feature has a place");
_Static_assert(FS_FEATURES_N == NSTATELESS + FS_PROFILE_NFEATURES,
               "the model's features are the stateless ones and the behaviour ones");

/* Name of feature i of the full list: the stateless features, the behaviour features
 * (fs_profile's order), the candidates. */
static const char *feature_name(int i)
{
    if (i < NSTATELESS)
        return stateless_names[i];
    if (i < NSTATELESS + FS_PROFILE_NFEATURES)
        return fs_profile_feature_name(i - NSTATELESS);
    return candidate_names[i - NSTATELESS - FS_PROFILE_NFEATURES];
}

/* The frequency-encoded string columns, in feature order (freq_merch ...). */
enum { NFREQ = 7 };
static const char *const freq_cols[NFREQ] = {"merch",    "name_1", "name_2",  "jobs",
                                             "us_state", "street", "one_city"};

/* The numbers whose missing values are replaced by the training median. */
enum { FILL_AMOUNT, FILL_LAT, FILL_LON, FILL_POP, FILL_MLAT, FILL_MLON, NFILL };
static const char *const fill_names[NFILL] = {"amount",          "lat",          "lon",
                                              "population_city", "merchant_lat", "merchant_lon"};

int fs_features_count(void)
{
    return FS_FEATURES_N;
}

const char *fs_features_name(int i)
{
    if (i < 0 || i >= FS_FEATURES_N)
        return NULL;
    return feature_name(i);
}

int fs_features_all_count(void)
{
    return FS_FEATURES_ALL_N;
}

const char *fs_features_all_name(int i)
{
    if (i < 0 || i >= FS_FEATURES_ALL_N)
        return NULL;
    return feature_name(i);
}

/* ---- string -> number hash map (open addressing, FNV-1a) ---- */

typedef struct map_slot {
    char *key; /* NULL = empty slot; owned, NUL-terminated */
    size_t len;
    uint64_t hash;
    long long count;
    double value;
} map_slot;

typedef struct strmap {
    map_slot *slots;
    size_t cap; /* power of two, 0 before the first insert */
    size_t n;
} strmap;

static void map_free(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

static map_slot *map_find(const strmap *m, const char *key, size_t len)
{
    if (m->cap == 0)
        return NULL;
    uint64_t h = fs_hash_bytes(key, len);
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        map_slot *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
}

static int map_grow(strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    map_slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        map_slot *s = &m->slots[i];
        if (s->key == NULL)
            continue;
        size_t j = (size_t)s->hash & (ncap - 1);
        while (ns[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

/* Finds or inserts key; *created tells which. NULL if a cap or memory ran out. */
static map_slot *map_upsert(strmap *m, const char *key, size_t len, int *created)
{
    map_slot *s = map_find(m, key, len);
    *created = 0;
    if (s != NULL)
        return s;
    if (m->n >= MAP_MAX_ENTRIES)
        return NULL;
    if ((m->n + 1) * 2 > m->cap && map_grow(m) != 0)
        return NULL;
    uint64_t h = fs_hash_bytes(key, len);
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slots[i].key != NULL)
        i = (i + 1) & mask;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, key, len);
    copy[len] = '\0';
    s = &m->slots[i];
    s->key = copy;
    s->len = len;
    s->hash = h;
    s->count = 0;
    s->value = 0.0;
    m->n++;
    *created = 1;
    return s;
}

/* ---- growable array of doubles ---- */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static int dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 1024;
        double *nv = realloc(d->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        d->v = nv;
        d->cap = ncap;
    }
    d->v[d->n++] = x;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of sorted v (the mean of the two middle values when n is even, as numpy). */
static double sorted_median(const double *v, size_t n)
{
    if (n % 2 == 1)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Quantile q of sorted v with linear interpolation between closest ranks (numpy's default
 * "linear" method, including its way of interpolating). */
static double sorted_quantile(const double *v, size_t n, double q)
{
    double h = (double)(n - 1) * q;
    double lo = floor(h);
    size_t i = (size_t)lo;
    double g = h - lo;
    if (i + 1 >= n)
        return v[n - 1];
    double a = v[i], b = v[i + 1], d = b - a;
    return g >= 0.5 ? b - d * (1.0 - g) : a + d * g;
}

/* ---- statistics ---- */

struct fs_stats {
    long long rows;
    double fill[NFILL];
    int hour_fill, dow_fill;
    double amount_p99;
    strmap freq[NFREQ]; /* count per value; value field = count / rows */
    strmap cat_median;  /* value field = median amount of the category; count field =
                         * its customer-profile slot (sorted order, FS_PROFILE_CAT_OTHER
                         * from the 16th on) */
};

struct fs_stats_fitter {
    long long rows;
    strmap freq[NFREQ];
    dvec num[NFILL];
    long long hour_count[24], dow_count[7];
    strmap cats; /* count field = index into cat_amounts */
    dvec *cat_amounts;
    size_t ncats;
};

void fs_stats_free(fs_stats *stats)
{
    if (stats == NULL)
        return;
    for (int i = 0; i < NFREQ; i++)
        map_free(&stats->freq[i]);
    map_free(&stats->cat_median);
    free(stats);
}

long long fs_stats_rows(const fs_stats *stats)
{
    return stats->rows;
}

fs_stats_fitter *fs_stats_fitter_new(void)
{
    return calloc(1, sizeof(fs_stats_fitter));
}

void fs_stats_fitter_free(fs_stats_fitter *f)
{
    if (f == NULL)
        return;
    for (int i = 0; i < NFREQ; i++)
        map_free(&f->freq[i]);
    for (int i = 0; i < NFILL; i++)
        free(f->num[i].v);
    map_free(&f->cats);
    for (size_t i = 0; i < f->ncats; i++)
        free(f->cat_amounts[i].v);
    free(f->cat_amounts);
    free(f);
}

static const char *freq_value(const fs_txn *t, int i)
{
    switch (i) {
    case 0: return t->merch;
    case 1: return t->name_1;
    case 2: return t->name_2;
    case 3: return t->jobs;
    case 4: return t->us_state;
    case 5: return t->street;
    default: return t->one_city;
    }
}

static double fill_value(const fs_txn *t, int i)
{
    switch (i) {
    case FILL_AMOUNT: return t->amount;
    case FILL_LAT: return t->lat;
    case FILL_LON: return t->lon;
    case FILL_POP: return t->population_city;
    case FILL_MLAT: return t->merchant_lat;
    default: return t->merchant_lon;
    }
}

static int time_hour(int64_t t)
{
    return (int)(fs_second_of_day(t) / 3600);
}

/* Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday). */
static int time_dow(int64_t t)
{
    int64_t days = fs_day_of(t);
    return (int)(days + 3 - fs_floor_div(days + 3, 7) * 7);
}

int fs_stats_fitter_add(fs_stats_fitter *f, const fs_txn *t, char *errstr, size_t errstr_size)
{
    if (f->rows >= FIT_MAX_ROWS) {
        fs_errf(errstr, errstr_size, "more than %lld training rows", FIT_MAX_ROWS);
        return -1;
    }
    for (int i = 0; i < NFREQ; i++) {
        const char *v = freq_value(t, i);
        size_t len = strlen(v);
        if (len == 0)
            continue; /* missing: not counted; it maps to frequency 0 */
        map_slot *s = map_find(&f->freq[i], v, len);
        if (s == NULL) {
            /* Only a value not seen before is checked: the stored ones all were. */
            if (!fs_utf8_valid(v, len)) {
                fs_errf(errstr, errstr_size, "%s: not valid UTF-8", freq_cols[i]);
                return -1;
            }
            int created;
            s = map_upsert(&f->freq[i], v, len, &created);
        }
        if (s == NULL) {
            fs_errf(errstr, errstr_size, "%s: more than %u distinct values or out of memory",
                   freq_cols[i], MAP_MAX_ENTRIES);
            return -1;
        }
        s->count++;
    }
    for (int i = 0; i < NFILL; i++) {
        double v = fill_value(t, i);
        if (!isnan(v) && dvec_push(&f->num[i], v) != 0) {
            fs_errf(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    if (t->transaction_time[0] != '\0') {
        f->hour_count[time_hour(t->time)]++;
        f->dow_count[time_dow(t->time)]++;
    }
    size_t clen = strlen(t->cat_id);
    if (clen > 0 && !isnan(t->amount)) {
        int created = 0;
        map_slot *s = map_find(&f->cats, t->cat_id, clen);
        if (s == NULL) {
            if (!fs_utf8_valid(t->cat_id, clen)) {
                fs_errf(errstr, errstr_size, "cat_id: not valid UTF-8");
                return -1;
            }
            if (f->cats.n < MAX_CATEGORIES)
                s = map_upsert(&f->cats, t->cat_id, clen, &created);
        }
        if (s == NULL) {
            fs_errf(errstr, errstr_size, "cat_id: more than %d distinct values or out of memory",
                   MAX_CATEGORIES);
            return -1;
        }
        if (created) {
            dvec *na = realloc(f->cat_amounts, (f->ncats + 1) * sizeof *na);
            if (na == NULL) {
                fs_errf(errstr, errstr_size, "out of memory");
                return -1;
            }
            f->cat_amounts = na;
            memset(&f->cat_amounts[f->ncats], 0, sizeof *na);
            s->count = (long long)f->ncats++;
        }
        if (dvec_push(&f->cat_amounts[s->count], t->amount) != 0) {
            fs_errf(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    f->rows++;
    return 0;
}

static int argmax(const long long *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Copies every key (and its count/value) of src into dst. */
static int map_copy(strmap *dst, const strmap *src)
{
    for (size_t i = 0; i < src->cap; i++) {
        const map_slot *s = &src->slots[i];
        if (s->key == NULL)
            continue;
        int created;
        map_slot *d = map_upsert(dst, s->key, s->len, &created);
        if (d == NULL)
            return -1;
        d->count = s->count;
        d->value = s->value;
    }
    return 0;
}

static int cmp_slot_key(const void *a, const void *b)
{
    const map_slot *x = *(const map_slot *const *)a, *y = *(const map_slot *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Derived values the feature computation reads: frequency = count / rows; each category's
 * profile slot (its rank in byte order, the last slot shared from the 16th on). Returns 0,
 * or -1 if memory ran out. */
static int stats_derive(fs_stats *s)
{
    for (int i = 0; i < NFREQ; i++)
        for (size_t k = 0; k < s->freq[i].cap; k++)
            if (s->freq[i].slots[k].key != NULL)
                s->freq[i].slots[k].value =
                    (double)s->freq[i].slots[k].count / (double)s->rows;
    strmap *cm = &s->cat_median;
    if (cm->n == 0)
        return 0;
    map_slot **order = malloc(cm->n * sizeof *order);
    if (order == NULL)
        return -1;
    size_t n = 0;
    for (size_t k = 0; k < cm->cap; k++)
        if (cm->slots[k].key != NULL)
            order[n++] = &cm->slots[k];
    qsort(order, n, sizeof *order, cmp_slot_key);
    for (size_t k = 0; k < n; k++)
        order[k]->count = k < FS_PROFILE_CAT_OTHER ? (long long)k : FS_PROFILE_CAT_OTHER;
    free(order);
    return 0;
}

fs_stats *fs_stats_fitter_finish(fs_stats_fitter *f, char *errstr, size_t errstr_size)
{
    fs_stats *s = NULL;
    if (f->rows == 0) {
        fs_errf(errstr, errstr_size, "no training rows");
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->rows = f->rows;
    for (int i = 0; i < NFILL; i++) {
        dvec *d = &f->num[i];
        qsort(d->v, d->n, sizeof *d->v, cmp_double);
        /* A column missing in every row has no median: 0 stands in. */
        s->fill[i] = d->n ? sorted_median(d->v, d->n) : 0.0;
    }
    s->amount_p99 =
        f->num[FILL_AMOUNT].n ? sorted_quantile(f->num[FILL_AMOUNT].v, f->num[FILL_AMOUNT].n, 0.99)
                              : 0.0;
    s->hour_fill = argmax(f->hour_count, 24);
    s->dow_fill = argmax(f->dow_count, 7);
    for (int i = 0; i < NFREQ; i++)
        if (map_copy(&s->freq[i], &f->freq[i]) != 0)
            goto oom;
    for (size_t i = 0; i < f->cats.cap; i++) {
        const map_slot *c = &f->cats.slots[i];
        if (c->key == NULL)
            continue;
        dvec *d = &f->cat_amounts[c->count];
        qsort(d->v, d->n, sizeof *d->v, cmp_double);
        int created;
        map_slot *m = map_upsert(&s->cat_median, c->key, c->len, &created);
        if (m == NULL)
            goto oom;
        m->value = sorted_median(d->v, d->n);
    }
    if (stats_derive(s) != 0)
        goto oom;
    return s;
oom:
    fs_errf(errstr, errstr_size, "out of memory");
fail:
    fs_stats_free(s);
    return NULL;
}

/* ---- stats.json ---- */

#define STATS_FORMAT "fs_stats/1"

static json_t *map_to_json(const strmap *m, int counts)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < m->cap; i++) {
        const map_slot *s = &m->slots[i];
        if (s->key == NULL)
            continue;
        json_t *v = counts ? json_integer(s->count) : json_real(s->value);
        if (v == NULL || json_object_setn_new(o, s->key, s->len, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int fs_stats_save(const fs_stats *s, const char *path, char *errstr, size_t errstr_size)
{
    int rc = -1;
    json_t *root = json_object(), *fill = json_object(), *freq = json_object();
    json_t *cats = map_to_json(&s->cat_median, 0);
    if (root == NULL || fill == NULL || freq == NULL || cats == NULL)
        goto oom;
    for (int i = 0; i < NFILL; i++)
        if (json_object_set_new(fill, fill_names[i], json_real(s->fill[i])) != 0)
            goto oom;
    if (json_object_set_new(fill, "hour", json_integer(s->hour_fill)) != 0 ||
        json_object_set_new(fill, "day_of_week", json_integer(s->dow_fill)) != 0)
        goto oom;
    for (int i = 0; i < NFREQ; i++) {
        json_t *m = map_to_json(&s->freq[i], 1);
        if (m == NULL || json_object_set_new(freq, freq_cols[i], m) != 0)
            goto oom;
    }
    if (json_object_set_new(root, "format", json_string(STATS_FORMAT)) != 0 ||
        json_object_set_new(root, "rows", json_integer(s->rows)) != 0 ||
        json_object_set_new(root, "amount_p99", json_real(s->amount_p99)) != 0)
        goto oom;
    if (json_object_set(root, "fill", fill) != 0 ||
        json_object_set(root, "frequency_counts", freq) != 0 ||
        json_object_set(root, "category_median_amount", cats) != 0)
        goto oom;
    if (json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) !=
        0) {
        fs_errf(errstr, errstr_size, "%s: cannot write: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    fs_errf(errstr, errstr_size, "%s: out of memory building stats.json", path);
out:
    json_decref(root);
    json_decref(fill);
    json_decref(freq);
    json_decref(cats);
    return rc;
}

/* Reads a finite number member; -1 with a message naming it otherwise. */
static int get_number(const json_t *obj, const char *key, const char *where, double *out,
                      const char *name, char *errstr, size_t errstr_size)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_number(v) || !isfinite(json_number_value(v))) {
        fs_errf(errstr, errstr_size, "%s: %s%s: expected a finite number", name, where, key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int get_int(const json_t *obj, const char *key, const char *where, long long lo,
                   long long hi, long long *out, const char *name, char *errstr,
                   size_t errstr_size)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < lo ||
        json_integer_value(v) > hi) {
        fs_errf(errstr, errstr_size, "%s: %s%s: expected an integer in [%lld, %lld]", name,
               where, key, lo, hi);
        return -1;
    }
    *out = (long long)json_integer_value(v);
    return 0;
}

fs_stats *fs_stats_load_buffer(const char *text, size_t len, const char *name, char *errstr,
                               size_t errstr_size)
{
    fs_stats *s = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    if (len > STATS_MAX_BYTES) {
        fs_errf(errstr, errstr_size, "%s: larger than %u bytes", name, STATS_MAX_BYTES);
        goto fail;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        fs_errf(errstr, errstr_size, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        fs_errf(errstr, errstr_size, "%s: expected a JSON object", name);
        goto fail;
    }
    const json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), STATS_FORMAT) != 0) {
        fs_errf(errstr, errstr_size, "%s: format: expected \"%s\"", name, STATS_FORMAT);
        goto fail;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    if (get_int(root, "rows", "", 1, FIT_MAX_ROWS, &s->rows, name, errstr, errstr_size) != 0 ||
        get_number(root, "amount_p99", "", &s->amount_p99, name, errstr, errstr_size) != 0)
        goto fail;
    const json_t *fill = json_object_get(root, "fill");
    if (!json_is_object(fill)) {
        fs_errf(errstr, errstr_size, "%s: fill: expected an object", name);
        goto fail;
    }
    for (int i = 0; i < NFILL; i++) {
        if (get_number(fill, fill_names[i], "fill.", &s->fill[i], name, errstr, errstr_size) !=
            0)
            goto fail;
        /* The same ranges fs_txn enforces on the values they stand in for. */
        double lim = (i == FILL_LAT || i == FILL_MLAT) ? 90.0
                     : (i == FILL_LON || i == FILL_MLON) ? 180.0
                                                         : HUGE_VAL;
        double lo = lim == HUGE_VAL ? 0.0 : -lim;
        if (!(s->fill[i] >= lo && s->fill[i] <= lim)) {
            fs_errf(errstr, errstr_size, "%s: fill.%s: %.17g is out of range", name,
                   fill_names[i], s->fill[i]);
            goto fail;
        }
    }
    if (!(s->amount_p99 >= 0.0)) {
        fs_errf(errstr, errstr_size, "%s: amount_p99: expected a number >= 0", name);
        goto fail;
    }
    long long h, d;
    if (get_int(fill, "hour", "fill.", 0, 23, &h, name, errstr, errstr_size) != 0 ||
        get_int(fill, "day_of_week", "fill.", 0, 6, &d, name, errstr, errstr_size) != 0)
        goto fail;
    s->hour_fill = (int)h;
    s->dow_fill = (int)d;

    const json_t *freq = json_object_get(root, "frequency_counts");
    if (!json_is_object(freq)) {
        fs_errf(errstr, errstr_size, "%s: frequency_counts: expected an object", name);
        goto fail;
    }
    for (int i = 0; i < NFREQ; i++) {
        const json_t *m = json_object_get(freq, freq_cols[i]);
        if (!json_is_object(m)) {
            fs_errf(errstr, errstr_size, "%s: frequency_counts.%s: expected an object", name,
                   freq_cols[i]);
            goto fail;
        }
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)m, key, v)
        {
            size_t klen = strlen(key);
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > s->rows) {
                fs_errf(errstr, errstr_size,
                       "%s: frequency_counts.%s: value \"%.64s\": expected a count in [1, "
                       "rows]",
                       name, freq_cols[i], key);
                goto fail;
            }
            if (klen == 0 || klen >= FS_TXN_TEXT_MAX) {
                fs_errf(errstr, errstr_size,
                       "%s: frequency_counts.%s: a value of length %zu (expected 1..%d)", name,
                       freq_cols[i], klen, FS_TXN_TEXT_MAX - 1);
                goto fail;
            }
            int created;
            map_slot *slot = map_upsert(&s->freq[i], key, klen, &created);
            if (slot == NULL)
                goto oom;
            slot->count = (long long)json_integer_value(v);
        }
    }
    const json_t *cats = json_object_get(root, "category_median_amount");
    if (!json_is_object(cats)) {
        fs_errf(errstr, errstr_size, "%s: category_median_amount: expected an object", name);
        goto fail;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)cats, key, v)
    {
        size_t klen = strlen(key);
        if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
            json_number_value(v) < 0.0 || klen == 0 ||
            klen >= FS_TXN_TEXT_MAX) {
            fs_errf(errstr, errstr_size,
                   "%s: category_median_amount \"%.64s\": expected a non-empty name and a "
                   "finite number >= 0",
                   name, key);
            goto fail;
        }
        int created;
        map_slot *slot = map_upsert(&s->cat_median, key, klen, &created);
        if (slot == NULL)
            goto oom;
        slot->value = json_number_value(v);
    }
    if (stats_derive(s) != 0)
        goto oom;
    json_decref(root);
    return s;
oom:
    fs_errf(errstr, errstr_size, "%s: out of memory or too many values", name);
fail:
    json_decref(root);
    fs_stats_free(s);
    return NULL;
}

fs_stats *fs_stats_load(const char *path, char *errstr, size_t errstr_size)
{
    char why[256];
    size_t len;
    char *buf = fs_read_file(path, STATS_MAX_BYTES, &len, why, sizeof why);
    if (buf == NULL) {
        fs_errf(errstr, errstr_size, "%s: %s", path, why);
        return NULL;
    }
    fs_stats *s = fs_stats_load_buffer(buf, len, path, errstr, errstr_size);
    free(buf);
    return s;
}

/* ---- the feature vector ---- */

static int cat_risk(const char *cat)
{
    if (strcmp(cat, "shopping_net") == 0 || strcmp(cat, "misc_net") == 0 ||
        strcmp(cat, "grocery_pos") == 0)
        return 2;
    if (strcmp(cat, "shopping_pos") == 0 || strcmp(cat, "gas_transport") == 0)
        return 1;
    return 0;
}

#define EARTH_RADIUS_KM 6371.0
#define DEG2RAD (3.14159265358979323846 / 180.0)

static double haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 * DEG2RAD, p2 = lat2 * DEG2RAD;
    double dp = (lat2 - lat1) * DEG2RAD, dl = (lon2 - lon1) * DEG2RAD;
    double a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    if (a > 1.0)
        a = 1.0;
    return 2.0 * EARTH_RADIUS_KM * asin(sqrt(a));
}

static double or_fill(double v, double fill)
{
    return isnan(v) ? fill : v;
}

/* Computes the first n features of the full list (n = FS_FEATURES_N or FS_FEATURES_ALL_N)
 * and adds the transaction to the customer's profile. */
static int compute(const fs_stats *s, const fs_txn *t, fs_profile *profile, double *x, int n,
                   char *errstr, size_t errstr_size)
{
    if (s == NULL || t == NULL || profile == NULL || x == NULL) {
        fs_errf(errstr, errstr_size, "features: no statistics, record, profile or output");
        return -1;
    }
    double amount = or_fill(t->amount, s->fill[FILL_AMOUNT]);
    double pop = or_fill(t->population_city, s->fill[FILL_POP]);
    int hour = s->hour_fill, dow = s->dow_fill;
    if (t->transaction_time[0] != '\0') {
        hour = time_hour(t->time);
        dow = time_dow(t->time);
    }
    x[0] = amount;
    x[1] = or_fill(t->lat, s->fill[FILL_LAT]);
    x[2] = or_fill(t->lon, s->fill[FILL_LON]);
    x[3] = pop;
    x[4] = hour;
    x[5] = log1p(fmax(amount, 0.0));
    x[6] = log1p(fmax(pop, 0.0));
    x[7] = amount > s->amount_p99 ? 1.0 : 0.0;
    x[8] = cat_risk(t->cat_id);
    for (int i = 0; i < NFREQ; i++) {
        const char *v = freq_value(t, i);
        const map_slot *slot = map_find(&s->freq[i], v, strlen(v));
        x[9 + i] = slot ? slot->value : 0.0;
    }
    const map_slot *c = map_find(&s->cat_median, t->cat_id, strlen(t->cat_id));
    double typical = c ? c->value : s->fill[FILL_AMOUNT];
    x[16] = amount / fmax(typical, 0.01);
    /* The customer's behaviour: a record always has a time (fs_txn requires one); an empty
     * one would read as the customer's latest (no ageing). */
    fs_profile_event ev = {
        .time = t->transaction_time[0] != '\0' ? t->time : profile->last_time,
        .amount = amount,
        .cat = c ? (int)c->count : FS_PROFILE_CAT_OTHER,
    };
    fs_profile_step(profile, &ev, x + NSTATELESS);
    if (n > FS_FEATURES_N) {
        double *k = x + FS_FEATURES_N;
        k[0] = (hour >= 22 || hour < 4) ? 1.0 : 0.0;
        k[1] = dow;
        k[2] = haversine_km(x[1], x[2], or_fill(t->merchant_lat, s->fill[FILL_MLAT]),
                            or_fill(t->merchant_lon, s->fill[FILL_MLON]));
    }
    return 0;
}

int fs_features_compute(const fs_stats *s, const fs_txn *t, fs_profile *profile, double *x,
                        char *errstr, size_t errstr_size)
{
    return compute(s, t, profile, x, FS_FEATURES_N, errstr, errstr_size);
}

int fs_features_compute_all(const fs_stats *s, const fs_txn *t, fs_profile *profile, double *x,
                            char *errstr, size_t errstr_size)
{
    return compute(s, t, profile, x, FS_FEATURES_ALL_N, errstr, errstr_size);
}

fs_profile *fs_features_customer(fs_profile_store *store, const fs_txn *t, int64_t expiry,
                                 char *errstr, size_t errstr_size)
{
    char key[FS_PROFILE_KEY_MAX];
    int len = fs_profile_key(t, key, sizeof key);
    if (len < 0) {
        fs_errf(errstr, errstr_size, "customer key (name_1|name_2|street|post_code) longer "
                                     "than %d bytes", FS_PROFILE_KEY_MAX - 1);
        return NULL;
    }
    int full = 0;
    fs_profile *p = fs_profile_store_upsert(store, key, (size_t)len, NULL, &full);
    if (p != NULL && t->transaction_time[0] != '\0' && fs_profile_expired(p, t->time, expiry))
        fs_profile_init(p);
    if (p == NULL)
        fs_errf(errstr, errstr_size, full ? "customer state full: %zu customers held"
                                          : "customer state: out of memory (%zu customers)",
                fs_profile_store_count(store));
    return p;
}
