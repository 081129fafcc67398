/* The planner's rules: one round picks the next safe step for a cluster, or says what it waits for. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "internal.h"

/* A spec.size above this is refused rather than planned: bootstrap lists every name. */
#define PLAN_MAX_SIZE 1000

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

/* Whether running `to` on a member now at `from` is one allowed step; *ret_reason (malloc'd)
 * says why not. Returns -ENOMEM only. */
static int version_step_ok(const char *member, const char *from, const char *to, bool *ret_ok, char **ret_reason) {
        struct eg_semver a, b;
        char *why;

        *ret_ok = false;
        if (!from)
                why = eg_strdup_printf("the version of member %s is unknown; cannot check that %s is a safe step",
                                       member, to);
        else if (eg_semver_parse(from, &a) < 0 || eg_semver_parse(to, &b) < 0 || a.minor < 0 || b.minor < 0)
                why = eg_strdup_printf("cannot compare versions %s and %s of member %s: not a version number", from, to,
                                       member);
        else if (eg_semver_compare(&b, &a) < 0)
                why = eg_strdup_printf("downgrade %s -> %s refused (member %s); etcd cannot go back a version in place",
                                       from, to, member);
        else if (b.major != a.major)
                why = eg_strdup_printf("upgrade %s -> %s changes the major version (member %s); go one minor at a time",
                                       from, to, member);
        else if (b.minor - a.minor > 1)
                why = eg_strdup_printf("upgrade %s -> %s skips a minor version; go one minor at a time (%s -> %" PRId64
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

static const struct node *first_unready_voter(const struct model *m) {
        for (size_t i = 0; i < m->n; i++)
                if (node_voter(&m->nodes[i]) && m->nodes[i].unready)
                        return &m->nodes[i];
        return NULL;
}

static int plan_bootstrap(const struct ctx *c, struct model *m, struct step *s) {
        /* a restore seeds one member from the snapshot; the rest join as learners */
        size_t size = c->restore_from ? 1 : (size_t)c->spec->size;
        int r;

        if (m->next_index > UINT64_MAX - size)
                return plan_wait(s, EG_PLAN_BLOCKED,
                                 eg_strdup_printf("member numbers of cluster %s are exhausted", c->name));
        if (c->restore_from)
                r = plan_act(s, EG_ACTION_BOOTSTRAP, NULL, 0, false,
                             eg_strdup_printf("restore cluster from %s: seed member %s-%" PRIu64
                                              ", then grow to %" PRId64,
                                              c->restore_from, c->name, m->next_index, c->spec->size));
        else
                r = plan_act(s, EG_ACTION_BOOTSTRAP, NULL, 0, false,
                             eg_strdup_printf("create cluster with %zu member%s", size, size == 1 ? "" : "s"));
        if (r < 0)
                return r;
        r = plan_act_version(s, c->spec->version);
        if (r < 0)
                return r;
        s->action.members = calloc(size, sizeof(char *));
        if (!s->action.members)
                return -ENOMEM;
        for (size_t i = 0; i < size; i++) {
                s->action.members[i] = eg_strdup_printf("%s-%" PRIu64, c->name, m->next_index + i);
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
                        return plan_wait(
                                s, EG_PLAN_WAITING,
                                eg_strdup_printf("member %s is starting and not yet in the etcd membership", disp(n)));
                return plan_act(s, EG_ACTION_STOP_UNKNOWN, n, i, true,
                                eg_strdup_printf("member %s is in the runtime but not in the etcd membership; stop it",
                                                 disp(n)));
        }
        return 0;
}

static char *dead_reason(const struct ctx *c, const struct node *n, const char *role) {
        if (!n->in_runtime)
                return eg_strdup_printf("%s %s is in the etcd membership but the runtime has no such member; "
                                        "remove it, a fresh member replaces it",
                                        role, disp(n));
        if (n->life == EG_LIFE_STARTING)
                return eg_strdup_printf("%s %s dead (still starting after %" PRId64
                                        "s%s%s); remove it, a fresh member replaces it",
                                        role, disp(n), elapsed(c->now, n->life_since_ms) / 1000,
                                        n->life_reason ? ": " : "", n->life_reason ? n->life_reason : "");
        if (n->life == EG_LIFE_FAILING)
                return eg_strdup_printf(
                        "%s %s is failing (%s) and was made for another spec than the one desired now; remove "
                        "it, a fresh member replaces it",
                        role, disp(n), n->life_reason ? n->life_reason : "no reason given");
        if (!n->running && n->restarts >= c->pol->restart_limit)
                return eg_strdup_printf("%s %s dead (kept failing: restarted %u times within %" PRId64
                                        " min); remove it, a fresh member replaces it",
                                        role, disp(n), n->restarts, c->pol->restart_window_ms / 60000);
        if (n->life == EG_LIFE_GONE && !n->data_kept)
                return eg_strdup_printf("%s %s dead (process gone, no data to restart from); remove it, a fresh member "
                                        "replaces it",
                                        role, disp(n));
        if (!n->running)
                return eg_strdup_printf("%s %s dead (process gone); remove it, a fresh member replaces it", role,
                                        disp(n));
        return eg_strdup_printf("%s %s dead (unhealthy for %" PRId64 "s); remove it, a fresh member replaces it", role,
                                disp(n), elapsed(c->now, n->unhealthy_since_ms) / 1000);
}

static enum eg_action_kind dead_kind(const struct node *n) {
        return n->in_runtime ? EG_ACTION_REPLACE_DEAD : EG_ACTION_REMOVE_ORPHAN;
}

/* The WAITING reason for a failing member: its platform's words, and why time changes nothing. */
static char *failing_wait(const char *role, const struct node *n) {
        return eg_strdup_printf(
                "%s %s is failing (%s); it is waited for, not replaced: a fresh member would get the same "
                "image and template",
                role, disp(n), n->life_reason ? n->life_reason : "no reason given");
}

/* " (NAME is not)", with the runtime's words when it has some, to end a reason that waits for
 * every member to be healthy. */
static char *not_healthy(const struct node *n) {
        if ((n->life == EG_LIFE_FAILING || n->life == EG_LIFE_STARTING) && n->life_reason)
                return eg_strdup_printf("%s is %s: %s", disp(n), n->life == EG_LIFE_FAILING ? "failing" : "starting",
                                        n->life_reason);
        return eg_strdup_printf("%s is not", disp(n));
}

static int plan_learners(const struct ctx *c, const struct model *m, struct step *s, bool *done) {
        const struct node *waiting = NULL;

        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (!n->in_membership || !n->is_learner)
                        continue;
                if (n->in_runtime && n->running && n->healthy) {
                        *done = true;
                        return plan_act(s, EG_ACTION_PROMOTE, n, i, false,
                                        eg_strdup_printf("promote learner %s to a voting member", disp(n)));
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
                        return plan_act(s, dead_kind(n), n, i, !c->pol->keep_removed_data,
                                        dead_reason(c, n, "learner"));
                }
                if (!waiting)
                        waiting = n;
        }
        if (!waiting)
                return 0;
        *done = true;
        if (node_failing(waiting))
                return plan_wait(s, EG_PLAN_WAITING, failing_wait("learner", waiting));
        if (waiting->life == EG_LIFE_STARTING && waiting->life_reason)
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("learner %s is starting (%s); it is replaced if still so %" PRId64
                                                  " s after it began",
                                                  disp(waiting), waiting->life_reason,
                                                  c->pol->start_timeout_ms / 1000));
        return plan_wait(s, EG_PLAN_WAITING,
                         eg_strdup_printf("learner %s catching up; it is promoted once healthy", disp(waiting)));
}

