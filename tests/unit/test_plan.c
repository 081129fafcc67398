/* Unit tests of the pure planner: one case per rule and per safety rule, plus invariants
 * checked over many random observed clusters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-gitops/plan.h"
#include "etcd-gitops/util.h"

#define NOW 10000000
#define MAX_MEMBERS 16

struct fx {
        struct eg_observed_member members[MAX_MEMBERS];
        char names[MAX_MEMBERS][16];
        struct eg_observed_cluster obs;
        struct eg_cluster_spec spec;
        struct eg_policy pol;
        struct eg_plan_input in;
        struct eg_plan plan;
};

/* A fresh fixture: cluster "c" of the given size and version, nothing observed yet. */
static void fx_init(struct fx *f, int64_t size, const char *version) {
        memset(f, 0, sizeof(*f));
        f->spec.size = size;
        f->spec.version = (char *)version;
        eg_policy_init(&f->pol);
        f->obs.members = f->members;
        f->obs.etcd_reachable = true;
        f->in = (struct eg_plan_input){
                .namespace = "default",
                .name = "c",
                .spec = &f->spec,
                .observed = &f->obs,
                .policy = &f->pol,
                .now_ms = NOW,
        };
}

/* Adds member c-<index>: a healthy, running voter at the spec's version. */
static struct eg_observed_member *fx_add(struct fx *f, unsigned index) {
        assert_true(f->obs.n_members < MAX_MEMBERS);
        size_t i = f->obs.n_members++;
        snprintf(f->names[i], sizeof(f->names[i]), "c-%u", index);
        f->members[i] = (struct eg_observed_member){
                .name = f->names[i],
                .id = 0x1000 + index,
                .in_runtime = true,
                .running = true,
                .in_membership = true,
                .healthy = true,
                .version = f->spec.version,
        };
        f->obs.exists = true;
        if (f->obs.next_index <= index)
                f->obs.next_index = index + 1;
        return &f->members[i];
}

/* A healthy cluster of members c-0 .. c-(n-1), c-0 leading. */
static void fx_cluster(struct fx *f, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                fx_add(f, i);
        f->members[0].is_leader = true;
}

static void fx_plan(struct fx *f) {
        assert_int_equal(eg_plan_cluster(&f->in, &f->plan), 0);
        /* Only a progressing plan carries actions: the reconciler runs actions[0]. */
        assert_int_equal(f->plan.state == EG_PLAN_PROGRESSING, f->plan.n_actions > 0);
}

static void assert_state(struct fx *f, enum eg_plan_state s) {
        if (f->plan.state != s)
                fail_msg("state %s, expected %s (reason: %s)", eg_plan_state_to_string(f->plan.state),
                         eg_plan_state_to_string(s), f->plan.reason ? f->plan.reason : "(none)");
}

static void assert_action(struct fx *f, size_t i, enum eg_action_kind kind, const char *member) {
        assert_true(i < f->plan.n_actions);
        const struct eg_action *a = &f->plan.actions[i];
        if (a->kind != kind)
                fail_msg("action %zu is %s, expected %s (%s)", i, eg_action_kind_to_string(a->kind),
                         eg_action_kind_to_string(kind), a->reason);
        if (member) {
                assert_non_null(a->member);
                assert_string_equal(a->member, member);
        }
}

static void assert_reason_has(const char *reason, const char *needle) {
        assert_non_null(reason);
        if (!strstr(reason, needle))
                fail_msg("reason \"%s\" lacks \"%s\"", reason, needle);
}

/* ---- names and defaults ---- */

static void test_plan__names(void **state) {
        static const char *const kinds[] = {"create",       "add-learner",   "promote",         "remove",
                                            "replace-dead", "remove-orphan", "stop-unknown",    "upgrade-member",
                                            "prune",        "restart",       "restore-replace", "recover",
                                            "adopt"};
        static const char *const states[] = {"converged", "progressing", "waiting",   "blocked",
                                             "paused",    "quorum-lost", "untouched", "absent"};
        assert_int_equal(EG_ELEMENTSOF(kinds), _EG_ACTION_MAX);
        for (size_t i = 0; i < EG_ELEMENTSOF(kinds); i++)
                assert_string_equal(eg_action_kind_to_string((enum eg_action_kind)i), kinds[i]);
        assert_null(eg_action_kind_to_string(_EG_ACTION_MAX));
        for (size_t i = 0; i < EG_ELEMENTSOF(states); i++)
                assert_string_equal(eg_plan_state_to_string((enum eg_plan_state)i), states[i]);
        assert_null(eg_plan_state_to_string((enum eg_plan_state)EG_ELEMENTSOF(states)));
}

static void test_plan__policy_defaults(void **state) {
        struct eg_policy p;
        memset(&p, 0xff, sizeof(p));
        eg_policy_init(&p);
        assert_int_equal(p.dead_after_ms, 5000);
        assert_int_equal(p.start_grace_ms, 10000);
        assert_false(p.prune);
        assert_false(p.allow_empty);
        assert_false(p.keep_removed_data);
        assert_false(p.delete_pruned_data);
}

static void test_plan__invalid_arguments(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        assert_int_equal(eg_plan_cluster(NULL, &f.plan), -EINVAL);
        assert_int_equal(eg_plan_cluster(&f.in, NULL), -EINVAL);
        f.in.observed = NULL;
        assert_int_equal(eg_plan_cluster(&f.in, &f.plan), -EINVAL);
        f.in.observed = &f.obs;
        f.in.policy = NULL;
        assert_int_equal(eg_plan_cluster(&f.in, &f.plan), -EINVAL);
        f.in.policy = &f.pol;
        f.in.name = NULL;
        assert_int_equal(eg_plan_cluster(&f.in, &f.plan), -EINVAL);
}

/* ---- bootstrap ---- */

static void test_plan__bootstrap_fresh(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 1);
        assert_action(&f, 0, EG_ACTION_BOOTSTRAP, NULL);
        const struct eg_action *a = &f.plan.actions[0];
        assert_int_equal(a->n_members, 3);
        assert_string_equal(a->members[0], "c-0");
        assert_string_equal(a->members[1], "c-1");
        assert_string_equal(a->members[2], "c-2");
        assert_string_equal(a->version, "3.5.9");
        assert_string_equal(a->reason, "create cluster with 3 members");
        assert_string_equal(f.plan.reason, "create cluster with 3 members");
        assert_int_equal(f.plan.next_index, 3);
        assert_false(f.plan.available);
        eg_plan_done(&f.plan);
}

static void test_plan__restore_seeds_one_member(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.4.23");
        f.in.restore_from = "backups/etcd.db";
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.actions[0].kind, EG_ACTION_BOOTSTRAP);
        assert_int_equal(f.plan.actions[0].n_members, 1);
        assert_string_equal(f.plan.actions[0].members[0], "c-0");
        assert_string_equal(f.plan.actions[0].reason,
                            "restore cluster from backups/etcd.db: seed member c-0, then grow to 3");
        eg_plan_done(&f.plan);
}

static void test_plan__bootstrap_starts_at_next_index(void **state) {
        struct fx f;
        fx_init(&f, 1, "3.4.23");
        f.obs.next_index = 7;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_BOOTSTRAP, NULL);
        assert_int_equal(f.plan.actions[0].n_members, 1);
        assert_string_equal(f.plan.actions[0].members[0], "c-7");
        assert_int_equal(f.plan.next_index, 8);
        assert_string_equal(f.plan.reason, "create cluster with 1 member");
        eg_plan_done(&f.plan);
}

static void test_plan__never_rebootstrap_all_dead(void **state) {
        struct fx f;

        /* Every member's process is gone but the runtime has the cluster: quorum lost. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++)
                f.members[i].running = f.members[i].healthy = false;
        f.obs.etcd_reachable = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_int_equal(f.plan.n_actions, 0);
        eg_plan_done(&f.plan);

        /* The runtime still records the cluster, with no member left at all. */
        fx_init(&f, 3, "3.5.9");
        f.obs.exists = true;
        f.obs.etcd_reachable = false;
        f.obs.next_index = 3;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);

        /* Not flagged as existing, but a member is still there: not fresh either. */
        fx_init(&f, 3, "3.5.9");
        fx_add(&f, 0)->running = false;
        f.obs.exists = false;
        f.obs.etcd_reachable = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);
}

