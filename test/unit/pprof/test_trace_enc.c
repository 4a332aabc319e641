/*
 * Unit tests for pprof/trace_enc.c: varints, event encodings, batches, sequence numbers and
 * the String/Stack footer.
 *
 * The scenario tests build small traces with fixed timestamps and compare them byte for byte
 * with the .trace files in test/data/trace/. Those files were written by this encoder and accepted by
 * Go's own parser (`go tool trace -d`, `-pprof=net|sync|syscall|sched`, Go 1.19 and 1.23);
 * test/data/trace/README.md says how. ZN_TRACE_GOLDEN_UPDATE=1 rewrites them instead.
 * Each file is also re-read by trace_decode.h, which checks what the Go parser relies on:
 * the header, batches first, argument counts, per-goroutine sequence numbers, stack ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof/trace_enc.h"
#include "trace_decode.h"

static void test_uvarint(void **state)
{
    static const struct {
        uint64_t v;
        size_t n;
        uint8_t b[10];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[ZN_TRACE_VARINT_MAX];
        size_t n = zn_trace_put_uvarint(out, cases[i].v);
        assert_int_equal(n, cases[i].n);
        assert_memory_equal(out, cases[i].b, n);
        const uint8_t *p = out;
        uint64_t back;
        assert_int_equal(zn_trace_get_uvarint(&p, out + n, &back), 0);
        assert_true(back == cases[i].v);
        assert_ptr_equal(p, out + n);
        /* a cut varint is an error, not a short read */
        p = out;
        if (n > 1)
            assert_int_equal(zn_trace_get_uvarint(&p, out + n - 1, &back), -1);
    }
}

static void test_event_encoding(void **state)
{
    uint8_t out[ZN_TRACE_EV_MAX];
    /* GoStart: ts, g, seq -> three inline args, top bits 2 */
    uint64_t a3[] = {5, 7, 300};
    static const uint8_t go_start[] = {14 | 2 << 6, 5, 7, 0xac, 0x02};
    assert_int_equal(zn_trace_enc_event(out, ZN_TEV_GO_START, a3, 3), sizeof(go_start));
    assert_memory_equal(out, go_start, sizeof(go_start));
    /* GoCreate: ts, g, start stack, stack -> length-prefixed */
    uint64_t a4[] = {1, 2, 128, 4};
    static const uint8_t go_create[] = {13 | 3 << 6, 5, 1, 2, 0x80, 0x01, 4};
    assert_int_equal(zn_trace_enc_event(out, ZN_TEV_GO_CREATE, a4, 4), sizeof(go_create));
    assert_memory_equal(out, go_create, sizeof(go_create));
    /* ProcStop: the timestamp alone */
    uint64_t a1[] = {9};
    static const uint8_t proc_stop[] = {6, 9};
    assert_int_equal(zn_trace_enc_event(out, ZN_TEV_PROC_STOP, a1, 1), sizeof(proc_stop));
    assert_memory_equal(out, proc_stop, sizeof(proc_stop));
}

static void test_batch_deltas(void **state)
{
    uint8_t mem[256];
    zn_trace_buf_t b = {mem, 0, sizeof(mem), 0};
    zn_trace_g_t g = {3, 0};
    zn_trace_buf_open(&b, 2, 1000);
    static const uint8_t batch[] = {1 | 1 << 6, 2, 0xe8, 0x07};
    assert_int_equal(b.len, sizeof(batch));
    assert_memory_equal(mem, batch, sizeof(batch));
    zn_trace_buf_go_create(&b, 1010, &g, 1, 0);
    zn_trace_buf_go_start(&b, 1015, &g);
    /* a clock that went backwards gives a zero delta, never a huge unsigned one */
    zn_trace_buf_go_unblock(&b, 1012, &g, 0);
    static const uint8_t rest[] = {13 | 3 << 6, 4, 10, 3, 1, 0, 14 | 2 << 6, 5, 3, 1, 21 | 3 << 6, 4, 0, 3, 2, 0};
    assert_int_equal(b.len, sizeof(batch) + sizeof(rest));
    assert_memory_equal(mem + sizeof(batch), rest, sizeof(rest));
    assert_true(b.last_ts == 1015);
}

