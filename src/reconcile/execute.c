/* Carrying out one planned action: the runtime's part (start, stop, upgrade) and etcd's
 * (member add, promote, remove, leadership hand-over). */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct eg_etcd *reconcile_etcd_client(const struct eg_reconciler_options *opt, const char *ns, const char *name,
                                      char *const *endpoints, size_t n, struct eg_error *err) {
        struct eg_etcd_options eo = {0};
        struct eg_runtime *rt = opt->runtime;
        if (eg_runtime_etcd_access(rt, ns, name, &eo, err) < 0)
                return NULL;
        eo.timeout_ms = opt->etcd_timeout_ms;
        eo.connect_timeout_ms = opt->etcd_timeout_ms / 3;
        struct eg_etcd *c = NULL;
        if (n == 0 || eg_etcd_new(endpoints, n, &eo, &c) < 0)
                return NULL;
        return c;
}

static char *initial_cluster(const struct eg_etcd_member_list *ml, const struct eg_runtime_cluster *rc,
                             const char *new_member, const char *new_peer_url) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < ml->n; i++) {
                const struct eg_etcd_member *m = &ml->members[i];
                const char *peer = m->n_peer_urls ? m->peer_urls[0] : NULL;
                const char *nm = m->name && *m->name ? m->name : NULL;
                if (!peer)
                        continue;
                if (!nm && strcmp(peer, new_peer_url) == 0)
                        nm = new_member;
                for (size_t j = 0; !nm && j < rc->n_members; j++)
                        if (rc->members[j].peer_url && strcmp(rc->members[j].peer_url, peer) == 0)
                                nm = rc->members[j].name;
                if (!nm)
                        continue;
                for (size_t j = 0; j < m->n_peer_urls; j++)
                        if (eg_buf_printf(&b, "%s%s=%s", b.len ? "," : "", nm, m->peer_urls[j]) < 0) {
                                eg_buf_done(&b);
                                return NULL;
                        }
        }
        return eg_buf_steal(&b);
}

static int etcd_call_error(struct eg_error *err, const char *what, int k, struct eg_error *ee) {
        eg_error_set(err, "%s: %s", what, ee->message ? ee->message : strerror(-k));
        eg_error_done(ee);
        return k;
}

/* The leader is replaced last; handing leadership to a healthy follower first turns
 * an election (writes stall for the election timeout) into a quick transfer. Best
 * effort: if it fails the restart still goes ahead, as etcd would elect anyway. */
static void hand_over_leadership(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                                 const struct observation *o, const struct eg_action *a) {
        const char *leader_url = NULL;
        uint64_t target = 0;
        for (size_t i = 0; i < o->oc.n_members; i++) {
                const struct eg_observed_member *m = &o->oc.members[i];
                const char *url = NULL;
                for (size_t j = 0; j < o->rc.n_members; j++)
                        if (strcmp(o->rc.members[j].name, m->name) == 0)
                                url = o->rc.members[j].client_url;
                if (m->id == a->member_id)
                        leader_url = url;
                else if (!target && m->healthy && m->in_membership && !m->is_learner)
                        target = m->id;
        }
        if (!leader_url || !target)
                return;
        struct eg_etcd *c = reconcile_etcd_client(opt, tg->namespace, tg->name, o->endpoints, o->n_endpoints, NULL);
        struct eg_error ee = {0};
        if (c && eg_etcd_move_leader(c, leader_url, target, &ee) < 0)
                eg_log_warning("%s/%s: could not hand leadership over before restarting %s: %s", tg->namespace,
                               tg->name, a->member, ee.message ? ee.message : "no answer");
        eg_error_done(&ee);
        eg_etcd_free(c);
}

/* Every member named is tried, so one that cannot start does not keep the others down;
 * the first failure is the one reported. */
static int restart_members(struct eg_runtime *rt, const struct eg_runtime_target *tg, const struct observation *o,
                           const struct eg_action *a, struct eg_error *err) {
        int first = 0;
        if (!eg_runtime_supports(rt, EG_RUNTIME_RESTART_MEMBER)) {
                eg_error_set(err, "the %s runtime cannot restart a member in place", eg_runtime_name(rt));
                return -EOPNOTSUPP;
        }
        for (size_t i = 0; i < a->n_members; i++) {
                const struct eg_runtime_member *m = NULL;
                for (size_t j = 0; j < o->rc.n_members; j++)
                        if (strcmp(o->rc.members[j].name, a->members[i]) == 0)
                                m = &o->rc.members[j];
                /* a member that joined but never ran is started as a join would have */
                _cleanup_free_ char *ic = m && m->never_started && m->peer_url && o->ml_ok
                                                  ? initial_cluster(&o->ml, &o->rc, m->name, m->peer_url)
                                                  : NULL;
                struct eg_error e = {0};
                int k = eg_runtime_restart_member(rt, tg, a->members[i], ic, &e);
                if (k < 0 && first == 0) {
                        first = k;
                        eg_error_set(err, "%s", e.message ? e.message : strerror(-k));
                }
                eg_error_done(&e);
        }
        return first;
}

