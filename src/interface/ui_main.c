/*
 * interface: the web UI and JSON API of the fraud-scoring pipeline. Uploads CSV files to the
 * transactions topic and shows results from PostgreSQL. Configuration from the environment
 * (see --help); shutdown on SIGTERM/SIGINT: stop taking requests, flush the producer, exit.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_version.h"
#include "svc_config.h"
#include "svc_kafka.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_signal.h"
#include "ui_db.h"
#include "ui_health.h"
#include "ui_http.h"
#include "ui_upload.h"

#define SERVICE "interface"
#define FLUSH_TIMEOUT_MS 15000
#define PASSWORD_MAX 1024

static const char *o_addr, *o_bootstrap, *o_topic, *o_db_url, *o_password_file,
    *o_detector_url, *o_writer_url, *o_web_dir, *o_log_level;
static long o_port, o_max_bytes, o_max_rows, o_produce_wait;
static double o_threshold;

static const svc_option options[] = {
    {"LISTEN_ADDR", "--listen-addr", SVC_OPT_STRING, "127.0.0.1", 0, -1,
     "address the web server binds (0.0.0.0 in compose)", &o_addr},
    {"LISTEN_PORT", "--listen-port", SVC_OPT_INT, "8501", 0, 65535, "web server port",
     &o_port},
    SVC_OPT_BOOTSTRAP(&o_bootstrap),
    SVC_OPT_TRANSACTIONS_TOPIC(&o_topic),
    SVC_OPT_DATABASE_URL("postgresql://postgres@127.0.0.1:5433/fraud_db", &o_db_url),
    SVC_OPT_PASSWORD_FILE(&o_password_file),
    {"FRAUD_THRESHOLD", "--threshold", SVC_OPT_DOUBLE, "0.95", 0, 1,
     "threshold marked on the score histogram", &o_threshold},
    {"DETECTOR_HEALTH_URL", "--detector-health-url", SVC_OPT_STRING,
     "http://127.0.0.1:8001/readyz", 0, -1, "fraud_detector readiness URL (\"\" = none)",
     &o_detector_url},
    {"WRITER_HEALTH_URL", "--writer-health-url", SVC_OPT_STRING,
     "http://127.0.0.1:8002/readyz", 0, -1, "db_writer readiness URL (\"\" = none)",
     &o_writer_url},
    {"MAX_UPLOAD_BYTES", "--max-upload-bytes", SVC_OPT_INT, "1073741824", 1, 68719476736.0,
     "largest upload body accepted (bytes)", &o_max_bytes},
    {"MAX_ROWS", "--max-rows", SVC_OPT_INT, "5000000", 1, 1e9, "most data rows per upload",
     &o_max_rows},
    {"PRODUCE_WAIT_MS", "--produce-wait-ms", SVC_OPT_INT, "10000", 0, 3600000,
     "how long a row waits for room in a full Kafka send queue before its upload fails (503)",
     &o_produce_wait},
    {"WEB_DIR", "--web-dir", SVC_OPT_STRING, NULL, 0, -1,
     "serve the page from this directory instead of the embedded copy", &o_web_dir},
    SVC_OPT_LOG_LEVEL(&o_log_level),
};

static atomic_int poll_stop;

/* Serves delivery reports until told to stop. */
static void *poll_thread(void *arg)
{
    rd_kafka_t *rk = arg;
    while (!atomic_load(&poll_stop))
        rd_kafka_poll(rk, 100);
    return NULL;
}

/* Producer defaults for uploads; any KAFKA_* variable overrides them. linger.ms 5, not 20:
 * the same upload throughput (bench/upload/run, 152-168k rows/s either way) and up to 15 ms
 * less before a row is readable, which kept the paced p99 to `scoring` over 50 ms
 * (docs/interface.md). */
