/* kube_scope: which namespaces the Kubernetes runtime looks for clusters in, and the record of
 * those it made clusters in, so that credentials bound per namespace (RoleBindings) suffice. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "kube_objects.h"
#include "kube_runtime.h"

/* upstream's labels on every member pod and claim */
#define ETCD_SELECTOR "app=etcd,etcd_cluster"
/* namespaces looked in one by one, at most: past that, a ClusterRoleBinding is the way */
#define SCOPE_MAX_NAMESPACES 10000

/* <state_dir>/kube/namespaces[/NS[/CLUSTER]]: an empty file per cluster this runtime made or
 * found, so that a namespace is remembered exactly while it holds one. The one place that
 * knows this layout. */
static char *remembered_path(struct kube_runtime *kr, const char *ns, const char *name) {
        return eg_state_path(kr->state_dir, EG_STATE_KUBE_NAMESPACES, ns, name);
}

int kube_remember_cluster(struct kube_runtime *kr, const char *ns, const char *name, struct eg_error *err) {
        _cleanup_free_ char *dir = remembered_path(kr, ns, NULL), *path = remembered_path(kr, ns, name);
        if (!dir || !path)
                return -ENOMEM;
        if (access(path, F_OK) == 0)
                return 0;
        int r = eg_mkdir_p(dir, 0700);
        int fd = r < 0 ? r : open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = r < 0 ? r : -errno;
                eg_error_set(err,
                             "cannot create %s, the record that %s/%s was made (without it, credentials that "
                             "may not list every namespace never look there again): %s",
                             path, ns, name, strerror(-r));
                return r;
        }
        close(fd);
        return 0;
}

void kube_forget_cluster(struct kube_runtime *kr, const char *ns, const char *name) {
        _cleanup_free_ char *path = remembered_path(kr, ns, name);
        /* a record left behind only costs a look into an empty namespace */
        if (path)
                unlink(path);
}

static bool holds_a_cluster(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        bool found = false;
        while (d && !found && (e = readdir(d)))
                found = e->d_name[0] != '.';
        if (d)
                closedir(d);
        return found;
}

/* Adds to where (namespace -> whether the source names it) every remembered namespace that
 * still holds a cluster. */
static int add_remembered(struct kube_runtime *kr, json_t *where, struct eg_error *err) {
        _cleanup_free_ char *root = remembered_path(kr, NULL, NULL);
        if (!root)
                return -ENOMEM;
        DIR *d = opendir(root);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                int r = -errno;
                eg_error_set(err, "cannot read %s (the namespaces etcd-gitops made clusters in): %s", root,
                             strerror(-r));
                return r;
        }
        struct dirent *e;
        int r = 0;
        while (r >= 0 && (e = readdir(d))) {
                _cleanup_free_ char *dir = NULL;
                /* anything but a namespace name never becomes part of an API path */
                if (json_object_get(where, e->d_name) || kube_check_names(e->d_name, e->d_name, NULL, NULL) < 0)
                        continue;
                if (!(dir = remembered_path(kr, e->d_name, NULL)))
                        r = -ENOMEM;
                else if (holds_a_cluster(dir))
                        r = json_object_set_new(where, e->d_name, json_false()) < 0 ? -ENOMEM : 0;
        }
        closedir(d);
        return r;
}

int kube_list_claims(struct kube_runtime *kr, const char *ns, const char *selector, json_t **ret,
                     struct eg_error *err) {
        _cleanup_free_ char *coll = ns ? eg_strdup_printf("/api/v1/namespaces/%s/persistentvolumeclaims", ns)
                                       : strdup("/api/v1/persistentvolumeclaims");
        if (!coll)
                return -ENOMEM;
        int r = eg_kube_list(kr->client, coll, selector, 500, ret, err);
        if (r == -EACCES) {
                eg_error_done(err);
                *ret = json_array();
                return *ret ? 0 : -ENOMEM;
        }
        return r;
}

/* The etcd pods and claims of ns (NULL: every namespace), appended to pods and pvcs. */
static int list_in(struct kube_runtime *kr, const char *ns, json_t *pods, json_t *pvcs, struct eg_error *err) {
        _cleanup_free_ char *coll = ns ? eg_strdup_printf("/api/v1/namespaces/%s/pods", ns) : strdup("/api/v1/pods");
        json_t *p = NULL, *c = NULL;
        if (!coll)
                return -ENOMEM;
        int r = eg_kube_list(kr->client, coll, ETCD_SELECTOR, 500, &p, err);
        if (r >= 0)
                r = kube_list_claims(kr, ns, ETCD_SELECTOR, &c, err);
        if (r >= 0 && (json_array_extend(pods, p) < 0 || json_array_extend(pvcs, c) < 0))
                r = -ENOMEM;
        json_decref(p);
        json_decref(c);
        return r;
}

