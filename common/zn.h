/*
 * common/zn.h - the few helpers every zinc module shares: error codes, a byte slice,
 * bounded buffers, the one hash table (htab.c), the one doublestar glob parser (glob.c, for
 * accessControl keys: config validates with it, auth matches with it), the one bounded
 * whole-file reader (file.c), JSON-lines logging, and the thread and lock wrappers that
 * pprof instruments.
 *
 * Nothing here includes h2o: storage/ and config/ use this header too. Threads and locks
 * go through these wrappers so that the profiler sees every one of them (thread registry
 * for CPU timers, stack snapshots and threadcreate; lock hooks for mutex/block profiles
 * and the execution trace) without touching call sites. The router contract (rows, the
 * request context) is common/route.h; the h2o-aware HTTP edge is common/edge/.
 */
#ifndef ZN_COMMON_H
#define ZN_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- errors ------------------------------------------------------------------------- */

typedef enum zn_err {
    ZN_OK = 0,
    ZN_ENOENT,   /* object does not exist */
    ZN_EEXIST,   /* object already exists */
    ZN_EINVAL,   /* malformed input */
    ZN_EDIGEST,  /* content does not match its digest */
    ZN_ERANGE,   /* offset/range does not fit */
    ZN_ETOOBIG,  /* a size limit was crossed */
    ZN_EIO,      /* the OS failed a read/write/rename/fsync */
    ZN_ENOMEM,   /* allocation failed */
    ZN_EBUSY,    /* resource in use */
    ZN_EUNSUPP,  /* valid but not supported */
    ZN_EDENIED,  /* not allowed */
    ZN_EAGAIN,   /* the backend is throttling or unavailable: try again later (503 + Retry-After) */
} zn_err_t;

/* Static, never NULL. */
const char *zn_err_str(zn_err_t err);

/* ---- byte slices ---------------------------------------------------------------------- */

typedef struct zn_slice {
    const char *p;
    size_t n;
} zn_slice_t;

#define ZN_SLICE_LIT(s) ((zn_slice_t){(s), sizeof(s) - 1})
static inline zn_slice_t zn_slice(const char *p, size_t n)
{
    return (zn_slice_t){p, n};
}
bool zn_slice_eq(zn_slice_t a, const char *lit);
/* Malloc'd NUL-terminated copy; caller frees. Dies on OOM. */
char *zn_slice_dup(zn_slice_t s);

/* Allocation wrappers: out-of-memory is fatal (logged, then abort). */
void *zn_malloc(size_t n);
void *zn_calloc(size_t n, size_t sz);
void *zn_realloc(void *p, size_t n);
char *zn_strdup(const char *s);

/* Bounded growable buffer (curl dynbuf style): appending past max fails with ZN_ETOOBIG
 * and leaves the content unchanged. _init with max; _release frees; _detach hands the
 * NUL-terminated bytes to the caller (who frees them) and resets the buffer. */
