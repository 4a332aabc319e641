/*
 * test/fuzz/fuzz_htpasswd.c - htpasswd files (auth/htpasswd.c zn_auth_htpasswd_parse, the
 * in-memory half of loading http.auth.htpasswd.path). Bad lines are skipped, never fatal;
 * the table that comes back is sorted by user, unique, and every entry is a user and hash
 * taken from one line of the input.
 */
#include "auth/auth_int.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_copy(data, size);
    zn_auth_htpasswd_table_t t;
    memset(&t, 0, sizeof(t));
    zn_auth_htpasswd_parse("fuzz.htpasswd", text, size, &t);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    FZ_CHECK(t.n <= lines);
    for (size_t i = 0; i < t.n; i++) {
        const zn_auth_htpasswd_entry_t *e = &t.entries[i];
        FZ_CHECK(e->user != NULL && e->hash != NULL && e->line >= 1 && e->line <= lines);
        FZ_CHECK(e->user[0] != '\0' && strchr(e->user, ':') == NULL && strchr(e->user, '\n') == NULL);
        FZ_CHECK(strchr(e->hash, '\n') == NULL);
        if (i > 0)
            FZ_CHECK(strcmp(t.entries[i - 1].user, e->user) < 0);
    }
    zn_auth_htpasswd_table_release(&t);
    free(text);
    return 0;
}
