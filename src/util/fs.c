/* File helpers: bounded reads, atomic writes, directory trees. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/util.h"

int eg_read_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct eg_buf b;
        eg_buf_init(&b, max);
        char chunk[65536];
        int r = 0;
        for (;;) {
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                r = eg_buf_append(&b, chunk, (size_t)n);
                if (r < 0) {
                        if (r == -E2BIG)
                                r = -EFBIG;
                        break;
                }
        }
        close(fd);
        if (r < 0) {
                eg_buf_done(&b);
                return r;
        }
        if (ret_len)
                *ret_len = b.len;
        *ret = eg_buf_steal(&b);
        return *ret ? 0 : -ENOMEM;
}

int eg_write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int eg_read_fd_timeout(int fd, struct eg_buf *out, int64_t timeout_ms) {
        int64_t deadline = eg_now_monotonic_ms() + timeout_ms;
        for (;;) {
                int64_t left = deadline - eg_now_monotonic_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int n = poll(&pfd, 1, (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                char chunk[4096];
                ssize_t got = read(fd, chunk, sizeof(chunk));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        return got == 0 ? 0 : -errno;
                int r = eg_buf_append(out, chunk, (size_t)got);
                if (r < 0)
                        return r;
        }
}

int eg_write_file_atomic(const char *path, const void *data, size_t len, int mode) {
        /* a name of its own per call: the daemon writes from more than one thread */
        _cleanup_free_ char *tmp = eg_strdup_printf("%s.tmp.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fchmod(fd, (mode_t)mode) < 0 ? -errno : 0;
        if (r >= 0)
                r = eg_write_all(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r < 0 ? r : 0;
}

int eg_mkdir_p(const char *path, int mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, (mode_t)mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int rm_rf_at(int parent, const char *name) {
        struct stat st;
        if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(parent, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int k = rm_rf_at(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (r < 0)
                return r;
        return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
}

int eg_rm_rf(const char *path) { return rm_rf_at(AT_FDCWD, path); }

char *eg_path_join(const char *a, const char *b) {
        size_t la = strlen(a);
        if (la > 0 && a[la - 1] == '/')
                return eg_strdup_printf("%s%s", a, b);
        return eg_strdup_printf("%s/%s", a, b);
}
