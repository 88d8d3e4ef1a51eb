/*
 * PostgreSQL queries behind GET /api/results and the health panel.
 */
#include "ui_db.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ui_db {
    const char *conninfo;
    char *password; /* NULL: libpq's PGPASSWORD / .pgpass */
    PGconn *conn;
    pthread_mutex_t lock;
    const PGconn *details_conn; /* the connection have_details last asked */
    int details;                /* its answer */
};

ui_db *ui_db_new(const char *conninfo, const char *password)
{
    ui_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->conninfo = conninfo;
    if (password != NULL && (db->password = strdup(password)) == NULL) {
        free(db);
        return NULL;
    }
    pthread_mutex_init(&db->lock, NULL);
    return db;
}

void ui_db_free(ui_db *db)
{
    if (db == NULL)
        return;
    if (db->conn != NULL)
        PQfinish(db->conn);
    if (db->password != NULL) {
        memset(db->password, 0, strlen(db->password));
        free(db->password);
    }
    pthread_mutex_destroy(&db->lock);
    free(db);
}

/* First line of a libpq message, without the trailing newline. */
static void pq_reason(char *errstr, size_t errstr_size, const char *what, const char *msg)
{
    size_t n = strcspn(msg, "\n");
    snprintf(errstr, errstr_size, "PostgreSQL %s: %.*s", what, (int)n, msg);
}

/* With the lock held: a live connection, or NULL with the reason. */
static PGconn *conn_get(ui_db *db, char *errstr, size_t errstr_size)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        return db->conn;
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    /* Defaults first: values in the conninfo (expanded from dbname) override them; the
     * password from PGPASSWORD_FILE, last, overrides the conninfo's. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                db->password != NULL ? "password" : NULL, NULL};
    const char *const vals[] = {"3", "fraud_interface", db->conninfo, db->password, NULL};
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (db->conn == NULL) {
        snprintf(errstr, errstr_size, "PostgreSQL connect: out of memory");
        return NULL;
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        pq_reason(errstr, errstr_size, "connect", PQerrorMessage(db->conn));
        PQfinish(db->conn);
        db->conn = NULL;
        return NULL;
    }
    return db->conn;
}

/* Runs a query with text parameters; one retry on a fresh connection if the old one died
 * (a restarted server). Returns a PGRES_TUPLES_OK result or NULL with the reason. */
static PGresult *query(ui_db *db, const char *sql, int nparams, const char *const *params,
                       char *errstr, size_t errstr_size)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *c = conn_get(db, errstr, errstr_size);
        if (c == NULL)
            return NULL;
        PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        pq_reason(errstr, errstr_size, "query",
                  r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
        PQclear(r);
        if (PQstatus(c) == CONNECTION_OK)
            return NULL; /* the query itself failed (e.g. no table yet): no retry */
    }
    return NULL;
}

static double num(const PGresult *r, int row, int col)
{
    return strtod(PQgetvalue(r, row, col), NULL);
}

/* With the lock held: 1 if the mart has migration 002's columns (transaction details,
 * reasons, upload identity), 0 if not yet, -1 with errstr. Asked once per connection. */
static int have_details(ui_db *db, char *errstr, size_t errstr_size)
{
    static const char sql[] =
        "SELECT count(*) FROM pg_attribute WHERE attrelid = 'transactions'::regclass "
        "AND attname IN ('upload_id', 'reasons', 'transaction_time') AND NOT attisdropped";
    PGconn *c = conn_get(db, errstr, errstr_size);
    if (c == NULL)
        return -1;
    /* A "yes" is kept for the connection; a "no" is asked again (db_writer may apply the
     * migration while the interface runs). */
    if (db->details_conn == c && db->details == 1)
        return 1;
    PGresult *r = query(db, sql, 0, NULL, errstr, errstr_size);
    if (r == NULL)
        return -1;
    db->details = strtol(PQgetvalue(r, 0, 0), NULL, 10) == 3;
    db->details_conn = db->conn;
    PQclear(r);
    return db->details;
}

/* The detail columns of a row, in the order row_details reads them (NULL before 002). */
#define DETAIL_COLS                                                                         \
    "transaction_id, score, fraud_flag, "                                                   \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "          \
    "to_char(transaction_time, 'YYYY-MM-DD HH24:MI:SS'), amount, merchant, category, "      \
    "customer_name, city, us_state, reasons::text, upload_id::text, upload_row "
