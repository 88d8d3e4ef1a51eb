/*
 * ui_upload: the CSV upload pipeline of the interface service and the registry of uploads.
 * One upload is one POST /api/uploads body, pushed through in chunks as it arrives:
 *   multipart/form-data (fs_multipart) -> the "file" part -> fs_csv -> header check
 *   (every missing column named) -> per-row validation (invalid rows counted and the first
 *   UI_UPLOAD_ERRORS_MAX listed with line and reason, never sent) -> transaction_id (the
 *   row's own, else a time-ordered UUID v7, fs_uuid7) -> fs_msg_format_transaction -> an
 *   asynchronous librdkafka produce to the transactions topic, keyed by
 *   name_1|name_2|street|post_code.
 * Delivery reports update the upload's counters from librdkafka's poll thread.
 *
 * Lifetime: the registry owns every upload. An upload stays valid while the registry lives
 * and is only recycled (oldest first) once its body is done, its request answered and every
 * message it produced has a delivery report, so the pointer handed to librdkafka as message
 * opaque never dangles. Counters are atomics and lists are under a per-upload lock, so status
 * can be read from any thread while the upload runs.
 */
#ifndef UI_UPLOAD_H
#define UI_UPLOAD_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "svc_metrics.h"

#define UI_UPLOAD_ERRORS_MAX 100 /* invalid rows listed per upload (all are counted) */
#define UI_UPLOADS_MAX 64        /* uploads remembered at once */

typedef struct ui_uploads ui_uploads;
typedef struct ui_upload ui_upload;

typedef struct ui_upload_limits {
    unsigned long long max_bytes; /* request body cap (MAX_UPLOAD_BYTES) */
    unsigned long long max_rows;  /* data rows cap (MAX_ROWS) */
    int produce_wait_ms;          /* wait for room in a full producer queue (PRODUCE_WAIT_MS) */
} ui_upload_limits;

/* The registry. Borrows rk (a producer whose dr_msg_cb is ui_upload_delivery_cb), the
 * topic name and the metrics registry; all must outlive it. Returns NULL with errstr. */
ui_uploads *ui_uploads_new(rd_kafka_t *rk, const char *topic, const ui_upload_limits *limits,
                           svc_metrics *metrics, char *errstr, size_t errstr_size);
/* Frees every upload. Call only after the producer is flushed and destroyed. */
void ui_uploads_free(ui_uploads *u);

/* The delivery report callback to set on the producer's conf (rd_kafka_conf_set_dr_msg_cb). */
void ui_upload_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque);

/* HTTP status and JSON error the request gets: before its body (ui_upload_begin) or once
 * the body is complete (ui_upload_end). */
typedef struct ui_upload_verdict {
    unsigned status;   /* 202 accepted, 4xx/5xx rejected */
    char error[512];   /* "" when accepted */
} ui_upload_verdict;

/* Starts an upload for a request with this Content-Type and declared length (-1 if none).
 * Returns NULL with *v filled (415 wrong content type, 413 too large, 503 registry full).
 * The returned upload belongs to the registry. */
ui_upload *ui_upload_begin(ui_uploads *u, const char *content_type, long long content_length,
                           ui_upload_verdict *v);
/* Feeds a body chunk. Returns 0 to go on, -1 if the connection should be dropped (a body
 * more than twice MAX_UPLOAD_BYTES). Errors are remembered for the answer at the end and
 * the rest of the body is then read and discarded (libmicrohttpd can only answer a request
 * before its body or after all of it). */
int ui_upload_feed(ui_upload *up, const char *data, size_t len);
/* Ends the body and fills *v with the answer (202 with the status, or the error). */
void ui_upload_end(ui_upload *up, ui_upload_verdict *v);
/* Marks an upload whose connection went away before its body ended. */
void ui_upload_abort(ui_upload *up);

/* Ends the request's hold on the upload (it stays readable by id, but may be recycled once
 * finished). Call exactly once per ui_upload_begin, after the last use of the pointer. */
void ui_upload_release(ui_upload *up);

/* The id ("u-" + UUID) of an upload. */
const char *ui_upload_id(const ui_upload *up);

/* Status as JSON (new reference): id, filename, state (receiving|sending|done|failed|
 * rejected), bytes, rows, valid, invalid, sent, acked, failed, errors[{line,reason}],
 * errors_truncated, failures[{reason,count}], message, created_at. */
json_t *ui_upload_status(ui_upload *up);
/* Status of the upload with this id, or NULL if unknown (new reference). */
json_t *ui_uploads_status(ui_uploads *u, const char *id);
/* The most recent uploads, newest first (new reference, an array). */
json_t *ui_uploads_list(ui_uploads *u);
/* Messages produced and not yet reported, across all uploads (for shutdown logging). */
unsigned long long ui_uploads_in_flight(ui_uploads *u);

#endif
