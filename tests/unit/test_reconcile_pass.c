/* Reconcile passes end to end on a fake runtime and a fake etcd (no process anywhere): every
 * planner action from the manifest to the membership, the runtime's members, the pass results
 * and the audit records. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/util.h"
#include "../lib/fake_etcd.h"
#include "../lib/fake_runtime.h"

/* Passes a change may take to converge; a test past it is stuck, not slow. */
#define MAX_PASSES 40

#define NS "default"

struct fx {
        char dir[64];
        char *audit_path;
        struct eg_audit *audit;
        struct fake_etcd *fe;
        struct fake_runtime *fr;
        struct eg_reconciler_options opt; /* the reconciler is made from it at the first pass */
        struct eg_reconciler *r;
        struct eg_desired_set *desired;
        struct eg_pass_result res; /* of the last pass */
        uint64_t audit_seen;       /* seq of the last record fx_decisions returned */
        char *text;                /* the last string a helper returned, valid until the next */
};

static int fx_setup(void **state) {
        struct fx *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        /* every audit record and status file is fsync'd: in memory that costs nothing */
        snprintf(f->dir, sizeof(f->dir), "/dev/shm/eg-pass-XXXXXX");
        if (!mkdtemp(f->dir)) {
                snprintf(f->dir, sizeof(f->dir), "/tmp/eg-pass-XXXXXX");
                assert_non_null(mkdtemp(f->dir));
        }
        f->audit_path = eg_path_join(f->dir, "audit.jsonl");
        assert_int_equal(eg_audit_open(f->audit_path, &f->audit, NULL), 0);
        assert_int_equal(fake_etcd_new(&f->fe), 0);
        assert_int_equal(fake_runtime_new(f->fe, &f->fr), 0);
        eg_policy_init(&f->opt.policy);
        /* the fake answers at once and its health never flickers: no time is given to anything */
        f->opt.policy.dead_after_ms = 0;
        f->opt.policy.start_grace_ms = 0;
        f->opt.policy.member_settle_ms = 0;
        f->opt.policy.quorum_grace_ms = 0;
        f->opt.runtime = fake_runtime_get(f->fr);
        f->opt.audit = f->audit;
        f->opt.state_dir = f->dir;
        f->opt.etcd_timeout_ms = 1000;
        *state = f;
        return 0;
}

static int fx_teardown(void **state) {
        struct fx *f = *state;
        eg_reconciler_free(f->r);
        eg_desired_set_free(f->desired);
        fake_runtime_free(f->fr);
        fake_etcd_free(f->fe);
        eg_audit_close(f->audit);
        eg_rm_rf(f->dir);
        free(f->audit_path);
        free(f->text);
        free(f);
        return 0;
}

/* Replaces the desired set by the manifests in YAML. */
static void __attribute__((format(printf, 2, 3))) fx_desire(struct fx *f, const char *fmt, ...) {
        va_list ap;
        char *yaml = NULL;
        va_start(ap, fmt);
        assert_true(vasprintf(&yaml, fmt, ap) >= 0);
        va_end(ap);
        eg_desired_set_free(f->desired);
        f->desired = NULL;
        assert_int_equal(eg_desired_set_new(&f->desired), 0);
        struct eg_origin origin = {.path = (char *)"clusters.yaml"};
        assert_int_equal(eg_spec_parse_buffer(f->desired, &origin, yaml, strlen(yaml), NULL), 0);
        assert_int_equal(eg_desired_set_finish(f->desired), 0);
        free(yaml);
}

#define CLUSTER_YAML                                                                                                \
        "---\napiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata: {name: %s, namespace: " NS \
        "}\nspec: {size: %d, version: \"%s\"}\n"

static void fx_cluster(struct fx *f, const char *name, int size, const char *version) {
        fx_desire(f, CLUSTER_YAML, name, size, version);
}

static void fx_pass(struct fx *f) {
        if (!f->r)
                assert_int_equal(eg_reconciler_new(&f->opt, &f->r), 0);
        struct eg_revision_info rev = {.revision = f->desired ? f->desired->revision : NULL};
        assert_int_equal(eg_reconciler_pass(f->r, f->desired, &rev, &f->res), 0);
}

/* Passes until every cluster is converged; returns how many it took. */
static int fx_converge(struct fx *f) {
        for (int i = 1; i <= MAX_PASSES; i++) {
                fx_pass(f);
                if (f->res.all_converged)
                        return i;
        }
        fail_msg("not converged after %d passes", MAX_PASSES);
        return -1;
}

static const char *fx_keep(struct fx *f, char *s) {
        free(f->text);
        f->text = s;
        return s;
}