#define DETAIL_COLS_OLD                                                                     \
    "transaction_id, score, fraud_flag, "                                                   \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "          \
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL "

/* A text column as a JSON string, SQL NULL as JSON null. */
static json_t *text_or_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

/* One row of DETAIL_COLS as {"transaction_id", "score", "fraud_flag", "created_at",
 * "transaction_time", "amount", "merchant", "category", "customer", "city", "us_state",
 * "reasons", "upload_id", "upload_row"}; NULL columns are JSON null (rows stored before
 * migration 002 have only the first four). */
static json_t *row_details(const PGresult *r, int i)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_t *reasons = NULL;
    if (!PQgetisnull(r, i, 11))
        reasons = json_loads(PQgetvalue(r, i, 11), JSON_DECODE_ANY, NULL);
    json_object_set_new(o, "transaction_id", json_string(PQgetvalue(r, i, 0)));
    json_object_set_new(o, "score", json_real(num(r, i, 1)));
    json_object_set_new(o, "fraud_flag", json_integer(strtol(PQgetvalue(r, i, 2), NULL, 10)));
    json_object_set_new(o, "created_at", text_or_null(r, i, 3));
    json_object_set_new(o, "transaction_time", text_or_null(r, i, 4));
    json_object_set_new(o, "amount", PQgetisnull(r, i, 5) ? json_null() : json_real(num(r, i, 5)));
    json_object_set_new(o, "merchant", text_or_null(r, i, 6));
    json_object_set_new(o, "category", text_or_null(r, i, 7));
    json_object_set_new(o, "customer", text_or_null(r, i, 8));
    json_object_set_new(o, "city", text_or_null(r, i, 9));
    json_object_set_new(o, "us_state", text_or_null(r, i, 10));
    json_object_set_new(o, "reasons", reasons != NULL ? reasons : json_null());
    json_object_set_new(o, "upload_id", text_or_null(r, i, 12));
    json_object_set_new(o, "upload_row",
                        PQgetisnull(r, i, 13)
                            ? json_null()
                            : json_integer(strtoll(PQgetvalue(r, i, 13), NULL, 10)));
    return o;
}

static json_t *rows_details(const PGresult *r)
{
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < PQntuples(r); i++)
        json_array_append_new(arr, row_details(r, i));
    return arr;
}

json_t *ui_db_results(ui_db *db, int fraud_limit, int score_limit, char *errstr,
                      size_t errstr_size)
{
    static const char totals_sql[] =
        "SELECT count(*), count(*) FILTER (WHERE fraud_flag = 1) FROM transactions";
    static const char fraud_sql[] = "SELECT " DETAIL_COLS "FROM transactions WHERE fraud_flag = 1 "
                                    "ORDER BY created_at DESC, transaction_id DESC LIMIT $1";
    static const char fraud_sql_old[] =
        "SELECT " DETAIL_COLS_OLD "FROM transactions WHERE fraud_flag = 1 "
        "ORDER BY created_at DESC, transaction_id DESC LIMIT $1";
    static const char scores_sql[] =
        "SELECT score FROM transactions ORDER BY created_at DESC, transaction_id DESC LIMIT $1";
    PGresult *rt = NULL, *rf = NULL, *rs = NULL;
    json_t *out = NULL;
    char flim[16], slim[16];
    snprintf(flim, sizeof flim, "%d", fraud_limit);
    snprintf(slim, sizeof slim, "%d", score_limit);
    const char *fparams[] = {flim}, *sparams[] = {slim};

    pthread_mutex_lock(&db->lock);
    int details = have_details(db, errstr, errstr_size);
    if (details < 0)
        goto out;
    rt = query(db, totals_sql, 0, NULL, errstr, errstr_size);
    if (rt == NULL)
        goto out;
    rf = query(db, details ? fraud_sql : fraud_sql_old, 1, fparams, errstr, errstr_size);
    if (rf == NULL)
        goto out;
    rs = query(db, scores_sql, 1, sparams, errstr, errstr_size);
    if (rs == NULL)
        goto out;

    long long scored = strtoll(PQgetvalue(rt, 0, 0), NULL, 10);
    long long flagged = strtoll(PQgetvalue(rt, 0, 1), NULL, 10);
    json_t *scores = json_array();
    for (int i = 0; i < PQntuples(rs); i++)
        json_array_append_new(scores, json_real(num(rs, i, 0)));
    out = json_pack("{s:{s:I,s:I,s:f},s:o,s:o,s:b}", "totals", "scored", (json_int_t)scored,
                    "flagged", (json_int_t)flagged, "fraud_rate",
                    scored > 0 ? (double)flagged / (double)scored : 0.0, "latest_fraud",
                    rows_details(rf), "scores", scores, "details", details);
    if (out == NULL)
        snprintf(errstr, errstr_size, "results: out of memory");
out:
    pthread_mutex_unlock(&db->lock);
    PQclear(rt);
    PQclear(rf);
    PQclear(rs);
    return out;
}

