/*
 * pprof/text.c - the debug=1 text forms Go's runtime/pprof writes (printCountProfile,
 * printStackRecord), over our symbolizer, so people and scripts used to Go's output read ours.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/internal.h"

zn_err_t zn_pprof_text_frames(zn_buf_t *b, const uintptr_t *pcs, size_t depth)
{
    zn_err_t err = ZN_OK;
    for (size_t i = 0; err == ZN_OK && i < depth; i++) {
        zn_pprof_sym_t sym;
        zn_pprof_sym_lookup(pcs[i], &sym);
        if (sym.nframes == 0 || sym.frames[0].func[0] == '\0') {
            err = zn_buf_printf(b, "#\t%#" PRIxPTR "\n", pcs[i]);
            continue;
        }
        uintptr_t off = sym.func_start != 0 ? pcs[i] - sym.func_start : 0;
        for (int j = 0; err == ZN_OK && j < sym.nframes; j++) {
            const zn_pprof_frame_t *f = &sym.frames[j];
            err = zn_buf_printf(b, "#\t%#" PRIxPTR "\t%s+%#" PRIxPTR "\t%s:%d\n", pcs[i], f->func, off, f->file, f->line);
        }
    }
    return err;
}

zn_err_t zn_pprof_text_addrs(zn_buf_t *b, const uintptr_t *pcs, size_t depth)
{
    zn_err_t err = ZN_OK;
    for (size_t i = 0; err == ZN_OK && i < depth; i++)
        err = zn_buf_printf(b, " %#" PRIxPTR, pcs[i]);
    return err == ZN_OK ? zn_buf_append(b, "\n", 1) : err;
}

struct by_count {
    const zn_pprof_profile_t *p;
    size_t i;
};

static int cmp_count(const void *a, const void *b)
{
    const struct by_count *x = a, *y = b;
    const zn_pprof_sample_t *sx = &x->p->samples[x->i], *sy = &y->p->samples[y->i];
    if (sx->values[0] != sy->values[0])
        return sx->values[0] > sy->values[0] ? -1 : 1;
    /* ties in a fixed order, so the same state prints the same text */
    size_t n = sx->depth < sy->depth ? sx->depth : sy->depth;
    const uintptr_t *px = zn_pprof_sample_pcs(x->p, sx), *py = zn_pprof_sample_pcs(y->p, sy);
    for (size_t k = 0; k < n; k++) {
        if (px[k] != py[k])
            return px[k] < py[k] ? -1 : 1;
    }
    return (int)sx->depth - (int)sy->depth;
}

zn_err_t zn_pprof_text_counts(zn_buf_t *b, const char *name, const zn_pprof_profile_t *p)
{
    zn_pprof_profile_t g;
    int64_t total = 0;
    zn_err_t err;

    /* group by stack alone, as Go does for profiles without labels */
    zn_pprof_profile_init(&g, p->kind);
    for (size_t i = 0; i < p->nsamples; i++) {
        const zn_pprof_sample_t *s = &p->samples[i];
        zn_pprof_profile_add(&g, zn_pprof_sample_pcs(p, s), s->depth, s->values, NULL, 0);
        total += s->values[0];
    }
    zn_pprof_profile_merge(&g);
    struct by_count *order = zn_calloc(g.nsamples + 1, sizeof(*order));
    for (size_t i = 0; i < g.nsamples; i++)
        order[i] = (struct by_count){&g, i};
    qsort(order, g.nsamples, sizeof(*order), cmp_count);

    err = zn_buf_printf(b, "%s profile: total %" PRId64 "\n", name, total);
    for (size_t i = 0; err == ZN_OK && i < g.nsamples; i++) {
        const zn_pprof_sample_t *s = &g.samples[order[i].i];
        const uintptr_t *pcs = zn_pprof_sample_pcs(&g, s);
        if ((err = zn_buf_printf(b, "%" PRId64 " @", s->values[0])) == ZN_OK &&
            (err = zn_pprof_text_addrs(b, pcs, s->depth)) == ZN_OK &&
            (err = zn_pprof_text_frames(b, pcs, s->depth)) == ZN_OK)
            err = zn_buf_append(b, "\n", 1);
    }
    free(order);
    zn_pprof_profile_release(&g);
    return err;
}
