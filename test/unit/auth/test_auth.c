/* Unit tests for auth/auth.c: authentication end to end over a real htpasswd file, the
 * cache in front of bcrypt, reloads, and what reaches the log. Includes auth.c to reach
 * the struct (to shorten the reload interval instead of sleeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include "auth_test.h"
#include "../../../auth/auth.c"

static char DIR_[64], PATH[128];

static void write_users(const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    t_write(PATH, text);
}

static zn_auth_t *new_auth(zn_config_t *cfg)
{
    zn_auth_t *a;
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    cfg->http.auth.htpasswd_path = PATH;
    if (zn_auth_new(cfg, &a, err, sizeof(err)) != ZN_OK)
        fail_msg("%s", err);
    a->htpasswd.check_interval_ns = 0; /* re-stat on every request */
    a->htpasswd.next_check_ns = 0;
    return a;
}

static void fill(zn_auth_creds_t *c, const char *user, const char *pass)
{
    memset(c, 0, sizeof(*c));
    c->user_len = strlen(user);
    c->pass_len = strlen(pass);
    memcpy(c->user, user, c->user_len);
    memcpy(c->pass, pass, c->pass_len);
}

static zn_auth_status_t login(zn_auth_t *a, const char *user, const char *pass, bool may_block)
{
    zn_auth_creds_t c;
    fill(&c, user, pass);
    zn_auth_status_t st = zn_auth_check(a, &c, may_block);
    zn_auth_creds_wipe(&c);
    return st;
}

static zn_auth_status_t login_verify(zn_auth_t *a, const char *user, const char *pass)
{
    zn_auth_creds_t c;
    fill(&c, user, pass);
    zn_auth_status_t st = zn_auth_verify(a, &c);
    zn_auth_creds_wipe(&c);
    return st;
}

static int setup(void **state)
{
    t_tmpdir(DIR_);
    snprintf(PATH, sizeof(PATH), "%s/htpasswd", DIR_);
    return 0;
}

static int teardown(void **state)
{
    unlink(PATH);
    rmdir(DIR_);
    return 0;
}

static void test_cache_in_front_of_bcrypt(void **state)
{
    char h1[128], h2[256], h3[256];
    zn_config_t cfg;
    write_users("alice:%s\nbob:%s\ncarol:%s\n", t_bcrypt("pw-a", h1, sizeof(h1)),
                t_argon2id("pw-b", h2, sizeof(h2)), t_crypt("$5$", 1000, "pw-c", h3, sizeof(h3)));
    zn_auth_t *a = new_auth(&cfg);

    /* not cached yet: a caller that must not block is told to verify elsewhere */
    assert_int_equal(login(a, "alice", "pw-a", false), ZN_AUTH_PENDING);
    assert_int_equal(login_verify(a, "alice", "pw-a"), ZN_AUTH_OK);
    /* now a hit, no hash computed */
    assert_int_equal(login(a, "alice", "pw-a", false), ZN_AUTH_OK);
    assert_int_equal(zn_auth_cache_count(&a->cache), 1);
    /* every scheme goes through the same path */
    assert_int_equal(login(a, "bob", "pw-b", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "bob", "pw-b", false), ZN_AUTH_OK);
    assert_int_equal(login(a, "carol", "pw-c", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "carol", "pw-c", false), ZN_AUTH_OK);
    /* failures are never cached: still pending, still failing */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(login(a, "alice", "nope", true), ZN_AUTH_FAILED);
        assert_int_equal(login(a, "alice", "nope", false), ZN_AUTH_PENDING);
    }
    assert_int_equal(zn_auth_cache_count(&a->cache), 3);
    /* unknown users fail, also through the slow path */
    assert_int_equal(login(a, "mallory", "pw-a", false), ZN_AUTH_PENDING);
    assert_int_equal(login(a, "mallory", "pw-a", true), ZN_AUTH_FAILED);
    /* a cached user with the wrong password is not a hit */
    assert_int_equal(login(a, "alice", "pw-A", false), ZN_AUTH_PENDING);
    zn_auth_free(a);
}

static void test_reload_drops_and_adds(void **state)
{
    char h1[128], h2[128], h3[128];
    zn_config_t cfg;
    t_bcrypt("pw-a", h1, sizeof(h1));
    t_bcrypt("pw-b", h2, sizeof(h2));
    t_bcrypt("new-a", h3, sizeof(h3));
    write_users("alice:%s\nbob:%s\n", h1, h2);
    zn_auth_t *a = new_auth(&cfg);
    assert_int_equal(login(a, "alice", "pw-a", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "bob", "pw-b", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "alice", "pw-a", false), ZN_AUTH_OK);

    /* bob removed, alice's password changed, carol added: effective on the next request */
    write_users("alice:%s\ncarol:%s\n", h3, h2);
    assert_int_equal(login(a, "bob", "pw-b", false), ZN_AUTH_PENDING);
    assert_int_equal(login(a, "bob", "pw-b", true), ZN_AUTH_FAILED);
    assert_int_equal(login(a, "alice", "pw-a", true), ZN_AUTH_FAILED);
    assert_int_equal(login(a, "alice", "new-a", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "carol", "pw-b", true), ZN_AUTH_OK);
    zn_auth_free(a);
}

