/* plan: the pure planner. (desired, observed, policy, now) -> ordered actions with reasons.
 * No I/O, no clock reads, no globals: everything it needs is in its arguments. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/spec.h"

/* What the reconciler saw of one member: the runtime's record/process joined with the
 * etcd membership entry (by member name, or by peer URL before the member started). */
struct eg_observed_member {
        char *name;         /* member name (<cluster>-<n>, or upstream's for adopted pods) */
        uint64_t id;        /* etcd member id; 0 when not in the membership */
        bool in_runtime;    /* the runtime has this member (record, process or pod) */
        bool running;       /* its process / pod is alive */
        bool in_membership; /* etcd lists it */
        bool is_learner;
        bool is_leader;
        bool healthy;                 /* its own endpoint answered /health ok */
        bool unready;                 /* running, not yet Ready by the platform (eg_runtime_member) */
        bool reachable;               /* its endpoint answered status, leader or not (an election
                                        in progress is not an outage) */
        int64_t unhealthy_since_ms;   /* monotonic ms when it was first seen unhealthy; 0 = healthy */
        int64_t unreachable_since_ms; /* monotonic ms when it was first seen unreachable; 0 = reachable */
        /* the runtime's view: running, starting (a pod pulling), failing (with the platform's
         * reason) or gone; life_since_ms is when it entered that state (monotonic, 0 unknown) */
        enum eg_member_life life;
        char *life_reason;
        int64_t life_since_ms;
        bool data_kept;                /* its data survives its process: it can be restarted in place */
        bool never_started;            /* prepared, never launched (a crash came between) */
        bool initial;                  /* of the initial set: it can start without etcd telling it its peers */
        unsigned restarts;             /* restarts in place within the policy's restart window */
        int64_t restart_not_before_ms; /* back-off: monotonic ms before which it is not restarted */
        int64_t started_ms;            /* monotonic ms when started by us; 0 = unknown/long ago */
        uint64_t raft_index;           /* from its status when it answered; 0 otherwise */
        int64_t revision;
        bool healthy_since_start; /* it has been healthy since started_ms: from then on losing
                                        health is judged by dead_after, before by the start timeout
                                        (a large database takes long to replay or to receive) */
        char *version;            /* version it was started with */
        char *spec_hash;          /* member template hash it was started with */
        /* the runtime cannot give it the desired template in place without losing its data
         * (a pod on an emptyDir whose pod template changed): it is rolled by adding a
         * successor first, then removing it */
        bool replace_to_roll;
};

struct eg_observed_cluster {
        bool exists;         /* the runtime has this cluster (it was bootstrapped) */
        bool etcd_reachable; /* a member list was obtained from etcd */
        uint64_t next_index; /* next member number never used yet */
        struct eg_observed_member *members;
        size_t n_members;
        /* the runtime's objects an EtcdCluster custom resource still owns (eg_runtime_cluster's
         * upstream_owned, borrowed); NULL when none */
        const char *upstream_owned;
};

struct eg_policy {
        bool prune;                /* --prune */
        bool allow_empty;          /* --allow-empty */
        bool keep_removed_data;    /* --keep-removed-data */
        bool delete_pruned_data;   /* prune also deletes data (default keep) */
        int64_t dead_after_ms;     /* unhealthy this long => dead (default 5000) */
        int64_t start_grace_ms;    /* new members are not judged before this (default 10000) */
        int64_t member_settle_ms;  /* etcd refuses membership changes until every voter has been
                                      connected this long (its strict reconfig check; default 5000) */
        int64_t start_timeout_ms;  /* a member starting (pod pending) longer is dead (default 300000) */
        int64_t quorum_grace_ms;   /* a majority unreachable this long is quorum loss (default 3000:
                                      a few election timeouts) */
        unsigned restart_limit;    /* this many restarts in place within restart_window_ms and a
                                      member is replaced instead (default 5) */
        int64_t restart_window_ms; /* default 600000 */
};

void eg_policy_init(struct eg_policy *p); /* the defaults above */

enum eg_action_kind {
        EG_ACTION_BOOTSTRAP,       /* start all initial members with a static initial-cluster */
        EG_ACTION_ADD_LEARNER,     /* member add as learner, then start it (state existing) */
        EG_ACTION_PROMOTE,         /* promote a caught-up learner (etcd may refuse: retry) */
        EG_ACTION_REMOVE_MEMBER,   /* scale down: remove from etcd, stop, delete data by policy */
        EG_ACTION_REPLACE_DEAD,    /* remove a dead member from etcd and stop its remains */
        EG_ACTION_REMOVE_ORPHAN,   /* in etcd membership, nothing in the runtime: remove */
        EG_ACTION_STOP_UNKNOWN,    /* runtime member not in the membership: stop it */
        EG_ACTION_UPGRADE_MEMBER,  /* replace one member with the new version/template */
        EG_ACTION_PRUNE,           /* manifest deleted: stop every member */
        EG_ACTION_RESTART,         /* start members whose process is gone again, in place (members[]):
                                     same identity and data; no membership change */
        EG_ACTION_RESTORE_REPLACE, /* an EtcdRestore with overwrite names this running cluster: stop
                                      every member, data kept, so that the next step restores over it */
        EG_ACTION_RECOVER,         /* quorum lost past the cluster's auto-recover-after: force a new
                                     cluster from member (the most advanced survivor); every other
                                     member is stopped with its data kept */
        EG_ACTION_ADOPT,           /* objects coreos etcd-operator made: drop their ownerReferences to
                                     its EtcdCluster resource; nothing restarts */
        _EG_ACTION_MAX
};

