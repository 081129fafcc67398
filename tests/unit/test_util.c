/* Unit tests for util: capped buffers, parsers, files, hashing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/util.h"

static void test_util__buf_cap(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 8);
        assert_int_equal(eg_buf_puts(&b, "1234"), 0);
        assert_int_equal(eg_buf_printf(&b, "%d", 5678), 0);
        assert_int_equal(b.len, 8);
        assert_string_equal(b.data, "12345678");
        assert_int_equal(eg_buf_puts(&b, "9"), -E2BIG);
        assert_int_equal(b.len, 8);
        char *s = eg_buf_steal(&b);
        assert_string_equal(s, "12345678");
        free(s);
        assert_null(b.data);
}

static void test_util__durations(void **state) {
        int64_t ms;
        assert_int_equal(eg_parse_duration_ms("15s", &ms), 0);
        assert_int_equal(ms, 15000);
        assert_int_equal(eg_parse_duration_ms("1h30m", &ms), 0);
        assert_int_equal(ms, 5400000);
        assert_int_equal(eg_parse_duration_ms("250ms", &ms), 0);
        assert_int_equal(ms, 250);
        assert_int_equal(eg_parse_duration_ms("7", &ms), 0);
        assert_int_equal(ms, 7000);
        assert_int_equal(eg_parse_duration_ms("", &ms), -EINVAL);
        assert_int_equal(eg_parse_duration_ms("5x", &ms), -EINVAL);
        assert_int_equal(eg_parse_duration_ms("-5s", &ms), -EINVAL);
        assert_int_equal(eg_parse_duration_ms("1s5", &ms), -EINVAL);
        assert_int_equal(eg_parse_duration_ms("99999999999999999999h", &ms), -ERANGE);
}

static void test_util__integers(void **state) {
        int64_t v;
        uint64_t u;
        assert_int_equal(eg_parse_int64("-42", &v), 0);
        assert_int_equal(v, -42);
        assert_int_equal(eg_parse_int64("42 ", &v), -EINVAL);
        assert_int_equal(eg_parse_int64(" 42", &v), -EINVAL);
        assert_int_equal(eg_parse_int64("9223372036854775808", &v), -ERANGE);
        assert_int_equal(eg_parse_uint64("18446744073709551615", &u), 0);
        assert_true(u == UINT64_MAX);
        assert_int_equal(eg_parse_uint64("-1", &u), -EINVAL);
}

static void test_util__files(void **state) {
        char dir[] = "/tmp/eg-util-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *deep = eg_strdup_printf("%s/a/b/c", dir);
        assert_int_equal(eg_mkdir_p(deep, 0755), 0);
        _cleanup_free_ char *f = eg_path_join(deep, "x.json");
        assert_int_equal(eg_write_file_atomic(f, "hello", 5, 0600), 0);
        char *data = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(f, 100, &data, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(data, "hello");
        free(data);
        assert_int_equal(eg_read_file(f, 4, &data, &len), -EFBIG);
        struct stat st;
        assert_int_equal(stat(f, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(eg_rm_rf(dir), 0);
        assert_int_equal(access(dir, F_OK), -1);
        assert_int_equal(eg_rm_rf(dir), 0);
}

static void test_util__sha256(void **state) {
        char hex[65];
        eg_sha256_hex("abc", 3, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        struct eg_sha256 *h;
        assert_int_equal(eg_sha256_new(&h), 0);
        eg_sha256_update(h, "a", 1);
        eg_sha256_update(h, "bc", 2);
        char hex2[65];
        eg_sha256_final_hex(h, hex2);
        assert_string_equal(hex, hex2);
}

static void test_util__log_level(void **state) {
        enum eg_log_level l;
        assert_int_equal(eg_log_parse_level("debug", &l), 0);
        assert_int_equal(l, EG_LOG_DEBUG);
        assert_int_equal(eg_log_parse_level("loud", &l), -EINVAL);
        assert_int_equal(eg_log_full(EG_LOG_DEBUG, ENOENT, "quiet %s", "x"), -ENOENT);
}

static bool after_three(void *userdata) { return ++*(int *)userdata >= 3; }
static bool never(void *userdata) { return false; }

static void test_util__wait_for(void **state) {
        int n = 0;
        assert_int_equal(eg_wait_for(after_three, &n, 1000, 1), 0);
        assert_int_equal(n, 3);
        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_wait_for(never, NULL, 50, 5), -ETIMEDOUT);
        assert_true(eg_now_monotonic_ms() - t0 >= 50);
}

static void test_util__rfc3339(void **state) {
        char buf[32];
        eg_format_rfc3339_ms(1795834800123LL, buf);
        assert_string_equal(buf, "2026-11-28T03:00:00.123Z");
}

static void test_util__base64(void **state) {
        char *out = NULL;
        size_t len = 0;
        assert_int_equal(eg_base64_decode("aGVs\nbG8=\n", &out, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(out, "hello");
        free(out);
        assert_int_equal(eg_base64_decode("", &out, &len), 0);
        assert_int_equal(len, 0);
        free(out);
        assert_int_equal(eg_base64_decode("!!!!", &out, &len), -EBADMSG);

        unsigned char bin[6];
        assert_int_equal(eg_base64_decode_strict("aGVsbG8=", 8, bin, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(bin, "hello", 5);
        assert_int_equal(eg_base64_decode_strict("aGVs\nbG8", 8, bin, &len), -EBADMSG);
        assert_int_equal(eg_base64_decode_strict("aGVsbG8", 7, bin, &len), -EBADMSG);
        assert_int_equal(eg_base64_decode_strict("aG=sbG8=", 8, bin, &len), -EBADMSG);

        char *enc = eg_base64_encode("hello", 5);
        assert_non_null(enc);
        assert_string_equal(enc, "aGVsbG8=");
        free(enc);
}

static void test_util__strv_free(void **state) {
        char **v = calloc(3, sizeof(*v));
        assert_non_null(v);
        v[0] = strdup("a");
        v[1] = strdup("b");
        eg_strv_free(v, EG_STRV_ALL);
        v = calloc(3, sizeof(*v));
        assert_non_null(v);
        v[0] = strdup("a");
        v[2] = strdup("c");
        eg_strv_free(v, 3);
        eg_strv_free(NULL, EG_STRV_ALL);
}

static void test_util__state_path(void **state) {
        char *p = eg_state_path("/s", EG_STATE_STATUS, "ns", "c");
        assert_string_equal(p, "/s/status/ns/c.json");
        free(p);
        p = eg_state_path("/s/", EG_STATE_STATUS, "ns", NULL);
        assert_string_equal(p, "/s/status/ns");
        free(p);
        p = eg_state_path("/s", EG_STATE_AWS_CREDENTIALS, "ns", "aws");
        assert_string_equal(p, "/s/secrets/ns/aws/credentials");
        free(p);
        p = eg_state_path("/s", EG_STATE_KUBE_NAMESPACES, NULL, NULL);
        assert_string_equal(p, "/s/kube/namespaces");
        free(p);
}

static void test_util__read_fd_timeout(void **state) {
        int p[2];
        struct eg_buf b;
        assert_int_equal(pipe(p), 0);
        eg_buf_init(&b, 4);
        assert_int_equal(eg_write_all(p[1], "abc", 3), 0);
        assert_int_equal(eg_read_fd_timeout(p[0], &b, 50), -ETIMEDOUT);
        assert_int_equal(b.len, 3);
        assert_int_equal(eg_write_all(p[1], "de", 2), 0);
        assert_int_equal(eg_read_fd_timeout(p[0], &b, 1000), -E2BIG);
        close(p[1]);
        eg_buf_reset(&b);
        assert_int_equal(eg_read_fd_timeout(p[0], &b, 1000), 0);
        close(p[0]);
        eg_buf_done(&b);
}

static void test_util__random_hex(void **state) {
        char *a = eg_random_hex(16), *b = eg_random_hex(16);
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(strlen(a), 32);
        assert_int_equal(strspn(a, "0123456789abcdef"), 32);
        assert_string_not_equal(a, b);
        free(a);
        free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_util__buf_cap),    cmocka_unit_test(test_util__durations),
                cmocka_unit_test(test_util__integers),   cmocka_unit_test(test_util__files),
                cmocka_unit_test(test_util__sha256),     cmocka_unit_test(test_util__log_level),
                cmocka_unit_test(test_util__wait_for),   cmocka_unit_test(test_util__rfc3339),
                cmocka_unit_test(test_util__base64),     cmocka_unit_test(test_util__strv_free),
                cmocka_unit_test(test_util__state_path), cmocka_unit_test(test_util__read_fd_timeout),
                cmocka_unit_test(test_util__random_hex),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
