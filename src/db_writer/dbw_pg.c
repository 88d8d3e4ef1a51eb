#include "dbw_pg.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbw_migrations.h"
#include "fs_txn_record.h"
#include "svc_log.h"

/* Arbitrary constant key of the migration advisory lock ("fraud" in ASCII). */
#define DBW_MIGRATION_LOCK_KEY "439891960932"

/* Most bytes of binary data one batch may send (a COPY stream or an array parameter). */
#define DBW_PG_BATCH_BYTES_MAX ((size_t)1 << 30)

/* The columns db_writer writes, in the order of the COPY and the INSERT (migrations 001 and
 * 002); created_at takes its default. */
enum {
    COL_ID,
    COL_SCORE,
    COL_FLAG,
    COL_TIME,
    COL_AMOUNT,
    COL_MERCHANT,
    COL_CATEGORY,
    COL_CUSTOMER,
    COL_CITY,
    COL_STATE,
    COL_REASONS,
    COL_UPLOAD_ID,
    COL_UPLOAD_ROW,
    NCOLS
};

/* Type OIDs of the binary values: the element's and its array's. */
static const struct column {
    unsigned elem_oid, array_oid;
} columns[NCOLS] = {
    [COL_ID] = {25, 1009},        /* text */
    [COL_SCORE] = {701, 1022},    /* float8 */
    [COL_FLAG] = {21, 1005},      /* int2 */
    [COL_TIME] = {1114, 1115},    /* timestamp */
    [COL_AMOUNT] = {701, 1022},   /* float8 */
    [COL_MERCHANT] = {25, 1009},  /* text */
    [COL_CATEGORY] = {25, 1009},  /* text */
    [COL_CUSTOMER] = {25, 1009},  /* text */
    [COL_CITY] = {25, 1009},      /* text */
    [COL_STATE] = {25, 1009},     /* text */
    [COL_REASONS] = {3802, 3807}, /* jsonb */
    [COL_UPLOAD_ID] = {2950, 2951}, /* uuid */
    [COL_UPLOAD_ROW] = {23, 1007},  /* int4 */
};

#define COLUMN_LIST                                                                          \
    "transaction_id, score, fraud_flag, transaction_time, amount, merchant, category, "     \
    "customer_name, city, us_state, reasons, upload_id, upload_row"

static const char copy_sql[] = "COPY transactions (" COLUMN_LIST ") FROM STDIN (FORMAT BINARY)";

static const char insert_sql[] =
    "INSERT INTO transactions (" COLUMN_LIST ") "
    "SELECT * FROM unnest($1::text[], $2::float8[], $3::int2[], $4::timestamp[], "
    "$5::float8[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], "
    "$11::jsonb[], $12::uuid[], $13::int4[]) "
    "ON CONFLICT (transaction_id) DO NOTHING";

/* Seconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00. */
#define PG_EPOCH_UNIX 946684800LL

/* A growable byte buffer of a batch's binary data, kept between batches. */
typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

typedef struct pg_db {
    dbw_db base; /* first: a pg_db * is a dbw_db * */
    char *conninfo;
    char *password;
    PGconn *conn;
    int copy_enabled; /* COPY first (else always the INSERT) */
    /* The batch in flight: its rows in id order (the caller's, valid until finish), the
     * COPY stream and the INSERT's array parameters, kept between batches. */
    const dbw_row **order;
    size_t order_cap;
    size_t n;
    bytes copy;
    bytes arrays[NCOLS];
    enum { METHOD_COPY, METHOD_INSERT } method; /* of the statement in flight */
    int in_flight;         /* a write was sent and its result not read yet */
} pg_db;

static const dbw_db_ops pg_ops;

static void pg_free(dbw_db *base);

