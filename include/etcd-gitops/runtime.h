/* runtime: where etcd members live. One interface (a struct of function pointers), two
 * implementations: local processes (the default) and Kubernetes pods. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/kube.h"
#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

const char *eg_member_life_to_string(enum eg_member_life l);

struct eg_runtime_member {
        char *name;
        bool running; /* life == EG_LIFE_RUNNING */
        enum eg_member_life life;
        char *life_reason;              /* the platform's own words for STARTING/FAILING/GONE (e.g.
                               "ImagePullBackOff: ..."); NULL when there is nothing to add */
        int64_t life_since_realtime_ms; /* when it entered that state (pod creation for STARTING); 0 unknown */
        /* its data survives its process: restarting it in place keeps its identity and log
         * (a local data dir holding a WAL, a PersistentVolumeClaim) */
        bool data_kept;
        /* prepared and never launched: starting it needs no data (a crash came between
         * the reservation and the start) */
        bool never_started;
        /* a member of the cluster's initial set: it starts knowing its peers, without asking
         * etcd (which may not answer before a majority of them runs) */
        bool initial;
        /* running, but the platform does not count it as serving yet (a pod whose Ready
         * condition is False: its readiness probe has not passed since it started); a step
         * that takes another member down waits for it, as the PDB and the client Service do */
        bool unready;
        int64_t pid;      /* local runtime: the etcd process; 0 otherwise */
        char *version;    /* version it was started with */
        char *spec_hash;  /* member template hash it was started with */
        char *client_url; /* where this daemon reaches its etcd client port */
        char *peer_url;
        int64_t started_realtime_ms;
};

struct eg_runtime_cluster {
        char *namespace;
        char *name;
        /* what the runtime still holds of members it no longer counts: pods whose deletion never
         * completes (no kubelet on a lost node confirms it). Reported (life GONE, with why), never
         * planned for: stopping them again would change nothing. */
        struct eg_runtime_member *stuck;
        size_t n_stuck;
        uint64_t next_index; /* next member number never handed out */
        struct eg_runtime_member *members;
        size_t n_members;
        /* objects of the cluster that an EtcdCluster custom resource owns (the ownerReferences
         * coreos etcd-operator set), which deleting it or its CRD would garbage-collect:
         * "pod/a, service/b, ..." (a long list ends "and N more"); NULL when none */
        char *upstream_owned;
};
void eg_runtime_cluster_done(struct eg_runtime_cluster *c);
void eg_runtime_clusters_free(struct eg_runtime_cluster *c, size_t n);

/* A restore's snapshot as a seed member fetches it itself, where the daemon cannot hand it a
 * data dir (kubernetes: an init container signs the GET with the secret's credentials). */
struct eg_runtime_seed {
        const char *url;        /* the S3 object, path-style or virtual-hosted */
        const char *region;     /* SigV4 signing region */
        const char *aws_secret; /* secret whose "credentials" key is an AWS shared credentials file */
};

/* What a mutating call acts for. */
struct eg_runtime_target {
        const char *namespace;
        const char *name;
        const struct eg_cluster_spec *spec;
        const char *revision; /* source revision, recorded with the member */
        /* bootstrap only, NULL for a fresh cluster: fills the first member's data dir
         * (which does not exist yet) before it starts, as a restore from a snapshot does.
         * initial_cluster and token are what that member will be started with. */
        int (*prepare_data)(void *userdata, const char *member, const char *peer_url, const char *initial_cluster,
                            const char *token, const char *data_dir, struct eg_error *err);
        void *prepare_data_userdata;
        /* bootstrap only, with prepare_data: the same snapshot for runtimes whose members
         * fetch it themselves (fetches_restores); NULL when it cannot be fetched that way */
        const struct eg_runtime_seed *seed;
};

/* One decision the reconciler recorded, told to the platform as well (a Kubernetes Event). */
struct eg_runtime_event {
        const char *namespace, *name; /* the cluster */
        const char *member;           /* the member it concerns; NULL: the cluster as a whole */
        const char *decision;         /* the audit log's name: "replace-dead", "quorum-lost" ... */
        const char *message;          /* the decision's reason */
        const char *error;            /* why it failed; NULL */
        bool warning;                 /* failed, blocked, quorum lost */
};

struct eg_runtime;

