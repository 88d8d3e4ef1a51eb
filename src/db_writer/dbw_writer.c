#include "dbw_writer.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbw_pipeline.h"
#include "dbw_upload.h"
#include "fs_msg.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_signal.h"

#define REVOKE_FLUSH_MAX_S 10.0
/* Longest wait for a batch's dead letters outside a rebalance before the batch is given up
 * and read again (the loop must go back to polling to serve rebalances). */
#define DLQ_FLUSH_MAX_S 10.0

typedef struct series {
    svc_counter *consumed, *dead_lettered, *commit_errors, *consumer_errors, *rebalances;
    svc_gauge *lag, *assigned;
} series;

struct dbw_writer {
    dbw_config cfg;
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters */
    dbw_pipeline *pipe;
    series m;
    /* Dead letters of the fill batch and their reasons (malloc'd), kept until they are
     * acknowledged by the DLQ topic (re-produced, with the same reason, if not): at most
     * batch_size. */
    rd_kafka_message_t **dead;
    char **dead_reason;
    size_t ndead;
    atomic_int migrated;
    atomic_int kafka_up;
    atomic_int dlq_failures;
    /* A batch was given up because its dead letters were not acknowledged in time; cleared
     * only when a batch's dead letters are acknowledged or the partitions are revoked. */
    atomic_int dlq_blocked;
    atomic_int fatal; /* librdkafka reported a fatal error (e.g. fenced instance id) */
};

static int stopping(const dbw_writer *w)
{
    return *w->cfg.stop != 0;
}

static long next_backoff(const dbw_writer *w, long backoff)
{
    return backoff * 2 > w->cfg.retry_max_ms ? w->cfg.retry_max_ms : backoff * 2;
}

int dbw_writer_ready(dbw_writer *w, char *reason, size_t reason_size)
{
    if (!atomic_load(&w->migrated)) {
        snprintf(reason, reason_size, "database not connected or migrations not applied");
        return 0;
    }
    if (!dbw_pipeline_db_ok(w->pipe)) {
        snprintf(reason, reason_size, "database unreachable (retrying)");
        return 0;
    }
    if (!atomic_load(&w->kafka_up)) {
        snprintf(reason, reason_size, "kafka unreachable");
        return 0;
    }
    if (atomic_load(&w->dlq_blocked)) {
        snprintf(reason, reason_size, "dead letters not acknowledged by %s (retrying; nothing "
                 "after them is committed)", w->cfg.dlq_topic);
        return 0;
    }
    return 1;
}

static void register_series(series *m, svc_metrics *r)
{
    m->consumed = svc_metrics_counter(r, "db_writer_messages_consumed_total",
                                      "Messages read from the scoring topic.", NULL);
    m->dead_lettered = svc_metrics_counter(r, "db_writer_messages_dead_lettered_total",
                                           "Invalid messages sent to the DLQ topic.", NULL);
    m->commit_errors = svc_metrics_counter(r, "db_writer_kafka_commit_errors_total",
                                           "Offset commits that failed (the batch will be "
                                           "re-read and found already stored).",
                                           NULL);
    m->consumer_errors = svc_metrics_counter(r, "db_writer_consumer_errors_total",
                                             "Errors reported by the Kafka consumer.", NULL);
    m->rebalances = svc_metrics_counter(r, "db_writer_rebalances_total",
                                        "Partition assignments and revocations.", NULL);
    m->lag = svc_metrics_gauge(r, "db_writer_consumer_lag",
                               "Messages behind the high watermark over the assignment.", NULL);
    m->assigned = svc_metrics_gauge(r, "db_writer_assigned_partitions",
                                    "Partitions of the scoring topic assigned here.", NULL);
}

/* The pipeline's commit: the batch is stored, its offsets are committed synchronously. */
static int commit_offsets(void *opaque, const rd_kafka_topic_partition_list_t *offsets)
{
    dbw_writer *w = opaque;
    rd_kafka_resp_err_t cerr = rd_kafka_commit(w->consumer, offsets, 0);
    if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_counter_add(w->m.commit_errors, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "offset commit of %d partitions failed: %s (the batch is "
                "stored; a re-read will find it there)", offsets->cnt, rd_kafka_err2str(cerr));
        return -1;
    }
    atomic_store(&w->kafka_up, 1);
    return 0;
}

