/* reconcile: observe -> plan -> execute -> audit for each cluster, and its status. */
#pragma once

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/plan.h"
#include "etcd-gitops/runtime.h"
#include "etcd-gitops/spec.h"

/* What the reconciler reports as it goes, for metrics and git notes. */
enum eg_reconcile_event_kind {
        EG_EVENT_DECISION,     /* one audit-worthy decision (also in dry-run, also without a log) */
        EG_EVENT_CLUSTER_PASS, /* one cluster observed and planned (and maybe a step taken) */
};

struct eg_reconcile_event {
        enum eg_reconcile_event_kind kind;
        const char *namespace, *name;
        const char *revision, *commit;
        /* DECISION */
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
        struct eg_audit *audit;     /* borrowed; NULL = no audit records (diff, get) */
        struct eg_policy policy;
        bool dry_run;               /* plan and record "would do", change nothing */
        const char *state_dir;      /* status files under <state_dir>/status/ */
        const char *namespace;      /* only this namespace when set */
        int64_t etcd_timeout_ms;    /* per etcd call; default 1500 */
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
        size_t n_converged;  /* converged or paused */
        size_t n_actions;    /* actions executed (or recorded as would-do in dry-run) */
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

/* Plans every cluster without executing anything (diff). Returns a JSON array of
 * {"cluster","state","reason","actions":[{"kind","member","reason"}],"desired":..,
 *  "observed":..} (caller owns). */
int eg_reconciler_plan_all(struct eg_reconciler *r, const struct eg_desired_set *desired,
                           json_t **ret);

/* Live status of every cluster the runtime holds (get): upstream status shape plus
 * leader, revision applied and members (caller owns the array). */
int eg_reconciler_status_all(struct eg_reconciler *r, json_t **ret);

/* Marks a cluster due now (after a change of source). */
void eg_reconciler_poke_all(struct eg_reconciler *r);