/* The recovery `etcd-gitops recover --from-member` carries out, asked for by the
 * cluster's annotation: the planner found nothing left that could come back by itself,
 * so members with data that keep failing do not hold it back. */
static int recover_from_member(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                               const struct eg_action *a, struct eg_error *err) {
        struct eg_recover_view v = {0};
        struct eg_recover_plan p = {0};
        struct eg_recover_request req = {.member = a->member, .force = true};
        struct eg_recover_options ro = {.runtime = opt->runtime,
                                        .state_dir = opt->state_dir,
                                        .namespace = tg->namespace,
                                        .name = tg->name,
                                        .spec = tg->spec};
        int k = eg_recover_observe(opt->runtime, opt->state_dir, tg->namespace, tg->name, &v, err);
        if (k >= 0)
                k = eg_recover_plan(&v, &req, tg->name, &p, err);
        if (k >= 0)
                k = eg_recover_run(&ro, &v, &p, err);
        eg_recover_plan_done(&p);
        eg_recover_view_done(&v);
        return k;
}

/* etcd checks a member add against the transport of the member that receives it: every
 * other voter connected for 5 s. A new member dialled its peers the moment it started, while
 * older ones may still hold a failed lookup of its name (cluster DNS, a resolver's cache) for
 * seconds longer; so a refusal from one member is asked of each of the others before the
 * add waits for another pass. Only a refusal is asked again elsewhere: a timeout may mean
 * the add was applied. */
static int member_add_anywhere(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                               struct eg_etcd *c, const struct observation *o, const char *peer, uint64_t *ret_id,
                               struct eg_error *ee) {
        int k = eg_etcd_member_add(c, peer, true, ret_id, ee);
        for (size_t i = 0; k == -EAGAIN && o->n_endpoints > 1 && i < o->n_endpoints; i++) {
                struct eg_etcd *one = reconcile_etcd_client(opt, tg->namespace, tg->name, &o->endpoints[i], 1, NULL);
                if (!one)
                        continue;
                struct eg_error e = {0};
                int r = eg_etcd_member_add(one, peer, true, ret_id, &e);
                eg_etcd_free(one);
                /* refused too, or never reached (a member that is down): the add still waits */
                if (r == -EAGAIN || r == -ECONNREFUSED || r == -EHOSTUNREACH) {
                        eg_error_done(&e);
                        continue;
                }
                eg_error_move(ee, &e);
                k = r;
        }
        return k;
}

static bool changes_membership(enum eg_action_kind kind) {
        return kind == EG_ACTION_ADD_LEARNER || kind == EG_ACTION_PROMOTE || kind == EG_ACTION_REMOVE_MEMBER ||
               kind == EG_ACTION_REPLACE_DEAD || kind == EG_ACTION_REMOVE_ORPHAN;
}

/* A client for a membership change; a member applying its own removal stops before it
 * answers, so the others are asked. */
static int membership_client(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                             const struct observation *o, const struct eg_action *a, struct eg_etcd **ret,
                             struct eg_error *err) {
        const char *self = NULL;
        for (size_t i = 0; a->member && i < o->rc.n_members; i++)
                if (strcmp(o->rc.members[i].name, a->member) == 0)
                        self = o->rc.members[i].client_url;
        _cleanup_free_ char **eps = calloc(o->n_endpoints + 1, sizeof(char *));
        size_t n = 0;
        if (!eps)
                return -ENOMEM;
        for (size_t i = 0; i < o->n_endpoints; i++)
                if (!self || strcmp(o->endpoints[i], self) != 0)
                        eps[n++] = o->endpoints[i];
        *ret = reconcile_etcd_client(opt, tg->namespace, tg->name, n > 0 ? eps : o->endpoints,
                                     n > 0 ? n : o->n_endpoints, err);
        if (*ret)
                return 0;
        if (!err || !err->message)
                eg_error_set(err, "no running member to reach etcd through");
        return -EHOSTUNREACH;
}

