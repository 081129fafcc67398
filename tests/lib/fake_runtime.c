/* Test helper: the runtime interface over members kept in memory; their etcd is a fake_etcd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "fake_runtime.h"

/* A test's clusters are few and small: fixed tables keep the fake short. */
#define MAX_CLUSTERS 8
#define MAX_MEMBERS 16

struct fmember {
        char *name, *version, *hash, *peer_url, *client_url;
        enum eg_member_life life;
        char *life_reason;
        int64_t life_since_ms, started_ms; /* realtime */
        bool data_kept, never_started, initial;
        unsigned starting_left; /* observations before it runs */
};

struct fcluster {
        char *ns, *name;
        uint64_t next_index;
        struct fmember members[MAX_MEMBERS];
        size_t n_members;
        char *upstream_owned;
};

struct fake_runtime {
        struct eg_runtime rt; /* first: the reconciler holds this */
        struct fake_etcd *fe;
        struct fcluster clusters[MAX_CLUSTERS];
        size_t n_clusters;
        unsigned start_after;
        char *refuse_starts;
        char *observe_error;
        bool no_roll_in_place;
        size_t n_events, n_warnings, n_restores;
};

static struct fake_runtime *fake_of(struct eg_runtime *rt) { return (struct fake_runtime *)rt; }

static void set_str(char **dst, const char *src) {
        free(*dst);
        *dst = src ? strdup(src) : NULL;
}

static struct fcluster *cluster_find(struct fake_runtime *fr, const char *ns, const char *name) {
        for (size_t i = 0; i < fr->n_clusters; i++)
                if (strcmp(fr->clusters[i].ns, ns) == 0 && strcmp(fr->clusters[i].name, name) == 0)
                        return &fr->clusters[i];
        return NULL;
}

static struct fmember *member_find(struct fake_runtime *fr, const char *ns, const char *name, const char *member) {
        struct fcluster *cl = cluster_find(fr, ns, name);
        for (size_t i = 0; cl && i < cl->n_members; i++)
                if (strcmp(cl->members[i].name, member) == 0)
                        return &cl->members[i];
        return NULL;
}

static void member_done(struct fmember *m) {
        free(m->name);
        free(m->version);
        free(m->hash);
        free(m->peer_url);
        free(m->client_url);
        free(m->life_reason);
        *m = (struct fmember){0};
}

static void cluster_drop(struct fake_runtime *fr, struct fcluster *cl) {
        for (size_t i = 0; i < cl->n_members; i++)
                member_done(&cl->members[i]);
        free(cl->ns);
        free(cl->name);
        free(cl->upstream_owned);
        size_t i = (size_t)(cl - fr->clusters);
        memmove(cl, cl + 1, (fr->n_clusters - i - 1) * sizeof(*cl));
        fr->n_clusters--;
}

static void member_drop(struct fake_runtime *fr, struct fcluster *cl, struct fmember *m) {
        fake_etcd_set_up(fr->fe, cl->ns, cl->name, m->name, NULL, false);
        member_done(m);
        size_t i = (size_t)(m - cl->members);
        memmove(m, m + 1, (cl->n_members - i - 1) * sizeof(*m));
        cl->n_members--;
}

static void member_life(struct fmember *m, enum eg_member_life life, const char *reason) {
        m->life = life;
        set_str(&m->life_reason, reason);
        m->life_since_ms = eg_now_realtime_ms();
}

static char *member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        return eg_strdup_printf("template:%s", spec->repository ? spec->repository : "");
}

/* A member reserved with its URLs, not started. */
static struct fmember *member_new(struct fake_runtime *fr, struct fcluster *cl, const char *member,
                                  const struct eg_cluster_spec *spec) {
        if (cl->n_members == MAX_MEMBERS)
                return NULL;
        struct fmember *m = &cl->members[cl->n_members++];
        *m = (struct fmember){
                .name = strdup(member),
                .version = strdup(spec && spec->version ? spec->version : ""),
                .hash = spec ? member_hash(&fr->rt, spec) : NULL,
                .peer_url = eg_strdup_printf("http://%s.%s.%s.fake:2380", member, cl->name, cl->ns),
                .client_url = fake_etcd_client_url(fr->fe, cl->ns, cl->name, member),
                .never_started = true,
        };
        member_life(m, EG_LIFE_GONE, NULL);
        return m;
}

