/* Benchmark: a git remote with 1,000 manifests, a commit touching one file; how long the
 * git source takes from the push to a parsed desired set (target 200 ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/source.h"

#define N_MANIFESTS 1000
#define ROUNDS 5
#define TARGET_MS 200.0

static char *dir;

static int sh(const char *cmd) {
        _cleanup_free_ char *full = eg_strdup_printf("cd '%s' && %s", dir, cmd);
        return full && system(full) == 0 ? 0 : -1;
}

static int write_manifest(int i, int size) {
        _cleanup_free_ char *path = eg_strdup_printf("%s/clone/clusters/team-%02d/cluster-%04d.yaml", dir, i % 20, i);
        _cleanup_free_ char *text = eg_strdup_printf(
                "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata:\n  name: cluster-%d\n"
                "  namespace: team-%d\n  labels:\n    owner: team-%d\nspec:\n  size: %d\n  version: \"3.4.23\"\n"
                "  pod:\n    resources:\n      requests: {cpu: 100m, memory: 256Mi}\n",
                i, i % 20, i % 20, size);
        if (!path || !text)
                return -1;
        _cleanup_free_ char *parent = strdup(path);
        if (!parent)
                return -1;
        *strrchr(parent, '/') = 0;
        if (eg_mkdir_p(parent, 0755) < 0)
                return -1;
        return eg_write_file_atomic(path, text, strlen(text), 0644);
}

/* One read; its wall time in ms, or -1. */
static double timed_read(struct eg_source *s, bool want_fetch, const char *label) {
        struct eg_desired_set *set = NULL;
        struct eg_source_revision rev = {0};
        struct eg_error err = {0};
        int64_t start = eg_now_monotonic_ms();
        int r = eg_source_read(s, &set, &rev, &err);
        double ms = (double)(eg_now_monotonic_ms() - start);
        bool ok = r == 0 && !rev.stale && set->n_objects == N_MANIFESTS && set->n_errors == 0 &&
                  rev.fetched == want_fetch;
        if (!ok)
                fprintf(stderr, "bench_git: %s: r=%d objects=%zu fetched=%d %s\n", label, r, set ? set->n_objects : 0,
                        rev.fetched,
                        err.message ? err.message
                        : rev.stale ? rev.stale
                                    : "");
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        eg_error_done(&err);
        return ok ? ms : -1;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return v[n / 2];
}

int main(void) {
        char tmpl[] = "/tmp/bench-git-XXXXXX";
        dir = mkdtemp(tmpl);
        if (!dir) {
                perror("mkdtemp");
                return 2;
        }
        setenv("GIT_AUTHOR_NAME", "bench", 1);
        setenv("GIT_AUTHOR_EMAIL", "bench@example.com", 1);
        setenv("GIT_COMMITTER_NAME", "bench", 1);
        setenv("GIT_COMMITTER_EMAIL", "bench@example.com", 1);
        setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
        int r = sh("git init -q --bare -b main remote.git && git init -q -b main clone && "
                   "git -C clone remote add origin ../remote.git");
        for (int i = 0; i < N_MANIFESTS && r == 0; i++)
                r = write_manifest(i, 3);
        if (r == 0)
                r = sh("cd clone && git add -A && git commit -q -m init && git push -q origin main 2>/dev/null");
        _cleanup_free_ char *url = eg_strdup_printf("file://%s/remote.git", dir);
        _cleanup_free_ char *state = eg_path_join(dir, "state");
        struct eg_source_options o = {.location = url, .state_dir = state, .subpath = "clusters"};
        struct eg_source *s = NULL;
        struct eg_error err = {0};
        if (r == 0 && eg_source_open(&o, &s, &err) < 0) {
                fprintf(stderr, "bench_git: open: %s\n", err.message);
                r = -1;
        }
        double first = r == 0 ? timed_read(s, true, "initial clone") : -1;
        double after_push[ROUNDS], unchanged[ROUNDS];
        r = first < 0 ? -1 : 0;
        for (int i = 0; i < ROUNDS && r == 0; i++) {
                _cleanup_free_ char *cmd = eg_strdup_printf(
                        "cd clone && git commit -q -am 'resize %d' && git push -q origin main 2>/dev/null", i);
                if (!cmd || write_manifest(i * 7, 5 + 2 * i) < 0 || sh(cmd) < 0) {
                        r = -1;
                        break;
                }
                after_push[i] = timed_read(s, true, "after a push");
                unchanged[i] = timed_read(s, false, "nothing moved");
                if (after_push[i] < 0 || unchanged[i] < 0)
                        r = -1;
        }
        eg_source_free(s);
        eg_error_done(&err);
        eg_rm_rf(dir);
        if (r < 0) {
                fprintf(stderr, "bench_git: failed\n");
                return 1;
        }
        double pushed = median(after_push, ROUNDS), still = median(unchanged, ROUNDS);
        printf("%d manifests over file://: initial fetch + read %.0f ms\n", N_MANIFESTS, first);
        printf("one file changed: processed in %.0f ms after the push (fetch + read + parse, median of %d; "
               "%.2fx of %.0f ms)\n",
               pushed, ROUNDS, pushed / TARGET_MS, TARGET_MS);
        printf("nothing moved: %.0f ms (ls-remote + read + parse); so the fetch itself is about %.0f ms\n", still,
               pushed - still);
        return 0;
}
