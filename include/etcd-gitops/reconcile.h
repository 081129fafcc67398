/* reconcile: observe -> plan -> execute -> audit for each cluster, and its status. */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/plan.h"
#include "etcd-gitops/runtime.h"
#include "etcd-gitops/spec.h"

/* What the reconciler reports as it goes, for metrics and git notes. */
enum eg_reconcile_event_kind {
        EG_EVENT_DECISION,            /* one audit-worthy decision (also in dry-run, also without a log);
                                  only without a journal, whose sinks see them instead */
        EG_EVENT_CLUSTER_PASS,        /* one cluster observed and planned (and maybe a step taken) */
        EG_EVENT_PLATFORM_EVENT_LOST, /* a decision's Kubernetes Event could not be posted */
};

struct eg_reconcile_event {
        enum eg_reconcile_event_kind kind;
        const char *namespace, *name;
        const char *revision, *commit;
        /* DECISION (PLATFORM_EVENT_LOST: decision only) */
        const char *decision, *member, *reason, *outcome, *error;
        /* CLUSTER_PASS */
        int64_t duration_ms;
        enum eg_plan_state state;
        size_t ready, desired, voters, healthy_voters;
        bool quorum;
};

typedef void (*eg_reconcile_event_fn)(void *userdata, const struct eg_reconcile_event *ev);

struct eg_reconciler_options {
        eg_reconcile_event_fn on_event; /* may be NULL */
        void *event_userdata;
        struct eg_runtime *runtime; /* borrowed */
        /* borrowed; every decision is recorded through it (actor "reconcile"). NULL: through
         * a journal of the reconciler's own over audit, its decisions reported to on_event */
        struct eg_journal *journal;
        struct eg_audit *audit; /* borrowed; NULL = no audit records (diff, get); unused with a journal */
        struct eg_policy policy;
        bool dry_run;            /* plan and record "would do", change nothing */
        const char *state_dir;   /* status files under <state_dir>/status/ */
        const char *namespace;   /* only this namespace when set */
        int64_t etcd_timeout_ms; /* per etcd call; default 1500 */
        /* when it becomes non-zero (a signal handler sets it), a pass finishes the step under
         * way and takes up no further cluster; may be NULL */
        const volatile sig_atomic_t *stop;
};

struct eg_reconciler;

int eg_reconciler_new(const struct eg_reconciler_options *opt, struct eg_reconciler **ret);
void eg_reconciler_free(struct eg_reconciler *r);

/* What the source says this pass. commit may be NULL (plain directory outside git). */
struct eg_revision_info {
        const char *revision; /* e.g. "sha256:<hex>" or "main@sha1:<hex>" */
        const char *commit;
        bool dirty;
};

struct eg_pass_result {
        size_t n_clusters;
        size_t n_converged; /* converged or paused */
        size_t n_actions;   /* actions executed (or recorded as would-do in dry-run) */
        size_t n_failed;
        size_t n_blocked;    /* blocked, quorum lost, untouched */
        bool all_converged;  /* every desired cluster converged and nothing left to prune */
        int64_t next_due_ms; /* monotonic time the next pass should run by (backoff aware) */
};

/* One pass over every cluster in desired ∪ the runtime's clusters: executes at most one
 * step per cluster (clusters in backoff are skipped until due), appends audit records
 * and writes status files. Never fails because one cluster failed. */
int eg_reconciler_pass(struct eg_reconciler *r, const struct eg_desired_set *desired,
                       const struct eg_revision_info *rev, struct eg_pass_result *ret);
/* Why the last pass, plan or status could not list the runtime's clusters, or could not see
 * all of them (a namespace skipped), in the runtime's words: a missing grant names the binding
 * to add. NULL when it saw everything. Owned by r, valid until its next call. */
const char *eg_reconciler_list_problem(const struct eg_reconciler *r);

/* Plans every cluster without executing anything (diff). Returns a JSON array of
 * {"cluster","state","reason","actions":[{"kind","member","reason"}],"desired":..,
 *  "observed":..} (caller owns). */
int eg_reconciler_plan_all(struct eg_reconciler *r, const struct eg_desired_set *desired, json_t **ret);

/* Live status of every cluster the runtime holds (get): upstream status shape plus
 * leader, revision applied and members (caller owns the array). */
int eg_reconciler_status_all(struct eg_reconciler *r, json_t **ret);

/* Marks a cluster due now (after a change of source). */
void eg_reconciler_poke_all(struct eg_reconciler *r);
/* The processes of the members the last pass saw running (local runtime; pods have none),
 * so that a caller can watch for their exit and start a pass at once rather than at the
 * next recheck. *ret is malloc'd (NULL when there are none). Not while a pass runs. */
int eg_reconciler_member_pids(struct eg_reconciler *r, int64_t **ret, size_t *ret_n);

/* ---- suspension by hand (suspend.c): a cluster held without a commit ---- */

/* A suspended cluster is observed, planned and reported like any other, and never changed:
 * no step of its plan is taken, no restore fetched, no prune; what the plan would do is
 * recorded as a "suspended" decision once per change. Its EtcdBackups go on (they only read).
 * Kept as one file per cluster under the state dir: it outlives the process that set it. */

