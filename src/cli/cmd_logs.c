/* etcd-gitops logs: a cluster's member logs, from the state dir (local) or the pods (kubernetes). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"
#include "etcd-gitops/runtime.h"
#include "resolve.h"
#include "setup.h"

enum { OPT_FOLLOW = 1 };

struct logs_args {
        bool follow;
        const char *member; /* NULL: every member */
};

const struct eg_option cmd_logs_options[] = {
        {OPT_FOLLOW, "follow", 'f', NULL, "keep printing what the members log, until Ctrl-C",
         EG_OPT_FLAG_AT(struct logs_args, follow)},
        {0},
};

enum { LOGS_POLL_MS = 200, LOGS_CHUNK = 65536, LOGS_SHRUNK_POLLS = 5 };

static volatile sig_atomic_t logs_stop;

static void on_stop(int sig) {
        (void)sig;
        logs_stop = 1;
}

/* One member's log being printed: with several members each line names its member. */
struct logs_sink {
        const char *member;
        bool prefix, at_line_start;
        /* local: the member's etcd.log, how far it was printed, the etcd.log.1 seen last (0:
         * none) and for how many polls etcd.log has been shorter than that with no new .1 */
        char *path;
        off_t offset;
        ino_t rotated_ino;
        unsigned shrunk_polls;
};

static int sink_write(const char *p, size_t n, void *userdata) {
        struct logs_sink *s = userdata;
        for (size_t i = 0; i < n; i++) {
                if (s->prefix && s->at_line_start)
                        printf("[%s] ", s->member);
                putchar(p[i]);
                s->at_line_start = p[i] == '\n';
        }
        fflush(stdout);
        return 0;
}

/* Prints what path holds past offset; the offset reached, or offset when it cannot be read. */
static off_t print_from(const char *path, off_t offset, struct logs_sink *s) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char buf[LOGS_CHUNK];
        ssize_t k;
        if (fd < 0)
                return offset;
        while ((k = pread(fd, buf, sizeof(buf), offset)) > 0) {
                sink_write(buf, (size_t)k, s);
                offset += k;
        }
        close(fd);
        return offset;
}

/* First etcd.log.1 whole, then etcd.log. When the log rotated (local_logs.c) etcd.log.1
 * is a new file holding what etcd.log held, the rest of what was not printed yet
 * included: that rest, then etcd.log from its start. A file
 * that only got shorter is a rotation under way (.1 comes after the emptying) or, after a
 * few polls, a log someone emptied: printed again from its start. */
static void local_print_new(struct logs_sink *s) {
        _cleanup_free_ char *rotated = eg_strdup_printf("%s.1", s->path);
        struct stat st;
        if (rotated && stat(rotated, &st) == 0 && st.st_ino != s->rotated_ino) {
                print_from(rotated, s->offset, s);
                s->rotated_ino = st.st_ino;
                s->offset = 0;
                s->shrunk_polls = 0;
        }
        if (stat(s->path, &st) == 0 && st.st_size < s->offset) {
                if (++s->shrunk_polls < LOGS_SHRUNK_POLLS)
                        return;
                s->offset = 0;
        }
        s->shrunk_polls = 0;
        s->offset = print_from(s->path, s->offset, s);
}

/* Each member's etcd.log.1, the last rotated copy, then etcd.log; with follow, what is
 * added until Ctrl-C. */
static int local_logs(const struct eg_runtime_cluster *c, struct logs_sink *sinks, size_t n, bool follow) {
        _cleanup_free_ char *dir = eg_state_path(eg_settings.state_dir, EG_STATE_CLUSTERS, c->namespace, c->name);
        int r = dir ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++)
                if (!(sinks[i].path = eg_strdup_printf("%s/members/%s/etcd.log", dir, sinks[i].member)))
                        r = -ENOMEM;
        do {
                for (size_t i = 0; r == 0 && i < n; i++)
                        local_print_new(&sinks[i]);
        } while (r == 0 && follow && !logs_stop && usleep(LOGS_POLL_MS * 1000) >= 0);
        for (size_t i = 0; i < n; i++)
                free(sinks[i].path);
        return r;
}

static bool kube_cancelled(void *userdata) {
        (void)userdata;
        return logs_stop;
}

static int discard(const char *p, size_t n, void *userdata) {
        (void)p, (void)n, (void)userdata;
        return 0;
}

/* The API server reads a pod's log from the kubelet of the pod's node
 * (https://NODE:10250/containerLogs/...): an error naming that is the kubelet out of reach.
 * The kube client's error has the status in its text only. */
