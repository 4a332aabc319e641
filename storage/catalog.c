/*
 * storage/catalog.c - the list of repositories: a walk of the root (dedupe.c) collecting
 * every directory that holds oci-layout, filtered by the caller (access control), sorted,
 * and cut into a page.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/internal.h"

struct collect {
    zn_storage_repo_filter_fn filter;
    void *filter_data;
    zn_buf_t names; /* NUL-separated */
    size_t count;
};

static bool collect_repo(void *data, const char *repo)
{
    struct collect *c = data;
    if (c->filter != NULL && !c->filter(c->filter_data, repo))
        return true;
    if (zn_buf_append(&c->names, repo, strlen(repo) + 1) != ZN_OK)
        return false;
    c->count++;
    return true;
}

zn_err_t zn_storage_catalog(zn_storage_t *st, const char *last, size_t max, zn_storage_repo_filter_fn filter,
                            void *filter_data, zn_storage_list_t *out)
{
    struct collect c = {filter, filter_data, {0}, 0};
    zn_err_t err;

    memset(out, 0, sizeof(*out));
    zn_buf_init(&c.names, (size_t)1 << 30);
    if ((err = st_walk_repos(st, collect_repo, &c)) != ZN_OK) {
        zn_buf_release(&c.names);
        return err;
    }
    const char **names = zn_calloc(c.count + 1, sizeof(*names));
    const char *p = c.names.p;
    for (size_t i = 0; i < c.count; i++) {
        names[i] = p;
        p += strlen(p) + 1;
    }
    st_list_page(names, c.count, last, max, out);
    free(names);
    zn_buf_release(&c.names);
    return ZN_OK;
}
