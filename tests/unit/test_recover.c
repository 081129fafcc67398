/* Unit tests of guided quorum recovery's pure part: the most advanced survivor, when
 * recovery is refused, and the revision gap it reports. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-gitops/reconcile.h"

#define MAX_MEMBERS 8

struct fx {
        struct eg_recover_member members[MAX_MEMBERS];
        char names[MAX_MEMBERS][8];
        struct eg_recover_view view;
        struct eg_recover_plan plan;
        struct eg_error err;
};

/* n voting members c-0 .. c-(n-1), every one gone with its data lost. */
static void fx_init(struct fx *f, size_t n) {
        memset(f, 0, sizeof(*f));
        f->view.members = f->members;
        f->view.n_members = n;
        f->view.voters = n;
        for (size_t i = 0; i < n; i++) {
                snprintf(f->names[i], sizeof(f->names[i]), "c-%zu", i);
                f->members[i] = (struct eg_recover_member){.name = f->names[i], .voter = true};
        }
}

static void fx_answers(struct fx *f, size_t i, uint64_t raft_index, int64_t revision) {
        f->members[i].running = f->members[i].answers = true;
        f->members[i].raft_index = raft_index;
        f->members[i].revision = revision;
}

static int fx_plan(struct fx *f, const struct eg_recover_request *req) {
        eg_recover_plan_done(&f->plan);
        eg_error_done(&f->err);
        return eg_recover_plan(&f->view, req, "default/c", &f->plan, &f->err);
}

static void fx_done(struct fx *f) {
        eg_recover_plan_done(&f->plan);
        eg_error_done(&f->err);
}

static void assert_has(const char *s, const char *needle) {
        assert_non_null(s);
        if (!strstr(s, needle))
                fail_msg("\"%s\" does not contain \"%s\"", s, needle);
}

static void test_recover__most_advanced_by_raft_index_then_revision(void **state) {
        (void)state;
        struct fx f;
        fx_init(&f, 3);
        assert_int_equal(eg_recover_most_advanced(&f.view), -1);
        fx_answers(&f, 0, 100, 50);
        fx_answers(&f, 1, 120, 40);
        assert_int_equal(eg_recover_most_advanced(&f.view), 1);
        fx_answers(&f, 2, 120, 45);
        assert_int_equal(eg_recover_most_advanced(&f.view), 2);
        /* a member that does not answer has no numbers of its own to count */
        f.members[0].answers = false;
        f.members[0].raft_index = 999;
        assert_int_equal(eg_recover_most_advanced(&f.view), 2);
}

static void test_recover__refused_with_quorum(void **state) {
        (void)state;
        struct fx f;
        struct eg_recover_request req = {0};
        fx_init(&f, 3);
        fx_answers(&f, 0, 10, 5);
        fx_answers(&f, 1, 10, 5);
        assert_int_equal(fx_plan(&f, &req), -EBUSY);
        assert_has(f.err.message, "still has quorum: 2 of 3");
        /* a learner that answers is no voter: one voter of three is no quorum */
        f.members[1].voter = false;
        f.view.voters = 2;
        assert_int_equal(fx_plan(&f, &req), 0);
        fx_done(&f);
}

static void test_recover__refused_while_members_can_restart(void **state) {
        (void)state;
        struct fx f;
        struct eg_recover_request req = {0};
        fx_init(&f, 3);
        fx_answers(&f, 0, 10, 5);
        f.members[2].data_kept = true;
        assert_int_equal(fx_plan(&f, &req), -EBUSY);
        assert_has(f.err.message, "c-2 is down with its data kept");
        assert_has(f.err.message, "--force");
        req.force = true;
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_int_equal(f.plan.seed, 0);
        fx_done(&f);
}

