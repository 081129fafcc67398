/* kube_services: the services and PodDisruptionBudget around a cluster's member pods, repaired
 * to what the original etcd-operator made, and the record of member numbers handed out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/kube.h"
#include "kube_objects.h"
#include "kube_runtime.h"

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
        _cleanup_free_ char *coll = kube_services_path(ns);
        _cleanup_free_ char *path = NULL;
        int r = -ENOMEM;
        if (!want || !coll)
                goto out;
        path = eg_strdup_printf("%s/%s", coll, jstr(json_object_get(want, "metadata"), "name"));
        if (!path)
                goto out;
        r = kube_get_maybe(kr, path, &have, err);
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

int kube_ensure_services(struct kube_runtime *kr, const char *ns, const char *name, json_t *owned,
                         struct eg_error *err) {
        int r = ensure_service(kr, ns, name, false, owned, err);
        return r < 0 ? r : ensure_service(kr, ns, name, true, owned, err);
}

/* The PDB exists and asks for min_available; min_available < 0 only creates a missing one
 * (for kube_quorum of n_default members). Notes and read-only as ensure_service. */
int kube_ensure_pdb(struct kube_runtime *kr, const char *ns, const char *name, int64_t min_available, int64_t n_default,
                    json_t *owned, struct eg_error *err) {
        _cleanup_free_ char *coll = kube_pdbs_path(ns);
        _cleanup_free_ char *path = coll ? eg_strdup_printf("%s/%s", coll, name) : NULL;
        json_t *have = NULL;
        if (!path)
                return -ENOMEM;
        int r = kube_get_maybe(kr, path, &have, err);
        if (r == -ENOENT && kr->read_only)
                return 0;
        if (r == -ENOENT) {
                int64_t min = min_available >= 0 ? min_available : kube_quorum(n_default);
                json_t *pdb = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:I, s:{s:{s:s, s:s}}}}", "apiVersion",
                                        "policy/v1", "kind", "PodDisruptionBudget", "metadata", "name", name,
                                        "namespace", ns, "labels", kube_cluster_labels(name), "spec", "minAvailable",
                                        (json_int_t)min, "selector", "matchLabels", "app", "etcd", "etcd_cluster",
                                        name);
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

uint64_t kube_member_index(const char *cluster, const char *member) {
        size_t l = strlen(cluster);
        uint64_t n;
        if (strncmp(member, cluster, l) != 0 || member[l] != '-' || eg_parse_uint64(member + l + 1, &n) < 0 ||
            n == UINT64_MAX)
                return 0;
        return n + 1;
}

/* Raises the next-index annotation on the client service to at least next. */
char *kube_client_service_path(const char *ns, const char *name) {
        _cleanup_free_ char *path = kube_named(kube_services_path, ns, name);
        return path ? eg_strdup_printf("%s-client", path) : NULL;
}

int kube_read_next_index(struct kube_runtime *kr, const char *cpath, uint64_t *ret, struct eg_error *err) {
        json_t *svc = NULL;
        uint64_t v = 0;
        int r = eg_kube_get(kr->client, cpath, &svc, err);
        if (r < 0)
                return r;
        const char *cur = jstr(jpath(svc, "metadata", "annotations"), ANN_NEXT_INDEX);
        r = cur && eg_parse_uint64(cur, &v) >= 0;
        json_decref(svc);
        *ret = v;
        return r;
}

int kube_write_next_index(struct kube_runtime *kr, const char *cpath, uint64_t next, struct eg_error *err) {
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, next);
        json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ANN_NEXT_INDEX, num);
        if (!patch)
                return -ENOMEM;
        int r = eg_kube_patch(kr->client, cpath, EG_KUBE_PATCH_MERGE, patch, NULL, err);
        json_decref(patch);
        return r;
}

int kube_record_next_index(struct kube_runtime *kr, const char *ns, const char *name, uint64_t next,
                           struct eg_error *err) {
        _cleanup_free_ char *cpath = kube_client_service_path(ns, name);
        uint64_t have = 0;
        if (!cpath)
                return -ENOMEM;
        int r = kube_read_next_index(kr, cpath, &have, err);
        if (r < 0)
                return r;
        return r > 0 && have >= next ? 0 : kube_write_next_index(kr, cpath, next, err);
}
