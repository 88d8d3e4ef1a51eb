/*
 * svc_kafka: the Kafka glue every service shares.
 *  - svc_kafka_conf_new builds an rd_kafka_conf_t with bootstrap.servers, client.id, the
 *    log and error callbacks routed into SVC_LOG, and every environment variable KAFKA_<NAME>
 *    passed through to librdkafka as <name> lowercased with '_' -> '.'
 *    (KAFKA_LINGER_MS=5 -> linger.ms=5). A few KAFKA_* names used by the local stack and the
 *    JVM tooling are not librdkafka properties and are skipped (see SVC_KAFKA_SKIP_ENV).
 *    An unknown property is an error naming the variable, like kcat's -X.
 *  - svc_kafka_conf_defaults sets a service's own defaults unless the environment passes
 *    KAFKA_<NAME>; svc_kafka_conf_force sets what a service's correctness depends on and
 *    refuses an environment variable that says otherwise.
 *  - svc_kafka_produce_wait produces one message (copied), polling while the local queue
 *    is full: the one "produce and wait for room" loop of every producer here.
 *  - svc_kafka_dlq_produce dead-letters one consumed message: the original key, payload and
 *    headers, then x-source-topic, x-source-partition, x-source-offset and x-error-reason
 *    (the real reason); the same fields are in the log line.
 *  - svc_kafka_consumer_lag sums high watermark minus position over the assignment.
 *  - svc_kafka_seek moves a consumer to the offsets of a partition list (a rewind), and
 *    svc_kafka_partition_errors logs what librdkafka reported per partition of a list.
 *
 * Ownership: svc_kafka_conf_new returns a conf the caller owns until it passes it to
 * rd_kafka_new (which takes it on success). svc_kafka_produce_wait and svc_kafka_dlq_produce
 * copy key and payload (RD_KAFKA_MSG_F_COPY); the source message stays the caller's.
 */
#ifndef SVC_KAFKA_H
#define SVC_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* Space-separated KAFKA_* variables that are not passed to librdkafka: the JVM's and
 * scripts/stack's. */
#define SVC_KAFKA_SKIP_ENV                                                                    \
    "KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JVM_PERFORMANCE_OPTS " \
    "KAFKA_LOG4J_OPTS KAFKA_HOME KAFKA_DIR KAFKA_GC_OPTS KAFKA_CLUSTER_ID"

/* Returns a new conf, or NULL with errstr ("env KAFKA_LINGER_MSS: No such configuration
 * property ..."). bootstrap overrides any KAFKA_BOOTSTRAP_SERVERS pass-through; client_id
 * may be NULL. */
rd_kafka_conf_t *svc_kafka_conf_new(const char *client_id, const char *bootstrap,
                                    char *errstr, size_t errstr_size);

/* rd_kafka_conf_set with an error that names the property. Returns 0 or -1. */
int svc_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                       char *errstr, size_t errstr_size);

/* One librdkafka property and the value a service wants for it. */
typedef struct svc_kafka_setting {
    const char *name;  /* e.g. "linger.ms" */
    const char *value; /* e.g. "5" */
} svc_kafka_setting;

/* The environment variable that passes property name through: "linger.ms" ->
 * "KAFKA_LINGER_MS". Returns 0, or -1 if buf is too small. */
int svc_kafka_env_name(const char *name, char *buf, size_t size);

/* Sets each of the n settings unless the environment passes it as KAFKA_<NAME> (which
 * svc_kafka_conf_new applied already, so the operator's value wins). Returns 0, or -1 with
 * errstr naming the property. */
int svc_kafka_conf_defaults(rd_kafka_conf_t *conf, const svc_kafka_setting *settings, size_t n,
                            char *errstr, size_t errstr_size);

/* Sets each of the n settings whatever the environment says; a KAFKA_<NAME> with another
 * value is an error naming it ("env KAFKA_ENABLE_AUTO_COMMIT=true: this service needs
 * enable.auto.commit=false"). Returns 0 or -1. */
int svc_kafka_conf_force(rd_kafka_conf_t *conf, const svc_kafka_setting *settings, size_t n,
                         char *errstr, size_t errstr_size);

/* Produces one message, copying key and value, to topic (partition RD_KAFKA_PARTITION_UA:
 * the partitioner chooses), polling the producer while its local queue is full, for at most
 * max_wait_ms (negative: as long as it takes; the queue drains as deliveries succeed or
 * time out). headers (NULL: none) become the message's on success and stay the caller's on
 * failure; opaque reaches the delivery report. Returns the produce error: __QUEUE_FULL only
 * when the queue stayed full for max_wait_ms. */
rd_kafka_resp_err_t svc_kafka_produce_wait(rd_kafka_t *producer, const char *topic,
                                           int32_t partition, const void *key, size_t key_len,
                                           const void *value, size_t value_len,
                                           rd_kafka_headers_t *headers, void *opaque,
                                           int max_wait_ms);

/* Dead-letters msg to dlq_topic through svc_kafka_produce_wait: its key and payload, every
 * header it had, then x-source-topic, x-source-partition, x-source-offset and
 * x-error-reason = reason. opaque reaches the delivery report. Does not flush. Returns 0
 * (logged at warn with the source and the reason), or -1 with errstr. */
int svc_kafka_dlq_produce(rd_kafka_t *producer, const char *dlq_topic,
                          const rd_kafka_message_t *msg, const char *reason, void *opaque,
                          char *errstr, size_t errstr_size);

/* 1 if the cluster answers a metadata request (brokers only, no topics) within timeout_ms,
 * else 0. After "all brokers down", readiness comes back with the first answer even when no
 * message flows. */
int svc_kafka_brokers_reachable(rd_kafka_t *rk, int timeout_ms);

/* Sum over the consumer's current assignment of (high watermark - committed-or-consumed
 * position), from librdkafka's cached watermarks (no network round trip). Returns -1 if
 * unknown (no assignment yet or no statistics). */
int64_t svc_kafka_consumer_lag(rd_kafka_t *consumer);

/* Logs (SVC_LOG_ERROR, "<what> <topic>[<partition>] at <offset>: <error>") every partition
 * of parts whose err is set. Returns how many there were (0: all fine). */
int svc_kafka_partition_errors(const rd_kafka_topic_partition_list_t *parts, const char *what);

/* Seeks the consumer to the offset of each partition of parts (all assigned to it), waiting
 * up to timeout_ms. Returns 0, or -1 (logged, prefixed with `what`) if the seek or any
 * partition's failed. parts stays the caller's (librdkafka sets each partition's err). */
int svc_kafka_seek(rd_kafka_t *consumer, rd_kafka_topic_partition_list_t *parts,
                   int timeout_ms, const char *what);

#endif
