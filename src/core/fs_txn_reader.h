/*
 * fs_txn_reader: THE way to read a transactions CSV: fs_csv cuts rows, fs_txn_columns maps
 * the header (every missing column named) and builds a record from each data row.
 */
#ifndef FS_TXN_READER_H
#define FS_TXN_READER_H

#include <stddef.h>
#include <stdio.h>

#include "fs_csv.h"
#include "fs_txn_columns.h"
#include "fs_txn_record.h"

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
