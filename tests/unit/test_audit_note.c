/* Unit tests for the git note text, built from decisions and from the audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <cmocka.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/util.h"

static const char c1[] = "1111111111111111111111111111111111111111";
static const char c2[] = "2222222222222222222222222222222222222222";

static void add(struct eg_audit *a, const char *commit, const char *decision, const char *member, const char *outcome,
                const char *reason, const char *error) {
        struct eg_audit_record r = {.commit = commit,
                                    .cluster = "default/demo",
                                    .decision = decision,
                                    .member = member,
                                    .outcome = outcome,
                                    .reason = reason,
                                    .error = error};
        assert_int_equal(eg_audit_append(a, &r), 0);
}

static void test_audit_note__lists_what_the_commit_caused(void **state) {
        char dir[] = "/tmp/eg-note-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *log = eg_path_join(dir, "audit.jsonl");
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(log, &a, NULL), 0);
        add(a, c1, "create", NULL, "ok", "create cluster with 3 members", NULL);
        add(a, c2, "add-learner", "demo-3", "failed", "scale up 3 -> 4", "member add: boom");
        add(a, c1, "noop", NULL, "skipped", "3 of 3 members healthy", NULL);
        eg_audit_close(a);

        char *note = NULL;
        assert_int_equal(eg_audit_note_for_commit(log, "11111111", &note), 2);
        assert_string_equal(note, "default/demo: create ok (create cluster with 3 members)\n"
                                  "default/demo: noop skipped (3 of 3 members healthy)\n");
        free(note);

        assert_int_equal(eg_audit_note_for_commit(log, c2, &note), 1);
        assert_string_equal(note, "default/demo: add-learner demo-3 failed\n");
        free(note);

        assert_int_equal(eg_audit_note_for_commit(log, "33333333", &note), 0);
        assert_null(note);
        eg_rm_rf(dir);
}

/* As the daemon builds it: the revision's decisions about clusters, members of the same
 * decision on one line, taken in pieces. */
static void test_audit_note__builder(void **state) {
        struct eg_note *n;
        assert_int_equal(eg_note_new(&n), 0);
        assert_int_equal(eg_note_start(n, "main@sha1:11"), 0);
        assert_false(eg_note_dirty(n));
        const struct eg_decision ds[] = {
                {.cluster = "ns/a",
                 .kind = "add-learner",
                 .member = "a-3",
                 .outcome = "ok",
                 .revision = "main@sha1:11"},
                {.cluster = "ns/a",
                 .kind = "add-learner",
                 .member = "a-4",
                 .outcome = "ok",
                 .revision = "main@sha1:11"},
                {.cluster = "ns/a",
                 .kind = "add-learner",
                 .member = "a-5",
                 .outcome = "failed",
                 .revision = "main@sha1:11"},
                {.cluster = "ns/b",
                 .kind = "create",
                 .reason = "create cluster",
                 .outcome = "ok",
                 .revision = "main@sha1:00"},
                {.kind = "force-push", .reason = "the ref moved", .outcome = "ok", .revision = "main@sha1:11"},
                {.cluster = "ns/b",
                 .kind = "backup",
                 .reason = "snapshot",
                 .outcome = "ok",
                 .revision = "main@sha1:11"},
        };
        for (size_t i = 0; i < 3; i++)
                eg_note_sink(n, &ds[i], i + 1);
        assert_true(eg_note_dirty(n));
        char *text = NULL;
        assert_int_equal(eg_note_take(n, &text), 0);
        assert_string_equal(text, "ns/a: add-learner a-3,a-4 ok\nns/a: add-learner a-5 failed\n");
        free(text);
        assert_false(eg_note_dirty(n));
        for (size_t i = 3; i < EG_ELEMENTSOF(ds); i++)
                eg_note_add(n, &ds[i]);
        assert_int_equal(eg_note_take(n, &text), 0);
        assert_string_equal(text, "ns/b: backup ok (snapshot)\n");
        free(text);
        assert_int_equal(eg_note_take(n, &text), 0);
        assert_null(text);
        eg_note_free(n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_audit_note__lists_what_the_commit_caused),
                cmocka_unit_test(test_audit_note__builder),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
