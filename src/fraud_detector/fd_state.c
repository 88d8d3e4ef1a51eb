/*
 * fd_state: per-partition customer stores, their undo logs and their restore from the
 * changelog topic (see fd_state.h).
 */
#include "fd_state.h"
#include "fs_hash.h"
#include "fs_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_kafka.h"
#include "svc_log.h"

#define DAY FS_DAY_SECONDS
/* Records idle this much longer than the expiry are dropped from memory (see
 * fs_profile_expired: a feature can change only for events that arrive more than this far
 * behind their partition's latest event). */
#define EXPIRE_SLACK DAY
#define RESTORE_WM_TIMEOUT_MS 10000

typedef struct undo_entry {
    uint64_t hash;
    char *key; /* owned */
    uint32_t len;
    int had; /* the customer existed before the batch */
    fs_profile prior;
} undo_entry;

/* The customers a batch touched in one partition, each once, with their prior value. */
typedef struct undo_log {
    undo_entry *v;
    size_t n, cap;
    uint32_t *index; /* open addressing over v: entry number + 1, 0 = empty */
    size_t icap;     /* power of two */
} undo_log;

typedef struct fd_part {
    int held;
    fs_profile_store *store;
    undo_log log[2];
    int64_t max_time; /* latest event time seen in this partition (0: none yet) */
    int64_t expired_day; /* the day of max_time at the last expiry scan */
} fd_part;

struct fd_state {
    int64_t expiry;
    size_t max;
    fd_part *parts;
    int32_t nparts;
    atomic_size_t customers;
    atomic_size_t bytes;
    atomic_int full;
};

static void log_clear(undo_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].key);
    l->n = 0;
    if (l->index != NULL)
        memset(l->index, 0, l->icap * sizeof *l->index);
}

static void log_free(undo_log *l)
{
    log_clear(l);
    free(l->v);
    free(l->index);
    memset(l, 0, sizeof *l);
}

static int log_reindex(undo_log *l, size_t icap)
{
    uint32_t *ix = calloc(icap, sizeof *ix);
    if (ix == NULL)
        return -1;
    for (size_t i = 0; i < l->n; i++) {
        size_t j = (size_t)l->v[i].hash & (icap - 1);
        while (ix[j] != 0)
            j = (j + 1) & (icap - 1);
        ix[j] = (uint32_t)(i + 1);
    }
    free(l->index);
    l->index = ix;
    l->icap = icap;
    return 0;
}

/* Notes the prior value of key unless this log has it already. Returns 0, or -1 if memory
 * ran out. */
static int log_note(undo_log *l, const char *key, size_t len, uint64_t h, const fs_profile *prior)
{
    if (l->icap != 0) {
        for (size_t j = (size_t)h & (l->icap - 1); l->index[j] != 0; j = (j + 1) & (l->icap - 1)) {
            const undo_entry *e = &l->v[l->index[j] - 1];
            if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
                return 0;
        }
    }
    if ((l->n + 1) * 2 > l->icap && log_reindex(l, l->icap ? l->icap * 2 : 256) != 0)
        return -1;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 128;
        undo_entry *nv = realloc(l->v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        l->v = nv;
        l->cap = ncap;
    }
    undo_entry *e = &l->v[l->n];
    e->key = malloc(len + 1);
    if (e->key == NULL)
        return -1;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->len = (uint32_t)len;
    e->hash = h;
    e->had = prior != NULL;
    if (prior != NULL)
        e->prior = *prior;
    size_t j = (size_t)h & (l->icap - 1);
    while (l->index[j] != 0)
        j = (j + 1) & (l->icap - 1);
    l->index[j] = (uint32_t)(l->n + 1);
    l->n++;
    return 0;
}

fd_state *fd_state_new(int64_t expiry, size_t max_customers)
{
    fd_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->expiry = expiry;
    s->max = max_customers;
    return s;
}

static void part_drop(fd_part *pt)
{
    fs_profile_store_free(pt->store);
    log_free(&pt->log[0]);
    log_free(&pt->log[1]);
    memset(pt, 0, sizeof *pt);
}

static void recount(fd_state *s)
{
    size_t n = 0, b = 0;
    for (int32_t i = 0; i < s->nparts; i++) {
        if (s->parts[i].store == NULL)
            continue;
        n += fs_profile_store_count(s->parts[i].store);
        b += fs_profile_store_bytes(s->parts[i].store);
    }
    atomic_store_explicit(&s->customers, n, memory_order_relaxed);
    atomic_store_explicit(&s->bytes, b, memory_order_relaxed);
}

