/* runtime_kube: etcd members as Kubernetes pods, with the services, PDB and PVCs the original etcd-operator made. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "etcd-gitops/kube.h"
#include "kube_objects.h"
#include "kube_runtime.h"

#define POD_GONE_TIMEOUT_MS 120000
#define POLL_INTERVAL_MS 200

/* ---- names and paths ---- */

/* RFC 1123 labels: what pod, service and namespace names must be. */
static bool dns_label(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

int kube_check_names(const char *ns, const char *name, const char *member, struct eg_error *err) {
        const char *bad = !dns_label(ns) ? ns : !dns_label(name) ? name : member && !dns_label(member) ? member : NULL;
        if (bad || !ns || !name) {
                eg_error_set(err, "'%s' is not a valid Kubernetes name (lowercase letters, digits, '-', at most 63)",
                             bad ? bad : "(null)");
                return -EINVAL;
        }
        return 0;
}

static int check_target(const struct eg_runtime_target *t, const char *member, struct eg_error *err) {
        if (!t || !t->spec || !t->spec->version) {
                eg_error_set(err, "no cluster spec given");
                return -EINVAL;
        }
        return kube_check_names(t->namespace, t->name, member, err);
}

static char *pods_path(const char *ns) { return eg_strdup_printf("/api/v1/namespaces/%s/pods", ns); }
static char *pod_path(const char *ns, const char *pod) {
        return eg_strdup_printf("/api/v1/namespaces/%s/pods/%s", ns, pod);
}
static char *services_path(const char *ns) { return eg_strdup_printf("/api/v1/namespaces/%s/services", ns); }
static char *pvcs_path(const char *ns) {
        return eg_strdup_printf("/api/v1/namespaces/%s/persistentvolumeclaims", ns);
}
static char *pdbs_path(const char *ns) {
        return eg_strdup_printf("/apis/policy/v1/namespaces/%s/poddisruptionbudgets", ns);
}
static char *named(char *(*collection)(const char *), const char *ns, const char *name) {
        _cleanup_free_ char *c = collection(ns);
        return c ? eg_strdup_printf("%s/%s", c, name) : NULL;
}

/* GET path into *ret; a 404 is -ENOENT with nothing said in err, since callers make what is
 * missing and a step that went well must not carry an error. */
static int get_maybe(struct kube_runtime *kr, const char *path, json_t **ret, struct eg_error *err) {
        struct eg_error e = {0};
        int r = eg_kube_get(kr->client, path, ret, &e);
        if (r < 0 && r != -ENOENT)
                eg_error_set(err, "%s", e.message ? e.message : strerror(-r));
        eg_error_done(&e);
        return r;
}

static char *cluster_selector(const char *name) { return eg_strdup_printf("app=etcd,etcd_cluster=%s", name); }

static int64_t quorum(int64_t n) { return n / 2 + 1; }

static char *kube_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        (void)rt;
        return kube_template_hash(spec, true);
}

/* ---- services, PDB, member numbers ---- */

/* Ports compared by name and number: the server fills in defaults we do not set. */
static bool ports_match(json_t *have, json_t *want) {
        if (json_array_size(have) != json_array_size(want))
                return false;
        size_t i;
        json_t *w;
        json_array_foreach(want, i, w) {
                bool found = false;
                size_t j;
                json_t *h;
                json_array_foreach(have, j, h) {
                        if (json_equal(json_object_get(h, "name"), json_object_get(w, "name")) &&
                            json_equal(json_object_get(h, "port"), json_object_get(w, "port")) &&
                            (!json_object_get(h, "targetPort") ||
                             json_equal(json_object_get(h, "targetPort"), json_object_get(w, "targetPort"))))
                                found = true;
                }
                if (!found)
                        return false;
        }
        return true;
}

static bool service_ok(json_t *have, json_t *want, bool headless) {
        json_t *hs = json_object_get(have, "spec"), *ws = json_object_get(want, "spec");
        if (!json_equal(json_object_get(hs, "selector"), json_object_get(ws, "selector")) ||
            !ports_match(json_object_get(hs, "ports"), json_object_get(ws, "ports")))
                return false;
        if (headless) {
                const char *ip = jstr(hs, "clusterIP");
                return json_is_true(json_object_get(hs, "publishNotReadyAddresses")) && ip && strcmp(ip, "None") == 0;
        }
        const char *type = jstr(hs, "type");
        return !type || strcmp(type, "ClusterIP") == 0;
}

/* Puts our selector, ports and flags into a live service, keeping what the server owns. */
static int service_repair(json_t *obj, void *userdata) {
        json_t *want = userdata;
        json_t *hs = json_object_get(obj, "spec"), *ws = json_object_get(want, "spec");
        if (!json_is_object(hs))
                return -EBADMSG;
        json_object_set(hs, "selector", json_object_get(ws, "selector"));
        json_object_set(hs, "ports", json_object_get(ws, "ports"));
        if (json_object_get(ws, "publishNotReadyAddresses"))
                json_object_set(hs, "publishNotReadyAddresses", json_object_get(ws, "publishNotReadyAddresses"));
        if (json_object_get(ws, "type"))
                json_object_set(hs, "type", json_object_get(ws, "type"));
        return 0;
}

/* Creates the service when missing, repairs it when edited; notes it in owned (may be NULL) when
 * an EtcdCluster resource owns it. A read-only runtime only looks. */
static int ensure_service(struct kube_runtime *kr, const char *ns, const char *name, bool headless, json_t *owned,
                          struct eg_error *err) {
        json_t *want = kube_service_manifest(ns, name, headless), *have = NULL;
        _cleanup_free_ char *coll = services_path(ns);
        _cleanup_free_ char *path = NULL;
        int r = -ENOMEM;
        if (!want || !coll)
                goto out;
        path = eg_strdup_printf("%s/%s", coll, jstr(json_object_get(want, "metadata"), "name"));
        if (!path)
                goto out;
        r = get_maybe(kr, path, &have, err);
        if (r == -ENOENT && kr->read_only)
                r = 0;
        if (r == -ENOENT) {
                r = eg_kube_create(kr->client, coll, want, NULL, err);
                if (r == -EEXIST)
                        r = 0;
                goto out;
        }
        if (r < 0 || !have || (r = kube_note_upstream_owned(owned, "service", have)) < 0 || kr->read_only ||
            service_ok(have, want, headless))
                goto out;
        const char *ip = jstr(json_object_get(have, "spec"), "clusterIP");
        if (headless && (!ip || strcmp(ip, "None") != 0)) {
                /* clusterIP cannot change in place */
                if ((r = eg_kube_delete(kr->client, path, 0, NULL, err)) < 0 && r != -ENOENT)
                        goto out;
                r = eg_kube_create(kr->client, coll, want, NULL, err);
        } else
                r = eg_kube_update(kr->client, path, service_repair, want, NULL, err);
out:
        json_decref(want);
        json_decref(have);
        return r;
}