/* ---- scaling ---- */

static void test_plan__scale_up_adds_learner_with_next_index(void **state) {
        struct fx f;
        fx_init(&f, 5, "3.5.9");
        /* c-3 .. c-6 were used and removed earlier: their numbers are never reused. */
        fx_add(&f, 0)->is_leader = true;
        fx_add(&f, 1);
        fx_add(&f, 2);
        f.obs.next_index = 7;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 4);
        assert_action(&f, 0, EG_ACTION_ADD_LEARNER, "c-7");
        assert_string_equal(f.plan.actions[0].version, "3.5.9");
        assert_string_equal(f.plan.actions[0].reason, "scale up 3 -> 5: add member c-7 as learner");
        assert_action(&f, 1, EG_ACTION_PROMOTE, "c-7");
        assert_action(&f, 2, EG_ACTION_ADD_LEARNER, "c-8");
        assert_string_equal(f.plan.actions[2].reason, "scale up 4 -> 5: add member c-8 as learner");
        assert_action(&f, 3, EG_ACTION_PROMOTE, "c-8");
        assert_int_equal(f.plan.next_index, 9);
        assert_true(f.plan.scaling);
        assert_true(f.plan.available);
        assert_false(f.plan.upgrading);
        eg_plan_done(&f.plan);
}

static void test_plan__scale_up_waits_for_healthy_voters(void **state) {
        struct fx f;
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 1000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "scale up 3 -> 5 waits for every member to be healthy (c-2 is not)");
        eg_plan_done(&f.plan);
}

static void test_plan__scale_up_waits_for_voters_to_settle(void **state) {
        struct fx f;
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 3);
        /* c-2 was just (re)started: etcd's strict reconfiguration check would refuse. */
        f.members[2].started_ms = NOW - 1200;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_reason_has(f.plan.reason, "(c-2 started 1200 ms ago)");
        eg_plan_done(&f.plan);
        f.members[2].started_ms = NOW - f.pol.member_settle_ms;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_action(&f, 0, EG_ACTION_ADD_LEARNER, "c-3");
        eg_plan_done(&f.plan);
}

static void test_plan__scale_up_refuses_version_skip(void **state) {
        struct fx f;
        fx_init(&f, 5, "3.6.0");
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++)
                f.members[i].version = "3.4.23";
        fx_plan(&f);
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "scale up 3 -> 5 blocked: upgrade 3.4.23 -> 3.6.0 skips a minor version");
        eg_plan_done(&f.plan);
}

static void test_plan__one_membership_change_at_a_time(void **state) {
        struct fx f;
        /* A learner is still joining: no second member is added next to it. */
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *l = fx_add(&f, 3);
        l->is_learner = true;
        l->healthy = false;
        l->unhealthy_since_ms = NOW - 500;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        eg_plan_done(&f.plan);

        /* Dead member and size shortfall: remove the dead one first, add the fresh one after. */
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        f.members[1].running = false;
        f.members[1].healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-1");
        assert_int_equal(f.plan.n_actions, 5);
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-3");
        assert_action(&f, 2, EG_ACTION_PROMOTE, "c-3");
        assert_action(&f, 3, EG_ACTION_ADD_LEARNER, "c-4");
        assert_action(&f, 4, EG_ACTION_PROMOTE, "c-4");
        eg_plan_done(&f.plan);
}

static void test_plan__promote_healthy_learner(void **state) {
        struct fx f;
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        fx_add(&f, 3)->is_learner = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 1);
        assert_action(&f, 0, EG_ACTION_PROMOTE, "c-3");
        assert_int_equal(f.plan.actions[0].member_id, 0x1003);
        assert_string_equal(f.plan.actions[0].reason, "promote learner c-3 to a voting member");
        assert_true(f.plan.scaling);
        eg_plan_done(&f.plan);
}

static void test_plan__learner_catching_up_waits(void **state) {
        struct fx f;
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *l = fx_add(&f, 3);
        l->is_learner = true;
        l->healthy = false;
        l->unhealthy_since_ms = NOW - 1000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "learner c-3 catching up; it is promoted once healthy");
        eg_plan_done(&f.plan);
}

static void test_plan__dead_learner_removed(void **state) {
        struct fx f;
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *l = fx_add(&f, 3);
        l->is_learner = true;
        l->running = l->healthy = false;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-3");
        assert_true(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason,
                            "learner c-3 dead (process gone); remove it, a fresh member replaces it");
        /* Its replacement is a new identity. */
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-4");
        eg_plan_done(&f.plan);

        /* Added to etcd, but the runtime never got it: an orphan. */
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        l = fx_add(&f, 3);
        l->is_learner = true;
        l->in_runtime = l->running = l->healthy = false;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_ORPHAN, "c-3");
        eg_plan_done(&f.plan);
}

static void test_plan__scale_down_never_removes_leader(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        for (unsigned i = 0; i < 5; i++)
                fx_add(&f, i);
        f.members[4].is_leader = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 2);
        assert_action(&f, 0, EG_ACTION_REMOVE_MEMBER, "c-3");
        assert_true(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason, "scale down 5 -> 3: remove member c-3");
        assert_action(&f, 1, EG_ACTION_REMOVE_MEMBER, "c-2");
        assert_string_equal(f.plan.actions[1].reason, "scale down 4 -> 3: remove member c-2");
        assert_int_equal(f.plan.next_index, 5);
        assert_true(f.plan.scaling);
        eg_plan_done(&f.plan);

        /* Keep removed data when asked. */
        f.pol.keep_removed_data = true;
        fx_plan(&f);
        assert_false(f.plan.actions[0].delete_data);
        eg_plan_done(&f.plan);
}

static void test_plan__scale_down_prefers_unhealthy(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 4);
        f.members[1].healthy = false;
        f.members[1].unhealthy_since_ms = NOW - 100;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_MEMBER, "c-1");
        eg_plan_done(&f.plan);
}

static void test_plan__scale_down_refuses_quorum_loss(void **state) {
        struct fx f;
        fx_init(&f, 2, "3.5.9");
        fx_cluster(&f, 3);
        /* The unhealthy one leads, so the victim would be healthy c-2: 1 of 2 left. */
        f.members[0].healthy = false;
        f.members[0].unhealthy_since_ms = NOW - 1000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "scale down 3 -> 2 waits: removing c-2 would leave 1 of 2 "
                                           "voting members healthy (need 2)");
        eg_plan_done(&f.plan);
}

/* ---- dead members and quorum ---- */

static void test_plan__dead_member_replaced(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[1].running = false;
        f.members[1].healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 3);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-1");
        assert_int_equal(f.plan.actions[0].member_id, 0x1001);
        assert_true(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason,
                            "member c-1 dead (process gone); remove it, a fresh member replaces it");
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-3");
        assert_action(&f, 2, EG_ACTION_PROMOTE, "c-3");
        assert_int_equal(f.plan.next_index, 4);
        assert_true(f.plan.available);
        assert_true(f.plan.recovering);
        eg_plan_done(&f.plan);

        f.pol.keep_removed_data = true;
        fx_plan(&f);
        assert_false(f.plan.actions[0].delete_data);
        eg_plan_done(&f.plan);
}

static void test_plan__unhealthy_member_dead_after_threshold(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 3000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-2 unhealthy for 3s; it is judged dead after 5s");
        assert_false(f.plan.recovering);
        eg_plan_done(&f.plan);

        f.members[2].unhealthy_since_ms = NOW - 6000;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        assert_string_equal(f.plan.actions[0].reason,
                            "member c-2 dead (unhealthy for 6s); remove it, a fresh member replaces it");
        assert_true(f.plan.recovering);
        eg_plan_done(&f.plan);

        f.pol.dead_after_ms = 7000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        eg_plan_done(&f.plan);
}