/* The audit records since the last call, "decision(member):outcome" separated by spaces. */
static const char *fx_decisions(struct fx *f) {
        struct eg_audit_filter flt = {.since_seq = f->audit_seen};
        struct eg_audit_record *recs = NULL;
        size_t n = 0;
        int r = eg_audit_read(f->audit_path, &flt, &recs, &n);
        assert_true(r == 0 || r == -ENOENT);
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < n; i++) {
                const struct eg_audit_record *a = &recs[i];
                assert_int_equal(eg_buf_printf(&b, "%s%s%s%s%s:%s", b.len ? " " : "", a->decision, a->member ? "(" : "",
                                               a->member ? a->member : "", a->member ? ")" : "",
                                               a->outcome ? a->outcome : "-"),
                                 0);
                f->audit_seen = a->seq;
        }
        eg_audit_records_free(recs, n);
        return fx_keep(f, eg_buf_steal(&b));
}

static const char *fx_members(struct fx *f, const char *name) {
        return fx_keep(f, fake_runtime_members(f->fr, NS, name, false));
}

static const char *fx_versions(struct fx *f, const char *name) {
        return fx_keep(f, fake_runtime_members(f->fr, NS, name, true));
}

static const char *fx_membership(struct fx *f, const char *name) {
        return fx_keep(f, fake_etcd_membership(f->fe, NS, name));
}

static const char *fx_leader(struct fx *f, const char *name) { return fx_keep(f, fake_etcd_leader(f->fe, NS, name)); }

static void assert_has(const char *s, const char *needle) {
        assert_non_null(s);
        if (!strstr(s, needle))
                fail_msg("\"%s\" does not contain \"%s\"", s, needle);
}

static void assert_lacks(const char *s, const char *needle) {
        if (s && strstr(s, needle))
                fail_msg("\"%s\" contains \"%s\"", s, needle);
}

/* A healthy cluster c of size members at version, and an audit log read up to here. */
static void fx_running(struct fx *f, int size, const char *version) {
        fx_cluster(f, "c", size, version);
        fx_converge(f);
        fx_decisions(f);
}

/* Converges, then checks the decisions recorded on the way and the members left, the runtime's
 * and etcd's alike. */
static void fx_converges_to(struct fx *f, const char *decisions, const char *members) {
        fx_converge(f);
        assert_string_equal(fx_decisions(f), decisions);
        assert_string_equal(fx_members(f, "c"), members);
        assert_string_equal(fx_membership(f, "c"), members);
}

/* Passes over the one cluster that must take no step, each finding it converged (or paused),
 * blocked, or neither (waiting). */
static void fx_holds(struct fx *f, int passes, size_t converged, size_t blocked) {
        for (int i = 0; i < passes; i++) {
                fx_pass(f);
                assert_int_equal(f->res.n_actions, 0);
                assert_int_equal(f->res.n_converged, converged);
                assert_int_equal(f->res.n_blocked, blocked);
        }
}

/* ---- creating and growing ---- */

static void test_reconcile_pass__create(void **state) {
        struct fx *f = *state;
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_clusters, 1);
        assert_int_equal(f->res.n_actions, 1);
        assert_int_equal(f->res.n_failed, 0);
        assert_false(f->res.all_converged);
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        fx_pass(f);
        assert_true(f->res.all_converged);
        assert_int_equal(f->res.n_actions, 0);
        assert_int_equal(f->res.n_converged, 1);
        assert_string_equal(fx_decisions(f), "create:ok noop:skipped");
        /* a converged cluster is not recorded again */
        fx_pass(f);
        assert_string_equal(fx_decisions(f), "");
}

static void test_reconcile_pass__create_waits_for_starting_members(void **state) {
        struct fx *f = *state;
        fake_runtime_start_after(f->fr, 3);
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_string_equal(fx_members(f, "c"), "c-0(starting) c-1(starting) c-2(starting)");
        fx_pass(f);
        assert_false(f->res.all_converged);
        assert_int_equal(f->res.n_actions, 0);
        assert_int_equal(fx_converge(f), 3);
        assert_string_equal(fx_decisions(f), "create:ok waiting:skipped noop:skipped");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
}

static void test_reconcile_pass__scale_up_through_learners(void **state) {
        struct fx *f = *state;
        fx_running(f, 1, "3.4.23");
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1~");
        fx_converges_to(f, "add-learner(c-1):ok promote(c-1):ok add-learner(c-2):ok promote(c-2):ok noop:skipped",
                        "c-0 c-1 c-2");
}

