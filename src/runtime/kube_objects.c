/* Pods, services and claims for the kubernetes runtime, built from a cluster spec. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/util.h"
#include "kube_objects.h"

static const struct eg_pod_policy *policy(const struct eg_cluster_spec *s) { return s->pod; }

static const char *busybox_image(const struct eg_cluster_spec *s) {
        return s->pod && s->pod->busybox_image && *s->pod->busybox_image ? s->pod->busybox_image : DEFAULT_BUSYBOX;
}

static const char *cluster_domain(const struct eg_cluster_spec *s) {
        return s->pod && s->pod->cluster_domain ? s->pod->cluster_domain : "";
}

bool kube_peer_tls(const struct eg_cluster_spec *s) { return s->tls && s->tls->peer_secret; }
bool kube_client_tls(const struct eg_cluster_spec *s) { return s->tls && s->tls->server_secret; }
bool kube_has_pvc(const struct eg_cluster_spec *s) {
        return s->pod && json_is_object(s->pod->persistent_volume_claim_spec);
}

char *kube_member_dns(const struct eg_runtime_target *t, const char *member) {
        return eg_strdup_printf("%s.%s.%s.svc%s", member, t->name, t->namespace, cluster_domain(t->spec));
}

char *kube_member_peer_url(const struct eg_runtime_target *t, const char *member) {
        _cleanup_free_ char *dns = kube_member_dns(t, member);
        return dns ? eg_strdup_printf("%s://%s:%d", kube_peer_tls(t->spec) ? "https" : "http", dns, PEER_PORT) : NULL;
}

/* The pod policy as upstream's JSON, the one input besides version and repository that
 * shapes a pod. */
static json_t *policy_json(const struct eg_cluster_spec *s) {
        const struct eg_pod_policy *p = policy(s);
        json_t *o = json_object();
        if (!o || !p)
                return o;
        struct {
                const char *key;
                json_t *v;
        } fields[] = {
                {"labels", p->labels},
                {"nodeSelector", p->node_selector},
                {"affinity", p->affinity},
                {"resources", p->resources},
                {"tolerations", p->tolerations},
                {"etcdEnv", p->etcd_env},
                {"persistentVolumeClaimSpec", p->persistent_volume_claim_spec},
                {"annotations", p->annotations},
                {"securityContext", p->security_context},
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(fields); i++)
                if (fields[i].v && !json_is_null(fields[i].v))
                        json_object_set(o, fields[i].key, fields[i].v);
        json_object_set_new(o, "antiAffinity", json_boolean(p->anti_affinity));
        json_object_set_new(o, "busyboxImage", json_string(busybox_image(s)));
        json_object_set_new(o, "DNSTimeoutInSecond", json_integer(p->dns_timeout_in_second));
        json_object_set_new(o, "ClusterDomain", json_string(cluster_domain(s)));
        return o;
}

/* with_image: the member hash (what makes a member roll); without: what an image change in
 * place (a pod update, which may change nothing else) cannot give a running pod. */
char *kube_template_hash(const struct eg_cluster_spec *spec, bool with_image) {
        json_t *pj = policy_json(spec);
        json_t *tls = spec->tls ? json_pack("{s:s?, s:s?, s:s?}", "peerSecret", spec->tls->peer_secret, "serverSecret",
                                            spec->tls->server_secret, "operatorSecret", spec->tls->operator_secret)
                                : json_null();
        json_t *all = pj && tls ? json_pack("{s:O, s:O}", "pod", pj, "TLS", tls) : NULL;
        if (all && with_image &&
            (json_object_set_new(all, "version", json_string(spec->version ? spec->version : "")) < 0 ||
             json_object_set_new(all, "repository",
                                 json_string(spec->repository ? spec->repository : DEFAULT_REPOSITORY)) < 0)) {
                json_decref(all);
                all = NULL;
        }
        char *canon = all ? json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(pj);
        json_decref(tls);
        json_decref(all);
        if (!canon)
                return NULL;
        char hex[65];
        eg_sha256_hex(canon, strlen(canon), hex);
        free(canon);
        return eg_strdup_printf("sha256:%s", hex);
}

