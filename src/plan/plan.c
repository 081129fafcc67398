/* The pure planner: desired spec + observed cluster + policy + now -> the next safe step. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "internal.h"

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
        [EG_PLAN_CONVERGED] = "converged", [EG_PLAN_PROGRESSING] = "progressing", [EG_PLAN_WAITING] = "waiting",
        [EG_PLAN_BLOCKED] = "blocked",     [EG_PLAN_PAUSED] = "paused",           [EG_PLAN_QUORUM_LOST] = "quorum-lost",
        [EG_PLAN_UNTOUCHED] = "untouched", [EG_PLAN_ABSENT] = "absent",
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

bool eg_plan_prune_allowed(const struct eg_policy *p, bool source_clean, size_t n_running, size_t n_to_prune,
                           const char **reason) {
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

void plan_census(const struct ctx *c, const struct model *m, struct census *ret) {
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
                else if (!node_starting(c, n) && (n->unreachable_since_ms == 0 ||
                                                  elapsed(c->now, n->unreachable_since_ms) >= c->pol->quorum_grace_ms))
                        s.lost++;
        }
        s.quorum = eg_quorum(s.voters);
        *ret = s;
}

int plan_wait(struct step *s, enum eg_plan_state state, char *reason) {
        if (!reason)
                return -ENOMEM;
        s->state = state;
        s->reason = reason;
        return 0;
}

int plan_act(struct step *s, enum eg_action_kind kind, const struct node *n, size_t idx, bool delete_data,
             char *reason) {
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

int plan_act_version(struct step *s, const char *version) {
        s->action.version = strdup(version);
        return s->action.version ? 0 : -ENOMEM;
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
static void model_apply(const struct ctx *c, struct model *m, const struct eg_action *a, size_t idx) {
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
                        .unready = om->unready,
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

        plan_census(c, m, &cs);
        p->available = cs.exists && m->reachable && cs.healthy >= cs.quorum;
        p->recovering = p->available && cs.any_dead;
        if (!c->spec || !c->spec->version || !p->available)
                return;
        p->scaling = cs.learners > 0 || (int64_t)cs.voters != c->spec->size;
        for (size_t i = 0; i < m->n; i++)
                if (node_voter(&m->nodes[i]) && node_needs_roll(c, &m->nodes[i]))
                        p->upgrading = true;
}

static int plan_absent(const struct eg_plan_input *in, const struct ctx *c, const struct model *m, struct eg_plan *p) {
        struct census cs;
        struct step s = {};
        int r;

        plan_census(c, m, &cs);
        if (!cs.exists) {
                p->state = EG_PLAN_ABSENT;
                p->reason = eg_strdup_printf("no manifest and no cluster %s/%s: nothing to do", in->namespace, c->name);
                return p->reason ? 0 : -ENOMEM;
        }
        if (!in->prune_allowed) {
                p->state = EG_PLAN_ABSENT;
                p->reason = eg_strdup_printf("manifest removed; not pruned (%s)",
                                             c->pol->prune ? "prune not allowed this pass" : "prune is off");
                return p->reason ? 0 : -ENOMEM;
        }

        size_t n_names = 0;
        for (size_t i = 0; i < m->n; i++)
                if (m->nodes[i].name)
                        n_names++;
        r = plan_act(&s, EG_ACTION_PRUNE, NULL, 0, c->pol->delete_pruned_data,
                     eg_strdup_printf("manifest removed: prune cluster %s/%s (%zu members, data %s)", in->namespace,
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
                p.reason = eg_strdup_printf("manifest for %s/%s is invalid; the cluster is left as it is",
                                            in->namespace, in->name);
                r = p.reason ? 0 : -ENOMEM;
        } else if (!in->spec)
                r = plan_absent(in, &c, &m, &p);
        else if (in->spec->paused) {
                p.state = EG_PLAN_PAUSED;
                p.reason = eg_strdup_printf("cluster %s/%s is paused (spec.paused); observing only", in->namespace,
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
