/*
 * auth/auth_int.h - private to auth/: the pieces zn_auth_t is built from.
 *
 *   htpasswd.c  the user table read from http.auth.htpasswd.path, re-read when the file changes
 *   verify.c    checking a password against one stored hash (bcrypt, SHA-crypt, argon2id)
 *   cache.c     verified credentials keyed by HMAC(user, password), bounded, with a TTL
 *   policy.c    zot's authorization rules on the config structs
 *   basic.c     parsing "Authorization: Basic ..."
 *   token.c     bearer tokens (minted and checked; the key lives with the caller)
 *   auth.c      zn_auth_t: ties them together behind auth/auth.h
 *
 * No other module includes this header.
 */
#ifndef ZN_AUTH_INT_H
#define ZN_AUTH_INT_H

#include <stdatomic.h>
#include <sys/stat.h>

#include "auth/auth.h"

/* Longest stored hash we accept; argon2id with large parameters stays well below it. */
#define ZN_AUTH_HASH_MAX 255
/* An htpasswd file is small; a bigger one is refused rather than read whole. */
#define ZN_AUTH_HTPASSWD_MAX (16u << 20)
#define ZN_AUTH_FP_LEN 32

/* ---- hashes (verify.c) ------------------------------------------------------------------ */

typedef enum zn_auth_hash_kind {
    ZN_AUTH_HASH_UNKNOWN,
    ZN_AUTH_HASH_BCRYPT,
    ZN_AUTH_HASH_SHACRYPT,
    ZN_AUTH_HASH_ARGON2ID,
} zn_auth_hash_kind_t;

/* Classify a stored hash by its syntax (prefix, length, alphabet). UNKNOWN for anything we
 * cannot verify, including a valid hash followed by stray bytes such as a '\r'. */
zn_auth_hash_kind_t zn_auth_hash_kind(const char *hash, size_t len);

/* True iff pass (len bytes, no NUL) matches the NUL-terminated stored hash. Takes
 * milliseconds (that is the point of these hashes): never call it on an event loop for
 * every request. Compares in constant time. */
bool zn_auth_hash_verify(const char *hash, const char *pass, size_t pass_len);

/* SHA-256 of the stored hash string: identifies "this user's current hash" in the cache. */
void zn_auth_hash_fingerprint(const char *hash, size_t len, uint8_t fp[ZN_AUTH_FP_LEN]);

/* ---- htpasswd (htpasswd.c) ---------------------------------------------------------------- */

typedef struct zn_auth_htpasswd_entry {
    char *user;
    char *hash;
    uint8_t fp[ZN_AUTH_FP_LEN];
    size_t line; /* 1-based line it came from (duplicates: the last one) */
} zn_auth_htpasswd_entry_t;

/* One parsed file: entries sorted by user, unique. */
typedef struct zn_auth_htpasswd_table {
    zn_auth_htpasswd_entry_t *entries;
    size_t n;
} zn_auth_htpasswd_table_t;

typedef struct zn_auth_htpasswd {
    char *path;
    zn_rwlock_t lock;                 /* guards table and gen */
    zn_auth_htpasswd_table_t table;
    uint64_t gen;                     /* bumped on every successful reload */
    zn_mutex_t reload_lock;           /* one thread at a time stats / re-reads; guards st, digest, racy, reload_failing */
    struct stat st;                   /* identity of the file last loaded */
    uint8_t digest[32];               /* SHA-256 of its bytes */
    bool racy;                        /* its ctime was too recent to trust stat alone */
    bool reload_failing;              /* the last reload attempt failed (log once) */
    _Atomic uint64_t next_check_ns;   /* monotonic time of the next stat */
    uint64_t check_interval_ns;
} zn_auth_htpasswd_t;

/* Parse text (len bytes) into t; `name` is the file name used in warnings. Never fails on
 * bad lines: each one is logged with file and line number and skipped. Caller owns t and
 * releases it with zn_auth_htpasswd_table_release(). */
void zn_auth_htpasswd_parse(const char *name, const char *text, size_t len, zn_auth_htpasswd_table_t *t);
void zn_auth_htpasswd_table_release(zn_auth_htpasswd_table_t *t);

/* Load path into h (initialised here). ZN_EIO / ZN_ETOOBIG with a message in errbuf if the
 * file cannot be read; h is then left released. */
zn_err_t zn_auth_htpasswd_init(zn_auth_htpasswd_t *h, const char *path, char *errbuf, size_t errlen);
void zn_auth_htpasswd_release(zn_auth_htpasswd_t *h);

/* Re-read the file if at least check_interval_ns passed since the last check and its
 * identity (device, inode, size, mtime, ctime) changed. Cheap when nothing is due: one
 * atomic load. Thread-safe. A file that cannot be read keeps the previous table (logged),
 * as zot does. Returns true if a new table was installed. */
bool zn_auth_htpasswd_maybe_reload(zn_auth_htpasswd_t *h, uint64_t now_ns);

/* Copy user's hash (NUL-terminated) into hash[ZN_AUTH_HASH_MAX + 1] and its fingerprint
 * into fp, and the table generation into *gen. ZN_ENOENT if the user is not in the file. */
