/*
 * server/main.c - zinc's command line: serve, verify, version, help.
 *
 * `zinc serve [config.json]` reads zot's config (or built-in defaults: 127.0.0.1:8080,
 * storage in ./data) and runs until SIGTERM/SIGINT. `zinc verify config.json` only checks
 * the file: exit 0, or 1 with "<file>: <key>: <problem>" on stderr. `zinc scrub
 * [config.json]` re-verifies the store offline or next to a running server (it only reads,
 * and moves corrupt blobs to <root>/.zinc/quarantine): one line per problem on stdout
 * ("<repo> <object>: <problem>"), a summary on stderr, exit 1 if any problem, 0 if clean.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "pprof/pprof.h"
#include "server/server.h"

static const char usage[] = "usage: zinc <command> [args]\n"
                            "\n"
                            "commands:\n"
                            "  serve [config.json]   run the registry (default: 127.0.0.1:8080, storage in ./data)\n"
                            "  verify config.json    check a configuration file and exit\n"
                            "  scrub [config.json]   re-hash every blob, check manifests and index.json; exit 1 on problems\n"
                            "  version               print the version\n"
                            "  probe URL             GET an http[s]:// URL, exit 0 on 2xx (health checks)\n"
                            "  probe --config FILE [PATH]\n"
                            "                        GET PATH (/livez) from the listener FILE configures\n"
                            "  help, --help          show this help\n";

static void print_warning(void *data, const char *msg)
{
    bool *to_log = data;
    if (*to_log)
        zn_log(ZN_LOG_WARN, msg);
    else
        fprintf(stderr, "warning: %s\n", msg);
}

static int load(const char *path, zn_config_t *cfg, bool to_log)
{
    char err[512];
    if (path == NULL) {
        zn_config_init_defaults(cfg);
        return 0;
    }
    if (zn_config_load(path, cfg, print_warning, &to_log, err, sizeof(err)) != ZN_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    zn_config_t cfg;
    if (argc != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (load(argv[0], &cfg, false) != 0)
        return 1;
    printf("%s: ok\n", argv[0]);
    zn_config_release(&cfg);
    return 0;
}

static void print_problem(void *data, const char *repo, const char *object, const char *problem)
{
    printf("%s %s: %s\n", repo, object, problem);
    fflush(stdout);
}

static int cmd_scrub(int argc, char **argv)
{
    zn_config_t cfg;
    zn_api_scrub_stats_t s;
    char err[512];
    int ret = 2;

    if (argc > 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (load(argc == 1 ? argv[0] : NULL, &cfg, false) != 0)
        return 2;
    zn_log_set_level(ZN_LOG_WARN);
    if (zn_api_scrub(&cfg, print_problem, NULL, &s, err, sizeof(err)) != ZN_OK) {
        fprintf(stderr, "zinc scrub: %s\n", err);
        goto done;
    }
    fprintf(stderr, "scrub: %llu repositories, %llu manifests, %llu blobs (%llu bytes), %llu problems\n",
            (unsigned long long)s.repos, (unsigned long long)s.manifests, (unsigned long long)s.blobs,
            (unsigned long long)s.bytes, (unsigned long long)s.problems);
    ret = s.problems != 0 ? 1 : 0;
done:
    zn_config_release(&cfg);
    return ret;
}

static bool open_log_output(const zn_config_t *cfg)
{
    zn_log_set_level(cfg->log.level);
    if (cfg->log.output == NULL)
        return true;
    int fd = open(cfg->log.output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1) {
        fprintf(stderr, "%s: log.output: cannot open %s: %s\n", cfg->path ? cfg->path : "config", cfg->log.output,
                strerror(errno));
        return false;
    }
    zn_log_set_fd(fd);
    return true;
}

static int cmd_serve(int argc, char **argv)
{
    zn_config_t cfg;
    char err[512];
    int ret = 1;
    zn_server_t *srv = NULL;

    if (argc > 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (load(argc == 1 ? argv[0] : NULL, &cfg, true) != 0)
        return 1;
    if (!open_log_output(&cfg))
        goto done;
    if (zn_pprof_init(&cfg) != ZN_OK)
        goto done;
    if (zn_server_new(&cfg, &srv, err, sizeof(err)) != ZN_OK) {
        zn_log(ZN_LOG_FATAL, "cannot start", ZN_LSTR("error", err));
        fprintf(stderr, "%s: %s\n", cfg.path ? cfg.path : "zinc", err);
        goto done;
    }
    ret = zn_server_run(srv);
done:
    zn_server_free(srv);
    zn_config_release(&cfg);
    return ret;
}

int main(int argc, char **argv)
{
    sigset_t set;
    /* before any thread exists, so every thread inherits it and only main's sigwait sees them */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    zn_thread_register_self("main");

    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    if (strcmp(cmd, "scrub") == 0)
        return cmd_scrub(argc - 2, argv + 2);
    if (strcmp(cmd, "probe") == 0)
        return zn_probe_main(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("zinc %s\n", ZN_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fprintf(stderr, "zinc: unknown command \"%s\"\n\n%s", cmd, usage);
    return 2;
}
