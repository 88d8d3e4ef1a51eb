/*
 * mart_ids: the time-ordered ids of bench/mart/run, made by the interface's own generator.
 *
 *   mart_ids COUNT PER_MS START_MS
 *
 * Prints COUNT UUID version 7 ids, one per line, from fs_uuid7_next with kernel random bytes,
 * for a clock that starts at START_MS (milliseconds since the epoch) and moves on one
 * millisecond every PER_MS ids (the interface names about 150 rows a millisecond), so the
 * benchmark loads the ids an upload of that speed would have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "fs_uuid7.h"

int main(int argc, char **argv)
{
    char *e1, *e2, *e3;
    long count = argc == 4 ? strtol(argv[1], &e1, 10) : 0;
    long per_ms = argc == 4 ? strtol(argv[2], &e2, 10) : 0;
    long long start = argc == 4 ? strtoll(argv[3], &e3, 10) : 0;
    if (argc != 4 || *e1 != '\0' || *e2 != '\0' || *e3 != '\0' || count < 0 || per_ms < 1 ||
        start < 0) {
        fprintf(stderr, "usage: mart_ids COUNT PER_MS START_MS\n");
        return 2;
    }
    fs_uuid7_gen g = {0};
    unsigned char rnd[FS_UUID7_RANDOM_BYTES];
    char id[37];
    for (long i = 0; i < count; i++) {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            perror("mart_ids: getrandom");
            return 1;
        }
        fs_uuid7_next(&g, (uint64_t)start + (uint64_t)(i / per_ms), rnd, id);
        puts(id);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
