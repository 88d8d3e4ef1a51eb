/* Unit tests of libfssvc: config table precedence and bounds, secret files, metrics rendering,
 * log level parsing, Kafka env pass-through. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "svc_config.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_signal.h"

static const char *s_broker;
static long s_batch;
static double s_thr;
static int s_flag;

static const svc_option opts[] = {
    {"T_BOOTSTRAP", "--bootstrap", SVC_OPT_STRING, "localhost:9092", 0, -1, "brokers", &s_broker},
    {"T_BATCH", "--batch", SVC_OPT_INT, "500", 1, 100000, "batch size", &s_batch},
    {"T_THRESHOLD", "--threshold", SVC_OPT_DOUBLE, NULL, 0, 1, "threshold", &s_thr},
    {"T_FLAG", "--flag", SVC_OPT_BOOL, "false", 0, -1, "a flag", &s_flag},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static void test_config(void)
{
    char err[256];
    char *argv0[] = {"t", NULL};
    unsetenv("T_BOOTSTRAP");
    unsetenv("T_BATCH");
    unsetenv("T_THRESHOLD");
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 1, argv0, err, sizeof err), 0);
    CHECK_EQ_STR(s_broker, "localhost:9092");
    CHECK_EQ_INT(s_batch, 500);
    CHECK(isnan(s_thr));
    CHECK_EQ_INT(s_flag, 0);

    setenv("T_BATCH", "7", 1);
    setenv("T_BOOTSTRAP", "h:1", 1);
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 1, argv0, err, sizeof err), 0);
    CHECK_EQ_INT(s_batch, 7);
    CHECK_EQ_STR(s_broker, "h:1");

    char *argv1[] = {"t", "--batch", "9", "--threshold=0.5", "--flag", NULL};
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 5, argv1, err, sizeof err), 0);
    CHECK_EQ_INT(s_batch, 9);
    CHECK(s_thr == 0.5);
    CHECK_EQ_INT(s_flag, 1);

    setenv("T_BATCH", "0", 1);
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 1, argv0, err, sizeof err), -1);
    CHECK(strstr(err, "T_BATCH") != NULL);
    setenv("T_BATCH", "12x", 1);
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 1, argv0, err, sizeof err), -1);
    CHECK(strstr(err, "12x") != NULL);
    unsetenv("T_BATCH");

    char *argv2[] = {"t", "--nope", NULL};
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 2, argv2, err, sizeof err), -1);
    CHECK(strstr(err, "--nope") != NULL);
    char *argv3[] = {"t", "--batch", NULL};
    CHECK_EQ_INT(svc_config_parse("t", NULL, opts, N_OPTS, 2, argv3, err, sizeof err), -1);
}

static void test_metrics(void)
{
    svc_metrics *m = svc_metrics_new();
    CHECK(m != NULL);
    svc_counter *c1 = svc_metrics_counter(m, "x_total", "xs", "topic=\"a\"");
    svc_counter *c2 = svc_metrics_counter(m, "x_total", "xs", "topic=\"b\"");
    svc_gauge *g = svc_metrics_gauge(m, "lag", "lag", NULL);
    double b[] = {1, 10};
    svc_histogram *h = svc_metrics_histogram(m, "size", "sizes", NULL, b, 2);
    CHECK(svc_metrics_counter(m, "x_total", "xs", "topic=\"a\"") == c1);
    CHECK(svc_metrics_gauge(m, "x_total", "xs", NULL) == NULL); /* type clash */
    double bad[] = {2, 1};
    CHECK(svc_metrics_histogram(m, "bad", "", NULL, bad, 2) == NULL);
    svc_counter_add(c1, 3);
    svc_counter_add(c2, 1);
    svc_counter_add(NULL, 1);
    svc_gauge_set(g, 42);
    svc_histogram_observe(h, 0.5);
    svc_histogram_observe(h, 5);
    svc_histogram_observe(h, 50);
    CHECK_EQ_INT(svc_counter_value(c1), 3);
    CHECK_EQ_INT(svc_histogram_count(h), 3);
    size_t len = 0;
    char *text = svc_metrics_render(m, &len);
    CHECK(text != NULL);
    if (text != NULL) {
        CHECK_EQ_INT(strlen(text), len);
        CHECK(strstr(text, "# TYPE x_total counter\nx_total{topic=\"a\"} 3\n"
                           "x_total{topic=\"b\"} 1\n") != NULL);
        CHECK(strstr(text, "lag 42\n") != NULL);
        CHECK(strstr(text, "size_bucket{le=\"1\"} 1\nsize_bucket{le=\"10\"} 2\n"
                           "size_bucket{le=\"+Inf\"} 3\nsize_sum 55.5\nsize_count 3\n") != NULL);
        /* HELP/TYPE once per name. */
        CHECK(strstr(strstr(text, "# HELP x_total") + 1, "# HELP x_total") == NULL);
    }
    free(text);
    svc_metrics_free(m);
}

