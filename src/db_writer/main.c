/*
 * db_writer: stores the scores of the `scoring` topic in PostgreSQL (fraud_db, table
 * transactions). It consumes read_committed with auto-commit off, collects a batch, writes it
 * in one idempotent statement (dbw_db.h), and only then commits the batch's Kafka offsets,
 * synchronously. Invalid messages go to `scoring.dlq` (original key and payload, source
 * topic/partition/offset and reason in headers) and are flushed before their offsets are
 * committed. PostgreSQL down: the batch is retried with capped exponential backoff, nothing
 * is committed meanwhile, so nothing is lost; a replay inserts nothing twice.
 *
 * Up to DB_CONNECTIONS batches are written at once, each on its own connection, while the
 * next one fills; they are completed and their offsets committed strictly in order. The
 * consumer joins its group as static member INSTANCE_ID (default: the host name), so a
 * writer restarted after a crash gets its partitions back without waiting for its old
 * session to expire.
 *
 * Exit status: 0 after a clean shutdown, 1 after a fatal error, 2 for a bad configuration.
 */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dbw_db.h"
#include "fs_msg.h"
#include "fs_version.h"
#include "svc_config.h"
#include "svc_http.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_signal.h"

#define SERVICE "db_writer"
#define PASSWORD_MAX 1024
#define REVOKE_FLUSH_MAX_S 10.0
/* Longest wait for a batch's dead letters outside a rebalance before the batch is given up
 * and read again (the loop must go back to polling to serve rebalances). */
#define DLQ_FLUSH_MAX_S 10.0
#define MAX_CONNECTIONS 8
#define HOST_MAX 256

static const char *o_bootstrap, *o_topic, *o_dlq_topic, *o_group, *o_database_url,
    *o_password_file, *o_log_level, *o_metrics_addr, *o_instance;
static long o_batch_size, o_batch_timeout, o_retry_max, o_metrics_port, o_session_timeout,
    o_connections;
static int o_static;

static const svc_option options[] = {
    {"KAFKA_BOOTSTRAP_SERVERS", "--bootstrap-servers", SVC_OPT_STRING, "localhost:9092", 0, -1,
     "Kafka brokers (host:port,...)", &o_bootstrap},
    {"SCORING_TOPIC", "--scoring-topic", SVC_OPT_STRING, "scoring", 0, -1,
     "topic of the scores to store", &o_topic},
    {"DLQ_TOPIC", "--dlq-topic", SVC_OPT_STRING, "scoring.dlq", 0, -1,
     "dead-letter topic for messages that cannot be stored", &o_dlq_topic},
    {"GROUP_ID", "--group-id", SVC_OPT_STRING, "db_writer", 0, -1,
     "consumer group shared by all instances", &o_group},
    {"INSTANCE_ID", "--instance-id", SVC_OPT_STRING, NULL, 0, -1,
     "name of this instance, unique in the group, stable across restarts (unset: the host "
     "name)",
     &o_instance},
    {"STATIC_MEMBERSHIP", "--static-membership", SVC_OPT_BOOL, "true", 0, -1,
     "join the group as static member INSTANCE_ID (group.instance.id) so a restart resumes "
     "at once",
     &o_static},
    {"SESSION_TIMEOUT_MS", "--session-timeout-ms", SVC_OPT_INT, "6000", 1000, 3600000,
     "Kafka session.timeout.ms: a writer gone this long loses its partitions (the broker "
     "accepts 6000..1800000 by default)",
     &o_session_timeout},
    {"DATABASE_URL", "--database-url", SVC_OPT_STRING, "dbname=fraud_db", 0, -1,
     "libpq connection string or URI (PGHOST, PGPORT, PGUSER, PGPASSWORD also apply)",
     &o_database_url},
    {"PGPASSWORD_FILE", "--password-file", SVC_OPT_STRING, NULL, 0, -1,
     "file holding the database password (overrides PGPASSWORD)", &o_password_file},
    {"BATCH_SIZE", "--batch-size", SVC_OPT_INT, "2000", 1, 100000,
     "rows per database transaction at most", &o_batch_size},
    {"BATCH_TIMEOUT_MS", "--batch-timeout-ms", SVC_OPT_INT, "50", 1, 60000,
     "longest wait to fill a batch after its first message", &o_batch_timeout},
    {"DB_CONNECTIONS", "--db-connections", SVC_OPT_INT, "2", 1, MAX_CONNECTIONS,
     "database connections writing batches at the same time (offsets committed in order)",
     &o_connections},
    {"DB_RETRY_MAX_MS", "--db-retry-max-ms", SVC_OPT_INT, "5000", 10, 600000,
     "cap of the backoff between database retries", &o_retry_max},
    {"LOG_LEVEL", "--log-level", SVC_OPT_STRING, "info", 0, -1, "debug, info, warn or error",
     &o_log_level},
    {"METRICS_ADDR", "--metrics-addr", SVC_OPT_STRING, "127.0.0.1", 0, -1,
     "address of the /healthz /readyz /metrics endpoint", &o_metrics_addr},
    {"METRICS_PORT", "--metrics-port", SVC_OPT_INT, "8002", 0, 65535,
     "port of the /healthz /readyz /metrics endpoint (0: any free port)", &o_metrics_port},
};

