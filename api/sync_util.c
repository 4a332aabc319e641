/*
 * api/sync_util.c - the pure parts of the mirror (extensions.sync), unit-tested in
 * test/unit/api/test_sync_util.c: the WWW-Authenticate challenge of an upstream, the
 * credentials file, zot's mapping between local and upstream repository names
 * (pkg/extensions/sync/content.go: GetContentByLocalRepo, getRepoSource) and its tag
 * filters (regex, excludeRegex, semver as Masterminds/semver's NewVersion accepts it).
 */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/sync_int.h"

/* ---- WWW-Authenticate ------------------------------------------------------------------- */

static bool is_token_char(char c)
{
    return c != '\0' && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Stores value into the field for key when it is one we want; ZN_ETOOBIG if it does not fit. */
static zn_err_t set_param(zn_sync_challenge_t *c, const char *key, size_t klen, const char *v, size_t vlen)
{
    char *dst = NULL;
    size_t cap = 0;
    if (klen == 5 && strncasecmp(key, "realm", 5) == 0)
        dst = c->realm, cap = sizeof(c->realm);
    else if (klen == 7 && strncasecmp(key, "service", 7) == 0)
        dst = c->service, cap = sizeof(c->service);
    else if (klen == 5 && strncasecmp(key, "scope", 5) == 0)
        dst = c->scope, cap = sizeof(c->scope);
    if (dst == NULL)
        return ZN_OK;
    if (vlen >= cap)
        return ZN_ETOOBIG;
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return ZN_OK;
}

zn_err_t zn_sync_challenge_parse(const char *hdr, zn_sync_challenge_t *out)
{
    char val[1024];
    const char *p = skip_ws(hdr), *s = p;
    zn_err_t err;

    memset(out, 0, sizeof(*out));
    while (is_token_char(*p))
        p++;
    if (p == s || (size_t)(p - s) >= sizeof(out->scheme))
        return ZN_EINVAL;
    memcpy(out->scheme, s, (size_t)(p - s));
    if (strcasecmp(out->scheme, "bearer") == 0)
        memcpy(out->scheme, "Bearer", 7);
    else if (strcasecmp(out->scheme, "basic") == 0)
        memcpy(out->scheme, "Basic", 6);
    for (;;) {
        p = skip_ws(p);
        while (*p == ',')
            p = skip_ws(p + 1);
        if (*p == '\0')
            return ZN_OK;
        const char *k = p;
        while (is_token_char(*p))
            p++;
        size_t klen = (size_t)(p - k);
        p = skip_ws(p);
        if (klen == 0 || *p != '=')
            return ZN_EINVAL; /* a second challenge or token68: only one challenge with parameters is read */
        p = skip_ws(p + 1);
        size_t n = 0;
        if (*p == '"') {
            for (p++; *p != '"'; p++) {
                if (*p == '\0')
                    return ZN_EINVAL;
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (n + 1 >= sizeof(val))
                    return ZN_ETOOBIG;
                val[n++] = *p;
            }
            p++;
        } else {
            for (; is_token_char(*p) || *p == '/' || *p == ':' || *p == '='; p++) {
                if (n + 1 >= sizeof(val))
                    return ZN_ETOOBIG;
                val[n++] = *p;
            }
        }
        if ((err = set_param(out, k, klen, val, n)) != ZN_OK)
            return err;
        p = skip_ws(p);
        if (*p != ',' && *p != '\0')
            return ZN_EINVAL;
    }
}

/* ---- credentials file ------------------------------------------------------------------- */

void zn_sync_creds_release(zn_sync_creds_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].host);
        free(c->v[i].user);
        free(c->v[i].pass);
    }
    free(c->v);
    memset(c, 0, sizeof(*c));
}

/* Go's json decodes struct fields case-insensitively: "Username", "username", "USERNAME". */
static json_t *get_ci(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    return NULL;
}

zn_err_t zn_sync_creds_parse(const char *name, const char *text, size_t len, zn_sync_creds_t *out, char *err, size_t errlen)
{
    json_error_t je;
    const char *host;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *e;

    memset(out, 0, sizeof(*out));
    if (root == NULL) {
        zn_errf(err, errlen, "%s: line %d: invalid JSON: %s", name, je.line, je.text);
        return ZN_EINVAL;
    }
    if (!json_is_object(root)) {
        zn_errf(err, errlen, "%s: expected an object {\"host:port\": {\"username\", \"password\"}}", name);
        json_decref(root);
        return ZN_EINVAL;
    }
    out->v = zn_calloc(json_object_size(root) + 1, sizeof(*out->v));
    json_object_foreach(root, host, e)
    {
        json_t *u = json_is_object(e) ? get_ci(e, "username") : NULL, *p = json_is_object(e) ? get_ci(e, "password") : NULL;
        if (!json_is_object(e) || (u != NULL && !json_is_string(u)) || (p != NULL && !json_is_string(p))) {
            zn_errf(err, errlen, "%s: %s: expected {\"username\": string, \"password\": string}", name, host);
            json_decref(root);
            zn_sync_creds_release(out);
            return ZN_EINVAL;
        }
        zn_sync_cred_t *c = &out->v[out->n++];
        c->host = zn_strdup(host);
        c->user = zn_strdup(u != NULL ? json_string_value(u) : "");
        c->pass = zn_strdup(p != NULL ? json_string_value(p) : "");
    }
    json_decref(root);
    return ZN_OK;
}

const zn_sync_cred_t *zn_sync_creds_find(const zn_sync_creds_t *c, const char *hostport)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].host, hostport) == 0)
            return &c->v[i];
    return NULL;
}

/* ---- names ---------------------------------------------------------------------------------- */

