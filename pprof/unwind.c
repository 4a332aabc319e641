/*
 * pprof/unwind.c - stack walking with libunwind (local only), for signal handlers and for the
 * heap sampler inside malloc.
 *
 * Addresses come out as lookup addresses: an interrupted pc is exact, a return address is
 * turned into return address - 1 so it falls inside the call instruction (the line pprof must
 * show), except right after a signal frame, whose "return address" is the interrupted pc.
 *
 * Signal handlers step with unw_init_local2 + unw_step: libunwind's DWARF cache is the global
 * one, whose lock is taken with every signal blocked, so a handler cannot interrupt another
 * unwind of its own thread halfway (the per-thread DWARF cache blocks nothing: not used).
 * Normal context (the heap sampler, about 10x cheaper this way) uses unw_backtrace and its
 * per-thread trace cache, which no signal handler of ours touches. Neither path allocates.
 * The profilers' signal handlers are installed here too, all alike.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <signal.h>
#include <string.h>

#include "pprof/internal.h"

static int walk(unw_cursor_t *c, uintptr_t *pcs, int max, int skip, bool exact_first)
{
    int n = 0;
    bool exact = exact_first;
    do {
        unw_word_t ip;
        if (unw_get_reg(c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        bool sig = unw_is_signal_frame(c) > 0;
        if (skip > 0)
            skip--;
        else
            pcs[n++] = exact || sig ? (uintptr_t)ip : (uintptr_t)ip - 1;
        exact = sig;
    } while (n < max && unw_step(c) > 0);
    return n;
}

int zn_pprof_unwind_signal(void *uc, uintptr_t *pcs, int max)
{
    unw_cursor_t c;
    if (unw_init_local2(&c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) < 0)
        return 0;
    return walk(&c, pcs, max, 0, true);
}

void zn_pprof_unwind_init(void)
{
    uintptr_t pcs[ZN_PPROF_DEPTH_MAX];
    /* libunwind sets itself up on first use (locks, dl_iterate_phdr): do that here, not in the
     * first signal handler */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_GLOBAL);
    zn_pprof_unwind_here(pcs, ZN_PPROF_DEPTH_MAX, 0);
}

int zn_pprof_unwind_here(uintptr_t *pcs, int max, int skip)
{
    void *ips[ZN_PPROF_DEPTH_MAX + 8];
    int want = max + skip + 1 < (int)(sizeof(ips) / sizeof(ips[0])) ? max + skip + 1 : (int)(sizeof(ips) / sizeof(ips[0]));
    int n = unw_backtrace(ips, want), out = 0;
    /* ips[0] is our own return address into this function's caller chain: skip it too */
    for (int i = skip + 1; i < n && out < max; i++)
        pcs[out++] = (uintptr_t)ips[i] - 1;
    return out;
}

zn_err_t zn_pprof_sigaction(int sig, void (*fn)(int sig, siginfo_t *si, void *uc))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = fn;
    /* restart interrupted syscalls; block everything else while we unwind */
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL) == 0 ? ZN_OK : ZN_EIO;
}
