/* Unit tests for util's RFC 3339 parser and its edit distance. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "etcd-gitops/util.h"

static int64_t parsed(const char *s) {
        int64_t ms = -1;
        assert_int_equal(eg_parse_rfc3339_ms(s, &ms), 0);
        return ms;
}

static void test_util_time__rfc3339_forms(void **state) {
        assert_int_equal(parsed("2026-11-28T03:00:00Z"), 1795834800000LL);
        assert_int_equal(parsed("2026-11-28T03:00:00z"), 1795834800000LL);
        assert_int_equal(parsed("2026-11-28T03:00:00.123Z"), 1795834800123LL);
        assert_int_equal(parsed("2026-11-28T03:00:00.5Z"), 1795834800500LL);
        /* Kubernetes' MicroTime: what is past the millisecond is dropped */
        assert_int_equal(parsed("2026-11-28T03:00:00.123456Z"), 1795834800123LL);
        assert_int_equal(parsed("2026-11-28T04:30:00+01:30"), 1795834800000LL);
        assert_int_equal(parsed("2026-11-27T22:00:00-05:00"), 1795834800000LL);
        assert_int_equal(parsed("1970-01-01T00:00:00Z"), 0);
        assert_int_equal(parsed("2024-02-29T23:59:60Z"), parsed("2024-03-01T00:00:00Z"));
}

static void test_util_time__rfc3339_round_trip(void **state) {
        char buf[32];
        eg_format_rfc3339_ms(1764939600042LL, buf);
        assert_int_equal(parsed(buf), 1764939600042LL);
}

static void test_util_time__rfc3339_refused(void **state) {
        static const char *const bad[] = {
                "",
                "2026-11-28",
                "2026-11-28T03:00:00",
                "2026-11-28 03:00:00Z",
                "2026-1-28T03:00:00Z",
                "2026-11-28T3:00:00Z",
                "2026-11-28T03:00:001Z",
                "2026-11-28T03:00:00.Z",
                "2026-11-28T03:00:00ZZ",
                "2026-11-28T03:00:00Z ",
                "2026-11-28T03:00:00+1:00",
                "2026-11-28T03:00:00+01:00x",
                "2026-11-28T03:00:00+0100",
                "2026-13-01T00:00:00Z",
                "2026-00-01T00:00:00Z",
                "2026-11-00T00:00:00Z",
                "2026-11-28T24:00:00Z",
                "2026-11-28T03:60:00Z",
                "+026-11-28T03:00:00Z",
                " 2026-11-28T03:00:00Z",
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++) {
                int64_t ms = 7;
                assert_int_equal(eg_parse_rfc3339_ms(bad[i], &ms), -EINVAL);
                assert_int_equal(ms, 7);
        }
}

static void test_util_time__edit_distance(void **state) {
        assert_int_equal(eg_edit_distance("status", "status", 2, false), 0);
        assert_int_equal(eg_edit_distance("stauts", "status", 2, false), 2);
        assert_int_equal(eg_edit_distance("sise", "size", 2, false), 1);
        assert_int_equal(eg_edit_distance("", "ab", 2, false), 2);
        assert_int_equal(eg_edit_distance("apply", "get", 2, false), 3);
        assert_int_equal(eg_edit_distance("a", "abcdef", 2, false), 3);
        assert_int_equal(eg_edit_distance("Size", "size", 2, false), 1);
        assert_int_equal(eg_edit_distance("SIZE", "size", 2, true), 0);
        assert_int_equal(eg_edit_distance("Versoin", "version", 2, true), 2);
        char longer[80];
        for (size_t i = 0; i < sizeof(longer) - 1; i++)
                longer[i] = 'x';
        longer[sizeof(longer) - 1] = '\0';
        assert_int_equal(eg_edit_distance(longer, longer, 2, false), 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_util_time__rfc3339_forms),
                cmocka_unit_test(test_util_time__rfc3339_round_trip),
                cmocka_unit_test(test_util_time__rfc3339_refused),
                cmocka_unit_test(test_util_time__edit_distance),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
