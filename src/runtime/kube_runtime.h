/* The Kubernetes runtime's state, shared by runtime_kube.c (observing and deleting clusters),
 * kube_members.c and kube_services.c (members and the objects around them), kube_access.c (how
 * the daemon reaches etcd, and the Secrets it reads) and kube_scope.c (which namespaces it
 * looks in). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "etcd-gitops/runtime.h"

/* How the daemon authenticates to one cluster's members, learnt from its pods. */
struct client_tls {
        char *ns, *name;
        int64_t checked_ms;
        bool required;         /* members serve https and want a client certificate */
        char *ca, *cert, *key; /* the operator secret's files, materialised */
        struct client_tls *next;
};

struct kube_runtime {
        struct eg_runtime base;
        struct eg_kube_client *client;
        char *state_dir;
        char *access_dir; /* <state_dir>/kube */
        char *namespace;  /* -n: list() looks only here; NULL: see kube_list_etcd_objects */
        enum eg_kube_etcd_access access;
        bool read_only;
        bool proxy_allowed; /* a pods/proxy request got past authorization once */
        struct client_tls *tls;
        /* what the client was made from: the pod watch makes its own */
        char *kubeconfig, *context, *service_account_dir;
        struct eg_kube_client_options client_options;
        struct kube_watch *watch; /* started by the first change_fd() */
};

static inline struct kube_runtime *to_kube(struct eg_runtime *rt) { return (struct kube_runtime *)rt; }

/* kube_scope.c */
/* The etcd pods and claims (upstream's labels) of every cluster the runtime should see, as two
 * JSON arrays (caller owns): in -n's namespace; else in every namespace where the credentials
 * may list them all; else, one by one, in namespaces (those the source names; NULL: there is no
 * source) and in those remembered. Succeeds with a warning in err for each namespace it may not
 * look in; -EACCES when there is no source and no namespace is known. */
int kube_list_etcd_objects(struct kube_runtime *kr, const char *const *namespaces, size_t n, json_t **ret_pods,
                           json_t **ret_pvcs, struct eg_error *err);
/* Claims with selector in ns (NULL: every namespace): a member's data outlives its pod there.
 * Credentials that may not list them see none: their pods still tell the rest. */
int kube_list_claims(struct kube_runtime *kr, const char *ns, const char *selector, json_t **ret, struct eg_error *err);
/* Records under the state dir that ns/name exists, so that its namespace is looked in (prune
 * finds it) after its manifest is gone; kube_forget_cluster once it is deleted. */
int kube_remember_cluster(struct kube_runtime *kr, const char *ns, const char *name, struct eg_error *err);
void kube_forget_cluster(struct kube_runtime *kr, const char *ns, const char *name);

/* kube_watch.c */
/* A thread watching the etcd pods (in ns; NULL: every namespace) with its own client, which
 * makes the eventfd kube_watch_fd readable at each change. */
struct kube_watch;
int kube_watch_new(const struct eg_kube_config_options *co, const struct eg_kube_client_options *o, const char *ns,
                   struct kube_watch **ret, struct eg_error *err);
int kube_watch_fd(const struct kube_watch *w);
void kube_watch_free(struct kube_watch *w);
/* runtime op */
int kube_change_fd(struct eg_runtime *rt, struct eg_error *err);

/* runtime_kube.c */
/* -EINVAL (with the name in err) unless ns, name and member (when given) are DNS labels. */
int kube_check_names(const char *ns, const char *name, const char *member, struct eg_error *err);
/* kube_check_names, and a spec with a version. */
int kube_check_target(const struct eg_runtime_target *t, const char *member, struct eg_error *err);
/* The cluster's pods, by upstream's labels. */
int kube_list_cluster_pods(struct kube_runtime *kr, const char *ns, const char *name, json_t **ret,
                           struct eg_error *err);
/* API paths of a namespace's collections, of one object in one and of one pod; malloc'd. */
char *kube_pods_path(const char *ns);
char *kube_pod_path(const char *ns, const char *pod);
char *kube_services_path(const char *ns);
char *kube_pvcs_path(const char *ns);
char *kube_pdbs_path(const char *ns);
char *kube_named(char *(*collection)(const char *), const char *ns, const char *name);
/* GET path into *ret; a 404 is -ENOENT with nothing said in err. */
int kube_get_maybe(struct kube_runtime *kr, const char *path, json_t **ret, struct eg_error *err);
int64_t kube_quorum(int64_t n);
char *kube_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec);

/* kube_services.c */
/* The client and peer services, made when missing and repaired when edited (a read-only
 * runtime only looks); owned (may be NULL) collects those an EtcdCluster resource owns. */
int kube_ensure_services(struct kube_runtime *kr, const char *ns, const char *name, json_t *owned,
                         struct eg_error *err);
/* The PDB keeping min_available members (negative: made with a quorum of n_default, an
 * existing one left as it is). */
int kube_ensure_pdb(struct kube_runtime *kr, const char *ns, const char *name, int64_t min_available, int64_t n_default,
                    json_t *owned, struct eg_error *err);
/* One past the number in "<cluster>-<n>"; 0 for a name of another shape. */
uint64_t kube_member_index(const char *cluster, const char *member);
/* The next member number never handed out, kept as an annotation of the client service
 * (kube_client_service_path): read (1, or 0 with *ret 0 when it holds none), written, raised to next. */
char *kube_client_service_path(const char *ns, const char *name);
int kube_read_next_index(struct kube_runtime *kr, const char *cpath, uint64_t *ret, struct eg_error *err);
int kube_write_next_index(struct kube_runtime *kr, const char *cpath, uint64_t next, struct eg_error *err);
int kube_record_next_index(struct kube_runtime *kr, const char *ns, const char *name, uint64_t next,
                           struct eg_error *err);

/* kube_members.c: runtime ops */
int kube_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                   struct eg_error *err);
int kube_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        char **ret_peer_url, struct eg_error *err);
int kube_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                      const char *initial_cluster, struct eg_error *err);
int kube_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                        struct eg_error *err);
int kube_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member, bool delete_data,
                     struct eg_error *err);
int kube_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        struct eg_error *err);
bool kube_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member, const struct eg_cluster_spec *spec);
int kube_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        const char *initial_cluster, struct eg_error *err);

/* kube_adopt.c */
/* Whether an ownerReference ties obj to an EtcdCluster custom resource (coreos etcd-operator's). */
bool kube_upstream_owned(json_t *obj);
/* Appends "kind/name" of obj to list (a JSON array; NULL: nothing noted) when it is upstream-owned. */
int kube_note_upstream_owned(json_t *list, const char *kind, json_t *obj);
/* The noted objects for a reason: "pod/a, service/b", the first few named and the rest counted;
 * NULL for none (or out of memory). malloc'd. */
char *kube_describe_owned(json_t *list);

/* kube_access.c */
/* Through the pod proxy, whether the credentials may use pods/proxy, asked once: etcd behind
 * a forbidden proxy would look like dead members. */
int kube_check_proxy_allowed(struct kube_runtime *kr, const char *ns, const char *name, struct eg_error *err);
/* -EPROTONOSUPPORT with the reason: members that want client certificates, through the proxy. */
int kube_refuse_proxy_tls(const char *ns, const char *name, struct eg_error *err);
void kube_client_tls_free(struct client_tls *t);
/* runtime ops */
int kube_sync_secret(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
int kube_etcd_access(struct eg_runtime *rt, const char *ns, const char *name, struct eg_etcd_options *ret,
                     struct eg_error *err);
int kube_disown(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
int kube_record_event(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err);
