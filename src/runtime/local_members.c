/* local_members: the local runtime's changes to a cluster's members: bootstrap, add (prepare,
 * start), restart in place, forced recovery, upgrade, stop and release. Each holds the state
 * lock and saves the record before it returns. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"
#include "local_record.h"
#include "local_runtime.h"
#include "process.h"

static void bootstrap_undo(struct local_runtime *lr, const struct eg_runtime_target *t, struct lrecord *rec,
                           const struct lrecord *old, bool had_old) {
        for (size_t i = 0; i < rec->n_members; i++) {
                struct lmember *m = &rec->members[i];
                local_member_kill(lr, t->namespace, t->name, m, NULL);
                _cleanup_free_ char *dir = local_member_dir(lr, t->namespace, t->name, m->name);
                if (dir)
                        eg_rm_rf(dir);
        }
        _cleanup_free_ char *cdir = local_cluster_dir(lr, t->namespace, t->name);
        _cleanup_free_ char *path = local_record_path(lr, t->namespace, t->name);
        if (!cdir || !path)
                return;
        if (had_old) {
                local_record_save(lr, t->namespace, t->name, old, NULL);
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

static int bootstrap_check(const struct eg_runtime_target *t, char *const *members, size_t n, struct eg_error *err) {
        int r;
        if ((r = local_check_target(t, err)) < 0)
                return r;
        if (n == 0 || n > MAX_MEMBERS) {
                eg_error_set(err, "cannot bootstrap %s/%s with %zu members", t->namespace, t->name, n);
                return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
                if ((r = local_check_member(members[i], err)) < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (strcmp(members[i], members[j]) == 0) {
                                eg_error_set(err, "member %s given twice", members[i]);
                                return -EINVAL;
                        }
        }
        return 0;
}

/* Reserves every member in rec (a fresh token, ports, data dirs moved aside) and writes their
 * --initial-cluster into ic. -ENOMEM without a message. */
static int bootstrap_reserve(struct local_runtime *lr, const struct eg_runtime_target *t, char *const *members,
                             size_t n, struct lrecord *rec, struct eg_buf *ic, struct eg_error *err) {
        struct ports used = {0};
        int r = local_ports_recorded(lr, &used);
        if (r < 0)
                return -ENOMEM;
        if (!(rec->token = eg_random_hex(16))) {
                free(used.v);
                eg_error_set(err, "cannot get random bytes for the cluster token");
                return -EIO;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                struct lmember *m = eg_lrecord_append(rec);
                if (!m) {
                        r = -ENOMEM;
                        break;
                }
                if ((r = local_member_reserve(lr, t, members[i], &used, m, err)) < 0)
                        break;
                eg_lrecord_note_member(rec, t->name, members[i]);
                r = eg_buf_printf(ic, "%s%s=%s", i ? "," : "", m->name, m->peer_url);
        }
        free(used.v);
        for (size_t i = 0; i < n && r >= 0; i++) {
                rec->members[i].bootstrap = true;
                if (!(rec->members[i].initial_cluster = strdup(ic->data)))
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < n && r >= 0; i++)
                r = local_member_dir_move_aside(lr, t->namespace, t->name, members[i], err);
        return r;
}

