/*
 * The scores CSV of an upload, from a binary COPY to a chunked HTTP response.
 */
#include "ui_download.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "ui_copybin.h"

#define CSV_HEADER "row,transaction_id,score,fraud_flag\n"

/* Downloads in progress, each holding a PostgreSQL connection of its own: bounded so that
 * many slow clients cannot take the connections db_writer needs. */
static atomic_int active_downloads;

typedef struct download {
    PGconn *conn;
    ui_copybin parse; /* where the binary COPY stream is */
    int failed;       /* 1: cut short, -1: the end was reached */
    char *msg;        /* the current COPY message (libpq's, freed with PQfreemem) */
    size_t msg_len, msg_pos;
    char line[UI_COPYBIN_LINE_MAX];
    size_t line_len, line_pos;
    unsigned long long rows;
    char upload_id[40];
} download;

int ui_uuid_valid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return s[36] == '\0';
}

/* Makes d->line hold the next CSV line. Returns 1, 0 at the end of the data, -1 on error. */
static int next_line(download *d)
{
    for (;;) {
        if (d->msg != NULL) {
            ui_copybin_row row;
            int rc = ui_copybin_next(&d->parse, (const unsigned char *)d->msg, d->msg_len,
                                     &d->msg_pos, &row);
            if (rc < 0) {
                SVC_LOG(SVC_LOG_WARN, NULL, "download %s: malformed COPY data", d->upload_id);
                return -1;
            }
            if (rc == 1) {
                d->line_len = ui_copybin_csv_line(&row, d->line);
                d->line_pos = 0;
                d->rows++;
                return 1;
            }
            PQfreemem(d->msg);
            d->msg = NULL;
        }
        char *buf = NULL;
        int n = PQgetCopyData(d->conn, &buf, 0);
        if (n == -1) { /* the COPY is over: its result says whether it went well */
            PGresult *r = PQgetResult(d->conn);
            int ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
            if (!ok)
                SVC_LOG(SVC_LOG_WARN, NULL, "download %s: COPY failed: %s", d->upload_id,
                        r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(d->conn));
            PQclear(r);
            return ok && d->parse.done ? 0 : -1;
        }
        if (n < 0) {
            SVC_LOG(SVC_LOG_WARN, NULL, "download %s: %s", d->upload_id,
                    PQerrorMessage(d->conn));
            return -1;
        }
        d->msg = buf;
        d->msg_len = (size_t)n;
        d->msg_pos = 0;
    }
}

/* libmicrohttpd's content callback: as many whole or partial lines as fit in buf. */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    download *d = cls;
    size_t out = 0;
    (void)pos;
    while (out < max) {
        if (d->line_pos == d->line_len) {
            if (d->failed)
                break;
            int rc = next_line(d);
            if (rc < 0) {
                d->failed = 1;
                break;
            }
            if (rc == 0) {
                d->failed = -1; /* done: nothing more */
                break;
            }
        }
        size_t n = d->line_len - d->line_pos;
        if (n > max - out)
            n = max - out;
        memcpy(buf + out, d->line + d->line_pos, n);
        d->line_pos += n;
        out += n;
    }
    if (out > 0)
        return (ssize_t)out;
    if (d->failed == -1) {
        SVC_LOG(SVC_LOG_INFO, NULL, "download %s: %llu rows sent", d->upload_id, d->rows);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    /* Cut short: the client sees a chunked body without its last chunk, never a CSV that
     * looks complete. */
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void reader_free(void *cls)
{
    download *d = cls;
    if (d == NULL)
        return;
    if (d->msg != NULL)
        PQfreemem(d->msg);
    PQfinish(d->conn); /* mid-COPY: the server ends the statement */
    free(d);
    atomic_fetch_sub(&active_downloads, 1);
}

struct MHD_Response *ui_download_scores(const char *conninfo, const char *password,
                                        const char *upload_id, unsigned *status,
                                        char *errstr, size_t errstr_size)
{
    static const char exists_sql[] = "SELECT EXISTS (SELECT 1 FROM transactions WHERE "
                                     "upload_id = $1::uuid AND upload_row IS NOT NULL)";
    char copy_sql[512];
    *status = 503;
    if (atomic_fetch_add(&active_downloads, 1) >= UI_DOWNLOAD_MAX) {
        atomic_fetch_sub(&active_downloads, 1);
        snprintf(errstr, errstr_size,
                 "%d downloads are in progress, the most at once; try again shortly",
                 UI_DOWNLOAD_MAX);
        return NULL;
    }
    download *d = calloc(1, sizeof *d);
    PGresult *r = NULL;
    struct MHD_Response *resp = NULL;
    if (d == NULL) {
        snprintf(errstr, errstr_size, "download: out of memory");
        goto fail;
    }
    snprintf(d->upload_id, sizeof d->upload_id, "%s", upload_id);
    const char *const keys[] = {"connect_timeout", "application_name", "dbname",
                                password != NULL ? "password" : NULL, NULL};
    const char *const vals[] = {"3", "fraud_interface_download", conninfo, password, NULL};
    d->conn = PQconnectdbParams(keys, vals, 1);
    if (d->conn == NULL || PQstatus(d->conn) != CONNECTION_OK) {
        const char *m = d->conn != NULL ? PQerrorMessage(d->conn) : "out of memory";
        snprintf(errstr, errstr_size, "PostgreSQL connect: %.*s", (int)strcspn(m, "\n"), m);
        goto fail;
    }
    const char *params[] = {upload_id};
    r = PQexecParams(d->conn, exists_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *m = PQresultErrorMessage(r);
        snprintf(errstr, errstr_size, "PostgreSQL query: %.*s", (int)strcspn(m, "\n"), m);
        goto fail;
    }
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        *status = 404;
        snprintf(errstr, errstr_size, "no scored rows for upload %s", upload_id);
        goto fail;
    }
    PQclear(r);
    /* COPY takes no bind parameters; the id is a checked UUID (hex digits and dashes),
     * so it is safe as a literal. */
    snprintf(copy_sql, sizeof copy_sql,
             "COPY (SELECT (upload_row - 1)::int4, transaction_id::text, score::float8, "
             "fraud_flag::int4 FROM transactions WHERE upload_id = '%s'::uuid "
             "AND upload_row IS NOT NULL ORDER BY upload_row) TO STDOUT (FORMAT binary)",
             upload_id);
    r = PQexec(d->conn, copy_sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        const char *m = PQresultErrorMessage(r);
        snprintf(errstr, errstr_size, "PostgreSQL COPY: %.*s", (int)strcspn(m, "\n"), m);
        goto fail;
    }
    PQclear(r);
    r = NULL;
    memcpy(d->line, CSV_HEADER, sizeof CSV_HEADER - 1);
    d->line_len = sizeof CSV_HEADER - 1;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, reader, d,
                                             reader_free);
    if (resp == NULL) {
        snprintf(errstr, errstr_size, "download: out of memory");
        goto fail;
    }
    *status = 200;
    return resp;
fail:
    PQclear(r);
    if (d != NULL) {
        PQfinish(d->conn);
        free(d);
    }
    atomic_fetch_sub(&active_downloads, 1);
    return NULL;
}
