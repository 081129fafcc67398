/* Backup and restore against real etcd: the controller (one-shot, periodic retention across
 * v99 -> v101), unreachable endpoints, TLS, restore fetch + data dir, corrupt snapshots. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../lib/etcd_proc.h"
#include "etcd-gitops/backup.h"
#include "etcd-gitops/cycle.h"

#define START_TIMEOUT_MS 30000

static struct etcd_proc e1;
static char *tmp; /* state dir, backups, audit log */

static int group_setup(void **state) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -1;
        char t[] = "/tmp/eg-test-backup.XXXXXX";
        if (!mkdtemp(t) || !(tmp = strdup(t)))
                return -1;
        int r = etcd_proc_start_single(&e1, "m1", START_TIMEOUT_MS);
        if (r < 0) {
                fprintf(stderr, "cannot start etcd: %s\n", strerror(-r));
                etcd_proc_cleanup(&e1);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        etcd_proc_cleanup(&e1);
        eg_rm_rf(tmp);
        free(tmp);
        curl_global_cleanup();
        return 0;
}

static struct eg_etcd *client(const char *url) {
        char *eps[] = {(char *)url};
        struct eg_etcd *c = NULL;
        struct eg_etcd_options o = {.timeout_ms = 5000};
        assert_int_equal(eg_etcd_new(eps, 1, &o, &c), 0);
        return c;
}

static int64_t revision_of(const char *url) {
        struct eg_etcd *c = client(url);
        struct eg_etcd_status st = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_status_of(c, url, &st, &err), 0);
        int64_t rev = st.revision;
        eg_etcd_status_done(&st);
        eg_etcd_free(c);
        return rev;
}

/* Writes keys until the revision is target. */
static void put_until(const char *url, int64_t target) {
        struct eg_etcd *c = client(url);
        struct eg_error err = {0};
        int64_t rev = revision_of(url);
        assert_true(rev <= target);
        for (; rev < target; rev++) {
                char key[32];
                snprintf(key, sizeof(key), "/k/%lld", (long long)rev);
                assert_int_equal(eg_etcd_put(c, key, "value", 5, &err), 0);
        }
        eg_etcd_free(c);
        assert_int_equal(revision_of(url), target);
}

static struct eg_desired_set *parse(const char *yaml) {
        struct eg_desired_set *s = NULL;
        assert_int_equal(eg_desired_set_new(&s), 0);
        struct eg_origin o = {.path = "backup.yaml"};
        struct eg_spec_options so = {0};
        assert_int_equal(eg_spec_parse_buffer(s, &o, yaml, strlen(yaml), &so), 0);
        assert_int_equal(eg_desired_set_finish(s), 0);
        for (size_t i = 0; i < s->n_diags; i++)
                fprintf(stderr, "diag: %s\n", s->diags[i].message);
        assert_int_equal(s->n_errors, 0);
        return s;
}

