/* Recording a cluster's turn in a pass: its decisions (to the listener, the platform's
 * events and the audit log), when it is looked at again, and its status file. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "internal.h"

/* Steps of a held-back plan named in its record; the rest are counted. */
#define HELD_LISTED 8

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
                if (g->severity != EG_SEVERITY_ERROR || !g->has_object || g->kind != EG_KIND_CLUSTER || !g->name ||
                    strcmp(g->name, name) != 0 || strcmp(g->namespace ? g->namespace : "default", ns) != 0)
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
        if (eg_runtime_record_event(rt, ev, &err) >= 0) {
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
                                                                     .namespace = ev->namespace,
                                                                     .name = ev->name,
                                                                     .decision = ev->decision});
        }
        eg_error_done(&err);
}

void record_to_listener(void *userdata, const struct eg_decision *d, uint64_t seq) {
        struct eg_reconciler *r = userdata;
        const char *slash = d->cluster ? strchr(d->cluster, '/') : NULL;
        _cleanup_free_ char *ns = slash ? strndup(d->cluster, (size_t)(slash - d->cluster)) : NULL;
        if (!ns)
                return;
        struct eg_reconcile_event ev = {
                .kind = EG_EVENT_DECISION,
                .namespace = ns,
                .name = slash + 1,
                .revision = d->revision,
                .commit = d->commit,
                .decision = d->kind,
                .member = d->member,
                .reason = d->reason,
                .outcome = d->outcome,
                .error = d->error,
        };
        r->opt.on_event(r->opt.event_userdata, &ev);
}

void record_decision(struct cluster_pass *p, const struct eg_object *obj, const struct eg_diag *diag,
                     const struct eg_decision *what) {
        struct eg_reconciler *r = p->r;
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", p->ns, p->name);
        struct eg_decision d = *what;
        d.cluster = cluster;
        d.revision = p->rev ? p->rev->revision : NULL;
        d.commit = obj && obj->origin.commit ? obj->origin.commit : p->rev ? p->rev->commit : NULL;
        d.path = obj ? obj->origin.path : diag ? diag->path : NULL;
        d.line = obj ? obj->origin.line : diag ? diag->line : 0;
        d.blob = obj ? obj->origin.blob : NULL;
        d.actor = "reconcile";
        /* not a journal sink: posting is a request to the platform, too slow for a sink */
        if (!r->opt.dry_run && eg_runtime_supports(r->opt.runtime, EG_RUNTIME_RECORD_EVENT))
                platform_event(r,
                               &(struct eg_runtime_event){.namespace = p->ns,
                                                          .name = p->name,
                                                          .member = d.member,
                                                          .decision = d.kind,
                                                          .message = d.reason,
                                                          .error = d.error,
                                                          .warning = d.outcome && (strcmp(d.outcome, "failed") == 0 ||
                                                                                   strcmp(d.outcome, "blocked") == 0)});
        struct eg_error err = {0};
        if (eg_journal_record(r->journal, &d, &err) < 0)
                eg_log_error("%s", err.message);
        eg_error_done(&err);
}

/* What the cluster was last recorded at: a state or step recorded again only when it changes. */
static void record_seen(struct cluster_pass *p, const char *reason) {
        set_str(&p->t->recorded_revision, p->rev ? p->rev->revision : NULL);
        p->t->recorded_state = p->plan.state;
        set_str(&p->t->recorded_reason, reason);
}

/* The step taken; a dry run says once what it would do. */
static void record_step(struct cluster_pass *p) {
        struct eg_reconciler *r = p->r;
        struct cluster_track *t = p->t;
        const struct eg_action *a = p->acted;
        const char *kind = eg_action_kind_to_string(a->kind);
        bool dry_seen = r->opt.dry_run && !p->revision_changed && t->recorded_state == p->plan.state &&
                        str_eq(t->recorded_reason, a->reason);
        /* a teardown for a restore is the EtcdRestore's doing */
        if (!dry_seen)
                record_decision(p, a->kind == EG_ACTION_RESTORE_REPLACE ? p->restore.restore : p->obj, NULL,
                                &(const struct eg_decision){.kind = kind,
                                                            .member = a->member,
                                                            .reason = a->reason,
                                                            .outcome = p->outcome,
                                                            .duration_ms = p->step_ms,
                                                            .error = p->err.message});
        p->res->n_actions++;
        if (p->k < 0) {
                eg_log_error("%s/%s: %s %s failed: %s", p->ns, p->name, kind, a->member ? a->member : "",
                             p->err.message);
                set_str(&t->last_error, p->err.message);
                track_backoff(t, p->rev);
                p->res->n_failed++;
        } else {
                if (a->kind == EG_ACTION_BOOTSTRAP)
                        restore_step_applied(p);
                eg_log_info("%s/%s: %s%s%s%s: %s", p->ns, p->name, r->opt.dry_run ? "would " : "", kind,
                            a->member ? " " : "", a->member ? a->member : "", a->reason);
                t->failures = 0;
                t->next_attempt_ms = 0;
                set_str(&t->last_error, NULL);
        }
        record_seen(p, a->reason);
}

