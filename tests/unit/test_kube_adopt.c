/* Tests of what the kubernetes runtime takes for the ownerReferences of coreos etcd-operator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/runtime/kube_runtime.h"

static json_t *owned_by(const char *refs_json) {
        json_error_t e;
        json_t *refs = json_loads(refs_json, 0, &e);
        assert_non_null(refs);
        json_t *obj = json_pack("{s:{s:s, s:o}}", "metadata", "name", "old-x1", "ownerReferences", refs);
        assert_non_null(obj);
        return obj;
}

static void test_kube_adopt__which_references_are_upstreams(void **state) {
        static const struct {
                const char *refs;
                bool upstream;
        } cases[] = {
                {"[{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\", \"name\": \"old\"}]",
                 true},
                /* any version of the group: the garbage collector follows the uid, not the version */
                {"[{\"apiVersion\": \"etcd.database.coreos.com/v1\", \"kind\": \"EtcdCluster\"}]", true},
                /* among others */
                {"[{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\"}, {\"apiVersion\": "
                 "\"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\"}]",
                 true},
                {"[{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdBackup\"}]", false},
                {"[{\"apiVersion\": \"etcd.database.coreos.com.example/v1\", \"kind\": \"EtcdCluster\"}]", false},
                {"[{\"apiVersion\": \"etcd.database.coreos.com\", \"kind\": \"EtcdCluster\"}]", false},
                {"[{\"apiVersion\": \"example.com/v1\", \"kind\": \"EtcdCluster\"}]", false},
                {"[{\"kind\": \"EtcdCluster\"}]", false},
                {"[]", false},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                json_t *obj = owned_by(cases[i].refs);
                if (kube_upstream_owned(obj) != cases[i].upstream)
                        fail_msg("case %zu (%s): expected %d", i, cases[i].refs, cases[i].upstream);
                json_decref(obj);
        }
        json_t *bare = json_pack("{s:{s:s}}", "metadata", "name", "x");
        assert_false(kube_upstream_owned(bare));
        json_decref(bare);
}

static void test_kube_adopt__noted_and_described(void **state) {
        json_t *list = json_array();
        json_t *mine = owned_by("[{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\"}]");
        json_t *other = owned_by("[{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\"}]");
        assert_null(kube_describe_owned(list));
        assert_int_equal(kube_note_upstream_owned(list, "pod", other), 0);
        assert_int_equal(json_array_size(list), 0);
        /* nowhere to note: nothing to do */
        assert_int_equal(kube_note_upstream_owned(NULL, "pod", mine), 0);
        assert_int_equal(kube_note_upstream_owned(list, "service", mine), 0);
        char *s = kube_describe_owned(list);
        assert_string_equal(s, "service/old-x1");
        free(s);

        /* a long list names the first twelve and counts the rest */
        for (int i = 1; i < 15; i++)
                assert_int_equal(kube_note_upstream_owned(list, "pod", mine), 0);
        s = kube_describe_owned(list);
        assert_non_null(s);
        assert_non_null(strstr(s, "service/old-x1, pod/old-x1, "));
        assert_non_null(strstr(s, "pod/old-x1 and 3 more"));
        size_t named = 0;
        for (const char *p = s; (p = strstr(p, "/old-x1")); p++)
                named++;
        assert_int_equal(named, 12);
        free(s);
        json_decref(mine);
        json_decref(other);
        json_decref(list);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_kube_adopt__which_references_are_upstreams),
                cmocka_unit_test(test_kube_adopt__noted_and_described),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
