/* Unit tests for server/router.c: literal, single and multi-segment params matched from the
 * right, method handling, precedence and malformed patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/server.h"

static int h_a(struct st_h2o_req_t *req, zn_reqctx_t *ctx)
{
    return 0;
}

static const zn_route_def_t rows[] = {
    {"GET", "/v2/", "base", h_a, 0, -1, 0},
    {"GET", "/v2/_catalog", "catalog", h_a, 0, -1, 0},
    {"GET", "/v2/{name+}/tags/list", "tags", h_a, 0, 0, 0},
    {"GET", "/v2/{name+}/manifests/{reference}", "manifest_get", h_a, 0, 0, 0},
    {"PUT", "/v2/{name+}/manifests/{reference}", "manifest_put", h_a, 0, 0, 0},
    {"POST", "/v2/{name+}/blobs/uploads/", "upload_start", h_a, 0, 0, 0},
    {"PATCH", "/v2/{name+}/blobs/uploads/{uuid}", "upload_patch", h_a, 0, 0, 0},
    {"GET", "/v2/{name+}/blobs/{digest}", "blob_get", h_a, 0, 0, 0},
    {"*", "/livez", "livez", h_a, 0, -1, 0},
};

typedef struct {
    const char *method, *path, *route;
    int nparams;
    const char *p[3];
    zn_route_result_t res;
} case_t;

static void check(zn_router_t *r, const case_t *c)
{
    const zn_route_def_t *def = NULL;
    void *app = NULL;
    zn_slice_t params[ZN_ROUTE_PARAMS_MAX];
    int np = -1;
    zn_route_result_t res =
        zn_router_match(r, zn_slice(c->method, strlen(c->method)), zn_slice(c->path, strlen(c->path)), &def, &app, params, &np);
    if (res != c->res)
        fail_msg("%s %s: result %d, want %d", c->method, c->path, res, c->res);
    if (res != ZN_ROUTE_FOUND)
        return;
    assert_string_equal(def->name, c->route);
    assert_ptr_equal(app, (void *)r);
    assert_int_equal(np, c->nparams);
    for (int i = 0; i < np; i++) {
        if (!zn_slice_eq(params[i], c->p[i]))
            fail_msg("%s %s: param %d is '%.*s', want '%s'", c->method, c->path, i, (int)params[i].n, params[i].p, c->p[i]);
    }
}

static void test_match_table(void **state)
{
    zn_router_t *r = zn_router_new();
    assert_int_equal(zn_router_add(r, rows, sizeof(rows) / sizeof(rows[0]), r), ZN_OK);
    static const case_t cases[] = {
        {"GET", "/v2/", "base", 0, {0}, ZN_ROUTE_FOUND},
        {"GET", "/v2", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"GET", "/v2/_catalog", "catalog", 0, {0}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/tags/list", "tags", 1, {"a"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/b/c/tags/list", "tags", 1, {"a/b/c"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/tags/list", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        /* parsed from the right: a repository may itself contain "manifests" */
        {"GET", "/v2/x/manifests/y/manifests/latest", "manifest_get", 2, {"x/manifests/y", "latest"}, ZN_ROUTE_FOUND},
        {"PUT", "/v2/x/manifests/v1", "manifest_put", 2, {"x", "v1"}, ZN_ROUTE_FOUND},
        {"DELETE", "/v2/x/manifests/v1", NULL, 0, {0}, ZN_ROUTE_NO_METHOD},
        {"GET", "/v2/x/manifests/", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"POST", "/v2/r/blobs/uploads/", "upload_start", 1, {"r"}, ZN_ROUTE_FOUND},
        {"PATCH", "/v2/r/s/blobs/uploads/abc-1", "upload_patch", 2, {"r/s", "abc-1"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/r/blobs/sha256:00", "blob_get", 2, {"r", "sha256:00"}, ZN_ROUTE_FOUND},
        /* the name param keeps what the handler must reject */
        {"GET", "/v2/../x/blobs/d", "blob_get", 2, {"../x", "d"}, ZN_ROUTE_FOUND},
        {"GET", "/v2//blobs/d", "blob_get", 2, {"", "d"}, ZN_ROUTE_FOUND},
        {"HEAD", "/livez", "livez", 0, {0}, ZN_ROUTE_FOUND},
        {"GET", "/livez/", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"GET", "", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"GET", "relative", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check(r, &cases[i]);
    zn_router_free(r);
}

static void test_first_row_wins(void **state)
{
    static const zn_route_def_t a[] = {{"GET", "/v2/_catalog", "first", h_a, 0, -1, 0}};
    static const zn_route_def_t b[] = {{"GET", "/v2/{name}", "second", h_a, 0, -1, 0}};
    zn_router_t *r = zn_router_new();
    assert_int_equal(zn_router_add(r, a, 1, r), ZN_OK);
    assert_int_equal(zn_router_add(r, b, 1, r), ZN_OK);
    case_t c1 = {"GET", "/v2/_catalog", "first", 0, {0}, ZN_ROUTE_FOUND};
    case_t c2 = {"GET", "/v2/other", "second", 1, {"other"}, ZN_ROUTE_FOUND};
    check(r, &c1);
    check(r, &c2);
    zn_router_free(r);
}

static void test_bad_patterns(void **state)
{
    static const zn_route_def_t two_multi[] = {{"GET", "/v2/{a+}/x/{b+}", "bad", h_a, 0, -1, 0}};
    static const zn_route_def_t relative[] = {{"GET", "v2/x", "bad", h_a, 0, -1, 0}};
    zn_router_t *r = zn_router_new();
    assert_int_equal(zn_router_add(r, two_multi, 1, r), ZN_EINVAL);
    assert_int_equal(zn_router_add(r, relative, 1, r), ZN_EINVAL);
    case_t c = {"GET", "/v2/a/x/b", NULL, 0, {0}, ZN_ROUTE_NO_PATH};
    check(r, &c);
    zn_router_free(r);
}

static void test_deep_path_rejected(void **state)
{
    zn_router_t *r = zn_router_new();
    assert_int_equal(zn_router_add(r, rows, sizeof(rows) / sizeof(rows[0]), r), ZN_OK);
    char path[4096] = "/v2";
    for (int i = 0; i < 300; i++)
        strcat(path, "/a"); /* test-only; sizes known */
    strcat(path, "/tags/list");
    case_t c = {"GET", path, NULL, 0, {0}, ZN_ROUTE_NO_PATH};
    check(r, &c);
    zn_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_first_row_wins),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_deep_path_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
