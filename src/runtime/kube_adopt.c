/* kube_adopt: clusters coreos etcd-operator made, released from its EtcdCluster custom resource. */
#include <errno.h>
#include <string.h>

#include "kube_objects.h"
#include "kube_runtime.h"

#define UPSTREAM_GROUP "etcd.database.coreos.com"
#define UPSTREAM_KIND "EtcdCluster"
/* the reason names this many objects, then counts the rest */
#define DESCRIBE_MAX 12
/* a conflicting write to the same object in between: read it again, this many times */
#define DISOWN_ATTEMPTS 3

/* Any version of the group: the reference is what the garbage collector follows, whatever
 * version of the CRD served it. */
static bool upstream_ref(json_t *ref) {
        const char *api = jstr(ref, "apiVersion"), *kind = jstr(ref, "kind");
        size_t l = strlen(UPSTREAM_GROUP);
        return api && kind && strcmp(kind, UPSTREAM_KIND) == 0 && strncmp(api, UPSTREAM_GROUP, l) == 0 && api[l] == '/';
}

bool kube_upstream_owned(json_t *obj) {
        size_t i;
        json_t *ref;
        json_array_foreach(jpath(obj, "metadata", "ownerReferences"), i, ref) if (upstream_ref(ref)) return true;
        return false;
}

int kube_note_upstream_owned(json_t *list, const char *kind, json_t *obj) {
        const char *name = jstr(json_object_get(obj, "metadata"), "name");
        if (!list || !name || !kube_upstream_owned(obj))
                return 0;
        return json_array_append_new(list, json_sprintf("%s/%s", kind, name)) < 0 ? -ENOMEM : 0;
}

char *kube_describe_owned(json_t *list) {
        size_t n = json_array_size(list);
        struct eg_buf b;
        if (n == 0)
                return NULL;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < n && i < DESCRIBE_MAX; i++)
                if (eg_buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(json_array_get(list, i))) < 0) {
                        eg_buf_done(&b);
                        return NULL;
                }
        if (n > DESCRIBE_MAX && eg_buf_printf(&b, " and %zu more", n - DESCRIBE_MAX) < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

/* The merge patch that leaves obj with its other owners only, on the condition that it still
 * is the version read: a reference added in between is never dropped. */
static json_t *disown_patch(json_t *obj) {
        json_t *meta = json_object_get(obj, "metadata"), *kept = json_array(), *ref;
        size_t i;
        if (!kept)
                return NULL;
        json_array_foreach(json_object_get(meta, "ownerReferences"), i, ref) {
                if (!upstream_ref(ref) && json_array_append(kept, ref) < 0) {
                        json_decref(kept);
                        return NULL;
                }
        }
        if (json_array_size(kept) == 0) {
                json_decref(kept);
                kept = json_null();
        }
        return json_pack("{s:{s:O?, s:o}}", "metadata", "resourceVersion", json_object_get(meta, "resourceVersion"),
                         "ownerReferences", kept);
}

static int disown_object(struct kube_runtime *kr, const char *kind, const char *path, json_t *obj,
                         struct eg_error *err) {
        const char *name = jstr(json_object_get(obj, "metadata"), "name");
        json_t *cur = json_incref(obj);
        struct eg_error e = {0};
        int r = 0;
        for (int attempt = 0; r >= 0 && kube_upstream_owned(cur); attempt++) {
                json_t *patch = disown_patch(cur);
                if (!patch) {
                        r = -ENOMEM;
                        break;
                }
                eg_error_done(&e);
                r = eg_kube_patch(kr->client, path, EG_KUBE_PATCH_MERGE, patch, NULL, &e);
                json_decref(patch);
                if (r != -ESTALE || attempt + 1 == DISOWN_ATTEMPTS)
                        break;
                json_decref(cur);
                cur = NULL;
                eg_error_done(&e);
                r = eg_kube_get(kr->client, path, &cur, &e);
        }
        json_decref(cur);
        /* gone meanwhile: nothing left to collect */
        if (r == -ENOENT)
                r = 0;
        if (r < 0)
                eg_error_set(err, "cannot remove the ownerReferences to the EtcdCluster resource from %s/%s: %s", kind,
                             name ? name : "?", e.message ? e.message : strerror(-r));
        eg_error_done(&e);
        return r;
}

/* Every item of a list under collection: pods being deleted are left to go. */
static int disown_items(struct kube_runtime *kr, const char *kind, const char *collection, json_t *items,
                        struct eg_error *err) {
        size_t i;
        json_t *obj;
        json_array_foreach(items, i, obj) {
                const char *name = jstr(json_object_get(obj, "metadata"), "name");
                if (!name || jpath(obj, "metadata", "deletionTimestamp") || !kube_upstream_owned(obj))
                        continue;
                _cleanup_free_ char *path = eg_strdup_printf("%s/%s", collection, name);
                int r = path ? disown_object(kr, kind, path, obj, err) : -ENOMEM;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int disown_named(struct kube_runtime *kr, const char *kind, const char *collection, const char *name,
                        struct eg_error *err) {
        _cleanup_free_ char *path = eg_strdup_printf("%s/%s", collection, name);
        json_t *obj = NULL;
        struct eg_error e = {0};
        int r = path ? eg_kube_get(kr->client, path, &obj, &e) : -ENOMEM;
        if (r >= 0)
                r = disown_object(kr, kind, path, obj, err);
        else if (r != -ENOENT)
                eg_error_set(err, "cannot read %s/%s: %s", kind, name, e.message ? e.message : strerror(-r));
        json_decref(obj);
        eg_error_done(&e);
        return r == -ENOENT ? 0 : r;
}

int kube_disown(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        _cleanup_free_ char *pods = eg_strdup_printf("/api/v1/namespaces/%s/pods", ns);
        _cleanup_free_ char *pvcs = eg_strdup_printf("/api/v1/namespaces/%s/persistentvolumeclaims", ns);
        _cleanup_free_ char *svcs = eg_strdup_printf("/api/v1/namespaces/%s/services", ns);
        _cleanup_free_ char *pdbs = eg_strdup_printf("/apis/policy/v1/namespaces/%s/poddisruptionbudgets", ns);
        _cleanup_free_ char *sel = eg_strdup_printf("app=etcd,etcd_cluster=%s", name);
        _cleanup_free_ char *client = eg_strdup_printf("%s-client", name);
        json_t *items = NULL;
        int r;
        if ((r = kube_check_names(ns, name, NULL, err)) < 0)
                return r;
        if (kr->read_only) {
                eg_error_set(err, "read-only: the ownerReferences of %s/%s are left as they are", ns, name);
                return -EROFS;
        }
        if (!pods || !pvcs || !svcs || !pdbs || !sel || !client)
                return -ENOMEM;
        if ((r = kube_list_cluster_pods(kr, ns, name, &items, err)) < 0 ||
            (r = disown_items(kr, "pod", pods, items, err)) < 0)
                goto out;
        json_decref(items);
        items = NULL;
        /* as observe: claims these credentials may not list are claims it never reported */
        r = eg_kube_list(kr->client, pvcs, sel, 500, &items, err);
        if (r == -EACCES) {
                eg_error_done(err);
                r = 0;
        } else if (r < 0 || (r = disown_items(kr, "persistentvolumeclaim", pvcs, items, err)) < 0)
                goto out;
        if ((r = disown_named(kr, "service", svcs, client, err)) >= 0 &&
            (r = disown_named(kr, "service", svcs, name, err)) >= 0)
                r = disown_named(kr, "poddisruptionbudget", pdbs, name, err);
out:
        json_decref(items);
        return r;
}