static void test_footer_limits(void **state)
{
    zn_buf_t out;
    zn_buf_init(&out, 1 << 20);
    assert_int_equal(zn_trace_put_string(&out, 0, "x", 1), ZN_EINVAL);
    assert_int_equal(zn_trace_put_string(&out, 1, "", 0), ZN_EINVAL);
    assert_int_equal(zn_trace_put_string(&out, 1, "ab", 2), ZN_OK);
    static const uint8_t str[] = {37, 1, 2, 'a', 'b'};
    assert_memory_equal(out.p, str, sizeof(str));
    zn_trace_frame_t frames[ZN_TRACE_STACK_MAX + 1];
    memset(frames, 0xff, sizeof(frames)); /* worst case: every varint 10 bytes */
    assert_int_equal(zn_trace_put_stack(&out, 1, frames, ZN_TRACE_STACK_MAX + 1), ZN_EINVAL);
    size_t before = out.len;
    assert_int_equal(zn_trace_put_stack(&out, 1, frames, ZN_TRACE_STACK_MAX), ZN_OK);
    /* header byte + 2-byte length + args: Go 1.22+ allows at most 2048 bytes of args */
    const uint8_t *p = (const uint8_t *)out.p + before + 1;
    uint64_t alen;
    assert_int_equal(zn_trace_get_uvarint(&p, (const uint8_t *)out.p + out.len, &alen), 0);
    assert_true(alen <= 2048);
    zn_buf_release(&out);
}

/* ---- golden scenarios ------------------------------------------------------------------ */

enum { NP = 4 };

/* A scenario: one open batch per P, flushed into `out` in the order a real session would. */
struct scen {
    zn_buf_t out;
    uint8_t mem[NP][1024];
    zn_trace_buf_t b[NP];
    zn_trace_g_t g[NP + 2];
};

#define NARGS(...) ((int)(sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t)))
#define EV(s, p, ts, type, ...) zn_trace_buf_event(&(s)->b[p], (ts), (type), (const uint64_t[]){__VA_ARGS__}, NARGS(__VA_ARGS__))
#define EV0(s, p, ts, type) zn_trace_buf_event(&(s)->b[p], (ts), (type), NULL, 0)

static void scen_init(struct scen *s)
{
    zn_buf_init(&s->out, 1 << 20);
    assert_int_equal(zn_buf_append(&s->out, ZN_TRACE_HEADER, ZN_TRACE_HEADER_LEN), ZN_OK);
    for (int i = 0; i < NP; i++)
        s->b[i] = (zn_trace_buf_t){s->mem[i], 0, sizeof(s->mem[i]), 0};
    for (int i = 0; i < NP + 2; i++)
        s->g[i] = (zn_trace_g_t){(uint64_t)i, 0};
}

static void scen_flush(struct scen *s, int p)
{
    assert_int_equal(zn_buf_append(&s->out, s->b[p].p, s->b[p].len), ZN_OK);
    s->b[p].len = 0;
}

enum { STR_ROUTE = 1, STR_REPO = 2 };
enum { STK_WORKER = 1, STK_BIO, STK_W2, STK_W3, STK_REQ, STK_LOCK, STK_SYS, STK_NET, STK_COND, STK_CREATE };

/* Strings and stacks every scenario shares: zinc-like names, fake but stable PCs. */
static void scen_footer(struct scen *s)
{
    static const char *strs[] = {NULL,           "blob_get",          "repo",         "zn_server_worker_main",
                                 "server/server.c", "zn_storage_bio_main", "storage/bio.c", "zn_api_blob_get",
                                 "api/blobs.c",  "zn_mutex_lock",     "common/lock.c", "zn_syscall_begin",
                                 "common/thread.c", "epoll_wait",       "pprof/trace_net.c", "zn_cond_wait",
                                 "zn_thread_create"};
    static const zn_trace_frame_t worker[] = {{0x401000, 3, 4, 10}};
    static const zn_trace_frame_t bio[] = {{0x402000, 5, 6, 20}};
    static const zn_trace_frame_t req[] = {{0x403010, 7, 8, 30}, {0x401040, 3, 4, 14}};
    static const zn_trace_frame_t lock[] = {{0x404020, 9, 10, 40}, {0x403020, 7, 8, 33}, {0x401040, 3, 4, 14}};
    static const zn_trace_frame_t sys[] = {{0x405030, 11, 12, 50}, {0x403030, 7, 8, 36}, {0x401040, 3, 4, 14}};
    static const zn_trace_frame_t net[] = {{0x406040, 13, 14, 60}, {0x401050, 3, 4, 12}};
    static const zn_trace_frame_t cond[] = {{0x404060, 15, 10, 70}, {0x402010, 5, 6, 25}};
    static const zn_trace_frame_t create[] = {{0x405070, 16, 12, 80}, {0x401060, 3, 4, 8}};
    static const struct {
        const zn_trace_frame_t *f;
        int n;
    } stacks[] = {{NULL, 0}, {worker, 1}, {bio, 1}, {worker, 1}, {worker, 1}, {req, 2},
                  {lock, 3}, {sys, 3},    {net, 2},   {cond, 2},   {create, 2}};

    assert_int_equal(zn_trace_put_frequency(&s->out, ZN_TRACE_FREQUENCY), ZN_OK);
    for (uint64_t i = 1; i < sizeof(strs) / sizeof(strs[0]); i++)
        assert_int_equal(zn_trace_put_string(&s->out, i, strs[i], strlen(strs[i])), ZN_OK);
    for (uint64_t i = 1; i < sizeof(stacks) / sizeof(stacks[0]); i++)
        assert_int_equal(zn_trace_put_stack(&s->out, i, stacks[i].f, stacks[i].n), ZN_OK);
}

