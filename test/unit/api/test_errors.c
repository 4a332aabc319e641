/* Unit tests for api/errors.c: every OCI code has a complete row, zot's 401/403 details are
 * its exact JSON, and every internal zn_err_t maps to an OCI code and status (the resource's
 * own codes for ENOENT/EINVAL, 413 for ETOOBIG, 500 for server failures). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <jansson.h>

#include "api/api.h"

static void test_every_code_has_a_row(void **state)
{
    for (int c = 0; c < ZN_OCI_CODE_MAX; c++) {
        const zn_oci_error_t *e = zn_api_error((zn_oci_code_t)c);
        if (e->code == NULL || e->message == NULL || e->status < 400 || e->status > 599)
            fail_msg("OCI code %d has no complete row", c);
        assert_int_equal(zn_api_error_status((zn_oci_code_t)c), e->status);
        if (e->detail_json != NULL) {
            json_t *d = json_loads(e->detail_json, 0, NULL);
            assert_non_null(d);
            assert_true(json_is_string(json_object_get(d, "description")));
            json_decref(d);
        }
    }
    /* out of range: the internal error, never a read past the table */
    assert_int_equal(zn_api_error(ZN_OCI_CODE_MAX)->status, 500);
    assert_int_equal(zn_api_error((zn_oci_code_t)-1)->status, 500);
}

/* zot's bodies (docs/zot.md §2): the same code and message, a description, the authn one bare. */
static void test_zot_refusals(void **state)
{
    const zn_oci_error_t *authn = zn_api_error(ZN_OCI_AUTHN_REQUIRED), *authz = zn_api_error(ZN_OCI_UNAUTHORIZED),
                         *denied = zn_api_error(ZN_OCI_DENIED), *big = zn_api_error(ZN_OCI_SIZE_TOO_LARGE);
    static const char authn_desc[] =
        "{\"description\":\"The access controller was unable to authenticate the client. Often this will be accompanied "
        "by a WWW-Authenticate HTTP response header indicating how to authenticate.\"}";

    assert_string_equal(authn->code, "UNAUTHORIZED");
    assert_string_equal(authn->message, "authentication required");
    assert_int_equal(authn->status, 401);
    assert_true(authn->bare);
    assert_string_equal(authn->detail_json, authn_desc);
    assert_string_equal(authz->code, "UNAUTHORIZED");
    assert_int_equal(authz->status, 401);
    assert_false(authz->bare);
    assert_string_equal(authz->detail_json, authn_desc);
    assert_string_equal(denied->code, "DENIED");
    assert_string_equal(denied->message, "requested access to the resource is denied");
    assert_int_equal(denied->status, 403);
    assert_string_equal(denied->detail_json,
                        "{\"description\":\"The access controller denied access for the operation on a resource.\"}");
    assert_string_equal(big->code, "SIZE_INVALID");
    assert_int_equal(big->status, 413);
}

static void test_every_err_maps(void **state)
{
    const zn_api_codes_t as = {ZN_OCI_BLOB_UNKNOWN, ZN_OCI_MANIFEST_INVALID};
    bool internal;

    /* ZN_EAGAIN is the last zn_err_t */
    for (int e = ZN_OK; e <= ZN_EAGAIN; e++) {
        zn_oci_code_t c = zn_api_err_code((zn_err_t)e, &as, &internal);
        if (c >= ZN_OCI_CODE_MAX)
            fail_msg("zn_err %d maps to no OCI code", e);
        int status = zn_api_error_status(c);
        assert_true(status >= 400 && status <= 599);
        assert_int_equal(internal, status == 500);
    }
    assert_int_equal(zn_api_err_code(ZN_ENOENT, &as, &internal), ZN_OCI_BLOB_UNKNOWN);
    assert_false(internal);
    assert_int_equal(zn_api_err_code(ZN_EINVAL, &as, &internal), ZN_OCI_MANIFEST_INVALID);
    assert_int_equal(zn_api_err_code(ZN_EEXIST, &as, &internal), ZN_OCI_NAME_INVALID);
    assert_int_equal(zn_api_err_code(ZN_EDIGEST, &as, &internal), ZN_OCI_DIGEST_INVALID);
    assert_int_equal(zn_api_err_code(ZN_ETOOBIG, &as, &internal), ZN_OCI_SIZE_TOO_LARGE);
    assert_int_equal(zn_api_err_code(ZN_EUNSUPP, &as, &internal), ZN_OCI_UNSUPPORTED);
    assert_int_equal(zn_api_err_code(ZN_EIO, &as, &internal), ZN_OCI_INTERNAL);
    assert_true(internal);
    assert_int_equal(zn_api_err_code(ZN_ENOMEM, &as, &internal), ZN_OCI_INTERNAL);
    assert_true(internal);
    /* a throttling backend: 503 with Retry-After, not an internal error */
    assert_int_equal(zn_api_err_code(ZN_EAGAIN, &as, &internal), ZN_OCI_BACKEND_BUSY);
    assert_false(internal);
    assert_int_equal(zn_api_error_status(ZN_OCI_BACKEND_BUSY), 503);
    assert_int_equal(zn_api_error(ZN_OCI_BACKEND_BUSY)->retry_after, 1);
    assert_int_equal(zn_api_error_status(ZN_OCI_UNAVAILABLE), 502);
    assert_int_equal(zn_api_err_code((zn_err_t)(ZN_EAGAIN + 1), &as, &internal), ZN_OCI_INTERNAL);
    assert_true(internal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_row),
        cmocka_unit_test(test_zot_refusals),
        cmocka_unit_test(test_every_err_maps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
