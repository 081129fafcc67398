/* Unit tests for the spec module: typing, rules, positions, limits, loading. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

#define HEADER "apiVersion: etcd.database.coreos.com/v1beta2\n"

static struct eg_desired_set *parse_opt(const char *yaml, size_t len, bool strict) {
        struct eg_desired_set *set;
        assert_int_equal(eg_desired_set_new(&set), 0);
        struct eg_origin origin = {.path = "t.yaml"};
        struct eg_spec_options opt = {.strict = strict};
        assert_int_equal(eg_spec_parse_buffer(set, &origin, yaml, len, &opt), 0);
        assert_int_equal(eg_desired_set_finish(set), 0);
        return set;
}

static struct eg_desired_set *parse(const char *yaml) { return parse_opt(yaml, strlen(yaml), false); }

/* The set holds exactly one diagnostic, and it is this one. */
static void assert_one_diag(const struct eg_desired_set *set, enum eg_severity sev, unsigned line, unsigned column,
                            const char *field, const char *message) {
        if (set->n_diags != 1) {
                for (size_t i = 0; i < set->n_diags; i++) {
                        char *s = eg_diag_format(&set->diags[i]);
                        print_error("diag: %s\n", s);
                        free(s);
                }
        }
        assert_int_equal(set->n_diags, 1);
        const struct eg_diag *d = &set->diags[0];
        assert_int_equal(d->severity, sev);
        assert_int_equal(d->line, line);
        assert_int_equal(d->column, column);
        if (field)
                assert_string_equal(d->field, field);
        else
                assert_null(d->field);
        if (message)
                assert_string_equal(d->message, message);
        assert_int_equal(set->n_errors, sev == EG_SEVERITY_ERROR ? 1 : 0);
}

static void assert_error(const char *yaml, unsigned line, unsigned column, const char *field, const char *message) {
        struct eg_desired_set *set = parse(yaml);
        assert_one_diag(set, EG_SEVERITY_ERROR, line, column, field, message);
        assert_int_equal(set->n_objects, 0);
        assert_int_equal(set->n_invalid, 1);
        eg_desired_set_free(set);
}

static struct eg_desired_set *assert_valid(const char *yaml) {
        struct eg_desired_set *set = parse(yaml);
        for (size_t i = 0; i < set->n_diags; i++) {
                char *s = eg_diag_format(&set->diags[i]);
                print_error("unexpected: %s\n", s);
                free(s);
        }
        assert_int_equal(set->n_diags, 0);
        assert_int_equal(set->n_objects, 1);
        return set;
}

#define CLUSTER(spec) HEADER "kind: EtcdCluster\nmetadata:\n  name: c\nspec:\n" spec
#define BACKUP(spec) HEADER "kind: EtcdBackup\nmetadata:\n  name: b\nspec:\n" spec
#define RESTORE(spec) HEADER "kind: EtcdRestore\nmetadata:\n  name: r\nspec:\n" spec

/* ---- the upstream example and defaults ---- */

static void test_spec__upstream_example(void **state) {
        struct eg_desired_set *set = assert_valid("apiVersion: \"etcd.database.coreos.com/v1beta2\"\n"
                                                  "kind: \"EtcdCluster\"\n"
                                                  "metadata:\n"
                                                  "  name: \"example-etcd-cluster\"\n"
                                                  "spec:\n"
                                                  "  size: 3\n"
                                                  "  version: \"3.2.13\"\n");
        const struct eg_object *o = set->objects[0];
        assert_int_equal(o->kind, EG_KIND_CLUSTER);
        assert_string_equal(o->meta.name, "example-etcd-cluster");
        assert_string_equal(o->meta.namespace, "default");
        assert_int_equal(o->cluster.size, 3);
        assert_string_equal(o->cluster.version, "3.2.13");
        assert_string_equal(o->cluster.repository, "quay.io/coreos/etcd");
        assert_false(o->cluster.paused);
        assert_null(o->cluster.pod);
        assert_null(o->cluster.tls);
        assert_string_equal(o->origin.path, "t.yaml");
        assert_int_equal(o->origin.line, 1);
        assert_int_equal(o->origin.column, 1);
        assert_string_equal(json_string_value(json_object_get(o->document, "kind")), "EtcdCluster");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(o->document, "spec"), "size")), 3);
        assert_ptr_equal(eg_desired_set_find(set, EG_KIND_CLUSTER, "default", "example-etcd-cluster"), o);
        assert_null(eg_desired_set_find(set, EG_KIND_BACKUP, "default", "example-etcd-cluster"));
        assert_false(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "default", "example-etcd-cluster"));
        assert_true(eg_str_has_prefix(set->revision, "sha256:"));
        assert_int_equal(strlen(set->revision), 7 + 64);
        eg_desired_set_free(set);
}

static void test_spec__defaults(void **state) {
        struct eg_desired_set *set = assert_valid(CLUSTER("  size: 1\n  pod: {}\n"));
        const struct eg_object *o = set->objects[0];
        assert_string_equal(o->cluster.version, "3.2.13");
        assert_string_equal(o->cluster.repository, "quay.io/coreos/etcd");
        assert_string_equal(o->meta.namespace, "default");
        assert_non_null(o->cluster.pod);
        assert_string_equal(o->cluster.pod->busybox_image, "busybox:1.28.0-glibc");
        assert_string_equal(o->cluster.pod->cluster_domain, "");
        assert_int_equal(o->cluster.pod->dns_timeout_in_second, 0);
        eg_desired_set_free(set);

        set = assert_valid(BACKUP("  storageType: S3\n  s3: {path: bucket/key}\n  etcdCluster: {name: c}\n"));
        o = set->objects[0];
        assert_int_equal(o->backup.timeout_in_second, 60);
        assert_int_equal(o->backup.backup_interval_in_second, 0);
        assert_int_equal(o->backup.max_backups, 0);
        assert_int_equal(o->backup.n_etcd_endpoints, 0);
        assert_null(o->backup.etcd_endpoints[0]);
        assert_string_equal(o->backup.etcd_cluster_name, "c");
        assert_string_equal(o->backup.s3.path, "bucket/key");
        eg_desired_set_free(set);
}

