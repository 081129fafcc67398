/* The pure planner: desired spec + observed cluster + policy + now -> the next safe step. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/plan.h"
#include "etcd-gitops/util.h"

/* A spec.size above this is refused rather than planned: bootstrap lists every name. */
#define PLAN_MAX_SIZE 1000
/* diff shows at most this many foreseeable steps; the first one is all that runs. */
#define PLAN_MAX_ACTIONS 64

static const char *const action_names[_EG_ACTION_MAX] = {
        [EG_ACTION_BOOTSTRAP] = "create",
        [EG_ACTION_ADD_LEARNER] = "add-learner",
        [EG_ACTION_PROMOTE] = "promote",
        [EG_ACTION_REMOVE_MEMBER] = "remove",
        [EG_ACTION_REPLACE_DEAD] = "replace-dead",
        [EG_ACTION_REMOVE_ORPHAN] = "remove-orphan",
        [EG_ACTION_STOP_UNKNOWN] = "stop-unknown",
        [EG_ACTION_UPGRADE_MEMBER] = "upgrade-member",
        [EG_ACTION_PRUNE] = "prune",
        [EG_ACTION_RESTART] = "restart",
        [EG_ACTION_RESTORE_REPLACE] = "restore-replace",
        [EG_ACTION_RECOVER] = "recover",
        [EG_ACTION_ADOPT] = "adopt",
};

static const char *const state_names[] = {
        [EG_PLAN_CONVERGED] = "converged",     [EG_PLAN_PROGRESSING] = "progressing",
        [EG_PLAN_WAITING] = "waiting",         [EG_PLAN_BLOCKED] = "blocked",
        [EG_PLAN_PAUSED] = "paused",           [EG_PLAN_QUORUM_LOST] = "quorum-lost",
        [EG_PLAN_UNTOUCHED] = "untouched",     [EG_PLAN_ABSENT] = "absent",
};

const char *eg_action_kind_to_string(enum eg_action_kind k) {
        if ((unsigned)k >= EG_ELEMENTSOF(action_names))
                return NULL;
        return action_names[k];
}

const char *eg_plan_state_to_string(enum eg_plan_state s) {
        if ((unsigned)s >= EG_ELEMENTSOF(state_names))
                return NULL;
        return state_names[s];
}

void eg_policy_init(struct eg_policy *p) {
        *p = (struct eg_policy){
                .dead_after_ms = 5000,
                .start_grace_ms = 10000,
                .member_settle_ms = 5000,
                .start_timeout_ms = 300000,
                .quorum_grace_ms = 3000,
                .restart_limit = 5,
                .restart_window_ms = 600000,
        };
}

bool eg_plan_prune_allowed(const struct eg_policy *p, bool source_clean, size_t n_running,
                           size_t n_to_prune, const char **reason) {
        const char *why = NULL;

        if (!p || !p->prune)
                why = "prune is off";
        else if (!source_clean)
                why = "the source has errors; nothing is pruned until it parses cleanly";
        else if (n_to_prune > 0 && n_to_prune == n_running && !p->allow_empty)
                why = "pruning would remove every cluster; pass --allow-empty to allow it";
        if (reason)
                *reason = why;
        return !why;
}

/* The planner's working copy of one member. The foreseeable steps are found by applying
 * each planned action to these and planning again, so nothing here is owned. */
struct node {
        const char *name;
        uint64_t id;
        bool in_runtime, running, in_membership, is_learner, is_leader, healthy, replace_to_roll;
        bool reachable, data_kept, never_started, initial, healthy_since_start;
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

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

static void action_done(struct eg_action *a) {
        free(a->member);
        for (size_t i = 0; i < a->n_members; i++)
                free(a->members[i]);
        free(a->members);
        free(a->version);
        free(a->reason);
        *a = (struct eg_action){};
}

void eg_plan_done(struct eg_plan *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_actions; i++)
                action_done(&p->actions[i]);
        free(p->actions);
        free(p->reason);
        *p = (struct eg_plan){};
}

static const char *disp(const struct node *n) {
        return n->name && *n->name ? n->name : "(unnamed)";
}

static const char *vers(const char *v) {
        return v ? v : "(unknown)";
}

/* now - since, saturated so hostile clocks cannot overflow. */
static int64_t elapsed(int64_t now, int64_t since) {
        int64_t d;
        if (__builtin_sub_overflow(now, since, &d))
                return since > now ? INT64_MIN : INT64_MAX;
        return d;
}

/* Launched and not serving yet: a process in its start grace, or a pod still pending
 * (being scheduled, pulling, initialising) within the start timeout. */
