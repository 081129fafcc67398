/* The Kubernetes runtime's state, shared by runtime_kube.c (members and the objects around
 * them) and kube_access.c (how the daemon reaches etcd, and the Secrets it reads). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "etcd-gitops/kube.h"

/* How the daemon authenticates to one cluster's members, learnt from its pods. */
struct client_tls {
        char *ns, *name;
        int64_t checked_ms;
        bool required;            /* members serve https and want a client certificate */
        char *ca, *cert, *key;    /* the operator secret's files, materialised */
        struct client_tls *next;
};

struct kube_runtime {
        struct eg_runtime base;
        struct eg_kube_client *client;
        char *state_dir;
        char *access_dir; /* <state_dir>/kube */
        char *namespace;  /* NULL: list() looks at every namespace */
        enum eg_kube_etcd_access access;
        bool read_only;
        bool proxy_allowed; /* a pods/proxy request got past authorization once */
        struct client_tls *tls;
};

static inline struct kube_runtime *to_kube(struct eg_runtime *rt) { return (struct kube_runtime *)rt; }

/* runtime_kube.c */
/* -EINVAL (with the name in err) unless ns, name and member (when given) are DNS labels. */
int kube_check_names(const char *ns, const char *name, const char *member, struct eg_error *err);
/* The cluster's pods, by upstream's labels. */
int kube_list_cluster_pods(struct kube_runtime *kr, const char *ns, const char *name, json_t **ret,
                           struct eg_error *err);

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