/* Trace start without stopping the world: P0's thread writes GoCreate for every thread,
 * GoWaiting/GoInSyscall for the parked ones and starts itself; it then handles a request
 * (task, region, log) that waits on a lock and a slow syscall. */
static void build_start_p0(struct scen *s)
{
    zn_trace_buf_t *b = &s->b[0];
    zn_trace_g_t *g = s->g;
    zn_trace_buf_open(b, 0, 1000);
    zn_trace_buf_go_create(b, 1001, &g[1], STK_WORKER, 0);
    zn_trace_buf_go_create(b, 1002, &g[2], STK_W2, 0);
    zn_trace_buf_go_parked(b, 1003, &g[2], 0);
    zn_trace_buf_go_create(b, 1004, &g[3], STK_BIO, 0);
    zn_trace_buf_go_parked(b, 1005, &g[3], 1);
    zn_trace_buf_go_create(b, 1006, &g[4], STK_W3, 0);
    EV(s, 0, 1007, ZN_TEV_PROC_START, 100);
    zn_trace_buf_go_start(b, 1008, &g[1]);
    EV(s, 0, 1009, ZN_TEV_GOMAXPROCS, 4, 0);
    EV(s, 0, 1100, ZN_TEV_USER_TASK_CREATE, 1, 0, STR_ROUTE, STK_REQ);
    EV(s, 0, 1101, ZN_TEV_USER_REGION, 1, 0, STR_ROUTE, STK_REQ);
    zn_trace_buf_user_log(b, 1102, 1, STR_REPO, STK_REQ, "library/alpine", 14);
    EV(s, 0, 1200, ZN_TEV_GO_BLOCK_SYNC, STK_LOCK);
    zn_trace_buf_go_unblock(b, 1500, &g[1], STK_LOCK);
    zn_trace_buf_go_start(b, 1501, &g[1]);
    EV(s, 0, 1600, ZN_TEV_USER_REGION, 1, 1, STR_ROUTE, STK_REQ);
    EV(s, 0, 1601, ZN_TEV_USER_TASK_END, 1, STK_REQ);
    EV(s, 0, 1700, ZN_TEV_GO_SYSCALL, STK_SYS);
    EV0(s, 0, 1701, ZN_TEV_GO_SYSBLOCK);
    zn_trace_buf_go_sysexit(b, 2500, &g[1]);
    zn_trace_buf_go_start(b, 2501, &g[1]);
    EV(s, 0, 2600, ZN_TEV_GO_BLOCK_NET, STK_NET);
}

/* The others: g2 was parked in epoll (declared waiting), wakes twice, its P flushes a
 * batch in between; g3 returns from the syscall it was in; g4 was running and joins with
 * ProcStart + GoStart(seq 1). */
static void build_start_others(struct scen *s)
{
    zn_trace_g_t *g = s->g;
    zn_trace_buf_open(&s->b[1], 1, 1300);
    EV(s, 1, 1300, ZN_TEV_PROC_START, 101);
    zn_trace_buf_go_unblock(&s->b[1], 1301, &g[2], STK_NET);
    zn_trace_buf_go_start(&s->b[1], 1302, &g[2]);
    EV(s, 1, 1400, ZN_TEV_GO_BLOCK_NET, STK_NET);
    scen_flush(s, 1);
    zn_trace_buf_open(&s->b[2], 2, 2000);
    EV(s, 2, 2000, ZN_TEV_PROC_START, 102);
    zn_trace_buf_go_sysexit(&s->b[2], 2001, &g[3]);
    zn_trace_buf_go_start(&s->b[2], 2002, &g[3]);
    EV(s, 2, 2100, ZN_TEV_GO_SYSCALL, STK_SYS); /* a short one: no GoSysBlock */
    EV(s, 2, 2200, ZN_TEV_GO_BLOCK_COND, STK_COND);
    zn_trace_buf_open(&s->b[3], 3, 1800);
    EV(s, 3, 1800, ZN_TEV_PROC_START, 103);
    zn_trace_buf_go_start(&s->b[3], 1801, &g[4]);
    EV(s, 3, 1900, ZN_TEV_GO_BLOCK_NET, STK_NET);
    zn_trace_buf_go_unblock(&s->b[3], 2700, &g[4], STK_NET);
    zn_trace_buf_go_start(&s->b[3], 2701, &g[4]);
    zn_trace_buf_open(&s->b[1], 1, 3000);
    zn_trace_buf_go_unblock(&s->b[1], 3000, &g[2], STK_NET);
    zn_trace_buf_go_start(&s->b[1], 3001, &g[2]);
    EV(s, 1, 3100, ZN_TEV_GO_BLOCK_SYNC, STK_LOCK);
}

