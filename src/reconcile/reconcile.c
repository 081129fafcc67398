/* The reconcile pass: observe each cluster (runtime + etcd), plan, execute the first
 * step, record the decision in the audit log, write status. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/backup.h"
#include "internal.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
/* How often a converged cluster is looked at again; a killed member is noticed within
 * it. Each look costs a few etcd calls per member, so it balances failover time (target
 * 3 s) against an idle daemon's CPU (target 1 % of a core for 10 clusters). */
#define RECHECK_MS 1500
/* While something is starting or catching up, look sooner. */
#define RECHECK_BUSY_MS 100

/* Restarts in place remembered per member: enough to judge the policy's limit (the
 * planner is told how many fell in its window) and to space them out. */
#define RESTART_HISTORY 16

struct member_track {
        char *name;
        int64_t unhealthy_since_ms, unreachable_since_ms;
        int64_t last_healthy_ms;
        int64_t restart_ms[RESTART_HISTORY]; /* ring, newest at (n_restarts - 1) % RESTART_HISTORY */
        size_t n_restarts;
        int64_t restart_not_before_ms;
        bool failing; /* seen failing by the last pass */
};

struct cluster_track {
        char *ns, *name;
        int failures;
        int64_t next_attempt_ms;
        char *backoff_revision; /* the revision that failed: a new one is tried at once */
        char *recorded_revision; /* revision of the last audit record for this cluster */
        enum eg_plan_state recorded_state;
        char *recorded_reason;
        char *last_error;
        char *applied_revision; /* last revision at which the cluster was converged */
        int64_t quorum_lost_since_ms; /* monotonic; 0 while the planner finds quorum */
        struct member_track *members;
        size_t n_members;
        int64_t *pids; /* member processes seen running by the last observation */
        size_t n_pids;
        bool seen; /* touched this pass */
};

struct eg_reconciler {
        struct eg_reconciler_options opt;
        struct cluster_track *tracks;
        size_t n_tracks;
        /* the runtime's last list: why it failed, or what it skipped (logged once each) */
        char *list_error, *list_warning;
        size_t events_failing; /* platform events lost since the last one posted */
};

int eg_reconciler_new(const struct eg_reconciler_options *opt, struct eg_reconciler **ret) {
        struct eg_reconciler *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->opt = *opt;
        if (r->opt.etcd_timeout_ms <= 0)
                r->opt.etcd_timeout_ms = 1500;
        *ret = r;
        return 0;
}

static void track_done(struct cluster_track *t) {
        free(t->ns);
        free(t->name);
        free(t->recorded_revision);
        free(t->backoff_revision);
        free(t->recorded_reason);
        free(t->last_error);
        free(t->applied_revision);
        for (size_t i = 0; i < t->n_members; i++)
                free(t->members[i].name);
        free(t->members);
        free(t->pids);
}

static void track_pids(struct cluster_track *t, const struct eg_runtime_cluster *rc) {
        int64_t *pids = calloc(rc->n_members + 1, sizeof(int64_t));
        size_t n = 0;
        for (size_t i = 0; pids && i < rc->n_members; i++)
                if (rc->members[i].running && rc->members[i].pid > 0)
                        pids[n++] = rc->members[i].pid;
        free(t->pids);
        t->pids = pids;
        t->n_pids = pids ? n : 0;
}

int eg_reconciler_member_pids(struct eg_reconciler *r, int64_t **ret, size_t *ret_n) {
        size_t n = 0, k = 0;
        for (size_t i = 0; i < r->n_tracks; i++)
                n += r->tracks[i].n_pids;
        int64_t *v = n ? calloc(n, sizeof(int64_t)) : NULL;
        if (n && !v)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_tracks; i++)
                for (size_t j = 0; j < r->tracks[i].n_pids; j++)
                        v[k++] = r->tracks[i].pids[j];
        *ret = v;
        *ret_n = n;
        return 0;
}

void eg_reconciler_free(struct eg_reconciler *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_tracks; i++)
                track_done(&r->tracks[i]);
        free(r->tracks);
        free(r->list_error);
        free(r->list_warning);
        free(r);
}

static struct cluster_track *track_get(struct eg_reconciler *r, const char *ns, const char *name) {
        for (size_t i = 0; i < r->n_tracks; i++)
                if (strcmp(r->tracks[i].ns, ns) == 0 && strcmp(r->tracks[i].name, name) == 0)
                        return &r->tracks[i];
        struct cluster_track *t = realloc(r->tracks, (r->n_tracks + 1) * sizeof(*t));
        if (!t)
                return NULL;
        r->tracks = t;
        t = &r->tracks[r->n_tracks];
        *t = (struct cluster_track){.ns = strdup(ns), .name = strdup(name), .recorded_state = -1};
        if (!t->ns || !t->name) {
                track_done(t);
                return NULL;
        }
        r->n_tracks++;
        return t;
}

static struct member_track *track_member(struct cluster_track *t, const char *member) {
        for (size_t i = 0; i < t->n_members; i++)
                if (strcmp(t->members[i].name, member) == 0)
                        return &t->members[i];
        struct member_track *n = realloc(t->members, (t->n_members + 1) * sizeof(*n));
        if (!n)
                return NULL;
        t->members = n;
        n = &t->members[t->n_members];
        *n = (struct member_track){.name = strdup(member)};
        if (!n->name)
                return NULL;
        t->n_members++;
        return n;
}

/* Whether a member began failing since the last pass: the wait it causes is recorded then,
 * with the platform's reason, even when the cluster was waiting already. */
