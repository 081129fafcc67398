/* runtime_local: etcd members as detached processes on this host, recorded under the state dir:
 * the runtime object, its layout and lock, what it observes and the whole-cluster operations. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"
#include "local_logs.h"
#include "local_record.h"
#include "local_runtime.h"
#include "process.h"

#define LOCK_TIMEOUT_MS 120000
#define POLL_INTERVAL_MS 20

/* ---- small helpers ---- */

char *local_cluster_dir(struct local_runtime *lr, const char *ns, const char *name) {
        return eg_strdup_printf("%s/%s/%s", lr->clusters_dir, ns, name);
}

char *local_record_path(struct local_runtime *lr, const char *ns, const char *name) {
        return eg_strdup_printf("%s/%s/%s/cluster.json", lr->clusters_dir, ns, name);
}

char *local_member_dir(struct local_runtime *lr, const char *ns, const char *name, const char *member) {
        return eg_strdup_printf("%s/%s/%s/members/%s", lr->clusters_dir, ns, name, member);
}

int local_record_save(struct local_runtime *lr, const char *ns, const char *name, const struct lrecord *rec,
                      struct eg_error *err) {
        _cleanup_free_ char *path = local_record_path(lr, ns, name);
        if (!path) {
                eg_error_set(err, "out of memory writing the record of %s/%s", ns, name);
                return -ENOMEM;
        }
        return eg_lrecord_save(path, ns, name, rec, err);
}

char *local_host_url(struct local_runtime *lr, int port) {
        if (strchr(lr->host, ':'))
                return eg_strdup_printf("http://[%s]:%d", lr->host, port);
        return eg_strdup_printf("http://%s:%d", lr->host, port);
}

/* ---- locking: one mutation of the state dir at a time, across threads and processes ---- */

static bool lock_try(void *userdata) {
        int *fd = userdata;
        return flock(*fd, LOCK_EX | LOCK_NB) == 0;
}