dbw_db *dbw_pg_new(const char *conninfo, const char *password, int copy, char *errstr,
                   size_t errstr_size)
{
    pg_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        goto fail;
    db->base.ops = &pg_ops;
    db->copy_enabled = copy;
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
    free(db->copy.p);
    for (int c = 0; c < NCOLS; c++)
        free(db->arrays[c].p);
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

/* Room for n more bytes. Returns 0, or -1 out of memory or past DBW_PG_BATCH_BYTES_MAX. */
static int need(bytes *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > DBW_PG_BATCH_BYTES_MAX - b->len)
        return -1;
    size_t cap = b->cap < 65536 ? 65536 : b->cap;
    while (cap - b->len < n)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* PostgreSQL's binary wire format is big-endian. Callers reserved the room (need). */
static void put_u32(bytes *b, uint32_t v)
{
    unsigned char *p = b->p + b->len;
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    b->len += 4;
}

static void put_u16(bytes *b, uint16_t v)
{
    b->p[b->len] = (unsigned char)(v >> 8);
    b->p[b->len + 1] = (unsigned char)v;
    b->len += 2;
}

static void put_u64(bytes *b, uint64_t v)
{
    put_u32(b, (uint32_t)(v >> 32));
    put_u32(b, (uint32_t)v);
}

static int put_null(bytes *b)
{
    if (need(b, 4) != 0)
        return -1;
    put_u32(b, 0xffffffffu); /* length -1 */
    return 0;
}

static int put_text(bytes *b, const char *s, size_t len)
{
    if (need(b, 4 + len) != 0)
        return -1;
    put_u32(b, (uint32_t)len);
    memcpy(b->p + b->len, s, len);
    b->len += len;
    return 0;
}

static int put_double(bytes *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (need(b, 12) != 0)
        return -1;
    put_u32(b, 8);
    put_u64(b, bits);
    return 0;
}

/* A string of the transaction block, NULL when it was null or absent. */
static int put_block_str(bytes *b, const fs_scoring_msg *m, enum fs_scoring_str f)
{
    if (!m->has_transaction || fs_scoring_str_null(m, f))
        return put_null(b);
    const char *s = fs_scoring_str(m, f);
    return put_text(b, s, strlen(s));
}

/* customer_name: name_1 ' ' name_2; the one present alone if the other is missing; NULL if
 * both are. */
static int put_customer(bytes *b, const fs_scoring_msg *m)
{
    int n1 = m->has_transaction && !fs_scoring_str_null(m, FS_SC_NAME_1);
    int n2 = m->has_transaction && !fs_scoring_str_null(m, FS_SC_NAME_2);
    if (!n1 && !n2)
        return put_null(b);
    const char *a = n1 ? fs_scoring_str(m, FS_SC_NAME_1) : "";
    const char *c = n2 ? fs_scoring_str(m, FS_SC_NAME_2) : "";
    size_t la = strlen(a), lc = strlen(c), len = la + (n1 && n2) + lc;
    if (need(b, 4 + len) != 0)
        return -1;
    put_u32(b, (uint32_t)len);
    memcpy(b->p + b->len, a, la);
    b->len += la;
    if (n1 && n2)
        b->p[b->len++] = ' ';
    memcpy(b->p + b->len, c, lc);
    b->len += lc;
    return 0;
}

/* transaction_time as a timestamp: microseconds since 2000-01-01 00:00:00. The parser
 * validated the text; one it would not take is stored as NULL, never guessed. */
static int put_time(bytes *b, const fs_scoring_msg *m)
{
    int64_t t;
    if (!m->has_transaction || fs_scoring_str_null(m, FS_SC_TRANSACTION_TIME))
        return put_null(b);
    const char *s = fs_scoring_str(m, FS_SC_TRANSACTION_TIME);
    if (fs_parse_time(s, strlen(s), &t) != 0)
        return put_null(b);
    if (need(b, 12) != 0)
        return -1;
    put_u32(b, 8);
    put_u64(b, (uint64_t)((t - PG_EPOCH_UNIX) * 1000000));
    return 0;
}

/* One field, as COPY BINARY and a binary array element both carry it: its length (-1 for
 * NULL) then its bytes. Returns 0, or -1 out of memory. */
static int put_field(bytes *b, const dbw_row *r, int col)
{
    const fs_scoring_msg *m = &r->msg;
    size_t len = 0;
    const char *reasons;
    switch (col) {
    case COL_ID:
        return put_text(b, m->transaction_id, strnlen(m->transaction_id, FS_TXN_ID_MAX));
    case COL_SCORE:
        return put_double(b, m->score);
    case COL_FLAG:
        if (need(b, 6) != 0)
            return -1;
        put_u32(b, 2);
        put_u16(b, m->fraud_flag ? 1 : 0);
        return 0;
    case COL_TIME:
        return put_time(b, m);
    case COL_AMOUNT:
        return m->has_transaction && !isnan(m->amount) ? put_double(b, m->amount) : put_null(b);
    case COL_MERCHANT:
        return put_block_str(b, m, FS_SC_MERCH);
    case COL_CATEGORY:
        return put_block_str(b, m, FS_SC_CAT_ID);
    case COL_CUSTOMER:
        return put_customer(b, m);
    case COL_CITY:
        return put_block_str(b, m, FS_SC_ONE_CITY);
    case COL_STATE:
        return put_block_str(b, m, FS_SC_US_STATE);
    case COL_REASONS:
        reasons = fs_scoring_reasons(m, &len);
        if (reasons == NULL)
            return put_null(b);
        /* jsonb's binary form: version 1, then the JSON text. */
        if (need(b, 5 + len) != 0)
            return -1;
        put_u32(b, (uint32_t)(len + 1));
        b->p[b->len++] = 1;
        memcpy(b->p + b->len, reasons, len);
        b->len += len;
        return 0;
    case COL_UPLOAD_ID:
        if (!r->has_upload_id)
            return put_null(b);
        if (need(b, 20) != 0)
            return -1;
        put_u32(b, 16);
        memcpy(b->p + b->len, r->upload_id, 16);
        b->len += 16;
        return 0;
    case COL_UPLOAD_ROW:
        if (r->upload_row <= 0)
            return put_null(b);
        if (need(b, 8) != 0)
            return -1;
        put_u32(b, 4);
        put_u32(b, (uint32_t)r->upload_row);
        return 0;
    default:
        return -1;
    }
}

static int by_id(const void *a, const void *b)
{
    const dbw_row *x = *(const dbw_row *const *)a;
    const dbw_row *y = *(const dbw_row *const *)b;
    return strcmp(x->msg.transaction_id, y->msg.transaction_id);
}

/* Puts rows in transaction_id order: concurrent batches on several connections then take
 * their locks in one order (two batches holding the same replayed ids cannot deadlock), and
 * the primary key index is walked in order. */
static int sort_rows(pg_db *db, const dbw_row *rows, size_t n)
{
    if (db->order_cap < n) {
        const dbw_row **o = realloc(db->order, n * sizeof *o);
        if (o == NULL)
            return -1;
        db->order = o;
        db->order_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        db->order[i] = &rows[i];
    qsort(db->order, n, sizeof db->order[0], by_id);
    return 0;
}

/* The COPY BINARY stream of the sorted rows: signature, flags, no extension, one tuple per
 * row (field count, then each field), the trailer. */
static int build_copy(pg_db *db, size_t n)
{
    static const unsigned char signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n',
                                                0xff, '\r', '\n', 0};
    bytes *b = &db->copy;
    b->len = 0;
    if (need(b, sizeof signature + 8) != 0)
        return -1;
    memcpy(b->p, signature, sizeof signature);
    b->len = sizeof signature;
    put_u32(b, 0); /* flags: no OIDs */
    put_u32(b, 0); /* header extension length */
    for (size_t i = 0; i < n; i++) {
        if (need(b, 2) != 0)
            return -1;
        put_u16(b, NCOLS);
        for (int c = 0; c < NCOLS; c++)
            if (put_field(b, db->order[i], c) != 0)
                return -1;
    }
    if (need(b, 2) != 0)
        return -1;
    put_u16(b, 0xffff); /* trailer: -1 */
    return 0;
}

/* The binary array parameters of the INSERT, one per column, of the sorted rows: no
 * quoting or escaping of ids, scores sent as their IEEE-754 bits (exact by construction),
 * nothing for the server to parse. */
static int build_arrays(pg_db *db, size_t n)
{
    for (int c = 0; c < NCOLS; c++) {
        bytes *b = &db->arrays[c];
        b->len = 0;
        if (need(b, 20) != 0)
            return -1;
        put_u32(b, 1);             /* dimensions */
        put_u32(b, 1);             /* may hold NULL elements */
        put_u32(b, columns[c].elem_oid);
        put_u32(b, (uint32_t)n);   /* length of the dimension */
        put_u32(b, 1);             /* lower bound */
        for (size_t i = 0; i < n; i++)
            if (put_field(b, db->order[i], c) != 0)
                return -1;
        if (b->len > INT32_MAX)
            return -1;
    }
    return 0;
}

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

/* Sends the INSERT ... ON CONFLICT DO NOTHING of the sorted rows. */
static int send_insert(pg_db *db, size_t n, char *errstr, size_t errstr_size)
{
    char why[512];
    Oid types[NCOLS];
    int formats[NCOLS], lens[NCOLS];
    const char *params[NCOLS];
    if (build_arrays(db, n) != 0) {
        snprintf(errstr, errstr_size,
                 "database: insert of %zu rows: out of memory or over %zu bytes", n,
                 DBW_PG_BATCH_BYTES_MAX);
        return -1;
    }
    for (int c = 0; c < NCOLS; c++) {
        types[c] = columns[c].array_oid;
        formats[c] = 1;
        lens[c] = (int)db->arrays[c].len;
        params[c] = (const char *)db->arrays[c].p;
    }
    if (!PQsendQueryParams(db->conn, insert_sql, NCOLS, types, params, lens, formats, 0)) {
        first_line(why, sizeof why, PQerrorMessage(db->conn));
        snprintf(errstr, errstr_size, "database: send insert batch: %s", why);
        return -1;
    }
    db->method = METHOD_INSERT;
    return 0;
}

/* Starts the COPY of the sorted rows and streams them; the server's verdict (the commit)
 * is read by pg_finish. Waits one round trip for the server to accept the COPY. */
static int send_copy(pg_db *db, size_t n, char *errstr, size_t errstr_size)
{
    char why[512];
    PGresult *res = NULL;
    if (build_copy(db, n) != 0) {
        snprintf(errstr, errstr_size,
                 "database: copy of %zu rows: out of memory or over %zu bytes", n,
                 DBW_PG_BATCH_BYTES_MAX);
        return -1;
    }
    if (!PQsendQuery(db->conn, copy_sql)) {
        first_line(why, sizeof why, PQerrorMessage(db->conn));
        snprintf(errstr, errstr_size, "database: send copy: %s", why);
        return -1;
    }
    res = PQgetResult(db->conn);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        exec_ok(db, res, PGRES_COPY_IN, "copy batch", errstr, errstr_size);
        PQclear(res);
        while ((res = PQgetResult(db->conn)) != NULL)
            PQclear(res);
        return -1;
    }
    PQclear(res);
    if (PQputCopyData(db->conn, (const char *)db->copy.p, (int)db->copy.len) != 1 ||
        PQputCopyEnd(db->conn, NULL) != 1) {
        first_line(why, sizeof why, PQerrorMessage(db->conn));
        snprintf(errstr, errstr_size, "database: copy batch: %s", why);
        return -1;
    }
    db->method = METHOD_COPY;
    return 0;
}

