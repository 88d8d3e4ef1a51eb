/*
 * The upload pipeline: multipart -> CSV -> validation -> Kafka, one chunk at a time.
 */
#include "ui_upload.h"
#include "fs_err.h"
#include "fs_utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>
#include <uuid/uuid.h>

#include "fs_msg.h"
#include "fs_profile.h"
#include "fs_multipart.h"
#include "fs_txn_reader.h"
#include "fs_uuid7.h"
#include "svc_kafka.h"
#include "svc_log.h"

#define UI_FAILURE_KINDS 8  /* distinct delivery failure reasons kept per upload */
#define UI_MSG_MAX FS_MSG_TRANSACTION_MAX

enum up_state { UP_RECEIVING, UP_SENDING, UP_DONE, UP_FAILED, UP_REJECTED };
static const char *const state_names[] = {"receiving", "sending", "done", "failed", "rejected"};

struct row_error {
    size_t line;
    char reason[200];
};

struct failure {
    char reason[160];
    unsigned long long count;
};

struct ui_upload {
    ui_uploads *reg;
    int in_use;
    unsigned long long seq; /* creation order, for recycling and listing */
    char id[40];
    time_t created;

    /* Written by the request thread, read anywhere. */
    atomic_int state;
    atomic_int body_done;
    atomic_int pinned; /* its request is still being answered: not to be recycled */
    atomic_ullong bytes, rows, valid, invalid, sent;
    /* Written by the delivery thread. */
    atomic_ullong acked, failed;

    pthread_mutex_t lock; /* guards everything below that is read by status */
    char filename[FS_MULTIPART_VALUE_MAX];
    char message[512];
    unsigned status; /* HTTP status once rejected or failed */
    struct row_error errors[UI_UPLOAD_ERRORS_MAX];
    size_t nerrors;
    struct failure failures[UI_FAILURE_KINDS];
    size_t nfailures;

    /* Request-thread only. */
    fs_multipart *mp;
    fs_txn_reader *reader;
    int in_file;   /* inside the "file" part */
    int seen_file; /* a "file" part was seen */
    int discard;   /* an error was recorded: ignore the rest of the body */
    char msg[UI_MSG_MAX];
    unsigned char rnd[4096]; /* random bytes for transaction ids, refilled in bulk */
    size_t rnd_used;         /* of rnd; 0: to be refilled */
    fs_uuid7_gen ids; /* this upload's ids, strictly increasing */
};

struct ui_uploads {
    rd_kafka_t *rk;
    const char *topic;
    ui_upload_limits limits;
    pthread_mutex_t lock; /* guards slot allocation */
    unsigned long long next_seq;
    ui_upload slots[UI_UPLOADS_MAX];
    svc_counter *m_uploads, *m_valid, *m_invalid, *m_acked, *m_failed, *m_rejected;
    svc_gauge *m_in_flight;
};

ui_uploads *ui_uploads_new(rd_kafka_t *rk, const char *topic, const ui_upload_limits *limits,
                           svc_metrics *metrics, char *errstr, size_t errstr_size)
{
    ui_uploads *u = calloc(1, sizeof *u);
    if (u == NULL) {
        fs_errf(errstr, errstr_size, "uploads: out of memory");
        return NULL;
    }
    u->rk = rk;
    u->topic = topic;
    u->limits = *limits;
    pthread_mutex_init(&u->lock, NULL);
    for (size_t i = 0; i < UI_UPLOADS_MAX; i++) {
        pthread_mutex_init(&u->slots[i].lock, NULL);
        u->slots[i].reg = u;
    }
    u->m_uploads = svc_metrics_counter(metrics, "interface_uploads_total",
                                       "Uploads started.", NULL);
    u->m_rejected = svc_metrics_counter(metrics, "interface_uploads_rejected_total",
                                        "Uploads rejected or failed before the end.", NULL);
    u->m_valid = svc_metrics_counter(metrics, "interface_rows_total",
                                     "CSV data rows read, by validation result.",
                                     "result=\"valid\"");
    u->m_invalid = svc_metrics_counter(metrics, "interface_rows_total",
                                       "CSV data rows read, by validation result.",
                                       "result=\"invalid\"");
    u->m_acked = svc_metrics_counter(metrics, "interface_messages_delivered_total",
                                     "Messages to the transactions topic, by delivery result.",
                                     "result=\"acked\"");
    u->m_failed = svc_metrics_counter(metrics, "interface_messages_delivered_total",
                                      "Messages to the transactions topic, by delivery result.",
                                      "result=\"failed\"");
    u->m_in_flight = svc_metrics_gauge(metrics, "interface_messages_in_flight",
                                       "Messages produced and not yet acknowledged.", NULL);
    return u;
}

