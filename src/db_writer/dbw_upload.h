/*
 * dbw_upload: the two Kafka headers that say which upload a scored transaction came from
 * (docs/streaming.md): `upload_id`, the upload's UUID as 36 lowercase characters
 * (8-4-4-4-12 hex digits), and `upload_row`, the 1-based row number in the uploaded file as
 * decimal text (1..2147483647, no sign, no leading zero). db_writer stores them in the
 * columns upload_id (uuid) and upload_row (integer); a message with a malformed value is a
 * dead letter whose reason names the header and what was expected.
 *
 * Ownership: the values are read, never kept; outputs are the caller's.
 */
#ifndef DBW_UPLOAD_H
#define DBW_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Parses an upload_id value of n bytes (not NUL-terminated) into its 16 bytes. Returns 0,
 * or -1 with errstr ("header upload_id: expected a 36-character lowercase UUID, got ..."). */
int dbw_upload_parse_id(const void *value, size_t n, unsigned char out[16], char *errstr,
                        size_t errstr_size);

/* Parses an upload_row value of n bytes. Returns 0, or -1 with errstr. */
int dbw_upload_parse_row(const void *value, size_t n, int32_t *out, char *errstr,
                         size_t errstr_size);

#endif
