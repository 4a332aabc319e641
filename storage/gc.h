/*
 * storage/gc.h - private to storage/gc*.c: the state of one repository's GC run.
 */
#ifndef ZN_STORAGE_GC_H
#define ZN_STORAGE_GC_H

#include "storage/internal.h"

typedef struct gc_repo {
    zn_storage_t *st;
    const char *name;
    st_repo_t *repo;
    uint64_t cutoff_ns;      /* wall clock: files with an mtime after this are young */
    const _Atomic int *stop; /* NULL or non-zero when the run must end early */
    st_map_t manifests;      /* digest -> parsed manifest (json_t*) or a missing/bad marker */
    st_map_t keep;           /* digests reachable from index.json */
    bool unsure;             /* a manifest that must be followed could not be read */
    st_map_t *orphans;       /* digests whose dedupe entry was lost, to re-record (caller's) */
    st_version_t swept;      /* the version of index.json the sweep marked from */
    bool index_moved;        /* the sweep stopped: index.json changed under it (no lock) */
    zn_storage_gc_stats_t stats;
} gc_repo_t;

/* gc.c: runs retention and the sweeps on g (st, name, cutoff_ns, stop, orphans set). */
zn_err_t gc_repo_run(gc_repo_t *g);
bool gc_stopping(const gc_repo_t *g);
uint64_t gc_mtime_ns(const struct stat *sb);

/* gc_files.c */
/* Removes .uploads files idle since the cutoff that no request holds. */
void gc_sweep_uploads(gc_repo_t *g);
/* Under the repository's lock, with index.json listing nothing: removes the repository if
 * it has no blob, no upload, no foreign file, and index.json is older than the cutoff. */
void gc_remove_if_empty(gc_repo_t *g);
/* After blob d left the repository: drops a dedupe entry naming it; when other links of the
 * file remained (shared), remembers d so that another holder is recorded later. */
void gc_dedupe_forget(gc_repo_t *g, const zn_digest_t *d, bool shared);

#endif
