/* Unit tests for leader election's pure parts: the Lease record read and written, when a lease
 * may be taken (by the local clock, from when the record last changed), and what is written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "etcd-gitops/lease.h"

static json_t *lease(const char *spec_json) {
        json_error_t e;
        json_t *spec = spec_json ? json_loads(spec_json, 0, &e) : NULL;
        json_t *l = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
                              "metadata", "name", "etcd-gitops");
        assert_non_null(l);
        if (spec_json) {
                assert_non_null(spec);
                json_object_set_new(l, "spec", spec);
        }
        return l;
}

static void test_kube_lease__decode(void **state) {
        json_t *l = lease(
                "{\"holderIdentity\":\"a_1_00000001\",\"leaseDurationSeconds\":15,"
                "\"acquireTime\":\"2025-12-05T10:00:00.000000Z\",\"renewTime\":\"2025-12-05T10:00:02.000000Z\","
                "\"leaseTransitions\":3}");
        struct eg_lease_record r;
        assert_int_equal(eg_lease_record_decode(l, &r), 0);
        assert_string_equal(r.holder, "a_1_00000001");
        assert_int_equal(r.duration_s, 15);
        assert_string_equal(r.acquire_time, "2025-12-05T10:00:00.000000Z");
        assert_string_equal(r.renew_time, "2025-12-05T10:00:02.000000Z");
        assert_int_equal(r.transitions, 3);
        eg_lease_record_done(&r);
        json_decref(l);
}

static void test_kube_lease__decode_empty(void **state) {
        struct eg_lease_record r;
        /* a Lease made by hand with no spec, and one released: nobody holds either */
        json_t *l = lease(NULL);
        assert_int_equal(eg_lease_record_decode(l, &r), 0);
        assert_null(r.holder);
        assert_null(r.renew_time);
        assert_int_equal(r.duration_s, 0);
        json_decref(l);
        l = lease("{\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,\"leaseTransitions\":2}");
        assert_int_equal(eg_lease_record_decode(l, &r), 0);
        assert_null(r.holder);
        assert_int_equal(r.transitions, 2);
        eg_lease_record_done(&r);
        json_decref(l);
}

static void test_kube_lease__decode_wrong_types(void **state) {
        static const char *const bad[] = {
                "{\"holderIdentity\":7}",
                "{\"leaseDurationSeconds\":\"15\"}",
                "{\"renewTime\":false}",
                "{\"leaseTransitions\":1.5}",
                "[]",
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++) {
                struct eg_lease_record r = {0};
                json_t *l = lease(bad[i]);
                assert_int_equal(eg_lease_record_decode(l, &r), -EBADMSG);
                assert_null(r.holder);
                json_decref(l);
        }
}

