/*
 * The scores CSV of an upload, from a binary COPY to a chunked HTTP response.
 */
#include "ui_download.h"

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"

#define CSV_HEADER "row,transaction_id,score,fraud_flag\n"
/* One CSV line: a quoted transaction_id doubles at most its 128 bytes (FS_TXN_ID_MAX; the
 * mart's column is text, so a longer one is cut to a line of its own), numbers ~50 bytes. */
#define LINE_MAX 1024

typedef struct download {
    PGconn *conn;
    int header_seen;  /* the binary COPY signature was read */
    int copy_done;    /* the COPY ended (trailer or end of data) */
    int failed;
    char *msg;        /* the current COPY message (libpq's, freed with PQfreemem) */
    size_t msg_len, msg_pos;
    char line[LINE_MAX + 64];
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

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends s (len bytes) as one CSV field, quoted when it holds a comma, quote, CR or LF
 * (the rule of fraudctl score's put_csv_field). */
static void put_field(download *d, const char *s, size_t len)
{
    int quote = 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        memcpy(d->line + d->line_len, s, len);
        d->line_len += len;
        return;
    }
    d->line[d->line_len++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            d->line[d->line_len++] = '"';
        d->line[d->line_len++] = s[i];
    }
    d->line[d->line_len++] = '"';
}

/* Parses one tuple of the current message into d->line. Returns 1 with a line, 0 at the
 * trailer, -1 on a malformed message. */
static int next_tuple(download *d)
{
    const unsigned char *p = (const unsigned char *)d->msg + d->msg_pos;
    size_t left = d->msg_len - d->msg_pos;
    if (left < 2)
        return -1;
    int16_t nf = (int16_t)(p[0] << 8 | p[1]);
    if (nf == -1) {
        d->msg_pos = d->msg_len;
        return 0;
    }
    if (nf != 4)
        return -1;
    size_t off = 2;
    const unsigned char *val[4];
    int32_t len[4];
    for (int i = 0; i < 4; i++) {
        if (left - off < 4)
            return -1;
        len[i] = (int32_t)be32(p + off);
        off += 4;
        if (len[i] < 0 || (size_t)len[i] > left - off)
            return -1;
        val[i] = p + off;
        off += (size_t)len[i];
    }
    d->msg_pos += off;
    if (len[0] != 4 || len[2] != 8 || len[3] != 4 || len[1] > LINE_MAX / 2)
        return -1;
    uint64_t bits = (uint64_t)be32(val[2]) << 32 | be32(val[2] + 4);
    double score;
    memcpy(&score, &bits, sizeof score);
    d->line_len = 0;
    d->line_pos = 0;
    int n = snprintf(d->line, sizeof d->line, "%u,", be32(val[0]));
    d->line_len = (size_t)n;
    put_field(d, (const char *)val[1], (size_t)len[1]);
    n = snprintf(d->line + d->line_len, sizeof d->line - d->line_len, ",%.17g,%d\n", score,
                 (int)(int32_t)be32(val[3]));
    d->line_len += (size_t)n;
    d->rows++;
    return 1;
}

/* Makes d->line hold the next CSV line. Returns 1, 0 at the end of the data, -1 on error. */
static int next_line(download *d)
{
    for (;;) {
        if (d->msg != NULL && d->msg_pos < d->msg_len) {
            int rc = next_tuple(d);
            if (rc != 0)
                return rc;
            d->copy_done = 1;
        }
        if (d->msg != NULL) {
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
            return ok && d->copy_done ? 0 : -1;
        }
        if (n < 0) {
            SVC_LOG(SVC_LOG_WARN, NULL, "download %s: %s", d->upload_id,
                    PQerrorMessage(d->conn));
            return -1;
        }
        d->msg = buf;
        d->msg_len = (size_t)n;
        d->msg_pos = 0;
        if (!d->header_seen) {
            /* "PGCOPY\n\377\r\n\0", flags, header extension length and its bytes. */
            static const char sig[11] = "PGCOPY\n\377\r\n";
            if (d->msg_len < 19 || memcmp(buf, sig, 11) != 0)
                return -1;
            uint32_t ext = be32((const unsigned char *)buf + 15);
            if (ext > d->msg_len - 19)
                return -1;
            d->msg_pos = 19 + ext;
            d->header_seen = 1;
        }
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
}

struct MHD_Response *ui_download_scores(const char *conninfo, const char *password,
                                        const char *upload_id, unsigned *status,
                                        char *errstr, size_t errstr_size)
{
    static const char exists_sql[] =
        "SELECT EXISTS (SELECT 1 FROM transactions WHERE upload_id = $1::uuid)";
    char copy_sql[512];
    download *d = calloc(1, sizeof *d);
    PGresult *r = NULL;
    struct MHD_Response *resp = NULL;
    *status = 503;
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
             "COPY (SELECT upload_row::int4, transaction_id::text, score::float8, "
             "fraud_flag::int4 FROM transactions WHERE upload_id = '%s'::uuid "
             "ORDER BY upload_row) TO STDOUT (FORMAT binary)",
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
    return NULL;
}
