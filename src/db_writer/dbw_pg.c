#include "dbw_pg.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbw_migrations.h"
#include "svc_log.h"

/* Arbitrary constant key of the migration advisory lock ("fraud" in ASCII). */
#define DBW_MIGRATION_LOCK_KEY "439891960932"

typedef struct pg_db {
    dbw_db base; /* first: a pg_db * is a dbw_db * */
    char *conninfo;
    char *password;
    PGconn *conn;
    /* Binary array parameters of the current batch and its rows in id order, kept between
     * calls to avoid reallocating. */
    unsigned char *ids, *scores, *flags;
    size_t ids_cap, scores_cap, flags_cap;
    int lens[3];
    const dbw_row **order;
    size_t order_cap;
    int in_flight;         /* an insert was sent and its result not read yet */
} pg_db;

static const dbw_db_ops pg_ops;

static void pg_free(dbw_db *base);

dbw_db *dbw_pg_new(const char *conninfo, const char *password, char *errstr,
                   size_t errstr_size)
{
    pg_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        goto fail;
    db->base.ops = &pg_ops;
    db->conninfo = strdup(conninfo);
    if (db->conninfo == NULL)
        goto fail;
    if (password != NULL) {
        db->password = strdup(password);
        if (db->password == NULL)
            goto fail;
    }
    return &db->base;
fail:
    snprintf(errstr, errstr_size, "database: out of memory");
    pg_free(db != NULL ? &db->base : NULL);
    return NULL;
}

static void pg_free(dbw_db *base)
{
    pg_db *db = (pg_db *)base;
    if (db == NULL)
        return;
    if (db->conn != NULL)
        PQfinish(db->conn);
    free(db->conninfo);
    if (db->password != NULL) {
        memset(db->password, 0, strlen(db->password));
        free(db->password);
    }
    free(db->ids);
    free(db->scores);
    free(db->flags);
    free(db->order);
    free(db);
}

/* Drops the connection after an error that left it unusable. */
static void check_conn(pg_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) != CONNECTION_OK) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
}

/* First line of a libpq error message, for one-line logs. */
static void first_line(char *dst, size_t size, const char *msg)
{
    size_t n = strcspn(msg, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(dst, msg, n);
    dst[n] = '\0';
}

static int pg_connect(pg_db *db, char *errstr, size_t errstr_size)
{
    char why[512];
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        return 0;
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    const char *keys[] = {"dbname", "application_name", "connect_timeout", "keepalives_idle",
                          "password", NULL};
    const char *vals[] = {db->conninfo, "db_writer", "5", "10", db->password, NULL};
    if (db->password == NULL)
        keys[4] = NULL;
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        first_line(why, sizeof why, db->conn != NULL ? PQerrorMessage(db->conn) : "out of memory");
        snprintf(errstr, errstr_size, "database: cannot connect: %s", why);
        PQfinish(db->conn); /* NULL is fine */
        db->conn = NULL;
        return -1;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "database: connected to %s:%s/%s", PQhost(db->conn),
            PQport(db->conn), PQdb(db->conn));
    return 0;
}

