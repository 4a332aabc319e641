/* Shared helpers for the config module's unit tests: parse JSON text or a file with a
 * warning collector and compare exact messages. */
#ifndef ZN_TEST_CONFIG_HELPERS_H
#define ZN_TEST_CONFIG_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"

#define SEC 1000000000ull
#define HOUR (3600 * SEC)
#define ERRLEN 512
#define EXAMPLES ZN_TEST_DATA "/../../examples/"

typedef struct warns {
    int n;
    char msg[16][ERRLEN];
} warns_t;

static inline void on_warn(void *data, const char *msg)
{
    warns_t *w = data;
    if (w->n < 16)
        snprintf(w->msg[w->n], ERRLEN, "%s", msg);
    w->n++;
}

static inline zn_err_t parse(const char *json, zn_config_t *cfg, warns_t *w, char *err)
{
    memset(w, 0, sizeof(*w));
    return zn_config_parse("config.json", json, strlen(json), cfg, on_warn, w, err, ERRLEN);
}

/* json must parse; the caller releases cfg. */
static inline void parse_ok(const char *json, zn_config_t *cfg, warns_t *w)
{
    char err[ERRLEN];
    if (parse(json, cfg, w, err) != ZN_OK)
        fail_msg("unexpected error: %s", err);
}

static inline void expect_error(const char *json, const char *want)
{
    zn_config_t cfg;
    warns_t w;
    char err[ERRLEN];
    assert_int_equal(parse(json, &cfg, &w, err), ZN_EINVAL);
    assert_string_equal(err, want);
    assert_null(cfg.path); /* released */
}

static inline void expect_one_warning(const char *json, const char *want)
{
    zn_config_t cfg;
    warns_t w;
    parse_ok(json, &cfg, &w);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.msg[0], want);
    zn_config_release(&cfg);
}

#define ROOT "\"storage\":{\"rootDirectory\":\"/r\"}"

static inline void load_ok(const char *path, zn_config_t *c, warns_t *w)
{
    char err[ERRLEN];
    memset(w, 0, sizeof(*w));
    if (zn_config_load(path, c, on_warn, w, err, sizeof(err)) != ZN_OK)
        fail_msg("%s: unexpected error: %s", path, err);
    assert_string_equal(c->path, path);
}

#endif
