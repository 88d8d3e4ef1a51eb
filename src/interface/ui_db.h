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

/* {"totals": {"scored", "flagged", "fraud_rate"}, "latest_fraud": [{"transaction_id",
 * "score", "created_at"}] (the 10 newest with fraud_flag = 1), "scores": [the scores of the
 * 100 newest rows, newest first]}. Returns NULL with the reason in errstr. */
json_t *ui_db_results(ui_db *db, int fraud_limit, int score_limit, char *errstr,
                      size_t errstr_size);

/* 0 if a trivial query works, else -1 with the reason in errstr. */
int ui_db_ping(ui_db *db, char *errstr, size_t errstr_size);

#endif