void ui_uploads_free(ui_uploads *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < UI_UPLOADS_MAX; i++) {
        fs_multipart_free(u->slots[i].mp);
        fs_txn_reader_free(u->slots[i].reader);
        pthread_mutex_destroy(&u->slots[i].lock);
    }
    pthread_mutex_destroy(&u->lock);
    free(u);
}

const char *ui_upload_id(const ui_upload *up)
{
    return up->id;
}

static int recyclable(ui_upload *up)
{
    if (!up->in_use)
        return 1;
    unsigned long long done = atomic_load(&up->acked) + atomic_load(&up->failed);
    return !atomic_load(&up->pinned) && atomic_load(&up->body_done) &&
           done >= atomic_load(&up->sent);
}

/* Replaces, in place, every byte that is not part of a valid UTF-8 character (fs_utf8: the
 * rules jansson checks) and every control character with '?': a client's filename or
 * content type ends up in the status JSON, and one bad byte there would make the whole
 * status unencodable. */
static void scrub_text(char *s)
{
    char *p = s, *end = s + strlen(s);
    while (p < end) {
        size_t n = fs_utf8_char(p, (size_t)(end - p));
        if (n == 0 || (n == 1 && ((unsigned char)*p < 0x20 || *p == 0x7F))) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

/* Records the first error of an upload that ends it (rejected or failed), keeps the rest
 * of the body from being processed. */
static void up_fail(ui_upload *up, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void up_fail(ui_upload *up, unsigned status, const char *fmt, ...)
{
    /* The first error wins, except that a body over the size limit is always a 413. */
    if (up->discard && (status != 413 || up->status == 413))
        return;
    up->discard = 1;
    pthread_mutex_lock(&up->lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(up->message, sizeof up->message, fmt, ap);
    scrub_text(up->message);
    va_end(ap);
    up->status = status;
    pthread_mutex_unlock(&up->lock);
    /* Nothing sent yet: the request itself was bad. Otherwise it broke off midway. */
    int first = atomic_load(&up->state) == UP_RECEIVING;
    atomic_store(&up->state, atomic_load(&up->sent) == 0 ? UP_REJECTED : UP_FAILED);
    if (first)
        svc_counter_add(up->reg->m_rejected, 1);
    SVC_LOG(SVC_LOG_WARN, NULL, "upload %s: %s", up->id, up->message);
}

/* Copies a reason into dst, cut if longer (it is a message) but never inside a UTF-8
 * sequence, so the status JSON stays valid text. */
static void copy_reason(char *dst, size_t size, const char *reason)
{
    size_t n = strnlen(reason, size - 1);
    if (reason[n] != '\0')
        while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
            n--;
    memcpy(dst, reason, n);
    dst[n] = '\0';
}

static void row_error(ui_upload *up, size_t line, const char *reason)
{
    atomic_fetch_add(&up->invalid, 1);
    svc_counter_add(up->reg->m_invalid, 1);
    pthread_mutex_lock(&up->lock);
    if (up->nerrors < UI_UPLOAD_ERRORS_MAX) {
        up->errors[up->nerrors].line = line;
        copy_reason(up->errors[up->nerrors].reason, sizeof up->errors[0].reason, reason);
        up->nerrors++;
    }
    pthread_mutex_unlock(&up->lock);
}

/* A time-ordered id (UUID version 7, fs_uuid7.h: the mart's primary key then grows at its
 * right edge instead of at random pages). The random bytes come from the kernel 4 KiB at a
 * time: libuuid's uuid_generate_random reseeded libc's random() on every call, a fifth of
 * the upload path's CPU. */
static int time_ordered_id(ui_upload *up, char out[37])
{
    if (up->rnd_used == 0) {
        for (size_t got = 0; got < sizeof up->rnd;) {
            ssize_t n = getrandom(up->rnd + got, sizeof up->rnd - got, 0);
            if (n <= 0)
                return -1;
            got += (size_t)n;
        }
    }
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return -1;
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    fs_uuid7_next(&up->ids, now_ms, up->rnd + up->rnd_used, out);
    up->rnd_used += FS_UUID7_RANDOM_BYTES;
    if (up->rnd_used + FS_UUID7_RANDOM_BYTES > sizeof up->rnd)
        up->rnd_used = 0; /* refill next time */
    return 0;
}

/* Produces one message with the upload_id and upload_row headers (the contract: the upload's
 * UUID and the 1-based data row), waiting for room when the local queue is full. */
static int produce(ui_upload *up, const char *key, size_t key_len, size_t msg_len,
                   unsigned long long upload_row)
{
    ui_uploads *u = up->reg;
    char row_text[24];
    int rn = snprintf(row_text, sizeof row_text, "%llu", upload_row);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(2);
    if (hdrs == NULL || rd_kafka_header_add(hdrs, "upload_id", -1, up->id, -1) != 0 ||
        rd_kafka_header_add(hdrs, "upload_row", -1, row_text, rn) != 0) {
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        up_fail(up, 500, "out of memory (Kafka headers)");
        return -1;
    }
    rd_kafka_resp_err_t err =
        svc_kafka_produce_wait(u->rk, u->topic, RD_KAFKA_PARTITION_UA, key, key_len, up->msg,
                               msg_len, hdrs, up, u->limits.produce_wait_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs); /* still ours on failure */
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            up_fail(up, 503,
                    "Kafka produce to %s: the send queue stayed full for %.3g s (is Kafka "
                    "down?)",
                    u->topic, u->limits.produce_wait_ms / 1e3);
        else
            up_fail(up, 503, "Kafka produce to %s: %s", u->topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_fetch_add(&up->sent, 1);
    svc_gauge_add(u->m_in_flight, 1);
    return 0;
}

/* Counts a data row against MAX_ROWS; 1 (stop) when over. */
static int count_row(ui_upload *up, const fs_csv_row *row)
{
    unsigned long long rows = atomic_fetch_add(&up->rows, 1) + 1;
    if (rows <= up->reg->limits.max_rows)
        return 0;
    atomic_fetch_sub(&up->rows, 1);
    up_fail(up, 413, "more than %llu data rows (MAX_ROWS); rows up to line %zu were processed",
            up->reg->limits.max_rows, row->line > 0 ? row->line - 1 : 0);
    return 1;
}

/* The reader's bad-row callback: counted, listed, not sent. */
static int on_bad_row(const fs_csv_row *row, const char *msg, void *opaque)
{
    ui_upload *up = opaque;
    if (count_row(up, row) != 0)
        return 1;
    row_error(up, row->line, msg);
    return 0;
}

/* The reader's row callback: a valid record, sent to Kafka. */
static int on_txn(const fs_txn *t, const fs_csv_row *row, void *opaque)
{
    ui_upload *up = opaque;
    if (count_row(up, row) != 0)
        return 1;
    char idbuf[40];
    const char *id = t->transaction_id;
    if (id == NULL || id[0] == '\0') {
        if (time_ordered_id(up, idbuf) != 0) {
            up_fail(up, 500, "getrandom or the clock failed: cannot make transaction ids");
            return 1;
        }
        id = idbuf;
    }
    int n = fs_msg_format_transaction(up->msg, sizeof up->msg, id, t);
    if (n < 0) {
        row_error(up, row->line, "cannot encode the row as a transactions message");
        return 0;
    }
    /* The customer key (fs_profile_key: name_1|name_2|street|post_code) keeps one
     * customer's transactions in order on one partition, where the detector keeps that
     * customer's state. It always fits: the record's text is at most FS_TXN_TEXT_MAX. */
    char key[FS_PROFILE_KEY_MAX];
    int klen = fs_profile_key(t, key, sizeof key);
    if (klen < 0) {
        row_error(up, row->line, "customer key (name_1|name_2|street|post_code) too long");
        return 0;
    }
    atomic_fetch_add(&up->valid, 1);
    svc_counter_add(up->reg->m_valid, 1);
    /* row->index: the header is row 0, so the first data row is 1 (blank lines skipped). */
    return produce(up, key, (size_t)klen, (size_t)n, (unsigned long long)row->index) == 0 ? 0
                                                                                          : 1;
}

/* A reader error (header, CSV syntax, empty file) as the upload's 422. */
static void reader_failed(ui_upload *up)
{
    const char *why = fs_txn_reader_error(up->reader);
    if (fs_txn_reader_columns(up->reader) == NULL)
        up_fail(up, 422, "CSV header: %s", why);
    else
        up_fail(up, 422, "CSV: %s", why);
}

/* Part types a browser may give a .csv file (Windows says application/vnd.ms-excel). */
static int csv_like(const char *type)
{
    static const char *const ok[] = {"",
                                     "text/csv",
                                     "text/plain",
                                     "application/csv",
                                     "text/comma-separated-values",
                                     "application/vnd.ms-excel",
                                     "application/octet-stream"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(type, ok[i]) == 0)
            return 1;
    return 0;
}

static int on_part_begin(const fs_multipart_part *part, void *opaque)
{
    ui_upload *up = opaque;
    if (strcmp(part->name, "file") != 0)
        return 0; /* other form fields are ignored */
    if (up->seen_file) {
        up_fail(up, 400, "more than one \"file\" part");
        return 1;
    }
    if (!csv_like(part->content_type)) {
        up_fail(up, 415, "the file part is %s, expected text/csv", part->content_type);
        return 1;
    }
    up->seen_file = 1;
    up->in_file = 1;
    pthread_mutex_lock(&up->lock);
    snprintf(up->filename, sizeof up->filename, "%s", part->filename);
    scrub_text(up->filename);
    pthread_mutex_unlock(&up->lock);
    return 0;
}

static int on_part_data(const void *data, size_t len, void *opaque)
{
    ui_upload *up = opaque;
    if (!up->in_file)
        return 0;
    if (fs_txn_reader_columns(up->reader) == NULL && memchr(data, '\0', len) != NULL) {
        up_fail(up, 415, "the file is not text (NUL byte before the CSV header ended)");
        return 1;
    }
    int rc = fs_txn_reader_feed(up->reader, data, len);
    if (rc == -1) {
        reader_failed(up);
        return 1;
    }
    return rc;
}

static int on_part_end(void *opaque)
{
    ui_upload *up = opaque;
    if (!up->in_file)
        return 0;
    up->in_file = 0;
    int rc = fs_txn_reader_finish(up->reader);
    if (rc == -1) {
        reader_failed(up); /* an empty file: "no header row (empty input)" */
        return 1;
    }
    return rc;
}

static void verdict(ui_upload_verdict *v, unsigned status, const char *msg)
{
    v->status = status;
    snprintf(v->error, sizeof v->error, "%s", msg);
}

ui_upload *ui_upload_begin(ui_uploads *u, const char *content_type, long long content_length,
                           ui_upload_verdict *v)
{
    char boundary[FS_MULTIPART_BOUNDARY_MAX + 1], err[256];
    ui_upload *up = NULL;
    if (fs_multipart_boundary(content_type, boundary, sizeof boundary, err, sizeof err) != 0) {
        verdict(v, 415, err);
        goto out;
    }
    if (content_length >= 0 && (unsigned long long)content_length > u->limits.max_bytes) {
        char m[200];
        snprintf(m, sizeof m, "body of %lld bytes is over the limit of %llu (MAX_UPLOAD_BYTES)",
                 content_length, u->limits.max_bytes);
        verdict(v, 413, m);
        goto out;
    }
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < UI_UPLOADS_MAX; i++) {
        ui_upload *c = &u->slots[i];
        if (recyclable(c) && (up == NULL || !c->in_use || (up->in_use && c->seq < up->seq)))
            up = c;
    }
    if (up != NULL) {
        fs_multipart_free(up->mp);
        fs_txn_reader_free(up->reader);
        up->mp = NULL;
        up->reader = NULL;
        up->in_use = 1;
        up->seq = ++u->next_seq;
    }
    pthread_mutex_unlock(&u->lock);
    if (up == NULL) {
        verdict(v, 503, "too many uploads in progress; try again shortly");
        goto out;
    }
    /* Reset everything; the slot is ours (recyclable means no delivery report is due). */
    pthread_mutex_lock(&up->lock);
    up->filename[0] = '\0';
    up->message[0] = '\0';
    up->status = 0;
    up->nerrors = 0;
    up->nfailures = 0;
    pthread_mutex_unlock(&up->lock);
    atomic_store(&up->state, UP_RECEIVING);
    atomic_store(&up->body_done, 0);
    atomic_store(&up->pinned, 1);
    atomic_store(&up->bytes, 0);
    atomic_store(&up->rows, 0);
    atomic_store(&up->valid, 0);
    atomic_store(&up->invalid, 0);
    atomic_store(&up->sent, 0);
    atomic_store(&up->acked, 0);
    atomic_store(&up->failed, 0);
    up->in_file = up->seen_file = up->discard = 0;
    up->rnd_used = 0;
    up->ids = (fs_uuid7_gen){0};
    up->created = time(NULL);
    /* The upload_id of the contract: a lowercase UUID, carried as a Kafka header by every
     * row and stored with the row's score. */
    uuid_t uu;
    uuid_generate_random(uu);
    uuid_unparse_lower(uu, up->id);
    fs_multipart_callbacks cb = {on_part_begin, on_part_data, on_part_end};
    up->mp = fs_multipart_new(boundary, &cb, up, err, sizeof err);
    up->reader = fs_txn_reader_new(on_txn, up);
    if (up->reader != NULL)
        fs_txn_reader_set_bad(up->reader, on_bad_row);
    if (up->mp == NULL || up->reader == NULL)
        up_fail(up, 500, "out of memory");
    svc_counter_add(u->m_uploads, 1);
    SVC_LOG(SVC_LOG_INFO, NULL, "upload %s: started (declared %lld bytes)", up->id,
            content_length);
    v->status = 202;
    v->error[0] = '\0';
out:
    return up;
}

int ui_upload_feed(ui_upload *up, const char *data, size_t len)
{
    unsigned long long max = up->reg->limits.max_bytes;
    unsigned long long total = atomic_fetch_add(&up->bytes, len) + len;
    if (total > max) {
        /* libmicrohttpd can only answer once the body is in, so the rest is read and
         * dropped; a body twice over the limit is not worth reading: drop the connection. */
        up_fail(up, 413, "body is over the limit of %llu bytes (MAX_UPLOAD_BYTES)", max);
        return total > 2 * max ? -1 : 0;
    }
    if (up->discard)
        return 0;
    if (fs_multipart_feed(up->mp, data, len) == -1)
        up_fail(up, 400, "%s", fs_multipart_error(up->mp));
    return 0;
}

void ui_upload_end(ui_upload *up, ui_upload_verdict *v)
{
    if (!up->discard) {
        int rc = fs_multipart_finish(up->mp);
        if (rc == -1)
            up_fail(up, 400, "%s", fs_multipart_error(up->mp));
        else if (!up->seen_file)
            up_fail(up, 400, "no form field named \"file\" in the upload");
    }
    if (!up->discard)
        atomic_store(&up->state, UP_SENDING);
    atomic_store(&up->body_done, 1);
    pthread_mutex_lock(&up->lock);
    if (up->discard) {
        v->status = up->status;
        snprintf(v->error, sizeof v->error, "%s", up->message);
    } else {
        v->status = 202;
        v->error[0] = '\0';
    }
    pthread_mutex_unlock(&up->lock);
    SVC_LOG(SVC_LOG_INFO, NULL,
            "upload %s: body done: %llu bytes, %llu rows, %llu valid, %llu invalid, %llu sent",
            up->id, atomic_load(&up->bytes), atomic_load(&up->rows), atomic_load(&up->valid),
            atomic_load(&up->invalid), atomic_load(&up->sent));
}

void ui_upload_abort(ui_upload *up)
{
    if (!atomic_load(&up->body_done)) {
        up_fail(up, 400, "the connection closed before the upload was complete");
        atomic_store(&up->body_done, 1);
    }
}

void ui_upload_release(ui_upload *up)
{
    atomic_store(&up->pinned, 0);
}

void ui_upload_delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    ui_upload *up = msg->_private;
    if (up == NULL)
        return;
    ui_uploads *u = up->reg;
    svc_gauge_add(u->m_in_flight, -1);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_fetch_add(&up->acked, 1);
        svc_counter_add(u->m_acked, 1);
        return;
    }
    const char *why = rd_kafka_err2str(msg->err);
    pthread_mutex_lock(&up->lock);
    size_t i = 0;
    while (i < up->nfailures && strcmp(up->failures[i].reason, why) != 0)
        i++;
    if (i == up->nfailures && i < UI_FAILURE_KINDS) {
        snprintf(up->failures[i].reason, sizeof up->failures[i].reason, "%s", why);
        up->failures[i].count = 0;
        up->nfailures++;
    }
    if (i < up->nfailures)
        up->failures[i].count++;
    pthread_mutex_unlock(&up->lock);
    /* Counted last, so a status showing acked + failed == sent has every reason listed. */
    atomic_fetch_add(&up->failed, 1);
    svc_counter_add(u->m_failed, 1);
}

static void iso_time(time_t t, char *buf, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *ui_upload_status(ui_upload *up)
{
    char created[32];
    json_t *errors = json_array(), *failures = json_array();
    unsigned long long sent = atomic_load(&up->sent);
    unsigned long long failed = atomic_load(&up->failed);
    unsigned long long acked = atomic_load(&up->acked);
    unsigned long long invalid = atomic_load(&up->invalid);
    int state = atomic_load(&up->state);
    if (state == UP_SENDING && acked + failed >= sent)
        state = UP_DONE;
    iso_time(up->created, created, sizeof created);
    pthread_mutex_lock(&up->lock);
    for (size_t i = 0; i < up->nerrors; i++)
        json_array_append_new(errors, json_pack("{s:I,s:s}", "line", (json_int_t)up->errors[i].line,
                                                "reason", up->errors[i].reason));
    for (size_t i = 0; i < up->nfailures; i++)
        json_array_append_new(failures, json_pack("{s:s,s:I}", "reason", up->failures[i].reason,
                                                  "count", (json_int_t)up->failures[i].count));
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:b,s:o,s:s,s:s}", "id", up->id,
        "filename", up->filename, "state", state_names[state], "bytes",
        (json_int_t)atomic_load(&up->bytes), "rows", (json_int_t)atomic_load(&up->rows),
        "valid", (json_int_t)atomic_load(&up->valid), "invalid", (json_int_t)invalid, "sent",
        (json_int_t)sent, "acked", (json_int_t)acked, "failed", (json_int_t)failed, "errors",
        errors, "errors_truncated", invalid > up->nerrors, "failures", failures, "message",
        up->message, "created_at", created);
    pthread_mutex_unlock(&up->lock);
    return j;
}

json_t *ui_uploads_status(ui_uploads *u, const char *id)
{
    json_t *j = NULL;
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < UI_UPLOADS_MAX && j == NULL; i++) {
        ui_upload *up = &u->slots[i];
        if (up->in_use && strcmp(up->id, id) == 0)
            j = ui_upload_status(up);
    }
    pthread_mutex_unlock(&u->lock);
    return j;
}

json_t *ui_uploads_list(ui_uploads *u)
{
    ui_upload *order[UI_UPLOADS_MAX];
    size_t n = 0;
    json_t *arr = json_array();
    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < UI_UPLOADS_MAX; i++)
        if (u->slots[i].in_use)
            order[n++] = &u->slots[i];
    /* Newest first: insertion sort on seq (at most 64 entries). */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && order[k - 1]->seq < order[k]->seq; k--) {
            ui_upload *t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, ui_upload_status(order[i]));
    pthread_mutex_unlock(&u->lock);
    return arr;
}

unsigned long long ui_uploads_in_flight(ui_uploads *u)
{
    unsigned long long n = 0;
    for (size_t i = 0; i < UI_UPLOADS_MAX; i++) {
        ui_upload *up = &u->slots[i];
        unsigned long long done = atomic_load(&up->acked) + atomic_load(&up->failed);
        unsigned long long sent = atomic_load(&up->sent);
        if (sent > done)
            n += sent - done;
    }
    return n;
}
