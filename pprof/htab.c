/*
 * pprof/htab.c - a small hash index shared by the symbolizer, profile merging and encoding.
 *
 * The table stores only (hash, index + 1); entries live in the caller's array, and the caller
 * decides equality, so one implementation serves keys of any shape (an address, a stack plus
 * labels, a function's name and file). Linear probing, capacity a power of two, grown at half
 * load; nothing is ever removed.
 */
#include <stdlib.h>
#include <string.h>

#include "pprof/internal.h"

void zn_pprof_htab_init(zn_pprof_htab_t *h)
{
    memset(h, 0, sizeof(*h));
}

void zn_pprof_htab_release(zn_pprof_htab_t *h)
{
    free(h->hashes);
    free(h->slots);
    memset(h, 0, sizeof(*h));
}

int64_t zn_pprof_htab_find(const zn_pprof_htab_t *h, uint64_t hash, bool (*eq)(void *ctx, uint32_t index), void *ctx)
{
    if (h->cap == 0)
        return -1;
    size_t mask = h->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (h->slots[i] == 0)
            return -1;
        if (h->hashes[i] == hash && eq(ctx, h->slots[i] - 1))
            return h->slots[i] - 1;
    }
}

static void put(uint64_t *hashes, uint32_t *slots, size_t cap, uint64_t hash, uint32_t slot)
{
    size_t mask = cap - 1, i = hash & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    hashes[i] = hash;
    slots[i] = slot;
}

static void grow(zn_pprof_htab_t *h)
{
    size_t cap = h->cap == 0 ? 64 : h->cap * 2;
    uint64_t *hashes = zn_calloc(cap, sizeof(*hashes));
    uint32_t *slots = zn_calloc(cap, sizeof(*slots));
    for (size_t i = 0; i < h->cap; i++) {
        if (h->slots[i] != 0)
            put(hashes, slots, cap, h->hashes[i], h->slots[i]);
    }
    free(h->hashes);
    free(h->slots);
    h->hashes = hashes;
    h->slots = slots;
    h->cap = cap;
}

void zn_pprof_htab_insert(zn_pprof_htab_t *h, uint64_t hash, uint32_t index)
{
    if ((h->n + 1) * 2 > h->cap)
        grow(h);
    put(h->hashes, h->slots, h->cap, hash, index + 1);
    h->n++;
}

uint64_t zn_pprof_hash(const void *p, size_t n, uint64_t seed)
{
    /* FNV-1a over the bytes, then a murmur3 finalizer so low bits are usable as the index */
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