zn_err_t zn_auth_htpasswd_lookup(zn_auth_htpasswd_t *h, const char *user, char *hash, uint8_t fp[ZN_AUTH_FP_LEN],
                                 uint64_t *gen);

/* Copy some user's hash into hash[ZN_AUTH_HASH_MAX + 1] (a decoy to verify against for an
 * unknown user, so that costs as much as a wrong password). ZN_ENOENT if the file is empty. */
zn_err_t zn_auth_htpasswd_any_hash(zn_auth_htpasswd_t *h, char *hash);

/* ---- credential cache (cache.c) --------------------------------------------------------- */

#define ZN_AUTH_CACHE_WAYS 4

typedef struct zn_auth_cache_entry {
    uint8_t mac[32];              /* HMAC-SHA256(key, user, password) */
    uint8_t fp[ZN_AUTH_FP_LEN];   /* fingerprint of the hash it was verified against */
    uint64_t gen;                 /* htpasswd generation it was verified against */
    uint64_t expires_ns;
    uint64_t used;                /* LRU stamp within its set */
    bool live;
} zn_auth_cache_entry_t;

typedef struct zn_auth_cache {
    zn_mutex_t lock; /* guards entries and tick */
    struct evp_md_st *sha256; /* fetched once */
    uint8_t ipad[64], opad[64]; /* HMAC-SHA256 key (32 random bytes) xor ipad/opad; read-only */
    zn_auth_cache_entry_t *entries;
    size_t nsets;    /* entries = nsets * ZN_AUTH_CACHE_WAYS */
    uint64_t tick;
    uint64_t ttl_ns;
} zn_auth_cache_t;

/* capacity is rounded up to a multiple of ZN_AUTH_CACHE_WAYS (at least one set). */
void zn_auth_cache_init(zn_auth_cache_t *c, size_t capacity, uint64_t ttl_ns);
void zn_auth_cache_release(zn_auth_cache_t *c);
/* The cache key for a credential; the password itself is never stored. */
void zn_auth_cache_mac(const zn_auth_cache_t *c, const char *user, size_t ulen, const char *pass, size_t plen,
                       uint8_t mac[32]);
/* Hit only if an entry has this mac, was verified against the same generation and the same
 * hash fingerprint, and has not expired; a stale entry found on the way is dropped. */
bool zn_auth_cache_lookup(zn_auth_cache_t *c, const uint8_t mac[32], const uint8_t fp[ZN_AUTH_FP_LEN], uint64_t gen,
                          uint64_t now_ns);
/* Record a successful verification (never call it for a failure). Evicts an expired entry
 * or the least recently used one of the set when it is full. */
void zn_auth_cache_insert(zn_auth_cache_t *c, const uint8_t mac[32], const uint8_t fp[ZN_AUTH_FP_LEN], uint64_t gen,
                          uint64_t now_ns);
/* Drop everything (the file changed). */
void zn_auth_cache_clear(zn_auth_cache_t *c);
/* Live entries (tests, metrics). */
size_t zn_auth_cache_count(zn_auth_cache_t *c);

/* ---- policy (policy.c) --------------------------------------------------------------------- */

typedef struct zn_auth_rule {
    const zn_config_repo_access_t *cfg;
    size_t len; /* strlen(cfg->pattern): the specificity */
    zn_glob_t glob;
} zn_auth_rule_t;

/* accessControl compiled: rules sorted so the first match is the winner (longest pattern,
 * then strcmp-smaller). `access` NULL = no accessControl. Borrows the config structs. */
typedef struct zn_auth_policy {
    const zn_config_access_t *access;
    zn_auth_rule_t *rules;
    size_t nrules;
    bool has_anonymous; /* some repository has an anonymousPolicy */
} zn_auth_policy_t;

zn_err_t zn_auth_policy_init(zn_auth_policy_t *p, const zn_config_access_t *access, char *errbuf, size_t errlen);
void zn_auth_policy_release(zn_auth_policy_t *p);
/* zot's AnonymousPolicyExists: some repository has a non-empty anonymousPolicy. */
bool zn_auth_policy_anonymous_exists(const zn_config_access_t *access);
/* The winning rule for repo, or NULL when no pattern matches. */
const zn_auth_rule_t *zn_auth_policy_rule(const zn_auth_policy_t *p, const char *repo);
/* ZN_ACT_* the identity holds on repo per zot §3 (user NULL = anonymous); with no
 * accessControl, all of them. */
unsigned zn_auth_policy_actions(const zn_auth_policy_t *p, const char *user, const char *repo);
/* In adminPolicy users, or in a group adminPolicy lists; with no accessControl any user. */
bool zn_auth_policy_is_admin(const zn_auth_policy_t *p, const char *user);
/* Whether name is one of names[0..n) (exact compare). */
bool zn_auth_policy_in_list(char *const *names, size_t n, const char *name);
/* Whether user is listed in group `group` of accessControl.groups. */
bool zn_auth_policy_in_group(const zn_auth_policy_t *p, const char *user, const char *group);

#endif
