/* Unit tests for server/router.c: literal, single and multi-segment params matched from the
 * right, method handling, precedence and malformed patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/api.h"
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
    zn_reqctx_t ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.nparams = -1;
    zn_route_result_t res = zn_router_match(r, zn_slice(c->method, strlen(c->method)), zn_slice(c->path, strlen(c->path)), &ctx);
    const zn_route_def_t *def = ctx.def;
    void *app = ctx.app;
    const zn_slice_t *params = ctx.params;
    int np = ctx.nparams;
    if (res != c->res)
        fail_msg("%s %s: result %d, want %d", c->method, c->path, res, c->res);
    if (res != ZN_ROUTE_FOUND)
        return;
    assert_string_equal(def->name, c->route);
    assert_string_equal(ctx.route, c->route);
    /* the repository travels with the match: the row's repo param, or nothing */
    if (def->repo_param >= 0) {
        assert_ptr_equal(ctx.repo.p, params[def->repo_param].p);
        assert_int_equal(ctx.repo.n, params[def->repo_param].n);
    } else {
        assert_null(ctx.repo.p);
    }
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

/* The real OCI rows, with repository names made of the spec's own path words. Each path is
 * matched against the table in its order and reversed: the same answer both ways means no
 * other row could have claimed the path, i.e. the match does not depend on row order. */
static void test_api_rows_tricky_names(void **state)
{
    size_t n;
    const zn_route_def_t *api = zn_api_routes(&n);
    zn_route_def_t rev[32];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        rev[i] = api[n - 1 - i];
    zn_router_t *fwd = zn_router_new(), *bwd = zn_router_new();
    assert_int_equal(zn_router_add(fwd, api, n, fwd), ZN_OK);
    assert_int_equal(zn_router_add(bwd, rev, n, bwd), ZN_OK);
#define D "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define U "0123abcd-0123-4567-89ab-0123456789ab"
    static const case_t cases[] = {
        {"POST", "/v2/bench/blobs/blobs/uploads/", "upload_start", 1, {"bench/blobs"}, ZN_ROUTE_FOUND},
        {"POST", "/v2/blobs/uploads/blobs/uploads/", "upload_start", 1, {"blobs/uploads"}, ZN_ROUTE_FOUND},
        {"POST", "/v2/x/blobs/uploads/blobs/uploads/", "upload_start", 1, {"x/blobs/uploads"}, ZN_ROUTE_FOUND},
        {"POST", "/v2/blobs/blobs/uploads/", "upload_start", 1, {"blobs"}, ZN_ROUTE_FOUND},
        /* session URL vs blob URL: the segment before the last decides */
        {"GET", "/v2/a/blobs/uploads/" U, "upload_status", 2, {"a", U}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/blobs/uploads/blobs/" D, "blob_get", 2, {"a/blobs/uploads", D}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/blobs/blobs/" D, "blob_get", 2, {"a/blobs", D}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/blobs/uploads", "blob_get", 2, {"a", "uploads"}, ZN_ROUTE_FOUND}, /* bad digest: 400 */
        {"HEAD", "/v2/a/blobs/blobs/" D, "blob_head", 2, {"a/blobs", D}, ZN_ROUTE_FOUND},
        {"DELETE", "/v2/a/blobs/blobs/" D, "blob_delete", 2, {"a/blobs", D}, ZN_ROUTE_FOUND},
        {"DELETE", "/v2/a/blobs/blobs/uploads/" U, "upload_delete", 2, {"a/blobs", U}, ZN_ROUTE_FOUND},
        {"PATCH", "/v2/x/blobs/uploads/blobs/uploads/" U, "upload_patch", 2, {"x/blobs/uploads", U}, ZN_ROUTE_FOUND},
        {"PUT", "/v2/x/blobs/uploads/blobs/uploads/" U, "upload_put", 2, {"x/blobs/uploads", U}, ZN_ROUTE_FOUND},
        {"GET", "/v2/team/manifests/app/manifests/latest", "manifest_get", 2, {"team/manifests/app", "latest"},
         ZN_ROUTE_FOUND},
        {"PUT", "/v2/team/manifests/app/manifests/" D, "manifest_put", 2, {"team/manifests/app", D}, ZN_ROUTE_FOUND},
        {"DELETE", "/v2/m/manifests/manifests/v1", "manifest_delete", 2, {"m/manifests", "v1"}, ZN_ROUTE_FOUND},
        /* a manifest reference that is itself a path word */
        {"GET", "/v2/a/manifests/blobs", "manifest_get", 2, {"a", "blobs"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/manifests/list", "manifest_get", 2, {"a", "list"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/t/tags/list/tags/list", "tags_list", 1, {"t/tags/list"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/tags/list/tags/list", "tags_list", 1, {"tags/list"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/m/manifests/tags/list", "tags_list", 1, {"m/manifests"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/referrers/referrers/" D, "referrers", 2, {"a/referrers", D}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a/referrers/blobs/" D, "blob_get", 2, {"a/referrers", D}, ZN_ROUTE_FOUND},
        {"GET", "/v2/a__b/c--d/tags/list", "tags_list", 1, {"a__b/c--d"}, ZN_ROUTE_FOUND},
        {"GET", "/v2/_catalog", "catalog", 0, {0}, ZN_ROUTE_FOUND},
        /* nothing but the suffix: no name */
        {"GET", "/v2/blobs/" D, NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"POST", "/v2/blobs/uploads/", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"GET", "/v2/tags/list", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        /* a trailing slash is not a name's: the suffix no longer matches */
        {"GET", "/v2/a/tags/list/", NULL, 0, {0}, ZN_ROUTE_NO_PATH},
        {"GET", "/v2/a/blobs/uploads/", NULL, 0, {0}, ZN_ROUTE_NO_METHOD},
        {"PATCH", "/v2/a/blobs/uploads/", NULL, 0, {0}, ZN_ROUTE_NO_METHOD},
    };
#undef D
#undef U
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check(fwd, &cases[i]);
        check(bwd, &cases[i]);
    }
    zn_router_free(fwd);
    zn_router_free(bwd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_first_row_wins),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_deep_path_rejected),
        cmocka_unit_test(test_api_rows_tricky_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