static bool node_starting(const struct ctx *c, const struct node *n) {
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
static bool node_restartable(const struct ctx *c, const struct model *m, const struct node *n) {
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
static bool node_failing(const struct node *n) {
        return n->in_runtime && n->life == EG_LIFE_FAILING;
}

static bool node_unhealthy_too_long(const struct ctx *c, const struct node *n) {
        return !n->healthy && n->unhealthy_since_ms != 0 &&
               elapsed(c->now, n->unhealthy_since_ms) >= c->pol->dead_after_ms;
}

static bool node_dead(const struct ctx *c, const struct model *m, const struct node *n) {
        if (!n->in_membership || node_starting(c, n) || node_failing(n) || node_restartable(c, m, n))
                return false;
        return !n->in_runtime || !n->running || node_unhealthy_too_long(c, n);
}

static bool node_voter(const struct node *n) {
        return n->in_membership && !n->is_learner;
}

static bool node_needs_roll(const struct ctx *c, const struct node *n) {
        if (!n->version || strcmp(n->version, c->spec->version) != 0)
                return true;
        /* a member without a recorded template (adopted from the original operator) is
         * taken as it is: adoption must not restart it */
        return c->desired_hash && n->hash && strcmp(n->hash, c->desired_hash) != 0;
}

struct census {
        size_t voters, healthy, reachable, starting, learners, quorum;
        size_t lost; /* voters unreachable longer than the quorum grace, and not starting */
        bool exists, any_dead;
};

static void census_take(const struct ctx *c, const struct model *m, struct census *ret) {
        struct census s = {.exists = m->exists};

        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (n->in_runtime || n->in_membership)
                        s.exists = true;
                if (node_dead(c, m, n))
                        s.any_dead = true;
                if (n->in_membership && n->is_learner)
                        s.learners++;
                if (!node_voter(n))
                        continue;
                s.voters++;
                if (n->healthy)
                        s.healthy++;
                else if (node_starting(c, n))
                        s.starting++;
                if (n->healthy || n->reachable)
                        s.reachable++;
                else if (!node_starting(c, n) &&
                         (n->unreachable_since_ms == 0 ||
                          elapsed(c->now, n->unreachable_since_ms) >= c->pol->quorum_grace_ms))
                        s.lost++;
        }
        s.quorum = eg_quorum(s.voters);
        *ret = s;
}

/* Index n of a "<cluster>-<n>" name, for picking the most recently added member. */
static bool node_index(const struct ctx *c, const struct node *n, uint64_t *ret) {
        size_t l = strlen(c->name);
        if (!n->name || strncmp(n->name, c->name, l) != 0 || n->name[l] != '-' || !n->name[l + 1])
                return false;
        uint64_t v = 0;
        for (const char *p = n->name + l + 1; *p; p++) {
                if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*p - '0');
        }
        *ret = v;
        return true;
}

static int step_wait(struct step *s, enum eg_plan_state state, char *reason) {
        if (!reason)
                return -ENOMEM;
        s->state = state;
        s->reason = reason;
        return 0;
}

static int step_act(struct step *s, enum eg_action_kind kind, const struct node *n, size_t idx,
                    bool delete_data, char *reason) {
        if (!reason)
                return -ENOMEM;
        s->state = EG_PLAN_PROGRESSING;
        s->action = (struct eg_action){.kind = kind, .delete_data = delete_data, .reason = reason};
        s->node = idx;
        if (n) {
                s->action.member_id = n->id;
                if (n->name) {
                        s->action.member = strdup(n->name);
                        if (!s->action.member)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int step_set_version(struct step *s, const char *version) {
        s->action.version = strdup(version);
        return s->action.version ? 0 : -ENOMEM;
}

/* Whether running `to` on a member now at `from` is one allowed step; *ret_reason (malloc'd)
 * says why not. Returns -ENOMEM only. */
static int version_step_ok(const char *member, const char *from, const char *to, bool *ret_ok,
                           char **ret_reason) {
        struct eg_semver a, b;
        char *why;

        *ret_ok = false;
        if (!from)
                why = strf("the version of member %s is unknown; cannot check that %s is a safe step",
                           member, to);
        else if (eg_semver_parse(from, &a) < 0 || eg_semver_parse(to, &b) < 0 || a.minor < 0 ||
                 b.minor < 0)
                why = strf("cannot compare versions %s and %s of member %s: not a version number",
                           from, to, member);
        else if (eg_semver_compare(&b, &a) < 0)
                why = strf("downgrade %s -> %s refused (member %s); etcd cannot go back a version in place",
                           from, to, member);
        else if (b.major != a.major)
                why = strf("upgrade %s -> %s changes the major version (member %s); go one minor at a time",
                           from, to, member);
        else if (b.minor - a.minor > 1)
                why = strf("upgrade %s -> %s skips a minor version; go one minor at a time (%s -> %" PRId64
                           ".%" PRId64 ")",
                           from, to, from, a.major, a.minor + 1);
        else {
                *ret_ok = true;
                return 0;
        }
        if (!why)
                return -ENOMEM;
        *ret_reason = why;
        return 0;
}

/* The first voter that is not healthy, to name in a WAITING reason. */
static const struct node *first_unhealthy_voter(const struct model *m) {
        for (size_t i = 0; i < m->n; i++)
                if (node_voter(&m->nodes[i]) && !m->nodes[i].healthy)
                        return &m->nodes[i];
        return NULL;
}

static int plan_bootstrap(const struct ctx *c, struct model *m, struct step *s) {
        /* a restore seeds one member from the snapshot; the rest join as learners */
        size_t size = c->restore_from ? 1 : (size_t)c->spec->size;
        int r;

        if (m->next_index > UINT64_MAX - size)
                return step_wait(s, EG_PLAN_BLOCKED,
                                 strf("member numbers of cluster %s are exhausted", c->name));
        if (c->restore_from)
                r = step_act(s, EG_ACTION_BOOTSTRAP, NULL, 0, false,
                             strf("restore cluster from %s: seed member %s-%" PRIu64 ", then grow to %" PRId64,
                                  c->restore_from, c->name, m->next_index, c->spec->size));
        else
                r = step_act(s, EG_ACTION_BOOTSTRAP, NULL, 0, false,
                             strf("create cluster with %zu member%s", size, size == 1 ? "" : "s"));
        if (r < 0)
                return r;
        r = step_set_version(s, c->spec->version);
        if (r < 0)
                return r;
        s->action.members = calloc(size, sizeof(char *));
        if (!s->action.members)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                s->action.members[i] = strf("%s-%" PRIu64, c->name, m->next_index + i);
                if (!s->action.members[i])
                        return -ENOMEM;
                s->action.n_members++;
        }
        return 0;
}

/* Runtime members etcd does not list: leftovers of a join that never happened. */
static int plan_unknown(const struct ctx *c, const struct model *m, struct step *s, bool *done) {
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_runtime || n->in_membership)
                        continue;
                *done = true;
                if (node_starting(c, n))
                        return step_wait(s, EG_PLAN_WAITING,
                                         strf("member %s is starting and not yet in the etcd membership",
                                              disp(n)));
                return step_act(s, EG_ACTION_STOP_UNKNOWN, n, i, true,
                                strf("member %s is in the runtime but not in the etcd membership; stop it",
                                     disp(n)));
        }
        return 0;
}