/* etcd refuses a member add while a new voter's peers are not connected long enough: the add
 * waits, and the refused member's name is handed out again, so none is skipped. */
static void test_reconcile_pass__add_refused_by_unhealthy_cluster_waits(void **state) {
        struct fx *f = *state;
        fx_running(f, 1, "3.4.23");
        fake_etcd_set_faults(f->fe, NS, "c", &(struct fake_etcd_faults){.add_refusals_after_join = 3});
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 0);
        assert_int_equal(f->res.n_failed, 0);
        assert_false(f->res.all_converged);
        assert_string_equal(fx_members(f, "c"), "c-0");
        fx_converge(f);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
        assert_true(fake_etcd_calls(f->fe, NS, "c", FAKE_CALL_ADD) >= 2 + 2 * 3);
        const char *d = fx_decisions(f);
        assert_has(d, "waiting:skipped add-learner(c-1):ok");
        assert_lacks(d, "failed");
}

static void test_reconcile_pass__promote_waits_until_learner_caught_up(void **state) {
        struct fx *f = *state;
        fx_running(f, 1, "3.4.23");
        fake_etcd_set_faults(f->fe, NS, "c", &(struct fake_etcd_faults){.promote_refusals = 3});
        /* first it does not even look healthy */
        fake_etcd_mute(f->fe, NS, "c", "c-1", FAKE_CALL_BIT(FAKE_CALL_HEALTH));
        fx_cluster(f, "c", 2, "3.4.23");
        for (int i = 0; i < 3; i++)
                fx_pass(f);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1~");
        assert_int_equal(fake_etcd_calls(f->fe, NS, "c", FAKE_CALL_PROMOTE), 0);
        fake_etcd_mute(f->fe, NS, "c", "c-1", 0);
        fx_pass(f);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1~");
        assert_int_equal(f->res.n_failed, 0);
        fx_converge(f);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1");
        assert_int_equal(fake_etcd_calls(f->fe, NS, "c", FAKE_CALL_PROMOTE), 4);
        assert_string_equal(fx_decisions(f), "add-learner(c-1):ok waiting:skipped promote(c-1):ok noop:skipped");
}

/* Members whose transport to a new peer is fresh refuse the add: it is asked of the others. */
static void test_reconcile_pass__add_refused_by_one_member_is_asked_of_others(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        for (const char *const *m = (const char *const[]){"c-0", "c-1", NULL}; *m; m++)
                fake_etcd_refuse(f->fe, NS, "c", *m, FAKE_CALL_BIT(FAKE_CALL_ADD));
        fx_cluster(f, "c", 4, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        fx_converges_to(f, "add-learner(c-3):ok promote(c-3):ok noop:skipped", "c-0 c-1 c-2 c-3");
}

/* A member that drops the call (cut off from this daemon) is passed over for the next. */
static void test_reconcile_pass__mute_member_is_passed_over(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        for (const char *const *m = (const char *const[]){"c-0", "c-1", NULL}; *m; m++)
                fake_etcd_mute(f->fe, NS, "c", *m, FAKE_CALL_BIT(FAKE_CALL_ADD) | FAKE_CALL_BIT(FAKE_CALL_LIST));
        fx_cluster(f, "c", 4, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        fx_converges_to(f, "add-learner(c-3):ok promote(c-3):ok noop:skipped", "c-0 c-1 c-2 c-3");
}

static void test_reconcile_pass__scale_down_keeps_the_leader(void **state) {
        struct fx *f = *state;
        fx_running(f, 5, "3.4.23");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", "c-4"), 0);
        fx_cluster(f, "c", 3, "3.4.23");
        fx_converges_to(f, "remove(c-3):ok remove(c-2):ok noop:skipped", "c-0 c-1 c-4");
        assert_string_equal(fx_leader(f, "c"), "c-4");
}

/* ---- members that die ---- */

static void test_reconcile_pass__replace_dead_member(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-1", false), 0);
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-2");
        fx_converges_to(f, "replace-dead(c-1):ok add-learner(c-3):ok promote(c-3):ok noop:skipped", "c-0 c-2 c-3");
}

static void test_reconcile_pass__restart_in_place(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-2", true), 0);
        fx_converges_to(f, "restart(c-2):ok noop:skipped", "c-0 c-1 c-2");
}

/* A host rebooted: no member runs, so etcd answers nothing, and all come back at once. */
static void test_reconcile_pass__restart_all_without_quorum(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        for (const char *const *m = (const char *const[]){"c-0", "c-1", "c-2", NULL}; *m; m++)
                assert_int_equal(fake_runtime_kill(f->fr, NS, "c", *m, true), 0);
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "restart(c-0):ok noop:skipped");
        assert_non_null(fx_leader(f, "c"));
}

static void test_reconcile_pass__member_that_keeps_failing_is_replaced(void **state) {
        struct fx *f = *state;
        f->opt.policy.restart_limit = 1;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-0", true), 0);
        fx_converge(f);
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-0", true), 0);
        fx_converges_to(f,
                        "restart(c-0):ok noop:skipped replace-dead(c-0):ok add-learner(c-3):ok promote(c-3):ok "
                        "noop:skipped",
                        "c-1 c-2 c-3");
}

/* A member that answers too late for the client is as good as dead. */
static void test_reconcile_pass__slow_member_is_replaced(void **state) {
        struct fx *f = *state;
        f->opt.etcd_timeout_ms = 150;
        fx_running(f, 3, "3.4.23");
        fake_etcd_delay(f->fe, NS, "c", "c-1", 600);
        fx_converges_to(f, "replace-dead(c-1):ok add-learner(c-3):ok promote(c-3):ok noop:skipped", "c-0 c-2 c-3");
}

/* A member the platform cannot run is waited for, past its start timeout too: a fresh one would
 * fail the same way. */
static void test_reconcile_pass__failing_member_is_waited_for(void **state) {
        struct fx *f = *state;
        f->opt.policy.start_timeout_ms = 1;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_fail(f->fr, NS, "c", "c-1", "ImagePullBackOff"), 0);
        fx_holds(f, 5, 0, 0);
        assert_string_equal(fx_decisions(f), "waiting:skipped");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1(failing) c-2");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
}

