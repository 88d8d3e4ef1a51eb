#include "fd_detector.h"
#include "fd_state.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "fs_model.h"
#include "fs_msg.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_signal.h"

/* Longest wait for a transactional call (send offsets, commit, abort) before it counts as
 * timed out; a timed-out commit is retried, anything else aborts the batch. */
#define FD_TXN_CALL_MS 30000
/* Pause after an aborted transaction before its batch is read again: doubles from the
 * first to the last, so a fault that persists (a topic refusing the messages) is retried a
 * few times a second at first, then every few seconds, never in a tight loop. */
#define FD_ABORT_BACKOFF_MIN_MS 100
#define FD_ABORT_BACKOFF_MAX_MS 5000
/* Poll step while a batch is open and a commit in flight (adaptive batches): the batch
 * closes within this long of the commit's end. */
#define FD_ADAPTIVE_POLL_MS 1
/* Readiness fails after this many aborted transactions in a row. */
#define FD_ABORTS_NOT_READY 2
/* First size of a slot's message buffer: a scoring message with the transaction block and
 * five reasons fits; a longer one grows the slot's buffer to FS_MSG_SCORING_MAX. */
#define FD_OUT_INITIAL 1024

/* The detector's series in the service's registry. */
typedef struct fd_series {
    svc_counter *messages_in, *messages_out, *messages_dlq, *txn_committed, *txn_aborted,
        *rebalances, *batches_dropped, *delivery_errors, *dlq_errors, *delivery_purged,
        *rerouted, *state_records, *state_expired, *restore_records, *restores;
    svc_gauge *consumer_lag, *assigned_partitions, *state_customers, *state_bytes,
        *restore_seconds;
    svc_histogram *batch_size, *processing, *message_age, *score;
} fd_series;

/* The result of scoring one message of the batch, filled by a scoring thread and produced
 * by the main thread in batch order. */
enum { FD_SLOT_SCORED, FD_SLOT_DEAD, FD_SLOT_REROUTE, FD_SLOT_REFUSED };
typedef struct fd_slot {
    int kind;     /* FD_SLOT_*: scored, a dead letter, re-published under its customer key,
                   * or refused (no room for a new customer: the batch is not produced) */
    double score; /* NaN unless scored */
    char *rkey;   /* FD_SLOT_REROUTE: the customer key (owned), and its partition */
    size_t rkey_len;
    int32_t rpart;
    int out_len;
    char *out;                           /* the scoring message (owned, out_cap bytes) */
    size_t out_cap;
    char key[FS_TXN_ID_MAX + 1];         /* its key, the transaction_id */
    char reason[320];                    /* why it is a dead letter */
} fd_slot;

/* Scoring threads: each batch is cut into nthreads contiguous shares; the main thread
 * scores share 0 and threads 1..n-1 the others, then the main thread produces. */
typedef struct fd_pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned generation; /* bumped for each batch */
    int pending;         /* threads still scoring the current batch */
    int quit;
    int nthreads;        /* including the main thread */
    int nworkers;        /* workers allocated (their scratch freed by pool_stop) */
    pthread_t *threads;
    struct fd_worker *workers;
    int started;         /* threads actually running */
} fd_pool;

typedef struct fd_worker {
    struct fd_detector *d;
    int index;
    fs_txn txn; /* reused for every message of the share */
    /* Reasons (reused): the feature vector, its contributions (the bias last), the order of
     * the features by contribution, the top entries and their text. */
    double *x, *contrib;
    int *order;
    fs_reason *top;
    char *reasons;
    unsigned long nonfinite; /* scores sent without reasons: a contribution not finite */
} fd_worker;

/* The committer thread: sends the offsets of the batch handed to it and commits its
 * transaction (or, on an abortable error, aborts it) while the main thread collects and
 * scores the next batch. The main thread makes no producer call while a commit is
 * requested. */
enum { FD_COMMIT_IDLE, FD_COMMIT_REQUESTED, FD_COMMIT_DONE };
typedef struct fd_committer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;     /* FD_COMMIT_* */
    int result;    /* when DONE: 0 committed, 1 aborted (rewind), -1 fatal */
    rd_kafka_topic_partition_list_t *offsets;     /* REQUESTED: the batch's, owned */
    rd_kafka_consumer_group_metadata_t *cgmd;     /* REQUESTED: owned */
    double t_sent; /* monotonic time the offsets were sent */
    double t_done; /* monotonic time the commit (or abort) returned */
    double wall_done;
    int quit;
    int started;
    pthread_t thread;
} fd_committer;

struct fd_detector {
    fd_config cfg;
    const fs_bundle *bundle;
    fd_state *state;             /* NULL: state off (every customer scored as new) */
    fd_restore_progress restore; /* read by the HTTP thread */
    atomic_int restore_failed;
    int32_t in_partitions;       /* partitions of the transactions topic (key routing) */
    rd_kafka_topic_t *in_topic;  /* producer handle of the transactions topic (re-routing) */
    fd_series m;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_topic_partition_list_t *subscription;
    rd_kafka_topic_t *out_topics[3]; /* producer handles: scoring, DLQ, state (if on) */

    rd_kafka_message_t **batch; /* messages of the batch being collected or processed */
    int nbatch;
    double *poll_ts; /* monotonic time each message was consumed */

    fd_slot *slots; /* batch_size results */
    fd_pool pool;

    /* The batch in flight: produced, offsets sent, its commit requested from the committer
     * thread. Its messages stay here until the outcome is known (an abort rewinds to them). */
    rd_kafka_message_t **fl_batch;
    int fl_n;
    double *fl_poll_ts;
    fd_slot *fl_slots;
    double fl_t[3]; /* scoring started, scored, produced and handed over */
    fd_committer commit;

    volatile sig_atomic_t *stop; /* fd_detector_run's */
    atomic_int topics_ok;        /* the state topic was checked (or state is off) */
    char topics_why[256];        /* why not yet (under why_mu) */
    atomic_int txn_ready;    /* init_transactions succeeded */
    atomic_int joined;       /* the group assigned us (possibly nothing) at least once */
    atomic_int brokers_down; /* the last error callback said all brokers are down */
    atomic_int fatal;        /* librdkafka reported a fatal error: the run must end */
    double last_lag_check;

    /* Aborted transactions since the last commit (readiness, backoff), and why the last
     * one was aborted; delivery errors of the open transaction (the first is logged in
     * full). The reason is written by the committer thread or the main thread, read by the
     * HTTP thread, hence the lock. */
    /* Transactions begun (each message carries its transaction's number as its opaque) and
     * the number of the last one whose abort has begun: a message of that transaction that
     * times out afterwards was waiting for the abort, not refused. */
    atomic_uintptr_t txn_seq;
    atomic_uintptr_t aborted_seq;
    atomic_int aborts_in_row;
    atomic_int aborts_total;
    atomic_int txn_delivery_errors;
    atomic_int txn_dlq_refused;
    int aborts_waited; /* main thread: aborts_total already paused for */
    double idle_since; /* main thread: first idle poll with nothing in flight, or 0 */
    double txn_started; /* main thread: when the last transaction began (svc_now_s) */
    pthread_mutex_t why_mu;
    char abort_why[512];
};

static int pool_start(fd_detector *d, int nthreads, char *errstr, size_t errstr_size);
static void pool_stop(fd_detector *d);
static int committer_start(fd_detector *d, char *errstr, size_t errstr_size);
static void committer_stop(fd_detector *d);
static void commit_wait(fd_detector *d);
static int finish_inflight(fd_detector *d, int rewind);

static double now_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void drop_batch(fd_detector *d)
{
    for (int i = 0; i < d->nbatch; i++)
        rd_kafka_message_destroy(d->batch[i]);
    d->nbatch = 0;
}

static void drop_inflight(fd_detector *d)
{
    for (int i = 0; i < d->fl_n; i++)
        rd_kafka_message_destroy(d->fl_batch[i]);
    d->fl_n = 0;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    fd_detector *d = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        atomic_store(&d->brokers_down, 1);
    if (err == RD_KAFKA_RESP_ERR__FATAL)
        atomic_store(&d->fatal, 1);
    SVC_LOG(err == RD_KAFKA_RESP_ERR__FATAL ? SVC_LOG_ERROR : SVC_LOG_WARN, NULL,
            "librdkafka %s error %s: %s", rd_kafka_name(rk),
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* Why the open transaction will be (or was) aborted, for readiness and the logs. */
static void set_abort_why(fd_detector *d, const char *what, const char *why)
{
    pthread_mutex_lock(&d->why_mu);
    snprintf(d->abort_why, sizeof d->abort_why, "%s: %s", what, why);
    pthread_mutex_unlock(&d->why_mu);
}

/* The value of header name of msg as a NUL-terminated string in buf, or "?". */
static const char *header_str(const rd_kafka_message_t *msg, const char *name, char *buf,
                              size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(msg, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || h == NULL ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        v == NULL) {
        snprintf(buf, size, "?");
        return buf;
    }
    snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), (const char *)v);
    return buf;
}

/* Delivery reports of the producer (served by the commit's flush on the committer thread,
 * or by the main thread's polls, never both at once). A message the broker refuses makes
 * librdkafka's transaction abortable: the commit fails, the batch is aborted and read
 * again. This says which message and why: every refused dead letter in full (the message
 * it carries is retried, never skipped, so the operator must see which one blocks), for
 * scores the first of the transaction. Messages still queued or in flight when the
 * transaction is aborted come back purged: nobody refused them, they only share the
 * aborted batch, so they are counted apart and neither logged as refusals nor allowed to
 * replace the real reason of the abort. */