/* The fill batch's dead letters are no longer needed (acknowledged, or the batch dropped). */
static void drop_dead(dbw_writer *w)
{
    for (size_t i = 0; i < w->ndead; i++) {
        rd_kafka_message_destroy(w->dead[i]);
        free(w->dead_reason[i]);
    }
    w->ndead = 0;
}

/* Dead letters of the fill batch are delivered (idempotent producer) before its offsets are
 * committed; a failed delivery re-produces them all (the DLQ is at-least-once). Returns 0,
 * or -1 if a stop was requested first or, with max_wait_s > 0, if they were not all
 * acknowledged within that many seconds: the caller then drops the batch uncommitted, so
 * it is read (and dead-lettered) again. */
static int flush_dead_letters(dbw_writer *w, double max_wait_s)
{
    char err[512];
    long backoff = 100;
    double t0 = svc_now_s();
    if (w->ndead == 0)
        return 0;
    for (;;) {
        while (rd_kafka_outq_len(w->producer) > 0) {
            int ms = 1000;
            if (max_wait_s > 0) {
                double left = max_wait_s - (svc_now_s() - t0);
                if (left <= 0)
                    goto give_up;
                if (left * 1e3 < ms)
                    ms = (int)(left * 1e3) + 1;
            }
            rd_kafka_flush(w->producer, ms);
            if (stopping(w) && rd_kafka_outq_len(w->producer) > 0)
                return -1;
        }
        if (atomic_exchange(&w->dlq_failures, 0) == 0) {
            atomic_store(&w->dlq_blocked, 0);
            return 0;
        }
        SVC_LOG(SVC_LOG_WARN, NULL, "dead-letter delivery failed; re-producing %zu messages",
                w->ndead);
        if (max_wait_s > 0 && svc_now_s() - t0 + (double)backoff / 1e3 > max_wait_s)
            goto give_up;
        if (svc_sleep_ms(backoff, w->cfg.stop))
            return -1;
        backoff = next_backoff(w, backoff);
        for (size_t i = 0; i < w->ndead; i++) {
            if (svc_kafka_dlq_produce(w->producer, w->cfg.dlq_topic, w->dead[i],
                                      w->dead_reason[i], NULL, err, sizeof err) != 0) {
                /* Counted like the first try, so the batch is never committed with a
                 * dead letter that did not reach the DLQ. */
                SVC_LOG(SVC_LOG_ERROR, NULL, "dead letter: %s", err);
                atomic_fetch_add(&w->dlq_failures, 1);
            }
        }
    }
give_up:
    SVC_LOG(SVC_LOG_WARN, NULL, "%zu dead letter(s) not acknowledged by %s within %.0f s: the "
            "batch of %zu messages is dropped uncommitted (the next owner of its partitions "
            "reads it again)", w->ndead, w->cfg.dlq_topic, max_wait_s,
            dbw_pipeline_fill_len(w->pipe));
    return -1;
}

/* A batch whose dead letters were not all acknowledged is being dropped uncommitted (it
 * will be read and dead-lettered again, here or by its partitions' next owner): the dead
 * letters still queued in the producer are purged, their purge reports served and the
 * failure count reset, so they neither hold a later batch's flush nor count against it,
 * nor reach the DLQ late as extra copies (for partitions perhaps no longer owned). One in a
 * request already sent is not purged: it may still reach the DLQ (at least once). */
static void drop_queued_dead_letters(dbw_writer *w)
{
    rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(w->producer, 0); /* their (purged) delivery reports */
    atomic_store(&w->dlq_failures, 0);
}

/* Moves the consumer back to the group's committed offsets on every assigned partition
 * (the beginning where nothing is committed, as auto.offset.reset=earliest), so whatever
 * was consumed after them is read again. Returns 0, or -1 if that could not be done. */
static int rewind_to_committed(dbw_writer *w)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int rc = -1;
    rd_kafka_resp_err_t err = rd_kafka_assignment(w->consumer, &parts);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "rewind: assignment: %s", rd_kafka_err2str(err));
        goto out;
    }
    if (parts->cnt == 0) {
        rc = 0;
        goto out;
    }
    err = rd_kafka_committed(w->consumer, parts, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "rewind: committed offsets: %s", rd_kafka_err2str(err));
        goto out;
    }
    if (svc_kafka_partition_errors(parts, "rewind: committed offset of") != 0)
        goto out;
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    rc = svc_kafka_seek(w->consumer, parts, 10000, "rewind");
out:
    if (parts != NULL)
        rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* The fill batch's dead letters were not acknowledged within DLQ_FLUSH_MAX_S (the DLQ topic
 * refuses them or cannot be reached). Waiting longer would stop the loop from polling, and
 * so hold any rebalance of the group: instead the writes in flight (earlier batches) are
 * completed and committed, the fill batch is dropped uncommitted, dead letters still queued
 * are purged, and the consumer goes back to the committed offsets, so the batch is read and
 * its dead letters produced again on the next round (at least once in the DLQ, never
 * committed before acknowledged). Returns 0, or -1 (stop requested, or fatal: a rewind that
 * failed would let a later commit skip the dropped messages, so the writer exits 1 and its
 * restart resumes from the committed offsets). */