static bool began_failing(struct cluster_track *t, const struct eg_observed_cluster *oc) {
        bool began = false;
        for (size_t i = 0; i < oc->n_members; i++) {
                const struct eg_observed_member *m = &oc->members[i];
                struct member_track *mt = m->in_runtime ? track_member(t, m->name) : NULL;
                if (!mt)
                        continue;
                bool failing = m->life == EG_LIFE_FAILING;
                began |= failing && !mt->failing;
                mt->failing = failing;
        }
        return began;
}

/* Remembers when a condition was first seen false, so "dead after N seconds" and "quorum
 * lost after a grace" can be judged by the pure planner from a timestamp. */
static int64_t since(int64_t *first_seen, bool ok, int64_t now) {
        if (ok)
                *first_seen = 0;
        else if (*first_seen == 0)
                *first_seen = now;
        return *first_seen;
}

static unsigned restarts_within(const struct member_track *m, int64_t window_ms, int64_t now) {
        unsigned n = 0;
        size_t kept = m->n_restarts < RESTART_HISTORY ? m->n_restarts : RESTART_HISTORY;
        for (size_t i = 0; i < kept; i++)
                if (now - m->restart_ms[i] < window_ms)
                        n++;
        return n;
}

/* A restart in place is spaced from the next by 1 s doubling to 60 s, counted over the
 * restarts within the policy's window. */
static void track_restart(struct cluster_track *t, const char *member, int64_t window_ms, int64_t now) {
        struct member_track *m = track_member(t, member);
        if (!m)
                return;
        m->restart_ms[m->n_restarts++ % RESTART_HISTORY] = now;
        unsigned n = restarts_within(m, window_ms, now);
        int64_t delay = BACKOFF_FIRST_MS;
        for (unsigned i = 1; i < n && delay < BACKOFF_MAX_MS; i++)
                delay *= 2;
        m->restart_not_before_ms = now + (delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS);
}

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

static int observe(struct eg_reconciler *r, struct cluster_track *t, const char *ns, const char *name,
                   struct observation *o, int64_t now) {
        struct eg_error err = {0};
        *o = (struct observation){.ns = strdup(ns), .name = strdup(name)};
        if (!o->ns || !o->name)
                return -ENOMEM;
        int k = r->opt.runtime->ops->observe(r->opt.runtime, ns, name, &o->rc, &err);
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

        struct eg_error access_err = {0};
        struct eg_etcd *c = reconcile_etcd_client(&r->opt, ns, name, o->endpoints, o->n_endpoints, &access_err);
        bool *healthy = calloc(2 * (o->rc.n_members + 1), sizeof(bool));
        bool *reachable = healthy ? healthy + o->rc.n_members + 1 : NULL;
        _cleanup_free_ uint64_t *raft_index = calloc(o->rc.n_members + 1, sizeof(uint64_t));
        _cleanup_free_ int64_t *revision = calloc(o->rc.n_members + 1, sizeof(int64_t));
        if (!healthy || !raft_index || !revision) {
                free(healthy);
                eg_etcd_free(c);
                eg_error_done(&access_err);
                return -ENOMEM;
        }
        if (c) {
                struct eg_etcd_error ee = {0};
                o->ml_ok = eg_etcd_member_list(c, &o->ml, &ee) >= 0;
                if (!o->ml_ok)
                        o->etcd_error = strdup(ee.message ? ee.message : "etcd did not answer");
                eg_etcd_error_done(&ee);
                for (size_t i = 0; i < o->rc.n_members; i++) {
                        const struct eg_runtime_member *m = &o->rc.members[i];
                        if (!m->running || !m->client_url)
                                continue;
                        /* status answers at once; /health blocks while there is no leader
                         * (as during an election), so it is asked only when one exists */
                        struct eg_etcd_status st = {0};
                        reachable[i] = eg_etcd_status_of(c, m->client_url, &st, NULL) >= 0;
                        if (reachable[i]) {
                                raft_index[i] = st.raft_index;
                                revision[i] = st.revision;
                        }
                        if (reachable[i] && st.leader != 0) {
                                healthy[i] = eg_etcd_health_of(c, m->client_url, NULL) >= 0;
                                if (healthy[i] && o->leader_id == 0)
                                        o->leader_id = st.leader;
                        }
                        eg_etcd_status_done(&st);
                }
                eg_etcd_free(c);
        } else if (access_err.message)
                o->etcd_error = eg_strdup_printf("runtime: %s", access_err.message);
        else if (o->rc_exists && o->rc.n_members > 0)
                o->etcd_error = strdup("no member process is running");
        eg_error_done(&access_err);
        o->oc.etcd_reachable = o->ml_ok;

        size_t cap = o->rc.n_members + o->ml.n;
        o->oc.members = calloc(cap + 1, sizeof(struct eg_observed_member));
        bool *matched = calloc(o->ml.n + 1, sizeof(bool));
        if (!o->oc.members || !matched) {
                free(healthy);
                free(matched);
                return -ENOMEM;
        }
        int64_t real_now = eg_now_realtime_ms();
        for (size_t i = 0; i < o->rc.n_members; i++) {
                const struct eg_runtime_member *m = &o->rc.members[i];
                struct eg_observed_member *om = &o->oc.members[o->oc.n_members++];
                om->name = strdup(m->name);
                om->version = m->version ? strdup(m->version) : NULL;
                om->spec_hash = m->spec_hash ? strdup(m->spec_hash) : NULL;
                om->in_runtime = true;
                om->running = m->running;
                om->healthy = healthy[i];
                om->reachable = reachable[i];
                om->raft_index = raft_index[i];
                om->revision = revision[i];
                om->life = m->life;
                om->life_reason = m->life_reason ? strdup(m->life_reason) : NULL;
                om->data_kept = m->data_kept;
                om->never_started = m->never_started;
                om->initial = m->initial;
                if (m->started_realtime_ms > 0 && m->started_realtime_ms <= real_now)
                        om->started_ms = now - (real_now - m->started_realtime_ms);
                if (m->life_since_realtime_ms > 0 && m->life_since_realtime_ms <= real_now)
                        om->life_since_ms = now - (real_now - m->life_since_realtime_ms);
                if (o->ml_ok) {
                        const struct eg_etcd_member *em = ml_find(&o->ml, m->name, m->peer_url);
                        if (em) {
                                matched[em - o->ml.members] = true;
                                om->id = em->id;
                                om->in_membership = true;
                                om->is_learner = em->is_learner;
                                om->is_leader = em->id == o->leader_id && o->leader_id != 0;
                        }
                }
                struct member_track *mt = track_member(t, m->name);
                if (mt) {
                        if (om->healthy)
                                mt->last_healthy_ms = now;
                        om->healthy_since_start = om->started_ms != 0 && mt->last_healthy_ms >= om->started_ms;
                        om->unhealthy_since_ms = since(&mt->unhealthy_since_ms, om->healthy, now);
                        om->unreachable_since_ms = since(&mt->unreachable_since_ms, om->reachable, now);
                        om->restarts = restarts_within(mt, r->opt.policy.restart_window_ms, now);
                        om->restart_not_before_ms = mt->restart_not_before_ms;
                } else
                        om->unhealthy_since_ms = om->unreachable_since_ms = now;
                if (om->is_leader)
                        o->leader_name = strdup(m->name);
        }
        for (size_t i = 0; i < o->ml.n; i++) {
                if (matched[i])
                        continue;
                const struct eg_etcd_member *em = &o->ml.members[i];
                struct eg_observed_member *om = &o->oc.members[o->oc.n_members++];
                om->name = em->name && *em->name ? strdup(em->name)
                                                 : eg_strdup_printf("(unstarted %016llx)", (unsigned long long)em->id);
                om->id = em->id;
                om->in_membership = true;
                om->is_learner = em->is_learner;
                om->is_leader = em->id == o->leader_id && o->leader_id != 0;
                struct member_track *mt = track_member(t, om->name ? om->name : "");
                om->unhealthy_since_ms = mt ? since(&mt->unhealthy_since_ms, false, now) : now;
                om->unreachable_since_ms = mt ? since(&mt->unreachable_since_ms, false, now) : now;
        }
        free(healthy);
        free(matched);
        return 0;
}

