/*
 * fd_load: the load generator of the pipeline benchmark (bench/pipeline/run).
 *
 *   fd_load produce --bootstrap B --topic T --input CSV --count M --prefix P [--times FILE]
 *                   [--rate N]
 *       Formats M transactions messages (the CSV's rows, cycled; ids P0..P<M-1>) with the
 *       same codec the interface uses (fs_msg_format_transaction), all before the clock
 *       starts, then produces them as fast as the broker takes them (idempotent, acks=all).
 *       --times writes "index wall_clock_us" of each produce call, for latencies; --rate
 *       paces the calls at N messages per second.
 *   fd_load raw --bootstrap B --topic T --input CSV --count M --prefix P
 *       The ceiling: the same M messages produced to T (an otherwise unused topic) while a
 *       consumer in this process reads them back; reports messages/s from the first produce
 *       to the last message consumed.
 *   Both modes: -X name=value (repeatable) sets a librdkafka property of the producer after
 *   the defaults below, e.g. -X linger.ms=20 -X compression.type=lz4, so the ceiling and the
 *   end-to-end load always use the same producer settings; --upload-headers gives every
 *   message the two headers the interface sets (upload_id: one UUID for the run, upload_row:
 *   the message's 1-based place, decimal), built at produce time as the interface does.
 * Prints "ready" when everything is formatted (and, for raw, the consumer is in place), just
 * before the timed part starts, then one line "key=value ..." (first_us, last_us, seconds,
 * rate, cpu_us: this process's CPU time from the first produce to the end).
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "fs_features.h"
#include "fs_msg.h"
#include "fs_profile.h"

#define MSG_MAX 4096
#define XPROPS_MAX 32

/* -X name=value producer overrides, applied after the defaults. */
static const char *xprops[XPROPS_MAX];
static int nxprops;

typedef struct msgs {
    char **payload;
    int *len;
    char **key;
    long n, cap; /* n formatted so far, cap = the count wanted */
    long rows;   /* rows read from the CSV (kept for cycling) */
    fs_txn **txns; /* one allocation each: a record's strings point into itself */
    long ntxns, txncap;
    const char *prefix;
} msgs;

/* CPU time of the whole process (every thread), microseconds. */
static int64_t cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static int keep_row(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    msgs *m = opaque;
    (void)row;
    if (m->ntxns == m->txncap) {
        long cap = m->txncap ? m->txncap * 2 : 1024;
        fs_txn **p = realloc(m->txns, (size_t)cap * sizeof *p);
        if (p == NULL)
            return 1;
        m->txns = p;
        m->txncap = cap;
    }
    fs_txn *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return 1;
    fs_txn_copy(copy, t);
    m->txns[m->ntxns++] = copy;
    return m->ntxns >= m->cap; /* no need to read more rows than messages */
}

static int format_all(msgs *m, const char *csv, char *err, size_t errsz)
{
    FILE *in = fopen(csv, "rb");
    if (in == NULL) {
        snprintf(err, errsz, "%s: cannot open", csv);
        return -1;
    }
    int r = fs_txn_read_file(in, csv, keep_row, NULL, m, err, errsz);
    fclose(in);
    if (r < 0)
        return -1;
    if (m->ntxns == 0) {
        snprintf(err, errsz, "%s: no rows", csv);
        return -1;
    }
    m->payload = calloc((size_t)m->cap, sizeof *m->payload);
    m->key = calloc((size_t)m->cap, sizeof *m->key);
    m->len = calloc((size_t)m->cap, sizeof *m->len);
    if (m->payload == NULL || m->key == NULL || m->len == NULL)
        goto oom;
    char buf[MSG_MAX];
    char id[FS_TXN_ID_MAX + 1];
    for (m->n = 0; m->n < m->cap; m->n++) {
        snprintf(id, sizeof id, "%s%ld", m->prefix, m->n);
        int n = fs_msg_format_transaction(buf, sizeof buf, id, m->txns[m->n % m->ntxns]);
        if (n < 0) {
            snprintf(err, errsz, "message %ld: cannot format", m->n);
            return -1;
        }
        /* Keyed by customer, as the interface does: the detector keeps each customer's
         * state on the partition this key maps to (any other key is re-routed). */
        char key[FS_PROFILE_KEY_MAX];
        if (fs_profile_key(m->txns[m->n % m->ntxns], key, sizeof key) < 0) {
            snprintf(err, errsz, "message %ld: customer key too long", m->n);
            return -1;
        }
        m->payload[m->n] = malloc((size_t)n);
        m->key[m->n] = strdup(key);
        if (m->payload[m->n] == NULL || m->key[m->n] == NULL)
            goto oom;
        memcpy(m->payload[m->n], buf, (size_t)n);
        m->len[m->n] = n;
    }
    return 0;
oom:
    snprintf(err, errsz, "out of memory");
    return -1;
}

