/*
 * fs_profile_store: open addressing with linear probing over pointers to entries; removal
 * shifts the rest of the probe run back (no tombstones), so lookups stay short after any
 * number of expiries.
 */
#include "fs_profile_store.h"
#include "fs_hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    fs_profile p; /* first: keeps the record 16-byte aligned like the allocation */
    uint64_t hash;
    uint32_t len;
    char key[]; /* len bytes + NUL */
} entry;

struct fs_profile_store {
    entry **slots;
    size_t cap; /* power of two (0 before the first customer) */
    size_t n;
    size_t max;
    size_t key_bytes;
};

fs_profile_store *fs_profile_store_new(size_t max_customers)
{
    fs_profile_store *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->max = max_customers;
    return s;
}

void fs_profile_store_free(fs_profile_store *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slots[i]);
    free(s->slots);
    free(s);
}

/* The slot holding the key, or the empty slot where it would go. */
static size_t probe(const fs_profile_store *s, const char *key, size_t len, uint64_t h)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        const entry *e = s->slots[i];
        if (e == NULL || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
            return i;
    }
}

fs_profile *fs_profile_store_find(const fs_profile_store *s, const char *key, size_t len)
{
    if (s->cap == 0)
        return NULL;
    entry *e = s->slots[probe(s, key, len, fs_hash_bytes(key, len))];
    return e != NULL ? &e->p : NULL;
}

static int grow(fs_profile_store *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    entry **ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        entry *e = s->slots[i];
        if (e == NULL)
            continue;
        size_t j = (size_t)e->hash & (ncap - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = e;
    }
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
    return 0;
}

fs_profile *fs_profile_store_upsert(fs_profile_store *s, const char *key, size_t len,
                                    int *created, int *full)
{
    if (created != NULL)
        *created = 0;
    if (full != NULL)
        *full = 0;
    uint64_t h = fs_hash_bytes(key, len);
    if (s->cap != 0) {
        entry *e = s->slots[probe(s, key, len, h)];
        if (e != NULL)
            return &e->p;
    }
    if (len > UINT32_MAX)
        return NULL;
    if (s->max != 0 && s->n >= s->max) {
        if (full != NULL)
            *full = 1;
        return NULL;
    }
    if ((s->n + 1) * 2 > s->cap && grow(s) != 0)
        return NULL;
    entry *e = malloc(sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    fs_profile_init(&e->p);
    e->hash = h;
    e->len = (uint32_t)len;
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    s->slots[probe(s, key, len, h)] = e;
    s->n++;
    s->key_bytes += len + 1;
    if (created != NULL)
        *created = 1;
    return &e->p;
}

/* Empties slot i and moves later entries of its probe run back into the gap. */
static void remove_at(fs_profile_store *s, size_t i)
{
    size_t mask = s->cap - 1;
    entry *gone = s->slots[i];
    s->key_bytes -= (size_t)gone->len + 1;
    free(gone);
    s->slots[i] = NULL;
    s->n--;
    for (size_t j = (i + 1) & mask; s->slots[j] != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)s->slots[j]->hash & mask;
        /* The entry at j may fill the gap at i unless its home lies cyclically in (i, j]. */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            s->slots[j] = NULL;
            i = j;
        }
    }
}

int fs_profile_store_remove(fs_profile_store *s, const char *key, size_t len)
{
    if (s->cap == 0)
        return 0;
    size_t i = probe(s, key, len, fs_hash_bytes(key, len));
    if (s->slots[i] == NULL)
        return 0;
    remove_at(s, i);
    return 1;
}

size_t fs_profile_store_count(const fs_profile_store *s)
{
    return s->n;
}

size_t fs_profile_store_bytes(const fs_profile_store *s)
{
    return sizeof *s + s->cap * sizeof(entry *) + s->n * sizeof(entry) + s->key_bytes;
}

size_t fs_profile_store_max(const fs_profile_store *s)
{
    return s->max;
}

int fs_profile_store_each(const fs_profile_store *s, fs_profile_store_cb cb, void *opaque)
{
    for (size_t i = 0; i < s->cap; i++) {
        const entry *e = s->slots[i];
        if (e == NULL)
            continue;
        int rc = cb(e->key, e->len, &e->p, opaque);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t fs_profile_store_expire(fs_profile_store *s, int64_t before,
                               fs_profile_store_drop_cb on_drop, void *opaque)
{
    size_t removed = 0;
    for (size_t i = 0; i < s->cap;) {
        entry *e = s->slots[i];
        if (e == NULL || e->p.last_time >= before) {
            i++;
            continue;
        }
        if (on_drop != NULL)
            on_drop(e->key, e->len, opaque);
        remove_at(s, i);
        removed++;
        /* Slot i now holds whatever moved back into it: look at it again. */
    }
    return removed;
}