static int give_up_and_rewind(dbw_writer *w)
{
    /* Set first: committing the writes in flight (earlier batches) must not clear it, only
     * dead letters acknowledged or a revoke do. */
    atomic_store(&w->dlq_blocked, 1);
    if (dbw_pipeline_complete_all(w->pipe, REVOKE_FLUSH_MAX_S) == 0)
        dbw_pipeline_drop_fill(w->pipe); /* else it was dropped with the rest */
    drop_dead(w);
    drop_queued_dead_letters(w);
    if (stopping(w))
        return -1;
    if (rewind_to_committed(w) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot go back to the committed offsets after dropping a "
                "batch: exiting so a restart resumes from them");
        atomic_store(&w->fatal, 1);
        return -1;
    }
    SVC_LOG(SVC_LOG_WARN, NULL, "back to the committed offsets: the batch and its dead letters "
            "will be read again");
    return 0;
}

/* Closes the fill batch: its dead letters delivered, then handed to the pipeline (written
 * while the next batch fills). Returns 0, or -1 if it gave up (stop requested; nothing more
 * committed). */
static int submit_fill(dbw_writer *w)
{
    if (dbw_pipeline_fill_len(w->pipe) == 0)
        return 0;
    double closed = svc_now_s();
    if (flush_dead_letters(w, DLQ_FLUSH_MAX_S) != 0)
        return stopping(w) ? -1 : give_up_and_rewind(w);
    drop_dead(w); /* acknowledged */
    return dbw_pipeline_submit(w->pipe, closed);
}

/* Writes and commits everything polled so far (before a revoke, at shutdown), within
 * max_wait_s if > 0. Returns 0, or -1 with everything uncommitted dropped. */
static int drain(dbw_writer *w, double max_wait_s)
{
    double t0 = svc_now_s();
    int rc = -1;
    if (dbw_pipeline_complete_all(w->pipe, max_wait_s) != 0)
        goto out;
    /* Both steps share what is left of max_wait_s. */
    if (flush_dead_letters(w, dbw_time_left(t0, max_wait_s)) != 0) {
        dbw_pipeline_drop_fill(w->pipe);
        drop_queued_dead_letters(w);
        goto out;
    }
    drop_dead(w);
    rc = dbw_pipeline_drain(w->pipe, dbw_time_left(t0, max_wait_s));
out:
    drop_dead(w);
    return rc;
}

/* A fatal librdkafka error (e.g. FENCED_INSTANCE_ID: another writer joined the group with
 * this INSTANCE_ID): the client cannot go on, so the writer stops with status 1 (what it
 * has not committed is read again by the group). Reported once. */
static void on_fatal(dbw_writer *w, rd_kafka_t *rk)
{
    char why[512];
    if (atomic_exchange(&w->fatal, 1))
        return;
    rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, why, sizeof why);
    SVC_LOG(SVC_LOG_ERROR, NULL, "librdkafka %s: fatal: %s: %s%s; stopping", rd_kafka_name(rk),
            rd_kafka_err2name(ferr), why,
            ferr == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID
                ? " (another writer uses the same INSTANCE_ID in this group)"
                : "");
}

/* Parses a record of the scoring topic into row: its value (fs_msg_parse_scoring) and its
 * upload headers (dbw_upload.h; absent: NULL columns). Returns 0, or -1 with the reason. */
