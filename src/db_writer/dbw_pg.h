/*
 * dbw_pg: the PostgreSQL implementation of dbw_db. One libpq connection; migrations
 * (dbw_migrations.h) applied in one transaction under an advisory lock (several writers may
 * start at once), recorded in schema_migrations. A batch is one statement, so one
 * transaction: COPY transactions (...) FROM STDIN (FORMAT BINARY), the fast path; if it
 * fails on a duplicate key (a replay: some rows are stored already) its transaction rolled
 * back and the batch is written again with the idempotent
 * INSERT ... SELECT * FROM unnest($1, $2, ...) ON CONFLICT (transaction_id) DO NOTHING,
 * so a replay changes nothing. Values are never spliced into SQL: the COPY stream and the
 * INSERT's array parameters are PostgreSQL's binary format (ids as their bytes, scores as
 * their IEEE-754 bits), the rows in transaction_id order, so several connections writing at
 * once lock rows in one order. db_writer holds several (one connection each).
 *
 * Ownership: dbw_pg_new copies conninfo and password (the copy of the password is wiped when
 * freed); dbw_db_free closes the connection and frees.
 */
#ifndef DBW_PG_H
#define DBW_PG_H

#include <stddef.h>

#include "dbw_db.h"

/* conninfo: a libpq connection string or URI (PG* variables fill what it leaves out);
 * password: NULL to let libpq use PGPASSWORD/.pgpass; copy: 1 for the COPY fast path, 0 to
 * write every batch with the INSERT (for measurements). Does not connect. NULL on OOM (with
 * errstr). */
dbw_db *dbw_pg_new(const char *conninfo, const char *password, int copy, char *errstr,
                   size_t errstr_size);

#endif
