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

json_t *ui_db_results(ui_db *db, int fraud_limit, int score_limit, char *errstr,
                      size_t errstr_size)
{
    static const char totals_sql[] =
        "SELECT count(*), count(*) FILTER (WHERE fraud_flag = 1) FROM transactions";
    static const char fraud_sql[] =
        "SELECT transaction_id, score, "
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
        "FROM transactions WHERE fraud_flag = 1 "
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
    rt = query(db, totals_sql, 0, NULL, errstr, errstr_size);
    if (rt == NULL)
        goto out;
    rf = query(db, fraud_sql, 1, fparams, errstr, errstr_size);
    if (rf == NULL)
        goto out;
    rs = query(db, scores_sql, 1, sparams, errstr, errstr_size);
    if (rs == NULL)
        goto out;

    long long scored = strtoll(PQgetvalue(rt, 0, 0), NULL, 10);
    long long flagged = strtoll(PQgetvalue(rt, 0, 1), NULL, 10);
    json_t *fraud = json_array(), *scores = json_array();
    for (int i = 0; i < PQntuples(rf); i++)
        json_array_append_new(fraud, json_pack("{s:s,s:f,s:s}", "transaction_id",
                                               PQgetvalue(rf, i, 0), "score", num(rf, i, 1),
                                               "created_at", PQgetvalue(rf, i, 2)));
    for (int i = 0; i < PQntuples(rs); i++)
        json_array_append_new(scores, json_real(num(rs, i, 0)));
    out = json_pack("{s:{s:I,s:I,s:f},s:o,s:o}", "totals", "scored", (json_int_t)scored,
                    "flagged", (json_int_t)flagged, "fraud_rate",
                    scored > 0 ? (double)flagged / (double)scored : 0.0, "latest_fraud", fraud,
                    "scores", scores);
    if (out == NULL)
        snprintf(errstr, errstr_size, "results: out of memory");
out:
    pthread_mutex_unlock(&db->lock);
    PQclear(rt);
    PQclear(rf);
    PQclear(rs);
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
