/* kube_access: how the daemon reaches the members' etcd on the Kubernetes runtime, through the
 * API server's pod proxy (RBAC checked once) or directly with the operator secret's client
 * certificate, and the Secrets it keeps as files for that and for backups. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "etcd-gitops/kube.h"
#include "kube_objects.h"
#include "kube_runtime.h"

/* how long the operator secret's files are trusted before the API is asked again */
#define CLIENT_TLS_TTL_MS 30000

/* etcd behind a forbidden pods/proxy would look like dead members (quorum lost): ask once
 * and report the RBAC denial instead. Authorization comes before the pod is looked up, so the
 * pod need not exist yet: anything but a 403 got past it. name NULL: no pod to ask yet. */
int kube_check_proxy_allowed(struct kube_runtime *kr, const char *ns, const char *name, struct eg_error *err) {
        if (kr->access != EG_KUBE_ACCESS_PROXY || kr->proxy_allowed || !name)
                return 0;
        _cleanup_free_ char *probe_path = eg_strdup_printf("/api/v1/namespaces/%s/pods/%s:%d/proxy/version", ns, name,
                                                           CLIENT_PORT);
        struct eg_error e = {0};
        if (!probe_path)
                return -ENOMEM;
        /* a pod that cannot answer yet says 503: retrying that says nothing more about RBAC */
        int r = eg_kube_get_once(kr->client, probe_path, NULL, &e);
        if (r == -EACCES) {
                eg_error_set(err, "%s", e.message ? e.message : "forbidden: pods/proxy");
                eg_error_done(&e);
                return r;
        }
        eg_error_done(&e);
        kr->proxy_allowed = true;
        return 0;
}

int kube_refuse_proxy_tls(const char *ns, const char *name, struct eg_error *err) {
        eg_error_set(err,
                     "the members of %s/%s require client certificates (TLS with an operator secret), "
                     "which the API server's pod proxy cannot present: run etcd-gitops with --etcd-access "
                     "direct where it reaches the pod network and resolves cluster DNS",
                     ns, name);
        return -EPROTONOSUPPORT;
}

void kube_client_tls_free(struct client_tls *t) {
        while (t) {
                struct client_tls *next = t->next;
                free(t->ns);
                free(t->name);
                free(t->ca);
                free(t->cert);
                free(t->key);
                free(t);
                t = next;
        }
}

static struct client_tls *client_tls_entry(struct kube_runtime *kr, const char *ns, const char *name) {
        for (struct client_tls *t = kr->tls; t; t = t->next)
                if (strcmp(t->ns, ns) == 0 && strcmp(t->name, name) == 0)
                        return t;
        struct client_tls *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->ns = strdup(ns);
        t->name = strdup(name);
        if (!t->ns || !t->name) {
                kube_client_tls_free(t);
                return NULL;
        }
        t->next = kr->tls;
        kr->tls = t;
        return t;
}

/* A Secret's data as files (0600) in <state_dir>/secrets/NS/NAME/, where the daemon reads
 * secrets on every runtime. *ret_dir is malloc'd. */
