/* Restore benchmark helper: eg_restore_fetch + eg_restore_data_dir of one snapshot file,
 * timed; bench_backup.sh compares it with `etcdctl snapshot restore` by hand.
 * usage: bench_backup SNAPSHOT STATE_DIR DATA_DIR */
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/backup.h"

int main(int argc, char **argv) {
        if (argc != 4) {
                fprintf(stderr, "usage: %s SNAPSHOT STATE_DIR DATA_DIR\n", argv[0]);
                return 2;
        }
        struct eg_restore_spec rs = {
                .etcd_cluster_name = "bench", .backup_storage_type = EG_STORAGE_FILE, .file = {.path = argv[1]}};
        struct eg_error err = {0};
        struct eg_restore_info info = {0};
        char *snap = NULL;
        int64_t t0 = eg_now_monotonic_ms();
        int r = eg_restore_fetch(&rs, "default", argv[2], &snap, &info, &err);
        int64_t t1 = eg_now_monotonic_ms();
        if (r >= 0)
                r = eg_restore_data_dir(snap, "m1", "http://127.0.0.1:2380", "m1=http://127.0.0.1:2380", "bench",
                                        argv[3], &err);
        int64_t t2 = eg_now_monotonic_ms();
        if (r < 0) {
                fprintf(stderr, "restore failed: %s\n", err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                free(snap);
                return 1;
        }
        printf("{\"fetch_verify_ms\": %lld, \"etcdctl_restore_ms\": %lld, \"total_ms\": %lld, \"size\": %llu}\n",
               (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t2 - t0), (unsigned long long)info.size);
        eg_restore_info_done(&info);
        free(snap);
        return 0;
}
