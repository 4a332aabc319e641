/*
 * config/config.c - zot's config.json as a schema, plus the checks zot makes at startup.
 *
 * The tables below list every key zot's loader knows (pkg/api/config/config.go) with the
 * struct field it fills; zot keys zinc does not implement are CFG_WARN rows, so one warning
 * names them and their contents are not checked. zinc-only keys (http.workers,
 * storage.maxBlobSize/maxManifestSize/mountWithoutFrom, the "zinc" section) sit beside
 * them. After the walk, the cross-key rules zot enforces in LoadConfiguration run:
 * rootDirectory given, gc defaults, metrics path, TLS pair, accessControl needing
 * authentication. Parsing is config/walk.c's job; this file only describes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/internal.h"

#define ZN_CONFIG_FILE_MAX (16u << 20)
#define DUR_HOUR 3600000000000ull
#define DUR_MINUTE 60000000000ull

enum { SEEN_GC_DELAY = 1, SEEN_GC_INTERVAL = 2, SEEN_METRICS = 4, SEEN_METRICS_ENABLE = 8, SEEN_AUTHN = 16, SEEN_SCRUB = 32, SEEN_SCRUB_ENABLE = 64 };

#define CFG(m) offsetof(zn_config_t, m)
#define ACL(m) offsetof(zn_config_access_t, m)
#define POL(m) offsetof(zn_config_policy_t, m)
#define REPO(m) offsetof(zn_config_repo_access_t, m)
#define GRP(m) offsetof(zn_config_group_t, m)
#define WARN(n)                                                                                                                    \
    {                                                                                                                              \
        .name = (n), .kind = CFG_WARN                                                                                              \
    }
#define SKIP(n)                                                                                                                    \
    {                                                                                                                              \
        .name = (n), .kind = CFG_SKIP                                                                                              \
    }

/* Map entries keep their lower-cased name at offset 0 (see CFG_MAP). */
_Static_assert(offsetof(zn_config_repo_access_t, pattern) == 0, "map entry name first");
_Static_assert(offsetof(zn_config_group_t, name) == 0, "map entry name first");

/* ---- http.accessControl --------------------------------------------------------------- */

static const cfg_field_t policy_fields[] = {
    {.name = "users", .kind = CFG_STRV, .off = POL(users), .off_n = POL(nusers)},
    {.name = "groups", .kind = CFG_STRV, .off = POL(groups), .off_n = POL(ngroups), .flags = CFG_F_GROUPS},
    {.name = "actions", .kind = CFG_ACTS, .off = POL(actions)},
    WARN("conditions"),
    {NULL},
};

static const cfg_field_t repo_fields[] = {
    {.name = "policies",
     .kind = CFG_ARR,
     .off = REPO(policies),
     .off_n = REPO(npolicies),
     .sub = policy_fields,
     .elem_size = sizeof(zn_config_policy_t)},
    {.name = "defaultPolicy", .kind = CFG_ACTS, .off = REPO(default_actions)},
    {.name = "anonymousPolicy",
     .kind = CFG_ACTS,
     .off = REPO(anonymous_actions),
     .flags = CFG_F_PRESENT,
     .present_off = REPO(has_anonymous)},
    WARN("conditions"),
    {NULL},
};

static const cfg_field_t group_fields[] = {
    {.name = "users", .kind = CFG_STRV, .off = GRP(users), .off_n = GRP(nusers)},
    {NULL},
};

static const cfg_field_t metrics_acl_fields[] = {
    {.name = "users", .kind = CFG_STRV, .off = POL(users), .off_n = POL(nusers)},
    {.name = "anonymousPolicy", .kind = CFG_ACTS, .off = POL(actions)},
    {NULL},
};

static const cfg_field_t acl_fields[] = {
    {.name = "repositories",
     .kind = CFG_MAP,
     .off = ACL(repos),
     .off_n = ACL(nrepos),
     .sub = repo_fields,
     .elem_size = sizeof(zn_config_repo_access_t),
     .flags = CFG_F_GLOB},
    {.name = "groups",
     .kind = CFG_MAP,
     .off = ACL(groups),
     .off_n = ACL(ngroups),
     .sub = group_fields,
     .elem_size = sizeof(zn_config_group_t)},
    {.name = "adminPolicy",
     .kind = CFG_OBJ,
     .off = ACL(admin),
     .sub = policy_fields,
     .flags = CFG_F_PRESENT,
     .present_off = ACL(has_admin)},
    {.name = "metrics", .kind = CFG_OBJ, .off = ACL(metrics), .sub = metrics_acl_fields},
    {NULL, .hint = "repository patterns go under http.accessControl.repositories (zot 2 layout)"},
};

