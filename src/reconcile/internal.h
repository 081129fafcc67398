/* Shared between the reconcile pass, the execution of its actions, the status builder and restores. */
#pragma once

#include <jansson.h>
#include <string.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/etcd.h"
#include "etcd-gitops/reconcile.h"

#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
/* How often a converged cluster is looked at again. Each look costs a few etcd calls per
 * member, so it balances how soon a failure is noticed against an idle daemon's CPU (2 % of
 * a core for 50 clusters). A killed member does not wait for it: the daemon sees its process
 * end (pidfd) or its pod change (watch) and passes at once. What only a look finds is a
 * member that hangs or stops answering; it is judged dead dead_after (5 s) after the look
 * that finds it, and while a cluster was unsettled in the last STEADY_AFTER_MS it is looked
 * at every RECHECK_MS, later every RECHECK_STEADY_MS. */
#define RECHECK_MS 1500
#define RECHECK_STEADY_MS 3000
#define STEADY_AFTER_MS 30000
/* While something is starting or catching up, look sooner. */
#define RECHECK_BUSY_MS 100

static inline bool str_eq(const char *a, const char *b) { return (!a && !b) || (a && b && strcmp(a, b) == 0); }

static inline void set_str(char **dst, const char *src) {
        free(*dst);
        *dst = src ? strdup(src) : NULL;
}

/* ---- what the reconciler remembers between passes (track.c) ---- */

/* Restarts in place remembered per member: enough to judge the policy's limit (the
 * planner is told how many fell in its window) and to space them out. */
#define RESTART_HISTORY 16

struct member_track {
        char *name;
        int64_t unhealthy_since_ms, unreachable_since_ms;
        int64_t last_healthy_ms;
        int64_t restart_ms[RESTART_HISTORY]; /* ring, newest at (n_restarts - 1) % RESTART_HISTORY */
        size_t n_restarts;
        int64_t restart_not_before_ms;
        bool failing; /* seen failing by the last pass */
};

struct cluster_track {
        char *ns, *name;
        int failures;
        int64_t next_attempt_ms;
        char *backoff_revision;  /* the revision that failed: a new one is tried at once */
        char *recorded_revision; /* revision of the last audit record for this cluster */
        enum eg_plan_state recorded_state;
        char *recorded_reason;
        char *last_error;
        char *applied_revision;       /* last revision at which the cluster was converged */
        int64_t quorum_lost_since_ms; /* monotonic; 0 while the planner finds quorum */
        int64_t converged_since_ms;   /* monotonic; 0 unless the last pass found it converged */
        struct member_track *members;
        size_t n_members;
        int64_t *pids; /* member processes seen running by the last observation */
        size_t n_pids;
        bool seen; /* touched this pass */
        /* the cluster's manifest as the last pass found it (compact JSON, keys sorted; NULL:
         * none): a pass takes the clusters whose manifest changed first */
        char *manifest;
        bool seen_manifest; /* manifest is what a pass found (NULL: no manifest) */
        /* the etcd client of the last observation, kept so that a recheck reuses its
         * connections instead of opening new ones (TCP, and TLS where the cluster has it) */
        struct eg_etcd *etcd;
        char *etcd_key; /* the endpoints and access it was made for */
        /* the runtime's hash of the manifest's member template, for member_hash_revision */
        char *member_hash, *member_hash_revision;
};

struct eg_reconciler {
        struct eg_reconciler_options opt;
        struct eg_journal *journal;     /* opt.journal, else own */
        struct eg_journal *own_journal; /* over opt.audit, for a caller without a journal */
        struct cluster_track *tracks;
        size_t n_tracks;
        /* the runtime's last list: why it failed, or what it skipped (logged once each) */
        char *list_error, *list_warning;
        char *ordered_revision; /* the source revision the last pass ordered its clusters for */
        size_t events_failing;  /* platform events lost since the last one posted */
};

/* The track of ns/name, made on first sight; NULL when out of memory. */
struct cluster_track *track_get(struct eg_reconciler *r, const char *ns, const char *name);
void track_done(struct cluster_track *t);
/* Remembers the member processes rc runs, for eg_reconciler_member_pids. */
void track_pids(struct cluster_track *t, const struct eg_runtime_cluster *rc);
/* Whether a member began failing since the last pass: the wait it causes is recorded then,
 * with the platform's reason, even when the cluster was waiting already. */
bool track_began_failing(struct cluster_track *t, const struct eg_observed_cluster *oc);
/* Fills in what the planner judges from member's history (since when it is unhealthy or
 * unreachable, its restarts in place) and remembers this look. */
void track_member_seen(struct cluster_track *t, const char *member, struct eg_observed_member *om,
                       int64_t restart_window_ms, int64_t now);
/* A restart in place of member, at now. */
void track_restart(struct cluster_track *t, const char *member, int64_t window_ms, int64_t now);
/* A failure at rev: the cluster waits before it is tried again at that revision. */
void track_backoff(struct cluster_track *t, const struct eg_revision_info *rev);
/* The client for the cluster's members at endpoints: the track's own, made again when the
 * endpoints or the runtime's way to reach them changed. Owned by the track. NULL with err
 * set when the runtime cannot say how to reach them; NULL alone when there is no endpoint. */
struct eg_etcd *track_etcd(struct eg_reconciler *r, struct cluster_track *t, char *const *endpoints, size_t n,
                           struct eg_error *err);
/* Closes the track's client and its connections: the cluster is gone or unreachable. */
void track_etcd_drop(struct cluster_track *t);
/* The runtime's hash of obj's member template (malloc'd; NULL without obj), remembered in t
 * (may be NULL) for the source revision (NULL: not remembered): a revision has one manifest,
 * and hashing it again would serialise and digest it on every look at every cluster. */
