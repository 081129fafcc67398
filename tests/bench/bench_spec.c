/* Benchmark: load 10,000 manifests (two layouts) and compare with 1 s and 64 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

#define N_MANIFESTS 10000
#define TARGET_MS 1000.0
#define TARGET_MIB 64.0

static int append_manifest(struct eg_buf *b, int i) {
        switch (i % 10) {
        case 8:
                return eg_buf_printf(b,
                                     "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdBackup\n"
                                     "metadata:\n  name: backup-%d\n  namespace: team-%d\n"
                                     "spec:\n  etcdCluster:\n    name: cluster-%d\n  storageType: S3\n"
                                     "  s3:\n    path: backups-bucket/cluster-%d\n    awsSecret: aws\n"
                                     "  backupPolicy:\n    backupIntervalInSecond: 3600\n    maxBackups: 5\n",
                                     i, i % 50, i - 1, i);
        case 9:
                return eg_buf_printf(b,
                                     "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdRestore\n"
                                     "metadata:\n  name: restore-%d\n  namespace: team-%d\n"
                                     "spec:\n  etcdCluster:\n    name: cluster-%d\n  backupStorageType: File\n"
                                     "  file:\n    path: /var/backups/cluster-%d.db\n  revision: %d\n",
                                     i, i % 50, i - 2, i, i * 7);
        default:
                return eg_buf_printf(b,
                                     "apiVersion: \"etcd.database.coreos.com/v1beta2\"\nkind: \"EtcdCluster\"\n"
                                     "metadata:\n  name: \"cluster-%d\"\n  namespace: team-%d\n"
                                     "  labels:\n    owner: team-%d\n"
                                     "spec:\n  size: %d\n  version: \"3.4.%d\"\n"
                                     "  pod:\n    labels:\n      tier: db\n    resources:\n"
                                     "      requests: {cpu: 100m, memory: 256Mi}\n"
                                     "    tolerations:\n    - {key: dedicated, operator: Equal, value: etcd}\n"
                                     "  TLS:\n    static:\n      member:\n        peerSecret: peer-%d\n",
                                     i, i % 50, i % 50, 1 + 2 * (i % 3), i % 30, i);
        }
}

/* files x per_file manifests, separated by "---". */
static int generate(const char *dir, int files, int per_file) {
        int i = 0;
        for (int f = 0; f < files; f++) {
                struct eg_buf b;
                eg_buf_init(&b, 0);
                for (int d = 0; d < per_file; d++, i++)
                        if ((d > 0 && eg_buf_puts(&b, "---\n") < 0) || append_manifest(&b, i) < 0)
                                return -1;
                char name[64];
                snprintf(name, sizeof(name), "m%05d.yaml", f);
                char *p = eg_path_join(dir, name);
                int r = p ? eg_write_file_atomic(p, b.data, b.len, 0644) : -1;
                free(p);
                eg_buf_done(&b);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Measured in a child so each layout's peak RSS is its own. */
static int measure(const char *label, char *dir) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                struct eg_spec_options opt = {0};
                struct eg_desired_set *set = NULL;
                int64_t start = eg_now_monotonic_ms();
                int r = eg_spec_load_paths(&dir, 1, &opt, &set);
                double ms = (double)(eg_now_monotonic_ms() - start);
                struct rusage ru;
                getrusage(RUSAGE_SELF, &ru);
                double mib = (double)ru.ru_maxrss / 1024.0;
                double user = (double)ru.ru_utime.tv_sec * 1000.0 + (double)ru.ru_utime.tv_usec / 1000.0;
                double sys = (double)ru.ru_stime.tv_sec * 1000.0 + (double)ru.ru_stime.tv_usec / 1000.0;
                printf("%-22s %5zu files %6zu objects %zu errors  wall %7.1f ms (%.2fx of 1 s; user %.0f ms, "
                       "sys %.0f ms)  peak RSS %6.1f MiB (%.2fx of 64 MiB)\n",
                       label, set ? set->n_files : 0, set ? set->n_objects : 0, set ? set->n_errors : 0, ms,
                       ms / TARGET_MS, user, sys, mib, mib / TARGET_MIB);
                bool ok = r == 0 && set && set->n_objects == N_MANIFESTS && set->n_errors == 0;
                eg_desired_set_free(set);
                fflush(stdout);
                _exit(ok ? 0 : 1);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(void) {
        char a[] = "/tmp/bench-spec-XXXXXX", b[] = "/tmp/bench-spec-XXXXXX";
        if (!mkdtemp(a) || !mkdtemp(b)) {
                perror("mkdtemp");
                return 2;
        }
        int r = generate(a, 100, 100);
        if (r == 0)
                r = generate(b, N_MANIFESTS, 1);
        if (r == 0)
                r = measure("100 files x 100 docs", a);
        if (r == 0)
                r = measure("10000 files x 1 doc", b);
        eg_rm_rf(a);
        eg_rm_rf(b);
        if (r < 0) {
                fprintf(stderr, "bench_spec: failed\n");
                return 1;
        }
        return 0;
}