static char *dead_reason(const struct ctx *c, const struct node *n, const char *role) {
        if (!n->in_runtime)
                return strf("%s %s is in the etcd membership but the runtime has no such member; "
                            "remove it, a fresh member replaces it",
                            role, disp(n));
        if (n->life == EG_LIFE_STARTING)
                return strf("%s %s dead (still starting after %" PRId64 "s%s%s); remove it, a fresh member replaces it",
                            role, disp(n), elapsed(c->now, n->life_since_ms) / 1000,
                            n->life_reason ? ": " : "", n->life_reason ? n->life_reason : "");
        if (n->life == EG_LIFE_FAILING)
                return strf("%s %s is failing (%s) and was made for another spec than the one desired now; remove "
                            "it, a fresh member replaces it",
                            role, disp(n), n->life_reason ? n->life_reason : "no reason given");
        if (!n->running && n->restarts >= c->pol->restart_limit)
                return strf("%s %s dead (kept failing: restarted %u times within %" PRId64
                            " min); remove it, a fresh member replaces it",
                            role, disp(n), n->restarts, c->pol->restart_window_ms / 60000);
        if (n->life == EG_LIFE_GONE && !n->data_kept)
                return strf("%s %s dead (process gone, no data to restart from); remove it, a fresh member "
                            "replaces it",
                            role, disp(n));
        if (!n->running)
                return strf("%s %s dead (process gone); remove it, a fresh member replaces it", role,
                            disp(n));
        return strf("%s %s dead (unhealthy for %" PRId64 "s); remove it, a fresh member replaces it",
                    role, disp(n), elapsed(c->now, n->unhealthy_since_ms) / 1000);
}

static enum eg_action_kind dead_kind(const struct node *n) {
        return n->in_runtime ? EG_ACTION_REPLACE_DEAD : EG_ACTION_REMOVE_ORPHAN;
}

/* The WAITING reason for a failing member: its platform's words, and why time changes nothing. */
static char *failing_wait(const char *role, const struct node *n) {
        return strf("%s %s is failing (%s); it is waited for, not replaced: a fresh member would get the same "
                    "image and template",
                    role, disp(n), n->life_reason ? n->life_reason : "no reason given");
}

/* " (NAME is not)", with the runtime's words when it has some, to end a reason that waits for
 * every member to be healthy. */
static char *not_healthy(const struct node *n) {
        if ((n->life == EG_LIFE_FAILING || n->life == EG_LIFE_STARTING) && n->life_reason)
                return strf("%s is %s: %s", disp(n), n->life == EG_LIFE_FAILING ? "failing" : "starting",
                            n->life_reason);
        return strf("%s is not", disp(n));
}

static int plan_learners(const struct ctx *c, const struct model *m, struct step *s, bool *done) {
        const struct node *waiting = NULL;

        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_membership || !n->is_learner)
                        continue;
                if (n->in_runtime && n->running && n->healthy) {
                        *done = true;
                        return step_act(s, EG_ACTION_PROMOTE, n, i, false,
                                        strf("promote learner %s to a voting member", disp(n)));
                }
        }
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_membership || !n->is_learner)
                        continue;
                /* a learner costs no vote: one failing on a spec since changed (the version
                 * fixed) goes at once, its successor gets the spec it fails for no more */
                if (node_dead(c, m, n) || (node_failing(n) && node_needs_roll(c, n))) {
                        *done = true;
                        return step_act(s, dead_kind(n), n, i, !c->pol->keep_removed_data,
                                        dead_reason(c, n, "learner"));
                }
                if (!waiting)
                        waiting = n;
        }
        if (!waiting)
                return 0;
        *done = true;
        if (node_failing(waiting))
                return step_wait(s, EG_PLAN_WAITING, failing_wait("learner", waiting));
        if (waiting->life == EG_LIFE_STARTING && waiting->life_reason)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("learner %s is starting (%s); it is replaced if still so %" PRId64
                                      " s after it began",
                                      disp(waiting), waiting->life_reason, c->pol->start_timeout_ms / 1000));
        return step_wait(s, EG_PLAN_WAITING,
                         strf("learner %s catching up; it is promoted once healthy", disp(waiting)));
}

static int plan_dead_voters(const struct ctx *c, const struct model *m, const struct census *cs,
                            struct step *s, bool *done) {
        size_t pick = SIZE_MAX;
        unsigned best = UINT_MAX;

        /* Removing one that still answers costs a healthy vote, and a dead leader is a stale
         * observation: both go after the plainly dead ones. */
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_voter(n) || !node_dead(c, m, n))
                        continue;
                unsigned rank = (n->healthy ? 2u : 0u) + (n->is_leader ? 1u : 0u);
                if (rank < best) {
                        best = rank;
                        pick = i;
                }
        }
        if (pick == SIZE_MAX)
                return 0;
        *done = true;

        const struct node *n = &m->nodes[pick];
        size_t after = cs->healthy - (n->healthy ? 1 : 0);
        if (after < eg_quorum(cs->voters - 1))
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("member %s looks dead but removing it would leave %zu of %zu voting "
                                      "members healthy (need %zu)",
                                      disp(n), after, cs->voters - 1, eg_quorum(cs->voters - 1)));
        return step_act(s, dead_kind(n), n, pick, !c->pol->keep_removed_data,
                        dead_reason(c, n, "member"));
}

/* Checks that spec.version is one allowed step from every voter's version; a BLOCKED
 * reason is prefixed with what (when not NULL) it blocks. */
