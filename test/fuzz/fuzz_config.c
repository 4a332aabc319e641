/*
 * test/fuzz/fuzz_config.c - config.json (config/config.c zn_config_parse, the in-memory half
 * of zn_config_load, with every key walked by config/walk.c) and Go durations. A rejection
 * comes with a NUL-terminated message that fits its buffer; an accepted config releases
 * cleanly (ASan checks every owned string is freed once).
 */
#include "config/config.h"
#include "fuzz.h"

static void on_warn(void *data, const char *msg)
{
    FZ_CHECK(msg != NULL);
    ++*(size_t *)data;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_copy(data, size);
    zn_config_t cfg;
    char err[200];
    size_t warns = 0;
    memset(err, 'X', sizeof(err));
    zn_err_t rc = zn_config_parse("fuzz.json", text, size, &cfg, on_warn, &warns, err, sizeof(err));
    if (rc == ZN_OK) {
        FZ_CHECK(cfg.storage.root_directory != NULL);
        zn_config_release(&cfg);
    } else {
        FZ_CHECK(rc == ZN_EINVAL || rc == ZN_ETOOBIG);
        FZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }
    zn_config_release(&cfg); /* documented safe on a released cfg */
    free(text);

    /* the same bytes as a duration, as a config value would hold it */
    char *s = fz_cstr(data, size);
    uint64_t ns = 12345;
    rc = zn_config_parse_duration(s, &ns);
    FZ_CHECK(rc == ZN_OK || rc == ZN_EINVAL || rc == ZN_ERANGE);
    if (rc != ZN_OK)
        FZ_CHECK(ns == 12345);
    else
        FZ_CHECK(ns <= (uint64_t)INT64_MAX);
    free(s);
    return 0;
}
