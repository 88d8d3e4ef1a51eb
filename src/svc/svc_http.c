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
    svc_http_config cfg;
    int port;
};

static enum MHD_Result reply(svc_http *h, struct MHD_Connection *conn, unsigned int status,
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
    if (h->cfg.decorate != NULL)
        h->cfg.decorate(h->cfg.route_arg, r, status);
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

/* The paths svc_http serves itself. */
static int own_path(const char *url)
{
    return strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0 ||
           strcmp(url, "/metrics") == 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version,
                               const char *upload_data, size_t *upload_data_size, void **ptr)
{
    svc_http *h = cls;
    (void)version;
    if (!own_path(url) && h->cfg.route != NULL)
        return h->cfg.route(h->cfg.route_arg, conn, url, method, upload_data,
                            upload_data_size, ptr);
    /* A body sent to one of our paths is not read. */
    *upload_data_size = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(h, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n",
                     19, 0);
    if (strcmp(url, "/healthz") == 0)
        return reply(h, conn, MHD_HTTP_OK, "text/plain", "ok\n", 3, 0);
    if (strcmp(url, "/readyz") == 0) {
        char reason[256] = "";
        char esc[512];
        char body[640];
        int ok = h->cfg.ready == NULL ? 1 : h->cfg.ready(h->cfg.ready_arg, reason, sizeof reason);
        if (ok)
            return reply(h, conn, MHD_HTTP_OK, "application/json", "{\"ready\":true}\n", 15, 0);
        json_escape(esc, sizeof esc, reason);
        int n = snprintf(body, sizeof body, "{\"ready\":false,\"reason\":\"%s\"}\n", esc);
        if (n < 0 || (size_t)n >= sizeof body)
            n = 0;
        return reply(h, conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json", body, (size_t)n,
                     0);
    }
    if (strcmp(url, "/metrics") == 0) {
        size_t len = 0;
        char *text = h->cfg.metrics != NULL ? svc_metrics_render(h->cfg.metrics, &len) : NULL;
        if (text == NULL)
            return reply(h, conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
                         "metrics unavailable\n", 20, 0);
        return reply(h, conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                     1);
    }
    return reply(h, conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, 0);
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

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    svc_http *h = cls;
    if (h->cfg.done != NULL)
        h->cfg.done(h->cfg.route_arg, c, con_cls, toe);
}

/* addr:port as a socket address: an IPv4 or IPv6 literal, else a host name's first IPv4
 * address. Returns 0, or -1 with errstr. */
static int resolve(const char *addr, int port, struct sockaddr_storage *ss, int *ipv6,
                   char *errstr, size_t errstr_size)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    *ipv6 = 0;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    /* A host name such as "localhost": its first IPv4 address. */
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(addr, NULL, &hints, &res) != 0 || res == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: not an IP address or host name", addr, port);
        return -1;
    }
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    s4->sin_addr = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return 0;
}

svc_http *svc_http_start_config(const svc_http_config *cfg, char *errstr, size_t errstr_size)
{
    struct sockaddr_storage ss;
    svc_http *h = NULL;
    int ipv6 = 0;
    if (cfg->port < 0 || cfg->port > 65535) {
        snprintf(errstr, errstr_size, "%s:%d: port out of range", cfg->addr, cfg->port);
        goto fail;
    }
    if (resolve(cfg->addr, cfg->port, &ss, &ipv6, errstr, errstr_size) != 0)
        goto fail;
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: out of memory", cfg->addr, cfg->port);
        goto fail;
    }
    h->cfg = *cfg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (cfg->thread_per_connection)
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    unsigned limit = cfg->connection_limit > 0 ? cfg->connection_limit : 64u;
    unsigned timeout = cfg->connection_timeout > 0 ? cfg->connection_timeout : 10u;
    /* MHD_OPTION_END ends the list early when no memory limit is asked for. */
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, completed, h,
        MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        cfg->connection_memory_limit > 0 ? MHD_OPTION_CONNECTION_MEMORY_LIMIT : MHD_OPTION_END,
        cfg->connection_memory_limit, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(errstr, errstr_size, "%s:%d: cannot listen (port in use?)", cfg->addr,
                 cfg->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info != NULL ? (int)info->port : cfg->port;
    SVC_LOG(SVC_LOG_INFO, NULL, "http listening on %s:%d (/healthz /readyz /metrics%s)",
            cfg->addr, h->port, cfg->route != NULL ? " and the service's routes" : "");
    return h;
fail:
    free(h);
    return NULL;
}

svc_http *svc_http_start(const char *addr, int port, svc_metrics *metrics, svc_ready_fn ready,
                         void *ready_arg, char *errstr, size_t errstr_size)
{
    svc_http_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.addr = addr;
    cfg.port = port;
    cfg.metrics = metrics;
    cfg.ready = ready;
    cfg.ready_arg = ready_arg;
    return svc_http_start_config(&cfg, errstr, errstr_size);
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
