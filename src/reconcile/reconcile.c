/* The reconciler: a pass over every cluster (each one's turn is pass.c's), the plan of every
 * cluster for diff and the live status of every cluster for get. */
#include <errno.h>
#include <string.h>

#include "internal.h"

struct cluster_key {
        const char *ns, *name;
};

/* The clusters a pass, plan or status goes over: desired ∪ what the runtime lists, filtered
 * by namespace. keys point into listed and into the desired set. */
struct cluster_keys {
        struct eg_runtime_cluster *listed;
        size_t n_listed;
        struct cluster_key *keys;
        size_t n;
        bool prune_allowed; /* whether this pass may prune */
};

int eg_reconciler_new(const struct eg_reconciler_options *opt, struct eg_reconciler **ret) {
        struct eg_reconciler *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->opt = *opt;
        if (r->opt.etcd_timeout_ms <= 0)
                r->opt.etcd_timeout_ms = 1500;
        r->journal = opt->journal;
        int k = 0;
        if (!r->journal) {
                k = eg_journal_new(opt->audit, &r->own_journal);
                if (k >= 0 && opt->on_event)
                        k = eg_journal_add_sink(r->own_journal, record_to_listener, r);
                r->journal = r->own_journal;
        }
        if (k < 0) {
                eg_reconciler_free(r);
                return k;
        }
        *ret = r;
        return 0;
}

void eg_reconciler_free(struct eg_reconciler *r) {
        if (!r)
                return;
        eg_journal_free(r->own_journal);
        for (size_t i = 0; i < r->n_tracks; i++)
                track_done(&r->tracks[i]);
        free(r->tracks);
        free(r->list_error);
        free(r->list_warning);
        free(r->ordered_revision);
        free(r);
}

const char *eg_reconciler_list_problem(const struct eg_reconciler *r) {
        return r->list_error ? r->list_error : r->list_warning;
}

static bool in_scope(const struct eg_reconciler *r, const char *ns) {
        return !r->opt.namespace || strcmp(r->opt.namespace, ns) == 0;
}

static bool is_desired_cluster(const struct eg_reconciler *r, const struct eg_object *obj) {
        return obj->kind == EG_KIND_CLUSTER && in_scope(r, obj->meta.namespace);
}

/* Lists the runtime's clusters, looking in the namespaces where the source names clusters
 * when the runtime may not list every namespace. Its errors and warnings are logged once
 * each: a daemon retries every second, and /readyz says it meanwhile. */
static int list_runtime(struct eg_reconciler *r, const struct eg_desired_set *desired, struct cluster_keys *ck) {
        struct eg_error err = {0};
        size_t n_desired = desired ? desired->n_objects : 0, n_ns = 0;
        _cleanup_free_ const char **nss = desired ? calloc(n_desired + 1, sizeof(*nss)) : NULL;
        if (desired && !nss)
                return -ENOMEM;
        for (size_t i = 0; i < n_desired; i++) {
                const struct eg_object *obj = desired->objects[i];
                bool seen = false;
                if (!is_desired_cluster(r, obj))
                        continue;
                for (size_t j = 0; j < n_ns && !seen; j++)
                        seen = strcmp(nss[j], obj->meta.namespace) == 0;
                if (!seen)
                        nss[n_ns++] = obj->meta.namespace;
        }
        int k = eg_runtime_list(r->opt.runtime, nss, n_ns, &ck->listed, &ck->n_listed, &err);
        if (k < 0) {
                const char *why = err.message ? err.message : strerror(-k);
                if (!str_eq(r->list_error, why))
                        eg_log_error("cannot list clusters of the %s runtime: %s", eg_runtime_name(r->opt.runtime),
                                     why);
                set_str(&r->list_error, why);
                eg_error_done(&err);
                return k;
        }
        if (r->list_error || (r->list_warning && !err.message))
                eg_log_info("every cluster of the %s runtime can be seen again", eg_runtime_name(r->opt.runtime));
        set_str(&r->list_error, NULL);
        if (err.message && !str_eq(r->list_warning, err.message))
                eg_log_warning("%s", err.message);
        set_str(&r->list_warning, err.message);
        eg_error_done(&err);
        return 0;
}

static bool keys_has(const struct cluster_keys *ck, const char *ns, const char *name) {
        for (size_t i = 0; i < ck->n; i++)
                if (strcmp(ck->keys[i].ns, ns) == 0 && strcmp(ck->keys[i].name, name) == 0)
                        return true;
        return false;
}

static void cluster_keys_done(struct cluster_keys *ck) {
        free(ck->keys);
        eg_runtime_clusters_free(ck->listed, ck->n_listed);
        *ck = (struct cluster_keys){0};
}