typedef struct series {
    svc_counter *consumed, *written, *duplicates, *dead_lettered, *db_errors, *db_retries,
        *commit_errors, *batches, *consumer_errors, *rebalances;
    svc_gauge *lag, *db_up, *assigned;
    svc_histogram *batch_size, *db_seconds, *commit_seconds;
} series;

/* A batch: the messages polled since it opened, until written and committed. */
typedef struct batch {
    fs_scoring_msg *rows;
    size_t nrows;
    rd_kafka_message_t **dead;                /* dead-lettered messages kept until commit */
    size_t ndead;
    rd_kafka_topic_partition_list_t *offsets; /* next offset per partition of the batch */
    double start;                             /* first message polled */
    double closed;                            /* closed for writing (commit latency) */
    double sent;                              /* its INSERT sent */
    int conn;                                 /* the connection it was sent on */
} batch;

/* While the database runs the INSERTs of the `inflight` batches (oldest first, one per
 * connection), `fill` takes the next messages. Order is kept: a batch's offsets are
 * committed only after its own INSERT and every earlier batch's were committed, and if one
 * is given up, every later batch (in flight or filling) is dropped uncommitted with it. */
typedef struct writer {
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters */
    dbw_db *db[MAX_CONNECTIONS];
    int nconn;
    series m;
    batch b[MAX_CONNECTIONS + 1];
    batch *fill;
    batch *inflight[MAX_CONNECTIONS];
    int ninflight;
    atomic_int migrated;
    atomic_int kafka_up;
    atomic_int db_ok; /* the last database operation succeeded */
    atomic_int dlq_failures;
    /* A batch was given up because its dead letters were not acknowledged in time; cleared
     * only when a batch's dead letters are acknowledged or the partitions are revoked. */
    atomic_int dlq_blocked;
    atomic_int fatal; /* librdkafka reported a fatal error (e.g. fenced instance id) */
} writer;

static writer W;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What is left of a max_wait_s budget started at t0: at least 1 ms once it is spent (a
 * bounded wait never turns into "no limit"), or 0 (no limit) if max_wait_s <= 0. */
static double time_left(double t0, double max_wait_s)
{
    if (max_wait_s <= 0)
        return 0;
    double left = max_wait_s - (now_s() - t0);
    return left < 0.001 ? 0.001 : left;
}

/* The next pause of a capped exponential backoff (DB_RETRY_MAX_MS). */
static long next_backoff(long backoff)
{
    return backoff * 2 > o_retry_max ? o_retry_max : backoff * 2;
}

static int ready(void *arg, char *reason, size_t reason_size)
{
    writer *w = arg;
    if (!atomic_load(&w->migrated)) {
        snprintf(reason, reason_size, "database not connected or migrations not applied");
        return 0;
    }
    if (!atomic_load(&w->db_ok)) {
        snprintf(reason, reason_size, "database unreachable (retrying)");
        return 0;
    }
    if (!atomic_load(&w->kafka_up)) {
        snprintf(reason, reason_size, "kafka unreachable");
        return 0;
    }
    if (atomic_load(&w->dlq_blocked)) {
        snprintf(reason, reason_size, "dead letters not acknowledged by %s (retrying; nothing "
                 "after them is committed)", o_dlq_topic);
        return 0;
    }
    return 1;
}

