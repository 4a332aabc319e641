/*
 * test/fuzz/replay.c - a main for the fuzz targets in the ordinary (gcc) builds: feeds every
 * regular file of the directories (or files) on the command line to LLVMFuzzerTestOneInput,
 * once each, as libFuzzer does when given a corpus without -runs. A target reports a broken
 * invariant by aborting, and the sanitizers of the ASan build report the rest, so success is
 * exit status 0. An empty or missing corpus is an error: a replay that runs nothing proves nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define REPLAY_FILE_MAX (1 << 20)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_FILE_MAX);
    size_t n = buf != NULL ? fread(buf, 1, REPLAY_FILE_MAX, f) : 0;
    int bad = buf == NULL || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: unreadable or over %d bytes\n", path, REPLAY_FILE_MAX);
        free(buf);
        return -1;
    }
    /* an exact-size copy, so ASan sees a read past the input as libFuzzer would */
    uint8_t *in = malloc(n != 0 ? n : 1);
    if (in == NULL)
        abort();
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

int main(int argc, char **argv)
{
    size_t runs = 0;
    int failed = 0;

    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(sb.st_mode)) {
            failed |= run_file(argv[i]) != 0;
            runs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[i], &names, NULL, alphasort);
        if (n < 0) {
            fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        for (int j = 0; j < n; j++) {
            char path[4096];
            if (names[j]->d_name[0] != '.' &&
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name) < (int)sizeof(path) &&
                stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
                failed |= run_file(path) != 0;
                runs++;
            }
            free(names[j]);
        }
        free(names);
    }
    printf("replayed %zu inputs\n", runs);
    if (runs == 0) {
        fprintf(stderr, "no inputs to replay\n");
        return 1;
    }
    return failed;
}