/* Runs sql; returns 0 if it ended with the expected status, else -1 with errstr. */
static int exec_ok(pg_db *db, PGresult *res, ExecStatusType want, const char *what,
                   char *errstr, size_t errstr_size)
{
    char why[512];
    if (res != NULL && PQresultStatus(res) == want)
        return 0;
    first_line(why, sizeof why,
               res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
    snprintf(errstr, errstr_size, "database: %s: %s", what, why);
    return -1;
}

static int pg_migrate(dbw_db *base, int *applied, char *errstr, size_t errstr_size)
{
    pg_db *db = (pg_db *)base;
    int rc = -1;
    int in_txn = 0;
    PGresult *res = NULL;
    *applied = 0;
    if (pg_connect(db, errstr, errstr_size) != 0)
        goto out;
    res = PQexec(db->conn, "BEGIN");
    if (exec_ok(db, res, PGRES_COMMAND_OK, "migrations: BEGIN", errstr, errstr_size) != 0)
        goto out;
    in_txn = 1;
    PQclear(res);
    /* Serializes concurrent writers; released at COMMIT or ROLLBACK. */
    res = PQexec(db->conn, "SELECT pg_advisory_xact_lock(" DBW_MIGRATION_LOCK_KEY ")");
    if (exec_ok(db, res, PGRES_TUPLES_OK, "migrations: advisory lock", errstr, errstr_size) != 0)
        goto out;
    PQclear(res);
    res = PQexec(db->conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version integer PRIMARY KEY, name text NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now())");
    if (exec_ok(db, res, PGRES_COMMAND_OK, "migrations: schema_migrations", errstr,
                errstr_size) != 0)
        goto out;
    for (size_t i = 0; i < dbw_migrations_count; i++) {
        const dbw_migration *m = &dbw_migrations[i];
        char *end = NULL;
        long version = strtol(m->name, &end, 10);
        char vbuf[24];
        char what[256];
        if (end == m->name || *end != '_' || version <= 0) {
            snprintf(errstr, errstr_size, "migration %s: name must start with NNN_", m->name);
            goto out;
        }
        snprintf(vbuf, sizeof vbuf, "%ld", version);
        const char *params[] = {vbuf, m->name};
        PQclear(res);
        res = PQexecParams(db->conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                           NULL, params, NULL, NULL, 0);
        snprintf(what, sizeof what, "migration %s: lookup", m->name);
        if (exec_ok(db, res, PGRES_TUPLES_OK, what, errstr, errstr_size) != 0)
            goto out;
        if (PQntuples(res) > 0)
            continue;
        PQclear(res);
        res = PQexec(db->conn, m->sql);
        snprintf(what, sizeof what, "migration %s", m->name);
        if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
                            PQresultStatus(res) != PGRES_TUPLES_OK)) {
            exec_ok(db, res, PGRES_COMMAND_OK, what, errstr, errstr_size);
            goto out;
        }
        PQclear(res);
        res = PQexecParams(db->conn, "INSERT INTO schema_migrations (version, name) "
                                     "VALUES ($1, $2)",
                           2, NULL, params, NULL, NULL, 0);
        snprintf(what, sizeof what, "migration %s: record", m->name);
        if (exec_ok(db, res, PGRES_COMMAND_OK, what, errstr, errstr_size) != 0)
            goto out;
        SVC_LOG(SVC_LOG_INFO, NULL, "database: applied migration %s", m->name);
        (*applied)++;
    }
    PQclear(res);
    res = PQexec(db->conn, "COMMIT");
    in_txn = 0;
    if (exec_ok(db, res, PGRES_COMMAND_OK, "migrations: COMMIT", errstr, errstr_size) != 0)
        goto out;
    rc = 0;
out:
    PQclear(res);
    if (in_txn && db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        PQclear(PQexec(db->conn, "ROLLBACK"));
    if (rc != 0)
        *applied = 0;
    if (db->conn != NULL)
        check_conn(db);
    return rc;
}

static int reserve(unsigned char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    unsigned char *p = realloc(*buf, need);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = need;
    return 0;
}

/* PostgreSQL's binary wire format is big-endian. */
static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* Header of a one-dimensional array without NULLs of n elements of type elem_oid. */
static unsigned char *put_array_header(unsigned char *p, uint32_t elem_oid, size_t n)
{
    p = put_u32(p, 1);           /* dimensions */
    p = put_u32(p, 0);           /* no NULL element */
    p = put_u32(p, elem_oid);
    p = put_u32(p, (uint32_t)n); /* length of the dimension */
    return put_u32(p, 1);        /* lower bound */
}

static int by_id(const void *a, const void *b)
{
    const dbw_row *x = *(const dbw_row *const *)a;
    const dbw_row *y = *(const dbw_row *const *)b;
    return strcmp(x->msg.transaction_id, y->msg.transaction_id);
}

/* Builds the three binary array parameters for rows, in transaction_id order: concurrent
 * batches on several connections then take their row locks in one order (two batches
 * holding the same replayed ids cannot deadlock), and the primary key index is walked in
 * order. Binary parameters: no quoting or escaping of ids, scores sent as their IEEE-754
 * bits (exact by construction), nothing for the server to parse. */