typedef struct zn_buf {
    char *p;
    size_t len, cap, max;
} zn_buf_t;
void zn_buf_init(zn_buf_t *b, size_t max);
void zn_buf_release(zn_buf_t *b);
zn_err_t zn_buf_append(zn_buf_t *b, const void *p, size_t n);
zn_err_t zn_buf_printf(zn_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *zn_buf_detach(zn_buf_t *b, size_t *len);
/* Room for extra more bytes (and the NUL) without another allocation; ZN_ETOOBIG past max.
 * Content and len are unchanged; p is NUL-terminated afterwards. */
zn_err_t zn_buf_reserve(zn_buf_t *b, size_t extra);

/* ---- hash table ------------------------------------------------------------------------- */

/* (hash, value) pairs; the caller hashes its key (zn_hash) and resolves collisions with eq(),
 * so keys and values may be of any shape: a value is the caller's - a pointer cast to
 * uintptr_t, or an index into its own array. The table never owns, copies or frees what a
 * value points to. No lock: the owner guards it. Dies on OOM. */
typedef struct zn_htab_slot {
    uint64_t hash; /* 0 = free */
    uintptr_t val;
} zn_htab_slot_t;
typedef struct zn_htab {
    zn_htab_slot_t *slots;
    size_t cap, n; /* n entries in cap slots */
} zn_htab_t;
/* True when val is the entry the lookup's ctx describes. */
typedef bool (*zn_htab_eq_fn)(void *ctx, uintptr_t val);

/* _init: empty, allocates nothing. _release: frees the slots (not what values point to). */
void zn_htab_init(zn_htab_t *h);
void zn_htab_release(zn_htab_t *h);
/* True if an entry with this hash satisfies eq(ctx, value); its value into *val (may be NULL). */
bool zn_htab_find(const zn_htab_t *h, uint64_t hash, zn_htab_eq_fn eq, void *ctx, uintptr_t *val);
/* Adds an entry; the caller has checked that its key is not in the table yet. */
void zn_htab_insert(zn_htab_t *h, uint64_t hash, uintptr_t val);
/* Removes the entry find() would give, its value into *val (may be NULL); false if none. */
bool zn_htab_delete(zn_htab_t *h, uint64_t hash, zn_htab_eq_fn eq, void *ctx, uintptr_t *val);
/* Iteration in slot order: size_t pos = 0; while (zn_htab_next(h, &pos, &v)) ...; the table
 * must not change during it. */
bool zn_htab_next(const zn_htab_t *h, size_t *pos, uintptr_t *val);
/* A 64-bit hash of n bytes (FNV-1a, then mixed: every bit usable); not cryptographic, so a
 * table keyed by network input also caps its size. */
uint64_t zn_hash(const void *p, size_t n, uint64_t seed);

/* ---- doublestar globs (glob.c) ---------------------------------------------------------- */

/* One brace-free alternative of a pattern, split at '/' (outside classes). */
typedef struct zn_glob_alt {
    char *pat; /* NUL-terminated; segs point into it */
    zn_slice_t *segs;
    size_t nsegs;
} zn_glob_alt_t;

/* A compiled doublestar pattern: the brace alternatives expanded, each split in segments. */
typedef struct zn_glob {
    zn_glob_alt_t *alts;
    size_t nalts;
} zn_glob_t;

#define ZN_GLOB_ALTS_MAX 256

/* Compile pattern (doublestar's ValidatePattern grammar). ZN_EINVAL for a bad pattern
 * (unclosed or empty class, unbalanced '{' '}', trailing '\'), ZN_ETOOBIG when braces expand
 * past ZN_GLOB_ALTS_MAX; g is then empty. On ZN_OK the caller releases g. */
zn_err_t zn_glob_compile(const char *pattern, zn_glob_t *g);
void zn_glob_release(zn_glob_t *g);
/* doublestar v4 Match(pattern, name): '*' within a segment, '**' as a whole segment for
 * zero or more segments, '?', classes "[a-z]" "[!x]" "[^x]", '\' escapes, "{a,b}". Linear
 * backtracking: no pattern/name pair takes exponential time (the name comes from the network). */
bool zn_glob_match(const zn_glob_t *g, const char *name);
/* zn_glob_match that adds to *steps the turns its loops took: the work it did, which the
 * unit test bounds by pattern x name without a clock. */
bool zn_glob_match_counted(const zn_glob_t *g, const char *name, uint64_t *steps);
/* Compiles and matches in one call (false for an invalid pattern): for rare matches. */
bool zn_glob_matches(const char *pattern, const char *name);

/* ---- whole files ----------------------------------------------------------------------- */

struct stat;

/* Reads the whole file at path into *out, which this initializes with zn_buf_init(out, max):
 * on ZN_OK out->p holds out->len bytes plus a NUL (never NULL, even for an empty file) and the
 * caller releases it with zn_buf_release(); st, if not NULL, gets the open file's fstat.
 * Else *out is released and the result is ZN_ENOENT (no such file), ZN_ETOOBIG (more than max
 * bytes: the file is not read past max + 1) or ZN_EIO, with errno from the failing call for a
 * message. Blocking: for small local files only (config, htpasswd, /proc), never a blob. */
zn_err_t zn_file_read(const char *path, size_t max, zn_buf_t *out, struct stat *st);

/* An error message into buf[cap] (snprintf): one cut short ends in "..." so a reader sees
 * it was cut, never a silently shortened text. False when cut (or cap is 0). */
bool zn_errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parse a decimal unsigned integer occupying all of s, at most max. */
zn_err_t zn_parse_u64(zn_slice_t s, uint64_t max, uint64_t *out);

/* The value of one hex digit, or -1: lower case only unless any_case (digests and tokens
 * are lower case by spec; percent-encoding takes both). */
int zn_hex_digit(char c, bool any_case);

/* Monotonic and wall clocks in nanoseconds. */
uint64_t zn_now_mono_ns(void);
uint64_t zn_now_wall_ns(void);

/* ---- logging --------------------------------------------------------------------------- */

typedef enum zn_log_level { ZN_LOG_DEBUG, ZN_LOG_INFO, ZN_LOG_WARN, ZN_LOG_ERROR, ZN_LOG_FATAL } zn_log_level_t;

typedef enum { ZN_LF_END, ZN_LF_STR, ZN_LF_INT, ZN_LF_UINT, ZN_LF_DOUBLE, ZN_LF_BOOL } zn_lf_type_t;
typedef struct zn_log_field {
    zn_lf_type_t type;
    const char *key;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
    } v;
    size_t slen; /* for ZN_LF_STR: SIZE_MAX = NUL-terminated */
} zn_log_field_t;