static void test_spec__all_fields(void **state) {
        struct eg_desired_set *set = assert_valid(CLUSTER("  size: 5\n"
                                                          "  version: v3.4.23\n"
                                                          "  repository: gcr.io/etcd\n"
                                                          "  paused: true\n"
                                                          "  pod:\n"
                                                          "    labels: {tier: db}\n"
                                                          "    nodeSelector: {disk: ssd}\n"
                                                          "    affinity: {podAntiAffinity: {}}\n"
                                                          "    antiAffinity: false\n"
                                                          "    resources: {limits: {cpu: \"1\"}}\n"
                                                          "    tolerations: [{key: k, operator: Exists}]\n"
                                                          "    etcdEnv: [{name: ETCD_QUOTA, value: \"1\"}]\n"
                                                          "    persistentVolumeClaimSpec: {storageClassName: x}\n"
                                                          "    annotations: {a.b/c: anything at all}\n"
                                                          "    busyboxImage: busybox:1.30\n"
                                                          "    securityContext: {runAsUser: 1000}\n"
                                                          "    DNSTimeoutInSecond: 30\n"
                                                          "    ClusterDomain: .cluster.local\n"
                                                          "  TLS:\n"
                                                          "    static:\n"
                                                          "      member: {peerSecret: p, serverSecret: s}\n"
                                                          "      operatorSecret: o\n"));
        const struct eg_cluster_spec *c = &set->objects[0]->cluster;
        assert_int_equal(c->size, 5);
        assert_string_equal(c->version, "3.4.23");
        assert_string_equal(c->repository, "gcr.io/etcd");
        assert_true(c->paused);
        assert_string_equal(json_string_value(json_object_get(c->pod->labels, "tier")), "db");
        assert_string_equal(json_string_value(json_object_get(c->pod->node_selector, "disk")), "ssd");
        assert_true(json_is_object(json_object_get(c->pod->affinity, "podAntiAffinity")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(c->pod->resources, "limits"), "cpu")),
                            "1");
        assert_int_equal(json_array_size(c->pod->tolerations), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(c->pod->etcd_env, 0), "name")),
                            "ETCD_QUOTA");
        assert_string_equal(
                json_string_value(json_object_get(c->pod->persistent_volume_claim_spec, "storageClassName")), "x");
        assert_string_equal(json_string_value(json_object_get(c->pod->annotations, "a.b/c")), "anything at all");
        assert_string_equal(c->pod->busybox_image, "busybox:1.30");
        assert_int_equal(json_integer_value(json_object_get(c->pod->security_context, "runAsUser")), 1000);
        assert_int_equal(c->pod->dns_timeout_in_second, 30);
        assert_string_equal(c->pod->cluster_domain, ".cluster.local");
        assert_string_equal(c->tls->peer_secret, "p");
        assert_string_equal(c->tls->server_secret, "s");
        assert_string_equal(c->tls->operator_secret, "o");
        eg_desired_set_free(set);
}

/* ---- cluster rules ---- */

static void test_spec__size(void **state) {
        const char *yaml = HEADER "kind: EtcdCluster\n"
                                  "metadata:\n"
                                  "  name: a\n"
                                  "  namespace: prod\n"
                                  "spec:\n"
                                  "  size: \"three\"\n";
        struct eg_desired_set *set = parse(yaml);
        assert_one_diag(set, EG_SEVERITY_ERROR, 7, 9, "spec.size", "must be an integer ≥ 1, got \"three\"");
        char *s = eg_diag_format(&set->diags[0]);
        assert_string_equal(s, "t.yaml:7:9: spec.size: must be an integer ≥ 1, got \"three\"");
        free(s);
        assert_true(set->diags[0].has_object);
        assert_int_equal(set->diags[0].kind, EG_KIND_CLUSTER);
        assert_string_equal(set->diags[0].namespace, "prod");
        assert_string_equal(set->diags[0].name, "a");
        assert_true(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "prod", "a"));
        assert_false(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "default", "a"));
        eg_desired_set_free(set);

        assert_error(CLUSTER("  size: 0\n"), 6, 9, "spec.size", "must be an integer ≥ 1, got 0");
        assert_error(CLUSTER("  size: -2\n"), 6, 9, "spec.size", "must be an integer ≥ 1, got -2");
        assert_error(CLUSTER("  version: 3.2.13\n"), 6, 3, "spec.size", "required (the number of members, ≥ 1)");
        assert_error(CLUSTER("  size: 2.5\n"), 6, 9, "spec.size", "must be an integer ≥ 1, got 2.5");
        /* a quoted number is a string */
        assert_error(CLUSTER("  size: \"3\"\n"), 6, 9, "spec.size", "must be an integer ≥ 1, got \"3\"");
        /* an explicit tag makes it an integer again */
        set = assert_valid(CLUSTER("  size: !!int \"3\"\n"));
        assert_int_equal(set->objects[0]->cluster.size, 3);
        eg_desired_set_free(set);
        set = assert_valid(CLUSTER("  size: 0x7\n"));
        assert_int_equal(set->objects[0]->cluster.size, 7);
        eg_desired_set_free(set);

        set = parse(CLUSTER("  size: 9\n"));
        assert_one_diag(set, EG_SEVERITY_WARNING, 6, 9, "spec.size",
                        "9 members is more than the recommended maximum of 7");
        assert_int_equal(set->n_objects, 1);
        eg_desired_set_free(set);
}

static void test_spec__version(void **state) {
        struct eg_desired_set *set = assert_valid(CLUSTER("  size: 1\n  version: v3.5.0-rc.1+build.7\n"));
        assert_string_equal(set->objects[0]->cluster.version, "3.5.0-rc.1+build.7");
        eg_desired_set_free(set);
        assert_error(CLUSTER("  size: 1\n  version: \"3.4\"\n"), 7, 12, "spec.version",
                     "must be a semantic version such as \"3.4.23\", got \"3.4\"");
        assert_error(CLUSTER("  size: 1\n  version: 3.4\n"), 7, 12, "spec.version",
                     "must be a version string such as \"3.4.23\", got 3.4 (quote it to make it a string)");
        assert_error(CLUSTER("  size: 1\n  version: 03.4.1\n"), 7, 12, "spec.version",
                     "must be a semantic version such as \"3.4.23\", got \"03.4.1\"");
}

