/*
 * dbw_writer: db_writer's consume-store-commit loop. It consumes the scoring topic
 * read_committed with auto-commit off, parses each message (its value, fs_msg_parse_scoring,
 * and its upload_id/upload_row headers, dbw_upload.h) into the fill batch of a dbw_pipeline
 * (the batch logic: writes on the database connections while the next batch fills, offsets
 * committed only after the rows are durable and in order), and sends invalid messages to
 * the dead-letter topic (original key, payload and headers, plus source
 * topic/partition/offset and the reason as headers). A batch's dead letters are delivered
 * (idempotent producer) before its offsets are committed; a delivery failure re-produces
 * them with the same reason; if they are not acknowledged within 10 s the batch is dropped uncommitted and the
 * consumer rewinds to the committed offsets (the loop must go back to polling to serve
 * rebalances). On revocation the open batches are written and committed within 10 s, or
 * dropped uncommitted (the next owner re-reads them). PostgreSQL down: a batch is retried
 * with capped exponential backoff, nothing committed meanwhile, so nothing is lost; a
 * replay inserts nothing twice.
 *
 * The consumer joins its group as static member group_instance_id (if set), so a writer
 * restarted after a crash gets its partitions back without waiting for its old session to
 * expire.
 *
 * Threads: dbw_writer_run runs on the caller's thread; dbw_writer_ready may be called from
 * any thread (the HTTP thread) at the same time.
 */
#ifndef DBW_WRITER_H
#define DBW_WRITER_H

#include <signal.h>
#include <stddef.h>

#include "dbw_db.h"
#include "svc_metrics.h"

typedef struct dbw_config {
    const char *bootstrap;         /* bootstrap.servers */
    const char *topic;             /* the scoring topic */
    const char *dlq_topic;         /* dead letters */
    const char *group_id;
    const char *group_instance_id; /* static membership, or NULL (dynamic member) */
    int session_timeout_ms;        /* session.timeout.ms (heartbeat = 1/6 of it, <= 3 s) */
    int batch_size;                /* messages per batch, >= 1 */
    int batch_timeout_ms;          /* longest wait to fill a batch after its first message */
    /* Adaptive batching: a batch is also closed as soon as the consumer has no message
     * waiting and no write is in flight, so light traffic is written at once in small
     * batches (the next one filling while a write runs), while under load batches grow up
     * to batch_size. 0: only batch_size and batch_timeout_ms close a batch. */
    int batch_eager;
    long retry_max_ms;             /* cap of the backoff between database retries, >= 1 */
    volatile sig_atomic_t *stop;   /* set (by a signal handler): run finishes and returns */
} dbw_config;

typedef struct dbw_writer dbw_writer;

/* Creates the consumer and the dead-letter producer and registers the writer's series in
 * metrics. Kafka settings: the writer's defaults, the KAFKA_* pass-through (svc_kafka.h),
 * then what the commit rules need (manual offsets, read_committed), which cannot be
 * overridden. dbs: 1..8 database connections (dbw_pg_new), borrowed like metrics and the
 * strings of cfg: they must outlive the writer. Returns NULL with the reason in errstr and
 * *config_error = 1 if the configuration is at fault (a Kafka property refused), else 0. */
dbw_writer *dbw_writer_new(const dbw_config *cfg, dbw_db *const *dbs, int ndbs,
                           svc_metrics *metrics, int *config_error, char *errstr,
                           size_t errstr_size);

/* Applies the migrations (retrying while the database is unreachable), subscribes, and
 * runs until *cfg->stop is set; then writes and commits the open batches, closes the
 * consumer (leaving the group) and returns 0. Returns -1 after a fatal error (a fatal
 * librdkafka error such as a fenced instance id, or a rewind that failed; logged). */
int dbw_writer_run(dbw_writer *w);

/* 1 if ready (migrations applied, the database answering, brokers reachable, dead letters
 * acknowledged), else 0 with the reason. Thread-safe. */
int dbw_writer_ready(dbw_writer *w, char *reason, size_t reason_size);

/* Destroys the clients (call after dbw_writer_run). NULL is a no-op. */
void dbw_writer_free(dbw_writer *w);

#endif
