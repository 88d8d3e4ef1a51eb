/*
 * ui_http: the interface's HTTP server (libmicrohttpd, one thread per connection so an
 * upload waiting for room in the producer queue never stalls other requests). Routes:
 *   GET  /, /index.html, /app.js, ...   the page (embedded assets, or WEB_DIR)
 *   POST /api/uploads                   multipart/form-data upload, field "file"
 *   GET  /api/uploads, /api/uploads/<id> upload status
 *   GET  /api/results                   totals, latest fraud, latest scores (PostgreSQL)
 *   GET  /api/health                    Kafka, PostgreSQL, detector, writer
 *   GET  /api/config                    threshold and limits the page needs
 *   GET  /healthz, /readyz, /metrics
 * Every response carries a strict Content-Security-Policy and X-Content-Type-Options; every
 * error is JSON {"error": "..."} with a fitting status.
 *
 * Ownership: the server borrows everything in ui_http_config; it must outlive ui_http_stop.
 */
#ifndef UI_HTTP_H
#define UI_HTTP_H

#include <stddef.h>

#include "svc_metrics.h"
#include "ui_db.h"
#include "ui_health.h"
#include "ui_upload.h"

typedef struct ui_http ui_http;

typedef struct ui_http_config {
    const char *addr; /* IPv4 or IPv6 literal */
    int port;         /* 0 picks a free port */
    const char *web_dir; /* NULL or "": serve the embedded assets */
    double threshold;
    unsigned long long max_upload_bytes, max_rows;
    ui_uploads *uploads;
    ui_db *db;
    ui_health *health;
    svc_metrics *metrics;
} ui_http_config;

/* Starts listening. Returns NULL with errstr ("127.0.0.1:8501: cannot listen"). */
ui_http *ui_http_start(const ui_http_config *cfg, char *errstr, size_t errstr_size);
/* The port actually bound. */
int ui_http_port(const ui_http *h);
/* Stops accepting, waits for running requests, frees. NULL is fine. */
void ui_http_stop(ui_http *h);

#endif