void fd_state_drop_all(fd_state *s)
{
    for (int32_t i = 0; i < s->nparts; i++)
        part_drop(&s->parts[i]);
    atomic_store(&s->full, 0);
    recount(s);
}

void fd_state_free(fd_state *s)
{
    if (s == NULL)
        return;
    fd_state_drop_all(s);
    free(s->parts);
    free(s);
}

static fd_part *part_of(const fd_state *s, int32_t p)
{
    if (p < 0 || p >= s->nparts || !s->parts[p].held)
        return NULL;
    return &s->parts[p];
}

int fd_state_has(const fd_state *s, int32_t p)
{
    return part_of(s, p) != NULL;
}

int fd_state_hold(fd_state *s, int32_t p)
{
    if (p < 0)
        return -1;
    if (p >= s->nparts) {
        int32_t n = p + 1;
        fd_part *np = realloc(s->parts, (size_t)n * sizeof *np);
        if (np == NULL)
            return -1;
        memset(np + s->nparts, 0, (size_t)(n - s->nparts) * sizeof *np);
        s->parts = np;
        s->nparts = n;
    }
    fd_part *pt = &s->parts[p];
    part_drop(pt);
    pt->store = fs_profile_store_new(0);
    if (pt->store == NULL)
        return -1;
    pt->held = 1;
    return 0;
}

fs_profile *fd_state_touch(fd_state *s, int32_t p, const char *key, size_t len, int64_t time,
                           int has_time, int *full)
{
    *full = 0;
    fd_part *pt = part_of(s, p);
    if (pt == NULL)
        return NULL;
    uint64_t h = fs_hash_bytes(key, len);
    fs_profile *rec = fs_profile_store_find(pt->store, key, len);
    if (rec == NULL && s->max != 0 &&
        atomic_load_explicit(&s->customers, memory_order_relaxed) >= s->max) {
        *full = 1;
        atomic_store(&s->full, 1);
        return NULL;
    }
    if (log_note(&pt->log[FD_STATE_HAND], key, len, h, rec) != 0)
        return NULL;
    if (rec == NULL) {
        rec = fs_profile_store_upsert(pt->store, key, len, NULL, NULL);
        if (rec == NULL)
            return NULL;
        atomic_fetch_add_explicit(&s->customers, 1, memory_order_relaxed);
    }
    if (has_time) {
        if (fs_profile_expired(rec, time, s->expiry))
            fs_profile_init(rec);
        if (time > pt->max_time)
            pt->max_time = time;
    }
    return rec;
}

typedef struct expire_ctx {
    fd_part *pt;
    int failed;
} expire_ctx;

static void note_dropped(const char *key, size_t len, void *opaque)
{
    expire_ctx *c = opaque;
    fs_profile *rec = fs_profile_store_find(c->pt->store, key, len);
    if (log_note(&c->pt->log[FD_STATE_HAND], key, len, fs_hash_bytes(key, len), rec) != 0)
        c->failed = 1;
}

size_t fd_state_expire(fd_state *s, int32_t p)
{
    fd_part *pt = part_of(s, p);
    if (pt == NULL || pt->max_time == 0)
        return 0;
    int64_t day = fs_day_of(pt->max_time);
    if (day <= pt->expired_day)
        return 0;
    pt->expired_day = day;
    expire_ctx c = {pt, 0};
    size_t n = fs_profile_store_expire(pt->store, pt->max_time - s->expiry - EXPIRE_SLACK,
                                       note_dropped, &c);
    if (c.failed)
        SVC_LOG(SVC_LOG_ERROR, NULL, "state: out of memory noting expired customers");
    if (n > 0)
        atomic_fetch_sub_explicit(&s->customers, n, memory_order_relaxed);
    return n;
}