static int parse_row(const rd_kafka_message_t *msg, dbw_row *row, char *errstr,
                     size_t errstr_size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t n = 0;
    const char *payload = msg->payload != NULL ? msg->payload : "";
    if (fs_msg_parse_scoring(payload, msg->len, &row->msg, errstr, errstr_size) != 0)
        return -1;
    row->has_upload_id = 0;
    row->upload_row = 0;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0; /* no headers */
    if (rd_kafka_header_get_last(hdrs, "upload_id", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (dbw_upload_parse_id(v, n, row->upload_id, errstr, errstr_size) != 0)
            return -1;
        row->has_upload_id = 1;
    }
    if (rd_kafka_header_get_last(hdrs, "upload_row", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        dbw_upload_parse_row(v, n, &row->upload_row, errstr, errstr_size) != 0)
        return -1;
    return 0;
}

/* Takes ownership of msg. Returns 0, or -1 if the loop must stop (a full fill batch could
 * not be submitted). */
static int handle_message(dbw_writer *w, rd_kafka_message_t *msg)
{
    char err[512];
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            svc_counter_add(w->m.consumer_errors, 1);
            svc_log_ctx ctx = {msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : NULL,
                               msg->partition, msg->offset, NULL};
            SVC_LOG(SVC_LOG_WARN, &ctx, "consumer: %s", rd_kafka_message_errstr(msg));
            if (msg->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
                atomic_store(&w->kafka_up, 0);
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                on_fatal(w, w->consumer);
        }
        rd_kafka_message_destroy(msg);
        return 0;
    }
    atomic_store(&w->kafka_up, 1);
    /* The loop submits a full batch before polling again; this only guards the rule. */
    if (dbw_pipeline_slot(w->pipe) == NULL && submit_fill(w) != 0) {
        rd_kafka_message_destroy(msg);
        return -1;
    }
    svc_counter_add(w->m.consumed, 1);
    const char *topic = rd_kafka_topic_name(msg->rkt);
    dbw_row *row = dbw_pipeline_slot(w->pipe);
    if (parse_row(msg, row, err, sizeof err) == 0) {
        dbw_pipeline_add(w->pipe, topic, msg->partition, msg->offset, 1);
        rd_kafka_message_destroy(msg);
        return 0;
    }
    char reason[600];
    snprintf(reason, sizeof reason, "invalid scoring message: %s", err);
    char *kept = strdup(reason);
    if (kept == NULL) {
        /* The reason is needed to re-send it: without memory, drop the batch uncommitted. */
        SVC_LOG(SVC_LOG_ERROR, NULL, "out of memory for a dead letter's reason; stopping");
        atomic_store(&w->fatal, 1);
        rd_kafka_message_destroy(msg);
        return -1;
    }
    if (svc_kafka_dlq_produce(w->producer, w->cfg.dlq_topic, msg, reason, NULL, err,
                              sizeof err) != 0) {
        /* Queue full or similar: flush_dead_letters re-produces on failure; count it so. */
        SVC_LOG(SVC_LOG_ERROR, NULL, "dead letter: %s", err);
        atomic_fetch_add(&w->dlq_failures, 1);
    }
    svc_counter_add(w->m.dead_lettered, 1);
    dbw_pipeline_add(w->pipe, topic, msg->partition, msg->offset, 0);
    w->dead[w->ndead] = msg;
    w->dead_reason[w->ndead++] = kept;
    return 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    dbw_writer *w = opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_fetch_add(&w->dlq_failures, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "dead letter not delivered: %s", rd_kafka_err2str(msg->err));
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    dbw_writer *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&w->kafka_up, 0);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        on_fatal(w, rk);
        return;
    }
    SVC_LOG(SVC_LOG_WARN, NULL, "librdkafka %s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Eager rebalance: before partitions are taken away, the open batches are written, their
 * dead letters delivered and their offsets committed, all within REVOKE_FLUSH_MAX_S (or, if
 * that cannot be done, they are dropped uncommitted so the next owner re-reads them):
 * neither a database outage nor a dead-letter topic that refuses or cannot be reached holds
 * the group's rebalance. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    dbw_writer *w = opaque;
    svc_counter_add(w->m.rebalances, 1);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        SVC_LOG(SVC_LOG_INFO, NULL, "assigned %d partitions", parts->cnt);
        svc_gauge_set(w->m.assigned, parts->cnt);
        rd_kafka_assign(rk, parts);
        return;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "revoking %d partitions; flushing the open batch", parts->cnt);
    /* Bounded: a database outage must not hold the whole group's rebalance. */
    drain(w, REVOKE_FLUSH_MAX_S);
    atomic_store(&w->dlq_blocked, 0); /* those partitions are someone else's now */
    svc_gauge_set(w->m.assigned, 0);
    rd_kafka_assign(rk, NULL);
}

