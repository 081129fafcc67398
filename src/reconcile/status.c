/* Cluster status in the upstream EtcdCluster status shape, kept as one JSON file per
 * cluster under the state dir. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static bool member_ready(const struct observation *o, const struct eg_observed_member *m) {
        return m->in_runtime && m->running && m->healthy && (!o->ml_ok || m->in_membership);
}

static json_t *condition(const char *type, bool status, const char *reason, const char *message, const char *now) {
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type", type, "status", status ? "True" : "False", "reason",
                         reason, "message", message ? message : "", "lastUpdateTime", now, "lastTransitionTime", now);
}

/* What `get members` shows: the runtime's view first (a pod pulling its image is
 * starting, not unhealthy), then etcd's. */
static const char *member_state(const struct eg_observed_member *m) {
        if (!m->in_runtime)
                return "missing";
        switch (m->life) {
        case EG_LIFE_STARTING:
                return "starting";
        case EG_LIFE_FAILING:
                return "failing";
        case EG_LIFE_GONE:
                return "stopped";
        default:
                break;
        }
        if (!m->running)
                return "stopped";
        return m->healthy ? "healthy" : m->reachable ? "no-leader" : "unhealthy";
}

/* What the status says of the members. */
struct member_tally {
        json_t *ready, *unready, *urls, *details;
        size_t n_ready, voters, healthy_voters;
        const char *current; /* the lowest version running */
};

static json_t *member_detail(const struct eg_observed_member *m, const struct eg_runtime_member *rm) {
        char id[17] = "";
        if (m->id)
                snprintf(id, sizeof(id), "%016llx", (unsigned long long)m->id);
        return json_pack("{s:s, s:s?, s:s, s:s, s:b, s:b, s:s?, s:I, s:s?, s:s?, s:s?, s:b, s:i}", "name", m->name,
                         "id", m->id ? id : NULL, "state", member_state(m), "role",
                         m->is_leader       ? "leader"
                         : m->is_learner    ? "learner"
                         : m->in_membership ? "follower"
                                            : "none",
                         "inMembership", m->in_membership, "running", m->running, "version", m->version, "pid",
                         (json_int_t)(rm ? rm->pid : 0), "clientURL", rm ? rm->client_url : NULL, "life",
                         m->in_runtime ? eg_member_life_to_string(m->life) : NULL, "lifeReason", m->life_reason,
                         "dataKept", m->in_runtime && (m->running || m->data_kept), "restarts", (int)m->restarts);
}

static void tally_members(const struct observation *o, struct member_tally *t) {
        for (size_t i = 0; i < o->oc.n_members; i++) {
                const struct eg_observed_member *m = &o->oc.members[i];
                bool ok = member_ready(o, m);
                json_array_append_new(ok ? t->ready : t->unready, json_string(m->name));
                t->n_ready += ok;
                if (m->in_membership && !m->is_learner) {
                        t->voters++;
                        t->healthy_voters += m->healthy;
                }
                if (m->version && (!t->current || strcmp(m->version, t->current) < 0))
                        t->current = m->version;
                const struct eg_runtime_member *rm = NULL;
                for (size_t j = 0; j < o->rc.n_members; j++)
                        if (strcmp(o->rc.members[j].name, m->name) == 0)
                                rm = &o->rc.members[j];
                if (rm && rm->client_url && rm->running)
                        json_array_append_new(t->urls, json_string(rm->client_url));
                json_array_append_new(t->details, member_detail(m, rm));
        }
        /* no members, neither ready nor unready, but what is left of them needs someone to look */
        for (size_t i = 0; i < o->rc.n_stuck; i++) {
                const struct eg_runtime_member *m = &o->rc.stuck[i];
                json_array_append_new(t->details,
                                      json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:s?, s:b, s:i}", "name", m->name,
                                                "state", "gone", "role", "none", "inMembership", false, "running",
                                                false, "life", eg_member_life_to_string(m->life), "lifeReason",
                                                m->life_reason, "dataKept", false, "restarts", 0));
        }
}

static json_t *status_conditions(const struct eg_plan *plan, bool available, const char *reason, const char *now) {
        json_t *conds = json_array();
        json_array_append_new(conds, condition("Available", available, available ? "ClusterAvailable" : "QuorumLost",
                                               available ? "quorum holds" : reason, now));
        if (plan) {
                json_array_append_new(conds, condition("Recovering", plan->recovering, "DeadMembers",
                                                       plan->recovering ? plan->reason : NULL, now));
                json_array_append_new(conds, condition("Scaling", plan->scaling, "ScalingCluster",
                                                       plan->scaling ? plan->reason : NULL, now));
                json_array_append_new(conds, condition("Upgrading", plan->upgrading, "UpgradingCluster",
                                                       plan->upgrading ? plan->reason : NULL, now));
        }
        return conds;
}