char *kube_etcd_image(const struct eg_cluster_spec *s) {
        return eg_strdup_printf("%s:v%s", s->repository ? s->repository : DEFAULT_REPOSITORY, s->version);
}

json_t *kube_cluster_labels(const char *name) {
        return json_pack("{s:s, s:s, s:s}", "app", "etcd", "etcd_cluster", name, "app.kubernetes.io/managed-by",
                         MANAGED_BY);
}

static json_t *service_ports(bool headless) {
        if (headless)
                return json_pack("[{s:s, s:i, s:i, s:s}, {s:s, s:i, s:i, s:s}]", "name", "client", "port", CLIENT_PORT,
                                 "targetPort", CLIENT_PORT, "protocol", "TCP", "name", "peer", "port", PEER_PORT,
                                 "targetPort", PEER_PORT, "protocol", "TCP");
        return json_pack("[{s:s, s:i, s:i, s:s}]", "name", "client", "port", CLIENT_PORT, "targetPort", CLIENT_PORT,
                         "protocol", "TCP");
}

json_t *kube_service_manifest(const char *ns, const char *name, bool headless) {
        _cleanup_free_ char *sname = headless ? strdup(name) : eg_strdup_printf("%s-client", name);
        if (!sname)
                return NULL;
        json_t *spec = json_pack("{s:o, s:{s:s, s:s}}", "ports", service_ports(headless), "selector", "app", "etcd",
                                 "etcd_cluster", name);
        if (spec && headless) {
                json_object_set_new(spec, "clusterIP", json_string("None"));
                json_object_set_new(spec, "publishNotReadyAddresses", json_true());
        } else if (spec)
                json_object_set_new(spec, "type", json_string("ClusterIP"));
        return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:o}", "apiVersion", "v1", "kind", "Service", "metadata",
                         "name", sname, "namespace", ns, "labels", kube_cluster_labels(name), "spec", spec);
}

#define DNS_SCRIPT                                                      \
        "\n"                                                            \
        "TIMEOUT_READY=%" PRId64 "\n"                                   \
        "while ( ! nslookup %s )\n"                                     \
        "do\n"                                                          \
        "  # If TIMEOUT_READY is 0 we should never time out and exit\n" \
        "  TIMEOUT_READY=$(( TIMEOUT_READY-1 ))\n"                      \
        "  if [ $TIMEOUT_READY -eq 0 ];\n"                              \
        "  then\n"                                                      \
        "    echo \"Timed out waiting for DNS entry\"\n"                \
        "    exit 1\n"                                                  \
        "  fi\n"                                                        \
        "  sleep 1\n"                                                   \
        "done"

#define DEFAULT_CURL_IMAGE "curlimages/curl:8.5.0"
#define RESTORE_DIR "/var/etcd-restore"
#define AWS_DIR "/etc/etcd-gitops/aws"

/* The seed pod's snapshot fetch: the credentials file's profile read with awk, handed to curl
 * on stdin (never on a command line), the GET signed by curl's SigV4. */
static const char FETCH_SCRIPT[] =
        "set -eu\n"
        "profile=${AWS_PROFILE:-default}\n"
        "ini() {\n"
        "  awk -v want=\"[$profile]\" -v key=\"$1\" '\n"
        "    /^[[:space:]]*\\[/ { s = $0; gsub(/[[:space:]]/, \"\", s); on = (s == want); next }\n"
        "    on && index($0, \"=\") { k = substr($0, 1, index($0, \"=\") - 1); gsub(/[[:space:]]/, \"\", k)\n"
        "      if (k == key) { v = substr($0, index($0, \"=\") + 1); gsub(/^[[:space:]]+|[[:space:]]+$/, \"\", v)\n"
        "        print v; exit } }' \"$AWS_SHARED_CREDENTIALS_FILE\"\n"
        "}\n"
        "id=$(ini aws_access_key_id); secret=$(ini aws_secret_access_key); token=$(ini aws_session_token)\n"
        "if [ -z \"$id\" ] || [ -z \"$secret\" ]; then\n"
        "  echo \"no aws_access_key_id and aws_secret_access_key for profile $profile in the awsSecret\" >&2; exit 1\n"
        "fi\n"
        "{ printf 'user = \"%s:%s\"\\n' \"$id\" \"$secret\"\n"
        "  [ -z \"$token\" ] || printf 'header = \"x-amz-security-token: %s\"\\n' \"$token\"; } |\n"
        "  curl --config - --fail --silent --show-error --retry 3 --aws-sigv4 \"aws:amz:$AWS_REGION:s3\" \\\n"
        "    -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \\\n"
        "    -o \"$SNAPSHOT.partial\" \"$SNAPSHOT_URL\"\n"
        "mv \"$SNAPSHOT.partial\" \"$SNAPSHOT\"\n";