static void test_spec__scalar_typing(void **state) {
        /* YAML 1.2: only true/false are booleans */
        assert_error(CLUSTER("  size: 1\n  paused: yes\n"), 7, 11, "spec.paused",
                     "must be a boolean (true or false), got \"yes\"");
        assert_error(CLUSTER("  size: 1\n  paused: \"true\"\n"), 7, 11, "spec.paused",
                     "must be a boolean (true or false), got \"true\"");
        struct eg_desired_set *set = assert_valid(CLUSTER("  size: 1\n  paused: True\n"));
        assert_true(set->objects[0]->cluster.paused);
        eg_desired_set_free(set);
        /* null and ~ mean absent */
        set = assert_valid(CLUSTER("  size: 1\n  version: ~\n  pod: null\n  repository:\n"));
        assert_string_equal(set->objects[0]->cluster.version, "3.2.13");
        assert_string_equal(set->objects[0]->cluster.repository, "quay.io/coreos/etcd");
        assert_null(set->objects[0]->cluster.pod);
        eg_desired_set_free(set);
        /* a quoted null is a string */
        assert_error(CLUSTER("  size: 1\n  version: \"null\"\n"), 7, 12, "spec.version",
                     "must be a semantic version such as \"3.4.23\", got \"null\"");
        assert_error(CLUSTER("  size: 1\n  repository: !custom x\n"), 7, 15, NULL, "unsupported tag '!custom'");
}

static void test_spec__names(void **state) {
        char long_name[64];
        memset(long_name, 'a', 52);
        long_name[52] = 0;
        char *yaml = eg_strdup_printf(HEADER "kind: EtcdCluster\nmetadata:\n  name: %s\nspec:\n  size: 1\n", long_name);
        struct eg_desired_set *set = assert_valid(yaml);
        eg_desired_set_free(set);
        free(yaml);
        long_name[52] = 'b';
        long_name[53] = 0;
        yaml = eg_strdup_printf(HEADER "kind: EtcdCluster\nmetadata:\n  name: %s\nspec:\n  size: 1\n", long_name);
        assert_error(yaml, 4, 9, "metadata.name", "must be at most 52 characters, got 53");
        free(yaml);
        const char *bad_label =
                "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)";
        char *msg = eg_strdup_printf("must be %s, got \"Upper\"", bad_label);
        assert_error(HEADER "kind: EtcdCluster\nmetadata:\n  name: Upper\nspec:\n  size: 1\n", 4, 9, "metadata.name",
                     msg);
        free(msg);
        msg = eg_strdup_printf("must be %s, got \"-a\"", bad_label);
        assert_error(HEADER "kind: EtcdCluster\nmetadata:\n  name: \"-a\"\nspec:\n  size: 1\n", 4, 9, "metadata.name",
                     msg);
        free(msg);
        msg = eg_strdup_printf("must be %s, got \"a_b\"", bad_label);
        assert_error(HEADER "kind: EtcdCluster\nmetadata:\n  name: a\n  namespace: a_b\nspec:\n  size: 1\n", 5, 14,
                     "metadata.namespace", msg);
        free(msg);
        assert_error(HEADER "kind: EtcdCluster\nmetadata:\n  labels: {}\nspec:\n  size: 1\n", 4, 3, "metadata.name",
                     "required");
        assert_error(HEADER "kind: EtcdCluster\nmetadata:\n  name: a\n  generateName: a-\nspec:\n  size: 1\n", 5, 17,
                     "metadata.generateName", "not supported: objects need a stable metadata.name");
        set = assert_valid(HEADER
                           "kind: EtcdCluster\nmetadata:\n  name: a\n  namespace: team-1\n  uid: x\n"
                           "  labels: {app.kubernetes.io/name: etcd}\nspec:\n  size: 1\nstatus: {phase: Running}\n");
        assert_string_equal(set->objects[0]->meta.namespace, "team-1");
        assert_string_equal(json_string_value(json_object_get(set->objects[0]->meta.labels, "app.kubernetes.io/name")),
                            "etcd");
        eg_desired_set_free(set);
}

static void test_spec__pod_reserved(void **state) {
        assert_error(CLUSTER("  size: 1\n  pod:\n    labels:\n      app: x\n"), 9, 7, "spec.pod.labels.app",
                     "label \"app\" is reserved: etcd-gitops sets \"app\" and \"etcd_*\" labels itself");
        assert_error(CLUSTER("  size: 1\n  pod:\n    labels:\n      etcd_node: x\n"), 9, 7, "spec.pod.labels.etcd_node",
                     "label \"etcd_node\" is reserved: etcd-gitops sets \"app\" and \"etcd_*\" labels itself");
        assert_error(CLUSTER("  size: 1\n  pod:\n    annotations:\n      etcd.version: x\n"), 9, 7,
                     "spec.pod.annotations[\"etcd.version\"]",
                     "annotation \"etcd.version\" is reserved: etcd-gitops sets it itself");
        assert_error(CLUSTER("  size: 1\n  pod:\n    labels:\n      tier: 3\n"), 9, 13, "spec.pod.labels.tier",
                     "must be a string, got 3 (quote it to make it a string)");
        /* the same keys are fine on the object's own metadata */
        struct eg_desired_set *set = assert_valid(HEADER "kind: EtcdCluster\nmetadata:\n  name: a\n  labels: {app: x}\n"
                                                         "spec:\n  size: 1\n");
        eg_desired_set_free(set);
        assert_error(CLUSTER("  size: 1\n  pod:\n    DNSTimeoutInSecond: -1\n"), 8, 25, "spec.pod.DNSTimeoutInSecond",
                     "must be an integer ≥ 0, got -1");
        assert_error(CLUSTER("  size: 1\n  pod:\n    ClusterDomain: cluster.local\n"), 8, 20, "spec.pod.ClusterDomain",
                     "must be empty or a domain starting with '.', such as \".cluster.local\", got \"cluster.local\"");
        assert_error(CLUSTER("  size: 1\n  pod:\n    etcdEnv: [{value: x}]\n"), 8, 15, "spec.pod.etcdEnv[0].name",
                     "required");
        assert_error(CLUSTER("  size: 1\n  pod:\n    tolerations: {key: x}\n"), 8, 18, "spec.pod.tolerations",
                     "must be a sequence, got a mapping");
        struct eg_desired_set *w = parse(CLUSTER("  size: 1\n  pod:\n    affinity: {}\n    antiAffinity: true\n"));
        assert_one_diag(w, EG_SEVERITY_WARNING, 9, 19, "spec.pod.antiAffinity", "ignored because affinity is set");
        eg_desired_set_free(w);
}