/* The tag of the messages produced now: the number of the open transaction. */
static void *txn_tag(fd_detector *d)
{
    return (void *)atomic_load(&d->txn_seq);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    fd_detector *d = opaque;
    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    /* Purged by an abort, or timed out while its transaction was being aborted (librdkafka
     * 2.0.2 sometimes makes an abort wait for its messages' timeout after it met its own
     * skipped sequence numbers): the abort decides their fate, nobody refused them. */
    if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
        (msg->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT &&
         (uintptr_t)msg->_private <= atomic_load(&d->aborted_seq))) {
        svc_counter_add(d->m.delivery_purged, 1);
        return;
    }
    const char *topic = rd_kafka_topic_name(msg->rkt);
    svc_counter_add(d->m.delivery_errors, 1);
    int first = atomic_fetch_add(&d->txn_delivery_errors, 1) == 0;
    if (strcmp(topic, d->cfg.dlq_topic) == 0) {
        char src_topic[256], part[32], off[32];
        header_str(msg, "x-source-topic", src_topic, sizeof src_topic);
        header_str(msg, "x-source-partition", part, sizeof part);
        header_str(msg, "x-source-offset", off, sizeof off);
        svc_log_ctx ctx = {src_topic, (int32_t)strtol(part, NULL, 10),
                           (int64_t)strtoll(off, NULL, 10), NULL};
        if (msg->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
            /* Not a refusal by the topic: the producer could not deliver it in time (after
             * an abort librdkafka 2.0.2 can stall the next transaction's messages until
             * they time out). Retried with the batch like any failed delivery. */
            SVC_LOG(SVC_LOG_ERROR, &ctx,
                    "dead letter to %s not delivered in time: %s; the transaction is aborted "
                    "and the message read again",
                    topic, rd_kafka_err2str(msg->err));
            if (!atomic_load(&d->txn_dlq_refused))
                set_abort_why(d, "dead letter not delivered", rd_kafka_err2str(msg->err));
            return;
        }
        svc_counter_add(d->m.dlq_errors, 1);
        SVC_LOG(SVC_LOG_ERROR, &ctx,
                "dead letter refused by %s: %s; the transaction is aborted and the message "
                "read again until %s accepts it (nothing past it is committed)",
                topic, rd_kafka_err2str(msg->err), topic);
        atomic_store(&d->txn_dlq_refused, 1);
        set_abort_why(d, "dead letter refused", rd_kafka_err2str(msg->err));
    } else if (first) {
        SVC_LOG(SVC_LOG_WARN, NULL,
                "%s refused the score of %.*s: %s; the transaction is aborted and the batch "
                "read again",
                topic, (int)(msg->key_len < 128 ? msg->key_len : 128),
                msg->key != NULL ? (const char *)msg->key : "", rd_kafka_err2str(msg->err));
    }
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && len < sizeof buf - 16; i++) {
        int n = snprintf(buf + len, sizeof buf - len, "%s%s[%" PRId32 "]", i ? "," : "",
                         parts->elems[i].topic, parts->elems[i].partition);
        if (n < 0)
            break;
        len += (size_t)n;
        if (len >= sizeof buf)
            len = sizeof buf - 1;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "%s %d partition(s): %s", what, parts->cnt, buf);
}

/* Readiness no longer counts the aborted transactions: the batch that kept aborting is gone
 * (its partitions changed hands, or nothing is left to process), so nothing shows the fault
 * persists; the next abort starts counting (and the pause) from one again. */
static void forget_aborts(fd_detector *d, const char *why)
{
    int n = atomic_exchange(&d->aborts_in_row, 0);
    if (n > 0)
        SVC_LOG(SVC_LOG_INFO, NULL, "%s: %d aborted transaction(s) in a row no longer count",
                why, n);
}

static void state_gauges(fd_detector *d)
{
    svc_gauge_set(d->m.state_customers, (double)fd_state_customers(d->state));
    svc_gauge_set(d->m.state_bytes, (double)fd_state_bytes(d->state));
}

/* Rebuilds the state of the assigned partitions from the changelog (inside the rebalance
 * callback, before they are assigned). Returns 0, or -1 (logged) if it cannot be done: the
 * run then ends and the supervisor restarts the process. */
static int restore_state(fd_detector *d, const rd_kafka_topic_partition_list_t *parts)
{
    char why[512];
    fd_state_drop_all(d->state);
    rd_kafka_conf_t *conf = svc_kafka_conf_new(d->cfg.transactional_id, d->cfg.bootstrap, why,
                                               sizeof why);
    if (conf == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "state restore: %s", why);
        return -1;
    }
    /* librdkafka wants a group for assign(); the restore consumer never joins it (no
     * subscribe) and commits nothing. */
    char group[512];
    snprintf(group, sizeof group, "%s.state-restore", d->cfg.group_id);
    if (svc_kafka_conf_set(conf, "group.id", group, why, sizeof why) != 0) {
        rd_kafka_conf_destroy(conf);
        SVC_LOG(SVC_LOG_ERROR, NULL, "state restore: %s", why);
        return -1;
    }
    double t0 = svc_now_s();
    int rc = fd_state_restore(d->state, conf, d->cfg.state_topic, parts, &d->restore,
                              d->stop, why, sizeof why);
    double secs = svc_now_s() - t0;
    long long n = atomic_load(&d->restore.records);
    svc_counter_add(d->m.restores, 1);
    svc_counter_add(d->m.restore_records, (uint64_t)n);
    svc_gauge_set(d->m.restore_seconds, secs);
    state_gauges(d);
    if (rc != 0) {
        atomic_store(&d->restore_failed, 1);
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s", why);
        return -1;
    }
    SVC_LOG(SVC_LOG_INFO, NULL,
            "state restored from %s: %d partition(s), %lld record(s), %zu customer(s), %.3f s",
            d->cfg.state_topic, parts->cnt, n, fd_state_customers(d->state), secs);
    return 0;
}

/* Eager rebalancing. Runs inside rd_kafka_consumer_poll, i.e. between transactions, never
 * while one is open. Messages collected for the next batch came from partitions that are
 * being revoked: nothing of them was produced and their offsets were not committed, so they
 * are dropped and the next owner reads them again. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    fd_detector *d = opaque;
    svc_counter_add(d->m.rebalances, 1);
    /* The transaction in flight ends (commit or abort) before any partition changes hands,
     * exactly as if it had ended before this poll. */
    commit_wait(d);
    /* Settle it here, before the partitions change hands. After an abort there is nothing
     * to rewind: the whole assignment is replaced (eager), and a new one starts from the
     * committed offsets, i.e. before the aborted batch. A fatal error ends the run. */
    if (finish_inflight(d, 0) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "rebalance: the transaction in flight failed fatally");
        atomic_store(&d->fatal, 1);
    }
    forget_aborts(d, "rebalance");
    if (d->nbatch > 0) {
        SVC_LOG(SVC_LOG_INFO, NULL, "rebalance: dropping %d uncommitted message(s) of the batch",
                d->nbatch);
        drop_batch(d);
        svc_counter_add(d->m.batches_dropped, 1);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions("assigned", parts);
        /* Nothing of the new assignment is scored before its state is back. */
        if (d->state != NULL && restore_state(d, parts) != 0)
            atomic_store(&d->fatal, 1);
        rd_kafka_assign(rk, parts);
        svc_gauge_set(d->m.assigned_partitions, parts->cnt);
        atomic_store(&d->joined, 1);
        atomic_store(&d->brokers_down, 0);
    } else {
        log_partitions(rd_kafka_assignment_lost(rk) ? "lost" : "revoked", parts);
        rd_kafka_assign(rk, NULL);
        if (d->state != NULL) {
            /* Eager protocol: the whole assignment goes; whatever comes back is restored
             * from the changelog, which holds exactly the committed state. */
            fd_state_drop_all(d->state);
            state_gauges(d);
        }
        svc_gauge_set(d->m.assigned_partitions, 0);
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            SVC_LOG(SVC_LOG_WARN, NULL, "rebalance error: %s", rd_kafka_err2str(err));
    }
}

static rd_kafka_conf_t *make_conf(fd_detector *d, int is_producer, char *errstr,
                                  size_t errstr_size)
{
    static const svc_kafka_setting consumer_defaults[] = {
        {"auto.offset.reset", "earliest"},
        /* Eager assignor: whole-assignment revocations, simplest to make exactly-once. */
        {"partition.assignment.strategy", "range,roundrobin"},
        /* A killed instance's partitions move after 6 s instead of 45 s. */
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "1000"},
        {"fetch.wait.max.ms", "50"},
    };
    /* What exactly once depends on: an environment variable saying otherwise is an error. */
    static const svc_kafka_setting consumer_required[] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        /* Offsets committed in transactions are read back stable (KIP-447). */
        {"isolation.level", "read_committed"},
    };
    static const svc_kafka_setting producer_defaults[] = {
        /* A killed instance's open transaction blocks read_committed readers until the
         * restart fences it or this timeout aborts it. */
        {"transaction.timeout.ms", "10000"},
        /* Right after a commit the coordinator answers the next transaction's
         * AddPartitionsToTxn / AddOffsetsToTxn with CONCURRENT_TRANSACTIONS until its
         * markers are written; librdkafka retries after retry.backoff.ms, 100 ms by default,
         * which was most of a transaction's time at a paced 10k tx/s (the Java client waits
         * 20 ms there). */
        {"retry.backoff.ms", "10"},
        {"linger.ms", "5"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
#define NSET(a) (sizeof(a) / sizeof((a)[0]))
    rd_kafka_conf_t *conf = svc_kafka_conf_new(d->cfg.transactional_id, d->cfg.bootstrap,
                                               errstr, errstr_size);
    if (conf == NULL)
        return NULL;
    if (is_producer ? svc_kafka_conf_defaults(conf, producer_defaults, NSET(producer_defaults),
                                              errstr, errstr_size) != 0
                    : svc_kafka_conf_defaults(conf, consumer_defaults, NSET(consumer_defaults),
                                              errstr, errstr_size) != 0 ||
                          svc_kafka_conf_force(conf, consumer_required, NSET(consumer_required),
                                               errstr, errstr_size) != 0)
        goto fail;
#undef NSET
    if (is_producer) {
        if (svc_kafka_conf_set(conf, "transactional.id", d->cfg.transactional_id, errstr,
                               errstr_size) != 0)
            goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    } else {
        if (svc_kafka_conf_set(conf, "group.id", d->cfg.group_id, errstr, errstr_size) != 0)
            goto fail;
        if (d->cfg.group_instance_id != NULL &&
            svc_kafka_conf_set(conf, "group.instance.id", d->cfg.group_instance_id, errstr,
                               errstr_size) != 0)
            goto fail;
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    }
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_opaque(conf, d);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void register_series(fd_series *m, svc_metrics *r)
{
    static const double batch_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000};
    static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,  0.5,    1,     2.5,  5,     10};
    static const double score_bounds[] = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5,  0.6,
                                          0.7,  0.8, 0.9, 0.95, 0.99, 1.0};
