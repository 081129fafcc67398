/* kubeconfig: finds, merges and resolves kubeconfig files (or the in-cluster service account) into a config. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"
#include "etcd-gitops/yaml.h"
#include "internal.h"

#define KUBECONFIG_MAX_BYTES ((size_t)4 << 20)
#define MAX_KUBECONFIG_FILES 64
#define SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- small helpers ---- */

static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash)
                return getcwd(NULL, 0);
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t)(slash - path));
}

/* Makes a relative path field absolute against dir, as kubectl does. */
static int resolve_field(json_t *o, const char *key, const char *dir, bool only_with_slash) {
        const char *s = kube_jstr(o, key);
        if (!s || !*s || s[0] == '/')
                return 0;
        if (only_with_slash && !strchr(s, '/'))
                return 0;
        _cleanup_free_ char *abs = eg_path_join(dir, s);
        if (!abs || json_object_set_new(o, key, json_string(abs)) < 0)
                return -ENOMEM;
        return 0;
}

/* Named-entry lists: "clusters", "users", "contexts" items are {name, <kind>: {...}}. */
static json_t *named_find(json_t *list, const char *name) {
        size_t i;
        json_t *it;
        json_array_foreach(list, i, it) {
                const char *n = kube_jstr(it, "name");
                if (n && strcmp(n, name) == 0)
                        return it;
        }
        return NULL;
}

static int resolve_file_paths(json_t *doc, const char *path) {
        _cleanup_free_ char *dir = dir_of(path);
        size_t i;
        json_t *it;
        int r = 0;
        if (!dir)
                return -ENOMEM;
        json_array_foreach(json_object_get(doc, "clusters"), i, it) {
                json_t *c = json_object_get(it, "cluster");
                if (json_is_object(c) && (r = resolve_field(c, "certificate-authority", dir, false)) < 0)
                        return r;
        }
        json_array_foreach(json_object_get(doc, "users"), i, it) {
                json_t *u = json_object_get(it, "user");
                if (!json_is_object(u))
                        continue;
                if ((r = resolve_field(u, "client-certificate", dir, false)) < 0 ||
                    (r = resolve_field(u, "client-key", dir, false)) < 0 ||
                    (r = resolve_field(u, "tokenFile", dir, false)) < 0)
                        return r;
                json_t *ex = json_object_get(u, "exec");
                if (json_is_object(ex) && (r = resolve_field(ex, "command", dir, true)) < 0)
                        return r;
        }
        return 0;
}

static int load_one(const char *path, json_t **ret, struct eg_error *err) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = eg_read_file(path, KUBECONFIG_MAX_BYTES, &data, &len);
        if (r < 0) {
                if (r != -ENOENT)
                        eg_error_set(err, "cannot read kubeconfig %s: %s", path, strerror(-r));
                return r;
        }
        json_t *doc = NULL;
        struct eg_error yerr = {0};
        r = eg_yaml_to_json(data, len, EG_YAML_PLAIN_STRINGS, &doc, &yerr);
        if (r < 0) {
                const char *why = yerr.message ? yerr.message : strerror(-r);
                if (yerr.line)
                        eg_error_set_at(err, path, yerr.line, yerr.column, "kubeconfig %s: line %u column %u: %s", path,
                                        yerr.line, yerr.column, why);
                else
                        eg_error_set(err, "kubeconfig %s: %s", path, why);
                eg_error_done(&yerr);
                return r == -ENOMEM ? r : -EINVAL;
        }
        if ((r = resolve_file_paths(doc, path)) < 0) {
                json_decref(doc);
                return r;
        }
        *ret = doc;
        return 0;
}

