/*
 * fd_state: the customer state of the partitions a detector owns, kept exactly once.
 *
 * Each assigned partition p of `transactions` has a store of customer records
 * (fs_profile_store) whose durable copy is partition p of the compacted changelog topic:
 * key = customer key, value = the record (fs_profile_encode), a tombstone for a customer
 * dropped by expiry. The detector changes records only while scoring a batch, notes the
 * prior value of each customer the first time the batch touches it (the batch's undo log),
 * and writes the final value of every touched customer to the changelog inside the same
 * Kafka transaction as the scores and the input offsets. So:
 *   - commit: the undo log is forgotten; the changelog and the offsets moved together;
 *   - abort: the undo logs of the aborted batches are applied newest first and the records
 *     are exactly as committed (the changelog kept nothing of them, read_committed);
 *   - assignment: a partition's store is rebuilt from its changelog partition up to its end
 *     before any of its transactions is scored, i.e. to the state of the committed offset.
 *
 * Two batches can be open at once (one committing while the next is scored, see
 * fd_detector.h): each partition keeps an undo log for each, FD_STATE_HAND (being scored or
 * produced) and FD_STATE_FLIGHT (committing); fd_state_hand_over moves the first to the
 * second.
 *
 * Threads: one thread at a time per partition (the scoring threads share partitions out by
 * number); the assignment changes only between batches, on the main thread.
 * Ownership: fd_state_new returns an object freed by fd_state_free, which frees every store.
 */
#ifndef FD_STATE_H
#define FD_STATE_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fs_profile.h"
#include "fs_profile_store.h"

enum { FD_STATE_HAND, FD_STATE_FLIGHT };

typedef struct fd_state fd_state;

/* expiry: seconds of event time (fs_profile_expired); max_customers: across all partitions
 * of this instance (0 = no limit). NULL if memory ran out. */
fd_state *fd_state_new(int64_t expiry, size_t max_customers);
void fd_state_free(fd_state *s);

/* Holds partition p with an empty store (what a restore starts from; a partition whose
 * changelog is empty stays so). Returns 0, or -1 if memory ran out. */
int fd_state_hold(fd_state *s, int32_t p);

/* 1 if partition p's state is held (restored), else 0. */
int fd_state_has(const fd_state *s, int32_t p);

/* The record of customer key in partition p for a transaction at event time `time`, ready
 * for fs_features_compute: created empty for a new customer, emptied for an expired one;
 * its prior value goes into p's FD_STATE_HAND undo log the first time this batch touches
 * it. NULL when p is not held, the instance holds max_customers already (*full = 1), or
 * memory ran out. */
fs_profile *fd_state_touch(fd_state *s, int32_t p, const char *key, size_t len, int64_t time,
                           int has_time, int *full);

/* After partition p's messages of a batch: drops the customers idle longer than expiry +
 * one day against p's latest event time, once per new day of event time (undo-logged,
 * tombstoned). Returns how many were dropped. */
size_t fd_state_expire(fd_state *s, int32_t p);

/* The changelog records of the batch in hand: cb gets, for each customer the batch touched
 * in each partition, the key and the encoded record now (value NULL: dropped, a tombstone).
 * A non-zero return stops and is returned. */
typedef int (*fd_state_record_cb)(int32_t p, const char *key, size_t key_len,
                                  const unsigned char *value, size_t value_len, void *opaque);
int fd_state_each_change(const fd_state *s, fd_state_record_cb cb, void *opaque);
/* Customers the batch in hand changed (changelog records it will write). */
size_t fd_state_changes(const fd_state *s);

/* The batch in hand became the batch in flight (its undo logs too). The in-flight logs
 * must be empty (fd_state_commit or fd_state_rollback since the last hand-over). */
void fd_state_hand_over(fd_state *s);
/* The batch in flight committed: its undo logs are forgotten. */
void fd_state_commit(fd_state *s);
/* Undoes the batch in hand, and with flight set the batch in flight before it. */
void fd_state_rollback(fd_state *s, int flight);

/* Drops every partition (all records and logs): at revocation and before a new
 * assignment. */
void fd_state_drop_all(fd_state *s);

/* Rebuilds the state of the partitions in parts (topic names ignored: the same numbers of
 * the changelog topic) from changelog_topic, reading each with read_committed up to the
 * high watermark it had when the restore began (waiting for transactions still open there
 * to end). rk_conf: a configuration for the restore consumer (consumed; the function sets
 * what it needs). progress (may be NULL) is updated with the records read so far.
 * *stop set ends it early (-1). Returns 0, or -1 with the reason in errstr. */
typedef struct fd_restore_progress {
    atomic_llong records;    /* changelog records applied */
    atomic_int partitions;   /* partitions being restored */
    atomic_int done;         /* of them, complete */
    atomic_int active;       /* 1 while a restore runs */
} fd_restore_progress;
int fd_state_restore(fd_state *s, rd_kafka_conf_t *rk_conf, const char *changelog_topic,
                     const rd_kafka_topic_partition_list_t *parts, fd_restore_progress *progress,
                     volatile sig_atomic_t *stop, char *errstr, size_t errstr_size);

/* Customers held and bytes used, over every partition (any thread may read: relaxed). */
size_t fd_state_customers(const fd_state *s);
size_t fd_state_bytes(const fd_state *s);
/* 1 once a batch was refused for the maximum (cleared by a drop of everything). */
int fd_state_full(const fd_state *s);
size_t fd_state_max(const fd_state *s);

#endif