static json_t *probe(const struct eg_cluster_spec *s, int initial_delay, int timeout, int period) {
        const char *cmd = kube_client_tls(s) ? "ETCDCTL_API=3 etcdctl --endpoints=https://localhost:2379 "
                                               "--cert=" OPERATOR_TLS_DIR "/etcd-client.crt "
                                               "--key=" OPERATOR_TLS_DIR "/etcd-client.key "
                                               "--cacert=" OPERATOR_TLS_DIR "/etcd-client-ca.crt endpoint status"
                                             : "ETCDCTL_API=3 etcdctl endpoint status";
        return json_pack("{s:{s:[s, s, s]}, s:i, s:i, s:i, s:i}", "exec", "command", "/bin/sh", "-ec", cmd,
                         "initialDelaySeconds", initial_delay, "timeoutSeconds", timeout, "periodSeconds", period,
                         "failureThreshold", 3);
}

static int push_str(json_t *a, char *s) {
        if (!s)
                return -ENOMEM;
        int r = json_array_append_new(a, json_string(s)) < 0 ? -ENOMEM : 0;
        free(s);
        return r;
}

/* etcd's flags for TLS with client certificates, on the peer ("peer-") or client ("") side:
 * DIR/FILE-ca.crt, DIR/FILE.crt and DIR/FILE.key from the mounted secret. */
static int push_tls(json_t *a, const char *side, const char *dir, const char *file) {
        if (push_str(a, eg_strdup_printf("--%sclient-cert-auth=true", side)) < 0 ||
            push_str(a, eg_strdup_printf("--%strusted-ca-file=%s/%s-ca.crt", side, dir, file)) < 0 ||
            push_str(a, eg_strdup_printf("--%scert-file=%s/%s.crt", side, dir, file)) < 0 ||
            push_str(a, eg_strdup_printf("--%skey-file=%s/%s.key", side, dir, file)) < 0)
                return -ENOMEM;
        return 0;
}

static json_t *etcd_command(const struct eg_runtime_target *t, const char *member, const char *initial_cluster,
                            const char *token) {
        _cleanup_free_ char *dns = kube_member_dns(t, member);
        _cleanup_free_ char *peer = kube_member_peer_url(t, member);
        const char *cs = kube_client_tls(t->spec) ? "https" : "http", *ps = kube_peer_tls(t->spec) ? "https" : "http";
        json_t *a = json_array();
        if (!a || !dns || !peer)
                goto fail;
        if (push_str(a, strdup("/usr/local/bin/etcd")) < 0 || push_str(a, strdup("--data-dir=/var/etcd/data")) < 0 ||
            push_str(a, eg_strdup_printf("--name=%s", member)) < 0 ||
            push_str(a, eg_strdup_printf("--initial-advertise-peer-urls=%s", peer)) < 0 ||
            push_str(a, eg_strdup_printf("--listen-peer-urls=%s://0.0.0.0:%d", ps, PEER_PORT)) < 0 ||
            push_str(a, eg_strdup_printf("--listen-client-urls=%s://0.0.0.0:%d", cs, CLIENT_PORT)) < 0 ||
            push_str(a, eg_strdup_printf("--advertise-client-urls=%s://%s:%d", cs, dns, CLIENT_PORT)) < 0 ||
            push_str(a, eg_strdup_printf("--initial-cluster=%s", initial_cluster)) < 0 ||
            push_str(a, eg_strdup_printf("--initial-cluster-state=%s", token ? "new" : "existing")) < 0)
                goto fail;
        if (token && push_str(a, eg_strdup_printf("--initial-cluster-token=%s", token)) < 0)
                goto fail;
        if ((kube_peer_tls(t->spec) && push_tls(a, "peer-", PEER_TLS_DIR, "peer") < 0) ||
            (kube_client_tls(t->spec) && push_tls(a, "", SERVER_TLS_DIR, "server") < 0))
                goto fail;
        return a;
fail:
        json_decref(a);
        return NULL;
}