struct eg_runtime_ops {
        const char *name; /* "local", "kubernetes" */
        /* restores reach members only as a seed (from S3), never through prepare_data */
        bool fetches_restores;
        /* Every cluster the runtime holds members or records for. namespaces are those the
         * source names clusters in (n_namespaces of them; NULL without a source): a runtime
         * that may not list every namespace at once looks in those and in the ones it made
         * clusters in. One it may not look in either is skipped: it succeeds with a warning
         * in err naming the grant (the clusters there are missing from *ret, so nothing
         * prunes them). */
        int (*list)(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                    struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err);
        /* One cluster; -ENOENT when the runtime has nothing for it. flags: EG_OBSERVE_*. */
        int (*observe)(struct eg_runtime *rt, const char *ns, const char *name, unsigned flags,
                       struct eg_runtime_cluster *ret, struct eg_error *err);
        /* Starts the initial members together: static --initial-cluster of all of them,
         * --initial-cluster-state=new and a fresh token. Fails (and starts nothing that
         * stays running) when the cluster already exists. */
        int (*bootstrap)(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                         struct eg_error *err);
        /* Reserves a member (ports, record, not started) and returns its peer URL, so it
         * can be added to etcd before it starts. */
        int (*prepare_member)(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              char **ret_peer_url, struct eg_error *err);
        /* Starts a prepared member joining an existing cluster. initial_cluster is the
         * "name=peerURL,..." list including the member itself. */
        int (*start_member)(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                            const char *initial_cluster, struct eg_error *err);
        /* A prepared member that etcd refused to add (it never joined): forgets it, and hands
         * its name out again when it was the last one reserved, so a refusal burns no name. */
        int (*release_member)(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                              struct eg_error *err);
        /* Stops a member (SIGTERM, then SIGKILL after a grace period / pod delete) and
         * forgets it; its data is deleted only when delete_data. */
        int (*stop_member)(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                           bool delete_data, struct eg_error *err);
        /* Starts a member whose process is gone again, in place: same name, identity, data
         * and the version it ran (not t->spec's). initial_cluster is used only by a member
         * that never started and was not bootstrapped with the cluster (NULL otherwise).
         * -EOPNOTSUPP where its data cannot survive (an emptyDir pod): replace it instead. */
        int (*restart_member)(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              const char *initial_cluster, struct eg_error *err);
        /* Disaster recovery (etcd's --force-new-cluster): stops the member if it runs and
         * starts it once from its own data with a membership of itself alone, the version it
         * ran and t->spec's environment. Only this start is forced: later restarts in place
         * are ordinary. -ENODATA when it has no data to recover from. Every other member
         * must be stopped first: they would otherwise still hold the old membership. NULL:
         * the runtime cannot recover a cluster yet. */
        int (*force_new_cluster)(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                                 struct eg_error *err);
        /* Replaces a running member by one with t->spec's version and template, keeping its
         * name, identity and data. Returns once the new one is started (not yet healthy). */
        int (*upgrade_member)(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              struct eg_error *err);
        /* Whether upgrade_member can give member spec's template and keep its data. NULL:
         * always. A member that cannot is replaced instead, its successor added first. */
        bool (*rolls_in_place)(struct eg_runtime *rt, const char *ns, const char *member,
                               const struct eg_cluster_spec *spec);
        /* Stops every member and forgets the cluster; data deleted only when delete_data. */
        int (*delete_cluster)(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                              struct eg_error *err);
        /* A file descriptor that turns readable when a member may have changed outside a pass
         * (a pod failed, was deleted or came up), so that a pass can start at once; the caller
         * reads 8 bytes to clear it and polls it only, never closes it. Negative errno when it
         * cannot be had. NULL: no such signal (rechecks find changes). */
        int (*change_fd)(struct eg_runtime *rt, struct eg_error *err);
        /* The member template hash of a spec: members started from a different hash are
         * rolled. Only what this runtime actually applies goes into it. malloc'd. */
        char *(*member_hash)(struct eg_runtime *rt, const struct eg_cluster_spec *spec);
        /* How this daemon reaches the cluster's members: TLS files and headers for the
         * etcd client (e.g. through the Kubernetes API server's pod proxy). NULL: plain
         * client URLs. Strings stay owned by the runtime. */
        int (*etcd_access)(struct eg_runtime *rt, const char *ns, const char *name, struct eg_etcd_options *ret,
                           struct eg_error *err);
        /* The daemon reads secrets (AWS credentials, client TLS) as files under
         * <state_dir>/secrets/NS/NAME/. NULL: the user keeps that directory (local); else
         * it (re)writes it from where the runtime keeps secrets (a Kubernetes Secret). */
        int (*sync_secret)(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
        /* Removes the ownerReferences to an EtcdCluster custom resource from the cluster's
         * objects (upstream_owned), keeping every other reference, so that deleting the resource
         * or its CRD cannot garbage-collect what this daemon now manages. NULL: the runtime
         * never finds such objects. */
        int (*disown)(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
        /* Tells the platform about a decision (for `kubectl describe`). Best effort: the audit log
         * is the record. NULL: the platform has nowhere to show it (local). */
        int (*record_event)(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err);
        void (*free)(struct eg_runtime *rt);
};

struct eg_runtime {
        const struct eg_runtime_ops *ops;
};

/* ---- calling a runtime: every caller goes through these, never through ops ---- */

/* The optional operations: their wrappers return -EOPNOTSUPP on a runtime without them. */
enum eg_runtime_feature {
        EG_RUNTIME_RELEASE_MEMBER,
        EG_RUNTIME_RESTART_MEMBER,
        EG_RUNTIME_FORCE_NEW_CLUSTER,
        EG_RUNTIME_CHANGE_FD,
        EG_RUNTIME_DISOWN,
        EG_RUNTIME_RECORD_EVENT,
};
bool eg_runtime_supports(const struct eg_runtime *rt, enum eg_runtime_feature f);

const char *eg_runtime_name(const struct eg_runtime *rt);
bool eg_runtime_fetches_restores(const struct eg_runtime *rt);

int eg_runtime_list(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                    struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err);
int eg_runtime_observe(struct eg_runtime *rt, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                       struct eg_error *err);
/* Observes and changes nothing: a runtime that repairs what it observes (Kubernetes'
 * services and PDB) leaves them be. For clusters suspended by hand, and for readers
 * (backups, status). */
#define EG_OBSERVE_LOOK_ONLY 1u
int eg_runtime_look(struct eg_runtime *rt, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                    struct eg_error *err);
int eg_runtime_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                         struct eg_error *err);
int eg_runtime_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              char **ret_peer_url, struct eg_error *err);
int eg_runtime_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                            const char *initial_cluster, struct eg_error *err);
int eg_runtime_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                              struct eg_error *err);
int eg_runtime_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                           bool delete_data, struct eg_error *err);
int eg_runtime_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              const char *initial_cluster, struct eg_error *err);
int eg_runtime_force_new_cluster(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                                 struct eg_error *err);
int eg_runtime_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                              struct eg_error *err);
/* true on a runtime that does not say (it always can). */
bool eg_runtime_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member,
                               const struct eg_cluster_spec *spec);