/* "name=peerURL,..." from the membership right after a member was added; members that
 * have not started yet carry no name in etcd, so they are named from the runtime. */
static const char *state_decision(enum eg_plan_state s) {
        switch (s) {
        case EG_PLAN_CONVERGED:
        case EG_PLAN_ABSENT:
                return "noop";
        case EG_PLAN_WAITING:
                return "waiting";
        case EG_PLAN_BLOCKED:
                return "blocked";
        case EG_PLAN_PAUSED:
                return "paused";
        case EG_PLAN_QUORUM_LOST:
                return "quorum-lost";
        case EG_PLAN_UNTOUCHED:
                return "invalid";
        default:
                return "noop";
        }
}

/* Errors reported for this object, joined, for the audit record of an untouched cluster. */
static char *object_errors(const struct eg_desired_set *d, const char *ns, const char *name,
                           const struct eg_diag **ret_first) {
        struct eg_buf b;
        eg_buf_init(&b, 16384);
        *ret_first = NULL;
        for (size_t i = 0; d && i < d->n_diags; i++) {
                const struct eg_diag *g = &d->diags[i];
                if (g->severity != EG_SEVERITY_ERROR || !g->has_object || g->kind != EG_KIND_CLUSTER ||
                    !g->name || strcmp(g->name, name) != 0 || strcmp(g->namespace ? g->namespace : "default", ns) != 0)
                        continue;
                if (!*ret_first)
                        *ret_first = g;
                _cleanup_free_ char *s = eg_diag_format(g);
                if (s && (b.len ? eg_buf_puts(&b, "; ") : 0) >= 0)
                        (void)eg_buf_puts(&b, s);
        }
        return b.len ? eg_buf_steal(&b) : (eg_buf_done(&b), NULL);
}

/* A decision told to the platform as well. Its failure is no part of the step: logged when posting
 * starts failing and when it works again, each loss counted. */
static void platform_event(struct eg_reconciler *r, const struct eg_runtime_event *ev) {
        struct eg_runtime *rt = r->opt.runtime;
        struct eg_error err = {0};
        if (rt->ops->record_event(rt, ev, &err) >= 0) {
                if (r->events_failing > 0)
                        eg_log_info("events post again; %zu were lost (the audit log has those decisions)",
                                    r->events_failing);
                r->events_failing = 0;
        } else {
                if (r->events_failing++ == 0)
                        eg_log_warning("%s/%s: cannot post the event of decision %s: %s (the audit log still has "
                                       "every decision; not logged again until an event posts)",
                                       ev->namespace, ev->name, ev->decision, err.message ? err.message : "?");
                if (r->opt.on_event)
                        r->opt.on_event(r->opt.event_userdata,
                                        &(struct eg_reconcile_event){.kind = EG_EVENT_PLATFORM_EVENT_LOST,
                                                                     .namespace = ev->namespace, .name = ev->name,
                                                                     .decision = ev->decision});
        }
        eg_error_done(&err);
}

