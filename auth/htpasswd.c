/*
 * auth/htpasswd.c - the user table from http.auth.htpasswd.path.
 *
 * Lines are `user:hash`, split at the first ':' with no trimming and no comments, as zot
 * reads them; the last line for a user wins. A line we cannot use (no ':', empty or
 * over-long user, a hash we cannot verify - a CRLF file lands here) is logged with file
 * and line number and skipped, so one bad line locks out nobody else. The table is a
 * sorted array searched by bsearch.
 *
 * Reload: requests call zn_auth_htpasswd_maybe_reload(); at most once per check interval
 * one thread (trylock) stats the file and, if its identity changed (or its timestamps are
 * too recent to be trusted), reads it; only if the bytes differ is it parsed into a new
 * table swapped in under the write lock, bumping the generation that cache entries are
 * tied to. Nothing watches the file in between, so an idle server does no work.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_int.h"

#define CHECK_INTERVAL_NS 1000000000ull
#define RACY_SECONDS 2

static void warn_line(const char *file, size_t line, const char *reason)
{
    zn_log(ZN_LOG_WARN, "htpasswd line ignored", ZN_LSTR("file", file), ZN_LUINT("line", line),
           ZN_LSTR("reason", reason));
}

/* Why the line [p, end) cannot be used, or NULL if it can. */
static const char *line_problem(const char *p, const char *end, const char **colon)
{
    if (memchr(p, '\0', (size_t)(end - p)) != NULL)
        return "NUL byte";
    if ((*colon = memchr(p, ':', (size_t)(end - p))) == NULL)
        return "no ':' between user and hash";
    if (*colon == p)
        return "empty user name";
    if ((size_t)(*colon - p) > ZN_AUTH_USER_MAX)
        return "user name too long";
    const char *hash = *colon + 1;
    if (zn_auth_hash_kind(hash, (size_t)(end - hash)) == ZN_AUTH_HASH_UNKNOWN)
        return "unsupported or malformed hash (bcrypt $2a$/$2b$/$2y$, $5$, $6$ or $argon2id$ expected)";
    return NULL;
}

static void add_line(zn_auth_htpasswd_table_t *t, size_t *cap, const char *p, const char *colon, const char *end,
                     size_t line)
{
    if (t->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        t->entries = zn_realloc(t->entries, *cap * sizeof(*t->entries));
    }
    zn_auth_htpasswd_entry_t *e = &t->entries[t->n++];
    e->user = zn_slice_dup(zn_slice(p, (size_t)(colon - p)));
    e->hash = zn_slice_dup(zn_slice(colon + 1, (size_t)(end - colon - 1)));
    zn_auth_hash_fingerprint(e->hash, (size_t)(end - colon - 1), e->fp);
    e->line = line;
}

static int entry_cmp(const void *a, const void *b)
{
    const zn_auth_htpasswd_entry_t *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void free_entry(zn_auth_htpasswd_entry_t *e)
{
    free(e->user);
    if (e->hash != NULL)
        OPENSSL_cleanse(e->hash, strlen(e->hash));
    free(e->hash);
}

/* Sort by user then line, and keep only the last line of each user. */
static void sort_dedupe(zn_auth_htpasswd_table_t *t)
{
    if (t->n == 0)
        return;
    qsort(t->entries, t->n, sizeof(*t->entries), entry_cmp);
    size_t out = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (i + 1 < t->n && strcmp(t->entries[i].user, t->entries[i + 1].user) == 0) {
            free_entry(&t->entries[i]);
            continue;
        }
        t->entries[out++] = t->entries[i];
    }
    t->n = out;
}

void zn_auth_htpasswd_parse(const char *name, const char *text, size_t len, zn_auth_htpasswd_table_t *t)
{
    const char *p = text, *end = text + len;
    size_t cap = 0, line = 0;

    t->entries = NULL;
    t->n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl != NULL ? nl : end, *colon = NULL;
        const char *problem;
        line++;
        if (eol != p) {
            if ((problem = line_problem(p, eol, &colon)) != NULL)
                warn_line(name, line, problem);
            else
                add_line(t, &cap, p, colon, eol, line);
        }
        p = nl != NULL ? nl + 1 : end;
    }
    sort_dedupe(t);
}

void zn_auth_htpasswd_table_release(zn_auth_htpasswd_table_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free_entry(&t->entries[i]);
    free(t->entries);
    t->entries = NULL;
    t->n = 0;
}

/* What one read of the file gave: its identity, a digest of its bytes, the parsed table. */
typedef struct loaded {
    struct stat st;
    uint8_t digest[SHA256_DIGEST_LENGTH];
    zn_auth_htpasswd_table_t table;
} loaded_t;

/* Read the file; parse it only if its bytes differ from `known` (NULL: always). *parsed
 * says whether l->table was filled. */
static zn_err_t load(const char *path, const uint8_t *known, loaded_t *l, bool *parsed, char *errbuf, size_t errlen)
{
    zn_buf_t buf;
    zn_err_t err;

    *parsed = false;
    if ((err = zn_file_read(path, ZN_AUTH_HTPASSWD_MAX, &buf, &l->st)) != ZN_OK) {
        if (err == ZN_ETOOBIG)
            zn_errf(errbuf, errlen, "%s: larger than %u bytes", path, ZN_AUTH_HTPASSWD_MAX);
        else
            zn_errf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return err;
    }
    SHA256((const unsigned char *)buf.p, buf.len, l->digest);
    if (known == NULL || memcmp(known, l->digest, sizeof(l->digest)) != 0) {
        zn_auth_htpasswd_parse(path, buf.p, buf.len, &l->table);
        *parsed = true;
    }
    OPENSSL_cleanse(buf.p, buf.len);
    zn_buf_release(&buf);
    return ZN_OK;
}

