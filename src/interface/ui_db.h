/*
 * ui_db: the interface's read-only view of PostgreSQL (table transactions, created by
 * db_writer's migrations). One connection, used under a lock, reconnected on the next query
 * after the server went away, so a database restart costs one failed request at most.
 * Every query is a fixed text with bound parameters.
 *
 * Ownership: the conninfo string is borrowed and must outlive the handle; the password is
 * copied (and cleared when freed); JSON results are new references owned by the caller.
 */
#ifndef UI_DB_H
#define UI_DB_H

#include <jansson.h>
#include <stddef.h>

typedef struct ui_db ui_db;

/* Does not connect yet (the first query does). conninfo: a libpq URI or key=value string;
 * PG* environment variables fill what it leaves out. password: from PGPASSWORD_FILE, or NULL
 * to let libpq use PGPASSWORD / .pgpass. NULL on out of memory. */
ui_db *ui_db_new(const char *conninfo, const char *password);
void ui_db_free(ui_db *db);

/* A stored row as JSON: {"transaction_id", "score", "fraud_flag", "created_at",
 * "transaction_time", "amount", "merchant", "category", "customer", "city", "us_state",
 * "reasons", "upload_id", "upload_row"}. The details are null for rows stored before
 * db_writer's migration 002 (and when the mart does not have its columns yet). */

/* {"totals": {"scored", "flagged", "fraud_rate"}, "latest_fraud": [rows] (the fraud_limit
 * newest with fraud_flag = 1, newest first), "scores": [the scores of the score_limit newest
 * rows, newest first], "details": whether the mart has migration 002's columns}. Returns
 * NULL with the reason in errstr. */
json_t *ui_db_results(ui_db *db, int fraud_limit, int score_limit, char *errstr,
                      size_t errstr_size);

/* The stored row of one transaction, or NULL: with errstr "" when there is none, else the
 * database's reason. */
json_t *ui_db_transaction(ui_db *db, const char *transaction_id, char *errstr,
                          size_t errstr_size);

/* One upload's results: {"upload_id", "available", "scored", "flagged", "flagged_rows":
 * [rows, by upload_row, at most flagged_limit], "flagged_truncated"}; available is false
 * (and the counts 0) when the mart has no upload columns yet (before db_writer's migration
 * 002). upload_id must be a UUID (checked by the caller). NULL with the reason in errstr. */
json_t *ui_db_upload(ui_db *db, const char *upload_id, int flagged_limit, char *errstr,
                     size_t errstr_size);

/* The conninfo and password, for a caller that opens its own connection (a download
 * streams on a connection of its own so it never holds the shared one). */
const char *ui_db_conninfo(const ui_db *db);
const char *ui_db_password(const ui_db *db);

/* 0 if a trivial query works, else -1 with the reason in errstr. */
int ui_db_ping(ui_db *db, char *errstr, size_t errstr_size);

#endif