static int ensure_services(struct kube_runtime *kr, const char *ns, const char *name, json_t *owned,
                           struct eg_error *err) {
        int r = ensure_service(kr, ns, name, false, owned, err);
        return r < 0 ? r : ensure_service(kr, ns, name, true, owned, err);
}

/* The PDB exists and asks for min_available; min_available < 0 only creates a missing one
 * (for quorum of n_default members). Notes and read-only as ensure_service. */
static int ensure_pdb(struct kube_runtime *kr, const char *ns, const char *name, int64_t min_available,
                      int64_t n_default, json_t *owned, struct eg_error *err) {
        _cleanup_free_ char *coll = pdbs_path(ns);
        _cleanup_free_ char *path = coll ? eg_strdup_printf("%s/%s", coll, name) : NULL;
        json_t *have = NULL;
        if (!path)
                return -ENOMEM;
        int r = get_maybe(kr, path, &have, err);
        if (r == -ENOENT && kr->read_only)
                return 0;
        if (r == -ENOENT) {
                int64_t min = min_available >= 0 ? min_available : quorum(n_default);
                json_t *pdb = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:I, s:{s:{s:s, s:s}}}}", "apiVersion",
                                        "policy/v1", "kind", "PodDisruptionBudget", "metadata", "name", name,
                                        "namespace", ns, "labels", kube_cluster_labels(name), "spec", "minAvailable",
                                        (json_int_t)min, "selector", "matchLabels", "app", "etcd", "etcd_cluster", name);
                if (!pdb)
                        return -ENOMEM;
                r = eg_kube_create(kr->client, coll, pdb, NULL, err);
                json_decref(pdb);
                return r == -EEXIST ? 0 : r;
        }
        if (r < 0)
                return r;
        json_t *cur = jpath(have, "spec", "minAvailable");
        bool same = min_available < 0 || (json_is_integer(cur) && json_integer_value(cur) == min_available);
        r = kube_note_upstream_owned(owned, "poddisruptionbudget", have);
        json_decref(have);
        if (r < 0 || same || kr->read_only)
                return r;
        json_t *patch = json_pack("{s:{s:I}}", "spec", "minAvailable", (json_int_t)min_available);
        if (!patch)
                return -ENOMEM;
        r = eg_kube_patch(kr->client, path, EG_KUBE_PATCH_MERGE, patch, NULL, err);
        json_decref(patch);
        return r;
}

static uint64_t member_index(const char *cluster, const char *member) {
        size_t l = strlen(cluster);
        uint64_t n;
        if (strncmp(member, cluster, l) != 0 || member[l] != '-' || eg_parse_uint64(member + l + 1, &n) < 0 ||
            n == UINT64_MAX)
                return 0;
        return n + 1;
}

/* Raises the next-index annotation on the client service to at least next. */
static int record_next_index(struct kube_runtime *kr, const char *ns, const char *name, uint64_t next,
                             struct eg_error *err) {
        _cleanup_free_ char *path = named(services_path, ns, name);
        _cleanup_free_ char *cpath = path ? eg_strdup_printf("%s-client", path) : NULL;
        json_t *svc = NULL;
        uint64_t have = 0;
        if (!cpath)
                return -ENOMEM;
        int r = eg_kube_get(kr->client, cpath, &svc, err);
        if (r < 0)
                return r;
        const char *cur = jstr(jpath(svc, "metadata", "annotations"), ANN_NEXT_INDEX);
        if (cur && eg_parse_uint64(cur, &have) >= 0 && have >= next) {
                json_decref(svc);
                return 0;
        }
        json_decref(svc);
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, next);
        json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ANN_NEXT_INDEX, num);
        if (!patch)
                return -ENOMEM;
        r = eg_kube_patch(kr->client, cpath, EG_KUBE_PATCH_MERGE, patch, NULL, err);
        json_decref(patch);
        return r;
}

/* ---- observe ---- */

static char *strdup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static int member_from_pod(struct kube_runtime *kr, const char *ns, json_t *pod, struct eg_runtime_member *m) {
        json_t *meta = json_object_get(pod, "metadata"), *ann = json_object_get(meta, "annotations");
        const char *name = jstr(meta, "name");
        const char *adv = kube_etcd_flag(pod, "--advertise-client-urls");
        const char *peer = kube_etcd_flag(pod, "--initial-advertise-peer-urls");
        bool tls = adv && strncmp(adv, "https:", 6) == 0;
        int64_t since = 0;
        if (!name)
                return -EBADMSG;
        m->name = strdup(name);
        if (kube_pod_life(pod, &m->life, &m->life_reason, &since) < 0)
                return -ENOMEM;
        m->running = m->life == EG_LIFE_RUNNING;
        m->life_since_realtime_ms = since;
        m->data_kept = kube_pod_on_claim(pod);
        m->version = strdup_or_null(jstr(ann, ANN_VERSION));
        /* adopted pods carry no hash: NULL, never a guess */
        m->spec_hash = strdup_or_null(jstr(ann, ANN_SPEC_HASH));
        m->peer_url = peer ? strndup(peer, strcspn(peer, ",")) : NULL;
        if (kr->access == EG_KUBE_ACCESS_PROXY)
                m->client_url = eg_kube_pod_proxy_url(kr->client, ns, name, CLIENT_PORT, tls);
        else
                m->client_url = adv ? strndup(adv, strcspn(adv, ",")) : NULL;
        m->started_realtime_ms = m->running ? since : 0;
        if (!m->name || (jstr(ann, ANN_VERSION) && !m->version) || (jstr(ann, ANN_SPEC_HASH) && !m->spec_hash) ||
            (peer && !m->peer_url) || (kr->access == EG_KUBE_ACCESS_PROXY && !m->client_url))
                return -ENOMEM;
        return 0;
}

