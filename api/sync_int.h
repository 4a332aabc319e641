/*
 * api/sync_int.h - private to api/: the pull-through mirror (extensions.sync onDemand).
 *
 * sync_util.c holds the pure parsers and rules (unit-tested); sync.c the engine: one
 * control thread that talks to upstreams through common/httpc and writes into the store,
 * and the worker side that streams what has been written so far to every client waiting
 * for the same object. api/blobs.c and api/manifests.c call it at one place each, where a
 * local lookup missed (or a tag is due for revalidation).
 */
#ifndef ZN_API_SYNC_INT_H
#define ZN_API_SYNC_INT_H

#include <h2o.h>
#include <jansson.h>

#include "config/config.h"
#include "storage/storage.h"

#define ZN_SYNC_NAME_MAX 255

/* ---- sync_util.c ------------------------------------------------------------------------ */

/* One challenge of a WWW-Authenticate header: `Bearer realm="...",service="...",scope="..."`
 * or `Basic realm="..."`. Scheme is canonicalised to "Bearer"/"Basic" (other schemes kept
 * as sent); unknown parameters are skipped. */
typedef struct zn_sync_challenge {
    char scheme[16];
    char realm[1024];
    char service[256];
    char scope[512];
} zn_sync_challenge_t;
/* ZN_EINVAL when malformed (or several challenges), ZN_ETOOBIG when a value is too long. */
zn_err_t zn_sync_challenge_parse(const char *hdr, zn_sync_challenge_t *out);

/* credentialsFile: {"host:port": {"username": "...", "password": "..."}} (field names in
 * any case, as Go decodes them). Owned by the struct (zn_sync_creds_release). */
typedef struct zn_sync_cred {
    char *host, *user, *pass;
} zn_sync_cred_t;
typedef struct zn_sync_creds {
    zn_sync_cred_t *v;
    size_t n;
} zn_sync_creds_t;
/* On error out is empty and err holds "<name>: <problem>". */
zn_err_t zn_sync_creds_parse(const char *name, const char *text, size_t len, zn_sync_creds_t *out, char *err, size_t errlen);
void zn_sync_creds_release(zn_sync_creds_t *c);
/* The entry for "host[:port]" exactly as written in the URL, or NULL. */
const zn_sync_cred_t *zn_sync_creds_find(const zn_sync_creds_t *c, const char *hostport);

/* The upstream name of local repository `repo` for registry r, zot's way: the first
 * content entry whose destination/prefix pattern matches (no content = every repository,
 * same name). On ZN_OK out holds it and *content the entry (NULL without content rules).
 * ZN_ENOENT if no entry covers repo, ZN_ETOOBIG if a name does not fit. */
zn_err_t zn_sync_upstream_name(const zn_config_sync_registry_t *r, const char *repo, char *out, size_t len,
                               const zn_config_sync_content_t **content);

/* A tag that Masterminds/semver (zot's tags.semver) parses: v?MAJOR[.MINOR[.PATCH]][-pre][+meta]. */
bool zn_sync_semver_valid(const char *tag);
/* The content entry's tag rules (regex, excludeRegex, semver) let `tag` through. c NULL = yes. */
bool zn_sync_tag_allowed(const zn_config_sync_content_t *c, const char *tag);

/* ---- sync.c ------------------------------------------------------------------------------- */

typedef struct zn_sync zn_sync_t;

/* Counters for /metrics (monotonic). */
typedef struct zn_sync_stats {
    uint64_t blob_hits, blob_misses, blob_fetched, blob_failed;
    uint64_t manifest_hits, manifest_misses, manifest_fetched, manifest_failed, manifest_revalidated;
} zn_sync_stats_t;

/* Starts the mirror when cfg->extensions.sync enables an onDemand registry: reads the
 * credentials file, the registries' TLS settings, starts the threads. *out is NULL when
 * there is nothing to mirror. On failure err names the file or key. st is borrowed. */
zn_err_t zn_sync_new(const zn_config_t *cfg, zn_storage_t *st, zn_sync_t **out, char *err, size_t errlen);
void zn_sync_free(zn_sync_t *s);

/* GET/HEAD of blob d in repo missed locally. Returns 0 once it took the request (it will
 * answer: stream the blob as it arrives, or an error), -1 when no registry covers repo
 * (the caller answers as without a mirror). */
int zn_sync_blob_miss(zn_sync_t *s, h2o_req_t *req, const char *repo, const zn_digest_t *d);
/* Counts a blob served locally from a mirrored repository. */
void zn_sync_blob_hit(zn_sync_t *s, const char *repo);

/* GET/HEAD of manifest `ref` (a tag or digest text) in repo. local is the stored manifest
 * (with bytes unless HEAD) or NULL when it missed. Returns 0 when it took the request
 * (fetch, or revalidate a tag whose manifestCheckInterval passed), -1 when the caller
 * should answer from local as usual. The mirror copies what it needs from local. */
int zn_sync_manifest(zn_sync_t *s, h2o_req_t *req, const char *repo, const char *ref, bool by_digest,
                     const zn_storage_manifest_t *local);

void zn_sync_stats(zn_sync_t *s, zn_sync_stats_t *out);

#endif
