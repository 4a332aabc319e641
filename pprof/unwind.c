/*
 * pprof/unwind.c - stack walking with libunwind (local only), for signal handlers and for the
 * heap sampler inside malloc.
 *
 * Addresses come out as lookup addresses: an interrupted pc is exact, a return address is
 * turned into return address - 1 so it falls inside the call instruction (the line pprof must
 * show), except right after a signal frame, whose "return address" is the interrupted pc.
 * libunwind's local unwinder does not allocate, and with its default global cache it blocks
 * every signal while it holds the cache lock, which is what makes it usable from a SIGPROF
 * handler that may interrupt another unwind on the same thread (the heap sampler's). Its
 * per-thread cache takes no lock and blocks nothing, so it is not safe here and is not used.
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
    unw_context_t ctx;
    unw_cursor_t c;
    if (unw_getcontext(&ctx) < 0 || unw_init_local(&c, &ctx) < 0)
        return 0;
    /* frame 0 is this function: its ip is a return address into nothing of interest */
    return walk(&c, pcs, max, skip + 1, false);
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
