/* Unit tests for the pod reader of the kubernetes runtime: where a pod is in its life, read
 * from the status a kubelet reports (as the node stand-in and real kubelets word it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/runtime/kube_objects.h"

#define CREATED "2026-01-02T03:04:05Z"
#define CREATED_MS 1767323045000LL

struct life {
        enum eg_member_life life;
        char *reason;
        int64_t since;
};

static struct life life_of(const char *status_json, const char *extra_meta) {
        char *doc = NULL;
        int n = asprintf(&doc,
                         "{\"metadata\": {\"name\": \"kt-0\", \"creationTimestamp\": \"" CREATED "\"%s},"
                         " \"spec\": {\"restartPolicy\": \"Never\", \"volumes\": [{\"name\": \"etcd-data\", "
                         "\"emptyDir\": {}}]},"
                         " \"status\": %s}",
                         extra_meta ? extra_meta : "", status_json);
        assert_true(n > 0);
        json_error_t je;
        json_t *pod = json_loads(doc, 0, &je);
        free(doc);
        assert_non_null(pod);
        struct life l = {0};
        assert_int_equal(kube_pod_life(pod, &l.life, &l.reason, &l.since), 0);
        json_decref(pod);
        return l;
}

static void test_kube_objects__pending_unscheduled_is_starting(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Pending\"}", NULL);
        assert_int_equal(l.life, EG_LIFE_STARTING);
        assert_string_equal(l.reason, "Pending: not scheduled yet");
        assert_int_equal(l.since, CREATED_MS);
        free(l.reason);
}

static void test_kube_objects__pulling_and_initialising_are_starting(void **state) {
        (void)state;
        struct life l = life_of(
                "{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\", \"status\": \"True\"}],"
                " \"initContainerStatuses\": [{\"name\": \"check-dns\", \"state\": {\"waiting\": {\"reason\": "
                "\"PodInitializing\"}}}],"
                " \"containerStatuses\": [{\"name\": \"etcd\", \"state\": {\"waiting\": {\"reason\": "
                "\"PodInitializing\"}}}]}",
                NULL);
        assert_int_equal(l.life, EG_LIFE_STARTING);
        assert_string_equal(l.reason, "PodInitializing: init container check-dns");
        assert_int_equal(l.since, CREATED_MS);
        free(l.reason);
}

static void test_kube_objects__unschedulable_is_starting(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\", \"status\": "
                                "\"False\", \"reason\": \"Unschedulable\", \"message\": \"0/3 nodes are available\"}]}",
                                NULL);
        assert_int_equal(l.life, EG_LIFE_STARTING);
        assert_string_equal(l.reason, "Unschedulable: 0/3 nodes are available");
        assert_int_equal(l.since, CREATED_MS);
        free(l.reason);
}

/* An image changed in place restarts etcd in the same, maybe old, pod: its start (or its
 * failure to pull the new image) is timed from the end of the previous run. */
static void test_kube_objects__restart_in_place_timed_from_last_run(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Running\", \"conditions\": [{\"type\": \"PodScheduled\", \"status\": "
                                "\"True\"}], "
                                "\"containerStatuses\": [{\"name\": \"etcd\", \"restartCount\": 1, "
                                "\"state\": {\"waiting\": {\"reason\": \"ContainerCreating\"}}, \"lastState\": "
                                "{\"terminated\": {\"exitCode\": 0, \"finishedAt\": \"2026-01-02T04:04:05Z\"}}}]}",
                                NULL);
        assert_int_equal(l.life, EG_LIFE_STARTING);
        assert_string_equal(l.reason, "ContainerCreating: container etcd");
        assert_int_equal(l.since, CREATED_MS + 3600000);
        free(l.reason);
        l = life_of("{\"phase\": \"Running\", \"conditions\": [{\"type\": \"PodScheduled\", \"status\": \"True\"}], "
                    "\"containerStatuses\": [{\"name\": \"etcd\", \"restartCount\": 1, "
                    "\"state\": {\"waiting\": {\"reason\": \"ErrImagePull\", \"message\": \"not found\"}}, "
                    "\"lastState\": {\"terminated\": {\"exitCode\": 0, \"finishedAt\": \"2026-01-02T04:04:05Z\"}}}]}",
                    NULL);
        assert_int_equal(l.life, EG_LIFE_FAILING);
        assert_string_equal(l.reason, "ErrImagePull: not found");
        assert_int_equal(l.since, CREATED_MS + 3600000);
        free(l.reason);
}

