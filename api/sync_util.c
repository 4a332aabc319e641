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

#include <openssl/evp.h>
#include <strings.h>

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

/* ---- periodic sync: upstream names to local ones ------------------------------------------- */

zn_err_t zn_sync_local_name(const zn_config_sync_registry_t *r, const char *upstream, char *out, size_t len,
                            const zn_config_sync_content_t **content)
{
    char up[ZN_SYNC_NAME_MAX + 1], back[ZN_SYNC_NAME_MAX + 1];
    const zn_config_sync_content_t *c = NULL, *cb;

    *content = NULL;
    if (!trim(upstream, "/", up, sizeof(up)) || up[0] == '\0')
        return ZN_ENOENT;
    if (r->ncontent == 0) {
        if (strlen(up) >= len)
            return ZN_ETOOBIG;
        memcpy(out, up, strlen(up) + 1);
        return ZN_OK;
    }
    /* zot's getContentByUpstreamRepo: the first prefix glob (a leading '/' dropped) that matches */
    for (size_t i = 0; i < r->ncontent && c == NULL; i++) {
        const char *p = r->content[i].prefix;
        if (zn_glob_matches(p[0] == '/' ? p + 1 : p, up))
            c = &r->content[i];
    }
    if (c == NULL)
        return ZN_ENOENT;
    /* getRepoDestination: Trim(Join([destination, stripPrefix ? TrimPrefix(repo, prefix) : repo], "/"), "/") */
    char dest[ZN_SYNC_NAME_MAX + 1], prefix[ZN_SYNC_NAME_MAX + 1], rest[ZN_SYNC_NAME_MAX + 1];
    if (!trim(c->destination != NULL ? c->destination : "", "/", dest, sizeof(dest)) || !trim(c->prefix, "/*", prefix, sizeof(prefix)))
        return ZN_ETOOBIG;
    const char *r0 = up;
    if (c->strip_prefix && strncmp(r0, prefix, strlen(prefix)) == 0)
        r0 += strlen(prefix);
    if (!trim(r0, "/", rest, sizeof(rest)) || !join_trim(dest, rest, out, len))
        return ZN_ETOOBIG;
    if (out[0] == '\0')
        return ZN_ENOENT;
    /* the on-demand direction must lead back to the same upstream name, or the two kinds of
     * sync would disagree about what a local repository mirrors */
    if (zn_sync_upstream_name(r, out, back, sizeof(back), &cb) != ZN_OK || strcmp(back, up) != 0)
        return ZN_ENOENT;
    *content = c;
    return ZN_OK;
}

/* ---- periodic sync: pagination ------------------------------------------------------------- */

zn_err_t zn_sync_link_next(const char *hdr, char *out, size_t len)
{
    for (const char *p = hdr; p != NULL && *p != '\0';) {
        p = skip_ws(p);
        if (*p != '<')
            return ZN_EINVAL;
        const char *end = strchr(p + 1, '>');
        if (end == NULL)
            return ZN_EINVAL;
        const char *u = p + 1;
        size_t ulen = (size_t)(end - u);
        /* the parameters up to the next link (a ',' outside quotes) */
        bool next = false, quoted = false;
        const char *q = end + 1;
        const char *pstart = q;
        for (; *q != '\0' && (quoted || *q != ','); q++)
            if (*q == '"')
                quoted = !quoted;
        size_t plen = (size_t)(q - pstart);
        for (size_t i = 0; i + 3 <= plen; i++) {
            if (strncasecmp(pstart + i, "rel", 3) != 0)
                continue;
            const char *v = skip_ws(pstart + i + 3);
            if (*v != '=')
                continue;
            v = skip_ws(v + 1);
            bool qv = *v == '"';
            if (qv)
                v++;
            /* rel may list several relation types */
            size_t vl = strcspn(v, qv ? "\"" : " \t;,");
            for (const char *t = v; t < v + vl;) {
                size_t tl = strcspn(t, " \t\"");
                if (tl > (size_t)(v + vl - t))
                    tl = (size_t)(v + vl - t);
                if (tl == 4 && strncasecmp(t, "next", 4) == 0)
                    next = true;
                t += tl;
                while (t < v + vl && (*t == ' ' || *t == '\t'))
                    t++;
            }
        }
        if (next) {
            /* absolute URLs keep only their path: the next page is asked of the same upstream */
            const char *s = u;
            const char *scheme = NULL;
            for (const char *x = u; x + 3 <= end; x++)
                if (x[0] == ':' && x[1] == '/' && x[2] == '/') {
                    scheme = x;
                    break;
                }
            if (scheme != NULL) {
                s = memchr(scheme + 3, '/', (size_t)(end - scheme - 3));
                if (s == NULL)
                    return ZN_EINVAL;
            }
            size_t n = (size_t)(end - s);
            if (n < 4 || strncmp(s, "/v2/", 4) != 0)
                return ZN_EINVAL;
            for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
                    return ZN_EINVAL;
            if (n >= len)
                return ZN_ETOOBIG;
            memcpy(out, s, n);
            out[n] = '\0';
            return ZN_OK;
        }
        (void)ulen;
        p = *q == ',' ? q + 1 : NULL;
    }
    return ZN_ENOENT;
}

/* ---- shared by on-demand and periodic sync: credentials and tokens --------------------------- */