static int check_versions(const struct ctx *c, const struct model *m, const char *what,
                          struct step *s, bool *done) {
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_voter(n) || (n->version && strcmp(n->version, c->spec->version) == 0))
                        continue;
                bool ok;
                char *why = NULL;
                int r = version_step_ok(disp(n), n->version, c->spec->version, &ok, &why);
                if (r < 0)
                        return r;
                if (ok)
                        continue;
                *done = true;
                if (!what)
                        return step_wait(s, EG_PLAN_BLOCKED, why);
                char *reason = strf("%s blocked: %s", what, why);
                free(why);
                return step_wait(s, EG_PLAN_BLOCKED, reason);
        }
        return 0;
}

/* A voter started so recently that etcd would refuse to add a member now. */
static const struct node *first_unsettled_voter(const struct ctx *c, const struct model *m) {
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (node_voter(n) && n->started_ms != 0 &&
                    elapsed(c->now, n->started_ms) < c->pol->member_settle_ms)
                        return n;
        }
        return NULL;
}

/* Adds a member as a learner, when every voter is healthy and settled: what is written as
 * "what: add member X as learner". */
static int plan_add(const struct ctx *c, const struct model *m, struct step *s, bool *done, const char *what) {
        int r = check_versions(c, m, what, s, done);
        if (r < 0 || s->state == EG_PLAN_BLOCKED)
                return r;
        const struct node *bad = first_unhealthy_voter(m);
        if (bad) {
                char *why = not_healthy(bad);
                r = step_wait(s, EG_PLAN_WAITING,
                              why ? strf("%s waits for every member to be healthy (%s)", what, why) : NULL);
                free(why);
                return r;
        }
        const struct node *fresh = first_unsettled_voter(c, m);
        if (fresh)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("%s waits until every voting member has been up %" PRId64
                                      " ms (%s started %" PRId64 " ms ago): etcd refuses new members before",
                                      what, c->pol->member_settle_ms, disp(fresh), elapsed(c->now, fresh->started_ms)));
        if (m->next_index == UINT64_MAX)
                return step_wait(s, EG_PLAN_BLOCKED,
                                 strf("%s blocked: member numbers of cluster %s are exhausted", what, c->name));
        char *member = strf("%s-%" PRIu64, c->name, m->next_index);
        if (!member)
                return -ENOMEM;
        r = step_act(s, EG_ACTION_ADD_LEARNER, NULL, 0, false, strf("%s: add member %s as learner", what, member));
        if (r < 0) {
                free(member);
                return r;
        }
        s->action.member = member;
        return step_set_version(s, c->spec->version);
}

static int plan_scale_up(const struct ctx *c, struct model *m, const struct census *cs,
                         struct step *s, bool *done) {
        size_t size = (size_t)c->spec->size;

        if (cs->voters >= size)
                return 0;
        *done = true;
        char *what = strf("scale up %zu -> %zu", cs->voters, size);
        if (!what)
                return -ENOMEM;
        int r = plan_add(c, m, s, done, what);
        free(what);
        return r;
}

/* A member rolled by replacement: its successor is added first, and it goes next. */
static bool node_replaced_to_roll(const struct ctx *c, const struct node *n) {
        return n->replace_to_roll && node_needs_roll(c, n);
}

/* Higher is a better scale-down victim: unhealthy first, then the most recently added. */
static bool victim_better(const struct ctx *c, const struct node *a, const struct node *b) {
        if (a->healthy != b->healthy)
                return !a->healthy;
        uint64_t ia, ib;
        bool ha = node_index(c, a, &ia), hb = node_index(c, b, &ib);
        if (ha != hb)
                return ha;
        if (ha && ia != ib)
                return ia > ib;
        if (a->started_ms != b->started_ms)
                return a->started_ms > b->started_ms;
        return strcmp(a->name ? a->name : "", b->name ? b->name : "") > 0;
}

static int plan_scale_down(const struct ctx *c, const struct model *m, const struct census *cs,
                           struct step *s, bool *done) {
        size_t size = (size_t)c->spec->size, pick = SIZE_MAX;

        if (cs->voters <= size)
                return 0;
        *done = true;
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_voter(n))
                        continue;
                if (pick == SIZE_MAX)
                        pick = i;
                else if (node_replaced_to_roll(c, &m->nodes[pick]) != node_replaced_to_roll(c, n)) {
                        if (node_replaced_to_roll(c, n))
                                pick = i;
                } else if (m->nodes[pick].is_leader != n->is_leader) {
                        if (m->nodes[pick].is_leader)
                                pick = i;
                } else if (node_replaced_to_roll(c, n) ? !n->healthy && m->nodes[pick].healthy
                                                       : victim_better(c, n, &m->nodes[pick]))
                        /* members being replaced go in the order the upgrade named them */
                        pick = i;
        }

        const struct node *n = &m->nodes[pick];
        size_t after = cs->healthy - (n->healthy ? 1 : 0);
        if (after < eg_quorum(cs->voters - 1))
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("scale down %zu -> %zu waits: removing %s would leave %zu of %zu "
                                      "voting members healthy (need %zu)",
                                      cs->voters, size, disp(n), after, cs->voters - 1,
                                      eg_quorum(cs->voters - 1)));
        if (node_replaced_to_roll(c, n))
                return step_act(s, EG_ACTION_REMOVE_MEMBER, n, pick, true,
                                strf("remove member %s, replaced by a member on the changed member template "
                                     "(%zu -> %zu)", disp(n), cs->voters, size));
        return step_act(s, EG_ACTION_REMOVE_MEMBER, n, pick, !c->pol->keep_removed_data,
                        strf("scale down %zu -> %zu: remove member %s", cs->voters, size, disp(n)));
}

