/*
 * fs_csv_map: maps the header row of a CSV onto the columns a reader wants, by exact name
 * and in any order. Columns the reader does not want are ignored; a wanted column named
 * twice is an error; every required column that is missing is reported, all of them in one
 * message (a user fixing a file learns every problem of its header at once, not one per try).
 *
 * Ownership: the caller owns every array; nothing is kept after a call.
 */
#ifndef FS_CSV_MAP_H
#define FS_CSV_MAP_H

#include <stddef.h>

#include "fs_csv.h"

typedef struct fs_csv_map_column {
    const char *name; /* exact header text */
    int required;     /* 1: its absence is an error; 0: optional */
} fs_csv_map_column;

/* The outcome of a mapping. */
typedef struct fs_csv_map_result {
    size_t nmissing;   /* required columns absent (each has index -1) */
    size_t duplicate;  /* 1-based header column of the first wanted name seen twice, or 0 */
} fs_csv_map_result;

/*
 * Fills index[i] with the 0-based header column of wanted[i], -1 if the header lacks it.
 * Returns 0 when every required column is there and no wanted one is named twice. Else -1
 * with the reason in why (without the place, which the caller adds):
 *   missing column "amount"
 *   missing column "amount" and 2 more: "lat", "merchant_lon"
 *   column "amount" appears twice          (res->duplicate then says where)
 * A duplicate is reported before missing columns (the mapping is not trusted then). When
 * why is too small for every name, the list ends with "..." and the count stays exact;
 * index[] and res->nmissing are always complete. res may be NULL.
 */
int fs_csv_map_header(const fs_csv_row *header, const fs_csv_map_column *wanted, size_t n,
                      int *index, fs_csv_map_result *res, char *why, size_t why_size);

#endif
