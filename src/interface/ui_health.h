/*
 * ui_health: the pipeline-health panel's probes. Kafka (metadata of the transactions topic
 * through the interface's own producer), PostgreSQL (SELECT 1), and the detector and writer
 * (an HTTP GET of their /readyz URLs with a short timeout). Results are cached for a second
 * or two so an auto-refreshing page cannot turn into a probe storm.
 *
 * Ownership: the handle borrows the producer, the database handle and the URL strings; all
 * must outlive it. JSON results are new references owned by the caller.
 */
#ifndef UI_HEALTH_H
#define UI_HEALTH_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "ui_db.h"

typedef struct ui_health ui_health;

/* detector_url / writer_url may be NULL or "" (reported as not configured). */
ui_health *ui_health_new(rd_kafka_t *rk, const char *topic, ui_db *db,
                         const char *detector_url, const char *writer_url);
void ui_health_free(ui_health *h);

/* {"kafka": {"ok": bool, "detail": "..."}, "postgres": {...}, "detector": {...},
 *  "writer": {...}}; ok is null for a probe that is not configured. */
json_t *ui_health_check(ui_health *h);

/* 1 if Kafka answers with the transactions topic's metadata (readiness of the upload path),
 * else 0 with the reason. */
int ui_health_kafka_ready(ui_health *h, char *reason, size_t reason_size);

/* HTTP GET of an http://host:port/path URL; returns the status code, or -1 with the reason
 * in errstr (unreachable, timeout, not http://). */
int ui_http_get_status(const char *url, int timeout_ms, char *errstr, size_t errstr_size);

#endif