static int plan_upgrade(const struct ctx *c, const struct model *m, struct step *s, bool *done) {
        size_t pick = SIZE_MAX, todo = 0;

        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_voter(n) || !node_needs_roll(c, n))
                        continue;
                todo++;
                if (pick == SIZE_MAX || (m->nodes[pick].is_leader && !n->is_leader))
                        pick = i;
        }
        if (!todo)
                return 0;
        *done = true;

        int r = check_versions(c, m, NULL, s, done);
        if (r < 0 || s->state == EG_PLAN_BLOCKED)
                return r;
        const struct node *bad = first_unhealthy_voter(m);
        if (bad) {
                char *why = not_healthy(bad);
                r = step_wait(s, EG_PLAN_WAITING,
                              why ? strf("upgrade to %s waits for every member to be healthy (%s)", c->spec->version,
                                         why)
                                  : NULL);
                free(why);
                return r;
        }

        const struct node *n = &m->nodes[pick];
        char *progress = n->is_leader ? strf("the leader, last") : strf("%zu to go", todo);
        if (!progress)
                return -ENOMEM;
        if (n->replace_to_roll) {
                /* its data cannot survive the change: a successor joins first, so the
                 * cluster never has fewer healthy members than it should */
                char *what = strf("replace member %s onto the changed member template (%s)", disp(n), progress);
                free(progress);
                if (!what)
                        return -ENOMEM;
                r = plan_add(c, m, s, done, what);
                free(what);
                return r;
        }
        char *reason;
        if (n->version && strcmp(n->version, c->spec->version) == 0)
                reason = strf("roll member %s onto the changed member template (%s)", disp(n), progress);
        else
                reason = strf("upgrade member %s %s -> %s (%s)", disp(n), vers(n->version),
                              c->spec->version, progress);
        free(progress);
        r = step_act(s, EG_ACTION_UPGRADE_MEMBER, n, pick, false, reason);
        if (r < 0)
                return r;
        return step_set_version(s, c->spec->version);
}

static int plan_settled(const struct ctx *c, const struct model *m, const struct census *cs,
                        struct step *s) {
        const struct node *n = first_unhealthy_voter(m);

        if (!n)
                return step_wait(s, EG_PLAN_CONVERGED,
                                 strf("%zu of %zu members healthy at version %s", cs->healthy,
                                      (size_t)c->spec->size, c->spec->version));
        if (node_failing(n))
                return step_wait(s, EG_PLAN_WAITING, failing_wait("member", n));
        if (node_starting(c, n))
                return step_wait(s, EG_PLAN_WAITING, strf("member %s is starting", disp(n)));
        if (n->unhealthy_since_ms != 0)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("member %s unhealthy for %" PRId64 "s; it is judged dead after %" PRId64
                                      "s",
                                      disp(n), elapsed(c->now, n->unhealthy_since_ms) / 1000,
                                      c->pol->dead_after_ms / 1000));
        return step_wait(s, EG_PLAN_WAITING, strf("member %s is not healthy", disp(n)));
}

/* Members whose process is gone but who can come back as themselves are started again,
 * all at once: no membership changes, so no quorum is needed, and a rebooted host needs a
 * majority back before etcd answers at all. One still in its back-off is waited for. */
static bool node_backing_off(const struct ctx *c, const struct node *n) {
        return n->restart_not_before_ms != 0 && elapsed(c->now, n->restart_not_before_ms) < 0;
}

static int plan_restart(const struct ctx *c, const struct model *m, struct step *s, bool *done) {
        size_t n_now = 0, first = SIZE_MAX;
        const struct node *later = NULL;

        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_restartable(c, m, n))
                        continue;
                if (node_backing_off(c, n)) {
                        if (!later || n->restart_not_before_ms < later->restart_not_before_ms)
                                later = n;
                        continue;
                }
                if (first == SIZE_MAX)
                        first = i;
                n_now++;
        }
        if (n_now == 0) {
                if (!later)
                        return 0;
                *done = true;
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("member %s is restarted in place in %" PRId64 " ms (back-off after %u restart%s)",
                                      disp(later), -elapsed(c->now, later->restart_not_before_ms), later->restarts,
                                      later->restarts == 1 ? "" : "s"));
        }
        *done = true;

        struct eg_buf names;
        eg_buf_init(&names, 0);
        char **members = calloc(n_now, sizeof(char *));
        int r = members ? 0 : -ENOMEM;
        size_t k = 0;
        for (size_t i = first; r >= 0 && i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!node_restartable(c, m, n) || node_backing_off(c, n))
                        continue;
                if (!(members[k] = strdup(disp(n))))
                        r = -ENOMEM;
                else
                        k++;
                if (r >= 0)
                        r = eg_buf_printf(&names, "%s%s", k > 1 ? ", " : "", disp(n));
        }
        if (r >= 0) {
                const struct node *n = &m->nodes[first];
                const char *why = n->never_started ? (k == 1 ? "it never started" : "they never started")
                                                   : (k == 1 ? "process gone, data kept" : "processes gone, data kept");
                r = step_act(s, EG_ACTION_RESTART, n, first, false,
                             strf("restart member%s %s in place (%s)", k == 1 ? "" : "s", names.data, why));
        }
        eg_buf_done(&names);
        if (r < 0) {
                for (size_t i = 0; members && i < k; i++)
                        free(members[i]);
                free(members);
                return r;
        }
        s->action.members = members;
        s->action.n_members = k;
        return 0;
}

/* Why the cluster cannot go on without a human: who is left, and why each other voter
 * cannot come back by itself. */
/* The cluster opted in to recovery without a human and quorum has been lost long enough:
 * the member that answers with the highest raft index (then revision) seeds a new cluster.
 * Returns 0 with s untouched when there is nothing to recover from yet. */