static int create_clients(dbw_writer *w, char *errstr, size_t errstr_size)
{
    int rc = -1;
    const dbw_config *c = &w->cfg;
    rd_kafka_conf_t *conf = svc_kafka_conf_new("db_writer", c->bootstrap, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    /* What the commit rules depend on: offsets stored and committed only by the writer,
     * only committed transactions read, a new group starting from the beginning (nothing
     * skipped). An env KAFKA_* saying otherwise is refused. */
    static const svc_kafka_setting consumer_forced[] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"auto.offset.reset", "earliest"},
    };
    if (svc_kafka_conf_force(conf, consumer_forced,
                             sizeof consumer_forced / sizeof consumer_forced[0], errstr,
                             errstr_size) != 0)
        goto out;
    /* Heartbeats a sixth of the session timeout, at most 3 s. */
    char heartbeat[24];
    int hb = c->session_timeout_ms / 6 < 3000 ? c->session_timeout_ms / 6 : 3000;
    snprintf(heartbeat, sizeof heartbeat, "%d", hb);
    const svc_kafka_setting consumer_defaults[] = {
        {"enable.partition.eof", "false"},
        {"max.poll.interval.ms", "600000"},
        {"heartbeat.interval.ms", heartbeat},
    };
    if (svc_kafka_conf_defaults(conf, consumer_defaults,
                                sizeof consumer_defaults / sizeof consumer_defaults[0], errstr,
                                errstr_size) != 0)
        goto out;
    /* Static membership: a restarted writer (same instance id) takes its old place, so the
     * group does not wait for the dead session; a writer gone longer than the session
     * timeout loses its partitions to the others. */
    char session[24];
    snprintf(session, sizeof session, "%d", c->session_timeout_ms);
    if (svc_kafka_conf_set(conf, "group.id", c->group_id, errstr, errstr_size) != 0 ||
        svc_kafka_conf_set(conf, "session.timeout.ms", session, errstr, errstr_size) != 0)
        goto out;
    if (c->group_instance_id != NULL &&
        svc_kafka_conf_set(conf, "group.instance.id", c->group_instance_id, errstr,
                           errstr_size) != 0)
        goto out;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (w->consumer == NULL)
        goto out;
    conf = NULL; /* owned by the consumer now */
    rd_kafka_poll_set_consumer(w->consumer);

    conf = svc_kafka_conf_new("db_writer-dlq", c->bootstrap, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    /* Dead letters: never duplicated or reordered by the producer's own retries. */
    static const svc_kafka_setting dlq_forced[] = {{"enable.idempotence", "true"}};
    static const svc_kafka_setting dlq_defaults[] = {{"linger.ms", "5"}};
    if (svc_kafka_conf_force(conf, dlq_forced, 1, errstr, errstr_size) != 0 ||
        svc_kafka_conf_defaults(conf, dlq_defaults, 1, errstr, errstr_size) != 0)
        goto out;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (w->producer == NULL)
        goto out;
    conf = NULL;
    rc = 0;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rc;
}

dbw_writer *dbw_writer_new(const dbw_config *cfg, dbw_db *const *dbs, int ndbs,
                           svc_metrics *metrics, int *config_error, char *errstr,
                           size_t errstr_size)
{
    *config_error = 0;
    dbw_writer *w = calloc(1, sizeof *w);
    if (w == NULL || cfg->batch_size < 1 || cfg->stop == NULL) {
        snprintf(errstr, errstr_size, w == NULL ? "out of memory" : "bad configuration");
        *config_error = w != NULL;
        free(w);
        return NULL;
    }
    w->cfg = *cfg;
    atomic_init(&w->migrated, 0);
    atomic_init(&w->kafka_up, 0);
    atomic_init(&w->dlq_failures, 0);
    atomic_init(&w->dlq_blocked, 0);
    atomic_init(&w->fatal, 0);
    w->dead = calloc((size_t)cfg->batch_size, sizeof w->dead[0]);
    w->dead_reason = calloc((size_t)cfg->batch_size, sizeof w->dead_reason[0]);
    if (w->dead == NULL || w->dead_reason == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    dbw_pipeline_config pc = {
        .batch_size = (size_t)cfg->batch_size,
        .retry_first_ms = cfg->retry_max_ms < 100 ? cfg->retry_max_ms : 100,
        .retry_max_ms = cfg->retry_max_ms,
        .stop = cfg->stop,
        .commit = commit_offsets,
        .commit_opaque = w,
    };
    w->pipe = dbw_pipeline_new(&pc, dbs, ndbs, metrics, errstr, errstr_size);
    if (w->pipe == NULL)
        goto fail;
    register_series(&w->m, metrics);
    if (create_clients(w, errstr, errstr_size) != 0) {
        *config_error = 1;
        goto fail;
    }
    return w;
fail:
    dbw_writer_free(w);
    return NULL;
}

static int subscribe(dbw_writer *w)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, w->cfg.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "kafka: subscribe %s: %s", w->cfg.topic,
                rd_kafka_err2str(err));
        return -1;
    }
    atomic_store(&w->kafka_up, 1);
    return 0;
}

