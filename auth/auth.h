/*
 * auth/auth.h - who is calling, and what may they do (zot semantics, docs/zot.md §2-3).
 *
 * Authentication: HTTP Basic against the htpasswd file (bcrypt $2a$/$2b$/$2y$, SHA-crypt
 * $5$/$6$, argon2id). The file is re-read when it changes (checked at most once per
 * second). A verified credential is cached under HMAC(random key, user, password) together
 * with the identity of the user's hash, so repeated requests skip bcrypt; failures are
 * never cached. Bearer tokens (token.c) name a user or anonymous for a few minutes, signed
 * with HMAC-SHA256 under a key the caller keeps; the server mints them for classic Docker.
 *
 * Authorization: accessControl as zot defines it - the longest matching repository glob
 * decides alone (ties: strcmp-smaller pattern), user policy, group policy, defaultPolicy
 * (logged-in only), anonymousPolicy (anonymous only), then adminPolicy.
 *
 * The module knows nothing of HTTP statuses or h2o: it returns decisions, the server turns
 * them into 401/403 and arms the failDelay timer. All functions are thread-safe; the config
 * passed to zn_auth_new() must outlive the zn_auth_t and not change.
 */
#ifndef ZN_AUTH_H
#define ZN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/zn.h"
#include "config/config.h"

typedef struct zn_auth zn_auth_t;

/* Limits on what a client may send. A longer Authorization header, user name or password
 * is an authentication failure, never a truncation. */
#define ZN_AUTH_HEADER_MAX 4096
#define ZN_AUTH_USER_MAX 255
#define ZN_AUTH_PASS_MAX 3072 /* base64 of 4 KiB decodes to at most 3 KiB */

/* Credentials decoded from a Basic header. Holds a password: release with
 * zn_auth_creds_wipe() as soon as it is no longer needed. user_len and pass_len always
 * count the bytes written into user and pass (that is what the wipe clears). */
typedef struct zn_auth_creds {
    char user[ZN_AUTH_USER_MAX + 1];
    char pass[ZN_AUTH_PASS_MAX + 1];
    size_t user_len, pass_len;
} zn_auth_creds_t;

typedef enum zn_auth_status {
    ZN_AUTH_ANONYMOUS, /* no credentials: no header, or "Basic Og==" (empty user and password) */
    ZN_AUTH_OK,        /* credentials parsed (zn_auth_basic_parse) / verified (zn_auth_check) */
    ZN_AUTH_FAILED,    /* malformed header or wrong credentials: 401, never anonymous */
    ZN_AUTH_PENDING,   /* zn_auth_check with may_block=false: not cached, needs zn_auth_verify */
} zn_auth_status_t;

/* Authorization decision for one request. */
typedef enum zn_authz {
    ZN_AUTHZ_ALLOW,
    ZN_AUTHZ_CHALLENGE, /* anonymous and denied: 401 with the Basic challenge */
    ZN_AUTHZ_DENY,      /* authenticated and denied: 403 DENIED */
} zn_authz_t;

/* ---- lifecycle ----------------------------------------------------------------------------- */

/* Build the auth state from cfg->http.auth, cfg->http.access and cfg->http.realm; reads the
 * htpasswd file when one is configured. cfg is borrowed and must outlive the result. On
 * ZN_OK the caller owns *out (zn_auth_free). Else ZN_EIO/ZN_ETOOBIG (htpasswd unreadable or
 * too big) or ZN_EINVAL (bad glob), with "<what>: <problem>" in errbuf. */
zn_err_t zn_auth_new(const zn_config_t *cfg, zn_auth_t **out, char *errbuf, size_t errlen);
void zn_auth_free(zn_auth_t *a);

/* zot's rule for http.tls.cacert: a client certificate is required at the handshake when
 * neither htpasswd nor an anonymousPolicy could let a request in; otherwise one is
 * verified if the client sends it. */
bool zn_auth_config_requires_client_cert(const zn_config_t *cfg);

/* True when an authentication method (htpasswd) is configured. */
bool zn_auth_enabled(const zn_auth_t *a);
/* True when a request without credentials proceeds as anonymous: no authentication
 * configured, or some repository has an anonymousPolicy. Otherwise it gets the
 * authentication 401. */
bool zn_auth_anonymous_allowed(const zn_auth_t *a);
/* http.realm as configured, never NULL (may be ""). Owned by the config. The server builds
 * the challenges from it (server/access.c with common/edge's builder). */
const char *zn_auth_realm(const zn_auth_t *a);
/* http.auth.failDelay in milliseconds. The server waits this long (with a timer, never a
 * sleep) before every authorization 401/403, and before an authentication 401 only when
 * credentials were sent. */
uint64_t zn_auth_fail_delay_ms(const zn_auth_t *a);

/* ---- authentication ------------------------------------------------------------------------ */

/* Parse an Authorization header value (len bytes, need not be NUL-terminated; NULL/0 = no
 * header). Scheme "Basic" is matched case-insensitively. Returns ZN_AUTH_ANONYMOUS for no
 * header or empty user and password, ZN_AUTH_OK with *out filled, or ZN_AUTH_FAILED for
 * another scheme, bad base64, no ':', a NUL byte, or anything over the limits above. *out
 * is wiped unless ZN_AUTH_OK is returned. */
