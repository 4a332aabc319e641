/*
 * api/sync_int.h - private to api/: the mirror (extensions.sync): onDemand pull-through in
 * sync.c, periodic sync (pollInterval) in sync_poll.c, which sync.c starts and stops.
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
#include "common/httpc.h"

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

/* ---- periodic sync (sync_util.c) ---- */

/* The local name of upstream repository `upstream` for registry r (zot's
 * getContentByUpstreamRepo + getRepoDestination): the first content prefix glob that matches
 * it, mapped through destination/stripPrefix; without content rules the same name. Only a
 * name that zn_sync_upstream_name maps back to `upstream` is accepted, so both kinds of
 * sync agree. ZN_ENOENT when no rule covers it, ZN_ETOOBIG when a name does not fit. */
zn_err_t zn_sync_local_name(const zn_config_sync_registry_t *r, const char *upstream, char *out, size_t len,
                            const zn_config_sync_content_t **content);

/* The target of the rel="next" link of a Link header (RFC 8288), as a path starting with
 * "/v2/" (an absolute URL keeps only its path and query: the next page is asked of the same
 * upstream). ZN_ENOENT when there is no next link, ZN_EINVAL when malformed. */
zn_err_t zn_sync_link_next(const char *hdr, char *out, size_t len);

/* "host[:port]" of a registry URL ("" when it does not fit). */
void zn_sync_url_host(const char *url, char *out, size_t len);
/* "Basic <base64(user:pass)>" for cred, "" when cred is NULL; false when it does not fit. */
bool zn_sync_basic_auth(const zn_sync_cred_t *cred, char *out, size_t len);
/* The token request URL for a Bearer challenge: realm?service=...&scope=<scope>. */
bool zn_sync_token_url(const zn_sync_challenge_t *ch, const char *scope, char *out, size_t len);
/* A token service's answer ({"token"|"access_token", "expires_in"}) to "Bearer <token>" in
 * auth, and how long to reuse it in *ttl_s. false when there is no usable token. */
bool zn_sync_token_parse(const char *body, size_t len, char *auth, size_t auth_len, uint64_t *ttl_s);

/* A referrers tag schema tag (sha256-<hex>, copied with its subject) or one of cosign's legacy
 * tags (sha256-<hex>.sig/.att/.sbom, which zot copies only with syncLegacyCosignTags, a key
 * zinc does not implement): no image of its own, skipped as zot skips them. */
bool zn_sync_schema_tag(const char *tag);

/* What a manifest references, in the order the store needs them before the manifest itself:
 * an index's child manifests, an image's config and layers (or an artifact's blobs). */
#define ZN_SYNC_REFS_MAX 512
typedef struct zn_sync_refs {
    bool index;
    zn_digest_t children[ZN_SYNC_REFS_MAX];
    size_t nchildren;
    zn_digest_t blobs[ZN_SYNC_REFS_MAX];
    size_t nblobs;
} zn_sync_refs_t;
/* ZN_EINVAL when not JSON or a descriptor is malformed, ZN_ETOOBIG past ZN_SYNC_REFS_MAX. */
zn_err_t zn_sync_manifest_refs(const char *bytes, size_t len, zn_sync_refs_t *out);

/* ---- sync.c ------------------------------------------------------------------------------- */

typedef struct zn_sync zn_sync_t;

/* Counters for /metrics (monotonic). */
typedef struct zn_sync_stats {
    uint64_t blob_hits, blob_misses, blob_fetched, blob_failed;
    uint64_t manifest_hits, manifest_misses, manifest_fetched, manifest_failed, manifest_revalidated;
    uint64_t poll_images_copied, poll_images_failed, poll_runs; /* periodic sync (sync_poll.c) */
} zn_sync_stats_t;

/* ---- sync_poll.c: periodic sync (pollInterval) -------------------------------------------- */

typedef struct zn_sync_poll zn_sync_poll_t;
/* Starts one poll thread (and its copiers) per registry with pollInterval > 0. creds, tls
 * and http are borrowed from the mirror and outlive it. *out NULL when none polls. */
zn_err_t zn_sync_poll_new(const zn_config_t *cfg, zn_storage_t *st, const zn_sync_creds_t *creds, zn_httpc_tls_t *const *tls,
                          zn_httpc_t *http, zn_sync_poll_t **out, char *err, size_t errlen);
/* Stops and joins every thread (promptly: transfers are aborted). NULL is a no-op. */
void zn_sync_poll_free(zn_sync_poll_t *p);
/* Adds the periodic counters to out. */
void zn_sync_poll_stats(zn_sync_poll_t *p, zn_sync_stats_t *out);

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