/* Records the cluster, fills the seed's data when restoring and starts every member. */
static int bootstrap_start(struct local_runtime *lr, const struct eg_runtime_target *t, struct lrecord *rec,
                           const char *bin, const char *ic, struct eg_error *err) {
        int r = local_record_save(lr, t->namespace, t->name, rec, err);
        if (r < 0)
                return r;
        if (t->prepare_data) {
                struct lmember *seed = &rec->members[0];
                r = t->prepare_data(t->prepare_data_userdata, seed->name, seed->peer_url, ic, rec->token,
                                    seed->data_dir, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < rec->n_members; i++) {
                r = local_member_start(lr, t->namespace, t->name, &rec->members[i], bin, ic, rec->token, NULL,
                                       local_spec_env(t->spec), err);
                if (r < 0)
                        return r;
                /* recorded after each start, so a daemon crash here leaves no orphan */
                if ((r = local_record_save(lr, t->namespace, t->name, rec, err)) < 0)
                        return r;
        }
        return 0;
}

int local_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                    struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0}, old = {0};
        struct eg_buf ic;
        _cleanup_free_ char *path = NULL, *bin = NULL;
        int lock_fd = -1, r;
        if ((r = bootstrap_check(t, members, n, err)) < 0)
                return r;
        if (!(path = local_record_path(lr, t->namespace, t->name)))
                return -ENOMEM;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        eg_buf_init(&ic, 0);
        r = eg_lrecord_load(path, &old, err);
        if (r == 0 && old.n_members > 0) {
                eg_error_set(err, "cluster %s/%s already exists (%zu members in %s)", t->namespace, t->name,
                             old.n_members, path);
                r = -EEXIST;
                goto out;
        }
        if (r < 0 && r != -ENOENT)
                goto out;
        bool had_old = r == 0;
        if ((r = local_resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        rec.next_index = old.next_index;
        if ((r = bootstrap_reserve(lr, t, members, n, &rec, &ic, err)) >= 0 &&
            (r = bootstrap_start(lr, t, &rec, bin, ic.data, err)) < 0)
                bootstrap_undo(lr, t, &rec, &old, had_old);
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory bootstrapping %s/%s", t->namespace, t->name);
        eg_close_fd(&lock_fd);
        eg_buf_done(&ic);
        eg_lrecord_done(&rec);
        eg_lrecord_done(&old);
        return r;
}

int local_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         char **ret_peer_url, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct ports used = {0};
        int lock_fd = -1, r;
        char *url = NULL;
        if ((r = local_check_target(t, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        if (eg_lrecord_find(&rec, member)) {
                eg_error_set(err, "member %s of %s/%s already exists", member, t->namespace, t->name);
                r = -EEXIST;
                goto out;
        }
        if ((r = local_ports_recorded(lr, &used)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_append(&rec);
        if (!m) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = local_member_reserve(lr, t, member, &used, m, err)) < 0 ||
            (r = local_member_dir_move_aside(lr, t->namespace, t->name, member, err)) < 0)
                goto out;
        url = strdup(m->peer_url);
        if (!url) {
                r = -ENOMEM;
                goto out;
        }
        eg_lrecord_note_member(&rec, t->name, member);
        if ((r = local_record_save(lr, t->namespace, t->name, &rec, err)) < 0)
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
static int member_take_target(struct lmember *m, const struct eg_runtime_target *t, struct local_runtime *lr) {
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

int local_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                       const char *initial_cluster, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *bin = NULL;
        int lock_fd = -1, r;
        if ((r = local_check_target(t, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        if (!initial_cluster || !*initial_cluster) {
                eg_error_set(err, "member %s: no initial cluster given", member);
                return -EINVAL;
        }
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m) {
                eg_error_set(err, "member %s of %s/%s was not prepared", member, t->namespace, t->name);
                r = -ENOENT;
                goto out;
        }
        if (local_member_alive(m)) {
                eg_error_set(err, "member %s of %s/%s is already running (pid %" PRId64 ")", member, t->namespace,
                             t->name, m->pid);
                r = -EALREADY;
                goto out;
        }
        if ((r = local_resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        free(m->initial_cluster);
        m->initial_cluster = NULL;
        if ((r = member_take_target(m, t, lr)) < 0 || !(m->initial_cluster = strdup(initial_cluster))) {
                r = -ENOMEM;
                eg_error_set(err, "out of memory starting member %s", member);
                goto out;
        }
        if ((r = local_member_start(lr, t->namespace, t->name, m, bin, initial_cluster, NULL, NULL,
                                    local_spec_env(t->spec), err)) < 0)
                goto out;
        r = local_record_save(lr, t->namespace, t->name, &rec, err);
        if (r < 0)
                local_member_kill(lr, t->namespace, t->name, m, NULL);
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
        if ((r = local_check_target(t, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        if ((r = local_state_lock(lr, lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, t->namespace, t->name, rec, err)) < 0) {
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

int local_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         const char *initial_cluster, struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct lmember *m;
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1;
        int r = member_open(lr, t, member, &lock_fd, &rec, &m, err);
        if (r < 0)
                return r;
        if (local_member_alive(m)) {
                eg_error_set(err, "member %s of %s/%s is already running (pid %" PRId64 ")", member, t->namespace,
                             t->name, m->pid);
                r = -EALREADY;
                goto out;
        }
        bool has_wal = local_wal_present(m->data_dir);
        if (m->state == MEMBER_STARTED && !has_wal && !local_data_untouched(m->data_dir)) {
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
                eg_error_set(err, "member %s of %s/%s never started and no initial cluster is known for it", member,
                             t->namespace, t->name);
                r = has_wal ? -ENOMEM : -EINVAL;
                goto out;
        }
        if ((r = local_resolve_binary(lr, m->version, &bin, err)) < 0)
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
        r = local_member_start(lr, t->namespace, t->name, m, bin, m->initial_cluster, m->bootstrap ? rec.token : NULL,
                               NULL, local_spec_env(t->spec), err);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = local_record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0 && k < 0) {
                local_member_kill(lr, t->namespace, t->name, m, NULL);
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
int local_force_new_cluster(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                            struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        struct lmember *m;
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1;
        int r = member_open(lr, t, member, &lock_fd, &rec, &m, err);
        if (r < 0)
                return r;
        if (!local_wal_present(m->data_dir)) {
                eg_error_set(err, "member %s of %s/%s has no write-ahead log under %s: nothing to recover from it",
                             member, t->namespace, t->name, m->data_dir);
                r = -ENODATA;
                goto out;
        }
        /* before stopping anything: a missing binary must leave the member as it is */
        if ((r = local_resolve_binary(lr, m->version, &bin, err)) < 0)
                goto out;
        /* with a log etcd ignores --initial-cluster, which only has to be valid */
        if (!(self = eg_strdup_printf("%s=%s", m->name, m->peer_url))) {
                eg_error_set(err, "out of memory recovering member %s", member);
                r = -ENOMEM;
                goto out;
        }
        if ((r = local_member_kill(lr, t->namespace, t->name, m, err)) < 0)
                goto out;
        r = local_member_start(lr, t->namespace, t->name, m, bin, self, NULL, "--force-new-cluster",
                               local_spec_env(t->spec), err);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = local_record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0)
                r = k;
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

int local_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member, bool delete_data,
                      struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *dir = NULL;
        int lock_fd = -1, r;
        if ((r = local_check_names(ns, name, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        dir = local_member_dir(lr, ns, name, member);
        if (!dir)
                return -ENOMEM;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, ns, name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m) {
                eg_error_set(err, "no member %s in %s/%s", member, ns, name);
                r = -ENOENT;
                goto out;
        }
        if ((r = local_member_kill(lr, ns, name, m, err)) < 0)
                goto out;
        /* the dir goes before the record forgets the member: a crash in between leaves a
         * recorded member without data (replaced as such), never a dir nothing owns */
        if (delete_data) {
                r = eg_rm_rf(dir);
                if (r < 0) {
                        eg_error_set(err, "member %s stopped but %s not removed: %s", member, dir, strerror(-r));
                        goto out;
                }
        } else if ((r = local_member_dir_move_aside(lr, ns, name, member, err)) < 0)
                goto out;
        eg_lrecord_remove(&rec, m);
        r = local_record_save(lr, ns, name, &rec, err);
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

int local_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                         struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *dir = NULL;
        int lock_fd = -1, r;
        if ((r = local_check_names(ns, name, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        if (!(dir = local_member_dir(lr, ns, name, member)))
                return -ENOMEM;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, ns, name, &rec, err)) < 0)
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
        r = local_record_save(lr, ns, name, &rec, err);
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}

int local_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         struct eg_error *err) {
        struct local_runtime *lr = to_local(rt);
        struct lrecord rec = {0};
        _cleanup_free_ char *bin = NULL, *self = NULL;
        int lock_fd = -1, r;
        if ((r = local_check_target(t, err)) < 0 || (r = local_check_member(member, err)) < 0)
                return r;
        if ((r = local_state_lock(lr, &lock_fd, err)) < 0)
                return r;
        if ((r = local_load_for_change(lr, t->namespace, t->name, &rec, err)) < 0)
                goto out;
        struct lmember *m = eg_lrecord_find(&rec, member);
        if (!m || m->state != MEMBER_STARTED) {
                eg_error_set(err, "member %s of %s/%s %s", member, t->namespace, t->name,
                             m ? "was never started" : "does not exist");
                r = m ? -EINVAL : -ENOENT;
                goto out;
        }
        /* before stopping anything: a missing binary must leave the member running */
        if ((r = local_resolve_binary(lr, t->spec->version, &bin, err)) < 0)
                goto out;
        /* with data present etcd ignores --initial-cluster; it only has to be valid */
        self = eg_strdup_printf("%s=%s", m->name, m->peer_url);
        if (!self) {
                r = -ENOMEM;
                goto out;
        }
        if ((r = local_member_kill(lr, t->namespace, t->name, m, err)) < 0)
                goto out;
        r = local_member_start(lr, t->namespace, t->name, m, bin, self, NULL, NULL, local_spec_env(t->spec), err);
        if (r == 0 && (r = member_take_target(m, t, lr)) < 0)
                eg_error_set(err, "out of memory upgrading member %s", member);
        /* saved either way: a failed start leaves the member recorded as not running */
        int k = local_record_save(lr, t->namespace, t->name, &rec, r < 0 ? NULL : err);
        if (r == 0)
                r = k;
out:
        eg_lrecord_done(&rec);
        eg_close_fd(&lock_fd);
        return r;
}
