/* Unit tests for storage/referrers.c: the referrers index, artifactType filtering. */
#include "test/unit/storage/st_helpers.h"

static char *referrers(t_store_t *t, const char *repo, const zn_digest_t *subject, const char *filter)
{
    char *json;
    size_t len;
    assert_int_equal(zn_storage_referrers(t->st, repo, subject, filter, &json, &len), ZN_OK);
    assert_int_equal(strlen(json), len);
    return json;
}

static void test_referrers(void **state)
{
    t_store_t *t = *state;
    zn_digest_t c = t_push_blob(t->st, "r", "{}", 2), l = t_push_blob(t->st, "r", "layer", 5);
    char *img = t_manifest(&c, 2, &l, 5, NULL, NULL), detail[128];
    zn_storage_put_t base, sig, sbom;

    assert_int_equal(zn_storage_manifest_put(t->st, "r", "v1", NULL, NULL, img, strlen(img), &base, detail, sizeof(detail)),
                     ZN_OK);
    char *a = t_manifest(&c, 2, &l, 5, base.digest.str, "application/vnd.example.sig");
    char *b = t_manifest(&c, 2, &l, 5, base.digest.str, NULL);
    assert_int_equal(zn_storage_manifest_put(t->st, "r", NULL, NULL, NULL, a, strlen(a), &sig, detail, sizeof(detail)), ZN_OK);
    assert_true(sig.has_subject);
    assert_true(zn_digest_eq(&sig.subject, &base.digest));
    assert_int_equal(zn_storage_manifest_put(t->st, "r", NULL, NULL, NULL, b, strlen(b), &sbom, detail, sizeof(detail)), ZN_OK);

    char *all = referrers(t, "r", &base.digest, NULL);
    assert_non_null(strstr(all, "\"mediaType\":\"application/vnd.oci.image.index.v1+json\""));
    assert_non_null(strstr(all, sig.digest.str));
    assert_non_null(strstr(all, sbom.digest.str));
    assert_non_null(strstr(all, "\"artifactType\":\"application/vnd.example.sig\""));
    assert_non_null(strstr(all, "\"artifactType\":\"application/vnd.oci.image.config.v1+json\""));
    assert_non_null(strstr(all, "\"annotations\":{\"a\":\"b\"}"));
    assert_null(strstr(all, base.digest.str)); /* never the subject itself */
    char *filtered = referrers(t, "r", &base.digest, "application/vnd.example.sig");
    assert_non_null(strstr(filtered, sig.digest.str));
    assert_null(strstr(filtered, sbom.digest.str));
    char *none = referrers(t, "r", &sig.digest, NULL);
    assert_non_null(strstr(none, "\"manifests\":[]"));
    char *norepo = referrers(t, "nosuch", &sig.digest, NULL);
    assert_non_null(strstr(norepo, "\"manifests\":[]"));
    /* deleting the referrer removes it */
    assert_int_equal(zn_storage_manifest_delete(t->st, "r", sig.digest.str), ZN_OK);
    char *after = referrers(t, "r", &base.digest, NULL);
    assert_null(strstr(after, sig.digest.str));
    free(after), free(none), free(norepo), free(filtered), free(all), free(a), free(b), free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_referrers, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