/* A member whose pod is gone while its claim holds its data: still a member, to be restarted
 * on that claim (as a rebooted host's member would be), never forgotten. */
static int member_from_claim(struct kube_runtime *kr, const char *ns, json_t *pvc, struct eg_runtime_member *m) {
        const char *name = jstr(json_object_get(pvc, "metadata"), "name");
        if (!name)
                return -EBADMSG;
        m->name = strdup(name);
        m->life = EG_LIFE_GONE;
        m->life_reason = eg_strdup_printf("no pod: claim %s holds its data", name);
        m->life_since_realtime_ms = 0;
        m->data_kept = true;
        if (kr->access == EG_KUBE_ACCESS_PROXY)
                m->client_url = eg_kube_pod_proxy_url(kr->client, ns, name, CLIENT_PORT, false);
        if (!m->name || !m->life_reason || (kr->access == EG_KUBE_ACCESS_PROXY && !m->client_url))
                return -ENOMEM;
        return 0;
}

static int cmp_member(const void *a, const void *b) {
        return strcmp(((const struct eg_runtime_member *)a)->name, ((const struct eg_runtime_member *)b)->name);
}

/* The pods not being deleted. One being deleted is stopped already: as a member it would only
 * be stopped again, pass after pass, and on a lost node its deletion never completes. Its
 * member is gone (and, with a claim, restarted from it once the pod is really gone). */
static json_t *live_pods(json_t *pods) {
        json_t *out = json_array();
        size_t i;
        json_t *pod;
        json_array_foreach(pods, i, pod) {
                if (out && !jpath(pod, "metadata", "deletionTimestamp") && json_array_append(out, pod) < 0) {
                        json_decref(out);
                        return NULL;
                }
        }
        return out;
}

/* Pods being deleted long after their deletion was due (no kubelet completes it: a lost node),
 * reported with the cluster they were members of. A member whose claim outlives its pod is not
 * restarted before that pod is really gone: it says why; the others go in c->stuck. */
static int note_stuck_pods(json_t *all, struct eg_runtime_cluster *c) {
        int64_t now = eg_now_realtime_ms();
        size_t i;
        json_t *pod;
        json_array_foreach(all, i, pod) {
                const char *name = jstr(json_object_get(pod, "metadata"), "name");
                char *why = NULL;
                int r = kube_pod_stuck_terminating(pod, now, &why);
                if (r < 0)
                        return r;
                if (!why || !name) {
                        free(why);
                        continue;
                }
                struct eg_runtime_member *m = NULL;
                for (size_t j = 0; j < c->n_members && !m; j++)
                        if (strcmp(c->members[j].name, name) == 0)
                                m = &c->members[j];
                if (m) {
                        free(m->life_reason);
                        m->life_reason = why;
                        continue;
                }
                struct eg_runtime_member *more = realloc(c->stuck, (c->n_stuck + 1) * sizeof(*more));
                if (!more) {
                        free(why);
                        return -ENOMEM;
                }
                c->stuck = more;
                more[c->n_stuck++] = (struct eg_runtime_member){.name = strdup(name), .life = EG_LIFE_GONE,
                                                                .life_reason = why};
                if (!more[c->n_stuck - 1].name)
                        return -ENOMEM;
        }
        return 0;
}

static bool has_pod(json_t *pods, const char *name) {
        size_t i;
        json_t *pod;
        json_array_foreach(pods, i, pod) {
                const char *n = jstr(json_object_get(pod, "metadata"), "name");
                if (n && strcmp(n, name) == 0)
                        return true;
        }
        return false;
}

/* The claims that stand for members on their own: their pod is gone, they are not being
 * deleted, and they are named after a member as the runtime names them. */
static size_t claim_members(json_t *pvcs, json_t *pods, const char *name, json_t **ret) {
        json_t *out = json_array();
        size_t i;
        json_t *pvc;
        json_array_foreach(pvcs, i, pvc) {
                json_t *meta = json_object_get(pvc, "metadata");
                const char *n = jstr(meta, "name"), *node = jstr(json_object_get(meta, "labels"), "etcd_node");
                if (out && n && node && strcmp(n, node) == 0 && member_index(name, n) > 0 &&
                    !json_object_get(meta, "deletionTimestamp") && !has_pod(pods, n))
                        json_array_append(out, pvc);
        }
        *ret = out;
        return json_array_size(out);
}

/* Builds the cluster from its pods (those labelled etcd_cluster=name in ns) and the claims
 * of members whose pod is gone. */
static int cluster_from_pods(struct kube_runtime *kr, const char *ns, const char *name, json_t *pods, json_t *pvcs,
                             uint64_t recorded_next, struct eg_runtime_cluster *ret) {
        struct eg_runtime_cluster c = {.next_index = recorded_next};
        json_t *orphans = NULL;
        size_t i, n_claims = claim_members(pvcs, pods, name, &orphans);
        json_t *obj;
        int r = -ENOMEM;
        c.namespace = strdup(ns);
        c.name = strdup(name);
        c.members = calloc(json_array_size(pods) + n_claims + 1, sizeof(*c.members));
        if (!c.namespace || !c.name || !c.members || !orphans)
                goto fail;
        json_array_foreach(pods, i, obj) {
                if ((r = member_from_pod(kr, ns, obj, &c.members[c.n_members++])) < 0)
                        goto fail;
        }
        json_array_foreach(orphans, i, obj) {
                if ((r = member_from_claim(kr, ns, obj, &c.members[c.n_members++])) < 0)
                        goto fail;
        }
        for (i = 0; i < c.n_members; i++) {
                uint64_t idx = member_index(name, c.members[i].name);
                if (idx > c.next_index)
                        c.next_index = idx;
        }
        qsort(c.members, c.n_members, sizeof(*c.members), cmp_member);
        json_decref(orphans);
        *ret = c;
        return 0;
fail:
        json_decref(orphans);
        eg_runtime_cluster_done(&c);
        return r;
}

static uint64_t recorded_next_index(struct kube_runtime *kr, const char *ns, const char *name) {
        _cleanup_free_ char *path = named(services_path, ns, name);
        _cleanup_free_ char *cpath = path ? eg_strdup_printf("%s-client", path) : NULL;
        json_t *svc = NULL;
        uint64_t n = 0;
        if (cpath && eg_kube_get(kr->client, cpath, &svc, NULL) >= 0) {
                const char *v = jstr(jpath(svc, "metadata", "annotations"), ANN_NEXT_INDEX);
                if (!v || eg_parse_uint64(v, &n) < 0)
                        n = 0;
        }
        json_decref(svc);
        return n;
}