static int pg_send(dbw_db *base, const dbw_row *rows, size_t n, char *errstr,
                   size_t errstr_size)
{
    pg_db *db = (pg_db *)base;
    if (db->in_flight) {
        snprintf(errstr, errstr_size, "database: insert sent while another is in flight");
        return -1;
    }
    if (pg_connect(db, errstr, errstr_size) != 0)
        goto fail;
    if (n > DBW_PG_BATCH_BYTES_MAX / 64 || sort_rows(db, rows, n) != 0) {
        snprintf(errstr, errstr_size,
                 "database: batch of %zu rows: out of memory or over %zu bytes", n,
                 DBW_PG_BATCH_BYTES_MAX);
        goto fail;
    }
    db->n = n;
    if ((db->copy_enabled ? send_copy(db, n, errstr, errstr_size)
                          : send_insert(db, n, errstr, errstr_size)) != 0)
        goto fail;
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

/* Reads every result of the statement in flight (so the connection is free for the next
 * one). Returns 0 with *inserted, 1 if it failed on a duplicate key (unique_violation), or
 * -1 with errstr. */
static int read_results(pg_db *db, long *inserted, char *errstr, size_t errstr_size)
{
    int rc = -1;
    int seen = 0;
    PGresult *res;
    const char *what = db->method == METHOD_COPY ? "copy batch" : "insert batch";
    while ((res = PQgetResult(db->conn)) != NULL) {
        if (!seen) {
            seen = 1;
            if (exec_ok(db, res, PGRES_COMMAND_OK, what, errstr, errstr_size) == 0) {
                *inserted = strtol(PQcmdTuples(res), NULL, 10);
                rc = 0;
            } else {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                if (state != NULL && strcmp(state, "23505") == 0)
                    rc = 1;
            }
        }
        PQclear(res);
    }
    if (!seen)
        exec_ok(db, NULL, PGRES_COMMAND_OK, what, errstr, errstr_size);
    return rc;
}

static int pg_finish(dbw_db *base, long *inserted, char *errstr, size_t errstr_size)
{
    pg_db *db = (pg_db *)base;
    *inserted = 0;
    if (!db->in_flight) {
        snprintf(errstr, errstr_size, "database: no insert in flight");
        return -1;
    }
    int rc = read_results(db, inserted, errstr, errstr_size);
    if (rc == 1 && db->method == METHOD_COPY && PQstatus(db->conn) == CONNECTION_OK) {
        /* A replay: some rows are stored already. The COPY's transaction rolled back;
         * the batch is written again with the idempotent INSERT. */
        SVC_LOG(SVC_LOG_INFO, NULL, "database: copy of %zu rows hit stored keys (a "
                "replay); writing them with INSERT ... ON CONFLICT DO NOTHING", db->n);
        rc = send_insert(db, db->n, errstr, errstr_size) == 0
                 ? read_results(db, inserted, errstr, errstr_size)
                 : -1;
    }
    db->in_flight = 0;
    if (rc != 0 || PQstatus(db->conn) != CONNECTION_OK) {
        if (rc == 0)
            snprintf(errstr, errstr_size, "database: connection lost after insert");
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
