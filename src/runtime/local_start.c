/* local_start: how a local member comes to run: its etcd binary, its ports, data dir and
 * command line, and its process started, found again and stopped. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"
#include "local_logs.h"
#include "local_record.h"
#include "local_runtime.h"
#include "process.h"

#define PROC_FILE_MAX_BYTES ((size_t)1 << 20)
#define KILL_WAIT_MS 5000
#define POLL_INTERVAL_MS 20

/* ---- processes ---- */

/* The recorded process is this member only if the pid is alive, was started at the
 * recorded time and runs with its name and data dir: a recycled pid never passes. */
bool local_member_alive(const struct lmember *m) {
        if (m->state != MEMBER_STARTED || m->pid <= 0)
                return false;
        char state;
        uint64_t start;
        if (eg_proc_stat(m->pid, &state, &start) < 0 || state == 'Z' || state == 'X' || start != m->start_time)
                return false;
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/cmdline", m->pid);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        if (!path || eg_read_file(path, PROC_FILE_MAX_BYTES, &data, &len) < 0)
                return false;
        return eg_proc_cmdline_has(data, len, "--name", m->name) &&
               eg_proc_cmdline_has(data, len, "--data-dir", m->data_dir);
}

/* The etcd of a member that the record does not name: the daemon died between starting
 * it and recording its pid. Found by the name, data dir and peer URL on its command line
 * (what build_argv gives it). */
