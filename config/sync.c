/*
 * config/sync.c - extensions.sync, zot's mirror extension (pkg/extensions/config/sync).
 *
 * The schema lists every key zot's RegistryConfig knows. Keys zinc implements fill
 * zn_config_sync_t; the tuning knobs of zot's HTTP library (regclient: reqConcurrent,
 * reqPerSec, disableHTTP2, ...) and the credential helpers are CFG_WARN rows. After the
 * walk, the rules zot's validateSync applies run here (retryDelay with maxRetries,
 * manifestCheckInterval only with onDemand, prefixes valid globs), plus zinc's own:
 * URLs must be http(s)://host[:port] without a path, tag regexes must compile (POSIX ERE;
 * zot uses Go's RE2, which differs only in rarely used syntax), onlySigned is refused
 * with onDemand or pollInterval (zinc does not verify signatures).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

#define SY(m) offsetof(zn_config_sync_t, m)
#define REG(m) offsetof(zn_config_sync_registry_t, m)
#define CON(m) offsetof(zn_config_sync_content_t, m)
#define WARN(n)                                                                                                                    \
    {                                                                                                                              \
        .name = (n), .kind = CFG_WARN                                                                                              \
    }

static const cfg_field_t tags_fields[] = {
    {.name = "regex", .kind = CFG_STR, .off = CON(tags_regex)},
    {.name = "excludeRegex", .kind = CFG_STR, .off = CON(tags_exclude_regex)},
    {.name = "semver", .kind = CFG_BOOL, .off = CON(tags_semver)},
    {NULL},
};

static const cfg_field_t content_fields[] = {
    {.name = "prefix", .kind = CFG_STR, .off = CON(prefix)},
    {.name = "destination", .kind = CFG_STR, .off = CON(destination)},
    {.name = "stripPrefix", .kind = CFG_BOOL, .off = CON(strip_prefix)},
    {.name = "tags", .kind = CFG_OBJ, .sub = tags_fields},
    {NULL},
};

static const cfg_field_t registry_fields[] = {
    {.name = "urls", .kind = CFG_STRV, .off = REG(urls), .off_n = REG(nurls)},
    {.name = "onDemand", .kind = CFG_BOOL, .off = REG(on_demand)},
    {.name = "pollInterval", .kind = CFG_DUR, .off = REG(poll_interval_ns)},
    {.name = "tlsVerify", .kind = CFG_BOOL, .off = REG(tls_verify), .flags = CFG_F_PRESENT, .present_off = REG(has_tls_verify)},
    {.name = "certDir", .kind = CFG_STR, .off = REG(cert_dir)},
    {.name = "maxRetries",
     .kind = CFG_UINT,
     .off = REG(max_retries),
     .max = 1000,
     .flags = CFG_F_PRESENT,
     .present_off = REG(has_max_retries)},
    {.name = "retryDelay", .kind = CFG_DUR, .off = REG(retry_delay_ns), .flags = CFG_F_PRESENT, .present_off = REG(has_retry_delay)},
    {.name = "onlySigned", .kind = CFG_BOOL, .off = REG(only_signed)},
    {.name = "manifestCheckInterval", .kind = CFG_DUR, .off = REG(manifest_check_interval_ns)},
    {.name = "content",
     .kind = CFG_ARR,
     .off = REG(content),
     .off_n = REG(ncontent),
     .sub = content_fields,
     .elem_size = sizeof(zn_config_sync_content_t)},
    WARN("maxRetryDelay"),
    WARN("syncLegacyCosignTags"),
    WARN("credentialHelper"),
    WARN("oauth2CredentialHelper"),
    WARN("preserveDigest"),
    WARN("syncTimeout"),
    WARN("reqConcurrent"),
    WARN("reqPerSec"),
    WARN("disableHTTP2"),
    WARN("maxIdleConnsPerHost"),
    {NULL},
};

const cfg_field_t cfg_sync_fields[] = {
    {.name = "enable", .kind = CFG_BOOL, .off = SY(enable), .flags = CFG_F_PRESENT, .present_off = SY(has_enable)},
    {.name = "credentialsFile", .kind = CFG_STR, .off = SY(credentials_file)},
    /* only used by zot with cloud storage, to stage images; zinc writes into the store directly */
    WARN("downloadDir"),
    {.name = "registries",
     .kind = CFG_ARR,
     .off = SY(registries),
     .off_n = SY(nregistries),
     .sub = registry_fields,
     .elem_size = sizeof(zn_config_sync_registry_t)},
    {NULL},
};

/* http(s)://host[:port] with nothing after it but an optional '/'. */
static bool url_valid(const char *u)
{
    const char *h;
    if (strncmp(u, "https://", 8) == 0)
        h = u + 8;
    else if (strncmp(u, "http://", 7) == 0)
        h = u + 7;
    else
        return false;
    size_t n = strcspn(h, "/?#");
    if (n == 0 || (h[n] != '\0' && !(h[n] == '/' && h[n + 1] == '\0')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] == '@' || h[i] <= ' ')
            return false; /* credentials belong in credentialsFile */
    return true;
}

