/*
 * dbw_pipeline: db_writer's batch logic, without Kafka. Consumed messages are added to the
 * fill batch (valid ones with their row, dead letters as offsets only); a closed batch is
 * written on one of the database connections (dbw_db.h) while the next one fills, up to one
 * batch in flight per connection. The rules it keeps:
 *  - commit after durable: a batch's offsets are handed to the commit callback only after
 *    its rows are durable (the write finished successfully), never after a failed write;
 *  - order: batches are completed and committed strictly in the order they were closed; a
 *    batch that is given up (stop requested, or a time limit passed while the database is
 *    down) takes every later batch with it, uncommitted, so the consumer re-reads them all;
 *  - a failed write is retried on its connection with capped exponential backoff, so a
 *    replay writes each row once (the database ignores rows already stored).
 *
 * The offsets committed are, per partition, the offset after the batch's last message.
 *
 * Threads: one thread calls everything but dbw_pipeline_db_ok, which any thread may call.
 * Ownership: the connections passed to dbw_pipeline_new are borrowed and must outlive the
 * pipeline; strings in the config likewise. The offsets list passed to the commit callback
 * is the pipeline's and valid only during the call.
 */
#ifndef DBW_PIPELINE_H
#define DBW_PIPELINE_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>

#include "dbw_db.h"
#include "svc_metrics.h"
#include "svc_signal.h"

#define DBW_PIPELINE_MAX_CONNECTIONS 8

/* Commits a batch's offsets (synchronously). Returns 0, or non-zero if the commit failed
 * (the rows are stored; a re-read of the batch finds them there: the pipeline goes on). */
typedef int (*dbw_commit_fn)(void *opaque, const rd_kafka_topic_partition_list_t *offsets);

typedef struct dbw_pipeline_config {
    size_t batch_size;     /* messages (rows and dead letters) per batch, >= 1 */
    long retry_first_ms;   /* first pause after a failed write, >= 1 */
    long retry_max_ms;     /* cap of the doubling pause between retries */
    volatile sig_atomic_t *stop; /* set: retries give up, batches are not written again */
    dbw_commit_fn commit;
    void *commit_opaque;
} dbw_pipeline_config;

typedef struct dbw_pipeline dbw_pipeline;

/* dbs: 1..DBW_PIPELINE_MAX_CONNECTIONS connections, borrowed. Registers the database series
 * (db_writer_rows_written_total, ..._db_errors_total, ...) in metrics. NULL with errstr on a
 * bad argument or out of memory. */
dbw_pipeline *dbw_pipeline_new(const dbw_pipeline_config *cfg, dbw_db *const *dbs, int ndbs,
                               svc_metrics *metrics, char *errstr, size_t errstr_size);

/* Applies the migrations on the first connection, retrying with backoff until it works.
 * Returns 0, or -1 if a stop was requested first. */
int dbw_pipeline_migrate(dbw_pipeline *p);

/* The row the next valid message is parsed into (the fill batch's next free one), or NULL
 * if the fill batch is full (dbw_pipeline_fill_len == batch_size: submit it first). */
dbw_row *dbw_pipeline_slot(dbw_pipeline *p);

/* Adds the message at topic/partition/offset to the fill batch; row: 1 if it was parsed into
 * dbw_pipeline_slot's row (which the batch then keeps), 0 for a dead letter (offset only).
 * Returns 0, or -1 if the fill batch is full or out of memory (nothing added). */
int dbw_pipeline_add(dbw_pipeline *p, const char *topic, int32_t partition, int64_t offset,
                     int row);

/* Messages in the fill batch, and when its first one was added (CLOCK_MONOTONIC seconds). */
size_t dbw_pipeline_fill_len(const dbw_pipeline *p);
size_t dbw_pipeline_fill_rows(const dbw_pipeline *p);
double dbw_pipeline_fill_start(const dbw_pipeline *p);

/* Batches whose write is in flight. */
int dbw_pipeline_inflight(const dbw_pipeline *p);

/* Closes the fill batch and starts writing it on a free connection (completing the oldest
 * batch in flight first if none is free); a batch without rows is committed once every
 * earlier one is. closed_at (now_s clock): when the batch was closed, for the commit
 * latency histogram. Returns 0, or -1 if it gave up (stop requested during a database
 * outage; everything uncommitted dropped). Nothing to do for an empty fill batch. */
int dbw_pipeline_submit(dbw_pipeline *p, double closed_at);

/* Completes and commits the oldest batches in flight whose writes have ended (never waits
 * on one that has not). Returns 0, or -1 if one had to be given up (see submit). */
int dbw_pipeline_poll(dbw_pipeline *p);

/* Completes every batch in flight, in order, within max_wait_s seconds overall if > 0.
 * Returns 0, or -1 with every batch, in flight or filling, dropped uncommitted. */
int dbw_pipeline_complete_all(dbw_pipeline *p, double max_wait_s);

/* complete_all, then writes the fill batch synchronously and commits it, all within
 * max_wait_s if > 0. Returns 0, or -1 with everything uncommitted dropped. */
int dbw_pipeline_drain(dbw_pipeline *p, double max_wait_s);

/* Drops the fill batch uncommitted (its messages will be read again). */
void dbw_pipeline_drop_fill(dbw_pipeline *p);

/* 1 while the last database operation succeeded. Any thread. */
int dbw_pipeline_db_ok(const dbw_pipeline *p);

/* What is left of a max_wait_s budget started at t0 (svc_now_s): at least 1 ms once it is
 * spent (a bounded wait never turns into "no limit"), or 0 (no limit) if max_wait_s <= 0. */
double dbw_time_left(double t0, double max_wait_s);

/* NULL is a no-op. Does not write anything: drain first. */
void dbw_pipeline_free(dbw_pipeline *p);

#endif