zn_auth_status_t zn_auth_basic_parse(const char *hdr, size_t len, zn_auth_creds_t *out);
void zn_auth_creds_wipe(zn_auth_creds_t *c);

/* Check parsed credentials: ZN_AUTH_OK or ZN_AUTH_FAILED. A cache hit costs one HMAC and
 * two short lock holds. On a miss, with may_block the hash is verified here (milliseconds
 * for bcrypt) and a success cached; without it ZN_AUTH_PENDING is returned so the caller can
 * run zn_auth_verify() off its event loop. Also re-reads the htpasswd file if it changed. */
zn_auth_status_t zn_auth_check(zn_auth_t *a, const zn_auth_creds_t *c, bool may_block);
/* The slow path of zn_auth_check(): verify against the stored hash and cache a success.
 * ZN_AUTH_OK or ZN_AUTH_FAILED (also for an unknown user, after the same amount of work as
 * a wrong password, so response times do not reveal which users exist). Any thread. */
zn_auth_status_t zn_auth_verify(zn_auth_t *a, const zn_auth_creds_t *c);
/* Counters of password checks since start (for /metrics): answered from the credential
 * cache, verified against the stored hash (ok), refused after hashing (wrong password or
 * unknown user, which hashes a decoy). A success is cached, a failure never is. */
typedef struct zn_auth_stats {
    uint64_t cache_hits, verified, refused;
    uint64_t hashed; /* password hashes computed, the decoy of an unknown user included */
} zn_auth_stats_t;
void zn_auth_stats(const zn_auth_t *a, zn_auth_stats_t *out);

/* ---- bearer tokens (token.c) ----------------------------------------------------------------- */

/* Longest token minted or accepted (a 255-byte user name in hex plus the rest). */
#define ZN_AUTH_TOKEN_MAX 640

/* The per-process HMAC key of bearer tokens. */
typedef struct zn_auth_token_key {
    uint8_t k[32];
} zn_auth_token_key_t;

/* Fill k from the OpenSSL RNG: ZN_OK, or ZN_EIO if the RNG fails (then never mint). */
zn_err_t zn_auth_token_key_init(zn_auth_token_key_t *k);
void zn_auth_token_key_wipe(zn_auth_token_key_t *k);
/* Mint a token naming `user` (NULL = anonymous; the name is copied into the token),
 * issued at `now` (Unix seconds) and valid for ttl seconds, into out[ZN_AUTH_TOKEN_MAX + 1]
 * (NUL-terminated). Returns its length, or 0 for a user name over ZN_AUTH_USER_MAX or
 * absurd times. */
size_t zn_auth_token_mint(const zn_auth_token_key_t *k, const char *user, int64_t now, int64_t ttl, char *out);
/* Check tok (len bytes, need not be NUL-terminated) at time `now`: ZN_AUTH_OK with
 * out->user/user_len set (out->pass empty), ZN_AUTH_ANONYMOUS for a valid anonymous token,
 * ZN_AUTH_FAILED for anything malformed, tampered with, signed under another key or
 * expired. The MAC is compared in constant time. */
zn_auth_status_t zn_auth_token_verify(const zn_auth_token_key_t *k, const char *tok, size_t len, int64_t now,
                                      zn_auth_creds_t *out);
/* If the Authorization value hdr (len bytes) uses the Bearer scheme (case-insensitive),
 * point *tok and *toklen at the token inside hdr (blanks trimmed) and return true. */
bool zn_auth_bearer_token(const char *hdr, size_t len, const char **tok, size_t *toklen);

/* ---- authorization ------------------------------------------------------------------------- */

/* ZN_ACT_* bits `user` (NULL = anonymous) holds on repository `repo`. */
unsigned zn_auth_repo_actions(const zn_auth_t *a, const char *user, const char *repo);
/* All of the `actions` bits granted? */
bool zn_auth_can(const zn_auth_t *a, const char *user, const char *repo, unsigned actions);
/* Admin: listed in adminPolicy users/groups (its actions do not matter). With no
 * accessControl every authenticated user is admin, and without authentication everyone. */
bool zn_auth_is_admin(const zn_auth_t *a, const char *user);
/* Catalog filter: may this identity see `repo` in /v2/_catalog (admins see all). */
bool zn_auth_can_list(const zn_auth_t *a, const char *user, const char *repo);
/* Decision for `actions` on `repo`: ALLOW, or CHALLENGE (anonymous) / DENY (user). */
zn_authz_t zn_auth_authorize(const zn_auth_t *a, const char *user, const char *repo, unsigned actions);
/* Admin-only routes (pprof): open without authentication; else anonymous CHALLENGE,
 * non-admin DENY. */
zn_authz_t zn_auth_authorize_admin(const zn_auth_t *a, const char *user);
/* /metrics (zot §3): open without authentication and accessControl; with authentication
 * but no accessControl any user; else anonymous needs read in the metrics anonymousPolicy
 * and users must be listed in metrics.users. */
zn_authz_t zn_auth_authorize_metrics(const zn_auth_t *a, const char *user);

#endif
