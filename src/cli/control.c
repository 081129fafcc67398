/* The CLI's client of the daemon's control socket: newline-delimited JSON over a Unix socket. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"

/* A line the daemon sends is one decision or one result: far below this. */
#define LINE_MAX_BYTES (4u << 20)

struct eg_control {
        int fd;
        char *path;
        struct eg_buf in;
};

int eg_control_find(const char *command, struct eg_control **ret) {
        struct eg_error err = {0};
        int r = eg_control_open(ret, &err);
        if (r < 0 && r != -ENOENT && r != -ECONNREFUSED)
                fprintf(stderr, "etcd-gitops %s: %s\n", command, err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        return r >= 0 ? 1 : r == -ENOENT || r == -ECONNREFUSED ? 0 : -1;
}

char *eg_control_socket_path(void) {
        if (eg_settings.control_socket && *eg_settings.control_socket)
                return strdup(eg_settings.control_socket);
        return eg_path_join(eg_settings.state_dir, "control.sock");
}

int eg_control_open(struct eg_control **ret, struct eg_error *err) {
        _cleanup_free_ char *path = eg_control_socket_path();
        if (!path)
                return -ENOMEM;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path)) {
                eg_error_set(err, "the control socket path '%s' is too long for a Unix socket", path);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                eg_error_set(err, "cannot create a socket: %s", strerror(errno));
                return -errno;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                /* a socket file nobody listens on is what a daemon that died leaves */
                if (r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR)
                        return r == -ENOTDIR ? -ENOENT : r;
                eg_error_set(err, "cannot connect to the daemon's control socket '%s': %s", path, strerror(-r));
                return r;
        }
        struct eg_control *c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        c->fd = fd;
        eg_buf_init(&c->in, LINE_MAX_BYTES);
        c->path = TAKE_PTR(path);
        *ret = c;
        return 0;
}

void eg_control_free(struct eg_control *c) {
        if (!c)
                return;
        close(c->fd);
        free(c->path);
        eg_buf_done(&c->in);
        free(c);
}

/* Waits for fd to be ready for events, up to deadline_ms (0: none). */
static int wait_fd(int fd, short events, int64_t deadline_ms) {
        for (;;) {
                int timeout = -1;
                if (deadline_ms) {
                        int64_t left = deadline_ms - eg_now_monotonic_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        timeout = left > 60000 ? 60000 : (int)left;
                }
                struct pollfd p = {.fd = fd, .events = events};
                int n = poll(&p, 1, timeout);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n > 0)
                        return 0;
        }
}

static int send_all(struct eg_control *c, const char *data, size_t len, int64_t deadline_ms) {
        while (len > 0) {
                int r = wait_fd(c->fd, POLLOUT, deadline_ms);
                if (r < 0)
                        return r;
                ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                if (n > 0) {
                        data += n;
                        len -= (size_t)n;
                }
        }
        return 0;
}

/* The next line the daemon sent, as JSON (caller owns). */
static int recv_line(struct eg_control *c, json_t **ret, int64_t deadline_ms) {
        for (;;) {
                char *nl = c->in.len ? memchr(c->in.data, '\n', c->in.len) : NULL;
                if (nl) {
                        size_t n = (size_t)(nl - c->in.data);
                        json_t *j = json_loadb(c->in.data, n, 0, NULL);
                        memmove(c->in.data, nl + 1, c->in.len - n - 1);
                        c->in.len -= n + 1;
                        if (!json_is_object(j)) {
                                json_decref(j);
                                return -EPROTO;
                        }
                        *ret = j;
                        return 0;
                }
                int r = wait_fd(c->fd, POLLIN, deadline_ms);
                if (r < 0)
                        return r;
                char buf[16384];
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return -errno;
                if (n > 0 && eg_buf_append(&c->in, buf, (size_t)n) < 0)
                        return -EPROTO;
        }
}

int eg_control_call(struct eg_control *c, json_t *request, int (*on_event)(json_t *ev, void *ud), void *ud,
                    json_t **ret_result, int64_t deadline_ms, struct eg_error *err) {
        _cleanup_free_ char *line = json_dumps(request, JSON_COMPACT);
        _cleanup_free_ char *framed = line ? eg_strdup_printf("%s\n", line) : NULL;
        if (!framed)
                return -ENOMEM;
        int r = send_all(c, framed, strlen(framed), deadline_ms);
        while (r >= 0) {
                json_t *msg = NULL;
                r = recv_line(c, &msg, deadline_ms);
                if (r < 0)
                        break;
                if (json_object_get(msg, "result")) {
                        *ret_result = msg;
                        return 0;
                }
                if (on_event)
                        r = on_event(msg, ud);
                json_decref(msg);
        }
        if (r == -ETIMEDOUT)
                eg_error_set(err, "the daemon did not answer on '%s' in time", c->path);
        else if (r == -EPROTO)
                eg_error_set(err, "the daemon on '%s' sent something that is not a control reply", c->path);
        else
                eg_error_set(err, "the daemon's control socket '%s' failed: %s", c->path,
                             r == -ECONNRESET ? "the daemon closed the connection" : strerror(-r));
        return r;
}