static void test_reconcile_pass__quorum_lost_blocks(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-0", false), 0);
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-1", false), 0);
        fx_holds(f, 3, 0, 1);
        assert_string_equal(fx_decisions(f), "quorum-lost:blocked");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        assert_string_equal(fx_members(f, "c"), "c-0(gone) c-1(gone) c-2");
        size_t warnings = 0;
        fake_runtime_events(f->fr, &warnings);
        assert_int_equal(warnings, 1);
}

/* Members answer but elect no leader: nothing is judged dead, however long it lasts. */
static void test_reconcile_pass__election_is_waited_for(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", NULL), 0);
        fx_holds(f, 3, 0, 0);
        assert_string_equal(fx_decisions(f), "waiting:skipped");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", "c-2"), 0);
        fx_converges_to(f, "noop:skipped", "c-0 c-1 c-2");
}

/* ---- leftovers ---- */

static void test_reconcile_pass__stop_unknown_member(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_add_stray(f->fr, NS, "c", "c-7"), 0);
        fx_converges_to(f, "stop-unknown(c-7):ok noop:skipped", "c-0 c-1 c-2");
}

static void test_reconcile_pass__remove_orphan(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_forget(f->fr, NS, "c", "c-2"), 0);
        fx_pass(f);
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1");
        fx_converges_to(f, "remove-orphan(c-2):ok add-learner(c-3):ok promote(c-3):ok noop:skipped", "c-0 c-1 c-3");
}

static void test_reconcile_pass__prune(void **state) {
        struct fx *f = *state;
        fx_desire(f, CLUSTER_YAML CLUSTER_YAML, "a", 1, "3.4.23", "b", 3, "3.4.23");
        fx_converge(f);
        fx_decisions(f);
        fx_cluster(f, "a", 1, "3.4.23");
        /* without --prune a cluster whose manifest is gone stays */
        fx_converge(f);
        assert_string_equal(fx_members(f, "b"), "b-0 b-1 b-2");
        assert_string_equal(fx_decisions(f), "noop:skipped noop:skipped");
        /* the daemon restarted with --prune */
        f->opt.policy.prune = true;
        eg_reconciler_free(f->r);
        f->r = NULL;
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_null(fake_runtime_members(f->fr, NS, "b", false));
        assert_string_equal(fx_membership(f, "b"), "");
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "noop:skipped prune:ok");
        assert_string_equal(fx_members(f, "a"), "a-0");
}

static void test_reconcile_pass__adopt(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_runtime_set_upstream_owned(f->fr, NS, "c", "pod/c-0, service/c"), 0);
        fx_converges_to(f, "adopt:ok noop:skipped", "c-0 c-1 c-2");
}

/* ---- versions and templates ---- */