static void test_plan__two_of_three_dead_quorum_lost(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[1].running = f.members[1].healthy = false;
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 60000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_int_equal(f.plan.n_actions, 0);
        assert_null(f.plan.actions);
        assert_string_equal(
                f.plan.reason,
                "quorum lost: 1 of 3 voting members reachable (need 2) for over 3000 ms [c-0: answers, c-1: "
                "process gone, c-2: running, not answering]; nothing changed — run `etcd-gitops recover "
                "default/c --dry-run` to see the way back");
        assert_false(f.plan.available);
        assert_false(f.plan.recovering);
        assert_false(f.plan.scaling);
        eg_plan_done(&f.plan);
}

static void test_plan__learner_is_not_a_voter(void **state) {
        struct fx f;
        /* One healthy voter of two plus a healthy learner: 1 of 2, not 2 of 3. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 2);
        f.members[1].running = f.members[1].healthy = false;
        fx_add(&f, 2)->is_learner = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_reason_has(f.plan.reason, "1 of 2 voting members reachable (need 2)");
        eg_plan_done(&f.plan);

        /* A dead learner does not cost quorum either: 2 of 3 voters healthy is enough. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].running = f.members[2].healthy = false;
        struct eg_observed_member *l = fx_add(&f, 3);
        l->is_learner = true;
        l->running = l->healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-3");
        assert_action(&f, 1, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);
}

static void test_plan__orphan_removed_only_with_quorum(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[1].in_runtime = f.members[1].running = f.members[1].healthy = false;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_ORPHAN, "c-1");
        assert_string_equal(f.plan.actions[0].reason,
                            "member c-1 is in the etcd membership but the runtime has no such member; "
                            "remove it, a fresh member replaces it");
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-3");
        eg_plan_done(&f.plan);

        f.members[2].running = f.members[2].healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_int_equal(f.plan.n_actions, 0);
        eg_plan_done(&f.plan);
}

static void test_plan__dead_removal_keeps_quorum(void **state) {
        struct fx f;
        /* Inconsistent but possible: an orphan entry whose endpoint still answers. Removing
         * that healthy voter from 2 would leave 1 of 1: allowed. From 4 with 3 healthy
         * (2 of 3 after): allowed. Never when it would drop below the new majority. */
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 4);
        f.members[1].in_runtime = f.members[1].running = false;
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 100;
        f.members[3].healthy = false;
        f.members[3].unhealthy_since_ms = NOW - 100;
        /* 2 of 4 healthy is below quorum already. */
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);

        f.members[3].healthy = true;
        f.members[3].unhealthy_since_ms = 0;
        /* 3 of 4 healthy, but removing healthy c-1 leaves 2 of 3: still a majority. */
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_ORPHAN, "c-1");
        eg_plan_done(&f.plan);

        /* 3 of 5 healthy; removing healthy orphan c-1 leaves 2 of 4: refused. */
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 5);
        f.members[1].in_runtime = f.members[1].running = false;
        for (size_t i = 3; i < 5; i++) {
                f.members[i].healthy = false;
                f.members[i].unhealthy_since_ms = NOW - 100;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_reason_has(f.plan.reason, "c-1 looks dead but removing it would leave 2 of 4 voting members "
                                         "healthy (need 3)");
        eg_plan_done(&f.plan);

        /* A plainly dead member goes before the one that still answers. */
        f.members[4].running = false;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-4");
        eg_plan_done(&f.plan);
}

static void test_plan__stop_unknown(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *u = fx_add(&f, 5);
        u->in_membership = false;
        u->healthy = false;
        u->id = 0;
        /* A dead voter too: the unknown one goes first. */
        f.members[2].running = f.members[2].healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_action(&f, 0, EG_ACTION_STOP_UNKNOWN, "c-5");
        assert_true(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason,
                            "member c-5 is in the runtime but not in the etcd membership; stop it");
        assert_action(&f, 1, EG_ACTION_REPLACE_DEAD, "c-2");
        assert_action(&f, 2, EG_ACTION_ADD_LEARNER, "c-6");
        eg_plan_done(&f.plan);
}

static void test_plan__grace_period(void **state) {
        struct fx f;

        /* An unknown member started 2 s ago may still be joining. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *u = fx_add(&f, 3);
        u->in_membership = false;
        u->healthy = false;
        u->started_ms = NOW - 2000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-3 is starting and not yet in the etcd membership");
        eg_plan_done(&f.plan);
        u->started_ms = NOW - 20000;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_STOP_UNKNOWN, "c-3");
        eg_plan_done(&f.plan);

        /* A voter restarted 2 s ago and unhealthy for 6 s is not judged yet. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 6000;
        f.members[2].started_ms = NOW - 2000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-2 is starting");
        assert_false(f.plan.recovering);
        eg_plan_done(&f.plan);
        f.members[2].started_ms = NOW - 10000;
        f.members[2].healthy_since_start = true;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);

        /* Never healthy since its start (replaying a large log): the start timeout, not the grace. */
        f.members[2].healthy_since_start = false;
        f.members[2].unhealthy_since_ms = f.members[2].started_ms = NOW - 60000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-2 is starting");
        eg_plan_done(&f.plan);
        f.members[2].started_ms = NOW - f.pol.start_timeout_ms;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);

        /* Grace covers a running member only: a crashed new member is dead at once. */
        f.members[2].started_ms = NOW - 2000;
        f.members[2].running = false;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);
}

static void test_plan__fresh_cluster_forming_waits(void **state) {
        struct fx f;
        /* Just bootstrapped: nobody healthy yet, but everyone is within grace. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++) {
                f.members[i].healthy = false;
                f.members[i].is_leader = false;
                f.members[i].started_ms = NOW - 1000;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "0 of 3 voting members healthy (need 2); waiting for 3 starting members");
        eg_plan_done(&f.plan);

        f.obs.etcd_reachable = false;
        for (size_t i = 0; i < 3; i++)
                f.members[i].in_membership = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "etcd of c not reachable yet; member c-0 is starting");
        eg_plan_done(&f.plan);
}

static void test_plan__etcd_unreachable(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.etcd_reachable = false;
        for (size_t i = 0; i < 3; i++) {
                f.members[i].in_membership = false;
                f.members[i].healthy = false;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(
                f.plan.reason,
                "quorum lost: 0 of 3 voting members reachable (need 2) for over 3000 ms [c-0: running, not "
                "answering, c-1: running, not answering, c-2: running, not answering]; nothing changed — run "
                "`etcd-gitops recover default/c --dry-run` to see the way back");
        assert_false(f.plan.available);
        eg_plan_done(&f.plan);
}

/* ---- upgrades ---- */

static void fx_versions(struct fx *f, const char *v) {
        for (size_t i = 0; i < f->obs.n_members; i++)
                f->members[i].version = (char *)v;
}

static void test_plan__upgrade_one_at_a_time_leader_last(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_versions(&f, "3.4.23");
        f.members[0].is_leader = false;
        f.members[1].is_leader = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 3);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-0");
        assert_action(&f, 1, EG_ACTION_UPGRADE_MEMBER, "c-2");
        assert_action(&f, 2, EG_ACTION_UPGRADE_MEMBER, "c-1");
        for (size_t i = 0; i < 3; i++) {
                assert_string_equal(f.plan.actions[i].version, "3.5.9");
                assert_false(f.plan.actions[i].delete_data);
        }
        assert_string_equal(f.plan.actions[0].reason, "upgrade member c-0 3.4.23 -> 3.5.9 (3 to go)");
        assert_string_equal(f.plan.actions[2].reason, "upgrade member c-1 3.4.23 -> 3.5.9 (the leader, last)");
        assert_int_equal(f.plan.actions[0].member_id, 0x1000);
        assert_true(f.plan.upgrading);
        assert_false(f.plan.scaling);
        eg_plan_done(&f.plan);

        /* Half way: only the remaining ones, still leader last. */
        f.members[0].version = "3.5.9";
        fx_plan(&f);
        assert_int_equal(f.plan.n_actions, 2);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-2");
        assert_action(&f, 1, EG_ACTION_UPGRADE_MEMBER, "c-1");
        eg_plan_done(&f.plan);
}

static void test_plan__upgrade_waits_for_healthy(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_versions(&f, "3.4.23");
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 100;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "upgrade to 3.5.9 waits for every member to be healthy (c-2 is not)");
        assert_true(f.plan.upgrading);
        eg_plan_done(&f.plan);
}

