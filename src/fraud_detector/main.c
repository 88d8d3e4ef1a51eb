/*
 * fraud_detector: the real-time scoring service. Reads its configuration (environment,
 * then flags; --help lists everything), starts the health/metrics endpoint, loads the model
 * bundle, then runs the exactly-once consume-score-produce loop (fd_detector.h) until
 * SIGTERM/SIGINT. Exit status: 0 after a clean shutdown, 1 after a fatal error (a supervisor
 * restarts the process; also a bundle that cannot be loaded, or the detector's own
 * allocations / a thread / a Kafka client failing at start; an allocation failure inside
 * librdkafka aborts the process instead), 2 for a bad configuration (an option out of
 * range, a KAFKA_* property librdkafka refuses).
 */
#include <malloc.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fd_detector.h"
#include "fs_bundle.h"
#include "fs_version.h"
#include "svc_config.h"
#include "svc_http.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_signal.h"

#define SERVICE "fraud_detector"

static const char *o_bootstrap, *o_in_topic, *o_out_topic, *o_dlq_topic, *o_group, *o_model_dir,
    *o_instance, *o_txn_id, *o_log_level, *o_metrics_addr, *o_state_topic, *o_reasons;
static double o_threshold;
static int o_static, o_state, o_adaptive;
static long o_batch_size, o_batch_timeout, o_txn_interval, o_threads, o_metrics_port,
    o_expiry_days, o_max_customers, o_reasons_top;

static const svc_option options[] = {
    SVC_OPT_BOOTSTRAP(&o_bootstrap),
    SVC_OPT_TRANSACTIONS_TOPIC(&o_in_topic),
    SVC_OPT_SCORING_TOPIC(&o_out_topic),
    SVC_OPT_DLQ_TOPIC("transactions.dlq", &o_dlq_topic),
    SVC_OPT_GROUP_ID("fraud_detector", &o_group),
    {"MODEL_DIR", "--model-dir", SVC_OPT_STRING, "models/default", 0, -1,
     "model bundle directory (model.txt, stats.json, metadata.json)", &o_model_dir},
    {"FRAUD_THRESHOLD", "--threshold", SVC_OPT_DOUBLE, NULL, 0, 1,
     "fraud_flag = score >= threshold (unset: the bundle's threshold)", &o_threshold},
    {"BATCH_SIZE", "--batch-size", SVC_OPT_INT, "10000", 1, 100000,
     "messages per Kafka transaction at most", &o_batch_size},
    {"BATCH_TIMEOUT_MS", "--batch-timeout-ms", SVC_OPT_INT, "50", 1, 60000,
     "longest wait to fill a batch after its first message", &o_batch_timeout},
    {"BATCH_ADAPTIVE", "--batch-adaptive", SVC_OPT_BOOL, "true", 0, -1,
     "also close a batch once nothing more is queued and the previous transaction has "
     "ended (small quick transactions when traffic is light, large under load)",
     &o_adaptive},
    {"TXN_INTERVAL_MS", "--txn-interval-ms", SVC_OPT_INT, "25", 0, 60000,
     "adaptive batches: shortest time between the starts of two transactions while "
     "messages keep coming (0: back to back); a message after a quiet spell is committed "
     "at once",
     &o_txn_interval},
    {"SCORING_THREADS", "--scoring-threads", SVC_OPT_INT, "2", 1, 64,
     "threads parsing and scoring each batch (the main thread included)", &o_threads},
    {"STATE_TOPIC", "--state-topic", SVC_OPT_STRING, "customer-state", 0, -1,
     "compacted changelog of the customer state (as many partitions as the transactions "
     "topic)",
     &o_state_topic},
    {"STATE_EXPIRY_DAYS", "--state-expiry-days", SVC_OPT_INT, "90", 1, 36500,
     "a customer idle this many days of event time starts afresh (fraudctl score uses the "
     "default, 90)",
     &o_expiry_days},
    {"STATE_MAX_CUSTOMERS", "--state-max-customers", SVC_OPT_INT, "5000000", 1, 1000000000,
     "customers one instance may hold (~250 bytes each); beyond it batches wait, not ready, "
     "nothing is evicted",
     &o_max_customers},
    {"STATE", "--state", SVC_OPT_BOOL, "true", 0, -1,
     "keep customer state; false scores every customer as new (benchmarks only: scores then "
     "differ from fraudctl score)",
     &o_state},
    {"REASONS", "--reasons", SVC_OPT_STRING, "flagged", 0, -1,
     "TreeSHAP reasons in the scoring message: flagged (rows with fraud_flag=1), all or off",
     &o_reasons},
    {"REASONS_TOP", "--reasons-top", SVC_OPT_INT, "5", 0, 10000,
     "features per reasons, largest contribution first (0: all, then bias + contributions = "
     "the raw score)",
     &o_reasons_top},
    SVC_OPT_INSTANCE_ID(&o_instance),
    {"TRANSACTIONAL_ID", "--transactional-id", SVC_OPT_STRING, NULL, 0, -1,
     "Kafka transactional.id, stable per instance (unset: fraud_detector-<instance>)",
     &o_txn_id},
    SVC_OPT_STATIC_MEMBERSHIP(&o_static),
    SVC_OPT_LOG_LEVEL(&o_log_level),
    SVC_OPT_METRICS_ADDR(&o_metrics_addr),
    SVC_OPT_METRICS_PORT("8001", &o_metrics_port),
};

