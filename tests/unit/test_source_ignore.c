/* Unit tests for .sourceignore: gitignore patterns (anchoring, folders only, negation,
 * "**", files in subfolders, bad lines), how a directory walk honours them, and a watched
 * directory source seeing the file change. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "etcd-gitops/ignore.h"
#include "etcd-gitops/source.h"
#include "etcd-gitops/util.h"

static const char cluster_a[] = "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\n"
                                "metadata:\n  name: a\nspec:\n  size: 3\n";

/* A matcher and the set its diagnostics go to. */
struct fixture {
        struct eg_ignore *ig;
        struct eg_desired_set *set;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        assert_int_equal(eg_ignore_new(&f->ig), 0);
        assert_int_equal(eg_desired_set_new(&f->set), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        eg_ignore_free(f->ig);
        eg_desired_set_free(f->set);
        free(f);
        return 0;
}

static void add(struct fixture *f, const char *dir, const char *text) {
        _cleanup_free_ char *display = dir[0] ? eg_strdup_printf("%s/.sourceignore", dir) : strdup(".sourceignore");
        assert_int_equal(eg_ignore_add(f->ig, f->set, dir, display, text, strlen(text)), 0);
}

static bool file_ignored(struct fixture *f, const char *path) {
        int r = eg_ignore_check(f->ig, path, false);
        assert_true(r >= 0);
        return r;
}

static bool dir_ignored(struct fixture *f, const char *path) {
        int r = eg_ignore_check(f->ig, path, true);
        assert_true(r >= 0);
        return r;
}

static void test_source_ignore__names_at_any_depth(void **state) {
        struct fixture *f = *state;
        add(f, "", "# rules and dashboards\n\n*.json\n#x.yaml\n\\#y.yaml\nv[0-9].yaml\na?.yml\n");
        assert_true(file_ignored(f, "d.json"));
        assert_true(file_ignored(f, "x/y/d.json"));
        assert_false(file_ignored(f, "d.yaml"));
        assert_false(file_ignored(f, "x.yaml"));
        assert_true(file_ignored(f, "#y.yaml"));
        assert_true(file_ignored(f, "sub/v7.yaml"));
        assert_false(file_ignored(f, "vx.yaml"));
        assert_true(file_ignored(f, "ab.yml"));
        assert_false(file_ignored(f, "abc.yml"));
        assert_int_equal(f->set->n_diags, 0);
}

static void test_source_ignore__anchoring(void **state) {
        struct fixture *f = *state;
        add(f, "", "/monitoring/\ndocs/*.yaml\n/top.yaml\n");
        assert_true(dir_ignored(f, "monitoring"));
        assert_false(dir_ignored(f, "a/monitoring"));
        assert_true(file_ignored(f, "docs/a.yaml"));
        assert_false(file_ignored(f, "x/docs/a.yaml"));
        assert_false(file_ignored(f, "docs/sub/a.yaml")); /* '*' stops at '/' */
        assert_true(file_ignored(f, "top.yaml"));
        assert_false(file_ignored(f, "sub/top.yaml"));
}

static void test_source_ignore__folders_only(void **state) {
        struct fixture *f = *state;
        add(f, "", "build/\n");
        assert_true(dir_ignored(f, "build"));
        assert_true(dir_ignored(f, "a/build"));
        assert_false(file_ignored(f, "build"));
}

static void test_source_ignore__negation_last_wins(void **state) {
        struct fixture *f = *state;
        add(f, "", "*.yaml\n!keep.yaml\n!late.yaml\nlate.yaml\n\\!bang.yaml\n");
        assert_true(file_ignored(f, "a.yaml"));
        assert_false(file_ignored(f, "keep.yaml"));
        assert_false(file_ignored(f, "x/keep.yaml"));
        assert_true(file_ignored(f, "late.yaml"));
        assert_true(file_ignored(f, "!bang.yaml"));
}

static void test_source_ignore__double_star(void **state) {
        struct fixture *f = *state;
        add(f, "", "**/gen/*.yaml\na/**/b.yaml\nout/**\n/**/deep/**/**/x.json\n");
        assert_true(file_ignored(f, "gen/a.yaml"));
        assert_true(file_ignored(f, "x/y/gen/a.yaml"));
        assert_false(file_ignored(f, "gen/x/a.yaml"));
        assert_true(file_ignored(f, "a/b.yaml"));
        assert_true(file_ignored(f, "a/x/y/b.yaml"));
        assert_false(file_ignored(f, "z/a/b.yaml"));
        assert_false(dir_ignored(f, "out")); /* what it holds, not the folder */
        assert_true(file_ignored(f, "out/a.yaml"));
        assert_true(dir_ignored(f, "out/sub"));
        assert_true(file_ignored(f, "deep/x.json"));
        assert_true(file_ignored(f, "1/2/deep/3/4/x.json"));
        assert_false(file_ignored(f, "1/2/deep/3/4/y.json"));
}

static void test_source_ignore__subfolder_files(void **state) {
        struct fixture *f = *state;
        add(f, "", "*.json\n");
        add(f, "x", "!keep.json\nlocal.yaml\n/only.yaml\nsub/\n");
        assert_true(file_ignored(f, "keep.json"));
        assert_false(file_ignored(f, "x/keep.json"));
        assert_false(file_ignored(f, "x/y/keep.json"));
        assert_true(file_ignored(f, "x/other.json"));
        assert_true(file_ignored(f, "x/local.yaml"));
        assert_true(file_ignored(f, "x/y/local.yaml"));
        assert_false(file_ignored(f, "local.yaml"));
        assert_false(file_ignored(f, "xx/local.yaml"));
        assert_true(file_ignored(f, "x/only.yaml"));
        assert_false(file_ignored(f, "x/z/only.yaml"));
        assert_false(file_ignored(f, "only.yaml"));
        assert_true(dir_ignored(f, "x/sub"));
        assert_false(dir_ignored(f, "sub"));
}

static void test_source_ignore__spaces_and_line_ends(void **state) {
        struct fixture *f = *state;
        add(f, "", "a.yaml   \r\nb\\ .yaml\r\nc.yaml");
        assert_true(file_ignored(f, "a.yaml"));
        assert_true(file_ignored(f, "b .yaml"));
        assert_true(file_ignored(f, "c.yaml"));
        assert_int_equal(f->set->n_diags, 0);
}

static void test_source_ignore__bad_lines_warn(void **state) {
        struct fixture *f = *state;
        add(f, "sub", "[abc\nok.yaml\na//b\n!\n/\nfoo\\\n[[:alpha:]].json\n");
        assert_int_equal(f->set->n_errors, 0);
        assert_int_equal(f->set->n_diags, 5);
        const unsigned lines[] = {1, 3, 4, 5, 6};
        for (size_t i = 0; i < EG_ELEMENTSOF(lines); i++) {
                const struct eg_diag *d = &f->set->diags[i];
                assert_int_equal(d->severity, EG_SEVERITY_WARNING);
                assert_string_equal(d->path, "sub/.sourceignore");
                assert_int_equal(d->line, lines[i]);
                assert_non_null(strstr(d->message, "line ignored"));
        }
        _cleanup_free_ char *text = eg_diag_format(&f->set->diags[0]);
        assert_true(eg_str_has_prefix(text, "sub/.sourceignore:1:1: "));
        assert_non_null(strstr(text, "'['"));
        assert_true(file_ignored(f, "sub/ok.yaml"));
        assert_true(file_ignored(f, "sub/q.json"));
        assert_false(file_ignored(f, "sub/foo"));
}

static void test_source_ignore__caps(void **state) {
        struct fixture *f = *state;
        size_t big = EG_IGNORE_MAX_BYTES + 1;
        _cleanup_free_ char *text = malloc(big);
        assert_non_null(text);
        memset(text, '\n', big);
        text[0] = '*';
        assert_int_equal(eg_ignore_add(f->ig, f->set, "", ".sourceignore", text, big), 0);
        assert_int_equal(f->set->n_errors, 1);
        assert_non_null(strstr(f->set->diags[0].message, "too large"));
        assert_false(file_ignored(f, "a.yaml"));

        struct eg_buf b;
        eg_buf_init(&b, EG_IGNORE_MAX_BYTES);
        for (int i = 0; i <= EG_IGNORE_MAX_PATTERNS; i++)
                assert_int_equal(eg_buf_printf(&b, "p%d\n", i), 0);
        assert_int_equal(eg_ignore_add(f->ig, f->set, "", "many/.sourceignore", b.data, b.len), 0);
        eg_buf_done(&b);
        assert_int_equal(f->set->n_errors, 2);
        assert_non_null(strstr(f->set->diags[1].message, "patterns"));
        assert_false(file_ignored(f, "p1"));
}

static char *tmpdir(void) {
        char *d = strdup("/tmp/eg-ignore-XXXXXX");
        assert_non_null(mkdtemp(d));
        return d;
}

static void put(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        _cleanup_free_ char *parent = strdup(p);
        *strrchr(parent, '/') = 0;
        assert_int_equal(eg_mkdir_p(parent, 0755), 0);
        assert_int_equal(eg_write_file_atomic(p, text, strlen(text), 0644), 0);
}

static struct eg_desired_set *load(const char *dir) {
        char *paths[] = {(char *)dir};
        struct eg_desired_set *set = NULL;
        assert_int_equal(eg_spec_load_paths(paths, 1, NULL, &set), 0);
        return set;
}

static void test_source_ignore__directory_walk(void **state) {
        _cleanup_free_ char *d = tmpdir();
        put(d, "a.yaml", cluster_a);
        put(d, "monitoring/rules.yml", "groups: [");
        put(d, "monitoring/dash.json", "{}");
        put(d, "x/bad.yaml", "kind: Nope\n");
        put(d, "x/.sourceignore", "*.yaml\n");
        struct eg_desired_set *plain = load(d);
        assert_int_equal(plain->n_files, 3);
        assert_int_equal(plain->n_objects, 1);
        assert_true(plain->n_errors > 0);

        put(d, ".sourceignore", "# not manifests\n/monitoring/\n");
        struct eg_desired_set *set = load(d);
        assert_int_equal(set->n_errors, 0);
        assert_int_equal(set->n_files, 1);
        assert_int_equal(set->n_objects, 1);
        assert_string_not_equal(set->revision, plain->revision);

        /* the same manifests with a different .sourceignore are a new revision */
        put(d, ".sourceignore", "/monitoring/\n[oops\n");
        struct eg_desired_set *warned = load(d);
        assert_int_equal(warned->n_errors, 0);
        assert_int_equal(warned->n_diags, 1);
        assert_string_equal(warned->diags[0].path, ".sourceignore");
        assert_int_equal(warned->diags[0].line, 2);
        assert_string_not_equal(warned->revision, set->revision);

        eg_desired_set_free(plain);
        eg_desired_set_free(set);
        eg_desired_set_free(warned);
        eg_rm_rf(d);
}

/* Whether the source reports a change within 2 s: its events may come in several reads. */
static bool source_changed(struct eg_source *s) {
        bool changed = false;
        struct pollfd p = {.fd = eg_source_watch_fd(s), .events = POLLIN};
        while (!changed && poll(&p, 1, 2000) > 0)
                assert_int_equal(eg_source_process_events(s, &changed), 0);
        return changed;
}

static void test_source_ignore__directory_source_sees_it_change(void **state) {
        _cleanup_free_ char *d = tmpdir();
        put(d, "a.yaml", cluster_a);
        put(d, "rules/alerts.yml", "groups: [");
        struct eg_source_options o = {.location = d};
        struct eg_source *s;
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        assert_true(eg_source_watch_fd(s) >= 0);
        struct eg_desired_set *set;
        assert_int_equal(eg_source_read(s, &set, NULL, &err), 0);
        assert_true(set->n_errors > 0);
        eg_desired_set_free(set);

        put(d, ".sourceignore", "rules/\n");
        assert_true(source_changed(s));
        assert_int_equal(eg_source_read(s, &set, NULL, &err), 0);
        assert_int_equal(set->n_errors, 0);
        assert_int_equal(set->n_objects, 1);
        eg_desired_set_free(set);
        eg_source_free(s);
        eg_rm_rf(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_source_ignore__names_at_any_depth, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__anchoring, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__folders_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__negation_last_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__double_star, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__subfolder_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__spaces_and_line_ends, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__bad_lines_warn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_ignore__caps, setup, teardown),
                cmocka_unit_test(test_source_ignore__directory_walk),
                cmocka_unit_test(test_source_ignore__directory_source_sees_it_change),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
