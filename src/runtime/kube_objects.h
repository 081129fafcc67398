/* The Kubernetes objects the kubernetes runtime makes, as the original etcd-operator made
 * them: pods (with the restore seed's init containers), services, claims, and the hashes
 * that tell which pods a spec change rolls. Pure: spec in, JSON out. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd-gitops/runtime.h"

#define CLIENT_PORT 2379
#define PEER_PORT 2380
#define MANAGED_BY "etcd-gitops"
#define ANN_NEXT_INDEX "etcd-gitops/next-index"
#define ANN_SPEC_HASH "etcd-gitops/spec-hash"
#define ANN_POD_HASH "etcd-gitops/pod-hash" /* the template without the image */
#define ANN_REVISION "etcd-gitops/revision"
#define ANN_VERSION "etcd.version"
#define DEFAULT_BUSYBOX "busybox:1.28.0-glibc"
#define DEFAULT_REPOSITORY "quay.io/coreos/etcd"
#define PEER_TLS_DIR "/etc/etcdtls/member/peer-tls"
#define SERVER_TLS_DIR "/etc/etcdtls/member/server-tls"
#define OPERATOR_TLS_DIR "/etc/etcdtls/operator/etcd-tls"
#define OPERATOR_TLS_VOLUME "etcd-client-tls"

static inline const char *jstr(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }
static inline json_t *jpath(json_t *o, const char *a, const char *b) {
        return json_object_get(json_object_get(o, a), b);
}

bool kube_peer_tls(const struct eg_cluster_spec *s);
bool kube_client_tls(const struct eg_cluster_spec *s);
bool kube_has_pvc(const struct eg_cluster_spec *s);
/* <member>.<cluster>.<ns>.svc<ClusterDomain>, and its peer URL. malloc'd. */
char *kube_member_dns(const struct eg_runtime_target *t, const char *member);
char *kube_member_peer_url(const struct eg_runtime_target *t, const char *member);
/* "sha256:<hex>" of what shapes a member's pod. with_image: the member hash (a different
 * one rolls the member); without: what only a new pod can take (an image change can be
 * made to a running pod). malloc'd. */
char *kube_template_hash(const struct eg_cluster_spec *spec, bool with_image);
/* <repository>:v<version>. malloc'd. */
char *kube_etcd_image(const struct eg_cluster_spec *s);
json_t *kube_cluster_labels(const char *name);
/* The client service <name>-client, or the headless peer service <name>. */
json_t *kube_service_manifest(const char *ns, const char *name, bool headless);
/* A member's pod. token: bootstrap (--initial-cluster-state=new), and with t->seed the
 * restore's init containers; NULL: joining an existing cluster. */
json_t *kube_pod_manifest(const struct eg_runtime_target *t, const char *member, const char *initial_cluster,
                          const char *token);
/* The member's claim, named after it, from spec.pod.persistentVolumeClaimSpec. */
json_t *kube_pvc_manifest(const struct eg_runtime_target *t, const char *member);

/* The value of "--flag=" in the etcd container's command (or args) of a pod; NULL when absent. */
const char *kube_etcd_flag(json_t *pod, const char *flag);

/* Whether the pod keeps its etcd data on a PersistentVolumeClaim. */
bool kube_pod_on_claim(json_t *pod);
/* The pod's Ready condition is False (absent: not known, so not unready). */
bool kube_pod_unready(json_t *pod);
/* An RFC 3339 time as ms since the epoch; 0 when absent or unreadable. */
int64_t kube_parse_time_ms(const char *s);
/* Where the pod is in its life, with Kubernetes' own reason (malloc'd; NULL for RUNNING) and
 * since when: STARTING (Pending: scheduling or Unschedulable, pulling, initialising) from its
 * creation or the end of etcd's last run in it; FAILING (an image that cannot be pulled, a crash
 * loop) from the same; GONE (Failed, Succeeded, Unknown on a lost node, or being deleted);
 * RUNNING once its etcd container runs, ready or not. */
int kube_pod_life(json_t *pod, enum eg_member_life *ret_life, char **ret_reason, int64_t *ret_since_ms);
/* Whether a pod being deleted is still there well past the time its deletion was due (now_ms:
 * the wall clock): no kubelet completes it, as on a lost node. When stuck, *ret_reason
 * (malloc'd) says so with Kubernetes' words; else NULL. */
int kube_pod_stuck_terminating(json_t *pod, int64_t now_ms, char **ret_reason);
