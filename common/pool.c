/*
 * common/pool.c - fixed background thread pool (contract in pool.h).
 *
 * One FIFO (head/tail) under one mutex and one condition variable; workers sleep on the
 * condition while the queue is empty. Stopping sets `stopping` and wakes everyone; a
 * worker leaves only once the queue is empty, so no submitted job is ever dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/pool.h"

#define POOL_THREADS_MAX 64

struct zn_pool {
    zn_mutex_t lock; /* guards head, tail, pending, stopping */
    zn_cond_t cond;
    zn_pool_job_t *head, *tail;
    size_t pending;
    bool stopping;
    int nthreads;
    pthread_t threads[POOL_THREADS_MAX];
};

static zn_pool_job_t *take(zn_pool_t *p)
{
    zn_mutex_lock(&p->lock);
    while (p->head == NULL && !p->stopping)
        zn_cond_wait(&p->cond, &p->lock);
    zn_pool_job_t *job = p->head;
    if (job != NULL) {
        p->head = job->_next;
        if (p->head == NULL)
            p->tail = NULL;
        p->pending--;
    }
    zn_mutex_unlock(&p->lock);
    return job;
}

/* Bulk work (hashing and writing bodies) yields the CPU to the event loops: with 8 pushes
 * on 2 cores the pool threads at the loops' priority kept a worker runnable but not running
 * for up to half a second (bench/push_concurrent.py), and every request on it waited. A
 * nice of +5 gives a loop three times a pool thread's share when they contend; an idle
 * loop leaves the pool all of the CPU. Linux applies nice per thread. */
static void lower_priority(void)
{
    pid_t tid = gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)tid);
    if (nice == -1 && errno != 0)
        return;
    int want = nice + ZN_POOL_NICE > 19 ? 19 : nice + ZN_POOL_NICE;
    (void)setpriority(PRIO_PROCESS, (id_t)tid, want); /* best effort: raising nice never needs privileges */
}

static void *pool_main(void *arg)
{
    zn_pool_t *p = arg;
    zn_pool_job_t *job;
    lower_priority();
    while ((job = take(p)) != NULL) {
        job->_next = NULL;
        job->run(job);
        job->done(job);
    }
    return NULL;
}

zn_pool_t *zn_pool_new(const char *name, int nthreads)
{
    char tname[ZN_THREAD_NAME_MAX];
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > POOL_THREADS_MAX)
        nthreads = POOL_THREADS_MAX;
    zn_pool_t *p = zn_calloc(1, sizeof(*p));
    zn_mutex_init(&p->lock, "background pool queue");
    zn_cond_init(&p->cond);
    for (int i = 0; i < nthreads; i++) {
        int n = snprintf(tname, sizeof(tname), "%s-%d", name, i);
        if (n < 0 || (size_t)n >= sizeof(tname) || zn_thread_create(&p->threads[p->nthreads], tname, pool_main, p) != 0)
            break;
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        zn_cond_destroy(&p->cond);
        zn_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void zn_pool_submit(zn_pool_t *p, zn_pool_job_t *job)
{
    job->_next = NULL;
    zn_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->_next = job;
    else
        p->head = job;
    p->tail = job;
    p->pending++;
    zn_cond_signal(&p->cond);
    zn_mutex_unlock(&p->lock);
}

size_t zn_pool_pending(zn_pool_t *p)
{
    zn_mutex_lock(&p->lock);
    size_t n = p->pending;
    zn_mutex_unlock(&p->lock);
    return n;
}

void zn_pool_free(zn_pool_t *p)
{
    if (p == NULL)
        return;
    zn_mutex_lock(&p->lock);
    p->stopping = true;
    zn_cond_broadcast(&p->cond);
    zn_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    zn_cond_destroy(&p->cond);
    zn_mutex_destroy(&p->lock);
    free(p);
}