static int add_secret_volume(json_t *volumes, json_t *mounts, const char *vol, const char *secret, const char *dir) {
        if (json_array_append_new(volumes, json_pack("{s:s, s:{s:s}}", "name", vol, "secret", "secretName", secret)) <
                    0 ||
            json_array_append_new(mounts, json_pack("{s:s, s:s}", "name", vol, "mountPath", dir)) < 0)
                return -ENOMEM;
        return 0;
}

/* Merges string maps: src first, then ours over it (reserved keys win). */
static int merge_map(json_t *dst, json_t *src) {
        if (!json_is_object(src))
                return 0;
        const char *k;
        json_t *v;
        json_object_foreach(src, k, v) if (!json_object_get(dst, k) && json_object_set(dst, k, v) < 0) return -ENOMEM;
        return 0;
}

/* The pod upstream made, plus our labels and annotations. token != NULL: a new cluster. */
/* The restore's seed: the snapshot fetched into its own emptyDir, then turned into the data
 * dir by etcdctl (which checks its hash) with this member's identity, before etcd starts. */
static int add_seed(const struct eg_runtime_target *t, const char *member, const char *initial_cluster,
                    const char *token, const char *image, json_t *init, json_t *volumes) {
        const struct eg_runtime_seed *sd = t->seed;
        _cleanup_free_ char *peer = kube_member_peer_url(t, member);
        _cleanup_free_ char *snapshot = eg_strdup_printf("%s/snapshot.db", RESTORE_DIR);
        _cleanup_free_ char *a_name = eg_strdup_printf("--name=%s", member);
        _cleanup_free_ char *a_cluster = eg_strdup_printf("--initial-cluster=%s", initial_cluster);
        _cleanup_free_ char *a_token = eg_strdup_printf("--initial-cluster-token=%s", token);
        _cleanup_free_ char *a_peer = peer ? eg_strdup_printf("--initial-advertise-peer-urls=%s", peer) : NULL;
        if (!snapshot || !a_name || !a_cluster || !a_token || !a_peer)
                return -ENOMEM;
        json_t *fetch = json_pack("{s:s, s:s, s:[s, s, s], s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}],"
                                  " s:[{s:s, s:s}, {s:s, s:s, s:b}]}",
                                  "name", "fetch-snapshot", "image", DEFAULT_CURL_IMAGE, "command", "/bin/sh", "-c",
                                  FETCH_SCRIPT, "env", "name", "SNAPSHOT_URL", "value", sd->url, "name", "AWS_REGION",
                                  "value", sd->region, "name", "AWS_SHARED_CREDENTIALS_FILE", "value",
                                  AWS_DIR "/credentials", "name", "SNAPSHOT", "value", snapshot, "volumeMounts", "name",
                                  "etcd-restore", "mountPath", RESTORE_DIR, "name", "aws-credentials", "mountPath",
                                  AWS_DIR, "readOnly", 1);
        json_t *restore = json_pack("{s:s, s:s, s:[s, s, s, s, s, s, s, s], s:[{s:s, s:s}],"
                                    " s:[{s:s, s:s}, {s:s, s:s}]}",
                                    "name", "restore-snapshot", "image", image, "command", "/usr/local/bin/etcdctl",
                                    "snapshot", "restore", snapshot, a_name, a_cluster, a_token, a_peer, "env", "name",
                                    "ETCDCTL_API", "value", "3", "volumeMounts", "name", "etcd-restore", "mountPath",
                                    RESTORE_DIR, "name", "etcd-data", "mountPath", "/var/etcd");
        if (!fetch || !restore || json_array_append_new(init, fetch) < 0 || json_array_append_new(init, restore) < 0)
                return -ENOMEM;
        json_t *args = json_object_get(restore, "command");
        if (json_array_append_new(args, json_string("--data-dir=/var/etcd/data")) < 0 ||
            json_array_append_new(volumes, json_pack("{s:s, s:{}}", "name", "etcd-restore", "emptyDir")) < 0 ||
            json_array_append_new(volumes, json_pack("{s:s, s:{s:s, s:i}}", "name", "aws-credentials", "secret",
                                                     "secretName", sd->aws_secret, "defaultMode", 0400)) < 0)
                return -ENOMEM;
        return 0;
}