char *track_member_hash(struct cluster_track *t, struct eg_runtime *rt, const struct eg_object *obj,
                        const char *revision);

/* Everything one observation of a cluster found, joined. */
struct observation {
        char *ns, *name;
        bool rc_exists;
        struct eg_runtime_cluster rc;
        bool ml_ok;
        struct eg_etcd_member_list ml;
        char *etcd_error; /* why the member list could not be had */
        uint64_t leader_id;
        char *leader_name;
        struct eg_observed_cluster oc; /* what the planner sees */
        char **endpoints;              /* client URLs of running members */
        size_t n_endpoints;
};
void observation_done(struct observation *o);
/* Observes ns/name into o (always initialised; the caller ends it with observation_done),
 * updating the members' tracks. < 0 when the runtime cannot be asked (o->etcd_error says why). */
/* look_only: eg_runtime_look, the runtime repairs nothing (a suspended cluster, status) */
int observe(struct eg_reconciler *r, struct cluster_track *t, const char *ns, const char *name, bool look_only,
            struct observation *o, int64_t now);

/* ---- one cluster's turn in a pass: observe -> plan -> execute (pass.c) -> record (record.c) ---- */

/* The seed for a runtime that fetches restores itself: url and region malloc'd into it. */
struct restore_seed {
        struct eg_runtime_seed seed;
        char *url, *region;
};

/* An EtcdRestore applied by this pass (restore.c). */
struct restore_step {
        const struct eg_object *restore; /* pending for this cluster; NULL: none */
        char *snapshot;                  /* fetched and verified; deleted when the pass ends */
        struct eg_restore_info info;
        struct restore_seed seed;
};

struct cluster_pass {
        struct eg_reconciler *r;
        const struct eg_desired_set *desired; /* may be NULL */
        const struct eg_revision_info *rev;   /* may be NULL */
        const char *ns, *name;
        bool prune_allowed;
        struct eg_pass_result *res;
        int64_t now; /* monotonic, when the turn began */
        struct cluster_track *t;
        const struct eg_object *obj; /* the EtcdCluster; NULL: not in the source */
        bool invalid;                /* the source reports errors for it */
        bool revision_changed;       /* since its last record */
        bool began_failing;          /* a member, since the last pass */
        struct observation o;
        struct restore_step restore;
        char *hash; /* the runtime's hash of the desired member template */
        struct eg_plan plan;
        const struct eg_action *acted; /* the step taken (dry run: that would be), to record */
        int k;                         /* what taking it returned */
        const char *outcome;           /* "ok", "failed", "dry-run"; NULL: none, or etcd asked to wait */
        int64_t step_ms;
        struct eg_error err; /* why the step failed */
};

/* Takes ns/name one step further, records what it decided and writes its status; adds to
 * res what the pass found. */
void reconcile_cluster(struct eg_reconciler *r, const struct eg_desired_set *desired,
                       const struct eg_revision_info *rev, const char *ns, const char *name, bool prune_allowed,
                       struct eg_pass_result *res);
/* Before a cluster is planned: the runtime's hash of obj's member template (track_member_hash),
 * and the members on an old one that must be replaced to roll marked in o. */
char *plan_prepare(struct eg_runtime *rt, struct cluster_track *t, const char *revision, const char *ns,
                   const struct eg_object *obj, struct observation *o);
/* Ends the cluster's turn on a failure: it backs off, the error logged once per distinct text. */
void pass_failed(struct cluster_pass *p, const char *what, const char *why);

/* One decision about the cluster, to the journal and the platform's events: what was decided
 * in d (kind, member, reason, outcome, error, duration); the cluster, revision and actor are
 * the pass's, the manifest that caused it obj's (else diag's). */
void record_decision(struct cluster_pass *p, const struct eg_object *obj, const struct eg_diag *diag,
                     const struct eg_decision *d);
/* For a caller without a journal: its decisions reach its on_event (userdata: the reconciler). */
void record_to_listener(void *userdata, const struct eg_decision *d, uint64_t seq);
/* What the pass decided (the step taken, else the cluster's state when it changed), when
 * it looks again, and the cluster's status file. */
void record_pass(struct cluster_pass *p);

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
json_t *status_build(const struct observation *o, const struct eg_cluster_spec *spec, const struct eg_plan *plan,
                     const char *revision, const char *commit, const char *last_error, int64_t now_realtime_ms);

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
/* eg_runtime_target.prepare_data for a restore: userdata is the snapshot path. */
int restore_prepare_data(void *userdata, const char *member, const char *peer_url, const char *initial_cluster,
                         const char *token, const char *data_dir, struct eg_error *err);

/* The restore step of a pass: the EtcdRestore pending for the cluster (p->restore), its
 * snapshot fetched and verified before anything is torn down or started. One refused is
 * recorded as blocked. < 0 when the fetch failed: recorded, and the pass ends there. */
int restore_step(struct cluster_pass *p);
/* What the planner is told the cluster is restored from; NULL: no restore. */
const char *restore_step_source(const struct restore_step *s);
/* Points the bootstrap tg is for at the fetched snapshot (nothing when there is none). */
int restore_step_target(struct cluster_pass *p, struct eg_runtime_target *tg, struct eg_error *err);
/* The bootstrap from the snapshot went through: the restore is not applied again. */
void restore_step_applied(struct cluster_pass *p);
/* Deletes the snapshot: a copy of a whole database is not left in the state dir. */
void restore_step_done(struct restore_step *s);