int kube_list_cluster_pods(struct kube_runtime *kr, const char *ns, const char *name, json_t **ret,
                            struct eg_error *err) {
        _cleanup_free_ char *coll = pods_path(ns);
        _cleanup_free_ char *sel = cluster_selector(name);
        if (!coll || !sel)
                return -ENOMEM;
        return eg_kube_list(kr->client, coll, sel, 500, ret, err);
}

/* A Running pod of the cluster, for the pod proxy permission probe: one that cannot answer
 * would only add its own error to the probe's. NULL when none runs. */
static const char *running_pod(json_t *pods) {
        size_t i;
        json_t *pod;
        json_array_foreach(pods, i, pod) {
                const char *phase = jstr(json_object_get(pod, "status"), "phase");
                if (phase && strcmp(phase, "Running") == 0 && !jpath(pod, "metadata", "deletionTimestamp"))
                        return jstr(json_object_get(pod, "metadata"), "name");
        }
        return NULL;
}

static int kube_observe(struct eg_runtime *rt, const char *ns, const char *name, struct eg_runtime_cluster *ret,
                        struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        json_t *all = NULL, *pods = NULL, *pvcs = NULL, *orphans = NULL, *owned = json_array();
        _cleanup_free_ char *sel = cluster_selector(name);
        size_t i;
        json_t *obj;
        int r;
        if ((r = kube_check_names(ns, name, NULL, err)) < 0)
                goto out;
        r = -ENOMEM;
        if (!sel || !owned)
                goto out;
        if ((r = kube_list_cluster_pods(kr, ns, name, &all, err)) < 0 ||
            (r = kube_list_claims(kr, ns, sel, &pvcs, err)) < 0)
                goto out;
        if (!(pods = live_pods(all))) {
                r = -ENOMEM;
                goto out;
        }
        size_t n = json_array_size(pods) + claim_members(pvcs, pods, name, &orphans);
        if (n == 0) {
                r = -ENOENT;
                goto out;
        }
        json_array_foreach(pods, i, obj) {
                if ((r = kube_note_upstream_owned(owned, "pod", obj)) < 0)
                        goto out;
        }
        json_array_foreach(pvcs, i, obj) {
                if (!jpath(obj, "metadata", "deletionTimestamp") &&
                    (r = kube_note_upstream_owned(owned, "persistentvolumeclaim", obj)) < 0)
                        goto out;
        }
        /* upstream created services once and never looked again: repair them every pass */
        if ((r = ensure_services(kr, ns, name, owned, err)) < 0 ||
            (r = ensure_pdb(kr, ns, name, -1, (int64_t)n, owned, err)) < 0)
                goto out;
        if ((r = kube_check_proxy_allowed(kr, ns, running_pod(pods), err)) < 0)
                goto out;
        if ((r = cluster_from_pods(kr, ns, name, pods, pvcs, recorded_next_index(kr, ns, name), ret)) < 0)
                goto out;
        if (json_array_size(owned) > 0 && !(ret->upstream_owned = kube_describe_owned(owned))) {
                eg_runtime_cluster_done(ret);
                r = -ENOMEM;
        }
        if (r >= 0 && (r = note_stuck_pods(all, ret)) < 0)
                eg_runtime_cluster_done(ret);
out:
        json_decref(owned);
        json_decref(all);
        json_decref(pods);
        json_decref(pvcs);
        json_decref(orphans);
        return r;
}

