/*
 * storage/map.c - a small string-keyed chained hash map (FNV-1a) for the store's in-memory
 * tables: repositories, upload sessions, the referrers cache. It has no lock; each table's
 * owner guards it with its own mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

static size_t hash_key(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

void st_map_init(st_map_t *m)
{
    m->nbuckets = 64;
    m->count = 0;
    m->buckets = zn_calloc(m->nbuckets, sizeof(*m->buckets));
}

void st_map_release(st_map_t *m, void (*free_value)(void *))
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        st_map_entry_t *e = m->buckets[i];
        while (e != NULL) {
            st_map_entry_t *next = e->next;
            if (free_value != NULL)
                free_value(e->value);
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

static st_map_entry_t **find(const st_map_t *m, const char *key)
{
    st_map_entry_t **e = &m->buckets[hash_key(key) & (m->nbuckets - 1)];
    while (*e != NULL && strcmp((*e)->key, key) != 0)
        e = &(*e)->next;
    return e;
}

void *st_map_get(const st_map_t *m, const char *key)
{
    st_map_entry_t *e = *find(m, key);
    return e != NULL ? e->value : NULL;
}

static void grow(st_map_t *m)
{
    size_t n = m->nbuckets * 2;
    st_map_entry_t **b = zn_calloc(n, sizeof(*b));
    for (size_t i = 0; i < m->nbuckets; i++) {
        st_map_entry_t *e = m->buckets[i];
        while (e != NULL) {
            st_map_entry_t *next = e->next;
            size_t at = hash_key(e->key) & (n - 1);
            e->next = b[at];
            b[at] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *st_map_put(st_map_t *m, const char *key, void *value)
{
    st_map_entry_t **slot = find(m, key);
    if (*slot != NULL) {
        void *old = (*slot)->value;
        (*slot)->value = value;
        return old;
    }
    size_t klen = strlen(key);
    st_map_entry_t *e = zn_malloc(sizeof(*e) + klen + 1);
    memcpy(e->key, key, klen + 1);
    e->value = value;
    e->next = NULL;
    *slot = e;
    if (++m->count > m->nbuckets)
        grow(m);
    return NULL;
}

void *st_map_del(st_map_t *m, const char *key)
{
    st_map_entry_t **slot = find(m, key), *e = *slot;
    if (e == NULL)
        return NULL;
    void *value = e->value;
    *slot = e->next;
    free(e);
    m->count--;
    return value;
}

void st_map_each(const st_map_t *m, bool (*fn)(void *data, const char *key, void *value), void *data)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (st_map_entry_t *e = m->buckets[i]; e != NULL;) {
            st_map_entry_t *next = e->next; /* fn may not delete, but be safe reading next first */
            if (!fn(data, e->key, e->value))
                return;
            e = next;
        }
    }
}