/* The healthy voters left after removing n (*ret_after), and whether they are a quorum of the rest. */
static bool removal_keeps_quorum(const struct census *cs, const struct node *n, size_t *ret_after) {
        *ret_after = cs->healthy - (n->healthy ? 1 : 0);
        return *ret_after >= eg_quorum(cs->voters - 1);
}

static int plan_dead_voters(const struct ctx *c, const struct model *m, const struct census *cs, struct step *s,
                            bool *done) {
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
        size_t after;
        if (!removal_keeps_quorum(cs, n, &after))
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("member %s looks dead but removing it would leave %zu of %zu voting "
                                                  "members healthy (need %zu)",
                                                  disp(n), after, cs->voters - 1, eg_quorum(cs->voters - 1)));
        return plan_act(s, dead_kind(n), n, pick, !c->pol->keep_removed_data, dead_reason(c, n, "member"));
}

/* Checks that spec.version is one allowed step from every voter's version; a BLOCKED
 * reason is prefixed with what (when not NULL) it blocks. */
static int check_versions(const struct ctx *c, const struct model *m, const char *what, struct step *s, bool *done) {
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
                        return plan_wait(s, EG_PLAN_BLOCKED, why);
                char *reason = eg_strdup_printf("%s blocked: %s", what, why);
                free(why);
                return plan_wait(s, EG_PLAN_BLOCKED, reason);
        }
        return 0;
}

