/*
 * fs_txn: one card transaction in the TETA-ML-1-2025 schema, as it arrives in a CSV row or in
 * the `data` object of a Kafka message, validated and typed.
 *
 * Column names, in the order of the competition's test.csv:
 *   transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,us_state,
 *   post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon   (+ target in train.csv)
 *
 * A record owns its strings: they live in the record's own fixed buffer (FS_TXN_TEXT_MAX
 * bytes for all strings together, transaction_id included); a longer record is an error,
 * never a truncation. Records are caller-owned (stack, array, reused): the functions below
 * fill them and keep nothing.
 * Numbers that are missing (empty cell, JSON null or absent, "nan") are NaN; whether that is
 * acceptable is decided by the feature pipeline (fitted statistics say what replaces them),
 * not here. Malformed values (text where a number belongs, a bad time, out-of-range
 * coordinates) are errors naming the field. transaction_time is required (every feature
 * pipeline needs the hour); strings must be valid UTF-8 without NUL bytes.
 *
 * The record's string pointers point into its own text[]: copy a record with fs_txn_copy,
 * never by plain assignment (the copy's pointers would point into the original).
 */
#ifndef FS_TXN_H
#define FS_TXN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs_csv.h"

enum fs_txn_field {
    FS_F_TRANSACTION_TIME,
    FS_F_MERCH,
    FS_F_CAT_ID,
    FS_F_AMOUNT,
    FS_F_NAME_1,
    FS_F_NAME_2,
    FS_F_GENDER,
    FS_F_STREET,
    FS_F_ONE_CITY,
    FS_F_US_STATE,
    FS_F_POST_CODE,
    FS_F_LAT,
    FS_F_LON,
    FS_F_POPULATION_CITY,
    FS_F_JOBS,
    FS_F_MERCHANT_LAT,
    FS_F_MERCHANT_LON,
    FS_TXN_NFIELDS /* 17 */
};

#define FS_TXN_TEXT_MAX 2048
/* A transaction_id is 1..FS_TXN_ID_MAX printable ASCII characters (0x20..0x7e). */
#define FS_TXN_ID_MAX 128

/* 1 if s[0..len) is a valid transaction_id (see FS_TXN_ID_MAX), else 0. */
int fs_txn_id_valid(const char *s, size_t len);

/* Name of a field as it appears in CSV headers and JSON ("transaction_time", ...). */
const char *fs_txn_field_name(enum fs_txn_field f);
/* Field index for a column name, or -1. */
int fs_txn_field_lookup(const char *name, size_t len);
/* 1 if the field is numeric (amount, lat, lon, population_city, post_code, merchant_*). */
int fs_txn_field_is_numeric(enum fs_txn_field f);

typedef struct fs_txn {
    /* transaction_time as seconds since 1970-01-01 00:00 UTC (the data has no zone). */
    int64_t time;
    double amount, lat, lon, population_city, merchant_lat, merchant_lon, post_code;
    /* Strings, NUL-terminated, pointing into text[]; "" when missing. */
    const char *transaction_time, *merch, *cat_id, *name_1, *name_2, *gender, *street,
        *one_city, *us_state, *jobs;
    const char *transaction_id; /* from a transaction_id column/key, or "" */
    int target;                 /* 0/1 from a target column, -1 if absent */
    size_t text_len;
    char text[FS_TXN_TEXT_MAX];
} fs_txn;

/* Builds a record from raw text values, one per field (values[f] may be NULL for a column
 * the input does not have). transaction_id and target may be NULL. On error returns -1,
 * sets *bad_field to the offending field (or -1) and writes the reason to errstr (the
 * caller adds where: line and column, or topic/partition/offset). */
int fs_txn_from_strings(fs_txn *t, const char *const values[FS_TXN_NFIELDS],
                        const size_t lens[FS_TXN_NFIELDS], const char *transaction_id,
                        const char *target, int *bad_field, char *errstr, size_t errstr_size);

/* Sets the record's transaction_id to a copy of s[0..len) ("" or 1..FS_TXN_ID_MAX printable
 * ASCII), stored in the record's text after the fields. -1 with errstr if it is not such
 * an id or the text is full. */
int fs_txn_set_id(fs_txn *t, const char *s, size_t len, char *errstr, size_t errstr_size);

/* Builds a record from the JSON `data` object of a transactions message (numbers as JSON
 * numbers or numeric strings; null or absent = missing). Errors name the field. */
int fs_txn_from_json(fs_txn *t, const json_t *data, char *errstr, size_t errstr_size);

/* The record as a JSON `data` object with native types (numbers as numbers, missing as
 * null); new reference owned by the caller, NULL if memory ran out. */
json_t *fs_txn_to_json(const fs_txn *t);

/* Parses "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" into seconds since the epoch (UTC).
 * Returns 0, or -1 if the text is not such a time or names no real date (2019-02-29). */
int fs_parse_time(const char *s, size_t len, int64_t *out);

/* Strict number: the whole text is a decimal number ([+-]digits[.digits][e[+-]digits]), no
 * spaces, hex, inf; "" and "nan" (any case) are missing and give NaN. Returns 0, or -1 with
 * the reason in errstr (without the field name). */
