/* Unit tests for the git source, against real repositories made with the git CLI and
 * reached over file:// URLs: refs, subpaths, fetching only when the ref moved, falling
 * back to the last good commit, force-pushes, notes, diagnostics and redaction. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/source.h"

struct fx {
        char *dir, *remote, *work, *state, *url;
};

static char *run_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command, failing the test unless it exits 0. */
static void run(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = NULL;
        assert_true(vasprintf(&cmd, fmt, ap) >= 0);
        va_end(ap);
        int rc = system(cmd);
        if (rc != 0)
                fail_msg("command failed (%d): %s", rc, cmd);
        free(cmd);
}

/* The command's stdout, without the trailing newline. */
static char *run_out(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = NULL;
        assert_true(vasprintf(&cmd, fmt, ap) >= 0);
        va_end(ap);
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        struct eg_buf b;
        eg_buf_init(&b, 0);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                assert_int_equal(eg_buf_append(&b, chunk, n), 0);
        int rc = pclose(f);
        if (rc != 0)
                fail_msg("command failed (%d): %s", rc, cmd);
        free(cmd);
        char *s = eg_buf_steal(&b);
        size_t len = strlen(s);
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = 0;
        return s;
}

static void write_text(const char *path, const char *text) {
        _cleanup_free_ char *dir = strdup(path);
        *strrchr(dir, '/') = 0;
        assert_int_equal(eg_mkdir_p(dir, 0755), 0);
        assert_int_equal(eg_write_file_atomic(path, text, strlen(text), 0644), 0);
}

static char *cluster(const char *name, int size) {
        return eg_strdup_printf("apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\n"
                                "metadata:\n  name: %s\nspec:\n  size: %d\n",
                                name, size);
}

/* A bare "remote" with branch main, a clone to commit in, and a state dir. */
static struct fx *fx_new(void) {
        struct fx *f = calloc(1, sizeof(*f));
        f->dir = strdup("/tmp/eg-source-git-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->remote = eg_path_join(f->dir, "remote.git");
        f->work = eg_path_join(f->dir, "work");
        f->state = eg_path_join(f->dir, "state");
        f->url = eg_strdup_printf("file://%s", f->remote);
        run("git init -q --bare -b main '%s' && git init -q -b main '%s' && git -C '%s' remote add origin '%s'",
            f->remote, f->work, f->work, f->remote);
        return f;
}

static void fx_free(struct fx *f) {
        eg_rm_rf(f->dir);
        free(f->dir);
        free(f->remote);
        free(f->work);
        free(f->state);
        free(f->url);
        free(f);
}

static void put(struct fx *f, const char *rel, const char *text) {
        _cleanup_free_ char *p = eg_path_join(f->work, rel);
        write_text(p, text);
}

static void put_cluster(struct fx *f, const char *rel, const char *name, int size) {
        _cleanup_free_ char *text = cluster(name, size);
        put(f, rel, text);
}

/* Commits everything in the work tree, pushes main and returns the commit id. */
static char *commit_push(struct fx *f, const char *message) {
        run("cd '%s' && git add -A && git commit -q -m '%s' && git push -q -f origin HEAD:main 2>/dev/null", f->work,
            message);
        return run_out("git -C '%s' rev-parse HEAD", f->work);
}

static struct eg_source *open_src(struct fx *f, const char *ref, const char *subpath, bool refuse) {
        struct eg_source_options o = {
                .location = f->url, .ref = ref, .subpath = subpath, .state_dir = f->state, .refuse_force_push = refuse};
        struct eg_source *s = NULL;
        struct eg_error err = {0};
        int r = eg_source_open(&o, &s, &err);
        if (r < 0)
                fail_msg("open: %s", err.message);
        assert_string_equal(s->ops->kind, "git");
        return s;
}

static struct eg_desired_set *read_ok(struct eg_source *s, struct eg_source_revision *rev) {
        struct eg_desired_set *set = NULL;
        struct eg_error err = {0};
        int r = eg_source_read(s, &set, rev, &err);
        if (r < 0 || err.message)
                fail_msg("read: %d %s", r, err.message);
        return set;
}

static char *cache_dir(struct fx *f) {
        char hex[65];
        eg_sha256_hex(f->url, strlen(f->url), hex);
        return eg_strdup_printf("%s/git/%s", f->state, hex);
}

static void test_source_git__read_subfolder(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "clusters/a.yaml", "a", 3);
        put(f, "clusters/b.yml",
            "# cluster b\n---\napiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\n"
            "metadata:\n  name: b\nspec:\n  size: 1\n");
        put(f, "clusters/README.md", "not a manifest\n");
        put_cluster(f, "clusters/.hidden/c.yaml", "c", 1);
        put_cluster(f, "other/d.yaml", "d", 5);
        run("cd '%s' && git add -A && git commit -q -m 'add clusters' -m 'with a body' && git push -q origin main "
            "2>/dev/null",
            f->work);
        _cleanup_free_ char *sha = run_out("git -C '%s' rev-parse HEAD", f->work);
        _cleanup_free_ char *blob_a = run_out("git -C '%s' rev-parse HEAD:clusters/a.yaml", f->work);
        _cleanup_free_ char *blob_b = run_out("git -C '%s' rev-parse HEAD:clusters/b.yml", f->work);