static void test_reconcile_pass__upgrade_leader_last(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", "c-1"), 0);
        fx_cluster(f, "c", 3, "3.5.0");
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "upgrade-member(c-0):ok upgrade-member(c-2):ok "
                                             "upgrade-member(c-1):ok noop:skipped");
        assert_string_equal(fx_versions(f, "c"), "c-0@3.5.0 c-1@3.5.0 c-2@3.5.0");
        /* leadership was handed over before the leader went down */
        assert_int_equal(fake_etcd_calls(f->fe, NS, "c", FAKE_CALL_MOVE_LEADER), 1);
        assert_string_not_equal(fx_leader(f, "c"), "c-1");
}

/* Leadership moves while an upgrade rolls: the new leader is still upgraded last. */
static void test_reconcile_pass__upgrade_follows_a_leader_change(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", "c-0"), 0);
        fx_cluster(f, "c", 3, "3.5.0");
        fx_pass(f);
        assert_string_equal(fx_decisions(f), "upgrade-member(c-1):ok");
        assert_int_equal(fake_etcd_elect(f->fe, NS, "c", "c-2"), 0);
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "upgrade-member(c-0):ok upgrade-member(c-2):ok noop:skipped");
        assert_string_equal(fx_versions(f, "c"), "c-0@3.5.0 c-1@3.5.0 c-2@3.5.0");
}

static void test_reconcile_pass__upgrade_skipping_a_minor_is_blocked(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        fx_cluster(f, "c", 3, "3.6.0");
        fx_holds(f, 3, 0, 1);
        assert_string_equal(fx_decisions(f), "blocked:blocked");
        assert_string_equal(fx_versions(f, "c"), "c-0@3.4.23 c-1@3.4.23 c-2@3.4.23");
}

/* A template the runtime cannot apply in place: each member gets a successor first. */
static void test_reconcile_pass__template_rolled_by_replacement(void **state) {
        struct fx *f = *state;
        fake_runtime_rolls_in_place(f->fr, false);
        fx_running(f, 3, "3.4.23");
        fx_desire(f, "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata: {name: c, namespace: "
                     "default}\nspec: {size: 3, version: \"3.4.23\", repository: registry.example/etcd}\n");
        assert_string_equal(fx_leader(f, "c"), "c-0");
        fx_converge(f);
        assert_string_equal(fx_members(f, "c"), "c-3 c-4 c-5");
        assert_string_equal(fx_membership(f, "c"), "c-3 c-4 c-5");
        /* the leader goes last */
        assert_string_equal(fx_decisions(f), "add-learner(c-3):ok promote(c-3):ok remove(c-1):ok "
                                             "add-learner(c-4):ok promote(c-4):ok remove(c-2):ok "
                                             "add-learner(c-5):ok promote(c-5):ok remove(c-0):ok noop:skipped");
}

/* A snapshot file as etcd writes it, the database followed by its sha256, or one whose sha256 does
 * not match (malloc'd path). */
static char *fx_snapshot(struct fx *f, bool intact) {
        char *path = eg_path_join(f->dir, "snapshot.db");
        const char db[] = "a bolt database";
        unsigned char trailer[32];
        struct eg_sha256 *h = NULL;
        assert_int_equal(eg_sha256_new(&h), 0);
        eg_sha256_update(h, db, sizeof(db));
        eg_sha256_final_raw(h, trailer);
        trailer[0] ^= !intact;
        FILE *fp = fopen(path, "we");
        assert_non_null(fp);
        assert_int_equal(fwrite(db, 1, sizeof(db), fp) + fwrite(trailer, 1, sizeof(trailer), fp), sizeof(db) + 32);
        assert_int_equal(fclose(fp), 0);
        return path;
}

#define RESTORE_YAML                                                                                               \
        "---\napiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdRestore\nmetadata: {name: r, namespace: " NS \
        "}\nspec: {etcdCluster: {name: c}, backupStorageType: File, file: {path: '%s'}, overwrite: true}\n"

/* An EtcdRestore with overwrite replaces a running cluster: it is stopped, a seed member starts
 * from the snapshot and the cluster grows back to size; the restore is applied once. */
static void test_reconcile_pass__restore_replaces_running_cluster(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        _cleanup_free_ char *snapshot = fx_snapshot(f, true);
        fx_desire(f, CLUSTER_YAML RESTORE_YAML, "c", 3, "3.4.23", snapshot);
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_null(fake_runtime_members(f->fr, NS, "c", false));
        fx_pass(f);
        assert_string_equal(fx_members(f, "c"), "c-0");
        assert_int_equal(fake_runtime_restores(f->fr), 1);
        fx_converges_to(f,
                        "restore-replace:ok create:ok add-learner(c-1):ok promote(c-1):ok add-learner(c-2):ok "
                        "promote(c-2):ok noop:skipped",
                        "c-0 c-1 c-2");
        fx_holds(f, 2, 1, 0);
        assert_int_equal(fake_runtime_restores(f->fr), 1);
}