json_t *kube_pod_manifest(const struct eg_runtime_target *t, const char *member, const char *initial_cluster,
                          const char *token) {
        const struct eg_cluster_spec *s = t->spec;
        const struct eg_pod_policy *p = policy(s);
        _cleanup_free_ char *dns = kube_member_dns(t, member);
        _cleanup_free_ char *script = dns ? eg_strdup_printf(DNS_SCRIPT, p ? p->dns_timeout_in_second : 0, dns) : NULL;
        _cleanup_free_ char *image = kube_etcd_image(s);
        _cleanup_free_ char *hash = kube_template_hash(s, true), *pod_hash = kube_template_hash(s, false);
        json_t *pod = NULL, *labels = NULL, *ann = NULL, *mounts = NULL, *volumes = NULL, *container = NULL,
               *spec = NULL;
        if (!script || !image || !hash || !pod_hash)
                return NULL;
        labels = json_pack("{s:s, s:s, s:s, s:s}", "app", "etcd", "etcd_cluster", t->name, "etcd_node", member,
                           "app.kubernetes.io/managed-by", MANAGED_BY);
        ann = json_pack("{s:s, s:s, s:s}", ANN_VERSION, s->version, ANN_SPEC_HASH, hash, ANN_POD_HASH, pod_hash);
        mounts = json_pack("[{s:s, s:s}]", "name", "etcd-data", "mountPath", "/var/etcd");
        volumes = kube_has_pvc(s) ? json_pack("[{s:s, s:{s:s}}]", "name", "etcd-data", "persistentVolumeClaim",
                                              "claimName", member)
                                  : json_pack("[{s:s, s:{}}]", "name", "etcd-data", "emptyDir");
        if (!labels || !ann || !mounts || !volumes)
                goto fail;
        if (t->revision && json_object_set_new(ann, ANN_REVISION, json_string(t->revision)) < 0)
                goto fail;
        if (p && (merge_map(labels, p->labels) < 0 || merge_map(ann, p->annotations) < 0))
                goto fail;
        if (kube_peer_tls(s) &&
            add_secret_volume(volumes, mounts, "member-peer-tls", s->tls->peer_secret, PEER_TLS_DIR) < 0)
                goto fail;
        if (kube_client_tls(s) &&
            add_secret_volume(volumes, mounts, "member-server-tls", s->tls->server_secret, SERVER_TLS_DIR) < 0)
                goto fail;
        if (kube_client_tls(s) && s->tls->operator_secret &&
            add_secret_volume(volumes, mounts, OPERATOR_TLS_VOLUME, s->tls->operator_secret, OPERATOR_TLS_DIR) < 0)
                goto fail;
        container = json_pack("{s:s, s:s, s:o, s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}], s:O, s:o, s:o}", "name", "etcd",
                              "image", image, "command", etcd_command(t, member, initial_cluster, token), "ports",
                              "name", "server", "containerPort", PEER_PORT, "protocol", "TCP", "name", "client",
                              "containerPort", CLIENT_PORT, "protocol", "TCP", "volumeMounts", mounts, "livenessProbe",
                              probe(s, 10, 10, 60), "readinessProbe", probe(s, 1, 5, 5));
        if (!container)
                goto fail;
        if (p && json_is_array(p->etcd_env) && json_array_size(p->etcd_env) > 0)
                json_object_set(container, "env", p->etcd_env);
        if (p && json_is_object(p->resources))
                json_object_set(container, "resources", p->resources);
        spec = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s, s:[s, s, s]}], s:[O], s:O}", "hostname", member, "subdomain",
                         t->name, "restartPolicy", "Never", "initContainers", "name", "check-dns", "image",
                         busybox_image(s), "command", "/bin/sh", "-c", script, "containers", container, "volumes",
                         volumes);
        if (!spec)
                goto fail;
        if (t->seed && token &&
            add_seed(t, member, initial_cluster, token, image, json_object_get(spec, "initContainers"),
                     json_object_get(spec, "volumes")) < 0)
                goto fail;
        if (p && json_is_object(p->node_selector))
                json_object_set(spec, "nodeSelector", p->node_selector);
        if (p && json_is_array(p->tolerations))
                json_object_set(spec, "tolerations", p->tolerations);
        if (p && json_is_object(p->security_context))
                json_object_set(spec, "securityContext", p->security_context);
        if (p && json_is_object(p->affinity))
                json_object_set(spec, "affinity", p->affinity);
        else if (p && p->anti_affinity)
                json_object_set_new(spec, "affinity",
                                    json_pack("{s:{s:[{s:{s:{s:s}}, s:s}]}}", "podAntiAffinity",
                                              "requiredDuringSchedulingIgnoredDuringExecution", "labelSelector",
                                              "matchLabels", "etcd_cluster", t->name, "topologyKey",
                                              "kubernetes.io/hostname"));
        pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:O, s:O}, s:O}", "apiVersion", "v1", "kind", "Pod", "metadata",
                        "name", member, "namespace", t->namespace, "labels", labels, "annotations", ann, "spec", spec);