static int plan_auto_recover(const struct ctx *c, const struct model *m, struct step *s) {
        if (c->auto_recover_after_ms <= 0 || c->quorum_lost_since_ms == 0 ||
            elapsed(c->now, c->quorum_lost_since_ms) < c->auto_recover_after_ms)
                return 0;
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_runtime || !n->running || !(n->reachable || n->healthy) || n->is_learner)
                        continue;
                if (best == SIZE_MAX || n->raft_index > m->nodes[best].raft_index ||
                    (n->raft_index == m->nodes[best].raft_index && n->revision > m->nodes[best].revision))
                        best = i;
        }
        if (best == SIZE_MAX)
                return 0;
        const struct node *n = &m->nodes[best];
        return step_act(s, EG_ACTION_RECOVER, n, best, false,
                        strf("quorum lost for %" PRId64 " s, past %s (%" PRId64 " s): force a new cluster from the most "
                             "advanced survivor %s (raft index %" PRIu64 ", revision %" PRId64 "; revision gap 0 among "
                             "the survivors, writes only the lost members had are gone); the others are stopped with "
                             "their data kept",
                             elapsed(c->now, c->quorum_lost_since_ms) / 1000, EG_ANN_AUTO_RECOVER_AFTER,
                             c->auto_recover_after_ms / 1000, disp(n), n->raft_index, n->revision));
}

static int quorum_lost(const struct ctx *c, const struct model *m, const struct census *cs, struct step *s) {
        struct eg_buf b;
        int r = plan_auto_recover(c, m, s);
        if (r < 0 || s->state == EG_PLAN_PROGRESSING)
                return r;
        eg_buf_init(&b, 0);
        for (size_t i = 0; r >= 0 && i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_runtime && !n->in_membership)
                        continue;
                const char *state = n->healthy || n->reachable ? "answers"
                                    : n->running                ? "running, not answering"
                                    : n->life == EG_LIFE_FAILING ? (n->life_reason ? n->life_reason : "failing")
                                    : n->life == EG_LIFE_STARTING ? "starting"
                                    : n->restarts >= c->pol->restart_limit ? "keeps failing after restarts"
                                    : n->life == EG_LIFE_GONE && !n->data_kept && !n->never_started ? "data gone"
                                                                                                    : "process gone";
                r = eg_buf_printf(&b, "%s%s: %s", b.len ? ", " : "", disp(n), state);
        }
        if (r < 0) {
                eg_buf_done(&b);
                return r;
        }
        r = step_wait(s, EG_PLAN_QUORUM_LOST,
                      strf("quorum lost: %zu of %zu voting members reachable (need %zu) for over %" PRId64
                           " ms [%s]; nothing changed — run `etcd-gitops recover %s/%s --dry-run` to see the way back",
                           cs->reachable, cs->voters, cs->quorum, c->pol->quorum_grace_ms, b.data ? b.data : "",
                           c->namespace, c->name));
        eg_buf_done(&b);
        return r;
}

/* etcd cannot take a membership change now. Tells an election in progress, members still
 * starting and a short outage (all waited for) from a majority really gone. */
static int plan_no_quorum(const struct ctx *c, const struct model *m, const struct census *cs, struct step *s) {
        if (!m->reachable) {
                size_t answering = 0, members = 0, lost = 0;
                for (size_t i = 0; i < m->n; i++) {
                        const struct node *n = &m->nodes[i];
                        if (!n->in_runtime || n->never_started)
                                continue;
                        members++;
                        if (node_starting(c, n))
                                return step_wait(s, EG_PLAN_WAITING,
                                                 strf("etcd of %s not reachable yet; member %s is starting", c->name,
                                                      disp(n)));
                        if (n->reachable)
                                answering++;
                        else if (n->unreachable_since_ms == 0 ||
                                 elapsed(c->now, n->unreachable_since_ms) >= c->pol->quorum_grace_ms)
                                lost++;
                }
                if (answering > 0)
                        return step_wait(s, EG_PLAN_WAITING,
                                         strf("electing: %zu member%s of %s answer but the member list cannot be had yet",
                                              answering, answering == 1 ? "" : "s", c->name));
                if (lost < members)
                        return step_wait(s, EG_PLAN_WAITING,
                                         strf("no member of %s answers yet; quorum is judged lost after %" PRId64 " ms",
                                              c->name, c->pol->quorum_grace_ms));
                struct census none = {.voters = members, .quorum = eg_quorum(members)};
                return quorum_lost(c, m, &none, s);
        }
        if (cs->reachable >= cs->quorum)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("electing: %zu of %zu voting members answer, %zu healthy with a leader (need %zu)",
                                      cs->reachable, cs->voters, cs->healthy, cs->quorum));
        if (cs->healthy + cs->starting >= cs->quorum)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("%zu of %zu voting members healthy (need %zu); waiting for %zu starting members",
                                      cs->healthy, cs->voters, cs->quorum, cs->starting));
        if (cs->voters - cs->lost >= cs->quorum)
                return step_wait(s, EG_PLAN_WAITING,
                                 strf("%zu of %zu voting members reachable (need %zu); quorum is judged lost after %" PRId64
                                      " ms",
                                      cs->reachable, cs->voters, cs->quorum, c->pol->quorum_grace_ms));
        return quorum_lost(c, m, cs, s);
}

/* One planning round for a cluster whose manifest is valid and not paused. */
static int plan_round(const struct ctx *c, struct model *m, struct step *s) {
        struct census cs;
        bool done = false;
        int r;

        if (!c->spec->version || !*c->spec->version)
                return step_wait(s, EG_PLAN_BLOCKED, strf("spec.version of %s is empty", c->name));
        if (c->spec->size < 1 || c->spec->size > PLAN_MAX_SIZE)
                return step_wait(s, EG_PLAN_BLOCKED,
                                 strf("spec.size %" PRId64 " of %s is out of range (1 to %d)",
                                      c->spec->size, c->name, PLAN_MAX_SIZE));

        census_take(c, m, &cs);
        if (!cs.exists)
                return plan_bootstrap(c, m, s);
        /* first, in any state (quorum lost included): it touches no member, and until it is done
         * deleting the old custom resource or its CRD would delete the cluster */
        if (m->upstream_owned)
                return step_act(s, EG_ACTION_ADOPT, NULL, 0, false,
                                strf("adopt %s from coreos etcd-operator: remove the ownerReferences to its "
                                     "EtcdCluster resource from %s, so that deleting that resource or its CRD "
                                     "cannot garbage-collect them (nothing is restarted)",
                                     c->name, m->upstream_owned));
        if (c->restore_from)
                return step_act(s, EG_ACTION_RESTORE_REPLACE, NULL, 0, false,
                                strf("EtcdRestore with overwrite: stop the running cluster %s (its data is kept) "
                                     "to restore it from %s",
                                     c->name, c->restore_from));

        r = plan_restart(c, m, s, &done);
        if (r < 0 || done)
                return r;
        if (!m->reachable || cs.healthy < cs.quorum)
                return plan_no_quorum(c, m, &cs, s);

        r = plan_unknown(c, m, s, &done);
        if (r < 0 || done)
                return r;
        r = plan_learners(c, m, s, &done);
        if (r < 0 || done)
                return r;
        r = plan_dead_voters(c, m, &cs, s, &done);
        if (r < 0 || done)
                return r;
        r = plan_scale_up(c, m, &cs, s, &done);
        if (r < 0 || done)
                return r;
        r = plan_scale_down(c, m, &cs, s, &done);
        if (r < 0 || done)
                return r;
        r = plan_upgrade(c, m, s, &done);
        if (r < 0 || done)
                return r;
        return plan_settled(c, m, &cs, s);
}

