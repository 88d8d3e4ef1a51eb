/*
 * fs_uuid7: time-ordered transaction ids, UUID version 7 (RFC 9562, section 5.7), for the
 * rows the interface names itself.
 *
 * Why not version 4: the ids are the primary key of the mart's `transactions` table, a
 * B-tree. Random keys land on random leaf pages, so each insert reads and dirties a page of
 * its own, and every page first dirtied after a checkpoint is written whole into the WAL.
 * Keys that grow with time all land on the rightmost leaf (bench/mart/run measures the
 * difference; figures in docs/interface.md).
 *
 * Layout: 48-bit Unix time in milliseconds, version 7, a 12-bit counter (the RFC's
 * "method 1": seeded at random below 2048 each new millisecond, then incremented, so the ids
 * one generator makes are strictly increasing), variant 10, 62 random bits. A clock that
 * steps back keeps the last millisecond; a counter that runs out borrows the next one.
 * No I/O: the caller reads the clock and supplies the random bytes.
 */
#ifndef FS_UUID7_H
#define FS_UUID7_H

#include <stdint.h>

enum { FS_UUID7_RANDOM_BYTES = 10 }; /* random bytes one id consumes */

/* One generator's state; zero-initialise. */
typedef struct {
    uint64_t ms;  /* the millisecond in the last id */
    unsigned seq; /* its counter */
} fs_uuid7_gen;

/* Writes the next id, 36 lowercase characters and a NUL ("0190f1e2-7a3c-7...-[89ab]..."),
 * for wall-clock time now_ms (milliseconds since the epoch; only its low 48 bits fit). */
void fs_uuid7_next(fs_uuid7_gen *g, uint64_t now_ms,
                   const unsigned char rnd[FS_UUID7_RANDOM_BYTES], char out[37]);

#endif
