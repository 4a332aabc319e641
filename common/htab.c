/*
 * common/htab.c - the one hash table: metrics' repository stats, pprof's symbol, string,
 * stack and label indexes.
 *
 * The table holds (hash, value) pairs and nothing else: the caller computes the hash
 * (zn_hash) and decides equality, so one implementation serves keys of any shape (a name,
 * an address, a stack plus labels) and values of any kind (a pointer, or an index into the
 * caller's own array). Open addressing with linear probing over one array of slots, the full
 * 64-bit hash kept in each so a probe rarely calls eq() for a key that is not it; capacity a
 * power of two, grown at half load; delete shifts the following run back (no tombstones), so
 * lookups never slow down with churn. A stored hash of 0 marks a free slot, so a key whose
 * hash is 0 is kept as 1 (eq() still decides).
 */
#include <stdlib.h>
#include <string.h>

#include "common/zn.h"

#define HTAB_MIN 16

static inline uint64_t stored(uint64_t hash)
{
    return hash != 0 ? hash : 1;
}

void zn_htab_init(zn_htab_t *h)
{
    memset(h, 0, sizeof(*h));
}

void zn_htab_release(zn_htab_t *h)
{
    free(h->slots);
    memset(h, 0, sizeof(*h));
}

/* Index of the matching slot, or SIZE_MAX. */
static size_t find_at(const zn_htab_t *h, uint64_t hash, zn_htab_eq_fn eq, void *ctx)
{
    if (h->n == 0)
        return SIZE_MAX;
    size_t mask = h->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const zn_htab_slot_t *s = &h->slots[i];
        if (s->hash == 0)
            return SIZE_MAX;
        if (s->hash == hash && eq(ctx, s->val))
            return i;
    }
}

bool zn_htab_find(const zn_htab_t *h, uint64_t hash, zn_htab_eq_fn eq, void *ctx, uintptr_t *val)
{
    size_t i = find_at(h, stored(hash), eq, ctx);
    if (i == SIZE_MAX)
        return false;
    if (val != NULL)
        *val = h->slots[i].val;
    return true;
}

static void put(zn_htab_slot_t *slots, size_t cap, uint64_t hash, uintptr_t val)
{
    size_t mask = cap - 1, i = hash & mask;
    while (slots[i].hash != 0)
        i = (i + 1) & mask;
    slots[i] = (zn_htab_slot_t){hash, val};
}

static void grow(zn_htab_t *h)
{
    size_t cap = h->cap == 0 ? HTAB_MIN : h->cap * 2;
    zn_htab_slot_t *slots = zn_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i].hash != 0)
            put(slots, cap, h->slots[i].hash, h->slots[i].val);
    free(h->slots);
    h->slots = slots;
    h->cap = cap;
}

void zn_htab_insert(zn_htab_t *h, uint64_t hash, uintptr_t val)
{
    if ((h->n + 1) * 2 > h->cap)
        grow(h);
    put(h->slots, h->cap, stored(hash), val);
    h->n++;
}

bool zn_htab_delete(zn_htab_t *h, uint64_t hash, zn_htab_eq_fn eq, void *ctx, uintptr_t *val)
{
    size_t i = find_at(h, stored(hash), eq, ctx), mask = h->cap - 1;
    if (i == SIZE_MAX)
        return false;
    if (val != NULL)
        *val = h->slots[i].val;
    h->slots[i].hash = 0;
    h->n--;
    /* Close the hole: a later slot of the run moves back into it unless its home lies
     * (cyclically) after the hole, where a lookup would still reach it. */
    for (size_t j = (i + 1) & mask; h->slots[j].hash != 0; j = (j + 1) & mask) {
        size_t home = h->slots[j].hash & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        h->slots[i] = h->slots[j];
        h->slots[j].hash = 0;
        i = j;
    }
    return true;
}

bool zn_htab_next(const zn_htab_t *h, size_t *pos, uintptr_t *val)
{
    for (size_t i = *pos; i < h->cap; i++) {
        if (h->slots[i].hash != 0) {
            *val = h->slots[i].val;
            *pos = i + 1;
            return true;
        }
    }
    *pos = h->cap;
    return false;
}

uint64_t zn_hash(const void *p, size_t n, uint64_t seed)
{
    /* FNV-1a over the bytes, then a murmur3 finalizer so the low bits are usable as the index */
    const unsigned char *s = p;
    uint64_t x = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= s[i];
        x *= 0x100000001b3ull;
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}