/* Nothing is torn down before the snapshot to restore is there and verified. */
static void test_reconcile_pass__restore_of_a_bad_snapshot_changes_nothing(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        _cleanup_free_ char *snapshot = fx_snapshot(f, false);
        fx_desire(f, CLUSTER_YAML RESTORE_YAML, "c", 3, "3.4.23", snapshot);
        fx_pass(f);
        assert_int_equal(f->res.n_failed, 1);
        assert_int_equal(f->res.n_actions, 0);
        assert_string_equal(fx_decisions(f), "restore:failed");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        assert_int_equal(fake_runtime_restores(f->fr), 0);
}

/* ---- what the manifest or the options hold back ---- */

static void test_reconcile_pass__paused_changes_nothing(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        fx_desire(f, "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata: {name: c, "
                     "namespace: default}\nspec: {size: 5, version: \"3.4.23\", paused: true}\n");
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-1", true), 0);
        fx_holds(f, 3, 1, 0);
        assert_string_equal(fx_decisions(f), "paused:skipped");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1(gone) c-2");
}

/* The status file's "suspended" object, as compact JSON; NULL when it has none. */
static const char *fx_suspended_status(struct fx *f, const char *name) {
        char *path = eg_strdup_printf("%s/status/" NS "/%s.json", f->dir, name);
        json_t *st = json_load_file(path, 0, NULL);
        json_t *s = json_object_get(json_object_get(st, "status"), "suspended");
        char *text = s ? json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(st);
        free(path);
        return fx_keep(f, text);
}

static int fx_suspend(struct fx *f, const char *name, bool on) {
        struct eg_error err = {0};
        int k = eg_reconciler_set_suspended(f->r, name ? NS : NULL, name, on, on ? "disk swap" : NULL, "uid 7 (ops)",
                                            &err);
        if (k < 0)
                fx_keep(f, err.message ? strdup(err.message) : NULL);
        eg_error_done(&err);
        return k;
}

/* Suspended by hand: the dead member is seen and reported, nothing is done about it, the plan
 * held back is recorded once; resumed, the cluster converges. */
static void test_reconcile_pass__suspended_changes_nothing(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fx_suspend(f, "c", true), 1);
        assert_int_equal(fx_suspend(f, "c", true), 0);
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-1", false), 0);
        fx_holds(f, 3, 1, 0);
        assert_true(f->res.all_converged);
        assert_string_equal(fx_decisions(f), "suspend:ok suspended:skipped");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1(gone) c-2");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        assert_has(fx_suspended_status(f, "c"), "\"actor\":\"uid 7 (ops)\",\"reason\":\"disk swap\",\"since\":");

        struct eg_audit_record *recs = NULL;
        size_t n = 0;
        assert_int_equal(eg_audit_read(f->audit_path, NULL, &recs, &n), 0);
        assert_true(n >= 2);
        assert_string_equal(recs[n - 2].actor, "uid 7 (ops)");
        assert_string_equal(recs[n - 2].reason, "disk swap");
        assert_string_equal(recs[n - 1].reason, "suspended by uid 7 (ops): disk swap; held back: replace-dead c-1, "
                                                "add-learner c-3, promote c-3");
        eg_audit_records_free(recs, n);

        assert_int_equal(fx_suspend(f, "c", false), 1);
        fx_converges_to(f, "resume:ok replace-dead(c-1):ok add-learner(c-3):ok promote(c-3):ok noop:skipped",
                        "c-0 c-2 c-3");
        assert_null(fx_suspended_status(f, "c"));
}

/* --all: every cluster known, desired or only running; a prune is held like any step. */
static void test_reconcile_pass__suspend_all_holds_prune(void **state) {
        struct fx *f = *state;
        fx_desire(f, CLUSTER_YAML CLUSTER_YAML, "a", 1, "3.4.23", "b", 1, "3.4.23");
        fx_converge(f);
        fx_decisions(f);
        assert_int_equal(fx_suspend(f, "x", true), -ENOENT);
        assert_string_equal(f->text, "no cluster default/x; the clusters are default/a, default/b");
        assert_int_equal(fx_suspend(f, NULL, true), 2);
        assert_int_equal(fx_suspend(f, NULL, true), 0);
        /* b's manifest goes, and the daemon restarts with --prune */
        f->opt.policy.prune = true;
        eg_reconciler_free(f->r);
        f->r = NULL;
        fx_cluster(f, "a", 1, "3.4.23");
        fx_holds(f, 2, 2, 0);
        assert_string_equal(fx_members(f, "b"), "b-0");
        /* a converged cluster is recorded as ever, suspended or not */
        assert_string_equal(fx_decisions(f), "suspend:ok suspend:ok noop:skipped suspended:skipped");
        assert_int_equal(fx_suspend(f, NULL, false), 2);
        fx_converge(f);
        assert_null(fake_runtime_members(f->fr, NS, "b", false));
        assert_string_equal(fx_decisions(f), "resume:ok resume:ok prune:ok");
}

