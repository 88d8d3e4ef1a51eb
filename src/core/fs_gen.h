/*
 * fs_gen: a synthetic card-transaction generator in the TETA-ML-1-2025 train.csv schema,
 * modelled on the Sparkov simulator behind the Kaggle "credit card transactions fraud
 * detection" data, so the pipeline can be trained and tested without the real data.
 *
 * The world: ~1000 customers (name, gender, street, home city with its population, state,
 * post code and coordinates, job) and ~700 merchants ("fraud_Kirlin and Sons", as the Kaggle
 * data names them) in the 14 categories. Legitimate purchases arrive day by day with a
 * weekly rhythm (more at weekends) and a seasonal one (December busiest), at daytime-heavy
 * hours, with per-category lognormal amounts, at a merchant location within about a degree
 * of the customer's home. Fraud comes as episodes: a card is compromised for about two days
 * and used a handful of times, mostly at night (22:00-03:59), mostly in the high-risk
 * categories (shopping_net, misc_net, grocery_pos) at category-specific high amounts; the
 * share of fraud rows is about fraud_rate.
 *
 * Deterministic: the same options give the same rows (own xoshiro256** generator seeded by
 * splitmix64, never rand(); the only floating-point library calls are log, exp, sqrt and
 * cos, so the output is identical wherever the C library is the same). Rows come in
 * chronological order.
 *
 * Ownership: fs_gen_new returns a generator the caller frees with fs_gen_free; the record
 * and strings fs_gen_next hands out are owned by the generator and live until the next call.
 */
#ifndef FS_GEN_H
#define FS_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs_txn.h"

typedef struct fs_gen_opts {
    uint64_t seed;
    int64_t start;     /* first day, seconds since the epoch (UTC midnight) */
    double fraud_rate; /* share of fraud rows, in [0, 0.5]; 0.005 by default */
    int customers;     /* 1000 by default (0 = default) */
    int merchants;     /* 700 by default (0 = default) */
} fs_gen_opts;

/* Default options: seed 1, start 2019-01-01, fraud_rate 0.005, 1000 customers, 700
 * merchants. */
void fs_gen_opts_default(fs_gen_opts *o);

typedef struct fs_gen fs_gen;

/* NULL with the reason in errstr if an option is out of range or memory ran out. */
fs_gen *fs_gen_new(const fs_gen_opts *o, char *errstr, size_t errstr_size);
void fs_gen_free(fs_gen *g);

/* The next transaction (t->target = 0 or 1). values/lens (optional) receive the 17 cells as
 * written to CSV, in field order. Returns 0 (the generator never runs dry). */
int fs_gen_next(fs_gen *g, const fs_txn **t, const char *const **values,
                const size_t **lens);

/* Writes a header and rows CSV rows (train.csv column order; with_target adds the target
 * column) to out. Returns 0, or -1 with the reason in errstr (e.g. a write error). */
int fs_gen_write_csv(FILE *out, const fs_gen_opts *o, uint64_t rows, int with_target,
                     char *errstr, size_t errstr_size);

/* The 14 categories, in a fixed order. */
#define FS_GEN_NCATEGORIES 14
const char *fs_gen_category(int i);

#endif
