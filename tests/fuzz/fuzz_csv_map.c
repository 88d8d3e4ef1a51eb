/*
 * Fuzz harness for the CSV column mapper (fs_csv_map, fs_txn_columns). The first input byte
 * sizes the message buffer, the rest is a CSV whose first row is the header. Checks: the
 * result agrees with a plain recount (every wanted name found at the index given, every
 * missing required column counted), the message fits its buffer and, when the buffer is
 * large, names every missing column; fs_txn_columns agrees with the generic mapper.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_csv.h"
#include "fs_csv_map.h"
#include "fs_txn_columns.h"

typedef struct {
    size_t why_size;
    int done;
} state;

static const fs_csv_map_column wanted[] = {
    {"transaction_time", 1}, {"merch", 1}, {"amount", 1}, {"lat", 1}, {"a", 1},
    {"transaction_id", 0},   {"target", 0}, {"", 1},
};
#define NW (sizeof wanted / sizeof wanted[0])

static int count_named(const fs_csv_row *h, const char *name)
{
    int n = 0;
    for (size_t c = 0; c < h->nfields; c++)
        n += h->lens[c] == strlen(name) && memcmp(h->fields[c], name, h->lens[c]) == 0;
    return n;
}

static int on_row(const fs_csv_row *h, void *opaque)
{
    state *s = opaque;
    int idx[NW];
    fs_csv_map_result res;
    char why[1024];
    memset(why, 'x', sizeof why);
    int rc = fs_csv_map_header(h, wanted, NW, idx, &res, why, s->why_size);
    size_t missing = 0;
    int dup = 0;
    for (size_t i = 0; i < NW; i++) {
        int n = count_named(h, wanted[i].name);
        dup |= n > 1;
        if (n == 0) {
            if (idx[i] != -1)
                abort();
            missing += wanted[i].required != 0;
            continue;
        }
        if (idx[i] < 0 || (size_t)idx[i] >= h->nfields ||
            h->lens[idx[i]] != strlen(wanted[i].name) ||
            memcmp(h->fields[idx[i]], wanted[i].name, h->lens[idx[i]]) != 0)
            abort();
    }
    if (res.nmissing != missing || (res.duplicate != 0) != dup)
        abort();
    if ((rc == 0) != (missing == 0 && !dup))
        abort();
    if (s->why_size > 0 && rc != 0 && strnlen(why, s->why_size) >= s->why_size)
        abort(); /* not terminated inside the buffer */
    if (rc != 0 && !dup && s->why_size >= sizeof why)
        for (size_t i = 0; i < NW; i++) {
            char q[64];
            snprintf(q, sizeof q, "\"%s\"", wanted[i].name);
            if (wanted[i].required && idx[i] < 0 && strstr(why, q) == NULL)
                abort(); /* a missing column not named */
        }

    fs_txn_columns cols;
    size_t column = 0;
    char why2[512];
    int trc = fs_txn_columns_map(&cols, h, &column, why2, sizeof why2);
    if (trc == 0 && cols.nmissing != 0)
        abort();
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        if (cols.col[f] >= 0 && (size_t)cols.col[f] >= h->nfields)
            abort();
    if (trc != 0 && column == 0 && cols.nmissing == 0)
        abort(); /* an error is either a duplicate (with its column) or missing fields */
    s->done = 1;
    return 1; /* only the header */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    state s = {data[0] == 255 ? 1024 : (size_t)data[0] * 4, 0};
    fs_csv *csv = fs_csv_new(on_row, &s, 256, 64);
    if (csv == NULL)
        return 0;
    int rc = fs_csv_feed(csv, data + 1, size - 1);
    if (rc == 0)
        fs_csv_finish(csv);
    fs_csv_free(csv);
    return 0;
}
