/*
 * bench_upload: upload-to-all-acked throughput of the interface service against a plain
 * librdkafka producer of the same rows, measured in the same run on the same broker.
 *
 *   baseline   the CSV's rows parsed and formatted into transactions messages beforehand
 *              (not timed), then produced with the interface's producer settings and flushed:
 *              the rows/s Kafka itself allows here.
 *   interface  POST /api/uploads of the same file (streamed from disk over one connection),
 *              then GET /api/uploads/<id> every 20 ms until every row is acknowledged: the
 *              rows/s a user sees, parsing, validation, ids and JSON included.
 * Prints both and the ratio interface / baseline. Run through bench/upload/run, which
 * generates the CSV and starts a stack.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "fs_msg.h"
#include "fs_txn.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- baseline: prepared messages ---- */

struct msg {
    char *key, *value;
    size_t klen, vlen;
};

struct prep {
    struct msg *m;
    size_t n, cap;
    char buf[FS_MSG_TRANSACTION_MAX];
};

static int prep_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    (void)row;
    struct prep *p = opaque;
    char id[37], key[2048];
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, id);
    int n = fs_msg_format_transaction(p->buf, sizeof p->buf, id, t);
    /* The customer key as the interface builds it; post_code is column 11 in test.csv order. */
    int k = snprintf(key, sizeof key, "%s|%s|%s|%s", t->name_1, t->name_2, t->street,
                     row->fields[10]);
    if (n < 0 || k < 0 || (size_t)k >= sizeof key)
        return -1;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 1024;
        struct msg *nm = realloc(p->m, cap * sizeof *nm);
        if (nm == NULL)
            return -1;
        p->m = nm;
        p->cap = cap;
    }
    struct msg *m = &p->m[p->n];
    m->value = strdup(p->buf);
    m->key = strdup(key);
    m->vlen = (size_t)n;
    m->klen = (size_t)k;
    if (m->value == NULL || m->key == NULL)
        return -1;
    p->n++;
    return 0;
}

static long delivered, delivery_failed;

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        delivery_failed++;
    else
        delivered++;
}

static double baseline(const char *bootstrap, const char *topic, struct prep *p)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The interface's producer defaults (src/interface/ui_main.c). */
    const char *props[][2] = {{"bootstrap.servers", bootstrap},
                              {"enable.idempotence", "true"},
                              {"linger.ms", "20"},
                              {"batch.num.messages", "10000"},
                              {"compression.type", "lz4"},
                              {"queue.buffering.max.messages", "500000"},
                              {"message.timeout.ms", "60000"}};
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "bench_upload: %s: %s\n", props[i][0], err);
            exit(1);
        }
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "bench_upload: producer: %s\n", err);
        exit(1);
    }
    delivered = delivery_failed = 0;
    double t0 = now_s();
    for (size_t i = 0; i < p->n; i++) {
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(p->m[i].key, p->m[i].klen),
                RD_KAFKA_V_VALUE(p->m[i].value, p->m[i].vlen), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "bench_upload: produce: %s\n", rd_kafka_err2str(e));
                exit(1);
            }
            rd_kafka_poll(rk, 10);
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    double dt = now_s() - t0;
    if (delivered != (long)p->n) {
        fprintf(stderr, "bench_upload: baseline: %ld of %zu delivered (%ld failed)\n", delivered,
                p->n, delivery_failed);
        exit(1);
    }
    rd_kafka_destroy(rk);
    return dt;
}

/* ---- interface: HTTP over a plain socket ---- */

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the whole response (Connection: close); returns the JSON body (new reference). */
static json_t *read_json_response(int fd, int *status)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    json_t *j = NULL;
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (len + 1 == cap) {
            if (cap >= (1u << 24))
                break;
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *status = len > 12 ? (int)strtol(buf + 9, NULL, 10) : -1;
    char *body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        j = json_loads(body + 4, 0, NULL);
    free(buf);
    return j;
}

static json_t *http_get(const char *host, const char *port, const char *path, int *status)
{
    char req[512];
    int fd = connect_to(host, port);
    if (fd < 0)
        return NULL;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    json_t *j = NULL;
    if (n > 0 && (size_t)n < sizeof req && send_all(fd, req, (size_t)n) == 0)
        j = read_json_response(fd, status);
    close(fd);
    return j;
}