static void audit(struct eg_reconciler *r, const struct eg_revision_info *rev, const struct eg_object *obj,
                  const struct eg_diag *diag, const char *ns, const char *name, const char *decision,
                  const char *member, const char *reason, const char *outcome, int64_t duration_ms,
                  const char *error) {
        if (r->opt.on_event) {
                struct eg_reconcile_event ev = {
                        .kind = EG_EVENT_DECISION, .namespace = ns, .name = name,
                        .revision = rev ? rev->revision : NULL,
                        .commit = obj && obj->origin.commit ? obj->origin.commit : rev ? rev->commit : NULL,
                        .decision = decision, .member = member, .reason = reason, .outcome = outcome, .error = error,
                };
                r->opt.on_event(r->opt.event_userdata, &ev);
        }
        if (!r->opt.dry_run && r->opt.runtime->ops->record_event)
                platform_event(r, &(struct eg_runtime_event){
                                          .namespace = ns, .name = name, .member = member, .decision = decision,
                                          .message = reason, .error = error,
                                          .warning = outcome && (strcmp(outcome, "failed") == 0 ||
                                                                 strcmp(outcome, "blocked") == 0)});
        if (!r->opt.audit)
                return;
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", ns, name);
        struct eg_audit_record rec = {
                .revision = (char *)(rev ? rev->revision : NULL),
                .commit = (char *)(obj && obj->origin.commit ? obj->origin.commit : rev ? rev->commit : NULL),
                .path = obj ? obj->origin.path : diag ? diag->path : NULL,
                .line = obj ? obj->origin.line : diag ? diag->line : 0,
                .blob = obj ? obj->origin.blob : NULL,
                .cluster = cluster,
                .decision = (char *)decision,
                .member = (char *)member,
                .reason = (char *)reason,
                .outcome = (char *)outcome,
                .duration_ms = duration_ms,
                .error = (char *)error,
        };
        int k = eg_audit_append(r->opt.audit, &rec);
        if (k < 0)
                eg_log_error_errno(k, "cannot append to the audit log: %m");
        free(rec.prev);
        free(rec.hash);
}

static bool str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static void set_str(char **dst, const char *src) {
        free(*dst);
        *dst = src ? strdup(src) : NULL;
}

/* A failing cluster waits 1 s, 2 s, 4 s ... up to a minute, and never blocks the others. The
 * wait holds for the revision that failed, whether or not its failure made an audit record. */
static void track_backoff(struct cluster_track *t, const struct eg_revision_info *rev) {
        t->failures++;
        int64_t delay = BACKOFF_FIRST_MS;
        for (int i = 1; i < t->failures && delay < BACKOFF_MAX_MS; i++)
                delay *= 2;
        if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        t->next_attempt_ms = eg_now_monotonic_ms() + delay;
        set_str(&t->backoff_revision, rev ? rev->revision : NULL);
}

/* The pass leaves a cluster that failed or backs off; the next one comes when its back-off
 * ends, not at once. */
static void pass_backing_off(const struct cluster_track *t, struct eg_pass_result *res) {
        res->n_failed++;
        res->all_converged = false;
        if (!res->next_due_ms || t->next_attempt_ms < res->next_due_ms)
                res->next_due_ms = t->next_attempt_ms;
}

/* Members on an old template that the runtime cannot roll in place are replaced instead. */
static void mark_replace_to_roll(struct eg_runtime *rt, const char *ns, const struct eg_object *obj, const char *hash,
                                 struct eg_observed_cluster *oc) {
        for (size_t i = 0; obj && hash && rt->ops->rolls_in_place && i < oc->n_members; i++) {
                struct eg_observed_member *om = &oc->members[i];
                if (om->in_runtime && om->spec_hash && strcmp(om->spec_hash, hash) != 0)
                        om->replace_to_roll = !rt->ops->rolls_in_place(rt, ns, om->name, &obj->cluster);
        }
}

/* The snapshot fetched for a restore serves this pass only (the next one fetches again):
 * a copy of a whole database is not left in the state dir. */
static void snapshot_discard(char **path) {
        if (*path)
                unlink(*path);
        free(*path);
}