json_t *ui_db_transaction(ui_db *db, const char *transaction_id, char *errstr,
                          size_t errstr_size)
{
    static const char sql[] = "SELECT " DETAIL_COLS "FROM transactions WHERE transaction_id = $1";
    static const char sql_old[] =
        "SELECT " DETAIL_COLS_OLD "FROM transactions WHERE transaction_id = $1";
    const char *params[] = {transaction_id};
    json_t *out = NULL;
    PGresult *r = NULL;
    pthread_mutex_lock(&db->lock);
    int details = have_details(db, errstr, errstr_size);
    if (details < 0)
        goto out;
    r = query(db, details ? sql : sql_old, 1, params, errstr, errstr_size);
    if (r == NULL)
        goto out;
    if (PQntuples(r) == 0) {
        errstr[0] = '\0';
        goto out;
    }
    out = row_details(r, 0);
    if (out == NULL)
        snprintf(errstr, errstr_size, "transaction: out of memory");
out:
    pthread_mutex_unlock(&db->lock);
    PQclear(r);
    return out;
}

json_t *ui_db_upload(ui_db *db, const char *upload_id, int flagged_limit, char *errstr,
                     size_t errstr_size)
{
    static const char counts_sql[] =
        "SELECT count(*), count(*) FILTER (WHERE fraud_flag = 1) "
        "FROM transactions WHERE upload_id = $1::uuid";
    static const char flagged_sql[] = "SELECT " DETAIL_COLS
                                      "FROM transactions WHERE upload_id = $1::uuid "
                                      "AND fraud_flag = 1 ORDER BY upload_row LIMIT $2";
    char lim[16];
    snprintf(lim, sizeof lim, "%d", flagged_limit);
    const char *p1[] = {upload_id}, *p2[] = {upload_id, lim};
    json_t *out = NULL;
    PGresult *rc = NULL, *rf = NULL;
    pthread_mutex_lock(&db->lock);
    int details = have_details(db, errstr, errstr_size);
    if (details < 0)
        goto out;
    if (!details) {
        /* A mart older than the interface: not an error of this request, an answer. */
        out = json_pack("{s:s,s:b,s:I,s:I,s:[],s:b}", "upload_id", upload_id, "available", 0,
                        "scored", (json_int_t)0, "flagged", (json_int_t)0, "flagged_rows",
                        "flagged_truncated", 0);
        goto out;
    }
    rc = query(db, counts_sql, 1, p1, errstr, errstr_size);
    if (rc == NULL)
        goto out;
    rf = query(db, flagged_sql, 2, p2, errstr, errstr_size);
    if (rf == NULL)
        goto out;
    long long scored = strtoll(PQgetvalue(rc, 0, 0), NULL, 10);
    long long flagged = strtoll(PQgetvalue(rc, 0, 1), NULL, 10);
    out = json_pack("{s:s,s:b,s:I,s:I,s:o,s:b}", "upload_id", upload_id, "available", 1, "scored",
                    (json_int_t)scored, "flagged", (json_int_t)flagged, "flagged_rows",
                    rows_details(rf), "flagged_truncated", flagged > PQntuples(rf));
    if (out == NULL)
        snprintf(errstr, errstr_size, "upload: out of memory");
out:
    pthread_mutex_unlock(&db->lock);
    PQclear(rc);
    PQclear(rf);
    return out;
}

int ui_db_ping(ui_db *db, char *errstr, size_t errstr_size)
{
    pthread_mutex_lock(&db->lock);
    PGresult *r = query(db, "SELECT 1", 0, NULL, errstr, errstr_size);
    pthread_mutex_unlock(&db->lock);
    int rc = r != NULL ? 0 : -1;
    PQclear(r);
    return rc;
}

const char *ui_db_conninfo(const ui_db *db)
{
    return db->conninfo;
}

const char *ui_db_password(const ui_db *db)
{
    return db->password;
}