/* Where no step was taken: the cluster's state, recorded when it (or the revision) changed;
 * a plan held back by a suspension as decision "suspended". */
static void record_state(struct cluster_pass *p, bool held) {
        const struct eg_plan *plan = &p->plan;
        struct cluster_track *t = p->t;
        bool blocked = plan->state == EG_PLAN_BLOCKED || plan->state == EG_PLAN_QUORUM_LOST ||
                       plan->state == EG_PLAN_UNTOUCHED;
        if (plan->state == EG_PLAN_CONVERGED || plan->state == EG_PLAN_PAUSED)
                p->res->n_converged++;
        if (blocked)
                p->res->n_blocked++;
        if (plan->state == EG_PLAN_CONVERGED && p->rev)
                set_str(&t->applied_revision, p->rev->revision);
        bool changed = t->recorded_state != plan->state || p->began_failing ||
                       (plan->state != EG_PLAN_WAITING && !str_eq(t->recorded_reason, plan->reason));
        if (!p->revision_changed && !changed)
                return;
        const struct eg_diag *first = NULL;
        _cleanup_free_ char *errors = plan->state == EG_PLAN_UNTOUCHED
                                              ? object_errors(p->desired, p->ns, p->name, &first)
                                              : NULL;
        const char *reason = plan->reason ? plan->reason : "converged: nothing to do";
        record_decision(p, p->obj, first,
                        &(const struct eg_decision){.kind = held ? "suspended" : state_decision(plan->state),
                                                    .reason = reason,
                                                    .outcome = blocked ? "blocked" : "skipped",
                                                    .error = errors});
        if (plan->state == EG_PLAN_QUORUM_LOST)
                eg_log_error("%s/%s: QUORUM LOST: %s", p->ns, p->name, plan->reason);
        else if (plan->state == EG_PLAN_BLOCKED || plan->state == EG_PLAN_UNTOUCHED)
                eg_log_warning("%s/%s: %s%s%s", p->ns, p->name, reason, errors ? ": " : "", errors ? errors : "");
        record_seen(p, plan->reason);
        if (plan->state == EG_PLAN_UNTOUCHED)
                set_str(&t->last_error, errors);
}

/* A suspended cluster's plan becomes a pause whose reason names the steps held back, by
 * kind and member only: a reason that changes with time (how long a member has been dead)
 * would be recorded again at every pass. */
static int hold(struct cluster_pass *p, json_t *suspension) {
        struct eg_plan *plan = &p->plan;
        const char *actor = json_string_value(json_object_get(suspension, "actor"));
        const char *why = json_string_value(json_object_get(suspension, "reason"));
        struct eg_buf b;
        eg_buf_init(&b, 4096);
        (void)eg_buf_printf(&b, "suspended%s%s%s%s; held back: ", actor ? " by " : "", actor ? actor : "",
                            why ? ": " : "", why ? why : "");
        for (size_t i = 0; i < plan->n_actions && i < HELD_LISTED; i++) {
                const struct eg_action *a = &plan->actions[i];
                (void)eg_buf_printf(&b, "%s%s%s%s", i ? ", " : "", eg_action_kind_to_string(a->kind),
                                    a->member ? " " : "", a->member ? a->member : "");
        }
        if (plan->n_actions > HELD_LISTED)
                (void)eg_buf_printf(&b, " and %zu more", plan->n_actions - HELD_LISTED);
        char *reason = eg_buf_steal(&b);
        if (!reason)
                return -ENOMEM;
        struct eg_plan held = {.state = EG_PLAN_PAUSED,
                               .reason = reason,
                               .next_index = plan->next_index,
                               .available = plan->available,
                               .recovering = plan->recovering,
                               .scaling = plan->scaling,
                               .upgrading = plan->upgrading};
        eg_plan_done(plan);
        *plan = held;
        return 0;
}

/* When the cluster is looked at again: at once after a step, soon while it is busy, at the
 * recheck otherwise (less often once it has stayed converged), at the end of its back-off
 * after a failure. */