static size_t count_records(const char *log, const char *decision, const char *outcome) {
        struct eg_audit_record *r = NULL;
        size_t n = 0, k = 0;
        if (eg_audit_read(log, NULL, &r, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                k += strcmp(r[i].decision, decision) == 0 && (!outcome || strcmp(r[i].outcome, outcome) == 0);
        eg_audit_records_free(r, n);
        return k;
}

static char **list_dir(const char *dir, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                v = realloc(v, (n + 1) * sizeof(*v));
                v[n++] = strdup(de->d_name);
        }
        if (d)
                closedir(d);
        *ret_n = n;
        return v;
}

static void free_list(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The journal the controller records through; one controller at a time. */
static struct eg_journal *controller_journal;

static struct eg_backup_controller *controller(struct eg_audit *a, const char *state) {
        assert_null(controller_journal);
        assert_int_equal(eg_journal_new(a, &controller_journal), 0);
        struct eg_backup_controller_options o = {.journal = controller_journal, .state_dir = state};
        struct eg_backup_controller *c = NULL;
        assert_int_equal(eg_backup_controller_new(&o, &c), 0);
        return c;
}

static void controller_free(struct eg_backup_controller *c) {
        eg_backup_controller_free(c);
        eg_journal_free(controller_journal);
        controller_journal = NULL;
}

static void test_backup_etcd__periodic_retention_numeric(void **state) {
        _cleanup_free_ char *dir = eg_path_join(tmp, "periodic"), *st = eg_path_join(tmp, "state-p"),
                            *log = eg_path_join(tmp, "audit-p.jsonl");
        _cleanup_free_ char *yaml = eg_strdup_printf(
                "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdBackup\nmetadata:\n  name: nightly\n"
                "spec:\n  etcdEndpoints: [\"%s\"]\n  storageType: File\n  file:\n    path: %s\n"
                "  backupPolicy:\n    backupIntervalInSecond: 10\n    maxBackups: 2\n",
                e1.client_url, dir);
        struct eg_desired_set *set = parse(yaml);
        struct eg_audit *a = NULL;
        assert_int_equal(eg_audit_open(log, &a, NULL), 0);
        struct eg_backup_controller *c = controller(a, st);
        int64_t now = eg_now_realtime_ms(), next = 0;
        for (int64_t rev = 99; rev <= 101; rev++) {
                put_until(e1.client_url, rev);
                assert_int_equal(eg_backup_controller_pass(c, set, "r1", now, &next), 0);
                assert_true(next == now + 10000);
                /* not due again before the interval */
                int64_t next2 = 0;
                assert_int_equal(eg_backup_controller_pass(c, set, "r1", now + 5000, &next2), 0);
                assert_true(next2 == now + 10000);
                now += 10000;
        }
        size_t n;
        char **names = list_dir(dir, &n);
        assert_int_equal(n, 2);
        int64_t revs[2];
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *full = eg_path_join(dir, names[i]), *base = eg_path_join(dir, "nightly");
                assert_int_equal(eg_backup_name_parse(base, full, &revs[i]), 0);
                char sha[65];
                struct eg_error err = {0};
                assert_int_equal(eg_snapshot_verify(full, sha, NULL, &err), 0);
        }
        assert_true((revs[0] == 100 && revs[1] == 101) || (revs[0] == 101 && revs[1] == 100));
        free_list(names, n);
        eg_audit_close(a);
        assert_int_equal(count_records(log, "backup", "ok"), 3);
        assert_int_equal(count_records(log, "backup-retention", "ok"), 1);
        json_t *all = NULL;
        assert_int_equal(eg_backup_status_all(st, &all), 0);
        assert_int_equal(json_array_size(all), 1);
        json_t *s0 = json_array_get(all, 0);
        assert_true(json_is_true(json_object_get(s0, "succeeded")));
        assert_int_equal(json_integer_value(json_object_get(s0, "etcdRevision")), 101);
        assert_string_equal(json_string_value(json_object_get(s0, "etcdVersion")), "3.4.23");
        assert_int_equal(strlen(json_string_value(json_object_get(s0, "sha256"))), 64);
        json_decref(all);
        controller_free(c);
        eg_desired_set_free(set);
}

static void test_backup_etcd__one_shot_once_and_unreachable(void **state) {
        _cleanup_free_ char *dir = eg_path_join(tmp, "oneshot"), *st = eg_path_join(tmp, "state-o"),
                            *log = eg_path_join(tmp, "audit-o.jsonl");
        int dead = etcd_proc_free_port();
        _cleanup_free_ char *yaml = eg_strdup_printf(
                "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdBackup\nmetadata:\n  name: once\n"
                "spec:\n  etcdEndpoints: [\"http://127.0.0.1:%d\", \"%s\"]\n  storageType: File\n  file:\n    path: %s\n",
                dead, e1.client_url, dir);
        struct eg_desired_set *set = parse(yaml);
        struct eg_audit *a = NULL;
        assert_int_equal(eg_audit_open(log, &a, NULL), 0);
        struct eg_backup_controller *c = controller(a, st);
        int64_t now = eg_now_realtime_ms(), next = 0;
        assert_int_equal(eg_backup_controller_pass(c, set, "r1", now, &next), 0);
        assert_true(next == INT64_MAX);
        controller_free(c);
        /* a restarted daemon does not repeat the one-shot */
        c = controller(a, st);
        assert_int_equal(eg_backup_controller_pass(c, set, "r1", now + 3600000, &next), 0);
        assert_true(next == INT64_MAX);
        controller_free(c);
        eg_audit_close(a);
        assert_int_equal(count_records(log, "backup", "ok"), 1);
        _cleanup_free_ char *file = eg_path_join(dir, "once");
        char sha[65];
        struct eg_error err = {0};
        assert_int_equal(eg_snapshot_verify(file, sha, NULL, &err), 0);
        json_t *all = NULL;
        assert_int_equal(eg_backup_status_all(st, &all), 0);
        json_t *s0 = json_array_get(all, 0);
        assert_string_equal(json_string_value(json_object_get(s0, "sha256")), sha);
        assert_string_equal(json_string_value(json_object_get(s0, "endpoint")), e1.client_url);
        assert_non_null(strstr(json_string_value(json_object_get(s0, "skippedEndpoints")), "127.0.0.1"));
        json_decref(all);
        eg_desired_set_free(set);
}

/* start copies what the transfer needs: the desired set may go before the batch runs (as the
 * daemon replaces it meanwhile); a cancelled batch leaves no file and a failed status. */
static void test_backup_etcd__batch_outlives_desired_and_cancels(void **state) {
        _cleanup_free_ char *dir = eg_path_join(tmp, "batch"), *st = eg_path_join(tmp, "state-b"),
                            *log = eg_path_join(tmp, "audit-b.jsonl");
        struct eg_audit *a = NULL;
        assert_int_equal(eg_audit_open(log, &a, NULL), 0);
        struct eg_backup_controller *c = controller(a, st);
        int64_t now = eg_now_realtime_ms(), next = 0, again = 0;
        const char *names[] = {"kept", "cancelled"};
        for (int i = 0; i < 2; i++) {
                _cleanup_free_ char *doc = eg_strdup_printf(
                        "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdBackup\nmetadata:\n  name: %s\n"
                        "spec:\n  etcdEndpoints: [\"%s\"]\n  storageType: File\n  file:\n    path: %s\n",
                        names[i], e1.client_url, dir);
                struct eg_desired_set *set = parse(doc);
                struct eg_backup_batch *b = NULL;
                assert_int_equal(eg_backup_controller_start(c, set, "r1", now, &b, &next), 0);
                assert_non_null(b);
                assert_true(next == INT64_MAX);
                eg_desired_set_free(set);
                atomic_bool cancel = i == 1;
                eg_backup_batch_run(b, &cancel);
                assert_int_equal(eg_backup_controller_finish(c, b, &again), i);
                /* a failed one-shot is tried again a minute later; a done one never */
                assert_true(again == (i == 0 ? INT64_MAX : now + 60000));
        }
        _cleanup_free_ char *kept = eg_path_join(dir, "kept"), *gone = eg_path_join(dir, "cancelled");
        char sha[65];
        struct eg_error err = {0};
        assert_int_equal(eg_snapshot_verify(kept, sha, NULL, &err), 0);
        assert_int_equal(access(gone, F_OK), -1);
        size_t n;
        char **left = list_dir(dir, &n);
        assert_int_equal(n, 1);
        free_list(left, n);
        controller_free(c);
        eg_audit_close(a);
        assert_int_equal(count_records(log, "backup", "ok"), 1);
        assert_int_equal(count_records(log, "backup", "failed"), 1);
        json_t *all = NULL;
        assert_int_equal(eg_backup_status_all(st, &all), 0);
        assert_int_equal(json_array_size(all), 2);
        json_t *s0 = json_array_get(all, 0); /* sorted by name: cancelled first */
        assert_string_equal(json_string_value(json_object_get(s0, "name")), "cancelled");
        assert_true(json_is_false(json_object_get(s0, "succeeded")));
        assert_non_null(strstr(json_string_value(json_object_get(s0, "reason")), "cancelled"));
        json_decref(all);
}

static void test_backup_etcd__nothing_reachable_fails(void **state) {
        _cleanup_free_ char *file = eg_path_join(tmp, "never/snap.db");
        int dead = etcd_proc_free_port();
        _cleanup_free_ char *ep = eg_strdup_printf("http://127.0.0.1:%d", dead);
        char *eps[] = {ep};
        struct eg_backup_options o = {
                .endpoints = eps, .n_endpoints = 1, .store = {.type = EG_STORAGE_FILE, .path = file}};
        struct eg_backup_result res = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_backup_take(&o, &res, &err), -EHOSTUNREACH);
        assert_non_null(strstr(err.message, ep));
        assert_int_equal(access(file, F_OK), -1);
        eg_error_done(&err);
}