static void test_log_level(void)
{
    svc_log_level l = SVC_LOG_INFO;
    CHECK_EQ_INT(svc_log_level_parse("debug", &l), 0);
    CHECK_EQ_INT(l, SVC_LOG_DEBUG);
    CHECK_EQ_INT(svc_log_level_parse("warning", &l), 0);
    CHECK_EQ_INT(l, SVC_LOG_WARN);
    CHECK_EQ_INT(svc_log_level_parse("loud", &l), -1);
}

static void test_kafka_conf(void)
{
    char err[512];
    char val[64];
    size_t vlen = sizeof val;
    setenv("KAFKA_LINGER_MS", "7", 1);
    setenv("KAFKA_PORT", "19092", 1); /* skipped: stack variables */
    setenv("KAFKA_GC_OPTS", "-XX:+UseSerialGC", 1);
    setenv("KAFKA_CLUSTER_ID", "-7Qm2x9vTQhGkR0sYbW3ZgA", 1);
    rd_kafka_conf_t *conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(rd_kafka_conf_get(conf, "linger.ms", val, &vlen) == RD_KAFKA_CONF_OK);
        CHECK_EQ_STR(val, "7");
        vlen = sizeof val;
        CHECK(rd_kafka_conf_get(conf, "bootstrap.servers", val, &vlen) == RD_KAFKA_CONF_OK);
        CHECK_EQ_STR(val, "h:9");
        rd_kafka_conf_destroy(conf);
    }
    setenv("KAFKA_NO_SUCH_THING", "1", 1);
    conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf == NULL);
    CHECK(strstr(err, "KAFKA_NO_SUCH_THING") != NULL);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    unsetenv("KAFKA_NO_SUCH_THING");
    unsetenv("KAFKA_LINGER_MS");
    unsetenv("KAFKA_PORT");
    unsetenv("KAFKA_GC_OPTS");
    unsetenv("KAFKA_CLUSTER_ID");
}

static void test_kafka_settings(void)
{
    char err[512], val[64], env[64];
    size_t vlen;
    CHECK(svc_kafka_env_name("linger.ms", env, sizeof env) == 0);
    CHECK_EQ_STR(env, "KAFKA_LINGER_MS");
    CHECK(svc_kafka_env_name("linger.ms", env, 15) == -1); /* 15 bytes cannot hold 16 */
    CHECK(svc_kafka_env_name("linger.ms", env, 16) == 0);

    static const svc_kafka_setting defaults[] = {{"linger.ms", "5"}, {"batch.num.messages", "77"}};
    setenv("KAFKA_LINGER_MS", "9", 1);
    rd_kafka_conf_t *conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(svc_kafka_conf_defaults(conf, defaults, 2, err, sizeof err) == 0);
        vlen = sizeof val;
        CHECK(rd_kafka_conf_get(conf, "linger.ms", val, &vlen) == RD_KAFKA_CONF_OK);
        CHECK_EQ_STR(val, "9"); /* the operator's value wins over the default */
        vlen = sizeof val;
        CHECK(rd_kafka_conf_get(conf, "batch.num.messages", val, &vlen) == RD_KAFKA_CONF_OK);
        CHECK_EQ_STR(val, "77");
        static const svc_kafka_setting bad[] = {{"linger.mss", "5"}};
        CHECK(svc_kafka_conf_defaults(conf, bad, 1, err, sizeof err) == -1);
        CHECK(strstr(err, "linger.mss") != NULL);
        rd_kafka_conf_destroy(conf);
    }
    unsetenv("KAFKA_LINGER_MS");

    static const svc_kafka_setting forced[] = {{"enable.auto.commit", "false"}};
    setenv("KAFKA_ENABLE_AUTO_COMMIT", "true", 1);
    conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(svc_kafka_conf_force(conf, forced, 1, err, sizeof err) == -1);
        CHECK(strstr(err, "KAFKA_ENABLE_AUTO_COMMIT=true") != NULL);
        CHECK(strstr(err, "enable.auto.commit=false") != NULL);
        rd_kafka_conf_destroy(conf);
    }
    setenv("KAFKA_ENABLE_AUTO_COMMIT", "false", 1); /* agreeing is fine */
    conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(svc_kafka_conf_force(conf, forced, 1, err, sizeof err) == 0);
        rd_kafka_conf_destroy(conf);
    }
    unsetenv("KAFKA_ENABLE_AUTO_COMMIT");
    conf = svc_kafka_conf_new("t", "h:9", err, sizeof err);
    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(svc_kafka_conf_force(conf, forced, 1, err, sizeof err) == 0);
        vlen = sizeof val;
        CHECK(rd_kafka_conf_get(conf, "enable.auto.commit", val, &vlen) == RD_KAFKA_CONF_OK);
        CHECK_EQ_STR(val, "false");
        rd_kafka_conf_destroy(conf);
    }
}