static void test_spec__tls(void **state) {
        assert_error(CLUSTER("  size: 1\n  TLS:\n    static:\n      operatorSecret: op\n"), 9, 7,
                     "spec.TLS.static.member.serverSecret",
                     "required when operatorSecret is set (client TLS needs both)");
        assert_error(CLUSTER("  size: 1\n  TLS:\n    static:\n      member:\n        serverSecret: s\n"), 9, 7,
                     "spec.TLS.static.operatorSecret",
                     "required when member.serverSecret is set (client TLS needs both)");
        struct eg_desired_set *set = assert_valid(CLUSTER("  size: 1\n  TLS:\n    static:\n      member:\n"
                                                          "        peerSecret: peer\n"));
        assert_string_equal(set->objects[0]->cluster.tls->peer_secret, "peer");
        assert_null(set->objects[0]->cluster.tls->server_secret);
        eg_desired_set_free(set);
        assert_error(CLUSTER("  size: 1\n  TLS:\n    static:\n      member:\n        peerSecret: Bad_Name\n"), 10, 21,
                     "spec.TLS.static.member.peerSecret",
                     "must be a Secret name (lowercase letters, digits, '-' and '.', at most 253), got \"Bad_Name\"");
}

/* ---- generic rules ---- */

static void test_spec__duplicate_key(void **state) {
        assert_error(CLUSTER("  size: 1\n  version: 3.4.1\n  size: 2\n"), 8, 3, "spec.size",
                     "duplicate key (first at 6:3)");
}

static void test_spec__unknown_field(void **state) {
        const char *yaml = CLUSTER("  size: 1\n  sise: 3\n");
        struct eg_desired_set *set = parse(yaml);
        assert_one_diag(set, EG_SEVERITY_WARNING, 7, 3, "spec.sise", "unknown field");
        assert_int_equal(set->n_objects, 1);
        eg_desired_set_free(set);
        set = parse_opt(yaml, strlen(yaml), true);
        assert_one_diag(set, EG_SEVERITY_ERROR, 7, 3, "spec.sise", "unknown field");
        assert_int_equal(set->n_objects, 0);
        eg_desired_set_free(set);
        set = parse(CLUSTER("  size: 1\n  tls: {}\n"));
        assert_one_diag(set, EG_SEVERITY_WARNING, 7, 3, "spec.tls", "unknown field (did you mean \"TLS\"?)");
        eg_desired_set_free(set);
}

static void test_spec__int_overflow(void **state) {
        assert_error(CLUSTER("  size: 9223372036854775808\n"), 6, 9, "spec.size",
                     "integer 9223372036854775808 is out of range (64-bit signed)");
        assert_error(CLUSTER("  size: 1\n  pod:\n    resources: {x: -99999999999999999999}\n"), 8, 20,
                     "spec.pod.resources.x", "integer -99999999999999999999 is out of range (64-bit signed)");
        assert_error(CLUSTER("  size: .inf\n"), 6, 9, "spec.size", ".inf cannot be represented (not a finite number)");
        struct eg_desired_set *set = assert_valid(
                CLUSTER("  size: 1\n  pod:\n    resources: {x: 9223372036854775807}\n"));
        assert_int_equal(json_integer_value(json_object_get(set->objects[0]->cluster.pod->resources, "x")), INT64_MAX);
        eg_desired_set_free(set);
}