int local_state_lock(struct local_runtime *lr, int *ret_fd, struct eg_error *err) {
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

bool local_wal_present(const char *data_dir) {
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
bool local_data_untouched(const char *data_dir) {
        _cleanup_free_ char *member = eg_path_join(data_dir, "member");
        struct stat st;
        return member && stat(data_dir, &st) >= 0 && S_ISDIR(st.st_mode) && stat(member, &st) < 0 && errno == ENOENT;
}

static void observed_member(const struct lmember *m, bool alive, struct eg_runtime_member *o) {
        *o = (struct eg_runtime_member){
                .name = strdup(m->name),
                .running = alive,
                .life = alive ? EG_LIFE_RUNNING : EG_LIFE_GONE,
                .data_kept = !alive && local_wal_present(m->data_dir),
                .never_started = m->state == MEMBER_PREPARED || (!alive && local_data_untouched(m->data_dir)),
                .initial = m->bootstrap,
                .pid = alive ? m->pid : 0,
                .version = strdup(m->version),
                .spec_hash = strdup(m->spec_hash),
                .client_url = strdup(m->client_url),
                .peer_url = strdup(m->peer_url),
                .started_realtime_ms = m->started_realtime_ms,
        };
}

/* Whether each member of rec runs (malloc'd, one per member; NULL when out of memory):
 * each process is looked at once per observation. */
static bool *members_alive(const struct lrecord *rec, bool *ret_all) {
        bool *alive = calloc(rec->n_members + 1, sizeof(bool));
        *ret_all = true;
        for (size_t i = 0; alive && i < rec->n_members; i++)
                *ret_all &= alive[i] = local_member_alive(&rec->members[i]);
        return alive;
}

/* The record at path and which of its members run. Members running unrecorded are adopted
 * first; looking for them scans /proc, so only a record with a member not running is
 * searched. */
static int record_observe(struct local_runtime *lr, const char *ns, const char *name, const char *path,
                          struct lrecord *rec, bool **ret_alive, struct eg_error *err) {
        bool all;
        int r = eg_lrecord_load(path, rec, err);
        if (r < 0)
                return r;
        _cleanup_free_ bool *alive = members_alive(rec, &all);
        if (alive && !all && local_members_adopt_unrecorded(rec)) {
                /* again under the lock, so that no concurrent change is written over */
                int lock_fd = -1;
                eg_lrecord_done(rec);
                if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                        return r;
                r = eg_lrecord_load(path, rec, err);
                if (r >= 0 && local_members_adopt_unrecorded(rec))
                        r = local_record_save(lr, ns, name, rec, err);
                eg_close_fd(&lock_fd);
                if (r < 0) {
                        eg_lrecord_done(rec);
                        return r;
                }
                free(alive);
                alive = members_alive(rec, &all);
        }
        if (!alive) {
                eg_lrecord_done(rec);
                return -ENOMEM;
        }
        *ret_alive = TAKE_PTR(alive);
        return 0;
}

/* A member that runs for months is never started again: its log is kept to size where it
 * is looked at. A log that cannot be rotated must not fail an observation. */
static void rotate_log(struct local_runtime *lr, const char *ns, const char *name, const char *member) {
        _cleanup_free_ char *dir = local_member_dir(lr, ns, name, member);
        _cleanup_free_ char *log = dir ? eg_path_join(dir, "etcd.log") : NULL;
        if (log)
                (void)local_member_log_rotate(log);
}

static int observe_one(struct local_runtime *lr, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                       struct eg_error *err) {
        _cleanup_free_ char *path = local_record_path(lr, ns, name);
        _cleanup_free_ bool *alive = NULL;
        struct lrecord rec = {0};
        struct eg_runtime_cluster c = {0};
        if (!path)
                return -ENOMEM;
        int r = record_observe(lr, ns, name, path, &rec, &alive, err);
        if (r < 0)
                return r;
        c.namespace = strdup(ns);
        c.name = strdup(name);
        c.next_index = rec.next_index;
        c.members = calloc(rec.n_members ? rec.n_members : 1, sizeof(*c.members));
        r = c.namespace && c.name && c.members ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < rec.n_members; i++) {
                struct eg_runtime_member *o = &c.members[c.n_members++];
                observed_member(&rec.members[i], alive[i], o);
                if (!o->name || !o->version || !o->spec_hash || !o->client_url || !o->peer_url)
                        r = -ENOMEM;
                else if (alive[i])
                        rotate_log(lr, ns, name, o->name);
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

/* Loads the record for a mutation; a missing one is an error naming the cluster. */
int local_load_for_change(struct local_runtime *lr, const char *ns, const char *name, struct lrecord *ret,
                          struct eg_error *err) {
        _cleanup_free_ char *path = local_record_path(lr, ns, name);
        if (!path)
                return -ENOMEM;
        int r = eg_lrecord_load(path, ret, err);
        if (r == -ENOENT)
                eg_error_set(err, "no cluster %s/%s (%s does not exist)", ns, name, path);
        return r;
}

/* ---- operations ---- */

int local_check_names(const char *ns, const char *name, struct eg_error *err) {
        if (!eg_local_name_is_valid(ns) || !eg_local_name_is_valid(name)) {
                eg_error_set(err, "invalid cluster name %s/%s", ns ? ns : "", name ? name : "");
                return -EINVAL;
        }
        return 0;
}

int local_check_target(const struct eg_runtime_target *t, struct eg_error *err) {
        if (!t || !t->spec || !t->spec->version) {
                eg_error_set(err, "no cluster spec given");
                return -EINVAL;
        }
        return local_check_names(t->namespace, t->name, err);
}

int local_check_member(const char *member, struct eg_error *err) {
        if (!eg_local_name_is_valid(member)) {
                eg_error_set(err, "invalid member name \"%s\"", member ? member : "");
                return -EINVAL;
        }
        return 0;
}

/* flags: a local observation changes nothing anyway */
static int local_observe(struct eg_runtime *rt, const char *ns, const char *name, unsigned flags,
                         struct eg_runtime_cluster *ret, struct eg_error *err) {
        (void)flags;
        int r = local_check_names(ns, name, err);
        if (r < 0)
                return r;
        return observe_one(to_local(rt), ns, name, ret, err);
}

struct cluster_list {
        struct eg_runtime_cluster *all;
        size_t n;
        struct eg_error *err;
};

static int list_one(struct local_runtime *lr, const char *ns, const char *name, void *userdata) {
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
        int r = local_for_each_cluster_dir(to_local(rt), list_one, &l, err);
        if (r < 0) {
                eg_runtime_clusters_free(l.all, l.n);
                return r;
        }
        *ret = l.all;
        *ret_n = l.n;
        return 0;
}

/* Undoes a failed bootstrap: stops what started and removes what was created. */
static int local_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                                struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *path = NULL, *dir = NULL, *deleted = NULL, *nsdir = NULL;
        int lock_fd = -1, r;
        if ((r = local_check_names(ns, name, err)) < 0)
                return r;
        path = local_record_path(lr, ns, name);
        dir = local_cluster_dir(lr, ns, name);
        deleted = eg_strdup_printf("%s.deleted", path ? path : "");
        nsdir = eg_path_join(lr->clusters_dir, ns);
        if (!path || !dir || !deleted || !nsdir)
                return -ENOMEM;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, ns, name, &rec, err)) < 0)
                goto out;
        while (rec.n_members > 0) {
                struct lmember *m = &rec.members[rec.n_members - 1];
                if ((r = local_member_kill(lr, ns, name, m, err)) < 0) {
                        local_record_save(lr, ns, name, &rec, NULL);
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

int eg_runtime_local_new(const struct eg_runtime_local_options *opt, struct eg_runtime **ret, struct eg_error *err) {
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
        lr->host = strdup(opt->advertise_host && *opt->advertise_host ? opt->advertise_host : "127.0.0.1");
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
