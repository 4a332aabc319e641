/* Unit tests for auth/policy.c and the authorization half of auth/auth.c (zot.md §3). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_test.h"

#define R ZN_ACT_READ
#define C ZN_ACT_CREATE
#define U ZN_ACT_UPDATE
#define D ZN_ACT_DELETE
#define ALL (R | C | U | D)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static char HTPASSWD[128];
static char DIR_[64];

static int setup(void **state)
{
    char h[128], text[512];
    t_tmpdir(DIR_);
    snprintf(HTPASSWD, sizeof(HTPASSWD), "%s/htpasswd", DIR_);
    t_bcrypt("pw", h, sizeof(h));
    snprintf(text, sizeof(text), "alice:%s\n", h);
    t_write(HTPASSWD, text);
    return 0;
}

static int teardown(void **state)
{
    unlink(HTPASSWD);
    rmdir(DIR_);
    return 0;
}

/* ---- a config built by hand (the strings are borrowed literals) ---- */

static char *u_alice[] = {"alice"}, *u_bob[] = {"bob"}, *u_root[] = {"root"}, *u_star[] = {"*"};
static char *g_devs[] = {"devs"}, *g_admins[] = {"admins"};
static char *devs_users[] = {"carol", "dave2"}, *admins_users[] = {"erin"};

static zn_config_group_t groups[] = {
    {"devs", devs_users, N(devs_users)},
    {"admins", admins_users, N(admins_users)},
};

static zn_config_policy_t p_alice_c[] = {{u_alice, 1, NULL, 0, C}};
static zn_config_policy_t p_alice_r[] = {{u_alice, 1, NULL, 0, R}};
static zn_config_policy_t p_devs_c[] = {{NULL, 0, g_devs, 1, C | U}, {u_bob, 1, NULL, 0, D}};
static zn_config_policy_t p_star[] = {{u_star, 1, NULL, 0, ALL}};

static zn_config_repo_access_t repos[] = {
    /* pattern, policies, n, default, anonymous, has_anonymous */
    {"**", NULL, 0, R, 0, false},
    {"team/**", p_alice_c, 1, 0, 0, false},
    {"team/app", p_alice_r, 1, 0, 0, false},
    {"a/*", NULL, 0, R, 0, false},
    {"*/b", NULL, 0, D, 0, false},
    {"**/x", NULL, 0, C, 0, false},
    {"pub/**", NULL, 0, R, R, true},
    {"open/**", NULL, 0, 0, R | C, true},
    {"dev/**", p_devs_c, N(p_devs_c), 0, 0, false},
    {"star/**", p_star, 1, 0, 0, false},
};

static zn_config_access_t access_ = {
    groups, N(groups), repos, N(repos),
    {u_root, 1, g_admins, 1, R | D}, true,
    {u_bob, 1, NULL, 0, R},
};

static void make(zn_auth_t **a, zn_config_t *cfg, bool auth, zn_config_access_t *ac)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    cfg->http.auth.htpasswd_path = auth ? HTPASSWD : NULL;
    cfg->http.access = ac;
    cfg->http.realm = "";
    if (zn_auth_new(cfg, a, err, sizeof(err)) != ZN_OK)
        fail_msg("zn_auth_new: %s", err);
}

static void test_longest_pattern_decides_alone(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    // (line comments: the patterns hold slash-star) "**" gives every user read, but
    // "team/**" wins for team/x and grants only create

    assert_int_equal(zn_auth_repo_actions(a, "alice", "other"), R);
    assert_int_equal(zn_auth_repo_actions(a, "alice", "team/x"), C);
    assert_int_equal(zn_auth_repo_actions(a, "bob", "team/x"), 0);
    // "team/app" (8) beats "team/**" (7)
    assert_int_equal(zn_auth_repo_actions(a, "alice", "team/app"), R);
    // team/app2 is not team/app: it falls to "team/**", no read leaks
    assert_int_equal(zn_auth_repo_actions(a, "alice", "team/app2"), C);
    assert_false(zn_auth_can(a, "alice", "team/app2", R));
    /* pattern 5 (4 characters) beats pattern 4 (3 characters) on a/x */
    assert_int_equal(zn_auth_repo_actions(a, "bob", "a/x"), C);
    /* tie between patterns 4 and 5 (3 characters each) on a/b: the strcmp-smaller one,
     * "*" then "/b", wins every time */
    for (int i = 0; i < 10; i++)
        assert_int_equal(zn_auth_repo_actions(a, "bob", "a/b"), D);
    assert_int_equal(zn_auth_repo_actions(a, "bob", "a/c"), R);
    zn_auth_free(a);
}