#define ZN_LSTR(k_, v_) ((zn_log_field_t){ZN_LF_STR, (k_), {.s = (v_)}, SIZE_MAX})
#define ZN_LSTRN(k_, v_, n_) ((zn_log_field_t){ZN_LF_STR, (k_), {.s = (v_)}, (n_)})
#define ZN_LINT(k, x) ((zn_log_field_t){ZN_LF_INT, (k), {.i = (x)}, 0})
#define ZN_LUINT(k, x) ((zn_log_field_t){ZN_LF_UINT, (k), {.u = (x)}, 0})
#define ZN_LDBL(k, x) ((zn_log_field_t){ZN_LF_DOUBLE, (k), {.d = (x)}, 0})
#define ZN_LBOOL(k, x) ((zn_log_field_t){ZN_LF_BOOL, (k), {.i = !!(x)}, 0})

/* Writes one JSON line {"level","time","message",fields...} if level >= the configured
 * level. Thread-safe; one write(2) per line. Field arrays end with a ZN_LF_END entry. */
void zn_log_write(zn_log_level_t level, const char *msg, const zn_log_field_t *fields);
#define zn_log(level, msg, ...) zn_log_write((level), (msg), (const zn_log_field_t[]){__VA_ARGS__ __VA_OPT__(, ){ZN_LF_END}})

/* Same line format, written to fd whatever the configured level (the audit log). */
void zn_log_write_fd(int fd, zn_log_level_t level, const char *msg, const zn_log_field_t *fields);

/* Configure: fd to write to (default 2) and minimal level. */
void zn_log_set_level(zn_log_level_t level);
void zn_log_set_fd(int fd);
zn_log_level_t zn_log_get_level(void);
/* "debug"/"info"/"warn"/"error"/"fatal" (also "warning", "panic"); ZN_EINVAL otherwise. */
zn_err_t zn_log_level_parse(const char *s, zn_log_level_t *out);

/* ---- threads ----------------------------------------------------------------------------- */

#define ZN_THREAD_NAME_MAX 16
#define ZN_THREAD_STACK_MAX 32
#define ZN_THREADS_MAX 256

