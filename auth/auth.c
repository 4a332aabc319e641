/*
 * auth/auth.c - zn_auth_t: the htpasswd table, the credential cache and the compiled
 * accessControl behind auth/auth.h.
 *
 * Authentication path per request: parse the header (basic.c); re-read the file if it
 * changed (one atomic load when nothing is due); look the user up and compute the cache
 * MAC; a hit with the same file generation and the same hash fingerprint is a success
 * without bcrypt. A miss verifies the hash - here when the caller may block, else the
 * caller gets ZN_AUTH_PENDING and runs zn_auth_verify() on a thread of its choosing. An
 * unknown user costs the same work as a wrong password.
 *
 * Authorization delegates to policy.c and adds the parts that depend on whether
 * authentication is configured at all (zot.md §2-3).
 */
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"

#define CACHE_ENTRIES 1024
#define CACHE_TTL_NS (15ull * 60 * 1000000000ull)
#define ALL_ACTIONS (ZN_ACT_READ | ZN_ACT_CREATE | ZN_ACT_UPDATE | ZN_ACT_DELETE)

struct zn_auth {
    const zn_config_t *cfg;
    bool enabled;
    zn_auth_htpasswd_t htpasswd; /* valid when enabled */
    zn_auth_cache_t cache;       /* valid when enabled */
    zn_auth_policy_t policy;
    _Atomic uint64_t cache_hits, verified, refused, hashed; /* zn_auth_stats */
};

zn_err_t zn_auth_new(const zn_config_t *cfg, zn_auth_t **out, char *errbuf, size_t errlen)
{
    zn_auth_t *a = zn_calloc(1, sizeof(*a));
    zn_err_t err;

    a->cfg = cfg;
    a->enabled = cfg->http.auth.htpasswd_path != NULL && cfg->http.auth.htpasswd_path[0] != '\0';
    if ((err = zn_auth_policy_init(&a->policy, cfg->http.access, errbuf, errlen)) != ZN_OK)
        goto fail;
    if (a->enabled) {
        if ((err = zn_auth_htpasswd_init(&a->htpasswd, cfg->http.auth.htpasswd_path, errbuf, errlen)) != ZN_OK)
            goto fail;
        zn_auth_cache_init(&a->cache, CACHE_ENTRIES, CACHE_TTL_NS);
    }
    *out = a;
    return ZN_OK;
fail:
    zn_auth_policy_release(&a->policy);
    free(a);
    return err;
}

void zn_auth_free(zn_auth_t *a)
{
    if (a == NULL)
        return;
    if (a->enabled) {
        zn_auth_htpasswd_release(&a->htpasswd);
        zn_auth_cache_release(&a->cache);
    }
    zn_auth_policy_release(&a->policy);
    free(a);
}

bool zn_auth_config_requires_client_cert(const zn_config_t *cfg)
{
    bool htpasswd = cfg->http.auth.htpasswd_path != NULL && cfg->http.auth.htpasswd_path[0] != '\0';
    return !htpasswd && !zn_auth_policy_anonymous_exists(cfg->http.access);
}

bool zn_auth_enabled(const zn_auth_t *a)
{
    return a->enabled;
}

bool zn_auth_anonymous_allowed(const zn_auth_t *a)
{
    return !a->enabled || a->policy.has_anonymous;
}

const char *zn_auth_realm(const zn_auth_t *a)
{
    return a->cfg->http.realm != NULL ? a->cfg->http.realm : "";
}

uint64_t zn_auth_fail_delay_ms(const zn_auth_t *a)
{
    return a->cfg->http.auth.fail_delay > 0 ? (uint64_t)a->cfg->http.auth.fail_delay * 1000 : 0;
}

/* ---- authentication -------------------------------------------------------------------------- */

zn_auth_status_t zn_auth_check(zn_auth_t *a, const zn_auth_creds_t *c, bool may_block)
{
    char hash[ZN_AUTH_HASH_MAX + 1];
    uint8_t fp[ZN_AUTH_FP_LEN], mac[32];
    uint64_t gen, now = zn_now_mono_ns();
    zn_auth_status_t st = ZN_AUTH_PENDING;

    if (!a->enabled)
        return ZN_AUTH_FAILED;
    if (zn_auth_htpasswd_maybe_reload(&a->htpasswd, now))
        zn_auth_cache_clear(&a->cache);
    if (zn_auth_htpasswd_lookup(&a->htpasswd, c->user, hash, fp, &gen) == ZN_OK) {
        zn_auth_cache_mac(&a->cache, c->user, c->user_len, c->pass, c->pass_len, mac);
        if (zn_auth_cache_lookup(&a->cache, mac, fp, gen, now)) {
            st = ZN_AUTH_OK;
            atomic_fetch_add_explicit(&a->cache_hits, 1, memory_order_relaxed);
        }
        OPENSSL_cleanse(hash, sizeof(hash));
    }
    if (st == ZN_AUTH_PENDING && may_block)
        st = zn_auth_verify(a, c);
    return st;
}