static void test_spec__header(void **state) {
        assert_error("apiVersion: v1\nkind: EtcdCluster\nmetadata: {name: a}\nspec: {size: 1}\n", 1, 13, "apiVersion",
                     "must be \"etcd.database.coreos.com/v1beta2\", got \"v1\"");
        assert_error("kind: EtcdCluster\nmetadata: {name: a}\nspec: {size: 1}\n", 1, 1, "apiVersion",
                     "required (etcd.database.coreos.com/v1beta2)");
        assert_error(HEADER "kind: Deployment\nmetadata: {name: a}\n", 2, 7, "kind",
                     "must be EtcdCluster, EtcdBackup or EtcdRestore, got \"Deployment\"");
        assert_error(HEADER "metadata: {name: a}\n", 1, 1, "kind", "required (EtcdCluster, EtcdBackup or EtcdRestore)");
        assert_error(HEADER "kind: EtcdCluster\nmetadata: {name: a}\n", 1, 1, "spec", "required");
        assert_error("- a\n- b\n", 1, 1, NULL, "a manifest must be a mapping, got a sequence");
        struct eg_desired_set *set = parse("# only a comment\n---\n...\n");
        assert_int_equal(set->n_diags, 0);
        assert_int_equal(set->n_objects, 0);
        eg_desired_set_free(set);
        /* other API groups' objects share GitOps repositories: ignored, not errors */
        set = parse("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\nrules: []\n---\n"
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
        assert_int_equal(set->n_diags, 0);
        assert_int_equal(set->n_objects, 0);
        eg_desired_set_free(set);
        assert_error(
                "apiVersion: etcd.database.coreos.com/v1\nkind: EtcdCluster\nmetadata: {name: a}\nspec: {size: 1}\n", 1,
                13, "apiVersion", "must be \"etcd.database.coreos.com/v1beta2\", got \"etcd.database.coreos.com/v1\"");
        const char *broken = CLUSTER("  size: [1\n");
        set = parse(broken);
        assert_one_diag(set, EG_SEVERITY_ERROR, 7, 1, NULL,
                        "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at 6:9); "
                        "the rest of the file is not read");
        /* the object is named from what was read before the syntax error */
        assert_true(set->diags[0].has_object);
        assert_int_equal(set->diags[0].kind, EG_KIND_CLUSTER);
        assert_string_equal(set->diags[0].name, "c");
        assert_string_equal(set->diags[0].namespace, "default");
        assert_int_equal(set->n_invalid, 1);
        eg_desired_set_free(set);
}

/* ---- backups and restores ---- */

static void test_spec__backup(void **state) {
        struct eg_desired_set *set = assert_valid(
                BACKUP("  etcdEndpoints: [\"https://10.0.0.1:2379\", \"http://h:2379\"]\n"
                       "  storageType: File\n"
                       "  file: {path: /var/backups}\n"
                       "  backupPolicy: {timeoutInSecond: 5, maxBackups: 3}\n"
                       "  schedule: \"*/15 2-4,6 1 JAN-mar mon-FRI/2\"\n"
                       "  clientTLSSecret: client\n"));
        const struct eg_backup_spec *b = &set->objects[0]->backup;
        assert_int_equal(b->n_etcd_endpoints, 2);
        assert_string_equal(b->etcd_endpoints[1], "http://h:2379");
        assert_null(b->etcd_endpoints[2]);
        assert_int_equal(b->storage_type, EG_STORAGE_FILE);
        assert_string_equal(b->file.path, "/var/backups");
        assert_int_equal(b->timeout_in_second, 5);
        assert_int_equal(b->max_backups, 3);
        assert_string_equal(b->schedule, "*/15 2-4,6 1 JAN-mar mon-FRI/2");
        assert_string_equal(b->client_tls_secret, "client");
        eg_desired_set_free(set);

        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: NFS\n"), 7, 16, "spec.storageType",
                     "must be one of S3, ABS, GCS, OSS, File, got \"NFS\"");
        assert_error(BACKUP("  etcdCluster: {name: c}\n"), 6, 3, "spec.storageType",
                     "required (S3, ABS, GCS, OSS or File)");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: ~\n"), 6, 3, "spec.storageType",
                     "required (S3, ABS, GCS, OSS or File)");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: S3\n  s3: {path: bucket}\n"), 8, 14,
                     "spec.s3.path",
                     "must be \"<bucket>/<key>\" (a bucket name of 3-63 lowercase letters, digits, '.' and '-', then a "
                     "non-empty key), got \"bucket\"");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: S3\n"), 6, 3, "spec.s3",
                     "required (with path) for this storage type");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {}\n"), 8, 9, "spec.file.path",
                     "required");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: rel/dir}\n"), 8, 16,
                     "spec.file.path", "must be an absolute path, got \"rel/dir\"");
        assert_error(BACKUP("  storageType: File\n  file: {path: /b}\n"), 6, 3, "spec.etcdEndpoints",
                     "required (or etcdCluster.name)");
        assert_error(BACKUP("  storageType: File\n  file: {path: /b}\n  etcdEndpoints: [\"http://a:1\"]\n"
                            "  etcdCluster: {name: c}\n"),
                     9, 16, "spec.etcdCluster", "set either etcdEndpoints or etcdCluster, not both");
        assert_error(BACKUP("  storageType: File\n  file: {path: /b}\n  etcdEndpoints: [\"a:2379\"]\n"), 8, 19,
                     "spec.etcdEndpoints[0]", "must be an http:// or https:// URL, got \"a:2379\"");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n"
                            "  backupPolicy: {maxBackups: -1}\n"),
                     9, 30, "spec.backupPolicy.maxBackups", "must be an integer ≥ 0, got -1");
        assert_error(BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n"
                            "  backupPolicy: {backupIntervalInSecond: -5}\n"),
                     9, 42, "spec.backupPolicy.backupIntervalInSecond", "must be an integer ≥ 0, got -5");
        assert_error(
                BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  schedule: \"* * * *\"\n"),
                9, 13, "spec.schedule",
                "must be a cron schedule of 5 fields (minute hour day-of-month month day-of-week), got \"* * * *\"");
        assert_error(
                BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  schedule: \"60 * * * *\"\n"),
                9, 13, "spec.schedule", "invalid minute field \"60\" in cron schedule");
        assert_error(
                BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  schedule: \"0 0 * FOO *\"\n"),
                9, 13, "spec.schedule", "invalid month field \"FOO\" in cron schedule");
        assert_error(
                BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  schedule: \"0 0 * * *\"\n"
                       "  backupPolicy: {backupIntervalInSecond: 60}\n"),
                9, 13, "spec.schedule", "set either schedule or backupPolicy.backupIntervalInSecond, not both");
        set = parse(BACKUP("  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  s3: {path: a-b/c}\n"));
        assert_one_diag(set, EG_SEVERITY_WARNING, 9, 7, "spec.s3", "ignored because storageType is File");
        eg_desired_set_free(set);
        set = parse(BACKUP(
                "  etcdCluster: {name: c}\n  storageType: File\n  file: {path: /b}\n  backupPolicy: {maxBackups: 2}\n"));
        assert_one_diag(set, EG_SEVERITY_WARNING, 9, 30, "spec.backupPolicy.maxBackups",
                        "has no effect on a one-shot backup (no schedule or backupIntervalInSecond)");
        eg_desired_set_free(set);
        set = assert_valid(
                BACKUP("  etcdCluster: {name: c}\n  storageType: GCS\n  gcs: {path: my-bucket/k, gcpSecret: g}\n"));
        assert_int_equal(set->objects[0]->backup.storage_type, EG_STORAGE_GCS);
        eg_desired_set_free(set);
}