/* ---- http ----------------------------------------------------------------------------- */

static const cfg_field_t tls_fields[] = {
    {.name = "cert", .kind = CFG_STR, .off = CFG(http.tls.cert)},
    {.name = "key", .kind = CFG_STR, .off = CFG(http.tls.key)},
    {.name = "cacert", .kind = CFG_STR, .off = CFG(http.tls.cacert)},
    {NULL},
};

static const cfg_field_t htpasswd_fields[] = {
    {.name = "path", .kind = CFG_STR, .off = CFG(http.auth.htpasswd_path)},
    {NULL},
};

static const cfg_field_t auth_fields[] = {
    {.name = "htpasswd", .kind = CFG_OBJ, .sub = htpasswd_fields},
    {.name = "failDelay", .kind = CFG_INT, .off = CFG(http.auth.fail_delay), .max = 3600},
    {.name = "ldap", .kind = CFG_WARN, .seen = SEEN_AUTHN},
    {.name = "openid", .kind = CFG_WARN, .seen = SEEN_AUTHN},
    WARN("bearer"),
    WARN("apikey"),
    WARN("mtls"),
    WARN("sessionKeysFile"),
    WARN("sessionDriver"),
    WARN("secureSession"),
    {NULL},
};

static const cfg_field_t http_fields[] = {
    {.name = "address", .kind = CFG_STR, .off = CFG(http.address)},
    {.name = "port", .kind = CFG_INT, .off = CFG(http.port), .max = 65535, .flags = CFG_F_EMPTY_ZERO},
    {.name = "realm", .kind = CFG_STR, .off = CFG(http.realm)},
    {.name = "externalUrl", .kind = CFG_STR, .off = CFG(http.external_url)},
    {.name = "workers", .kind = CFG_INT, .off = CFG(http.workers), .max = 256},
    {.name = "readTimeout", .kind = CFG_DUR, .off = CFG(http.read_timeout_ns), .flags = CFG_F_NEG_NONE},
    {.name = "writeTimeout", .kind = CFG_DUR, .off = CFG(http.write_timeout_ns), .flags = CFG_F_NEG_NONE},
    {.name = "tls", .kind = CFG_OBJ, .sub = tls_fields},
    {.name = "auth", .kind = CFG_OBJ, .sub = auth_fields},
    {.name = "accessControl",
     .kind = CFG_PTROBJ,
     .off = CFG(http.access),
     .sub = acl_fields,
     .elem_size = sizeof(zn_config_access_t)},
    WARN("allowOrigin"),
    WARN("ratelimit"),
    WARN("compat"),
    {NULL},
};

/* ---- storage, log, extensions, zinc --------------------------------------------------- */

#define S3(m) offsetof(zn_config_s3_t, m)
#define ZN_S3_CHUNK_MIN (5u << 20)
#define ZN_S3_CHUNK_MAX (64u << 20)
#define ZN_S3_CHUNK_DEFAULT (16u << 20)