static int add_learner(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg, struct eg_etcd *c,
                       const struct observation *o, const struct eg_action *a, struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        struct eg_error ee = {0};
        _cleanup_free_ char *peer = NULL;
        uint64_t id;
        int k = eg_runtime_prepare_member(rt, tg, a->member, &peer, err);
        if (k < 0)
                return k;
        k = member_add_anywhere(opt, tg, c, o, peer, &id, &ee);
        if (k == -EAGAIN) {
                /* etcd's strict reconfiguration check: every voter must have been connected
                 * for a while before the membership may change */
                eg_error_set(err, "etcd is not ready to add %s yet (%s)", a->member,
                             ee.message ? ee.message : "unhealthy cluster");
                eg_error_done(&ee);
        } else if (k < 0)
                etcd_call_error(err, "member add", k, &ee);
        if (k < 0) {
                /* the reserved member never joined: forget it; when etcd refused it
                 * outright its name is handed out again */
                if (k == -EAGAIN && eg_runtime_supports(rt, EG_RUNTIME_RELEASE_MEMBER))
                        eg_runtime_release_member(rt, tg->namespace, tg->name, a->member, NULL);
                else
                        eg_runtime_stop_member(rt, tg->namespace, tg->name, a->member, true, NULL);
                return k;
        }
        struct eg_etcd_member_list ml = {0};
        k = eg_etcd_member_list(c, &ml, &ee);
        if (k < 0)
                return etcd_call_error(err, "member list after add", k, &ee);
        _cleanup_free_ char *ic = initial_cluster(&ml, &o->rc, a->member, peer);
        eg_etcd_member_list_done(&ml);
        if (!ic)
                return -ENOMEM;
        return eg_runtime_start_member(rt, tg, a->member, ic, err);
}

static int promote(struct eg_etcd *c, const struct eg_action *a, struct eg_error *err) {
        struct eg_error ee = {0};
        int k = eg_etcd_member_promote(c, a->member_id, &ee);
        if (k == -EAGAIN) {
                eg_error_set(err, "learner %s is catching up before promotion", a->member);
                eg_error_done(&ee);
        } else if (k < 0)
                etcd_call_error(err, "member promote", k, &ee);
        return k;
}

static int remove_member(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg, struct eg_etcd *c,
                         const struct observation *o, const struct eg_action *a, struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        /* a leader replaced onto a new template is removed last, after handing over */
        if (a->kind == EG_ACTION_REMOVE_MEMBER && a->member_id && a->member_id == o->leader_id)
                hand_over_leadership(opt, tg, o, a);
        /* etcd first: a member stopped before its removal would count as a dead voter and
         * could cost quorum in the meantime */
        if (a->member_id) {
                struct eg_error ee = {0};
                int k = eg_etcd_member_remove(c, a->member_id, &ee);
                if (k < 0 && k != -ENOENT)
                        return etcd_call_error(err, "member remove", k, &ee);
                eg_error_done(&ee);
        }
        if (a->kind == EG_ACTION_REMOVE_ORPHAN)
                return 0;
        return eg_runtime_stop_member(rt, tg->namespace, tg->name, a->member, a->delete_data, err);
}

static int execute_action(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                          struct eg_etcd *c, const struct observation *o, const struct eg_action *a,
                          struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        switch (a->kind) {
        case EG_ACTION_BOOTSTRAP:
                return eg_runtime_bootstrap(rt, tg, a->members, a->n_members, err);
        case EG_ACTION_ADD_LEARNER:
                return add_learner(opt, tg, c, o, a, err);
        case EG_ACTION_PROMOTE:
                return promote(c, a, err);
        case EG_ACTION_REMOVE_MEMBER:
        case EG_ACTION_REPLACE_DEAD:
        case EG_ACTION_REMOVE_ORPHAN:
                return remove_member(opt, tg, c, o, a, err);
        case EG_ACTION_STOP_UNKNOWN:
                return eg_runtime_stop_member(rt, tg->namespace, tg->name, a->member, a->delete_data, err);
        case EG_ACTION_UPGRADE_MEMBER:
                if (a->member_id && a->member_id == o->leader_id)
                        hand_over_leadership(opt, tg, o, a);
                return eg_runtime_upgrade_member(rt, tg, a->member, err);
        case EG_ACTION_PRUNE:
        case EG_ACTION_RESTORE_REPLACE:
                return eg_runtime_delete_cluster(rt, tg->namespace, tg->name, a->delete_data, err);
        case EG_ACTION_RESTART:
                return restart_members(rt, tg, o, a, err);
        case EG_ACTION_RECOVER:
                return recover_from_member(opt, tg, a, err);
        case EG_ACTION_ADOPT:
                return eg_runtime_disown(rt, tg->namespace, tg->name, err);
        default:
                eg_error_set(err, "unknown action");
                return -EINVAL;
        }
}

int reconcile_execute(const struct eg_reconciler_options *opt, const struct eg_runtime_target *tg,
                      const struct observation *o, const struct eg_action *a, struct eg_error *err) {
        struct eg_etcd *c = NULL;
        int k = changes_membership(a->kind) ? membership_client(opt, tg, o, a, &c, err) : 0;
        if (k < 0)
                return k;
        k = execute_action(opt, tg, c, o, a, err);
        eg_etcd_free(c);
        if (k < 0 && k != -EAGAIN && !err->message)
                eg_error_set(err, "%s", strerror(-k));
        return k;
}
