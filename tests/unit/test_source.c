/* Unit tests for the directory source: reading, git URL recognition, change detection
 * (including editors' rename-over-save and new folders), git commit and dirtiness. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/source.h"

static const char cluster_a[] = "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\n"
                                "metadata:\n  name: a\nspec:\n  size: 3\n";

static char *tmpdir(void) {
        char *d = strdup("/tmp/eg-source-XXXXXX");
        assert_non_null(mkdtemp(d));
        return d;
}

static void put(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        assert_int_equal(eg_write_file_atomic(p, text, strlen(text), 0644), 0);
}

static void test_source__git_urls(void **state) {
        assert_true(eg_source_is_git_url("https://github.com/acme/etcd.git"));
        assert_true(eg_source_is_git_url("ssh://git@host/repo"));
        assert_true(eg_source_is_git_url("file:///srv/repo.git"));
        assert_true(eg_source_is_git_url("git@github.com:acme/etcd.git"));
        assert_false(eg_source_is_git_url("/srv/manifests"));
        assert_false(eg_source_is_git_url("manifests"));
        assert_false(eg_source_is_git_url("./dir/with@at:colon/x"));
}

static void test_source__read_and_revision(void **state) {
        _cleanup_free_ char *d = tmpdir();
        put(d, "a.yaml", cluster_a);
        struct eg_source_options o = {.location = d};
        struct eg_source *s;
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        struct eg_desired_set *set1, *set2;
        struct eg_source_revision rev = {.dirty = true};
        assert_int_equal(eg_source_read(s, &set1, &rev, &err), 0);
        assert_int_equal(set1->n_objects, 1);
        assert_null(rev.commit); /* /tmp is not in a work tree */
        assert_false(rev.dirty);
        assert_true(eg_str_has_prefix(rev.revision, "sha256:"));
        assert_string_equal(rev.revision, set1->revision);
        eg_source_revision_done(&rev);
        put(d, "a.yaml",
            "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\n"
            "metadata:\n  name: a\nspec:\n  size: 5\n");
        assert_int_equal(eg_source_read(s, &set2, NULL, &err), 0);
        assert_string_not_equal(set1->revision, set2->revision);
        assert_int_equal(set2->objects[0]->cluster.size, 5);
        eg_desired_set_free(set1);
        eg_desired_set_free(set2);
        eg_source_free(s);
        eg_rm_rf(d);
}

static void test_source__missing_dir(void **state) {
        struct eg_source_options o = {.location = "/nonexistent/eg-manifests"};
        struct eg_source *s = NULL;
        struct eg_error err = {0};
        assert_true(eg_source_open(&o, &s, &err) < 0);
        assert_non_null(strstr(err.message, "/nonexistent/eg-manifests"));
        eg_error_done(&err);
        /* a git source keeps its cache in the state dir: without one it cannot start */
        o.location = "https://example.invalid/repo.git";
        assert_true(eg_source_open(&o, &s, &err) < 0);
        assert_non_null(err.message);
        eg_error_done(&err);
}

/* Waits (bounded) for the watch to report a change. */
static bool changed_within(struct eg_source *s, int ms) {
        int64_t deadline = eg_now_monotonic_ms() + ms;
        for (;;) {
                int64_t left = deadline - eg_now_monotonic_ms();
                if (left <= 0)
                        return false;
                struct pollfd p = {.fd = eg_source_watch_fd(s), .events = POLLIN};
                if (poll(&p, 1, (int)left) <= 0)
                        return false;
                bool changed = false;
                assert_int_equal(eg_source_process_events(s, &changed), 0);
                if (changed)
                        return true;
        }
}

static void test_source__watch(void **state) {
        _cleanup_free_ char *d = tmpdir();
        put(d, "a.yaml", cluster_a);
        struct eg_source_options o = {.location = d};
        struct eg_source *s;
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        assert_true(eg_source_watch_fd(s) >= 0);
        assert_false(changed_within(s, 50));

        /* rename over the original, as editors save */
        put(d, "a.yaml", cluster_a);
        assert_true(changed_within(s, 2000));

        /* hidden swap files alone are not a change */
        put(d, ".a.yaml.swp", "x");
        assert_false(changed_within(s, 100));

        /* a new folder, then a file inside it */
        _cleanup_free_ char *sub = eg_path_join(d, "team");
        assert_int_equal(eg_mkdir_p(sub, 0755), 0);
        assert_true(changed_within(s, 2000));
        put(sub, "b.yaml", cluster_a);
        assert_true(changed_within(s, 2000));

        /* deletion */
        _cleanup_free_ char *p = eg_path_join(d, "a.yaml");
        assert_int_equal(unlink(p), 0);
        assert_true(changed_within(s, 2000));
        eg_source_free(s);
        eg_rm_rf(d);
}

static void test_source__git_work_tree(void **state) {
        _cleanup_free_ char *d = tmpdir();
        _cleanup_free_ char *cmd = eg_strdup_printf(
                "cd %s && git init -q && mkdir clusters && printf '%%s' '%s' > clusters/a.yaml && git add . && "
                "git -c user.name=t -c user.email=t@t commit -qm init",
                d, cluster_a);
        assert_int_equal(system(cmd), 0);
        _cleanup_free_ char *sub = eg_path_join(d, "clusters");
        struct eg_source_options o = {.location = sub};
        struct eg_source *s;
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        struct eg_desired_set *set;
        struct eg_source_revision rev = {.dirty = true};
        assert_int_equal(eg_source_read(s, &set, &rev, &err), 0);
        assert_non_null(rev.commit);
        assert_int_equal(strlen(rev.commit), 40);
        assert_false(rev.dirty);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        put(sub, "b.yaml", cluster_a);
        assert_int_equal(eg_source_read(s, &set, &rev, &err), 0);
        assert_true(rev.dirty);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);
        eg_rm_rf(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_source__git_urls),      cmocka_unit_test(test_source__read_and_revision),
                cmocka_unit_test(test_source__missing_dir),   cmocka_unit_test(test_source__watch),
                cmocka_unit_test(test_source__git_work_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