static int member_start(struct fake_runtime *fr, struct fcluster *cl, struct fmember *m, struct eg_error *err) {
        if (fr->refuse_starts) {
                eg_error_set(err, "cannot start %s: %s", m->name, fr->refuse_starts);
                return -EIO;
        }
        m->started_ms = eg_now_realtime_ms();
        m->never_started = false;
        m->data_kept = true;
        m->starting_left = fr->start_after;
        if (m->starting_left > 0) {
                member_life(m, EG_LIFE_STARTING, "ContainerCreating");
                return 0;
        }
        member_life(m, EG_LIFE_RUNNING, NULL);
        fake_etcd_set_up(fr->fe, cl->ns, cl->name, m->name, m->peer_url, true);
        return 0;
}

static int member_copy(const struct fmember *m, struct eg_runtime_member *ret) {
        *ret = (struct eg_runtime_member){
                .name = strdup(m->name),
                .running = m->life == EG_LIFE_RUNNING,
                .life = m->life,
                .life_reason = m->life_reason ? strdup(m->life_reason) : NULL,
                .life_since_realtime_ms = m->life_since_ms,
                .data_kept = m->data_kept,
                .never_started = m->never_started,
                .initial = m->initial,
                .version = strdup(m->version),
                .spec_hash = m->hash ? strdup(m->hash) : NULL,
                .client_url = strdup(m->client_url),
                .peer_url = strdup(m->peer_url),
                .started_realtime_ms = m->started_ms,
        };
        return ret->name && ret->version && ret->client_url && ret->peer_url ? 0 : -ENOMEM;
}

static int cluster_copy(const struct fcluster *cl, struct eg_runtime_cluster *ret) {
        *ret = (struct eg_runtime_cluster){
                .namespace = strdup(cl->ns),
                .name = strdup(cl->name),
                .next_index = cl->next_index,
                .members = calloc(cl->n_members + 1, sizeof(struct eg_runtime_member)),
                .upstream_owned = cl->upstream_owned ? strdup(cl->upstream_owned) : NULL,
        };
        int r = ret->namespace && ret->name && ret->members ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < cl->n_members; i++) {
                r = member_copy(&cl->members[i], &ret->members[i]);
                ret->n_members++;
        }
        if (r < 0)
                eg_runtime_cluster_done(ret);
        return r;
}

/* ---- the runtime interface ---- */

static int fake_list(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                     struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct eg_runtime_cluster *v = calloc(fr->n_clusters + 1, sizeof(*v));
        size_t n = 0;
        int r = v ? 0 : -ENOMEM;
        for (; r >= 0 && n < fr->n_clusters; n++)
                r = cluster_copy(&fr->clusters[n], &v[n]);
        if (r < 0) {
                eg_runtime_clusters_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Each observation brings starting members one step nearer to running. */
static void cluster_tick(struct fake_runtime *fr, struct fcluster *cl) {
        for (size_t i = 0; i < cl->n_members; i++) {
                struct fmember *m = &cl->members[i];
                if (m->life != EG_LIFE_STARTING || m->starting_left == 0 || --m->starting_left > 0)
                        continue;
                member_life(m, EG_LIFE_RUNNING, NULL);
                fake_etcd_set_up(fr->fe, cl->ns, cl->name, m->name, m->peer_url, true);
        }
}

static int fake_observe(struct eg_runtime *rt, const char *ns, const char *name, unsigned flags,
                        struct eg_runtime_cluster *ret, struct eg_error *err) {
        (void)flags;
        struct fake_runtime *fr = fake_of(rt);
        struct fcluster *cl = cluster_find(fr, ns, name);
        if (fr->observe_error) {
                eg_error_set(err, "%s", fr->observe_error);
                return -EIO;
        }
        if (!cl)
                return -ENOENT;
        int r = cluster_copy(cl, ret);
        cluster_tick(fr, cl);
        return r;
}

static int fake_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                          struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        if (cluster_find(fr, t->namespace, t->name)) {
                eg_error_set(err, "cluster %s/%s exists", t->namespace, t->name);
                return -EEXIST;
        }
        if (fr->n_clusters == MAX_CLUSTERS || n > MAX_MEMBERS)
                return -ENOSPC;
        struct fcluster *cl = &fr->clusters[fr->n_clusters++];
        *cl = (struct fcluster){.ns = strdup(t->namespace), .name = strdup(t->name), .next_index = n};
        _cleanup_free_ char **peers = calloc(n + 1, sizeof(char *));
        int r = cl->ns && cl->name && peers ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct fmember *m = member_new(fr, cl, members[i], t->spec);
                r = m ? 0 : -ENOMEM;
                if (m) {
                        m->initial = true;
                        peers[i] = m->peer_url;
                }
        }
        if (r >= 0)
                r = fake_etcd_bootstrap(fr->fe, t->namespace, t->name, members, peers, n);
        fr->n_restores += r >= 0 && t->prepare_data;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = member_start(fr, cl, &cl->members[i], err);
        if (r < 0) {
                /* nothing that stays running */
                fake_etcd_forget(fr->fe, t->namespace, t->name);
                cluster_drop(fr, cl);
        }
        return r;
}