static const cfg_field_t s3_fields[] = {
    {.name = "name", .kind = CFG_STR, .off = S3(name)},
    {.name = "region", .kind = CFG_STR, .off = S3(region)},
    {.name = "bucket", .kind = CFG_STR, .off = S3(bucket)},
    {.name = "regionendpoint", .kind = CFG_STR, .off = S3(regionendpoint)},
    {.name = "rootdirectory", .kind = CFG_STR, .off = S3(rootdirectory)},
    {.name = "accesskey", .kind = CFG_STR, .off = S3(accesskey)},
    {.name = "secretkey", .kind = CFG_STR, .off = S3(secretkey)},
    {.name = "secure", .kind = CFG_BOOL, .off = S3(secure), .flags = CFG_F_PRESENT, .present_off = S3(secure_set)},
    {.name = "skipverify", .kind = CFG_BOOL, .off = S3(skipverify)},
    {.name = "forcepathstyle", .kind = CFG_BOOL, .off = S3(forcepathstyle)},
    {.name = "chunksize", .kind = CFG_U64, .off = S3(chunksize), .min = ZN_S3_CHUNK_MIN, .max = ZN_S3_CHUNK_MAX},
    /* distribution's other s3-aws parameters: known, not implemented */
    WARN("v4auth"),
    WARN("encrypt"),
    WARN("keyid"),
    WARN("storageclass"),
    WARN("objectacl"),
    WARN("sessiontoken"),
    WARN("useragent"),
    WARN("usedualstack"),
    WARN("accelerate"),
    WARN("loglevel"),
    WARN("multipartcopychunksize"),
    WARN("multipartcopymaxconcurrency"),
    WARN("multipartcopythresholdsize"),
    WARN("maxrequestspersecond"),
    WARN("maxretries"),
    WARN("checksumdisabled"),
    {NULL},
};

static const cfg_field_t storage_fields[] = {
    {.name = "rootDirectory", .kind = CFG_STR, .off = CFG(storage.root_directory)},
    {.name = "dedupe", .kind = CFG_BOOL, .off = CFG(storage.dedupe)},
    {.name = "gc", .kind = CFG_BOOL, .off = CFG(storage.gc)},
    {.name = "commit", .kind = CFG_BOOL, .off = CFG(storage.commit)},
    {.name = "gcDelay", .kind = CFG_DUR, .off = CFG(storage.gc_delay_ns), .seen = SEEN_GC_DELAY},
    {.name = "gcInterval", .kind = CFG_DUR, .off = CFG(storage.gc_interval_ns), .seen = SEEN_GC_INTERVAL},
    {.name = "maxBlobSize", .kind = CFG_U64, .off = CFG(storage.max_blob_size), .min = 1, .max = INT64_MAX},
    {.name = "maxManifestSize", .kind = CFG_U64, .off = CFG(storage.max_manifest_size), .min = 1, .max = 1u << 30},
    {.name = "mountWithoutFrom", .kind = CFG_BOOL, .off = CFG(storage.mount_without_from)},
    WARN("subPaths"),
    WARN("fastRestart"),
    WARN("maxRepos"),
    WARN("remoteCache"),
    {.name = "redirectBlobURL", .kind = CFG_BOOL, .off = CFG(storage.redirect_blob_url)},
    {.name = "storageDriver",
     .kind = CFG_PTROBJ,
     .off = CFG(storage.driver),
     .sub = s3_fields,
     .elem_size = sizeof(zn_config_s3_t)},
    WARN("cacheDriver"),
    WARN("retention"),
    WARN("gcTimeWindow"),
    {NULL},
};

static const cfg_field_t log_fields[] = {
    {.name = "level", .kind = CFG_LEVEL, .off = CFG(log.level)},
    {.name = "output", .kind = CFG_STR, .off = CFG(log.output)},
    {.name = "audit", .kind = CFG_STR, .off = CFG(log.audit)},
    {NULL},
};

static const cfg_field_t prometheus_fields[] = {
    {.name = "path", .kind = CFG_STR, .off = CFG(extensions.metrics_path)},
    {NULL},
};

static const cfg_field_t metrics_fields[] = {
    {.name = "enable", .kind = CFG_BOOL, .off = CFG(extensions.metrics_enable), .seen = SEEN_METRICS_ENABLE},
    {.name = "prometheus", .kind = CFG_OBJ, .sub = prometheus_fields},
    {NULL},
};

static const cfg_field_t scrub_fields[] = {
    {.name = "enable", .kind = CFG_BOOL, .off = CFG(extensions.scrub_enable), .seen = SEEN_SCRUB_ENABLE},
    {.name = "interval", .kind = CFG_DUR, .off = CFG(extensions.scrub_interval_ns)},
    {NULL},
};

static const cfg_field_t extensions_fields[] = {
    {.name = "scrub", .kind = CFG_OBJ, .sub = scrub_fields, .seen = SEEN_SCRUB},
    {.name = "metrics", .kind = CFG_OBJ, .sub = metrics_fields, .seen = SEEN_METRICS},
    WARN("search"),
    {.name = "sync", .kind = CFG_PTROBJ, .off = CFG(extensions.sync), .sub = cfg_sync_fields, .elem_size = sizeof(zn_config_sync_t)},
    WARN("lint"),
    WARN("ui"),
    WARN("mgmt"),
    WARN("apikey"),
    WARN("trust"),
    WARN("events"),
    {NULL},
};