/* Also starts a pass's bookkeeping: no track is seen yet. */
static int cluster_keys_load(struct eg_reconciler *r, const struct eg_desired_set *desired, struct cluster_keys *ret) {
        struct cluster_keys ck = {0};
        size_t n_desired = desired ? desired->n_objects : 0, n_running = 0, to_prune = 0;
        int k = list_runtime(r, desired, &ck);
        if (k < 0)
                return k;
        ck.keys = calloc(n_desired + ck.n_listed + 1, sizeof(*ck.keys));
        if (!ck.keys) {
                cluster_keys_done(&ck);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_desired; i++) {
                const struct eg_object *obj = desired->objects[i];
                if (is_desired_cluster(r, obj) && !keys_has(&ck, obj->meta.namespace, obj->meta.name))
                        ck.keys[ck.n++] = (struct cluster_key){obj->meta.namespace, obj->meta.name};
        }
        for (size_t i = 0; i < ck.n_listed; i++) {
                const struct eg_runtime_cluster *rc = &ck.listed[i];
                if (!in_scope(r, rc->namespace))
                        continue;
                n_running++;
                if (keys_has(&ck, rc->namespace, rc->name))
                        continue;
                ck.keys[ck.n++] = (struct cluster_key){rc->namespace, rc->name};
                if (!eg_desired_set_object_has_errors(desired, EG_KIND_CLUSTER, rc->namespace, rc->name))
                        to_prune++;
        }
        ck.prune_allowed = eg_plan_prune_allowed(&r->opt.policy, desired && desired->n_errors == 0, n_running, to_prune,
                                                 NULL);
        for (size_t i = 0; i < r->n_tracks; i++)
                r->tracks[i].seen = false;
        *ret = ck;
        return 0;
}

/* Whether the key's manifest differs from the one its last pass found; remembers it. A
 * cluster first seen counts as changed. */
