/* runtime_local: etcd members as detached processes on this host, recorded under the state dir. */
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
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"
#include "local_record.h"
#include "process.h"

#define PROC_FILE_MAX_BYTES ((size_t)1 << 20)
#define KILL_WAIT_MS 5000
#define LOCK_TIMEOUT_MS 120000
#define POLL_INTERVAL_MS 20

struct local_runtime {
        struct eg_runtime base;
        char *state_dir; /* absolute */
        char *clusters_dir;
        char *bin_dir; /* absolute; NULL when not configured */
        char *host;
        int port_base;
        int64_t stop_grace_ms;
        /* `etcd` on PATH, probed once per instance: a version check runs a process. */
        bool path_probed;
        char *path_etcd;    /* NULL when there is none */
        char *path_version; /* NULL when it did not say */
};

static struct local_runtime *to_local(struct eg_runtime *rt) {
        return (struct local_runtime *)rt;
}

/* ---- small helpers ---- */

static bool version_is_valid(const char *s) { return eg_local_token_is_valid(s, 64, "-+."); }

static char *cluster_dir(struct local_runtime *lr, const char *ns, const char *name) {
        return eg_strdup_printf("%s/%s/%s", lr->clusters_dir, ns, name);
}

static char *record_path(struct local_runtime *lr, const char *ns, const char *name) {
        return eg_strdup_printf("%s/%s/%s/cluster.json", lr->clusters_dir, ns, name);
}

static char *member_dir(struct local_runtime *lr, const char *ns, const char *name,
                        const char *member) {
        return eg_strdup_printf("%s/%s/%s/members/%s", lr->clusters_dir, ns, name, member);
}

static int record_save(struct local_runtime *lr, const char *ns, const char *name, const struct lrecord *rec,
                       struct eg_error *err) {
        _cleanup_free_ char *path = record_path(lr, ns, name);
        if (!path) {
                eg_error_set(err, "out of memory writing the record of %s/%s", ns, name);
                return -ENOMEM;
        }
        return eg_lrecord_save(path, ns, name, rec, err);
}

static char *host_url(struct local_runtime *lr, int port) {
        if (strchr(lr->host, ':'))
                return eg_strdup_printf("http://[%s]:%d", lr->host, port);
        return eg_strdup_printf("http://%s:%d", lr->host, port);
}

/* ---- processes ---- */

/* The recorded process is this member only if the pid is alive, was started at the
 * recorded time and runs with its name and data dir: a recycled pid never passes. */
