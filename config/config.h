/*
 * config/config.h - zot's config.json read into plain structs.
 *
 * zinc reads the same file zot does: keys are matched case-insensitively (zot lower-cases
 * every key, map keys included), http.port may be a string or a number, durations are Go
 * strings ("90s", "1h30m"). Keys zot knows but zinc does not implement produce a warning
 * naming the key; unknown keys, wrong types and out-of-range values are errors naming the
 * file, the key path and the problem. The parsed struct is read-only after start.
 */
#ifndef ZN_CONFIG_H
#define ZN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"

typedef struct zn_config_policy {
    char **users;
    size_t nusers;
    char **groups;
    size_t ngroups;
    unsigned actions; /* ZN_ACT_* bits */
} zn_config_policy_t;

typedef struct zn_config_repo_access {
    char *pattern; /* glob, lower-cased as zot does */
    zn_config_policy_t *policies;
    size_t npolicies;
    unsigned default_actions;   /* defaultPolicy */
    unsigned anonymous_actions; /* anonymousPolicy */
    bool has_anonymous;         /* anonymousPolicy present (even if empty) */
} zn_config_repo_access_t;

typedef struct zn_config_group {
    char *name;
    char **users;
    size_t nusers;
} zn_config_group_t;

typedef struct zn_config_access {
    zn_config_group_t *groups;
    size_t ngroups;
    zn_config_repo_access_t *repos;
    size_t nrepos;
    zn_config_policy_t admin; /* adminPolicy */
    bool has_admin;
    zn_config_policy_t metrics; /* metrics: users + anonymousPolicy actions in .actions */
} zn_config_access_t;

/* extensions.sync (config/sync.c). Strings NULL when unset. */
typedef struct zn_config_sync_content {
    char *prefix;          /* doublestar glob of upstream repositories, leading '/' dropped */
    char *destination;     /* local namespace, NULL = same names */
    bool strip_prefix;
    char *tags_regex;      /* tags.regex (POSIX ERE, unanchored like Go's MatchString) */
    char *tags_exclude_regex; /* tags.excludeRegex */
    bool tags_semver;      /* tags.semver: only tags that parse as semantic versions */
} zn_config_sync_content_t;

typedef struct zn_config_sync_registry {
    char **urls; /* "http(s)://host[:port]", at least one */
    size_t nurls;
    bool on_demand;
    uint64_t poll_interval_ns; /* 0 = no periodic sync */
    bool tls_verify;           /* default true */
    bool has_tls_verify;
    char *cert_dir;            /* CA certs (*.crt) and client cert/key (*.cert, *.key) as zot reads them */
    unsigned max_retries;      /* default 0 */
    bool has_max_retries;
    uint64_t retry_delay_ns;
    bool has_retry_delay;
    bool only_signed;
    uint64_t manifest_check_interval_ns; /* zot's manifestCheckInterval: re-check a tag upstream after it */
    zn_config_sync_content_t *content;
    size_t ncontent;
} zn_config_sync_registry_t;

typedef struct zn_config_sync {
    bool enable; /* extensions.sync present and enable not false */
    bool has_enable;
    char *credentials_file;
    zn_config_sync_registry_t *registries;
    size_t nregistries;
} zn_config_sync_t;

/* storage.storageDriver: zot's S3 keys (distribution's s3-aws parameters). */
typedef struct zn_config_s3 {
    char *name;           /* "s3", required */
    char *region;         /* required (any value RGW/MinIO accept, e.g. us-east-1) */
    char *bucket;         /* required */
    char *regionendpoint; /* "http(s)://host[:port]" or "host[:port]"; NULL: AWS's s3.<region>.amazonaws.com */
    char *rootdirectory;  /* key prefix inside the bucket, '/' trimmed at both ends; NULL: none */
    char *accesskey, *secretkey; /* both required: no IAM or instance credentials yet */
    bool secure;          /* https when regionendpoint has no scheme; default true */
    bool secure_set;
    bool skipverify;      /* do not verify the endpoint's TLS certificate */
    bool forcepathstyle;  /* <endpoint>/<bucket>/<key> instead of <bucket>.<endpoint>/<key> */
    uint64_t chunksize;   /* multipart part size: default 16 MiB, 5 MiB (S3's minimum) to 64 MiB */
} zn_config_s3_t;

