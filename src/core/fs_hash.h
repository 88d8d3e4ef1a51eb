/*
 * fs_hash: the one string hash of the project's hash tables (fitted statistics, customer
 * stores, the detector's undo logs): 64-bit FNV-1a. Not for anything an attacker could
 * exploit beyond slower lookups: every table also compares the whole key.
 */
#ifndef FS_HASH_H
#define FS_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t fs_hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#endif