static zn_err_t check_regex(cfg_walk_t *w, const cfg_keypath_t *kp, const char *re)
{
    regex_t r;
    char msg[128];
    int rc = regcomp(&r, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, &r, msg, sizeof(msg));
        return cfg_fail(w, kp, "invalid regular expression \"%s\": %s", re, msg);
    }
    regfree(&r);
    return ZN_OK;
}

/* A content prefix: a glob of the grammar accessControl keys use (common/zn.h zn_glob). */
static bool glob_valid(const char *p)
{
    zn_glob_t g;
    if (zn_glob_compile(p, &g) != ZN_OK)
        return false;
    zn_glob_release(&g);
    return true;
}

static zn_err_t check_content(cfg_walk_t *w, const cfg_keypath_t *kp, zn_config_sync_content_t *c)
{
    cfg_keypath_t prefix = {kp, "prefix", 0}, tags = {kp, "tags", 0};
    cfg_keypath_t re = {&tags, "regex", 0}, ex = {&tags, "excludeRegex", 0};
    zn_err_t err;

    if (c->prefix == NULL || c->prefix[0] == '\0')
        return cfg_fail(w, &prefix, "required");
    if (!glob_valid(c->prefix))
        return cfg_fail(w, &prefix, "\"%s\" is not a valid glob pattern", c->prefix);
    if (c->tags_regex != NULL && (err = check_regex(w, &re, c->tags_regex)) != ZN_OK)
        return err;
    if (c->tags_exclude_regex != NULL && (err = check_regex(w, &ex, c->tags_exclude_regex)) != ZN_OK)
        return err;
    return ZN_OK;
}

static zn_err_t check_registry(cfg_walk_t *w, const cfg_keypath_t *kp, zn_config_sync_registry_t *r)
{
    cfg_keypath_t urls = {kp, "urls", 0}, mci = {kp, "manifestCheckInterval", 0};
    cfg_keypath_t retries = {kp, "maxRetries", 0}, signed_ = {kp, "onlySigned", 0};
    zn_err_t err;

    if (r->nurls == 0)
        return cfg_fail(w, &urls, "at least one URL is required");
    for (size_t i = 0; i < r->nurls; i++) {
        cfg_keypath_t u = {&urls, NULL, i};
        if (!url_valid(r->urls[i]))
            return cfg_fail(w, &u, "\"%s\": expected http(s)://host[:port] without path or credentials", r->urls[i]);
        size_t n = strlen(r->urls[i]);
        if (r->urls[i][n - 1] == '/')
            r->urls[i][n - 1] = '\0';
    }
    if (!r->has_tls_verify)
        r->tls_verify = true;
    if (r->has_max_retries && !r->has_retry_delay)
        return cfg_fail(w, &retries, "retryDelay is required when using maxRetries (as in zot)");
    if (r->manifest_check_interval_ns != 0 && !r->on_demand)
        return cfg_fail(w, &mci, "requires onDemand to be enabled (as in zot)");
    /* Mirroring unsigned images for a user who asked for signed ones only would be worse
     * than refusing to start. */
    if (r->only_signed && (r->on_demand || r->poll_interval_ns != 0))
        return cfg_fail(w, &signed_, "not implemented by zinc (signatures are not verified); remove it or set it to false");
    if (r->poll_interval_ns == 0 && !r->on_demand)
        cfg_warn(w, kp, "neither onDemand nor pollInterval: this registry is not used");
    for (size_t i = 0; i < r->ncontent; i++) {
        cfg_keypath_t content = {kp, "content", 0}, c = {&content, NULL, i};
        if ((err = check_content(w, &c, &r->content[i])) != ZN_OK)
            return err;
    }
    return ZN_OK;
}

zn_err_t cfg_sync_check(cfg_walk_t *w, zn_config_t *cfg)
{
    cfg_keypath_t ext = {NULL, "extensions", 0}, sy = {&ext, "sync", 0}, regs = {&sy, "registries", 0};
    zn_config_sync_t *s = cfg->extensions.sync;
    zn_err_t err;

    if (s == NULL)
        return ZN_OK;
    /* An extension section without "enable" is on. */
    if (!s->has_enable)
        s->enable = true;
    if (s->credentials_file != NULL && s->credentials_file[0] == '\0') {
        free(s->credentials_file);
        s->credentials_file = NULL;
    }
    if (!s->enable)
        return ZN_OK;
    for (size_t i = 0; i < s->nregistries; i++) {
        cfg_keypath_t r = {&regs, NULL, i};
        if ((err = check_registry(w, &r, &s->registries[i])) != ZN_OK)
            return err;
    }
    return ZN_OK;
}
