/*
 * pprof/profile.c - a profile in memory before it is encoded: samples of lookup addresses,
 * values and labels; merging of identical samples and the delta p1 - p0 that ?seconds asks for.
 *
 * Stacks are stored in one array of addresses (samples refer to them by offset) so a profile is
 * two allocations however many samples it has. Labels are borrowed pointers (see internal.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/internal.h"

void zn_pprof_profile_init(zn_pprof_profile_t *p, const zn_pprof_kind_t *kind)
{
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->time_nanos = (int64_t)zn_now_wall_ns();
}

void zn_pprof_profile_release(zn_pprof_profile_t *p)
{
    free(p->samples);
    free(p->pcs);
    for (size_t i = 0; i < p->ncomments; i++)
        free(p->comments[i]);
    free(p->comments);
    memset(p, 0, sizeof(*p));
}

void zn_pprof_profile_add(zn_pprof_profile_t *p, const uintptr_t *pcs, size_t depth, const int64_t *values,
                          const zn_pprof_label_t *labels, size_t nlabels)
{
    if (depth > ZN_PPROF_DEPTH_MAX)
        depth = ZN_PPROF_DEPTH_MAX;
    if (nlabels > ZN_PPROF_LABELS_MAX)
        nlabels = ZN_PPROF_LABELS_MAX;
    if (p->nsamples == p->_cap_samples) {
        p->_cap_samples = p->_cap_samples == 0 ? 64 : p->_cap_samples * 2;
        p->samples = zn_realloc(p->samples, p->_cap_samples * sizeof(*p->samples));
    }
    while (p->npcs + depth > p->_cap_pcs) {
        p->_cap_pcs = p->_cap_pcs == 0 ? 1024 : p->_cap_pcs * 2;
        p->pcs = zn_realloc(p->pcs, p->_cap_pcs * sizeof(*p->pcs));
    }
    zn_pprof_sample_t *s = &p->samples[p->nsamples++];
    memset(s, 0, sizeof(*s));
    s->pcs_off = p->npcs;
    s->depth = (uint32_t)depth;
    if (depth != 0)
        memcpy(p->pcs + p->npcs, pcs, depth * sizeof(*pcs));
    p->npcs += depth;
    memcpy(s->values, values, p->kind->nvalues * sizeof(*values));
    s->nlabels = (uint32_t)nlabels;
    if (nlabels != 0)
        memcpy(s->labels, labels, nlabels * sizeof(*labels));
}

void zn_pprof_profile_comment(zn_pprof_profile_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *c = zn_malloc((size_t)n + 1);
    va_start(ap, fmt);
    int again = vsnprintf(c, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (again != n) { /* the same format and arguments twice: never, short of a broken libc */
        free(c);
        return;
    }
    p->comments = zn_realloc(p->comments, (p->ncomments + 1) * sizeof(*p->comments));
    p->comments[p->ncomments++] = c;
}

/* ---- identity of a sample: its stack and its labels -------------------------------------------- */

static bool label_eq(const zn_pprof_label_t *a, const zn_pprof_label_t *b)
{
    if (strcmp(a->key, b->key) != 0 || (a->str == NULL) != (b->str == NULL))
        return false;
    if (a->str != NULL)
        return strcmp(a->str, b->str) == 0;
    return a->num == b->num && (a->unit == NULL ? b->unit == NULL : b->unit != NULL && strcmp(a->unit, b->unit) == 0);
}

static bool sample_same(const zn_pprof_profile_t *pa, const zn_pprof_sample_t *a, const zn_pprof_profile_t *pb,
                        const zn_pprof_sample_t *b)
{
    if (a->depth != b->depth || a->nlabels != b->nlabels)
        return false;
    if (memcmp(zn_pprof_sample_pcs(pa, a), zn_pprof_sample_pcs(pb, b), a->depth * sizeof(uintptr_t)) != 0)
        return false;
    for (uint32_t i = 0; i < a->nlabels; i++) {
        if (!label_eq(&a->labels[i], &b->labels[i]))
            return false;
    }
    return true;
}

