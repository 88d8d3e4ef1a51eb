#include "svc_kafka.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_signal.h"

extern char **environ;

#define PROP_NAME_MAX 256

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    svc_log_level l = level <= 3 ? SVC_LOG_ERROR
                      : level <= 4 ? SVC_LOG_WARN
                      : level <= 6 ? SVC_LOG_INFO
                                   : SVC_LOG_DEBUG;
    SVC_LOG(l, NULL, "librdkafka %s %s: %s", rk != NULL ? rd_kafka_name(rk) : "-", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    SVC_LOG(err == RD_KAFKA_RESP_ERR__FATAL ? SVC_LOG_ERROR : SVC_LOG_WARN, NULL,
            "librdkafka %s error %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int svc_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property %s=%s: %s", name, value, why);
        return -1;
    }
    return 0;
}

static int skipped(const char *env_name, size_t len)
{
    const char *list = SVC_KAFKA_SKIP_ENV;
    while (*list != '\0') {
        size_t n = strcspn(list, " ");
        if (n == len && strncmp(list, env_name, len) == 0)
            return 1;
        list += n;
        while (*list == ' ')
            list++;
    }
    return 0;
}

rd_kafka_conf_t *svc_kafka_conf_new(const char *client_id, const char *bootstrap,
                                    char *errstr, size_t errstr_size)
{
    char why[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        snprintf(errstr, errstr_size, "kafka conf: out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (client_id != NULL && svc_kafka_conf_set(conf, "client.id", client_id, errstr,
                                                errstr_size) != 0)
        goto fail;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *kv = *e;
        if (strncmp(kv, "KAFKA_", 6) != 0)
            continue;
        const char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv + 6)
            continue;
        size_t name_len = (size_t)(eq - kv);
        if (skipped(kv, name_len))
            continue;
        char prop[PROP_NAME_MAX];
        size_t plen = name_len - 6;
        if (plen >= sizeof prop) {
            snprintf(errstr, errstr_size, "env %.*s: name too long", (int)name_len, kv);
            goto fail;
        }
        for (size_t i = 0; i < plen; i++) {
            char c = kv[6 + i];
            prop[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
        }
        prop[plen] = '\0';
        if (rd_kafka_conf_set(conf, prop, eq + 1, why, sizeof why) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "env %.*s (librdkafka %s): %s", (int)name_len, kv,
                     prop, why);
            goto fail;
        }
    }
    if (bootstrap != NULL &&
        svc_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) != 0)
        goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int svc_kafka_env_name(const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    if (size < 7 || n > size - 7)
        return -1;
    memcpy(buf, "KAFKA_", 6);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        buf[6 + i] = c == '.' ? '_' : (char)toupper((unsigned char)c);
    }
    buf[6 + n] = '\0';
    return 0;
}

/* The value the environment passes for property name, or NULL. */
static const char *env_value(const char *name, char *env, size_t env_size, char *errstr,
                             size_t errstr_size, int *err)
{
    *err = 0;
    if (svc_kafka_env_name(name, env, env_size) != 0) {
        snprintf(errstr, errstr_size, "kafka property %s: name too long", name);
        *err = 1;
        return NULL;
    }
    return getenv(env);
}

int svc_kafka_conf_defaults(rd_kafka_conf_t *conf, const svc_kafka_setting *settings, size_t n,
                            char *errstr, size_t errstr_size)
{
    char env[PROP_NAME_MAX + 8];
    for (size_t i = 0; i < n; i++) {
        int bad;
        if (env_value(settings[i].name, env, sizeof env, errstr, errstr_size, &bad) != NULL)
            continue; /* the operator's value, applied by svc_kafka_conf_new */
        if (bad || svc_kafka_conf_set(conf, settings[i].name, settings[i].value, errstr,
                                      errstr_size) != 0)
            return -1;
    }
    return 0;
}