/* Namespace by namespace, once listing every namespace was refused (wide says how). One that
 * cannot be listed either is skipped with a warning that names the grant: its clusters are
 * neither listed nor pruned, and the other namespaces go on (a namespace deleted with its
 * RoleBinding must not stop them); a cluster the source names there fails on its own. */
static int list_each(struct kube_runtime *kr, const char *const *namespaces, size_t n, const char *wide, json_t *pods,
                     json_t *pvcs, struct eg_error *err) {
        json_t *where = json_object();
        struct eg_buf skipped;
        const char *ns;
        json_t *named;
        int r = where ? 0 : -ENOMEM;
        eg_buf_init(&skipped, 0);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (kube_check_names(namespaces[i], namespaces[i], NULL, NULL) >= 0 &&
                    json_object_set_new(where, namespaces[i], json_true()) < 0)
                        r = -ENOMEM;
        if (r >= 0)
                r = add_remembered(kr, where, err);
        if (r < 0)
                goto out;
        if (json_object_size(where) > SCOPE_MAX_NAMESPACES) {
                eg_error_set(err, "%s; %zu namespaces are too many to look in one by one (at most %d)", wide,
                             json_object_size(where), SCOPE_MAX_NAMESPACES);
                r = -E2BIG;
                goto out;
        }
        if (json_object_size(where) == 0 && !namespaces) {
                /* without a source, nothing says where to look: "no clusters" would be a guess */
                _cleanup_free_ char *root = remembered_path(kr, NULL, NULL);
                eg_error_set(err,
                             "%s (no namespace is known to look in instead: etcd-gitops made no cluster "
                             "recorded under %s)",
                             wide, root ? root : "the state directory");
                r = -EACCES;
                goto out;
        }
        json_object_foreach(where, ns, named) {
                struct eg_error e = {0};
                r = list_in(kr, ns, pods, pvcs, &e);
                if (r == -EACCES && json_is_true(named))
                        r = eg_buf_printf(&skipped, "%scannot look in namespace %s, which the source names: %s",
                                          skipped.len ? "; " : "", ns, e.message ? e.message : "forbidden");
                else if (r == -EACCES) {
                        _cleanup_free_ char *dir = remembered_path(kr, ns, NULL);
                        r = eg_buf_printf(&skipped,
                                          "%scannot look in namespace %s, where etcd-gitops made clusters "
                                          "(they are neither listed nor pruned): %s; if none is left there, remove %s",
                                          skipped.len ? "; " : "", ns, e.message ? e.message : "forbidden",
                                          dir ? dir : "its record");
                } else if (r < 0)
                        eg_error_set(err, "cannot look for clusters in namespace %s: %s", ns,
                                     e.message ? e.message : strerror(-r));
                eg_error_done(&e);
                if (r < 0)
                        goto out;
        }
        if (skipped.len)
                eg_error_set(err, "%s", skipped.data);
        r = 0;
out:
        eg_buf_done(&skipped);
        json_decref(where);
        return r;
}

int kube_list_etcd_objects(struct kube_runtime *kr, const char *const *namespaces, size_t n, json_t **ret_pods,
                           json_t **ret_pvcs, struct eg_error *err) {
        json_t *pods = json_array(), *pvcs = json_array();
        struct eg_error wide = {0};
        int r = -ENOMEM;
        if (!pods || !pvcs)
                goto out;
        if (kr->namespace) {
                r = list_in(kr, kr->namespace, pods, pvcs, err);
                goto out;
        }
        /* every namespace at once where allowed: one request, and clusters nothing names are seen */
        r = list_in(kr, NULL, pods, pvcs, &wide);
        if (r == -EACCES)
                r = list_each(kr, namespaces, n, wide.message ? wide.message : "forbidden", pods, pvcs, err);
        else if (r < 0)
                eg_error_set(err, "%s", wide.message ? wide.message : strerror(-r));
out:
        eg_error_done(&wide);
        if (r >= 0) {
                *ret_pods = TAKE_PTR(pods);
                *ret_pvcs = TAKE_PTR(pvcs);
        }
        json_decref(pods);
        json_decref(pvcs);
        return r;
}
