/* kube_watch: a thread that watches the etcd pods (upstream's app=etcd label) and wakes the
 * daemon through an eventfd when one changes, so that a pod that fails, is deleted or comes up
 * is acted on at once instead of at the next recheck, as the local runtime's pidfds do. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"
#include "kube_runtime.h"

/* The server ends a watch after this and it is made again: a silent connection lost on the
 * way (a NAT, a proxy) costs no more than this. */
#define WATCH_SECONDS 240
#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 30000
#define LINE_MAX_BYTES ((size_t)8 << 20)

struct kube_watch {
        pthread_t thread;
        bool started;
        int efd;
        int stop_fd; /* an eventfd too: wakes the thread from its back-off at once */
        atomic_bool stop;
        struct eg_kube_client *client; /* its own: a curl handle belongs to one thread */
        char *collection;              /* the pods of -n's namespace, or of every namespace */
        char *resource_version;        /* the last one seen; NULL: the watch starts from now */
        bool expired;                  /* 410 Gone on the stream: start again from now */
        struct eg_buf line;
};

static void wake(int fd) {
        uint64_t one = 1;
        /* a full counter already says what this would */
        (void)!write(fd, &one, sizeof(one));
}

static void on_event(struct kube_watch *w, const char *line, size_t n) {
        json_t *ev = json_loadb(line, n, 0, NULL);
        const char *type = json_string_value(json_object_get(ev, "type"));
        json_t *obj = json_object_get(ev, "object");
        if (!type) {
                json_decref(ev);
                return;
        }
        if (strcmp(type, "ERROR") == 0) {
                if (json_integer_value(json_object_get(obj, "code")) == 410)
                        w->expired = true;
        } else {
                const char *rv = json_string_value(
                        json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
                if (rv) {
                        char *copy = strdup(rv);
                        if (copy) {
                                free(w->resource_version);
                                w->resource_version = copy;
                        }
                }
                /* a bookmark only moves the resourceVersion on */
                if (strcmp(type, "BOOKMARK") != 0)
                        wake(w->efd);
        }
        json_decref(ev);
}

static int on_data(const char *p, size_t n, void *userdata) {
        struct kube_watch *w = userdata;
        const char *end = p + n;
        for (const char *nl; (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
                if (eg_buf_append(&w->line, p, (size_t)(nl - p)) < 0)
                        return -ENOMEM;
                on_event(w, w->line.data, w->line.len);
                w->line.len = 0;
                if (w->expired)
                        return -ESTALE;
        }
        return eg_buf_append(&w->line, p, (size_t)(end - p)) < 0 ? -ENOMEM : 0;
}

static bool cancelled(void *userdata) {
        struct kube_watch *w = userdata;
        return atomic_load(&w->stop);
}

/* Sleeps ms, or less when the runtime is freed meanwhile. */
static void pause_ms(struct kube_watch *w, int64_t ms) {
        struct pollfd pfd = {.fd = w->stop_fd, .events = POLLIN};
        while (poll(&pfd, 1, (int)ms) < 0 && errno == EINTR)
                ;
}

static void *watch_loop(void *userdata) {
        struct kube_watch *w = userdata;
        const struct eg_kube_watcher watcher = {.on_data = on_data, .cancelled = cancelled, .userdata = w};
        int64_t retry_ms = RETRY_FIRST_MS;
        _cleanup_free_ char *last_error = NULL;
        while (!atomic_load(&w->stop)) {
                _cleanup_free_ char *path = eg_strdup_printf(
                        "%s?watch=1&labelSelector=app%%3Detcd&allowWatchBookmarks=true&timeoutSeconds=%d%s%s",
                        w->collection, WATCH_SECONDS, w->resource_version ? "&resourceVersion=" : "",
                        w->resource_version ? w->resource_version : "");
                struct eg_error err = {0};
                w->line.len = 0;
                w->expired = false;
                int r = path ? eg_kube_watch(w->client, path, (WATCH_SECONDS + 30) * 1000LL, &watcher, &err) : -ENOMEM;
                if (atomic_load(&w->stop))
                        break;
                if (w->expired || r == -ESTALE) {
                        /* what changed meanwhile is unknown: a pass looks */
                        free(w->resource_version);
                        w->resource_version = NULL;
                        wake(w->efd);
                        eg_error_done(&err);
                        continue;
                }
                if (r >= 0) {
                        if (last_error) {
                                eg_log_info("watching etcd pods again: changes are acted on at once");
                                free(last_error);
                                last_error = NULL;
                                wake(w->efd);
                        }
                        retry_ms = RETRY_FIRST_MS;
                        eg_error_done(&err);
                        continue;
                }
                const char *why = err.message ? err.message : strerror(-r);
                if (r == -EACCES) {
                        eg_log_warning("cannot watch etcd pods (%s): a member that fails is found by the next "
                                       "recheck, up to 1.5 s later",
                                       why);
                        eg_error_done(&err);
                        break;
                }
                if (!last_error || strcmp(last_error, why) != 0) {
                        eg_log_warning("watching etcd pods failed (%s): trying again, rechecks find changes meanwhile",
                                       why);
                        free(last_error);
                        last_error = strdup(why);
                }
                eg_error_done(&err);
                pause_ms(w, retry_ms);
                retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
        }
        return NULL;
}

void kube_watch_free(struct kube_watch *w) {
        if (!w)
                return;
        if (w->started) {
                atomic_store(&w->stop, true);
                wake(w->stop_fd);
                pthread_join(w->thread, NULL);
        }
        if (w->efd >= 0)
                close(w->efd);
        if (w->stop_fd >= 0)
                close(w->stop_fd);
        eg_kube_client_free(w->client);
        free(w->collection);
        free(w->resource_version);
        eg_buf_done(&w->line);
        free(w);
}

int kube_watch_new(const struct eg_kube_config_options *co, const struct eg_kube_client_options *o, const char *ns,
                   struct kube_watch **ret, struct eg_error *err) {
        struct kube_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->efd = w->stop_fd = -1;
        eg_buf_init(&w->line, LINE_MAX_BYTES);
        struct eg_kube_config *cfg = NULL;
        int r = eg_kube_config_load(co, &cfg, err);
        if (r >= 0)
                r = eg_kube_client_new(cfg, o, &w->client, err);
        if (r < 0) {
                kube_watch_free(w);
                return r;
        }
        w->collection = ns ? eg_strdup_printf("/api/v1/namespaces/%s/pods", ns) : strdup("/api/v1/pods");
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (!w->collection || w->efd < 0 || w->stop_fd < 0) {
                r = w->collection ? -errno : -ENOMEM;
                kube_watch_free(w);
                return r;
        }
        if ((r = -pthread_create(&w->thread, NULL, watch_loop, w)) < 0) {
                eg_error_set(err, "cannot start the pod watch: %s", strerror(-r));
                kube_watch_free(w);
                return r;
        }
        w->started = true;
        *ret = w;
        return 0;
}

int kube_watch_fd(const struct kube_watch *w) { return w->efd; }

int kube_change_fd(struct eg_runtime *rt, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        if (!kr->watch) {
                const struct eg_kube_config_options co = {
                        .kubeconfig = kr->kubeconfig,
                        .context = kr->context,
                        .service_account_dir = kr->service_account_dir,
                };
                int r = kube_watch_new(&co, &kr->client_options, kr->namespace, &kr->watch, err);
                if (r < 0)
                        return r;
        }
        return kube_watch_fd(kr->watch);
}