/* What a membership change needs first: spec.version one allowed step from every voter's
 * (a BLOCKED reason prefixed with blocked_what, when not NULL) and every voter healthy (a
 * WAITING reason naming waiting_what). Sets s when the change cannot go on. -ENOMEM only. */
static int check_ready(const struct ctx *c, const struct model *m, const char *blocked_what, const char *waiting_what,
                       struct step *s, bool *done) {
        int r = check_versions(c, m, blocked_what, s, done);
        if (r < 0 || s->reason)
                return r;
        const struct node *bad = first_unhealthy_voter(m);
        if (!bad) {
                /* etcd answers before the kubelet's readiness probe passes: the pod that just
                 * came back is not yet behind the Service, nor counted by the PDB */
                const struct node *unready = first_unready_voter(m);
                return unready ? plan_wait(s, EG_PLAN_WAITING,
                                           eg_strdup_printf("%s waits for every member to be ready (%s is healthy, "
                                                            "its pod not Ready yet)",
                                                            waiting_what, disp(unready)))
                               : 0;
        }
        char *why = not_healthy(bad);
        r = plan_wait(s, EG_PLAN_WAITING,
                      why ? eg_strdup_printf("%s waits for every member to be healthy (%s)", waiting_what, why) : NULL);
        free(why);
        return r;
}

/* A voter started so recently that etcd would refuse to add a member now. */
static const struct node *first_unsettled_voter(const struct ctx *c, const struct model *m) {
        for (size_t i = 0; i < m->n; i++) {
                const struct node *n = &m->nodes[i];
                if (node_voter(n) && n->started_ms != 0 && elapsed(c->now, n->started_ms) < c->pol->member_settle_ms)
                        return n;
        }
        return NULL;
}

/* Adds a member as a learner, when every voter is healthy and settled: what is written as
 * "what: add member X as learner". */
static int plan_add(const struct ctx *c, const struct model *m, struct step *s, bool *done, const char *what) {
        int r = check_ready(c, m, what, what, s, done);
        if (r < 0 || s->reason)
                return r;
        const struct node *fresh = first_unsettled_voter(c, m);
        if (fresh)
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("%s waits until every voting member has been up %" PRId64
                                                  " ms (%s started %" PRId64
                                                  " ms ago): etcd refuses new members before",
                                                  what, c->pol->member_settle_ms, disp(fresh),
                                                  elapsed(c->now, fresh->started_ms)));
        if (m->next_index == UINT64_MAX)
                return plan_wait(
                        s, EG_PLAN_BLOCKED,
                        eg_strdup_printf("%s blocked: member numbers of cluster %s are exhausted", what, c->name));
        char *member = eg_strdup_printf("%s-%" PRIu64, c->name, m->next_index);
        if (!member)
                return -ENOMEM;
        r = plan_act(s, EG_ACTION_ADD_LEARNER, NULL, 0, false,
                     eg_strdup_printf("%s: add member %s as learner", what, member));
        if (r < 0) {
                free(member);
                return r;
        }
        s->action.member = member;
        return plan_act_version(s, c->spec->version);
}

