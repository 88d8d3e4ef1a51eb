/*
 * dbw_db: db_writer's PostgreSQL side. One libpq connection; migrations applied at start in
 * one transaction under an advisory lock (several writers may start at once), recorded in
 * schema_migrations; batches written with a single INSERT ... SELECT FROM unnest($1, $2, $3)
 * ON CONFLICT (transaction_id) DO NOTHING, so one statement = one transaction per batch, the
 * values are bound parameters (never spliced into SQL), and a replay changes nothing. The
 * parameters are binary arrays (ids as bytes, scores as their IEEE-754 bits), the rows in
 * transaction_id order, so several connections writing at once lock rows in one order.
 * db_writer may hold several dbw_db (one connection each).
 *
 * Ownership: dbw_db_new copies conninfo and password; dbw_db_free closes and frees. Rows
 * passed to dbw_db_insert stay the caller's. Not thread-safe: one thread uses a dbw_db.
 */
#ifndef DBW_DB_H
#define DBW_DB_H

#include <stddef.h>

#include "fs_msg.h"

typedef struct dbw_db dbw_db;

/* conninfo: a libpq connection string or URI (PG* variables fill what it leaves out);
 * password: NULL to let libpq use PGPASSWORD/.pgpass. Does not connect. NULL on OOM. */
dbw_db *dbw_db_new(const char *conninfo, const char *password, char *errstr,
                   size_t errstr_size);

/* (Re)connects if not connected. Returns 0, or -1 with errstr ("database: ..."). */
int dbw_db_connect(dbw_db *db, char *errstr, size_t errstr_size);

/* Applies every embedded migration not yet in schema_migrations. Sets *applied to how many
 * were applied now. Returns 0, or -1 with errstr naming the migration. */
int dbw_db_migrate(dbw_db *db, int *applied, char *errstr, size_t errstr_size);

/* Inserts n rows in one statement; *inserted = rows actually new (the rest were already
 * there). Returns 0, or -1 with errstr; after -1 the connection may be dropped and
 * dbw_db_connect reconnects. */
int dbw_db_insert(dbw_db *db, const fs_scoring_msg *rows, size_t n, long *inserted,
                  char *errstr, size_t errstr_size);

/* The same in two steps, so the caller can fill its next batch while the server works:
 * dbw_db_insert_send builds and sends the statement (rows are not needed afterwards);
 * dbw_db_insert_ready says whether its result has arrived (never blocks);
 * dbw_db_insert_finish waits for it. One insert in flight at a time; every -1 drops the
 * connection (the next call reconnects). */
int dbw_db_insert_send(dbw_db *db, const fs_scoring_msg *rows, size_t n, char *errstr,
                       size_t errstr_size);
int dbw_db_insert_ready(dbw_db *db);
int dbw_db_insert_finish(dbw_db *db, long *inserted, char *errstr, size_t errstr_size);

/* Closes the connection at once; an insert in flight is given up (the server rolls it back
 * unless it had already committed; either way a replay is harmless). */
void dbw_db_disconnect(dbw_db *db);

void dbw_db_free(dbw_db *db);

#endif
