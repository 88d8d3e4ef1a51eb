/*
 * fs_txn_record: one card transaction in the TETA-ML-1-2025 schema, as it arrives in a CSV
 * row or in the `data` object of a Kafka message, validated and typed. (The JSON codec is
 * fs_txn_json, the CSV column mapping fs_txn_columns, the CSV reader fs_txn_reader.)
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
#ifndef FS_TXN_RECORD_H
#define FS_TXN_RECORD_H

#include <stddef.h>
#include <stdint.h>

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

/* Parses "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" into seconds since the epoch (UTC).
 * Returns 0, or -1 if the text is not such a time or names no real date (2019-02-29). */
int fs_parse_time(const char *s, size_t len, int64_t *out);

/* Strict number: the whole text is a decimal number ([+-]digits[.digits][e[+-]digits]), no
 * spaces, hex, inf; "" and "nan" (any case) are missing and give NaN. Returns 0, or -1 with
 * the reason in errstr (without the field name). */
int fs_parse_number(const char *s, size_t len, double *out, char *errstr, size_t errstr_size);

/* Copies a record, pointing the copy's strings into the copy's own text[]. */
void fs_txn_copy(fs_txn *dst, const fs_txn *src);

#endif