static rd_kafka_t *make_client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *producer_props[][2] = {
        {"bootstrap.servers", bootstrap}, {"enable.idempotence", "true"}, {"acks", "all"},
        {"linger.ms", "5"}, {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "2000000"}, {"queue.buffering.max.kbytes", "2097152"},
    };
    const char *consumer_props[][2] = {
        {"bootstrap.servers", bootstrap}, {"group.id", group},
        {"enable.auto.commit", "false"}, {"auto.offset.reset", "earliest"},
        {"fetch.wait.max.ms", "50"}, {"queued.min.messages", "20000"},
    };
    const char *(*props)[2] = type == RD_KAFKA_PRODUCER ? producer_props : consumer_props;
    size_t n = type == RD_KAFKA_PRODUCER ? sizeof producer_props / sizeof producer_props[0]
                                         : sizeof consumer_props / sizeof consumer_props[0];
    for (size_t i = 0; i < n; i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "fd_load: %s=%s: %s\n", props[i][0], props[i][1], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    for (int i = 0; type == RD_KAFKA_PRODUCER && i < nxprops; i++) {
        char name[256];
        const char *eq = strchr(xprops[i], '=');
        size_t len = eq != NULL ? (size_t)(eq - xprops[i]) : 0;
        if (len == 0 || len >= sizeof name) {
            fprintf(stderr, "fd_load: -X %s: expected name=value\n", xprops[i]);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
        memcpy(name, xprops[i], len);
        name[len] = '\0';
        if (rd_kafka_conf_set(conf, name, eq + 1, err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "fd_load: -X %s: %s\n", xprops[i], err);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "fd_load: rd_kafka_new: %s\n", err);
        return NULL;
    }
    return rk;
}

/* Messages per second for produce (0: as fast as the broker takes them). */
static double pace_rate;
/* --upload-headers: the interface's upload_id / upload_row headers on every message. */
static int upload_headers;
static const char upload_id[] = "0190f1e2-7a3c-7234-bf01-23456789abcd";

/* Produces every message; fills times (may be NULL) with the wall clock of each call. */
static int produce_all(rd_kafka_t *p, const char *topic, const msgs *m, int64_t *times)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, topic, NULL);
    int64_t start = bench_epoch_us();
    for (long i = 0; i < m->n; i++) {
        if (pace_rate > 0 && i % 50 == 0) {
            int64_t due = start + (int64_t)((double)i / pace_rate * 1e6);
            int64_t now = bench_epoch_us();
            if (due > now) {
                struct timespec ts = {(time_t)((due - now) / 1000000),
                                      (long)((due - now) % 1000000) * 1000};
                nanosleep(&ts, NULL);
            }
        }
        for (;;) {
            if (times != NULL)
                times[i] = bench_epoch_us();
            rd_kafka_resp_err_t err;
            if (upload_headers) {
                char row[24];
                int rl = snprintf(row, sizeof row, "%ld", i + 1);
                rd_kafka_headers_t *h = rd_kafka_headers_new(2);
                rd_kafka_header_add(h, "upload_id", -1, upload_id, sizeof upload_id - 1);
                rd_kafka_header_add(h, "upload_row", -1, row, rl);
                err = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_VALUE(m->payload[i], (size_t)m->len[i]),
                    RD_KAFKA_V_KEY(m->key[i], strlen(m->key[i])), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                    rd_kafka_headers_destroy(h); /* on success the message owns them */
            } else
                err = rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                                       m->payload[i], (size_t)m->len[i], m->key[i],
                                       strlen(m->key[i]), NULL) == 0
                          ? RD_KAFKA_RESP_ERR_NO_ERROR
                          : rd_kafka_last_error();
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "fd_load: produce: %s\n", rd_kafka_err2str(err));
                rd_kafka_topic_destroy(rkt);
                return -1;
            }
            rd_kafka_poll(p, 5);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(p, 0);
    }
    rd_kafka_topic_destroy(rkt);
    if (rd_kafka_flush(p, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "fd_load: flush timed out\n");
        return -1;
    }
    return 0;
}

typedef struct raw_ctx {
    rd_kafka_t *producer;
    const char *topic;
    const msgs *m;
    int64_t first_us;
    int rc;
} raw_ctx;