static bool member_find_process(const struct lmember *m, int64_t *ret_pid, uint64_t *ret_start) {
        DIR *d = opendir("/proc");
        bool found = false;
        if (!d)
                return false;
        for (struct dirent *e; !found && (e = readdir(d));) {
                uint64_t pid;
                if (eg_parse_uint64(e->d_name, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        continue;
                _cleanup_free_ char *path = eg_strdup_printf("/proc/%s/cmdline", e->d_name);
                _cleanup_free_ char *data = NULL;
                size_t len = 0;
                char state;
                uint64_t start;
                if (!path || eg_read_file(path, PROC_FILE_MAX_BYTES, &data, &len) < 0 ||
                    !eg_proc_cmdline_has(data, len, "--name", m->name) ||
                    !eg_proc_cmdline_has(data, len, "--data-dir", m->data_dir) ||
                    !eg_proc_cmdline_has(data, len, "--listen-peer-urls", m->peer_url) ||
                    eg_proc_stat((int64_t)pid, &state, &start) < 0 || state == 'Z' || state == 'X')
                        continue;
                *ret_pid = (int64_t)pid;
                *ret_start = start;
                found = true;
        }
        closedir(d);
        return found;
}

/* Takes members running unrecorded into the record: else they would be started a second
 * time (and fail on their own ports) while the first copy runs on, out of reach. */
bool local_members_adopt_unrecorded(struct lrecord *rec) {
        bool changed = false;
        for (size_t i = 0; i < rec->n_members; i++) {
                struct lmember *m = &rec->members[i];
                int64_t pid;
                uint64_t start;
                if (local_member_alive(m) || !member_find_process(m, &pid, &start))
                        continue;
                m->state = MEMBER_STARTED;
                m->pid = pid;
                m->start_time = start;
                if (m->started_realtime_ms == 0)
                        m->started_realtime_ms = eg_now_realtime_ms();
                changed = true;
        }
        return changed;
}

struct proc_id {
        int64_t pid;
        uint64_t start_time;
};

/* Gone, a zombie nobody reaped yet, or a different process under the same pid. */
static bool proc_gone(void *userdata) {
        const struct proc_id *id = userdata;
        char state;
        uint64_t start;
        int r = eg_proc_stat(id->pid, &state, &start);
        if (r == -ENOENT)
                return true;
        if (r < 0)
                return false;
        return state == 'Z' || state == 'X' || start != id->start_time;
}

/* SIGTERM, up to grace_ms, then SIGKILL; returns once the process is gone. */
int local_member_kill(struct local_runtime *lr, const char *ns, const char *name, struct lmember *m,
                      struct eg_error *err) {
        if (local_member_alive(m)) {
                struct proc_id id = {m->pid, m->start_time};
                char state = 0;
                uint64_t start;
                /* a stopped process (SIGSTOP, a debugger) cannot honour SIGTERM: a grace
                 * would only keep the pass waiting for nothing */
                bool stopped = eg_proc_stat(m->pid, &state, &start) >= 0 && (state == 'T' || state == 't');
                if (kill((pid_t)m->pid, stopped ? SIGKILL : SIGTERM) < 0 && errno != ESRCH)
                        goto fail_kill;
                if (eg_wait_for(proc_gone, &id, stopped ? KILL_WAIT_MS : lr->stop_grace_ms, POLL_INTERVAL_MS) < 0) {
                        if (kill((pid_t)m->pid, SIGKILL) < 0 && errno != ESRCH)
                                goto fail_kill;
                        if (eg_wait_for(proc_gone, &id, KILL_WAIT_MS, POLL_INTERVAL_MS) < 0) {
                                eg_error_set(err, "member %s of %s/%s (pid %" PRId64 ") did not exit after SIGKILL",
                                             m->name, ns, name, m->pid);
                                return -ETIMEDOUT;
                        }
                }
        }
        m->pid = 0;
        m->start_time = 0;
        return 0;
fail_kill:;
        int saved = errno;
        eg_error_set(err, "cannot signal member %s of %s/%s (pid %" PRId64 "): %s", m->name, ns, name, m->pid,
                     strerror(saved));
        return -saved;
}

/* ---- etcd binaries ---- */

static void probe_path_etcd(struct local_runtime *lr) {
        if (lr->path_probed)
                return;
        lr->path_probed = true;
        lr->path_etcd = eg_proc_find_on_path("etcd");
        if (lr->path_etcd && eg_proc_probe_version(lr->path_etcd, &lr->path_version) < 0)
                lr->path_version = NULL;
}

/* "3.4.99 (/dir/3.4.99/etcd), 3.4.23 (/usr/bin/etcd)" or "none". */
static char *describe_available(struct local_runtime *lr) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        struct dirent **ents = NULL;
        int n = lr->bin_dir ? scandir(lr->bin_dir, &ents, NULL, alphasort) : 0;
        for (int i = 0; i < n; i++) {
                const char *d = ents[i]->d_name;
                const char *v = eg_str_has_prefix(d, "etcd-") ? d + 5 : d;
                _cleanup_free_ char *path = v == d ? eg_strdup_printf("%s/%s/etcd", lr->bin_dir, d)
                                                   : eg_strdup_printf("%s/%s", lr->bin_dir, d);
                if (version_is_valid(v) && path && eg_proc_is_executable(path))
                        eg_buf_printf(&b, "%s%s (%s)", b.len ? ", " : "", v, path);
                free(ents[i]);
        }
        free(ents);
        probe_path_etcd(lr);
        if (lr->path_etcd)
                eg_buf_printf(&b, "%s%s (%s)", b.len ? ", " : "",
                              lr->path_version ? lr->path_version : "unknown version", lr->path_etcd);
        if (b.len == 0)
                eg_buf_puts(&b, "none");
        return eg_buf_steal(&b);
}

int local_resolve_binary(struct local_runtime *lr, const char *version, char **ret, struct eg_error *err) {
        if (!version_is_valid(version)) {
                eg_error_set(err, "invalid etcd version \"%s\"", version ? version : "");
                return -EINVAL;
        }
        if (lr->bin_dir) {
                char *a = eg_strdup_printf("%s/%s/etcd", lr->bin_dir, version);
                char *b = eg_strdup_printf("%s/etcd-%s", lr->bin_dir, version);
                char *found = a && eg_proc_is_executable(a) ? a : b && eg_proc_is_executable(b) ? b : NULL;
                if (found) {
                        *ret = found;
                        free(found == a ? b : a);
                        return 0;
                }
                free(a);
                free(b);
        }
        probe_path_etcd(lr);
        if (lr->path_etcd && lr->path_version && strcmp(lr->path_version, version) == 0) {
                *ret = strdup(lr->path_etcd);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_free_ char *have = describe_available(lr);
        if (lr->bin_dir)
                eg_error_set(err, "no etcd binary for version %s: have %s; put one at %s/%s/etcd", version,
                             have ? have : "?", lr->bin_dir, version);
        else
                eg_error_set(err,
                             "no etcd binary for version %s: have %s; configure an etcd binary "
                             "directory and put one at DIR/%s/etcd",
                             version, have ? have : "?", version);
        return -ENOENT;
}

/* ---- ports ---- */

static int ports_add(struct ports *p, int port) {
        int *v = realloc(p->v, (p->n + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        v[p->n++] = port;
        p->v = v;
        return 0;
}

static bool ports_has(const struct ports *p, int port) {
        for (size_t i = 0; i < p->n; i++)
                if (p->v[i] == port)
                        return true;
        return false;
}

static int visible_entry(const struct dirent *d) { return d->d_name[0] != '.'; }

/* Calls fn for every clusters/<ns>/<name> directory, sorted; stops at the first error. */
int local_for_each_cluster_dir(struct local_runtime *lr,
                               int (*fn)(struct local_runtime *lr, const char *ns, const char *name, void *userdata),
                               void *userdata, struct eg_error *err) {
        struct dirent **nss = NULL;
        int r = 0, nns = scandir(lr->clusters_dir, &nss, visible_entry, alphasort);
        if (nns < 0) {
                if (errno == ENOENT)
                        return 0;
                r = -errno;
                eg_error_set(err, "cannot list %s: %s", lr->clusters_dir, strerror(errno));
                return r;
        }
        for (int i = 0; i < nns; i++) {
                const char *ns = nss[i]->d_name;
                _cleanup_free_ char *nsdir = eg_path_join(lr->clusters_dir, ns);
                struct dirent **cls = NULL;
                int ncl = r == 0 && nsdir && eg_local_name_is_valid(ns) ? scandir(nsdir, &cls, visible_entry, alphasort)
                                                                        : 0;
                for (int j = 0; j < ncl; j++) {
                        if (r == 0 && eg_local_name_is_valid(cls[j]->d_name))
                                r = fn(lr, ns, cls[j]->d_name, userdata);
                        free(cls[j]);
                }
                free(cls);
                free(nss[i]);
        }
        free(nss);
        return r;
}

static int add_recorded_ports(struct local_runtime *lr, const char *ns, const char *name, void *userdata) {
        struct ports *ports = userdata;
        _cleanup_free_ char *path = local_record_path(lr, ns, name);
        struct lrecord rec = {0};
        int r = 0;
        if (!path)
                return -ENOMEM;
        if (eg_lrecord_load(path, &rec, NULL) < 0)
                return 0;
        for (size_t k = 0; k < rec.n_members && r == 0; k++)
                if ((r = ports_add(ports, rec.members[k].client_port)) == 0)
                        r = ports_add(ports, rec.members[k].peer_port);
        eg_lrecord_done(&rec);
        return r;
}

/* Every port any record in the state dir holds, prepared members included. A record
 * that cannot be read contributes nothing; the bind() test still guards live ones. */
int local_ports_recorded(struct local_runtime *lr, struct ports *ret) {
        return local_for_each_cluster_dir(lr, add_recorded_ports, ret, NULL);
}

static bool port_bindable(const char *host, int port) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        char service[16];
        snprintf(service, sizeof(service), "%d", port);
        if (getaddrinfo(host, service, &hints, &ai) != 0 || !ai)
                return false;
        bool ok = false;
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
                /* etcd (Go) listens with SO_REUSEADDR: TIME_WAIT leftovers do not count */
                int one = 1;
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                ok = bind(fd, ai->ai_addr, ai->ai_addrlen) == 0;
                close(fd);
        }
        freeaddrinfo(ai);
        return ok;
}

/* Takes the next port from base that no record holds and that binds; adds it to used. */
static int port_allocate(struct local_runtime *lr, struct ports *used, int *ret, struct eg_error *err) {
        for (int port = lr->port_base; port <= 65535; port++) {
                if (ports_has(used, port) || !port_bindable(lr->host, port))
                        continue;
                int r = ports_add(used, port);
                if (r < 0)
                        return r;
                *ret = port;
                return 0;
        }
        eg_error_set(err, "no free port on %s from %d up", lr->host, lr->port_base);
        return -EADDRNOTAVAIL;
}

/* ---- members ---- */

json_t *local_spec_env(const struct eg_cluster_spec *spec) {
        json_t *env = spec->pod ? spec->pod->etcd_env : NULL;
        return json_is_array(env) ? env : NULL;
}

char *local_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        json_t *env = local_spec_env(spec);
        _cleanup_free_ char *envs = env && json_array_size(env) > 0 ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS)
                                                                    : strdup("[]");
        _cleanup_free_ char *input = envs ? eg_strdup_printf("%s\n%s", spec->version ? spec->version : "", envs) : NULL;
        if (!input)
                return NULL;
        char hex[65];
        eg_sha256_hex(input, strlen(input), hex);
        return eg_strdup_printf("sha256:%s", hex);
}