static void test_recover__from_member_gap(void **state) {
        (void)state;
        struct fx f;
        struct eg_recover_request req = {0};
        fx_init(&f, 5);
        fx_answers(&f, 0, 200, 90);
        fx_answers(&f, 3, 180, 70);
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_int_equal(f.plan.seed, 0);
        assert_int_equal(f.plan.revision_gap, 0);
        assert_has(f.plan.reason, "from member c-0 (raft index 200, revision 90)");
        assert_has(f.plan.reason, "their data kept aside: c-1, c-2, c-3, c-4;");
        assert_has(f.plan.reason, "revision gap 0");

        req.member = "c-3";
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_int_equal(f.plan.seed, 3);
        assert_int_equal(f.plan.revision_gap, 20);
        assert_has(f.plan.reason, "revision gap 20 (the most advanced survivor, c-0, is at revision 90)");
        fx_done(&f);
}

static void test_recover__from_member_choices_refused(void **state) {
        (void)state;
        struct fx f;
        struct eg_recover_request req = {0};
        fx_init(&f, 3);
        /* nobody answers: a member must be named */
        assert_int_equal(fx_plan(&f, &req), -ENOENT);
        assert_has(f.err.message, "--from-member NAME");
        req.member = "c-9";
        assert_int_equal(fx_plan(&f, &req), -ENOENT);
        assert_has(f.err.message, "its members: c-0, c-1, c-2");
        req.member = "c-1";
        assert_int_equal(fx_plan(&f, &req), -ENODATA);
        assert_has(f.err.message, "no data left");
        /* a learner's log may be behind any voter's: it is never the seed */
        fx_answers(&f, 0, 10, 5);
        f.members[0].voter = false;
        f.view.voters = 2;
        req.member = "c-0";
        assert_int_equal(fx_plan(&f, &req), -EINVAL);
        assert_has(f.err.message, "not a voting member");
        f.members[0] = (struct eg_recover_member){.name = f.names[0], .voter = true};
        f.view.voters = 3;
        req.member = "c-1";
        /* named, down with its data kept (--force: it would otherwise be restarted in place) */
        f.members[1].data_kept = true;
        f.members[2].data_kept = true;
        req.force = true;
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_int_equal(f.plan.revision_gap, -1);
        assert_has(f.plan.reason, "revision gap unknown");
        fx_done(&f);
}

static void test_recover__from_backup_gap(void **state) {
        (void)state;
        struct fx f;
        struct eg_recover_request req = {.from_backup = true};
        fx_init(&f, 3);
        fx_answers(&f, 2, 300, 120);
        assert_int_equal(fx_plan(&f, &req), -ENOENT);
        assert_has(f.err.message, "no verified backup of default/c");

        f.view.backup_ref = "/backups/c_v100_2026-12-05-09:00:00";
        f.view.backup_revision = 100;
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_string_equal(f.plan.backup_ref, f.view.backup_ref);
        assert_int_equal(f.plan.revision_gap, 20);
        assert_has(f.plan.reason, "(revision 100)");
        assert_has(f.plan.reason, "every member, their data kept aside: c-0, c-1, c-2");

        /* a backup the state dir knows nothing of: its revision is learned after the restore */
        req.backup_ref = "/elsewhere/c.db";
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_string_equal(f.plan.backup_ref, "/elsewhere/c.db");
        assert_int_equal(f.plan.revision_gap, -1);
        assert_has(f.plan.reason, "revision gap unknown until the new cluster answers");

        /* a backup newer than every survivor loses nothing they hold */
        req.backup_ref = NULL;
        f.view.backup_revision = 150;
        assert_int_equal(fx_plan(&f, &req), 0);
        assert_int_equal(f.plan.revision_gap, 0);
        fx_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_recover__most_advanced_by_raft_index_then_revision),
                cmocka_unit_test(test_recover__refused_with_quorum),
                cmocka_unit_test(test_recover__refused_while_members_can_restart),
                cmocka_unit_test(test_recover__from_member_gap),
                cmocka_unit_test(test_recover__from_member_choices_refused),
                cmocka_unit_test(test_recover__from_backup_gap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