/* etcd answers /health before the kubelet's readiness probe passes: the member upgraded
 * last is healthy but its pod not Ready, and the next upgrade waits for it. */
static void test_plan__upgrade_waits_for_ready(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_versions(&f, "3.4.23");
        f.members[0].version = (char *)"3.5.9";
        f.members[0].unready = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "upgrade to 3.5.9 waits for every member to be ready (c-0 is healthy, its "
                                           "pod not Ready yet)");
        eg_plan_done(&f.plan);
        f.members[0].unready = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-1");
        eg_plan_done(&f.plan);
}

/* Members whose data cannot survive a template change (emptyDir pods) are rolled by adding a
 * successor, promoting it, then removing the old member: never fewer voters than the size,
 * the leader last, members that can change in place still upgraded in place. */
static void test_plan__template_roll_by_replacement(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.4.23");
        f.in.desired_hash = "sha256:new";
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++) {
                f.members[i].spec_hash = "sha256:old";
                f.members[i].replace_to_roll = true;
        }
        f.members[0].is_leader = false;
        f.members[1].is_leader = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        const struct {
                enum eg_action_kind kind;
                const char *member;
        } want[] = {
                {EG_ACTION_ADD_LEARNER, "c-3"}, {EG_ACTION_PROMOTE, "c-3"}, {EG_ACTION_REMOVE_MEMBER, "c-0"},
                {EG_ACTION_ADD_LEARNER, "c-4"}, {EG_ACTION_PROMOTE, "c-4"}, {EG_ACTION_REMOVE_MEMBER, "c-2"},
                {EG_ACTION_ADD_LEARNER, "c-5"}, {EG_ACTION_PROMOTE, "c-5"}, {EG_ACTION_REMOVE_MEMBER, "c-1"},
        };
        assert_int_equal(f.plan.n_actions, EG_ELEMENTSOF(want));
        for (size_t i = 0; i < EG_ELEMENTSOF(want); i++)
                assert_action(&f, i, want[i].kind, want[i].member);
        assert_string_equal(f.plan.actions[0].reason, "replace member c-0 onto the changed member template (3 to go): "
                                                      "add member c-3 as learner");
        assert_string_equal(f.plan.actions[2].reason,
                            "remove member c-0, replaced by a member on the changed member template (4 -> 3)");
        assert_true(f.plan.actions[2].delete_data);
        assert_reason_has(f.plan.actions[6].reason,
                          "replace member c-1 onto the changed member template (the leader, last)");
        assert_true(f.plan.upgrading);
        eg_plan_done(&f.plan);

        /* mid-way, with the successor a voter: an old member goes (the first, as the upgrade
         * names them), not the new one nor the leader (c-0) */
        fx_init(&f, 3, "3.4.23");
        f.in.desired_hash = "sha256:new";
        fx_cluster(&f, 4);
        for (size_t i = 0; i < 3; i++) {
                f.members[i].spec_hash = "sha256:old";
                f.members[i].replace_to_roll = true;
        }
        f.members[3].spec_hash = "sha256:new";
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_MEMBER, "c-1");
        eg_plan_done(&f.plan);

        /* a member that can take the change in place is upgraded in place, first */
        fx_init(&f, 3, "3.4.23");
        f.in.desired_hash = "sha256:new";
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++)
                f.members[i].spec_hash = "sha256:old";
        f.members[2].replace_to_roll = true;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-1");
        eg_plan_done(&f.plan);

        /* the successor waits for every member to be healthy, like any scale-up */
        fx_init(&f, 3, "3.4.23");
        f.in.desired_hash = "sha256:new";
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++) {
                f.members[i].spec_hash = "sha256:old";
                f.members[i].replace_to_roll = true;
        }
        f.members[2].healthy = false;
        f.members[2].unhealthy_since_ms = NOW - 100;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        eg_plan_done(&f.plan);
}

/* Plans a 3-member cluster at `from` towards `to`. */
static void plan_version_step(struct fx *f, const char *from, const char *to) {
        fx_init(f, 3, to);
        fx_cluster(f, 3);
        fx_versions(f, from);
        fx_plan(f);
}

static void test_plan__upgrade_version_rules(void **state) {
        struct fx f;

        plan_version_step(&f, "3.4.23", "3.5.0");
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-1");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "3.5.9", "3.5.12");
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-1");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "3.4.23", "3.6.0");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "upgrade 3.4.23 -> 3.6.0 skips a minor version; go one minor at a "
                                           "time (3.4.23 -> 3.5)");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "3.5.9", "3.4.23");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "downgrade 3.5.9 -> 3.4.23 refused");
        assert_reason_has(f.plan.reason, "c-0");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "3.5.12", "3.5.9");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "downgrade 3.5.12 -> 3.5.9 refused");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "3.5.9", "4.0.0");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "changes the major version");
        eg_plan_done(&f.plan);

        plan_version_step(&f, "banana", "3.5.9");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "not a version number");
        eg_plan_done(&f.plan);

        /* A version we were never told about is not guessed at. */
        plan_version_step(&f, NULL, "3.5.9");
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_reason_has(f.plan.reason, "the version of member c-0 is unknown");
        eg_plan_done(&f.plan);

        /* Mid-upgrade the others are checked against their own version. */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].version = "3.4.23";
        fx_plan(&f);
        assert_int_equal(f.plan.n_actions, 1);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-2");
        eg_plan_done(&f.plan);
}

static void test_plan__template_change_rolls(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        for (size_t i = 0; i < 3; i++)
                f.members[i].spec_hash = "old";
        f.in.desired_hash = "new";
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 3);
        assert_action(&f, 0, EG_ACTION_UPGRADE_MEMBER, "c-1");
        assert_action(&f, 1, EG_ACTION_UPGRADE_MEMBER, "c-2");
        assert_action(&f, 2, EG_ACTION_UPGRADE_MEMBER, "c-0");
        assert_string_equal(f.plan.actions[0].reason, "roll member c-1 onto the changed member template (3 to go)");
        assert_true(f.plan.upgrading);
        eg_plan_done(&f.plan);

        /* Members without a recorded template (adopted from the original operator)
         * are taken as they are: adoption never restarts them. */
        for (size_t i = 0; i < 3; i++)
                f.members[i].spec_hash = NULL;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_CONVERGED);
        eg_plan_done(&f.plan);
        for (size_t i = 0; i < 3; i++)
                f.members[i].spec_hash = "old";

        /* Without a desired hash the template is not compared. */
        f.in.desired_hash = NULL;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_CONVERGED);
        assert_int_equal(f.plan.n_actions, 0);
        assert_false(f.plan.upgrading);
        eg_plan_done(&f.plan);

        /* Same hash: converged. */
        f.in.desired_hash = "old";
        fx_plan(&f);
        assert_state(&f, EG_PLAN_CONVERGED);
        assert_string_equal(f.plan.reason, "3 of 3 members healthy at version 3.5.9");
        eg_plan_done(&f.plan);
}

/* ---- manifest states ---- */

static void test_plan__paused(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        f.spec.paused = true;
        /* Not even a bootstrap. */
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PAUSED);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "cluster default/c is paused (spec.paused); observing only");
        eg_plan_done(&f.plan);

        /* A dead member is not healed while paused, but conditions still say so. */
        fx_cluster(&f, 3);
        f.members[2].running = f.members[2].healthy = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PAUSED);
        assert_int_equal(f.plan.n_actions, 0);
        assert_true(f.plan.available);
        assert_true(f.plan.recovering);
        eg_plan_done(&f.plan);
}

static void test_plan__untouched_when_invalid(void **state) {
        struct fx f;
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].running = f.members[2].healthy = false;
        f.in.spec_invalid = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_UNTOUCHED);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "manifest for default/c is invalid; the cluster is left as it is");
        eg_plan_done(&f.plan);

        /* Invalid and the spec could not even be built: never a prune. */
        f.in.spec = NULL;
        f.pol.prune = true;
        f.in.prune_allowed = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_UNTOUCHED);
        assert_int_equal(f.plan.n_actions, 0);
        eg_plan_done(&f.plan);

        /* Invalid with nothing running: no bootstrap. */
        fx_init(&f, 3, "3.5.9");
        f.in.spec_invalid = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_UNTOUCHED);
        eg_plan_done(&f.plan);
}

