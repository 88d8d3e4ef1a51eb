/*
 * db_writer's batch logic (dbw_pipeline) against a fake database: the order in which
 * batches are committed, and the rule that offsets are committed only after the rows are
 * durable (checked inside every commit: each valid message below a committed offset must be
 * stored by then). The fake keeps the dbw_db contract: one write = one transaction, a row
 * already stored is ignored; faults: a send that fails, a write that fails before storing,
 * a write whose answer is lost after it stored (the replay case).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dbw_db.h"
#include "dbw_pipeline.h"
#include "svc_log.h"
#include "svc_metrics.h"

#define TOPIC "scoring"
#define MAX_IDS 4096
#define PARTS 2

/* What the database holds, shared by the fake connections. */
typedef struct store {
    char ids[MAX_IDS][FS_TXN_ID_MAX + 1];
    int writes[MAX_IDS]; /* how many writes stored each id (must stay 1) */
    int n;
} store;

typedef struct fake_db {
    dbw_db base;
    store *st;
    int ready;         /* what ready() says while a write is in flight */
    int fail_send;     /* the next this many sends fail */
    int fail_finish;   /* the next this many writes fail before storing */
    int lose_answer;   /* the next this many writes store, then report a failure */
    int commit_early;  /* the server commits at send (the answer not read yet) */
    long early_inserted;
    int sends;
    int in_flight;
    char pending[MAX_IDS][FS_TXN_ID_MAX + 1];
    size_t npending;
} fake_db;

static int find(const store *st, const char *id)
{
    for (int i = 0; i < st->n; i++)
        if (strcmp(st->ids[i], id) == 0)
            return i;
    return -1;
}

/* Stores the pending rows (ON CONFLICT DO NOTHING); returns how many were new. */
static long store_pending(fake_db *f)
{
    long inserted = 0;
    for (size_t i = 0; i < f->npending; i++) {
        int k = find(f->st, f->pending[i]);
        if (k >= 0)
            continue;
        snprintf(f->st->ids[f->st->n], sizeof f->st->ids[0], "%s", f->pending[i]);
        f->st->writes[f->st->n++] = 1;
        inserted++;
    }
    return inserted;
}

static int f_migrate(dbw_db *db, int *applied, char *errstr, size_t errstr_size)
{
    (void)db, (void)errstr, (void)errstr_size;
    *applied = 0;
    return 0;
}

static int f_send(dbw_db *db, const dbw_row *rows, size_t n, char *errstr, size_t errstr_size)
{
    fake_db *f = (fake_db *)db;
    f->sends++;
    CHECK(!f->in_flight);
    if (f->fail_send > 0) {
        f->fail_send--;
        snprintf(errstr, errstr_size, "fake: send failed");
        return -1;
    }
    /* The rows are the caller's: copied, as the contract allows the caller to reuse them. */
    for (size_t i = 0; i < n; i++)
        snprintf(f->pending[i], sizeof f->pending[0], "%s", rows[i].msg.transaction_id);
    f->npending = n;
    f->in_flight = 1;
    if (f->commit_early)
        f->early_inserted = store_pending(f);
    return 0;
}

static int f_ready(dbw_db *db)
{
    fake_db *f = (fake_db *)db;
    return !f->in_flight || f->ready;
}

static int f_finish(dbw_db *db, long *inserted, char *errstr, size_t errstr_size)
{
    fake_db *f = (fake_db *)db;
    *inserted = 0;
    CHECK(f->in_flight);
    f->in_flight = 0;
    if (f->fail_finish > 0) {
        f->fail_finish--;
        snprintf(errstr, errstr_size, "fake: write failed");
        return -1;
    }
    long n = f->commit_early ? f->early_inserted : store_pending(f);
    if (f->lose_answer > 0) {
        f->lose_answer--;
        snprintf(errstr, errstr_size, "fake: connection lost after commit");
        return -1;
    }
    *inserted = n;
    return 0;
}

static void f_disconnect(dbw_db *db)
{
    ((fake_db *)db)->in_flight = 0;
}

static void f_free(dbw_db *db)
{
    (void)db;
}

static const dbw_db_ops fake_ops = {f_migrate, f_send, f_ready, f_finish, f_disconnect, f_free};

/* The messages of a test: partition p offset o carries id "p<p>-<o>", or is a dead letter. */
typedef struct feed {
    int dead[PARTS][MAX_IDS];
    int64_t next[PARTS]; /* next offset to produce per partition */
} feed;