static const cfg_field_t profiling_fields[] = {
    {.name = "maxSeconds", .kind = CFG_UINT, .off = CFG(zinc.profile_max_seconds), .min = 1, .max = 86400},
    {.name = "mutexRate", .kind = CFG_UINT, .off = CFG(zinc.mutex_rate), .max = UINT32_MAX},
    {.name = "blockRate", .kind = CFG_UINT, .off = CFG(zinc.block_rate_ns), .max = UINT32_MAX},
    {.name = "heap", .kind = CFG_BOOL, .off = CFG(zinc.heap_sampling)},
    {.name = "debugAddress", .kind = CFG_STR, .off = CFG(zinc.debug_address)},
    {NULL},
};

static const cfg_field_t zinc_fields[] = {
    {.name = "verifyBlobReads", .kind = CFG_BOOL, .off = CFG(zinc.verify_blob_reads)},
    {.name = "scrubRate", .kind = CFG_U64, .off = CFG(zinc.scrub_rate), .max = INT64_MAX},
    {.name = "profiling", .kind = CFG_OBJ, .sub = profiling_fields},
    {NULL},
};

static const cfg_field_t root_fields[] = {
    SKIP("distSpecVersion"),
    SKIP("goVersion"),
    SKIP("commit"),
    SKIP("releaseTag"),
    SKIP("binaryType"),
    {.name = "storage", .kind = CFG_OBJ, .sub = storage_fields},
    {.name = "http", .kind = CFG_OBJ, .sub = http_fields},
    {.name = "log", .kind = CFG_OBJ, .sub = log_fields},
    {.name = "extensions", .kind = CFG_OBJ, .sub = extensions_fields},
    {.name = "zinc", .kind = CFG_OBJ, .sub = zinc_fields},
    WARN("scheduler"),
    {.name = "cluster", .kind = CFG_OBJ, .sub = cfg_cluster_fields, .flags = CFG_F_PRESENT, .present_off = CFG(cluster.present)},
    {NULL},
};

/* ---- checks zot makes after decoding -------------------------------------------------- */

/* "" is as good as unset for these (zot tests them with != ""); NULL is simpler downstream. */
static void drop_empty(char **s)
{
    if (*s != NULL && **s == '\0') {
        free(*s);
        *s = NULL;
    }
}

/* Drops leading and trailing '/' (distribution joins rootdirectory and keys with one). */
static void trim_slashes(char **s)
{
    if (*s == NULL)
        return;
    char *p = *s;
    size_t len = strlen(p), start = 0;
    while (start < len && p[start] == '/')
        start++;
    while (len > start && p[len - 1] == '/')
        len--;
    memmove(p, p + start, len - start);
    p[len - start] = '\0';
}