static int build_arrays(pg_db *db, const dbw_row *rows, size_t n)
{
    enum { TEXT_OID = 25, FLOAT8_OID = 701, INT2_OID = 21, HEADER = 20 };
    if (n > (size_t)INT32_MAX / (4 + FS_TXN_ID_MAX))
        return -1;
    if (db->order_cap < n) {
        const dbw_row **o = realloc(db->order, n * sizeof *o);
        if (o == NULL)
            return -1;
        db->order = o;
        db->order_cap = n;
    }
    if (reserve(&db->ids, &db->ids_cap, HEADER + n * (4 + FS_TXN_ID_MAX)) != 0 ||
        reserve(&db->scores, &db->scores_cap, HEADER + n * 12) != 0 ||
        reserve(&db->flags, &db->flags_cap, HEADER + n * 6) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        db->order[i] = &rows[i];
    qsort(db->order, n, sizeof db->order[0], by_id);
    unsigned char *a = put_array_header(db->ids, TEXT_OID, n);
    unsigned char *b = put_array_header(db->scores, FLOAT8_OID, n);
    unsigned char *c = put_array_header(db->flags, INT2_OID, n);
    for (size_t i = 0; i < n; i++) {
        const fs_scoring_msg *r = &db->order[i]->msg;
        size_t len = strnlen(r->transaction_id, FS_TXN_ID_MAX);
        a = put_u32(a, (uint32_t)len);
        memcpy(a, r->transaction_id, len);
        a += len;
        uint64_t bits;
        memcpy(&bits, &r->score, sizeof bits);
        b = put_u32(b, 8);
        b = put_u32(b, (uint32_t)(bits >> 32));
        b = put_u32(b, (uint32_t)bits);
        c = put_u32(c, 2);
        *c++ = 0;
        *c++ = r->fraud_flag ? 1 : 0;
    }
    db->lens[0] = (int)(a - db->ids);
    db->lens[1] = (int)(b - db->scores);
    db->lens[2] = (int)(c - db->flags);
    return 0;
}

static const char insert_sql[] =
    "INSERT INTO transactions (transaction_id, score, fraud_flag) "
    "SELECT u.id, u.score, u.flag "
    "FROM unnest($1::text[], $2::float8[], $3::int2[]) AS u(id, score, flag) "
    "ON CONFLICT (transaction_id) DO NOTHING";

/* After a failure the connection may look fine and be dead (server restarted): it is closed,
 * so the next attempt starts afresh (the writer keeps its "database up" state itself). */
static void insert_failed(pg_db *db)
{
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    db->in_flight = 0;
}

static int pg_send(dbw_db *base, const dbw_row *rows, size_t n, char *errstr,
                   size_t errstr_size)
{
    pg_db *db = (pg_db *)base;
    char why[512];
    if (db->in_flight) {
        snprintf(errstr, errstr_size, "database: insert sent while another is in flight");
        return -1;
    }
    if (pg_connect(db, errstr, errstr_size) != 0)
        goto fail;
    if (build_arrays(db, rows, n) != 0) {
        snprintf(errstr, errstr_size, "database: insert of %zu rows: out of memory", n);
        goto fail;
    }
    /* text[], float8[], int2[] */
    static const Oid types[] = {1009, 1022, 1005};
    static const int formats[] = {1, 1, 1};
    const char *params[] = {(const char *)db->ids, (const char *)db->scores,
                            (const char *)db->flags};
    if (!PQsendQueryParams(db->conn, insert_sql, 3, types, params, db->lens, formats, 0)) {
        first_line(why, sizeof why, PQerrorMessage(db->conn));
        snprintf(errstr, errstr_size, "database: send insert batch: %s", why);
        goto fail;
    }
    db->in_flight = 1;
    return 0;
fail:
    insert_failed(db);
    return -1;
}

static void pg_disconnect(dbw_db *base)
{
    insert_failed((pg_db *)base);
}

static int pg_ready(dbw_db *base)
{
    pg_db *db = (pg_db *)base;
    if (!db->in_flight || db->conn == NULL)
        return 1;
    if (!PQconsumeInput(db->conn))
        return 1; /* the error shows in dbw_db_insert_finish */
    return !PQisBusy(db->conn);
}

static int pg_finish(dbw_db *base, long *inserted, char *errstr, size_t errstr_size)
{
    pg_db *db = (pg_db *)base;
    int rc = -1;
    int seen = 0;
    PGresult *res;
    *inserted = 0;
    if (!db->in_flight) {
        snprintf(errstr, errstr_size, "database: no insert in flight");
        return -1;
    }
    /* Read every result, so the connection is free for the next statement. */
    while ((res = PQgetResult(db->conn)) != NULL) {
        if (!seen) {
            seen = 1;
            if (exec_ok(db, res, PGRES_COMMAND_OK, "insert batch", errstr, errstr_size) == 0) {
                *inserted = strtol(PQcmdTuples(res), NULL, 10);
                rc = 0;
            }
        }
        PQclear(res);
    }
    if (!seen)
        exec_ok(db, NULL, PGRES_COMMAND_OK, "insert batch", errstr, errstr_size);
    db->in_flight = 0;
    if (rc != 0 || PQstatus(db->conn) != CONNECTION_OK) {
        if (rc == 0) {
            snprintf(errstr, errstr_size, "database: connection lost after insert");
            rc = -1;
        }
        insert_failed(db);
        return -1;
    }
    return 0;
}

static const dbw_db_ops pg_ops = {
    .migrate = pg_migrate,
    .send = pg_send,
    .ready = pg_ready,
    .finish = pg_finish,
    .disconnect = pg_disconnect,
    .free = pg_free,
};