/* Go's strings.Trim(s, cutset) into out (at most len bytes with the NUL). */
static bool trim(const char *s, const char *cutset, char *out, size_t len)
{
    size_t a = 0, b = strlen(s);
    while (a < b && strchr(cutset, s[a]) != NULL)
        a++;
    while (b > a && strchr(cutset, s[b - 1]) != NULL)
        b--;
    if (b - a >= len)
        return false;
    memcpy(out, s + a, b - a);
    out[b - a] = '\0';
    return true;
}

/* doublestar's SplitPattern: the part after the last '/' that precedes any meta character. */
static const char *split_pattern(const char *p)
{
    const char *cut = NULL;
    for (const char *s = p; *s != '\0'; s++) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        else if (*s == '/')
            cut = s;
        else if (*s == '*' || *s == '?' || *s == '[' || *s == '{')
            break;
    }
    return cut != NULL ? cut + 1 : p;
}

/* Trim(Join([a, b], "/"), "/") into out. */
static bool join_trim(const char *a, const char *b, char *out, size_t len)
{
    char tmp[2 * ZN_SYNC_NAME_MAX + 2];
    int n = snprintf(tmp, sizeof(tmp), "%s/%s", a, b);
    return n >= 0 && (size_t)n < sizeof(tmp) && trim(tmp, "/", out, len);
}

/* zot's GetContentByLocalRepo test for one content entry. */
static bool content_matches_local(const zn_config_sync_content_t *c, const char *repo)
{
    char prefix[ZN_SYNC_NAME_MAX + 2], dest[ZN_SYNC_NAME_MAX + 1], pattern[2 * ZN_SYNC_NAME_MAX + 2];
    if (!trim(c->prefix, "/", prefix, sizeof(prefix) - 1) || !trim(c->destination != NULL ? c->destination : "", "/", dest, sizeof(dest)))
        return false;
    size_t n = strlen(prefix);
    prefix[n] = '/';
    prefix[n + 1] = '\0';
    if (!join_trim(dest, c->strip_prefix ? split_pattern(prefix) : prefix, pattern, sizeof(pattern)))
        return false;
    return zn_glob_matches(pattern, repo);
}

zn_err_t zn_sync_upstream_name(const zn_config_sync_registry_t *r, const char *repo, char *out, size_t len,
                               const zn_config_sync_content_t **content)
{
    char local[ZN_SYNC_NAME_MAX + 1], dest[ZN_SYNC_NAME_MAX + 1], prefix[ZN_SYNC_NAME_MAX + 1];

    *content = NULL;
    if (!trim(repo, "/", local, sizeof(local)))
        return ZN_ETOOBIG;
    if (r->ncontent == 0) {
        /* no content rules: everything, under the same name */
        if (strlen(local) >= len)
            return ZN_ETOOBIG;
        memcpy(out, local, strlen(local) + 1);
        return ZN_OK;
    }
    const zn_config_sync_content_t *c = NULL;
    for (size_t i = 0; i < r->ncontent && c == NULL; i++)
        if (content_matches_local(&r->content[i], local))
            c = &r->content[i];
    if (c == NULL)
        return ZN_ENOENT;
    if (!trim(c->destination != NULL ? c->destination : "", "/", dest, sizeof(dest)) || !trim(c->prefix, "/*", prefix, sizeof(prefix)))
        return ZN_ETOOBIG;
    const char *rest = local;
    size_t dl = strlen(dest);
    if (strncmp(rest, dest, dl) == 0)
        rest += dl; /* strings.TrimPrefix */
    char restt[ZN_SYNC_NAME_MAX + 1];
    if (!trim(rest, "/", restt, sizeof(restt)))
        return ZN_ETOOBIG;
    bool ok = c->strip_prefix ? join_trim(prefix, restt, out, len) : trim(restt, "/", out, len);
    if (!ok)
        return ZN_ETOOBIG;
    if (out[0] == '\0')
        return ZN_ENOENT;
    *content = c;
    return ZN_OK;
}

/* ---- tags --------------------------------------------------------------------------------- */

static bool digits(const char **p)
{
    const char *s = *p;
    while (isdigit((unsigned char)**p))
        (*p)++;
    return *p > s;
}

/* [0-9A-Za-z-]+(\.[0-9A-Za-z-]+)* */
static bool idents(const char **p)
{
    for (;;) {
        const char *s = *p;
        while (isalnum((unsigned char)**p) || **p == '-')
            (*p)++;
        if (*p == s)
            return false;
        if (**p != '.')
            return true;
        (*p)++;
    }
}

bool zn_sync_semver_valid(const char *tag)
{
    /* Masterminds/semver v1 NewVersion: v?N(.N)?(.N)?(-pre)?(+meta)?, the whole string */
    const char *p = tag;
    if (*p == 'v')
        p++;
    if (!digits(&p))
        return false;
    for (int i = 0; i < 2 && *p == '.'; i++) {
        p++;
        if (!digits(&p))
            return false;
    }
    if (*p == '-') {
        p++;
        if (!idents(&p))
            return false;
    }
    if (*p == '+') {
        p++;
        if (!idents(&p))
            return false;
    }
    return *p == '\0';
}

static bool regex_matches(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return false; /* config/sync.c compiled it already */
    bool m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

bool zn_sync_tag_allowed(const zn_config_sync_content_t *c, const char *tag)
{
    if (c == NULL)
        return true;
    if (c->tags_regex != NULL && c->tags_regex[0] != '\0' && !regex_matches(c->tags_regex, tag))
        return false;
    if (c->tags_exclude_regex != NULL && c->tags_exclude_regex[0] != '\0' && regex_matches(c->tags_exclude_regex, tag))
        return false;
    return !c->tags_semver || zn_sync_semver_valid(tag);
}
