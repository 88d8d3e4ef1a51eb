/*
 * fs_txn: everything about transactions in one include, for code that uses several parts.
 * The parts, each its own module:
 *   fs_txn_record.h   the record: fields, validation, typed values (fs_txn)
 *   fs_txn_json.h     the record <-> the JSON `data` object of a transactions message
 *   fs_txn_columns.h  the CSV column mapping (every missing column named) and rows -> records
 *   fs_txn_reader.h   the push reader of a transactions CSV (fs_csv + fs_txn_columns)
 * New code includes the part it needs.
 */
#ifndef FS_TXN_H
#define FS_TXN_H

#include "fs_txn_columns.h"
#include "fs_txn_json.h"
#include "fs_txn_reader.h"
#include "fs_txn_record.h"

#endif