static int sync_secret(struct kube_runtime *kr, const char *ns, const char *name, char **ret_dir,
                       struct eg_error *err) {
        _cleanup_free_ char *path = eg_strdup_printf("/api/v1/namespaces/%s/secrets/%s", ns, name);
        _cleanup_free_ char *dir = eg_state_path(kr->state_dir, EG_STATE_SECRETS, ns, name);
        json_t *sec = NULL, *v;
        const char *key;
        int r;
        if (!path || !dir)
                return -ENOMEM;
        if ((r = kube_check_names(ns, name, NULL, err)) < 0 || (r = eg_kube_get(kr->client, path, &sec, err)) < 0)
                return r;
        if ((r = eg_mkdir_p(dir, 0700)) < 0)
                eg_error_set(err, "cannot create %s: %s", dir, strerror(-r));
        json_object_foreach(json_object_get(sec, "data"), key, v) {
                _cleanup_free_ char *data = NULL, *file = NULL;
                size_t len = 0;
                if (r < 0)
                        break;
                /* the API allows only [-._a-zA-Z0-9] in keys; anything else never becomes a path */
                if (!*key ||
                    strspn(key, "-._abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(key) ||
                    strcmp(key, ".") == 0 || strcmp(key, "..") == 0)
                        continue;
                if (!json_is_string(v) || eg_base64_decode(json_string_value(v), &data, &len) < 0) {
                        eg_error_set(err, "secret %s/%s: %s is not base64", ns, name, key);
                        r = -EBADMSG;
                } else
                        r = eg_kube_materialise(dir, key, data, len, &file, err);
        }
        json_decref(sec);
        if (r >= 0)
                *ret_dir = TAKE_PTR(dir);
        return r;
}

int kube_sync_secret(struct eg_runtime *rt, const char *ns, const char *name, struct eg_error *err) {
        _cleanup_free_ char *dir = NULL;
        return sync_secret(to_kube(rt), ns, name, &dir, err);
}

/* The operator secret's three files, as upstream names them. */
static int materialise_operator_secret(struct kube_runtime *kr, struct client_tls *t, const char *secret,
                                       struct eg_error *err) {
        static const char *const keys[] = {"etcd-client-ca.crt", "etcd-client.crt", "etcd-client.key"};
        char **paths[] = {&t->ca, &t->cert, &t->key};
        _cleanup_free_ char *dir = NULL;
        int r = sync_secret(kr, t->ns, secret, &dir, err);
        if (r == -ENOENT)
                eg_error_set(err, "secret %s/%s (spec.TLS.static.operatorSecret of cluster %s) not found", t->ns,
                             secret, t->name);
        for (size_t i = 0; i < EG_ELEMENTSOF(keys) && r >= 0; i++) {
                _cleanup_free_ char *file = eg_path_join(dir, keys[i]);
                struct stat st;
                if (!file)
                        return -ENOMEM;
                if (stat(file, &st) < 0 || st.st_size == 0) {
                        eg_error_set(err,
                                     "secret %s/%s has no %s: the operator secret needs etcd-client.crt, "
                                     "etcd-client.key and etcd-client-ca.crt",
                                     t->ns, secret, keys[i]);
                        return -EINVAL;
                }
                free(*paths[i]);
                *paths[i] = TAKE_PTR(file);
        }
        return r;
}

/* Whether the cluster's members want a client certificate (they serve https, as upstream's
 * serverSecret makes them, with --client-cert-auth) and which operator secret holds ours:
 * read from the pods, so adopted clusters and backups by cluster name work alike. */
static int refresh_client_tls(struct kube_runtime *kr, struct client_tls *t, struct eg_error *err) {
        json_t *pods = NULL, *pod;
        size_t i;
        int r = kube_list_cluster_pods(kr, t->ns, t->name, &pods, err);
        if (r < 0)
                return r;
        const char *secret = NULL;
        bool https = false;
        json_array_foreach(pods, i, pod) {
                const char *adv = kube_etcd_flag(pod, "--advertise-client-urls");
                if (!adv || strncmp(adv, "https:", 6) != 0)
                        continue;
                https = true;
                size_t j;
                json_t *v;
                json_array_foreach(jpath(pod, "spec", "volumes"), j, v) {
                        const char *vn = jstr(v, "name");
                        if (vn && strcmp(vn, OPERATOR_TLS_VOLUME) == 0)
                                secret = jstr(json_object_get(v, "secret"), "secretName");
                }
                if (secret)
                        break;
        }
        t->required = https;
        if (https && !secret)
                eg_error_set(err,
                             "the members of %s/%s serve clients over TLS but mount no operator secret: set "
                             "spec.TLS.static.operatorSecret to a secret with etcd-client.crt, etcd-client.key "
                             "and etcd-client-ca.crt",
                             t->ns, t->name);
        r = !https ? 0 : !secret ? -ENOKEY : materialise_operator_secret(kr, t, secret, err);
        /* no pods yet: nothing to reach, and the next call must look again */
        if (r >= 0 && json_array_size(pods) > 0)
                t->checked_ms = eg_now_monotonic_ms();
        json_decref(pods);
        return r;
}

int kube_etcd_access(struct eg_runtime *rt, const char *ns, const char *name, struct eg_etcd_options *ret,
                     struct eg_error *err) {
        struct kube_runtime *kr = to_kube(rt);
        struct client_tls *t = ns && name ? client_tls_entry(kr, ns, name) : NULL;
        int r;
        if (ns && name && !t)
                return -ENOMEM;
        if (t && (t->checked_ms == 0 || eg_now_monotonic_ms() - t->checked_ms > CLIENT_TLS_TTL_MS) &&
            (r = refresh_client_tls(kr, t, err)) < 0)
                return r;
        bool required = t && t->required;
        if (kr->access == EG_KUBE_ACCESS_DIRECT) {
                ret->tls = required ? (struct eg_tls_client){.ca_file = t->ca, .cert_file = t->cert, .key_file = t->key}
                                    : (struct eg_tls_client){0};
                ret->headers = NULL;
                return 0;
        }
        if (required)
                return kube_refuse_proxy_tls(ns, name, err);
        struct eg_kube_access a;
        if ((r = eg_kube_client_access(kr->client, kr->access_dir, &a, err)) < 0)
                return r;
        ret->tls = a.tls;
        ret->headers = a.headers;
        ret->proxy = a.proxy;
        return 0;
}
