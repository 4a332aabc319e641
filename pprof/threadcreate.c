/*
 * pprof/threadcreate.c - the threadcreate profile: where each zinc thread was created, from the
 * stack zn_thread_create() records in the registry (threads that registered themselves, such
 * as main, have no creation stack and are not counted, as Go does not count its first thread).
 */
#include "pprof/internal.h"

static const zn_pprof_kind_t threadcreate_kind = {
    .nvalues = 1,
    .types = {{"threadcreate", "count"}},
    .period_type = {"threadcreate", "count"},
    .period = 1,
    .default_type = -1,
};

static zn_err_t collect(void *tok, zn_pprof_profile_t *out)
{
    for (int i = 0; i < zn_thread_count(); i++) {
        const zn_thread_info_t *t = zn_thread_get(i);
        uintptr_t pcs[ZN_THREAD_STACK_MAX];
        int n = t->create_depth;
        if (n <= 0)
            continue;
        /* the registry holds return addresses; we want the call instructions */
        for (int k = 0; k < n && k < ZN_THREAD_STACK_MAX; k++)
            pcs[k] = t->create_stack[k] - 1;
        int64_t one = 1;
        zn_pprof_label_t label = {.key = "thread", .str = t->name};
        zn_pprof_profile_add(out, pcs, (size_t)n, &one, &label, 1);
    }
    return ZN_OK;
}

static zn_err_t text(void *tok, int debug, zn_buf_t *b)
{
    zn_pprof_profile_t p;
    zn_pprof_profile_init(&p, &threadcreate_kind);
    collect(tok, &p);
    zn_err_t err = zn_pprof_text_counts(b, "threadcreate", &p);
    zn_pprof_profile_release(&p);
    return err;
}

static int count(void)
{
    int n = 0;
    for (int i = 0; i < zn_thread_count(); i++)
        n += zn_thread_get(i)->create_depth > 0 ? 1 : 0;
    return n;
}

static const zn_pprof_snapshot_ops_t threadcreate_ops = {
    .kind = &threadcreate_kind,
    .delta = true,
    .collect = collect,
    .text = text,
};

const zn_pprof_def_t zn_pprof_def_threadcreate = {
    .name = "threadcreate",
    .desc = "Stack traces that led to the creation of new OS threads",
    .in_index = true,
    .count = count,
    .snap = &threadcreate_ops,
};
