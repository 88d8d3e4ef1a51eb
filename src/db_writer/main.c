/*
 * db_writer: stores the scores of the `scoring` topic in PostgreSQL (fraud_db, table
 * transactions), exactly once. This file is the wiring: options (environment, then flags;
 * --help lists everything) into a dbw_config, the database connections (dbw_pg.h), signals,
 * the /healthz /readyz /metrics endpoint; the consume-store-commit loop is dbw_writer.h, its
 * batch and commit rules dbw_pipeline.h.
 *
 * Up to DB_CONNECTIONS batches are written at once, each on its own connection, while the
 * next one fills; they are completed and their offsets committed strictly in order. The
 * consumer joins its group as static member INSTANCE_ID (default: the host name), so a
 * writer restarted after a crash gets its partitions back without waiting for its old
 * session to expire.
 *
 * Exit status: 0 after a clean shutdown, 1 after a fatal error, 2 for a bad configuration
 * (an option out of range, a KAFKA_* property librdkafka refuses).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "dbw_pg.h"
#include "dbw_pipeline.h"
#include "dbw_writer.h"
#include "fs_version.h"
#include "svc_config.h"
#include "svc_http.h"
#include "svc_log.h"
#include "svc_metrics.h"
#include "svc_signal.h"

#define SERVICE "db_writer"
#define PASSWORD_MAX 1024
#define MAX_CONNECTIONS DBW_PIPELINE_MAX_CONNECTIONS
#define HOST_MAX 256

static const char *o_bootstrap, *o_topic, *o_dlq_topic, *o_group, *o_database_url,
    *o_password_file, *o_log_level, *o_metrics_addr, *o_instance;
static long o_batch_size, o_batch_timeout, o_retry_max, o_metrics_port, o_session_timeout,
    o_connections;
static int o_static, o_copy, o_eager;

static const svc_option options[] = {
    SVC_OPT_BOOTSTRAP(&o_bootstrap),
    SVC_OPT_SCORING_TOPIC(&o_topic),
    SVC_OPT_DLQ_TOPIC("scoring.dlq", &o_dlq_topic),
    SVC_OPT_GROUP_ID("db_writer", &o_group),
    SVC_OPT_INSTANCE_ID(&o_instance),
    SVC_OPT_STATIC_MEMBERSHIP(&o_static),
    {"SESSION_TIMEOUT_MS", "--session-timeout-ms", SVC_OPT_INT, "6000", 1000, 3600000,
     "Kafka session.timeout.ms: a writer gone this long loses its partitions (the broker "
     "accepts 6000..1800000 by default)",
     &o_session_timeout},
    SVC_OPT_DATABASE_URL("dbname=fraud_db", &o_database_url),
    SVC_OPT_PASSWORD_FILE(&o_password_file),
    {"BATCH_SIZE", "--batch-size", SVC_OPT_INT, "2000", 1, 100000,
     "rows per database transaction at most", &o_batch_size},
    {"BATCH_TIMEOUT_MS", "--batch-timeout-ms", SVC_OPT_INT, "50", 1, 60000,
     "longest wait to fill a batch after its first message", &o_batch_timeout},
    {"BATCH_ADAPTIVE", "--batch-adaptive", SVC_OPT_BOOL, "true", 0, -1,
     "also close a batch as soon as no message is waiting and no write is in flight (light "
     "traffic written at once in small batches, full batches under load); false: only "
     "BATCH_SIZE and BATCH_TIMEOUT_MS close a batch",
     &o_eager},
    {"DB_CONNECTIONS", "--db-connections", SVC_OPT_INT, "2", 1, MAX_CONNECTIONS,
     "database connections writing batches at the same time (offsets committed in order)",
     &o_connections},
    {"DB_COPY", "--db-copy", SVC_OPT_BOOL, "true", 0, -1,
     "write batches with COPY (FORMAT BINARY), redone with INSERT ... ON CONFLICT DO NOTHING "
     "when a replay hits stored keys; false: always the INSERT",
     &o_copy},
    {"DB_RETRY_MAX_MS", "--db-retry-max-ms", SVC_OPT_INT, "5000", 10, 600000,
     "cap of the backoff between database retries", &o_retry_max},
    SVC_OPT_LOG_LEVEL(&o_log_level),
    SVC_OPT_METRICS_ADDR(&o_metrics_addr),
    SVC_OPT_METRICS_PORT("8002", &o_metrics_port),
};

/* Readiness: runs on the HTTP thread; the writer's state is atomics. */
static dbw_writer *_Atomic writer;

static int ready(void *arg, char *reason, size_t reason_size)
{
    (void)arg;
    dbw_writer *w = atomic_load(&writer);
    if (w == NULL) {
        snprintf(reason, reason_size, "database not connected or migrations not applied");
        return 0;
    }
    return dbw_writer_ready(w, reason, reason_size);
}

int main(int argc, char **argv)
{
    char err[1024];
    char password[PASSWORD_MAX];
    char host[HOST_MAX];
    int status = 1;
    svc_metrics *metrics = NULL;
    svc_http *http = NULL;
    dbw_db *dbs[MAX_CONNECTIONS] = {0};
    dbw_writer *w = NULL;

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

    if (svc_signal_install() != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "cannot install signal handlers");
        goto out;
    }
    metrics = svc_metrics_new();
    if (metrics == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "out of memory");
        goto out;
    }
    int ndbs = (int)o_connections;
    for (int c = 0; c < ndbs; c++) {
        dbs[c] = dbw_pg_new(o_database_url, pw, o_copy, err, sizeof err);
        if (dbs[c] == NULL) {
            memset(password, 0, sizeof password);
            SVC_LOG(SVC_LOG_ERROR, NULL, "%s", err);
            goto out;
        }
    }
    memset(password, 0, sizeof password);
    dbw_config cfg = {
        .bootstrap = o_bootstrap,
        .topic = o_topic,
        .dlq_topic = o_dlq_topic,
        .group_id = o_group,
        .group_instance_id = o_static ? o_instance : NULL,
        .session_timeout_ms = (int)o_session_timeout,
        .batch_size = (int)o_batch_size,
        .batch_timeout_ms = (int)o_batch_timeout,
        .batch_eager = o_eager,
        .retry_max_ms = o_retry_max,
        .stop = &svc_stop_flag,
    };
    int config_error = 0;
    w = dbw_writer_new(&cfg, dbs, ndbs, metrics, &config_error, err, sizeof err);
    if (w == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "%s: %s", config_error ? "bad configuration" : "startup",
                err);
        status = config_error ? 2 : 1;
        goto out;
    }
    atomic_store(&writer, w);
    http = svc_http_start(o_metrics_addr, (int)o_metrics_port, metrics, ready, NULL, err,
                          sizeof err);
    if (http == NULL) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "metrics endpoint: %s", err);
        goto out;
    }
    status = dbw_writer_run(w) == 0 ? 0 : 1;
out:
    atomic_store(&writer, NULL);
    svc_http_stop(http); /* first, so the readiness callback no longer sees the writer */
    dbw_writer_free(w);
    for (int c = 0; c < MAX_CONNECTIONS; c++)
        dbw_db_free(dbs[c]);
    svc_metrics_free(metrics);
    SVC_LOG(SVC_LOG_INFO, NULL, "%s stopped (status %d)", SERVICE, status);
    return status;
}