static void test_default_vs_anonymous(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    assert_int_equal(zn_auth_repo_actions(a, NULL, "pub/img"), R);
    assert_int_equal(zn_auth_repo_actions(a, "bob", "pub/img"), R);
    /* anonymousPolicy is for anonymous only: users never fall back to it */
    assert_int_equal(zn_auth_repo_actions(a, NULL, "open/img"), R | C);
    assert_int_equal(zn_auth_repo_actions(a, "bob", "open/img"), 0);
    /* defaultPolicy is for users only */
    assert_int_equal(zn_auth_repo_actions(a, NULL, "other"), 0);
    assert_int_equal(zn_auth_repo_actions(a, NULL, "team/x"), 0);
    assert_true(zn_auth_anonymous_allowed(a));
    zn_auth_free(a);
}

static void test_users_groups_exact_names(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    assert_int_equal(zn_auth_repo_actions(a, "carol", "dev/x"), C | U);
    assert_int_equal(zn_auth_repo_actions(a, "dave2", "dev/x"), C | U);
    assert_int_equal(zn_auth_repo_actions(a, "dave", "dev/x"), 0);
    assert_int_equal(zn_auth_repo_actions(a, "bob", "dev/x"), D);
    /* names compare exactly: no case folding, no prefix, no wildcard user */
    assert_int_equal(zn_auth_repo_actions(a, "Carol", "dev/x"), 0);
    assert_int_equal(zn_auth_repo_actions(a, "alice", "star/x"), 0);
    assert_int_equal(zn_auth_repo_actions(a, "*", "star/x"), ALL);
    /* a group name is not a user name */
    assert_int_equal(zn_auth_repo_actions(a, "devs", "dev/x"), 0);
    zn_auth_free(a);
}

static void test_admin(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    /* adminPolicy adds its actions everywhere, also where no pattern would match */
    assert_int_equal(zn_auth_repo_actions(a, "root", "team/x"), R | D);
    assert_int_equal(zn_auth_repo_actions(a, "root", "open/x"), R | D);
    assert_int_equal(zn_auth_repo_actions(a, "erin", "dev/x"), R | D);
    assert_false(zn_auth_can(a, "root", "team/x", C));
    assert_true(zn_auth_is_admin(a, "root"));
    assert_true(zn_auth_is_admin(a, "erin"));
    assert_false(zn_auth_is_admin(a, "alice"));
    assert_false(zn_auth_is_admin(a, NULL));
    assert_int_equal(zn_auth_authorize_admin(a, "root"), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize_admin(a, "alice"), ZN_AUTHZ_DENY);
    assert_int_equal(zn_auth_authorize_admin(a, NULL), ZN_AUTHZ_CHALLENGE);
    zn_auth_free(a);

    /* admin whatever adminPolicy.actions says (even none) */
    zn_config_access_t ac = access_;
    ac.admin.actions = 0;
    make(&a, &cfg, true, &ac);
    assert_true(zn_auth_is_admin(a, "root"));
    assert_int_equal(zn_auth_repo_actions(a, "root", "team/x"), 0);
    assert_int_equal(zn_auth_authorize_admin(a, "root"), ZN_AUTHZ_ALLOW);
    zn_auth_free(a);
}

static void test_decisions_and_catalog(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    assert_int_equal(zn_auth_authorize(a, "alice", "team/x", C), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize(a, "alice", "team/x", R), ZN_AUTHZ_DENY);
    assert_int_equal(zn_auth_authorize(a, NULL, "team/x", R), ZN_AUTHZ_CHALLENGE);
    assert_int_equal(zn_auth_authorize(a, NULL, "pub/x", R), ZN_AUTHZ_ALLOW);
    /* several bits: all of them needed */
    assert_int_equal(zn_auth_authorize(a, NULL, "open/x", R | C), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize(a, NULL, "open/x", R | D), ZN_AUTHZ_CHALLENGE);
    /* catalog */
    assert_true(zn_auth_can_list(a, "alice", "team/app"));
    assert_false(zn_auth_can_list(a, "alice", "team/app2"));
    assert_false(zn_auth_can_list(a, NULL, "team/app"));
    assert_true(zn_auth_can_list(a, NULL, "pub/a"));
    assert_true(zn_auth_can_list(a, "root", "open/x"));
    zn_config_access_t ac = access_;
    ac.admin.actions = 0; /* admins see all even without read */
    zn_auth_free(a);
    make(&a, &cfg, true, &ac);
    assert_true(zn_auth_can_list(a, "root", "team/x"));
    zn_auth_free(a);
}

