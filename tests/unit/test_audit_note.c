/* Unit tests for the git note text built from the audit log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include <cmocka.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

static const char c1[] = "1111111111111111111111111111111111111111";
static const char c2[] = "2222222222222222222222222222222222222222";

static void add(struct eg_audit *a, const char *commit, const char *decision, const char *member,
                const char *outcome, const char *reason, const char *error) {
        struct eg_audit_record r = {.commit = commit, .cluster = "default/demo",
                                    .decision = decision, .member = member,
                                    .outcome = outcome, .reason = reason, .error = error};
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
        assert_non_null(strstr(note, "etcd-gitops: 2 decisions\n"));
        assert_non_null(strstr(note, " default/demo create ok: create cluster with 3 members\n"));
        assert_non_null(strstr(note, " default/demo noop skipped: 3 of 3 members healthy\n"));
        assert_null(strstr(note, "demo-3"));
        free(note);

        assert_int_equal(eg_audit_note_for_commit(log, c2, &note), 1);
        assert_non_null(strstr(note, " default/demo add-learner demo-3 failed: scale up 3 -> 4 — member add: boom\n"));
        free(note);

        assert_int_equal(eg_audit_note_for_commit(log, "33333333", &note), 0);
        assert_string_equal(note, "etcd-gitops: 0 decisions\n");
        free(note);
        eg_rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_audit_note__lists_what_the_commit_caused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
