/*
 * fs_profile_store: customer key -> fs_profile record, in memory. The offline tools keep
 * one store for a whole file; the detector one per assigned partition. Bounded: a store
 * made with a maximum refuses a new customer beyond it (never evicts one silently); the
 * caller decides what that means (an error offline, not ready online).
 *
 * Memory: one slot pointer per table position (the table doubles at half full) and one
 * allocation per customer holding the 128-byte record, the key and 16 bytes of bookkeeping
 * (fs_profile_store_bytes counts all of it).
 *
 * Ownership: fs_profile_store_new returns a store the caller frees with
 * fs_profile_store_free. Record pointers handed out stay valid until that customer is
 * removed or the store is freed (growing the table moves slots, never records). Not
 * thread-safe: one thread per store.
 */
#ifndef FS_PROFILE_STORE_H
#define FS_PROFILE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fs_profile.h"

typedef struct fs_profile_store fs_profile_store;

/* max_customers: the most customers it holds (0 = no limit). NULL if memory ran out. */
fs_profile_store *fs_profile_store_new(size_t max_customers);
void fs_profile_store_free(fs_profile_store *s);

/* The record of customer key[0..len) or NULL when there is none. */
fs_profile *fs_profile_store_find(const fs_profile_store *s, const char *key, size_t len);

/* The record of the customer, created empty (fs_profile_init) when absent; *created says
 * which (may be NULL). NULL when a new customer would pass the maximum (*full = 1) or
 * memory ran out (*full = 0). */
fs_profile *fs_profile_store_upsert(fs_profile_store *s, const char *key, size_t len,
                                    int *created, int *full);

/* Removes the customer. 1 if it was there, 0 if not. */
int fs_profile_store_remove(fs_profile_store *s, const char *key, size_t len);

/* Customers held, and the bytes the store uses (table + records + keys + bookkeeping). */
size_t fs_profile_store_count(const fs_profile_store *s);
size_t fs_profile_store_bytes(const fs_profile_store *s);
size_t fs_profile_store_max(const fs_profile_store *s);

/* Calls cb for every customer (order unspecified). cb returns 0 to go on; a non-zero
 * return stops the walk and is returned. The key and record live during the call; cb must
 * not add or remove customers. */
typedef int (*fs_profile_store_cb)(const char *key, size_t len, const fs_profile *p,
                                   void *opaque);
int fs_profile_store_each(const fs_profile_store *s, fs_profile_store_cb cb, void *opaque);

/* Removes every customer whose latest event is before `before` (seconds), calling on_drop
 * (may be NULL) with each one's key first. Returns how many were removed. */
typedef void (*fs_profile_store_drop_cb)(const char *key, size_t len, void *opaque);
size_t fs_profile_store_expire(fs_profile_store *s, int64_t before,
                               fs_profile_store_drop_cb on_drop, void *opaque);

#endif