static const char *kube_logs_hint(const struct eg_error *err) {
        if (err->message && strstr(err->message, ": HTTP 500: ") && strstr(err->message, "/containerLogs/"))
                return "the API server cannot reach the kubelet of the pod's node, which holds pod logs: ";
        return "";
}

/* One pod's log through the API server; with follow, until Ctrl-C. The client hands a
 * reply's body to the sink before its status is known, so one byte of the log is asked for
 * first and thrown away: a log that cannot be read fails there, and the server's Status
 * is not printed as if it were the log. */
static int kube_logs(const struct eg_runtime_cluster *c, struct logs_sink *s, bool follow) {
        struct eg_kube_config_options co = {.kubeconfig = eg_settings.kubeconfig, .context = eg_settings.context};
        struct eg_kube_config *cfg = NULL;
        struct eg_kube_client *kc = NULL;
        struct eg_error err = {0};
        struct eg_kube_watcher probe = {.on_data = discard, .cancelled = kube_cancelled};
        struct eg_kube_watcher w = {.on_data = sink_write, .cancelled = kube_cancelled, .userdata = s};
        _cleanup_free_ char *path = eg_strdup_printf("/api/v1/namespaces/%s/pods/%s/log", c->namespace, s->member);
        _cleanup_free_ char *probe_path = path ? eg_strdup_printf("%s?limitBytes=1", path) : NULL;
        _cleanup_free_ char *follow_path = path ? eg_strdup_printf("%s?follow=true", path) : NULL;
        int r = probe_path && follow_path ? eg_kube_config_load(&co, &cfg, &err) : -ENOMEM;
        if (r >= 0)
                r = eg_kube_client_new(cfg, NULL, &kc, &err);
        if (r >= 0)
                r = eg_kube_watch(kc, probe_path, 30000, &probe, &err);
        if (r >= 0)
                r = eg_kube_watch(kc, follow ? follow_path : path, follow ? 0 : 30000, &w, &err);
        if (r < 0 && r != -ECANCELED)
                fprintf(stderr, "etcd-gitops logs: cannot read the log of pod %s/%s: %s%s\n", c->namespace, s->member,
                        kube_logs_hint(&err), err.message ? err.message : strerror(-r));
        eg_kube_client_free(kc);
        eg_error_done(&err);
        return r == -ECANCELED ? 0 : r;
}

/* The sinks of the members to print: the one named, else all of them. */
static int pick_members(const struct eg_runtime_cluster *c, const char *member, struct logs_sink **ret, size_t *ret_n) {
        struct logs_sink *v = calloc(c->n_members + 1, sizeof(*v));
        size_t n = 0;
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_members; i++)
                if (!member || strcmp(member, c->members[i].name) == 0)
                        v[n++] = (struct logs_sink){.member = c->members[i].name, .at_line_start = true};
        for (size_t i = 0; i < n; i++)
                v[i].prefix = n > 1;
        if (n == 0) {
                fprintf(stderr, "etcd-gitops logs: cluster %s/%s has no member%s%s\n", c->namespace, c->name,
                        member ? " named " : "", member ? member : "");
                free(v);
                return -ENOENT;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int show(struct eg_runtime *rt, const struct eg_runtime_cluster *c, void *userdata) {
        const struct logs_args *a = userdata;
        const char *member = a->member;
        bool follow = a->follow;
        struct logs_sink *sinks = NULL;
        (void)rt;
        size_t n = 0;
        int r = pick_members(c, member, &sinks, &n);
        if (r < 0)
                return r;
        if (strcmp(eg_settings.runtime, "kubernetes") != 0)
                r = local_logs(c, sinks, n, follow);
        else if (follow && n > 1) {
                fprintf(stderr,
                        "etcd-gitops logs: -f follows one pod: name the member (etcd-gitops logs %s/%s MEMBER -f)\n",
                        c->namespace, c->name);
                r = -EINVAL;
        } else
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = kube_logs(c, &sinks[i], follow);
        free(sinks);
        return r;
}

int cmd_logs(const struct eg_command *cmd, int argc, char **argv) {
        struct logs_args a = {0};
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, NULL, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *cluster = n >= 1 && n <= 2 ? args[0] : NULL, *member = n == 2 ? args[1] : NULL;
        free(args);
        if (!cluster) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                return EG_EXIT_ERROR;
        }
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        a.member = member;
        return eg_cli_with_cluster("logs", cluster, show, &a);
}
