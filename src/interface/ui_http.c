/*
 * HTTP routing of the interface service.
 */
#include "ui_http.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "fs_version.h"
#include "svc_log.h"
#include "ui_assets.h"

#define CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "            \
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#define ASSET_FILE_MAX (4u << 20)

struct ui_http {
    ui_http_config cfg;
    struct MHD_Daemon *d;
    int port;
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

static enum MHD_Result serve_ready(ui_http *h, struct MHD_Connection *c)
{
    char reason[256];
    if (ui_health_kafka_ready(h->cfg.health, reason, sizeof reason))
        return send_json(h, c, 200, json_pack("{s:b}", "ready", 1));
    return send_json(h, c, 503, json_pack("{s:b,s:s}", "ready", 0, "reason", reason));
}

static enum MHD_Result serve_metrics(ui_http *h, struct MHD_Connection *c)
{
    size_t len = 0;
    char *text = svc_metrics_render(h->cfg.metrics, &len);
    if (text == NULL)
        return send_error(h, c, 500, "cannot render metrics");
    return send_buf(h, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                    MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result serve_get(ui_http *h, struct MHD_Connection *c, const char *url)
{
    static const char up_prefix[] = "/api/uploads/";
    if (strcmp(url, "/healthz") == 0) {
        static char ok[] = "ok\n";
        return send_buf(h, c, 200, "text/plain; charset=utf-8", ok, sizeof ok - 1,
                        MHD_RESPMEM_PERSISTENT);
    }
    if (strcmp(url, "/readyz") == 0)
        return serve_ready(h, c);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(h, c);
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
    if (strncmp(url, up_prefix, sizeof up_prefix - 1) == 0) {
        json_t *j = ui_uploads_status(h->cfg.uploads, url + sizeof up_prefix - 1);
        if (j == NULL)
            return send_error(h, c, 404, "no such upload (ids are kept for the last 64 uploads)");
        return send_json(h, c, 200, j);
    }
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

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size,
                               void **con_cls)
{
    ui_http *h = cls;
    (void)version;
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

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    SVC_LOG(SVC_LOG_WARN, NULL, "http: %s", msg);
}

ui_http *ui_http_start(const ui_http_config *cfg, char *errstr, size_t errstr_size)
{
    ui_http *h = calloc(1, sizeof *h);
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG;
    memset(&ss, 0, sizeof ss);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "http: out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, cfg->addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(errstr, errstr_size, "LISTEN_ADDR %s: not an IPv4 or IPv6 address", cfg->addr);
        free(h);
        return NULL;
    }
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, handler, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)128,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: cannot listen", cfg->addr, cfg->port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? info->port : cfg->port;
    return h;
}

int ui_http_port(const ui_http *h)
{
    return h->port;
}

void ui_http_stop(ui_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