static zn_err_t check_s3(cfg_walk_t *w, zn_config_s3_t *s3)
{
    cfg_keypath_t st = {NULL, "storage", 0}, drv = {&st, "storageDriver", 0};
    cfg_keypath_t name = {&drv, "name", 0}, region = {&drv, "region", 0}, bucket = {&drv, "bucket", 0};
    cfg_keypath_t ak = {&drv, "accesskey", 0}, ep = {&drv, "regionendpoint", 0}, root = {&drv, "rootdirectory", 0};

    drop_empty(&s3->regionendpoint);
    drop_empty(&s3->accesskey);
    drop_empty(&s3->secretkey);
    if (s3->name == NULL)
        return cfg_fail(w, &name, "required (\"s3\")");
    if (strcmp(s3->name, "s3") != 0)
        return cfg_fail(w, &name, "unsupported driver \"%s\" (zinc has s3)", s3->name);
    if (s3->region == NULL || s3->region[0] == '\0')
        return cfg_fail(w, &region, "required");
    for (const char *p = s3->region; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return cfg_fail(w, &region, "\"%s\": lower-case letters, digits and '-' only", s3->region);
    if (s3->bucket == NULL || s3->bucket[0] == '\0')
        return cfg_fail(w, &bucket, "required");
    size_t blen = strlen(s3->bucket);
    if (blen < 3 || blen > 63)
        return cfg_fail(w, &bucket, "\"%s\": 3 to 63 characters", s3->bucket);
    for (const char *p = s3->bucket; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return cfg_fail(w, &bucket, "\"%s\": lower-case letters, digits, '.' and '-' only", s3->bucket);
    if ((s3->accesskey == NULL) != (s3->secretkey == NULL) || s3->accesskey == NULL)
        return cfg_fail(w, &ak, "accesskey and secretkey are both required (zinc reads no IAM, environment or "
                                "instance credentials)");
    if (s3->regionendpoint != NULL) {
        const char *h = s3->regionendpoint;
        if (strncmp(h, "http://", 7) == 0 || strncmp(h, "https://", 8) == 0)
            h = strchr(h, ':') + 3;
        if (*h == '\0' || strpbrk(h, "/?#@ ") != NULL)
            return cfg_fail(w, &ep, "\"%s\": expected [http(s)://]host[:port]", s3->regionendpoint);
    }
    trim_slashes(&s3->rootdirectory);
    if (s3->rootdirectory != NULL && (strstr(s3->rootdirectory, "//") != NULL || strlen(s3->rootdirectory) > 512))
        return cfg_fail(w, &root, "\"%s\": empty path component or longer than 512", s3->rootdirectory);
    drop_empty(&s3->rootdirectory);
    if (!s3->secure_set)
        s3->secure = true;
    if (s3->chunksize == 0)
        s3->chunksize = ZN_S3_CHUNK_DEFAULT;
    return ZN_OK;
}

static zn_err_t check_storage(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t st = {NULL, "storage", 0}, root = {&st, "rootDirectory", 0};
    cfg_keypath_t delay = {&st, "gcDelay", 0}, interval = {&st, "gcInterval", 0};

    if (cfg->storage.root_directory == NULL || cfg->storage.root_directory[0] == '\0')
        return cfg_fail(w, &root, "required");
    if (cfg->storage.driver != NULL && check_s3(w, cfg->storage.driver) != ZN_OK)
        return ZN_EINVAL;
    if (cfg->storage.gc)
        return ZN_OK;
    if (!(w->seen & SEEN_GC_DELAY))
        cfg->storage.gc_delay_ns = 0;
    else if (cfg->storage.gc_delay_ns != 0)
        cfg_warn(w, &delay, "ignored because storage.gc is false");
    if (!(w->seen & SEEN_GC_INTERVAL))
        cfg->storage.gc_interval_ns = 0;
    else if (cfg->storage.gc_interval_ns != 0)
        cfg_warn(w, &interval, "ignored because storage.gc is false");
    return ZN_OK;
}

static zn_err_t check_tls(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t http = {NULL, "http", 0}, tls = {&http, "tls", 0};

    drop_empty(&cfg->http.tls.cert);
    drop_empty(&cfg->http.tls.key);
    drop_empty(&cfg->http.tls.cacert);
    if ((cfg->http.tls.cert == NULL) != (cfg->http.tls.key == NULL))
        return cfg_fail(w, &tls, "cert and key must be given together");
    if (cfg->http.tls.cacert != NULL && cfg->http.tls.cert == NULL)
        return cfg_fail(w, &tls, "cacert (client certificates) needs cert and key");
    return ZN_OK;
}

/* Go's path.Clean(p) == p for an absolute p: no empty, "." or ".." segment, no trailing '/'. */
static bool clean_abs_path(const char *p)
{
    if (p[0] != '/')
        return false;
    if (p[1] == '\0')
        return true;
    for (const char *s = p + 1;; s++) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += n;
        if (*s == '\0')
            return true;
    }
}

static zn_err_t check_metrics(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t ext = {NULL, "extensions", 0}, m = {&ext, "metrics", 0};
    cfg_keypath_t prom = {&m, "prometheus", 0}, path = {&prom, "path", 0};
    const char *p = cfg->extensions.metrics_path;

    /* An extension section without "enable" is on. */
    if ((w->seen & SEEN_METRICS) && !(w->seen & SEEN_METRICS_ENABLE))
        cfg->extensions.metrics_enable = true;
    cfg_keypath_t sc = {&ext, "scrub", 0}, iv = {&sc, "interval", 0};
    if ((w->seen & SEEN_SCRUB) && !(w->seen & SEEN_SCRUB_ENABLE))
        cfg->extensions.scrub_enable = true;
    if (cfg->extensions.scrub_enable && cfg->extensions.scrub_interval_ns < 2 * DUR_HOUR) {
        cfg_warn(w, &iv, "less than 2h, set to 2h (as zot does)");
        cfg->extensions.scrub_interval_ns = 2 * DUR_HOUR;
    }
    if (!clean_abs_path(p))
        return cfg_fail(w, &path, "\"%s\" is not a clean absolute path", p);
    if (strcmp(p, "/") == 0 || strcmp(p, "/v2") == 0)
        return cfg_fail(w, &path, "\"%s\" is taken by the registry API", p);
    return ZN_OK;
}

/* zot's authzContainsOnlyAnonymousPolicy: some anonymousPolicy grants, and no adminPolicy,
 * defaultPolicy or policy with users or actions. */
static bool only_anonymous(const zn_config_access_t *a)
{
    bool anon = false;

    if (a->admin.nusers > 0 || a->admin.actions != 0)
        return false;
    for (size_t i = 0; i < a->nrepos; i++) {
        const zn_config_repo_access_t *r = &a->repos[i];
        if (r->default_actions != 0)
            return false;
        for (size_t j = 0; j < r->npolicies; j++) {
            if (r->policies[j].nusers > 0 || r->policies[j].actions != 0)
                return false;
        }
        anon = anon || r->anonymous_actions != 0;
    }
    return anon;
}

static zn_err_t check_access(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t http = {NULL, "http", 0}, acl = {&http, "accessControl", 0};

    drop_empty(&cfg->http.auth.htpasswd_path);
    if (cfg->http.access == NULL || cfg->http.auth.htpasswd_path != NULL || (w->seen & SEEN_AUTHN) ||
        only_anonymous(cfg->http.access))
        return ZN_OK;
    return cfg_fail(w, &acl, "needs authentication (http.auth.htpasswd) unless only anonymousPolicy is used");
}

/* ---- entry points --------------------------------------------------------------------- */

void zn_config_init_defaults(zn_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->dist_spec_version = zn_strdup("1.1.1");
    cfg->storage.root_directory = zn_strdup("./data");
    cfg->storage.dedupe = true;
    cfg->storage.gc = true;
    cfg->storage.gc_delay_ns = DUR_HOUR;
    cfg->storage.gc_interval_ns = DUR_HOUR;
    cfg->storage.max_blob_size = (uint64_t)64 << 30;
    cfg->storage.max_manifest_size = 4u << 20;
    cfg->storage.mount_without_from = true;
    cfg->http.address = zn_strdup("127.0.0.1");
    cfg->http.port = 8080;
    cfg->http.realm = zn_strdup("");
    cfg->http.read_timeout_ns = DUR_MINUTE;
    cfg->http.write_timeout_ns = DUR_MINUTE;
    cfg->log.level = ZN_LOG_DEBUG;
    cfg->extensions.metrics_path = zn_strdup("/metrics");
    cfg->extensions.scrub_interval_ns = 24 * DUR_HOUR;
    cfg->zinc.scrub_rate = 64u << 20;
    cfg->zinc.verify_blob_reads = true;
    cfg->zinc.profile_max_seconds = 600;
    cfg->zinc.mutex_rate = 1;
    cfg->zinc.block_rate_ns = 10000;
    cfg->zinc.heap_sampling = true;
}

void zn_config_release(zn_config_t *cfg)
{
    if (cfg == NULL)
        return;
    cfg_release(root_fields, cfg);
    free(cfg->path);
    free(cfg->dist_spec_version);
    memset(cfg, 0, sizeof(*cfg));
}

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return false;
    }
    return true;
}