static void model_remove(struct model *m, size_t idx) {
        bool was_leader = m->nodes[idx].is_leader;

        memmove(&m->nodes[idx], &m->nodes[idx + 1], (m->n - idx - 1) * sizeof(struct node));
        m->n--;
        if (!was_leader)
                return;
        for (size_t i = 0; i < m->n; i++)
                if (node_voter(&m->nodes[i]) && m->nodes[i].healthy) {
                        m->nodes[i].is_leader = true;
                        return;
                }
}

static void node_heal(struct node *n) {
        n->in_runtime = n->running = n->healthy = n->reachable = n->healthy_since_start = true;
        n->life = EG_LIFE_RUNNING;
        n->unhealthy_since_ms = n->unreachable_since_ms = n->started_ms = 0;
}

/* Assumes a step succeeded and the member it touched came up healthy, to foresee the next. */
static void model_apply(const struct ctx *c, struct model *m, const struct eg_action *a,
                        size_t idx) {
        switch (a->kind) {
        case EG_ACTION_PROMOTE:
                m->nodes[idx].is_learner = false;
                node_heal(&m->nodes[idx]);
                break;
        case EG_ACTION_REMOVE_MEMBER:
        case EG_ACTION_REPLACE_DEAD:
        case EG_ACTION_REMOVE_ORPHAN:
        case EG_ACTION_STOP_UNKNOWN:
                model_remove(m, idx);
                break;
        case EG_ACTION_ADD_LEARNER:
                m->nodes[m->n++] = (struct node){
                        .name = a->member,
                        .in_membership = true,
                        .is_learner = true,
                        .version = c->spec->version,
                        .hash = c->desired_hash,
                };
                node_heal(&m->nodes[m->n - 1]);
                m->next_index++;
                break;
        case EG_ACTION_UPGRADE_MEMBER:
                m->nodes[idx].version = c->spec->version;
                m->nodes[idx].hash = c->desired_hash;
                node_heal(&m->nodes[idx]);
                break;
        case EG_ACTION_BOOTSTRAP:
                m->next_index += a->n_members;
                break;
        case EG_ACTION_RESTORE_REPLACE:
                m->n = 0;
                m->exists = m->reachable = false;
                break;
        case EG_ACTION_RECOVER: {
                struct node seed = m->nodes[idx];
                node_heal(&seed);
                seed.is_learner = false;
                seed.in_membership = seed.is_leader = true;
                m->nodes[0] = seed;
                m->n = 1;
                m->reachable = true;
                break;
        }
        case EG_ACTION_ADOPT:
                m->upstream_owned = NULL;
                break;
        case EG_ACTION_RESTART:
                for (size_t i = 0; i < m->n; i++)
                        for (size_t j = 0; j < a->n_members; j++)
                                if (m->nodes[i].name && strcmp(m->nodes[i].name, a->members[j]) == 0) {
                                        node_heal(&m->nodes[i]);
                                        m->nodes[i].never_started = false;
                                }
                m->reachable = true;
                break;
        default:
                break;
        }
}

static int model_init(const struct eg_observed_cluster *o, struct model *ret) {
        struct model m = {
                .exists = o->exists,
                .reachable = o->etcd_reachable,
                .next_index = o->next_index,
                .upstream_owned = o->upstream_owned,
                .cap = o->n_members + PLAN_MAX_ACTIONS,
        };

        m.nodes = calloc(m.cap, sizeof(struct node));
        if (!m.nodes)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_members; i++) {
                const struct eg_observed_member *om = &o->members[i];
                m.nodes[m.n++] = (struct node){
                        .name = om->name,
                        .id = om->id,
                        .in_runtime = om->in_runtime,
                        .running = om->running,
                        .in_membership = om->in_membership,
                        .is_learner = om->is_learner,
                        .is_leader = om->is_leader,
                        .healthy = om->healthy,
                        .reachable = om->reachable,
                        .data_kept = om->data_kept,
                        .never_started = om->never_started,
                        .initial = om->initial,
                        .healthy_since_start = om->healthy_since_start,
                        .raft_index = om->raft_index,
                        .revision = om->revision,
                        .life = om->life,
                        .life_reason = om->life_reason,
                        .life_since_ms = om->life_since_ms,
                        .restarts = om->restarts,
                        .restart_not_before_ms = om->restart_not_before_ms,
                        .unreachable_since_ms = om->unreachable_since_ms,
                        .unhealthy_since_ms = om->unhealthy_since_ms,
                        .started_ms = om->started_ms,
                        .version = om->version,
                        .hash = om->spec_hash,
                        .replace_to_roll = om->replace_to_roll,
                };
        }
        *ret = m;
        return 0;
}