static void test_spec__restore(void **state) {
        struct eg_desired_set *set = assert_valid(RESTORE(
                "  etcdCluster: {name: c}\n  backupStorageType: S3\n"
                "  s3: {path: bkt/c.db, awsSecret: aws, endpoint: \"http://minio:9000\", forcePathStyle: true}\n"
                "  revision: 42\n  overwrite: true\n"));
        const struct eg_restore_spec *r = &set->objects[0]->restore;
        assert_string_equal(r->etcd_cluster_name, "c");
        assert_int_equal(r->backup_storage_type, EG_STORAGE_S3);
        assert_string_equal(r->s3.path, "bkt/c.db");
        assert_string_equal(r->s3.aws_secret, "aws");
        assert_string_equal(r->s3.endpoint, "http://minio:9000");
        assert_true(r->s3.force_path_style);
        assert_int_equal(r->revision, 42);
        assert_null(r->object);
        assert_true(r->overwrite);
        eg_desired_set_free(set);

        assert_error(RESTORE("  backupStorageType: File\n  file: {path: /b/x.db}\n"), 6, 3, "spec.etcdCluster",
                     "required (with name: the cluster to restore into)");
        /* null is absent, also for required fields */
        assert_error(RESTORE("  etcdCluster:\n  backupStorageType: File\n  file: {path: /b/x.db}\n"), 6, 3,
                     "spec.etcdCluster", "required (with name: the cluster to restore into)");
        assert_error(RESTORE("  etcdCluster: {name: ~}\n  backupStorageType: File\n  file: {path: /b/x.db}\n"), 6, 16,
                     "spec.etcdCluster.name", "required");
        assert_error(RESTORE("  etcdCluster: {name: c}\n  backupStorageType: S3\n  s3: {path: null}\n"), 8, 7,
                     "spec.s3.path", "required");
        assert_error(RESTORE("  etcdCluster: {}\n  backupStorageType: File\n  file: {path: /b/x.db}\n"), 6, 16,
                     "spec.etcdCluster.name", "required");
        assert_error(RESTORE("  etcdCluster: {name: c}\n  backupStorageType: GCS\n  gcs: {path: abc/d}\n"), 7, 22,
                     "spec.backupStorageType", "must be one of S3, File, got \"GCS\"");
        assert_error(
                RESTORE("  etcdCluster: {name: c}\n  backupStorageType: File\n  file: {path: /b}\n  revision: -1\n"), 9,
                13, "spec.revision", "must be an integer ≥ 0, got -1");
        assert_error(
                RESTORE("  etcdCluster: {name: c}\n  backupStorageType: File\n  file: {path: /b}\n  overwrite: 1\n"), 9,
                14, "spec.overwrite", "must be a boolean (true or false), got 1");
        assert_error(RESTORE("  etcdCluster: {name: c}\n  backupStorageType: File\n  file: {path: /b}\n  revision: 3\n"
                             "  object: x\n"),
                     10, 11, "spec.object", "set either object or revision, not both");
}

/* ---- documents and limits ---- */

static void test_spec__multi_document(void **state) {
        const char *yaml = CLUSTER("  size: 1\n") "---\n" CLUSTER(
                "  size: -1\n") "---\n"
                                "apiVersion: etcd.database.coreos.com/v1beta2\nkind: EtcdCluster\nmetadata: {name: d}\nspec: {size: 3}\n";
        struct eg_desired_set *set = parse(yaml);
        assert_int_equal(set->n_objects, 2);
        assert_string_equal(set->objects[0]->meta.name, "c");
        assert_int_equal(set->objects[0]->origin.line, 1);
        assert_string_equal(set->objects[1]->meta.name, "d");
        assert_int_equal(set->objects[1]->origin.line, 15);
        assert_one_diag(set, EG_SEVERITY_ERROR, 13, 9, "spec.size", "must be an integer ≥ 1, got -1");
        assert_true(set->diags[0].has_object);
        assert_string_equal(set->diags[0].name, "c");
        assert_int_equal(set->n_invalid, 1);
        eg_desired_set_free(set);
}

static void test_spec__json(void **state) {
        const char *json =
                "{\n  \"apiVersion\": \"etcd.database.coreos.com/v1beta2\",\n  \"kind\": \"EtcdCluster\",\n"
                "  \"metadata\": {\"name\": \"j\"},\n  \"spec\": {\"size\": 3, \"version\": \"3.4.1\", \"paused\": false}\n}\n";
        struct eg_desired_set *set = assert_valid(json);
        assert_int_equal(set->objects[0]->cluster.size, 3);
        assert_string_equal(set->objects[0]->cluster.version, "3.4.1");
        eg_desired_set_free(set);
        assert_error("{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\",\n"
                     " \"metadata\": {\"name\": \"j\"}, \"spec\": {\"size\": \"3\"}}\n",
                     2, 46, "spec.size", "must be an integer ≥ 1, got \"3\"");
}

static void test_spec__billion_laughs(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_buf_puts(&b, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"), 0);
        for (int i = 1; i < 10; i++)
                assert_int_equal(eg_buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                                               i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1),
                                 0);
        /* 10^9 nodes if expanded: must stop at the alias that crosses the limit (line 4:
         * 10 + 9*10 + 9*100 + 9*1000 > 10000 after four aliases of a3's line) */
        int64_t start = eg_now_monotonic_ms();
        struct eg_desired_set *set = parse(b.data);
        assert_true(eg_now_monotonic_ms() - start < 2000);
        assert_int_equal(set->n_objects, 0);
        assert_int_equal(set->n_diags, 1);
        assert_int_equal(set->diags[0].line, 5);
        assert_string_equal(set->diags[0].message,
                            "aliases expand to more than 10000 nodes (\"billion laughs\" document?)");
        eg_desired_set_free(set);
        eg_buf_done(&b);

        /* aliases within the limit are fine */
        set = assert_valid(CLUSTER("  size: 1\n  pod:\n    labels: &l {tier: db}\n    nodeSelector: *l\n"));
        assert_string_equal(json_string_value(json_object_get(set->objects[0]->cluster.pod->node_selector, "tier")),
                            "db");
        eg_desired_set_free(set);
        assert_error(CLUSTER("  size: *nope\n"), 6, 9, NULL, "unknown anchor 'nope'");
}

static void test_spec__deep_nesting(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_buf_puts(&b, "x: "), 0);
        for (int i = 0; i < 64; i++)
                assert_int_equal(eg_buf_puts(&b, "["), 0);
        for (int i = 0; i < 64; i++)
                assert_int_equal(eg_buf_puts(&b, "]"), 0);
        struct eg_desired_set *set = parse(b.data);
        /* 65 levels with the outer mapping */
        assert_one_diag(set, EG_SEVERITY_ERROR, 1, 67, NULL, "nesting is deeper than 64 levels");
        eg_desired_set_free(set);
        eg_buf_reset(&b);
        assert_int_equal(eg_buf_puts(&b, "x: "), 0);
        for (int i = 0; i < 63; i++)
                assert_int_equal(eg_buf_puts(&b, "["), 0);
        for (int i = 0; i < 63; i++)
                assert_int_equal(eg_buf_puts(&b, "]"), 0);
        set = parse(b.data);
        assert_int_equal(set->n_diags, 3); /* apiVersion, kind: no nesting error */
        assert_string_equal(set->diags[0].field, "apiVersion");
        eg_desired_set_free(set);
        eg_buf_done(&b);
}

