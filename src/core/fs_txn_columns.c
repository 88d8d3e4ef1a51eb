/*
 * fs_txn_columns: a transactions CSV header mapped onto the record's fields; rows to records.
 */
#include "fs_txn_columns.h"
#include "fs_csv_map.h"
#include "fs_err.h"
#include "fs_txn_impl.h"

#include <string.h>

/* "name:line:column: why" with a name, else "line L, column C: why"; column 0 = the whole
 * line. */
void fs_txn_where(char *errstr, size_t errstr_size, const char *name, size_t line,
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

/* The wanted columns: the 17 fields in fs_txn_field order, then the two optional ones. */
#define WANT_ID FS_TXN_NFIELDS
#define WANT_TARGET (FS_TXN_NFIELDS + 1)
#define NWANTED (FS_TXN_NFIELDS + 2)

int fs_txn_columns_map(fs_txn_columns *cols, const fs_csv_row *header, size_t *column,
                       char *why, size_t why_size)
{
    fs_csv_map_column wanted[NWANTED];
    int index[NWANTED];
    fs_csv_map_result res;
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        wanted[f] = (fs_csv_map_column){fs_txni_field_names[f], 1};
    wanted[WANT_ID] = (fs_csv_map_column){"transaction_id", 0};
    wanted[WANT_TARGET] = (fs_csv_map_column){"target", 0};
    int rc = fs_csv_map_header(header, wanted, NWANTED, index, &res, why, why_size);
    for (int f = 0; f < FS_TXN_NFIELDS; f++)
        cols->col[f] = index[f];
    cols->transaction_id_col = index[WANT_ID];
    cols->target_col = index[WANT_TARGET];
    cols->ncols = header->nfields;
    cols->nmissing = res.nmissing;
    *column = res.duplicate;
    return rc;
}

int fs_txn_columns_from_header(fs_txn_columns *cols, const fs_csv_row *header, char *errstr,
                               size_t errstr_size)
{
    char why[512];
    size_t column = 0;
    if (fs_txn_columns_map(cols, header, &column, why, sizeof why) != 0) {
        fs_txn_where(errstr, errstr_size, NULL, header->line, column, why);
        return -1;
    }
    return 0;
}

/* Builds a record from a data row; on error *column (1-based, 0 = the whole row) and the
 * reason without the place. transaction_id and target are checked here, with their lengths:
 * a cell may hold NUL bytes, and an id is rejected, never cut at one. */
int fs_txn_row_parse(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
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
            char ex[FS_TXNI_EXCERPT_SIZE];
            fs_txni_excerpt(ex, sizeof ex, target, row->lens[c]);
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
    if (fs_txn_row_parse(t, cols, row, &column, why, sizeof why) != 0) {
        fs_txn_where(errstr, errstr_size, NULL, row->line, column, why);
        return -1;
    }
    return 0;
}
