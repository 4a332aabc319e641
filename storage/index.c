/*
 * storage/index.c - index.json: the cached copy readers share and the locked
 * read-modify-write that changes it.
 *
 * Readers get a reference to an immutable parsed index; it is re-read when index.json's
 * inode, size or mtime differ from the cached stamp (another process, zot included, may
 * have rewritten it). Writers hold the repository's mutex and an exclusive flock on the
 * repository directory, re-read the file from disk (never trusting the cache across
 * processes), edit a private copy, write it to a temp file in .uploads and rename it over
 * index.json, then publish the copy as the new cached index.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "storage/internal.h"

const char *st_desc_tag(json_t *desc)
{
    return json_string_value(json_object_get(json_object_get(desc, "annotations"), ST_REF_NAME));
}

const char *st_desc_digest(json_t *desc)
{
    return json_string_value(json_object_get(desc, "digest"));
}

static bool stamp_matches(const st_repo_t *repo, const struct stat *sb)
{
    return repo->idx != NULL && repo->idx_ino == sb->st_ino && repo->idx_size == sb->st_size &&
           repo->idx_mtime.tv_sec == sb->st_mtim.tv_sec && repo->idx_mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

static void set_stamp(st_repo_t *repo, const struct stat *sb)
{
    repo->idx_ino = sb->st_ino;
    repo->idx_size = sb->st_size;
    repo->idx_mtime = sb->st_mtim;
}

/* Reads and parses index.json; "manifests": null (zot's fresh index) becomes []. */
static zn_err_t load_index(zn_storage_t *st, const char *repo, json_t **out, struct stat *sb)
{
    char path[PATH_MAX], *text = NULL;
    size_t len;
    json_error_t jerr;
    zn_err_t err;

    if ((err = st_path(path, "%s/%s/index.json", st->root, repo)) != ZN_OK)
        return err;
    if ((err = st_read_file(path, ST_INDEX_MAX, &text, &len, sb)) != ZN_OK)
        return err;
    json_t *idx = json_loadb(text, len, 0, &jerr);
    free(text);
    json_t *m = json_object_get(idx, "manifests");
    if (!json_is_object(idx) || (m != NULL && !json_is_array(m) && !json_is_null(m))) {
        zn_log(ZN_LOG_ERROR, "corrupt index.json", ZN_LSTR("repo", repo), ZN_LSTR("error", jerr.text));
        json_decref(idx);
        return ZN_EIO;
    }
    if (!json_is_array(m))
        json_object_set_new(idx, "manifests", json_array());
    *out = idx;
    return ZN_OK;
}

zn_err_t st_index_get(zn_storage_t *st, st_repo_t *repo, json_t **out)
{
    char path[PATH_MAX];
    struct stat sb;
    zn_err_t err;

    if ((err = st_path(path, "%s/%s/index.json", st->root, repo->name)) != ZN_OK)
        return err;
    if (stat(path, &sb) != 0)
        return st_errno(errno);
    zn_mutex_lock(&repo->lock);
    if (!stamp_matches(repo, &sb)) {
        json_t *idx;
        if ((err = load_index(st, repo->name, &idx, &sb)) != ZN_OK) {
            zn_mutex_unlock(&repo->lock);
            return err;
        }
        json_decref(repo->idx);
        repo->idx = idx;
        set_stamp(repo, &sb);
    }
    *out = json_incref(repo->idx);
    zn_mutex_unlock(&repo->lock);
    return ZN_OK;
}

static zn_err_t write_index(zn_storage_t *st, st_repo_t *repo, json_t *idx)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct stat sb;
    zn_err_t err;

    char *text = json_dumps(idx, JSON_COMPACT);
    if (text == NULL)
        return ZN_ENOMEM;
    if ((err = st_path(dir, "%s/%s/.uploads", st->root, repo->name)) != ZN_OK ||
        (err = st_path(path, "%s/%s/index.json", st->root, repo->name)) != ZN_OK)
        goto done;
    if ((err = st_write_atomic(st, dir, path, text, strlen(text), false)) != ZN_OK)
        goto done;
    json_decref(repo->idx);
    repo->idx = json_incref(idx);
    if (stat(path, &sb) == 0)
        set_stamp(repo, &sb);
    else
        memset(&repo->idx_mtime, 0, sizeof(repo->idx_mtime)); /* forces a reload */
done:
    free(text);
    return err;
}

zn_err_t st_index_edit(zn_storage_t *st, st_repo_t *repo, st_index_edit_fn fn, void *data)
{
    char dir[PATH_MAX];
    json_t *idx = NULL;
    struct stat sb;
    bool changed = false;
    int dfd = -1;
    zn_err_t err;

    if ((err = st_path(dir, "%s/%s", st->root, repo->name)) != ZN_OK)
        return err;
    zn_mutex_lock(&repo->lock);
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
        err = st_errno(errno);
        goto done;
    }
    while (flock(dfd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            err = ZN_EIO;
            goto done;
        }
    }
    if ((err = load_index(st, repo->name, &idx, &sb)) != ZN_OK)
        goto done;
    if ((err = fn(data, idx, &changed)) != ZN_OK || !changed)
        goto done;
    err = write_index(st, repo, idx);
done:
    json_decref(idx);
    if (dfd != -1)
        close(dfd); /* drops the flock */
    zn_mutex_unlock(&repo->lock);
    return err;
}
