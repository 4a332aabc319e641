/*
 * storage/names.c - syntax of repository names, tags and upload ids.
 *
 * These checks are what keeps every filesystem path under the root: a valid name has no
 * empty, "." or ".." component, no leading dot (so never .uploads or .zinc) and no byte
 * outside [a-z0-9._/-]. Grammar from the OCI distribution-spec.
 */
#include <string.h>

#include "storage/storage.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *p, const char *end)
{
    if (p == end || !is_lower_alnum(*p))
        return false;
    while (p != end) {
        while (p != end && is_lower_alnum(*p))
            p++;
        if (p == end)
            return true;
        /* a separator: ".", "_", "__" or one or more "-", then alnum again */
        if (*p == '.') {
            p++;
        } else if (*p == '_') {
            p++;
            if (p != end && *p == '_')
                p++;
        } else if (*p == '-') {
            while (p != end && *p == '-')
                p++;
        } else {
            return false;
        }
        if (p == end || !is_lower_alnum(*p))
            return false;
    }
    return true;
}

bool zn_storage_name_valid(zn_slice_t name)
{
    if (name.n == 0 || name.n > ZN_REPO_NAME_MAX)
        return false;
    const char *p = name.p, *end = name.p + name.n;
    while (1) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *cend = slash != NULL ? slash : end;
        if (!component_valid(p, cend))
            return false;
        if (slash == NULL)
            return true;
        p = slash + 1;
    }
}

static bool is_tag_char(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

bool zn_storage_tag_valid(zn_slice_t tag)
{
    if (tag.n == 0 || tag.n > ZN_TAG_MAX)
        return false;
    if (tag.p[0] == '.' || tag.p[0] == '-')
        return false;
    for (size_t i = 0; i < tag.n; i++)
        if (!is_tag_char(tag.p[i]))
            return false;
    return true;
}

bool zn_storage_uuid_valid(zn_slice_t uuid)
{
    if (uuid.n != ZN_UUID_LEN)
        return false;
    for (size_t i = 0; i < uuid.n; i++) {
        char c = uuid.p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}