/* Readiness: the model is loaded and the detector says Kafka is usable. Runs on the HTTP
 * thread: it reads atomics, and fd_detector_ready takes the detector's short lock on the
 * abort reason (never held across a Kafka call), so it never waits on the loop. */
static atomic_int model_loaded;
static fd_detector *_Atomic detector;

static int ready(void *arg, char *reason, size_t reason_size)
{
    (void)arg;
    if (!atomic_load(&model_loaded)) {
        snprintf(reason, reason_size, "model bundle not loaded");
        return 0;
    }
    fd_detector *d = atomic_load(&detector);
    if (d == NULL) {
        snprintf(reason, reason_size, "kafka clients not created");
        return 0;
    }
    return fd_detector_ready(d, reason, reason_size);
}

int main(int argc, char **argv)
{
    char err[1024];
    char host[256];
    char txn_id[512];
    int status = 1;
    svc_metrics *metrics = NULL;
    svc_http *http = NULL;
    fs_bundle *bundle = NULL;
    fd_detector *d = NULL;

    /* No fastbins in glibc's allocator. Messages and their headers are allocated on this
     * thread and freed on librdkafka's: with the interface's upload headers, taking such
     * chunks off glibc's fastbins (memory last written by the other core) made malloc a fifth
     * of the main thread's time in a perf profile. End to end with those headers the detector
     * took 7.1-7.3 ms of CPU per 1000 transactions with fastbins, 6.0-6.7 without (before
     * it handed the headers on: 8.8-9.5 and 7.1-7.9; docs/streaming.md, "Uploaded rows"). */
    mallopt(M_MXFAST, 0);

    int prc = svc_config_start(SERVICE, "scores transactions from Kafka, exactly once", options,
                               sizeof options / sizeof options[0], argc, argv, &o_log_level);
    if (prc != SVC_CONFIG_OK)
        return prc == SVC_CONFIG_EXIT ? 0 : 2;
    int reasons = fd_reasons_mode(o_reasons);
    if (reasons < 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "bad configuration: REASONS=%s: expected flagged, all or off",
                o_reasons);
        return 2;
    }
    o_instance = svc_instance_name(o_instance, host, sizeof host);
    if (o_txn_id == NULL) {
        snprintf(txn_id, sizeof txn_id, "%s-%s", SERVICE, o_instance);
        o_txn_id = txn_id;
    }
    svc_config_log(options, sizeof options / sizeof options[0]);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s %s starting, instance %s, transactional.id %s", SERVICE,
            fs_version(), o_instance, o_txn_id);

    if (svc_signal_install() != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot install signal handlers");
        goto out;
    }
    metrics = svc_metrics_new();
    if (metrics == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "out of memory");
        goto out;
    }
    svc_gauge *g_model = svc_metrics_gauge(metrics, "fraud_detector_model_loaded",
                                           "1 once the model bundle is loaded.", NULL);

    bundle = fs_bundle_load(o_model_dir, err, sizeof err);
    if (bundle == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "model bundle %s: %s", o_model_dir, err);
        goto out;
    }
    double threshold = isnan(o_threshold) ? fs_bundle_threshold(bundle) : o_threshold;
    atomic_store(&model_loaded, 1);
    svc_gauge_set(g_model, 1);
    SVC_LOG(SVC_LOG_INFO, NULL,
            "model bundle %s loaded: %d features, threshold %.17g, engine ISA %s",
            o_model_dir, fs_bundle_num_features(bundle), threshold,
            fs_model_isa(fs_bundle_model(bundle)));

    fd_config cfg = {
        .transactions_topic = o_in_topic,
        .scoring_topic = o_out_topic,
        .dlq_topic = o_dlq_topic,
        .group_id = o_group,
        .transactional_id = o_txn_id,
        .group_instance_id = o_static ? o_instance : NULL,
        .threshold = threshold,
        .batch_size = (int)o_batch_size,
        .batch_timeout_ms = (int)o_batch_timeout,
        .batch_adaptive = o_adaptive,
        .txn_interval_ms = (int)o_txn_interval,
        .scoring_threads = (int)o_threads,
        .bootstrap = o_bootstrap,
        .state_topic = o_state ? o_state_topic : NULL,
        .state_expiry_s = (long long)o_expiry_days * 86400,
        .state_max_customers = (size_t)o_max_customers,
        .reasons = reasons,
        .reasons_top = (int)o_reasons_top,
    };
    int config_error = 0;
    d = fd_detector_new(&cfg, bundle, metrics, &config_error, err, sizeof err);
    if (d == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s: %s", config_error ? "bad configuration" : "startup",
                err);
        status = config_error ? 2 : 1;
        goto out;
    }
    atomic_store(&detector, d);
    /* The endpoint starts once every series is registered (the detector registers its own),
     * so the first scrape already sees them all; liveness before this point is the
     * process itself (loading a bundle takes milliseconds). */
    http = svc_http_start(o_metrics_addr, (int)o_metrics_port, metrics, ready, NULL, err,
                          sizeof err);
    if (http == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "metrics endpoint: %s", err);
        goto out;
    }
    if (fd_detector_run(d, &svc_stop_flag) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "fatal Kafka error: exiting so the supervisor restarts us");
        goto out;
    }
    status = 0;
    SVC_LOG(SVC_LOG_INFO, NULL, "stopped cleanly");
out:
    atomic_store(&detector, NULL);
    svc_http_stop(http); /* first, so the readiness callback no longer sees the detector */
    fd_detector_free(d);
    fs_bundle_free(bundle);
    svc_metrics_free(metrics);
    return status;
}
