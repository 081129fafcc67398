/* Observing a cluster: what the runtime runs, what etcd says of its membership and of each
 * member, joined into the observed cluster the planner sees. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* What one running member's etcd answered. */
struct member_probe {
        bool reachable, healthy;
        uint64_t raft_index;
        int64_t revision;
};

/* The members' histories joined to what this look found. */
struct join {
        struct observation *o;
        struct cluster_track *t;
        bool *matched; /* per membership entry: a runtime member is it */
        int64_t restart_window_ms;
        int64_t now, real_now;
};

void observation_done(struct observation *o) {
        free(o->ns);
        free(o->name);
        eg_runtime_cluster_done(&o->rc);
        eg_etcd_member_list_done(&o->ml);
        free(o->etcd_error);
        free(o->leader_name);
        for (size_t i = 0; i < o->oc.n_members; i++) {
                free(o->oc.members[i].name);
                free(o->oc.members[i].version);
                free(o->oc.members[i].spec_hash);
                free(o->oc.members[i].life_reason);
        }
        free(o->oc.members);
        free(o->endpoints);
        *o = (struct observation){0};
}

static const struct eg_etcd_member *ml_find(const struct eg_etcd_member_list *ml, const char *name,
                                            const char *peer_url) {
        for (size_t i = 0; i < ml->n; i++) {
                const struct eg_etcd_member *m = &ml->members[i];
                if (m->name && *m->name && strcmp(m->name, name) == 0)
                        return m;
                if (peer_url)
                        for (size_t j = 0; j < m->n_peer_urls; j++)
                                if (strcmp(m->peer_urls[j], peer_url) == 0)
                                        return m;
        }
        return NULL;
}

static int observe_runtime(struct eg_reconciler *r, struct observation *o, bool look_only) {
        struct eg_error err = {0};
        int k = look_only ? eg_runtime_look(r->opt.runtime, o->ns, o->name, &o->rc, &err)
                          : eg_runtime_observe(r->opt.runtime, o->ns, o->name, &o->rc, &err);
        if (k < 0 && k != -ENOENT) {
                o->etcd_error = eg_strdup_printf("runtime: %s", err.message ? err.message : strerror(-k));
                eg_error_done(&err);
                return k;
        }
        eg_error_done(&err);
        o->rc_exists = k >= 0;
        o->oc.exists = o->rc_exists;
        o->oc.next_index = o->rc.next_index;
        o->oc.upstream_owned = o->rc.upstream_owned;
        o->endpoints = calloc(o->rc.n_members + 1, sizeof(char *));
        if (!o->endpoints)
                return -ENOMEM;
        for (size_t i = 0; i < o->rc.n_members; i++)
                if (o->rc.members[i].running && o->rc.members[i].client_url)
                        o->endpoints[o->n_endpoints++] = o->rc.members[i].client_url;
        return 0;
}

/* status answers at once; /health blocks while there is no leader (as during an election),
 * so it is asked only when one exists. */
static void probe_members(struct eg_etcd *c, struct observation *o, struct member_probe *probe) {
        for (size_t i = 0; i < o->rc.n_members; i++) {
                const struct eg_runtime_member *m = &o->rc.members[i];
                struct member_probe *p = &probe[i];
                if (!m->running || !m->client_url)
                        continue;
                struct eg_etcd_status st = {0};
                p->reachable = eg_etcd_status_of(c, m->client_url, &st, NULL) >= 0;
                if (p->reachable) {
                        p->raft_index = st.raft_index;
                        p->revision = st.revision;
                }
                if (p->reachable && st.leader != 0) {
                        p->healthy = eg_etcd_health_of(c, m->client_url, NULL) >= 0;
                        if (p->healthy && o->leader_id == 0)
                                o->leader_id = st.leader;
                }
                eg_etcd_status_done(&st);
        }
}

static void observe_etcd(struct eg_reconciler *r, struct cluster_track *t, struct observation *o,
                         struct member_probe *probe) {
        struct eg_error access_err = {0};
        struct eg_etcd *c = track_etcd(r, t, o->endpoints, o->n_endpoints, &access_err);
        if (c) {
                struct eg_error ee = {0};
                o->ml_ok = eg_etcd_member_list(c, &o->ml, &ee) >= 0;
                if (!o->ml_ok)
                        o->etcd_error = strdup(ee.message ? ee.message : "etcd did not answer");
                eg_error_done(&ee);
                probe_members(c, o, probe);
        } else if (access_err.message)
                o->etcd_error = eg_strdup_printf("runtime: %s", access_err.message);
        else if (o->rc_exists && o->rc.n_members > 0)
                o->etcd_error = strdup("no member process is running");
        eg_error_done(&access_err);
        o->oc.etcd_reachable = o->ml_ok;
}

