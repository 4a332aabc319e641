/*
 * storage/map.c - the string-keyed map of the store's in-memory tables (repositories, upload
 * sessions, the referrers cache): entries holding a copy of the key and the value, kept in
 * the common hash table (zn_htab, hashed with zn_hash). It has no lock; each table's owner
 * guards it with its own mutex.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

static uint64_t hash_key(const char *key)
{
    return zn_hash(key, strlen(key), 0);
}

static bool key_eq(void *ctx, uintptr_t val)
{
    return strcmp(((const st_map_entry_t *)val)->key, ctx) == 0;
}

static st_map_entry_t *find(const st_map_t *m, const char *key)
{
    uintptr_t v;
    return zn_htab_find(&m->h, hash_key(key), key_eq, (void *)key, &v) ? (st_map_entry_t *)v : NULL;
}

void st_map_init(st_map_t *m)
{
    zn_htab_init(&m->h);
    m->count = 0;
}

void st_map_release(st_map_t *m, void (*free_value)(void *))
{
    size_t pos = 0;
    uintptr_t v;
    while (zn_htab_next(&m->h, &pos, &v)) {
        st_map_entry_t *e = (st_map_entry_t *)v;
        if (free_value != NULL)
            free_value(e->value);
        free(e);
    }
    zn_htab_release(&m->h);
    m->count = 0;
}

void *st_map_get(const st_map_t *m, const char *key)
{
    st_map_entry_t *e = find(m, key);
    return e != NULL ? e->value : NULL;
}

void *st_map_put(st_map_t *m, const char *key, void *value)
{
    st_map_entry_t *e = find(m, key);
    if (e != NULL) {
        void *old = e->value;
        e->value = value;
        return old;
    }
    size_t klen = strlen(key);
    e = zn_malloc(sizeof(*e) + klen + 1);
    memcpy(e->key, key, klen + 1);
    e->value = value;
    zn_htab_insert(&m->h, hash_key(key), (uintptr_t)e);
    m->count++;
    return NULL;
}

void *st_map_del(st_map_t *m, const char *key)
{
    uintptr_t v;
    if (!zn_htab_delete(&m->h, hash_key(key), key_eq, (void *)key, &v))
        return NULL;
    st_map_entry_t *e = (st_map_entry_t *)v;
    void *value = e->value;
    free(e);
    m->count--;
    return value;
}

void st_map_each(const st_map_t *m, bool (*fn)(void *data, const char *key, void *value), void *data)
{
    size_t pos = 0;
    uintptr_t v;
    while (zn_htab_next(&m->h, &pos, &v)) {
        const st_map_entry_t *e = (const st_map_entry_t *)v;
        if (!fn(data, e->key, e->value))
            return;
    }
}