/* Suspends (on) or resumes ns/name, or, when both are NULL, every cluster r knows: desired
 * at its last pass, listed by its runtime, or suspended. Each change is recorded through r's
 * journal as decision "suspend" or "resume" with actor and reason (may be NULL); a cluster
 * already so is left as it is, without a record. Returns how many clusters changed (0: all
 * already so); -ENOENT for a cluster r does not know, err naming those it knows, or for every
 * cluster when it knows none. */
int eg_reconciler_set_suspended(struct eg_reconciler *r, const char *ns, const char *name, bool on, const char *reason,
                                const char *actor, struct eg_error *err);

/* Whether ns/name is suspended under state_dir (NULL: nothing is): 1 with *ret (may be NULL)
 * the object {"reason","actor","since"} the caller owns, 0 when not, a negative errno when
 * it cannot be told. */
int eg_suspension_read(const char *state_dir, const char *ns, const char *name, json_t **ret);

/* ---- guided quorum recovery (recover.c): etcd's documented disaster recovery, on demand ---- */

/* One member of the runtime as recovery sees it. */
struct eg_recover_member {
        char *name;
        char *client_url;
        bool running;   /* its process is alive */
        bool answers;   /* it answered status: raft_index and revision are its own */
        bool voter;     /* a voting member of the membership a survivor reports (every member
                           that ever started when none answers) */
        bool data_kept; /* not running, its data survives: it could come back in place */
        uint64_t raft_index;
        int64_t revision;
};

struct eg_recover_view {
        struct eg_recover_member *members;
        size_t n_members;
        size_t voters;       /* voting members, also those the runtime no longer holds */
        char *version;       /* the etcd version the cluster ran */
        uint64_t next_index; /* the runtime's next member number */
        /* the newest verified backup the cluster's EtcdBackups recorded; NULL: none */
        char *backup_ref;        /* a file path or "s3://BUCKET/KEY" */
        int64_t backup_revision; /* 0: unknown */
        char *backup_date;
};
void eg_recover_view_done(struct eg_recover_view *v);

/* Observes ns/name for recovery (asks each running member's status, reads the backup
 * status files under state_dir). -ENOENT when the runtime has no such cluster. */
int eg_recover_observe(struct eg_runtime *rt, const char *state_dir, const char *ns, const char *name,
                       struct eg_recover_view *ret, struct eg_error *err);

/* The answering member with the highest raft index (then revision); -1 when none answers. */
int eg_recover_most_advanced(const struct eg_recover_view *v);

struct eg_recover_request {
        bool from_backup;       /* else from a member */
        const char *member;     /* from a member: NULL for the most advanced */
        const char *backup_ref; /* from a backup: NULL for the view's newest */
        bool force;             /* go on although members with data could come back in place */
};

struct eg_recover_plan {
        int seed;               /* from a member: its index in the view */
        const char *backup_ref; /* from a backup: the request's or the view's (borrowed) */
        int64_t revision_gap;   /* the most advanced survivor's revision minus what is kept; -1 unknown */
        char *reason;           /* what happens and what is lost, one sentence */
};
void eg_recover_plan_done(struct eg_recover_plan *p);

/* Pure: what recovering cluster (for messages) as asked would do. Refuses with err saying
 * why and what to do instead: -EBUSY while a majority of voters answers, or (unless force)
 * could answer again once restarted in place; -ENOENT for an unknown member or no backup;
 * -ENODATA for a member with no data to recover from, -EINVAL for one that is no voter. */
int eg_recover_plan(const struct eg_recover_view *v, const struct eg_recover_request *req, const char *cluster,
                    struct eg_recover_plan *ret, struct eg_error *err);

struct eg_recover_options {
        struct eg_runtime *runtime; /* borrowed */
        struct eg_journal *journal; /* borrowed; the recovery is one record. NULL: straight to audit */
        struct eg_audit *audit;     /* borrowed; may be NULL; unused with a journal */
        const char *state_dir;
        const char *namespace, *name;
        /* the cluster's manifest: the new cluster's member runs its version and etcd
         * environment (NULL: the version the members ran, without an environment); origin
         * and revision name it in the audit record (may be NULL) */
        const struct eg_cluster_spec *spec;
        const struct eg_origin *origin;
        const char *revision;
        const char *s3_endpoint; /* for an s3:// backup; NULL: AWS */
        bool s3_force_path_style;
        int64_t answer_timeout_ms; /* how long the new cluster's member gets to answer; default 30 s */
};

/* Carries out plan: from a member, every other member is stopped (data kept, moved aside)
 * and the seed restarted with --force-new-cluster; from a backup, the snapshot is fetched
 * and verified before anything stops, then every member is stopped (data kept) and one
 * seed member bootstrapped from it. Returns once the new cluster's member answers with a
 * leader; growing back to spec.size is the next reconcile's. plan->revision_gap is filled
 * in when it was unknown and the restored member tells it. -EOPNOTSUPP on a runtime that
 * cannot force a new cluster. */
int eg_recover_run(const struct eg_recover_options *opt, const struct eg_recover_view *v, struct eg_recover_plan *plan,
                   struct eg_error *err);
