/*
 * HTTP routing of the interface service.
 */
#include "ui_http.h"

#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fs_txn_record.h"
#include "fs_version.h"
#include "svc_http.h"
#include "svc_log.h"
#include "ui_assets.h"
#include "ui_download.h"

#define CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "            \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define ASSET_FILE_MAX (4u << 20)

struct ui_http {
    ui_http_config cfg;
    svc_http *http; /* serves /healthz, /readyz, /metrics and mounts route() */
};

/* Per-request state, only for uploads. */
struct req {
    ui_upload *up;
    int ended;
};

static void add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Content-Security-Policy", CSP);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static void count_response(ui_http *h, unsigned status)
{
    char labels[32];
    snprintf(labels, sizeof labels, "code=\"%u\"", status);
    svc_counter_add(svc_metrics_counter(h->cfg.metrics, "interface_http_responses_total",
                                        "HTTP responses by status code.", labels),
                    1);
}

static enum MHD_Result send_buf(ui_http *h, struct MHD_Connection *c, unsigned status,
                                const char *type, char *body, size_t len,
                                enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    add_common_headers(r);
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    count_response(h, status);
    return rc;
}

/* Sends j (consumed) as the JSON body. */
static enum MHD_Result send_json(ui_http *h, struct MHD_Connection *c, unsigned status,
                                 json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(j);
    if (s == NULL) {
        static char oom[] = "{\"error\":\"out of memory\"}";
        return send_buf(h, c, 500, "application/json", oom, sizeof oom - 1,
                        MHD_RESPMEM_PERSISTENT);
    }
    return send_buf(h, c, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(ui_http *h, struct MHD_Connection *c, unsigned status,
                                  const char *msg)
{
    return send_json(h, c, status, json_pack("{s:s}", "error", msg));
}

/* Reads WEB_DIR/<path> (path is one of the embedded names, so never outside WEB_DIR). */
static char *read_web_file(const char *dir, const char *path, size_t *len)
{
    char full[4096];
    char *buf = NULL;
    FILE *f = NULL;
    int n = snprintf(full, sizeof full, "%s%s", dir, path);
    if (n < 0 || (size_t)n >= sizeof full)
        goto fail;
    f = fopen(full, "rb");
    if (f == NULL)
        goto fail;
    buf = malloc(ASSET_FILE_MAX);
    if (buf == NULL)
        goto fail;
    *len = fread(buf, 1, ASSET_FILE_MAX, f);
    if (ferror(f) || *len == ASSET_FILE_MAX)
        goto fail;
    fclose(f);
    return buf;
fail:
    free(buf);
    if (f != NULL)
        fclose(f);
    return NULL;
}

static enum MHD_Result serve_asset(ui_http *h, struct MHD_Connection *c, const char *url)
{
    const ui_asset *a = ui_asset_find(url);
    if (a == NULL)
        return send_error(h, c, 404, "not found");
    const char *type = ui_asset_type(a->path);
    if (h->cfg.web_dir != NULL && h->cfg.web_dir[0] != '\0') {
        size_t len = 0;
        char *body = read_web_file(h->cfg.web_dir, a->path, &len);
        if (body == NULL)
            return send_error(h, c, 500, "cannot read the asset from WEB_DIR");
        return send_buf(h, c, 200, type, body, len, MHD_RESPMEM_MUST_FREE);
    }
    return send_buf(h, c, 200, type, (char *)a->data, a->len, MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result serve_results(ui_http *h, struct MHD_Connection *c)
{
    char err[512];
    json_t *j = ui_db_results(h->cfg.db, 10, 100, err, sizeof err);
    if (j == NULL)
        return send_error(h, c, 503, err);
    json_object_set_new(j, "threshold", json_real(h->cfg.threshold));
    return send_json(h, c, 200, j);
}

/* Flagged rows of an upload listed by /api/uploads/<id>/results. */
#define UPLOAD_FLAGGED_MAX 100

/* GET /api/uploads/<id>/results: what the upload became downstream. The in-memory status
 * (while the upload is remembered) says how many rows Kafka accepted; PostgreSQL says how
 * many are scored and flagged, and which. */
static enum MHD_Result serve_upload_results(ui_http *h, struct MHD_Connection *c,
                                            const char *id)
{
    char err[512];
    json_t *st = ui_uploads_status(h->cfg.uploads, id);
    json_t *j = ui_db_upload(h->cfg.db, id, UPLOAD_FLAGGED_MAX, err, sizeof err);
    if (j == NULL) {
        json_decref(st);
        return send_error(h, c, 503, err);
    }
    json_int_t scored = json_integer_value(json_object_get(j, "scored"));
    int available = json_is_true(json_object_get(j, "available"));
    if (st == NULL && (scored == 0 || !available)) {
        json_decref(j);
        return send_error(h, c, 404, "no such upload (none of its rows is stored, and ids "
                                     "are remembered for the last 64 uploads)");
    }
    json_t *accepted = st != NULL ? json_object_get(st, "acked") : NULL;
    const char *state = st != NULL ? json_string_value(json_object_get(st, "state")) : NULL;
    /* Complete: the body is in, Kafka acknowledged every sent row, and every acknowledged
     * row is in the mart. Unknown (null) once the upload is no longer remembered. */
    json_t *complete = json_null();
    if (st != NULL && available)
        complete = json_boolean(state != NULL && strcmp(state, "done") == 0 &&
                                scored >= json_integer_value(accepted));
    json_object_set(j, "accepted", accepted != NULL ? accepted : json_null());
    json_object_set_new(j, "state", state != NULL ? json_string(state) : json_null());
    json_object_set_new(j, "complete", complete);
    json_decref(st);
    return send_json(h, c, 200, j);
}

static enum MHD_Result serve_download(ui_http *h, struct MHD_Connection *c, const char *id)
{
    char err[512], disp[128];
    unsigned status = 503;
    struct MHD_Response *r = ui_download_scores(ui_db_conninfo(h->cfg.db),
                                                ui_db_password(h->cfg.db), id, &status, err,
                                                sizeof err);
    if (r == NULL)
        return send_error(h, c, status, err);
    snprintf(disp, sizeof disp, "attachment; filename=\"scores-%s.csv\"", id);
    add_common_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/csv; charset=utf-8");
    MHD_add_response_header(r, "Content-Disposition", disp);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    count_response(h, 200);
    return rc;
}

/* /api/uploads/<id>[/results|/scores.csv] */
static enum MHD_Result serve_upload(ui_http *h, struct MHD_Connection *c, const char *rest)
{
    char id[40];
    size_t n = strcspn(rest, "/");
    if (n >= sizeof id)
        return send_error(h, c, 404, "no such upload (an upload id is a UUID)");
    memcpy(id, rest, n);
    id[n] = '\0';
    const char *sub = rest + n;
    if (sub[0] == '\0') {
        json_t *j = ui_uploads_status(h->cfg.uploads, id);
        if (j == NULL)
            return send_error(h, c, 404, "no such upload (ids are kept for the last 64 uploads; "
                                         "/api/uploads/<id>/results reads older ones from "
                                         "the database)");
        return send_json(h, c, 200, j);
    }
    if (!ui_uuid_valid(id))
        return send_error(h, c, 404, "no such upload (an upload id is a UUID)");
    if (strcmp(sub, "/results") == 0)
        return serve_upload_results(h, c, id);
    if (strcmp(sub, "/scores.csv") == 0)
        return serve_download(h, c, id);
    return send_error(h, c, 404, "no such endpoint");
}

/* GET /api/transactions/<transaction_id>: one stored row with its details and reasons. */
static enum MHD_Result serve_transaction(ui_http *h, struct MHD_Connection *c, const char *id)
{
    char err[512];
    if (!fs_txn_id_valid(id, strlen(id)))
        return send_error(h, c, 404, "no such transaction (an id is 1..128 printable ASCII "
                                     "characters)");
    json_t *j = ui_db_transaction(h->cfg.db, id, err, sizeof err);
    if (j == NULL)
        return send_error(h, c, err[0] != '\0' ? 503 : 404,
                          err[0] != '\0' ? err : "no such transaction in the database");
    return send_json(h, c, 200, j);
}

static enum MHD_Result serve_get(ui_http *h, struct MHD_Connection *c, const char *url)
{
    static const char up_prefix[] = "/api/uploads/";
    static const char tx_prefix[] = "/api/transactions/";
    if (strcmp(url, "/api/results") == 0)
        return serve_results(h, c);
    if (strcmp(url, "/api/health") == 0)
        return send_json(h, c, 200, ui_health_check(h->cfg.health));
    if (strcmp(url, "/api/config") == 0)
        return send_json(h, c, 200,
                         json_pack("{s:f,s:I,s:I,s:s}", "threshold", h->cfg.threshold,
                                   "max_upload_bytes", (json_int_t)h->cfg.max_upload_bytes,
                                   "max_rows", (json_int_t)h->cfg.max_rows, "version",
                                   fs_version()));
    if (strcmp(url, "/api/uploads") == 0)
        return send_json(h, c, 200, ui_uploads_list(h->cfg.uploads));
    if (strncmp(url, up_prefix, sizeof up_prefix - 1) == 0)
        return serve_upload(h, c, url + sizeof up_prefix - 1);
    if (strncmp(url, tx_prefix, sizeof tx_prefix - 1) == 0)
        return serve_transaction(h, c, url + sizeof tx_prefix - 1);
    if (strncmp(url, "/api/", 5) == 0)
        return send_error(h, c, 404, "no such endpoint");
    return serve_asset(h, c, url);
}

static long long content_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (v == NULL)
        return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return (end == v || *end != '\0' || n < 0) ? -1 : n;
}

static enum MHD_Result upload_answer(ui_http *h, struct MHD_Connection *c, ui_upload *up,
                                     const ui_upload_verdict *v)
{
    json_t *j = ui_upload_status(up);
    if (v->status >= 400)
        json_object_set_new(j, "error", json_string(v->error));
    return send_json(h, c, v->status, j);
}

static enum MHD_Result handle_upload(ui_http *h, struct MHD_Connection *c,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    struct req *rq = *con_cls;
    ui_upload_verdict v;
    if (rq == NULL) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        ui_upload *up = ui_upload_begin(h->cfg.uploads, ct, content_length(c), &v);
        if (up == NULL)
            return send_error(h, c, v.status, v.error);
        rq = calloc(1, sizeof *rq);
        if (rq == NULL) {
            ui_upload_abort(up);
            ui_upload_release(up);
            return send_error(h, c, 500, "out of memory");
        }
        rq->up = up;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        int rc = ui_upload_feed(rq->up, upload_data, *upload_data_size);
        *upload_data_size = 0;
        if (rc != 0) {
            SVC_LOG(SVC_LOG_WARN, NULL, "upload %s: body far over the limit, connection dropped",
                    ui_upload_id(rq->up));
            return MHD_NO;
        }
        return MHD_YES;
    }
    rq->ended = 1;
    ui_upload_end(rq->up, &v);
    return upload_answer(h, c, rq->up, &v);
}

/* The route fallback of svc_http: everything but /healthz, /readyz and /metrics. */
static enum MHD_Result route(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    ui_http *h = cls;
    if (strcmp(url, "/api/uploads") == 0 && strcmp(method, "POST") == 0)
        return handle_upload(h, c, upload_data, upload_data_size, con_cls);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        /* Any body of a refused request is dropped unread. */
        *upload_data_size = 0;
        return send_error(h, c, 405, "method not allowed");
    }
    if (url[0] == '/' && url[1] == '\0')
        url = "/index.html";
    return serve_get(h, c, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    struct req *rq = *con_cls;
    if (rq == NULL)
        return;
    if (!rq->ended || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        ui_upload_abort(rq->up);
    ui_upload_release(rq->up);
    free(rq);
    *con_cls = NULL;
}

/* svc_http's own answers (/healthz, /readyz, /metrics) get the same headers and counts. */
static void decorate(void *cls, struct MHD_Response *r, unsigned status)
{
    ui_http *h = cls;
    add_common_headers(r);
    count_response(h, status);
}

static int kafka_ready(void *arg, char *reason, size_t reason_size)
{
    return ui_health_kafka_ready(arg, reason, reason_size);
}

ui_http *ui_http_start(const ui_http_config *cfg, char *errstr, size_t errstr_size)
{
    ui_http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "http: out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    /* A thread per connection: an upload waiting for room in the producer queue, or a
     * download streaming from PostgreSQL, never stalls other requests. */
    svc_http_config sc = {
        .addr = cfg->addr,
        .port = cfg->port,
        .metrics = cfg->metrics,
        .ready = kafka_ready,
        .ready_arg = cfg->health,
        .route = route,
        .done = completed,
        .decorate = decorate,
        .route_arg = h,
        .thread_per_connection = 1,
        .connection_limit = 128,
        .connection_timeout = 120,
        .connection_memory_limit = 256 * 1024,
    };
    h->http = svc_http_start_config(&sc, errstr, errstr_size);
    if (h->http == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

int ui_http_port(const ui_http *h)
{
    return svc_http_port(h->http);
}

void ui_http_stop(ui_http *h)
{
    if (h == NULL)
        return;
    svc_http_stop(h->http);
    free(h);
}