/* kubectl's merge: the first file to set a key or name an entry wins. */
static int merge_into(json_t *merged, json_t *doc) {
        const char *key;
        json_t *v;
        json_object_foreach(doc, key, v) {
                json_t *have = json_object_get(merged, key);
                bool named = strcmp(key, "clusters") == 0 || strcmp(key, "users") == 0 || strcmp(key, "contexts") == 0;
                if (named && json_is_array(v)) {
                        if (!json_is_array(have)) {
                                if (json_object_set_new(merged, key, json_array()) < 0)
                                        return -ENOMEM;
                                have = json_object_get(merged, key);
                        }
                        size_t i;
                        json_t *it;
                        json_array_foreach(v, i, it) {
                                const char *n = kube_jstr(it, "name");
                                if (!n || named_find(have, n))
                                        continue;
                                if (json_array_append(have, it) < 0)
                                        return -ENOMEM;
                        }
                } else if (!have || (json_is_string(have) && !*json_string_value(have)))
                        if (json_object_set(merged, key, v) < 0)
                                return -ENOMEM;
        }
        return 0;
}

void eg_kube_config_free(struct eg_kube_config *c) {
        if (!c)
                return;
        free(c->source);
        free(c->context);
        free(c->namespace);
        free(c->server);
        free(c->ca_file);
        free(c->ca_data);
        free(c->tls_server_name);
        free(c->proxy_url);
        free(c->cert_file);
        free(c->key_file);
        free(c->cert_data);
        free(c->key_data);
        free(c->token);
        free(c->token_file);
        free(c->file_token);
        free(c->username);
        free(c->password);
        kube_exec_free(c->exec);
        free(c);
}

static int decode_field(json_t *o, const char *key, char **ret, size_t *ret_len) {
        const char *s = kube_jstr(o, key);
        if (!s || !*s)
                return 0;
        return eg_base64_decode(s, ret, ret_len);
}

/* What kubectl takes for proxy-url: scheme http, https or socks5 (any case), and a host. NULL
 * when u is one, else why not (never quoting u, which may carry a password). */
static char *proxy_url_check(const char *u) {
        static const char *const schemes[] = {"http", "https", "socks5"};
        const char *p = strstr(u, "://");
        size_t sl = p ? (size_t)(p - u) : 0;
        if (!p || sl == 0 || strcspn(u, ":/@") < sl)
                return strdup("is not a URL (want http://, https:// or socks5://[user:password@]host:port)");
        bool known = false;
        for (size_t i = 0; i < EG_ELEMENTSOF(schemes); i++)
                if (sl == strlen(schemes[i]) && strncasecmp(u, schemes[i], sl) == 0)
                        known = true;
        if (!known)
                return eg_strdup_printf("has scheme %.*s: only http, https and socks5 are supported", (int)sl, u);
        const char *host = p + 3, *end = host + strcspn(host, "/?#");
        const char *at = memrchr(host, '@', (size_t)(end - host));
        if (at)
                host = at + 1;
        if (host == end || *host == ':')
                return strdup("names no host");
        return NULL;
}

/* Fills the user part of c: the user the context names (none: anonymous). */
static int resolve_user(json_t *merged, const char *ctxname, const char *uname, struct eg_kube_config *c,
                        struct eg_error *err) {
        int r;
        json_t *u = json_object_get(named_find(json_object_get(merged, "users"), uname ? uname : ""), "user");
        if (!uname || !*uname)
                return 0; /* anonymous */
        if (!json_is_object(u)) {
                eg_error_set(err, "%s: context %s names user %s, which is not defined", c->source, ctxname, uname);
                return -EINVAL;
        }
        if ((r = kube_dup_field(u, "client-certificate", &c->cert_file)) < 0 ||
            (r = kube_dup_field(u, "client-key", &c->key_file)) < 0 ||
            (r = kube_dup_field(u, "token", &c->token)) < 0 ||
            (r = kube_dup_field(u, "tokenFile", &c->token_file)) < 0 ||
            (r = kube_dup_field(u, "username", &c->username)) < 0 ||
            (r = kube_dup_field(u, "password", &c->password)) < 0)
                return r;
        if ((r = decode_field(u, "client-certificate-data", &c->cert_data, &c->cert_len)) < 0 ||
            (r = decode_field(u, "client-key-data", &c->key_data, &c->key_len)) < 0) {
                eg_error_set(err, "%s: user %s: client certificate or key data is not base64", c->source, uname);
                return r == -ENOMEM ? r : -EINVAL;
        }
        json_t *ex = json_object_get(u, "exec");
        if (json_is_object(ex)) {
                _cleanup_free_ char *where = eg_strdup_printf("%s: user %s", c->source, uname);
                if (!where)
                        return -ENOMEM;
                if ((r = kube_exec_parse(ex, where, &c->exec, err)) < 0)
                        return r;
        }
        if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data)) {
                eg_error_set(err, "%s: user %s has a client certificate without a key or the reverse", c->source,
                             uname);
                return -EINVAL;
        }
        return 0;
}

