/*
 * pprof/trace_enc.c - encoder for the Go 1.19 execution trace format.
 *
 * Pure byte work: varints, events with inline or length-prefixed arguments, batches with
 * delta timestamps, goroutine sequence numbers, and the String/Stack/Frequency footer.
 * The runtime side (pprof/trace.c) decides what to write and when; this file only knows
 * how, so its output can be compared with golden files that Go's parser accepted.
 */
#include <string.h>

#include "pprof/trace_enc.h"

size_t zn_trace_put_uvarint(uint8_t *dst, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        dst[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    dst[n++] = (uint8_t)v;
    return n;
}

int zn_trace_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *s = *p;
    for (int i = 0; i < ZN_TRACE_VARINT_MAX && s < end; i++, s++) {
        v |= (uint64_t)(*s & 0x7f) << (7 * i);
        if ((*s & 0x80) == 0) {
            *p = s + 1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

size_t zn_trace_enc_event(uint8_t *dst, uint8_t type, const uint64_t *args, int n)
{
    if (n < 4) {
        size_t len = 1;
        dst[0] = (uint8_t)(type | (n - 1) << 6);
        for (int i = 0; i < n; i++)
            len += zn_trace_put_uvarint(dst + len, args[i]);
        return len;
    }
    /* length-prefixed: at most 6 varints = 60 bytes, so the length is a single byte */
    uint8_t tmp[ZN_TRACE_ARGS_MAX * ZN_TRACE_VARINT_MAX];
    size_t alen = 0;
    for (int i = 0; i < n; i++)
        alen += zn_trace_put_uvarint(tmp + alen, args[i]);
    dst[0] = (uint8_t)(type | 3 << 6);
    size_t len = 1 + zn_trace_put_uvarint(dst + 1, alen);
    memcpy(dst + len, tmp, alen);
    return len + alen;
}

void zn_trace_buf_open(zn_trace_buf_t *b, uint64_t p, uint64_t ts)
{
    uint64_t args[2] = {p, ts};
    b->len = zn_trace_enc_event(b->p, ZN_TEV_BATCH, args, 2);
    b->last_ts = ts;
}

static uint64_t take_delta(zn_trace_buf_t *b, uint64_t ts)
{
    if (ts < b->last_ts)
        return 0;
    uint64_t d = ts - b->last_ts;
    b->last_ts = ts;
    return d;
}

void zn_trace_buf_event(zn_trace_buf_t *b, uint64_t ts, uint8_t type, const uint64_t *rest, int nrest)
{
    uint64_t args[ZN_TRACE_ARGS_MAX];
    args[0] = take_delta(b, ts);
    for (int i = 0; i < nrest; i++)
        args[i + 1] = rest[i];
    b->len += zn_trace_enc_event(b->p + b->len, type, args, nrest + 1);
}

void zn_trace_buf_user_log(zn_trace_buf_t *b, uint64_t ts, uint64_t task, uint64_t key, uint64_t stk, const char *v,
                           size_t vlen)
{
    uint64_t rest[3] = {task, key, stk};
    zn_trace_buf_event(b, ts, ZN_TEV_USER_LOG, rest, 3);
    /* the value follows the length-prefixed arguments, outside their length */
    b->len += zn_trace_put_uvarint(b->p + b->len, vlen);
    memcpy(b->p + b->len, v, vlen);
    b->len += vlen;
}

void zn_trace_buf_go_create(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, uint64_t start_stk, uint64_t stk)
{
    uint64_t rest[3] = {g->g, start_stk, stk};
    g->seq = 0;
    zn_trace_buf_event(b, ts, ZN_TEV_GO_CREATE, rest, 3);
}

void zn_trace_buf_go_parked(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, int in_syscall)
{
    /* the parser implies seq 1 for GoWaiting/GoInSyscall */
    g->seq++;
    zn_trace_buf_event(b, ts, in_syscall ? ZN_TEV_GO_INSYSCALL : ZN_TEV_GO_WAITING, &g->g, 1);
}

void zn_trace_buf_go_start(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g)
{
    uint64_t rest[2] = {g->g, ++g->seq};
    zn_trace_buf_event(b, ts, ZN_TEV_GO_START, rest, 2);
}

void zn_trace_buf_go_unblock(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, uint64_t stk)
{
    uint64_t rest[3] = {g->g, ++g->seq, stk};
    zn_trace_buf_event(b, ts, ZN_TEV_GO_UNBLOCK, rest, 3);
}

void zn_trace_buf_go_sysexit(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g)
{
    uint64_t rest[3] = {g->g, ++g->seq, 0};
    zn_trace_buf_event(b, ts, ZN_TEV_GO_SYSEXIT, rest, 3);
}

zn_err_t zn_trace_put_frequency(zn_buf_t *out, uint64_t freq)
{
    uint8_t tmp[ZN_TRACE_EV_MAX];
    return zn_buf_append(out, tmp, zn_trace_enc_event(tmp, ZN_TEV_FREQUENCY, &freq, 1));
}

zn_err_t zn_trace_put_string(zn_buf_t *out, uint64_t id, const char *s, size_t len)
{
    uint8_t tmp[1 + 2 * ZN_TRACE_VARINT_MAX];
    zn_err_t err;

    if (id == 0 || len == 0 || len > 1000000)
        return ZN_EINVAL;
    tmp[0] = ZN_TEV_STRING;
    size_t n = 1 + zn_trace_put_uvarint(tmp + 1, id);
    n += zn_trace_put_uvarint(tmp + n, len);
    if ((err = zn_buf_append(out, tmp, n)) != ZN_OK)
        return err;
    return zn_buf_append(out, s, len);
}

zn_err_t zn_trace_put_stack(zn_buf_t *out, uint64_t id, const zn_trace_frame_t *frames, int n)
{
    uint8_t args[(2 + 4 * ZN_TRACE_STACK_MAX) * ZN_TRACE_VARINT_MAX];
    uint8_t head[1 + ZN_TRACE_VARINT_MAX];
    size_t alen = 0;
    zn_err_t err;

    if (n < 0 || n > ZN_TRACE_STACK_MAX)
        return ZN_EINVAL;
    alen += zn_trace_put_uvarint(args + alen, id);
    alen += zn_trace_put_uvarint(args + alen, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        alen += zn_trace_put_uvarint(args + alen, frames[i].pc);
        alen += zn_trace_put_uvarint(args + alen, frames[i].fn);
        alen += zn_trace_put_uvarint(args + alen, frames[i].file);
        alen += zn_trace_put_uvarint(args + alen, frames[i].line);
    }
    head[0] = ZN_TEV_STACK | 3 << 6;
    size_t hlen = 1 + zn_trace_put_uvarint(head + 1, alen);
    if ((err = zn_buf_append(out, head, hlen)) != ZN_OK)
        return err;
    return zn_buf_append(out, args, alen);
}
