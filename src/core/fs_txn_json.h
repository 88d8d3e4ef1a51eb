/*
 * fs_txn_json: a transaction record to and from the JSON `data` object of a transactions
 * message (the mission format: the 17 columns with native JSON types, missing = null).
 */
#ifndef FS_TXN_JSON_H
#define FS_TXN_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "fs_txn_record.h"

/* Builds a record from the JSON `data` object of a transactions message (numbers as JSON
 * numbers or numeric strings; null or absent = missing). Errors name the field. */
int fs_txn_from_json(fs_txn *t, const json_t *data, char *errstr, size_t errstr_size);

/* The record as a JSON `data` object with native types (numbers as numbers, missing as
 * null); new reference owned by the caller, NULL if memory ran out. */
json_t *fs_txn_to_json(const fs_txn *t);

#endif