/* What the commit callback saw. */
typedef struct commits {
    const store *st;
    const feed *fd;
    int64_t committed[PARTS]; /* -1: none yet */
    int n;
    int64_t log[64][PARTS]; /* offsets of each commit (-1: partition not in it) */
} commits;

static volatile sig_atomic_t stop_flag;

static int on_commit(void *opaque, const rd_kafka_topic_partition_list_t *offsets)
{
    commits *c = opaque;
    CHECK(c->n < 64);
    for (int p = 0; p < PARTS; p++)
        c->log[c->n][p] = -1;
    for (int i = 0; i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        CHECK_EQ_STR(tp->topic, TOPIC);
        int p = tp->partition;
        CHECK(p >= 0 && p < PARTS);
        if (p < 0 || p >= PARTS)
            continue;
        /* Never backwards. */
        CHECK(tp->offset > c->committed[p]);
        /* Durable first: every valid message below the committed offset is stored. */
        for (int64_t o = 0; o < tp->offset; o++) {
            char id[32];
            snprintf(id, sizeof id, "p%d-%lld", p, (long long)o);
            if (!c->fd->dead[p][o] && find(c->st, id) < 0) {
                fprintf(stderr, "committed %s[%d] at %lld before %s was stored\n", TOPIC, p,
                        (long long)tp->offset, id);
                CHECK(0);
            }
        }
        c->committed[p] = tp->offset;
        c->log[c->n][p] = tp->offset;
    }
    if (c->n < 63)
        c->n++;
    return 0;
}

typedef struct fixture {
    store st;
    fake_db db[3];
    dbw_db *dbs[3];
    feed fd;
    commits c;
    svc_metrics *metrics;
    dbw_pipeline *p;
} fixture;

static fixture *setup(int nconn, size_t batch_size)
{
    char err[256];
    fixture *x = calloc(1, sizeof *x);
    for (int i = 0; i < 3; i++) {
        x->db[i].base.ops = &fake_ops;
        x->db[i].st = &x->st;
        x->db[i].ready = 1;
        x->dbs[i] = &x->db[i].base;
    }
    x->c.st = &x->st;
    x->c.fd = &x->fd;
    for (int p = 0; p < PARTS; p++)
        x->c.committed[p] = -1;
    stop_flag = 0;
    x->metrics = svc_metrics_new();
    dbw_pipeline_config cfg = {.batch_size = batch_size,
                               .retry_first_ms = 1,
                               .retry_max_ms = 4,
                               .stop = &stop_flag,
                               .commit = on_commit,
                               .commit_opaque = &x->c};
    x->p = dbw_pipeline_new(&cfg, x->dbs, nconn, x->metrics, err, sizeof err);
    CHECK(x->p != NULL);
    return x;
}

static void teardown(fixture *x)
{
    dbw_pipeline_free(x->p);
    svc_metrics_free(x->metrics);
    free(x);
}

/* Consumes the next message of partition p into the fill batch (dead: a dead letter). */
static void add(fixture *x, int p, int dead)
{
    int64_t o = x->fd.next[p]++;
    x->fd.dead[p][o] = dead;
    if (!dead) {
        dbw_row *r = dbw_pipeline_slot(x->p);
        CHECK(r != NULL);
        if (r == NULL)
            return;
        memset(r, 0, sizeof *r);
        snprintf(r->msg.transaction_id, sizeof r->msg.transaction_id, "p%d-%lld", p,
                 (long long)o);
        r->msg.score = 0.5;
        r->msg.fraud_flag = 1;
    }
    CHECK_EQ_INT(dbw_pipeline_add(x->p, TOPIC, p, o, !dead), 0);
}

/* Every valid message produced so far is stored exactly once. */
static void check_all_stored_once(const fixture *x)
{
    int valid = 0;
    for (int p = 0; p < PARTS; p++)
        for (int64_t o = 0; o < x->fd.next[p]; o++) {
            char id[32];
            snprintf(id, sizeof id, "p%d-%lld", p, (long long)o);
            int k = find(&x->st, id);
            if (x->fd.dead[p][o]) {
                CHECK(k < 0);
                continue;
            }
            valid++;
            CHECK(k >= 0);
            if (k >= 0)
                CHECK_EQ_INT(x->st.writes[k], 1);
        }
    CHECK_EQ_INT(x->st.n, valid);
}

static double metric(fixture *x, const char *name)
{
    size_t len = 0;
    char *text = svc_metrics_render(x->metrics, &len);
    double v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = text != NULL ? strstr(text, key) : NULL;
    if (at != NULL)
        v = strtod(at + strlen(key), NULL);
    free(text);
    return v;
}