        struct eg_source *s = open_src(f, NULL, "/clusters/", false);
        assert_int_equal(eg_source_watch_fd(s), -1);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        _cleanup_free_ char *want_rev = eg_strdup_printf("main@sha1:%s", sha);
        assert_string_equal(rev.revision, want_rev);
        assert_string_equal(set->revision, want_rev);
        assert_string_equal(rev.commit, sha);
        assert_string_equal(rev.author, "Ada Lovelace <ada@example.com>");
        assert_string_equal(rev.subject, "add clusters");
        assert_true(rev.fetched);
        assert_false(rev.force_push);
        assert_false(rev.held);
        assert_null(rev.previous_commit);
        assert_int_equal(set->n_objects, 2);
        assert_int_equal(set->n_diags, 0);
        const struct eg_object *a = set->objects[0], *b = set->objects[1];
        assert_string_equal(a->meta.name, "a");
        assert_int_equal(a->cluster.size, 3);
        assert_string_equal(a->origin.path, "a.yaml");
        assert_string_equal(a->origin.commit, sha);
        assert_string_equal(a->origin.blob, blob_a);
        assert_int_equal(a->origin.line, 1);
        assert_string_equal(b->meta.name, "b");
        assert_string_equal(b->origin.path, "b.yml");
        assert_string_equal(b->origin.blob, blob_b);
        assert_int_equal(b->origin.line, 3);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);

        /* the whole repository: other/d.yaml too, hidden folders still skipped */
        s = open_src(f, "main", NULL, false);
        set = read_ok(s, &rev);
        assert_int_equal(set->n_objects, 3);
        assert_string_equal(set->objects[2]->origin.path, "other/d.yaml");
        assert_false(rev.fetched); /* the same cache, nothing moved */
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);

        /* no cache checkout: only git's own files */
        _cleanup_free_ char *cache = cache_dir(f);
        _cleanup_free_ char *head = eg_path_join(cache, "HEAD");
        _cleanup_free_ char *stray = eg_path_join(cache, "clusters");
        assert_int_equal(access(head, F_OK), 0);
        assert_int_equal(access(stray, F_OK), -1);
        fx_free(f);
}

static void test_source_git__refs(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "a.yaml", "a", 1);
        _cleanup_free_ char *c1 = commit_push(f, "one");
        run("cd '%s' && git tag -a v1 -m 'release one' && git tag light && git push -q origin v1 light 2>/dev/null",
            f->work);
        put_cluster(f, "a.yaml", "a", 3);
        _cleanup_free_ char *c2 = commit_push(f, "three");
        run("cd '%s' && git checkout -q -b feature && git push -q origin feature 2>/dev/null", f->work);
        put_cluster(f, "a.yaml", "a", 5);
        run("cd '%s' && git commit -q -am five && git push -q origin feature 2>/dev/null", f->work);
        _cleanup_free_ char *c3 = run_out("git -C '%s' rev-parse HEAD", f->work);

        struct {
                const char *ref, *commit, *revision_prefix;
                int size;
        } cases[] = {
                {"main", c2, "main@sha1:", 3},
                {"feature", c3, "feature@sha1:", 5},
                {"v1", c1, "v1@sha1:", 1},
                {"light", c1, "light@sha1:", 1},
                {"refs/heads/main", c2, "refs/heads/main@sha1:", 3},
                {c1, c1, "sha1:", 1},
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(cases); i++) {
                struct eg_source *s = open_src(f, cases[i].ref, NULL, false);
                struct eg_source_revision rev = {0};
                struct eg_desired_set *set = read_ok(s, &rev);
                _cleanup_free_ char *want = eg_strdup_printf("%s%s", cases[i].revision_prefix, cases[i].commit);
                assert_string_equal(rev.revision, want);
                assert_string_equal(rev.commit, cases[i].commit);
                assert_int_equal(set->n_objects, 1);
                assert_int_equal(set->objects[0]->cluster.size, cases[i].size);
                assert_string_equal(set->objects[0]->origin.commit, cases[i].commit);
                eg_desired_set_free(set);
                eg_source_revision_done(&rev);
                eg_source_free(s);
        }

        /* a pinned commit already in the cache needs no remote at all */
        _cleanup_free_ char *moved = eg_strdup_printf("%s.away", f->remote);
        assert_int_equal(rename(f->remote, moved), 0);
        struct eg_source *s = open_src(f, c2, NULL, false);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        assert_string_equal(rev.commit, c2);
        assert_false(rev.fetched);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);
        assert_int_equal(rename(moved, f->remote), 0);

        /* refs the remote does not have */
        const char *missing[] = {"nope", "0123456789012345678901234567890123456789"};
        for (size_t i = 0; i < EG_ELEMENTSOF(missing); i++) {
                s = open_src(f, missing[i], NULL, false);
                struct eg_error err = {0};
                set = NULL;
                assert_int_equal(eg_source_read(s, &set, NULL, &err), -ENOENT);
                assert_null(set);
                assert_non_null(strstr(err.message, missing[i]));
                eg_error_done(&err);
                eg_source_free(s);
        }
        fx_free(f);
}

