/*
 * pprof/trace_footer.c - ending a trace session: stop recording, collect every thread's
 * partial chunk, and write the footer (Frequency, String and Stack records).
 *
 * Runs on the thread that started the session, after `on` is cleared and every writer has
 * left (a writer never waits inside a write, so the wait is short). Stacks are the writers'
 * tables, symbolized here with the caller's symbolizer; function and file names are
 * deduplicated by pointer (the pprof symbolizer interns them), so each name is written once
 * (a symbolizer that does not intern only costs duplicate String records).
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/trace_int.h"

void zn_trace_release_session(void);
void zn_trace_end_running(uint64_t epoch);

#define S zn_trace_sess
#define FOOTER_MAX (256u << 20)

typedef struct sym {
    zn_trace_symbolize_fn fn;
    void *ctx;
} sym_t;

/* Function and file names written so far: name pointer -> string id. */
typedef struct names {
    const char **keys;
    uint64_t *ids;
    size_t n, cap;
    zn_htab_t index;
    zn_buf_t *out;
    zn_err_t err;
} names_t;

struct name_key {
    const names_t *t;
    const char *s;
};

static bool name_eq(void *ctx, uintptr_t i)
{
    const struct name_key *k = ctx;
    return k->t->keys[i] == k->s;
}

/* The string id of s, writing its String record the first time; 0 for unknown names. */
static uint64_t name_id(names_t *t, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    struct name_key k = {t, s};
    uint64_t h = zn_hash(&s, sizeof(s), 0);
    uintptr_t i;
    if (zn_htab_find(&t->index, h, name_eq, &k, &i))
        return t->ids[i];
    if (t->n == t->cap) {
        t->cap = t->cap == 0 ? 256 : t->cap * 2;
        t->keys = zn_realloc(t->keys, t->cap * sizeof(*t->keys));
        t->ids = zn_realloc(t->ids, t->cap * sizeof(*t->ids));
    }
    uint64_t id = atomic_fetch_add(&S.next_string, 1);
    t->keys[t->n] = s;
    t->ids[t->n] = id;
    zn_htab_insert(&t->index, h, (uint32_t)t->n++);
    zn_err_t err = zn_trace_put_string(t->out, id, s, strlen(s));
    if (err != ZN_OK && t->err == ZN_OK)
        t->err = err;
    return id;
}

/* One frame per lookup address: the outermost function of its inline chain. go tool trace
 * keys locations by PC, so inline frames sharing a PC would collapse into the innermost and
 * cut the stack's link to its caller (Go's own traces lose inline callers the same way).
 * The stack ends at the frame in function `root` (the thread's start function), if any. */
static int symbolize_stack(names_t *nm, const uintptr_t *pcs, uint32_t n, uintptr_t root, const sym_t *sy, zn_trace_frame_t *frames)
{
    int nf = 0;
    for (uint32_t i = 0; i < n && nf < ZN_TRACE_STACK_MAX; i++) {
        zn_trace_symframe_t sf[8];
        int k = sy->fn != NULL ? sy->fn(sy->ctx, pcs[i], sf, 8) : 0;
        if (k <= 0) {
            frames[nf++] = (zn_trace_frame_t){pcs[i], 0, 0, 0};
            continue;
        }
        const zn_trace_symframe_t *f = &sf[k - 1];
        frames[nf++] = (zn_trace_frame_t){pcs[i], name_id(nm, f->fn), name_id(nm, f->file), f->line > 0 ? (uint64_t)f->line : 0};
        if (root != 0 && f->func_start == root)
            break;
    }
    return nf;
}

/* The function the thread started in (main: the function that registered it). */
static uintptr_t thread_root(int ti, const sym_t *sy)
{
    zn_trace_symframe_t sf[8];
    const zn_thread_info_t *t = zn_thread_get(ti);
    if (sy->fn == NULL || t == NULL || t->start_fn == 0 || sy->fn(sy->ctx, t->start_fn, sf, 8) <= 0)
        return 0;
    return sf[0].func_start;
}