int svc_kafka_conf_force(rd_kafka_conf_t *conf, const svc_kafka_setting *settings, size_t n,
                         char *errstr, size_t errstr_size)
{
    char env[PROP_NAME_MAX + 8];
    for (size_t i = 0; i < n; i++) {
        int bad;
        const char *v = env_value(settings[i].name, env, sizeof env, errstr, errstr_size, &bad);
        if (bad)
            return -1;
        if (v != NULL && strcmp(v, settings[i].value) != 0) {
            snprintf(errstr, errstr_size, "env %s=%s: this service needs %s=%s", env, v,
                     settings[i].name, settings[i].value);
            return -1;
        }
        if (svc_kafka_conf_set(conf, settings[i].name, settings[i].value, errstr,
                               errstr_size) != 0)
            return -1;
    }
    return 0;
}

rd_kafka_resp_err_t svc_kafka_produce_wait(rd_kafka_t *producer, const char *topic,
                                           int32_t partition, const void *key, size_t key_len,
                                           const void *value, size_t value_len,
                                           rd_kafka_headers_t *headers, void *opaque,
                                           int max_wait_ms)
{
    double t0 = -1; /* read at the first full queue: the common path reads no clock */
    for (;;) {
        /* RD_KAFKA_V_HEADERS(NULL) is the same as no headers (librdkafka's producev). */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return err;
        if (max_wait_ms >= 0) {
            double now = svc_now_s();
            if (t0 < 0)
                t0 = now;
            if ((now - t0) * 1e3 >= max_wait_ms)
                return err;
        }
        /* Delivery reports drain the queue; serve them and try again. */
        rd_kafka_poll(producer, 10);
    }
}

int svc_kafka_dlq_produce(rd_kafka_t *producer, const char *dlq_topic,
                          const rd_kafka_message_t *msg, const char *reason, void *opaque,
                          char *errstr, size_t errstr_size)
{
    char num[24];
    const char *src_topic = msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "";
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_headers_t *h =
        rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig != NULL
            ? rd_kafka_headers_copy(orig)
            : rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "x-source-topic", -1, src_topic, -1);
    snprintf(num, sizeof num, "%" PRId32, msg->partition);
    rd_kafka_header_add(h, "x-source-partition", -1, num, -1);
    snprintf(num, sizeof num, "%" PRId64, msg->offset);
    rd_kafka_header_add(h, "x-source-offset", -1, num, -1);
    rd_kafka_header_add(h, "x-error-reason", -1, reason, -1);
    rd_kafka_resp_err_t err =
        svc_kafka_produce_wait(producer, dlq_topic, RD_KAFKA_PARTITION_UA, msg->key,
                               msg->key_len, msg->payload, msg->len, h, opaque, -1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h); /* on success the message owns it */
        snprintf(errstr, errstr_size, "%s [%" PRId32 "] @%" PRId64 " -> %s: %s", src_topic,
                 msg->partition, msg->offset, dlq_topic, rd_kafka_err2str(err));
        return -1;
    }
    svc_log_ctx ctx = {src_topic, msg->partition, msg->offset, NULL};
    SVC_LOG(SVC_LOG_WARN, &ctx, "dead-lettered to %s: %s", dlq_topic, reason);
    return 0;
}

int svc_kafka_brokers_reachable(rd_kafka_t *rk, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    rd_kafka_metadata_destroy(md);
    return 1;
}

int64_t svc_kafka_consumer_lag(rd_kafka_t *consumer)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t lag = -1;
    if (rd_kafka_assignment(consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        goto out;
    if (parts->cnt == 0)
        goto out;
    if (rd_kafka_position(consumer, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    lag = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = 0;
        int64_t hi = 0;
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (rd_kafka_get_watermark_offsets(consumer, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            lag = -1;
            goto out;
        }
        int64_t pos = p->offset >= 0 ? p->offset : lo;
        if (hi > pos)
            lag += hi - pos;
    }
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    return lag;
}

int svc_kafka_partition_errors(const rd_kafka_topic_partition_list_t *parts, const char *what)
{
    int n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s %s[%" PRId32 "] at %" PRId64 ": %s", what, p->topic,
                p->partition, p->offset, rd_kafka_err2str(p->err));
        n++;
    }
    return n;
}

int svc_kafka_seek(rd_kafka_t *consumer, rd_kafka_topic_partition_list_t *parts,
                   int timeout_ms, const char *what)
{
    rd_kafka_error_t *error = rd_kafka_seek_partitions(consumer, parts, timeout_ms);
    if (error != NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s: seek: %s", what, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    return svc_kafka_partition_errors(parts, what) == 0 ? 0 : -1;
}