static void test_plan__prune(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.in.spec = NULL;

        f.in.prune_allowed = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_ABSENT);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "manifest removed; not pruned (prune is off)");
        eg_plan_done(&f.plan);

        f.pol.prune = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_ABSENT);
        assert_string_equal(f.plan.reason, "manifest removed; not pruned (prune not allowed this pass)");
        eg_plan_done(&f.plan);

        f.in.prune_allowed = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PROGRESSING);
        assert_int_equal(f.plan.n_actions, 1);
        assert_action(&f, 0, EG_ACTION_PRUNE, NULL);
        assert_false(f.plan.actions[0].delete_data);
        assert_int_equal(f.plan.actions[0].n_members, 3);
        assert_string_equal(f.plan.actions[0].members[0], "c-0");
        assert_string_equal(f.plan.actions[0].members[2], "c-2");
        assert_string_equal(f.plan.actions[0].reason,
                            "manifest removed: prune cluster default/c (3 members, data kept)");
        assert_int_equal(f.plan.next_index, 3);
        eg_plan_done(&f.plan);

        f.pol.delete_pruned_data = true;
        fx_plan(&f);
        assert_true(f.plan.actions[0].delete_data);
        assert_reason_has(f.plan.actions[0].reason, "data deleted");
        eg_plan_done(&f.plan);

        /* Nothing there: nothing to prune. */
        fx_init(&f, 3, "3.5.9");
        f.in.spec = NULL;
        f.pol.prune = true;
        f.in.prune_allowed = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_ABSENT);
        assert_int_equal(f.plan.n_actions, 0);
        assert_string_equal(f.plan.reason, "no manifest and no cluster default/c: nothing to do");
        eg_plan_done(&f.plan);
}

static void test_plan__prune_allowed(void **state) {
        struct eg_policy p;
        const char *why = "unset";

        eg_policy_init(&p);
        assert_false(eg_plan_prune_allowed(&p, true, 3, 1, &why));
        assert_string_equal(why, "prune is off");

        p.prune = true;
        assert_false(eg_plan_prune_allowed(&p, false, 3, 1, &why));
        assert_string_equal(why, "the source has errors; nothing is pruned until it parses cleanly");

        assert_false(eg_plan_prune_allowed(&p, true, 3, 3, &why));
        assert_string_equal(why, "pruning would remove every cluster; pass --allow-empty to allow it");

        assert_true(eg_plan_prune_allowed(&p, true, 3, 2, &why));
        assert_null(why);
        assert_true(eg_plan_prune_allowed(&p, true, 0, 0, &why));
        assert_true(eg_plan_prune_allowed(&p, true, 3, 0, NULL));

        p.allow_empty = true;
        assert_true(eg_plan_prune_allowed(&p, true, 3, 3, &why));
        assert_null(why);
        /* allow_empty does not override a dirty source. */
        assert_false(eg_plan_prune_allowed(&p, false, 3, 3, &why));
        assert_string_equal(why, "the source has errors; nothing is pruned until it parses cleanly");
}

static void test_plan__size_out_of_range(void **state) {
        struct fx f;
        fx_init(&f, 0, "3.5.9");
        fx_plan(&f);
        assert_state(&f, EG_PLAN_BLOCKED);
        assert_string_equal(f.plan.reason, "spec.size 0 of c is out of range (1 to 1000)");
        eg_plan_done(&f.plan);

        fx_init(&f, INT64_MAX, "3.5.9");
        fx_plan(&f);
        assert_state(&f, EG_PLAN_BLOCKED);
        eg_plan_done(&f.plan);
}

static void test_plan__conditions(void **state) {
        struct fx f;

        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_plan(&f);
        assert_state(&f, EG_PLAN_CONVERGED);
        assert_true(f.plan.available);
        assert_false(f.plan.recovering);
        assert_false(f.plan.scaling);
        assert_false(f.plan.upgrading);
        assert_int_equal(f.plan.next_index, 3);
        eg_plan_done(&f.plan);

        /* Scaling down and upgrading at once; scaling goes first. */
        f.spec.size = 1;
        f.spec.version = "3.6.1";
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REMOVE_MEMBER, "c-2");
        assert_true(f.plan.available);
        assert_true(f.plan.scaling);
        assert_true(f.plan.upgrading);
        assert_false(f.plan.recovering);
        /* Both removals, then the remaining leader is upgraded. */
        assert_int_equal(f.plan.n_actions, 3);
        assert_action(&f, 1, EG_ACTION_REMOVE_MEMBER, "c-1");
        assert_action(&f, 2, EG_ACTION_UPGRADE_MEMBER, "c-0");
        eg_plan_done(&f.plan);
}

/* ---- invariants over random clusters ---- */

static uint64_t rng_next(uint64_t *s) {
        /* xorshift64*: reproducible from the seed, no libc state. */
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 2685821657736338717ULL;
}

static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

static void random_cluster(struct fx *f, uint64_t *rng) {
        static const char *const versions[] = {"3.4.23", "3.5.9", "3.5.12", "3.6.0", NULL};
        static const char *const hashes[] = {"h1", "h2", NULL};

        fx_init(f, 1 + rng_below(rng, 7), versions[rng_below(rng, 4)]);
        f->in.desired_hash = hashes[rng_below(rng, 3)];
        f->pol.keep_removed_data = rng_below(rng, 2);
        unsigned n = rng_below(rng, 3) ? rng_below(rng, 6) : rng_below(rng, 13);
        unsigned index = rng_below(rng, 4);
        for (unsigned i = 0; i < n; i++) {
                struct eg_observed_member *m = fx_add(f, index);
                index += 1 + rng_below(rng, 2);
                m->in_runtime = rng_below(rng, 8) != 0;
                m->running = m->in_runtime && rng_below(rng, 6) != 0;
                m->in_membership = rng_below(rng, 8) != 0;
                m->is_learner = m->in_membership && rng_below(rng, 6) == 0;
                m->healthy = rng_below(rng, 4) != 0;
                if (!m->healthy && rng_below(rng, 4) != 0)
                        m->unhealthy_since_ms = NOW - (int64_t)rng_below(rng, 12000);
                if (rng_below(rng, 3) == 0)
                        m->started_ms = NOW - (int64_t)rng_below(rng, 20000);
                m->version = rng_below(rng, 2) ? f->spec.version : (char *)versions[rng_below(rng, 5)];
                m->spec_hash = rng_below(rng, 2) ? (char *)f->in.desired_hash : (char *)hashes[rng_below(rng, 3)];
                m->replace_to_roll = rng_below(rng, 3) == 0;
        }
        if (n > 0 && rng_below(rng, 5) != 0)
                f->members[rng_below(rng, n)].is_leader = true;
        f->obs.exists = n > 0 ? rng_below(rng, 10) != 0 : rng_below(rng, 4) == 0;
        f->obs.etcd_reachable = rng_below(rng, 10) != 0;
        f->obs.next_index += rng_below(rng, 3);
        f->spec.paused = rng_below(rng, 20) == 0;
        f->in.spec_invalid = rng_below(rng, 30) == 0;
        if (rng_below(rng, 15) == 0)
                f->in.spec = NULL;
        f->pol.prune = rng_below(rng, 2);
        f->in.prune_allowed = f->pol.prune && rng_below(rng, 2);
}

static bool membership_change(enum eg_action_kind k) {
        return k == EG_ACTION_ADD_LEARNER || k == EG_ACTION_PROMOTE || k == EG_ACTION_REMOVE_MEMBER ||
               k == EG_ACTION_REPLACE_DEAD || k == EG_ACTION_REMOVE_ORPHAN;
}