static uint64_t sample_hash(const zn_pprof_profile_t *p, const zn_pprof_sample_t *s)
{
    uint64_t h = zn_hash(zn_pprof_sample_pcs(p, s), s->depth * sizeof(uintptr_t), s->nlabels);
    for (uint32_t i = 0; i < s->nlabels; i++) {
        const zn_pprof_label_t *l = &s->labels[i];
        const char *v = l->str != NULL ? l->str : "";
        h = zn_hash(v, strlen(v), h ^ (uint64_t)l->num);
    }
    return h;
}

struct match {
    const zn_pprof_profile_t *in, *probe_p;
    const zn_pprof_sample_t *probe;
};

static bool match_eq(void *ctx, uintptr_t i)
{
    struct match *m = ctx;
    return sample_same(m->in, &m->in->samples[i], m->probe_p, m->probe);
}

/* Folds `add` (scaled by sign) into out, which is indexed by idx. */
static void fold(zn_pprof_profile_t *out, zn_htab_t *idx, const zn_pprof_profile_t *from,
                 const zn_pprof_sample_t *add, int sign)
{
    struct match m = {out, from, add};
    uint64_t h = sample_hash(from, add);
    uintptr_t i;
    if (!zn_htab_find(idx, h, match_eq, &m, &i)) {
        int64_t v[ZN_PPROF_VALUES_MAX];
        for (size_t k = 0; k < out->kind->nvalues; k++)
            v[k] = sign * add->values[k];
        zn_pprof_profile_add(out, zn_pprof_sample_pcs(from, add), add->depth, v, add->labels, add->nlabels);
        zn_htab_insert(idx, h, (uint32_t)(out->nsamples - 1));
        return;
    }
    for (size_t k = 0; k < out->kind->nvalues; k++)
        out->samples[i].values[k] += sign * add->values[k];
}

/* Replaces p's samples with those of `merged`, dropping all-zero ones; keeps p's metadata. */
static void take_samples(zn_pprof_profile_t *p, zn_pprof_profile_t *merged)
{
    zn_pprof_profile_t out;
    zn_pprof_profile_init(&out, p->kind);
    for (size_t i = 0; i < merged->nsamples; i++) {
        const zn_pprof_sample_t *s = &merged->samples[i];
        bool zero = true;
        for (size_t k = 0; k < p->kind->nvalues; k++)
            zero = zero && s->values[k] == 0;
        if (!zero)
            zn_pprof_profile_add(&out, zn_pprof_sample_pcs(merged, s), s->depth, s->values, s->labels, s->nlabels);
    }
    zn_pprof_profile_release(merged);
    free(p->samples);
    free(p->pcs);
    p->samples = out.samples;
    p->nsamples = out.nsamples;
    p->_cap_samples = out._cap_samples;
    p->pcs = out.pcs;
    p->npcs = out.npcs;
    p->_cap_pcs = out._cap_pcs;
}

static void merge_into(zn_pprof_profile_t *p, const zn_pprof_profile_t *p0)
{
    zn_pprof_profile_t merged;
    zn_htab_t idx;
    zn_pprof_profile_init(&merged, p->kind);
    zn_htab_init(&idx);
    for (size_t i = 0; i < p->nsamples; i++)
        fold(&merged, &idx, p, &p->samples[i], 1);
    for (size_t i = 0; p0 != NULL && i < p0->nsamples; i++)
        fold(&merged, &idx, p0, &p0->samples[i], -1);
    zn_htab_release(&idx);
    take_samples(p, &merged);
}

void zn_pprof_profile_merge(zn_pprof_profile_t *p)
{
    merge_into(p, NULL);
}

void zn_pprof_profile_sub(zn_pprof_profile_t *p1, const zn_pprof_profile_t *p0)
{
    merge_into(p1, p0);
    p1->duration_nanos = p1->time_nanos - p0->time_nanos;
}
