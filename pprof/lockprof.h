/*
 * pprof/lockprof.h - mutex and block profiles (private to pprof/).
 *
 * The lock wrappers (common/lock.c) call back on contention; these hooks sample the events
 * at the configured rates, capture the stack and add to one of two cumulative tables, as
 * Go's runtime does: block = waiters' stacks with the time they waited (locks and condition
 * waits), mutex = the stacks of holders that released a lock others waited for, with the
 * delay they caused. The tables are read by the snapshot handler (proto with ?seconds
 * deltas, and Go's debug=1 text).
 */
#ifndef ZN_PPROF_LOCKPROF_H
#define ZN_PPROF_LOCKPROF_H

#include "pprof/internal.h"

/* Installs the lock hooks (these profiles and the tracer's lock events). mutex_rate: one
 * contended release in N is recorded (0 = off); block_rate_ns: waits of at least that long
 * are all recorded, shorter ones with probability wait/rate and weighted up (0 = off).
 * Call once from zn_pprof_init, before other threads start. */
void zn_lockprof_init(unsigned mutex_rate, unsigned block_rate_ns);

/* Go's block sampling for one wait: with rnd uniform, keeps a wait of wait_ns with
 * probability min(1, wait/rate) and gives the (count, delay) to add, unbiased: (1, wait)
 * for a long wait, (rate/wait, rate) for a short one. False when not kept (or rate == 0). */
bool zn_lockprof_block_sample(uint64_t wait_ns, uint64_t rate, uint64_t rnd, double *count, int64_t *delay);

extern const zn_pprof_def_t zn_pprof_def_mutex, zn_pprof_def_block;

#endif
