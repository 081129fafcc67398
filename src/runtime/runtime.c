/* runtime: what every runtime shares, and the calls through its interface. */
#include <errno.h>
#include <stdlib.h>

#include "etcd-gitops/runtime.h"

const char *eg_member_life_to_string(enum eg_member_life l) {
        static const char *const names[] = {
                [EG_LIFE_RUNNING] = "running",
                [EG_LIFE_STARTING] = "starting",
                [EG_LIFE_FAILING] = "failing",
                [EG_LIFE_GONE] = "gone",
        };
        return (unsigned)l < EG_ELEMENTSOF(names) ? names[l] : NULL;
}

static void members_free(struct eg_runtime_member *members, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct eg_runtime_member *m = &members[i];
                free(m->name);
                free(m->version);
                free(m->spec_hash);
                free(m->client_url);
                free(m->peer_url);
                free(m->life_reason);
        }
        free(members);
}

void eg_runtime_cluster_done(struct eg_runtime_cluster *c) {
        if (!c)
                return;
        members_free(c->members, c->n_members);
        members_free(c->stuck, c->n_stuck);
        free(c->upstream_owned);
        free(c->namespace);
        free(c->name);
        *c = (struct eg_runtime_cluster){0};
}

void eg_runtime_clusters_free(struct eg_runtime_cluster *c, size_t n) {
        if (!c)
                return;
        for (size_t i = 0; i < n; i++)
                eg_runtime_cluster_done(&c[i]);
        free(c);
}

bool eg_runtime_supports(const struct eg_runtime *rt, enum eg_runtime_feature f) {
        const struct eg_runtime_ops *o = rt->ops;
        switch (f) {
        case EG_RUNTIME_RELEASE_MEMBER:
                return o->release_member;
        case EG_RUNTIME_RESTART_MEMBER:
                return o->restart_member;
        case EG_RUNTIME_FORCE_NEW_CLUSTER:
                return o->force_new_cluster;
        case EG_RUNTIME_CHANGE_FD:
                return o->change_fd;
        case EG_RUNTIME_DISOWN:
                return o->disown;
        case EG_RUNTIME_RECORD_EVENT:
                return o->record_event;
        }
        return false;
}

const char *eg_runtime_name(const struct eg_runtime *rt) { return rt->ops->name; }

bool eg_runtime_fetches_restores(const struct eg_runtime *rt) { return rt->ops->fetches_restores; }

int eg_runtime_list(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                    struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err) {
        return rt->ops->list(rt, namespaces, n_namespaces, ret, ret_n, err);
}

int eg_runtime_observe(struct eg_runtime *rt, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                       struct eg_error *err) {
        return rt->ops->observe(rt, ns, name, 0, ret, err);
}

int eg_runtime_look(struct eg_runtime *rt, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                    struct eg_error *err) {
        return rt->ops->observe(rt, ns, name, EG_OBSERVE_LOOK_ONLY, ret, err);
}

int eg_runtime_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                         struct eg_error *err) {
        return rt->ops->bootstrap(rt, t, members, n, err);
}

int eg_runtime_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              char **ret_peer_url, struct eg_error *err) {
        return rt->ops->prepare_member(rt, t, member, ret_peer_url, err);
}

int eg_runtime_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                            const char *initial_cluster, struct eg_error *err) {
        return rt->ops->start_member(rt, t, member, initial_cluster, err);
}

int eg_runtime_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                              struct eg_error *err) {
        return rt->ops->release_member ? rt->ops->release_member(rt, ns, name, member, err) : -EOPNOTSUPP;
}

int eg_runtime_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                           bool delete_data, struct eg_error *err) {
        return rt->ops->stop_member(rt, ns, name, member, delete_data, err);
}

int eg_runtime_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              const char *initial_cluster, struct eg_error *err) {
        return rt->ops->restart_member ? rt->ops->restart_member(rt, t, member, initial_cluster, err) : -EOPNOTSUPP;
}

int eg_runtime_force_new_cluster(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                                 struct eg_error *err) {
        return rt->ops->force_new_cluster ? rt->ops->force_new_cluster(rt, t, member, err) : -EOPNOTSUPP;
}

int eg_runtime_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              struct eg_error *err) {
        return rt->ops->upgrade_member(rt, t, member, err);
}

bool eg_runtime_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member,
                               const struct eg_cluster_spec *spec) {
        return !rt->ops->rolls_in_place || rt->ops->rolls_in_place(rt, ns, member, spec);
}

int eg_runtime_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                              struct eg_error *err) {
        return rt->ops->delete_cluster(rt, ns, name, delete_data, err);
}

int eg_runtime_change_fd(struct eg_runtime *rt, struct eg_error *err) {
        return rt->ops->change_fd ? rt->ops->change_fd(rt, err) : -EOPNOTSUPP;
}

char *eg_runtime_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        return rt->ops->member_hash(rt, spec);
}

int eg_runtime_etcd_access(struct eg_runtime *rt, const char *ns, const char *name, struct eg_etcd_options *ret,
                           struct eg_error *err) {
        return rt->ops->etcd_access ? rt->ops->etcd_access(rt, ns, name, ret, err) : 0;
}

int eg_runtime_sync_secret(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err) {
        return rt->ops->sync_secret ? rt->ops->sync_secret(rt, ns, name, err) : 0;
}

int eg_runtime_disown(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err) {
        return rt->ops->disown ? rt->ops->disown(rt, ns, name, err) : -EOPNOTSUPP;
}

int eg_runtime_record_event(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err) {
        return rt->ops->record_event ? rt->ops->record_event(rt, ev, err) : -EOPNOTSUPP;
}

void eg_runtime_free(struct eg_runtime *rt) {
        if (rt)
                rt->ops->free(rt);
}