static void join_membership(const struct join *j, struct eg_observed_member *om, const struct eg_etcd_member *em) {
        om->id = em->id;
        om->in_membership = true;
        om->is_learner = em->is_learner;
        om->is_leader = em->id == j->o->leader_id && j->o->leader_id != 0;
}

static void join_runtime_member(const struct join *j, const struct eg_runtime_member *m, const struct member_probe *p) {
        struct observation *o = j->o;
        struct eg_observed_member *om = &o->oc.members[o->oc.n_members++];
        om->name = strdup(m->name);
        om->version = m->version ? strdup(m->version) : NULL;
        om->spec_hash = m->spec_hash ? strdup(m->spec_hash) : NULL;
        om->in_runtime = true;
        om->running = m->running;
        om->healthy = p->healthy;
        om->reachable = p->reachable;
        om->raft_index = p->raft_index;
        om->revision = p->revision;
        om->life = m->life;
        om->unready = m->unready;
        om->life_reason = m->life_reason ? strdup(m->life_reason) : NULL;
        om->data_kept = m->data_kept;
        om->never_started = m->never_started;
        om->initial = m->initial;
        /* the runtime tells wall-clock times; the planner judges on the monotonic clock */
        if (m->started_realtime_ms > 0 && m->started_realtime_ms <= j->real_now)
                om->started_ms = j->now - (j->real_now - m->started_realtime_ms);
        if (m->life_since_realtime_ms > 0 && m->life_since_realtime_ms <= j->real_now)
                om->life_since_ms = j->now - (j->real_now - m->life_since_realtime_ms);
        const struct eg_etcd_member *em = o->ml_ok ? ml_find(&o->ml, m->name, m->peer_url) : NULL;
        if (em) {
                j->matched[em - o->ml.members] = true;
                join_membership(j, om, em);
        }
        track_member_seen(j->t, m->name, om, j->restart_window_ms, j->now);
        if (om->is_leader)
                o->leader_name = strdup(m->name);
}

/* A member etcd knows that the runtime does not run (one added that never started). */
static void join_membership_only(const struct join *j, const struct eg_etcd_member *em) {
        struct observation *o = j->o;
        struct eg_observed_member *om = &o->oc.members[o->oc.n_members++];
        om->name = em->name && *em->name ? strdup(em->name)
                                         : eg_strdup_printf("(unstarted %016llx)", (unsigned long long)em->id);
        join_membership(j, om, em);
        track_member_seen(j->t, om->name ? om->name : "", om, j->restart_window_ms, j->now);
}

static int observe_join(struct eg_reconciler *r, struct cluster_track *t, struct observation *o,
                        const struct member_probe *probe, int64_t now) {
        o->oc.members = calloc(o->rc.n_members + o->ml.n + 1, sizeof(struct eg_observed_member));
        _cleanup_free_ bool *matched = calloc(o->ml.n + 1, sizeof(bool));
        if (!o->oc.members || !matched)
                return -ENOMEM;
        struct join j = {.o = o,
                         .t = t,
                         .matched = matched,
                         .restart_window_ms = r->opt.policy.restart_window_ms,
                         .now = now,
                         .real_now = eg_now_realtime_ms()};
        for (size_t i = 0; i < o->rc.n_members; i++)
                join_runtime_member(&j, &o->rc.members[i], &probe[i]);
        for (size_t i = 0; i < o->ml.n; i++)
                if (!matched[i])
                        join_membership_only(&j, &o->ml.members[i]);
        return 0;
}

int observe(struct eg_reconciler *r, struct cluster_track *t, const char *ns, const char *name, bool look_only,
            struct observation *o, int64_t now) {
        *o = (struct observation){.ns = strdup(ns), .name = strdup(name)};
        if (!o->ns || !o->name)
                return -ENOMEM;
        int k = observe_runtime(r, o, look_only);
        if (k < 0)
                return k;
        _cleanup_free_ struct member_probe *probe = calloc(o->rc.n_members + 1, sizeof(*probe));
        if (!probe)
                return -ENOMEM;
        observe_etcd(r, t, o, probe);
        return observe_join(r, t, o, probe, now);
}