int eg_runtime_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                              struct eg_error *err);
int eg_runtime_change_fd(struct eg_runtime *rt, struct eg_error *err);
/* malloc'd; NULL on allocation failure. */
char *eg_runtime_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec);
/* 0 leaving *ret as it was on a runtime whose members are reached at plain client URLs. */
int eg_runtime_etcd_access(struct eg_runtime *rt, const char *ns, const char *name, struct eg_etcd_options *ret,
                           struct eg_error *err);
/* 0 on a runtime where the user keeps <state_dir>/secrets/ (local). */
int eg_runtime_sync_secret(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
int eg_runtime_disown(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err);
int eg_runtime_record_event(struct eg_runtime *rt, const struct eg_runtime_event *ev, struct eg_error *err);
/* Accepts NULL. */
void eg_runtime_free(struct eg_runtime *rt);

struct eg_runtime_local_options {
        const char *state_dir;      /* members under <state_dir>/clusters/<ns>/<name>/ */
        const char *etcd_bin_dir;   /* DIR/<version>/etcd or DIR/etcd-<version>; may be NULL */
        const char *advertise_host; /* default 127.0.0.1 */
        int port_base;              /* first port tried; default 23790 */
        int64_t stop_grace_ms;      /* SIGTERM -> SIGKILL; default 10000 */
};
int eg_runtime_local_new(const struct eg_runtime_local_options *opt, struct eg_runtime **ret, struct eg_error *err);

/* The kubernetes runtime: members as pods (specs/kubernetes.md). */
enum eg_kube_etcd_access { EG_KUBE_ACCESS_PROXY, EG_KUBE_ACCESS_DIRECT };

struct eg_runtime_kube_options {
        /* materialised TLS files, and the namespaces it made clusters in, under <state_dir>/kube/ */
        const char *state_dir;
        const char *kubeconfig; /* as eg_kube_config_options */
        const char *context;
        /* list(): only this namespace; NULL: every namespace, or where the credentials may not
         * list them all, the namespaces the source names and those it made clusters in */
        const char *namespace;
        /* PROXY (default): members reached through the API server's pod proxy; DIRECT:
         * through their cluster DNS names (the daemon runs inside the cluster network),
         * the only way to members that require client certificates (the operator secret's
         * etcd-client.crt/key/ca, read from the API). */
        enum eg_kube_etcd_access etcd_access;
        /* observe() never repairs services or the PDB (diff, dry runs) */
        bool read_only;
        const char *service_account_dir; /* tests; NULL: the standard path */
        struct eg_kube_client_options client;
};
int eg_runtime_kube_new(const struct eg_runtime_kube_options *o, struct eg_runtime **ret, struct eg_error *err);