static void register_series(series *m, svc_metrics *r)
{
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000};
    static const double secs[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    m->consumed = svc_metrics_counter(r, "db_writer_messages_consumed_total",
                                      "Messages read from the scoring topic.", NULL);
    m->written = svc_metrics_counter(r, "db_writer_rows_written_total",
                                     "Rows inserted into transactions.", NULL);
    m->duplicates = svc_metrics_counter(
        r, "db_writer_duplicates_total",
        "Valid messages whose transaction_id was already stored (replays).", NULL);
    m->dead_lettered = svc_metrics_counter(r, "db_writer_messages_dead_lettered_total",
                                           "Invalid messages sent to the DLQ topic.", NULL);
    m->db_errors = svc_metrics_counter(r, "db_writer_db_errors_total",
                                       "Failed database operations (connect or write).", NULL);
    m->db_retries = svc_metrics_counter(r, "db_writer_db_retries_total",
                                        "Batch writes retried after a database error.", NULL);
    m->commit_errors = svc_metrics_counter(r, "db_writer_kafka_commit_errors_total",
                                           "Offset commits that failed (the batch will be "
                                           "re-read and found already stored).",
                                           NULL);
    m->batches = svc_metrics_counter(r, "db_writer_batches_total", "Batches committed.", NULL);
    m->consumer_errors = svc_metrics_counter(r, "db_writer_consumer_errors_total",
                                             "Errors reported by the Kafka consumer.", NULL);
    m->rebalances = svc_metrics_counter(r, "db_writer_rebalances_total",
                                        "Partition assignments and revocations.", NULL);
    m->lag = svc_metrics_gauge(r, "db_writer_consumer_lag",
                               "Messages behind the high watermark over the assignment.", NULL);
    m->db_up = svc_metrics_gauge(r, "db_writer_db_up", "1 while the database answers.", NULL);
    m->assigned = svc_metrics_gauge(r, "db_writer_assigned_partitions",
                                    "Partitions of the scoring topic assigned here.", NULL);
    m->batch_size = svc_metrics_histogram(r, "db_writer_batch_size", "Messages per batch.",
                                          NULL, sizes, sizeof sizes / sizeof sizes[0]);
    m->db_seconds = svc_metrics_histogram(r, "db_writer_db_write_seconds",
                                          "Time to write one batch (successful attempt).",
                                          NULL, secs, sizeof secs / sizeof secs[0]);
    m->commit_seconds = svc_metrics_histogram(
        r, "db_writer_commit_seconds",
        "Time from the batch being full to its Kafka offsets committed (DLQ flush, database "
        "write with retries, offset commit).",
        NULL, secs, sizeof secs / sizeof secs[0]);
}

/* Messages in the batch, valid (rows) or not (dead letters). */
static size_t batch_len(const batch *b)
{
    return b->nrows + b->ndead;
}