int fs_parse_number(const char *s, size_t len, double *out, char *errstr, size_t errstr_size);

/* Copies a record, pointing the copy's strings into the copy's own text[]. */
void fs_txn_copy(fs_txn *dst, const fs_txn *src);

/*
 * CSV input: the columns of a header row, matched by exact name in any order; every one of
 * the 17 fields must be present, transaction_id and target are optional, other columns are
 * ignored, a column named twice is an error.
 */
typedef struct fs_txn_columns {
    int col[FS_TXN_NFIELDS]; /* column index of each field */
    int transaction_id_col;  /* -1 if absent */
    int target_col;          /* -1 if absent */
    size_t ncols;            /* columns in the header; every row must have exactly these */
} fs_txn_columns;

/* Maps a header row. Returns 0, or -1 with "line L: missing column 'amount'" (or a
 * duplicate column) in errstr. */
int fs_txn_columns_from_header(fs_txn_columns *cols, const fs_csv_row *header, char *errstr,
                               size_t errstr_size);

/* Builds a record from a data row. Returns 0, or -1 with "line L, column C: amount: not a
 * number: \"abc\"" (or "line L: expected 17 fields, got 16") in errstr. */
int fs_txn_from_row(fs_txn *t, const fs_txn_columns *cols, const fs_csv_row *row,
                    char *errstr, size_t errstr_size);

/*
 * fs_txn_reader: fs_csv + header mapping + fs_txn_from_row, THE way to read a transactions
 * CSV (fraudctl fit/features/score, fs_bundle_score_csv, the benchmarks, the generator's
 * read-back). Push bytes in chunks of any size; the callback gets each valid record with
 * its CSV row (row->line = 1-based line where it starts, 0-based data row = row->index - 1).
 *
 * Invalid data rows: without a bad-row callback the first one stops the reader with an error
 * saying where; fs_txn_reader_feed/finish return -1 then. With one (fs_txn_reader_set_bad)
 * each invalid row is handed to it with its message and skipped; it returns 0 to go on or a
 * positive value to stop. A bad header, CSV syntax (an unterminated quote, a cell over the
 * caps) and an empty input always stop the reader with -1.
 *
 * Messages: with a name (fs_txn_reader_set_name) they are `name:line:column: field: why`
 * (`name:line: why` when the whole row is wrong: a wrong number of cells), e.g.
 * `bad.csv:3:4: amount: not a number: "12,5x"`; without one they are as fs_txn_from_row's.
 * A transaction_id holding a NUL byte (or any byte outside printable ASCII) is an invalid
 * row, never cut at the NUL.
 *
 * Callbacks return 0 to go on or a positive value to stop: fs_txn_reader_feed/finish then
 * return that value. A negative return is the callback's failure: -1, with "line L: the row
 * callback failed" (or "the bad-row callback") as the error.
 * Ownership: the record, row and message passed to a callback live only during the call.
 * The name is borrowed: it must outlive the reader.
 */
typedef struct fs_txn_reader fs_txn_reader;
typedef int (*fs_txn_reader_cb)(const fs_txn *t, const fs_csv_row *row, void *opaque);
typedef int (*fs_txn_reader_bad_cb)(const fs_csv_row *row, const char *msg, void *opaque);

/* NULL if memory ran out. The reader is freed with fs_txn_reader_free. */
fs_txn_reader *fs_txn_reader_new(fs_txn_reader_cb cb, void *opaque);
void fs_txn_reader_free(fs_txn_reader *r);
/* Names the input in messages (a path, "-" for stdin); NULL = no name. Before feeding. */
void fs_txn_reader_set_name(fs_txn_reader *r, const char *name);
/* Invalid rows are reported to on_bad (same opaque as cb) and skipped; NULL = stop at the
 * first (the default). Before feeding. */
void fs_txn_reader_set_bad(fs_txn_reader *r, fs_txn_reader_bad_cb on_bad);
int fs_txn_reader_feed(fs_txn_reader *r, const void *data, size_t len);
/* Ends the input; an input without a header row is an error. */
int fs_txn_reader_finish(fs_txn_reader *r);
/* The error after a -1 return ("" otherwise); lives as long as the reader. */
const char *fs_txn_reader_error(const fs_txn_reader *r);
/* The mapped header, valid once the header row has been read (NULL before). */
const fs_txn_columns *fs_txn_reader_columns(const fs_txn_reader *r);

/* Reads a whole stream (a file, stdin) through a reader named `name` (NULL: no name) with
 * on_bad (NULL: the first invalid row is an error). Returns 0 when all was read, the
 * callback's positive stop value, or -1 with the message in errstr (a read error is
 * "name: read error: why"). */
int fs_txn_read_file(FILE *in, const char *name, fs_txn_reader_cb cb,
                     fs_txn_reader_bad_cb on_bad, void *opaque, char *errstr,
                     size_t errstr_size);
/* fs_txn_read_file without a name or a bad-row callback. */
int fs_txn_read_stream(FILE *in, fs_txn_reader_cb cb, void *opaque, char *errstr,
                       size_t errstr_size);

#endif