static int plan_scale_up(const struct ctx *c, struct model *m, const struct census *cs, struct step *s, bool *done) {
        size_t size = (size_t)c->spec->size;

        if (cs->voters >= size)
                return 0;
        *done = true;
        char *what = eg_strdup_printf("scale up %zu -> %zu", cs->voters, size);
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

static int plan_scale_down(const struct ctx *c, const struct model *m, const struct census *cs, struct step *s,
                           bool *done) {
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
        size_t after;
        if (!removal_keeps_quorum(cs, n, &after))
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("scale down %zu -> %zu waits: removing %s would leave %zu of %zu "
                                                  "voting members healthy (need %zu)",
                                                  cs->voters, size, disp(n), after, cs->voters - 1,
                                                  eg_quorum(cs->voters - 1)));
        if (node_replaced_to_roll(c, n))
                return plan_act(
                        s, EG_ACTION_REMOVE_MEMBER, n, pick, true,
                        eg_strdup_printf("remove member %s, replaced by a member on the changed member template "
                                         "(%zu -> %zu)",
                                         disp(n), cs->voters, size));
        return plan_act(s, EG_ACTION_REMOVE_MEMBER, n, pick, !c->pol->keep_removed_data,
                        eg_strdup_printf("scale down %zu -> %zu: remove member %s", cs->voters, size, disp(n)));
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

        _cleanup_free_ char *upgrade = eg_strdup_printf("upgrade to %s", c->spec->version);
        if (!upgrade)
                return -ENOMEM;
        int r = check_ready(c, m, NULL, upgrade, s, done);
        if (r < 0 || s->reason)
                return r;

        const struct node *n = &m->nodes[pick];
        char *progress = n->is_leader ? eg_strdup_printf("the leader, last") : eg_strdup_printf("%zu to go", todo);
        if (!progress)
                return -ENOMEM;
        if (n->replace_to_roll) {
                /* its data cannot survive the change: a successor joins first, so the
                 * cluster never has fewer healthy members than it should */
                char *what = eg_strdup_printf("replace member %s onto the changed member template (%s)", disp(n),
                                              progress);
                free(progress);
                if (!what)
                        return -ENOMEM;
                r = plan_add(c, m, s, done, what);
                free(what);
                return r;
        }
        char *reason;
        if (n->version && strcmp(n->version, c->spec->version) == 0)
                reason = eg_strdup_printf("roll member %s onto the changed member template (%s)", disp(n), progress);
        else
                reason = eg_strdup_printf("upgrade member %s %s -> %s (%s)", disp(n), vers(n->version),
                                          c->spec->version, progress);
        free(progress);
        r = plan_act(s, EG_ACTION_UPGRADE_MEMBER, n, pick, false, reason);
        if (r < 0)
                return r;
        return plan_act_version(s, c->spec->version);
}

