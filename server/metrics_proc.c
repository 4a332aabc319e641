/*
 * server/metrics_proc.c - the process_* values Prometheus' Go client exports, read from
 * /proc/self/stat, /proc/stat (boot time), /proc/self/fd and getrlimit, for the metrics
 * scrape. A few small reads per scrape; nothing is cached.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/server_int.h"

#define STAT_FIELDS 21 /* fields 4..24 of /proc/self/stat */

/* Up to cap-1 bytes of a /proc file, NUL-terminated; false if unreadable or empty. */
static bool read_proc(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n != 0;
}

/* Seconds since the epoch at boot, or -1. */
static double boot_time(void)
{
    char buf[16384];
    const char *p;
    if (!read_proc("/proc/stat", buf, sizeof(buf)) || (p = strstr(buf, "\nbtime ")) == NULL)
        return -1;
    return (double)strtoll(p + 7, NULL, 10);
}

/* f[k] = field 4 + k of /proc/self/stat; false if it cannot be read. */
static bool read_stat(unsigned long long *f)
{
    char buf[4096];
    const char *p;
    if (!read_proc("/proc/self/stat", buf, sizeof(buf)) || (p = strrchr(buf, ')')) == NULL || strlen(p) < 3)
        return false;
    p += 3; /* past ") S": the command may hold spaces and ')', the state is one letter */
    for (int k = 0; k < STAT_FIELDS; k++) {
        char *e;
        f[k] = strtoull(p, &e, 10);
        p = e;
    }
    return true;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = -1; /* not counting the directory's own descriptor */
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return (double)n;
}

void zn_proc_stats_read(zn_proc_stats_t *out)
{
    unsigned long long f[STAT_FIELDS];
    struct rlimit rl;
    double tck = (double)sysconf(_SC_CLK_TCK), bt = boot_time();

    out->cpu_seconds = out->resident_bytes = out->virtual_bytes = out->start_time = -1;
    if (read_stat(f)) {
        /* fields 14 utime, 15 stime, 22 starttime (ticks), 23 vsize (bytes), 24 rss (pages) */
        out->cpu_seconds = (double)(f[10] + f[11]) / tck;
        out->resident_bytes = (double)f[20] * (double)sysconf(_SC_PAGESIZE);
        out->virtual_bytes = (double)f[19];
        if (bt >= 0)
            out->start_time = bt + (double)f[18] / tck;
    }
    out->open_fds = open_fds();
    out->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (double)rl.rlim_cur : -1;
}
