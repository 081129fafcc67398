/* One cluster's turn in a pass: observe, plan, execute the first step, record; around one
 * context (struct cluster_pass) that the turn ends with, whatever step it stopped at. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* The pass leaves a cluster that failed or backs off; the next one comes when its back-off
 * ends, not at once. */
static void pass_backing_off(const struct cluster_track *t, struct eg_pass_result *res) {
        res->n_failed++;
        res->all_converged = false;
        if (!res->next_due_ms || t->next_attempt_ms < res->next_due_ms)
                res->next_due_ms = t->next_attempt_ms;
}

void pass_failed(struct cluster_pass *p, const char *what, const char *why) {
        /* once per distinct error: a cluster that keeps failing must not flood the log */
        if (!str_eq(p->t->last_error, why))
                eg_log_error("%s/%s: %s: %s", p->ns, p->name, what, why);
        set_str(&p->t->last_error, why);
        track_backoff(p->t, p->rev);
        pass_backing_off(p->t, p->res);
}

/* -EAGAIN while the cluster backs off from a failure at this revision. */
static int pass_begin(struct cluster_pass *p) {
        p->t = track_get(p->r, p->ns, p->name);
        if (!p->t)
                return -ENOMEM;
        p->t->seen = true;
        p->res->n_clusters++;
        if (p->desired) {
                p->obj = eg_desired_set_find(p->desired, EG_KIND_CLUSTER, p->ns, p->name);
                p->invalid = eg_desired_set_object_has_errors(p->desired, EG_KIND_CLUSTER, p->ns, p->name);
        }
        p->revision_changed = p->rev && !str_eq(p->rev->revision, p->t->recorded_revision);
        if (p->t->next_attempt_ms > p->now && (!p->rev || str_eq(p->rev->revision, p->t->backoff_revision))) {
                pass_backing_off(p->t, p->res);
                return -EAGAIN;
        }
        return 0;
}

static int pass_observe(struct cluster_pass *p, bool suspended) {
        int k = observe(p->r, p->t, p->ns, p->name, suspended, &p->o, p->now);
        if (k < 0) {
                const char *why = p->o.etcd_error ? p->o.etcd_error : strerror(-k);
                if (!str_eq(p->t->last_error, why))
                        record_decision(p, p->obj, NULL,
                                        &(const struct eg_decision){.kind = "failed",
                                                                    .reason = "cannot observe the cluster",
                                                                    .outcome = "failed",
                                                                    .error = why});
                pass_failed(p, "cannot observe the cluster", why);
                return k;
        }
        track_pids(p->t, &p->o.rc);
        p->began_failing = track_began_failing(p->t, &p->o.oc);
        return 0;
}

/* Members on an old template that the runtime cannot roll in place are replaced instead. */
static void mark_replace_to_roll(struct eg_runtime *rt, const char *ns, const struct eg_object *obj, const char *hash,
                                 struct eg_observed_cluster *oc) {
        for (size_t i = 0; obj && hash && i < oc->n_members; i++) {
                struct eg_observed_member *om = &oc->members[i];
                if (om->in_runtime && om->spec_hash && strcmp(om->spec_hash, hash) != 0)
                        om->replace_to_roll = !eg_runtime_rolls_in_place(rt, ns, om->name, &obj->cluster);
        }
}

char *plan_prepare(struct eg_runtime *rt, struct cluster_track *t, const char *revision, const char *ns,
                   const struct eg_object *obj, struct observation *o) {
        char *hash = track_member_hash(t, rt, obj, revision);
        mark_replace_to_roll(rt, ns, obj, hash, &o->oc);
        return hash;
}

