/* Unit tests for util's error type: each setter replaces the whole error, move hands it over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-gitops/util.h"

static void test_util_error__set_replaces_everything(void **state) {
        struct eg_error e = {0};
        eg_error_set_http(&e, "http://127.0.0.1:2379", 503, "unavailable");
        assert_string_equal(e.message, "unavailable");
        assert_string_equal(e.endpoint, "http://127.0.0.1:2379");
        assert_int_equal(e.http_status, 503);
        eg_error_set(&e, "then: %s", e.message);
        assert_string_equal(e.message, "then: unavailable");
        assert_null(e.endpoint);
        assert_int_equal(e.http_status, 0);
        eg_error_set_at(&e, "a.yaml", 3, 7, "bad %s", "field");
        assert_string_equal(e.message, "bad field");
        assert_string_equal(e.file, "a.yaml");
        assert_int_equal(e.line, 3);
        assert_int_equal(e.column, 7);
        eg_error_set_http(&e, e.file, 0, "%s", e.message);
        assert_string_equal(e.endpoint, "a.yaml");
        assert_null(e.file);
        assert_int_equal(e.line, 0);
        eg_error_set_at(&e, NULL, 2, 0, "no name");
        assert_null(e.file);
        assert_null(e.endpoint);
        assert_int_equal(e.line, 2);
        eg_error_done(&e);
        assert_null(e.message);
        eg_error_done(&e);
}

static void test_util_error__null_error_is_ignored(void **state) {
        eg_error_set(NULL, "nobody listens");
        eg_error_set_http(NULL, "http://x", 500, "nobody");
        eg_error_set_at(NULL, "f", 1, 1, "nobody");
        eg_error_done(NULL);
}

static void test_util_error__move(void **state) {
        struct eg_error a = {0}, b = {0};
        eg_error_set_at(&a, "f.yaml", 1, 2, "first");
        eg_error_set(&b, "old");
        eg_error_move(&b, &a);
        assert_null(a.message);
        assert_null(a.file);
        assert_string_equal(b.message, "first");
        assert_string_equal(b.file, "f.yaml");
        eg_error_move(&b, &b);
        assert_string_equal(b.message, "first");
        eg_error_move(NULL, &b);
        assert_null(b.message);
        assert_null(b.file);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_util_error__set_replaces_everything),
                cmocka_unit_test(test_util_error__null_error_is_ignored),
                cmocka_unit_test(test_util_error__move),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