static void test_kube_objects__image_pull_errors_are_failing(void **state) {
        (void)state;
        const char *reasons[] = {"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff"};
        for (size_t i = 0; i < 3; i++) {
                char *st = NULL;
                assert_true(asprintf(&st,
                                     "{\"phase\": \"Pending\", \"conditions\": [{\"type\": \"PodScheduled\", "
                                     "\"status\": \"True\"}], \"containerStatuses\": [{\"name\": \"etcd\", \"state\": "
                                     "{\"waiting\": {\"reason\": \"%s\", \"message\": \"why\"}}}]}",
                                     reasons[i]) > 0);
                struct life l = life_of(st, NULL);
                free(st);
                assert_int_equal(l.life, EG_LIFE_FAILING);
                char want[64];
                snprintf(want, sizeof(want), "%s: why", reasons[i]);
                assert_string_equal(l.reason, want);
                free(l.reason);
        }
}

static void test_kube_objects__running_not_ready_is_running(void **state) {
        (void)state;
        struct life l = life_of(
                "{\"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", \"status\": "
                "\"False\"}], \"containerStatuses\": [{\"name\": \"etcd\", \"ready\": false, \"state\": "
                "{\"running\": {\"startedAt\": \"2026-01-02T03:04:09Z\"}}}]}",
                NULL);
        assert_int_equal(l.life, EG_LIFE_RUNNING);
        assert_null(l.reason);
        assert_int_equal(l.since, CREATED_MS + 4000);
}

static void test_kube_objects__failed_is_gone_with_exit_code(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"etcd\", \"state\": "
                                "{\"terminated\": {\"exitCode\": 137, \"reason\": \"Error\", \"finishedAt\": "
                                "\"2026-01-02T03:05:05Z\"}}}]}",
                                NULL);
        assert_int_equal(l.life, EG_LIFE_GONE);
        assert_string_equal(l.reason, "Error: etcd exited with code 137");
        assert_int_equal(l.since, CREATED_MS + 60000);
        free(l.reason);
}

static void test_kube_objects__exited_before_failed_is_gone(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Running\", \"containerStatuses\": [{\"name\": \"etcd\", \"state\": "
                                "{\"terminated\": {\"exitCode\": 2, \"reason\": \"Error\"}}}]}",
                                NULL);
        assert_int_equal(l.life, EG_LIFE_GONE);
        assert_string_equal(l.reason, "Error: etcd exited with code 2");
        free(l.reason);
}

static void test_kube_objects__lost_node_and_deleted_are_gone(void **state) {
        (void)state;
        struct life l = life_of("{\"phase\": \"Unknown\", \"reason\": \"NodeLost\", \"message\": \"node-1 is "
                                "unresponsive\"}",
                                NULL);
        assert_int_equal(l.life, EG_LIFE_GONE);
        assert_string_equal(l.reason, "NodeLost: node-1 is unresponsive");
        free(l.reason);

        l = life_of("{\"phase\": \"Running\", \"containerStatuses\": [{\"name\": \"etcd\", \"state\": {\"running\": "
                    "{}}}]}",
                    ", \"deletionTimestamp\": \"2026-01-02T03:06:05Z\"");
        assert_int_equal(l.life, EG_LIFE_GONE);
        assert_string_equal(l.reason, "Terminating since 2026-01-02T03:06:05Z");
        assert_int_equal(l.since, CREATED_MS + 120000);
        free(l.reason);
}

