/* Shared between the reconcile pass, the execution of its actions, the status builder and restores. */
#pragma once

#include <jansson.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/etcd.h"
#include "etcd-gitops/reconcile.h"

/* Everything one observation of a cluster found, joined. */
struct observation {
        char *ns, *name;
        bool rc_exists;
        struct eg_runtime_cluster rc;
        bool ml_ok;
        struct eg_etcd_member_list ml;
        char *etcd_error;       /* why the member list could not be had */
        uint64_t leader_id;
        char *leader_name;
        struct eg_observed_cluster oc; /* what the planner sees */
        char **endpoints;       /* client URLs of running members */
        size_t n_endpoints;
};
void observation_done(struct observation *o);

/* ---- executing actions (execute.c) ---- */

/* A client for the cluster's members at endpoints, reached as the runtime says. NULL with
 * err set when the runtime cannot say how to reach them (e.g. TLS through a proxy that
 * cannot carry client certificates); NULL alone when there is no endpoint. */
struct eg_etcd *reconcile_etcd_client(const struct eg_reconciler_options *opt, const char *ns, const char *name,
                                      char *const *endpoints, size_t n, struct eg_error *err);
/* Runs one action. Returns 0, -EAGAIN when etcd asked to retry later (not a failure), or
 * a negative errno with err set. */
int reconcile_execute(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                      const struct observation *o, const struct eg_action *a, struct eg_error *err);

/* Upstream-shaped status of one cluster (caller owns). spec may be NULL; plan may be
 * NULL (get without a source). */
json_t *status_build(const struct observation *o, const struct eg_cluster_spec *spec,
                     const struct eg_plan *plan, const char *revision, const char *commit,
                     const char *last_error, int64_t now_realtime_ms);

/* Writes <state_dir>/status/<ns>/<name>.json when its content changed. */
int status_write(const char *state_dir, const char *ns, const char *name, json_t *status);
/* Reads it back; NULL when absent. */
json_t *status_read(const char *state_dir, const char *ns, const char *name);
int status_remove(const char *state_dir, const char *ns, const char *name);

/* ---- restores (restore.c) ---- */

/* The EtcdRestore still to apply to this cluster: named by the source and not applied
 * yet. One that names a running cluster without overwrite: true is refused instead
 * (NULL returned, the restore in *ret_refused when that is not NULL). */
const struct eg_object *pending_restore(const char *state_dir, const struct eg_desired_set *d, const char *ns,
                                        const char *name, bool cluster_exists, const struct eg_object **ret_refused);
/* What a restore reads from, for reasons: object, else the file or S3 path. */
const char *restore_source(const struct eg_restore_spec *s);
/* Writes <state_dir>/restores/<ns>/<name>.json: upstream's succeeded/reason plus what was restored. */
void restore_record(const char *state_dir, const char *ns, const char *name, const struct eg_object *restore,
                    const struct eg_restore_info *info, bool ok, const char *reason);
/* Before a restore's snapshot is fetched: refuses what the runtime cannot restore (its seed
 * fetches from S3 with an awsSecret, or nothing) and writes the awsSecret's files where the
 * fetch reads them. */
int restore_ready(struct eg_runtime *rt, const char *ns, const struct eg_restore_spec *r, struct eg_error *err);
/* The seed for a runtime that fetches restores itself: url and region malloc'd into it. */
struct restore_seed {
        struct eg_runtime_seed seed;
        char *url, *region;
};
int restore_seed_init(struct restore_seed *s, const char *state_dir, const char *ns, const struct eg_restore_spec *r,
                      const char *object, struct eg_error *err);
void restore_seed_done(struct restore_seed *s);
/* eg_runtime_target.prepare_data for a restore: userdata is the snapshot path. */
int restore_prepare_data(void *userdata, const char *member, const char *peer_url, const char *initial_cluster,
                         const char *token, const char *data_dir, struct eg_error *err);
