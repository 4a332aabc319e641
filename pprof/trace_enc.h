/*
 * pprof/trace_enc.h - the Go 1.19 execution trace wire format (private to pprof/).
 *
 * A trace is the 16-byte header, then batches (one per flushed per-thread buffer, each
 * opened by Batch(p, ts) with an absolute timestamp; every later event carries the delta
 * from the previous event of the same batch), then Frequency, String and Stack records.
 * An event is one byte `type | (nargs-1) << 6` followed by unsigned LEB128 arguments; with
 * four or more arguments the top bits are 3 and the arguments' byte length comes first.
 *
 * The G helpers below keep Go's per-goroutine sequence numbers: GoCreate resets the
 * counter, and GoWaiting/GoInSyscall, GoStart, GoUnblock and GoSysExit each carry the
 * incremented value, which the parser uses to merge batches from different Ps.
 * Nothing here allocates except the table buffers (zn_buf_t).
 */
#ifndef ZN_PPROF_TRACE_ENC_H
#define ZN_PPROF_TRACE_ENC_H

#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"

#define ZN_TRACE_HEADER "go 1.19 trace\0\0\0"
#define ZN_TRACE_HEADER_LEN 16
#define ZN_TRACE_FREQUENCY 1000000000u /* timestamps are CLOCK_MONOTONIC nanoseconds */

/* Event types of Go 1.19 (runtime/trace.go). Only those zinc writes are listed. */
enum {
    ZN_TEV_BATCH = 1,
    ZN_TEV_FREQUENCY = 2,
    ZN_TEV_STACK = 3,
    ZN_TEV_GOMAXPROCS = 4,
    ZN_TEV_PROC_START = 5,
    ZN_TEV_PROC_STOP = 6,
    ZN_TEV_GO_CREATE = 13,
    ZN_TEV_GO_START = 14,
    ZN_TEV_GO_END = 15,
    ZN_TEV_GO_PREEMPT = 18,
    ZN_TEV_GO_UNBLOCK = 21,
    ZN_TEV_GO_BLOCK_SYNC = 25,
    ZN_TEV_GO_BLOCK_COND = 26,
    ZN_TEV_GO_BLOCK_NET = 27,
    ZN_TEV_GO_SYSCALL = 28,
    ZN_TEV_GO_SYSEXIT = 29,
    ZN_TEV_GO_SYSBLOCK = 30,
    ZN_TEV_GO_WAITING = 31,
    ZN_TEV_GO_INSYSCALL = 32,
    ZN_TEV_STRING = 37,
    ZN_TEV_USER_TASK_CREATE = 45,
    ZN_TEV_USER_TASK_END = 46,
    ZN_TEV_USER_REGION = 47,
    ZN_TEV_USER_LOG = 48,
};

#define ZN_TRACE_VARINT_MAX 10
#define ZN_TRACE_ARGS_MAX 6
/* Largest encoding of one event without a UserLog value: type, length, six varints. */
#define ZN_TRACE_EV_MAX (2 + ZN_TRACE_ARGS_MAX * ZN_TRACE_VARINT_MAX)
/* Go 1.22+ refuses a length-prefixed event whose arguments exceed 2048 bytes: 48 frames of
 * four 10-byte varints stay below that whatever the values (Go itself writes <= 128 frames
 * of small ids; ours are symbolized in-process, so 48 caller frames are plenty). */
#define ZN_TRACE_STACK_MAX 48
/* Longest UserLog value we write (the parser accepts 1e6; a repository name is far shorter). */
#define ZN_TRACE_LOG_MAX 4096

/* Writes v as unsigned LEB128 to dst (room for ZN_TRACE_VARINT_MAX bytes); returns its length. */
size_t zn_trace_put_uvarint(uint8_t *dst, uint64_t v);
/* Decodes one varint from [*p, end); on success advances *p and returns 0, else -1. */
int zn_trace_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *out);

/* Encodes an event of `type` with n (1..ZN_TRACE_ARGS_MAX) arguments into dst, which has
 * room for ZN_TRACE_EV_MAX bytes. Returns the number of bytes written. */
size_t zn_trace_enc_event(uint8_t *dst, uint8_t type, const uint64_t *args, int n);

/* One batch being filled by its owner: a fixed-capacity byte area that always starts with
 * Batch(p, ts). `last_ts` is the absolute time of the last event, for deltas. */
typedef struct zn_trace_buf {
    uint8_t *p;
    size_t len, cap;
    uint64_t last_ts;
} zn_trace_buf_t;

/* Resets b (which keeps its memory, cap >= 64) to hold Batch(p, ts). */
void zn_trace_buf_open(zn_trace_buf_t *b, uint64_t p, uint64_t ts);
/* Room left for events, in bytes. */
static inline size_t zn_trace_buf_room(const zn_trace_buf_t *b)
{
    return b->cap - b->len;
}
/* Appends an event whose first argument is the timestamp ts (absolute; written as a delta,
 * clamped to 0 if the clock went backwards) followed by n-1 arguments `rest`. The caller
 * checked that ZN_TRACE_EV_MAX bytes are free. */
void zn_trace_buf_event(zn_trace_buf_t *b, uint64_t ts, uint8_t type, const uint64_t *rest, int nrest);
/* UserLog(task, key string, stack) followed by the value; room for ZN_TRACE_EV_MAX +
 * ZN_TRACE_VARINT_MAX + vlen bytes is the caller's check. */
void zn_trace_buf_user_log(zn_trace_buf_t *b, uint64_t ts, uint64_t task, uint64_t key, uint64_t stk, const char *v,
                           size_t vlen);

/* A goroutine's trace-side state: its id and Go's sequence counter. */
typedef struct zn_trace_g {
    uint64_t g;
    uint64_t seq;
} zn_trace_g_t;

/* GoCreate(g, start stack, creator stack) and reset g's counter. */
void zn_trace_buf_go_create(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, uint64_t start_stk, uint64_t stk);
/* GoWaiting(g) or GoInSyscall(g) right after its GoCreate: the G was parked at trace start. */
void zn_trace_buf_go_parked(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, int in_syscall);
/* GoStart(g, seq). */
void zn_trace_buf_go_start(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g);
/* GoUnblock(g, seq, stk). */
void zn_trace_buf_go_unblock(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g, uint64_t stk);
/* GoSysExit(g, seq, 0): the exit time is the event's own timestamp. */
void zn_trace_buf_go_sysexit(zn_trace_buf_t *b, uint64_t ts, zn_trace_g_t *g);

/* The footer: Frequency, then String and Stack records, appended to a growing buffer. */
zn_err_t zn_trace_put_frequency(zn_buf_t *out, uint64_t freq);
/* String(id, len, bytes); id != 0 and 0 < len <= 1e6 (Go's limits). */
zn_err_t zn_trace_put_string(zn_buf_t *out, uint64_t id, const char *s, size_t len);
typedef struct zn_trace_frame {
    uint64_t pc;
    uint64_t fn;   /* string id of the function name */
    uint64_t file; /* string id of the file name */
    uint64_t line;
} zn_trace_frame_t;
/* Stack(id, n, frames leaf first); n <= ZN_TRACE_STACK_MAX. */
zn_err_t zn_trace_put_stack(zn_buf_t *out, uint64_t id, const zn_trace_frame_t *frames, int n);

#endif