static void test_kube_lease__encode_round_trip(void **state) {
        struct eg_lease_record r = {.holder = "b_2_0000abcd",
                                    .duration_s = 15,
                                    .acquire_time = "2025-12-05T10:00:00.000000Z",
                                    .renew_time = "2025-12-05T10:00:04.500000Z",
                                    .transitions = 4};
        json_t *spec = eg_lease_record_encode(&r);
        assert_non_null(spec);
        json_t *l = lease(NULL);
        json_object_set_new(l, "spec", spec);
        struct eg_lease_record back;
        assert_int_equal(eg_lease_record_decode(l, &back), 0);
        assert_true(eg_lease_record_equal(&r, &back));
        eg_lease_record_done(&back);
        json_decref(l);

        /* released: no holderIdentity at all, durations and transitions always */
        struct eg_lease_record released = {.duration_s = 1, .transitions = 4};
        spec = eg_lease_record_encode(&released);
        char *text = json_dumps(spec, JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(text, "{\"leaseDurationSeconds\":1,\"leaseTransitions\":4}");
        free(text);
        json_decref(spec);
}

static void test_kube_lease__format_time(void **state) {
        char buf[40];
        eg_format_rfc3339_us(1764928800123456, buf);
        assert_string_equal(buf, "2025-12-05T10:00:00.123456Z");
        eg_format_rfc3339_us(1764928800000001, buf);
        assert_string_equal(buf, "2025-12-05T10:00:00.000001Z");
}

static void test_kube_lease__expiry_by_local_clock(void **state) {
        struct eg_lease_observation o = {0};
        struct eg_lease_record r = {.holder = "other", .duration_s = 15, .renew_time = "2025-12-05T10:00:00.000000Z"};
        /* nothing seen yet: the lease is there to be created */
        assert_true(eg_lease_may_acquire(&o, "me", 0));
        assert_int_equal(eg_lease_observe(&o, &r, 1000), 0);
        assert_false(eg_lease_may_acquire(&o, "me", 1000));
        assert_false(eg_lease_may_acquire(&o, "me", 15999));
        /* the same record seen again does not move the clock: its renewTime, in the
         * holder's clock, is never compared with ours */
        assert_int_equal(eg_lease_observe(&o, &r, 9000), 0);
        assert_int_equal(o.observed_ms, 1000);
        assert_true(eg_lease_may_acquire(&o, "me", 16000));
        /* a renewal seen starts the duration again */
        r.renew_time = "2025-12-05T10:00:02.000000Z";
        assert_int_equal(eg_lease_observe(&o, &r, 12000), 0);
        assert_int_equal(o.observed_ms, 12000);
        assert_false(eg_lease_may_acquire(&o, "me", 16000));
        assert_false(eg_lease_may_acquire(&o, "me", 26999));
        assert_true(eg_lease_may_acquire(&o, "me", 27000));
        /* ours, or nobody's: at once */
        assert_true(eg_lease_may_acquire(&o, "other", 12000));
        struct eg_lease_record released = {.duration_s = 1, .transitions = 1};
        assert_int_equal(eg_lease_observe(&o, &released, 13000), 0);
        assert_true(eg_lease_may_acquire(&o, "me", 13000));
        eg_lease_observation_done(&o);
}

static void test_kube_lease__next_record(void **state) {
        struct eg_lease_record old = {.holder = "other",
                                      .duration_s = 15,
                                      .acquire_time = "2025-12-05T09:00:00.000000Z",
                                      .renew_time = "2025-12-05T09:59:58.000000Z",
                                      .transitions = 2};
        int64_t now = 1764928800000000; /* 2025-12-05T10:00:00Z */
        struct eg_lease_record r;

        /* created: the first holder, no transition yet */
        assert_int_equal(eg_lease_next_record(NULL, "me", 15, now, &r), 0);
        assert_string_equal(r.holder, "me");
        assert_int_equal(r.transitions, 0);
        assert_string_equal(r.acquire_time, "2025-12-05T10:00:00.000000Z");
        eg_lease_record_done(&r);

        /* taken over: one more transition, acquired now */
        assert_int_equal(eg_lease_next_record(&old, "me", 15, now, &r), 0);
        assert_string_equal(r.holder, "me");
        assert_int_equal(r.duration_s, 15);
        assert_int_equal(r.transitions, 3);
        assert_string_equal(r.acquire_time, "2025-12-05T10:00:00.000000Z");
        assert_string_equal(r.renew_time, "2025-12-05T10:00:00.000000Z");
        eg_lease_record_done(&r);

        /* renewed: acquireTime and transitions kept */
        assert_int_equal(eg_lease_next_record(&old, "other", 15, now, &r), 0);
        assert_int_equal(r.transitions, 2);
        assert_string_equal(r.acquire_time, "2025-12-05T09:00:00.000000Z");
        assert_string_equal(r.renew_time, "2025-12-05T10:00:00.000000Z");
        eg_lease_record_done(&r);

        /* a released lease taken: a transition too */
        struct eg_lease_record released = {.duration_s = 1, .transitions = 2};
        assert_int_equal(eg_lease_next_record(&released, "me", 15, now, &r), 0);
        assert_int_equal(r.transitions, 3);
        eg_lease_record_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kube_lease__decode),
                cmocka_unit_test(test_kube_lease__decode_empty),
                cmocka_unit_test(test_kube_lease__decode_wrong_types),
                cmocka_unit_test(test_kube_lease__encode_round_trip),
                cmocka_unit_test(test_kube_lease__format_time),
                cmocka_unit_test(test_kube_lease__expiry_by_local_clock),
                cmocka_unit_test(test_kube_lease__next_record),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