typedef enum zn_thread_state {
    ZN_THREAD_RUNNING, /* doing work */
    ZN_THREAD_IDLE,    /* waiting for I/O (event loop) */
    ZN_THREAD_BLOCKED, /* waiting on a lock or condition */
    ZN_THREAD_SYSCALL, /* in a slow syscall (fsync...) */
    ZN_THREAD_EXITED,
} zn_thread_state_t;

/* One registered thread. Slots are never freed (ZN_THREADS_MAX), so readers may walk them
 * without a lock; fields are written by the owning thread or before `live` is published. */
typedef struct zn_thread_info {
    int id;                     /* index in the registry */
    pid_t tid;                  /* kernel thread id */
    pthread_t pthread;
    char name[ZN_THREAD_NAME_MAX];
    _Atomic int live;           /* 1 while the thread runs */
    _Atomic int state;          /* zn_thread_state_t */
    uintptr_t create_stack[ZN_THREAD_STACK_MAX]; /* return addresses of the creator, leaf first */
    int create_depth;
    uint64_t created_ns;        /* wall clock */
    void *pprof;                /* owned by pprof (per-thread profiler state) */
    uintptr_t start_fn;         /* the thread's function (main: a PC in the registering caller) */
    const char *_Atomic route;  /* route name while a request is being handled, else NULL */
    const char *_Atomic repo;   /* repository of that request (interned by pprof, lives forever), else NULL */
} zn_thread_info_t;

/* Hooks pprof installs (before any worker starts). Called on the new thread itself. */
typedef struct zn_thread_hooks {
    void (*on_start)(zn_thread_info_t *t);
    void (*on_exit)(zn_thread_info_t *t);
} zn_thread_hooks_t;
void zn_thread_set_hooks(const zn_thread_hooks_t *hooks);

/* Create a named, registered thread. Returns 0 or an errno: EINVAL for a name of
 * ZN_THREAD_NAME_MAX bytes or more (the kernel would cut it), EAGAIN when the registry is full. */
int zn_thread_create(pthread_t *out, const char *name, void *(*fn)(void *), void *arg);
/* Register the calling thread (main) under name. Idempotent. NULL if the name is too long or
 * the registry is full. */
zn_thread_info_t *zn_thread_register_self(const char *name);
/* The calling thread's info, or NULL if it is not registered. */
zn_thread_info_t *zn_thread_self(void);
/* Number of slots ever used; slots [0, n) are valid to read. */
int zn_thread_count(void);
zn_thread_info_t *zn_thread_get(int i);
/* True while t runs its function: registered, not yet past its end. A thread that returned
 * (state EXITED) still looks live while its exit hooks run; profiles treat it as gone, as Go
 * lists no dead goroutine. */
static inline bool zn_thread_running(const zn_thread_info_t *t)
{
    return t->live && t->state != ZN_THREAD_EXITED;
}
static inline void zn_thread_set_state(zn_thread_info_t *t, zn_thread_state_t s)
{
    if (t != NULL)
        t->state = s;
}

/* Captures return addresses of the caller (leaf first), skipping `skip` frames. Safe in
 * normal context (not in signal handlers). */
int zn_backtrace(uintptr_t *pcs, int max, int skip);

/* ---- locks -------------------------------------------------------------------------------- */

/* Contention bookkeeping shared by mutexes and rwlocks: waiters announce themselves, and
 * the holder that releases a lock others wait for reports the delay it caused since the
 * first waiter arrived or since the previous such release (Go's mutex profile semantics). */
typedef struct zn_lock_wait {
    _Atomic uint32_t waiters;
    _Atomic uint64_t since; /* CLOCK_MONOTONIC ns; 0 = nobody waiting */
} zn_lock_wait_t;