/* The suspension is in the state dir: a new reconciler (the daemon restarted) holds it too. */
static void test_reconcile_pass__suspension_outlives_the_reconciler(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        assert_int_equal(fx_suspend(f, "c", true), 1);
        eg_reconciler_free(f->r);
        f->r = NULL;
        fx_cluster(f, "c", 5, "3.4.23");
        fx_holds(f, 2, 1, 0);
        assert_string_equal(fx_decisions(f), "suspend:ok suspended:skipped");
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
        eg_reconciler_free(f->r);
        f->r = NULL;
        fx_pass(f);
        assert_int_equal(fx_suspend(f, "c", false), 1);
        fx_converge(f);
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2 c-3 c-4");
}

static void test_reconcile_pass__invalid_manifest_leaves_cluster_alone(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        fx_cluster(f, "c", 0, "3.4.23");
        assert_true(f->desired->n_errors > 0);
        assert_int_equal(fake_runtime_kill(f->fr, NS, "c", "c-1", false), 0);
        fx_pass(f);
        assert_int_equal(f->res.n_blocked, 1);
        assert_int_equal(f->res.n_actions, 0);
        assert_string_equal(fx_decisions(f), "invalid:blocked");
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
}

static void test_reconcile_pass__dry_run_changes_nothing(void **state) {
        struct fx *f = *state;
        f->opt.dry_run = true;
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_actions, 1);
        assert_null(fake_runtime_members(f->fr, NS, "c", false));
        /* the same would-do is recorded once */
        fx_pass(f);
        fx_pass(f);
        assert_string_equal(fx_decisions(f), "create:dry-run");
        assert_int_equal(fake_runtime_events(f->fr, NULL), 0);
}

/* After a change of source, the clusters whose manifest changed take their turn first,
 * whatever their place in the order of names. */