/* Audit decision names: "create", "add-learner", "promote", "remove", "replace-dead",
 * "remove-orphan", "stop-unknown", "upgrade-member", "prune", "restart", "restore-replace", "recover",
 * "adopt". */
const char *eg_action_kind_to_string(enum eg_action_kind k);

struct eg_action {
        enum eg_action_kind kind;
        char *member;       /* the member concerned (new name for ADD_LEARNER) */
        uint64_t member_id; /* etcd id when known */
        char **members;     /* BOOTSTRAP: the initial member names; RESTART, PRUNE: the members */
        size_t n_members;
        char *version;    /* BOOTSTRAP/ADD_LEARNER/UPGRADE_MEMBER: version to run */
        bool delete_data; /* REMOVE_MEMBER/REPLACE_DEAD/STOP_UNKNOWN/PRUNE */
        char *reason;     /* human sentence, e.g. "scale up 3 -> 5: add member c-3 as learner" */
};

enum eg_plan_state {
        EG_PLAN_CONVERGED,   /* nothing to do */
        EG_PLAN_PROGRESSING, /* actions[0] is to be executed now */
        EG_PLAN_WAITING,     /* not converged, but the next step must wait (reason says for what) */
        EG_PLAN_BLOCKED,     /* a rule forbids going on (reason says which); needs a human */
        EG_PLAN_PAUSED,      /* spec.paused: observe and report only */
        EG_PLAN_QUORUM_LOST, /* fewer than a majority of voters reachable past the grace, and
                                 none can be restarted: nothing is changed */
        EG_PLAN_UNTOUCHED,   /* manifest present but invalid: hands off */
        EG_PLAN_ABSENT,      /* no manifest and nothing to prune (or prune not allowed) */
};
const char *eg_plan_state_to_string(enum eg_plan_state s);

struct eg_plan {
        enum eg_plan_state state;
        char *reason;              /* for every state but CONVERGED/PROGRESSING; may be NULL
                                      (the planner sets it in every state: for PROGRESSING it
                                      is actions[0]'s reason) */
        struct eg_action *actions; /* actions[0] is the step to take now; the rest are the
                                      foreseeable later steps, shown by diff. Non-empty only
                                      when state is PROGRESSING; at most 64 are listed */
        size_t n_actions;
        uint64_t next_index; /* next_index after all the listed steps are taken */
        /* upstream-style conditions */
        bool available, recovering, scaling, upgrading;
};

struct eg_plan_input {
        const char *namespace;
        const char *name;
        const struct eg_cluster_spec *spec; /* NULL: no (valid) manifest */
        bool spec_invalid;                  /* manifest present but invalid */
        const char *desired_hash;           /* member template hash of spec (from the runtime) */
        const struct eg_observed_cluster *observed;
        const struct eg_policy *policy;
        bool prune_allowed; /* result of eg_plan_prune_allowed() for this pass */
        /* An EtcdRestore names this cluster and its snapshot is fetched and verified
         * (restore_from names it): a running cluster is first stopped (its data kept; the
         * restore only names a running cluster with overwrite: true), then a new cluster
         * starts as one seed member restored from it, and grows to size through the usual
         * steps. */
        const char *restore_from;
        /* the cluster's auto-recover-after (0: off), and since when (monotonic, 0: not) the
         * planner has found quorum lost */
        int64_t auto_recover_after_ms;
        int64_t quorum_lost_since_ms;
        int64_t now_ms; /* monotonic */
};

/* Fills *ret (caller frees with eg_plan_done). Returns -ENOMEM or -EINVAL only. */
int eg_plan_cluster(const struct eg_plan_input *in, struct eg_plan *ret);
void eg_plan_done(struct eg_plan *p);

/* The source-wide prune rule: prune only when asked, only when the whole source parsed
 * cleanly, and never every running cluster at once unless allow_empty. reason receives
 * why not (static string) when it returns false. */
bool eg_plan_prune_allowed(const struct eg_policy *p, bool source_clean, size_t n_running, size_t n_to_prune,
                           const char **reason);

/* Members needed for quorum among n voters. */
static inline size_t eg_quorum(size_t voters) { return voters / 2 + 1; }