static void test_backup_etcd__restore(void **state) {
        /* a backup with known keys, taken at a known revision */
        struct eg_etcd *c = client(e1.client_url);
        struct eg_error eerr = {0};
        assert_int_equal(eg_etcd_put(c, "/restore/me", "restored-value", 14, &eerr), 0);
        eg_etcd_free(c);
        _cleanup_free_ char *dir = eg_path_join(tmp, "restore-src"), *base = eg_path_join(dir, "snap");
        char *eps[] = {e1.client_url};
        struct eg_backup_options o = {
                .endpoints = eps, .n_endpoints = 1, .periodic = true, .store = {.type = EG_STORAGE_FILE, .path = base}};
        struct eg_backup_result res = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_backup_take(&o, &res, &err), 0);

        struct eg_restore_spec rs = {
                .etcd_cluster_name = "restored", .backup_storage_type = EG_STORAGE_FILE, .file = {.path = dir}};
        char *snap = NULL;
        struct eg_restore_info info = {0};
        assert_int_equal(eg_restore_fetch(&rs, "default", tmp, &snap, &info, &err), 0);
        assert_string_equal(info.object, res.object);
        assert_int_equal(info.revision, res.revision);
        assert_string_equal(info.sha256, res.sha256);
        assert_int_equal(info.size, res.size);
        /* a File backup is linked, not copied */
        struct stat linked, orig;
        assert_int_equal(stat(snap, &linked), 0);
        assert_int_equal(stat(res.object, &orig), 0);
        assert_true(linked.st_dev == orig.st_dev && linked.st_ino == orig.st_ino);
        /* a revision that was never backed up */
        rs.revision = res.revision + 1000;
        char *none = NULL;
        struct eg_restore_info ni = {0};
        assert_int_equal(eg_restore_fetch(&rs, "default", tmp, &none, &ni, &err), -ENOENT);
        rs.revision = 0;

        struct etcd_proc r = {0};
        assert_int_equal(etcd_proc_init(&r), 0);
        _cleanup_free_ char *data = eg_path_join(r.dir, "data"), *ic = eg_strdup_printf("r1=%s", r.peer_url);
        assert_int_equal(eg_restore_data_dir(snap, "r1", r.peer_url, ic, "tok-restore", data, &err), 0);
        /* refuses an existing data dir */
        assert_int_equal(eg_restore_data_dir(snap, "r1", r.peer_url, ic, "tok-restore", data, &err), -EEXIST);
        assert_int_equal(etcd_proc_start(&r, "r1", NULL, "new", "tok-restore"), 0);
        assert_int_equal(etcd_proc_wait_healthy(&r, START_TIMEOUT_MS), 0);
        c = client(r.client_url);
        char *v = NULL;
        assert_int_equal(eg_etcd_get(c, "/restore/me", &v, NULL, &eerr), 0);
        assert_string_equal(v, "restored-value");
        free(v);
        eg_etcd_free(c);
        etcd_proc_cleanup(&r);

        /* one flipped byte in the middle, then a truncation: refused, nothing left behind */
        _cleanup_free_ char *bad = eg_path_join(tmp, "bad.db");
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(snap, 1 << 30, &text, &len), 0);
        text[len / 2] ^= 0x40;
        assert_int_equal(eg_write_file_atomic(bad, text, len, 0600), 0);
        struct eg_restore_spec bs = {
                .etcd_cluster_name = "bad", .backup_storage_type = EG_STORAGE_FILE, .file = {.path = bad}};
        char *bsnap = NULL;
        struct eg_restore_info bi = {0};
        assert_int_equal(eg_restore_fetch(&bs, "default", tmp, &bsnap, &bi, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "corrupt"));
        text[len / 2] ^= 0x40;
        assert_int_equal(eg_write_file_atomic(bad, text, len - 100, 0600), 0);
        assert_int_equal(eg_restore_fetch(&bs, "default", tmp, &bsnap, &bi, &err), -EBADMSG);
        _cleanup_free_ char *left = eg_strdup_printf("%s/restore/default/bad/snapshot.db", tmp);
        assert_int_equal(access(left, F_OK), -1);

        /* a link to a good backup that a crash left where the next fetch writes is replaced,
         * never written through: here with a truncated backup on another filesystem (tmpfs),
         * which is copied */
        _cleanup_free_ char *partial = eg_strdup_printf("%s/restore/default/bad/.snapshot.db.partial", tmp);
        assert_int_equal(link(res.object, partial), 0);
        char shm[] = "/dev/shm/eg-test-restore.XXXXXX";
        assert_non_null(mkdtemp(shm));
        _cleanup_free_ char *elsewhere = eg_path_join(shm, "bad.db");
        assert_int_equal(eg_write_file_atomic(elsewhere, text, len - 100, 0600), 0);
        bs.file.path = elsewhere;
        assert_int_equal(eg_restore_fetch(&bs, "default", tmp, &bsnap, &bi, &err), -EBADMSG);
        assert_int_equal(stat(res.object, &linked), 0);
        assert_int_equal(linked.st_size, orig.st_size);
        assert_int_equal(access(partial, F_OK), -1);
        eg_rm_rf(shm);
        free(text);
        free(snap);
        eg_restore_info_done(&info);
        eg_backup_result_done(&res);
        eg_error_done(&err);
}