static void reconcile_one(struct eg_reconciler *r, const struct eg_desired_set *desired,
                          const struct eg_revision_info *rev, const char *ns, const char *name,
                          bool prune_allowed, struct eg_pass_result *res) {
        int64_t now = eg_now_monotonic_ms();
        struct cluster_track *t = track_get(r, ns, name);
        if (!t)
                return;
        t->seen = true;
        res->n_clusters++;
        const struct eg_object *obj = desired ? eg_desired_set_find(desired, EG_KIND_CLUSTER, ns, name) : NULL;
        bool invalid = desired && eg_desired_set_object_has_errors(desired, EG_KIND_CLUSTER, ns, name);
        bool revision_changed = rev && !str_eq(rev->revision, t->recorded_revision);
        if (t->next_attempt_ms > now && (!rev || str_eq(rev->revision, t->backoff_revision))) {
                pass_backing_off(t, res);
                return;
        }

        struct observation o;
        int k = observe(r, t, ns, name, &o, now);
        if (k < 0) {
                const char *why = o.etcd_error ? o.etcd_error : strerror(-k);
                /* once per distinct error: a cluster that stays unobservable must not flood the log */
                if (!str_eq(t->last_error, why)) {
                        audit(r, rev, obj, NULL, ns, name, "failed", NULL, "cannot observe the cluster", "failed", 0, why);
                        eg_log_error("%s/%s: cannot observe the cluster: %s", ns, name, why);
                }
                set_str(&t->last_error, why);
                track_backoff(t, rev);
                observation_done(&o);
                pass_backing_off(t, res);
                return;
        }

        track_pids(t, &o.rc);
        bool began = began_failing(t, &o.oc);
        struct eg_runtime *rt = r->opt.runtime;
        const struct eg_object *refused = NULL;
        const struct eg_object *restore =
                obj ? pending_restore(r->opt.state_dir, desired, ns, name, o.rc_exists, &refused) : NULL;
        __attribute__((cleanup(snapshot_discard))) char *snapshot = NULL;
        struct eg_restore_info rinfo = {0};
        if (refused && (revision_changed || t->recorded_state != EG_PLAN_BLOCKED))
                audit(r, rev, refused, NULL, ns, name, "blocked", NULL,
                      "EtcdRestore names a running cluster; set spec.overwrite: true to replace it", "blocked", 0,
                      NULL);
        if (restore && !r->opt.dry_run) {
                /* nothing is torn down or started before the snapshot is here and verified */
                struct eg_error rerr = {0};
                int64_t t0 = eg_now_monotonic_ms();
                k = restore_ready(rt, ns, &restore->restore, &rerr);
                if (k >= 0)
                        k = eg_restore_fetch(&restore->restore, ns, r->opt.state_dir, &snapshot, &rinfo, &rerr);
                if (k < 0) {
                        audit(r, rev, restore, NULL, ns, name, "restore", NULL, "fetch and verify the snapshot to restore",
                              "failed", eg_now_monotonic_ms() - t0, rerr.message);
                        restore_record(r->opt.state_dir, ns, name, restore, &rinfo, false, rerr.message);
                        if (!str_eq(t->last_error, rerr.message))
                                eg_log_error("%s/%s: restore failed: %s", ns, name, rerr.message);
                        set_str(&t->last_error, rerr.message);
                        track_backoff(t, rev);
                        pass_backing_off(t, res);
                        eg_restore_info_done(&rinfo);
                        eg_error_done(&rerr);
                        observation_done(&o);
                        return;
                }
                eg_error_done(&rerr);
        }
        _cleanup_free_ char *hash = obj ? rt->ops->member_hash(rt, &obj->cluster) : NULL;
        mark_replace_to_roll(rt, ns, obj, hash, &o.oc);
        int64_t auto_recover_ms = 0;
        const char *ann = obj ? json_string_value(json_object_get(obj->meta.annotations, EG_ANN_AUTO_RECOVER_AFTER))
                              : NULL;
        /* validated with the manifest: a bad value never gets here */
        if (ann && eg_parse_duration_ms(ann, &auto_recover_ms) < 0)
                auto_recover_ms = 0;
        struct eg_plan_input in = {
                .auto_recover_after_ms = auto_recover_ms,
                .quorum_lost_since_ms = t->quorum_lost_since_ms,
                .restore_from = restore ? (rinfo.object ? rinfo.object : restore_source(&restore->restore)) : NULL,
                .namespace = ns,
                .name = name,
                .spec = obj ? &obj->cluster : NULL,
                .spec_invalid = invalid,
                .desired_hash = hash,
                .observed = &o.oc,
                .policy = &r->opt.policy,
                .prune_allowed = prune_allowed,
                .now_ms = now,
        };
        struct eg_plan plan = {0};
        if (eg_plan_cluster(&in, &plan) < 0) {
                observation_done(&o);
                return;
        }

        if (plan.state != EG_PLAN_QUORUM_LOST)
                t->quorum_lost_since_ms = 0;
        else if (t->quorum_lost_since_ms == 0)
                t->quorum_lost_since_ms = now;
        const char *outcome = NULL;
        struct eg_error err = {0};
        if (plan.state == EG_PLAN_PROGRESSING && plan.n_actions > 0) {
                const struct eg_action *a = &plan.actions[0];
                struct eg_runtime_target tg = {.namespace = ns, .name = name, .spec = obj ? &obj->cluster : NULL,
                                               .revision = rev ? rev->revision : NULL};
                struct restore_seed seed = {0};
                k = 0;
                if (snapshot && a->kind == EG_ACTION_BOOTSTRAP) {
                        tg.prepare_data = restore_prepare_data;
                        tg.prepare_data_userdata = snapshot;
                        if (rt->ops->fetches_restores &&
                            (k = restore_seed_init(&seed, r->opt.state_dir, ns, &restore->restore, rinfo.object,
                                                   &err)) >= 0)
                                tg.seed = &seed.seed;
                }
                int64_t t0 = eg_now_monotonic_ms();
                if (r->opt.dry_run) {
                        k = 0;
                        outcome = "dry-run";
                } else {
                        if (k >= 0)
                                k = reconcile_execute(&r->opt, &tg, &o, a, &err);
                        outcome = k >= 0 ? "ok" : k == -EAGAIN ? NULL : "failed";
                        for (size_t i = 0; a->kind == EG_ACTION_RESTART && i < a->n_members; i++)
                                track_restart(t, a->members[i], r->opt.policy.restart_window_ms, t0);
                }
                int64_t dt = eg_now_monotonic_ms() - t0;
                restore_seed_done(&seed);
                if (k == -EAGAIN) {
                        /* etcd: learner not caught up yet; an expected wait, not a failure */
                        plan.state = EG_PLAN_WAITING;
                        free(plan.reason);
                        plan.reason = TAKE_PTR(err.message);
                } else {
                        bool dry_seen = r->opt.dry_run && !revision_changed && t->recorded_state == plan.state &&
                                        str_eq(t->recorded_reason, a->reason);
                        /* a teardown for a restore is the EtcdRestore's doing */
                        if (!dry_seen)
                                audit(r, rev, a->kind == EG_ACTION_RESTORE_REPLACE ? restore : obj, NULL, ns, name,
                                      eg_action_kind_to_string(a->kind), a->member, a->reason, outcome, dt, err.message);
                        res->n_actions++;
                        if (k < 0) {
                                eg_log_error("%s/%s: %s %s failed: %s", ns, name, eg_action_kind_to_string(a->kind),
                                             a->member ? a->member : "", err.message);
                                set_str(&t->last_error, err.message);
                                track_backoff(t, rev);
                                res->n_failed++;
                        } else {
                                if (snapshot && a->kind == EG_ACTION_BOOTSTRAP)
                                        restore_record(r->opt.state_dir, ns, name, restore, &rinfo, true, NULL);
                                eg_log_info("%s/%s: %s%s%s%s: %s", ns, name, r->opt.dry_run ? "would " : "",
                                            eg_action_kind_to_string(a->kind), a->member ? " " : "",
                                            a->member ? a->member : "", a->reason);
                                t->failures = 0;
                                t->next_attempt_ms = 0;
                                set_str(&t->last_error, NULL);
                        }
                        set_str(&t->recorded_revision, rev ? rev->revision : NULL);
                        t->recorded_state = plan.state;
                        set_str(&t->recorded_reason, a->reason);
                }
        }

        if (plan.state != EG_PLAN_PROGRESSING) {
                if (plan.state == EG_PLAN_CONVERGED || plan.state == EG_PLAN_PAUSED)
                        res->n_converged++;
                if (plan.state == EG_PLAN_BLOCKED || plan.state == EG_PLAN_QUORUM_LOST || plan.state == EG_PLAN_UNTOUCHED)
                        res->n_blocked++;
                if (plan.state == EG_PLAN_CONVERGED && rev)
                        set_str(&t->applied_revision, rev->revision);
                bool changed = t->recorded_state != plan.state || began ||
                               (plan.state != EG_PLAN_WAITING && !str_eq(t->recorded_reason, plan.reason));
                if (revision_changed || changed) {
                        const struct eg_diag *first = NULL;
                        _cleanup_free_ char *errors = plan.state == EG_PLAN_UNTOUCHED
                                                              ? object_errors(desired, ns, name, &first) : NULL;
                        const char *reason = plan.reason ? plan.reason : "converged: nothing to do";
                        audit(r, rev, obj, first, ns, name, state_decision(plan.state), NULL, reason,
                              plan.state == EG_PLAN_BLOCKED || plan.state == EG_PLAN_QUORUM_LOST ||
                                              plan.state == EG_PLAN_UNTOUCHED
                                      ? "blocked"
                                      : "skipped",
                              0, errors);
                        if (plan.state == EG_PLAN_QUORUM_LOST)
                                eg_log_error("%s/%s: QUORUM LOST: %s", ns, name, plan.reason);
                        else if (plan.state == EG_PLAN_BLOCKED || plan.state == EG_PLAN_UNTOUCHED)
                                eg_log_warning("%s/%s: %s%s%s", ns, name, reason, errors ? ": " : "",
                                               errors ? errors : "");
                        set_str(&t->recorded_revision, rev ? rev->revision : NULL);
                        t->recorded_state = plan.state;
                        set_str(&t->recorded_reason, plan.reason);
                        if (plan.state == EG_PLAN_UNTOUCHED)
                                set_str(&t->last_error, errors);
                }
        }

        bool busy = plan.state == EG_PLAN_PROGRESSING || plan.state == EG_PLAN_WAITING;
        int64_t due = t->next_attempt_ms > now ? t->next_attempt_ms
                                               : now + (busy && !r->opt.dry_run ? (plan.state == EG_PLAN_PROGRESSING && k >= 0 ? 0 : RECHECK_BUSY_MS) : RECHECK_MS);
        if (!res->next_due_ms || due < res->next_due_ms)
                res->next_due_ms = due;

        if (r->opt.state_dir) {
                if (plan.state == EG_PLAN_ABSENT && !o.rc_exists)
                        status_remove(r->opt.state_dir, ns, name);
                else if (!(plan.n_actions && plan.actions[0].kind == EG_ACTION_PRUNE && outcome && strcmp(outcome, "ok") == 0)) {
                        json_t *st = status_build(&o, obj ? &obj->cluster : NULL, &plan, t->applied_revision,
                                                  rev ? rev->commit : NULL, t->last_error, eg_now_realtime_ms());
                        if (st) {
                                status_write(r->opt.state_dir, ns, name, st);
                                json_decref(st);
                        }
                } else
                        status_remove(r->opt.state_dir, ns, name);
        }
        if (plan.state != EG_PLAN_CONVERGED && plan.state != EG_PLAN_PAUSED && plan.state != EG_PLAN_ABSENT)
                res->all_converged = false;
        /* every pass, where the audit log keeps only changes: how long a wait really lasted */
        eg_log_debug("%s/%s: pass in %" PRId64 " ms, %s: %s; next in %" PRId64 " ms", ns, name,
                     eg_now_monotonic_ms() - now, eg_plan_state_to_string(plan.state),
                     plan.reason ? plan.reason : "-", due - eg_now_monotonic_ms());
        if (r->opt.on_event) {
                struct eg_reconcile_event ev = {
                        .kind = EG_EVENT_CLUSTER_PASS, .namespace = ns, .name = name,
                        .revision = rev ? rev->revision : NULL, .commit = rev ? rev->commit : NULL,
                        .duration_ms = eg_now_monotonic_ms() - now, .state = plan.state,
                        .desired = obj ? (size_t)obj->cluster.size : 0,
                };
                for (size_t i = 0; i < o.oc.n_members; i++) {
                        const struct eg_observed_member *m = &o.oc.members[i];
                        ev.ready += m->in_runtime && m->running && m->healthy && m->in_membership;
                        if (m->in_membership && !m->is_learner) {
                                ev.voters++;
                                ev.healthy_voters += m->healthy;
                        }
                }
                ev.quorum = ev.voters > 0 && ev.healthy_voters >= eg_quorum(ev.voters);
                r->opt.on_event(r->opt.event_userdata, &ev);
        }
        eg_error_done(&err);
        eg_restore_info_done(&rinfo);
        eg_plan_done(&plan);
        observation_done(&o);
}