/* Fills a fresh member entry: ports, URLs, data dir; nothing on disk yet. */
int local_member_reserve(struct local_runtime *lr, const struct eg_runtime_target *t, const char *member,
                         struct ports *used, struct lmember *m, struct eg_error *err) {
        int r;
        if ((r = port_allocate(lr, used, &m->client_port, err)) < 0 ||
            (r = port_allocate(lr, used, &m->peer_port, err)) < 0)
                return r;
        _cleanup_free_ char *dir = local_member_dir(lr, t->namespace, t->name, member);
        m->name = strdup(member);
        m->state = MEMBER_PREPARED;
        m->client_url = local_host_url(lr, m->client_port);
        m->peer_url = local_host_url(lr, m->peer_port);
        m->version = strdup(t->spec->version);
        m->spec_hash = local_member_hash(&lr->base, t->spec);
        m->revision = t->revision ? strdup(t->revision) : NULL;
        m->data_dir = dir ? eg_path_join(dir, "data") : NULL;
        if (!m->name || !m->client_url || !m->peer_url || !m->version || !m->spec_hash ||
            (t->revision && !m->revision) || !m->data_dir) {
                eg_error_set(err, "out of memory preparing member %s", member);
                return -ENOMEM;
        }
        return 0;
}

/* A member directory left from an earlier cluster of the same name (data kept on
 * delete) must not be mistaken for this member's: move it under removed/. */