/* The dead letter of a real librdkafka message: a message with headers is produced to a
 * broker that does not exist, times out, and its delivery report (a real
 * rd_kafka_message_t with its headers) is dead-lettered; the dead letter's own report
 * shows what it carried. */
static struct {
    int dead_reports;
    char reason[128], source_topic[64], trace[64], key[16], payload[16];
} s_dlq;

static void header_text(rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    const void *v = NULL;
    size_t n = 0;
    out[0] = '\0';
    if (h != NULL && rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(out, size, "%.*s", (int)n, (const char *)v);
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)opaque;
    char err[256];
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (strcmp(topic, "src") == 0) {
        CHECK(svc_kafka_dlq_produce(rk, "dlq", msg, "data.amount: expected a number", NULL,
                                    err, sizeof err) == 0);
        return;
    }
    rd_kafka_headers_t *h = NULL;
    CHECK(rd_kafka_message_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR);
    header_text(h, "x-error-reason", s_dlq.reason, sizeof s_dlq.reason);
    header_text(h, "x-source-topic", s_dlq.source_topic, sizeof s_dlq.source_topic);
    header_text(h, "trace", s_dlq.trace, sizeof s_dlq.trace);
    snprintf(s_dlq.key, sizeof s_dlq.key, "%.*s", (int)msg->key_len, (const char *)msg->key);
    snprintf(s_dlq.payload, sizeof s_dlq.payload, "%.*s", (int)msg->len,
             (const char *)msg->payload);
    s_dlq.dead_reports++;
}

/* A producer for 127.0.0.1:1, where nothing listens (nothing is ever delivered), with
 * librdkafka's logging off, the given property and delivery callback (NULL: none). */
static rd_kafka_t *unreachable_producer(const char *name, const char *value,
                                        void (*dr)(rd_kafka_t *, const rd_kafka_message_t *,
                                                   void *))
{
    char err[512];
    rd_kafka_conf_t *conf = svc_kafka_conf_new("t", "127.0.0.1:1", err, sizeof err);
    CHECK(conf != NULL);
    if (conf == NULL)
        return NULL;
    const svc_kafka_setting settings[] = {{name, value}, {"log_level", "0"}};
    CHECK(svc_kafka_conf_defaults(conf, settings, 2, err, sizeof err) == 0);
    if (dr != NULL)
        rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECK(rk != NULL);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

static void test_dead_letter(void)
{
    /* Every message times out after 50 ms (seen at librdkafka's next timeout scan). */
    rd_kafka_t *rk = unreachable_producer("message.timeout.ms", "50", dlq_dr_cb);
    if (rk == NULL)
        return;
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "trace", -1, "abc-123", -1);
    CHECK(svc_kafka_produce_wait(rk, "src", RD_KAFKA_PARTITION_UA, "k1", 2, "v1", 2, h, NULL,
                                 -1) == RD_KAFKA_RESP_ERR_NO_ERROR);
    /* librdkafka checks message timeouts about once a second: two of them (the source
     * message, then its dead letter) take ~2 s; wait up to 30 s for the second report. */
    time_t deadline = time(NULL) + 30;
    while (s_dlq.dead_reports == 0 && time(NULL) < deadline)
        rd_kafka_poll(rk, 50);
    CHECK(s_dlq.dead_reports == 1);
    CHECK_EQ_STR(s_dlq.reason, "data.amount: expected a number");
    CHECK_EQ_STR(s_dlq.source_topic, "src");
    CHECK_EQ_STR(s_dlq.trace, "abc-123"); /* the original header is kept */
    CHECK_EQ_STR(s_dlq.key, "k1");
    CHECK_EQ_STR(s_dlq.payload, "v1");
    CHECK(svc_kafka_brokers_reachable(rk, 100) == 0); /* nothing listens on port 1 */
    rd_kafka_destroy(rk);
}