/* File timestamps are coarse (a kernel tick): a change within the same tick as the read
 * we remember, with the same size and inode, would look like no change. So while the
 * file's ctime is that close to "now", stat alone is not trusted and the bytes are
 * compared on each check (git's "racy clean" rule). */
static void remember(zn_auth_htpasswd_t *h, const loaded_t *l)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    h->st = l->st;
    memcpy(h->digest, l->digest, sizeof(h->digest));
    h->racy = now.tv_sec - l->st.st_ctim.tv_sec < RACY_SECONDS;
}

zn_err_t zn_auth_htpasswd_init(zn_auth_htpasswd_t *h, const char *path, char *errbuf, size_t errlen)
{
    loaded_t l;
    bool parsed;
    zn_err_t err;

    memset(h, 0, sizeof(*h));
    if ((err = load(path, NULL, &l, &parsed, errbuf, errlen)) != ZN_OK)
        return err;
    h->table = l.table;
    remember(h, &l);
    h->path = zn_strdup(path);
    zn_rwlock_init(&h->lock, "auth.htpasswd.table");
    zn_mutex_init(&h->reload_lock, "auth.htpasswd.reload");
    h->check_interval_ns = CHECK_INTERVAL_NS;
    h->next_check_ns = zn_now_mono_ns() + h->check_interval_ns;
    zn_log(ZN_LOG_INFO, "htpasswd loaded", ZN_LSTR("file", path), ZN_LUINT("users", h->table.n));
    return ZN_OK;
}

void zn_auth_htpasswd_release(zn_auth_htpasswd_t *h)
{
    if (h->path == NULL)
        return;
    zn_auth_htpasswd_table_release(&h->table);
    zn_rwlock_destroy(&h->lock);
    zn_mutex_destroy(&h->reload_lock);
    free(h->path);
    h->path = NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void swap_in(zn_auth_htpasswd_t *h, zn_auth_htpasswd_table_t *t)
{
    zn_rwlock_wrlock(&h->lock);
    zn_auth_htpasswd_table_t old = h->table;
    h->table = *t;
    h->gen++;
    zn_rwlock_unlock(&h->lock);
    zn_auth_htpasswd_table_release(&old);
}

/* Called with reload_lock held. */
static bool reload(zn_auth_htpasswd_t *h)
{
    struct stat st;
    loaded_t l;
    bool parsed;
    char err[256];

    if (stat(h->path, &st) == 0 && same_file(&st, &h->st) && !h->racy)
        return false;
    if (load(h->path, h->digest, &l, &parsed, err, sizeof(err)) != ZN_OK) {
        /* Keep serving the users we know (zot does the same); a transient failure such as
         * an editor's half-done save must not lock everyone out. Logged once per outage. */
        if (!h->reload_failing)
            zn_log(ZN_LOG_ERROR, "htpasswd reload failed, keeping the previous users", ZN_LSTR("error", err));
        h->reload_failing = true;
        return false;
    }
    h->reload_failing = false;
    remember(h, &l);
    if (!parsed)
        return false; /* touched, same bytes: keep the table and the cache */
    swap_in(h, &l.table);
    zn_log(ZN_LOG_INFO, "htpasswd reloaded", ZN_LSTR("file", h->path), ZN_LUINT("users", l.table.n));
    return true;
}

bool zn_auth_htpasswd_maybe_reload(zn_auth_htpasswd_t *h, uint64_t now_ns)
{
    bool changed = false;

    if (now_ns < atomic_load_explicit(&h->next_check_ns, memory_order_relaxed))
        return false;
    if (!zn_mutex_trylock(&h->reload_lock))
        return false; /* another thread is checking right now */
    if (now_ns >= h->next_check_ns) {
        changed = reload(h);
        atomic_store_explicit(&h->next_check_ns, now_ns + h->check_interval_ns, memory_order_relaxed);
    }
    zn_mutex_unlock(&h->reload_lock);
    return changed;
}

static int user_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const zn_auth_htpasswd_entry_t *)elem)->user);
}

zn_err_t zn_auth_htpasswd_lookup(zn_auth_htpasswd_t *h, const char *user, char *hash, uint8_t fp[ZN_AUTH_FP_LEN],
                                 uint64_t *gen)
{
    zn_err_t err = ZN_ENOENT;

    zn_rwlock_rdlock(&h->lock);
    const zn_auth_htpasswd_entry_t *e =
        h->table.n != 0 ? bsearch(user, h->table.entries, h->table.n, sizeof(*e), user_cmp) : NULL;
    if (e != NULL) {
        /* the length was bounded by zn_auth_hash_kind() when the line was read */
        memcpy(hash, e->hash, strlen(e->hash) + 1);
        memcpy(fp, e->fp, ZN_AUTH_FP_LEN);
        err = ZN_OK;
    }
    *gen = h->gen;
    zn_rwlock_unlock(&h->lock);
    return err;
}

zn_err_t zn_auth_htpasswd_any_hash(zn_auth_htpasswd_t *h, char *hash)
{
    zn_err_t err = ZN_ENOENT;

    zn_rwlock_rdlock(&h->lock);
    if (h->table.n != 0) {
        const char *e = h->table.entries[0].hash;
        memcpy(hash, e, strlen(e) + 1);
        err = ZN_OK;
    }
    zn_rwlock_unlock(&h->lock);
    return err;
}