/* A thread created while the trace runs declares itself on its own P (GoCreate from that
 * P's idle context), runs, blocks and exits. */
static void build_newthread(struct scen *s)
{
    zn_trace_g_t *g = s->g;
    zn_trace_buf_open(&s->b[0], 0, 1000);
    zn_trace_buf_go_create(&s->b[0], 1001, &g[1], STK_WORKER, 0);
    EV(s, 0, 1002, ZN_TEV_PROC_START, 100);
    zn_trace_buf_go_start(&s->b[0], 1003, &g[1]);
    EV(s, 0, 1004, ZN_TEV_GOMAXPROCS, 1, 0);
    EV(s, 0, 1500, ZN_TEV_GO_BLOCK_NET, STK_NET);
    zn_trace_buf_open(&s->b[1], 1, 2000);
    zn_trace_buf_go_create(&s->b[1], 2000, &g[2], STK_BIO, STK_CREATE);
    EV(s, 1, 2001, ZN_TEV_PROC_START, 101);
    zn_trace_buf_go_start(&s->b[1], 2002, &g[2]);
    EV(s, 1, 2100, ZN_TEV_GO_BLOCK_SYNC, STK_LOCK);
    zn_trace_buf_go_unblock(&s->b[1], 2300, &g[2], STK_LOCK);
    zn_trace_buf_go_start(&s->b[1], 2301, &g[2]);
    EV0(s, 1, 2400, ZN_TEV_GO_END);
    EV0(s, 1, 2401, ZN_TEV_PROC_STOP);
    zn_trace_buf_go_unblock(&s->b[0], 2600, &g[1], STK_NET);
    zn_trace_buf_go_start(&s->b[0], 2601, &g[1]);
}

static void check_golden(const char *name, const zn_buf_t *t)
{
    char path[512];
    int n = snprintf(path, sizeof(path), "%s/trace/%s", ZN_TEST_DATA, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    if (getenv("ZN_TRACE_GOLDEN_UPDATE") != NULL) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(t->p, 1, t->len, f), t->len);
        assert_int_equal(fclose(f), 0);
    }
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char want[1 << 16];
    size_t wlen = fread(want, 1, sizeof(want), f);
    fclose(f);
    assert_int_equal(wlen, t->len);
    assert_memory_equal(want, t->p, wlen);
}

/* The highest sequence number seen for g (the decoder checked they are gap-free). */
static uint64_t last_seq(const td_stats_t *d, uint64_t g)
{
    uint64_t m = 0;
    for (size_t i = 0; i < d->nseqs; i++)
        if (d->seqs[i].a == g && d->seqs[i].b > m)
            m = d->seqs[i].b;
    return m;
}

static void test_golden_start(void **state)
{
    struct scen s;
    scen_init(&s);
    build_start_p0(&s);
    build_start_others(&s);
    scen_flush(&s, 0);
    scen_flush(&s, 3);
    scen_flush(&s, 1);
    scen_flush(&s, 2);
    scen_footer(&s);
    td_stats_t d = td_decode((const uint8_t *)s.out.p, s.out.len);
    assert_int_equal(d.batches, 5);
    assert_int_equal(d.strings, 16);
    assert_int_equal(d.stacks, 10);
    assert_int_equal(d.creates, 4);
    assert_true(last_seq(&d, 1) == 5 && last_seq(&d, 2) == 5 && last_seq(&d, 3) == 3 && last_seq(&d, 4) == 3);
    td_release(&d);
    check_golden("start.trace", &s.out);
    zn_buf_release(&s.out);
}

static void test_golden_newthread(void **state)
{
    struct scen s;
    scen_init(&s);
    build_newthread(&s);
    scen_flush(&s, 1);
    scen_flush(&s, 0);
    scen_footer(&s);
    td_stats_t d = td_decode((const uint8_t *)s.out.p, s.out.len);
    assert_int_equal(d.batches, 2);
    assert_true(last_seq(&d, 1) == 3 && last_seq(&d, 2) == 3);
    td_release(&d);
    check_golden("newthread.trace", &s.out);
    zn_buf_release(&s.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uvarint),
        cmocka_unit_test(test_event_encoding),
        cmocka_unit_test(test_batch_deltas),
        cmocka_unit_test(test_footer_limits),
        cmocka_unit_test(test_golden_start),
        cmocka_unit_test(test_golden_newthread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
