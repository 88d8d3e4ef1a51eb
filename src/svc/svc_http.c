#include "svc_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "svc_log.h"

struct svc_http {
    struct MHD_Daemon *daemon;
    svc_metrics *metrics;
    svc_ready_fn ready;
    void *ready_arg;
    int port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *type, char *body, size_t len, int owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Writes s as a JSON string body (quotes and backslashes escaped, controls dropped). */
static void json_escape(char *out, size_t size, const char *s)
{
    size_t n = 0;
    for (; *s != '\0' && n + 3 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c >= 0x20) {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size, void **ptr)
{
    svc_http *h = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)ptr;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n",
                     19, 0);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "text/plain", "ok\n", 3, 0);
    if (strcmp(url, "/readyz") == 0) {
        char reason[256] = "";
        char esc[512];
        char body[640];
        int ok = h->ready == NULL ? 1 : h->ready(h->ready_arg, reason, sizeof reason);
        if (ok)
            return reply(conn, MHD_HTTP_OK, "application/json", "{\"ready\":true}\n", 15, 0);
        json_escape(esc, sizeof esc, reason);
        int n = snprintf(body, sizeof body, "{\"ready\":false,\"reason\":\"%s\"}\n", esc);
        if (n < 0 || (size_t)n >= sizeof body)
            n = 0;
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body, (size_t)n,
                     0);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text = h->metrics != NULL ? svc_metrics_render(h->metrics, &len) : NULL;
        if (text == NULL)
            return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
                         "metrics unavailable\n", 20, 0);
        return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                     1);
    }
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, 0);
}

/* libmicrohttpd's own messages, into the service log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    SVC_LOG(SVC_LOG_WARN, NULL, "http: %s", msg);
}

svc_http *svc_http_start(const char *addr, int port, svc_metrics *metrics, svc_ready_fn ready,
                         void *ready_arg, char *errstr, size_t errstr_size)
{
    struct sockaddr_in sa;
    svc_http *h = NULL;
    if (port < 0 || port > 65535) {
        snprintf(errstr, errstr_size, "%s:%d: port out of range", addr, port);
        goto fail;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        /* A host name such as "localhost": its first IPv4 address. */
        struct addrinfo hints;
        struct addrinfo *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(addr, NULL, &hints, &res) != 0 || res == NULL) {
            snprintf(errstr, errstr_size, "%s:%d: not an IPv4 address or host name", addr,
                     port);
            goto fail;
        }
        sa.sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: out of memory", addr, port);
        goto fail;
    }
    h->metrics = metrics;
    h->ready = ready;
    h->ready_arg = ready_arg;
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                 NULL, handler, h, MHD_OPTION_SOCK_ADDR, &sa,
                                 MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: cannot listen (port in use?)", addr, port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? (int)info->port : port;
    SVC_LOG(SVC_LOG_INFO, NULL, "http listening on %s:%d (/healthz /readyz /metrics)", addr,
            h->port);
    return h;
fail:
    free(h);
    return NULL;
}

int svc_http_port(const svc_http *h)
{
    return h->port;
}

void svc_http_stop(svc_http *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
