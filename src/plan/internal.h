/* Shared inside the planner: its working model of a cluster, the judgements on one member, and
 * the step a planning round produces. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "etcd-gitops/plan.h"

/* diff shows at most this many foreseeable steps; the first one is all that runs. */
#define PLAN_MAX_ACTIONS 64

/* The planner's working copy of one member. The foreseeable steps are found by applying
 * each planned action to these and planning again, so nothing here is owned. */
struct node {
        const char *name;
        uint64_t id;
        bool in_runtime, running, in_membership, is_learner, is_leader, healthy, replace_to_roll;
        bool reachable, data_kept, never_started, initial, healthy_since_start, unready;
        enum eg_member_life life;
        unsigned restarts;
        int64_t unhealthy_since_ms, unreachable_since_ms, started_ms, life_since_ms, restart_not_before_ms;
        const char *version, *hash, *life_reason;
        uint64_t raft_index;
        int64_t revision;
};

struct model {
        bool exists, reachable;
        uint64_t next_index;
        const char *upstream_owned;
        struct node *nodes;
        size_t n, cap;
};

struct ctx {
        const char *namespace, *name;
        const struct eg_cluster_spec *spec;
        const char *desired_hash;
        const struct eg_policy *pol;
        int64_t now;
        const char *restore_from;
        int64_t auto_recover_after_ms, quorum_lost_since_ms;
};

/* The outcome of one planning round: a state with a reason, or one action. */
struct step {
        enum eg_plan_state state;
        char *reason;
        struct eg_action action;
        size_t node; /* the node the action concerns, for the simulation */
};

struct census {
        size_t voters, healthy, reachable, starting, learners, quorum;
        size_t lost; /* voters unreachable longer than the quorum grace, and not starting */
        bool exists, any_dead;
};

static inline const char *disp(const struct node *n) { return n->name && *n->name ? n->name : "(unnamed)"; }

static inline const char *vers(const char *v) { return v ? v : "(unknown)"; }

/* now - since, saturated so hostile clocks cannot overflow. */
static inline int64_t elapsed(int64_t now, int64_t since) {
        int64_t d;
        if (__builtin_sub_overflow(now, since, &d))
                return since > now ? INT64_MIN : INT64_MAX;
        return d;
}

/* Launched and not serving yet: a process in its start grace, or a pod still pending
 * (being scheduled, pulling, initialising) within the start timeout. */
static inline bool node_starting(const struct ctx *c, const struct node *n) {
        if (!n->in_runtime)
                return false;
        /* a failing pod (an image it cannot pull) may still get there, the registry back: for
         * the quorum it is on its way like a starting one, until the start timeout */
        if (n->life == EG_LIFE_STARTING || n->life == EG_LIFE_FAILING)
                return n->life_since_ms == 0 || elapsed(c->now, n->life_since_ms) < c->pol->start_timeout_ms;
        /* replaying a large log, or receiving a large snapshot as a learner, a member answers
         * nothing for as long as it takes: until it has been healthy once it has the start
         * timeout, not the grace after which a member that was healthy is judged */
        if (n->in_membership && n->running && n->started_ms != 0 && !n->healthy_since_start)
                return elapsed(c->now, n->started_ms) < c->pol->start_timeout_ms;
        return n->running && n->started_ms != 0 && elapsed(c->now, n->started_ms) < c->pol->start_grace_ms;
}

/* Its process is gone but it can come back as itself: its data survived (or it never ran
 * and etcd expects it), and it has not kept failing. */
static inline bool node_restartable(const struct ctx *c, const struct model *m, const struct node *n) {
        if (!n->in_runtime || n->life != EG_LIFE_GONE || n->restarts >= c->pol->restart_limit)
                return false;
        if (n->data_kept)
                return n->in_membership || !m->reachable;
        /* etcd answers nothing before a majority of the initial members runs */
        return n->never_started && (n->in_membership || (!m->reachable && n->initial));
}

/* The platform will not run it by itself (an image it cannot pull, a crash loop). A fresh
 * member would get the same image and template and fail the same way, so it is never judged
 * dead, however long it fails: the registry, the platform or the spec has to change. */
static inline bool node_failing(const struct node *n) { return n->in_runtime && n->life == EG_LIFE_FAILING; }

static inline bool node_unhealthy_too_long(const struct ctx *c, const struct node *n) {
        return !n->healthy && n->unhealthy_since_ms != 0 &&
               elapsed(c->now, n->unhealthy_since_ms) >= c->pol->dead_after_ms;
}

static inline bool node_dead(const struct ctx *c, const struct model *m, const struct node *n) {
        if (!n->in_membership || node_starting(c, n) || node_failing(n) || node_restartable(c, m, n))
                return false;
        return !n->in_runtime || !n->running || node_unhealthy_too_long(c, n);
}

static inline bool node_voter(const struct node *n) { return n->in_membership && !n->is_learner; }

static inline bool node_needs_roll(const struct ctx *c, const struct node *n) {
        if (!n->version || strcmp(n->version, c->spec->version) != 0)
                return true;
        /* a member without a recorded template (adopted from the original operator) is
         * taken as it is: adoption must not restart it */
        return c->desired_hash && n->hash && strcmp(n->hash, c->desired_hash) != 0;
}

void plan_census(const struct ctx *c, const struct model *m, struct census *ret);

/* A round ends in a state with a reason (malloc'd, taken; NULL is -ENOMEM), or in one action on
 * node n (at idx in the model, NULL for a cluster-wide one). */
int plan_wait(struct step *s, enum eg_plan_state state, char *reason);
int plan_act(struct step *s, enum eg_action_kind kind, const struct node *n, size_t idx, bool delete_data,
             char *reason);
int plan_act_version(struct step *s, const char *version);

/* One planning round for a cluster whose manifest is valid and not paused. -ENOMEM only. */
int plan_round(const struct ctx *c, struct model *m, struct step *s);