/* Appends obj to groups[ns/cluster][kind], for objects labelled with a cluster. */
static int group_by_cluster(json_t *groups, json_t *items, const char *kind) {
        size_t i;
        json_t *obj;
        json_array_foreach(items, i, obj) {
                json_t *meta = json_object_get(obj, "metadata");
                const char *pns = jstr(meta, "namespace"), *cl = jstr(json_object_get(meta, "labels"), "etcd_cluster");
                if (!pns || !cl || !dns_label(pns) || !dns_label(cl) ||
                    (strcmp(kind, "pods") == 0 && json_object_get(meta, "deletionTimestamp")))
                        continue;
                _cleanup_free_ char *key = eg_strdup_printf("%s/%s", pns, cl);
                if (!key)
                        return -ENOMEM;
                json_t *g = json_object_get(groups, key);
                if (!g && (json_object_set_new(groups, key, json_pack("{s:[], s:[]}", "pods", "pvcs")) < 0 ||
                           !(g = json_object_get(groups, key))))
                        return -ENOMEM;
                if (json_array_append(json_object_get(g, kind), obj) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int kube_list(struct eg_runtime *rt, const char *const *namespaces, size_t n_namespaces,
                     struct eg_runtime_cluster **ret, size_t *ret_n, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        json_t *pods = NULL, *pvcs = NULL, *groups = json_object();
        struct eg_runtime_cluster *out = NULL;
        size_t n = 0;
        int r = -ENOMEM;
        if (!groups)
                goto out;
        if ((r = kube_list_etcd_objects(kr, namespaces, n_namespaces, &pods, &pvcs, err)) < 0 ||
            (r = group_by_cluster(groups, pods, "pods")) < 0 || (r = group_by_cluster(groups, pvcs, "pvcs")) < 0)
                goto out;
        r = -ENOMEM;
        out = calloc(json_object_size(groups) + 1, sizeof(*out));
        if (!out)
                goto out;
        const char *key;
        json_t *g;
        json_object_foreach(groups, key, g) {
                _cleanup_free_ char *pns = strndup(key, strcspn(key, "/"));
                const char *cl = strchr(key, '/') + 1;
                json_t *gp = json_object_get(g, "pods"), *gc = json_object_get(g, "pvcs"), *orphans = NULL;
                if (!pns)
                        goto out;
                size_t members = json_array_size(gp) + claim_members(gc, gp, cl, &orphans);
                json_decref(orphans);
                /* claims being deleted, and nothing else: no cluster */
                if (members == 0)
                        continue;
                if ((r = cluster_from_pods(kr, pns, cl, gp, gc, recorded_next_index(kr, pns, cl), &out[n])) < 0)
                        goto out;
                n++;
                /* clusters made before they were recorded, or by upstream's operator: best effort,
                 * the next pass tries again */
                if (!kr->read_only)
                        kube_remember_cluster(kr, pns, cl, NULL);
        }
        *ret = TAKE_PTR(out);
        *ret_n = n;
        r = 0;
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory listing etcd pods");
        eg_runtime_clusters_free(out, n);
        json_decref(pods);
        json_decref(pvcs);
        json_decref(groups);
        return r;
}

/* ---- mutations ---- */

static char *fresh_token(void) {
        unsigned char raw[16];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
                return NULL;
        char *hex = malloc(2 * sizeof(raw) + 1);
        if (!hex)
                return NULL;
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        return hex;
}

static int create_pvc(struct kube_runtime *kr, const struct eg_runtime_target *t, const char *member,
                      struct eg_error *err) {
        _cleanup_free_ char *coll = pvcs_path(t->namespace);
        json_t *pvc = kube_pvc_manifest(t, member);
        int r = -ENOMEM;
        if (coll && pvc)
                r = eg_kube_create(kr->client, coll, pvc, NULL, err);
        json_decref(pvc);
        if (r == -EEXIST)
                eg_error_set(err,
                             "persistent volume claim %s/%s already exists (data of an earlier member of that name): "
                             "delete it before this member can be created",
                             t->namespace, member);
        return r;
}

static int create_pod(struct kube_runtime *kr, const struct eg_runtime_target *t, const char *member,
                      const char *initial_cluster, const char *token, struct eg_error *err) {
        _cleanup_free_ char *coll = pods_path(t->namespace);
        json_t *pod = kube_pod_manifest(t, member, initial_cluster, token);
        int r = -ENOMEM;
        if (coll && pod)
                r = eg_kube_create(kr->client, coll, pod, NULL, err);
        else
                eg_error_set(err, "out of memory building pod %s", member);
        json_decref(pod);
        return r;
}

static void delete_quietly(struct kube_runtime *kr, char *(*collection)(const char *), const char *ns,
                           const char *name) {
        _cleanup_free_ char *path = named(collection, ns, name);
        if (path)
                eg_kube_delete(kr->client, path, 0, NULL, NULL);
}

static int kube_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                          struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        json_t *pods = NULL;
        struct eg_buf ic;
        _cleanup_free_ char *token = fresh_token();
        size_t made_pvcs = 0, made_pods = 0;
        uint64_t next = 0;
        int r;
        if ((r = check_target(t, NULL, err)) < 0)
                return r;
        if (n == 0) {
                eg_error_set(err, "bootstrap of %s/%s without members", t->namespace, t->name);
                return -EINVAL;
        }
        if (t->prepare_data && !t->seed) {
                eg_error_set(err, "the members of %s/%s cannot be handed a restored data dir: the seed pod fetches "
                             "the snapshot itself, from S3", t->namespace, t->name);
                return -EOPNOTSUPP;
        }
        /* members nobody could talk to must not be created */
        if (kube_client_tls(t->spec) && kr->access == EG_KUBE_ACCESS_PROXY)
                return kube_refuse_proxy_tls(t->namespace, t->name, err);
        for (size_t i = 0; i < n; i++)
                if ((r = kube_check_names(t->namespace, t->name, members[i], err)) < 0)
                        return r;
        if (!token)
                return -ENOMEM;
        if ((r = kube_list_cluster_pods(kr, t->namespace, t->name, &pods, err)) < 0)
                return r;
        size_t existing = json_array_size(pods);
        json_decref(pods);
        if (existing > 0) {
                eg_error_set(err, "cluster %s/%s already has %zu pods", t->namespace, t->name, existing);
                return -EEXIST;
        }
        if ((r = kube_check_proxy_allowed(kr, t->namespace, members[0], err)) < 0)
                return r;
        /* before anything is made: a crash in between leaves no cluster that is not recorded */
        if ((r = kube_remember_cluster(kr, t->namespace, t->name, err)) < 0)
                return r;
        eg_buf_init(&ic, 0);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *peer = kube_member_peer_url(t, members[i]);
                if (!peer || eg_buf_printf(&ic, "%s%s=%s", i ? "," : "", members[i], peer) < 0) {
                        r = -ENOMEM;
                        goto out;
                }
                uint64_t idx = member_index(t->name, members[i]);
                if (idx > next)
                        next = idx;
        }
        if ((r = ensure_services(kr, t->namespace, t->name, NULL, err)) < 0 ||
            (r = record_next_index(kr, t->namespace, t->name, next, err)) < 0 ||
            (r = ensure_pdb(kr, t->namespace, t->name, quorum(t->spec->size), 0, NULL, err)) < 0)
                goto out;
        if (kube_has_pvc(t->spec))
                for (; made_pvcs < n; made_pvcs++)
                        if ((r = create_pvc(kr, t, members[made_pvcs], err)) < 0)
                                goto undo;
        for (; made_pods < n; made_pods++)
                if ((r = create_pod(kr, t, members[made_pods], ic.data, token, err)) < 0)
                        goto undo;
        r = 0;
        goto out;
undo:
        /* a half-made cluster must not survive: its token would be reused by nobody */
        while (made_pods > 0)
                delete_quietly(kr, pods_path, t->namespace, members[--made_pods]);
        while (made_pvcs > 0)
                delete_quietly(kr, pvcs_path, t->namespace, members[--made_pvcs]);
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory bootstrapping %s/%s", t->namespace, t->name);
        eg_buf_done(&ic);
        return r;
}

static int kube_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               char **ret_peer_url, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *url = NULL;
        int r;
        if ((r = check_target(t, member, err)) < 0)
                return r;
        path = pod_path(t->namespace, member);
        url = kube_member_peer_url(t, member);
        if (!path || !url)
                return -ENOMEM;
        r = eg_kube_get(kr->client, path, NULL, NULL);
        if (r == 0) {
                eg_error_set(err, "member %s of %s/%s already exists", member, t->namespace, t->name);
                return -EEXIST;
        }
        if ((r = ensure_services(kr, t->namespace, t->name, NULL, err)) < 0 ||
            (r = record_next_index(kr, t->namespace, t->name, member_index(t->name, member), err)) < 0)
                return r;
        *ret_peer_url = TAKE_PTR(url);
        return 0;
}

