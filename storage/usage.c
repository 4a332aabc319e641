/*
 * storage/usage.c - how many bytes a repository takes on disk, for the
 * zot_repo_storage_bytes gauge.
 *
 * zot sums the sizes of every file under the repository directory (a hard-linked blob
 * counts in each repository holding it); zinc does the same, except that a subdirectory
 * holding its own oci-layout is another repository (names contain '/') and is skipped.
 * Symbolic links are not followed. The walk is iterative-recursive with openat(), bounded
 * in depth; its cost is one fstatat per entry of the repository.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage.h"

/* blobs/sha256/<hex> and .uploads/<uuid> are 3 levels; leave room, never unbounded */
#define USAGE_DEPTH_MAX 16

static bool is_repo_dir(int dirfd)
{
    struct stat sb;
    return fstatat(dirfd, "oci-layout", &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Adds the sizes under dirfd (which it closes) to *sum. */
static zn_err_t walk(int dirfd, int depth, uint64_t *sum)
{
    zn_err_t err = ZN_OK;
    DIR *d = fdopendir(dirfd);
    struct dirent *e;
    struct stat sb;

    if (d == NULL) {
        close(dirfd);
        return ZN_EIO;
    }
    while (err == ZN_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* removed while we walk: a concurrent GC or upload end */
        if (S_ISREG(sb.st_mode)) {
            *sum += (uint64_t)sb.st_size;
        } else if (S_ISDIR(sb.st_mode) && depth < USAGE_DEPTH_MAX) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub == -1)
                continue;
            if (is_repo_dir(sub)) {
                close(sub);
                continue;
            }
            err = walk(sub, depth + 1, sum);
        }
    }
    closedir(d);
    return err;
}

zn_err_t zn_storage_repo_usage(const char *root, const char *repo, uint64_t *bytes)
{
    char path[PATH_MAX];
    int n, fd;

    *bytes = 0;
    if (!zn_storage_name_valid(zn_slice(repo, strlen(repo))))
        return ZN_EINVAL;
    n = snprintf(path, sizeof(path), "%s/%s", root, repo);
    if (n < 0 || (size_t)n >= sizeof(path))
        return ZN_EINVAL;
    if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
        return errno == ENOENT || errno == ENOTDIR ? ZN_ENOENT : ZN_EIO;
    if (!is_repo_dir(fd)) {
        close(fd);
        return ZN_ENOENT;
    }
    return walk(fd, 0, bytes);
}