fail:
        json_decref(labels);
        json_decref(ann);
        json_decref(mounts);
        json_decref(volumes);
        json_decref(container);
        json_decref(spec);
        return pod;
}

json_t *kube_pvc_manifest(const struct eg_runtime_target *t, const char *member) {
        json_t *labels = kube_cluster_labels(t->name);
        if (labels)
                json_object_set_new(labels, "etcd_node", json_string(member));
        return json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:O}", "apiVersion", "v1", "kind", "PersistentVolumeClaim",
                         "metadata", "name", member, "namespace", t->namespace, "labels", labels, "spec",
                         t->spec->pod->persistent_volume_claim_spec);
}

const char *kube_etcd_flag(json_t *pod, const char *flag) {
        json_t *containers = jpath(pod, "spec", "containers"), *c;
        size_t i, l = strlen(flag);
        json_array_foreach(containers, i, c) {
                if (!jstr(c, "name") || strcmp(jstr(c, "name"), "etcd") != 0)
                        continue;
                const char *lists[] = {"command", "args"};
                for (size_t k = 0; k < 2; k++) {
                        size_t j;
                        json_t *a;
                        json_array_foreach(json_object_get(c, lists[k]), j, a) {
                                const char *s = json_string_value(a);
                                if (s && strncmp(s, flag, l) == 0 && s[l] == '=')
                                        return s + l + 1;
                        }
                }
        }
        return NULL;
}

bool kube_pod_on_claim(json_t *pod) {
        size_t i;
        json_t *v;
        json_array_foreach(jpath(pod, "spec", "volumes"), i, v) {
                const char *vn = jstr(v, "name");
                if (vn && strcmp(vn, "etcd-data") == 0 && json_object_get(v, "persistentVolumeClaim"))
                        return true;
        }
        return false;
}

int64_t kube_parse_time_ms(const char *s) {
        struct tm tm = {0};
        if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                         &tm.tm_sec) != 6)
                return 0;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        time_t t = timegm(&tm);
        return t == (time_t)-1 ? 0 : (int64_t)t * 1000;
}

/* Waiting reasons after which a kubelet does not get the container running by itself. */
static bool failing_reason(const char *r) {
        static const char *const reasons[] = {"CrashLoopBackOff",          "ErrImagePull",       "ImagePullBackOff",
                                              "InvalidImageName",          "ErrImageNeverPull",  "CreateContainerError",
                                              "RunContainerError",         "PreCreateHookError", "PostStartHookError",
                                              "CreateContainerConfigError"};
        for (size_t i = 0; r && i < EG_ELEMENTSOF(reasons); i++)
                if (strcmp(r, reasons[i]) == 0)
                        return true;
        return false;
}

