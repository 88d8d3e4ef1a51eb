/*
 * dbw_pg: the PostgreSQL implementation of dbw_db. One libpq connection; migrations
 * (dbw_migrations.h) applied in one transaction under an advisory lock (several writers may
 * start at once), recorded in schema_migrations; a batch written with a single
 * INSERT ... SELECT FROM unnest($1, $2, $3) ON CONFLICT (transaction_id) DO NOTHING, so one
 * statement = one transaction per batch, the values are bound parameters (never spliced into
 * SQL), and a replay changes nothing. The parameters are binary arrays (ids as bytes, scores
 * as their IEEE-754 bits), the rows in transaction_id order, so several connections writing
 * at once lock rows in one order. db_writer holds several (one connection each).
 *
 * Ownership: dbw_pg_new copies conninfo and password (the copy of the password is wiped when
 * freed); dbw_db_free closes the connection and frees.
 */
#ifndef DBW_PG_H
#define DBW_PG_H

#include <stddef.h>

#include "dbw_db.h"

/* conninfo: a libpq connection string or URI (PG* variables fill what it leaves out);
 * password: NULL to let libpq use PGPASSWORD/.pgpass. Does not connect. NULL on OOM (with
 * errstr). */
dbw_db *dbw_pg_new(const char *conninfo, const char *password, char *errstr,
                   size_t errstr_size);

#endif
