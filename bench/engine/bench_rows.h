/*
 * bench_rows: the feature rows the engine benchmarks score, computed as the services compute
 * them (generated transactions, customer state included), shared by bench_engine and
 * bench_contrib.
 */
#ifndef BENCH_ROWS_H
#define BENCH_ROWS_H

#include <stddef.h>

/* Feature rows of the bundle in dir for nrows generated transactions (seed 2024). Returns a
 * malloc'ed nrows x *nf array, or NULL after printing "prog: why" to stderr. */
double *bench_bundle_rows(const char *prog, const char *dir, size_t nrows, int *nf);

/* Reads the raw row file path (native doubles, nf per row): its first *nrows rows, or all of
 * them when *nrows is 0 or more than the file holds (*nrows is set to the count read). Returns
 * a malloc'ed *nrows x nf array, or NULL (after "prog: path: cannot open" when it cannot be
 * opened). */
double *bench_read_rows(const char *prog, const char *path, int nf, size_t *nrows);

#endif