static void test_spec__too_many_documents(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (int i = 0; i < EG_SPEC_MAX_DOCUMENTS + 5; i++)
                assert_int_equal(eg_buf_puts(&b, "---\n"), 0);
        struct eg_desired_set *set = parse(b.data);
        assert_one_diag(set, EG_SEVERITY_ERROR, EG_SPEC_MAX_DOCUMENTS + 1, 1, NULL,
                        "more than 1000 documents in one file; the rest of the file is not read");
        eg_desired_set_free(set);
        eg_buf_done(&b);
}

static void test_spec__too_big(void **state) {
        size_t len = EG_SPEC_MAX_FILE_BYTES + 1;
        char *data = malloc(len);
        assert_non_null(data);
        memset(data, '#', len);
        struct eg_desired_set *set = parse_opt(data, len, false);
        assert_one_diag(set, EG_SEVERITY_ERROR, 1, 1, NULL, "file is too large (4194305 bytes; the limit is 4194304)");
        assert_int_equal(set->n_files, 1);
        eg_desired_set_free(set);
        free(data);
}

static void test_spec__non_utf8(void **state) {
        assert_error(CLUSTER("  size: 1\n  repository: ab\xff\n"), 7, 17, NULL,
                     "invalid text: invalid leading UTF-8 octet; the rest of the file is not read");
        assert_error(CLUSTER("  size: 1\n  repository: \"a\\0b\"\n"), 7, 15, NULL, "text contains a NUL character");
}

static void test_spec__semver(void **state) {
        struct eg_semver a, b;
        assert_int_equal(eg_semver_parse("v3.4.23", &a), 0);
        assert_int_equal(a.major, 3);
        assert_int_equal(a.minor, 4);
        assert_int_equal(a.patch, 23);
        assert_int_equal(eg_semver_parse("3.10.0-alpha.1+x", &b), 0);
        assert_true(eg_semver_compare(&a, &b) < 0);
        assert_true(eg_semver_compare(&b, &a) > 0);
        assert_int_equal(eg_semver_compare(&a, &a), 0);
        assert_int_equal(eg_semver_parse("3.4", &a), -EINVAL);
        assert_int_equal(eg_semver_parse("3.4.x", &a), -EINVAL);
        assert_int_equal(eg_semver_parse("3.4.1-", &a), -EINVAL);
        assert_int_equal(eg_semver_parse("3.4.1 ", &a), -EINVAL);
        assert_int_equal(eg_semver_parse("99999999999999999999.0.0", &a), -EINVAL);
        enum eg_kind k;
        assert_int_equal(eg_kind_from_string("EtcdRestore", &k), 0);
        assert_int_equal(k, EG_KIND_RESTORE);
        assert_int_equal(eg_kind_from_string("etcdcluster", &k), -EINVAL);
        assert_string_equal(eg_kind_to_string(EG_KIND_BACKUP), "EtcdBackup");
        assert_string_equal(eg_storage_type_to_string(EG_STORAGE_FILE), "File");
        assert_string_equal(eg_storage_type_to_string(EG_STORAGE_OSS), "OSS");
}

/* ---- loading from disk ---- */

static void write_file(const char *dir, const char *rel, const char *content) {
        char *p = eg_path_join(dir, rel);
        assert_non_null(p);
        char *slash = strrchr(p, '/');
        *slash = 0;
        assert_int_equal(eg_mkdir_p(p, 0755), 0);
        *slash = '/';
        assert_int_equal(eg_write_file_atomic(p, content, strlen(content), 0644), 0);
        free(p);
}

static char *make_tmp(void) {
        char *t = strdup("/tmp/test-spec-XXXXXX");
        assert_non_null(mkdtemp(t));
        return t;
}

#define DOC(name) HEADER "kind: EtcdCluster\nmetadata: {name: " name "}\nspec: {size: 1}\n"

static void test_spec__walk(void **state) {
        char *root = make_tmp();
        char *outside = make_tmp();
        write_file(root, "b.yaml", DOC("b"));
        write_file(root, "a/z.yml", DOC("az"));
        write_file(root, "a/B.json",
                   "{\"apiVersion\": \"etcd.database.coreos.com/v1beta2\", \"kind\": \"EtcdCluster\", "
                   "\"metadata\": {\"name\": \"ab\"}, \"spec\": {\"size\": 1}}");
        write_file(root, ".hidden/x.yaml", DOC("hidden1"));
        write_file(root, ".h.yaml", DOC("hidden2"));
        write_file(root, "notes.txt", "not: yaml: at all: [");
        write_file(root, "c/inner.yaml", DOC("linked"));
        write_file(outside, "evil.yaml", DOC("evil"));
        char *l1 = eg_path_join(root, "link-in.yaml"), *l2 = eg_path_join(root, "link-out.yaml");
        char *t1 = eg_path_join(root, "c/inner.yaml"), *t2 = eg_path_join(outside, "evil.yaml");
        char *l3 = eg_path_join(root, "linkdir-out");
        assert_int_equal(symlink(t1, l1), 0);
        assert_int_equal(symlink(t2, l2), 0);
        assert_int_equal(symlink(outside, l3), 0);

        struct eg_desired_set *set;
        struct eg_spec_options opt = {0};
        assert_int_equal(eg_spec_load_paths(&root, 1, &opt, &set), 0);
        /* byte order: "B.json" < "z.yml"; "a/..." < "b.yaml" < "c/..." < "link-in.yaml" */
        assert_int_equal(set->n_objects, 3);
        assert_string_equal(set->objects[0]->origin.path, "a/B.json");
        assert_string_equal(set->objects[1]->origin.path, "a/z.yml");
        assert_string_equal(set->objects[2]->origin.path, "b.yaml");
        /* c/inner.yaml and link-in.yaml are the same object twice: both refused */
        assert_int_equal(set->n_errors, 4);
        assert_string_equal(set->diags[0].path, "c/inner.yaml");
        assert_string_equal(set->diags[0].message,
                            "duplicate EtcdCluster default/linked: also defined at link-in.yaml:1:1");
        assert_string_equal(set->diags[1].path, "link-in.yaml");
        assert_string_equal(set->diags[1].message,
                            "duplicate EtcdCluster default/linked: also defined at c/inner.yaml:1:1");
        assert_true(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "default", "linked"));
        assert_string_equal(set->diags[2].path, "link-out.yaml");
        assert_true(eg_str_has_prefix(set->diags[2].message, "symlink leads outside the source root"));
        assert_string_equal(set->diags[3].path, "linkdir-out");
        assert_true(eg_str_has_prefix(set->diags[3].message, "symlink leads outside the source root"));
        assert_int_equal(set->n_files, 7);
        assert_null(eg_desired_set_find(set, EG_KIND_CLUSTER, "default", "hidden1"));
        assert_null(eg_desired_set_find(set, EG_KIND_CLUSTER, "default", "evil"));
        char *rev1 = strdup(set->revision);
        eg_desired_set_free(set);

        /* same content, same revision; a changed file changes it */
        assert_int_equal(eg_spec_load_paths(&root, 1, &opt, &set), 0);
        assert_string_equal(set->revision, rev1);
        eg_desired_set_free(set);
        write_file(root, "b.yaml", DOC("b2"));
        assert_int_equal(eg_spec_load_paths(&root, 1, &opt, &set), 0);
        assert_string_not_equal(set->revision, rev1);
        /* finish is idempotent */
        size_t n = set->n_diags;
        assert_int_equal(eg_desired_set_finish(set), 0);
        assert_int_equal(set->n_diags, n);
        eg_desired_set_free(set);

        /* paths as given, and a file argument */
        char *args[2] = {root, t1};
        opt.paths_as_given = true;
        assert_int_equal(eg_spec_load_paths(args, 2, &opt, &set), 0);
        char *expect = eg_path_join(root, "a/B.json");
        assert_string_equal(set->objects[0]->origin.path, expect);
        free(expect);
        eg_desired_set_free(set);

        free(rev1);
        free(l1), free(l2), free(l3), free(t1), free(t2);
        assert_int_equal(eg_rm_rf(root), 0);
        assert_int_equal(eg_rm_rf(outside), 0);
        free(root);
        free(outside);
}

