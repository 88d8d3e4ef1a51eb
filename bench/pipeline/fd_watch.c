/*
 * fd_watch: the latency probe of the pipeline benchmark (bench/pipeline/run).
 *
 *   fd_watch --bootstrap B --prefix P --count M --out FILE [--timeout S]
 *            [--transactions T] [--scoring T]
 *
 * One read_committed consumer, assigned every partition of the transactions topic (default
 * `transactions`) and of the scoring topic (default `scoring`) at their ends, records the
 * wall clock at which each message of the ids P0..P<M-1> is received: a transactions
 * message when the broker has it readable (the load generator's and the broker's part), a
 * scoring message when the detector's transaction holding it has committed. Prints "ready"
 * once the end offsets are resolved, then runs until both topics have given all M ids, or
 * S seconds (default 300) have passed, or SIGTERM/SIGINT; then writes one line per received
 * message, "t|s index wall_clock_us", to FILE and prints "received=<t> <s>".
 *
 * In C and a process of its own because the probe must not be the bottleneck it measures:
 * two Python consumers with a 5 ms fetch wait in the benchmark's own process took a
 * noticeable part of the two cores at 10k tx/s and their GIL delayed the receipt times.
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: fd_watch --bootstrap B --prefix P --count M --out FILE "
                    "[--timeout S] [--transactions T] [--scoring T]\n");
    return 2;
}

/* Index of the id at p (len bytes) if it is prefix followed by a decimal below count,
 * else -1. */
static long id_index(const char *p, size_t len, const char *prefix, size_t plen, long count)
{
    if (len <= plen || memcmp(p, prefix, plen) != 0)
        return -1;
    long v = 0;
    for (size_t i = plen; i < len; i++) {
        if (p[i] < '0' || p[i] > '9' || v > count)
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v < count ? v : -1;
}

/* The transaction_id of a transactions message (its key is the customer). */
static long value_index(const rd_kafka_message_t *m, const char *prefix, size_t plen,
                        long count)
{
    static const char tag[] = "\"transaction_id\":\"";
    const char *v = m->payload;
    if (v == NULL || m->len < sizeof tag)
        return -1;
    const char *end = v + m->len;
    const char *s = memmem(v, m->len, tag, sizeof tag - 1);
    if (s == NULL)
        return -1;
    s += sizeof tag - 1;
    const char *q = memchr(s, '"', (size_t)(end - s));
    return q == NULL ? -1 : id_index(s, (size_t)(q - s), prefix, plen, count);
}

static int add_topic(rd_kafka_t *c, rd_kafka_topic_partition_list_t *parts, const char *topic)
{
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    rd_kafka_resp_err_t err = rd_kafka_metadata(c, 0, rkt, &md, 10000);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "fd_watch: no metadata for %s: %s\n", topic,
                err ? rd_kafka_err2str(err) : "no partitions");
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_metadata_destroy(md);
    return 0;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *prefix = NULL, *out = NULL, *in_topic = "transactions",
               *score_topic = "scoring";
    long count = 0, timeout_s = 300;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        if (strcmp(argv[i], "--bootstrap") == 0)
            bootstrap = argv[i + 1];
        else if (strcmp(argv[i], "--prefix") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--out") == 0)
            out = argv[i + 1];
        else if (strcmp(argv[i], "--transactions") == 0)
            in_topic = argv[i + 1];
        else if (strcmp(argv[i], "--scoring") == 0)
            score_topic = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) {
            count = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || count <= 0)
                return usage();
        } else if (strcmp(argv[i], "--timeout") == 0) {
            timeout_s = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || timeout_s <= 0)
                return usage();
        } else
            return usage();
    }
    if (argc % 2 == 0 || bootstrap == NULL || prefix == NULL || out == NULL || count <= 0)
        return usage();
    size_t plen = strlen(prefix);

    int64_t *seen[2] = {calloc((size_t)count, sizeof(int64_t)),
                        calloc((size_t)count, sizeof(int64_t))};
    if (seen[0] == NULL || seen[1] == NULL) {
        fprintf(stderr, "fd_watch: out of memory\n");
        return 1;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *props[][2] = {
        {"bootstrap.servers", bootstrap}, {"group.id", "fd_watch"},
        {"enable.auto.commit", "false"}, {"isolation.level", "read_committed"},
        /* A fetch is answered as soon as data is readable; this only bounds an idle wait. */
        {"fetch.wait.max.ms", "10"}, {"log_level", "4"},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof err) !=
            RD_KAFKA_CONF_OK) {
            fprintf(stderr, "fd_watch: %s=%s: %s\n", props[i][0], props[i][1], err);
            return 1;
        }
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "fd_watch: rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    if (add_topic(c, parts, in_topic) != 0 || add_topic(c, parts, score_topic) != 0)
        return 1;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    /* Let the consumer resolve its END offsets before anything is produced. */
    for (int i = 0; i < 20; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 50);
        if (m != NULL)
            rd_kafka_message_destroy(m);
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("ready\n");
    fflush(stdout);

    long got[2] = {0, 0};
    int64_t give_up = bench_epoch_us() + (int64_t)timeout_s * 1000000;
    while (!stop && (got[0] < count || got[1] < count) && bench_epoch_us() < give_up) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        int64_t t = bench_epoch_us();
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            fprintf(stderr, "fd_watch: consume: %s\n", rd_kafka_message_errstr(m));
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            int which = strcmp(rd_kafka_topic_name(m->rkt), score_topic) == 0;
            long k = which ? id_index(m->key, m->key_len, prefix, plen, count)
                           : value_index(m, prefix, plen, count);
            if (k >= 0 && seen[which][k] == 0) {
                seen[which][k] = t;
                got[which]++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);

    FILE *f = fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "fd_watch: %s: cannot create\n", out);
        return 1;
    }
    for (int which = 0; which < 2; which++)
        for (long k = 0; k < count; k++)
            if (seen[which][k] != 0)
                fprintf(f, "%c %ld %" PRId64 "\n", which ? 's' : 't', k, seen[which][k]);
    if (fclose(f) != 0) {
        fprintf(stderr, "fd_watch: %s: write failed\n", out);
        return 1;
    }
    printf("received=%ld %ld\n", got[0], got[1]);
    return 0;
}