#define NB(a) (sizeof(a) / sizeof((a)[0]))
    m->messages_in = svc_metrics_counter(r, "fraud_detector_messages_in_total",
                                         "Messages consumed and committed.", NULL);
    m->messages_out = svc_metrics_counter(r, "fraud_detector_messages_out_total",
                                          "Scores produced to the scoring topic.", NULL);
    m->messages_dlq = svc_metrics_counter(r, "fraud_detector_messages_dead_lettered_total",
                                          "Messages produced to the dead-letter topic.", NULL);
    m->txn_committed = svc_metrics_counter(r, "fraud_detector_transactions_committed_total",
                                           "Kafka transactions committed.", NULL);
    m->txn_aborted =
        svc_metrics_counter(r, "fraud_detector_transactions_aborted_total",
                            "Kafka transactions aborted (their batch is consumed again).", NULL);
    m->rebalances = svc_metrics_counter(r, "fraud_detector_rebalances_total",
                                        "Partition assignments and revocations.", NULL);
    m->batches_dropped = svc_metrics_counter(
        r, "fraud_detector_batches_dropped_total",
        "Partly collected batches dropped on revocation (read again by the new owner).", NULL);
    m->delivery_errors = svc_metrics_counter(
        r, "fraud_detector_delivery_errors_total",
        "Messages the broker refused (scores or dead letters); their transaction is aborted "
        "and the batch read again.",
        NULL);
    m->delivery_purged = svc_metrics_counter(
        r, "fraud_detector_delivery_purged_total",
        "Messages of an aborted transaction purged before delivery (not refused by the "
        "broker; read again with their batch).",
        NULL);
    m->dlq_errors = svc_metrics_counter(
        r, "fraud_detector_dead_letter_errors_total",
        "Dead letters the dead-letter topic refused; the message is read again, never "
        "skipped.",
        NULL);
    m->rerouted = svc_metrics_counter(
        r, "fraud_detector_rerouted_total",
        "Messages whose record key or partition was not their customer's, re-published "
        "once under the customer key (scored when read back there).",
        NULL);
    m->state_records = svc_metrics_counter(
        r, "fraud_detector_state_changelog_records_total",
        "Customer-state records (and tombstones) written to the changelog in transactions.",
        NULL);
    m->state_expired = svc_metrics_counter(
        r, "fraud_detector_state_expired_total",
        "Customers dropped from the state after the expiry period without a transaction.",
        NULL);
    m->restores = svc_metrics_counter(r, "fraud_detector_state_restores_total",
                                      "State restores from the changelog (one per assignment).",
                                      NULL);
    m->restore_records = svc_metrics_counter(r, "fraud_detector_state_restore_records_total",
                                             "Changelog records read by state restores.", NULL);
    m->restore_seconds = svc_metrics_gauge(r, "fraud_detector_state_restore_seconds",
                                           "Duration of the last state restore.", NULL);
    m->state_customers = svc_metrics_gauge(r, "fraud_detector_state_customers",
                                           "Customers whose state this instance holds.", NULL);
    m->state_bytes = svc_metrics_gauge(
        r, "fraud_detector_state_bytes",
        "Memory of the customer state: tables, 128-byte records, keys, bookkeeping.", NULL);
    m->consumer_lag = svc_metrics_gauge(
        r, "fraud_detector_consumer_lag",
        "Messages behind the high watermark, summed over the assigned partitions.", NULL);
    m->assigned_partitions = svc_metrics_gauge(r, "fraud_detector_assigned_partitions",
                                               "Partitions assigned to this instance.", NULL);
    m->batch_size = svc_metrics_histogram(r, "fraud_detector_batch_size",
                                          "Messages per committed Kafka transaction.", NULL,
                                          batch_bounds, NB(batch_bounds));
    m->processing = svc_metrics_histogram(
        r, "fraud_detector_processing_seconds",
        "Seconds from consuming a message to committing its transaction.", NULL,
        latency_bounds, NB(latency_bounds));
    m->message_age = svc_metrics_histogram(
        r, "fraud_detector_message_age_seconds",
        "Seconds from a message's Kafka timestamp to committing its score.", NULL,
        latency_bounds, NB(latency_bounds));
    m->score = svc_metrics_histogram(r, "fraud_detector_score", "Fraud scores produced.", NULL,
                                     score_bounds, NB(score_bounds));
#undef NB
}