typedef struct zn_config {
    char *path; /* the file read, or NULL for built-in defaults */
    char *dist_spec_version;

    struct {
        char *root_directory;   /* required in a file; default "./data" with no file */
        bool dedupe;            /* true */
        bool gc;                /* true */
        bool commit;            /* false: fsync before rename when true */
        uint64_t gc_delay_ns;   /* 1h */
        uint64_t gc_interval_ns;/* 1h (0 when gc off and unset) */
        uint64_t max_blob_size; /* zinc: storage.maxBlobSize, default 64 GiB */
        uint64_t max_manifest_size; /* zinc: storage.maxManifestSize, default 4 MiB */
        bool mount_without_from;    /* zinc: storage.mountWithoutFrom, default true */
        bool redirect_blob_url;     /* storage.redirectBlobURL: false; only S3 stores redirect */
        zn_config_s3_t *driver;     /* storage.storageDriver, NULL: the filesystem */
    } storage;

    struct {
        char *address; /* "127.0.0.1" */
        int port;      /* 8080 */
        char *realm;   /* "" */
        int workers;   /* zinc: http.workers, 0 = CPU count */
        uint64_t read_timeout_ns, write_timeout_ns; /* 60s; 0 = none (idle timeouts) */
        struct {
            char *cert, *key, *cacert; /* NULL when unset */
        } tls;
        struct {
            char *htpasswd_path; /* NULL when unset */
            int fail_delay;      /* seconds */
        } auth;
        zn_config_access_t *access; /* NULL when accessControl is absent */
        char *external_url;
    } http;

    struct {
        zn_log_level_t level; /* debug (zot default) */
        char *output;         /* NULL = stderr */
        char *audit;          /* NULL = none */
    } log;

    struct {
        bool metrics_enable;
        char *metrics_path; /* "/metrics" */
        bool scrub_enable;          /* extensions.scrub present (enable defaults to true) */
        uint64_t scrub_interval_ns; /* extensions.scrub.interval, default 24h, at least 2h as in zot */
        zn_config_sync_t *sync;     /* extensions.sync, NULL when absent */
    } extensions;

    /* zot's scale-out cluster (pkg/api/config/config.go ClusterConfig); present = the key was
     * given. Every member has the same section; a repository belongs to the member at index
     * siphash(hashKey, name) % nmembers (see server/cluster.c). */
    struct {
        bool present;
        char **members; /* "host:port", as written (checked by zn_config_split_hostport) */
        size_t nmembers;
        char *hash_key; /* exactly 16 bytes: the SipHash-2-4 key */
        struct {
            char *cert, *key, *cacert; /* client certificate and CA used towards members; NULL when unset */
        } tls;
    } cluster;

    struct {
        bool verify_blob_reads; /* zinc.verifyBlobReads: hash whole-blob GETs while streaming, default true */
        uint64_t scrub_rate; /* zinc.scrubRate: bytes/s a periodic scrub re-hashes at most, default 64 MiB/s */
        unsigned profile_max_seconds; /* zinc.profiling.maxSeconds, default 600 */
        unsigned mutex_rate;          /* zinc.profiling.mutexRate: 1 in N contentions, default 1 */
        unsigned block_rate_ns;       /* zinc.profiling.blockRate: sample waits >= N ns, default 10000 */
        bool heap_sampling;           /* zinc.profiling.heap, default true */
        /* zinc.profiling.debugAddress: "HOST:PORT", ":PORT" or "PORT" (then 127.0.0.1), NULL =
         * no debug listener. The check splits it into debug_host ("[::1]" -> "::1") and port. */
        char *debug_address;
        char debug_host[64];
        int debug_port;
    } zinc;
} zn_config_t;

/* Fill cfg with defaults (no file). Caller releases with zn_config_release(). */
void zn_config_init_defaults(zn_config_t *cfg);

/* Warning callback: called once per warning with a message such as
 * "config.json: extensions.search: not implemented by zinc, ignored". */
typedef void (*zn_config_warn_fn)(void *data, const char *msg);

/* Read and validate path into cfg (which it initialises). On ZN_OK the caller owns cfg's
 * contents and releases them with zn_config_release(). On error cfg is released, and
 * errbuf holds "<file>: <key.path>: <problem>" (cut short with "..." if errlen is too
 * small): ZN_ENOENT (no such file), ZN_EIO (unreadable), ZN_ETOOBIG (over 16 MiB),
 * ZN_EINVAL (anything wrong with the content). warn may be NULL; it is called during the
 * call only, with a message it must copy if it keeps it. Empty-string TLS paths and
 * htpasswd path come back as NULL. */
zn_err_t zn_config_load(const char *path, zn_config_t *cfg, zn_config_warn_fn warn, void *warn_data, char *errbuf,
                        size_t errlen);

/* Same as zn_config_load on an in-memory JSON text; `name` is used in messages. */
zn_err_t zn_config_parse(const char *name, const char *text, size_t len, zn_config_t *cfg, zn_config_warn_fn warn,
                         void *warn_data, char *errbuf, size_t errlen);

/* Free everything cfg owns and zero it; safe on a released or zeroed cfg. */
void zn_config_release(zn_config_t *cfg);

/* Split "host:port" or "[v6]:port" (as Go's net.SplitHostPort, port 1-65535) into host
 * (brackets removed, NUL-terminated in host[hostlen]) and *port. ZN_EINVAL when the form is
 * wrong, the host is empty or longer than hostlen - 1. */
zn_err_t zn_config_split_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Parse a Go duration ("90s", "1h30m", "1.5h", "0"); a bare non-zero number is rejected.
 * ZN_EINVAL on syntax, ZN_ERANGE when negative or beyond 2^63-1 ns; *ns untouched then. */
zn_err_t zn_config_parse_duration(const char *s, uint64_t *ns);

#endif
