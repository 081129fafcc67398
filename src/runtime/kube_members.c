/* kube_members: the kubernetes runtime's changes to a cluster's members: bootstrap, add
 * (prepare, start), release, stop, upgrade (in place or by a new pod) and restart. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/kube.h"
#include "kube_objects.h"
#include "kube_runtime.h"

#define POD_GONE_TIMEOUT_MS 120000
#define POLL_INTERVAL_MS 200

/* ---- mutations ---- */

static int create_pvc(struct kube_runtime *kr, const struct eg_runtime_target *t, const char *member,
                      struct eg_error *err) {
        _cleanup_free_ char *coll = kube_pvcs_path(t->namespace);
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
        _cleanup_free_ char *coll = kube_pods_path(t->namespace);
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
        _cleanup_free_ char *path = kube_named(collection, ns, name);
        if (path)
                eg_kube_delete(kr->client, path, 0, NULL, NULL);
}

/* Whether t's cluster may be bootstrapped with these members: valid names, a restore the pods
 * can fetch, members this daemon can reach, no pod of the cluster yet. */
static int bootstrap_check(struct kube_runtime *kr, const struct eg_runtime_target *t, char *const *members, size_t n,
                           struct eg_error *err) {
        json_t *pods = NULL;
        int r;
        if ((r = kube_check_target(t, NULL, err)) < 0)
                return r;
        if (n == 0) {
                eg_error_set(err, "bootstrap of %s/%s without members", t->namespace, t->name);
                return -EINVAL;
        }
        if (t->prepare_data && !t->seed) {
                eg_error_set(err,
                             "the members of %s/%s cannot be handed a restored data dir: the seed pod fetches "
                             "the snapshot itself, from S3",
                             t->namespace, t->name);
                return -EOPNOTSUPP;
        }
        /* members nobody could talk to must not be created */
        if (kube_client_tls(t->spec) && kr->access == EG_KUBE_ACCESS_PROXY)
                return kube_refuse_proxy_tls(t->namespace, t->name, err);
        for (size_t i = 0; i < n; i++)
                if ((r = kube_check_names(t->namespace, t->name, members[i], err)) < 0)
                        return r;
        if ((r = kube_list_cluster_pods(kr, t->namespace, t->name, &pods, err)) < 0)
                return r;
        size_t existing = json_array_size(pods);
        json_decref(pods);
        if (existing > 0) {
                eg_error_set(err, "cluster %s/%s already has %zu pods", t->namespace, t->name, existing);
                return -EEXIST;
        }
        return kube_check_proxy_allowed(kr, t->namespace, members[0], err);
}

int kube_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                   struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        struct eg_buf ic;
        _cleanup_free_ char *token = eg_random_hex(16);
        size_t made_pvcs = 0, made_pods = 0;
        uint64_t next = 0;
        int r;
        if ((r = bootstrap_check(kr, t, members, n, err)) < 0)
                return r;
        if (!token)
                return -ENOMEM;
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
                uint64_t idx = kube_member_index(t->name, members[i]);
                if (idx > next)
                        next = idx;
        }
        if ((r = kube_ensure_services(kr, t->namespace, t->name, NULL, err)) < 0 ||
            (r = kube_record_next_index(kr, t->namespace, t->name, next, err)) < 0 ||
            (r = kube_ensure_pdb(kr, t->namespace, t->name, kube_quorum(t->spec->size), 0, NULL, err)) < 0)
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
                delete_quietly(kr, kube_pods_path, t->namespace, members[--made_pods]);
        while (made_pvcs > 0)
                delete_quietly(kr, kube_pvcs_path, t->namespace, members[--made_pvcs]);
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory bootstrapping %s/%s", t->namespace, t->name);
        eg_buf_done(&ic);
        return r;
}

int kube_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        char **ret_peer_url, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *url = NULL;
        int r;
        if ((r = kube_check_target(t, member, err)) < 0)
                return r;
        path = kube_pod_path(t->namespace, member);
        url = kube_member_peer_url(t, member);
        if (!path || !url)
                return -ENOMEM;
        r = eg_kube_get(kr->client, path, NULL, NULL);
        if (r == 0) {
                eg_error_set(err, "member %s of %s/%s already exists", member, t->namespace, t->name);
                return -EEXIST;
        }
        if ((r = kube_ensure_services(kr, t->namespace, t->name, NULL, err)) < 0 ||
            (r = kube_record_next_index(kr, t->namespace, t->name, kube_member_index(t->name, member), err)) < 0)
                return r;
        *ret_peer_url = TAKE_PTR(url);
        return 0;
}

int kube_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                      const char *initial_cluster, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        int r;
        if ((r = kube_check_target(t, member, err)) < 0)
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
                        delete_quietly(kr, kube_pvcs_path, t->namespace, member);
                return r;
        }
        return kube_ensure_pdb(kr, t->namespace, t->name, kube_quorum(t->spec->size), 0, NULL, err);
}