static bool member_alive(const struct lmember *m) {
        if (m->state != MEMBER_STARTED || m->pid <= 0)
                return false;
        char state;
        uint64_t start;
        if (eg_proc_stat(m->pid, &state, &start) < 0 || state == 'Z' || state == 'X' ||
            start != m->start_time)
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
static bool members_adopt_unrecorded(struct lrecord *rec) {
        bool changed = false;
        for (size_t i = 0; i < rec->n_members; i++) {
                struct lmember *m = &rec->members[i];
                int64_t pid;
                uint64_t start;
                if (member_alive(m) || !member_find_process(m, &pid, &start))
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
static int member_kill(struct local_runtime *lr, const char *ns, const char *name,
                       struct lmember *m, struct eg_error *err) {
        if (member_alive(m)) {
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
                                eg_error_set(err,
                                             "member %s of %s/%s (pid %" PRId64
                                             ") did not exit after SIGKILL",
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
        eg_error_set(err, "cannot signal member %s of %s/%s (pid %" PRId64 "): %s", m->name,
                     ns, name, m->pid, strerror(saved));
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
                _cleanup_free_ char *path = v == d
                                                    ? eg_strdup_printf("%s/%s/etcd", lr->bin_dir, d)
                                                    : eg_strdup_printf("%s/%s", lr->bin_dir, d);
                if (version_is_valid(v) && path && eg_proc_is_executable(path))
                        eg_buf_printf(&b, "%s%s (%s)", b.len ? ", " : "", v, path);
                free(ents[i]);
        }
        free(ents);
        probe_path_etcd(lr);
        if (lr->path_etcd)
                eg_buf_printf(&b, "%s%s (%s)", b.len ? ", " : "",
                              lr->path_version ? lr->path_version : "unknown version",
                              lr->path_etcd);
        if (b.len == 0)
                eg_buf_puts(&b, "none");
        return eg_buf_steal(&b);
}

static int resolve_binary(struct local_runtime *lr, const char *version, char **ret,
                          struct eg_error *err) {
        if (!version_is_valid(version)) {
                eg_error_set(err, "invalid etcd version \"%s\"", version ? version : "");
                return -EINVAL;
        }
        if (lr->bin_dir) {
                char *a = eg_strdup_printf("%s/%s/etcd", lr->bin_dir, version);
                char *b = eg_strdup_printf("%s/etcd-%s", lr->bin_dir, version);
                char *found = a && eg_proc_is_executable(a)   ? a
                              : b && eg_proc_is_executable(b) ? b
                                                           : NULL;
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
                eg_error_set(err, "no etcd binary for version %s: have %s; put one at %s/%s/etcd",
                             version, have ? have : "?", lr->bin_dir, version);
        else
                eg_error_set(err,
                             "no etcd binary for version %s: have %s; configure an etcd binary "
                             "directory and put one at DIR/%s/etcd",
                             version, have ? have : "?", version);
        return -ENOENT;
}

/* ---- ports ---- */

struct ports {
        int *v;
        size_t n;
};

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
static int for_each_cluster_dir(struct local_runtime *lr,
                                int (*fn)(struct local_runtime *lr, const char *ns,
                                          const char *name, void *userdata),
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
                int ncl = r == 0 && nsdir && eg_local_name_is_valid(ns)
                                  ? scandir(nsdir, &cls, visible_entry, alphasort)
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

static int add_recorded_ports(struct local_runtime *lr, const char *ns, const char *name,
                              void *userdata) {
        struct ports *ports = userdata;
        _cleanup_free_ char *path = record_path(lr, ns, name);
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
static int ports_recorded(struct local_runtime *lr, struct ports *ret) {
        return for_each_cluster_dir(lr, add_recorded_ports, ret, NULL);
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
static int port_allocate(struct local_runtime *lr, struct ports *used, int *ret,
                         struct eg_error *err) {
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

/* ---- locking: one mutation of the state dir at a time, across threads and processes ---- */

static bool lock_try(void *userdata) {
        int *fd = userdata;
        return flock(*fd, LOCK_EX | LOCK_NB) == 0;
}

static int state_lock(struct local_runtime *lr, int *ret_fd, struct eg_error *err) {
        _cleanup_free_ char *path = eg_state_path(lr->state_dir, EG_STATE_LOCAL_LOCK, NULL, NULL);
        if (!path)
                return -ENOMEM;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
                int r = -errno;
                eg_error_set(err, "cannot open %s: %s", path, strerror(errno));
                return r;
        }
        if (eg_wait_for(lock_try, &fd, LOCK_TIMEOUT_MS, POLL_INTERVAL_MS) < 0) {
                close(fd);
                eg_error_set(err, "%s is held by someone else for too long", path);
                return -ETIMEDOUT;
        }
        *ret_fd = fd;
        return 0;
}

/* ---- members ---- */

static char *random_token(void) {
        unsigned char raw[16];
        size_t got = 0;
        while (got < sizeof(raw)) {
                ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return NULL;
                got += (size_t)n;
        }
        char *hex = malloc(2 * sizeof(raw) + 1);
        if (!hex)
                return NULL;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        return hex;
}

static json_t *spec_env(const struct eg_cluster_spec *spec) {
        json_t *env = spec->pod ? spec->pod->etcd_env : NULL;
        return json_is_array(env) ? env : NULL;
}

static char *local_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        json_t *env = spec_env(spec);
        _cleanup_free_ char *envs = env && json_array_size(env) > 0
                                            ? json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS)
                                            : strdup("[]");
        _cleanup_free_ char *input =
                envs ? eg_strdup_printf("%s\n%s", spec->version ? spec->version : "", envs)
                     : NULL;
        if (!input)
                return NULL;
        char hex[65];
        eg_sha256_hex(input, strlen(input), hex);
        return eg_strdup_printf("sha256:%s", hex);
}

/* Fills a fresh member entry: ports, URLs, data dir; nothing on disk yet. */
static int member_reserve(struct local_runtime *lr, const struct eg_runtime_target *t,
                          const char *member, struct ports *used, struct lmember *m,
                          struct eg_error *err) {
        int r;
        if ((r = port_allocate(lr, used, &m->client_port, err)) < 0 ||
            (r = port_allocate(lr, used, &m->peer_port, err)) < 0)
                return r;
        _cleanup_free_ char *dir = member_dir(lr, t->namespace, t->name, member);
        m->name = strdup(member);
        m->state = MEMBER_PREPARED;
        m->client_url = host_url(lr, m->client_port);
        m->peer_url = host_url(lr, m->peer_port);
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
static int member_dir_move_aside(struct local_runtime *lr, const char *ns, const char *name,
                                 const char *member, struct eg_error *err) {
        _cleanup_free_ char *dir = member_dir(lr, ns, name, member);
        _cleanup_free_ char *cdir = cluster_dir(lr, ns, name);
        _cleanup_free_ char *removed = cdir ? eg_path_join(cdir, "removed") : NULL;
        if (!dir || !removed)
                return -ENOMEM;
        if (access(dir, F_OK) < 0)
                return 0;
        int r = eg_mkdir_p(removed, 0700);
        int64_t ts = eg_now_realtime_ms();
        for (int attempt = 0; r >= 0 && attempt < 100; attempt++) {
                _cleanup_free_ char *to = eg_strdup_printf("%s/%s-%" PRId64, removed, member,
                                                           ts + attempt);
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

/* Flags valid for etcd 3.4 and 3.5+; "--flag=value" is what member_alive() looks for.
 * extra (NULL: none) is one more flag for this start only. */
static int build_argv(const char *bin, const struct lmember *m, const char *initial_cluster,
                      const char *token, const char *extra, struct strv *ret) {
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
static int member_start(struct local_runtime *lr, const char *ns, const char *name,
                        struct lmember *m, const char *bin, const char *initial_cluster,
                        const char *token, const char *extra, json_t *etcd_env, struct eg_error *err) {
        _cleanup_free_ char *dir = member_dir(lr, ns, name, m->name);
        _cleanup_free_ char *log = dir ? eg_path_join(dir, "etcd.log") : NULL;
        struct strv argv = {0}, env = {0};
        int log_fd = -1, r;
        if (!log) {
                r = -ENOMEM;
                goto oom;
        }
        r = eg_mkdir_p(m->data_dir, 0700);
        if (r < 0) {
                eg_error_set(err, "cannot create %s for member %s: %s", m->data_dir, m->name,
                             strerror(-r));
                goto out;
        }
        if ((r = build_argv(bin, m, initial_cluster, token, extra, &argv)) < 0 ||
            (r = eg_proc_build_env(etcd_env, &env)) < 0)
                goto oom;
        log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
                r = -errno;
                eg_error_set(err, "cannot open %s for member %s: %s", log, m->name,
                             strerror(errno));
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
                eg_error_set(err, "etcd for member %s of %s/%s exited at once (pid %d); see %s",
                             m->name, ns, name, (int)pid, log);
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
static bool wal_present(const char *data_dir) {
        _cleanup_free_ char *wal = eg_path_join(data_dir, "member/wal");
        DIR *d = wal ? opendir(wal) : NULL;
        bool found = false;
        if (!d)
                return false;
        for (struct dirent *e; !found && (e = readdir(d));) {
                size_t l = strlen(e->d_name);
                found = l > 4 && strcmp(e->d_name + l - 4, ".wal") == 0;
        }
        closedir(d);
        return found;
}

/* We make the data dir; etcd makes <data-dir>/member in it before anything else. A data
 * dir without it is a process that never got far enough to join or vote, and starting it
 * again as it was first started is safe. A data dir that is gone is data lost. */
static bool data_untouched(const char *data_dir) {
        _cleanup_free_ char *member = eg_path_join(data_dir, "member");
        struct stat st;
        return member && stat(data_dir, &st) >= 0 && S_ISDIR(st.st_mode) && stat(member, &st) < 0 &&
               errno == ENOENT;
}

static void observed_member(const struct lmember *m, struct eg_runtime_member *o) {
        bool alive = member_alive(m);
        *o = (struct eg_runtime_member){
                .name = strdup(m->name),
                .running = alive,
                .life = alive ? EG_LIFE_RUNNING : EG_LIFE_GONE,
                .data_kept = !alive && wal_present(m->data_dir),
                .never_started = m->state == MEMBER_PREPARED || (!alive && data_untouched(m->data_dir)),
                .initial = m->bootstrap,
                .pid = alive ? m->pid : 0,
                .version = strdup(m->version),
                .spec_hash = strdup(m->spec_hash),
                .client_url = strdup(m->client_url),
                .peer_url = strdup(m->peer_url),
                .started_realtime_ms = m->started_realtime_ms,
        };
}

static int observe_one(struct local_runtime *lr, const char *ns, const char *name,
                       struct eg_runtime_cluster *ret, struct eg_error *err) {
        _cleanup_free_ char *path = record_path(lr, ns, name);
        struct lrecord rec = {0};
        struct eg_runtime_cluster c = {0};
        if (!path)
                return -ENOMEM;
        int r = eg_lrecord_load(path, &rec, err);
        if (r < 0)
                return r;
        if (members_adopt_unrecorded(&rec)) {
                /* again under the lock, so that no concurrent change is written over */
                int lock_fd = -1;
                eg_lrecord_done(&rec);
                if ((r = state_lock(lr, &lock_fd, err)) < 0)
                        return r;
                r = eg_lrecord_load(path, &rec, err);
                if (r >= 0 && members_adopt_unrecorded(&rec))
                        r = record_save(lr, ns, name, &rec, err);
                eg_close_fd(&lock_fd);
                if (r < 0) {
                        eg_lrecord_done(&rec);
                        return r;
                }
        }
        c.namespace = strdup(ns);
        c.name = strdup(name);
        c.next_index = rec.next_index;
        c.members = calloc(rec.n_members ? rec.n_members : 1, sizeof(*c.members));
        r = c.namespace && c.name && c.members ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < rec.n_members; i++) {
                struct eg_runtime_member *o = &c.members[c.n_members++];
                observed_member(&rec.members[i], o);
                if (!o->name || !o->version || !o->spec_hash || !o->client_url || !o->peer_url)
                        r = -ENOMEM;
        }
        eg_lrecord_done(&rec);
        if (r < 0) {
                eg_runtime_cluster_done(&c);
                eg_error_set(err, "out of memory observing %s/%s", ns, name);
                return r;
        }
        *ret = c;
        return 0;
}

/* ---- operations ---- */

static int check_names(const char *ns, const char *name, struct eg_error *err) {
        if (!eg_local_name_is_valid(ns) || !eg_local_name_is_valid(name)) {
                eg_error_set(err, "invalid cluster name %s/%s", ns ? ns : "", name ? name : "");
                return -EINVAL;
        }
        return 0;
}

static int check_target(const struct eg_runtime_target *t, struct eg_error *err) {
        if (!t || !t->spec || !t->spec->version) {
                eg_error_set(err, "no cluster spec given");
                return -EINVAL;
        }
        return check_names(t->namespace, t->name, err);
}

static int check_member(const char *member, struct eg_error *err) {
        if (!eg_local_name_is_valid(member)) {
                eg_error_set(err, "invalid member name \"%s\"", member ? member : "");
                return -EINVAL;
        }
        return 0;
}

static int local_observe(struct eg_runtime *rt, const char *ns, const char *name,
                         struct eg_runtime_cluster *ret, struct eg_error *err) {
        int r = check_names(ns, name, err);
        if (r < 0)
                return r;
        return observe_one(to_local(rt), ns, name, ret, err);
}

struct cluster_list {
        struct eg_runtime_cluster *all;
        size_t n;
        struct eg_error *err;
};

static int list_one(struct local_runtime *lr, const char *ns, const char *name,
                    void *userdata) {
        struct cluster_list *l = userdata;
        struct eg_runtime_cluster *grown = realloc(l->all, (l->n + 1) * sizeof(*l->all));
        if (!grown) {
                eg_error_set(l->err, "out of memory listing clusters");
                return -ENOMEM;
        }
        l->all = grown;
        /* a directory without a record is a deleted cluster whose data was kept */
        struct eg_error e = {0};
        int r = observe_one(lr, ns, name, &l->all[l->n], &e);
        if (r == 0)
                l->n++;
        else if (r == -ENOENT || r == -ENOTDIR)
                r = 0;
        else
                eg_error_set(l->err, "%s", e.message ? e.message : strerror(-r));
        eg_error_done(&e);
        return r;
}

/* Every namespace's directory is there to read: the source's namespaces add nothing. */
static int local_list(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                      struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err) {
        struct cluster_list l = {.err = err};
        (void)namespaces;
        (void)n_namespaces;
        int r = for_each_cluster_dir(to_local(rt), list_one, &l, err);
        if (r < 0) {
                eg_runtime_clusters_free(l.all, l.n);
                return r;
        }
        *ret = l.all;
        *ret_n = l.n;
        return 0;
}

/* Undoes a failed bootstrap: stops what started and removes what was created. */
static void bootstrap_undo(struct local_runtime *lr, const struct eg_runtime_target *t,
                           struct lrecord *rec, const struct lrecord *old, bool had_old) {
        for (size_t i = 0; i < rec->n_members; i++) {
                struct lmember *m = &rec->members[i];
                member_kill(lr, t->namespace, t->name, m, NULL);
                _cleanup_free_ char *dir = member_dir(lr, t->namespace, t->name, m->name);
                if (dir)
                        eg_rm_rf(dir);
        }
        _cleanup_free_ char *cdir = cluster_dir(lr, t->namespace, t->name);
        _cleanup_free_ char *path = record_path(lr, t->namespace, t->name);
        if (!cdir || !path)
                return;
        if (had_old) {
                record_save(lr, t->namespace, t->name, old, NULL);
                return;
        }
        unlink(path);
        _cleanup_free_ char *members = eg_path_join(cdir, "members");
        _cleanup_free_ char *nsdir = eg_path_join(lr->clusters_dir, t->namespace);
        if (members)
                rmdir(members);
        rmdir(cdir);
        if (nsdir)
                rmdir(nsdir);
}

static int local_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t,
                           char *const *members, size_t n, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0}, old = {0};
        struct ports used = {0};
        struct eg_buf ic;
        _cleanup_free_ char *path = NULL, *bin = NULL;
        bool had_old = false, locked = false;
        int lock_fd = -1, r;
        eg_buf_init(&ic, 0);

        if ((r = check_target(t, err)) < 0)
                return r;
        if (n == 0 || n > MAX_MEMBERS) {
                eg_error_set(err, "cannot bootstrap %s/%s with %zu members", t->namespace,
                             t->name, n);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                if ((r = check_member(members[i], err)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(members[i], members[j]) == 0) {
                                eg_error_set(err, "member %s given twice", members[i]);
                                return -EINVAL;
                        }
        }
        path = record_path(lr, t->namespace, t->name);
        if (!path)
                return -ENOMEM;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        locked = true;

        r = eg_lrecord_load(path, &old, err);
        if (r == 0 && old.n_members > 0) {
                eg_error_set(err, "cluster %s/%s already exists (%zu members in %s)",
                             t->namespace, t->name, old.n_members, path);
                r = -EEXIST;
                goto out;
        }
        if (r < 0 && r != -ENOENT)
                goto out;
        had_old = r == 0;
        if ((r = resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        if ((r = ports_recorded(lr, &used)) < 0)
                goto oom;

        rec.next_index = old.next_index;
        rec.token = random_token();
        if (!rec.token) {
                r = -EIO;
                eg_error_set(err, "cannot get random bytes for the cluster token");
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                struct lmember *m = eg_lrecord_append(&rec);
                if (!m)
                        goto oom;
                if ((r = member_reserve(lr, t, members[i], &used, m, err)) < 0)
                        goto out;
                eg_lrecord_note_member(&rec, t->name, members[i]);
                if ((r = eg_buf_printf(&ic, "%s%s=%s", i ? "," : "", m->name, m->peer_url)) < 0)
                        goto oom;
        }
        for (size_t i = 0; i < n; i++) {
                rec.members[i].bootstrap = true;
                if (!(rec.members[i].initial_cluster = strdup(ic.data)))
                        goto oom;
        }
        for (size_t i = 0; i < n; i++)
                if ((r = member_dir_move_aside(lr, t->namespace, t->name, members[i], err)) < 0)
                        goto out;
        if ((r = record_save(lr, t->namespace, t->name, &rec, err)) < 0)
                goto undo;
        if (t->prepare_data) {
                struct lmember *seed = &rec.members[0];
                r = t->prepare_data(t->prepare_data_userdata, seed->name, seed->peer_url, ic.data, rec.token,
                                    seed->data_dir, err);
                if (r < 0)
                        goto undo;
        }
        for (size_t i = 0; i < n; i++) {
                r = member_start(lr, t->namespace, t->name, &rec.members[i], bin, ic.data,
                                 rec.token, NULL, spec_env(t->spec), err);
                if (r < 0)
                        goto undo;
                /* recorded after each start, so a daemon crash here leaves no orphan */
                if ((r = record_save(lr, t->namespace, t->name, &rec, err)) < 0)
                        goto undo;
        }
        r = 0;
        goto out;
undo:
        bootstrap_undo(lr, t, &rec, &old, had_old);
        goto out;
oom:
        r = -ENOMEM;
        eg_error_set(err, "out of memory bootstrapping %s/%s", t->namespace, t->name);
out:
        if (locked)
                eg_close_fd(&lock_fd);
        eg_buf_done(&ic);
        free(used.v);
        eg_lrecord_done(&rec);
        eg_lrecord_done(&old);
        return r;
}

/* Loads the record for a mutation; a missing one is an error naming the cluster. */
static int load_for_change(struct local_runtime *lr, const char *ns, const char *name,
                           struct lrecord *ret, struct eg_error *err) {
        _cleanup_free_ char *path = record_path(lr, ns, name);
        if (!path)
                return -ENOMEM;
        int r = eg_lrecord_load(path, ret, err);
        if (r == -ENOENT)
                eg_error_set(err, "no cluster %s/%s (%s does not exist)", ns, name, path);
        return r;
}

static int local_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t,
                                const char *member, char **ret_peer_url, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct ports used = {0};
        int lock_fd = -1, r;
        char *url = NULL;
        if ((r = check_target(t, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        if (eg_lrecord_find(&rec, member)) {
                eg_error_set(err, "member %s of %s/%s already exists", member, t->namespace,
                             t->name);
                r = -EEXIST;
                goto out;
        }
        if ((r = ports_recorded(lr, &used)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_append(&rec);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = member_reserve(lr, t, member, &used, m, err)) < 0 ||
            (r = member_dir_move_aside(lr, t->namespace, t->name, member, err)) < 0)
                goto out;
        url = strdup(m->peer_url);
        if (!url) {
                r = -ENOMEM;
                goto out;
        }
        eg_lrecord_note_member(&rec, t->name, member);
        if ((r = record_save(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        *ret_peer_url = TAKE_PTR(url);
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory preparing member %s", member);
        free(url);
        free(used.v);
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

/* Records the outcome of a start: who runs now and from what spec. */
static int member_take_target(struct lmember *m, const struct eg_runtime_target *t,
                              struct local_runtime *lr) {
        char *version = strdup(t->spec->version);
        char *hash = local_member_hash(&lr->base, t->spec);
        char *revision = t->revision ? strdup(t->revision) : NULL;
        if (!version || !hash || (t->revision && !revision)) {
                free(version);
                free(hash);
                free(revision);
                return -ENOMEM;
        }
        free(m->version);
        free(m->spec_hash);
        free(m->revision);
        m->version = version;
        m->spec_hash = hash;
        m->revision = revision;
        return 0;
}

static int local_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t,
                              const char *member, const char *initial_cluster,
                              struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *bin = NULL;
        int lock_fd = -1, r;
        if ((r = check_target(t, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        if (!initial_cluster || !*initial_cluster) {
                eg_error_set(err, "member %s: no initial cluster given", member);
                return -EINVAL;
        }
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m) {
                eg_error_set(err, "member %s of %s/%s was not prepared", member, t->namespace,
                             t->name);
                r = -ENOENT;
                goto out;
        }
        if (member_alive(m)) {
                eg_error_set(err, "member %s of %s/%s is already running (pid %" PRId64 ")",
                             member, t->namespace, t->name, m->pid);
                r = -EALREADY;
                goto out;
        }
        if ((r = resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        free(m->initial_cluster);
        m->initial_cluster = NULL;
        if ((r = member_take_target(m, t, lr)) < 0 || !(m->initial_cluster = strdup(initial_cluster))) {
                r = -ENOMEM;
                eg_error_set(err, "out of memory starting member %s", member);
                goto out;
        }
        if ((r = member_start(lr, t->namespace, t->name, m, bin, initial_cluster, NULL, NULL,
                              spec_env(t->spec), err)) < 0)
                goto out;
        r = record_save(lr, t->namespace, t->name, &rec, err);
        if (r < 0)
                member_kill(lr, t->namespace, t->name, m, NULL);
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

/* The start of every change to one recorded member of t's cluster: the names checked, the
 * state lock taken, the record loaded and the member found in it (-ENOENT, named, when it
 * is not). On success the caller owns *lock_fd and *rec, and *ret_m points into *rec. */
static int member_open(struct local_runtime *lr, const struct eg_runtime_target *t, const char *member, int *lock_fd,
                       struct lrecord *rec, struct lmember **ret_m, struct eg_error *err) {
        int r;
        if ((r = check_target(t, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        if ((r = state_lock(lr, lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, t->namespace, t->name, rec, err)) < 0) {
                eg_close_fd(lock_fd);
                return r;
        }
        *ret_m = eg_lrecord_find(rec, member);
        if (!*ret_m) {
                eg_error_set(err, "no member %s in %s/%s", member, t->namespace, t->name);
                eg_lrecord_done(rec);
                eg_close_fd(lock_fd);
                return -ENOENT;
        }
        return 0;
}

static int local_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                                const char *initial_cluster, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct lmember *m;
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1;
        int r = member_open(lr, t, member, &lock_fd, &rec, &m, err);
        if (r < 0)
                return r;
        if (member_alive(m)) {
                eg_error_set(err, "member %s of %s/%s is already running (pid %" PRId64 ")", member, t->namespace,
                             t->name, m->pid);
                r = -EALREADY;
                goto out;
        }
        bool has_wal = wal_present(m->data_dir);
        if (m->state == MEMBER_STARTED && !has_wal && !data_untouched(m->data_dir)) {
                eg_error_set(err, "member %s of %s/%s has no write-ahead log under %s: its data is gone, replace it",
                             member, t->namespace, t->name, m->data_dir);
                r = -ENODATA;
                goto out;
        }
        /* with a log etcd ignores --initial-cluster, which only has to be valid; a member
         * that never ran starts exactly as it was meant to */
        const char *ic = m->initial_cluster;
        if (has_wal && !ic)
                ic = self = eg_strdup_printf("%s=%s", m->name, m->peer_url);
        else if (!has_wal && !m->bootstrap && initial_cluster)
                ic = initial_cluster;
        if (!ic || !*ic) {
                eg_error_set(err, "member %s of %s/%s never started and no initial cluster is known for it",
                             member, t->namespace, t->name);
                r = has_wal ? -ENOMEM : -EINVAL;
                goto out;
        }
        if ((r = resolve_binary(lr, m->version, &bin, err)) < 0)
                goto out;
        if (ic != m->initial_cluster) {
                char *copy = strdup(ic);
                if (!copy) {
                        r = -ENOMEM;
                        goto out;
                }
                free(m->initial_cluster);
                m->initial_cluster = copy;
        }
        r = member_start(lr, t->namespace, t->name, m, bin, m->initial_cluster, m->bootstrap ? rec.token : NULL,
                         NULL, spec_env(t->spec), err);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0 && k < 0) {
                member_kill(lr, t->namespace, t->name, m, NULL);
                r = k;
        }
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory restarting member %s", member);
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

/* etcd's disaster recovery: one start with --force-new-cluster rewrites the membership to
 * this member alone and keeps its data. The flag is not recorded, so a later restart in
 * place starts it as any member, never forcing a new cluster over members added since. */
static int local_force_new_cluster(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                                   struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct lmember *m;
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1;
        int r = member_open(lr, t, member, &lock_fd, &rec, &m, err);
        if (r < 0)
                return r;
        if (!wal_present(m->data_dir)) {
                eg_error_set(err, "member %s of %s/%s has no write-ahead log under %s: nothing to recover from it",
                             member, t->namespace, t->name, m->data_dir);
                r = -ENODATA;
                goto out;
        }
        /* before stopping anything: a missing binary must leave the member as it is */
        if ((r = resolve_binary(lr, m->version, &bin, err)) < 0)
                goto out;
        /* with a log etcd ignores --initial-cluster, which only has to be valid */
        if (!(self = eg_strdup_printf("%s=%s", m->name, m->peer_url))) {
                eg_error_set(err, "out of memory recovering member %s", member);
                r = -ENOMEM;
                goto out;
        }
        if ((r = member_kill(lr, t->namespace, t->name, m, err)) < 0)
                goto out;
        r = member_start(lr, t->namespace, t->name, m, bin, self, NULL, "--force-new-cluster", spec_env(t->spec), err);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0)
                r = k;
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

static int local_stop_member(struct eg_runtime *rt, const char *ns, const char *name,
                             const char *member, bool delete_data, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *dir = NULL;
        int lock_fd = -1, r;
        if ((r = check_names(ns, name, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        dir = member_dir(lr, ns, name, member);
        if (!dir)
                return -ENOMEM;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, ns, name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m) {
                eg_error_set(err, "no member %s in %s/%s", member, ns, name);
                r = -ENOENT;
                goto out;
        }
        if ((r = member_kill(lr, ns, name, m, err)) < 0)
                goto out;
        /* the dir goes before the record forgets the member: a crash in between leaves a
         * recorded member without data (replaced as such), never a dir nothing owns */
        if (delete_data) {
                r = eg_rm_rf(dir);
                if (r < 0) {
                        eg_error_set(err, "member %s stopped but %s not removed: %s", member, dir,
                                     strerror(-r));
                        goto out;
                }
        } else if ((r = member_dir_move_aside(lr, ns, name, member, err)) < 0)
                goto out;
        eg_lrecord_remove(&rec, m);
        r = record_save(lr, ns, name, &rec, err);
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

static int local_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                                struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *dir = NULL;
        int lock_fd = -1, r;
        if ((r = check_names(ns, name, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        if (!(dir = member_dir(lr, ns, name, member)))
                return -ENOMEM;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, ns, name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m || m->state == MEMBER_STARTED) {
                eg_error_set(err, "member %s of %s/%s %s", member, ns, name, m ? "has started" : "does not exist");
                r = m ? -EBUSY : -ENOENT;
                goto out;
        }
        eg_lrecord_remove(&rec, m);
        size_t l = strlen(name);
        uint64_t n;
        if (strncmp(member, name, l) == 0 && member[l] == '-' && eg_parse_uint64(member + l + 1, &n) >= 0 &&
            rec.next_index == n + 1)
                rec.next_index = n;
        /* as in stop: the dir first, so that a crash cannot leave one nothing owns */
        eg_rm_rf(dir);
        r = record_save(lr, ns, name, &rec, err);
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

static int local_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t,
                                const char *member, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1, r;
        if ((r = check_target(t, err)) < 0 || (r = check_member(member, err)) < 0)
                return r;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m || m->state != MEMBER_STARTED) {
                eg_error_set(err, "member %s of %s/%s %s", member, t->namespace, t->name,
                             m ? "was never started" : "does not exist");
                r = m ? -EINVAL : -ENOENT;
                goto out;
        }
        /* before stopping anything: a missing binary must leave the member running */
        if ((r = resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        /* with data present etcd ignores --initial-cluster; it only has to be valid */
        self = eg_strdup_printf("%s=%s", m->name, m->peer_url);
        if (!self) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = member_kill(lr, t->namespace, t->name, m, err)) < 0)
                goto out;
        r = member_start(lr, t->namespace, t->name, m, bin, self, NULL, NULL, spec_env(t->spec), err);
        if (r == 0 && (r = member_take_target(m, t, lr)) < 0)
                eg_error_set(err, "out of memory upgrading member %s", member);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0)
                r = k;
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

static int local_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name,
                                bool delete_data, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *path = NULL, *dir = NULL, *deleted = NULL, *nsdir = NULL;
        int lock_fd = -1, r;
        if ((r = check_names(ns, name, err)) < 0)
                return r;
        path = record_path(lr, ns, name);
        dir = cluster_dir(lr, ns, name);
        deleted = eg_strdup_printf("%s.deleted", path ? path : "");
        nsdir = eg_path_join(lr->clusters_dir, ns);
        if (!path || !dir || !deleted || !nsdir)
                return -ENOMEM;
        if ((r = state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = load_for_change(lr, ns, name, &rec, err)) < 0)
                goto out;
        while (rec.n_members > 0) {
                struct lmember *m = &rec.members[rec.n_members - 1];
                if ((r = member_kill(lr, ns, name, m, err)) < 0) {
                        record_save(lr, ns, name, &rec, NULL);
                        goto out;
                }
                eg_lrecord_remove(&rec, m);
        }
        if (delete_data) {
                r = eg_rm_rf(dir);
                if (r < 0)
                        eg_error_set(err, "cannot remove %s: %s", dir, strerror(-r));
                else
                        rmdir(nsdir);
        } else if (rename(path, deleted) < 0) {
                r = -errno;
                eg_error_set(err, "cannot rename %s: %s", path, strerror(errno));
        }
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

static void local_free(struct eg_runtime *rt) {
        struct local_runtime *lr = to_local(rt);
        if (!lr)
                return;
        free(lr->state_dir);
        free(lr->clusters_dir);
        free(lr->bin_dir);
        free(lr->host);
        free(lr->path_etcd);
        free(lr->path_version);
        free(lr);
}

static const struct eg_runtime_ops local_ops = {
        .name = "local",
        .list = local_list,
        .observe = local_observe,
        .bootstrap = local_bootstrap,
        .prepare_member = local_prepare_member,
        .start_member = local_start_member,
        .restart_member = local_restart_member,
        .force_new_cluster = local_force_new_cluster,
        .release_member = local_release_member,
        .stop_member = local_stop_member,
        .upgrade_member = local_upgrade_member,
        .delete_cluster = local_delete_cluster,
        .member_hash = local_member_hash,
        .free = local_free,
};

static char *absolute_path(const char *p) {
        if (p[0] == '/')
                return strdup(p);
        _cleanup_free_ char *cwd = getcwd(NULL, 0);
        return cwd ? eg_path_join(cwd, p) : NULL;
}

int eg_runtime_local_new(const struct eg_runtime_local_options *opt, struct eg_runtime **ret,
                         struct eg_error *err) {
        if (!opt || !opt->state_dir || !*opt->state_dir) {
                eg_error_set(err, "the local runtime needs a state directory");
                return -EINVAL;
        }
        if (opt->port_base < 0 || opt->port_base > 65535) {
                eg_error_set(err, "port base %d is not a port", opt->port_base);
                return -EINVAL;
        }
        struct local_runtime *lr = calloc(1, sizeof(*lr));
        if (!lr)
                return -ENOMEM;
        lr->base.ops = &local_ops;
        lr->port_base = opt->port_base > 0 ? opt->port_base : 23790;
        lr->stop_grace_ms = opt->stop_grace_ms > 0 ? opt->stop_grace_ms : 10000;
        lr->host = strdup(opt->advertise_host && *opt->advertise_host ? opt->advertise_host
                                                                       : "127.0.0.1");
        _cleanup_free_ char *clusters = eg_state_path(opt->state_dir, EG_STATE_CLUSTERS, NULL, NULL);
        if (opt->etcd_bin_dir && *opt->etcd_bin_dir)
                lr->bin_dir = absolute_path(opt->etcd_bin_dir);
        if (!lr->host || !clusters || (opt->etcd_bin_dir && *opt->etcd_bin_dir && !lr->bin_dir)) {
                local_free(&lr->base);
                return -ENOMEM;
        }
        int r = eg_mkdir_p(clusters, 0700);
        if (r < 0) {
                eg_error_set(err, "cannot create %s: %s", clusters, strerror(-r));
                local_free(&lr->base);
                return r;
        }
        /* recorded data dirs and the cmdline check must not depend on our cwd */
        lr->state_dir = realpath(opt->state_dir, NULL);
        r = lr->state_dir ? -ENOMEM : -errno;
        lr->clusters_dir = lr->state_dir ? eg_state_path(lr->state_dir, EG_STATE_CLUSTERS, NULL, NULL) : NULL;
        if (!lr->clusters_dir) {
                eg_error_set(err, "cannot resolve %s: %s", opt->state_dir, strerror(-r));
                local_free(&lr->base);
                return r;
        }
        *ret = &lr->base;
        return 0;
}