void zn_sync_url_host(const char *url, char *out, size_t len)
{
    const char *h = strstr(url, "://");
    h = h != NULL ? h + 3 : url;
    int n = snprintf(out, len, "%.*s", (int)strcspn(h, "/"), h);
    if (n < 0 || (size_t)n >= len)
        out[0] = '\0'; /* no credentials for an over-long host */
}

bool zn_sync_basic_auth(const zn_sync_cred_t *cred, char *out, size_t len)
{
    char plain[1024];
    out[0] = '\0';
    if (cred == NULL)
        return true;
    int n = snprintf(plain, sizeof(plain), "%s:%s", cred->user, cred->pass);
    if (n < 0 || (size_t)n >= sizeof(plain) || 6 + 4 * (((size_t)n + 2) / 3) + 1 > len)
        return false;
    memcpy(out, "Basic ", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)plain, n);
    return true;
}

/* Percent-encodes s into out for a query value. */
static bool qenc(const char *s, char *out, size_t len)
{
    size_t n = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
        if (n + 4 >= len)
            return false;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return true;
}

bool zn_sync_token_url(const zn_sync_challenge_t *ch, const char *scope, char *out, size_t len)
{
    char svc[768], sc[1536];
    if (strcmp(ch->scheme, "Bearer") != 0 || ch->realm[0] == '\0' || !qenc(ch->service, svc, sizeof(svc)) || !qenc(scope, sc, sizeof(sc)))
        return false;
    int n = snprintf(out, len, "%s%sservice=%s&scope=%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?", svc, sc);
    return n >= 0 && (size_t)n < len;
}

bool zn_sync_token_parse(const char *body, size_t len, char *auth, size_t auth_len, uint64_t *ttl_s)
{
    json_t *j = json_loadb(body != NULL ? body : "", len, 0, NULL);
    json_t *t = json_object_get(j, "token");
    if (!json_is_string(t) || json_string_length(t) == 0)
        t = json_object_get(j, "access_token");
    bool ok = false;
    if (json_is_string(t) && json_string_length(t) > 0) {
        int n = snprintf(auth, auth_len, "Bearer %s", json_string_value(t));
        ok = n >= 0 && (size_t)n < auth_len;
    }
    /* tokens say how long they live (expires_in, default 60 s); reuse them a bit less long */
    json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
    *ttl_s = ttl > 10 && ttl < 86400 ? (uint64_t)ttl - 5 : 55;
    json_decref(j);
    return ok;
}

/* ---- periodic sync: what a manifest references ----------------------------------------------- */

static zn_err_t add_desc(json_t *d, zn_digest_t *out, size_t max, size_t *n)
{
    json_t *dg = json_object_get(d, "digest");
    if (!json_is_object(d) || !json_is_string(dg))
        return ZN_EINVAL;
    if (*n == max)
        return ZN_ETOOBIG;
    const char *s = json_string_value(dg);
    if (zn_digest_parse(zn_slice(s, strlen(s)), &out[*n]) != ZN_OK)
        return ZN_EINVAL;
    for (size_t i = 0; i < *n; i++)
        if (zn_digest_eq(&out[i], &out[*n]))
            return ZN_OK; /* a blob listed twice is copied once */
    (*n)++;
    return ZN_OK;
}

zn_err_t zn_sync_manifest_refs(const char *bytes, size_t len, zn_sync_refs_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *j = json_loadb(bytes, len, 0, NULL);
    zn_err_t err = ZN_OK;
    if (!json_is_object(j)) {
        json_decref(j);
        return ZN_EINVAL;
    }
    json_t *ms = json_object_get(j, "manifests");
    json_t *cfg = json_object_get(j, "config");
    json_t *layers = json_object_get(j, "layers");
    json_t *blobs = json_object_get(j, "blobs"); /* the artifact manifest of OCI 1.1 drafts */
    size_t i;
    json_t *d;
    if (ms != NULL) {
        out->index = true;
        if (!json_is_array(ms))
            err = ZN_EINVAL;
        json_array_foreach(ms, i, d) if (err == ZN_OK) err = add_desc(d, out->children, ZN_SYNC_REFS_MAX, &out->nchildren);
    }
    if (err == ZN_OK && cfg != NULL)
        err = add_desc(cfg, out->blobs, ZN_SYNC_REFS_MAX, &out->nblobs);
    if (err == ZN_OK && layers != NULL) {
        if (!json_is_array(layers))
            err = ZN_EINVAL;
        json_array_foreach(layers, i, d) if (err == ZN_OK) err = add_desc(d, out->blobs, ZN_SYNC_REFS_MAX, &out->nblobs);
    }
    if (err == ZN_OK && blobs != NULL) {
        if (!json_is_array(blobs))
            err = ZN_EINVAL;
        json_array_foreach(blobs, i, d) if (err == ZN_OK) err = add_desc(d, out->blobs, ZN_SYNC_REFS_MAX, &out->nblobs);
    }
    if (err == ZN_OK && out->index && (cfg != NULL || layers != NULL))
        err = ZN_EINVAL; /* both an index and an image: refuse rather than guess */
    json_decref(j);
    if (err != ZN_OK)
        memset(out, 0, sizeof(*out));
    return err;
}

bool zn_sync_schema_tag(const char *t)
{
    if (strncmp(t, "sha256-", 7) != 0 || strlen(t) < 7 + 64 || strspn(t + 7, "0123456789abcdef") < 64)
        return false;
    const char *rest = t + 7 + 64;
    return rest[0] == '\0' || strcmp(rest, ".sig") == 0 || strcmp(rest, ".att") == 0 || strcmp(rest, ".sbom") == 0;
}
