#include "dbw_pipeline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_signal.h"

/* A batch: the messages added since it opened, until written and committed. */
typedef struct batch {
    dbw_row *rows;
    size_t nrows;
    size_t nmsgs;                             /* rows and dead letters */
    rd_kafka_topic_partition_list_t *offsets; /* next offset per partition of the batch */
    double start;                             /* first message added */
    double closed;                            /* closed for writing (commit latency) */
    double sent;                              /* its write sent */
    int conn;                                 /* the connection it was sent on */
} batch;

typedef struct series {
    svc_counter *written, *duplicates, *db_errors, *db_retries, *batches;
    svc_gauge *db_up;
    svc_histogram *batch_size, *db_seconds, *commit_seconds;
} series;

/* While the database runs the writes of the `inflight` batches (oldest first, one per
 * connection), `fill` takes the next messages. */
struct dbw_pipeline {
    dbw_pipeline_config cfg;
    dbw_db *db[DBW_PIPELINE_MAX_CONNECTIONS];
    int nconn;
    series m;
    batch b[DBW_PIPELINE_MAX_CONNECTIONS + 1];
    batch *fill;
    batch *inflight[DBW_PIPELINE_MAX_CONNECTIONS];
    int ninflight;
    atomic_int db_ok; /* the last database operation succeeded */
};


double dbw_time_left(double t0, double max_wait_s)
{
    if (max_wait_s <= 0)
        return 0;
    double left = max_wait_s - (svc_now_s() - t0);
    return left < 0.001 ? 0.001 : left;
}

static int stopping(const dbw_pipeline *p)
{
    return *p->cfg.stop != 0;
}

static long next_backoff(const dbw_pipeline *p, long backoff)
{
    return backoff * 2 > p->cfg.retry_max_ms ? p->cfg.retry_max_ms : backoff * 2;
}

static void set_db_state(dbw_pipeline *p, int up)
{
    atomic_store(&p->db_ok, up);
    svc_gauge_set(p->m.db_up, up);
}