/* Batches flow in order; a full drain commits the last offsets of both partitions. */
static void test_batches_commit_in_order(void)
{
    fixture *x = setup(2, 4);
    for (int i = 0; i < 10; i++) {
        add(x, i % PARTS, 0);
        if (dbw_pipeline_fill_len(x->p) == 4)
            CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
        CHECK_EQ_INT(dbw_pipeline_poll(x->p), 0);
    }
    CHECK_EQ_INT(dbw_pipeline_drain(x->p, 0), 0);
    CHECK_EQ_INT(x->c.committed[0], 5);
    CHECK_EQ_INT(x->c.committed[1], 5);
    CHECK_EQ_INT(x->c.n, 3);
    check_all_stored_once(x);
    CHECK_EQ_INT((long)metric(x, "db_writer_rows_written_total"), 10);
    CHECK_EQ_INT((long)metric(x, "db_writer_batches_total"), 3);
    teardown(x);
}

/* Batch 2 finishes first on its connection; it is committed only after batch 1. */
static void test_later_batch_waits_for_earlier(void)
{
    fixture *x = setup(2, 2);
    x->db[0].ready = 0; /* batch 1's write is slow */
    add(x, 0, 0);
    add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    add(x, 1, 0);
    add(x, 1, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    CHECK_EQ_INT(dbw_pipeline_inflight(x->p), 2);
    CHECK_EQ_INT(dbw_pipeline_poll(x->p), 0);
    CHECK_EQ_INT(x->c.n, 0); /* batch 2 is done, but batch 1 is not */
    x->db[0].ready = 1;
    CHECK_EQ_INT(dbw_pipeline_poll(x->p), 0);
    CHECK_EQ_INT(x->c.n, 2);
    CHECK_EQ_INT(x->c.log[0][0], 2);
    CHECK_EQ_INT(x->c.log[0][1], -1);
    CHECK_EQ_INT(x->c.log[1][1], 2);
    check_all_stored_once(x);
    teardown(x);
}

/* A batch of dead letters only is committed after the batch in flight before it. */
static void test_dead_letter_batch_after_earlier(void)
{
    fixture *x = setup(1, 3);
    x->db[0].ready = 0;
    add(x, 0, 0);
    add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    add(x, 0, 1);
    add(x, 0, 1);
    CHECK_EQ_INT(dbw_pipeline_fill_rows(x->p), 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    CHECK_EQ_INT(x->c.n, 2);
    CHECK_EQ_INT(x->c.log[0][0], 2);
    CHECK_EQ_INT(x->c.log[1][0], 4);
    check_all_stored_once(x);
    teardown(x);
}

/* A failed write is retried; nothing is committed before the retry stored the rows. */
static void test_failed_write_retried_then_committed(void)
{
    fixture *x = setup(1, 3);
    x->db[0].fail_finish = 3;
    add(x, 0, 0);
    add(x, 1, 0);
    add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    CHECK_EQ_INT(dbw_pipeline_complete_all(x->p, 0), 0);
    CHECK_EQ_INT(x->db[0].sends, 4);
    CHECK_EQ_INT(x->c.n, 1);
    CHECK_EQ_INT(x->c.committed[0], 2);
    CHECK_EQ_INT(x->c.committed[1], 1);
    CHECK_EQ_INT((long)metric(x, "db_writer_db_retries_total"), 3);
    check_all_stored_once(x);
    teardown(x);
}

/* The write committed but its answer was lost: the retry finds the rows stored (each row
 * written once, counted as duplicates, not as written twice). */
static void test_lost_answer_replay_writes_once(void)
{
    fixture *x = setup(1, 4);
    x->db[0].lose_answer = 1;
    for (int i = 0; i < 4; i++)
        add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    CHECK_EQ_INT(dbw_pipeline_drain(x->p, 0), 0);
    CHECK_EQ_INT(x->c.committed[0], 4);
    CHECK_EQ_INT((long)metric(x, "db_writer_rows_written_total"), 0);
    CHECK_EQ_INT((long)metric(x, "db_writer_duplicates_total"), 4);
    check_all_stored_once(x);
    teardown(x);
}

/* The first batch cannot be written and a stop is requested: neither it nor the later
 * batch, stored already, is committed. A restart replays from the committed offsets and
 * stores each row once. */
static void test_given_up_batch_takes_later_ones_with_it(void)
{
    fixture *x = setup(2, 2);
    x->db[0].ready = 0;
    x->db[0].fail_finish = 1000000;
    x->db[1].commit_early = 1;
    add(x, 0, 0);
    add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    add(x, 0, 0);
    add(x, 1, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    add(x, 1, 0); /* filling */
    stop_flag = 1;
    CHECK_EQ_INT(dbw_pipeline_complete_all(x->p, 0), -1);
    CHECK_EQ_INT(x->c.n, 0);
    CHECK_EQ_INT(dbw_pipeline_inflight(x->p), 0);
    CHECK_EQ_INT(dbw_pipeline_fill_len(x->p), 0);
    CHECK(find(&x->st, "p0-2") >= 0); /* batch 2 was durable, yet not committed */

    /* Restart: a new pipeline re-reads everything from the committed offsets (none). */
    dbw_pipeline_free(x->p);
    x->db[0].fail_finish = 0;
    x->db[0].ready = 1;
    stop_flag = 0;
    char err[256];
    dbw_pipeline_config cfg = {.batch_size = 2, .retry_first_ms = 1, .retry_max_ms = 4,
                               .stop = &stop_flag, .commit = on_commit,
                               .commit_opaque = &x->c};
    x->p = dbw_pipeline_new(&cfg, x->dbs, 2, x->metrics, err, sizeof err);
    int64_t end[PARTS] = {x->fd.next[0], x->fd.next[1]};
    x->fd.next[0] = x->fd.next[1] = 0;
    for (int p = 0; p < PARTS; p++)
        while (x->fd.next[p] < end[p]) {
            add(x, p, 0);
            if (dbw_pipeline_fill_len(x->p) == 2)
                CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
        }
    CHECK_EQ_INT(dbw_pipeline_drain(x->p, 0), 0);
    CHECK_EQ_INT(x->c.committed[0], 3);
    CHECK_EQ_INT(x->c.committed[1], 2);
    check_all_stored_once(x);
    teardown(x);
}

/* A send that fails is written synchronously after the earlier batches, in order. */
static void test_failed_send_keeps_order(void)
{
    fixture *x = setup(2, 2);
    x->db[0].ready = 0;
    add(x, 0, 0);
    add(x, 0, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    x->db[1].fail_send = 1;
    add(x, 1, 0);
    add(x, 1, 0);
    CHECK_EQ_INT(dbw_pipeline_submit(x->p, svc_now_s()), 0);
    CHECK_EQ_INT(x->c.n, 2);
    CHECK_EQ_INT(x->c.log[0][0], 2);
    CHECK_EQ_INT(x->c.log[1][1], 2);
    check_all_stored_once(x);
    teardown(x);
}

/* A bounded drain (revocation) with the database down gives up in time, commits nothing. */
static void test_bounded_drain_gives_up(void)
{
    fixture *x = setup(1, 8);
    x->db[0].fail_finish = 1000000;
    add(x, 0, 0);
    add(x, 1, 0);
    double t0 = svc_now_s();
    CHECK_EQ_INT(dbw_pipeline_drain(x->p, 0.2), -1);
    double took = svc_now_s() - t0;
    CHECK(took >= 0.2 && took < 2.0);
    CHECK_EQ_INT(x->c.n, 0);
    CHECK_EQ_INT(x->st.n, 0);
    CHECK_EQ_INT(dbw_pipeline_fill_len(x->p), 0);
    CHECK(!dbw_pipeline_db_ok(x->p));
    teardown(x);
}

/* The fill batch holds batch_size messages, dead letters included. */
static void test_fill_bounded(void)
{
    fixture *x = setup(1, 3);
    add(x, 0, 1);
    add(x, 0, 0);
    add(x, 0, 0);
    CHECK(dbw_pipeline_slot(x->p) == NULL);
    CHECK_EQ_INT(dbw_pipeline_add(x->p, TOPIC, 0, 3, 0), -1);
    CHECK_EQ_INT(dbw_pipeline_fill_len(x->p), 3);
    CHECK_EQ_INT(dbw_pipeline_fill_rows(x->p), 2);
    CHECK_EQ_INT(dbw_pipeline_drain(x->p, 0), 0);
    CHECK_EQ_INT(x->c.committed[0], 3);
    teardown(x);
}

int main(void)
{
    svc_log_init("test_dbw_pipeline", SVC_LOG_ERROR);
    test_batches_commit_in_order();
    test_later_batch_waits_for_earlier();
    test_dead_letter_batch_after_earlier();
    test_failed_write_retried_then_committed();
    test_lost_answer_replay_writes_once();
    test_given_up_batch_takes_later_ones_with_it();
    test_failed_send_keeps_order();
    test_bounded_drain_gives_up();
    test_fill_bounded();
    return CHECK_DONE();
}
