/* Unit test of svc_http: a real server on a free loopback port, fetched with a plain socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "svc_http.h"
#include "svc_log.h"
#include "svc_metrics.h"

static int ready_state;

static int ready(void *arg, char *reason, size_t size)
{
    (void)arg;
    if (!ready_state)
        snprintf(reason, size, "db \"down\"");
    return ready_state;
}

/* Sends method path (with body and its Content-Length unless body is NULL); returns the
 * status code and copies the response (headers + body) into out. */
static int request(int port, const char *method, const char *path, const char *body,
                   char *out, size_t size)
{
    int status = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    char req[512];
    int n = body == NULL
                ? snprintf(req, sizeof req,
                           "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
                           path)
                : snprintf(req, sizeof req,
                           "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           "Content-Length: %zu\r\n\r\n%s",
                           method, path, strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n)
        goto out;
    size_t len = 0;
    ssize_t r;
    while (len < size - 1 && (r = read(fd, out + len, size - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    if (strncmp(out, "HTTP/1.1 ", 9) == 0)
        status = (int)strtol(out + 9, NULL, 10);
out:
    if (fd >= 0)
        close(fd);
    return status;
}

/* GETs (or another bodiless method) path; status and response as request(). */
static int get(int port, const char *method, const char *path, char *out, size_t size)
{
    return request(port, method, path, NULL, out, size);
}

/* The route fallback: answers every other path with the path and the body length it read;
 * done counts the requests it saw end. */
typedef struct fallback {
    int requests, done;
    size_t body;
} fallback;

static enum MHD_Result route(void *arg, struct MHD_Connection *c, const char *url,
                             const char *method, const char *upload_data,
                             size_t *upload_data_size, void **con_cls)
{
    fallback *f = arg;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = f;
        f->requests++;
        f->body = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        f->body += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    char text[256];
    int n = snprintf(text, sizeof text, "%s %s %zu", method, url, f->body);
    struct MHD_Response *r =
        MHD_create_response_from_buffer((size_t)n, text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(c, 201, r);
    MHD_destroy_response(r);
    return rc;
}

static void done(void *arg, struct MHD_Connection *c, void **con_cls,
                 enum MHD_RequestTerminationCode toe)
{
    fallback *f = arg;
    (void)c;
    (void)toe;
    if (*con_cls == f)
        f->done++;
    *con_cls = NULL;
}

static void decorate(void *arg, struct MHD_Response *r, unsigned status)
{
    (void)arg;
    char v[16];
    snprintf(v, sizeof v, "%u", status);
    MHD_add_response_header(r, "X-Decorated", v);
}

/* POSTs a body to path; status and response as request(). */
static int post(int port, const char *path, const char *body, char *out, size_t size)
{
    return request(port, "POST", path, body, out, size);
}

/* A service's own routes mounted on svc_http: they get every other path (any method, with
 * the body), svc_http keeps /healthz, /readyz and /metrics and decorates its answers. */
static void test_fallback(svc_metrics *m)
{
    char err[256], buf[8192];
    fallback f = {0, 0, 0};
    svc_http_config cfg = {.addr = "::1", .port = 0, .metrics = m, .route = route,
                           .done = done, .decorate = decorate, .route_arg = &f,
                           .thread_per_connection = 1};
    svc_http *h = svc_http_start_config(&cfg, err, sizeof err);
    if (h == NULL) {
        /* No IPv6 loopback here: the same on IPv4. */
        cfg.addr = "127.0.0.1";
        h = svc_http_start_config(&cfg, err, sizeof err);
    }
    CHECK(h != NULL);
    if (h == NULL)
        return;
    if (strcmp(cfg.addr, "::1") == 0) {
        /* get() speaks IPv4: restart on IPv4 after checking the IPv6 bind worked. */
        svc_http_stop(h);
        cfg.addr = "127.0.0.1";
        h = svc_http_start_config(&cfg, err, sizeof err);
        CHECK(h != NULL);
        if (h == NULL)
            return;
    }
    int port = svc_http_port(h);
    CHECK_EQ_INT(get(port, "GET", "/api/x", buf, sizeof buf), 201);
    CHECK(strstr(buf, "\r\n\r\nGET /api/x 0") != NULL);
    CHECK(strstr(buf, "X-Decorated") == NULL); /* the fallback's own response is its own */
    CHECK_EQ_INT(post(port, "/upload", "hello body", buf, sizeof buf), 201);
    CHECK(strstr(buf, "POST /upload 10") != NULL);
    CHECK_EQ_INT(get(port, "DELETE", "/", buf, sizeof buf), 201);
    CHECK_EQ_INT(get(port, "GET", "/healthz", buf, sizeof buf), 200);
    CHECK(strstr(buf, "X-Decorated: 200") != NULL);
    CHECK_EQ_INT(get(port, "GET", "/readyz", buf, sizeof buf), 200);
    CHECK_EQ_INT(get(port, "POST", "/readyz", buf, sizeof buf), 405);
    CHECK(strstr(buf, "X-Decorated: 405") != NULL);
    svc_http_stop(h);
    CHECK_EQ_INT(f.requests, 3);
    CHECK_EQ_INT(f.done, 3);
}

int main(void)
{
    char err[256];
    char buf[8192];
    svc_log_init("test_svc_http", SVC_LOG_ERROR);
    svc_metrics *m = svc_metrics_new();
    svc_counter_add(svc_metrics_counter(m, "t_total", "things", NULL), 5);
    svc_http *h = svc_http_start("127.0.0.1", 0, m, ready, NULL, err, sizeof err);
    CHECK(h != NULL);
    if (h == NULL)
        return CHECK_DONE();
    int port = svc_http_port(h);
    CHECK(port > 0);
    CHECK_EQ_INT(get(port, "GET", "/healthz", buf, sizeof buf), 200);
    CHECK_EQ_INT(get(port, "GET", "/readyz", buf, sizeof buf), 503);
    CHECK(strstr(buf, "{\"ready\":false,\"reason\":\"db \\\"down\\\"\"}") != NULL);
    ready_state = 1;
    CHECK_EQ_INT(get(port, "GET", "/readyz", buf, sizeof buf), 200);
    CHECK(strstr(buf, "{\"ready\":true}") != NULL);
    CHECK_EQ_INT(get(port, "GET", "/metrics", buf, sizeof buf), 200);
    CHECK(strstr(buf, "text/plain; version=0.0.4") != NULL);
    CHECK(strstr(buf, "# TYPE t_total counter\nt_total 5\n") != NULL);
    CHECK_EQ_INT(get(port, "GET", "/nope", buf, sizeof buf), 404);
    CHECK_EQ_INT(get(port, "POST", "/metrics", buf, sizeof buf), 405);
    /* The port is taken now: a second server must fail and say where. */
    svc_http *h2 = svc_http_start("127.0.0.1", port, m, NULL, NULL, err, sizeof err);
    CHECK(h2 == NULL);
    CHECK(strstr(err, "127.0.0.1:") != NULL);
    svc_http_stop(h2);
    CHECK(svc_http_start("no such host.invalid", 0, m, NULL, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "no such host.invalid:0: ") != NULL);
    svc_http *h3 = svc_http_start("localhost", 0, m, NULL, NULL, err, sizeof err);
    CHECK(h3 != NULL);
    if (h3 != NULL)
        CHECK_EQ_INT(get(svc_http_port(h3), "GET", "/healthz", buf, sizeof buf), 200);
    svc_http_stop(h3);
    svc_http_stop(h);
    test_fallback(m);
    svc_metrics_free(m);
    return CHECK_DONE();
}