static void test_spec__duplicate_across_files(void **state) {
        char *root = make_tmp();
        write_file(root, "one.yaml", DOC("x") "---\n" DOC("y"));
        write_file(root, "two/x.yaml", "# the same cluster again\n" DOC("x"));
        struct eg_desired_set *set;
        assert_int_equal(eg_spec_load_paths(&root, 1, NULL, &set), 0);
        assert_int_equal(set->n_objects, 1);
        assert_string_equal(set->objects[0]->meta.name, "y");
        assert_int_equal(set->n_diags, 2);
        char *s = eg_diag_format(&set->diags[0]);
        assert_string_equal(
                s, "one.yaml:1:1: metadata.name: duplicate EtcdCluster default/x: also defined at two/x.yaml:2:1");
        free(s);
        s = eg_diag_format(&set->diags[1]);
        assert_string_equal(
                s, "two/x.yaml:2:1: metadata.name: duplicate EtcdCluster default/x: also defined at one.yaml:1:1");
        free(s);
        assert_int_equal(set->n_invalid, 2);
        assert_true(eg_desired_set_object_has_errors(set, EG_KIND_CLUSTER, "default", "x"));
        /* the same name in another namespace or kind is not a duplicate */
        eg_desired_set_free(set);
        write_file(root, "two/x.yaml",
                   HEADER "kind: EtcdCluster\nmetadata: {name: x, namespace: other}\nspec: {size: 1}\n");
        assert_int_equal(eg_spec_load_paths(&root, 1, NULL, &set), 0);
        assert_int_equal(set->n_objects, 3);
        assert_int_equal(set->n_diags, 0);
        eg_desired_set_free(set);
        assert_int_equal(eg_rm_rf(root), 0);
        free(root);
}

static void test_spec__load_limits_and_errors(void **state) {
        char *root = make_tmp();
        /* a sparse 5 MiB file: refused from its size, never read */
        char *big = eg_path_join(root, "big.yaml");
        int fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 5 << 20), 0);
        close(fd);
        struct eg_desired_set *set;
        assert_int_equal(eg_spec_load_paths(&root, 1, NULL, &set), 0);
        assert_one_diag(set, EG_SEVERITY_ERROR, 1, 1, NULL, "file is too large (5242880 bytes; the limit is 4194304)");
        assert_string_equal(set->diags[0].path, "big.yaml");
        assert_int_equal(set->n_files, 1);
        eg_desired_set_free(set);

        char *missing = eg_path_join(root, "missing");
        assert_int_equal(eg_spec_load_paths(&missing, 1, NULL, &set), -ENOENT);
        assert_one_diag(set, EG_SEVERITY_ERROR, 1, 1, NULL, "cannot read: No such file or directory");
        assert_string_equal(set->diags[0].path, missing);
        eg_desired_set_free(set);

        free(missing);
        free(big);
        assert_int_equal(eg_rm_rf(root), 0);
        free(root);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec__upstream_example),
                cmocka_unit_test(test_spec__defaults),
                cmocka_unit_test(test_spec__all_fields),
                cmocka_unit_test(test_spec__size),
                cmocka_unit_test(test_spec__version),
                cmocka_unit_test(test_spec__scalar_typing),
                cmocka_unit_test(test_spec__names),
                cmocka_unit_test(test_spec__pod_reserved),
                cmocka_unit_test(test_spec__tls),
                cmocka_unit_test(test_spec__duplicate_key),
                cmocka_unit_test(test_spec__unknown_field),
                cmocka_unit_test(test_spec__int_overflow),
                cmocka_unit_test(test_spec__header),
                cmocka_unit_test(test_spec__backup),
                cmocka_unit_test(test_spec__restore),
                cmocka_unit_test(test_spec__multi_document),
                cmocka_unit_test(test_spec__json),
                cmocka_unit_test(test_spec__billion_laughs),
                cmocka_unit_test(test_spec__deep_nesting),
                cmocka_unit_test(test_spec__too_many_documents),
                cmocka_unit_test(test_spec__too_big),
                cmocka_unit_test(test_spec__non_utf8),
                cmocka_unit_test(test_spec__semver),
                cmocka_unit_test(test_spec__walk),
                cmocka_unit_test(test_spec__duplicate_across_files),
                cmocka_unit_test(test_spec__load_limits_and_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
