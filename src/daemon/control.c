/* The control socket: a Unix stream socket served from the loop. Each client sends one
 * request line and gets event lines and one result line back (specs/control.md); writes
 * never block, buffers are capped and every wait has a deadline, so that a client that
 * stalls costs itself its connection and the daemon nothing. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

#define MAX_CONNS 32
#define REQUEST_MAX_BYTES (64u << 10)
/* a pass's decisions with room to spare; a client this far behind is not reading */
#define OUT_MAX_BYTES (4u << 20)
#define REQUEST_TIMEOUT_MS 10000
#define FLUSH_TIMEOUT_MS 10000

static void conn_free(struct control_conn *c) {
        struct eg_daemon *d = c->d;
        for (struct control_conn **p = &d->control_conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        d->n_control_conns--;
                        break;
                }
        if (c->job)
                c->job->conn = NULL;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        close(c->fd);
        eg_buf_done(&c->in);
        eg_buf_done(&c->out);
        free(c->actor);
        free(c);
}

static int conn_deadline(struct control_conn *c, int64_t ms) { return arm(c->timer, eg_now_monotonic_ms() + ms); }

/* Writes what the socket takes now; the rest waits for EPOLLOUT. Frees c once the
 * result is out or the client is gone: returns -1 then. */
static int conn_flush(struct control_conn *c) {
        while (c->out_off < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n <= 0) {
                        conn_free(c);
                        return -1;
                }
                c->out_off += (size_t)n;
        }
        if (c->out_off == c->out.len) {
                eg_buf_reset(&c->out);
                c->out_off = 0;
                if (c->answered) {
                        conn_free(c);
                        return -1;
                }
        }
        sd_event_source_set_io_events(c->io, EPOLLIN | (c->out.len ? EPOLLOUT : 0));
        return 0;
}

void control_send(struct control_conn *c, json_t *msg) {
        _cleanup_free_ char *line = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (!line || eg_buf_puts(&c->out, line) < 0 || eg_buf_puts(&c->out, "\n") < 0) {
                eg_log_warning("control socket: dropping %s: %s", c->actor,
                               line ? "it does not read what it asked for" : "out of memory");
                conn_free(c);
                return;
        }
        conn_flush(c);
}

void control_reply(struct control_conn *c, json_t *result) {
        c->answered = true;
        conn_deadline(c, FLUSH_TIMEOUT_MS);
        control_send(c, result);
}

void control_fail(struct control_conn *c, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *m = NULL;
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        control_reply(c,
                      json_pack("{s:s, s:i, s:s}", "result", "error", "exit", 2, "message", m ? m : "out of memory"));
}

/* The first line is the request; anything after it is not read. */
static void conn_read(struct control_conn *c) {
        char buf[4096];
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                conn_free(c);
                return;
        }
        if (c->requested)
                return;
        if (eg_buf_append(&c->in, buf, (size_t)n) < 0) {
                control_fail(c, "the request is longer than %u bytes", REQUEST_MAX_BYTES);
                return;
        }
        char *nl = memchr(c->in.data, '\n', c->in.len);
        if (!nl)
                return;
        c->requested = true;
        json_error_t jerr;
        json_t *req = json_loadb(c->in.data, (size_t)(nl - c->in.data), 0, &jerr);
        if (!json_is_object(req))
                control_fail(c, "the request is not a JSON object: %s", req ? "another JSON value" : jerr.text);
        else {
                sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                control_request(c, req);
        }
        json_decref(req);
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct control_conn *c = userdata;
        if ((revents & EPOLLOUT) && conn_flush(c) < 0)
                return 0;
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(c);
        return 0;
}

static int on_conn_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct control_conn *c = userdata;
        eg_log_warning("control socket: dropping %s: %s", c->actor,
                       c->answered ? "it does not read its answer" : "no request in time");
        conn_free(c);
        return 0;
}

/* "uid 1000 (alice)" for the peer, as the audit log names a person. */
static char *peer_actor(int fd) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return strdup("uid unknown");
        return eg_actor_of_uid(cred.uid);
}

