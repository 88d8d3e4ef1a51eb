/*
 * fs_txn: one card transaction in the TETA-ML-1-2025 schema, as it arrives in a CSV row or in
 * the `data` object of a Kafka message, validated and typed.
 *
 * Column names, in the order of the competition's test.csv:
 *   transaction_time,merch,cat_id,amount,name_1,name_2,gender,street,one_city,us_state,
 *   post_code,lat,lon,population_city,jobs,merchant_lat,merchant_lon   (+ target in train.csv)
 *
 * A record owns its strings: they live in the record's own fixed buffer (FS_TXN_TEXT_MAX
 * bytes for all strings together); a longer record is an error, never a truncation.
 * Numbers that are missing (empty cell, JSON null or absent, "nan") are NaN; whether that is
 * acceptable is decided by the feature pipeline (fitted statistics say what replaces them),
 * not here. Malformed values (text where a number belongs, a bad time, out-of-range
 * coordinates) are errors naming the field.
 */
#ifndef FS_TXN_H
#define FS_TXN_H

#include <jansson.h>
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

/* Builds a record from the JSON `data` object of a transactions message (numbers as JSON
 * numbers or numeric strings; null or absent = missing). Errors name the field. */
int fs_txn_from_json(fs_txn *t, const json_t *data, char *errstr, size_t errstr_size);

/* The record as a JSON `data` object with native types (numbers as numbers, missing as
 * null); new reference owned by the caller, NULL if memory ran out. */
json_t *fs_txn_to_json(const fs_txn *t);

/* Parses "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" into seconds since the epoch (UTC). */
int fs_parse_time(const char *s, size_t len, int64_t *out);

#endif