static bool needs_roll(const struct fx *f, const struct eg_observed_member *m) {
        return !m->version || strcmp(m->version, f->spec.version) != 0 ||
               (f->in.desired_hash && m->spec_hash && strcmp(m->spec_hash, f->in.desired_hash) != 0);
}
static void check_invariants(struct fx *f) {
        const struct eg_plan *p = &f->plan;
        size_t voters = 0, healthy = 0;
        bool present = f->obs.exists;

        for (size_t i = 0; i < f->obs.n_members; i++) {
                const struct eg_observed_member *m = &f->members[i];
                present |= m->in_runtime || m->in_membership;
                if (m->in_membership && !m->is_learner) {
                        voters++;
                        healthy += m->healthy;
                }
        }

        assert_int_equal(p->state == EG_PLAN_PROGRESSING, p->n_actions > 0);
        assert_true(p->n_actions <= 64);
        assert_true(p->next_index >= f->obs.next_index);
        if (p->state != EG_PLAN_CONVERGED && p->state != EG_PLAN_PROGRESSING)
                assert_non_null(p->reason);
        if (p->state == EG_PLAN_QUORUM_LOST)
                assert_int_equal(p->n_actions, 0);
        if (f->in.spec_invalid)
                assert_int_equal(p->state, EG_PLAN_UNTOUCHED);
        if (f->in.spec && f->in.spec->paused && !f->in.spec_invalid)
                assert_int_equal(p->state, EG_PLAN_PAUSED);
        if (p->available)
                assert_true(healthy >= eg_quorum(voters));

        for (size_t i = 0; i < p->n_actions; i++) {
                const struct eg_action *a = &p->actions[i];
                assert_non_null(a->reason);
                assert_true(a->kind != EG_ACTION_BOOTSTRAP || i == 0);
                if (a->kind == EG_ACTION_BOOTSTRAP)
                        assert_false(present);
                if (a->kind == EG_ACTION_PRUNE)
                        assert_true(f->in.prune_allowed && !f->in.spec);
                if (a->kind == EG_ACTION_ADD_LEARNER) {
                        /* A new identity: never the name of anything observed. */
                        for (size_t j = 0; j < f->obs.n_members; j++)
                                assert_string_not_equal(a->member, f->members[j].name);
                }
        }
        if (p->n_actions == 0)
                return;

        /* The step taken now: membership changes only with quorum, never losing it. */
        const struct eg_action *a = &p->actions[0];
        if (!membership_change(a->kind) && a->kind != EG_ACTION_UPGRADE_MEMBER)
                return;
        assert_true(f->obs.etcd_reachable);
        assert_true(healthy >= eg_quorum(voters));
        const struct eg_observed_member *m = NULL;
        for (size_t j = 0; j < f->obs.n_members; j++)
                if (a->member && strcmp(a->member, f->members[j].name) == 0)
                        m = &f->members[j];
        if (a->kind == EG_ACTION_ADD_LEARNER) {
                assert_null(m);
                return;
        }
        assert_non_null(m);
        bool voter = m->in_membership && !m->is_learner;
        if (voter && (a->kind == EG_ACTION_REMOVE_MEMBER || a->kind == EG_ACTION_REPLACE_DEAD ||
                      a->kind == EG_ACTION_REMOVE_ORPHAN))
                assert_true(healthy - m->healthy >= eg_quorum(voters - 1));
        if (a->kind == EG_ACTION_REMOVE_MEMBER) {
                assert_true(voter);
                assert_true(voters > (size_t)f->spec.size);
                /* the leader goes only as the last member replaced onto a new template */
                if (voters > 1 && m->is_leader) {
                        assert_true(m->replace_to_roll && needs_roll(f, m));
                        for (size_t j = 0; j < f->obs.n_members; j++) {
                                const struct eg_observed_member *o = &f->members[j];
                                if (o != m && o->in_membership && !o->is_learner)
                                        assert_false(o->replace_to_roll && needs_roll(f, o));
                        }
                }
        }
        if (a->kind == EG_ACTION_UPGRADE_MEMBER) {
                assert_int_equal(healthy, voters);
                assert_int_equal(voters, (size_t)f->spec.size);
                if (m->is_leader)
                        for (size_t j = 0; j < f->obs.n_members; j++) {
                                const struct eg_observed_member *o = &f->members[j];
                                if (o != m && o->in_membership && !o->is_learner)
                                        assert_true(o->version && strcmp(o->version, f->spec.version) == 0);
                        }
        }
}

static void test_plan__random_invariants(void **state) {
        uint64_t rng = 0x9e3779b97f4a7c15ULL;
        size_t seen[8] = {0};

        for (unsigned i = 0; i < 20000; i++) {
                struct fx f;
                random_cluster(&f, &rng);
                fx_plan(&f);
                check_invariants(&f);
                seen[f.plan.state]++;
                eg_plan_done(&f.plan);
        }
        /* The generator reaches every state, so the invariants were exercised on each. */
        for (size_t s = 0; s < EG_ELEMENTSOF(seen); s++)
                if (!seen[s])
                        fail_msg("no random cluster ended %s", eg_plan_state_to_string((enum eg_plan_state)s));
}

/* ---- restart in place, honest quorum, starting and failing members ---- */

/* Member i's process is gone; its data dir still holds its log. */
static void fx_gone(struct fx *f, size_t i, bool data_kept) {
        f->members[i].running = f->members[i].healthy = f->members[i].reachable = false;
        f->members[i].is_leader = false;
        f->members[i].life = EG_LIFE_GONE;
        f->members[i].data_kept = data_kept;
        f->members[i].unhealthy_since_ms = f->members[i].unreachable_since_ms = NOW - 60000;
}

static void assert_restart_of(struct fx *f, const char *const *names, size_t n) {
        assert_state(f, EG_PLAN_PROGRESSING);
        assert_action(f, 0, EG_ACTION_RESTART, names[0]);
        const struct eg_action *a = &f->plan.actions[0];
        assert_int_equal(a->n_members, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(a->members[i], names[i]);
        assert_false(a->delete_data);
}

static void test_plan__gone_member_with_data_restarted_in_place(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_gone(&f, 2, true);
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-2"}, 1);
        assert_string_equal(f.plan.actions[0].reason, "restart member c-2 in place (process gone, data kept)");
        /* nothing else follows: the member comes back as itself */
        assert_int_equal(f.plan.n_actions, 1);
        eg_plan_done(&f.plan);

        /* without its data it cannot: replaced as before */
        fx_gone(&f, 2, false);
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        assert_reason_has(f.plan.actions[0].reason, "no data to restart from");
        eg_plan_done(&f.plan);
}

static void test_plan__reboot_restarts_every_member(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.etcd_reachable = false;
        for (size_t i = 0; i < 3; i++) {
                fx_gone(&f, i, true);
                f.members[i].in_membership = false; /* nobody to ask */
        }
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-0", "c-1", "c-2"}, 3);
        assert_string_equal(f.plan.actions[0].reason,
                            "restart members c-0, c-1, c-2 in place (processes gone, data kept)");
        eg_plan_done(&f.plan);

        /* two of three down, the survivor answers: both come back, no quorum-lost */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_gone(&f, 0, true);
        fx_gone(&f, 1, true);
        f.members[2].healthy = false;
        f.members[2].reachable = true;
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-0", "c-1"}, 2);
        eg_plan_done(&f.plan);
}

static void test_plan__crash_during_create_resumes(void **state) {
        struct fx f;
        /* c-0 started, c-1 and c-2 prepared when the daemon died: etcd lists all three */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[0].is_leader = f.members[0].healthy = false;
        f.members[0].reachable = true;
        for (size_t i = 1; i < 3; i++) {
                fx_gone(&f, i, false);
                f.members[i].never_started = true;
        }
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-1", "c-2"}, 2);
        assert_string_equal(f.plan.actions[0].reason, "restart members c-1, c-2 in place (they never started)");
        eg_plan_done(&f.plan);

        /* none started: no etcd to ask, the record of the initial members is enough */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.etcd_reachable = false;
        for (size_t i = 0; i < 3; i++) {
                fx_gone(&f, i, false);
                f.members[i].never_started = f.members[i].initial = true;
                f.members[i].in_membership = false;
        }
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-0", "c-1", "c-2"}, 3);
        eg_plan_done(&f.plan);

        /* the first one runs unrecorded-then-adopted, alone: it answers nothing before a
         * majority runs, so the others start from the record too */
        f.members[0].life = EG_LIFE_RUNNING;
        f.members[0].running = true;
        f.members[0].never_started = false;
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-1", "c-2"}, 2);
        eg_plan_done(&f.plan);

        /* a joiner that never ran, with no etcd to say its peers: not guessed */
        f.members[1].initial = f.members[2].initial = false;
        fx_plan(&f);
        assert_true(f.plan.state != EG_PLAN_PROGRESSING);
        eg_plan_done(&f.plan);

        /* a joiner that never ran and etcd does not list: stopped, not started */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *j = fx_add(&f, 3);
        j->in_membership = false;
        j->running = j->healthy = false;
        j->life = EG_LIFE_GONE;
        j->never_started = true;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_STOP_UNKNOWN, "c-3");
        eg_plan_done(&f.plan);
}