static bool manifest_changed(struct eg_reconciler *r, const struct eg_desired_set *desired,
                             const struct cluster_key *key) {
        struct cluster_track *t = track_get(r, key->ns, key->name);
        const struct eg_object *obj = desired ? eg_desired_set_find(desired, EG_KIND_CLUSTER, key->ns, key->name)
                                              : NULL;
        char *now = obj && obj->document ? json_dumps(obj->document, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        if (!t) {
                free(now);
                return true;
        }
        bool changed = !t->seen_manifest || !str_eq(now, t->manifest);
        free(t->manifest);
        t->manifest = now;
        t->seen_manifest = true;
        return changed;
}

/* The clusters whose manifest changed go first, in their order: after a commit, the time
 * to its first step is one cluster's turn, not every cluster's. */
static void changed_first(struct eg_reconciler *r, const struct eg_desired_set *desired, struct cluster_keys *ck) {
        size_t n_first = 0;
        for (size_t i = 0; i < ck->n; i++) {
                if (!manifest_changed(r, desired, &ck->keys[i]))
                        continue;
                struct cluster_key k = ck->keys[i];
                memmove(&ck->keys[n_first + 1], &ck->keys[n_first], (i - n_first) * sizeof(k));
                ck->keys[n_first++] = k;
        }
}

int eg_reconciler_pass(struct eg_reconciler *r, const struct eg_desired_set *desired,
                       const struct eg_revision_info *rev, struct eg_pass_result *ret) {
        struct eg_pass_result res = {.all_converged = true};
        struct cluster_keys ck;
        int k = cluster_keys_load(r, desired, &ck);
        if (k < 0)
                return k;
        /* manifests change only with the revision: between two, the order stands */
        if (!rev || !rev->revision || !str_eq(rev->revision, r->ordered_revision)) {
                changed_first(r, desired, &ck);
                set_str(&r->ordered_revision, rev ? rev->revision : NULL);
        }
        for (size_t i = 0; i < ck.n; i++) {
                if (r->opt.stop && *r->opt.stop) {
                        res.all_converged = false;
                        break;
                }
                reconcile_cluster(r, desired, rev, ck.keys[i].ns, ck.keys[i].name, ck.prune_allowed, &res);
        }
        /* a cluster no longer passed over (pruned, or another namespace) has no processes
         * to watch: its pids may belong to anything by now; nor connections to keep */
        for (size_t i = 0; i < r->n_tracks; i++)
                if (!r->tracks[i].seen) {
                        r->tracks[i].n_pids = 0;
                        track_etcd_drop(&r->tracks[i]);
                }
        if (res.n_clusters == 0)
                res.next_due_ms = eg_now_monotonic_ms() + RECHECK_MS;
        cluster_keys_done(&ck);
        *ret = res;
        return 0;
}

/* Observes a cluster for plan or status; false (o left empty) when it cannot be. */
static bool observe_key(struct eg_reconciler *r, const struct cluster_key *key, struct observation *o, int64_t now) {
        struct cluster_track *t = track_get(r, key->ns, key->name);
        *o = (struct observation){0};
        if (t && observe(r, t, key->ns, key->name, true, o, now) >= 0)
                return true;
        observation_done(o);
        return false;
}

static json_t *plan_json(const struct cluster_key *key, const struct eg_plan *p, const struct eg_object *obj,
                         const struct observation *o) {
        json_t *acts = json_array();
        for (size_t i = 0; acts && i < p->n_actions; i++) {
                const struct eg_action *a = &p->actions[i];
                json_array_append_new(acts,
                                      json_pack("{s:s, s:s?, s:s?, s:s?}", "kind", eg_action_kind_to_string(a->kind),
                                                "member", a->member, "version", a->version, "reason", a->reason));
        }
        json_t *entry = json_pack("{s:s, s:s?, s:o*}", "state", eg_plan_state_to_string(p->state), "reason", p->reason,
                                  "actions", acts);
        json_t *st = status_build(o, obj ? &obj->cluster : NULL, p, NULL, NULL, NULL, eg_now_realtime_ms());
        if (!entry) {
                json_decref(st);
                return NULL;
        }
        json_object_set_new(entry, "namespace", json_string(key->ns));
        json_object_set_new(entry, "name", json_string(key->name));
        json_object_set(entry, "desired", obj ? obj->document : json_null());
        if (obj)
                json_object_set_new(
                        entry, "origin",
                        json_pack("{s:s, s:i}", "path", obj->origin.path, "line", (json_int_t)obj->origin.line));
        json_object_set_new(entry, "observed", st ? st : json_null());
        return entry;
}

static json_t *plan_entry(struct eg_reconciler *r, const struct eg_desired_set *desired, const struct cluster_key *key,
                          bool prune_allowed, int64_t now) {
        struct observation o;
        if (!observe_key(r, key, &o, now))
                return json_pack("{s:s, s:s, s:s}", "namespace", key->ns, "name", key->name, "state", "unobservable");
        const struct eg_object *obj = eg_desired_set_find(desired, EG_KIND_CLUSTER, key->ns, key->name);
        _cleanup_free_ char *hash = plan_prepare(r->opt.runtime, NULL, NULL, key->ns, obj, &o);
        const struct eg_object *restore = obj ? pending_restore(r->opt.state_dir, desired, key->ns, key->name,
                                                                o.rc_exists, NULL)
                                              : NULL;
        struct eg_plan_input in = {
                .restore_from = restore ? restore_source(&restore->restore) : NULL,
                .namespace = key->ns,
                .name = key->name,
                .spec = obj ? &obj->cluster : NULL,
                .spec_invalid = eg_desired_set_object_has_errors(desired, EG_KIND_CLUSTER, key->ns, key->name),
                .desired_hash = hash,
                .observed = &o.oc,
                .policy = &r->opt.policy,
                .prune_allowed = prune_allowed,
                .now_ms = now,
        };
        struct eg_plan plan = {0};
        json_t *entry = eg_plan_cluster(&in, &plan) == 0 ? plan_json(key, &plan, obj, &o) : NULL;
        eg_plan_done(&plan);
        observation_done(&o);
        return entry;
}

/* The daemon's view (phase, conditions, revisions) when it saved one, with live members on top. */
static json_t *status_entry(struct eg_reconciler *r, const struct eg_desired_set *desired,
                            const struct cluster_key *key, bool prune_allowed, int64_t now) {
        struct observation o;
        if (!observe_key(r, key, &o, now))
                return NULL;
        json_t *saved = r->opt.state_dir ? status_read(r->opt.state_dir, key->ns, key->name) : NULL;
        json_t *live = status_build(&o, NULL, NULL, NULL, NULL, NULL, eg_now_realtime_ms());
        observation_done(&o);
        if (!live || !saved) {
                json_decref(saved);
                return live;
        }
        json_t *ss = json_object_get(saved, "status"), *ls = json_object_get(live, "status");
        const char *live_only[] = {"members", "leader", "currentVersion", "clientURLs", "readyMembers"};
        for (size_t j = 0; ss && ls && j < EG_ELEMENTSOF(live_only); j++)
                json_object_set(ss, live_only[j], json_object_get(ls, live_only[j]));
        json_decref(live);
        return saved;
}

/* One entry of plan_all or status_all for the cluster at key; NULL: none. */
typedef json_t *(*entry_fn)(struct eg_reconciler *r, const struct eg_desired_set *desired,
                            const struct cluster_key *key, bool prune_allowed, int64_t now);

static int collect(struct eg_reconciler *r, const struct eg_desired_set *desired, entry_fn entry, json_t **ret) {
        struct cluster_keys ck;
        int k = cluster_keys_load(r, desired, &ck);
        if (k < 0)
                return k;
        json_t *out = json_array();
        int64_t now = eg_now_monotonic_ms();
        for (size_t i = 0; out && i < ck.n; i++) {
                json_t *e = entry(r, desired, &ck.keys[i], ck.prune_allowed, now);
                if (e)
                        json_array_append_new(out, e);
        }
        cluster_keys_done(&ck);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

int eg_reconciler_plan_all(struct eg_reconciler *r, const struct eg_desired_set *desired, json_t **ret) {
        return collect(r, desired, plan_entry, ret);
}

int eg_reconciler_status_all(struct eg_reconciler *r, json_t **ret) { return collect(r, NULL, status_entry, ret); }