json_t *status_build(const struct observation *o, const struct eg_cluster_spec *spec, const struct eg_plan *plan,
                     const char *revision, const char *commit, const char *last_error, int64_t now_realtime_ms) {
        char now[32];
        eg_format_rfc3339_ms(now_realtime_ms, now);
        struct member_tally m = {
                .ready = json_array(), .unready = json_array(), .urls = json_array(), .details = json_array()};
        tally_members(o, &m);
        bool quorum = m.voters > 0 && m.healthy_voters >= eg_quorum(m.voters);
        const char *phase, *reason = plan ? plan->reason : NULL;
        if (plan && plan->state == EG_PLAN_QUORUM_LOST)
                phase = "Failed";
        else if (!o->oc.exists || (m.n_ready == 0 && !revision))
                phase = "Creating";
        else if (!plan && !quorum)
                phase = "Failed";
        else
                phase = "Running";
        _cleanup_free_ char *reason_buf = NULL;
        if (plan && plan->state == EG_PLAN_QUORUM_LOST)
                reason = reason_buf = eg_strdup_printf("QuorumLost: %s", plan->reason ? plan->reason : "");
        else if (!plan && m.voters > 0 && !quorum)
                reason = reason_buf = eg_strdup_printf("QuorumLost: %zu of %zu voting members healthy",
                                                       m.healthy_voters, m.voters);
        json_t *conds = status_conditions(plan, plan ? plan->available : quorum, reason, now);
        _cleanup_free_ char *service = eg_strdup_printf("%s-client", o->name);
        json_t *status = json_pack(
                "{s:s, s:s?, s:b, s:o, s:I, s:o*, s:s, s:o, s:o, s:s?, s:s?, s:s?, s:o, s:s?, s:s?, s:s?, s:s?, s:s?, s:o}",
                "phase", phase, "reason", reason, "controlPaused", spec ? spec->paused : false, "conditions", conds,
                "size", (json_int_t)m.n_ready, "desiredSize", spec ? json_integer(spec->size) : NULL, "serviceName",
                service, "clientURLs", m.urls, "members",
                json_pack("{s:o, s:o}", "ready", m.ready, "unready", m.unready), "currentVersion", m.current,
                "targetVersion", spec ? spec->version : NULL, "leader", o->leader_name, "readyMembers",
                json_sprintf("%zu/%zu", m.n_ready, spec ? (size_t)spec->size : o->oc.n_members), "plan",
                plan ? eg_plan_state_to_string(plan->state) : NULL, "planReason", plan ? plan->reason : NULL,
                "lastAppliedRevision", revision, "commit", commit, "lastError", last_error ? last_error : o->etcd_error,
                "memberDetails", m.details);
        if (!status)
                return NULL;
        return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", EG_API_VERSION, "kind", "EtcdCluster",
                         "metadata", "name", o->name, "namespace", o->ns, "status", status);
}

static char *status_path(const char *state_dir, const char *ns, const char *name) {
        return eg_state_path(state_dir, EG_STATE_STATUS, ns, name);
}

/* A status file is a few KiB per member; jansson's own file reader takes a byte at a time. */
#define STATUS_MAX (4 << 20)

static json_t *status_load(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        return eg_read_file(path, STATUS_MAX, &text, &len) < 0 ? NULL : json_loadb(text, len, 0, NULL);
}

json_t *status_read(const char *state_dir, const char *ns, const char *name) {
        _cleanup_free_ char *p = status_path(state_dir, ns, name);
        return p ? status_load(p) : NULL;
}

/* Keeps each condition's transition time from the previous status when its status did
 * not change, so times mean what Kubernetes users expect. */
static void carry_condition_times(json_t *old, json_t *new) {
        json_t *oc = json_object_get(json_object_get(old, "status"), "conditions");
        json_t *nc = json_object_get(json_object_get(new, "status"), "conditions");
        size_t i, j;
        json_t *n, *c;
        json_array_foreach(nc, i, n) {
                json_array_foreach(oc, j, c) {
                        if (json_equal(json_object_get(c, "type"), json_object_get(n, "type")) &&
                            json_equal(json_object_get(c, "status"), json_object_get(n, "status"))) {
                                json_object_set(n, "lastTransitionTime", json_object_get(c, "lastTransitionTime"));
                                if (json_equal(json_object_get(c, "message"), json_object_get(n, "message")))
                                        json_object_set(n, "lastUpdateTime", json_object_get(c, "lastUpdateTime"));
                        }
                }
        }
}

int status_write(const char *state_dir, const char *ns, const char *name, json_t *status) {
        _cleanup_free_ char *p = status_path(state_dir, ns, name);
        _cleanup_free_ char *dir = eg_state_path(state_dir, EG_STATE_STATUS, ns, NULL);
        if (!p || !dir)
                return -ENOMEM;
        json_t *old = status_load(p);
        if (old) {
                carry_condition_times(old, status);
                bool same = json_equal(old, status);
                json_decref(old);
                if (same)
                        return 0;
        }
        int r = eg_mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = json_dumps(status, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        return eg_write_file_atomic(p, text, strlen(text), 0644);
}

int status_remove(const char *state_dir, const char *ns, const char *name) {
        _cleanup_free_ char *p = status_path(state_dir, ns, name);
        if (!p)
                return -ENOMEM;
        return unlink(p) < 0 && errno != ENOENT ? -errno : 0;
}