static double interface_run(const char *host, const char *port, const char *csv, size_t rows)
{
    static const char boundary[] = "benchBoundary1f9a3";
    char pre[512], post[64], head[512];
    struct stat st;
    if (stat(csv, &st) != 0) {
        fprintf(stderr, "bench_upload: %s: %s\n", csv, strerror(errno));
        exit(1);
    }
    int pl = snprintf(pre, sizeof pre,
                      "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                      "filename=\"bench.csv\"\r\nContent-Type: text/csv\r\n\r\n",
                      boundary);
    int ql = snprintf(post, sizeof post, "\r\n--%s--\r\n", boundary);
    long long total = pl + (long long)st.st_size + ql;
    int hl = snprintf(head, sizeof head,
                      "POST /api/uploads HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                      "Content-Type: multipart/form-data; boundary=%s\r\n"
                      "Content-Length: %lld\r\n\r\n",
                      host, boundary, total);
    FILE *f = fopen(csv, "rb");
    int fd = connect_to(host, port);
    if (f == NULL || fd < 0) {
        fprintf(stderr, "bench_upload: cannot open %s or connect to %s:%s\n", csv, host, port);
        exit(1);
    }
    static char chunk[1 << 16];
    double t0 = now_s();
    if (send_all(fd, head, (size_t)hl) != 0 || send_all(fd, pre, (size_t)pl) != 0)
        exit(1);
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (send_all(fd, chunk, n) != 0) {
            fprintf(stderr, "bench_upload: upload connection closed early\n");
            exit(1);
        }
    if (send_all(fd, post, (size_t)ql) != 0)
        exit(1);
    int status = 0;
    json_t *j = read_json_response(fd, &status);
    double t_body = now_s() - t0;
    close(fd);
    fclose(f);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (status != 202 || id == NULL) {
        fprintf(stderr, "bench_upload: upload answered %d\n", status);
        exit(1);
    }
    char path[128];
    snprintf(path, sizeof path, "/api/uploads/%s", id);
    json_decref(j);
    for (;;) {
        json_t *u = http_get(host, port, path, &status);
        long long acked = json_integer_value(json_object_get(u, "acked"));
        long long failed = json_integer_value(json_object_get(u, "failed"));
        long long sent = json_integer_value(json_object_get(u, "sent"));
        const char *state = json_string_value(json_object_get(u, "state"));
        int done = state != NULL && strcmp(state, "done") == 0 && acked + failed >= sent;
        json_decref(u);
        if (done) {
            if (acked != (long long)rows) {
                fprintf(stderr, "bench_upload: interface acked %lld of %zu rows\n", acked, rows);
                exit(1);
            }
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    double dt = now_s() - t0;
    printf("interface: body sent and parsed in %.3f s, all acked after %.3f s\n", t_body, dt);
    return dt;
}

int main(int argc, char **argv)
{
    const char *csv = NULL, *bootstrap = "127.0.0.1:9092", *url = "http://127.0.0.1:8501",
               *topic = "transactions";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--csv") == 0)
            csv = argv[i + 1];
        else if (strcmp(argv[i], "--bootstrap") == 0)
            bootstrap = argv[i + 1];
        else if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--topic") == 0)
            topic = argv[i + 1];
    }
    if (csv == NULL || strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "usage: bench_upload --csv FILE [--bootstrap HOST:PORT] "
                        "[--url http://HOST:PORT] [--topic transactions]\n");
        return 2;
    }
    char host[256], port[16] = "80";
    const char *hp = url + 7, *colon = strchr(hp, ':');
    size_t hlen = colon ? (size_t)(colon - hp) : strcspn(hp, "/");
    if (hlen >= sizeof host)
        return 2;
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    if (colon)
        snprintf(port, sizeof port, "%.*s", (int)strcspn(colon + 1, "/"), colon + 1);

    struct prep p = {0};
    char err[512];
    double t0 = now_s();
    FILE *f = fopen(csv, "rb");
    if (f == NULL || fs_txn_read_stream(f, prep_row, &p, err, sizeof err) != 0) {
        fprintf(stderr, "bench_upload: %s: %s\n", csv, f ? err : strerror(errno));
        return 1;
    }
    fclose(f);
    double t_prep = now_s() - t0;
    printf("rows: %zu (parse + validate + format, not timed below: %.3f s, %.0f rows/s)\n", p.n,
           t_prep, (double)p.n / t_prep);

    double tb = baseline(bootstrap, topic, &p);
    double ti = interface_run(host, port, csv, p.n);
    printf("baseline  (plain librdkafka producer, prepared messages): %.3f s, %.0f rows/s\n", tb,
           (double)p.n / tb);
    printf("interface (HTTP upload -> all acknowledged):             %.3f s, %.0f rows/s\n", ti,
           (double)p.n / ti);
    printf("ratio interface/baseline: %.2f\n", tb / ti);
    for (size_t i = 0; i < p.n; i++) {
        free(p.m[i].key);
        free(p.m[i].value);
    }
    free(p.m);
    return 0;
}