static json_t *pod_of(const char *status_json, const char *extra_meta) {
        char *doc = NULL;
        int n = asprintf(&doc,
                         "{\"metadata\": {\"name\": \"kt-0\", \"creationTimestamp\": \"" CREATED "\"%s}, "
                         "\"status\": %s}",
                         extra_meta, status_json);
        assert_true(n > 0);
        json_t *pod = json_loads(doc, 0, NULL);
        free(doc);
        assert_non_null(pod);
        return pod;
}

/* A pod whose deletion is long overdue: no kubelet completes it. Said so, with the node lost
 * when the node lifecycle controller marked the pod. */
static void test_kube_objects__stuck_terminating(void **state) {
        (void)state;
        const int64_t due = CREATED_MS + 120000;
        char *why = (char *)"unset";
        json_t *pod = pod_of("{\"phase\": \"Unknown\", \"reason\": \"NodeLost\", \"message\": \"node-1 is "
                             "unresponsive\"}",
                             ", \"deletionTimestamp\": \"2026-01-02T03:06:05Z\"");
        /* within the slack a live kubelet is still at it */
        assert_int_equal(kube_pod_stuck_terminating(pod, due + 5000, &why), 0);
        assert_null(why);
        assert_int_equal(kube_pod_stuck_terminating(pod, due + 60000, &why), 0);
        assert_string_equal(why, "node lost, pod stuck terminating: NodeLost: node-1 is unresponsive; Terminating "
                                 "since 2026-01-02T03:06:05Z");
        free(why);
        json_decref(pod);

        pod = pod_of("{\"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", \"status\": \"False\"}]}",
                     ", \"deletionTimestamp\": \"2026-01-02T03:06:05Z\"");
        assert_int_equal(kube_pod_stuck_terminating(pod, due + 60000, &why), 0);
        assert_string_equal(why, "pod stuck terminating: Terminating since 2026-01-02T03:06:05Z");
        free(why);
        json_decref(pod);

        /* marked by the node lifecycle controller as it is today: Ready False, NodeNotReady */
        pod = pod_of("{\"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", \"status\": \"False\", "
                     "\"reason\": \"NodeNotReady\"}]}",
                     ", \"deletionTimestamp\": \"2026-01-02T03:06:05Z\"");
        assert_int_equal(kube_pod_stuck_terminating(pod, due + 60000, &why), 0);
        assert_string_equal(why, "node lost, pod stuck terminating: Terminating since 2026-01-02T03:06:05Z");
        free(why);
        json_decref(pod);

        pod = pod_of("{\"phase\": \"Unknown\"}", "");
        assert_int_equal(kube_pod_stuck_terminating(pod, due + 60000, &why), 0);
        assert_null(why);
        json_decref(pod);
}

static void test_kube_objects__claim(void **state) {
        (void)state;
        json_t *pod = json_loads("{\"spec\": {\"volumes\": [{\"name\": \"etcd-data\", \"persistentVolumeClaim\": "
                                 "{\"claimName\": \"kt-0\"}}]}}",
                                 0, NULL);
        assert_true(kube_pod_on_claim(pod));
        json_decref(pod);
        pod = json_loads("{\"spec\": {\"volumes\": [{\"name\": \"etcd-data\", \"emptyDir\": {}}]}}", 0, NULL);
        assert_false(kube_pod_on_claim(pod));
        json_decref(pod);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kube_objects__pending_unscheduled_is_starting),
                cmocka_unit_test(test_kube_objects__pulling_and_initialising_are_starting),
                cmocka_unit_test(test_kube_objects__unschedulable_is_starting),
                cmocka_unit_test(test_kube_objects__restart_in_place_timed_from_last_run),
                cmocka_unit_test(test_kube_objects__image_pull_errors_are_failing),
                cmocka_unit_test(test_kube_objects__running_not_ready_is_running),
                cmocka_unit_test(test_kube_objects__failed_is_gone_with_exit_code),
                cmocka_unit_test(test_kube_objects__exited_before_failed_is_gone),
                cmocka_unit_test(test_kube_objects__lost_node_and_deleted_are_gone),
                cmocka_unit_test(test_kube_objects__stuck_terminating),
                cmocka_unit_test(test_kube_objects__claim),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
