/* Unit tests for backup: names, retention order, cron, S3 URLs and credentials, snapshot checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/backup.h"

/* 2026-11-28T03:04:05Z */
#define T0 ((int64_t)1795835045 * 1000)

static void test_backup__name_periodic(void **state) {
        char *n = eg_backup_name_periodic("bkt/etcd.backup", 100, T0 + 999);
        assert_string_equal(n, "bkt/etcd.backup_v100_2026-11-28-03:04:05");
        int64_t rev = 0;
        assert_int_equal(eg_backup_name_parse("bkt/etcd.backup", n, &rev), 0);
        assert_int_equal(rev, 100);
        free(n);
}

static void test_backup__name_parse_rejects(void **state) {
        int64_t rev = 7;
        assert_int_equal(eg_backup_name_parse("p", "p", &rev), -EINVAL);
        assert_int_equal(eg_backup_name_parse("p", "p_v_2026-11-28-03:04:05", &rev), -EINVAL);
        assert_int_equal(eg_backup_name_parse("p", "p_v12_2026-11-28", &rev), -EINVAL);
        assert_int_equal(eg_backup_name_parse("p", "q_v12_2026-11-28-03:04:05", &rev), -EINVAL);
        assert_int_equal(eg_backup_name_parse("p", "p_v1x_2026-11-28-03:04:05", &rev), -EINVAL);
        assert_int_equal(eg_backup_name_parse("p", "p_v12_2026-11-28-03:04:05x", &rev), -EINVAL);
        /* another backup whose path extends this one is not ours */
        assert_int_equal(eg_backup_name_parse("p", "p2_v12_2026-11-28-03:04:05", &rev), -EINVAL);
        assert_int_equal(rev, 7);
}