struct cluster_key {
        const char *ns, *name;
};

static bool keys_has(const struct cluster_key *keys, size_t n, const char *ns, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i].ns, ns) == 0 && strcmp(keys[i].name, name) == 0)
                        return true;
        return false;
}

/* desired ∪ runtime clusters, filtered by namespace, and whether this pass may prune.
 * *ret_runtime holds what the runtime listed (caller frees); keys point into it and
 * into desired. */
static int cluster_keys(struct eg_reconciler *r, const struct eg_desired_set *desired,
                        struct eg_runtime_cluster **ret_runtime, size_t *ret_n_runtime,
                        struct cluster_key **ret_keys, size_t *ret_n, bool *ret_prune_allowed) {
        struct eg_error err = {0};
        struct eg_runtime_cluster *rcs = NULL;
        size_t n_rcs = 0, n_desired = desired ? desired->n_objects : 0, n_ns = 0;
        /* where the source names clusters: a runtime that may not list every namespace looks there */
        _cleanup_free_ const char **nss = desired ? calloc(n_desired + 1, sizeof(*nss)) : NULL;
        if (desired && !nss)
                return -ENOMEM;
        for (size_t i = 0; i < n_desired; i++) {
                const struct eg_object *obj = desired->objects[i];
                bool seen = false;
                if (obj->kind != EG_KIND_CLUSTER ||
                    (r->opt.namespace && strcmp(r->opt.namespace, obj->meta.namespace) != 0))
                        continue;
                for (size_t j = 0; j < n_ns && !seen; j++)
                        seen = strcmp(nss[j], obj->meta.namespace) == 0;
                if (!seen)
                        nss[n_ns++] = obj->meta.namespace;
        }
        int k = r->opt.runtime->ops->list(r->opt.runtime, nss, n_ns, &rcs, &n_rcs, &err);
        if (k < 0) {
                const char *why = err.message ? err.message : strerror(-k);
                /* once per distinct error: a daemon retries every second, and /readyz says it meanwhile */
                if (!str_eq(r->list_error, why))
                        eg_log_error("cannot list clusters of the %s runtime: %s", r->opt.runtime->ops->name, why);
                set_str(&r->list_error, why);
                eg_error_done(&err);
                return k;
        }
        if (r->list_error || (r->list_warning && !err.message))
                eg_log_info("every cluster of the %s runtime can be seen again", r->opt.runtime->ops->name);
        set_str(&r->list_error, NULL);
        if (err.message && !str_eq(r->list_warning, err.message))
                eg_log_warning("%s", err.message);
        set_str(&r->list_warning, err.message);
        eg_error_done(&err);
        struct cluster_key *keys = calloc(n_desired + n_rcs + 1, sizeof(*keys));
        if (!keys) {
                eg_runtime_clusters_free(rcs, n_rcs);
                return -ENOMEM;
        }
        size_t n = 0, to_prune = 0;
        for (size_t i = 0; i < n_desired; i++) {
                const struct eg_object *obj = desired->objects[i];
                if (obj->kind != EG_KIND_CLUSTER ||
                    (r->opt.namespace && strcmp(r->opt.namespace, obj->meta.namespace) != 0))
                        continue;
                if (!keys_has(keys, n, obj->meta.namespace, obj->meta.name))
                        keys[n++] = (struct cluster_key){obj->meta.namespace, obj->meta.name};
        }
        for (size_t i = 0; i < n_rcs; i++) {
                if (r->opt.namespace && strcmp(r->opt.namespace, rcs[i].namespace) != 0)
                        continue;
                if (keys_has(keys, n, rcs[i].namespace, rcs[i].name))
                        continue;
                keys[n++] = (struct cluster_key){rcs[i].namespace, rcs[i].name};
                if (!eg_desired_set_object_has_errors(desired, EG_KIND_CLUSTER, rcs[i].namespace, rcs[i].name))
                        to_prune++;
        }
        *ret_runtime = rcs;
        *ret_n_runtime = n_rcs;
        *ret_keys = keys;
        *ret_n = n;
        if (ret_prune_allowed) {
                size_t n_running = 0;
                for (size_t i = 0; i < n_rcs; i++)
                        if (!r->opt.namespace || strcmp(r->opt.namespace, rcs[i].namespace) == 0)
                                n_running++;
                const char *why = NULL;
                *ret_prune_allowed = eg_plan_prune_allowed(&r->opt.policy, desired && desired->n_errors == 0,
                                                           n_running, to_prune, &why);
        }
        return 0;
}