static zn_err_t write_thread_tables(names_t *nm, int ti, zn_trace_thread_t *tt, const sym_t *sy)
{
    zn_err_t err = ZN_OK;
    uintptr_t root = thread_root(ti, sy);
    for (int i = 0; i < tt->nroutes && err == ZN_OK; i++)
        err = zn_trace_put_string(nm->out, tt->routes[i].id, tt->routes[i].name, strlen(tt->routes[i].name));
    for (size_t i = 0; i < tt->stk.nents && err == ZN_OK; i++) {
        zn_trace_frame_t frames[ZN_TRACE_STACK_MAX];
        const struct zn_trace_stkent *e = &tt->stk.ents[i];
        int nf = symbolize_stack(nm, tt->stk.pcs + e->off, e->n, root, sy, frames);
        err = nm->err != ZN_OK ? nm->err : zn_trace_put_stack(nm->out, zn_trace_stack_id(ti, (uint32_t)i), frames, nf);
    }
    return err;
}

static zn_trace_chunk_t *footer(uint64_t epoch, zn_trace_symbolize_fn sym, void *ctx)
{
    const sym_t sy = {sym, ctx};
    zn_buf_t out;
    names_t nm = {0};
    zn_trace_chunk_t *c = NULL;
    zn_err_t err;

    zn_buf_init(&out, FOOTER_MAX);
    nm.out = &out;
    if ((err = zn_trace_put_frequency(&out, ZN_TRACE_FREQUENCY)) != ZN_OK ||
        (err = zn_trace_put_string(&out, ZN_TRACE_STR_REPO, "repo", 4)) != ZN_OK)
        goto done;
    int n = zn_thread_count();
    for (int i = 0; i < n && err == ZN_OK; i++)
        if (zn_trace_threads[i].epoch == epoch)
            err = write_thread_tables(&nm, i, &zn_trace_threads[i], &sy);
    if (err != ZN_OK)
        goto done;
    c = zn_malloc(sizeof(*c) + out.len);
    c->next = NULL;
    c->len = out.len;
    memcpy(c->data, out.p, out.len);
done:
    if (err != ZN_OK)
        zn_log(ZN_LOG_ERROR, "trace: footer too large, trace cut", ZN_LSTR("error", zn_err_str(err)));
    free(nm.keys);
    free(nm.ids);
    zn_htab_release(&nm.index);
    zn_buf_release(&out);
    return c;
}

/* Appends each thread's partial chunk of the session to *tail. */
static zn_trace_chunk_t **collect_partial(uint64_t epoch, zn_trace_chunk_t **tail)
{
    int n = zn_thread_count();
    for (int i = 0; i < n; i++) {
        zn_trace_thread_t *tt = &zn_trace_threads[i];
        if (tt->epoch != epoch || tt->chunk == NULL)
            continue;
        tt->chunk->len = tt->buf.len;
        *tail = tt->chunk;
        tail = &tt->chunk->next;
        tt->chunk = NULL;
    }
    return tail;
}

zn_trace_chunk_t *zn_trace_stop(zn_trace_symbolize_fn sym, void *ctx)
{
    uint64_t epoch = S.epoch;
    atomic_store(&S.on, 0);
    int n = zn_thread_count();
    for (int i = 0; i < n; i++)
        while (atomic_load(&zn_trace_threads[i].busy))
            sched_yield();
    zn_trace_end_running(epoch);
    zn_trace_chunk_t *head = zn_trace_take(), **tail = &head;
    while (*tail != NULL)
        tail = &(*tail)->next;
    tail = collect_partial(epoch, tail);
    *tail = footer(epoch, sym, ctx);
    for (int i = 0; i < n; i++)
        if (zn_trace_threads[i].epoch == epoch)
            zn_trace_stktab_reset(&zn_trace_threads[i].stk);
    zn_trace_release_session();
    return head;
}
