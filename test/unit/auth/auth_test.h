/*
 * test/unit/auth/auth_test.h - helpers the auth unit tests share: hashes made on the spot
 * (bcrypt at cost 4 to keep tests fast, SHA-crypt, argon2id), temp files, and capturing
 * the JSON log to check what was (and was not) written.
 */
#ifndef ZN_TEST_AUTH_H
#define ZN_TEST_AUTH_H

#include <argon2.h>
#include <crypt.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_int.h"

/* crypt() hash of pass with the given prefix ("$2y$", "$2b$", "$2a$", "$5$", "$6$"), in a
 * static buffer per call site's responsibility: copy it if you need two. */
static inline const char *t_crypt(const char *prefix, unsigned long count, const char *pass, char *out, size_t outlen)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    if (crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof(setting)) == NULL)
        abort();
    const char *h = crypt_r(pass, setting, cd);
    if (h == NULL || h[0] == '*' || strlen(h) >= outlen)
        abort();
    memcpy(out, h, strlen(h) + 1);
    free(cd);
    return out;
}

static inline const char *t_bcrypt(const char *pass, char *out, size_t outlen)
{
    return t_crypt("$2y$", 4, pass, out, outlen);
}

static inline const char *t_argon2id(const char *pass, char *out, size_t outlen)
{
    const uint8_t salt[16] = "zinc-test-salt!";
    if (argon2id_hash_encoded(1, 256, 1, pass, strlen(pass), salt, sizeof(salt), 32, out, outlen) != ARGON2_OK)
        abort();
    return out;
}

/* A fresh temp directory path (mkdtemp) in dir[64]. */
static inline void t_tmpdir(char *dir)
{
    snprintf(dir, 64, "/tmp/zn-auth-test-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
}

static inline void t_write(const char *path, const char *text)
{
    /* write a temp file and rename, as editors and htpasswd(1) do: a new inode every time */
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        abort();
}

/* Log capture: everything zn_log writes goes to a temp file until t_log_end(), which
 * returns its contents (caller frees). */
static inline int t_log_begin(void)
{
    char path[] = "/tmp/zn-auth-log-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    unlink(path);
    zn_log_set_fd(fd);
    zn_log_set_level(ZN_LOG_DEBUG);
    return fd;
}

static inline char *t_log_end(int fd)
{
    zn_log_set_fd(2);
    off_t n = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, (size_t)n + 1);
    if (pread(fd, buf, (size_t)n, 0) != n)
        abort();
    close(fd);
    return buf;
}

#endif
