/* The process_* families of /metrics, named and explained as the Prometheus client
 * libraries do, read from /proc/self alone. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/metrics.h"

/* /proc/self/stat is one line of a few hundred bytes */
#define STAT_MAX 4096

/* Fields 3 to 24 of proc_pid_stat(5), those after the comm, indexed from 0 (the state). */
enum {
        STAT_UTIME = 14 - 3,
        STAT_STIME = 15 - 3,
        STAT_STARTTIME = 22 - 3,
        STAT_VSIZE = 23 - 3,
        STAT_RSS = 24 - 3,
        STAT_N = 24 - 3 + 1,
};

int eg_process_stat_parse(const char *text, struct eg_process_stat *ret) {
        /* the comm may hold ") ": the fields follow the last parenthesis */
        const char *p = text ? strrchr(text, ')') : NULL;
        if (!p || p[1] != ' ' || !p[2] || p[2] == ' ')
                return -EINVAL;
        p += 3; /* the state, one letter */
        long long f[STAT_N] = {0};
        for (size_t i = 1; i < STAT_N; i++) {
                char *end;
                if (*p != ' ')
                        return -EINVAL;
                errno = 0;
                f[i] = strtoll(p + 1, &end, 10);
                if (end == p + 1 || errno)
                        return -EINVAL;
                p = end;
        }
        if (f[STAT_UTIME] < 0 || f[STAT_STIME] < 0 || f[STAT_STARTTIME] < 0 || f[STAT_VSIZE] < 0 || f[STAT_RSS] < 0)
                return -EINVAL;
        *ret = (struct eg_process_stat){.utime_ticks = (uint64_t)f[STAT_UTIME],
                                        .stime_ticks = (uint64_t)f[STAT_STIME],
                                        .start_ticks = (uint64_t)f[STAT_STARTTIME],
                                        .vsize_bytes = (uint64_t)f[STAT_VSIZE],
                                        .rss_pages = (uint64_t)f[STAT_RSS]};
        return 0;
}

/* The entries of /proc/self/fd but the one reading it; -errno when it cannot be read. */
static long open_fds(void) {
        DIR *dir = opendir("/proc/self/fd");
        if (!dir)
                return -errno;
        long n = 0;
        for (struct dirent *e; (e = readdir(dir));)
                n += e->d_name[0] != '.';
        closedir(dir);
        return n - 1;
}

/* The realtime clock at boot, in seconds: what CLOCK_BOOTTIME has counted since, taken
 * from now, where /proc/stat's btime may not be there to read. */
static double boot_time(void) {
        struct timespec real, boot;
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_BOOTTIME, &boot);
        return (double)(real.tv_sec - boot.tv_sec) + (double)(real.tv_nsec - boot.tv_nsec) / 1e9;
}

static int family(struct eg_buf *out, const char *name, const char *type, const char *help) {
        return eg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_stat(struct eg_buf *out, const struct eg_process_stat *st) {
        long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        if (tck <= 0 || page <= 0)
                return 0;
        int r = family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        if (r >= 0)
                r = eg_buf_printf(out, "process_cpu_seconds_total %.2f\n",
                                  (double)(st->utime_ticks + st->stime_ticks) / (double)tck);
        if (r >= 0 && (r = family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")) >= 0)
                r = eg_buf_printf(out, "process_virtual_memory_bytes %llu\n", (unsigned long long)st->vsize_bytes);
        if (r >= 0 &&
            (r = family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")) >= 0)
                r = eg_buf_printf(out, "process_resident_memory_bytes %llu\n",
                                  (unsigned long long)(st->rss_pages * (uint64_t)page));
        if (r >= 0 && (r = family(out, "process_start_time_seconds", "gauge",
                                  "Start time of the process since unix epoch in seconds.")) >= 0)
                r = eg_buf_printf(out, "process_start_time_seconds %.2f\n",
                                  boot_time() + (double)st->start_ticks / (double)tck);
        return r;
}

int eg_metrics_render_process(struct eg_buf *out) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        struct eg_process_stat st;
        int r = 0;
        if (eg_read_file("/proc/self/stat", STAT_MAX, &text, &len) == 0 && eg_process_stat_parse(text, &st) == 0)
                r = render_stat(out, &st);
        long fds = open_fds();
        if (r >= 0 && fds >= 0 &&
            (r = family(out, "process_open_fds", "gauge", "Number of open file descriptors.")) >= 0)
                r = eg_buf_printf(out, "process_open_fds %ld\n", fds);
        struct rlimit rl;
        if (r >= 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (r = family(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.")) >= 0)
                r = eg_buf_printf(out, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
        return r < 0 ? r : 0;
}