struct pod_gone {
        struct kube_runtime *kr;
        const char *path;
};

static bool pod_is_gone(void *userdata) {
        struct pod_gone *g = userdata;
        return eg_kube_get(g->kr->client, g->path, NULL, NULL) == -ENOENT;
}

int kube_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                        struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *cpath = NULL;
        int r;
        if ((r = kube_check_names(ns, name, member, err)) < 0)
                return r;
        path = kube_pod_path(ns, member);
        cpath = kube_client_service_path(ns, name);
        if (!path || !cpath)
                return -ENOMEM;
        /* prepare_member makes no pod: one here means the member started after all */
        if (eg_kube_get(kr->client, path, NULL, NULL) >= 0) {
                eg_error_set(err, "member %s of %s/%s has a pod", member, ns, name);
                return -EBUSY;
        }
        uint64_t idx = kube_member_index(name, member), cur = 0;
        if ((r = kube_read_next_index(kr, cpath, &cur, err)) < 0)
                return r;
        if (idx == 0 || cur != idx)
                return 0;
        return kube_write_next_index(kr, cpath, idx - 1, err);
}

int kube_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member, bool delete_data,
                     struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *pvc = NULL;
        json_t *pods = NULL;
        int r;
        if ((r = kube_check_names(ns, name, member, err)) < 0)
                return r;
        path = kube_pod_path(ns, member);
        pvc = kube_named(kube_pvcs_path, ns, member);
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
        /* voluntary disruptions must not take the smaller cluster below its kube_quorum */
        if (kube_list_cluster_pods(kr, ns, name, &pods, NULL) >= 0) {
                size_t left = 0, i;
                json_t *p;
                json_array_foreach(pods, i, p) if (!jpath(p, "metadata", "deletionTimestamp")) left++;
                json_decref(pods);
                _cleanup_free_ char *pdb = kube_named(kube_pdbs_path, ns, name);
                json_t *have = NULL;
                if (pdb && eg_kube_get(kr->client, pdb, &have, NULL) >= 0) {
                        json_t *cur = jpath(have, "spec", "minAvailable");
                        if (left > 0 && json_is_integer(cur) && json_integer_value(cur) > kube_quorum((int64_t)left))
                                kube_ensure_pdb(kr, ns, name, kube_quorum((int64_t)left), 0, NULL, NULL);
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
        _cleanup_free_ char *hash = kube_member_hash(&kr->base, t->spec),
                            *pod_hash = kube_template_hash(t->spec, false);
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

bool kube_rolls_in_place(struct eg_runtime *rt, const char *ns, const char *member,
                         const struct eg_cluster_spec *spec) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = kube_pod_path(ns, member), *pod_hash = kube_template_hash(spec, false);
        json_t *pod = NULL;
        bool on_pvc = true, image_only = true;
        /* when the pod cannot be read, upgrade_member finds out and says why */
        if (path && pod_hash && eg_kube_get(kr->client, path, &pod, NULL) >= 0)
                pod_roll(pod, pod_hash, &on_pvc, &image_only);
        json_decref(pod);
        return on_pvc || image_only;
}

int kube_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *self = NULL, *pod_hash = NULL;
        json_t *pod = NULL;
        int r;
        if ((r = kube_check_target(t, member, err)) < 0)
                return r;
        if (!(path = kube_pod_path(t->namespace, member)) || !(pod_hash = kube_template_hash(t->spec, false)))
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
                eg_error_set(err, "pod %s/%s was not gone within %d s", t->namespace, member,
                             POD_GONE_TIMEOUT_MS / 1000);
                return -ETIMEDOUT;
        }
        /* with data on the claim etcd ignores --initial-cluster: it only has to be valid */
        return create_pod(kr, t, member, self, NULL, err);
}

/* A member gone from its pod, started again on its claim under the same name, identity and
 * flags: a new pod joining with --initial-cluster-state existing, which etcd ignores for a data
 * dir it already has (as upgrade_member does). It runs the version its last pod ran; a member
 * with no pod left to tell runs t->spec's. */
int kube_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                        const char *initial_cluster, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *path = NULL, *claim = NULL, *self = NULL, *version = NULL;
        json_t *pod = NULL;
        int r;
        if ((r = kube_check_target(t, member, err)) < 0)
                return r;
        if (!(path = kube_pod_path(t->namespace, member)) ||
            !(claim = kube_named(kube_pvcs_path, t->namespace, member)))
                return -ENOMEM;
        r = kube_get_maybe(kr, path, &pod, err);
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
                        eg_error_set(err,
                                     "member %s of %s/%s has no claim %s left: its data is gone, it must be "
                                     "replaced",
                                     member, t->namespace, t->name, member);
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