static int conn_new(struct eg_daemon *d, int fd) {
        struct control_conn *c = calloc(1, sizeof(*c));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        *c = (struct control_conn){.d = d, .fd = fd, .actor = peer_actor(fd)};
        eg_buf_init(&c->in, REQUEST_MAX_BYTES);
        eg_buf_init(&c->out, OUT_MAX_BYTES);
        c->next = d->control_conns;
        d->control_conns = c;
        d->n_control_conns++;
        int r = c->actor ? 0 : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_io(d->event, &c->io, fd, EPOLLIN, on_conn_io, c);
        if (r >= 0)
                r = sd_event_add_time(d->event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_conn_timer, c);
        if (r >= 0)
                r = conn_deadline(c, REQUEST_TIMEOUT_MS);
        if (r < 0)
                conn_free(c);
        return r;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct eg_daemon *d = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        if (d->n_control_conns >= MAX_CONNS) {
                eg_log_warning("control socket: %d clients already; refusing another", MAX_CONNS);
                close(cfd);
                return 0;
        }
        int r = conn_new(d, cfd);
        if (r < 0)
                eg_log_warning_errno(r, "control socket: cannot take a client: %m");
        return 0;
}

/* 1 when a daemon answers on path, 0 when nobody does (nothing there, or a socket file
 * a daemon that died left), a negative errno when it cannot be told. */
static int someone_listens(const struct sockaddr_un *sa) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 1;
        close(fd);
        return r == -ENOENT || r == -ECONNREFUSED ? 0 : r;
}

static int control_bind(struct eg_daemon *d, const struct sockaddr_un *sa) {
        const char *path = d->opt->control_socket;
        int r = someone_listens(sa);
        if (r > 0)
                return eg_log_error_errno(-EADDRINUSE,
                                          "another daemon answers on the control socket %s: stop it first, or give "
                                          "this one its own --control-socket and --state-dir",
                                          path);
        if (r < 0)
                return eg_log_error_errno(r, "cannot check the control socket %s: %m", path);
        if (unlink(path) == 0)
                eg_log_info("taking over the control socket %s a stopped daemon left", path);
        d->control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (d->control_fd < 0)
                return eg_log_error_errno(-errno, "cannot create the control socket: %m");
        /* root and the daemon's group only; set at bind, so it is never wider even briefly */
        mode_t old = umask(0117);
        r = bind(d->control_fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ? -errno : 0;
        umask(old);
        if (r >= 0 && listen(d->control_fd, 16) < 0)
                r = -errno;
        if (r < 0) {
                /* not ours to remove at teardown */
                close(d->control_fd);
                d->control_fd = -1;
                return eg_log_error_errno(r, "cannot listen on the control socket %s: %m", path);
        }
        return 0;
}

/* The state dir's name for the socket, where the CLI looks: best effort. */
static void control_link(struct eg_daemon *d) {
        const char *link = d->opt->control_link;
        if (!link || strcmp(link, d->opt->control_socket) == 0)
                return;
        struct stat st;
        if (lstat(link, &st) == 0 && (S_ISLNK(st.st_mode) || S_ISSOCK(st.st_mode)))
                unlink(link);
        if (symlink(d->opt->control_socket, link) < 0)
                eg_log_warning_errno(-errno,
                                     "cannot link %s to the control socket: %m; the CLI needs "
                                     "--control-socket to find this daemon",
                                     link);
}

int control_setup(struct eg_daemon *d) {
        const char *path = d->opt->control_socket, *src = d->opt->source_location;
        if (src)
                d->source_real = eg_source_is_git_url(src) ? strdup(src) : realpath(src, NULL);
        if (src && !d->source_real)
                d->source_real = strdup(src);
        if (!path)
                return 0;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return eg_log_error_errno(-ENAMETOOLONG, "the control socket path %s is too long", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int r = control_bind(d, &sa);
        if (r < 0)
                return r;
        r = sd_event_add_io(d->event, &d->control_source, d->control_fd, EPOLLIN, on_accept, d);
        if (r < 0)
                return eg_log_error_errno(r, "cannot serve the control socket from the event loop: %m");
        control_link(d);
        eg_log_info("control socket on %s", path);
        return 0;
}

void control_teardown(struct eg_daemon *d) {
        while (d->control_conns)
                conn_free(d->control_conns);
        control_jobs_free(d->control_jobs);
        d->control_jobs = NULL;
        d->control_source = sd_event_source_disable_unref(d->control_source);
        if (d->control_fd < 0)
                return;
        close(d->control_fd);
        d->control_fd = -1;
        unlink(d->opt->control_socket);
        const char *link = d->opt->control_link;
        char target[4096];
        ssize_t n = link ? readlink(link, target, sizeof(target) - 1) : -1;
        if (n > 0) {
                target[n] = 0;
                if (strcmp(target, d->opt->control_socket) == 0)
                        unlink(link);
        }
}