static void test_source_git__fetch_only_when_moved(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "a.yaml", "a", 1);
        _cleanup_free_ char *c1 = commit_push(f, "one");
        struct eg_source *s = open_src(f, NULL, NULL, false);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        assert_true(rev.fetched);
        assert_string_equal(rev.commit, c1);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);

        set = read_ok(s, &rev);
        assert_false(rev.fetched);
        assert_string_equal(rev.commit, c1);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);

        put_cluster(f, "a.yaml", "a", 3);
        _cleanup_free_ char *c2 = commit_push(f, "three");
        set = read_ok(s, &rev);
        assert_true(rev.fetched);
        assert_false(rev.force_push);
        assert_string_equal(rev.commit, c2);
        assert_string_equal(rev.subject, "three");
        assert_int_equal(set->objects[0]->cluster.size, 3);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);
        fx_free(f);
}

static void test_source_git__unreachable_keeps_last_good(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "a.yaml", "a", 3);
        _cleanup_free_ char *c1 = commit_push(f, "three");
        struct eg_source *s = open_src(f, NULL, NULL, false);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);

        _cleanup_free_ char *moved = eg_strdup_printf("%s.away", f->remote);
        assert_int_equal(rename(f->remote, moved), 0);
        _cleanup_free_ char *want = eg_strdup_printf("main@sha1:%s", c1);
        for (int round = 0; round < 2; round++) {
                /* the second round is a fresh source on the same cache: a restarted daemon */
                struct eg_error err = {0};
                set = NULL;
                assert_int_equal(eg_source_read(s, &set, &rev, &err), 0);
                assert_null(err.message);
                assert_non_null(rev.stale);
                assert_non_null(strstr(rev.stale, f->url));
                assert_non_null(strstr(rev.stale, want));
                assert_string_equal(rev.revision, want);
                assert_string_equal(rev.commit, c1);
                assert_false(rev.fetched);
                assert_int_equal(set->n_objects, 1);
                assert_int_equal(set->objects[0]->cluster.size, 3);
                eg_error_done(&err);
                eg_desired_set_free(set);
                eg_source_revision_done(&rev);
                eg_source_free(s);
                s = open_src(f, round == 0 ? NULL : "main", NULL, false);
        }
        eg_source_free(s);

        /* nothing read before: an error */
        _cleanup_free_ char *other_state = eg_path_join(f->dir, "state2");
        struct eg_source_options o = {.location = f->url, .state_dir = other_state};
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        set = NULL;
        assert_true(eg_source_read(s, &set, &rev, &err) < 0);
        assert_null(set);
        assert_non_null(err.message);
        assert_non_null(strstr(err.message, f->url));
        eg_error_done(&err);
        eg_source_free(s);
        assert_int_equal(rename(moved, f->remote), 0);

        /* and back: fetched again */
        put_cluster(f, "a.yaml", "a", 5);
        _cleanup_free_ char *c2 = commit_push(f, "five");
        s = open_src(f, NULL, NULL, false);
        set = read_ok(s, &rev);
        assert_string_equal(rev.commit, c2);
        assert_true(rev.fetched);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);
        fx_free(f);
}

