/*
 * pprof/labels.c - label values that outlive the request they came from.
 *
 * Profiles keep label strings by pointer (zn_pprof_label_t) and the collectors key their
 * buckets by those pointers, so the repository name of a request (from the request's pool)
 * is interned here once and lives until exit. Repository names are bounded by what the
 * registry holds, but a client can invent many: past LABELS_DISTINCT_MAX distinct values
 * every new one is reported as "other", keeping memory bounded.
 */
#include <string.h>

#include "pprof/internal.h"

#define LABELS_DISTINCT_MAX 4096

static struct {
    zn_mutex_t lock;
    zn_htab_t index;
    char **strs;
    size_t n, cap;
} L = {.lock = ZN_MUTEX_INITIALIZER("pprof labels")};

static bool label_eq(void *ctx, uintptr_t i)
{
    return strcmp(L.strs[i], ctx) == 0;
}

const char *zn_pprof_label_intern(const char *s)
{
    if (s == NULL)
        return NULL;
    const char *out = "other";
    uint64_t h = zn_hash(s, strlen(s), 7);
    zn_mutex_lock(&L.lock);
    uintptr_t i;
    if (zn_htab_find(&L.index, h, label_eq, (void *)s, &i)) {
        out = L.strs[i];
    } else if (L.n < LABELS_DISTINCT_MAX) {
        if (L.n == L.cap) {
            L.cap = L.cap == 0 ? 64 : L.cap * 2;
            L.strs = zn_realloc(L.strs, L.cap * sizeof(*L.strs));
        }
        L.strs[L.n] = zn_strdup(s);
        zn_htab_insert(&L.index, h, (uint32_t)L.n);
        out = L.strs[L.n++];
    }
    zn_mutex_unlock(&L.lock);
    return out;
}