static void test_plan__restart_backs_off_then_replaces(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_gone(&f, 1, true);
        f.members[1].restarts = 2;
        f.members[1].restart_not_before_ms = NOW + 1500;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-1 is restarted in place in 1500 ms (back-off after 2 restarts)");
        eg_plan_done(&f.plan);

        f.members[1].restart_not_before_ms = NOW;
        fx_plan(&f);
        assert_restart_of(&f, (const char *const[]){"c-1"}, 1);
        eg_plan_done(&f.plan);

        /* kept failing: the policy's limit turns it into a replacement */
        f.members[1].restarts = f.pol.restart_limit;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-1");
        assert_string_equal(
                f.plan.actions[0].reason,
                "member c-1 dead (kept failing: restarted 5 times within 10 min); remove it, a fresh member "
                "replaces it");
        eg_plan_done(&f.plan);
}

static void test_plan__leader_election_is_not_quorum_loss(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        /* the leader was killed a moment ago; the two others answer but have no leader yet */
        fx_gone(&f, 0, true);
        f.members[0].restart_not_before_ms = NOW + 500;
        for (size_t i = 1; i < 3; i++) {
                f.members[i].healthy = false;
                f.members[i].reachable = true;
                f.members[i].unhealthy_since_ms = NOW - 200;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        eg_plan_done(&f.plan);
        f.members[0].restart_not_before_ms = 0;
        f.members[0].data_kept = false;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "electing: 2 of 3 voting members answer, 0 healthy with a leader (need 2)");
        assert_false(f.plan.available);
        eg_plan_done(&f.plan);
}

static void test_plan__quorum_lost_only_after_grace(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_gone(&f, 1, false);
        f.members[2].running = true;
        f.members[2].healthy = f.members[2].reachable = false;
        f.members[2].unhealthy_since_ms = f.members[2].unreachable_since_ms = NOW - 1000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason,
                            "1 of 3 voting members reachable (need 2); quorum is judged lost after 3000 ms");
        eg_plan_done(&f.plan);

        f.members[2].unreachable_since_ms = NOW - f.pol.quorum_grace_ms;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_reason_has(f.plan.reason, "c-1: data gone, c-2: running, not answering");
        eg_plan_done(&f.plan);

        /* nobody answers at all, but only for a moment: waited for */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.etcd_reachable = false;
        for (size_t i = 0; i < 3; i++) {
                f.members[i].in_membership = f.members[i].healthy = false;
                f.members[i].unreachable_since_ms = NOW - 500;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_reason_has(f.plan.reason, "no member of c answers yet");
        eg_plan_done(&f.plan);
}

static void test_plan__starting_member_judged_by_deadline(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 2);
        /* a learner whose pod is still pulling its image */
        struct eg_observed_member *l = fx_add(&f, 2);
        l->is_learner = true;
        l->running = l->healthy = false;
        l->life = EG_LIFE_STARTING;
        l->life_reason = "ContainerCreating";
        l->life_since_ms = NOW - 60000;
        l->unhealthy_since_ms = NOW - 60000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "learner c-2 is starting (ContainerCreating); it is replaced if still so "
                                           "300 s after it began");
        eg_plan_done(&f.plan);

        l->life_since_ms = NOW - f.pol.start_timeout_ms;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        assert_string_equal(f.plan.actions[0].reason,
                            "learner c-2 dead (still starting after 300s: ContainerCreating); "
                            "remove it, a fresh member replaces it");
        eg_plan_done(&f.plan);

        /* a learner process receiving a large snapshot answers nothing meanwhile: the same deadline */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 2);
        l = fx_add(&f, 2);
        l->is_learner = true;
        l->healthy = false;
        l->started_ms = l->unhealthy_since_ms = NOW - 120000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_reason_has(f.plan.reason, "learner c-2 catching up");
        eg_plan_done(&f.plan);
        l->started_ms = NOW - f.pol.start_timeout_ms;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);

        /* a starting pod the membership does not list yet holds back any second new member */
        fx_init(&f, 5, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *p = fx_add(&f, 3);
        p->in_membership = false;
        p->running = p->healthy = false;
        p->life = EG_LIFE_STARTING;
        p->life_since_ms = NOW - 2000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        eg_plan_done(&f.plan);
}

static void test_plan__failing_member_waited_for_never_replaced(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.members[2].running = f.members[2].healthy = false;
        f.members[2].life = EG_LIFE_FAILING;
        f.members[2].life_reason = "ImagePullBackOff: Back-off pulling image";
        f.members[2].data_kept = true;
        f.members[2].life_since_ms = NOW - 20000;
        f.members[2].unhealthy_since_ms = f.members[2].unreachable_since_ms = NOW - 20000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "member c-2 is failing (ImagePullBackOff: Back-off pulling image); it is "
                                           "waited for, not replaced: a fresh member would get the same image and "
                                           "template");
        eg_plan_done(&f.plan);

        /* a fresh member would pull the same image: time changes nothing, no replacement loop */
        f.members[2].life_since_ms = NOW - 10 * f.pol.start_timeout_ms;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_reason_has(f.plan.reason, "waited for, not replaced");
        eg_plan_done(&f.plan);

        /* nor does a scale-up add a member beside it, and the wait names the platform's reason */
        f.spec.size = 4;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "scale up 3 -> 4 waits for every member to be healthy (c-2 is failing: "
                                           "ImagePullBackOff: Back-off pulling image)");
        eg_plan_done(&f.plan);

        /* past the start timeout it no longer counts as on its way: a majority failing is quorum lost */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        for (size_t i = 1; i < 3; i++) {
                f.members[i].running = f.members[i].healthy = false;
                f.members[i].life = EG_LIFE_FAILING;
                f.members[i].life_reason = "ErrImagePull: not found";
                f.members[i].life_since_ms = NOW - f.pol.start_timeout_ms;
                f.members[i].unhealthy_since_ms = f.members[i].unreachable_since_ms = NOW - f.pol.start_timeout_ms;
        }
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        assert_reason_has(f.plan.reason, "c-1: ErrImagePull: not found, c-2: ErrImagePull: not found");
        eg_plan_done(&f.plan);
}

static void test_plan__failing_learner_waited_for_or_replaced_when_spec_changed(void **state) {
        struct fx f;
        fx_init(&f, 4, "3.5.9");
        fx_cluster(&f, 3);
        struct eg_observed_member *l = fx_add(&f, 3);
        l->is_learner = true;
        l->running = l->healthy = false;
        l->life = EG_LIFE_FAILING;
        l->life_reason = "ErrImagePull: not found";
        l->life_since_ms = l->unhealthy_since_ms = NOW - 2 * f.pol.start_timeout_ms;
        fx_plan(&f);
        /* one new member at a time: no second learner beside the failing one, and no replacement */
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "learner c-3 is failing (ErrImagePull: not found); it is waited for, not "
                                           "replaced: a fresh member would get the same image and template");
        eg_plan_done(&f.plan);

        /* the spec fixed (another version): the learner made for the old one goes at once */
        l->version = "3.6.0";
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-3");
        assert_string_equal(f.plan.actions[0].reason, "learner c-3 is failing (ErrImagePull: not found) and was made "
                                                      "for another spec than the one desired now; remove it, a fresh "
                                                      "member replaces it");
        assert_true(f.plan.actions[0].delete_data);
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-4");
        assert_string_equal(f.plan.actions[1].version, "3.5.9");
        eg_plan_done(&f.plan);

        /* a learner still starting says why, and is replaced past the start timeout, once */
        l->version = f.spec.version;
        l->life = EG_LIFE_STARTING;
        l->life_reason = "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.";
        l->life_since_ms = NOW - 10000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_WAITING);
        assert_string_equal(f.plan.reason, "learner c-3 is starting (Unschedulable: 0/3 nodes are available: 3 "
                                           "Insufficient cpu.); it is replaced if still so 300 s after it began");
        eg_plan_done(&f.plan);
        l->life_since_ms = NOW - f.pol.start_timeout_ms;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_REPLACE_DEAD, "c-3");
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, "c-4");
        eg_plan_done(&f.plan);
}