/* Fills the cluster and user parts of c from the merged document. */
static int resolve_context(json_t *merged, const char *want, struct eg_kube_config *c, struct eg_error *err) {
        const char *ctxname = want && *want ? want : kube_jstr(merged, "current-context");
        int r;
        if (!ctxname || !*ctxname) {
                eg_error_set(err, "%s: no current-context set and no --context given", c->source);
                return -EINVAL;
        }
        json_t *ctxe = named_find(json_object_get(merged, "contexts"), ctxname);
        json_t *ctx = json_object_get(ctxe, "context");
        if (!json_is_object(ctx)) {
                eg_error_set(err, "%s: no context named %s", c->source, ctxname);
                return -EINVAL;
        }
        if (!(c->context = strdup(ctxname)) || kube_dup_field(ctx, "namespace", &c->namespace) < 0)
                return -ENOMEM;
        const char *cname = kube_jstr(ctx, "cluster"), *uname = kube_jstr(ctx, "user");
        json_t *cl = json_object_get(named_find(json_object_get(merged, "clusters"), cname ? cname : ""), "cluster");
        if (!json_is_object(cl)) {
                eg_error_set(err, "%s: context %s names cluster %s, which is not defined", c->source, ctxname,
                             cname ? cname : "(none)");
                return -EINVAL;
        }
        if ((r = kube_dup_field(cl, "server", &c->server)) < 0 ||
            (r = kube_dup_field(cl, "certificate-authority", &c->ca_file)) < 0 ||
            (r = kube_dup_field(cl, "tls-server-name", &c->tls_server_name)) < 0 ||
            (r = kube_dup_field(cl, "proxy-url", &c->proxy_url)) < 0)
                return r;
        if (c->proxy_url) {
                _cleanup_free_ char *why = proxy_url_check(c->proxy_url);
                if (why) {
                        eg_error_set(err, "%s: cluster %s: proxy-url %s", c->source, cname, why);
                        return -EINVAL;
                }
        }
        if ((r = decode_field(cl, "certificate-authority-data", &c->ca_data, &c->ca_len)) < 0) {
                eg_error_set(err, "%s: cluster %s: certificate-authority-data is not base64", c->source, cname);
                return r == -ENOMEM ? r : -EINVAL;
        }
        c->insecure_skip_tls_verify = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
        /* without its trailing slashes: "/" is no server either */
        size_t sl = c->server ? strlen(c->server) : 0;
        while (sl > 0 && c->server[sl - 1] == '/')
                c->server[--sl] = 0;
        if (sl == 0) {
                eg_error_set(err, "%s: cluster %s has no server", c->source, cname);
                return -EINVAL;
        }
        return resolve_user(merged, ctxname, uname, c, err);
}

