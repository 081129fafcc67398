/* kube: talking to a Kubernetes API server: the kubeconfig loader, credentials and a REST client.
 * Knows nothing of runtimes; the kubernetes runtime and leader election sit on it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "etcd-gitops/util.h"

/* ---- kubeconfig ---- */

struct eg_kube_config_options {
        const char *kubeconfig; /* one file; NULL: $KUBECONFIG, ~/.kube/config, in-cluster */
        const char *context;    /* NULL: the current-context */
        /* in-cluster service account files; NULL: /var/run/secrets/kubernetes.io/serviceaccount */
        const char *service_account_dir;
};

/* The credentials to send with the next request. Data fields are PEM bytes. */
struct eg_kube_credentials {
        const char *token; /* bearer token; NULL when none */
        const char *username, *password;
        const char *cert_file, *key_file;
        const char *cert_data, *key_data;
        size_t cert_len, key_len;
};

struct eg_kube_exec; /* an exec credential plugin and its cached result */

/* One resolved context: where the API server is and how to prove who we are. Every
 * string is owned by the config; relative paths are already made absolute. */
struct eg_kube_config {
        char *source;    /* the file the context came from, or "in-cluster" */
        char *context;   /* NULL in-cluster */
        char *namespace; /* the context's namespace; NULL when it sets none */
        char *server;    /* https://host:port[/prefix], no trailing slash */
        char *ca_file;
        char *ca_data; /* decoded certificate-authority-data */
        size_t ca_len;
        bool insecure_skip_tls_verify;
        char *tls_server_name;
        char *proxy_url; /* proxy-url: http://, https:// or socks5://, maybe with user:pass; NULL: none */
        char *cert_file, *key_file;
        char *cert_data, *key_data;
        size_t cert_len, key_len;
        char *token;
        char *token_file;
        char *username, *password;
        struct eg_kube_exec *exec;
        char *file_token;                /* the tokenFile as last read */
        struct eg_kube_credentials cred; /* filled by eg_kube_config_credentials() */
};

/* Loads and merges kubeconfig files like kubectl (for $KUBECONFIG: first file wins per
 * key and per named entry; current-context from the first file that sets it), picks the
 * context and resolves its cluster and user. In-cluster only when no file is given or
 * found and KUBERNETES_SERVICE_HOST is set. -ENOENT when there is no configuration,
 * -EINVAL for a broken one; err names the file and the entry. */
int eg_kube_config_load(const struct eg_kube_config_options *o, struct eg_kube_config **ret, struct eg_error *err);
void eg_kube_config_free(struct eg_kube_config *c);

/* Fills c->cred for the next request: re-reads a tokenFile, runs the exec plugin when it
 * has no cached result, the result has expired, or refresh is true (after a 401). The
 * pointers in c->cred stay valid until the next call or eg_kube_config_free(). */
int eg_kube_config_credentials(struct eg_kube_config *c, bool refresh, struct eg_error *err);

/* ---- REST client ---- */

struct eg_kube_client_options {
        int64_t timeout_ms;    /* each request; default 30000 */
        int max_retries;       /* 409 conflicts, 429 and 5xx; default 5 */
        int64_t retry_base_ms; /* first back-off; doubled each time, capped at 8 s; default 200 */
};

struct eg_kube_client;

/* Takes ownership of cfg (also on failure). */
int eg_kube_client_new(struct eg_kube_config *cfg, const struct eg_kube_client_options *o, struct eg_kube_client **ret,
                       struct eg_error *err);
void eg_kube_client_free(struct eg_kube_client *c);
struct eg_kube_config *eg_kube_client_config(struct eg_kube_client *c);

/* Results: 0, or a negative errno with err saying what the API server said:
 * -ENOENT 404, -EEXIST 409 AlreadyExists, -ESTALE 409 Conflict (stale resourceVersion),
 * -EINVAL 400/422, -EACCES 403 (the message names the verb and resource to grant),
 * -EPERM 401, -EAGAIN 429/5xx still failing after the retries, -EBADMSG for a body that
 * is not JSON, -ETIMEDOUT/-ECONNREFUSED/-EPROTO for transport failures.
 * Paths start at the server root ("/api/v1/namespaces/default/pods"); *ret bodies are
 * new references the caller must json_decref(). */

