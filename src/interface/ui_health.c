/*
 * Health probes for the page's pipeline panel and for /readyz.
 */
#include "ui_health.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "svc_signal.h"

#define HEALTH_CACHE_MS 1500
#define PROBE_TIMEOUT_MS 1000

struct ui_health {
    rd_kafka_t *rk;
    const char *topic;
    ui_db *db;
    const char *detector_url, *writer_url;
    pthread_mutex_t lock;
    json_t *cached;
    long long cached_at_ms;
};

static long long now_ms(void)
{
    return (long long)(svc_now_s() * 1e3);
}

ui_health *ui_health_new(rd_kafka_t *rk, const char *topic, ui_db *db,
                         const char *detector_url, const char *writer_url)
{
    ui_health *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->rk = rk;
    h->topic = topic;
    h->db = db;
    h->detector_url = detector_url;
    h->writer_url = writer_url;
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void ui_health_free(ui_health *h)
{
    if (h == NULL)
        return;
    json_decref(h->cached);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Waits for fd to become ready for events until deadline; 0, or -1 on timeout/error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

int ui_http_get_status(const char *url, int timeout_ms, char *errstr, size_t errstr_size)
{
    static const char scheme[] = "http://";
    char host[256], port[16] = "80", req[1024], resp[256];
    struct addrinfo hints, *ai = NULL;
    int fd = -1, status = -1;
    long long deadline = now_ms() + timeout_ms;

    if (url == NULL || strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(errstr, errstr_size, "not an http:// URL");
        goto out;
    }
    const char *hp = url + sizeof scheme - 1;
    const char *slash = strchr(hp, '/');
    size_t hplen = slash != NULL ? (size_t)(slash - hp) : strlen(hp);
    const char *path = slash != NULL ? slash : "/";
    const char *colon = memchr(hp, ':', hplen);
    size_t hlen = colon != NULL ? (size_t)(colon - hp) : hplen;
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(errstr, errstr_size, "%s: bad host", url);
        goto out;
    }
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    if (colon != NULL) {
        size_t plen = hplen - hlen - 1;
        if (plen == 0 || plen >= sizeof port) {
            snprintf(errstr, errstr_size, "%s: bad port", url);
            goto out;
        }
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(errstr, errstr_size, "%s:%s: %s", host, port, gai_strerror(gai));
        goto out;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(errstr, errstr_size, "%s:%s: %s", host, port, strerror(errno));
        goto out;
    }
    if (wait_fd(fd, POLLOUT, deadline) != 0) {
        snprintf(errstr, errstr_size, "%s:%s: connect timed out", host, port);
        goto out;
    }
    int soerr = 0;
    socklen_t slen = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
        snprintf(errstr, errstr_size, "%s:%s: %s", host, port, strerror(soerr ? soerr : errno));
        goto out;
    }
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    if (n < 0 || (size_t)n >= sizeof req) {
        snprintf(errstr, errstr_size, "URL too long");
        goto out;
    }
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(errstr, errstr_size, "%s:%s: send failed", host, port);
        goto out;
    }
    size_t got = 0;
    while (got < sizeof resp - 1 && memchr(resp, '\n', got) == NULL) {
        if (wait_fd(fd, POLLIN, deadline) != 0) {
            snprintf(errstr, errstr_size, "%s:%s: no answer in %d ms", host, port, timeout_ms);
            goto out;
        }
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    /* "HTTP/1.x NNN ..." */
    if (got < 12 || strncmp(resp, "HTTP/1.", 7) != 0 || resp[8] != ' ') {
        snprintf(errstr, errstr_size, "%s:%s: not an HTTP answer", host, port);
        goto out;
    }
    status = 0;
    for (int i = 9; i < 12; i++) {
        if (resp[i] < '0' || resp[i] > '9') {
            status = -1;
            snprintf(errstr, errstr_size, "%s:%s: bad HTTP status line", host, port);
            goto out;
        }
        status = status * 10 + (resp[i] - '0');
    }
out:
    if (fd >= 0)
        close(fd);
    if (ai != NULL)
        freeaddrinfo(ai);
    return status;
}

int ui_health_kafka_ready(ui_health *h, char *reason, size_t reason_size)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(h->rk, h->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int ok = 0;
    if (t == NULL) {
        snprintf(reason, reason_size, "Kafka: cannot create topic handle %s", h->topic);
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(h->rk, 0, t, &md, PROBE_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reason, reason_size, "Kafka metadata: %s", rd_kafka_err2str(err));
    } else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reason, reason_size, "Kafka topic %s: %s", h->topic,
                 md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "missing");
    } else {
        snprintf(reason, reason_size, "topic %s: %d partitions, %d brokers", h->topic,
                 md->topics[0].partition_cnt, md->broker_cnt);
        ok = 1;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return ok;
}

static json_t *probe_url(const char *url)
{
    char err[256];
    if (url == NULL || url[0] == '\0')
        return json_pack("{s:n,s:s}", "ok", "detail", "not configured");
    int st = ui_http_get_status(url, PROBE_TIMEOUT_MS, err, sizeof err);
    if (st < 0)
        return json_pack("{s:b,s:s}", "ok", 0, "detail", err);
    snprintf(err, sizeof err, "HTTP %d from %s", st, url);
    return json_pack("{s:b,s:s}", "ok", st == 200, "detail", err);
}

json_t *ui_health_check(ui_health *h)
{
    char reason[256];
    json_t *out = NULL;
    pthread_mutex_lock(&h->lock);
    if (h->cached != NULL && now_ms() - h->cached_at_ms < HEALTH_CACHE_MS) {
        out = json_incref(h->cached);
        goto out;
    }
    int kafka = ui_health_kafka_ready(h, reason, sizeof reason);
    json_t *k = json_pack("{s:b,s:s}", "ok", kafka, "detail", reason);
    int pg = ui_db_ping(h->db, reason, sizeof reason) == 0;
    json_t *p = json_pack("{s:b,s:s}", "ok", pg, "detail", pg ? "SELECT 1 ok" : reason);
    out = json_pack("{s:o,s:o,s:o,s:o}", "kafka", k, "postgres", p, "detector",
                    probe_url(h->detector_url), "writer", probe_url(h->writer_url));
    json_decref(h->cached);
    h->cached = json_incref(out);
    h->cached_at_ms = now_ms();
out:
    pthread_mutex_unlock(&h->lock);
    return out;
}