static int fake_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               char **ret_peer_url, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fcluster *cl = cluster_find(fr, t->namespace, t->name);
        struct fmember *m = cl && !member_find(fr, t->namespace, t->name, member) ? member_new(fr, cl, member, t->spec)
                                                                                  : NULL;
        if (!m) {
                eg_error_set(err, "cannot reserve member %s", member);
                return -EINVAL;
        }
        cl->next_index++;
        *ret_peer_url = strdup(m->peer_url);
        return *ret_peer_url ? 0 : -ENOMEM;
}

static int fake_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                             const char *initial_cluster, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fmember *m = member_find(fr, t->namespace, t->name, member);
        _cleanup_free_ char *self = m ? eg_strdup_printf("%s=%s", m->name, m->peer_url) : NULL;
        /* etcd would not start as a member the initial cluster does not name */
        if (!m || !self || !initial_cluster || !strstr(initial_cluster, self)) {
                eg_error_set(err, "cannot start %s with initial cluster %s", member,
                             initial_cluster ? initial_cluster : "(none)");
                return -EINVAL;
        }
        return member_start(fr, cluster_find(fr, t->namespace, t->name), m, err);
}

static int fake_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                               struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fcluster *cl = cluster_find(fr, ns, name);
        struct fmember *m = member_find(fr, ns, name, member);
        if (!m)
                return -ENOENT;
        _cleanup_free_ char *last = eg_strdup_printf("%s-%llu", name, (unsigned long long)(cl->next_index - 1));
        if (last && strcmp(last, member) == 0)
                cl->next_index--;
        member_drop(fr, cl, m);
        return 0;
}

static int fake_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                            bool delete_data, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fmember *m = member_find(fr, ns, name, member);
        if (m)
                member_drop(fr, cluster_find(fr, ns, name), m);
        return 0;
}

static int fake_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               const char *initial_cluster, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fmember *m = member_find(fr, t->namespace, t->name, member);
        if (!m || m->life == EG_LIFE_RUNNING || (!m->data_kept && !m->never_started)) {
                eg_error_set(err, "member %s cannot be restarted in place", member);
                return -ENODATA;
        }
        return member_start(fr, cluster_find(fr, t->namespace, t->name), m, err);
}

static int fake_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fmember *m = member_find(fr, t->namespace, t->name, member);
        if (!m)
                return -ENOENT;
        fake_etcd_set_up(fr->fe, t->namespace, t->name, member, NULL, false);
        set_str(&m->version, t->spec->version);
        free(m->hash);
        m->hash = member_hash(rt, t->spec);
        return member_start(fr, cluster_find(fr, t->namespace, t->name), m, err);
}

static bool fake_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member,
                                const struct eg_cluster_spec *spec) {
        return !fake_of(rt)->no_roll_in_place;
}

static int fake_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                               struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        struct fcluster *cl = cluster_find(fr, ns, name);
        if (cl)
                cluster_drop(fr, cl);
        fake_etcd_forget(fr->fe, ns, name);
        return 0;
}

static int fake_disown(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err) {
        struct fcluster *cl = cluster_find(fake_of(rt), ns, name);
        if (!cl)
                return -ENOENT;
        set_str(&cl->upstream_owned, NULL);
        return 0;
}

static int fake_record_event(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err) {
        struct fake_runtime *fr = fake_of(rt);
        fr->n_events++;
        fr->n_warnings += ev->warning;
        return 0;
}

static void fake_free(struct eg_runtime *rt) { fake_runtime_free(fake_of(rt)); }

static const struct eg_runtime_ops fake_ops = {
        .name = "fake",
        .list = fake_list,
        .observe = fake_observe,
        .bootstrap = fake_bootstrap,
        .prepare_member = fake_prepare_member,
        .start_member = fake_start_member,
        .release_member = fake_release_member,
        .stop_member = fake_stop_member,
        .restart_member = fake_restart_member,
        .upgrade_member = fake_upgrade_member,
        .rolls_in_place = fake_rolls_in_place,
        .delete_cluster = fake_delete_cluster,
        .member_hash = member_hash,
        .disown = fake_disown,
        .record_event = fake_record_event,
        .free = fake_free,
};