static const svc_kafka_setting producer_defaults[] = {
    {"enable.idempotence", "true"}, /* per-key order survives retries */
    {"linger.ms", "5"},
    {"batch.num.messages", "10000"},
    {"compression.type", "lz4"},
    {"queue.buffering.max.messages", "500000"},
    {"message.timeout.ms", "60000"},
};

int main(int argc, char **argv)
{
    char err[1024];
    int status = 1;
    svc_metrics *metrics = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    ui_uploads *uploads = NULL;
    ui_db *db = NULL;
    ui_health *health = NULL;
    ui_http *http = NULL;
    pthread_t poller;
    int poller_started = 0;
    char password[PASSWORD_MAX];
    const char *pw = NULL;

    int prc = svc_config_start(SERVICE, "web UI and JSON API: CSV upload to Kafka, results",
                               options, sizeof options / sizeof options[0], argc, argv,
                               &o_log_level);
    if (prc != SVC_CONFIG_OK)
        return prc == SVC_CONFIG_EXIT ? 0 : 2;
    if (o_password_file != NULL) {
        if (svc_config_read_secret("PGPASSWORD_FILE", o_password_file, password,
                                   sizeof password, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", SERVICE, err);
            return 2;
        }
        pw = password;
    }
    svc_config_log(options, sizeof options / sizeof options[0]);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s %s starting", SERVICE, fs_version());
    if (svc_signal_install() != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot install signal handlers");
        goto out;
    }
    metrics = svc_metrics_new();
    if (metrics == NULL)
        goto out;

    conf = svc_kafka_conf_new(SERVICE, o_bootstrap, err, sizeof err);
    if (conf == NULL ||
        svc_kafka_conf_defaults(conf, producer_defaults,
                                sizeof producer_defaults / sizeof producer_defaults[0], err,
                                sizeof err) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "kafka config: %s", err);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, ui_upload_delivery_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "kafka producer: %s", err);
        goto out;
    }
    conf = NULL; /* owned by rk now */
    if (pthread_create(&poller, NULL, poll_thread, rk) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot start the delivery report thread");
        goto out;
    }
    poller_started = 1;

    ui_upload_limits limits = {(unsigned long long)o_max_bytes, (unsigned long long)o_max_rows,
                               (int)o_produce_wait};
    uploads = ui_uploads_new(rk, o_topic, &limits, metrics, err, sizeof err);
    db = ui_db_new(o_db_url, pw);
    memset(password, 0, sizeof password);
    health = db != NULL ? ui_health_new(rk, o_topic, db, o_detector_url, o_writer_url) : NULL;
    if (uploads == NULL || db == NULL || health == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "out of memory");
        goto out;
    }
    ui_http_config hc = {o_addr,    (int)o_port, o_web_dir, o_threshold, limits.max_bytes,
                         limits.max_rows, uploads, db,       health,      metrics};
    http = ui_http_start(&hc, err, sizeof err);
    if (http == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s", err);
        goto out;
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "listening on http://%s:%d/ (assets: %s)", o_addr,
            ui_http_port(http), o_web_dir != NULL && o_web_dir[0] ? o_web_dir : "embedded");

    while (!svc_stop_requested()) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    SVC_LOG(SVC_LOG_INFO, NULL, "shutting down: closing the web server");
    status = 0;
out:
    ui_http_stop(http);
    if (rk != NULL) {
        rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, FLUSH_TIMEOUT_MS);
        if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR)
            SVC_LOG(SVC_LOG_WARN, NULL, "producer flush: %s, %llu messages unreported",
                    rd_kafka_err2str(ferr),
                    uploads != NULL ? ui_uploads_in_flight(uploads) : 0ULL);
    }
    if (poller_started) {
        atomic_store(&poll_stop, 1);
        pthread_join(poller, NULL);
    }
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    ui_health_free(health);
    ui_db_free(db);
    ui_uploads_free(uploads);
    svc_metrics_free(metrics);
    SVC_LOG(SVC_LOG_INFO, NULL, "stopped");
    return status;
}
