/*
 * fd_parse: a fast path in front of fs_msg_parse_transaction for the detector's hot loop.
 *
 * fs_msg_parse_transaction builds a jansson tree (about twenty allocations) and walks it: it
 * was ~55 % of the detector's CPU. Messages in the common shape (one object holding
 * "transaction_id" and "data", data's keys among the 17 fields, strings of printable ASCII
 * without escapes, numbers in plain decimal notation, null) are instead tokenised in place
 * and handed to fs_txn_from_strings, which applies the same field validation as
 * fs_txn_from_json. Anything else (escapes, non-ASCII, exponents, long integers, -0, unknown
 * or duplicate keys, a field that fails validation, malformed JSON) is left to
 * fs_msg_parse_transaction itself, which gives the canonical result or error message. The
 * fast path therefore accepts only what fs_msg_parse_transaction accepts, with the same
 * record; src/fraud_detector/tests/test_fd_parse.c checks that on generated messages and
 * on random mutations of them.
 *
 * Ownership: writes only into the caller's record and errstr; nothing is retained.
 */
#ifndef FD_PARSE_H
#define FD_PARSE_H

#include <stddef.h>

#include "fs_txn.h"

/* Same contract as fs_msg_parse_transaction. */
int fd_parse_transaction(const char *payload, size_t len, fs_txn *t, char *errstr,
                         size_t errstr_size);

/* The fast path alone: 1 if it parsed the message into t, 0 if it left it to
 * fs_msg_parse_transaction (t is then unspecified). For tests. */
int fd_parse_fast(const char *payload, size_t len, fs_txn *t);

#endif