static int64_t record_due(struct cluster_pass *p) {
        enum eg_plan_state s = p->plan.state;
        int64_t wait = RECHECK_MS;
        if (s != EG_PLAN_CONVERGED)
                p->t->converged_since_ms = 0;
        else if (!p->t->converged_since_ms)
                p->t->converged_since_ms = p->now;
        else if (p->now - p->t->converged_since_ms >= STEADY_AFTER_MS)
                wait = RECHECK_STEADY_MS;
        if ((s == EG_PLAN_PROGRESSING || s == EG_PLAN_WAITING) && !p->r->opt.dry_run)
                wait = s == EG_PLAN_PROGRESSING && p->k >= 0 ? 0 : RECHECK_BUSY_MS;
        int64_t due = p->t->next_attempt_ms > p->now ? p->t->next_attempt_ms : p->now + wait;
        if (!p->res->next_due_ms || due < p->res->next_due_ms)
                p->res->next_due_ms = due;
        return due;
}

static void record_status(struct cluster_pass *p, json_t *suspension) {
        struct eg_reconciler *r = p->r;
        const struct eg_plan *plan = &p->plan;
        if (!r->opt.state_dir)
                return;
        bool pruned = plan->n_actions && plan->actions[0].kind == EG_ACTION_PRUNE && p->outcome &&
                      strcmp(p->outcome, "ok") == 0;
        if ((plan->state == EG_PLAN_ABSENT && !p->o.rc_exists) || pruned) {
                status_remove(r->opt.state_dir, p->ns, p->name);
                return;
        }
        json_t *st = status_build(&p->o, p->obj ? &p->obj->cluster : NULL, plan, p->t->applied_revision,
                                  p->rev ? p->rev->commit : NULL, p->t->last_error, eg_now_realtime_ms());
        if (st && suspension)
                json_object_set(json_object_get(st, "status"), "suspended", suspension);
        if (st) {
                status_write(r->opt.state_dir, p->ns, p->name, st);
                json_decref(st);
        }
}

/* Every pass, where the audit log keeps only changes: how long it took and how the cluster
 * stands, for the metrics. */
static void record_cluster_pass(struct cluster_pass *p) {
        struct eg_reconciler *r = p->r;
        if (!r->opt.on_event)
                return;
        struct eg_reconcile_event ev = {
                .kind = EG_EVENT_CLUSTER_PASS,
                .namespace = p->ns,
                .name = p->name,
                .revision = p->rev ? p->rev->revision : NULL,
                .commit = p->rev ? p->rev->commit : NULL,
                .duration_ms = eg_now_monotonic_ms() - p->now,
                .state = p->plan.state,
                .desired = p->obj ? (size_t)p->obj->cluster.size : 0,
        };
        for (size_t i = 0; i < p->o.oc.n_members; i++) {
                const struct eg_observed_member *m = &p->o.oc.members[i];
                ev.ready += m->in_runtime && m->running && m->healthy && m->in_membership;
                if (m->in_membership && !m->is_learner) {
                        ev.voters++;
                        ev.healthy_voters += m->healthy;
                }
        }
        ev.quorum = ev.voters > 0 && ev.healthy_voters >= eg_quorum(ev.voters);
        r->opt.on_event(r->opt.event_userdata, &ev);
}

void record_pass(struct cluster_pass *p) {
        json_t *suspension = NULL;
        bool suspended = eg_suspension_read(p->r->opt.state_dir, p->ns, p->name, &suspension) != 0;
        bool held = suspended && !p->acted && p->plan.state == EG_PLAN_PROGRESSING && hold(p, suspension) >= 0;
        enum eg_plan_state s = p->plan.state;
        if (p->acted)
                record_step(p);
        if (s != EG_PLAN_PROGRESSING)
                record_state(p, held);
        int64_t due = record_due(p);
        record_status(p, suspension);
        json_decref(suspension);
        if (s != EG_PLAN_CONVERGED && s != EG_PLAN_PAUSED && s != EG_PLAN_ABSENT)
                p->res->all_converged = false;
        /* every pass, where the audit log keeps only changes: how long a wait really lasted */
        eg_log_debug("%s/%s: pass in %" PRId64 " ms, %s: %s; next in %" PRId64 " ms", p->ns, p->name,
                     eg_now_monotonic_ms() - p->now, eg_plan_state_to_string(s), p->plan.reason ? p->plan.reason : "-",
                     due - eg_now_monotonic_ms());
        record_cluster_pass(p);
}