int local_member_dir_move_aside(struct local_runtime *lr, const char *ns, const char *name, const char *member,
                                struct eg_error *err) {
        _cleanup_free_ char *dir = local_member_dir(lr, ns, name, member);
        _cleanup_free_ char *cdir = local_cluster_dir(lr, ns, name);
        _cleanup_free_ char *removed = cdir ? eg_path_join(cdir, "removed") : NULL;
        if (!dir || !removed)
                return -ENOMEM;
        if (access(dir, F_OK) < 0)
                return 0;
        int r = eg_mkdir_p(removed, 0700);
        int64_t ts = eg_now_realtime_ms();
        for (int attempt = 0; r >= 0 && attempt < 100; attempt++) {
                _cleanup_free_ char *to = eg_strdup_printf("%s/%s-%" PRId64, removed, member, ts + attempt);
                if (!to)
                        return -ENOMEM;
                if (rename(dir, to) == 0)
                        return 0;
                if (errno != EEXIST && errno != ENOTEMPTY) {
                        r = -errno;
                        break;
                }
        }
        if (r >= 0)
                r = -EEXIST;
        eg_error_set(err, "cannot move %s under %s: %s", dir, removed, strerror(-r));
        return r;
}

/* Flags valid for etcd 3.4 and 3.5+; "--flag=value" is what local_member_alive() looks for.
 * extra (NULL: none) is one more flag for this start only. */