static int load_in_cluster(const struct eg_kube_config_options *o, struct eg_kube_config *c, struct eg_error *err) {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        const char *dir = o->service_account_dir ? o->service_account_dir : SERVICE_ACCOUNT_DIR;
        if (!port || !*port)
                port = "443";
        c->source = strdup("in-cluster");
        c->server = strchr(host, ':') ? eg_strdup_printf("https://[%s]:%s", host, port)
                                      : eg_strdup_printf("https://%s:%s", host, port);
        c->token_file = eg_path_join(dir, "token");
        c->ca_file = eg_path_join(dir, "ca.crt");
        _cleanup_free_ char *nsfile = eg_path_join(dir, "namespace");
        if (!c->source || !c->server || !c->token_file || !c->ca_file || !nsfile)
                return -ENOMEM;
        if (access(c->token_file, R_OK) < 0) {
                eg_error_set(err, "KUBERNETES_SERVICE_HOST is set but the service account token %s is not readable: %s",
                             c->token_file, strerror(errno));
                return -ENOENT;
        }
        char *ns = NULL;
        if (eg_read_file(nsfile, 4096, &ns, NULL) >= 0) {
                ns[strcspn(ns, " \r\n\t")] = 0;
                if (*ns)
                        c->namespace = ns;
                else
                        free(ns);
        }
        return 0;
}

/* Merges the files of $KUBECONFIG (env), else ~/.kube/config, into merged; c->source becomes the
 * first that exists. Returns how many did. */
static int load_list(const char *env, json_t *merged, struct eg_kube_config *c, struct eg_error *err) {
        _cleanup_free_ char *list = NULL;
        if (env && *env)
                list = strdup(env);
        else if (getenv("HOME") && *getenv("HOME"))
                list = eg_strdup_printf("%s/.kube/config", getenv("HOME"));
        else
                list = strdup("");
        if (!list)
                return -ENOMEM;
        int n = 0, found = 0, r;
        for (char *p = list, *next; p; p = next) {
                json_t *doc = NULL;
                next = strchr(p, ':');
                if (next)
                        *next++ = 0;
                if (!*p)
                        continue;
                if (++n > MAX_KUBECONFIG_FILES) {
                        eg_error_set(err, "KUBECONFIG lists more than %d files", MAX_KUBECONFIG_FILES);
                        return -EINVAL;
                }
                r = load_one(p, &doc, err);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                r = merge_into(merged, doc);
                json_decref(doc);
                if (r < 0)
                        return r;
                if (!found++ && !(c->source = strdup(p)))
                        return -ENOMEM;
        }
        return found;
}

int eg_kube_config_load(const struct eg_kube_config_options *o, struct eg_kube_config **ret, struct eg_error *err) {
        struct eg_kube_config_options none = {0};
        struct eg_kube_config *c = calloc(1, sizeof(*c));
        json_t *merged = json_object();
        int r = -ENOMEM, found = 0;
        if (!o)
                o = &none;
        if (!c || !merged)
                goto out;
        const char *env = getenv("KUBECONFIG");
        if (o->kubeconfig && *o->kubeconfig) {
                json_t *doc = NULL;
                r = load_one(o->kubeconfig, &doc, err);
                if (r == -ENOENT)
                        eg_error_set(err, "kubeconfig %s does not exist", o->kubeconfig);
                if (r < 0)
                        goto out;
                r = merge_into(merged, doc);
                json_decref(doc);
                if (r < 0 || !(c->source = strdup(o->kubeconfig))) {
                        r = -ENOMEM;
                        goto out;
                }
                found = 1;
        } else if ((r = load_list(env, merged, c, err)) < 0)
                goto out;
        else
                found = r;
        if (found) {
                r = resolve_context(merged, o->context, c, err);
        } else if (getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST")) {
                r = load_in_cluster(o, c, err);
        } else {
                eg_error_set(err, "no kubeconfig found (%s) and not running in a cluster: use --kubeconfig",
                             env && *env ? "none of the KUBECONFIG files exists" : "~/.kube/config does not exist");
                r = -ENOENT;
        }
        if (r == 0)
                *ret = TAKE_PTR(c);
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory loading the kubeconfig");
        json_decref(merged);
        eg_kube_config_free(c);
        return r;
}