static void *raw_producer(void *arg)
{
    raw_ctx *c = arg;
    c->first_us = bench_epoch_us();
    c->rc = produce_all(c->producer, c->topic, c->m, NULL);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: fd_load produce|raw --bootstrap B --topic T --input CSV --count M "
                    "--prefix P [--times FILE] [--rate N] [--upload-headers] [-X name=value ...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *bootstrap = "127.0.0.1:9092", *topic = NULL, *input = NULL, *prefix = "b-",
               *times_path = NULL;
    long count = 0;
    char err[512];
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--upload-headers") == 0) {
            upload_headers = 1;
            continue;
        }
        if (i + 1 == argc)
            return usage(); /* every other option takes a value */
        const char *opt = argv[i], *v = argv[++i];
        if (strcmp(opt, "--bootstrap") == 0)
            bootstrap = v;
        else if (strcmp(opt, "--topic") == 0)
            topic = v;
        else if (strcmp(opt, "--input") == 0)
            input = v;
        else if (strcmp(opt, "--prefix") == 0)
            prefix = v;
        else if (strcmp(opt, "--times") == 0)
            times_path = v;
        else if (strcmp(opt, "-X") == 0) {
            if (nxprops == XPROPS_MAX)
                return usage();
            xprops[nxprops++] = v;
        } else if (strcmp(opt, "--rate") == 0) {
            char *end;
            pace_rate = strtod(v, &end);
            if (*end != '\0' || pace_rate < 0)
                return usage();
        } else if (strcmp(opt, "--count") == 0) {
            char *end;
            count = strtol(v, &end, 10);
            if (*end != '\0' || count <= 0)
                return usage();
        } else
            return usage();
    }
    if (topic == NULL || input == NULL || count <= 0)
        return usage();

    msgs m = {.cap = count, .prefix = prefix};
    if (format_all(&m, input, err, sizeof err) != 0) {
        fprintf(stderr, "fd_load: %s\n", err);
        return 1;
    }
    rd_kafka_t *p = make_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
    if (p == NULL)
        return 1;

    if (strcmp(mode, "produce") == 0) {
        int64_t *times = calloc((size_t)m.n, sizeof *times);
        if (times == NULL)
            return 1;
        printf("ready\n");
        fflush(stdout);
        int64_t cpu0 = cpu_us();
        if (produce_all(p, topic, &m, times) != 0)
            return 1;
        int64_t done = bench_epoch_us();
        int64_t cpu = cpu_us() - cpu0;
        if (times_path != NULL) {
            FILE *f = fopen(times_path, "w");
            if (f == NULL) {
                fprintf(stderr, "fd_load: %s: cannot create\n", times_path);
                return 1;
            }
            for (long i = 0; i < m.n; i++)
                fprintf(f, "%ld %" PRId64 "\n", i, times[i]);
            if (fclose(f) != 0)
                return 1;
        }
        double secs = (double)(done - times[0]) / 1e6;
        printf("mode=produce messages=%ld first_us=%" PRId64 " last_us=%" PRId64
               " seconds=%.3f rate=%.0f cpu_us=%" PRId64 "\n",
               m.n, times[0], done, secs, (double)m.n / secs, cpu);
        rd_kafka_destroy(p);
        return 0;
    }
    if (strcmp(mode, "raw") != 0)
        return usage();

    /* Consumer first, assigned to every partition from the beginning of the (fresh) topic. */
    rd_kafka_t *c = make_client(RD_KAFKA_CONSUMER, bootstrap, "fd_load_raw");
    if (c == NULL)
        return 1;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    if (rd_kafka_metadata(c, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "fd_load: no metadata for %s\n", topic);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_poll_set_consumer(c);
    /* Let the consumer resolve its END offsets before anything is produced. */
    for (int i = 0; i < 20; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 100);
        if (msg != NULL)
            rd_kafka_message_destroy(msg);
    }

    printf("ready\n");
    fflush(stdout);
    int64_t cpu0 = cpu_us();
    raw_ctx ctx = {p, topic, &m, 0, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, raw_producer, &ctx) != 0)
        return 1;
    long got = 0;
    int64_t last = 0;
    int64_t give_up = bench_epoch_us() + 300 * 1000000LL;
    while (got < m.n && bench_epoch_us() < give_up) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 100);
        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            got++;
            last = bench_epoch_us();
        }
        rd_kafka_message_destroy(msg);
    }
    pthread_join(th, NULL);
    int64_t cpu = cpu_us() - cpu0;
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    if (ctx.rc != 0 || got < m.n) {
        fprintf(stderr, "fd_load: raw: consumed %ld of %ld\n", got, m.n);
        return 1;
    }
    double secs = (double)(last - ctx.first_us) / 1e6;
    printf("mode=raw messages=%ld first_us=%" PRId64 " last_us=%" PRId64
           " seconds=%.3f rate=%.0f cpu_us=%" PRId64 "\n",
           m.n, ctx.first_us, last, secs, (double)m.n / secs, cpu);
    return 0;
}