static void plan_conditions(const struct ctx *c, const struct model *m, struct eg_plan *p) {
        struct census cs;

        census_take(c, m, &cs);
        p->available = cs.exists && m->reachable && cs.healthy >= cs.quorum;
        p->recovering = p->available && cs.any_dead;
        if (!c->spec || !c->spec->version || !p->available)
                return;
        p->scaling = cs.learners > 0 || (int64_t)cs.voters != c->spec->size;
        for (size_t i = 0; i < m->n; i++)
                if (node_voter(&m->nodes[i]) && node_needs_roll(c, &m->nodes[i]))
                        p->upgrading = true;
}

static int plan_absent(const struct eg_plan_input *in, const struct ctx *c, const struct model *m,
                       struct eg_plan *p) {
        struct census cs;
        struct step s = {};
        int r;

        census_take(c, m, &cs);
        if (!cs.exists) {
                p->state = EG_PLAN_ABSENT;
                p->reason = strf("no manifest and no cluster %s/%s: nothing to do", in->namespace, c->name);
                return p->reason ? 0 : -ENOMEM;
        }
        if (!in->prune_allowed) {
                p->state = EG_PLAN_ABSENT;
                p->reason = strf("manifest removed; not pruned (%s)",
                                 c->pol->prune ? "prune not allowed this pass" : "prune is off");
                return p->reason ? 0 : -ENOMEM;
        }

        size_t n_names = 0;
        for (size_t i = 0; i < m->n; i++)
                if (m->nodes[i].name)
                        n_names++;
        r = step_act(&s, EG_ACTION_PRUNE, NULL, 0, c->pol->delete_pruned_data,
                     strf("manifest removed: prune cluster %s/%s (%zu members, data %s)", in->namespace,
                          c->name, m->n, c->pol->delete_pruned_data ? "deleted" : "kept"));
        if (r >= 0 && n_names > 0) {
                s.action.members = calloc(n_names, sizeof(char *));
                if (!s.action.members)
                        r = -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < m->n; i++) {
                if (!m->nodes[i].name)
                        continue;
                s.action.members[s.action.n_members] = strdup(m->nodes[i].name);
                if (!s.action.members[s.action.n_members])
                        r = -ENOMEM;
                else
                        s.action.n_members++;
        }
        if (r >= 0) {
                p->reason = strdup(s.action.reason);
                if (!p->reason)
                        r = -ENOMEM;
        }
        if (r >= 0) {
                p->actions = calloc(1, sizeof(struct eg_action));
                if (!p->actions)
                        r = -ENOMEM;
        }
        if (r < 0) {
                action_done(&s.action);
                return r;
        }
        p->actions[0] = s.action;
        p->n_actions = 1;
        p->state = EG_PLAN_PROGRESSING;
        return 0;
}

/* Plans the step to take now, then foresees the following ones on a copy of the model. */
static int plan_steps(const struct ctx *c, struct model *m, struct eg_plan *p) {
        size_t cap = 0;

        while (p->n_actions < PLAN_MAX_ACTIONS) {
                struct step s = {};
                int r = plan_round(c, m, &s);
                if (r < 0) {
                        free(s.reason);
                        action_done(&s.action);
                        return r;
                }
                if (s.state != EG_PLAN_PROGRESSING) {
                        if (p->n_actions == 0) {
                                p->state = s.state;
                                p->reason = s.reason;
                        } else
                                free(s.reason);
                        break;
                }
                if (p->n_actions == cap) {
                        size_t ncap = cap ? 2 * cap : 4;
                        struct eg_action *a = realloc(p->actions, ncap * sizeof(struct eg_action));
                        if (!a) {
                                action_done(&s.action);
                                return -ENOMEM;
                        }
                        p->actions = a;
                        cap = ncap;
                }
                p->actions[p->n_actions++] = s.action;
                if (p->n_actions == 1) {
                        p->state = EG_PLAN_PROGRESSING;
                        p->reason = strdup(s.action.reason);
                        if (!p->reason)
                                return -ENOMEM;
                }
                model_apply(c, m, &s.action, s.node);
                if (s.action.kind == EG_ACTION_BOOTSTRAP)
                        break;
        }
        p->next_index = m->next_index;
        return 0;
}

int eg_plan_cluster(const struct eg_plan_input *in, struct eg_plan *ret) {
        struct eg_plan p = {};
        struct model m = {};
        int r;

        if (!in || !ret || !in->name || !in->namespace || !in->observed || !in->policy)
                return -EINVAL;
        if (in->observed->n_members > 0 && !in->observed->members)
                return -EINVAL;

        const struct ctx c = {
                .namespace = in->namespace,
                .name = in->name,
                .spec = in->spec_invalid ? NULL : in->spec,
                .desired_hash = in->desired_hash,
                .pol = in->policy,
                .now = in->now_ms,
                .restore_from = in->restore_from,
                .auto_recover_after_ms = in->auto_recover_after_ms,
                .quorum_lost_since_ms = in->quorum_lost_since_ms,
        };
        r = model_init(in->observed, &m);
        if (r < 0)
                return r;
        p.next_index = m.next_index;
        plan_conditions(&c, &m, &p);

        if (in->spec_invalid) {
                p.state = EG_PLAN_UNTOUCHED;
                p.reason = strf("manifest for %s/%s is invalid; the cluster is left as it is",
                                in->namespace, in->name);
                r = p.reason ? 0 : -ENOMEM;
        } else if (!in->spec)
                r = plan_absent(in, &c, &m, &p);
        else if (in->spec->paused) {
                p.state = EG_PLAN_PAUSED;
                p.reason = strf("cluster %s/%s is paused (spec.paused); observing only", in->namespace,
                                in->name);
                r = p.reason ? 0 : -ENOMEM;
        } else
                r = plan_steps(&c, &m, &p);

        free(m.nodes);
        if (r < 0) {
                eg_plan_done(&p);
                return r;
        }
        *ret = p;
        return 0;
}