static void test_backup__retention_numeric(void **state) {
        /* in text order _v100 and _v101 sort before _v99: upstream deleted the newest */
        char *names[] = {
                "b/k_v100_2026-11-28-03:04:06", "b/k_v99_2026-11-28-03:04:05", "b/k",
                "b/k_v101_2026-11-28-03:04:07", "b/k_v98_2026-11-28-03:04:04", "b/other_v1_2026-11-28-03:04:04"};
        const char **del = NULL;
        size_t n = 0;
        assert_int_equal(eg_backup_retention("b/k", names, 6, 2, &del, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(del[0], "b/k_v99_2026-11-28-03:04:05");
        assert_string_equal(del[1], "b/k_v98_2026-11-28-03:04:04");
        free(del);
        assert_int_equal(eg_backup_retention("b/k", names, 6, 0, &del, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(eg_backup_retention("b/k", names, 6, 4, &del, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(eg_backup_retention("b/k", names, 6, 1, &del, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(del[0], "b/k_v100_2026-11-28-03:04:06");
        free(del);
}

static void test_backup__cron_parse(void **state) {
        struct eg_cron c;
        assert_int_equal(eg_cron_parse("*/15 2-4 * jan,JUL sun", &c), 0);
        assert_true(c.minute == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
        assert_int_equal(c.hour, (1u << 2) | (1u << 3) | (1u << 4));
        assert_int_equal(c.month, (1u << 1) | (1u << 7));
        assert_int_equal(c.dow, 1);
        assert_true(c.dom_any);
        assert_false(c.dow_any);
        assert_int_equal(eg_cron_parse("5/20 * * * 7", &c), 0);
        assert_true(c.minute == ((1ull << 5) | (1ull << 25) | (1ull << 45)));
        assert_int_equal(c.dow, 1);
        assert_int_equal(eg_cron_parse("* * * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("* * * * * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("60 * * * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("* 24 * * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("* * 0 * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("5-1 * * * *", &c), -EINVAL);
        assert_int_equal(eg_cron_parse("*/0 * * * *", &c), -EINVAL);
}

static void test_backup__cron_next(void **state) {
        struct eg_cron c;
        int64_t next;
        /* T0 is Saturday 2026-11-28 03:04:05 UTC */
        assert_int_equal(eg_cron_parse("*/15 * * * *", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0, &next), 0);
        assert_true(next == T0 - 245 * 1000 + 15 * 60 * 1000); /* 03:15:00 */
        assert_int_equal(eg_cron_parse("30 2 * * *", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0, &next), 0);
        assert_true(next ==
                    T0 - (3 * 3600 + 245) * 1000 + (24 * 3600 + 2 * 3600 + 1800) * (int64_t)1000); /* Sun 02:30 */
        assert_int_equal(eg_cron_parse("0 0 * * mon", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0, &next), 0);
        assert_true(next == T0 - (3 * 3600 + 245) * 1000 + 2 * 86400 * (int64_t)1000); /* Mon 00:00 */
        /* both day fields restricted: either matches (the 1st, or a Monday) */
        assert_int_equal(eg_cron_parse("0 0 1 * mon", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0, &next), 0);
        assert_true(next == T0 - (3 * 3600 + 245) * 1000 + 2 * 86400 * (int64_t)1000);
        /* strictly after: at an exact match the next one is chosen */
        assert_int_equal(eg_cron_parse("* * * * *", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0 - 5000, &next), 0);
        assert_true(next == T0 - 5000 + 60000);
        assert_int_equal(eg_cron_parse("0 0 31 2 *", &c), 0);
        assert_int_equal(eg_cron_next(&c, T0, &next), -ERANGE);
        /* before 1970 the start rounds down too: 30 s before the epoch, the epoch is next */
        assert_int_equal(eg_cron_parse("* * * * *", &c), 0);
        assert_int_equal(eg_cron_next(&c, -30000, &next), 0);
        assert_true(next == 0);
        /* no next minute that int64 milliseconds can hold (found by fuzz_cron) */
        assert_int_equal(eg_cron_next(&c, INT64_MAX, &next), -ERANGE);
}

static void test_backup__s3_url(void **state) {
        char *u = eg_s3_url("http://127.0.0.1:9000", "us-east-1", true, "bkt", "dir/k_v1_2026-11-28-03:04:05", NULL);
        assert_string_equal(u, "http://127.0.0.1:9000/bkt/dir/k_v1_2026-11-28-03%3A04%3A05");
        free(u);
        u = eg_s3_url("http://s3.localhost:9000/", "us-east-1", false, "bkt", "a b+c", "uploadId=x");
        assert_string_equal(u, "http://bkt.s3.localhost:9000/a%20b%2Bc?uploadId=x");
        free(u);
        u = eg_s3_url(NULL, "eu-west-1", false, "bkt", "k", NULL);
        assert_string_equal(u, "https://bkt.s3.eu-west-1.amazonaws.com/k");
        free(u);
        u = eg_s3_url("minio:9000", "us-east-1", true, "bkt", NULL, "list-type=2&prefix=k");
        assert_string_equal(u, "https://minio:9000/bkt?list-type=2&prefix=k");
        free(u);
        char *b, *k;
        assert_int_equal(eg_s3_parse_path("s3://bkt/a/b", &b, &k), 0);
        assert_string_equal(b, "bkt");
        assert_string_equal(k, "a/b");
        free(b);
        free(k);
        assert_int_equal(eg_s3_parse_path("bkt", &b, &k), -EINVAL);
        assert_int_equal(eg_s3_parse_path("bkt/", &b, &k), -EINVAL);
        assert_int_equal(eg_s3_parse_path("/k", &b, &k), -EINVAL);
}

static void test_backup__credentials_parse(void **state) {
        const char *text =
                "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=secretdefault\n\n"
                "[profile ci]\n  aws_access_key_id=AKIDCI  \n; c\naws_secret_access_key = s3cr3t\naws_session_token = tok\nregion = eu-west-1\n"
                "[broken]\naws_access_key_id = only\n";
        struct eg_s3_credentials c;
        assert_int_equal(eg_s3_credentials_parse(text, "default", &c), 0);
        assert_string_equal(c.access_key_id, "AKIDDEFAULT");
        assert_string_equal(c.secret_access_key, "secretdefault");
        assert_null(c.session_token);
        assert_null(c.region);
        eg_s3_credentials_done(&c);
        assert_int_equal(eg_s3_credentials_parse(text, "ci", &c), 0);
        assert_string_equal(c.access_key_id, "AKIDCI");
        assert_string_equal(c.secret_access_key, "s3cr3t");
        assert_string_equal(c.session_token, "tok");
        assert_string_equal(c.region, "eu-west-1");
        eg_s3_credentials_done(&c);
        assert_int_equal(eg_s3_credentials_parse(text, "broken", &c), -ENOENT);
        assert_int_equal(eg_s3_credentials_parse(text, "missing", &c), -ENOENT);
}

static void test_backup__credentials_load_env(void **state) {
        setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
        setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
        setenv("AWS_REGION", "ap-south-1", 1);
        struct eg_s3_credentials c;
        struct eg_error err = {0};
        assert_int_equal(eg_s3_credentials_load(NULL, &c, &err), 0);
        assert_string_equal(c.access_key_id, "AKIDENV");
        assert_string_equal(c.region, "ap-south-1");
        eg_s3_credentials_done(&c);
        unsetenv("AWS_SECRET_ACCESS_KEY");
        assert_int_equal(eg_s3_credentials_load(NULL, &c, &err), -ENOENT);
        assert_non_null(err.message);
        eg_error_done(&err);
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_REGION");
}

/* An awsSecret as upstream made them: credentials and config side by side. */
static char *aws_secret_dir(const char *credentials, const char *config) {
        char *dir = strdup("/tmp/eg-test-aws.XXXXXX");
        assert_non_null(mkdtemp(dir));
        char *cf = eg_path_join(dir, "credentials"), *gf = eg_path_join(dir, "config");
        assert_int_equal(eg_write_file_atomic(cf, credentials, strlen(credentials), 0600), 0);
        if (config)
                assert_int_equal(eg_write_file_atomic(gf, config, strlen(config), 0600), 0);
        free(cf);
        free(gf);
        return dir;
}

static void rm_aws_secret_dir(char *dir) {
        char *cf = eg_path_join(dir, "credentials"), *gf = eg_path_join(dir, "config");
        unlink(cf);
        unlink(gf);
        rmdir(dir);
        free(cf);
        free(gf);
        free(dir);
}

static void test_backup__credentials_region_from_config(void **state) {
        char *dir = aws_secret_dir("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n",
                                   "[default]\nregion = eu-central-1\n[profile other]\nregion = us-west-2\n");
        char *cf = eg_path_join(dir, "credentials");
        struct eg_s3_credentials c;
        struct eg_error err = {0};
        unsetenv("AWS_PROFILE");
        assert_int_equal(eg_s3_credentials_load(cf, &c, &err), 0);
        assert_string_equal(c.region, "eu-central-1");
        eg_s3_credentials_done(&c);
        free(cf);
        rm_aws_secret_dir(dir);

        /* the credentials file's own region wins */
        dir = aws_secret_dir("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\nregion = sa-east-1\n",
                             "[default]\nregion = eu-central-1\n");
        cf = eg_path_join(dir, "credentials");
        assert_int_equal(eg_s3_credentials_load(cf, &c, &err), 0);
        assert_string_equal(c.region, "sa-east-1");
        eg_s3_credentials_done(&c);
        free(cf);
        rm_aws_secret_dir(dir);
}

static void test_backup__restore_seed_url(void **state) {
        char *dir = aws_secret_dir("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n",
                                   "[default]\nregion = eu-central-1\n");
        char *cf = eg_path_join(dir, "credentials");
        struct eg_restore_spec r = {.backup_storage_type = EG_STORAGE_S3,
                                    .s3 = {.endpoint = "http://127.0.0.1:9000", .force_path_style = true}};
        char *url = NULL, *region = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_restore_seed_url(&r, "bkt/c/snap_v12_2026-11-28-03:04:05", cf, &url, &region, &err), 0);
        assert_string_equal(url, "http://127.0.0.1:9000/bkt/c/snap_v12_2026-11-28-03%3A04%3A05");
        assert_string_equal(region, "eu-central-1");
        free(url);
        free(region);
        /* AWS itself, virtual-hosted in the signing region */
        r.s3.endpoint = NULL;
        r.s3.force_path_style = false;
        assert_int_equal(eg_restore_seed_url(&r, "bkt/snap.db", cf, &url, &region, &err), 0);
        assert_string_equal(url, "https://bkt.s3.eu-central-1.amazonaws.com/snap.db");
        free(url);
        free(region);
        assert_int_equal(eg_restore_seed_url(&r, "no-key", cf, &url, &region, &err), -EINVAL);
        assert_non_null(err.message);
        r.backup_storage_type = EG_STORAGE_FILE;
        assert_int_equal(eg_restore_seed_url(&r, "bkt/snap.db", cf, &url, &region, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "restore from S3"));
        eg_error_done(&err);
        free(cf);
        rm_aws_secret_dir(dir);
}

static char *write_snapshot(const char *db, size_t len, bool good_trailer) {
        char *path = strdup("/tmp/eg-test-snap.XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unsigned char trailer[32];
        char hex[65];
        eg_sha256_hex(db, len, hex);
        for (int i = 0; i < 32; i++) {
                unsigned v;
                sscanf(hex + 2 * i, "%2x", &v);
                trailer[i] = (unsigned char)v;
        }
        if (!good_trailer)
                trailer[5] ^= 1;
        assert_int_equal(write(fd, db, len), (ssize_t)len);
        assert_int_equal(write(fd, trailer, 32), 32);
        close(fd);
        return path;
}

static void test_backup__snapshot_verify(void **state) {
        const char db[] = "pretend this is a bolt db file";
        char *p = write_snapshot(db, sizeof(db), true);
        char sha[65], want[65];
        uint64_t size = 0;
        struct eg_error err = {0};
        assert_int_equal(eg_snapshot_verify(p, sha, &size, &err), 0);
        eg_sha256_hex(db, sizeof(db), want);
        assert_string_equal(sha, want);
        assert_int_equal(size, sizeof(db));
        /* truncated */
        assert_int_equal(truncate(p, sizeof(db) + 10), 0);
        assert_int_equal(eg_snapshot_verify(p, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "corrupt or truncated"));
        assert_int_equal(truncate(p, 10), 0);
        assert_int_equal(eg_snapshot_verify(p, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "truncated"));
        unlink(p);
        free(p);
        /* one flipped bit */
        p = write_snapshot(db, sizeof(db), false);
        assert_int_equal(eg_snapshot_verify(p, sha, &size, &err), -EBADMSG);
        unlink(p);
        free(p);
        eg_error_done(&err);
}

static void test_backup__status_all_empty(void **state) {
        char dir[] = "/tmp/eg-test-status.XXXXXX";
        assert_non_null(mkdtemp(dir));
        json_t *all = NULL;
        assert_int_equal(eg_backup_status_all(dir, &all), 0);
        assert_int_equal(json_array_size(all), 0);
        json_decref(all);
        char *sub = eg_strdup_printf("%s/backups/ns", dir);
        assert_int_equal(eg_mkdir_p(sub, 0700), 0);
        char *f1 = eg_strdup_printf("%s/b.json", sub), *f2 = eg_strdup_printf("%s/a.json", sub);
        const char *j1 = "{\"namespace\":\"ns\",\"name\":\"b\",\"succeeded\":true}";
        const char *j2 = "{\"namespace\":\"ns\",\"name\":\"a\",\"succeeded\":false}";
        assert_int_equal(eg_write_file_atomic(f1, j1, strlen(j1), 0600), 0);
        assert_int_equal(eg_write_file_atomic(f2, j2, strlen(j2), 0600), 0);
        assert_int_equal(eg_backup_status_all(dir, &all), 0);
        assert_int_equal(json_array_size(all), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(all, 0), "name")), "a");
        assert_true(json_is_true(json_object_get(json_array_get(all, 1), "succeeded")));
        json_decref(all);
        eg_rm_rf(dir);
        free(sub);
        free(f1);
        free(f2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backup__name_periodic),
                cmocka_unit_test(test_backup__name_parse_rejects),
                cmocka_unit_test(test_backup__retention_numeric),
                cmocka_unit_test(test_backup__cron_parse),
                cmocka_unit_test(test_backup__cron_next),
                cmocka_unit_test(test_backup__s3_url),
                cmocka_unit_test(test_backup__credentials_parse),
                cmocka_unit_test(test_backup__credentials_load_env),
                cmocka_unit_test(test_backup__credentials_region_from_config),
                cmocka_unit_test(test_backup__restore_seed_url),
                cmocka_unit_test(test_backup__snapshot_verify),
                cmocka_unit_test(test_backup__status_all_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