int fd_reasons_mode(const char *name)
{
    static const char *const names[] = {[FD_REASONS_OFF] = "off",
                                        [FD_REASONS_FLAGGED] = "flagged",
                                        [FD_REASONS_ALL] = "all"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (name != NULL && strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Reasons need a model with contributions (no linear trees, one output) and must fit a
 * message: the reasons_top features with the longest names, every number in its longest
 * form, are formatted once here. Returns 0, or -1 with the reason in errstr. */
static int check_reasons(const fd_config *cfg, const fs_bundle *bundle, char *errstr,
                         size_t errstr_size)
{
    const fs_model *model = fs_bundle_model(bundle);
    int nf = fs_bundle_num_features(bundle), rc = -1;
    fs_reason *top = NULL;
    char *text = NULL;
    if (cfg->reasons < FD_REASONS_OFF || cfg->reasons > FD_REASONS_ALL ||
        cfg->reasons_top < 0) {
        snprintf(errstr, errstr_size, "reasons: mode %d, top %d: not a mode or a count",
                 cfg->reasons, cfg->reasons_top);
        return -1;
    }
    if (cfg->reasons == FD_REASONS_OFF)
        return 0;
    if (fs_model_has_linear_trees(model) || fs_model_num_outputs(model) != 1) {
        snprintf(errstr, errstr_size,
                 "REASONS=%s: the model's contributions are not defined (linear trees or "
                 "more than one output); set REASONS=off",
                 cfg->reasons == FD_REASONS_ALL ? "all" : "flagged");
        return -1;
    }
    top = calloc((size_t)nf, sizeof *top);
    text = malloc(FS_MSG_REASONS_MAX + 1);
    if (top == NULL || text == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    int n = cfg->reasons_top == 0 || cfg->reasons_top > nf ? nf : cfg->reasons_top;
    for (int i = 0; i < nf; i++)
        top[i] = (fs_reason){fs_bundle_feature_name(bundle, i), -1.2345678901234567e-300,
                             -1.2345678901234567e-300};
    /* The n longest names (a selection sort is plenty for tens of features). */
    for (int k = 0; k < n; k++)
        for (int j = k + 1; j < nf; j++)
            if (strlen(top[j].feature) > strlen(top[k].feature)) {
                fs_reason tmp = top[k];
                top[k] = top[j];
                top[j] = tmp;
            }
    if (fs_msg_format_reasons(text, FS_MSG_REASONS_MAX + 1, -1.2345678901234567e-300, top,
                              (size_t)n) < 0) {
        snprintf(errstr, errstr_size,
                 "REASONS_TOP=%d: the reasons of this model's features could exceed %d "
                 "bytes; set a smaller REASONS_TOP",
                 cfg->reasons_top, FS_MSG_REASONS_MAX);
        goto out;
    }
    rc = 0;
out:
    free(top);
    free(text);
    return rc;
}

fd_detector *fd_detector_new(const fd_config *cfg, const fs_bundle *bundle,
                             svc_metrics *metrics, int *config_error, char *errstr,
                             size_t errstr_size)
{
    fd_detector *d = NULL;
    rd_kafka_conf_t *conf = NULL;
    char why[512];

    *config_error = 0;
    if (cfg->batch_size < 1) {
        snprintf(errstr, errstr_size, "batch size %d: must be at least 1", cfg->batch_size);
        *config_error = 1;
        goto fail;
    }
    if (check_reasons(cfg, bundle, errstr, errstr_size) != 0) {
        *config_error = 1;
        goto fail;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL)
        goto oom;
    pthread_mutex_init(&d->why_mu, NULL);
    d->cfg = *cfg;
    d->bundle = bundle;
    if (cfg->state_topic != NULL) {
        d->state = fd_state_new(cfg->state_expiry_s, cfg->state_max_customers);
        if (d->state == NULL)
            goto oom;
    }
    register_series(&d->m, metrics);
    d->batch = calloc((size_t)cfg->batch_size, sizeof *d->batch);
    d->slots = calloc((size_t)cfg->batch_size, sizeof *d->slots);
    d->poll_ts = calloc((size_t)cfg->batch_size, sizeof *d->poll_ts);
    d->fl_batch = calloc((size_t)cfg->batch_size, sizeof *d->fl_batch);
    d->fl_slots = calloc((size_t)cfg->batch_size, sizeof *d->fl_slots);
    d->fl_poll_ts = calloc((size_t)cfg->batch_size, sizeof *d->fl_poll_ts);
    if (d->batch == NULL || d->slots == NULL || d->poll_ts == NULL || d->fl_batch == NULL ||
        d->fl_slots == NULL || d->fl_poll_ts == NULL)
        goto oom;
    /* jansson seeds its hash function on first use; do it here, before several threads
     * may parse (fs_msg's reference path, for unusual messages) at the same time. */
    json_object_seed(0);
    if (pool_start(d, cfg->scoring_threads < 1 ? 1 : cfg->scoring_threads, errstr,
                   errstr_size) != 0)
        goto fail;
    if (committer_start(d, errstr, errstr_size) != 0)
        goto fail;

    /* A conf that cannot be built names a property the environment (KAFKA_*) or the
     * defaults got wrong; rd_kafka_new says INVALID_ARG when the properties do not fit
     * together, anything else (threads, memory) is not the configuration's fault. */
    conf = make_conf(d, 1, errstr, errstr_size);
    if (conf == NULL) {
        *config_error = 1;
        goto fail;
    }
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (d->producer == NULL) {
        *config_error = rd_kafka_last_error() == RD_KAFKA_RESP_ERR__INVALID_ARG;
        snprintf(errstr, errstr_size, "kafka producer: %s", why);
        goto fail;
    }
    conf = NULL; /* owned by the producer now */
    d->in_topic = rd_kafka_topic_new(d->producer, cfg->transactions_topic, NULL);
    if (d->in_topic == NULL) {
        snprintf(errstr, errstr_size, "kafka producer: topic %s: %s", cfg->transactions_topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }

    conf = make_conf(d, 0, errstr, errstr_size);
    if (conf == NULL) {
        *config_error = 1;
        goto fail;
    }
    d->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (d->consumer == NULL) {
        *config_error = rd_kafka_last_error() == RD_KAFKA_RESP_ERR__INVALID_ARG;
        snprintf(errstr, errstr_size, "kafka consumer: %s", why);
        goto fail;
    }
    conf = NULL;
    rd_kafka_poll_set_consumer(d->consumer);

    d->subscription = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(d->subscription, cfg->transactions_topic,
                                      RD_KAFKA_PARTITION_UA);
    return d;
oom:
    snprintf(errstr, errstr_size, "out of memory creating the detector");
fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    fd_detector_free(d);
    return NULL;
}

void fd_detector_free(fd_detector *d)
{
    if (d == NULL)
        return;
    pool_stop(d);
    committer_stop(d);
    drop_batch(d);
    drop_inflight(d);
    if (d->consumer != NULL)
        rd_kafka_destroy(d->consumer);
    for (int i = 0; i < 3; i++) {
        if (d->out_topics[i] != NULL)
            rd_kafka_topic_destroy(d->out_topics[i]);
        d->out_topics[i] = NULL;
    }
    if (d->in_topic != NULL)
        rd_kafka_topic_destroy(d->in_topic);
    if (d->producer != NULL)
        rd_kafka_destroy(d->producer);
    if (d->subscription != NULL)
        rd_kafka_topic_partition_list_destroy(d->subscription);
    for (int i = 0; i < d->cfg.batch_size; i++) {
        if (d->slots != NULL) {
            free(d->slots[i].rkey);
            free(d->slots[i].out);
        }
        if (d->fl_slots != NULL) {
            free(d->fl_slots[i].rkey);
            free(d->fl_slots[i].out);
        }
    }
    fd_state_free(d->state);
    free(d->batch);
    free(d->slots);
    free(d->poll_ts);
    free(d->fl_batch);
    free(d->fl_slots);
    free(d->fl_poll_ts);
    pthread_mutex_destroy(&d->why_mu);
    free(d);
}

int fd_detector_ready(fd_detector *d, char *reason, size_t reason_size)
{
    if (!atomic_load(&d->txn_ready)) {
        snprintf(reason, reason_size, "kafka: transactional producer not initialised yet");
        return 0;
    }
    if (d->state != NULL && !atomic_load(&d->topics_ok)) {
        pthread_mutex_lock(&d->why_mu);
        snprintf(reason, reason_size, "kafka: %s", d->topics_why[0] ? d->topics_why
                                                                   : "checking the topics");
        pthread_mutex_unlock(&d->why_mu);
        return 0;
    }
    /* The first assignment restores before it counts as joined. */
    if (d->state != NULL && atomic_load(&d->restore.active)) {
        snprintf(reason, reason_size,
                 "restoring customer state from %s: %d of %d partition(s), %lld record(s)",
                 d->cfg.state_topic, atomic_load(&d->restore.done),
                 atomic_load(&d->restore.partitions), (long long)atomic_load(&d->restore.records));
        return 0;
    }
    if (!atomic_load(&d->joined)) {
        snprintf(reason, reason_size, "kafka: consumer group %s not joined yet",
                 d->cfg.group_id);
        return 0;
    }
    if (atomic_load(&d->brokers_down)) {
        snprintf(reason, reason_size, "kafka: all brokers down");
        return 0;
    }
    if (d->state != NULL && atomic_load(&d->restore_failed)) {
        snprintf(reason, reason_size, "customer state could not be restored from %s (see the log)",
                 d->cfg.state_topic);
        return 0;
    }
    if (d->state != NULL && fd_state_full(d->state)) {
        snprintf(reason, reason_size,
                 "customer state full: %zu customers held, STATE_MAX_CUSTOMERS=%zu; raise it or "
                 "run more instances (batches are retried, nothing is evicted)",
                 fd_state_customers(d->state), fd_state_max(d->state));
        return 0;
    }
    int aborts = atomic_load(&d->aborts_in_row);
    if (aborts >= FD_ABORTS_NOT_READY) {
        pthread_mutex_lock(&d->why_mu);
        snprintf(reason, reason_size, "kafka: %d transactions aborted in a row, retrying (%s)",
                 aborts, d->abort_why);
        pthread_mutex_unlock(&d->why_mu);
        return 0;
    }
    snprintf(reason, reason_size, "ok");
    return 1;
}

/* Produces one message of the open transaction (tagged with its number), waiting for room
 * in the producer queue if it is full. headers (NULL: none) become the message's on success
 * and stay the caller's on failure. */
static rd_kafka_resp_err_t produce(fd_detector *d, const char *topic, const void *key,
                                   size_t key_len, const void *value, size_t value_len,
                                   rd_kafka_headers_t *headers)
{
    return svc_kafka_produce_wait(d->producer, topic, RD_KAFKA_PARTITION_UA, key, key_len,
                                  value, value_len, headers, txn_tag(d), -1);
}

/* Formats the scoring message into the slot's buffer, growing it once to
 * FS_MSG_SCORING_MAX if the message is longer than its size. Returns the length, -1 if the
 * message cannot be formatted, -2 if memory ran out. */
static int format_slot(fd_slot *slot, const char *id, double score, int flag,
                       const fs_scoring_txn *block, const char *reasons)
{
    if (slot->out == NULL) {
        slot->out = malloc(FD_OUT_INITIAL);
        if (slot->out == NULL)
            return -2;
        slot->out_cap = FD_OUT_INITIAL;
    }
    int n = fs_msg_format_scoring_full(slot->out, slot->out_cap, id, score, flag, block,
                                       reasons);
    if (n >= 0 || slot->out_cap >= FS_MSG_SCORING_MAX)
        return n;
    char *big = realloc(slot->out, FS_MSG_SCORING_MAX);
    if (big == NULL)
        return -2;
    slot->out = big;
    slot->out_cap = FS_MSG_SCORING_MAX;
    return fs_msg_format_scoring_full(slot->out, slot->out_cap, id, score, flag, block,
                                      reasons);
}

/* Orders feature indexes by contribution, largest first (ties: feature order). */
static _Thread_local const double *tl_contrib;

static int by_contribution(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    double ci = tl_contrib[i], cj = tl_contrib[j];
    if (ci != cj)
        return ci > cj ? -1 : 1;
    return (i > j) - (i < j);
}

/* The reasons of the row in w->x into w->reasons: TreeSHAP contributions, the top
 * reasons_top features by contribution descending with their names and values, and the
 * bias. Returns 0; 1 if a contribution is not finite (no reasons then); -1 if the engine
 * could not allocate (the model was checked at start: binary, no linear trees, reasons
 * that fit a message). */
static int make_reasons(const fd_detector *d, fd_worker *w)
{
    const fs_model *model = fs_bundle_model(d->bundle);
    int nf = fs_bundle_num_features(d->bundle);
    if (fs_model_predict_contrib(model, w->x, w->contrib, NULL) != 0)
        return -1;
    for (int i = 0; i < nf; i++)
        w->order[i] = i;
    tl_contrib = w->contrib;
    qsort(w->order, (size_t)nf, sizeof w->order[0], by_contribution);
    int n = d->cfg.reasons_top == 0 || d->cfg.reasons_top > nf ? nf : d->cfg.reasons_top;
    for (int k = 0; k < n; k++) {
        int i = w->order[k];
        w->top[k] = (fs_reason){fs_bundle_feature_name(d->bundle, i), w->x[i], w->contrib[i]};
    }
    /* Checked at start to fit, so only a contribution that is not finite (a model fault)
     * fails here: the score goes out without reasons (1), never held back. */
    if (fs_msg_format_reasons(w->reasons, FS_MSG_REASONS_MAX + 1, w->contrib[nf], w->top,
                              (size_t)n) < 0)
        return 1;
    return 0;
}

/* Parses and scores one message into its slot (any thread; w is the thread's scratch). */
static void score_one(const fd_detector *d, fd_worker *w, const rd_kafka_message_t *msg,
                      fd_slot *slot)
{
    fs_txn *t = &w->txn;
    char why[256];
    const char *topic = rd_kafka_topic_name(msg->rkt);
    slot->score = NAN;
    slot->kind = FD_SLOT_DEAD;
    free(slot->rkey); /* the slot's previous message's */
    slot->rkey = NULL;
    if (msg->payload == NULL) {
        snprintf(slot->reason, sizeof slot->reason, "%s[%" PRId32 "]@%" PRId64 ": empty payload",
                 topic, msg->partition, msg->offset);
        return;
    }
    if (fs_msg_parse_transaction(msg->payload, msg->len, t, why, sizeof why) != 0) {
        snprintf(slot->reason, sizeof slot->reason, "%s[%" PRId32 "]@%" PRId64 ": %s", topic,
                 msg->partition, msg->offset, why);
        return;
    }
    fs_profile blank, *profile = &blank;
    fs_profile_init(&blank);
    if (d->state != NULL) {
        char key[FS_PROFILE_KEY_MAX];
        int klen = fs_profile_key(t, key, sizeof key);
        if (klen < 0) {
            snprintf(slot->reason, sizeof slot->reason,
                     "%s[%" PRId32 "]@%" PRId64 ": transaction %s: customer key "
                     "(name_1|name_2|street|post_code) longer than %d bytes",
                     topic, msg->partition, msg->offset, t->transaction_id,
                     FS_PROFILE_KEY_MAX - 1);
            return;
        }
        /* The customer's state lives on the partition its key maps to (the producers'
         * default partitioner, consistent_random): a message elsewhere, or under another
         * key, is re-published there once, in this transaction, and scored when read back. */
        int32_t want = rd_kafka_msg_partitioner_consistent_random(
            d->in_topic, key, (size_t)klen, d->in_partitions, NULL, NULL);
        if (msg->key == NULL || msg->key_len != (size_t)klen ||
            memcmp(msg->key, key, (size_t)klen) != 0 || msg->partition != want) {
            slot->rkey = malloc((size_t)klen);
            if (slot->rkey == NULL) {
                slot->kind = FD_SLOT_REFUSED;
                snprintf(slot->reason, sizeof slot->reason, "out of memory");
                return;
            }
            memcpy(slot->rkey, key, (size_t)klen);
            slot->rkey_len = (size_t)klen;
            slot->rpart = want;
            slot->kind = FD_SLOT_REROUTE;
            return;
        }
        int full = 0;
        profile = fd_state_touch(d->state, msg->partition, key, (size_t)klen, t->time,
                                 t->transaction_time[0] != '\0', &full);
        if (profile == NULL) {
            slot->kind = FD_SLOT_REFUSED;
            snprintf(slot->reason, sizeof slot->reason, "%s",
                     full ? "customer state full (STATE_MAX_CUSTOMERS)"
                          : "customer state: partition not restored or out of memory");
            return;
        }
    }
    /* fs_bundle_score's two steps, keeping the features for the reasons. */
    double s;
    if (fs_bundle_features(d->bundle, t, profile, w->x, why, sizeof why) != 0) {
        snprintf(slot->reason, sizeof slot->reason,
                 "%s[%" PRId32 "]@%" PRId64 ": transaction %s: %s", topic, msg->partition,
                 msg->offset, t->transaction_id, why);
        return;
    }
    fs_model_predict(fs_bundle_model(d->bundle), w->x, &s, NULL);
    int flag = fs_bundle_flag(s, d->cfg.threshold);
    const char *reasons = NULL;
    if (d->cfg.reasons == FD_REASONS_ALL || (d->cfg.reasons == FD_REASONS_FLAGGED && flag)) {
        int r = make_reasons(d, w);
        if (r < 0) {
            slot->kind = FD_SLOT_REFUSED; /* the batch is read again after the pause */
            snprintf(slot->reason, sizeof slot->reason, "reasons: out of memory");
            return;
        }
        if (r > 0) {
            /* A model fault hits many rows: logged the 1st, 2nd, 4th, 8th... time per
             * scoring thread, not once per message. */
            unsigned long n = ++w->nonfinite;
            if ((n & (n - 1)) == 0) {
                svc_log_ctx ctx = {topic, msg->partition, msg->offset, t->transaction_id};
                SVC_LOG(SVC_LOG_WARN, &ctx,
                        "reasons left out: a contribution is not finite (%lu time(s) in "
                        "scoring thread %d)",
                        n, w->index);
            }
        } else {
            reasons = w->reasons;
        }
    }
    fs_scoring_txn block;
    fs_scoring_txn_of_record(&block, t);
    int n = format_slot(slot, t->transaction_id, s, flag, &block, reasons);
    if (n == -2) {
        slot->kind = FD_SLOT_REFUSED;
        snprintf(slot->reason, sizeof slot->reason, "out of memory");
        return;
    }
    if (n < 0) {
        snprintf(slot->reason, sizeof slot->reason,
                 "%s[%" PRId32 "]@%" PRId64 ": cannot format the scoring message", topic,
                 msg->partition, msg->offset);
        return;
    }
    slot->out_len = n;
    snprintf(slot->key, sizeof slot->key, "%s", t->transaction_id);
    slot->score = s;
    slot->kind = FD_SLOT_SCORED;
}

/* Re-publishes a message to the transactions topic under its customer key, on the
 * customer's partition, with its headers and where it came from. */
static rd_kafka_resp_err_t reroute(fd_detector *d, const rd_kafka_message_t *msg,
                                   const fd_slot *slot)
{
    rd_kafka_headers_t *orig = NULL, *h;
    char from[320];
    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig != NULL)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(1);
    snprintf(from, sizeof from, "%s[%" PRId32 "]@%" PRId64, rd_kafka_topic_name(msg->rkt),
             msg->partition, msg->offset);
    rd_kafka_header_add(h, "x-rerouted-from", -1, from, -1);
    rd_kafka_resp_err_t err = svc_kafka_produce_wait(
        d->producer, d->cfg.transactions_topic, slot->rpart, slot->rkey, slot->rkey_len,
        msg->payload, msg->len, h, txn_tag(d), -1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(h); /* on success the message owns them */
    return err;
}

/* Writes one changelog record (value NULL: a tombstone) to the state topic's partition p. */
static int changelog_record(int32_t p, const char *key, size_t key_len,
                            const unsigned char *value, size_t value_len, void *opaque)
{
    fd_detector *d = opaque;
    rd_kafka_resp_err_t err = svc_kafka_produce_wait(d->producer, d->cfg.state_topic, p, key,
                                                     key_len, value, value_len, NULL, txn_tag(d),
                                                     -1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SVC_LOG(SVC_LOG_WARN, NULL, "produce %s[%" PRId32 "]: %s", d->cfg.state_topic, p,
                rd_kafka_err2str(err));
        set_abort_why(d, "produce state", rd_kafka_err2str(err));
        return (int)err;
    }
    svc_counter_add(d->m.state_records, 1);
    return 0;
}

/* 1 if h holds only upload_id and upload_row headers (what the interface sends). */
static int only_upload_headers(const rd_kafka_headers_t *h)
{
    const char *name;
    const void *v;
    size_t len, i = 0;
    for (; rd_kafka_header_get_all(h, i, &name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        if (strcmp(name, "upload_id") != 0 && strcmp(name, "upload_row") != 0)
            return 0;
    return i > 0;
}

/* The headers a score carries over from its transaction: the upload identity the interface
 * sets (upload_id, upload_row; docs/streaming.md), every occurrence, unchanged. NULL when the
 * transaction has neither; otherwise owned by the caller. When they are all the transaction
 * has (every uploaded row), its parsed list itself is detached and handed on: building a
 * copy and freeing the original took a quarter of the main thread with uploaded rows. */
static rd_kafka_headers_t *upload_headers(rd_kafka_message_t *msg)
{
    static const char *const names[] = {"upload_id", "upload_row"};
    rd_kafka_headers_t *orig = NULL, *h = NULL;
    if (rd_kafka_message_headers(msg, &orig) != RD_KAFKA_RESP_ERR_NO_ERROR || orig == NULL)
        return NULL;
    if (only_upload_headers(orig) &&
        rd_kafka_message_detach_headers(msg, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return h;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const void *v;
        size_t len;
        for (size_t i = 0;
             rd_kafka_header_get(orig, i, names[k], &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            if (h == NULL)
                h = rd_kafka_headers_new(2);
            rd_kafka_header_add(h, names[k], -1, v, v != NULL ? (ssize_t)len : 0);
        }
    }
    return h;
}

/* Produces a scored slot, or the message as a dead letter. Returns the produce error. */
static rd_kafka_resp_err_t emit_one(fd_detector *d, rd_kafka_message_t *msg,
                                    const fd_slot *slot)
{
    rd_kafka_resp_err_t err;
    if (slot->kind == FD_SLOT_REROUTE) {
        err = reroute(d, msg, slot);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            svc_counter_add(d->m.rerouted, 1);
        return err;
    }
    if (slot->kind == FD_SLOT_SCORED) {
        rd_kafka_headers_t *h = upload_headers(msg);
        err = produce(d, d->cfg.scoring_topic, slot->key, strlen(slot->key), slot->out,
                      (size_t)slot->out_len, h);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            svc_counter_add(d->m.messages_out, 1);
        else if (h != NULL)
            rd_kafka_headers_destroy(h); /* on success the message owns them */
        return err;
    }
    /* The original key, payload and headers, then where it came from and why (logged). */
    char why[400];
    if (svc_kafka_dlq_produce(d->producer, d->cfg.dlq_topic, msg, slot->reason, txn_tag(d),
                              why, sizeof why) != 0) {
        SVC_LOG(SVC_LOG_WARN, NULL, "produce dead letter: %s", why);
        set_abort_why(d, "produce dead letter", why);
        return rd_kafka_fatal_error(d->producer, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR
                   ? RD_KAFKA_RESP_ERR__FATAL
                   : RD_KAFKA_RESP_ERR__FAIL; /* said why above */
    }
    svc_counter_add(d->m.messages_dlq, 1);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void score_share(fd_detector *d, fd_worker *w)
{
    int n = d->nbatch, k = d->pool.nthreads;
    if (d->state == NULL) {
        int from = (int)((long)n * w->index / k), to = (int)((long)n * (w->index + 1) / k);
        for (int i = from; i < to; i++)
            score_one(d, w, d->batch[i], &d->slots[i]);
        return;
    }
    /* With customer state each partition is one thread's, in batch (= offset) order, so
     * each customer's transactions update its record in their order. */
    for (int i = 0; i < n; i++)
        if (d->batch[i]->partition % k == w->index)
            score_one(d, w, d->batch[i], &d->slots[i]);
    uint64_t expired = 0;
    for (int32_t p = w->index; p < d->in_partitions; p += k)
        expired += fd_state_expire(d->state, p);
    if (expired > 0)
        svc_counter_add(d->m.state_expired, expired);
}

static void *worker_main(void *arg)
{
    fd_worker *w = arg;
    fd_detector *d = w->d;
    fd_pool *p = &d->pool;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->generation == seen && !p->quit)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        score_share(d, w);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Scores the whole batch into d->slots, using every scoring thread. */
static void score_batch(fd_detector *d)
{
    fd_pool *p = &d->pool;
    if (p->started == 0) {
        score_share(d, &p->workers[0]);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->generation++;
    p->pending = p->started;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    score_share(d, &p->workers[0]);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static int pool_start(fd_detector *d, int nthreads, char *errstr, size_t errstr_size)
{
    fd_pool *p = &d->pool;
    p->nthreads = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    /* From here on pool_stop cleans up, whatever fails. */
    p->workers = calloc((size_t)nthreads, sizeof *p->workers);
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (p->workers == NULL || p->threads == NULL) {
        free(p->workers);
        free(p->threads);
        p->workers = NULL;
        p->threads = NULL;
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
        snprintf(errstr, errstr_size, "out of memory for %d scoring threads", nthreads);
        return -1;
    }
    size_t nf = (size_t)fs_bundle_num_features(d->bundle);
    p->nworkers = nthreads;
    for (int i = 0; i < nthreads; i++) {
        fd_worker *w = &p->workers[i];
        w->d = d;
        w->index = i;
        w->x = calloc(nf, sizeof *w->x);
        w->contrib = calloc(nf + 1, sizeof *w->contrib);
        w->order = calloc(nf, sizeof *w->order);
        w->top = calloc(nf, sizeof *w->top);
        w->reasons = malloc(FS_MSG_REASONS_MAX + 1);
        if (w->x == NULL || w->contrib == NULL || w->order == NULL || w->top == NULL ||
            w->reasons == NULL) {
            p->nthreads = 1;
            snprintf(errstr, errstr_size, "out of memory for %d scoring threads", nthreads);
            return -1;
        }
    }
    for (int i = 1; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
            snprintf(errstr, errstr_size, "cannot start scoring thread %d", i);
            p->nthreads = p->started + 1; /* shares only for the threads that run */
            return -1;
        }
        p->started++;
    }
    return 0;
}

static void pool_stop(fd_detector *d)
{
    fd_pool *p = &d->pool;
    if (p->workers == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    for (int i = 0; i < p->nworkers; i++) {
        fd_worker *w = &p->workers[i];
        free(w->x);
        free(w->contrib);
        free(w->order);
        free(w->top);
        free(w->reasons);
    }
    free(p->workers);
    free(p->threads);
    p->workers = NULL;
}

/* Adds to l the offsets to commit with the messages msgs[0..n) (last offset + 1 per
 * partition) or, with first set, their first offsets (where to rewind after an abort); a
 * partition already in l keeps the lower first offset / the higher next offset. */
static void batch_offsets_add(rd_kafka_topic_partition_list_t *l,
                              rd_kafka_message_t *const *msgs, int n, int first)
{
    for (int i = 0; i < n; i++) {
        const rd_kafka_message_t *msg = msgs[i];
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic, msg->partition);
        if (p == NULL) {
            p = rd_kafka_topic_partition_list_add(l, topic, msg->partition);
            p->offset = first ? msg->offset : msg->offset + 1;
        } else if (!first && msg->offset + 1 > p->offset) {
            p->offset = msg->offset + 1;
        } else if (first && msg->offset < p->offset) {
            p->offset = msg->offset;
        }
    }
}

static void log_error(const char *what, const rd_kafka_error_t *error)
{
    SVC_LOG(SVC_LOG_WARN, NULL, "%s: %s (%s%s%s)", what, rd_kafka_error_string(error),
            rd_kafka_error_is_fatal(error) ? "fatal" : "",
            rd_kafka_error_txn_requires_abort(error) ? "abortable" : "",
            rd_kafka_error_is_retriable(error) ? "retriable" : "");
}

/* After an abort: the consumer goes back to the first offsets of the aborted batch and of
 * the batch collected after it (dropped by the caller), so both are read and processed
 * again. Returns -1 if any partition could not be rewound: going on would let the next
 * commit skip the aborted messages, so the caller ends the run (a restart resumes from the
 * committed offsets). */
static int rewind_batch(fd_detector *d, int with_inflight)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    if (with_inflight)
        batch_offsets_add(l, d->fl_batch, d->fl_n, 1);
    batch_offsets_add(l, d->batch, d->nbatch, 1);
    int rc = svc_kafka_seek(d->consumer, l, FD_TXN_CALL_MS, "rewind after abort");
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/* A batch that was not committed: counts toward readiness and the pause before the batch
 * is read again (abort_backoff). */
static void count_abort(fd_detector *d)
{
    atomic_fetch_add(&d->aborts_in_row, 1);
    atomic_fetch_add(&d->aborts_total, 1);
}

/* Aborts the open transaction (producer only). Returns 0, or -1 if that failed fatally. */
static int abort_txn(fd_detector *d)
{
    atomic_store(&d->aborted_seq, atomic_load(&d->txn_seq));
    rd_kafka_error_t *error = rd_kafka_abort_transaction(d->producer, FD_TXN_CALL_MS);
    if (error != NULL) {
        log_error("abort_transaction", error);
        int fatal = rd_kafka_error_is_fatal(error) || !rd_kafka_error_is_retriable(error);
        rd_kafka_error_destroy(error);
        if (fatal)
            return -1;
        /* Retriable (timed out): try once more, then give up (fatal). */
        error = rd_kafka_abort_transaction(d->producer, FD_TXN_CALL_MS);
        if (error != NULL) {
            log_error("abort_transaction (retry)", error);
            rd_kafka_error_destroy(error);
            return -1;
        }
    }
    svc_counter_add(d->m.txn_aborted, 1);
    count_abort(d);
    return 0;
}

/* Aborts the open transaction of the batch in hand (main thread, nothing in flight) and
 * rewinds. Returns 0, or -1 if that failed fatally. */
static int abort_batch(fd_detector *d)
{
    if (d->state != NULL)
        fd_state_rollback(d->state, 0);
    if (abort_txn(d) != 0)
        return -1;
    SVC_LOG(SVC_LOG_WARN, NULL, "transaction aborted; %d message(s) will be consumed again",
            d->nbatch);
    return rewind_batch(d, 0);
}

/* Sends the offsets to the open transaction and commits it (committer thread): 0 committed,
 * 1 aborted, -1 fatal. */
static int commit_txn(fd_detector *d, const rd_kafka_topic_partition_list_t *offsets,
                      const rd_kafka_consumer_group_metadata_t *cgmd, double *t_sent)
{
    rd_kafka_error_t *serr =
        rd_kafka_send_offsets_to_transaction(d->producer, offsets, cgmd, FD_TXN_CALL_MS);
    *t_sent = svc_now_s();
    if (serr != NULL) {
        log_error("send_offsets_to_transaction", serr);
        if (!atomic_load(&d->txn_dlq_refused))
            set_abort_why(d, "send_offsets_to_transaction", rd_kafka_error_string(serr));
        int fatal = rd_kafka_error_is_fatal(serr);
        rd_kafka_error_destroy(serr);
        if (fatal)
            return -1;
        return abort_txn(d) == 0 ? 1 : -1;
    }
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *error = rd_kafka_commit_transaction(d->producer, FD_TXN_CALL_MS);
        if (error == NULL)
            return 0;
        log_error("commit_transaction", error);
        int fatal = rd_kafka_error_is_fatal(error);
        int must_abort = rd_kafka_error_txn_requires_abort(error) || attempt >= 5;
        /* A refused dead letter already said so (dr_cb); keep that, it names the fix. */
        if (must_abort && !atomic_load(&d->txn_dlq_refused))
            set_abort_why(d, "commit_transaction", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error); /* retriable: commit again */
        if (fatal)
            return -1;
        if (must_abort)
            return abort_txn(d) == 0 ? 1 : -1;
    }
}

static void *committer_main(void *arg)
{
    fd_detector *d = arg;
    fd_committer *c = &d->commit;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->state != FD_COMMIT_REQUESTED && !c->quit)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->state != FD_COMMIT_REQUESTED)
            break; /* quit, nothing requested */
        rd_kafka_topic_partition_list_t *offsets = c->offsets;
        rd_kafka_consumer_group_metadata_t *cgmd = c->cgmd;
        c->offsets = NULL;
        c->cgmd = NULL;
        pthread_mutex_unlock(&c->mu);
        double t_sent = 0;
        int r = commit_txn(d, offsets, cgmd, &t_sent);
        double t = svc_now_s(), wall = now_real_ms();
        rd_kafka_topic_partition_list_destroy(offsets);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        pthread_mutex_lock(&c->mu);
        c->result = r;
        c->t_sent = t_sent;
        c->t_done = t;
        c->wall_done = wall;
        c->state = FD_COMMIT_DONE;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int committer_start(fd_detector *d, char *errstr, size_t errstr_size)
{
    fd_committer *c = &d->commit;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->state = FD_COMMIT_IDLE;
    if (pthread_create(&c->thread, NULL, committer_main, d) != 0) {
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->cv);
        snprintf(errstr, errstr_size, "cannot start the committer thread");
        return -1;
    }
    c->started = 1;
    return 0;
}

static void committer_stop(fd_detector *d)
{
    fd_committer *c = &d->commit;
    if (!c->started)
        return;
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    c->started = 0;
}

/* 1 while a commit requested from the committer thread has not ended. */
static int commit_busy(fd_detector *d)
{
    fd_committer *c = &d->commit;
    pthread_mutex_lock(&c->mu);
    int busy = c->state == FD_COMMIT_REQUESTED;
    pthread_mutex_unlock(&c->mu);
    return busy;
}

/* Waits until the requested commit, if any, has ended (committed, aborted or failed). */
static void commit_wait(fd_detector *d)
{
    fd_committer *c = &d->commit;
    if (!c->started)
        return;
    pthread_mutex_lock(&c->mu);
    while (c->state == FD_COMMIT_REQUESTED)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Waits for the batch in flight and settles it: committed -> metrics; aborted -> the batch
 * collected since is dropped and, with rewind set, the consumer rewound to the first
 * offsets of both (not at a rebalance, which drops the assignment). Returns 0, or -1 on a
 * fatal error. */
static int finish_inflight(fd_detector *d, int rewind)
{
    fd_committer *c = &d->commit;
    if (d->fl_n == 0)
        return 0;
    commit_wait(d);
    pthread_mutex_lock(&c->mu);
    int result = c->result;
    double t_sent = c->t_sent, t_done = c->t_done, wall = c->wall_done;
    c->state = FD_COMMIT_IDLE;
    pthread_mutex_unlock(&c->mu);
    if (result < 0) {
        drop_inflight(d);
        return -1;
    }
    if (result > 0) {
        SVC_LOG(SVC_LOG_WARN, NULL,
                "transaction aborted; %d message(s) will be consumed again (and %d collected "
                "after them)",
                d->fl_n, d->nbatch);
        if (d->state != NULL)
            fd_state_rollback(d->state, 1); /* the batch in hand, then the one in flight */
        int rc = rewind ? rewind_batch(d, 1) : 0;
        drop_batch(d);
        drop_inflight(d);
        return rc;
    }
    if (d->state != NULL) {
        fd_state_commit(d->state);
        state_gauges(d);
    }
    const double *t = d->fl_t;
    SVC_LOG(SVC_LOG_DEBUG, NULL,
            "committed %d message(s): collect %.1f ms, score %.1f ms, produce %.1f ms, "
            "offsets %.1f ms, commit %.1f ms",
            d->fl_n, (t[0] - d->fl_poll_ts[0]) * 1e3, (t[1] - t[0]) * 1e3, (t[2] - t[1]) * 1e3,
            (t_sent - t[2]) * 1e3, (t_done - t_sent) * 1e3);
    svc_counter_add(d->m.txn_committed, 1);
    if (atomic_exchange(&d->aborts_in_row, 0) > 0)
        SVC_LOG(SVC_LOG_INFO, NULL, "transaction committed again after aborted ones");
    svc_counter_add(d->m.messages_in, (uint64_t)d->fl_n);
    svc_histogram_observe(d->m.batch_size, (double)d->fl_n);
    for (int i = 0; i < d->fl_n; i++) {
        if (!isnan(d->fl_slots[i].score)) /* NaN: dead-lettered, not scored */
            svc_histogram_observe(d->m.score, d->fl_slots[i].score);
        svc_histogram_observe(d->m.processing, t_done - d->fl_poll_ts[i]);
        rd_kafka_timestamp_type_t tt;
        int64_t ts = rd_kafka_message_timestamp(d->fl_batch[i], &tt);
        if (ts > 0)
            svc_histogram_observe(d->m.message_age, (wall - (double)ts) / 1e3);
    }
    drop_inflight(d);
    return 0;
}

/* Opens the transaction of the scored batch in hand and produces it, then hands it over as
 * the batch in flight and asks the committer thread to send its offsets (exactly this
 * batch's: last offset + 1 per partition) and commit. Nothing may be in flight. Returns 0
 * (handed over, or aborted and rewound), -1 fatal. */
static int start_batch(fd_detector *d, double t_score0, double t_scored)
{
    rd_kafka_error_t *error = NULL;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    int rc = -1;

    atomic_store(&d->txn_delivery_errors, 0);
    atomic_store(&d->txn_dlq_refused, 0);
    for (int i = 0; i < d->nbatch; i++) {
        if (d->slots[i].kind != FD_SLOT_REFUSED)
            continue;
        /* A customer the state has no room for: nothing of the batch is produced, its state
         * changes are undone and it is read again after the abort pause (readiness says
         * why); no customer is ever evicted to make room. */
        const rd_kafka_message_t *m = d->batch[i];
        svc_log_ctx ctx = {rd_kafka_topic_name(m->rkt), m->partition, m->offset, NULL};
        SVC_LOG(SVC_LOG_ERROR, &ctx, "batch not scored: %s", d->slots[i].reason);
        set_abort_why(d, "customer state", d->slots[i].reason);
        if (d->state != NULL)
            fd_state_rollback(d->state, 0);
        count_abort(d);
        return rewind_batch(d, 0);
    }
    atomic_fetch_add(&d->txn_seq, 1);
    d->txn_started = svc_now_s();
    error = rd_kafka_begin_transaction(d->producer);
    if (error != NULL) {
        log_error("begin_transaction", error);
        goto out; /* only fails on misuse or a fatal state */
    }
    for (int i = 0; i < d->nbatch; i++) {
        rd_kafka_resp_err_t err = emit_one(d, d->batch[i], &d->slots[i]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (err != RD_KAFKA_RESP_ERR__FAIL) { /* __FAIL: emit_one has said why */
                SVC_LOG(SVC_LOG_WARN, NULL, "produce: %s", rd_kafka_err2str(err));
                set_abort_why(d, "produce", rd_kafka_err2str(err));
            }
            if (err == RD_KAFKA_RESP_ERR__FATAL)
                goto out;
            rc = abort_batch(d);
            goto out;
        }
    }
    if (d->state != NULL && fd_state_each_change(d->state, changelog_record, d) != 0) {
        rc = abort_batch(d);
        goto out;
    }
    double t_produced = svc_now_s();
    offsets = rd_kafka_topic_partition_list_new(8);
    batch_offsets_add(offsets, d->batch, d->nbatch, 0);
    cgmd = rd_kafka_consumer_group_metadata(d->consumer);
    if (cgmd == NULL) {
        SVC_LOG(SVC_LOG_WARN, NULL, "no consumer group metadata");
        set_abort_why(d, "send offsets", "no consumer group metadata");
        rc = abort_batch(d);
        goto out;
    }

    /* Hand over: the batch in hand becomes the batch in flight (its arrays swap with the
     * empty in-flight ones) and the committer thread commits it. */
    rd_kafka_message_t **mb = d->fl_batch;
    double *pt = d->fl_poll_ts;
    fd_slot *sl = d->fl_slots;
    d->fl_batch = d->batch;
    d->fl_poll_ts = d->poll_ts;
    d->fl_slots = d->slots;
    d->fl_n = d->nbatch;
    d->batch = mb;
    d->poll_ts = pt;
    d->slots = sl;
    d->nbatch = 0;
    if (d->state != NULL)
        fd_state_hand_over(d->state);
    d->fl_t[0] = t_score0;
    d->fl_t[1] = t_scored;
    d->fl_t[2] = t_produced;
    pthread_mutex_lock(&d->commit.mu);
    d->commit.offsets = offsets; /* the committer thread owns them now */
    d->commit.cgmd = cgmd;
    offsets = NULL;
    cgmd = NULL;
    d->commit.state = FD_COMMIT_REQUESTED;
    pthread_cond_broadcast(&d->commit.cv);
    pthread_mutex_unlock(&d->commit.mu);
    rc = 0;
out:
    if (error != NULL)
        rd_kafka_error_destroy(error);
    if (offsets != NULL)
        rd_kafka_topic_partition_list_destroy(offsets);
    if (cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    return rc;
}

/* Fetches the producer's metadata of the topics it writes now (scores, dead letters, the
 * state changelog, re-routed transactions): otherwise the first batch waits for
 * librdkafka's next metadata refresh (up to a second) before its messages can be
 * partitioned, which is most of the first transaction's time, and messages still waiting
 * for a topic's metadata when their transaction aborts are not purged by the abort but
 * wait out their timeout (transaction.timeout.ms, 10 s). Failures only cost that wait,
 * so they are logged and ignored. */
static void warm_up_topics(fd_detector *d)
{
    const char *names[4] = {d->cfg.scoring_topic, d->cfg.dlq_topic, d->cfg.state_topic,
                            d->cfg.transactions_topic};
    for (int i = 0; i < 4; i++) {
        if (names[i] == NULL || (i == 2 && d->state == NULL))
            continue;
        rd_kafka_topic_t *rkt = i < 3 ? d->out_topics[i] : d->in_topic;
        if (rkt == NULL && i < 3)
            rkt = d->out_topics[i] = rd_kafka_topic_new(d->producer, names[i], NULL);
        if (rkt == NULL)
            continue;
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(d->producer, 0, rkt, &md, 5000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            SVC_LOG(SVC_LOG_DEBUG, NULL, "metadata of %s: %s", names[i], rd_kafka_err2str(err));
        else
            rd_kafka_metadata_destroy(md);
    }
}

/* Partitions of topic, from the producer's metadata: > 0, 0 if the topic does not exist,
 * -1 if the brokers did not answer. */
static int topic_partitions(fd_detector *d, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(d->producer, topic, NULL);
    if (rkt == NULL)
        return -1;
    const rd_kafka_metadata_t *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(d->producer, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        n = 0;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* With customer state: waits until the transactions topic and the state topic exist (not
 * ready meanwhile, saying which is missing) and checks they have as many partitions (the
 * state of transactions partition p lives in state partition p). Returns 0, 1 if stopped,
 * -1 if they differ (a deployment error the operator must fix). */
static int check_state_topic(fd_detector *d, volatile sig_atomic_t *stop)
{
    int logged = 0;
    while (!*stop) {
        int in = topic_partitions(d, d->cfg.transactions_topic);
        int st = topic_partitions(d, d->cfg.state_topic);
        if (in > 0 && st > 0) {
            if (in != st) {
                SVC_LOG(SVC_LOG_ERROR, NULL,
                        "state topic %s has %d partition(s), %s has %d: they must be equal "
                        "(create %s compacted with %d partitions)",
                        d->cfg.state_topic, st, d->cfg.transactions_topic, in,
                        d->cfg.state_topic, in);
                return -1;
            }
            d->in_partitions = in;
            atomic_store(&d->topics_ok, 1);
            return 0;
        }
        char why[256];
        snprintf(why, sizeof why, "topic %s %s",
                 in > 0 ? d->cfg.state_topic : d->cfg.transactions_topic,
                 in < 0 || st < 0 ? "unknown: brokers did not answer" : "does not exist yet");
        pthread_mutex_lock(&d->why_mu);
        snprintf(d->topics_why, sizeof d->topics_why, "%s", why);
        pthread_mutex_unlock(&d->why_mu);
        if (!logged++)
            SVC_LOG(SVC_LOG_WARN, NULL, "waiting: %s", why);
        svc_sleep_ms(1000, stop);
    }
    return 1;
}

static int init_transactions(fd_detector *d, volatile sig_atomic_t *stop)
{
    while (!*stop) {
        rd_kafka_error_t *error = rd_kafka_init_transactions(d->producer, 10000);
        if (error == NULL) {
            atomic_store(&d->txn_ready, 1);
            SVC_LOG(SVC_LOG_INFO, NULL, "transactional producer ready (transactional.id %s)",
                    d->cfg.transactional_id);
            return 0;
        }
        log_error("init_transactions", error);
        int fatal = rd_kafka_error_is_fatal(error) || !rd_kafka_error_is_retriable(error);
        rd_kafka_error_destroy(error);
        if (fatal)
            return -1;
    }
    return 1;
}

/* After an aborted transaction (nothing in flight, nothing collected: both were rewound),
 * pauses before the batch is read again, longer with every abort in a row, so a fault that
 * persists is retried without spinning; the log says how long and why. */
static void abort_backoff(fd_detector *d, volatile sig_atomic_t *stop)
{
    int total = atomic_load(&d->aborts_total);
    if (total == d->aborts_waited)
        return; /* no abort since the last pause */
    d->aborts_waited = total;
    int aborts = atomic_load(&d->aborts_in_row);
    if (aborts < 1)
        aborts = 1;
    long ms = FD_ABORT_BACKOFF_MIN_MS;
    for (int i = 1; i < aborts && ms < FD_ABORT_BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > FD_ABORT_BACKOFF_MAX_MS)
        ms = FD_ABORT_BACKOFF_MAX_MS;
    char why[sizeof d->abort_why];
    pthread_mutex_lock(&d->why_mu);
    snprintf(why, sizeof why, "%s", d->abort_why);
    pthread_mutex_unlock(&d->why_mu);
    SVC_LOG(aborts >= FD_ABORTS_NOT_READY ? SVC_LOG_ERROR : SVC_LOG_WARN, NULL,
            "%d transaction(s) aborted in a row (%s); reading the batch again in %ld ms",
            aborts, why, ms);
    svc_sleep_ms(ms, stop);
}

int fd_detector_run(fd_detector *d, volatile sig_atomic_t *stop)
{
    int rc = init_transactions(d, stop);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return 0; /* stopped before Kafka answered */
    d->stop = stop;
    if (d->state != NULL) {
        rc = check_state_topic(d, stop);
        if (rc < 0)
            return -1;
        if (rc > 0)
            return 0;
    }
    warm_up_topics(d);

    rd_kafka_resp_err_t err = rd_kafka_subscribe(d->consumer, d->subscription);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "subscribe %s: %s", d->cfg.transactions_topic,
                rd_kafka_err2str(err));
        return -1;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "consuming %s as group %s, producing to %s (dead letters %s)",
            d->cfg.transactions_topic, d->cfg.group_id, d->cfg.scoring_topic, d->cfg.dlq_topic);

    rc = 0;
    while (!*stop) {
        if (atomic_load(&d->fatal)) {
            /* E.g. FENCED_INSTANCE_ID: another instance took this INSTANCE_ID. Polling a
             * dead client would stall its partitions while looking ready. */
            SVC_LOG(SVC_LOG_ERROR, NULL, "fatal Kafka error reported: ending the run");
            rc = -1;
            break;
        }
        /* Collect a batch: wait for the first message, then up to batch_timeout_ms more. */
        double deadline = 0;
        /* Adaptive batches close no earlier than txn_interval_ms after the last transaction
         * began (txn_started is only set by start_batch, after this loop). */
        const double txn_open = d->txn_started + d->cfg.txn_interval_ms / 1e3;
        int idle = 0;
        double now = svc_now_s(); /* one clock read per poll */
        while (d->nbatch < d->cfg.batch_size && !*stop) {
            int wait_ms = 100;
            if (d->nbatch > 0) {
                double left = deadline - now;
                if (left <= 0)
                    break;
                wait_ms = (int)(left * 1e3) + 1;
                /* Adaptive: once txn_interval_ms has passed since the previous transaction
                 * began and it has ended, the batch closes with what is already queued, so
                 * a quiet stream gets small transactions committed at once and a busy one
                 * larger ones at that cadence, grown while the previous commit ran; until
                 * then the poll waits for the interval, then short polls see the commit's
                 * end at once. */
                if (d->cfg.batch_adaptive) {
                    double open = txn_open - now;
                    if (open > 0) {
                        int open_ms = (int)(open * 1e3) + 1;
                        if (open_ms < wait_ms)
                            wait_ms = open_ms;
                    } else if (!commit_busy(d))
                        wait_ms = 0;
                    else if (wait_ms > FD_ADAPTIVE_POLL_MS)
                        wait_ms = FD_ADAPTIVE_POLL_MS;
                }
            }
            rd_kafka_message_t *msg = rd_kafka_consumer_poll(d->consumer, wait_ms);
            now = svc_now_s();
            if (msg == NULL) {
                if (d->nbatch == 0) {
                    idle = 1;
                    break; /* idle: refresh the lag, check the stop flag */
                }
                if (d->cfg.batch_adaptive && now >= txn_open && !commit_busy(d))
                    break; /* nothing more queued and nothing in flight: close the batch */
                continue;
            }
            if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                    atomic_store(&d->fatal, 1);
                if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    SVC_LOG(SVC_LOG_WARN, NULL, "consume: %s", rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                continue;
            }
            if (atomic_load_explicit(&d->brokers_down, memory_order_relaxed))
                atomic_store(&d->brokers_down, 0);
            if (d->nbatch == 0)
                deadline = now + d->cfg.batch_timeout_ms / 1e3;
            d->idle_since = 0;
            d->poll_ts[d->nbatch] = now;
            d->batch[d->nbatch++] = msg;
        }
        /* Score the batch in hand while the previous one commits; it is produced only
         * once that commit has settled (after an abort it is dropped and read again). */
        double t_score0 = svc_now_s();
        if (d->nbatch > 0)
            score_batch(d);
        double t_scored = svc_now_s();
        if (finish_inflight(d, 1) != 0) {
            rc = -1;
            break;
        }
        rd_kafka_poll(d->producer, 0); /* delivery reports and errors, nothing in flight */
        if (d->nbatch > 0) {
            int prc = start_batch(d, t_score0, t_scored);
            drop_batch(d); /* empty unless it was aborted */
            if (prc != 0) {
                rc = -1;
                break;
            }
        }
        abort_backoff(d, stop);
        double t = svc_now_s();
        /* Idle for a second with nothing in flight or collected: no transaction is left to
         * show the fault persists (an instance without partitions or traffic would otherwise
         * stay not ready until its next commit). The second spares the gap between a rewind
         * and the refetch of the aborted batch. */
        if (idle && d->fl_n == 0 && d->nbatch == 0) {
            if (d->idle_since == 0)
                d->idle_since = t;
            else if (t - d->idle_since >= 1.0)
                forget_aborts(d, "idle with nothing in flight");
        }
        if (t - d->last_lag_check >= 1.0) {
            int64_t lag = svc_kafka_consumer_lag(d->consumer);
            if (lag >= 0)
                svc_gauge_set(d->m.consumer_lag, (double)lag);
            d->last_lag_check = t;
            /* Brokers said down: readiness comes back once a metadata request answers
             * (messages arriving or a rebalance also clear the flag). */
            if (atomic_load(&d->brokers_down) &&
                svc_kafka_brokers_reachable(d->consumer, 1000)) {
                atomic_store(&d->brokers_down, 0);
                SVC_LOG(SVC_LOG_INFO, NULL, "kafka reachable again");
            }
        }
    }

    if (finish_inflight(d, 1) != 0)
        rc = -1;
    drop_batch(d);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s: closing the consumer", rc ? "fatal error" : "stopping");
    err = rd_kafka_consumer_close(d->consumer);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        SVC_LOG(SVC_LOG_WARN, NULL, "consumer close: %s", rd_kafka_err2str(err));
    if (rc == 0)
        rd_kafka_flush(d->producer, 5000);
    return rc;
}
