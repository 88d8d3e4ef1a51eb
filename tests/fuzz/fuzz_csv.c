/*
 * Fuzz harness for the CSV path: fs_csv with small caps and fs_txn_reader. The first input
 * byte picks a chunk size; the same input must give the same rows (or the same error) fed
 * whole and in chunks, and every record read must survive a transactions-message round
 * trip (format, parse) field for field.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fs_csv.h"
#include "fs_msg.h"
#include "fs_txn.h"

/* FNV-1a over everything a run saw, so two runs can be compared. */
typedef struct {
    uint64_t h;
    size_t rows;
} digest;

static void mixin(digest *d, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        d->h ^= s[i];
        d->h *= 0x100000001b3ull;
    }
}

static int csv_row(const fs_csv_row *row, void *opaque)
{
    digest *d = opaque;
    mixin(d, &row->line, sizeof row->line);
    mixin(d, &row->index, sizeof row->index);
    mixin(d, &row->nfields, sizeof row->nfields);
    for (size_t i = 0; i < row->nfields; i++) {
        if (row->fields[i][row->lens[i]] != '\0')
            abort();
        mixin(d, row->fields[i], row->lens[i] + 1);
    }
    d->rows++;
    return 0;
}

static int same_num(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static int txn_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    digest *d = opaque;
    static char buf[16384];
    static fs_txn u;
    char err[256];
    mixin(d, &row->line, sizeof row->line);
    mixin(d, &t->time, sizeof t->time);
    int n = fs_msg_format_transaction(buf, sizeof buf, "fuzz-id", t);
    if (n < 0)
        abort();
    if (fs_msg_parse_transaction(buf, (size_t)n, &u, err, sizeof err) != 0)
        abort();
    if (u.time != t->time || strcmp(u.transaction_id, "fuzz-id") != 0 ||
        !same_num(u.amount, t->amount) || !same_num(u.lat, t->lat) ||
        !same_num(u.lon, t->lon) || !same_num(u.post_code, t->post_code) ||
        !same_num(u.population_city, t->population_city) ||
        !same_num(u.merchant_lat, t->merchant_lat) ||
        !same_num(u.merchant_lon, t->merchant_lon) || strcmp(u.merch, t->merch) != 0 ||
        strcmp(u.cat_id, t->cat_id) != 0 || strcmp(u.name_1, t->name_1) != 0 ||
        strcmp(u.name_2, t->name_2) != 0 || strcmp(u.gender, t->gender) != 0 ||
        strcmp(u.street, t->street) != 0 || strcmp(u.one_city, t->one_city) != 0 ||
        strcmp(u.us_state, t->us_state) != 0 || strcmp(u.jobs, t->jobs) != 0 ||
        strcmp(u.transaction_time, t->transaction_time) != 0)
        abort();
    d->rows++;
    return 0;
}

static int run_csv(const uint8_t *data, size_t size, size_t chunk, digest *d, char *err,
                   size_t errsz)
{
    d->h = 0xcbf29ce484222325ull;
    d->rows = 0;
    fs_csv *c = fs_csv_new(csv_row, d, 64, 8);
    if (c == NULL)
        abort();
    int rc = 0;
    for (size_t o = 0; o < size && rc == 0; o += chunk)
        rc = fs_csv_feed(c, data + o, size - o < chunk ? size - o : chunk);
    if (rc == 0)
        rc = fs_csv_finish(c);
    strncpy(err, fs_csv_error(c), errsz - 1);
    err[errsz - 1] = '\0';
    fs_csv_free(c);
    return rc;
}

static int run_txn(const uint8_t *data, size_t size, size_t chunk, digest *d, char *err,
                   size_t errsz)
{
    d->h = 0xcbf29ce484222325ull;
    d->rows = 0;
    fs_txn_reader *r = fs_txn_reader_new(txn_row, d);
    if (r == NULL)
        abort();
    int rc = 0;
    for (size_t o = 0; o < size && rc == 0; o += chunk)
        rc = fs_txn_reader_feed(r, data + o, size - o < chunk ? size - o : chunk);
    if (rc == 0)
        rc = fs_txn_reader_finish(r);
    strncpy(err, fs_txn_reader_error(r), errsz - 1);
    err[errsz - 1] = '\0';
    fs_txn_reader_free(r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t chunk = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    digest a, b;
    char ea[600], eb[600];
    int ra = run_csv(data, size, size ? size : 1, &a, ea, sizeof ea);
    int rb = run_csv(data, size, chunk, &b, eb, sizeof eb);
    if (ra != rb || a.h != b.h || a.rows != b.rows || strcmp(ea, eb) != 0)
        abort();
    ra = run_txn(data, size, size ? size : 1, &a, ea, sizeof ea);
    rb = run_txn(data, size, chunk, &b, eb, sizeof eb);
    if (ra != rb || a.h != b.h || a.rows != b.rows || strcmp(ea, eb) != 0)
        abort();
    return 0;
}