static void test_backup_etcd__tls(void **state) {
        struct etcd_proc t = {0};
        assert_int_equal(etcd_proc_init(&t), 0);
        assert_int_equal(etcd_proc_use_tls(&t), 0);
        assert_int_equal(etcd_proc_start(&t, "tls1", NULL, "new", "eg-backup-tls"), 0);
        assert_int_equal(etcd_proc_wait_healthy(&t, START_TIMEOUT_MS), 0);
        _cleanup_free_ char *file = eg_path_join(tmp, "tls/snap.db");
        char *eps[] = {t.client_url};
        struct eg_etcd_options eo = {.tls = {t.ca_file, t.cert_file, t.key_file}};
        struct eg_backup_options o = {
                .endpoints = eps, .n_endpoints = 1, .etcd = &eo, .store = {.type = EG_STORAGE_FILE, .path = file}};
        struct eg_backup_result res = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_backup_take(&o, &res, &err), 0);
        char sha[65];
        uint64_t size = 0;
        assert_int_equal(eg_snapshot_verify(file, sha, &size, &err), 0);
        assert_string_equal(sha, res.sha256);
        assert_int_equal(size, res.size);
        /* without the client certificate the member does not answer: nothing written */
        _cleanup_free_ char *file2 = eg_path_join(tmp, "tls/none.db");
        o.etcd = NULL;
        o.store.path = file2;
        eg_backup_result_done(&res);
        assert_true(eg_backup_take(&o, &res, &err) < 0);
        assert_int_equal(access(file2, F_OK), -1);
        eg_error_done(&err);
        etcd_proc_cleanup(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backup_etcd__periodic_retention_numeric),
                cmocka_unit_test(test_backup_etcd__one_shot_once_and_unreachable),
                cmocka_unit_test(test_backup_etcd__batch_outlives_desired_and_cancels),
                cmocka_unit_test(test_backup_etcd__nothing_reachable_fails),
                cmocka_unit_test(test_backup_etcd__restore),
                cmocka_unit_test(test_backup_etcd__tls),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
