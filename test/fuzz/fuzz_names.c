/*
 * test/fuzz/fuzz_names.c - repository names, tags, upload ids and manifest references as they
 * arrive in request paths (storage/names.c, api/parse.c zn_api_ref_parse). Besides not
 * crashing, an accepted value must obey the grammar the validators document.
 */
#include <stdbool.h>

#include "api/internal.h"
#include "fuzz.h"
#include "storage/storage.h"

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool tag_char(char c)
{
    return lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

static void check_name(zn_slice_t s)
{
    if (!zn_storage_name_valid(s))
        return;
    FZ_CHECK(s.n >= 1 && s.n <= ZN_REPO_NAME_MAX);
    FZ_CHECK(lower_alnum(s.p[0]) && lower_alnum(s.p[s.n - 1]));
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        FZ_CHECK(lower_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/');
        if (c == '/' || c == '.')
            FZ_CHECK(i + 1 < s.n && lower_alnum(s.p[i + 1]) && lower_alnum(s.p[i - 1]));
    }
}

static void check_tag(zn_slice_t s)
{
    if (!zn_storage_tag_valid(s))
        return;
    FZ_CHECK(s.n >= 1 && s.n <= ZN_TAG_MAX);
    FZ_CHECK(tag_char(s.p[0]) && s.p[0] != '.' && s.p[0] != '-');
    for (size_t i = 0; i < s.n; i++)
        FZ_CHECK(tag_char(s.p[i]));
}

static void check_uuid(zn_slice_t s)
{
    if (!zn_storage_uuid_valid(s))
        return;
    FZ_CHECK(s.n == ZN_UUID_LEN);
    for (size_t i = 0; i < s.n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            FZ_CHECK(s.p[i] == '-');
        else
            FZ_CHECK((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f'));
    }
}

static void check_ref(zn_slice_t s)
{
    zn_api_ref_t ref;
    if (zn_api_ref_parse(s, &ref) != ZN_OK)
        return;
    /* both forms keep the client's exact text: a digest is canonical or rejected */
    FZ_CHECK(strlen(ref.text) == s.n && memcmp(ref.text, s.p, s.n) == 0);
    if (ref.is_digest)
        FZ_CHECK(ref.digest.len == s.n && strcmp(ref.digest.str, ref.text) == 0);
    else
        FZ_CHECK(zn_storage_tag_valid(s) && memchr(s.p, ':', s.n) == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy: every validator takes a slice, none may read past it */
    char *buf = malloc(size != 0 ? size : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data, size);
    zn_slice_t s = zn_slice(buf, size);
    check_name(s);
    check_tag(s);
    check_uuid(s);
    check_ref(s);
    free(buf);
    return 0;
}
