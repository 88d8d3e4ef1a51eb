/*
 * bench_restore: how fast fraud_detector rebuilds its customer state from the changelog.
 *
 * Fills TOPIC (compacted, P partitions, created by bench/restore/run) with one record per
 * customer (N customers, ~45-byte keys, each record the state after a few transactions),
 * then in the same run:
 *   baseline  a read_committed consumer reads every record to the end and does nothing
 *             with it (the least a restore must pay: the broker and librdkafka)
 *   restore   fd_state_restore, the detector's own path (decode + store insert)
 * and prints customers/s of each, the ratio, the restore's CPU time and the memory the
 * restored state takes (fs_profile_store_bytes and the process's RSS growth), and the CPU
 * it ran on.
 *
 *   bench_restore --bootstrap HOST:PORT --topic T [--customers N] [--partitions P]
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "fd_state.h"
#include "fs_profile.h"
#include "svc_log.h"

static rd_kafka_conf_t *base_conf(const char *bootstrap)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof err) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bench_restore: %s\n", err);
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

static int fill(const char *bootstrap, const char *topic, long n, int parts)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf(bootstrap);
    if (c == NULL)
        return -1;
    rd_kafka_conf_set(c, "linger.ms", "20", err, sizeof err);
    rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", err, sizeof err);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "bench_restore: producer: %s\n", err);
        return -1;
    }
    char key[64];
    unsigned char wire[FS_PROFILE_WIRE_BYTES];
    for (long i = 0; i < n; i++) {
        fs_profile rec;
        fs_profile_init(&rec);
        for (int k = 0; k < 4; k++) {
            fs_profile_event e = {.time = 1577836800 + i + k * 3600,
                                  .amount = 10.0 + (double)((i * 7 + k) % 200),
                                  .cat = (int)((i + k) % 14)};
            fs_profile_update(&rec, &e);
        }
        fs_profile_encode(&rec, wire);
        int klen = snprintf(key, sizeof key, "Customer%07ld|Surname%ld|%ld Main Street|%05ld", i,
                            i % 977, i % 9999, 10000 + i % 89999);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(i % parts)),
                RD_KAFKA_V_KEY(key, (size_t)klen), RD_KAFKA_V_VALUE(wire, sizeof wire),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "bench_restore: produce: %s\n", rd_kafka_err2str(e));
                rd_kafka_destroy(p);
                return -1;
            }
            rd_kafka_poll(p, 10);
        }
    }
    int rc = rd_kafka_flush(p, 120000) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
    rd_kafka_destroy(p);
    return rc;
}

/* Reads every partition to its end; returns records read, or -1. */
static long plain_read(const char *bootstrap, const char *topic, int parts)
{
    char err[256];
    rd_kafka_conf_t *c = base_conf(bootstrap);
    if (c == NULL)
        return -1;
    rd_kafka_conf_set(c, "group.id", "bench-restore-baseline", err, sizeof err);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (rk == NULL)
        return -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0;
    int eof = 0;
    size_t sink = 0;
    double stalled = 0.0; /* since when polls bring neither records nor ends, 0 if they do */
    while (eof < parts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        int moved = m != NULL && (m->err == RD_KAFKA_RESP_ERR_NO_ERROR ||
                                  m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eof++;
        else if (moved) {
            n++;
            sink += m->len;
        }
        if (m != NULL)
            rd_kafka_message_destroy(m);
        if (moved) {
            stalled = 0.0;
        } else if (stalled == 0.0) {
            stalled = bench_wall_seconds();
        } else if (bench_wall_seconds() - stalled > 60.0) {
            /* A topic that cannot be read (only errors, no end) would loop for ever. */
            fprintf(stderr, "bench_restore: baseline read stalled for 60 s at %ld records\n", n);
            sink = 0;
            break;
        }
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return sink > 0 ? n : -1;
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL;
    long n = 1000000;
    int parts = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--bootstrap") == 0)
            bootstrap = argv[i + 1];
        else if (strcmp(argv[i], "--topic") == 0)
            topic = argv[i + 1];
        else if (strcmp(argv[i], "--customers") == 0)
            n = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--partitions") == 0)
            parts = (int)strtol(argv[i + 1], NULL, 10);
    }
    if (bootstrap == NULL || topic == NULL || n < 1 || parts < 1) {
        fprintf(stderr, "usage: bench_restore --bootstrap HOST:PORT --topic T [--customers N] "
                        "[--partitions P]\n");
        return 2;
    }
    svc_log_init("bench_restore", SVC_LOG_WARN);
    char model[256];
    int avx512;
    bench_cpu_info(model, sizeof model, &avx512);
    printf("bench_restore: %ld customers over %d partitions of %s, %s, %s\n", n, parts, topic,
           model, avx512 ? "AVX-512" : "no AVX-512");
    double t0 = bench_wall_seconds();
    if (fill(bootstrap, topic, n, parts) != 0)
        return 1;
    printf("fill      %8.2f s (%ld records of %d bytes)\n", bench_wall_seconds() - t0, n,
           FS_PROFILE_WIRE_BYTES);

    t0 = bench_wall_seconds();
    double c0 = bench_cpu_seconds();
    long read = plain_read(bootstrap, topic, parts);
    double base_s = bench_wall_seconds() - t0, base_cpu = bench_cpu_seconds() - c0;
    if (read != n) {
        fprintf(stderr, "bench_restore: baseline read %ld records, expected %ld\n", read, n);
        return 1;
    }

    fd_state *s = fd_state_new(FS_PROFILE_EXPIRY_DEFAULT, 0);
    rd_kafka_conf_t *c = base_conf(bootstrap);
    char err[512];
    if (s == NULL || c == NULL ||
        rd_kafka_conf_set(c, "group.id", "bench-restore", err, sizeof err) != RD_KAFKA_CONF_OK)
        return 1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, "transactions", p);
    size_t rss0 = bench_rss_bytes();
    t0 = bench_wall_seconds();
    c0 = bench_cpu_seconds();
    int rc = fd_state_restore(s, c, topic, l, NULL, NULL, err, sizeof err);
    double rest_s = bench_wall_seconds() - t0, rest_cpu = bench_cpu_seconds() - c0;
    size_t rss1 = bench_rss_bytes();
    rd_kafka_topic_partition_list_destroy(l);
    if (rc != 0) {
        fprintf(stderr, "bench_restore: %s\n", err);
        return 1;
    }
    size_t held = fd_state_customers(s);
    printf("baseline  %8.2f s wall, %6.2f s CPU, %9.0f records/s (plain read to the end)\n",
           base_s, base_cpu, (double)n / base_s);
    printf("restore   %8.2f s wall, %6.2f s CPU, %9.0f customers/s (fd_state_restore)\n",
           rest_s, rest_cpu, (double)held / rest_s);
    printf("ratio     restore rate / plain read rate: %.2f\n",
           ((double)held / rest_s) / ((double)n / base_s));
    printf("memory    %zu customers, %.1f bytes per customer (store), %.1f (RSS growth)\n", held,
           (double)fd_state_bytes(s) / (double)held, ((double)rss1 - (double)rss0) / (double)held);
    int ok = held == (size_t)n;
    if (!ok)
        fprintf(stderr, "bench_restore: restored %zu customers, expected %ld\n", held, n);
    fd_state_free(s);
    return ok ? 0 : 1;
}