int fd_state_each_change(const fd_state *s, fd_state_record_cb cb, void *opaque)
{
    unsigned char wire[FS_PROFILE_WIRE_BYTES];
    for (int32_t p = 0; p < s->nparts; p++) {
        const fd_part *pt = &s->parts[p];
        if (!pt->held)
            continue;
        const undo_log *l = &pt->log[FD_STATE_HAND];
        for (size_t i = 0; i < l->n; i++) {
            const undo_entry *e = &l->v[i];
            const fs_profile *rec = fs_profile_store_find(pt->store, e->key, e->len);
            if (rec != NULL)
                fs_profile_encode(rec, wire);
            int rc = cb(p, e->key, e->len, rec != NULL ? wire : NULL,
                        rec != NULL ? sizeof wire : 0, opaque);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

size_t fd_state_changes(const fd_state *s)
{
    size_t n = 0;
    for (int32_t p = 0; p < s->nparts; p++)
        if (s->parts[p].held)
            n += s->parts[p].log[FD_STATE_HAND].n;
    return n;
}

void fd_state_hand_over(fd_state *s)
{
    for (int32_t p = 0; p < s->nparts; p++) {
        fd_part *pt = &s->parts[p];
        undo_log t = pt->log[FD_STATE_FLIGHT];
        pt->log[FD_STATE_FLIGHT] = pt->log[FD_STATE_HAND];
        pt->log[FD_STATE_HAND] = t;
        log_clear(&pt->log[FD_STATE_HAND]);
    }
    recount(s);
}

void fd_state_commit(fd_state *s)
{
    for (int32_t p = 0; p < s->nparts; p++)
        log_clear(&s->parts[p].log[FD_STATE_FLIGHT]);
}

static void undo(fd_state *s, fd_part *pt, undo_log *l)
{
    for (size_t i = l->n; i-- > 0;) {
        const undo_entry *e = &l->v[i];
        if (!e->had) {
            fs_profile_store_remove(pt->store, e->key, e->len);
            continue;
        }
        fs_profile *rec = fs_profile_store_upsert(pt->store, e->key, e->len, NULL, NULL);
        if (rec == NULL) {
            /* Only memory can fail here; the partition cannot be trusted any more. */
            SVC_LOG(SVC_LOG_ERROR, NULL, "state: out of memory undoing a batch: partition "
                                         "dropped, restored again at its next assignment");
            pt->held = 0;
            return;
        }
        *rec = e->prior;
    }
    (void)s;
    log_clear(l);
}

void fd_state_rollback(fd_state *s, int flight)
{
    for (int32_t p = 0; p < s->nparts; p++) {
        fd_part *pt = &s->parts[p];
        if (pt->store == NULL)
            continue;
        undo(s, pt, &pt->log[FD_STATE_HAND]);
        if (flight && pt->store != NULL)
            undo(s, pt, &pt->log[FD_STATE_FLIGHT]);
        /* The latest event time may stay ahead: it only schedules expiry scans. */
    }
    recount(s);
}

size_t fd_state_customers(const fd_state *s)
{
    return atomic_load_explicit(&s->customers, memory_order_relaxed);
}

size_t fd_state_bytes(const fd_state *s)
{
    return atomic_load_explicit(&s->bytes, memory_order_relaxed);
}

int fd_state_full(const fd_state *s)
{
    return atomic_load(&s->full);
}

size_t fd_state_max(const fd_state *s)
{
    return s->max;
}

/* ---- restore ---- */

/* Applies one changelog record to partition p's store. A record that cannot be used is
 * logged and counted in *bad (the customer starts empty: the changelog cannot be mended
 * here); returns -1 only when memory ran out (the restore fails, nothing is half-kept). */
static int apply_record(fd_state *s, const rd_kafka_message_t *m, long long *bad)
{
    fd_part *pt = part_of(s, m->partition);
    char why[256];
    if (pt == NULL || m->key == NULL || m->key_len == 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL, "state restore: %s[%" PRId32 "]@%" PRId64 ": %s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                pt == NULL ? "partition not being restored" : "record without a key");
        (*bad)++;
        return 0;
    }
    if (m->payload == NULL) { /* tombstone */
        fs_profile_store_remove(pt->store, m->key, m->key_len);
        return 0;
    }
    fs_profile rec;
    if (fs_profile_decode(&rec, m->payload, m->len, why, sizeof why) != 0) {
        SVC_LOG(SVC_LOG_ERROR, NULL,
                "state restore: %s[%" PRId32 "]@%" PRId64 ": %s (the customer starts empty)",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset, why);
        fs_profile_store_remove(pt->store, m->key, m->key_len);
        (*bad)++;
        return 0;
    }
    fs_profile *dst = fs_profile_store_upsert(pt->store, m->key, m->key_len, NULL, NULL);
    if (dst == NULL)
        return -1;
    *dst = rec;
    if (rec.last_time > pt->max_time)
        pt->max_time = rec.last_time;
    return 0;
}

int fd_state_restore(fd_state *s, rd_kafka_conf_t *conf, const char *topic,
                     const rd_kafka_topic_partition_list_t *parts, fd_restore_progress *progress,
                     volatile sig_atomic_t *stop, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = NULL, *wm = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    int64_t *target = NULL;
    int *done = NULL;
    int rc = -1, ndone = 0, n = parts->cnt;
    long long records = 0, bad = 0;
    char why[512];

    if (progress != NULL) {
        atomic_store(&progress->records, 0);
        atomic_store(&progress->partitions, n);
        atomic_store(&progress->done, 0);
        atomic_store(&progress->active, 1);
    }
    /* The high watermark is read by a read_uncommitted client: it counts records of
     * transactions still open, which the restore then waits to see committed or aborted. */
    /* The reader reads to the end and stops: no waiting on the broker for more. */
    static const char *const reader[][2] = {{"isolation.level", "read_committed"},
                                            {"enable.partition.eof", "true"},
                                            {"enable.auto.commit", "false"},
                                            {"fetch.wait.max.ms", "10"}};
    rd_kafka_conf_t *wconf = rd_kafka_conf_dup(conf);
    int conf_ok = svc_kafka_conf_set(wconf, "isolation.level", "read_uncommitted", why,
                                     sizeof why) == 0;
    for (size_t i = 0; conf_ok && i < sizeof reader / sizeof reader[0]; i++)
        conf_ok = svc_kafka_conf_set(conf, reader[i][0], reader[i][1], why, sizeof why) == 0;
    if (conf_ok && (wm = rd_kafka_new(RD_KAFKA_CONSUMER, wconf, why, sizeof why)) != NULL)
        wconf = NULL; /* owned by wm */
    if (wm != NULL && (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why)) != NULL)
        conf = NULL; /* owned by rk */
    if (wconf != NULL)
        rd_kafka_conf_destroy(wconf);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (rk == NULL) {
        snprintf(errstr, errstr_size, "state restore: %s", why);
        goto out;
    }
    /* target and done are indexed by partition number, so each record finds its own. */
    int32_t nslots = 1;
    for (int i = 0; i < n; i++)
        if (parts->elems[i].partition >= nslots)
            nslots = parts->elems[i].partition + 1;
    target = calloc((size_t)nslots, sizeof *target);
    done = calloc((size_t)nslots, sizeof *done);
    assign = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    if (target == NULL || done == NULL || assign == NULL) {
        snprintf(errstr, errstr_size, "state restore: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int32_t p = parts->elems[i].partition;
        if (fd_state_hold(s, p) != 0) {
            snprintf(errstr, errstr_size, "state restore: out of memory");
            goto out;
        }
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(wm, topic, p, &lo, &hi, RESTORE_WM_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size,
                     "state restore: %s[%" PRId32 "]: %s (the state topic must exist, compacted, "
                     "with as many partitions as the transactions topic)",
                     topic, p, rd_kafka_err2str(err));
            goto out;
        }
        target[p] = hi;
        if (hi <= lo) {
            done[p] = 1;
            ndone++;
        }
        rd_kafka_topic_partition_list_add(assign, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (progress != NULL)
        atomic_store(&progress->done, ndone);
    rd_kafka_resp_err_t aerr = rd_kafka_assign(rk, assign);
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "state restore: assign %s: %s", topic,
                 rd_kafka_err2str(aerr));
        goto out;
    }
    while (ndone < n) {
        if (stop != NULL && *stop) {
            snprintf(errstr, errstr_size, "state restore: stopped");
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        int32_t p = m->partition;
        int64_t reached = -1;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            reached = m->offset;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            int hard = m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                       m->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                       m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                       m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            SVC_LOG(hard ? SVC_LOG_ERROR : SVC_LOG_WARN, NULL, "state restore: %s",
                    rd_kafka_message_errstr(m));
            if (hard) {
                snprintf(errstr, errstr_size, "state restore: %s[%" PRId32 "]: %s", topic, p,
                         rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                goto out;
            }
        } else {
            if (apply_record(s, m, &bad) != 0) {
                snprintf(errstr, errstr_size, "state restore: out of memory");
                rd_kafka_message_destroy(m);
                goto out;
            }
            records++;
            reached = m->offset + 1;
            if (progress != NULL && (records & 1023) == 0)
                atomic_store(&progress->records, records);
        }
        rd_kafka_message_destroy(m);
        if (reached >= 0 && p >= 0 && p < nslots && !done[p] && reached >= target[p]) {
            done[p] = 1;
            ndone++;
            if (progress != NULL)
                atomic_store(&progress->done, ndone);
        }
    }
    rc = 0;
out:
    if (progress != NULL) {
        atomic_store(&progress->records, records);
        atomic_store(&progress->active, 0);
    }
    if (bad > 0)
        SVC_LOG(SVC_LOG_ERROR, NULL, "state restore: %lld record(s) could not be applied", bad);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (wm != NULL)
        rd_kafka_destroy(wm);
    if (assign != NULL)
        rd_kafka_topic_partition_list_destroy(assign);
    free(target);
    free(done);
    recount(s);
    return rc;
}
