/*
 * pprof/trace_net.c - the event loop's wait for I/O, seen by the tracer and by the goroutine
 * profile (thread state "idle").
 *
 * h2o's evloop (libh2o-evloop.so) calls epoll_wait through its PLT. zinc's executable is
 * linked with ENABLE_EXPORTS (-rdynamic), and the executable comes first in the dynamic
 * linker's lookup scope, so this definition interposes it for h2o (and anyone else). It
 * forwards to epoll_pwait with no signal mask, which is the same system call semantics
 * under a different symbol: no recursion and no dlsym at run time.
 *
 * Why here and not around h2o_evloop_run: that call also runs every callback (handlers,
 * timers), so a span around it would count request handling as I/O wait. Around the
 * epoll_wait the GoBlockNet -> GoUnblock span is exactly the time the thread slept for
 * I/O. Calls with a zero timeout never sleep and are not shown.
 */
#include <dlfcn.h>
#include <errno.h>
#include <sys/epoll.h>

#include "pprof/trace_int.h"

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    if (timeout == 0)
        return epoll_pwait(epfd, events, maxevents, 0, NULL);
    zn_thread_info_t *self = zn_thread_self();
    zn_thread_set_state(self, ZN_THREAD_IDLE);
    if (atomic_load(&zn_trace_sess.on) != 0)
        zn_trace_net_block((uintptr_t)__builtin_return_address(0), (uintptr_t)__builtin_frame_address(0));
    int r = epoll_pwait(epfd, events, maxevents, timeout, NULL);
    int saved = errno;
    zn_thread_set_state(self, ZN_THREAD_RUNNING);
    if (atomic_load(&zn_trace_sess.on) != 0)
        zn_trace_net_unblock();
    errno = saved;
    return r;
}

bool zn_trace_net_interposed(void)
{
    /* the process-wide definition h2o's PLT binds to */
    void *(*volatile sym)(void) = NULL;
    *(void **)&sym = dlsym(RTLD_DEFAULT, "epoll_wait");
    return (void *)sym == (void *)epoll_wait;
}