const char *eg_reconciler_list_problem(const struct eg_reconciler *r) {
        return r->list_error ? r->list_error : r->list_warning;
}

int eg_reconciler_pass(struct eg_reconciler *r, const struct eg_desired_set *desired,
                       const struct eg_revision_info *rev, struct eg_pass_result *ret) {
        struct eg_pass_result res = {.all_converged = true};
        struct eg_runtime_cluster *rcs = NULL;
        struct cluster_key *keys = NULL;
        size_t n_rcs = 0, n = 0;
        bool prune_allowed = false;
        int k = cluster_keys(r, desired, &rcs, &n_rcs, &keys, &n, &prune_allowed);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_tracks; i++)
                r->tracks[i].seen = false;
        for (size_t i = 0; i < n; i++) {
                if (r->opt.stop && *r->opt.stop) {
                        res.all_converged = false;
                        break;
                }
                reconcile_one(r, desired, rev, keys[i].ns, keys[i].name, prune_allowed, &res);
        }
        /* a cluster no longer passed over (pruned, or another namespace) has no processes
         * to watch: its pids may belong to anything by now */
        for (size_t i = 0; i < r->n_tracks; i++)
                if (!r->tracks[i].seen)
                        r->tracks[i].n_pids = 0;
        if (res.n_clusters == 0)
                res.next_due_ms = eg_now_monotonic_ms() + RECHECK_MS;
        free(keys);
        eg_runtime_clusters_free(rcs, n_rcs);
        *ret = res;
        return 0;
}