static int plan_settled(const struct ctx *c, const struct model *m, const struct census *cs, struct step *s) {
        const struct node *n = first_unhealthy_voter(m);

        if (!n)
                return plan_wait(s, EG_PLAN_CONVERGED,
                                 eg_strdup_printf("%zu of %zu members healthy at version %s", cs->healthy,
                                                  (size_t)c->spec->size, c->spec->version));
        if (node_failing(n))
                return plan_wait(s, EG_PLAN_WAITING, failing_wait("member", n));
        if (node_starting(c, n))
                return plan_wait(s, EG_PLAN_WAITING, eg_strdup_printf("member %s is starting", disp(n)));
        if (n->unhealthy_since_ms != 0)
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("member %s unhealthy for %" PRId64
                                                  "s; it is judged dead after %" PRId64 "s",
                                                  disp(n), elapsed(c->now, n->unhealthy_since_ms) / 1000,
                                                  c->pol->dead_after_ms / 1000));
        return plan_wait(s, EG_PLAN_WAITING, eg_strdup_printf("member %s is not healthy", disp(n)));
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
                return plan_wait(s, EG_PLAN_WAITING,
                                 eg_strdup_printf("member %s is restarted in place in %" PRId64
                                                  " ms (back-off after %u restart%s)",
                                                  disp(later), -elapsed(c->now, later->restart_not_before_ms),
                                                  later->restarts, later->restarts == 1 ? "" : "s"));
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
                r = plan_act(s, EG_ACTION_RESTART, n, first, false,
                             eg_strdup_printf("restart member%s %s in place (%s)", k == 1 ? "" : "s", names.data, why));
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
        return plan_act(
                s, EG_ACTION_RECOVER, n, best, false,
                eg_strdup_printf(
                        "quorum lost for %" PRId64 " s, past %s (%" PRId64 " s): force a new cluster from the most "
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
                const char *state = n->healthy || n->reachable    ? "answers"
                                    : n->running                  ? "running, not answering"
                                    : n->life == EG_LIFE_FAILING  ? (n->life_reason ? n->life_reason : "failing")
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
        r = plan_wait(
                s, EG_PLAN_QUORUM_LOST,
                eg_strdup_printf(
                        "quorum lost: %zu of %zu voting members reachable (need %zu) for over %" PRId64
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
                                return plan_wait(s, EG_PLAN_WAITING,
                                                 eg_strdup_printf("etcd of %s not reachable yet; member %s is starting",
                                                                  c->name, disp(n)));
                        if (n->reachable)
                                answering++;
                        else if (n->unreachable_since_ms == 0 ||
                                 elapsed(c->now, n->unreachable_since_ms) >= c->pol->quorum_grace_ms)
                                lost++;
                }
                if (answering > 0)
                        return plan_wait(
                                s, EG_PLAN_WAITING,
                                eg_strdup_printf(
                                        "electing: %zu member%s of %s answer but the member list cannot be had yet",
                                        answering, answering == 1 ? "" : "s", c->name));
                if (lost < members)
                        return plan_wait(
                                s, EG_PLAN_WAITING,
                                eg_strdup_printf("no member of %s answers yet; quorum is judged lost after %" PRId64
                                                 " ms",
                                                 c->name, c->pol->quorum_grace_ms));
                struct census none = {.voters = members, .quorum = eg_quorum(members)};
                return quorum_lost(c, m, &none, s);
        }
        if (cs->reachable >= cs->quorum)
                return plan_wait(
                        s, EG_PLAN_WAITING,
                        eg_strdup_printf(
                                "electing: %zu of %zu voting members answer, %zu healthy with a leader (need %zu)",
                                cs->reachable, cs->voters, cs->healthy, cs->quorum));
        if (cs->healthy + cs->starting >= cs->quorum)
                return plan_wait(
                        s, EG_PLAN_WAITING,
                        eg_strdup_printf(
                                "%zu of %zu voting members healthy (need %zu); waiting for %zu starting members",
                                cs->healthy, cs->voters, cs->quorum, cs->starting));
        if (cs->voters - cs->lost >= cs->quorum)
                return plan_wait(
                        s, EG_PLAN_WAITING,
                        eg_strdup_printf(
                                "%zu of %zu voting members reachable (need %zu); quorum is judged lost after %" PRId64
                                " ms",
                                cs->reachable, cs->voters, cs->quorum, c->pol->quorum_grace_ms));
        return quorum_lost(c, m, cs, s);
}

int plan_round(const struct ctx *c, struct model *m, struct step *s) {
        struct census cs;
        bool done = false;
        int r;

        if (!c->spec->version || !*c->spec->version)
                return plan_wait(s, EG_PLAN_BLOCKED, eg_strdup_printf("spec.version of %s is empty", c->name));
        if (c->spec->size < 1 || c->spec->size > PLAN_MAX_SIZE)
                return plan_wait(s, EG_PLAN_BLOCKED,
                                 eg_strdup_printf("spec.size %" PRId64 " of %s is out of range (1 to %d)",
                                                  c->spec->size, c->name, PLAN_MAX_SIZE));

        plan_census(c, m, &cs);
        if (!cs.exists)
                return plan_bootstrap(c, m, s);
        /* first, in any state (quorum lost included): it touches no member, and until it is done
         * deleting the old custom resource or its CRD would delete the cluster */
        if (m->upstream_owned)
                return plan_act(
                        s, EG_ACTION_ADOPT, NULL, 0, false,
                        eg_strdup_printf("adopt %s from coreos etcd-operator: remove the ownerReferences to its "
                                         "EtcdCluster resource from %s, so that deleting that resource or its CRD "
                                         "cannot garbage-collect them (nothing is restarted)",
                                         c->name, m->upstream_owned));
        if (c->restore_from)
                return plan_act(
                        s, EG_ACTION_RESTORE_REPLACE, NULL, 0, false,
                        eg_strdup_printf("EtcdRestore with overwrite: stop the running cluster %s (its data is kept) "
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
