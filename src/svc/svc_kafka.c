#include "svc_kafka.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "svc_log.h"

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

int svc_kafka_dlq_produce(rd_kafka_t *producer, const char *dlq_topic,
                          const rd_kafka_message_t *msg, const char *reason, char *errstr,
                          size_t errstr_size)
{
    char part[16];
    char off[24];
    const char *src_topic = msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "";
    snprintf(part, sizeof part, "%" PRId32, msg->partition);
    snprintf(off, sizeof off, "%" PRId64, msg->offset);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(dlq_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(msg->key, msg->key_len), RD_KAFKA_V_VALUE(msg->payload, msg->len),
        RD_KAFKA_V_HEADER("x-source-topic", src_topic, -1),
        RD_KAFKA_V_HEADER("x-source-partition", part, -1),
        RD_KAFKA_V_HEADER("x-source-offset", off, -1),
        RD_KAFKA_V_HEADER("x-error-reason", reason, -1), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "%s [%" PRId32 "] @%" PRId64 " -> %s: %s", src_topic,
                 msg->partition, msg->offset, dlq_topic, rd_kafka_err2str(err));
        return -1;
    }
    svc_log_ctx ctx = {src_topic, msg->partition, msg->offset, NULL};
    SVC_LOG(SVC_LOG_WARN, &ctx, "dead-lettered to %s: %s", dlq_topic, reason);
    return 0;
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