static int pass_plan(struct cluster_pass *p) {
        struct eg_reconciler *r = p->r;
        p->hash = plan_prepare(r->opt.runtime, p->t, p->rev ? p->rev->revision : NULL, p->ns, p->obj, &p->o);
        int64_t auto_recover_ms = 0;
        const char *ann = p->obj ? json_string_value(
                                           json_object_get(p->obj->meta.annotations, EG_ANN_AUTO_RECOVER_AFTER))
                                 : NULL;
        /* validated with the manifest: a bad value never gets here */
        if (ann && eg_parse_duration_ms(ann, &auto_recover_ms) < 0)
                auto_recover_ms = 0;
        struct eg_plan_input in = {
                .auto_recover_after_ms = auto_recover_ms,
                .quorum_lost_since_ms = p->t->quorum_lost_since_ms,
                .restore_from = restore_step_source(&p->restore),
                .namespace = p->ns,
                .name = p->name,
                .spec = p->obj ? &p->obj->cluster : NULL,
                .spec_invalid = p->invalid,
                .desired_hash = p->hash,
                .observed = &p->o.oc,
                .policy = &r->opt.policy,
                .prune_allowed = p->prune_allowed,
                .now_ms = p->now,
        };
        int k = eg_plan_cluster(&in, &p->plan);
        if (k < 0)
                return k;
        if (p->plan.state != EG_PLAN_QUORUM_LOST)
                p->t->quorum_lost_since_ms = 0;
        else if (p->t->quorum_lost_since_ms == 0)
                p->t->quorum_lost_since_ms = p->now;
        return 0;
}

/* Takes the plan's first step (dry run: only says it would). */
static void pass_execute(struct cluster_pass *p) {
        struct eg_reconciler *r = p->r;
        if (p->plan.state != EG_PLAN_PROGRESSING || p->plan.n_actions == 0)
                return;
        const struct eg_action *a = &p->plan.actions[0];
        struct eg_runtime_target tg = {.namespace = p->ns,
                                       .name = p->name,
                                       .spec = p->obj ? &p->obj->cluster : NULL,
                                       .revision = p->rev ? p->rev->revision : NULL};
        int k = a->kind == EG_ACTION_BOOTSTRAP ? restore_step_target(p, &tg, &p->err) : 0;
        int64_t t0 = eg_now_monotonic_ms();
        if (r->opt.dry_run) {
                k = 0;
                p->outcome = "dry-run";
        } else {
                if (k >= 0)
                        k = reconcile_execute(&r->opt, &tg, &p->o, a, &p->err);
                p->outcome = k >= 0 ? "ok" : k == -EAGAIN ? NULL : "failed";
                for (size_t i = 0; a->kind == EG_ACTION_RESTART && i < a->n_members; i++)
                        track_restart(p->t, a->members[i], r->opt.policy.restart_window_ms, t0);
        }
        p->step_ms = eg_now_monotonic_ms() - t0;
        p->k = k;
        if (k == -EAGAIN) {
                /* etcd: learner not caught up yet; an expected wait, not a failure */
                p->plan.state = EG_PLAN_WAITING;
                free(p->plan.reason);
                p->plan.reason = TAKE_PTR(p->err.message);
                return;
        }
        p->acted = a;
}

static void pass_done(struct cluster_pass *p) {
        eg_error_done(&p->err);
        free(p->hash);
        restore_step_done(&p->restore);
        eg_plan_done(&p->plan);
        observation_done(&p->o);
}

void reconcile_cluster(struct eg_reconciler *r, const struct eg_desired_set *desired,
                       const struct eg_revision_info *rev, const char *ns, const char *name, bool prune_allowed,
                       struct eg_pass_result *res) {
        struct cluster_pass p = {.r = r,
                                 .desired = desired,
                                 .rev = rev,
                                 .ns = ns,
                                 .name = name,
                                 .prune_allowed = prune_allowed,
                                 .res = res,
                                 .now = eg_now_monotonic_ms()};
        /* suspended by hand: observed without repairs, planned, never changed (record_pass
         * says what is held back); a restore is planned as diff plans it, its snapshot not
         * fetched */
        bool suspended = eg_suspension_read(r->opt.state_dir, ns, name, NULL) != 0;
        int k = pass_begin(&p);
        if (k >= 0)
                k = pass_observe(&p, suspended);
        if (k < 0)
                suspended = false;
        if (suspended)
                p.restore.restore = p.obj ? pending_restore(r->opt.state_dir, desired, ns, name, p.o.rc_exists, NULL)
                                          : NULL;
        else if (k >= 0)
                k = restore_step(&p);
        if (k >= 0)
                k = pass_plan(&p);
        if (k >= 0) {
                if (!suspended)
                        pass_execute(&p);
                record_pass(&p);
        }
        pass_done(&p);
}