/* ---- the test's side ---- */

int fake_runtime_new(struct fake_etcd *fe, struct fake_runtime **ret) {
        struct fake_runtime *fr = calloc(1, sizeof(*fr));
        if (!fr)
                return -ENOMEM;
        fr->rt.ops = &fake_ops;
        fr->fe = fe;
        *ret = fr;
        return 0;
}

void fake_runtime_free(struct fake_runtime *fr) {
        if (!fr)
                return;
        while (fr->n_clusters > 0)
                cluster_drop(fr, &fr->clusters[fr->n_clusters - 1]);
        free(fr->refuse_starts);
        free(fr->observe_error);
        free(fr);
}

struct eg_runtime *fake_runtime_get(struct fake_runtime *fr) {
        return &fr->rt;
}

void fake_runtime_start_after(struct fake_runtime *fr, unsigned observations) { fr->start_after = observations; }

void fake_runtime_refuse_starts(struct fake_runtime *fr, const char *why) { set_str(&fr->refuse_starts, why); }

void fake_runtime_break_observe(struct fake_runtime *fr, const char *why) { set_str(&fr->observe_error, why); }

void fake_runtime_rolls_in_place(struct fake_runtime *fr, bool in_place) { fr->no_roll_in_place = !in_place; }

int fake_runtime_kill(struct fake_runtime *fr, const char *ns, const char *name, const char *member, bool keep_data) {
        struct fmember *m = member_find(fr, ns, name, member);
        if (!m)
                return -ENOENT;
        fake_etcd_set_up(fr->fe, ns, name, member, NULL, false);
        member_life(m, EG_LIFE_GONE, "exited");
        m->data_kept = keep_data;
        return 0;
}

int fake_runtime_fail(struct fake_runtime *fr, const char *ns, const char *name, const char *member,
                      const char *reason) {
        struct fmember *m = member_find(fr, ns, name, member);
        if (!m)
                return -ENOENT;
        fake_etcd_set_up(fr->fe, ns, name, member, NULL, false);
        member_life(m, EG_LIFE_FAILING, reason);
        return 0;
}

int fake_runtime_forget(struct fake_runtime *fr, const char *ns, const char *name, const char *member) {
        struct fmember *m = member_find(fr, ns, name, member);
        if (!m)
                return -ENOENT;
        member_drop(fr, cluster_find(fr, ns, name), m);
        return 0;
}

int fake_runtime_add_stray(struct fake_runtime *fr, const char *ns, const char *name, const char *member) {
        struct fcluster *cl = cluster_find(fr, ns, name);
        struct fmember *m = cl ? member_new(fr, cl, member, NULL) : NULL;
        if (!m)
                return -ENOENT;
        const struct fmember *first = &cl->members[0];
        set_str(&m->version, first->version);
        set_str(&m->hash, first->hash);
        m->never_started = false;
        m->data_kept = true;
        member_life(m, EG_LIFE_RUNNING, NULL);
        fake_etcd_set_up(fr->fe, ns, name, member, m->peer_url, true);
        return 0;
}

int fake_runtime_set_upstream_owned(struct fake_runtime *fr, const char *ns, const char *name, const char *what) {
        struct fcluster *cl = cluster_find(fr, ns, name);
        if (!cl)
                return -ENOENT;
        set_str(&cl->upstream_owned, what);
        return 0;
}

static const char *life_suffix(const struct fmember *m) {
        if (m->life == EG_LIFE_RUNNING)
                return "";
        if (m->life == EG_LIFE_GONE && m->never_started)
                return "(reserved)";
        return m->life == EG_LIFE_STARTING ? "(starting)" : m->life == EG_LIFE_FAILING ? "(failing)" : "(gone)";
}

char *fake_runtime_members(struct fake_runtime *fr, const char *ns, const char *name, bool with_version) {
        struct fcluster *cl = cluster_find(fr, ns, name);
        if (!cl)
                return NULL;
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < cl->n_members; i++) {
                const struct fmember *m = &cl->members[i];
                (void)eg_buf_printf(&b, "%s%s%s%s%s", b.len ? " " : "", m->name, with_version ? "@" : "",
                                    with_version ? m->version : "", life_suffix(m));
        }
        return eg_buf_steal(&b);
}

size_t fake_runtime_restores(struct fake_runtime *fr) { return fr->n_restores; }

size_t fake_runtime_events(struct fake_runtime *fr, size_t *ret_warnings) {
        if (ret_warnings)
                *ret_warnings = fr->n_warnings;
        return fr->n_events;
}