typedef struct zn_mutex {
    pthread_mutex_t m;
    const char *name;      /* static string naming what it guards */
    zn_lock_wait_t _wait;
} zn_mutex_t;
/* Static initializer: `static zn_mutex_t m = ZN_MUTEX_INITIALIZER("what it guards");` */
#define ZN_MUTEX_INITIALIZER(name) {PTHREAD_MUTEX_INITIALIZER, (name), {0, 0}}

typedef struct zn_cond {
    pthread_cond_t c;
} zn_cond_t;

typedef struct zn_rwlock {
    pthread_rwlock_t l;
    const char *name;
    zn_lock_wait_t _wait;
} zn_rwlock_t;

/* Profiling hooks (pprof sets them; NULL = off). `wait_ns` is how long the caller waited.
 * on_contended runs in the waiter after it got the lock, and after a condition wait (block
 * profile); on_unlock_contended runs in the holder that releases a lock others wait for,
 * before the release, with the delay it caused (mutex profile). on_block_begin/end bracket
 * a slow wait (trace); `lock` is the zn_mutex_t, zn_rwlock_t or zn_cond_t. */
typedef enum zn_lock_kind { ZN_LOCK_MUTEX, ZN_LOCK_RWLOCK, ZN_LOCK_COND } zn_lock_kind_t;
typedef struct zn_lock_hooks {
    void (*on_contended)(const void *lock, uint64_t wait_ns);
    void (*on_unlock_contended)(const void *lock, uint64_t delay_ns);
    void (*on_block_begin)(const void *lock, zn_lock_kind_t kind);
    void (*on_block_end)(const void *lock);
} zn_lock_hooks_t;
void zn_lock_set_hooks(const zn_lock_hooks_t *hooks);

void zn_mutex_init(zn_mutex_t *m, const char *name);
void zn_mutex_destroy(zn_mutex_t *m);
void zn_mutex_lock(zn_mutex_t *m);
bool zn_mutex_trylock(zn_mutex_t *m);
void zn_mutex_unlock(zn_mutex_t *m);

void zn_cond_init(zn_cond_t *c);
void zn_cond_destroy(zn_cond_t *c);
void zn_cond_wait(zn_cond_t *c, zn_mutex_t *m);
/* Returns false on timeout. abs_mono_ns is CLOCK_MONOTONIC. */
bool zn_cond_timedwait(zn_cond_t *c, zn_mutex_t *m, uint64_t abs_mono_ns);
void zn_cond_signal(zn_cond_t *c);
void zn_cond_broadcast(zn_cond_t *c);

void zn_rwlock_init(zn_rwlock_t *l, const char *name);
void zn_rwlock_destroy(zn_rwlock_t *l);
void zn_rwlock_rdlock(zn_rwlock_t *l);
void zn_rwlock_wrlock(zn_rwlock_t *l);
void zn_rwlock_unlock(zn_rwlock_t *l);

/* ---- slow system calls ---------------------------------------------------------------------- */

/* Storage (and anyone else) brackets a system call that may block for long - fsync,
 * fdatasync, rename, unlink, open/creat of a file, a large pread/pwrite - with these, so
 * the goroutine profile shows the thread "in syscall" and the execution trace shows
 * GoSysCall/GoSysBlock/GoSysExit with the caller's stack. Pairs, on the same thread, not
 * nested; errno is preserved. Cheap when no trace runs (a state store and a branch). */
void zn_syscall_begin(void);
void zn_syscall_end(void);
/* Hooks pprof installs (before any worker starts); called after the state change. */
typedef struct zn_syscall_hooks {
    void (*on_begin)(void);
    void (*on_end)(void);
} zn_syscall_hooks_t;
void zn_syscall_set_hooks(const zn_syscall_hooks_t *hooks);

/* ---- access-control actions ------------------------------------------------------------ */

/* Access-control actions (zot names): config parses them, auth grants them, router rows
 * (common/route.h) require them. */
enum { ZN_ACT_READ = 1, ZN_ACT_CREATE = 2, ZN_ACT_UPDATE = 4, ZN_ACT_DELETE = 8 };

#endif