int dbw_writer_run(dbw_writer *w)
{
    double last_lag = 0;
    const double batch_timeout = (double)w->cfg.batch_timeout_ms / 1e3;
    const size_t batch_size = (size_t)w->cfg.batch_size;
    if (dbw_pipeline_migrate(w->pipe) != 0)
        return 0; /* stopped while waiting for the database */
    atomic_store(&w->migrated, 1);
    if (subscribe(w) != 0)
        return -1;
    SVC_LOG(SVC_LOG_INFO, NULL, "consuming %s as group %s (read_committed), batch %d / %d ms%s",
            w->cfg.topic, w->cfg.group_id, w->cfg.batch_size, w->cfg.batch_timeout_ms,
            w->cfg.batch_eager ? ", adaptive (written at once when idle)" : "");
    while (!stopping(w) && !atomic_load(&w->fatal)) {
        int timeout = 500;
        size_t len = dbw_pipeline_fill_len(w->pipe);
        if (len > 0) {
            double left = dbw_pipeline_fill_start(w->pipe) + batch_timeout - svc_now_s();
            timeout = left <= 0 ? 0 : (int)(left * 1e3) + 1;
            /* Adaptive: with no write in flight, only what is already fetched joins. */
            if (w->cfg.batch_eager && dbw_pipeline_inflight(w->pipe) == 0)
                timeout = 0;
        }
        if (dbw_pipeline_inflight(w->pipe) > 0 && timeout > 5)
            timeout = 5; /* come back soon to commit the writes in flight */
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer, timeout);
        if (msg != NULL && handle_message(w, msg) != 0)
            break;
        len = dbw_pipeline_fill_len(w->pipe);
        /* Commit the oldest writes in flight as soon as they are done (checked when idle
         * and every 256 messages; the check is one non-blocking read). */
        if ((msg == NULL || (len & 255) == 0) && dbw_pipeline_poll(w->pipe) != 0) {
            drop_dead(w);
            break; /* stop requested during a database outage */
        }
        double t = svc_now_s();
        /* Adaptive: nothing more waiting and no write in flight: write what we have now.
         * While a write is in flight the next batch fills (a group commit: one write per
         * write time under light load); under load messages keep coming, so batches grow
         * to batch_size and then use every connection. */
        int idle = msg == NULL && w->cfg.batch_eager && dbw_pipeline_inflight(w->pipe) == 0;
        if (len >= batch_size ||
            (len > 0 && (idle || t >= dbw_pipeline_fill_start(w->pipe) + batch_timeout))) {
            if (submit_fill(w) != 0) {
                drop_dead(w);
                break;
            }
        }
        if (t - last_lag >= 1.0) {
            last_lag = t;
            int64_t lag = svc_kafka_consumer_lag(w->consumer);
            if (lag >= 0)
                svc_gauge_set(w->m.lag, (double)lag);
            /* After "all brokers down", readiness comes back with the first answer, even
             * when no message flows. */
            if (!atomic_load(&w->kafka_up) && svc_kafka_brokers_reachable(w->consumer, 500))
                atomic_store(&w->kafka_up, 1);
        }
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "stopping: writing the open batches (%zu messages in the "
            "fill batch, %d batches in flight)", dbw_pipeline_fill_len(w->pipe),
            dbw_pipeline_inflight(w->pipe));
    drain(w, 0);
    rd_kafka_consumer_close(w->consumer);
    return atomic_load(&w->fatal) ? -1 : 0;
}

void dbw_writer_free(dbw_writer *w)
{
    if (w == NULL)
        return;
    drop_dead(w); /* messages are destroyed before their client */
    if (w->consumer != NULL)
        rd_kafka_destroy(w->consumer);
    if (w->producer != NULL) {
        rd_kafka_flush(w->producer, 5000);
        rd_kafka_destroy(w->producer);
    }
    dbw_pipeline_free(w->pipe);
    free(w->dead);
    free(w->dead_reason);
    free(w);
}
