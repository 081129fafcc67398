/* runtime_kube: etcd members as Kubernetes pods, with the services, PDB and PVCs the original
 * etcd-operator made: the runtime object, names and paths, what it observes and lists, and the
 * deletion of a whole cluster. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/kube.h"
#include "kube_objects.h"
#include "kube_runtime.h"

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

int kube_check_target(const struct eg_runtime_target *t, const char *member, struct eg_error *err) {
        if (!t || !t->spec || !t->spec->version) {
                eg_error_set(err, "no cluster spec given");
                return -EINVAL;
        }
        return kube_check_names(t->namespace, t->name, member, err);
}

char *kube_pods_path(const char *ns) { return eg_strdup_printf("/api/v1/namespaces/%s/pods", ns); }
char *kube_pod_path(const char *ns, const char *pod) {
        return eg_strdup_printf("/api/v1/namespaces/%s/pods/%s", ns, pod);
}
char *kube_services_path(const char *ns) { return eg_strdup_printf("/api/v1/namespaces/%s/services", ns); }
char *kube_pvcs_path(const char *ns) { return eg_strdup_printf("/api/v1/namespaces/%s/persistentvolumeclaims", ns); }
char *kube_pdbs_path(const char *ns) {
        return eg_strdup_printf("/apis/policy/v1/namespaces/%s/poddisruptionbudgets", ns);
}
char *kube_named(char *(*collection)(const char *), const char *ns, const char *name) {
        _cleanup_free_ char *c = collection(ns);
        return c ? eg_strdup_printf("%s/%s", c, name) : NULL;
}

/* GET path into *ret; a 404 is -ENOENT with nothing said in err, since callers make what is
 * missing and a step that went well must not carry an error. */
int kube_get_maybe(struct kube_runtime *kr, const char *path, json_t **ret, struct eg_error *err) {
        struct eg_error e = {0};
        int r = eg_kube_get(kr->client, path, ret, &e);
        if (r < 0 && r != -ENOENT)
                eg_error_set(err, "%s", e.message ? e.message : strerror(-r));
        eg_error_done(&e);
        return r;
}

static char *cluster_selector(const char *name) { return eg_strdup_printf("app=etcd,etcd_cluster=%s", name); }

int64_t kube_quorum(int64_t n) { return n / 2 + 1; }

char *kube_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec) {
        (void)rt;
        return kube_template_hash(spec, true);
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
        m->unready = m->running && kube_pod_unready(pod);
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
                more[c->n_stuck++] = (struct eg_runtime_member){
                        .name = strdup(name), .life = EG_LIFE_GONE, .life_reason = why};
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
                if (out && n && node && strcmp(n, node) == 0 && kube_member_index(name, n) > 0 &&
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
                uint64_t idx = kube_member_index(name, c.members[i].name);
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
        _cleanup_free_ char *path = kube_named(kube_services_path, ns, name);
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
        _cleanup_free_ char *coll = kube_pods_path(ns);
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

static int kube_observe(struct eg_runtime *rt, const char *ns, const char *name, unsigned flags,
                        struct eg_runtime_cluster *ret, struct eg_error *err) {
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
        if (!(flags & EG_OBSERVE_LOOK_ONLY) && ((r = kube_ensure_services(kr, ns, name, owned, err)) < 0 ||
                                                (r = kube_ensure_pdb(kr, ns, name, -1, (int64_t)n, owned, err)) < 0))
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
        _cleanup_free_ char *svc = kube_named(kube_services_path, ns, name);
        client = svc ? eg_strdup_printf("%s-client", svc) : NULL;
        if ((r = delete_all(kr, kube_pods_path, ns, name, &found, err)) < 0 ||
            (r = delete_named(kr, client ? strdup(client) : NULL, &found, err)) < 0 ||
            (r = delete_named(kr, svc ? strdup(svc) : NULL, &found, err)) < 0 ||
            (r = delete_named(kr, kube_named(kube_pdbs_path, ns, name), &found, err)) < 0)
                return r;
        if (delete_data && (r = delete_all(kr, kube_pvcs_path, ns, name, &found, err)) < 0)
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