static void test_no_access_control(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    /* authentication, no accessControl: users do anything and are admins; anonymous nothing */
    make(&a, &cfg, true, NULL);
    assert_true(zn_auth_enabled(a));
    assert_false(zn_auth_anonymous_allowed(a));
    assert_int_equal(zn_auth_repo_actions(a, "alice", "x"), ALL);
    assert_int_equal(zn_auth_repo_actions(a, NULL, "x"), 0);
    assert_true(zn_auth_is_admin(a, "alice"));
    assert_int_equal(zn_auth_authorize_admin(a, "alice"), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize_admin(a, NULL), ZN_AUTHZ_CHALLENGE);
    assert_int_equal(zn_auth_authorize_metrics(a, "alice"), ZN_AUTHZ_ALLOW);
    zn_auth_free(a);
    /* no authentication: everyone, everything, pprof open */
    make(&a, &cfg, false, NULL);
    assert_false(zn_auth_enabled(a));
    assert_true(zn_auth_anonymous_allowed(a));
    assert_int_equal(zn_auth_repo_actions(a, NULL, "x"), ALL);
    assert_true(zn_auth_is_admin(a, NULL));
    assert_int_equal(zn_auth_authorize_admin(a, NULL), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize_metrics(a, NULL), ZN_AUTHZ_ALLOW);
    zn_auth_free(a);
}

static void test_anonymous_only_without_auth(void **state)
{
    /* zot allows accessControl without authentication when only anonymousPolicy is used */
    static zn_config_repo_access_t anon_repos[] = {{"pub/**", NULL, 0, 0, R, true}};
    zn_config_access_t ac = {NULL, 0, anon_repos, 1, {0}, false, {0}};
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, false, &ac);
    assert_true(zn_auth_anonymous_allowed(a));
    assert_true(zn_auth_can(a, NULL, "pub/x", R));
    assert_int_equal(zn_auth_authorize(a, NULL, "priv/x", R), ZN_AUTHZ_CHALLENGE);
    assert_false(zn_auth_can_list(a, NULL, "priv/x"));
    /* pprof stays open without authentication */
    assert_int_equal(zn_auth_authorize_admin(a, NULL), ZN_AUTHZ_ALLOW);
    zn_auth_free(a);
}

static void test_no_anonymous_policy(void **state)
{
    /* an empty anonymousPolicy does not let anonymous requests in (zot: len > 0) */
    static zn_config_repo_access_t r[] = {{"**", NULL, 0, R, 0, true}};
    zn_config_access_t ac = {NULL, 0, r, 1, {0}, false, {0}};
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &ac);
    assert_false(zn_auth_anonymous_allowed(a));
    zn_auth_free(a);
}

static void test_metrics(void **state)
{
    zn_auth_t *a;
    zn_config_t cfg;
    make(&a, &cfg, true, &access_);
    assert_int_equal(zn_auth_authorize_metrics(a, "bob"), ZN_AUTHZ_ALLOW);
    assert_int_equal(zn_auth_authorize_metrics(a, "root"), ZN_AUTHZ_DENY); /* admins get nothing extra */
    assert_int_equal(zn_auth_authorize_metrics(a, NULL), ZN_AUTHZ_ALLOW);  /* metrics anonymousPolicy: read */
    zn_auth_free(a);
    zn_config_access_t ac = access_;
    ac.metrics.actions = 0;
    make(&a, &cfg, true, &ac);
    assert_int_equal(zn_auth_authorize_metrics(a, NULL), ZN_AUTHZ_CHALLENGE);
    zn_auth_free(a);
}

static void test_bad_glob_and_realm(void **state)
{
    static zn_config_repo_access_t r[] = {{"ok/**", NULL, 0, R, 0, false}, {"a/[", NULL, 0, R, 0, false}};
    zn_config_access_t ac = {NULL, 0, r, 2, {0}, false, {0}};
    zn_config_t cfg;
    zn_auth_t *a = NULL;
    char err[256];
    memset(&cfg, 0, sizeof(cfg));
    cfg.http.access = &ac;
    assert_int_equal(zn_auth_new(&cfg, &a, err, sizeof(err)), ZN_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "a/["));

    make(&a, &cfg, true, NULL);
    assert_string_equal(zn_auth_realm(a), "");
    zn_auth_free(a);
    memset(&cfg, 0, sizeof(cfg));
    cfg.http.realm = "my \"zot\" \\ reg";
    cfg.http.auth.fail_delay = 2;
    assert_int_equal(zn_auth_new(&cfg, &a, err, sizeof(err)), ZN_OK);
    assert_string_equal(zn_auth_realm(a), "my \"zot\" \\ reg");
    assert_int_equal(zn_auth_fail_delay_ms(a), 2000);
    zn_auth_free(a);
    /* unreadable htpasswd: an error, as zot refuses to start */
    memset(&cfg, 0, sizeof(cfg));
    cfg.http.auth.htpasswd_path = "/nonexistent/htpasswd";
    assert_int_equal(zn_auth_new(&cfg, &a, err, sizeof(err)), ZN_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/htpasswd"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_longest_pattern_decides_alone),
        cmocka_unit_test(test_default_vs_anonymous),
        cmocka_unit_test(test_users_groups_exact_names),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_decisions_and_catalog),
        cmocka_unit_test(test_no_access_control),
        cmocka_unit_test(test_anonymous_only_without_auth),
        cmocka_unit_test(test_no_anonymous_policy),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_bad_glob_and_realm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