static char *reason_text(const char *reason, const char *message) {
        if (!reason)
                return message ? strdup(message) : NULL;
        return message && *message ? eg_strdup_printf("%s: %s", reason, message) : strdup(reason);
}

/* The first container status (init ones first) waiting for a reason that does not go away. */
static json_t *failing_container(json_t *st) {
        const char *lists[] = {"initContainerStatuses", "containerStatuses"};
        for (size_t k = 0; k < EG_ELEMENTSOF(lists); k++) {
                size_t i;
                json_t *cs;
                json_array_foreach(json_object_get(st, lists[k]), i, cs) {
                        if (failing_reason(jstr(jpath(cs, "state", "waiting"), "reason")))
                                return cs;
                }
        }
        return NULL;
}

static json_t *etcd_status(json_t *st) {
        size_t i;
        json_t *cs;
        json_array_foreach(json_object_get(st, "containerStatuses"), i, cs) {
                const char *n = jstr(cs, "name");
                if (n && strcmp(n, "etcd") == 0)
                        return cs;
        }
        return NULL;
}

static json_t *condition(json_t *st, const char *type) {
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(st, "conditions"), i, c) {
                const char *t = jstr(c, "type");
                if (t && strcmp(t, type) == 0)
                        return c;
        }
        return NULL;
}

bool kube_pod_unready(json_t *pod) {
        const char *s = jstr(condition(json_object_get(pod, "status"), "Ready"), "status");
        return s && strcmp(s, "False") == 0;
}

/* Why a pod that is not running yet is still on its way, in Kubernetes' words. Unschedulable
 * is among them: the scheduler may place a pod later (a node added, resources freed), and a
 * fresh pod may fit where this one does not, so it is timed like any start. */
static char *starting_reason(json_t *st) {
        json_t *sched = condition(st, "PodScheduled");
        const char *s = jstr(sched, "status");
        if (!s || strcmp(s, "True") != 0)
                return jstr(sched, "reason") ? reason_text(jstr(sched, "reason"), jstr(sched, "message"))
                                             : strdup("Pending: not scheduled yet");
        const char *lists[] = {"initContainerStatuses", "containerStatuses"};
        for (size_t k = 0; k < EG_ELEMENTSOF(lists); k++) {
                size_t i;
                json_t *cs;
                json_array_foreach(json_object_get(st, lists[k]), i, cs) {
                        json_t *w = jpath(cs, "state", "waiting");
                        if (w)
                                return eg_strdup_printf(
                                        "%s: %scontainer %s", jstr(w, "reason") ? jstr(w, "reason") : "Waiting",
                                        k == 0 ? "init " : "", jstr(cs, "name") ? jstr(cs, "name") : "?");
                        if (k == 0 && jpath(cs, "state", "running"))
                                return eg_strdup_printf("PodInitializing: init container %s running",
                                                        jstr(cs, "name") ? jstr(cs, "name") : "?");
                }
        }
        return strdup("Pending");
}

/* When the pod's try at running etcd began: its creation, or the end of etcd's last run in it
 * (an image changed in place restarts etcd in the same pod, which may be old). */
static int64_t attempt_since(int64_t created, json_t *etcd) {
        int64_t ended = kube_parse_time_ms(jstr(jpath(etcd, "lastState", "terminated"), "finishedAt"));
        return ended > created ? ended : created;
}

/* A kubelet that answers removes a pod this long after its deletion was due at most (its
 * containers are killed at the due time): later, no kubelet is there to do it. */
#define STUCK_TERMINATING_SLACK_MS 10000