static void register_series(series *m, svc_metrics *r)
{
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 50000};
    static const double secs[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    m->written = svc_metrics_counter(r, "db_writer_rows_written_total",
                                     "Rows inserted into transactions.", NULL);
    m->duplicates = svc_metrics_counter(
        r, "db_writer_duplicates_total",
        "Valid messages whose transaction_id was already stored (replays).", NULL);
    m->db_errors = svc_metrics_counter(r, "db_writer_db_errors_total",
                                       "Failed database operations (connect or write).", NULL);
    m->db_retries = svc_metrics_counter(r, "db_writer_db_retries_total",
                                        "Batch writes retried after a database error.", NULL);
    m->batches = svc_metrics_counter(r, "db_writer_batches_total", "Batches committed.", NULL);
    m->db_up = svc_metrics_gauge(r, "db_writer_db_up", "1 while the database answers.", NULL);
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

static int reset_batch(batch *b)
{
    b->nrows = 0;
    b->nmsgs = 0;
    if (b->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(b->offsets);
    b->offsets = rd_kafka_topic_partition_list_new(8);
    return b->offsets != NULL ? 0 : -1;
}

static void batch_free(batch *b)
{
    if (b->offsets != NULL)
        rd_kafka_topic_partition_list_destroy(b->offsets);
    b->offsets = NULL;
    free(b->rows);
    b->rows = NULL;
}

dbw_pipeline *dbw_pipeline_new(const dbw_pipeline_config *cfg, dbw_db *const *dbs, int ndbs,
                               svc_metrics *metrics, char *errstr, size_t errstr_size)
{
    if (ndbs < 1 || ndbs > DBW_PIPELINE_MAX_CONNECTIONS || cfg->batch_size < 1 ||
        cfg->retry_first_ms < 1 || cfg->retry_max_ms < cfg->retry_first_ms ||
        cfg->stop == NULL || cfg->commit == NULL) {
        snprintf(errstr, errstr_size, "pipeline: bad configuration (connections %d, batch "
                 "size %zu, retry %ld..%ld ms)", ndbs, cfg->batch_size, cfg->retry_first_ms,
                 cfg->retry_max_ms);
        return NULL;
    }
    dbw_pipeline *p = calloc(1, sizeof *p);
    if (p == NULL)
        goto oom;
    p->cfg = *cfg;
    p->nconn = ndbs;
    for (int c = 0; c < ndbs; c++)
        p->db[c] = dbs[c];
    for (int k = 0; k <= ndbs; k++) {
        p->b[k].rows = calloc(cfg->batch_size, sizeof p->b[k].rows[0]);
        if (p->b[k].rows == NULL || reset_batch(&p->b[k]) != 0)
            goto oom;
    }
    p->fill = &p->b[0];
    atomic_init(&p->db_ok, 0);
    register_series(&p->m, metrics);
    return p;
oom:
    snprintf(errstr, errstr_size, "pipeline: out of memory");
    dbw_pipeline_free(p);
    return NULL;
}

void dbw_pipeline_free(dbw_pipeline *p)
{
    if (p == NULL)
        return;
    for (int k = 0; k <= DBW_PIPELINE_MAX_CONNECTIONS; k++)
        batch_free(&p->b[k]);
    free(p);
}

int dbw_pipeline_db_ok(const dbw_pipeline *p)
{
    return atomic_load(&p->db_ok);
}

int dbw_pipeline_migrate(dbw_pipeline *p)
{
    char err[1024];
    long backoff = p->cfg.retry_first_ms;
    int applied = 0;
    for (;;) {
        if (dbw_db_migrate(p->db[0], &applied, err, sizeof err) == 0)
            break;
        svc_counter_add(p->m.db_errors, 1);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; retry in %ld ms", err, backoff);
        if (svc_sleep_ms(backoff, p->cfg.stop))
            return -1;
        backoff = next_backoff(p, backoff);
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "database: schema ready (%d migrations applied now)", applied);
    set_db_state(p, 1);
    return 0;
}

dbw_row *dbw_pipeline_slot(dbw_pipeline *p)
{
    return p->fill->nmsgs < p->cfg.batch_size ? &p->fill->rows[p->fill->nrows] : NULL;
}

int dbw_pipeline_add(dbw_pipeline *p, const char *topic, int32_t partition, int64_t offset,
                     int row)
{
    batch *b = p->fill;
    if (b->nmsgs >= p->cfg.batch_size)
        return -1;
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_find(b->offsets, topic, partition);
    if (tp == NULL)
        tp = rd_kafka_topic_partition_list_add(b->offsets, topic, partition);
    if (tp == NULL)
        return -1;
    if (offset + 1 > tp->offset)
        tp->offset = offset + 1;
    if (b->nmsgs == 0)
        b->start = svc_now_s();
    b->nmsgs++;
    if (row)
        b->nrows++;
    return 0;
}

size_t dbw_pipeline_fill_len(const dbw_pipeline *p)
{
    return p->fill->nmsgs;
}

size_t dbw_pipeline_fill_rows(const dbw_pipeline *p)
{
    return p->fill->nrows;
}

double dbw_pipeline_fill_start(const dbw_pipeline *p)
{
    return p->fill->start;
}

int dbw_pipeline_inflight(const dbw_pipeline *p)
{
    return p->ninflight;
}

/* Writes the batch's rows synchronously on connection `conn`, retrying with capped
 * exponential backoff until it succeeds, a stop is requested, or max_wait_s seconds passed
 * (<= 0: no limit). `failed` says an attempt already failed (so this one starts with a
 * pause). Returns 0, or -1 if it gave up. */
static int write_rows(dbw_pipeline *p, batch *b, int conn, double max_wait_s, int failed,
                      long *inserted)
{
    char err[1024];
    long backoff = p->cfg.retry_first_ms;
    double t0 = svc_now_s();
    int attempt = failed ? 1 : 0;
    *inserted = 0;
    for (;;) {
        if (attempt > 0) {
            if (svc_sleep_ms(backoff, p->cfg.stop) ||
                (max_wait_s > 0 && svc_now_s() - t0 > max_wait_s)) {
                SVC_LOG(SVC_LOG_WARN, NULL, "giving up an unwritten batch of %zu rows (%s); "
                        "its offsets are not committed, so it will be read again", b->nrows,
                        stopping(p) ? "stopping" : "partitions revoked");
                return -1;
            }
            backoff = next_backoff(p, backoff);
            svc_counter_add(p->m.db_retries, 1);
        }
        double t1 = svc_now_s();
        if (dbw_db_insert(p->db[conn], b->rows, b->nrows, inserted, err, sizeof err) == 0) {
            svc_histogram_observe(p->m.db_seconds, svc_now_s() - t1);
            set_db_state(p, 1);
            if (attempt > 0)
                SVC_LOG(SVC_LOG_INFO, NULL, "database back: batch of %zu written after %d "
                        "retries", b->nrows, attempt);
            return 0;
        }
        svc_counter_add(p->m.db_errors, 1);
        set_db_state(p, 0);
        SVC_LOG(attempt == 0 ? SVC_LOG_WARN : SVC_LOG_DEBUG, NULL,
                "%s; batch of %zu rows kept, retry in %ld ms", err, b->nrows, backoff);
        attempt++;
    }
}

/* The batch is stored: commit its offsets, count it, empty it. */
static void commit_batch(dbw_pipeline *p, batch *b, long inserted)
{
    p->cfg.commit(p->cfg.commit_opaque, b->offsets);
    svc_counter_add(p->m.written, (uint64_t)inserted);
    svc_counter_add(p->m.duplicates, (uint64_t)((long)b->nrows - inserted));
    svc_counter_add(p->m.batches, 1);
    svc_histogram_observe(p->m.batch_size, (double)b->nmsgs);
    svc_histogram_observe(p->m.commit_seconds, svc_now_s() - b->closed);
    SVC_LOG(SVC_LOG_DEBUG, NULL, "batch: %zu messages, %ld rows new, %zu duplicates, %zu dead",
            b->nmsgs, inserted, b->nrows - (size_t)inserted, b->nmsgs - b->nrows);
    reset_batch(b);
}

/* Gives up every batch in flight and the fill batch, uncommitted: their connections are
 * closed (a write that already committed is harmless, a re-read inserts nothing), and
 * everything after the last commit will be read again. */
static void abandon_all(dbw_pipeline *p)
{
    for (int i = 0; i < p->ninflight; i++) {
        dbw_db_disconnect(p->db[p->inflight[i]->conn]);
        reset_batch(p->inflight[i]);
    }
    p->ninflight = 0;
    reset_batch(p->fill);
}

void dbw_pipeline_drop_fill(dbw_pipeline *p)
{
    reset_batch(p->fill);
}

/* Waits for the oldest write in flight, retries it if it failed, commits its offsets. If
 * it has to be given up (stop requested, or max_wait_s passed), every later batch is
 * dropped too (abandon_all) and -1 returned. */
static int complete_oldest(dbw_pipeline *p, double max_wait_s)
{
    char err[1024];
    long inserted = 0;
    if (p->ninflight == 0)
        return 0;
    batch *b = p->inflight[0];
    p->ninflight--;
    memmove(&p->inflight[0], &p->inflight[1], (size_t)p->ninflight * sizeof p->inflight[0]);
    if (dbw_db_insert_finish(p->db[b->conn], &inserted, err, sizeof err) == 0) {
        svc_histogram_observe(p->m.db_seconds, svc_now_s() - b->sent);
        set_db_state(p, 1);
    } else {
        svc_counter_add(p->m.db_errors, 1);
        set_db_state(p, 0);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; batch of %zu rows kept, retrying", err, b->nrows);
        if (write_rows(p, b, b->conn, max_wait_s, 1, &inserted) != 0) {
            reset_batch(b);
            abandon_all(p);
            return -1;
        }
    }
    commit_batch(p, b, inserted);
    return 0;
}

int dbw_pipeline_complete_all(dbw_pipeline *p, double max_wait_s)
{
    double t0 = svc_now_s();
    while (p->ninflight > 0)
        if (complete_oldest(p, dbw_time_left(t0, max_wait_s)) != 0)
            return -1;
    return 0;
}

int dbw_pipeline_poll(dbw_pipeline *p)
{
    while (p->ninflight > 0 && dbw_db_insert_ready(p->db[p->inflight[0]->conn]))
        if (complete_oldest(p, 0) != 0)
            return -1;
    return 0;
}

/* A connection with no write in flight (there is one when ninflight < nconn). */
static int free_connection(const dbw_pipeline *p)
{
    for (int c = 0; c < p->nconn; c++) {
        int used = 0;
        for (int i = 0; i < p->ninflight; i++)
            used |= p->inflight[i]->conn == c;
        if (!used)
            return c;
    }
    return 0;
}

/* An empty batch that is neither in flight nor `except` (there are nconn + 1 batches). */
static batch *free_batch(dbw_pipeline *p, const batch *except)
{
    for (int k = 0; k <= p->nconn; k++) {
        batch *b = &p->b[k];
        int used = b == except;
        for (int i = 0; i < p->ninflight; i++)
            used |= p->inflight[i] == b;
        if (!used)
            return b;
    }
    return NULL; /* not reached */
}

int dbw_pipeline_submit(dbw_pipeline *p, double closed_at)
{
    char err[1024];
    long inserted = 0;
    batch *b = p->fill;
    if (b->nmsgs == 0)
        return 0;
    b->closed = closed_at;
    if (b->nrows == 0) {
        if (dbw_pipeline_complete_all(p, 0) != 0)
            return -1;
        commit_batch(p, b, 0);
        return 0;
    }
    if (p->ninflight == p->nconn && complete_oldest(p, 0) != 0)
        return -1;
    int conn = free_connection(p);
    if (dbw_db_insert_send(p->db[conn], b->rows, b->nrows, err, sizeof err) != 0) {
        svc_counter_add(p->m.db_errors, 1);
        set_db_state(p, 0);
        SVC_LOG(SVC_LOG_WARN, NULL, "%s; batch of %zu rows kept, retrying", err, b->nrows);
        /* Written synchronously, after every earlier batch, so commits stay in order. */
        if (dbw_pipeline_complete_all(p, 0) != 0)
            return -1;
        if (write_rows(p, b, conn, 0, 1, &inserted) != 0) {
            reset_batch(b);
            return -1;
        }
        commit_batch(p, b, inserted);
        return 0;
    }
    b->sent = svc_now_s();
    b->conn = conn;
    p->inflight[p->ninflight++] = b;
    p->fill = free_batch(p, b);
    return 0;
}

int dbw_pipeline_drain(dbw_pipeline *p, double max_wait_s)
{
    long inserted = 0;
    double t0 = svc_now_s();
    if (dbw_pipeline_complete_all(p, max_wait_s) != 0)
        return -1;
    batch *b = p->fill;
    if (b->nmsgs == 0)
        return 0;
    b->closed = svc_now_s();
    if (b->nrows > 0 &&
        write_rows(p, b, 0, dbw_time_left(t0, max_wait_s), 0, &inserted) != 0) {
        reset_batch(b);
        return -1;
    }
    commit_batch(p, b, inserted);
    return 0;
}