static int kube_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                             const char *initial_cluster, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        int r;
        if ((r = check_target(t, member, err)) < 0)
                return r;
        if (!initial_cluster || !*initial_cluster) {
                eg_error_set(err, "member %s: no initial cluster given", member);
                return -EINVAL;
        }
        if (kube_has_pvc(t->spec) && (r = create_pvc(kr, t, member, err)) < 0)
                return r;
        r = create_pod(kr, t, member, initial_cluster, NULL, err);
        if (r == -EEXIST)
                eg_error_set(err, "member %s of %s/%s is already running", member, t->namespace, t->name);
        if (r < 0) {
                if (kube_has_pvc(t->spec) && r != -EEXIST)
                        delete_quietly(kr, pvcs_path, t->namespace, member);
                return r;
        }
        return ensure_pdb(kr, t->namespace, t->name, quorum(t->spec->size), 0, NULL, err);
}

struct pod_gone {
        struct kube_runtime *kr;
        const char *path;
};

static bool pod_is_gone(void *userdata) {
        struct pod_gone *g = userdata;
        return eg_kube_get(g->kr->client, g->path, NULL, NULL) == -ENOENT;
}

static int kube_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                               struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *svc = NULL;
        json_t *have = NULL;
        int r;
        if ((r = kube_check_names(ns, name, member, err)) < 0)
                return r;
        path = pod_path(ns, member);
        svc = named(services_path, ns, name);
        _cleanup_free_ char *cpath = svc ? eg_strdup_printf("%s-client", svc) : NULL;
        if (!path || !cpath)
                return -ENOMEM;
        /* prepare_member makes no pod: one here means the member started after all */
        if (eg_kube_get(kr->client, path, NULL, NULL) >= 0) {
                eg_error_set(err, "member %s of %s/%s has a pod", member, ns, name);
                return -EBUSY;
        }
        uint64_t idx = member_index(name, member), cur = 0;
        if ((r = eg_kube_get(kr->client, cpath, &have, err)) < 0)
                return r;
        const char *v = jstr(jpath(have, "metadata", "annotations"), ANN_NEXT_INDEX);
        bool last = idx > 0 && v && eg_parse_uint64(v, &cur) >= 0 && cur == idx;
        json_decref(have);
        if (!last)
                return 0;
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, idx - 1);
        json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ANN_NEXT_INDEX, num);
        if (!patch)
                return -ENOMEM;
        r = eg_kube_patch(kr->client, cpath, EG_KUBE_PATCH_MERGE, patch, NULL, err);
        json_decref(patch);
        return r;
}

static int kube_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                            bool delete_data, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *pvc = NULL;
        json_t *pods = NULL;
        int r;
        if ((r = kube_check_names(ns, name, member, err)) < 0)
                return r;
        path = pod_path(ns, member);
        pvc = named(pvcs_path, ns, member);
        if (!path || !pvc)
                return -ENOMEM;
        /* what is already gone is no error, not even in the record of a step that went well */
        struct eg_error e = {0};
        r = eg_kube_delete(kr->client, path, -1, NULL, &e);
        /* no wait for the pod to go: kubernetes.io/pvc-protection keeps the claim until no pod
         * uses it, and a pod on a lost node may never go */
        if ((r >= 0 || r == -ENOENT) && delete_data) {
                eg_error_done(&e);
                r = eg_kube_delete(kr->client, pvc, -1, NULL, &e);
        }
        if (r < 0 && r != -ENOENT) {
                eg_error_set(err, "%s", e.message ? e.message : strerror(-r));
                eg_error_done(&e);
                return r;
        }
        eg_error_done(&e);
        /* voluntary disruptions must not take the smaller cluster below its quorum */
        if (kube_list_cluster_pods(kr, ns, name, &pods, NULL) >= 0) {
                size_t left = 0, i;
                json_t *p;
                json_array_foreach(pods, i, p) if (!jpath(p, "metadata", "deletionTimestamp")) left++;
                json_decref(pods);
                _cleanup_free_ char *pdb = named(pdbs_path, ns, name);
                json_t *have = NULL;
                if (pdb && eg_kube_get(kr->client, pdb, &have, NULL) >= 0) {
                        json_t *cur = jpath(have, "spec", "minAvailable");
                        if (left > 0 && json_is_integer(cur) && json_integer_value(cur) > quorum((int64_t)left))
                                ensure_pdb(kr, ns, name, quorum((int64_t)left), 0, NULL, NULL);
                }
                json_decref(have);
        }
        return 0;
}

struct image_running {
        struct kube_runtime *kr;
        const char *path;
        const char *image;
};

/* The kubelet has restarted the etcd container on the new image. */
static bool image_is_running(void *userdata) {
        struct image_running *w = userdata;
        json_t *pod = NULL, *cs;
        size_t i;
        bool ok = false;
        if (eg_kube_get(w->kr->client, w->path, &pod, NULL) < 0)
                return false;
        json_array_foreach(jpath(pod, "status", "containerStatuses"), i, cs) {
                const char *n = jstr(cs, "name"), *img = jstr(cs, "image");
                if (n && strcmp(n, "etcd") == 0 && img && strcmp(img, w->image) == 0 &&
                    json_object_get(json_object_get(cs, "state"), "running"))
                        ok = true;
        }
        json_decref(pod);
        return ok;
}

/* What upstream did for upgrades: a pod update that changes only the image, so the kubelet
 * restarts etcd on the same data (emptyDir included) under the same identity. */
static int upgrade_in_place(struct kube_runtime *kr, const struct eg_runtime_target *t, const char *member,
                            const char *path, struct eg_error *err) {
        _cleanup_free_ char *image = kube_etcd_image(t->spec);
        _cleanup_free_ char *hash = kube_member_hash(&kr->base, t->spec), *pod_hash = kube_template_hash(t->spec, false);
        if (!image || !hash || !pod_hash)
                return -ENOMEM;
        json_t *patch = json_pack("{s:{s:{s:s, s:s, s:s, s:s?}}, s:{s:[{s:s, s:s}]}}", "metadata", "annotations",
                                  ANN_VERSION, t->spec->version, ANN_SPEC_HASH, hash, ANN_POD_HASH, pod_hash,
                                  ANN_REVISION, t->revision, "spec", "containers", "name", "etcd", "image", image);
        if (!patch)
                return -ENOMEM;
        int r = eg_kube_patch(kr->client, path, EG_KUBE_PATCH_STRATEGIC, patch, NULL, err);
        json_decref(patch);
        if (r < 0)
                return r;
        struct image_running w = {kr, path, image};
        if (eg_wait_for(image_is_running, &w, POD_GONE_TIMEOUT_MS, POLL_INTERVAL_MS) < 0) {
                eg_error_set(err, "pod %s/%s did not run %s within %d s", t->namespace, member, image,
                             POD_GONE_TIMEOUT_MS / 1000);
                return -ETIMEDOUT;
        }
        return 0;
}

