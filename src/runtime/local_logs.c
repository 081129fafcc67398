/* local_logs: a local member's etcd.log kept to a size while etcd goes on writing to it. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/util.h"
#include "local_logs.h"

#define LOG_MAX_BYTES_DEFAULT ((uint64_t)10 << 20)
#define LOG_KEEP_DEFAULT 3
#define LOG_KEEP_MAX 100
#define COPY_CHUNK 65536

struct log_limits {
        uint64_t max_bytes;
        unsigned keep;
};

/* "10485760", "512K", "10M", "1G" */
static int parse_size(const char *s, uint64_t *ret) {
        size_t n = strlen(s);
        unsigned shift = 0;
        if (n > 0 && (s[n - 1] == 'K' || s[n - 1] == 'k'))
                shift = 10;
        else if (n > 0 && (s[n - 1] == 'M' || s[n - 1] == 'm'))
                shift = 20;
        else if (n > 0 && (s[n - 1] == 'G' || s[n - 1] == 'g'))
                shift = 30;
        _cleanup_free_ char *digits = strndup(s, shift ? n - 1 : n);
        uint64_t v;
        if (!digits || eg_parse_uint64(digits, &v) < 0 || v == 0 || v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = v << shift;
        return 0;
}

static struct log_limits log_limits;
static pthread_once_t log_limits_once = PTHREAD_ONCE_INIT;

/* The limits from the environment (the unit's environment file sets them for the daemon),
 * read once; a bad value is said once and the default kept. */
static void limits_read(void) {
        struct log_limits l = {LOG_MAX_BYTES_DEFAULT, LOG_KEEP_DEFAULT};
        const char *size = getenv("ETCD_GITOPS_MEMBER_LOG_MAX_SIZE"), *keep = getenv("ETCD_GITOPS_MEMBER_LOG_KEEP");
        uint64_t v;
        if (size && *size && parse_size(size, &l.max_bytes) < 0) {
                eg_log_warning("ETCD_GITOPS_MEMBER_LOG_MAX_SIZE='%s' is not a size such as 10M: using 10M", size);
                l.max_bytes = LOG_MAX_BYTES_DEFAULT;
        }
        if (keep && *keep) {
                if (eg_parse_uint64(keep, &v) == 0 && v <= LOG_KEEP_MAX)
                        l.keep = (unsigned)v;
                else
                        eg_log_warning("ETCD_GITOPS_MEMBER_LOG_KEEP='%s' is not a number from 0 to %d: using %d", keep,
                                       LOG_KEEP_MAX, LOG_KEEP_DEFAULT);
        }
        log_limits = l;
}

/* path.1 .. path.keep-1 move up by one; path.keep is overwritten. */
static int shift_copies(const char *path, unsigned keep) {
        for (unsigned i = keep; i > 1; i--) {
                _cleanup_free_ char *from = eg_strdup_printf("%s.%u", path, i - 1);
                _cleanup_free_ char *to = eg_strdup_printf("%s.%u", path, i);
                if (!from || !to)
                        return -ENOMEM;
                if (rename(from, to) < 0 && errno != ENOENT)
                        return -errno;
        }
        return 0;
}

/* Copies what fd holds from its start to a new file at tmp, to the end as it is now. */
static int copy_to(int fd, const char *tmp) {
        int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        _cleanup_free_ char *buf = malloc(COPY_CHUNK);
        ssize_t k;
        int r = out < 0 ? -errno : buf ? 0 : -ENOMEM;
        off_t at = 0;
        while (r == 0 && (k = pread(fd, buf, COPY_CHUNK, at)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                r = k < 0 ? -errno : eg_write_all(out, buf, (size_t)k);
                at += k > 0 ? k : 0;
        }
        if (out >= 0)
                close(out);
        return r;
}

int local_member_log_rotate(const char *path) {
        pthread_once(&log_limits_once, limits_read);
        const struct log_limits l = log_limits;
        struct stat st;
        if (stat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if ((uint64_t)st.st_size < l.max_bytes)
                return 0;
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        _cleanup_free_ char *tmp = eg_strdup_printf("%s.1.partial", path);
        _cleanup_free_ char *first = eg_strdup_printf("%s.1", path);
        int r = tmp && first ? 0 : -ENOMEM;
        /* the daemon and an apply may both come here for one member: one rotates */
        if (r == 0 && flock(fd, LOCK_EX | LOCK_NB) < 0)
                r = errno == EWOULDBLOCK ? 1 : -errno;
        if (r == 0 && l.keep > 0 && (r = shift_copies(path, l.keep)) == 0)
                r = copy_to(fd, tmp);
        if (r == 0 && ftruncate(fd, 0) < 0)
                r = -errno;
        if (r == 0 && l.keep > 0 && rename(tmp, first) < 0)
                r = -errno;
        if (r < 0 && tmp)
                unlink(tmp);
        close(fd);
        return r > 0 ? 0 : r;
}
