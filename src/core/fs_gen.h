/*
 * fs_gen: a synthetic card-transaction generator in the TETA-ML-1-2025 train.csv schema that
 * follows the process of the Sparkov simulator (namebrandon/Sparkov_Data_Generation, behind
 * the Kaggle "credit card transactions fraud detection" data), so the pipeline can be trained
 * and tested without the real data and per-customer behaviour looks as it does there.
 *
 * What is modelled, per customer:
 * - Profiles: each customer belongs to one of 12 segments, age band (under 25, 25..49, 50+,
 *   in US population shares) x gender x urban/rural (home town under 2,500 people; about
 *   half the customers, as in the Kaggle data). Each segment has its own purchases per day,
 *   category weights, per-category gamma amounts (mean, deviation; under $1 becomes $1..$10),
 *   morning/afternoon split and day-of-week weights; the numbers are the simulator's.
 * - Volume: a customer draws its purchases per average day once (uniform in the segment's
 *   range, some young and senior customers 0); each day brings Poisson(that x day weight)
 *   purchases, the day weight being day of week x season (Nov 30 - Dec 31 x2, Jan 1 - Feb 28
 *   x0.75, May 24 - Sep 1 x1.25), normalised to 1 over a year.
 * - Time of day: one uniform number picks both the category and the half of the day (as in
 *   the simulator, so a segment's first categories are morning and the last ones afternoon
 *   purchases); the hour is uniform within the half, minutes uniform.
 * - Fraud: once per period (about two years at fraud_rate 0.005, the simulator's one run) a
 *   customer is compromised with probability 99/101. The episode has lo..hi rows (the
 *   segment's fraud profile, e.g. 7..12) over its start day and the next, in the fraud
 *   profile's categories (grocery_pos, shopping_net, misc_net, ...) at its high amounts; four
 *   rows in five at night (00-03 or 22-23). The customer's own purchases on the days that got
 *   fraud are not recorded (the simulator drops them). The period is derived from fraud_rate
 *   so fraud rows are about that share of all rows.
 * - Merchants: ~700 ("fraud_Kirlin and Sons", as in the Kaggle data) in the 14 categories,
 *   picked uniformly within the row's category; the merchant location is uniform within a
 *   degree of the customer's home, independent of the merchant.
 * Not modelled: the simulator's travel (disabled there too), card numbers, dates of birth
 * and transaction ids (not in the schema), and its real address and zip lists (a fixed town
 * table is used; each customer is unique on name_1|name_2|street|post_code).
 *
 * Deterministic: the same options give the same rows (own xoshiro256** generator seeded by
 * splitmix64, never rand(); the only floating-point library calls are log, exp, sqrt and
 * cos, so the output is identical wherever the C library is the same). Rows come in
 * chronological order; transaction_time has minute resolution.
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

/* The 12 customer segments, index = band * 4 + male * 2 + rural (band 0: under 25, 1: 25..49,
 * 2: 50 and over); the name is a static string, NULL outside 0..11. */
#define FS_GEN_NPROFILES 12
const char *fs_gen_profile_name(int i);

/* The segment of the customer of the row fs_gen_next last handed out (-1 before any). */
int fs_gen_profile(const fs_gen *g);

#endif