static zn_err_t parse_json(cfg_walk_t *w, const char *text, size_t len, json_t **out)
{
    json_error_t je;

    if (is_blank(text, len))
        return cfg_fail(w, NULL, "empty file");
    if ((*out = json_loadb(text, len, 0, &je)) == NULL)
        return cfg_fail(w, NULL, "line %d, column %d: invalid JSON: %s", je.line, je.column, je.text);
    if (!json_is_object(*out))
        return cfg_fail(w, NULL, "expected a JSON object");
    if (json_object_size(*out) == 0)
        return cfg_fail(w, NULL, "no settings (empty object)");
    return ZN_OK;
}

/* zinc.profiling.debugAddress: the unauthenticated /debug/pprof/ listener, loopback unless a
 * host is named. */
static zn_err_t check_profiling(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t zinc = {NULL, "zinc", 0}, prof = {&zinc, "profiling", 0}, addr = {&prof, "debugAddress", 0};
    uint64_t port;

    drop_empty(&cfg->zinc.debug_address);
    if (cfg->zinc.debug_address == NULL)
        return ZN_OK;
    const char *a = cfg->zinc.debug_address, *colon = strrchr(a, ':');
    const char *ps = colon != NULL ? colon + 1 : a;
    size_t hlen = colon != NULL ? (size_t)(colon - a) : 0;
    if (zn_parse_u64(zn_slice(ps, strlen(ps)), 65535, &port) != ZN_OK || port == 0)
        return cfg_fail(w, &addr, "expected HOST:PORT or :PORT with a port from 1 to 65535");
    if (hlen >= 2 && a[0] == '[' && a[hlen - 1] == ']') {
        a++;
        hlen -= 2;
    }
    if (hlen == 0) {
        a = "127.0.0.1";
        hlen = strlen(a);
    }
    if (hlen >= sizeof(cfg->zinc.debug_host))
        return cfg_fail(w, &addr, "host too long");
    memcpy(cfg->zinc.debug_host, a, hlen);
    cfg->zinc.debug_host[hlen] = '\0';
    cfg->zinc.debug_port = (int)port;
    return ZN_OK;
}

