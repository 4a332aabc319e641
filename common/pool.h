/*
 * common/pool.h - a small fixed pool of named background threads for work that must not
 * run on an event loop: hashing and writing upload bodies, fsync, re-hashing a session
 * after a restart.
 *
 * A job is a caller-owned struct embedding zn_pool_job_t. A pool thread runs job->run and
 * then job->done, both on the pool thread; done is where the caller posts the job back to
 * its own loop (api/body.c does it with an h2o multithread message), so this module knows
 * nothing of h2o. Jobs start in the order they were submitted; with several threads they
 * may finish in any order, so a caller that needs order keeps one job in flight per object.
 */
#ifndef ZN_POOL_H
#define ZN_POOL_H

#include "common/zn.h"

typedef struct zn_pool_job {
    struct zn_pool_job *_next;
    void (*run)(struct zn_pool_job *job);  /* the work; pool thread */
    void (*done)(struct zn_pool_job *job); /* after run, pool thread; may free or re-submit job */
} zn_pool_job_t;

typedef struct zn_pool zn_pool_t;

/* Pool threads run this much nicer than the thread that made the pool (capped at 19), so
 * event loops win the CPU over bulk work. */
#define ZN_POOL_NICE 5

/* Starts nthreads (1..64) threads named "<name>-<i>" through zn_thread_create. Returns
 * NULL if none could start. Free with zn_pool_free. */
zn_pool_t *zn_pool_new(const char *name, int nthreads);
/* Queues job (borrowed until its done has run). Thread-safe. */
void zn_pool_submit(zn_pool_t *p, zn_pool_job_t *job);
/* Jobs queued and not yet started (for tests and metrics). */
size_t zn_pool_pending(zn_pool_t *p);
/* Runs every job already queued, then stops and joins the threads and frees p. NULL is a
 * no-op. Jobs submitted during the call still run. */
void zn_pool_free(zn_pool_t *p);

#endif