/* What the node lifecycle controller leaves on the pods of a node that stopped answering. */
static bool node_lost_marks(json_t *st) {
        const char *phase = jstr(st, "phase"), *reason = jstr(st, "reason");
        const char *ready = jstr(condition(st, "Ready"), "reason");
        const char *target = jstr(condition(st, "DisruptionTarget"), "reason");
        return (phase && strcmp(phase, "Unknown") == 0) || (reason && strcmp(reason, "NodeLost") == 0) ||
               (ready && strcmp(ready, "NodeNotReady") == 0) ||
               (target && strcmp(target, "DeletionByTaintManager") == 0);
}

int kube_pod_stuck_terminating(json_t *pod, int64_t now_ms, char **ret_reason) {
        int64_t due = kube_parse_time_ms(jstr(json_object_get(pod, "metadata"), "deletionTimestamp"));
        enum eg_member_life life;
        char *why = NULL;
        int64_t since;
        *ret_reason = NULL;
        if (due == 0 || now_ms - due < STUCK_TERMINATING_SLACK_MS)
                return 0;
        if (kube_pod_life(pod, &life, &why, &since) < 0)
                return -ENOMEM;
        *ret_reason = eg_strdup_printf("%spod stuck terminating: %s",
                                       node_lost_marks(json_object_get(pod, "status")) ? "node lost, " : "", why);
        free(why);
        return *ret_reason ? 0 : -ENOMEM;
}

int kube_pod_life(json_t *pod, enum eg_member_life *ret_life, char **ret_reason, int64_t *ret_since_ms) {
        json_t *meta = json_object_get(pod, "metadata"), *st = json_object_get(pod, "status");
        const char *phase = jstr(st, "phase"), *deleted = jstr(meta, "deletionTimestamp");
        json_t *etcd = etcd_status(st), *failing = NULL;
        enum eg_member_life life;
        int64_t since = kube_parse_time_ms(jstr(meta, "creationTimestamp"));
        char *reason = NULL;

        const char *policy = jstr(json_object_get(pod, "spec"), "restartPolicy");
        /* with restartPolicy Never an exited etcd is final before the kubelet says Failed */
        bool exited = jpath(etcd, "state", "terminated") && policy && strcmp(policy, "Never") == 0;
        if (deleted || exited ||
            (phase &&
             (strcmp(phase, "Failed") == 0 || strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Unknown") == 0))) {
                life = EG_LIFE_GONE;
                json_t *term = jpath(etcd, "state", "terminated");
                if (jstr(st, "reason"))
                        reason = reason_text(jstr(st, "reason"), jstr(st, "message"));
                else if (term)
                        reason = eg_strdup_printf("%s: etcd exited with code %" JSON_INTEGER_FORMAT,
                                                  jstr(term, "reason") ? jstr(term, "reason") : "Terminated",
                                                  json_integer_value(json_object_get(term, "exitCode")));
                else if (!deleted)
                        reason = strdup(phase);
                if (deleted) {
                        /* a pod on a lost node stays like this: no kubelet completes its deletion */
                        char *r = reason ? eg_strdup_printf("%s; Terminating since %s", reason, deleted)
                                         : eg_strdup_printf("Terminating since %s", deleted);
                        free(reason);
                        reason = r;
                }
                if (deleted)
                        since = kube_parse_time_ms(deleted);
                else if (term && kube_parse_time_ms(jstr(term, "finishedAt")))
                        since = kube_parse_time_ms(jstr(term, "finishedAt"));
        } else if ((failing = failing_container(st))) {
                json_t *w = jpath(failing, "state", "waiting");
                life = EG_LIFE_FAILING;
                reason = reason_text(jstr(w, "reason"), jstr(w, "message"));
                since = attempt_since(since, etcd);
        } else if (phase && strcmp(phase, "Running") == 0 && jpath(etcd, "state", "running")) {
                /* whether etcd serves is etcd's to say, not the readiness probe's */
                life = EG_LIFE_RUNNING;
                since = kube_parse_time_ms(jstr(jpath(etcd, "state", "running"), "startedAt"));
        } else {
                life = EG_LIFE_STARTING;
                reason = starting_reason(st);
                since = attempt_since(since, etcd);
        }
        if (life != EG_LIFE_RUNNING && !reason)
                return -ENOMEM;
        *ret_life = life;
        *ret_reason = reason;
        *ret_since_ms = since;
        return 0;
}
