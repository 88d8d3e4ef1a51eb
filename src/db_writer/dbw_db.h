/*
 * dbw_db: the database behind db_writer, as an interface. A dbw_db is a table of operations
 * (dbw_db_ops) and the state of one implementation: PostgreSQL (dbw_pg.h) in the service, a
 * fake in the unit tests of the batch logic (tests/unit/test_dbw_pipeline.c). The contract
 * every implementation keeps, and the pipeline (dbw_pipeline.h) relies on:
 *  - a write of a batch is one transaction: after a successful finish the rows are durable,
 *    after a failure none of them is, or all are (the server committed but the answer was
 *    lost): the caller then writes the batch again;
 *  - writing a row whose transaction_id is already stored changes nothing (a replay), and
 *    finish reports only the rows that were new.
 *
 * Ownership: rows passed to dbw_db_insert_send stay the caller's, and must stay valid and
 * unchanged until the write's finish returns (an implementation may write them again, in
 * another form, inside finish). dbw_db_free frees the implementation's state. Not thread-safe: one thread uses a
 * dbw_db.
 */
#ifndef DBW_DB_H
#define DBW_DB_H

#include <stddef.h>
#include <stdint.h>

#include "fs_msg.h"

/* One row of the transactions table: the scoring message (the score, the transaction block,
 * the reasons) and the upload headers of its record (dbw_upload.h). */
typedef struct dbw_row {
    int has_upload_id;           /* 0: the record had no upload_id header (NULL) */
    unsigned char upload_id[16]; /* the UUID's bytes */
    int32_t upload_row;          /* 1-based row of the upload; 0: no header (NULL) */
    fs_scoring_msg msg;          /* last: only its first bytes are written for most rows */
} dbw_row;

typedef struct dbw_db dbw_db;

typedef struct dbw_db_ops {
    /* Connects if needed and applies every migration not yet applied; *applied = how many
     * now. Returns 0, or -1 with errstr. */
    int (*migrate)(dbw_db *db, int *applied, char *errstr, size_t errstr_size);
    /* Starts writing n >= 1 rows (connecting if needed). Returns 0, or -1 with errstr (the
     * connection is then dropped; the next call reconnects). One write in flight at a
     * time. */
    int (*send)(dbw_db *db, const dbw_row *rows, size_t n, char *errstr, size_t errstr_size);
    /* 1 if the write in flight has ended (or there is none), else 0. Never blocks. */
    int (*ready)(dbw_db *db);
    /* Waits for the write in flight to end; *inserted = rows that were new. Returns 0 once
     * the rows are durable, or -1 with errstr (connection dropped). */
    int (*finish)(dbw_db *db, long *inserted, char *errstr, size_t errstr_size);
    /* Drops the connection at once, giving up a write in flight. */
    void (*disconnect)(dbw_db *db);
    void (*free)(dbw_db *db);
} dbw_db_ops;

/* Every implementation's state starts with this. */
struct dbw_db {
    const dbw_db_ops *ops;
};

int dbw_db_migrate(dbw_db *db, int *applied, char *errstr, size_t errstr_size);
int dbw_db_insert_send(dbw_db *db, const dbw_row *rows, size_t n, char *errstr,
                       size_t errstr_size);
int dbw_db_insert_ready(dbw_db *db);
int dbw_db_insert_finish(dbw_db *db, long *inserted, char *errstr, size_t errstr_size);

/* send then finish; n == 0 writes nothing and returns 0. */
int dbw_db_insert(dbw_db *db, const dbw_row *rows, size_t n, long *inserted, char *errstr,
                  size_t errstr_size);

void dbw_db_disconnect(dbw_db *db);

/* NULL is a no-op. */
void dbw_db_free(dbw_db *db);

#endif
