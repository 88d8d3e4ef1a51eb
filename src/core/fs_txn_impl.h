/*
 * fs_txn_impl: what the transaction modules (fs_txn.c, fs_txn_json.c, fs_txn_columns.c)
 * share and nobody else should use: the field names, the record's setters and slots, and
 * the excerpt of a bad value for messages. Internal names carry the fs_txni_ prefix.
 */
#ifndef FS_TXN_IMPL_H
#define FS_TXN_IMPL_H

#include <stddef.h>

#include "fs_txn_record.h"

/* Bytes of an offending value quoted in an error message. */
#define FS_TXNI_EXCERPT_MAX 40
/* Room for an excerpt: every byte may become \xHH, plus "..." and the NUL. */
#define FS_TXNI_EXCERPT_SIZE (FS_TXNI_EXCERPT_MAX * 4 + 8)

extern const char *const fs_txni_field_names[FS_TXN_NFIELDS];

/* A short, printable rendering of a bad value (non-printable bytes as \xHH, "..." when cut). */
void fs_txni_excerpt(char *dst, size_t size, const char *s, size_t len);
/* An empty record: numbers NaN, strings "", target -1. */
void fs_txni_init(fs_txn *t);
const char **fs_txni_string_slot(fs_txn *t, enum fs_txn_field f);
double *fs_txni_number_slot(fs_txn *t, enum fs_txn_field f);
/* Store a field (range and UTF-8 checked, transaction_time parsed); -1 with the reason,
 * without the field name, in errstr. */
int fs_txni_set_string(fs_txn *t, enum fs_txn_field f, const char *s, size_t len,
                       char *errstr, size_t errstr_size);
int fs_txni_set_number(fs_txn *t, enum fs_txn_field f, double v, char *errstr,
                       size_t errstr_size);

#endif