/* Any method; body may be NULL; content_type NULL means application/json. Retries 429
 * and 5xx (honouring Retry-After) and one 401 with refreshed credentials. */
int eg_kube_request(struct eg_kube_client *c, const char *method, const char *path, json_t *body,
                    const char *content_type, long *ret_status, json_t **ret, struct eg_error *err);
int eg_kube_get(struct eg_kube_client *c, const char *path, json_t **ret, struct eg_error *err);
/* GET with no retry of 429/5xx: for probes whose answer matters only now. */
int eg_kube_get_once(struct eg_kube_client *c, const char *path, json_t **ret, struct eg_error *err);
/* A watch's stream (?watch=1): on_data gets the body as it comes, in any pieces (a negative
 * return ends the watch with an error); cancelled is asked about once a second and ends it
 * with -ECANCELED. Called on the thread that runs eg_kube_watch. */
struct eg_kube_watcher {
        int (*on_data)(const char *p, size_t n, void *userdata);
        bool (*cancelled)(void *userdata);
        void *userdata;
};
/* One watch request, no retries: 0 when the server or timeout_ms ended it (watch again), else
 * an error as above (-ESTALE for 410 Gone: list or watch without a resourceVersion). */
int eg_kube_watch(struct eg_kube_client *c, const char *path, int64_t timeout_ms, const struct eg_kube_watcher *w,
                  struct eg_error *err);
/* Follows metadata.continue until the list is complete; *ret is the array of items.
 * label_selector may be NULL; limit 0 lets the server choose the page size. */
int eg_kube_list(struct eg_kube_client *c, const char *path, const char *label_selector, int64_t limit, json_t **ret,
                 struct eg_error *err);
int eg_kube_create(struct eg_kube_client *c, const char *collection, json_t *obj, json_t **ret, struct eg_error *err);
/* PUT; obj must carry metadata.resourceVersion for an optimistic update. */
int eg_kube_replace(struct eg_kube_client *c, const char *path, json_t *obj, json_t **ret, struct eg_error *err);

enum eg_kube_patch_type { EG_KUBE_PATCH_MERGE, EG_KUBE_PATCH_STRATEGIC };
int eg_kube_patch(struct eg_kube_client *c, const char *path, enum eg_kube_patch_type type, json_t *patch, json_t **ret,
                  struct eg_error *err);

/* grace_seconds < 0: the object's default; propagation NULL: the server's default
 * ("Background", "Foreground", "Orphan"). -ENOENT when it is already gone. */
int eg_kube_delete(struct eg_kube_client *c, const char *path, int64_t grace_seconds, const char *propagation,
                   struct eg_error *err);

/* Read-modify-write: GET path, mutate(obj) in place (return < 0 to abort, 0 to write, 1
 * when nothing needs writing), PUT with the resourceVersion read; a 409 conflict starts
 * again on fresh state, a bounded number of times. */
typedef int (*eg_kube_mutate_fn)(json_t *obj, void *userdata);
int eg_kube_update(struct eg_kube_client *c, const char *path, eg_kube_mutate_fn mutate, void *userdata, json_t **ret,
                   struct eg_error *err);

/* The API server's proxy to a pod port: <server>/api/v1/namespaces/NS/pods/[https:]POD:PORT/proxy. */
char *eg_kube_pod_proxy_url(struct eg_kube_client *c, const char *ns, const char *pod, int port, bool https);

/* What another client (etcd's) needs to go through that proxy: the API server's CA, our
 * client certificate and key (data written once to 0600 files under dir), the same trust
 * the REST calls have (insecure-skip-tls-verify, tls-server-name), the same proxy
 * (proxy-url) and an Authorization header. */
struct eg_kube_access {
        struct eg_tls_client tls;
        const char *const *headers; /* NULL-terminated; NULL: none */
        const char *proxy;          /* NULL: none named */
};
/* Fills *ret; its strings stay owned by the client, valid until the next call. */
int eg_kube_client_access(struct eg_kube_client *c, const char *dir, struct eg_kube_access *ret, struct eg_error *err);

/* Writes data to dir/name (0600, atomically) unless it already holds exactly that, and
 * replaces *path with that file's path. */
int eg_kube_materialise(const char *dir, const char *name, const char *data, size_t len, char **path,
                        struct eg_error *err);