/* What a pod can take in place: anything on a claim (it is recreated on the same data), only
 * an image change on an emptyDir. Pods the original operator made carry no hash: only their
 * image is ours to roll. */
static void pod_roll(json_t *pod, const char *pod_hash, bool *ret_on_pvc, bool *ret_image_only) {
        json_t *ann = jpath(pod, "metadata", "annotations");
        *ret_on_pvc = kube_pod_on_claim(pod);
        const char *had = jstr(ann, ANN_POD_HASH);
        *ret_image_only = had ? strcmp(had, pod_hash) == 0 : !jstr(ann, ANN_SPEC_HASH);
}

static bool kube_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member,
                                const struct eg_cluster_spec *spec) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = pod_path(ns, member), *pod_hash = kube_template_hash(spec, false);
        json_t *pod = NULL;
        bool on_pvc = true, image_only = true;
        /* when the pod cannot be read, upgrade_member finds out and says why */
        if (path && pod_hash && eg_kube_get(kr->client, path, &pod, NULL) >= 0)
                pod_roll(pod, pod_hash, &on_pvc, &image_only);
        json_decref(pod);
        return on_pvc || image_only;
}

static int kube_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *self = NULL, *pod_hash = NULL;
        json_t *pod = NULL;
        int r;
        if ((r = check_target(t, member, err)) < 0)
                return r;
        if (!(path = pod_path(t->namespace, member)) || !(pod_hash = kube_template_hash(t->spec, false)))
                return -ENOMEM;
        if ((r = eg_kube_get(kr->client, path, &pod, err)) < 0)
                return r;
        bool on_pvc, image_only;
        pod_roll(pod, pod_hash, &on_pvc, &image_only);
        const char *peer = kube_etcd_flag(pod, "--initial-advertise-peer-urls");
        if (peer)
                self = eg_strdup_printf("%s=%.*s", member, (int)strcspn(peer, ","), peer);
        json_decref(pod);
        if (image_only)
                return upgrade_in_place(kr, t, member, path, err);
        if (!on_pvc) {
                /* a new pod means a new emptyDir: an etcd member restarted without its data
                 * but with its old identity crashes the raft log; the planner replaces such
                 * members instead (rolls_in_place), so this is a guard */
                eg_error_set(err,
                             "member %s of %s/%s keeps its data in an emptyDir, and its pod template changed in ways "
                             "a running pod cannot take (only the image can): it must be replaced, not upgraded",
                             member, t->namespace, t->name);
                return -EOPNOTSUPP;
        }
        if (!peer) {
                eg_error_set(err, "pod %s has no --initial-advertise-peer-urls flag", member);
                return -EBADMSG;
        }
        if (!self)
                return -ENOMEM;
        if ((r = eg_kube_delete(kr->client, path, -1, NULL, err)) < 0 && r != -ENOENT)
                return r;
        struct pod_gone g = {kr, path};
        if (eg_wait_for(pod_is_gone, &g, POD_GONE_TIMEOUT_MS, POLL_INTERVAL_MS) < 0) {
                eg_error_set(err, "pod %s/%s was not gone within %d s", t->namespace, member, POD_GONE_TIMEOUT_MS / 1000);
                return -ETIMEDOUT;
        }
        /* with data on the claim etcd ignores --initial-cluster: it only has to be valid */
        return create_pod(kr, t, member, self, NULL, err);
}

/* A member gone from its pod, started again on its claim under the same name, identity and
 * flags: a new pod joining with --initial-cluster-state existing, which etcd ignores for a data
 * dir it already has (as upgrade_member does). It runs the version its last pod ran; a member
 * with no pod left to tell runs t->spec's. */
static int kube_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                               const char *initial_cluster, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *claim = NULL, *self = NULL, *version = NULL;
        json_t *pod = NULL;
        int r;
        if ((r = check_target(t, member, err)) < 0)
                return r;
        if (!(path = pod_path(t->namespace, member)) || !(claim = named(pvcs_path, t->namespace, member)))
                return -ENOMEM;
        r = get_maybe(kr, path, &pod, err);
        if (r < 0 && r != -ENOENT)
                return r;
        if (pod) {
                enum eg_member_life life;
                _cleanup_free_ char *why = NULL;
                int64_t since;
                bool on_claim = kube_pod_on_claim(pod);
                const char *v = jstr(jpath(pod, "metadata", "annotations"), ANN_VERSION);
                if (v && !(version = strdup(v))) {
                        json_decref(pod);
                        return -ENOMEM;
                }
                r = kube_pod_life(pod, &life, &why, &since);
                json_decref(pod);
                if (r < 0)
                        return r;
                if (!on_claim) {
                        eg_error_set(err,
                                     "member %s of %s/%s keeps its data in an emptyDir, which went with its pod: "
                                     "restarted under its old identity with no data it would break the raft log; "
                                     "it must be replaced",
                                     member, t->namespace, t->name);
                        return -EOPNOTSUPP;
                }
                /* already on its way again (a step resumed after a crash) */
                if (life == EG_LIFE_RUNNING || life == EG_LIFE_STARTING)
                        return 0;
                if ((r = eg_kube_delete(kr->client, path, -1, NULL, err)) < 0 && r != -ENOENT)
                        return r;
                struct pod_gone g = {kr, path};
                if (eg_wait_for(pod_is_gone, &g, POD_GONE_TIMEOUT_MS, POLL_INTERVAL_MS) < 0) {
                        eg_error_set(err, "pod %s/%s was not gone within %d s (its node may be lost)", t->namespace,
                                     member, POD_GONE_TIMEOUT_MS / 1000);
                        return -ETIMEDOUT;
                }
        }
        if ((r = eg_kube_get(kr->client, claim, NULL, err)) < 0) {
                if (r == -ENOENT)
                        eg_error_set(err, "member %s of %s/%s has no claim %s left: its data is gone, it must be "
                                     "replaced", member, t->namespace, t->name, member);
                return r == -ENOENT ? -EOPNOTSUPP : r;
        }
        struct eg_cluster_spec spec = *t->spec;
        struct eg_runtime_target mt = *t;
        if (version)
                spec.version = version;
        mt.spec = &spec;
        mt.seed = NULL;
        if (!initial_cluster) {
                _cleanup_free_ char *peer = kube_member_peer_url(&mt, member);
                if (!peer || !(self = eg_strdup_printf("%s=%s", member, peer)))
                        return -ENOMEM;
        }
        r = create_pod(kr, &mt, member, initial_cluster ? initial_cluster : self, NULL, err);
        /* another pass made it first: started all the same */
        return r == -EEXIST ? 0 : r;
}