static void test_stale_insert_after_reload(void **state)
{
    /* A verification that raced with a reload must not resurrect the old password:
     * the entry carries the generation and hash fingerprint it was verified against. */
    char h1[128], h2[128];
    uint8_t fp[ZN_AUTH_FP_LEN], mac[32];
    uint64_t gen;
    char hash[ZN_AUTH_HASH_MAX + 1];
    zn_config_t cfg;
    write_users("alice:%s\n", t_bcrypt("old", h1, sizeof(h1)));
    zn_auth_t *a = new_auth(&cfg);
    assert_int_equal(zn_auth_htpasswd_lookup(&a->htpasswd, "alice", hash, fp, &gen), ZN_OK);
    write_users("alice:%s\n", t_bcrypt("new", h2, sizeof(h2)));
    assert_int_equal(login(a, "alice", "new", true), ZN_AUTH_OK); /* reloads */
    /* the late insert of the old verification */
    zn_auth_cache_mac(&a->cache, "alice", 5, "old", 3, mac);
    zn_auth_cache_insert(&a->cache, mac, fp, gen, zn_now_mono_ns());
    assert_int_equal(login(a, "alice", "old", false), ZN_AUTH_PENDING);
    assert_int_equal(login(a, "alice", "old", true), ZN_AUTH_FAILED);
    zn_auth_free(a);
}

static void test_unknown_user_costs_like_wrong_password(void **state)
{
    char h[128];
    zn_config_t cfg;
    write_users("alice:%s\n", t_crypt("$2y$", 9, "pw", h, sizeof(h)));
    zn_auth_t *a = new_auth(&cfg);
    zn_auth_stats_t s0, s1, s2;
    zn_auth_stats(a, &s0);
    assert_int_equal(login_verify(a, "alice", "wrong"), ZN_AUTH_FAILED);
    zn_auth_stats(a, &s1);
    assert_int_equal(login_verify(a, "nobody", "wrong"), ZN_AUTH_FAILED);
    zn_auth_stats(a, &s2);
    /* both pay one bcrypt of the same cost (the decoy is a hash from the file), counted
     * rather than timed: a shared machine makes timings of one hash meaningless */
    assert_int_equal(s1.hashed - s0.hashed, 1);
    assert_int_equal(s2.hashed - s1.hashed, 1);
    assert_int_equal(s2.refused - s0.refused, 2);
    assert_int_equal(s2.verified, 0);
    zn_auth_free(a);
}

static void test_nothing_secret_in_log(void **state)
{
    char h[128];
    zn_config_t cfg;
    int fd = t_log_begin();
    write_users("alice:%s\nbroken line\n", t_bcrypt("Sup3rSecret", h, sizeof(h)));
    zn_auth_t *a = new_auth(&cfg);
    assert_int_equal(login(a, "alice", "Sup3rSecret", true), ZN_AUTH_OK);
    assert_int_equal(login(a, "alice", "WrongSecret", true), ZN_AUTH_FAILED);
    write_users("alice:%s\n", h);
    assert_int_equal(login(a, "alice", "Sup3rSecret", true), ZN_AUTH_OK);
    zn_auth_free(a);
    char *log = t_log_end(fd);
    assert_non_null(strstr(log, "htpasswd reloaded"));
    assert_non_null(strstr(log, "\"line\":2"));
    assert_null(strstr(log, "Sup3rSecret"));
    assert_null(strstr(log, "WrongSecret"));
    assert_null(strstr(log, h + 7)); /* salt+hash part of the bcrypt string */
    free(log);
}

typedef struct {
    zn_auth_t *a;
    int ok, failed;
} racer_t;

static void *racer(void *arg)
{
    racer_t *r = arg;
    for (int i = 0; i < 300; i++) {
        zn_auth_status_t st = login(r->a, i % 2 ? "alice" : "bob", "pw", true);
        if (st == ZN_AUTH_OK)
            r->ok++;
        else
            r->failed++;
    }
    return NULL;
}

static void test_threads_during_reloads(void **state)
{
    char h[128];
    zn_config_t cfg;
    t_bcrypt("pw", h, sizeof(h));
    write_users("alice:%s\nbob:%s\n", h, h);
    zn_auth_t *a = new_auth(&cfg);
    pthread_t t[3];
    racer_t r[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (racer_t){a, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, racer, &r[i]), 0);
    }
    for (int i = 0; i < 30; i++) {
        write_users(i % 2 ? "alice:%s\nbob:%s\n" : "alice:%s\n", h, h);
        usleep(2000);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].ok + r[i].failed, 300);
        assert_true(r[i].ok >= 150); /* alice is always there */
    }
    zn_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_in_front_of_bcrypt),
        cmocka_unit_test(test_reload_drops_and_adds),
        cmocka_unit_test(test_stale_insert_after_reload),
        cmocka_unit_test(test_unknown_user_costs_like_wrong_password),
        cmocka_unit_test(test_nothing_secret_in_log),
        cmocka_unit_test(test_threads_during_reloads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
