/*
 * fs_txn_reader: a push reader of transactions CSVs (fs_csv + fs_txn_columns).
 */
#include "fs_txn_reader.h"
#include "fs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    fs_txn_where(r->err, sizeof r->err, r->name, row->line, 0, why);
    r->failed = 1;
    return -1;
}

static int reader_row(const fs_csv_row *row, void *opaque)
{
    fs_txn_reader *r = opaque;
    char why[512];
    size_t column = 0;
    if (!r->have_header) {
        if (fs_txn_columns_map(&r->cols, row, &column, why, sizeof why) != 0) {
            fs_txn_where(r->err, sizeof r->err, r->name, row->line, column, why);
            r->failed = 1;
            return -1;
        }
        r->have_header = 1;
        return 0;
    }
    if (fs_txn_row_parse(&r->txn, &r->cols, row, &column, why, sizeof why) != 0) {
        fs_txn_where(r->err, sizeof r->err, r->name, row->line, column, why);
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
    fs_txn_where(r->err, sizeof r->err, r->name, line, column, why);
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
        fs_txn_where(r->err, sizeof r->err, r->name, 1, 0, "no header row (empty input)");
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
