/*
 * fs_csv: a streaming CSV reader over libcsv that hands out whole rows with their position.
 * Push model: feed bytes in chunks of any size as they arrive (a file read, an HTTP upload
 * body); the row callback receives each complete row. Handles a UTF-8 BOM, CRLF and LF,
 * quoted fields with commas, quotes and newlines. Blank lines are skipped (but counted);
 * spaces are data, never trimmed. Every growable buffer is capped: a field at max_field
 * bytes, a row at max_fields fields. The same input gives the same rows and the same error
 * however it is split into chunks. Lines are counted by LF.
 *
 * Ownership: fs_csv_new returns a parser the caller frees with fs_csv_free (NULL if memory
 * ran out or a cap is 0). The fields passed to the callback live only for the duration of
 * the call; fs_csv_error's string lives as long as the parser.
 */
#ifndef FS_CSV_H
#define FS_CSV_H

#include <stddef.h>

typedef struct fs_csv fs_csv;

typedef struct fs_csv_row {
    size_t nfields;
    const char *const *fields; /* NUL-terminated copies */
    const size_t *lens;
    size_t line;               /* 1-based physical line where the row starts */
    size_t index;              /* 0-based row index, header = 0 */
} fs_csv_row;

/* Returns 0 to go on, non-zero to stop (fs_csv_feed then returns that value). */
typedef int (*fs_csv_row_cb)(const fs_csv_row *row, void *opaque);

/* max_field: longest field accepted (bytes); max_fields: most fields in a row. */
fs_csv *fs_csv_new(fs_csv_row_cb cb, void *opaque, size_t max_field, size_t max_fields);
void fs_csv_free(fs_csv *csv);

/* Feeds a chunk. Returns 0, the callback's non-zero stop value, or -1 on a parse error
 * (fs_csv_error then says what and where: "line L, column C: ...", C = 1-based field).
 * After a non-zero return the parser is spent: later calls return the same value. */
int fs_csv_feed(fs_csv *csv, const void *data, size_t len);
/* Ends the input: flushes a last row without a newline. Same returns as fs_csv_feed. */
int fs_csv_finish(fs_csv *csv);
const char *fs_csv_error(const fs_csv *csv);
/* The same error in parts, for a caller that words the place itself: the reason alone
 * (lives as long as the parser), and its line and 1-based column (all "" and 0 if none). */
const char *fs_csv_error_at(const fs_csv *csv, size_t *line, size_t *column);

#endif
