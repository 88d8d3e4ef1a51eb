/*
 * fs_msg: the JSON codecs of the Kafka messages.
 *   topic transactions: {"transaction_id": "<id>", "data": {<the 17 columns>}}
 *   topic scoring:      {"transaction_id": "<id>", "score": <double>, "fraud_flag": 0|1,
 *                        "transaction": {...}, "reasons": {...}}
 * The scoring message's three mission fields come first, unchanged; the two optional members
 * (docs/streaming.md) are the details of the transaction as it was scored, and the TreeSHAP
 * reasons of the score:
 *   "transaction": {"transaction_time": "2019-01-01 00:00:18", "amount": 4.97, "merch": "...",
 *                   "cat_id": "...", "name_1": "...", "name_2": "...", "one_city": "...",
 *                   "us_state": "..."}     (each member may be null or absent: missing)
 *   "reasons": {"bias": -7.12, "top": [{"feature": "cust_n_1h", "value": 7,
 *               "contribution": 2.31}, ...]}   (value null for NaN)
 * Scores are written with %.17g so they round-trip bit for bit; other numbers in their
 * shortest form that reads back to the same double.
 * A transaction_id is 1..FS_TXN_ID_MAX printable ASCII characters (fs_txn_id_valid).
 * Parsing is strict: duplicate keys, a score that is not a JSON number in [0, 1] (a
 * probability), a fraud_flag other than the integers 0 and 1, a malformed member of
 * `transaction` or `reasons` are all errors naming the member ("transaction.amount: expected
 * a number", "reasons.top[2].contribution: expected a number"); unknown keys are ignored (at
 * the top level and inside the two blocks: forward compatible). Messages of the three mission
 * fields only (older detectors) still parse. Formatting refuses (returns -1) what parsing
 * would refuse.
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
#include <stdint.h>

#include "fs_txn.h"

/* Buffer size that always holds a transactions message: every byte of a record's text
 * escaped as \u00XX, the id escaped, keys and numbers. */
#define FS_MSG_TRANSACTION_MAX (6 * FS_TXN_TEXT_MAX + 2 * FS_TXN_ID_MAX + 1024)
/* Longest reasons text (canonical compact JSON, without the NUL). */
#define FS_MSG_REASONS_MAX 8191
/* Buffer size that always holds a scoring message: the mission fields with every id
 * character escaped, the transaction block's keys, its strings (at most FS_TXN_TEXT_MAX
 * bytes together) every byte escaped as \u00XX, the amount, and the reasons. */
#define FS_MSG_SCORING_MAX                                                                    \
    (96 + 2 * FS_TXN_ID_MAX + 256 + 6 * FS_TXN_TEXT_MAX + FS_MSG_REASONS_MAX)

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

/* The strings of the `transaction` block, in the order they are written. */
enum fs_scoring_str {
    FS_SC_TRANSACTION_TIME,
    FS_SC_MERCH,
    FS_SC_CAT_ID,
    FS_SC_NAME_1,
    FS_SC_NAME_2,
    FS_SC_ONE_CITY,
    FS_SC_US_STATE,
    FS_SC_NSTR
};

/* The member name of a block string ("transaction_time", "merch", ...). */
const char *fs_scoring_str_name(enum fs_scoring_str f);

/* A parsed scoring message. It holds its text (strings and reasons) in its own buffer by
 * offset, so it may be copied by plain assignment or memcpy; read it through the accessors
 * below. Only the first bytes of text[] are written: a message without reasons or with
 * short strings touches little of it. */
typedef struct fs_scoring_msg {
    char transaction_id[FS_TXN_ID_MAX + 1];
    double score;
    int fraud_flag;
    int has_transaction; /* 1 if the message had a (non-null) transaction block */
    double amount;       /* transaction.amount; NAN if null, absent or no block */
    unsigned str_null;   /* bit 1u << f: string f null, absent or no block (its text "") */
    uint16_t str_off[FS_SC_NSTR];
    uint16_t reasons_off, reasons_len; /* reasons_len 0: no reasons */
    uint16_t text_len;
    char text[1 + FS_TXN_TEXT_MAX + FS_MSG_REASONS_MAX + 1];
} fs_scoring_msg;

/* String f of the transaction block, NUL-terminated ("" when null/absent: see
 * fs_scoring_str_null). Valid UTF-8 without NUL bytes; transaction_time, when not null, is
 * "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS" naming a real date (fs_parse_time). Points
 * into m. */
const char *fs_scoring_str(const fs_scoring_msg *m, enum fs_scoring_str f);
/* 1 if string f was null or absent (or the message had no transaction block). */
int fs_scoring_str_null(const fs_scoring_msg *m, enum fs_scoring_str f);
/* The reasons as validated canonical compact JSON, NUL-terminated, (len set when not NULL),
 * or NULL if the message had none (absent or null). Valid for a jsonb column: no NUL
 * characters, only the members above (unknown ones dropped), numbers in shortest form.
 * Points into m. */
const char *fs_scoring_reasons(const fs_scoring_msg *m, size_t *len);

/* The transaction block to write: each string NULL for null, amount NAN for null. */
typedef struct fs_scoring_txn {
    const char *str[FS_SC_NSTR];
    double amount;
} fs_scoring_txn;

/* The block of a record: its strings ("" = missing, written as null) and amount. The
 * strings are borrowed from t. */
void fs_scoring_txn_of_record(fs_scoring_txn *out, const fs_txn *t);
/* The block of a parsed message (round trips). The strings are borrowed from m. */
void fs_scoring_txn_of_msg(fs_scoring_txn *out, const fs_scoring_msg *m);

/* One reason: a feature, its value as the model saw it (NaN: null) and its contribution in
 * raw-score units. */
typedef struct fs_reason {
    const char *feature;
    double value;
    double contribution;
} fs_reason;

/* Writes the canonical reasons text {"bias":..,"top":[{"feature":..,"value":..,
 * "contribution":..},...]} of top[0..n) in that order into buf. Returns its length, or -1
 * if it does not fit buf or FS_MSG_REASONS_MAX, a feature name is empty or not valid UTF-8,
 * or bias or a contribution is not finite (or a value infinite). */
int fs_msg_format_reasons(char *buf, size_t size, double bias, const fs_reason *top,
                          size_t n);

/* Writes a scoring message of the three mission fields into buf; returns its length or -1
 * if buf is too small, the id is invalid, score is not in [0, 1] or fraud_flag is not 0/1.
 * FS_MSG_SCORING_MAX bytes always suffice. */
int fs_msg_format_scoring(char *buf, size_t size, const char *transaction_id, double score,
                          int fraud_flag);

/* The same with the optional members: the transaction block (NULL: none) and the reasons
 * text (NULL: none; as written by fs_msg_format_reasons or returned by fs_scoring_reasons,
 * checked). Returns -1 also if the block or the reasons would not parse back (strings not
 * valid UTF-8 or longer than FS_TXN_TEXT_MAX bytes together with their NULs, a
 * transaction_time that is not a time, an infinite amount). FS_MSG_SCORING_MAX bytes always
 * suffice. */
int fs_msg_format_scoring_full(char *buf, size_t size, const char *transaction_id,
                               double score, int fraud_flag, const fs_scoring_txn *txn,
                               const char *reasons);

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