static void test_source_git__force_push(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "a.yaml", "a", 1);
        _cleanup_free_ char *c1 = commit_push(f, "one");
        put_cluster(f, "a.yaml", "a", 3);
        _cleanup_free_ char *c2 = commit_push(f, "three");
        struct eg_source *s = open_src(f, NULL, NULL, true);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        assert_string_equal(rev.commit, c2);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);

        /* rewritten history: c3 descends from c1, not from c2 */
        run("git -C '%s' reset -q --hard '%s'", f->work, c1);
        put_cluster(f, "a.yaml", "a", 1);
        put(f, "note.txt", "rewritten\n");
        _cleanup_free_ char *c3 = commit_push(f, "rewritten");
        for (int i = 0; i < 2; i++) {
                set = read_ok(s, &rev);
                assert_true(rev.force_push);
                assert_true(rev.held);
                assert_string_equal(rev.previous_commit, c2);
                assert_string_equal(rev.commit, c2);
                assert_int_equal(set->objects[0]->cluster.size, 3);
                eg_desired_set_free(set);
                eg_source_revision_done(&rev);
        }
        eg_source_free(s);

        /* held across a restart too */
        s = open_src(f, NULL, NULL, true);
        set = read_ok(s, &rev);
        assert_true(rev.held);
        assert_string_equal(rev.commit, c2);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);

        /* without refusing, the new history is taken, once */
        s = open_src(f, NULL, NULL, false);
        set = read_ok(s, &rev);
        assert_true(rev.force_push);
        assert_false(rev.held);
        assert_string_equal(rev.previous_commit, c2);
        assert_string_equal(rev.commit, c3);
        assert_int_equal(set->objects[0]->cluster.size, 1);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        set = read_ok(s, &rev);
        assert_false(rev.force_push);
        assert_null(rev.previous_commit);
        assert_string_equal(rev.commit, c3);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);
        fx_free(f);
}

static void test_source_git__notes(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "a.yaml", "a", 1);
        _cleanup_free_ char *c1 = commit_push(f, "one");
        struct eg_source *s = open_src(f, NULL, NULL, false);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        struct eg_error err = {0};
        assert_int_equal(eg_source_annotate(s, c1, "default/a: create ok", &err), 0);
        assert_int_equal(eg_source_annotate(s, c1, "default/a: create ok", &err), 0);
        _cleanup_free_ char *cache = cache_dir(f);
        _cleanup_free_ char *n1 = run_out("git --git-dir='%s' notes --ref=etcd-gitops show %s", cache, c1);
        assert_string_equal(n1, "default/a: create ok");
        assert_int_equal(eg_source_annotate(s, c1, "default/a: noop", &err), 0);
        _cleanup_free_ char *n2 = run_out("git --git-dir='%s' notes --ref=etcd-gitops show %s", cache, c1);
        assert_string_equal(n2, "default/a: create ok\ndefault/a: noop");
        /* a fuller summary of the same commit replaces what it starts with */
        assert_int_equal(eg_source_annotate(s, c1, "default/a: create ok\ndefault/a: noop\ndefault/a: scale", &err), 0);
        _cleanup_free_ char *n3 = run_out("git --git-dir='%s' notes --ref=etcd-gitops show %s", cache, c1);
        assert_string_equal(n3, "default/a: create ok\ndefault/a: noop\ndefault/a: scale");
        assert_null(err.message);
        assert_int_equal(eg_source_annotate(s, "0123456789012345678901234567890123456789", "x", &err), -ENOENT);
        assert_non_null(err.message);
        eg_error_done(&err);
        /* not pushed without push_notes */
        run("git --git-dir='%s' show-ref >/dev/null; ! git --git-dir='%s' show-ref | grep -q notes", f->remote,
            f->remote);
        eg_source_free(s);

        struct eg_source_options o = {.location = f->url, .state_dir = f->state, .push_notes = true};
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        set = read_ok(s, &rev);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        assert_int_equal(eg_source_annotate(s, c1, "default/a: stop", &err), 0);
        assert_null(err.message);
        eg_source_free(s);
        _cleanup_free_ char *clone = eg_path_join(f->dir, "clone");
        run("git clone -q '%s' '%s' && git -C '%s' fetch -q origin 'refs/notes/*:refs/notes/*'", f->url, clone, clone);
        _cleanup_free_ char *log = run_out("git -C '%s' log -1 --notes=etcd-gitops --format=%%N", clone);
        assert_string_equal(log, "default/a: create ok\ndefault/a: noop\ndefault/a: scale\ndefault/a: stop");
        fx_free(f);
}