/* A full local queue: with a wait limit the produce gives up with __QUEUE_FULL after about
 * that long (an upload then fails with a clear 503 instead of hanging while Kafka is away);
 * the message stays the caller's. */
static void test_produce_wait_limit(void)
{
    rd_kafka_t *rk = unreachable_producer("queue.buffering.max.messages", "1", NULL);
    if (rk == NULL)
        return;
    CHECK(svc_kafka_produce_wait(rk, "t", 0, "k", 1, "v1", 2, NULL, NULL, 0) ==
          RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "x", -1, "y", -1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(svc_kafka_produce_wait(rk, "t", 0, "k", 1, "v2", 2, h, NULL, 300) ==
          RD_KAFKA_RESP_ERR__QUEUE_FULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(took >= 0.3);
    CHECK(took < 5.0);
    /* No wait at all: one try. */
    CHECK(svc_kafka_produce_wait(rk, "t", 0, "k", 1, "v3", 2, h, NULL, 0) ==
          RD_KAFKA_RESP_ERR__QUEUE_FULL);
    rd_kafka_headers_destroy(h); /* still ours after the failures */
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy(rk);
}

/* Writes text to a fresh temporary file; returns its path in path (size >= 32). */
static void temp_file(char *path, size_t size, const char *text, size_t len)
{
    snprintf(path, size, "/tmp/test_svc_secretXXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    CHECK(write(fd, text, len) == (ssize_t)len);
    close(fd);
}

static void test_read_secret(void)
{
    char path[64], buf[16], err[256];
    temp_file(path, sizeof path, "s3cr3t\r\n\n", 9);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", path, buf, sizeof buf, err, sizeof err), 0);
    CHECK_EQ_STR(buf, "s3cr3t");
    unlink(path);
    /* Exactly size - 2 bytes fits; one more is refused, not truncated. */
    temp_file(path, sizeof path, "0123456789abcd", 14);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", path, buf, sizeof buf, err, sizeof err), 0);
    CHECK_EQ_STR(buf, "0123456789abcd");
    unlink(path);
    temp_file(path, sizeof path, "0123456789abcde\n", 16);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", path, buf, sizeof buf, err, sizeof err), -1);
    CHECK(strstr(err, "PW_FILE") != NULL && strstr(err, "longer than") != NULL);
    CHECK(strstr(err, "0123") == NULL);
    CHECK_EQ_STR(buf, "");
    unlink(path);
    temp_file(path, sizeof path, "a\0b", 3);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", path, buf, sizeof buf, err, sizeof err), -1);
    CHECK(strstr(err, "NUL") != NULL);
    unlink(path);
    temp_file(path, sizeof path, "", 0);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", path, buf, sizeof buf, err, sizeof err), 0);
    CHECK_EQ_STR(buf, "");
    unlink(path);
    CHECK_EQ_INT(svc_config_read_secret("PW_FILE", "/nonexistent/pw", buf, sizeof buf, err,
                                        sizeof err),
                 -1);
    CHECK(strstr(err, "PW_FILE /nonexistent/pw: ") != NULL);
}

/* svc_sleep_ms says whether the stop flag is set, and without it sleeps at least the time
 * asked (a lower bound nanosleep guarantees, so machine load cannot make this fail). */
static void test_sleep(void)
{
    volatile sig_atomic_t stop = 1;
    CHECK_EQ_INT(svc_sleep_ms(50, &stop), 1);
    stop = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(svc_sleep_ms(120, &stop), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(took >= 0.12);
}

int main(void)
{
    svc_log_init("test_svc", SVC_LOG_ERROR);
    test_config();
    test_metrics();
    test_log_level();
    test_kafka_conf();
    test_kafka_settings();
    test_dead_letter();
    test_produce_wait_limit();
    test_read_secret();
    test_sleep();
    return CHECK_DONE();
}