static int build_argv(const char *bin, const struct lmember *m, const char *initial_cluster, const char *token,
                      const char *extra, struct strv *ret) {
        const char *flags[][2] = {
                {"--name", m->name},
                {"--data-dir", m->data_dir},
                {"--listen-client-urls", m->client_url},
                {"--advertise-client-urls", m->client_url},
                {"--listen-peer-urls", m->peer_url},
                {"--initial-advertise-peer-urls", m->peer_url},
                {"--initial-cluster", initial_cluster},
                {"--initial-cluster-state", token ? "new" : "existing"},
                {"--initial-cluster-token", token},
        };
        struct strv argv = {0};
        int r = eg_strv_push(&argv, strdup(bin));
        for (size_t i = 0; r == 0 && i < EG_ELEMENTSOF(flags); i++)
                if (flags[i][1])
                        r = eg_strv_push(&argv, eg_strdup_printf("%s=%s", flags[i][0], flags[i][1]));
        if (r == 0 && extra)
                r = eg_strv_push(&argv, strdup(extra));
        if (r < 0) {
                eg_strv_done(&argv);
                return r;
        }
        *ret = argv;
        return 0;
}

/* Starts m's etcd. token != NULL bootstraps a new cluster with it; extra as build_argv. */
int local_member_start(struct local_runtime *lr, const char *ns, const char *name, struct lmember *m, const char *bin,
                       const char *initial_cluster, const char *token, const char *extra, json_t *etcd_env,
                       struct eg_error *err) {
        _cleanup_free_ char *dir = local_member_dir(lr, ns, name, m->name);
        _cleanup_free_ char *log = dir ? eg_path_join(dir, "etcd.log") : NULL;
        struct strv argv = {0}, env = {0};
        int log_fd = -1, r;
        if (!log) {
                r = -ENOMEM;
                goto oom;
        }
        r = eg_mkdir_p(m->data_dir, 0700);
        if (r < 0) {
                eg_error_set(err, "cannot create %s for member %s: %s", m->data_dir, m->name, strerror(-r));
                goto out;
        }
        if ((r = build_argv(bin, m, initial_cluster, token, extra, &argv)) < 0 ||
            (r = eg_proc_build_env(etcd_env, &env)) < 0)
                goto oom;
        /* no etcd writes to it now; a log that cannot be rotated must not keep the member down */
        (void)local_member_log_rotate(log);
        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                r = -errno;
                eg_error_set(err, "cannot open %s for member %s: %s", log, m->name, strerror(errno));
                goto out;
        }
        pid_t pid = 0;
        struct eg_error spawn_err = {0};
        r = eg_proc_spawn_detached(bin, argv.v, env.v, log_fd, &pid, &spawn_err);
        if (r < 0) {
                eg_error_set(err, "member %s of %s/%s: %s", m->name, ns, name,
                             spawn_err.message ? spawn_err.message : strerror(-r));
                eg_error_done(&spawn_err);
                goto out;
        }
        char state;
        uint64_t start;
        if (eg_proc_stat(pid, &state, &start) < 0 || state == 'Z' || state == 'X') {
                eg_error_set(err, "etcd for member %s of %s/%s exited at once (pid %d); see %s", m->name, ns, name,
                             (int)pid, log);
                r = -ECHILD;
                goto out;
        }
        m->state = MEMBER_STARTED;
        m->pid = pid;
        m->start_time = start;
        m->started_realtime_ms = eg_now_realtime_ms();
        r = 0;
        goto out;
oom:
        eg_error_set(err, "out of memory starting member %s", m->name);
out:
        eg_close_fd(&log_fd);
        eg_strv_done(&argv);
        eg_strv_done(&env);
        return r;
}

/* etcd's write-ahead log is what a member rejoins from: without one it has nothing of its
 * own to bring back, and starting it again would pretend a member with an empty log is the
 * one the cluster knows. */
