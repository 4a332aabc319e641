/*
 * common/pool.c - fixed background thread pool (contract in pool.h).
 *
 * One FIFO (head/tail) under one mutex and one condition variable; workers sleep on the
 * condition while the queue is empty. Stopping sets `stopping` and wakes everyone; a
 * worker leaves only once the queue is empty, so no submitted job is ever dropped.
 */
#include <stdio.h>
#include <stdlib.h>

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

static void *pool_main(void *arg)
{
    zn_pool_t *p = arg;
    zn_pool_job_t *job;
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