void eg_reconciler_poke_all(struct eg_reconciler *r) {
        for (size_t i = 0; i < r->n_tracks; i++)
                r->tracks[i].next_attempt_ms = 0;
}

static json_t *plan_json(const struct eg_plan *p) {
        json_t *acts = json_array();
        for (size_t i = 0; acts && i < p->n_actions; i++) {
                const struct eg_action *a = &p->actions[i];
                json_array_append_new(acts, json_pack("{s:s, s:s?, s:s?, s:s?}", "kind", eg_action_kind_to_string(a->kind),
                                                      "member", a->member, "version", a->version, "reason", a->reason));
        }
        return json_pack("{s:s, s:s?, s:o*}", "state", eg_plan_state_to_string(p->state), "reason", p->reason,
                         "actions", acts);
}

int eg_reconciler_plan_all(struct eg_reconciler *r, const struct eg_desired_set *desired, json_t **ret) {
        struct eg_runtime_cluster *rcs = NULL;
        struct cluster_key *keys = NULL;
        size_t n_rcs = 0, n = 0;
        bool prune_allowed = false;
        int k = cluster_keys(r, desired, &rcs, &n_rcs, &keys, &n, &prune_allowed);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_tracks; i++)
                r->tracks[i].seen = false;
        json_t *out = json_array();
        int64_t now = eg_now_monotonic_ms();
        for (size_t i = 0; out && i < n; i++) {
                struct cluster_track *t = track_get(r, keys[i].ns, keys[i].name);
                struct observation o;
                if (!t || observe(r, t, keys[i].ns, keys[i].name, &o, now) < 0) {
                        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "namespace", keys[i].ns, "name",
                                                             keys[i].name, "state", "unobservable"));
                        if (t)
                                observation_done(&o);
                        continue;
                }
                const struct eg_object *obj = eg_desired_set_find(desired, EG_KIND_CLUSTER, keys[i].ns, keys[i].name);
                _cleanup_free_ char *hash = obj ? r->opt.runtime->ops->member_hash(r->opt.runtime, &obj->cluster) : NULL;
                mark_replace_to_roll(r->opt.runtime, keys[i].ns, obj, hash, &o.oc);
                const struct eg_object *restore =
                        obj ? pending_restore(r->opt.state_dir, desired, keys[i].ns, keys[i].name, o.rc_exists, NULL)
                            : NULL;
                struct eg_plan_input in = {
                        .restore_from = restore ? restore_source(&restore->restore) : NULL,
                        .namespace = keys[i].ns,
                        .name = keys[i].name,
                        .spec = obj ? &obj->cluster : NULL,
                        .spec_invalid = eg_desired_set_object_has_errors(desired, EG_KIND_CLUSTER, keys[i].ns, keys[i].name),
                        .desired_hash = hash,
                        .observed = &o.oc,
                        .policy = &r->opt.policy,
                        .prune_allowed = prune_allowed,
                        .now_ms = now,
                };
                struct eg_plan plan = {0};
                if (eg_plan_cluster(&in, &plan) == 0) {
                        json_t *entry = plan_json(&plan);
                        json_t *st = status_build(&o, obj ? &obj->cluster : NULL, &plan, NULL, NULL, NULL,
                                                  eg_now_realtime_ms());
                        if (entry) {
                                json_object_set_new(entry, "namespace", json_string(keys[i].ns));
                                json_object_set_new(entry, "name", json_string(keys[i].name));
                                json_object_set(entry, "desired", obj ? obj->document : json_null());
                                if (obj)
                                        json_object_set_new(entry, "origin",
                                                            json_pack("{s:s, s:i}", "path", obj->origin.path, "line",
                                                                      (json_int_t)obj->origin.line));
                                json_object_set_new(entry, "observed", st ? st : json_null());
                                json_array_append_new(out, entry);
                        } else
                                json_decref(st);
                }
                eg_plan_done(&plan);
                observation_done(&o);
        }
        free(keys);
        eg_runtime_clusters_free(rcs, n_rcs);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

int eg_reconciler_status_all(struct eg_reconciler *r, json_t **ret) {
        struct eg_runtime_cluster *rcs = NULL;
        struct cluster_key *keys = NULL;
        size_t n_rcs = 0, n = 0;
        int k = cluster_keys(r, NULL, &rcs, &n_rcs, &keys, &n, NULL);
        if (k < 0)
                return k;
        json_t *out = json_array();
        int64_t now = eg_now_monotonic_ms();
        for (size_t i = 0; out && i < n; i++) {
                struct cluster_track *t = track_get(r, keys[i].ns, keys[i].name);
                struct observation o;
                if (!t || observe(r, t, keys[i].ns, keys[i].name, &o, now) < 0) {
                        if (t)
                                observation_done(&o);
                        continue;
                }
                json_t *saved = r->opt.state_dir ? status_read(r->opt.state_dir, keys[i].ns, keys[i].name) : NULL;
                json_t *live = status_build(&o, NULL, NULL, NULL, NULL, NULL, eg_now_realtime_ms());
                if (live && saved) {
                        /* the daemon's view (phase, conditions, revisions) with live members on top */
                        json_t *ss = json_object_get(saved, "status"), *ls = json_object_get(live, "status");
                        const char *live_only[] = {"members", "leader", "currentVersion", "clientURLs", "readyMembers"};
                        for (size_t j = 0; ss && ls && j < EG_ELEMENTSOF(live_only); j++)
                                json_object_set(ss, live_only[j], json_object_get(ls, live_only[j]));
                        json_array_append(out, saved);
                } else if (live)
                        json_array_append(out, live);
                json_decref(live);
                json_decref(saved);
                observation_done(&o);
        }
        free(keys);
        eg_runtime_clusters_free(rcs, n_rcs);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