static int delete_all(struct kube_runtime *kr, char *(*collection)(const char *), const char *ns, const char *name,
                      bool *found, struct eg_error *err) {
        _cleanup_free_ char *coll = collection(ns);
        _cleanup_free_ char *sel = cluster_selector(name);
        json_t *items = NULL;
        if (!coll || !sel)
                return -ENOMEM;
        int r = eg_kube_list(kr->client, coll, sel, 500, &items, err);
        if (r < 0)
                return r;
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
                const char *n = jstr(json_object_get(it, "metadata"), "name");
                _cleanup_free_ char *path = n ? eg_strdup_printf("%s/%s", coll, n) : NULL;
                if (!path)
                        continue;
                *found = true;
                r = eg_kube_delete(kr->client, path, -1, NULL, err);
                if (r < 0 && r != -ENOENT)
                        break;
                r = 0;
        }
        json_decref(items);
        return r;
}

static int delete_named(struct kube_runtime *kr, char *path, bool *found, struct eg_error *err) {
        if (!path)
                return -ENOMEM;
        int r = eg_kube_delete(kr->client, path, -1, NULL, err);
        free(path);
        if (r == 0)
                *found = true;
        return r == -ENOENT ? 0 : r;
}

static int kube_delete_cluster(struct eg_runtime *rt, const char *ns, const char *name, bool delete_data,
                               struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *client = NULL;
        bool found = false;
        int r;
        if ((r = kube_check_names(ns, name, NULL, err)) < 0)
                return r;
        _cleanup_free_ char *svc = named(services_path, ns, name);
        client = svc ? eg_strdup_printf("%s-client", svc) : NULL;
        if ((r = delete_all(kr, pods_path, ns, name, &found, err)) < 0 ||
            (r = delete_named(kr, client ? strdup(client) : NULL, &found, err)) < 0 ||
            (r = delete_named(kr, svc ? strdup(svc) : NULL, &found, err)) < 0 ||
            (r = delete_named(kr, named(pdbs_path, ns, name), &found, err)) < 0)
                return r;
        if (delete_data && (r = delete_all(kr, pvcs_path, ns, name, &found, err)) < 0)
                return r;
        kube_forget_cluster(kr, ns, name);
        if (!found) {
                eg_error_set(err, "no cluster %s/%s in Kubernetes", ns, name);
                return -ENOENT;
        }
        return 0;
}

static void kube_free(struct eg_runtime *rt) {
        struct kube_runtime *kr = to_kube(rt);
        if (!kr)
                return;
        kube_watch_free(kr->watch);
        eg_kube_client_free(kr->client);
        kube_client_tls_free(kr->tls);
        free(kr->kubeconfig);
        free(kr->context);
        free(kr->service_account_dir);
        free(kr->state_dir);
        free(kr->access_dir);
        free(kr->namespace);
        free(kr);
}

static const struct eg_runtime_ops kube_ops = {
        .name = "kubernetes",
        .fetches_restores = true,
        .list = kube_list,
        .observe = kube_observe,
        .bootstrap = kube_bootstrap,
        .prepare_member = kube_prepare_member,
        .start_member = kube_start_member,
        .release_member = kube_release_member,
        .stop_member = kube_stop_member,
        .restart_member = kube_restart_member,
        .upgrade_member = kube_upgrade_member,
        .rolls_in_place = kube_rolls_in_place,
        .delete_cluster = kube_delete_cluster,
        .member_hash = kube_member_hash,
        .change_fd = kube_change_fd,
        .etcd_access = kube_etcd_access,
        .sync_secret = kube_sync_secret,
        .disown = kube_disown,
        .record_event = kube_record_event,
        .free = kube_free,
};

int eg_runtime_kube_new(const struct eg_runtime_kube_options *o, struct eg_runtime **ret, struct eg_error *err) {
        if (!o || !o->state_dir || !*o->state_dir) {
                eg_error_set(err, "the kubernetes runtime needs a state directory");
                return -EINVAL;
        }
        if (o->namespace && *o->namespace && !dns_label(o->namespace)) {
                eg_error_set(err, "namespace '%s' is not a valid Kubernetes name", o->namespace);
                return -EINVAL;
        }
        struct eg_kube_config_options co = {
                .kubeconfig = o->kubeconfig,
                .context = o->context,
                .service_account_dir = o->service_account_dir,
        };
        struct eg_kube_config *cfg = NULL;
        int r = eg_kube_config_load(&co, &cfg, err);
        if (r < 0)
                return r;
        struct kube_runtime *kr = calloc(1, sizeof(*kr));
        if (!kr) {
                eg_kube_config_free(cfg);
                return -ENOMEM;
        }
        kr->base.ops = &kube_ops;
        kr->access = o->etcd_access;
        kr->read_only = o->read_only;
        if ((r = eg_kube_client_new(cfg, &o->client, &kr->client, err)) < 0) {
                kube_free(&kr->base);
                return r;
        }
        kr->client_options = o->client;
        kr->kubeconfig = o->kubeconfig ? strdup(o->kubeconfig) : NULL;
        kr->context = o->context ? strdup(o->context) : NULL;
        kr->service_account_dir = o->service_account_dir ? strdup(o->service_account_dir) : NULL;
        kr->state_dir = strdup(o->state_dir);
        kr->access_dir = eg_state_path(o->state_dir, EG_STATE_KUBE, NULL, NULL);
        kr->namespace = o->namespace && *o->namespace ? strdup(o->namespace) : NULL;
        if (!kr->state_dir || !kr->access_dir || (o->namespace && *o->namespace && !kr->namespace) ||
            (o->kubeconfig && !kr->kubeconfig) || (o->context && !kr->context) ||
            (o->service_account_dir && !kr->service_account_dir)) {
                kube_free(&kr->base);
                return -ENOMEM;
        }
        *ret = &kr->base;
        return 0;
}