static void test_source_git__diagnostics(void **state) {
        struct fx *f = fx_new();
        put_cluster(f, "good.yaml", "good", 1);
        put(f, "bad.yaml",
            "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: bad\n"
            "spec:\n  size: three\n");
        run("cd '%s' && ln -s good.yaml link.yaml && git add -A && git commit -q -m c && "
            "git update-index --add --cacheinfo 160000,$(git rev-parse HEAD),sub && git commit -q -m sub && "
            "git push -q origin main 2>/dev/null",
            f->work);
        _cleanup_free_ char *sha = run_out("git -C '%s' rev-parse HEAD", f->work);
        struct eg_source *s = open_src(f, NULL, NULL, false);
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = read_ok(s, &rev);
        assert_int_equal(set->n_objects, 1);
        assert_string_equal(set->objects[0]->meta.name, "good");
        assert_int_equal(set->n_errors, 3);
        assert_true(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "default", "bad"));
        bool bad = false, link = false, sub = false;
        for (size_t i = 0; i < set->n_diags; i++) {
                const struct eg_diag *d = &set->diags[i];
                if (strcmp(d->path, "bad.yaml") == 0) {
                        bad = true;
                        assert_int_equal(d->line, 6);
                        assert_string_equal(d->field, "spec.size");
                } else if (strcmp(d->path, "link.yaml") == 0) {
                        link = true;
                        assert_non_null(strstr(d->message, "symlink"));
                } else if (strcmp(d->path, "sub") == 0) {
                        sub = true;
                        assert_non_null(strstr(d->message, "submodule"));
                }
        }
        assert_true(bad && link && sub);
        assert_string_equal(rev.commit, sha);
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_source_free(s);

        /* a subpath the commit does not have */
        s = open_src(f, NULL, "missing", false);
        struct eg_error err = {0};
        set = NULL;
        assert_int_equal(eg_source_read(s, &set, NULL, &err), -ENOENT);
        assert_non_null(strstr(err.message, "'missing'"));
        eg_error_done(&err);
        eg_source_free(s);
        fx_free(f);
}

static void test_source_git__credentials(void **state) {
        _cleanup_free_ char *dir = strdup("/tmp/eg-source-git-XXXXXX");
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *st = eg_path_join(dir, "state");
        _cleanup_free_ char *missing = eg_path_join(dir, "no-such-token");
        struct eg_source_options o = {.location = "https://127.0.0.1:1/x.git", .state_dir = st, .token_file = missing};
        struct eg_source *s = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_source_open(&o, &s, &err), -ENOENT);
        assert_null(s);
        assert_non_null(strstr(err.message, "token file"));
        assert_non_null(strstr(err.message, missing));
        eg_error_done(&err);

        _cleanup_free_ char *empty = eg_path_join(dir, "empty");
        write_text(empty, "\n");
        o.token_file = empty;
        assert_int_equal(eg_source_open(&o, &s, &err), -EINVAL);
        eg_error_done(&err);

        /* neither the URL's password nor the token shows up in errors */
        _cleanup_free_ char *token = eg_path_join(dir, "token");
        write_text(token, "tok-SECRET-123\n");
        o.token_file = token;
        o.location = "https://user:pa55word@127.0.0.1:1/x.git";
        assert_int_equal(eg_source_open(&o, &s, &err), 0);
        struct eg_desired_set *set = NULL;
        assert_true(eg_source_read(s, &set, NULL, &err) < 0);
        assert_null(set);
        assert_non_null(err.message);
        assert_null(strstr(err.message, "pa55word"));
        assert_null(strstr(err.message, "tok-SECRET"));
        assert_non_null(strstr(err.message, "https://***@127.0.0.1:1/x.git"));
        eg_error_done(&err);
        eg_source_free(s);
        /* nor in the cache's config */
        _cleanup_free_ char *config = run_out("cat '%s'/git/*/config", st);
        assert_null(strstr(config, "pa55word"));
        eg_rm_rf(dir);
}

int main(void) {
        /* the commits' author, and no user or system git configuration */
        _cleanup_free_ char *home = strdup("/tmp/eg-source-git-home-XXXXXX");
        if (!mkdtemp(home))
                return 1;
        setenv("HOME", home, 1);
        setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
        setenv("GIT_AUTHOR_NAME", "Ada Lovelace", 1);
        setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
        setenv("GIT_COMMITTER_NAME", "Ada Lovelace", 1);
        setenv("GIT_COMMITTER_EMAIL", "ada@example.com", 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_source_git__read_subfolder),
                cmocka_unit_test(test_source_git__refs),
                cmocka_unit_test(test_source_git__fetch_only_when_moved),
                cmocka_unit_test(test_source_git__unreachable_keeps_last_good),
                cmocka_unit_test(test_source_git__force_push),
                cmocka_unit_test(test_source_git__notes),
                cmocka_unit_test(test_source_git__diagnostics),
                cmocka_unit_test(test_source_git__credentials),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        eg_rm_rf(home);
        return rc;
}