static zn_err_t check_all(cfg_walk_t *w, zn_config_t *cfg)
{
    zn_err_t err;

    if ((err = check_profiling(w, cfg)) != ZN_OK)
        return err;
    if ((err = check_storage(w, cfg)) != ZN_OK || (err = check_tls(w, cfg)) != ZN_OK || (err = check_metrics(w, cfg)) != ZN_OK)
        return err;
    if ((err = cfg_sync_check(w, cfg)) != ZN_OK)
        return err;
    if ((err = cfg_check_cluster(w, cfg)) != ZN_OK)
        return err;
    return check_access(w, cfg);
}

zn_err_t zn_config_parse(const char *name, const char *text, size_t len, zn_config_t *cfg, zn_config_warn_fn warn, void *warn_data,
                         char *errbuf, size_t errlen)
{
    cfg_walk_t w = {name != NULL ? name : "config", warn, warn_data, errbuf, errlen, 0};
    json_t *root = NULL;
    zn_err_t err;

    if (errlen > 0)
        errbuf[0] = '\0';
    zn_config_init_defaults(cfg);
    cfg->path = zn_strdup(w.name);
    free(cfg->storage.root_directory); /* required in a file */
    cfg->storage.root_directory = NULL;
    if ((err = parse_json(&w, text, len, &root)) == ZN_OK && (err = cfg_walk_object(&w, NULL, root, root_fields, cfg)) == ZN_OK)
        err = check_all(&w, cfg);
    json_decref(root);
    if (err != ZN_OK)
        zn_config_release(cfg);
    return err;
}

zn_err_t zn_config_load(const char *path, zn_config_t *cfg, zn_config_warn_fn warn, void *warn_data, char *errbuf, size_t errlen)
{
    cfg_walk_t w = {path, warn, warn_data, errbuf, errlen, 0};
    zn_buf_t b;
    zn_err_t err;

    memset(cfg, 0, sizeof(*cfg));
    if ((err = zn_file_read(path, ZN_CONFIG_FILE_MAX, &b, NULL)) == ZN_OK) {
        err = zn_config_parse(path, b.p, b.len, cfg, warn, warn_data, errbuf, errlen);
        zn_buf_release(&b);
    } else if (err == ZN_ETOOBIG) {
        cfg_fail(&w, NULL, "larger than %u bytes", ZN_CONFIG_FILE_MAX);
    } else {
        cfg_fail(&w, NULL, "cannot %s: %s", err == ZN_ENOENT ? "open" : "read", strerror(errno));
    }
    return err;
}
