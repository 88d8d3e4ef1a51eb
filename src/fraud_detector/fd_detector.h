/*
 * fd_detector: the consume-transform-produce loop of fraud_detector, exactly once.
 *
 * It reads transaction messages from one topic in a consumer group, scores each with a
 * model bundle (fs_bundle_score) and writes {"transaction_id","score","fraud_flag",
 * "transaction":{...}} (fs_msg.h) to the scoring topic, keyed by transaction_id, with the
 * transaction's upload_id/upload_row headers. Messages that cannot be parsed or scored go, with
 * their original key, payload and headers plus source topic/partition/offset and the reason
 * as headers, to the dead-letter topic. Each batch (batch_size messages or batch_timeout_ms,
 * whichever first; with batch_adaptive also as soon as nothing more is queued and the
 * previous transaction has ended) is one Kafka transaction: begin, produce everything, send the consumer
 * offsets with the group metadata, commit. An abortable error aborts the transaction and
 * rewinds the consumer to the batch's first offsets (the last committed ones), so the batch
 * is processed again, after a pause that doubles with every abort in a row (100 ms to 5 s;
 * readiness fails from the second; a commit, a rebalance or a second with nothing to process
 * ends the row): a message the broker refuses (a dead letter the DLQ topic will not take,
 * say) is retried, logged with its source, never skipped (messages only purged because their
 * transaction aborted are not refusals); a fatal error (fenced by a newer instance with the same
 * transactional.id, ...) makes fd_detector_run return -1 so the process exits and its
 * supervisor restarts it.
 *
 * Pipelining: once a batch is produced and its offsets are sent, a committer thread commits
 * its transaction while the caller's thread collects and scores the next batch. The next
 * batch is produced (and its transaction begun) only after that commit has ended; if it was
 * aborted, the next batch is dropped unproduced and the consumer rewinds to the first
 * offsets of both. So each transaction still holds exactly one batch's results and offsets.
 * Partitions never change hands with a transaction open: the rebalance callback first waits
 * for the commit in flight to end and settles it (an aborted batch is not rewound: the new
 * assignment starts from the committed offsets), and on revocation drops the messages of
 * the batch being collected (nothing of it was produced, the next owner reads them again).
 *
 * Threads: fd_detector_run runs on the caller's thread, which also consumes and produces;
 * the committer thread makes the commit (or abort) calls, never at the same time as a
 * producer call of the caller's thread; parsing and scoring of a batch is shared with
 * scoring_threads - 1 helper threads (the bundle is immutable and thread-safe).
 * fd_detector_ready and the metrics may be read from any thread (the HTTP thread) at the
 * same time.
 */
#ifndef FD_DETECTOR_H
#define FD_DETECTOR_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stddef.h>

#include "fs_bundle.h"
#include "svc_metrics.h"

typedef struct fd_config {
    const char *transactions_topic; /* input */
    const char *scoring_topic;      /* output */
    const char *dlq_topic;          /* dead letters */
    const char *group_id;
    const char *transactional_id; /* stable per instance so a restart fences its zombie */
    /* Static group membership (group.instance.id), or NULL: a restarted instance takes its
     * partitions back at once instead of waiting for its old session to time out. */
    const char *group_instance_id;
    double threshold;             /* fraud_flag = fs_bundle_flag(score, threshold) */
    int batch_size;               /* messages per transaction, >= 1 */
    int batch_timeout_ms;         /* longest wait to fill a batch once it has a message */
    /* Adaptive batches: a batch also closes as soon as nothing is queued and no commit is in
     * flight (light traffic: small transactions, committed at once; under load they grow
     * while the previous commit runs, up to batch_size / batch_timeout_ms). 0: only
     * batch_size and batch_timeout_ms close a batch. */
    int batch_adaptive;
    /* Adaptive batches: the shortest time from one transaction's start to the next one's
     * while messages keep coming (the batch in hand waits for it, up to the caps), so a
     * steady stream is committed at this cadence instead of back to back; a message after
     * a quiet spell longer than this is committed at once. 0: back to back. Each
     * transaction costs the broker and both clients a fixed amount of work (partitions
     * added, offsets, the commit and its markers), so at 10k tx/s back-to-back commits
     * (~100/s) took twice the CPU of a 20 ms cadence, for no better a p99. On 2 shared
     * cores 25 ms (the default) is the steadiest p99 with the local stack's broker on
     * Shenandoah; with SerialGC's pauses 30 ms was (docs/streaming.md). */
    int txn_interval_ms;
    int scoring_threads;          /* threads parsing and scoring a batch (main included) */
    const char *bootstrap;        /* bootstrap.servers */
    /* Customer state (fd_state.h): its changelog topic (compacted, as many partitions as
     * transactions_topic), or NULL for none (every customer scored as new: benchmarks). */
    const char *state_topic;
    long long state_expiry_s;     /* idle event time after which a customer starts afresh */
    size_t state_max_customers;   /* customers this instance may hold (0 = no limit) */
    /* TreeSHAP reasons in the scoring message (fs_model_predict_contrib): for no row, the
     * flagged rows (fraud_flag=1) or all, with the reasons_top largest contributions (0:
     * every feature, then bias + contributions = the raw score). */
    int reasons;                  /* FD_REASONS_* */
    int reasons_top;              /* >= 0 */
} fd_config;

enum { FD_REASONS_OFF, FD_REASONS_FLAGGED, FD_REASONS_ALL };

/* The FD_REASONS_* value of "off", "flagged" or "all", or -1. */
int fd_reasons_mode(const char *name);

typedef struct fd_detector fd_detector;

/* Creates the consumer and the transactional producer (init_transactions is done by
 * fd_detector_run, which retries it while Kafka is unreachable) and registers the
 * detector's series in metrics. Kafka settings: the detector's defaults, unless the
 * environment passes the same property through KAFKA_* (svc_kafka.h), then what exactly
 * once needs (transactional.id, manual offsets, read_committed), which cannot be
 * overridden. Strings in cfg are borrowed and must outlive the detector; the bundle and the
 * registry are borrowed too. Returns NULL with the reason in errstr, and *config_error set
 * to 1 if the configuration is at fault (a Kafka property refused, properties that do not
 * fit together, a batch size below 1, reasons asked of a model whose contributions are not
 * defined or whose reasons would not fit a message), 0 otherwise (the detector's own allocations failing,
 * a thread or a Kafka client that could not be created): main exits 2 for the first, 1 for
 * the second. An allocation failure inside librdkafka is not reported: librdkafka aborts
 * the process. */
fd_detector *fd_detector_new(const fd_config *cfg, const fs_bundle *bundle,
                             svc_metrics *metrics, int *config_error, char *errstr,
                             size_t errstr_size);

/* Runs until *stop becomes non-zero, then finishes the batch in hand, closes the consumer
 * (leaving the group) and returns 0. Returns -1 after a fatal Kafka error (logged). */
int fd_detector_run(fd_detector *d, volatile sig_atomic_t *stop);

/* 1 if ready to score (producer initialised, the group joined, brokers reachable, fewer
 * than two transactions aborted in a row), else 0 with the reason in reason. Thread-safe. */
int fd_detector_ready(fd_detector *d, char *reason, size_t reason_size);

/* Destroys the clients (does not wait for anything: call after fd_detector_run). NULL is a
 * no-op. */
void fd_detector_free(fd_detector *d);

#endif
