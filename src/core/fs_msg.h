/*
 * fs_msg: the JSON codecs of the Kafka messages.
 *   topic transactions: {"transaction_id": "<id>", "data": {<the 17 columns>}}
 *   topic scoring:      {"transaction_id": "<id>", "score": <double>, "fraud_flag": 0|1}
 * Scores are written with %.17g so they round-trip bit for bit.
 * A transaction_id is 1..FS_TXN_ID_MAX printable ASCII characters (fs_txn_id_valid).
 * Parsing is strict: duplicate keys, a score that is not a JSON number in [0, 1] (a
 * probability), a fraud_flag other than the integers 0 and 1 are all errors; unknown
 * top-level keys are ignored. Formatting refuses (returns -1) what parsing would refuse.
 *
 * The parsers are allocation-free for messages of the common shape (keys exactly the
 * expected ones, each once; strings of printable ASCII without escapes; plain numbers; null):
 * a fast path reads them in place. Everything else goes to the reference path (jansson),
 * which decides and words every refusal, so results and error messages are the reference
 * path's in all cases. Both paths are exposed below for the differential tests and the fuzz
 * harnesses. Thread-safe once jansson's hash seed is set (json_object_seed) before threads
 * may reach the reference path.
 *
 * Ownership: all functions write into caller-owned memory; nothing is retained.
 */
#ifndef FS_MSG_H
#define FS_MSG_H

#include <stddef.h>

#include "fs_txn.h"

/* Buffer size that always holds a transactions message: every byte of a record's text
 * escaped as \u00XX, the id escaped, keys and numbers. */
#define FS_MSG_TRANSACTION_MAX (6 * FS_TXN_TEXT_MAX + 2 * FS_TXN_ID_MAX + 1024)
/* Buffer size that always holds a scoring message (every id character escaped). */
#define FS_MSG_SCORING_MAX (96 + 2 * FS_TXN_ID_MAX)

/* Parses a transactions message into t (t->transaction_id set). Returns 0, or -1 with the
 * reason in errstr ("not JSON: ...", "missing transaction_id", "data.amount: ..."). */
int fs_msg_parse_transaction(const char *payload, size_t len, fs_txn *t, char *errstr,
                             size_t errstr_size);

/* Writes a transactions message for t with the given id into buf: compact JSON, data keys
 * in column order, numbers in their shortest form that reads back to the same double,
 * missing numbers as null (the same content as fs_txn_to_json). FS_MSG_TRANSACTION_MAX bytes
 * always suffice. Returns the length written (without the NUL), or -1 if buf is too
 * small or the id is invalid. */
int fs_msg_format_transaction(char *buf, size_t size, const char *transaction_id,
                              const fs_txn *t);

typedef struct fs_scoring_msg {
    char transaction_id[FS_TXN_ID_MAX + 1];
    double score;
    int fraud_flag;
} fs_scoring_msg;

/* Writes a scoring message into buf; returns its length or -1 if buf is too small, the id
 * is invalid, score is not in [0, 1] or fraud_flag is not 0/1. FS_MSG_SCORING_MAX bytes
 * always suffice. */
int fs_msg_format_scoring(char *buf, size_t size, const char *transaction_id, double score,
                          int fraud_flag);

/* Parses a scoring message. Returns 0, or -1 with the reason in errstr. */
int fs_msg_parse_scoring(const char *payload, size_t len, fs_scoring_msg *out, char *errstr,
                         size_t errstr_size);

/* The two paths behind the parsers, for tests and fuzz harnesses. _fast returns 1 if it
 * parsed the message (the result written), 0 if it leaves it to the reference path (the
 * output then unspecified); it never allocates. _ref has the public function's contract and
 * is what the public function falls back to. */
int fs_msg_parse_transaction_fast(const char *payload, size_t len, fs_txn *t);
int fs_msg_parse_transaction_ref(const char *payload, size_t len, fs_txn *t, char *errstr,
                                 size_t errstr_size);
int fs_msg_parse_scoring_fast(const char *payload, size_t len, fs_scoring_msg *out);
int fs_msg_parse_scoring_ref(const char *payload, size_t len, fs_scoring_msg *out,
                             char *errstr, size_t errstr_size);

#endif