static void reset_batch(batch *b)
{
    for (size_t i = 0; i < b->ndead; i++)
        rd_kafka_message_destroy(b->dead[i]);
    b->ndead = 0;
    b->nrows = 0;
    if (b->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(b->offsets);
    b->offsets = rd_kafka_topic_partition_list_new(8);
}

static int batch_init(batch *b)
{
    b->rows = calloc((size_t)o_batch_size, sizeof b->rows[0]);
    b->dead = calloc((size_t)o_batch_size, sizeof b->dead[0]);
    reset_batch(b);
    return b->rows != NULL && b->dead != NULL && b->offsets != NULL ? 0 : -1;
}

/* Frees the batch. Its dead-letter messages must be destroyed before (main does, before it
 * destroys their client). */
static void batch_free(batch *b)
{
    if (b->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(b->offsets);
    b->offsets = NULL;
    free(b->rows);
    free(b->dead);
    b->rows = NULL;
    b->dead = NULL;
}

/* Dead letters of the batch are delivered (idempotent producer) before their offsets are
 * committed; a failed delivery re-produces them all (the DLQ is at-least-once). Returns 0,
 * or -1 if a stop was requested first or, with max_wait_s > 0 (before a revoke), if they
 * were not all acknowledged within that many seconds: the caller then drops the batch
 * uncommitted, so the partitions' next owner reads (and dead-letters) them again. */
static int flush_dead_letters(writer *w, batch *b, double max_wait_s)
{
    char err[512];
    long backoff = 100;
    double t0 = now_s();
    if (b->ndead == 0)
        return 0;
    for (;;) {
        while (rd_kafka_outq_len(w->producer) > 0) {
            int ms = 1000;
            if (max_wait_s > 0) {
                double left = max_wait_s - (now_s() - t0);
                if (left <= 0)
                    goto give_up;
                if (left * 1e3 < ms)
                    ms = (int)(left * 1e3) + 1;
            }
            rd_kafka_flush(w->producer, ms);
            if (svc_stop_requested() && rd_kafka_outq_len(w->producer) > 0)
                return -1;
        }
        if (atomic_exchange(&w->dlq_failures, 0) == 0) {
            atomic_store(&w->dlq_blocked, 0);
            return 0;
        }
        SVC_LOG(SVC_LOG_WARN, NULL, "dead-letter delivery failed; re-producing %zu messages",
                b->ndead);
        if (max_wait_s > 0 && now_s() - t0 + (double)backoff / 1e3 > max_wait_s)
            goto give_up;
        if (svc_sleep_ms(backoff, &svc_stop_flag))
            return -1;
        backoff = next_backoff(backoff);
        for (size_t i = 0; i < b->ndead; i++) {
            const char *reason = "invalid message (re-sent)";
            if (svc_kafka_dlq_produce(w->producer, o_dlq_topic, b->dead[i], reason, NULL, err,
                                      sizeof err) != 0) {
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
            "reads it again)", b->ndead, o_dlq_topic, max_wait_s, batch_len(b));
    return -1;
}

static void set_db_state(writer *w, int up)
{
    atomic_store(&w->db_ok, up);
    svc_gauge_set(w->m.db_up, up);
}

/* Writes the batch's rows synchronously on connection `conn`, retrying with capped
 * exponential backoff until it succeeds, a stop is requested, or max_wait_s seconds passed
 * (<= 0: no limit). `failed` says an attempt already failed (so this one starts with a
 * pause). Returns 0, or -1 if it gave up. */
static int write_rows(writer *w, batch *b, int conn, double max_wait_s, int failed,
                      long *inserted)
{
    char err[1024];
    long backoff = 100;
    double t0 = now_s();
    int attempt = failed ? 1 : 0;
    *inserted = 0;
    for (;;) {
        if (attempt > 0) {
            if (svc_sleep_ms(backoff, &svc_stop_flag) || (max_wait_s > 0 && now_s() - t0 > max_wait_s)) {
                SVC_LOG(SVC_LOG_WARN, NULL, "giving up an unwritten batch of %zu rows (%s); "
                        "its offsets are not committed, so it will be read again", b->nrows,
                        svc_stop_requested() ? "stopping" : "partitions revoked");
                return -1;
            }
            backoff = next_backoff(backoff);
            svc_counter_add(w->m.db_retries, 1);
        }
        double t1 = now_s();
        if (dbw_db_insert(w->db[conn], b->rows, b->nrows, inserted, err, sizeof err) == 0) {
            svc_histogram_observe(w->m.db_seconds, now_s() - t1);
            set_db_state(w, 1);
            if (attempt > 0)
                SVC_LOG(SVC_LOG_INFO, NULL, "database back: batch of %zu written after %d "
                        "retries", b->nrows, attempt);
            return 0;
        }
        svc_counter_add(w->m.db_errors, 1);
        set_db_state(w, 0);
        SVC_LOG(attempt == 0 ? SVC_LOG_WARN : SVC_LOG_DEBUG, NULL,
                "%s; batch of %zu rows kept, retry in %ld ms", err, b->nrows, backoff);
        attempt++;
    }
}

/* The batch is stored: commit its offsets (synchronously), count it, empty it. */
static void commit_batch(writer *w, batch *b, long inserted)
{
    rd_kafka_resp_err_t cerr = rd_kafka_commit(w->consumer, b->offsets, 0);
    if (cerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        svc_counter_add(w->m.commit_errors, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "offset commit of %d partitions failed: %s (the batch is "
                "stored; a re-read will find it there)", b->offsets->cnt,
                rd_kafka_err2str(cerr));
    } else {
        atomic_store(&w->kafka_up, 1);
    }
    svc_counter_add(w->m.written, (uint64_t)inserted);
    svc_counter_add(w->m.duplicates, (uint64_t)((long)b->nrows - inserted));
    svc_counter_add(w->m.batches, 1);
    svc_histogram_observe(w->m.batch_size, (double)batch_len(b));
    svc_histogram_observe(w->m.commit_seconds, now_s() - b->closed);
    SVC_LOG(SVC_LOG_DEBUG, NULL, "batch: %zu messages, %ld rows new, %zu duplicates, %zu dead",
            batch_len(b), inserted, b->nrows - (size_t)inserted, b->ndead);
    reset_batch(b);
}

/* Gives up every batch in flight and the fill batch, uncommitted: their connections are
 * closed (an INSERT that already committed is harmless, a re-read inserts nothing), and
 * everything after the last commit will be read again. */
static void abandon_all(writer *w)
{
    for (int i = 0; i < w->ninflight; i++) {
        dbw_db_disconnect(w->db[w->inflight[i]->conn]);
        reset_batch(w->inflight[i]);
    }
    w->ninflight = 0;
    reset_batch(w->fill);
}

/* Waits for the oldest INSERT in flight, retries it if it failed, commits its offsets. If
 * it has to be given up (stop requested, or max_wait_s passed), every later batch is
 * dropped too (abandon_all) and -1 returned. */
static int complete_oldest(writer *w, double max_wait_s)
{
    char err[1024];
    long inserted = 0;
    if (w->ninflight == 0)
        return 0;
    batch *b = w->inflight[0];
    w->ninflight--;
    memmove(&w->inflight[0], &w->inflight[1], (size_t)w->ninflight * sizeof w->inflight[0]);
    if (dbw_db_insert_finish(w->db[b->conn], &inserted, err, sizeof err) == 0) {
        svc_histogram_observe(w->m.db_seconds, now_s() - b->sent);
        set_db_state(w, 1);
    } else {
        svc_counter_add(w->m.db_errors, 1);
        set_db_state(w, 0);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; batch of %zu rows kept, retrying", err, b->nrows);
        if (write_rows(w, b, b->conn, max_wait_s, 1, &inserted) != 0) {
            reset_batch(b);
            abandon_all(w);
            return -1;
        }
    }
    commit_batch(w, b, inserted);
    return 0;
}

/* Completes every batch in flight, in order, within max_wait_s overall if > 0. */
static int complete_all(writer *w, double max_wait_s)
{
    double t0 = now_s();
    while (w->ninflight > 0)
        if (complete_oldest(w, time_left(t0, max_wait_s)) != 0)
            return -1;
    return 0;
}

/* A connection with no INSERT in flight (there is one when ninflight < nconn). */
static int free_connection(const writer *w)
{
    for (int c = 0; c < w->nconn; c++) {
        int used = 0;
        for (int i = 0; i < w->ninflight; i++)
            used |= w->inflight[i]->conn == c;
        if (!used)
            return c;
    }
    return 0;
}

/* An empty batch that is neither in flight nor `except` (there are nconn + 1 batches). */
static batch *free_batch(writer *w, const batch *except)
{
    for (int k = 0; k <= w->nconn; k++) {
        batch *b = &w->b[k];
        int used = b == except;
        for (int i = 0; i < w->ninflight; i++)
            used |= w->inflight[i] == b;
        if (!used)
            return b;
    }
    return NULL; /* not reached */
}

/* Moves the consumer back to the group's committed offsets on every assigned partition
 * (the beginning where nothing is committed, as auto.offset.reset=earliest), so whatever
 * was consumed after them is read again. Returns 0, or -1 if that could not be done. */
static int rewind_to_committed(writer *w)
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

/* A batch whose dead letters were not all acknowledged is being dropped uncommitted (it
 * will be read and dead-lettered again, here or by its partitions' next owner): the dead
 * letters still queued in the producer are purged, their purge reports served and the
 * failure count reset, so they neither hold a later batch's flush nor count against it,
 * nor reach the DLQ late as extra copies (for partitions perhaps no longer owned). One in a
 * request already sent is not purged: it may still reach the DLQ (at least once). */
static void drop_queued_dead_letters(writer *w)
{
    rd_kafka_purge(w->producer, RD_KAFKA_PURGE_F_QUEUE);
    rd_kafka_poll(w->producer, 0); /* their (purged) delivery reports */
    atomic_store(&w->dlq_failures, 0);
}

/* The fill batch's dead letters were not acknowledged within DLQ_FLUSH_MAX_S (the DLQ topic
 * refuses them or cannot be reached). Waiting longer would stop the loop from polling, and
 * so hold any rebalance of the group: instead the INSERTs in flight (earlier batches) are
 * completed and committed, the fill batch is dropped uncommitted, dead letters still queued
 * are purged, and the consumer goes back to the committed offsets, so the batch is read and
 * its dead letters produced again on the next round (at least once in the DLQ, never
 * committed before acknowledged). Returns 0, or -1 (stop requested, or fatal: a rewind that
 * failed would let a later commit skip the dropped messages, so the writer exits 1 and its
 * restart resumes from the committed offsets). */
static int give_up_and_rewind(writer *w)
{
    batch *b = w->fill;
    /* Set first: committing the INSERTs in flight (earlier batches) must not clear it, only
     * dead letters acknowledged or a revoke do. */
    atomic_store(&w->dlq_blocked, 1);
    if (complete_all(w, REVOKE_FLUSH_MAX_S) == 0)
        reset_batch(b); /* else abandon_all already dropped it with the rest */
    drop_queued_dead_letters(w);
    if (svc_stop_requested())
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

/* Closes the fill batch: its dead letters delivered, a connection freed (the oldest INSERT
 * completed and committed if all are busy), then its own INSERT sent (or, with no valid
 * row, its offsets committed once everything before it is). Returns 0, or -1 if it gave up
 * (stop requested; nothing more committed). */
static int submit_fill(writer *w)
{
    char err[1024];
    long inserted = 0;
    batch *b = w->fill;
    if (batch_len(b) == 0)
        return 0;
    b->closed = now_s();
    if (flush_dead_letters(w, b, DLQ_FLUSH_MAX_S) != 0)
        return svc_stop_requested() ? -1 : give_up_and_rewind(w);
    if (b->nrows == 0) {
        if (complete_all(w, 0) != 0)
            return -1;
        commit_batch(w, b, 0);
        return 0;
    }
    if (w->ninflight == w->nconn && complete_oldest(w, 0) != 0)
        return -1;
    int conn = free_connection(w);
    if (dbw_db_insert_send(w->db[conn], b->rows, b->nrows, err, sizeof err) != 0) {
        svc_counter_add(w->m.db_errors, 1);
        set_db_state(w, 0);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; batch of %zu rows kept, retrying", err, b->nrows);
        /* Written synchronously, after every earlier batch, so commits stay in order. */
        if (complete_all(w, 0) != 0)
            return -1;
        if (write_rows(w, b, conn, 0, 1, &inserted) != 0) {
            reset_batch(b);
            return -1;
        }
        commit_batch(w, b, inserted);
        return 0;
    }
    b->sent = now_s();
    b->conn = conn;
    w->inflight[w->ninflight++] = b;
    w->fill = free_batch(w, b);
    return 0;
}

/* Writes and commits everything polled so far (before a revoke, at shutdown), within
 * max_wait_s if > 0. Returns 0, or -1 with everything uncommitted dropped. */
static int drain(writer *w, double max_wait_s)
{
    long inserted = 0;
    double t0 = now_s();
    if (complete_all(w, max_wait_s) != 0)
        return -1;
    batch *b = w->fill;
    if (batch_len(b) == 0)
        return 0;
    b->closed = now_s();
    /* Both steps share what is left of max_wait_s. */
    if (flush_dead_letters(w, b, time_left(t0, max_wait_s)) != 0) {
        reset_batch(b);
        drop_queued_dead_letters(w);
        return -1;
    }
    if (b->nrows > 0 && write_rows(w, b, 0, time_left(t0, max_wait_s), 0, &inserted) != 0) {
        reset_batch(b);
        return -1;
    }
    commit_batch(w, b, inserted);
    return 0;
}

static void add_offset(batch *b, const rd_kafka_message_t *msg)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_find(b->offsets, topic, msg->partition);
    if (p == NULL)
        p = rd_kafka_topic_partition_list_add(b->offsets, topic, msg->partition);
    if (msg->offset + 1 > p->offset)
        p->offset = msg->offset + 1;
}

/* A fatal librdkafka error (e.g. FENCED_INSTANCE_ID: another writer joined the group with
 * this INSTANCE_ID): the client cannot go on, so the writer stops with status 1 (what it
 * has not committed is read again by the group). Reported once. */
static void on_fatal(writer *w, rd_kafka_t *rk)
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

/* Takes ownership of msg. */
static void handle_message(writer *w, rd_kafka_message_t *msg)
{
    char err[512];
    batch *b = w->fill;
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
        return;
    }
    atomic_store(&w->kafka_up, 1);
    if (batch_len(b) == 0)
        b->start = now_s();
    svc_counter_add(w->m.consumed, 1);
    add_offset(b, msg);
    const char *payload = msg->payload != NULL ? msg->payload : "";
    if (fs_msg_parse_scoring(payload, msg->len, &b->rows[b->nrows], err, sizeof err) == 0) {
        b->nrows++;
        rd_kafka_message_destroy(msg);
        return;
    }
    char reason[600];
    snprintf(reason, sizeof reason, "invalid scoring message: %s", err);
    if (svc_kafka_dlq_produce(w->producer, o_dlq_topic, msg, reason, NULL, err, sizeof err) !=
        0) {
        /* Queue full or similar: flush_dead_letters re-produces on failure; count it so. */
        SVC_LOG(SVC_LOG_ERROR, NULL, "dead letter: %s", err);
        atomic_fetch_add(&w->dlq_failures, 1);
    }
    svc_counter_add(w->m.dead_lettered, 1);
    b->dead[b->ndead++] = msg;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    writer *w = opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_fetch_add(&w->dlq_failures, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "dead letter not delivered: %s", rd_kafka_err2str(msg->err));
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    writer *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&w->kafka_up, 0);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        on_fatal(w, rk);
        return;
    }
    SVC_LOG(SVC_LOG_WARN, NULL, "librdkafka %s: %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Eager rebalance: before partitions are taken away, the open batch's dead letters are
 * delivered, its rows written and its offsets committed, all within REVOKE_FLUSH_MAX_S (or,
 * if that cannot be done, it is dropped uncommitted so the next owner re-reads it): neither
 * a database outage nor a dead-letter topic that refuses or cannot be reached holds the
 * group's rebalance. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    writer *w = opaque;
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

static int create_clients(writer *w, char *errstr, size_t errstr_size)
{
    int rc = -1;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_conf_t *conf = svc_kafka_conf_new("db_writer", o_bootstrap, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    static const char *const consumer_required[][2] = {
        {"enable.auto.commit", "false"},     {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"}, {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},   {"max.poll.interval.ms", "600000"}};
    for (size_t i = 0; i < sizeof consumer_required / sizeof consumer_required[0]; i++)
        if (svc_kafka_conf_set(conf, consumer_required[i][0], consumer_required[i][1], errstr,
                               errstr_size) != 0)
            goto out;
    if (svc_kafka_conf_set(conf, "group.id", o_group, errstr, errstr_size) != 0)
        goto out;
    /* Static membership: a restarted writer (same INSTANCE_ID) takes its old place, so the
     * group does not wait for the dead session; a writer gone longer than the session
     * timeout loses its partitions to the others. */
    char session[24], heartbeat[24];
    snprintf(session, sizeof session, "%ld", o_session_timeout);
    long hb = o_session_timeout / 6 < 3000 ? o_session_timeout / 6 : 3000;
    snprintf(heartbeat, sizeof heartbeat, "%ld", hb);
    if (svc_kafka_conf_set(conf, "session.timeout.ms", session, errstr, errstr_size) != 0)
        goto out;
    if (getenv("KAFKA_HEARTBEAT_INTERVAL_MS") == NULL &&
        svc_kafka_conf_set(conf, "heartbeat.interval.ms", heartbeat, errstr, errstr_size) != 0)
        goto out;
    if (o_static &&
        svc_kafka_conf_set(conf, "group.instance.id", o_instance, errstr, errstr_size) != 0)
        goto out;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (w->consumer == NULL)
        goto out;
    conf = NULL; /* owned by the consumer now */
    rd_kafka_poll_set_consumer(w->consumer);

    conf = svc_kafka_conf_new("db_writer-dlq", o_bootstrap, errstr, errstr_size);
    if (conf == NULL)
        goto out;
    if (svc_kafka_conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
        svc_kafka_conf_set(conf, "linger.ms", "5", errstr, errstr_size) != 0)
        goto out;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    w->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (w->producer == NULL)
        goto out;
    conf = NULL;

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "subscribe %s: %s", o_topic, rd_kafka_err2str(err));
        goto out;
    }
    atomic_store(&w->kafka_up, 1);
    rc = 0;
out:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (topics != NULL)
        rd_kafka_topic_partition_list_destroy(topics);
    return rc;
}

/* Connects and migrates, retrying with backoff until it works or a stop is requested. */
static int prepare_database(writer *w)
{
    char err[1024];
    long backoff = 100;
    int applied = 0;
    for (;;) {
        if (dbw_db_migrate(w->db[0], &applied, err, sizeof err) == 0)
            break;
        svc_counter_add(w->m.db_errors, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; retry in %ld ms", err, backoff);
        if (svc_sleep_ms(backoff, &svc_stop_flag))
            return -1;
        backoff = next_backoff(backoff);
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "database: schema ready (%d migrations applied now)", applied);
    set_db_state(w, 1);
    atomic_store(&w->migrated, 1);
    return 0;
}

static int run(writer *w)
{
    double last_lag = 0;
    const double batch_timeout = (double)o_batch_timeout / 1e3;
    while (!svc_stop_requested() && !atomic_load(&w->fatal)) {
        int timeout = 500;
        if (batch_len(w->fill) > 0) {
            double left = w->fill->start + batch_timeout - now_s();
            timeout = left <= 0 ? 0 : (int)(left * 1e3) + 1;
        }
        if (w->ninflight > 0 && timeout > 5)
            timeout = 5; /* come back soon to commit the INSERTs in flight */
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(w->consumer, timeout);
        if (msg != NULL)
            handle_message(w, msg);
        /* Commit the oldest INSERTs in flight as soon as they are done (checked when idle
         * and every 256 messages; the check is one non-blocking read). */
        int gave_up = 0;
        while (!gave_up && w->ninflight > 0 &&
               (msg == NULL || (batch_len(w->fill) & 255) == 0) &&
               dbw_db_insert_ready(w->db[w->inflight[0]->conn]))
            gave_up = complete_oldest(w, 0) != 0;
        if (gave_up)
            break; /* stop requested during a database outage */
        double t = now_s();
        if (batch_len(w->fill) >= (size_t)o_batch_size ||
            (batch_len(w->fill) > 0 && t >= w->fill->start + batch_timeout)) {
            if (submit_fill(w) != 0)
                break;
        }
        if (t - last_lag >= 1.0) {
            last_lag = t;
            int64_t lag = svc_kafka_consumer_lag(w->consumer);
            if (lag >= 0)
                svc_gauge_set(w->m.lag, (double)lag);
            /* After "all brokers down", readiness comes back with the first answer, even
             * when no message flows. */
            const struct rd_kafka_metadata *md = NULL;
            if (!atomic_load(&w->kafka_up) &&
                rd_kafka_metadata(w->consumer, 0, NULL, &md, 500) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
                atomic_store(&w->kafka_up, 1);
                rd_kafka_metadata_destroy(md);
            }
        }
    }
    size_t open = batch_len(w->fill);
    for (int i = 0; i < w->ninflight; i++)
        open += batch_len(w->inflight[i]);
    SVC_LOG(SVC_LOG_INFO, NULL, "stopping: writing the open batches (%zu messages)", open);
    drain(w, 0);
    return atomic_load(&w->fatal) ? -1 : 0;
}

int main(int argc, char **argv)
{
    char err[1024];
    char password[PASSWORD_MAX];
    char host[HOST_MAX];
    int status = 1;
    svc_metrics *metrics = NULL;
    svc_http *http = NULL;
    writer *w = &W;

    int prc = svc_config_start(SERVICE, "stores Kafka scores in PostgreSQL, exactly once",
                               options, sizeof options / sizeof options[0], argc, argv,
                               &o_log_level);
    if (prc != SVC_CONFIG_OK)
        return prc == SVC_CONFIG_EXIT ? 0 : 2;
    const char *pw = NULL;
    if (o_password_file != NULL) {
        if (svc_config_read_secret("PGPASSWORD_FILE", o_password_file, password,
                                   sizeof password, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", SERVICE, err);
            return 2;
        }
        pw = password;
    }
    o_instance = svc_instance_name(o_instance, host, sizeof host);
    svc_config_log(options, sizeof options / sizeof options[0]);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s %s starting, instance %s (group.instance.id %s), %ld "
            "database connections", SERVICE, fs_version(), o_instance,
            o_static ? o_instance : "none: dynamic member", o_connections);

    atomic_init(&w->migrated, 0);
    atomic_init(&w->kafka_up, 0);
    atomic_init(&w->db_ok, 0);
    atomic_init(&w->dlq_failures, 0);
    atomic_init(&w->dlq_blocked, 0);
    atomic_init(&w->fatal, 0);
    w->nconn = (int)o_connections;
    if (svc_signal_install() != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot install signal handlers");
        goto out;
    }
    w->fill = &w->b[0];
    int batches_ok = 1;
    for (int k = 0; k <= w->nconn; k++)
        batches_ok &= batch_init(&w->b[k]) == 0;
    metrics = svc_metrics_new();
    if (!batches_ok || metrics == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "out of memory");
        goto out;
    }
    register_series(&w->m, metrics);
    int dbs_ok = 1;
    for (int c = 0; c < w->nconn && dbs_ok; c++) {
        w->db[c] = dbw_db_new(o_database_url, pw, err, sizeof err);
        dbs_ok = w->db[c] != NULL;
    }
    memset(password, 0, sizeof password);
    if (!dbs_ok) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    http = svc_http_start(o_metrics_addr, (int)o_metrics_port, metrics, ready, w, err,
                          sizeof err);
    if (http == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "metrics endpoint: %s", err);
        goto out;
    }
    if (prepare_database(w) != 0) {
        status = 0; /* stopped while waiting for the database */
        goto out;
    }
    if (create_clients(w, err, sizeof err) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "kafka: %s", err);
        goto out;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "consuming %s as group %s (read_committed), batch %ld / %ld ms",
            o_topic, o_group, o_batch_size, o_batch_timeout);
    status = run(w) == 0 ? 0 : 1;
out:
    /* Messages must be destroyed before their client. */
    for (int i = 0; i <= MAX_CONNECTIONS; i++) {
        for (size_t k = 0; k < w->b[i].ndead; k++)
            rd_kafka_message_destroy(w->b[i].dead[k]);
        w->b[i].ndead = 0;
    }
    if (w->consumer != NULL) {
        rd_kafka_consumer_close(w->consumer);
        rd_kafka_destroy(w->consumer);
    }
    if (w->producer != NULL) {
        rd_kafka_flush(w->producer, 5000);
        rd_kafka_destroy(w->producer);
    }
    svc_http_stop(http);
    for (int c = 0; c < MAX_CONNECTIONS; c++)
        dbw_db_free(w->db[c]);
    svc_metrics_free(metrics);
    for (int k = 0; k <= MAX_CONNECTIONS; k++)
        batch_free(&w->b[k]);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s stopped (status %d)", SERVICE, status);
    return status;
}
