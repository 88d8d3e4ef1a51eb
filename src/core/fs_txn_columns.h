/*
 * fs_txn_columns: the CSV column mapping of transactions. A header row is mapped with
 * fs_csv_map onto the 17 fields (all required; any order), transaction_id and target
 * (optional); other columns are ignored, a column named twice is an error, and EVERY missing
 * field is named in the one error. A data row is then turned into a record with
 * fs_txn_from_row.
 *
 * Ownership: the caller owns the columns struct; nothing is kept.
 */
#ifndef FS_TXN_COLUMNS_H
#define FS_TXN_COLUMNS_H

#include <stddef.h>

#include "fs_csv.h"
#include "fs_txn_record.h"

typedef struct fs_txn_columns {
    int col[FS_TXN_NFIELDS]; /* column index of each field, -1 if missing */
    int transaction_id_col;  /* -1 if absent */
    int target_col;          /* -1 if absent */
    size_t ncols;            /* columns in the header; every row must have exactly these */
    size_t nmissing;         /* fields the header lacks (0 once mapped successfully) */
} fs_txn_columns;

/* Maps a header row. Returns 0, or -1 with the place and the reason in errstr:
 * "line 1: missing column \"amount\" and 1 more: \"lat\"",
 * "line 1: missing column \"cat_id\"", "line 1, column 18: column \"amount\" appears twice".
 * On a missing-column error cols->col[f] is -1 for exactly the missing fields and
 * cols->nmissing counts them. */
int fs_txn_columns_from_header(fs_txn_columns *cols, const fs_csv_row *header, char *errstr,
                               size_t errstr_size);

/* The same mapping with the reason alone (no place) and the 1-based column of a duplicate
 * (0 when the whole header is at fault), for a caller that words the place itself. */
int fs_txn_columns_map(fs_txn_columns *cols, const fs_csv_row *header, size_t *column,
                       char *why, size_t why_size);

/* Builds a record from a data row. Returns 0, or -1 with "line L, column C: amount: not a
 * number: \"abc\"" (or "line L: expected 17 fields, got 16") in errstr. */
int fs_txn_from_row(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
                    char *errstr, size_t errstr_size);

/* The same with the reason alone and the 1-based column at fault (0 = the whole row). */
int fs_txn_row_parse(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
                     size_t *column, char *why, size_t why_size);

/* "name:line:column: why" with a name, else "line L, column C: why"; column 0 = the whole
 * line, name NULL = no name. The place format every transaction CSV message uses. */
void fs_txn_where(char *errstr, size_t errstr_size, const char *name, size_t line,
                  size_t column, const char *why);

#endif