static void test_plan__restore_over_running_cluster_is_planned(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.in.restore_from = "s3://b/snap";
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_RESTORE_REPLACE, NULL);
        assert_false(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason,
                            "EtcdRestore with overwrite: stop the running cluster c (its data "
                            "is kept) to restore it from s3://b/snap");
        /* diff shows the whole way: teardown, the seed, then the learners */
        assert_action(&f, 1, EG_ACTION_BOOTSTRAP, NULL);
        assert_int_equal(f.plan.actions[1].n_members, 1);
        eg_plan_done(&f.plan);
}

/* A cluster coreos etcd-operator made: its objects are released from the EtcdCluster resource
 * first, whatever else the cluster needs, and nothing else is planned differently. */
static void test_plan__adopt_before_anything_else(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.upstream_owned = "pod/c-0, service/c";
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_ADOPT, NULL);
        assert_null(f.plan.actions[0].member);
        assert_false(f.plan.actions[0].delete_data);
        assert_string_equal(f.plan.actions[0].reason,
                            "adopt c from coreos etcd-operator: remove the ownerReferences to its EtcdCluster resource "
                            "from pod/c-0, service/c, so that deleting that resource or its CRD cannot "
                            "garbage-collect them (nothing is restarted)");
        /* converged once adopted */
        assert_int_equal(f.plan.n_actions, 1);
        eg_plan_done(&f.plan);

        /* a dead member is replaced after */
        fx_gone(&f, 2, false);
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_ADOPT, NULL);
        assert_action(&f, 1, EG_ACTION_REPLACE_DEAD, "c-2");
        eg_plan_done(&f.plan);

        /* quorum lost: still released, since deleting the resource would take what is left */
        fx_gone(&f, 1, false);
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_ADOPT, NULL);
        assert_int_equal(f.plan.n_actions, 1);
        eg_plan_done(&f.plan);
        f.obs.upstream_owned = NULL;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);

        /* hands off where nothing is to be changed: paused, no manifest, invalid manifest */
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        f.obs.upstream_owned = "pod/c-0";
        f.spec.paused = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_PAUSED);
        eg_plan_done(&f.plan);
        f.spec.paused = false;
        f.in.spec = NULL;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_ABSENT);
        eg_plan_done(&f.plan);
        f.in.spec = &f.spec;
        f.in.spec_invalid = true;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_UNTOUCHED);
        eg_plan_done(&f.plan);
}

static void test_plan__auto_recover_only_when_opted_in_and_late(void **state) {
        struct fx f;
        fx_init(&f, 3, "3.5.9");
        fx_cluster(&f, 3);
        fx_gone(&f, 0, false);
        fx_gone(&f, 1, false);
        f.members[2].healthy = false;
        f.members[2].reachable = true;
        f.members[2].raft_index = 42;
        f.members[2].revision = 17;
        f.in.quorum_lost_since_ms = NOW - 120000;
        /* not opted in: a human decides */
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);

        /* opted in, but not lost for long enough yet */
        f.in.auto_recover_after_ms = 600000;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);

        f.in.auto_recover_after_ms = 60000;
        fx_plan(&f);
        assert_action(&f, 0, EG_ACTION_RECOVER, "c-2");
        assert_reason_has(f.plan.actions[0].reason, "most advanced survivor c-2 (raft index 42, revision 17");
        /* then it grows back through learners */
        assert_action(&f, 1, EG_ACTION_ADD_LEARNER, NULL);
        eg_plan_done(&f.plan);

        /* nobody answers: nothing to recover from automatically */
        f.members[2].reachable = false;
        f.members[2].running = false;
        f.members[2].life = EG_LIFE_GONE;
        fx_plan(&f);
        assert_state(&f, EG_PLAN_QUORUM_LOST);
        eg_plan_done(&f.plan);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plan__names),
                cmocka_unit_test(test_plan__gone_member_with_data_restarted_in_place),
                cmocka_unit_test(test_plan__reboot_restarts_every_member),
                cmocka_unit_test(test_plan__crash_during_create_resumes),
                cmocka_unit_test(test_plan__restart_backs_off_then_replaces),
                cmocka_unit_test(test_plan__leader_election_is_not_quorum_loss),
                cmocka_unit_test(test_plan__quorum_lost_only_after_grace),
                cmocka_unit_test(test_plan__starting_member_judged_by_deadline),
                cmocka_unit_test(test_plan__failing_member_waited_for_never_replaced),
                cmocka_unit_test(test_plan__failing_learner_waited_for_or_replaced_when_spec_changed),
                cmocka_unit_test(test_plan__restore_over_running_cluster_is_planned),
                cmocka_unit_test(test_plan__adopt_before_anything_else),
                cmocka_unit_test(test_plan__auto_recover_only_when_opted_in_and_late),
                cmocka_unit_test(test_plan__policy_defaults),
                cmocka_unit_test(test_plan__invalid_arguments),
                cmocka_unit_test(test_plan__bootstrap_fresh),
                cmocka_unit_test(test_plan__restore_seeds_one_member),
                cmocka_unit_test(test_plan__bootstrap_starts_at_next_index),
                cmocka_unit_test(test_plan__never_rebootstrap_all_dead),
                cmocka_unit_test(test_plan__scale_up_adds_learner_with_next_index),
                cmocka_unit_test(test_plan__scale_up_waits_for_healthy_voters),
                cmocka_unit_test(test_plan__scale_up_waits_for_voters_to_settle),
                cmocka_unit_test(test_plan__scale_up_refuses_version_skip),
                cmocka_unit_test(test_plan__one_membership_change_at_a_time),
                cmocka_unit_test(test_plan__promote_healthy_learner),
                cmocka_unit_test(test_plan__learner_catching_up_waits),
                cmocka_unit_test(test_plan__dead_learner_removed),
                cmocka_unit_test(test_plan__scale_down_never_removes_leader),
                cmocka_unit_test(test_plan__scale_down_prefers_unhealthy),
                cmocka_unit_test(test_plan__scale_down_refuses_quorum_loss),
                cmocka_unit_test(test_plan__dead_member_replaced),
                cmocka_unit_test(test_plan__unhealthy_member_dead_after_threshold),
                cmocka_unit_test(test_plan__two_of_three_dead_quorum_lost),
                cmocka_unit_test(test_plan__learner_is_not_a_voter),
                cmocka_unit_test(test_plan__orphan_removed_only_with_quorum),
                cmocka_unit_test(test_plan__dead_removal_keeps_quorum),
                cmocka_unit_test(test_plan__stop_unknown),
                cmocka_unit_test(test_plan__grace_period),
                cmocka_unit_test(test_plan__fresh_cluster_forming_waits),
                cmocka_unit_test(test_plan__etcd_unreachable),
                cmocka_unit_test(test_plan__upgrade_one_at_a_time_leader_last),
                cmocka_unit_test(test_plan__upgrade_waits_for_healthy),
                cmocka_unit_test(test_plan__upgrade_waits_for_ready),
                cmocka_unit_test(test_plan__template_roll_by_replacement),
                cmocka_unit_test(test_plan__upgrade_version_rules),
                cmocka_unit_test(test_plan__template_change_rolls),
                cmocka_unit_test(test_plan__paused),
                cmocka_unit_test(test_plan__untouched_when_invalid),
                cmocka_unit_test(test_plan__prune),
                cmocka_unit_test(test_plan__prune_allowed),
                cmocka_unit_test(test_plan__size_out_of_range),
                cmocka_unit_test(test_plan__conditions),
                cmocka_unit_test(test_plan__random_invariants),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