/* Burn the time a real check would take, so an unknown user looks like a wrong password. */
static void verify_decoy(zn_auth_t *a, const zn_auth_creds_t *c)
{
    char hash[ZN_AUTH_HASH_MAX + 1];

    if (zn_auth_htpasswd_any_hash(&a->htpasswd, hash) == ZN_OK) {
        /* the result is ignored: this user does not exist whatever the hash says */
        (void)zn_auth_hash_verify(hash, c->pass, c->pass_len);
        atomic_fetch_add_explicit(&a->hashed, 1, memory_order_relaxed);
        OPENSSL_cleanse(hash, sizeof(hash));
    }
}

zn_auth_status_t zn_auth_verify(zn_auth_t *a, const zn_auth_creds_t *c)
{
    char hash[ZN_AUTH_HASH_MAX + 1];
    uint8_t fp[ZN_AUTH_FP_LEN], mac[32];
    uint64_t gen;
    zn_auth_status_t st = ZN_AUTH_FAILED;

    if (!a->enabled)
        return ZN_AUTH_FAILED;
    if (zn_auth_htpasswd_lookup(&a->htpasswd, c->user, hash, fp, &gen) != ZN_OK) {
        verify_decoy(a, c);
        atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
        return ZN_AUTH_FAILED;
    }
    bool ok = zn_auth_hash_verify(hash, c->pass, c->pass_len);
    atomic_fetch_add_explicit(&a->hashed, 1, memory_order_relaxed);
    if (ok) {
        zn_auth_cache_mac(&a->cache, c->user, c->user_len, c->pass, c->pass_len, mac);
        zn_auth_cache_insert(&a->cache, mac, fp, gen, zn_now_mono_ns());
        st = ZN_AUTH_OK;
    }
    atomic_fetch_add_explicit(st == ZN_AUTH_OK ? &a->verified : &a->refused, 1, memory_order_relaxed);
    OPENSSL_cleanse(hash, sizeof(hash));
    return st;
}

void zn_auth_stats(const zn_auth_t *a, zn_auth_stats_t *out)
{
    out->cache_hits = atomic_load_explicit(&a->cache_hits, memory_order_relaxed);
    out->verified = atomic_load_explicit(&a->verified, memory_order_relaxed);
    out->refused = atomic_load_explicit(&a->refused, memory_order_relaxed);
    out->hashed = atomic_load_explicit(&a->hashed, memory_order_relaxed);
}

/* ---- authorization ---------------------------------------------------------------------------- */

unsigned zn_auth_repo_actions(const zn_auth_t *a, const char *user, const char *repo)
{
    /* No accessControl: logged-in users may do anything, and so may everyone when there is
     * no authentication; an anonymous caller with authentication on gets nothing. */
    if (a->policy.access == NULL)
        return user != NULL || !a->enabled ? ALL_ACTIONS : 0;
    return zn_auth_policy_actions(&a->policy, user, repo);
}

bool zn_auth_can(const zn_auth_t *a, const char *user, const char *repo, unsigned actions)
{
    return (zn_auth_repo_actions(a, user, repo) & actions) == actions;
}

bool zn_auth_is_admin(const zn_auth_t *a, const char *user)
{
    if (a->policy.access == NULL)
        return user != NULL || !a->enabled;
    return zn_auth_policy_is_admin(&a->policy, user);
}

bool zn_auth_can_list(const zn_auth_t *a, const char *user, const char *repo)
{
    return zn_auth_is_admin(a, user) || zn_auth_can(a, user, repo, ZN_ACT_READ);
}

static zn_authz_t denied(const char *user)
{
    return user == NULL ? ZN_AUTHZ_CHALLENGE : ZN_AUTHZ_DENY;
}

zn_authz_t zn_auth_authorize(const zn_auth_t *a, const char *user, const char *repo, unsigned actions)
{
    return zn_auth_can(a, user, repo, actions) ? ZN_AUTHZ_ALLOW : denied(user);
}

zn_authz_t zn_auth_authorize_admin(const zn_auth_t *a, const char *user)
{
    if (!a->enabled || zn_auth_is_admin(a, user))
        return ZN_AUTHZ_ALLOW;
    return denied(user);
}

zn_authz_t zn_auth_authorize_metrics(const zn_auth_t *a, const char *user)
{
    const zn_config_access_t *ac = a->policy.access;
    bool ok;

    if (ac == NULL)
        ok = user != NULL || !a->enabled;
    else if (user == NULL)
        ok = (ac->metrics.actions & ZN_ACT_READ) != 0;
    else
        ok = zn_auth_policy_in_list(ac->metrics.users, ac->metrics.nusers, user);
    return ok ? ZN_AUTHZ_ALLOW : denied(user);
}