static void test_reconcile_pass__changed_manifest_goes_first(void **state) {
        struct fx *f = *state;
        fx_desire(f, CLUSTER_YAML CLUSTER_YAML CLUSTER_YAML, "a", 1, "3.4.23", "b", 1, "3.4.23", "c", 1, "3.4.23");
        fx_converge(f);
        fx_decisions(f);
        fx_desire(f, CLUSTER_YAML CLUSTER_YAML CLUSTER_YAML, "a", 1, "3.4.23", "b", 1, "3.4.23", "c", 3, "3.4.23");
        fx_pass(f);
        struct eg_audit_filter flt = {.since_seq = f->audit_seen};
        struct eg_audit_record *recs = NULL;
        size_t n = 0;
        assert_int_equal(eg_audit_read(f->audit_path, &flt, &recs, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(recs[0].cluster, "default/c");
        assert_string_equal(recs[0].decision, "add-learner");
        assert_string_equal(recs[1].cluster, "default/a");
        assert_string_equal(recs[2].cluster, "default/b");
        eg_audit_records_free(recs, n);
        fx_decisions(f);
}

/* A failed step backs its cluster off (a pass skips it until due) without holding back another. */
static void test_reconcile_pass__failure_backs_off(void **state) {
        struct fx *f = *state;
        fx_running(f, 1, "3.4.23");
        fake_runtime_refuse_starts(f->fr, "no such image");
        fx_desire(f, CLUSTER_YAML CLUSTER_YAML, "c", 1, "3.4.23", "d", 1, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_clusters, 2);
        assert_int_equal(f->res.n_actions, 1);
        assert_int_equal(f->res.n_failed, 1);
        assert_int_equal(f->res.n_converged, 1);
        /* d's manifest is new, c's unchanged: d's turn comes first */
        assert_string_equal(fx_decisions(f), "create:failed noop:skipped");
        fx_pass(f);
        assert_int_equal(f->res.n_failed, 1);
        assert_int_equal(f->res.n_actions, 0);
        assert_true(f->res.next_due_ms > eg_now_monotonic_ms() + 100);
        assert_string_equal(fx_decisions(f), "");
        fake_runtime_refuse_starts(f->fr, NULL);
        eg_reconciler_poke_all(f->r);
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "create:ok noop:skipped");
        assert_string_equal(fx_members(f, "d"), "d-0");
}

/* A cluster the runtime cannot observe is recorded failed once, backs off and is taken up again. */
static void test_reconcile_pass__unobservable_cluster_backs_off(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        fake_runtime_break_observe(f->fr, "connection refused");
        fx_pass(f);
        assert_int_equal(f->res.n_failed, 1);
        assert_true(f->res.next_due_ms > eg_now_monotonic_ms() + 100);
        fx_pass(f);
        assert_int_equal(f->res.n_failed, 1);
        assert_string_equal(fx_decisions(f), "failed:failed");
        fake_runtime_break_observe(f->fr, NULL);
        eg_reconciler_poke_all(f->r);
        fx_converge(f);
        assert_int_equal(f->res.n_failed, 0);
        assert_string_equal(fx_members(f, "c"), "c-0 c-1 c-2");
}

/* Asked to stop, a pass takes up no further cluster. */
static void test_reconcile_pass__stop_takes_up_no_cluster(void **state) {
        struct fx *f = *state;
        volatile sig_atomic_t stop = 1;
        f->opt.stop = &stop;
        fx_cluster(f, "c", 3, "3.4.23");
        fx_pass(f);
        assert_int_equal(f->res.n_clusters, 0);
        assert_false(f->res.all_converged);
        assert_null(fake_runtime_members(f->fr, NS, "c", false));
        stop = 0;
        fx_converge(f);
        assert_string_equal(fx_decisions(f), "create:ok noop:skipped");
}

/* ---- the read-only views ---- */

static void test_reconcile_pass__plan_all_and_status_all(void **state) {
        struct fx *f = *state;
        fx_running(f, 3, "3.4.23");
        fx_cluster(f, "c", 5, "3.4.23");
        json_t *plans = NULL;
        assert_int_equal(eg_reconciler_plan_all(f->r, f->desired, &plans), 0);
        assert_int_equal(json_array_size(plans), 1);
        json_t *p = json_array_get(plans, 0);
        assert_string_equal(json_string_value(json_object_get(p, "state")), "progressing");
        const char *kinds[] = {"add-learner", "promote", "add-learner", "promote"};
        json_t *acts = json_object_get(p, "actions");
        assert_int_equal(json_array_size(acts), 4);
        for (size_t i = 0; i < 4; i++)
                assert_string_equal(json_string_value(json_object_get(json_array_get(acts, i), "kind")), kinds[i]);
        json_decref(plans);
        /* planning changed nothing */
        assert_string_equal(fx_membership(f, "c"), "c-0 c-1 c-2");
        assert_string_equal(fx_decisions(f), "");

        json_t *st = NULL;
        assert_int_equal(eg_reconciler_status_all(f->r, &st), 0);
        assert_int_equal(json_array_size(st), 1);
        json_t *s = json_object_get(json_array_get(st, 0), "status");
        assert_int_equal(json_array_size(json_object_get(json_object_get(s, "members"), "ready")), 3);
        json_decref(st);
}

int main(void) {
        eg_log_set_level(EG_LOG_ERROR);
        const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(test_reconcile_pass__##name, fx_setup, fx_teardown)
                T(create),
                T(create_waits_for_starting_members),
                T(scale_up_through_learners),
                T(add_refused_by_unhealthy_cluster_waits),
                T(promote_waits_until_learner_caught_up),
                T(add_refused_by_one_member_is_asked_of_others),
                T(mute_member_is_passed_over),
                T(scale_down_keeps_the_leader),
                T(replace_dead_member),
                T(restart_in_place),
                T(restart_all_without_quorum),
                T(member_that_keeps_failing_is_replaced),
                T(slow_member_is_replaced),
                T(failing_member_is_waited_for),
                T(quorum_lost_blocks),
                T(election_is_waited_for),
                T(stop_unknown_member),
                T(remove_orphan),
                T(prune),
                T(adopt),
                T(upgrade_leader_last),
                T(upgrade_follows_a_leader_change),
                T(upgrade_skipping_a_minor_is_blocked),
                T(template_rolled_by_replacement),
                T(restore_replaces_running_cluster),
                T(restore_of_a_bad_snapshot_changes_nothing),
                T(paused_changes_nothing),
                T(suspended_changes_nothing),
                T(suspend_all_holds_prune),
                T(suspension_outlives_the_reconciler),
                T(invalid_manifest_leaves_cluster_alone),
                T(dry_run_changes_nothing),
                T(changed_manifest_goes_first),
                T(failure_backs_off),
                T(unobservable_cluster_backs_off),
                T(stop_takes_up_no_cluster),
                T(plan_all_and_status_all),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
