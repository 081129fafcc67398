/* kubeconfig: finds, merges and resolves kubeconfig files (or the in-cluster service account) into credentials. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "etcd-gitops/kube.h"

extern char **environ;

#define KUBECONFIG_MAX_BYTES ((size_t)4 << 20)
#define TOKEN_MAX_BYTES ((size_t)1 << 20)
#define EXEC_OUTPUT_MAX_BYTES ((size_t)4 << 20)
#define EXEC_TIMEOUT_MS 60000
#define YAML_MAX_DEPTH 64
#define MAX_KUBECONFIG_FILES 64
#define SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct eg_kube_exec {
        char *api_version;
        char *command;
        char **args; /* NULL-terminated, args[0] is the command */
        char **env;  /* "NAME=value", NULL-terminated */
        bool provide_cluster_info;
        /* the cached result */
        bool have;
        int64_t expiry_ms; /* 0: until refreshed */
        char *token;
        char *cert_data, *key_data;
        size_t cert_len, key_len;
};

/* ---- YAML to JSON (libyaml events) ---- */

static json_t *yaml_scalar(const yaml_event_t *ev) {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;
        if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && strcmp(tag, "!") == 0) ||
            (tag && strcmp(tag, YAML_STR_TAG) == 0))
                return json_stringn(v, len);
        if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
            strcmp(v, "NULL") == 0)
                return json_null();
        if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0)
                return json_true();
        if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0)
                return json_false();
        return json_stringn(v, len);
}

/* Adds value to the open container; key_slot holds a pending mapping key. */
static int yaml_attach(json_t *parent, json_t **key_slot, json_t *value) {
        if (json_is_array(parent))
                return json_array_append_new(parent, value) < 0 ? -ENOMEM : 0;
        if (!*key_slot) {
                /* a mapping key: only scalars make sense in a kubeconfig */
                if (!json_is_string(value) && !json_is_boolean(value)) {
                        json_decref(value);
                        return -EBADMSG;
                }
                *key_slot = value;
                return 0;
        }
        json_t *k = *key_slot;
        *key_slot = NULL;
        char *ks = json_is_string(k) ? strdup(json_string_value(k))
                                     : strdup(json_is_true(k) ? "true" : "false");
        json_decref(k);
        if (!ks) {
                json_decref(value);
                return -ENOMEM;
        }
        int r = json_object_set_new(parent, ks, value) < 0 ? -ENOMEM : 0;
        free(ks);
        return r;
}

/* Parses the first YAML document of data into JSON; an empty file is an empty object. */
static int yaml_to_json(const char *data, size_t len, json_t **ret, char **ret_msg) {
        yaml_parser_t p;
        yaml_event_t ev;
        json_t *stack[YAML_MAX_DEPTH + 1] = {0};
        json_t *keys[YAML_MAX_DEPTH + 1] = {0};
        json_t *root = NULL;
        unsigned depth = 0;
        int r = 0;
        bool done = false;
        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
        while (!done) {
                if (!yaml_parser_parse(&p, &ev)) {
                        *ret_msg = eg_strdup_printf("line %zu column %zu: %s",
                                                    p.problem_mark.line + 1,
                                                    p.problem_mark.column + 1,
                                                    p.problem ? p.problem : "invalid YAML");
                        r = -EBADMSG;
                        break;
                }
                json_t *node = NULL;
                bool open = false;
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        done = ev.type == YAML_STREAM_END_EVENT || root;
                        break;
                case YAML_ALIAS_EVENT:
                        *ret_msg = eg_strdup_printf("line %zu: aliases are not supported",
                                                    ev.start_mark.line + 1);
                        r = -EBADMSG;
                        break;
                case YAML_SCALAR_EVENT:
                        node = yaml_scalar(&ev);
                        break;
                case YAML_SEQUENCE_START_EVENT:
                        node = json_array();
                        open = true;
                        break;
                case YAML_MAPPING_START_EVENT:
                        node = json_object();
                        open = true;
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        if (depth > 0)
                                depth--;
                        break;
                default:
                        break;
                }
                if (r == 0 && (ev.type == YAML_SCALAR_EVENT || open)) {
                        if (!node)
                                r = -ENOMEM;
                        else if (depth == 0) {
                                if (root || !open) {
                                        json_decref(node);
                                        if (!root) {
                                                *ret_msg = strdup("the document is not a mapping");
                                                r = -EBADMSG;
                                        }
                                } else
                                        root = node;
                        } else {
                                if (open)
                                        json_incref(node);
                                r = yaml_attach(stack[depth - 1], &keys[depth - 1], node);
                                if (r < 0 && open)
                                        json_decref(node);
                                if (r == -EBADMSG)
                                        *ret_msg = eg_strdup_printf("line %zu: a mapping key must be a scalar",
                                                                    ev.start_mark.line + 1);
                        }
                        if (r == 0 && open) {
                                if (depth > 0)
                                        json_decref(node); /* the parent holds it */
                                if (depth >= YAML_MAX_DEPTH) {
                                        *ret_msg = strdup("nested too deeply");
                                        r = -EBADMSG;
                                } else {
                                        stack[depth] = node;
                                        keys[depth] = NULL;
                                        depth++;
                                }
                        }
                }
                yaml_event_delete(&ev);
                if (r < 0)
                        break;
        }
        for (unsigned i = 0; i <= YAML_MAX_DEPTH; i++)
                json_decref(keys[i]);
        yaml_parser_delete(&p);
        if (r < 0) {
                json_decref(root);
                return r;
        }
        if (!root && !(root = json_object()))
                return -ENOMEM;
        if (!json_is_object(root)) {
                json_decref(root);
                *ret_msg = strdup("the document is not a mapping");
                return -EBADMSG;
        }
        *ret = root;
        return 0;
}

/* ---- small helpers ---- */

static const char *jstr(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int dup_field(json_t *o, const char *key, char **ret) {
        const char *s = jstr(o, key);
        if (!s || !*s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

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
        const char *s = jstr(o, key);
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
                const char *n = jstr(it, "name");
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
        _cleanup_free_ char *msg = NULL;
        size_t len = 0;
        int r = eg_read_file(path, KUBECONFIG_MAX_BYTES, &data, &len);
        if (r < 0) {
                if (r != -ENOENT)
                        eg_error_set(err, "cannot read kubeconfig %s: %s", path, strerror(-r));
                return r;
        }
        json_t *doc = NULL;
        r = yaml_to_json(data, len, &doc, &msg);
        if (r < 0) {
                eg_error_set(err, "kubeconfig %s: %s", path, msg ? msg : strerror(-r));
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
                bool named = strcmp(key, "clusters") == 0 || strcmp(key, "users") == 0 ||
                             strcmp(key, "contexts") == 0;
                if (named && json_is_array(v)) {
                        if (!json_is_array(have)) {
                                if (json_object_set_new(merged, key, json_array()) < 0)
                                        return -ENOMEM;
                                have = json_object_get(merged, key);
                        }
                        size_t i;
                        json_t *it;
                        json_array_foreach(v, i, it) {
                                const char *n = jstr(it, "name");
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

static void exec_free(struct eg_kube_exec *e) {
        if (!e)
                return;
        free(e->api_version);
        free(e->command);
        eg_strv_free(e->args, EG_STRV_ALL);
        eg_strv_free(e->env, EG_STRV_ALL);
        free(e->token);
        free(e->cert_data);
        free(e->key_data);
        free(e);
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
        exec_free(c->exec);
        free(c);
}

static int decode_field(json_t *o, const char *key, char **ret, size_t *ret_len) {
        const char *s = jstr(o, key);
        if (!s || !*s)
                return 0;
        return eg_base64_decode(s, ret, ret_len);
}

static int exec_parse(json_t *ex, const char *where, struct eg_kube_exec **ret, struct eg_error *err) {
        struct eg_kube_exec *e = calloc(1, sizeof(*e));
        json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env");
        const char *mode = jstr(ex, "interactiveMode");
        int r = -ENOMEM;
        if (!e)
                return r;
        if ((r = dup_field(ex, "apiVersion", &e->api_version)) < 0 ||
            (r = dup_field(ex, "command", &e->command)) < 0)
                goto fail;
        r = -EINVAL;
        if (!e->command) {
                eg_error_set(err, "%s: exec has no command", where);
                goto fail;
        }
        if (!e->api_version || (strcmp(e->api_version, "client.authentication.k8s.io/v1") != 0 &&
                                strcmp(e->api_version, "client.authentication.k8s.io/v1beta1") != 0)) {
                eg_error_set(err, "%s: exec apiVersion %s is not supported (use client.authentication.k8s.io/v1 or v1beta1)",
                             where, e->api_version ? e->api_version : "(none)");
                goto fail;
        }
        if (mode && strcmp(mode, "Always") == 0) {
                eg_error_set(err, "%s: exec interactiveMode Always needs a terminal, which this daemon never has", where);
                goto fail;
        }
        e->provide_cluster_info = json_is_true(json_object_get(ex, "provideClusterInfo"));
        size_t na = json_is_array(args) ? json_array_size(args) : 0;
        size_t ne = json_is_array(env) ? json_array_size(env) : 0;
        r = -ENOMEM;
        e->args = calloc(na + 2, sizeof(char *));
        e->env = calloc(ne + 1, sizeof(char *));
        if (!e->args || !e->env || !(e->args[0] = strdup(e->command)))
                goto fail;
        for (size_t i = 0; i < na; i++) {
                json_t *a = json_array_get(args, i);
                if (!json_is_string(a)) {
                        eg_error_set(err, "%s: exec args[%zu] is not a string", where, i);
                        r = -EINVAL;
                        goto fail;
                }
                if (!(e->args[i + 1] = strdup(json_string_value(a))))
                        goto fail;
        }
        for (size_t i = 0; i < ne; i++) {
                json_t *it = json_array_get(env, i);
                const char *n = jstr(it, "name"), *v = jstr(it, "value");
                if (!n || !*n || strchr(n, '=')) {
                        eg_error_set(err, "%s: exec env[%zu] has no valid name", where, i);
                        r = -EINVAL;
                        goto fail;
                }
                if (!(e->env[i] = eg_strdup_printf("%s=%s", n, v ? v : "")))
                        goto fail;
        }
        *ret = e;
        return 0;
fail:
        exec_free(e);
        return r;
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

/* Fills the cluster and user parts of c from the merged document. */
static int resolve_context(json_t *merged, const char *want, struct eg_kube_config *c,
                           struct eg_error *err) {
        const char *ctxname = want && *want ? want : jstr(merged, "current-context");
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
        if (!(c->context = strdup(ctxname)) || dup_field(ctx, "namespace", &c->namespace) < 0)
                return -ENOMEM;
        const char *cname = jstr(ctx, "cluster"), *uname = jstr(ctx, "user");
        json_t *cl = json_object_get(named_find(json_object_get(merged, "clusters"), cname ? cname : ""), "cluster");
        if (!json_is_object(cl)) {
                eg_error_set(err, "%s: context %s names cluster %s, which is not defined", c->source,
                             ctxname, cname ? cname : "(none)");
                return -EINVAL;
        }
        if ((r = dup_field(cl, "server", &c->server)) < 0 ||
            (r = dup_field(cl, "certificate-authority", &c->ca_file)) < 0 ||
            (r = dup_field(cl, "tls-server-name", &c->tls_server_name)) < 0 ||
            (r = dup_field(cl, "proxy-url", &c->proxy_url)) < 0)
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
        json_t *u = json_object_get(named_find(json_object_get(merged, "users"), uname ? uname : ""), "user");
        if (!uname || !*uname)
                return 0; /* anonymous */
        if (!json_is_object(u)) {
                eg_error_set(err, "%s: context %s names user %s, which is not defined", c->source, ctxname, uname);
                return -EINVAL;
        }
        if ((r = dup_field(u, "client-certificate", &c->cert_file)) < 0 ||
            (r = dup_field(u, "client-key", &c->key_file)) < 0 ||
            (r = dup_field(u, "token", &c->token)) < 0 ||
            (r = dup_field(u, "tokenFile", &c->token_file)) < 0 ||
            (r = dup_field(u, "username", &c->username)) < 0 ||
            (r = dup_field(u, "password", &c->password)) < 0)
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
                if ((r = exec_parse(ex, where, &c->exec, err)) < 0)
                        return r;
        }
        if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data)) {
                eg_error_set(err, "%s: user %s has a client certificate without a key or the reverse", c->source, uname);
                return -EINVAL;
        }
        return 0;
}

static int load_in_cluster(const struct eg_kube_config_options *o, struct eg_kube_config *c,
                           struct eg_error *err) {
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

int eg_kube_config_load(const struct eg_kube_config_options *o, struct eg_kube_config **ret,
                        struct eg_error *err) {
        struct eg_kube_config_options none = {0};
        struct eg_kube_config *c = calloc(1, sizeof(*c));
        json_t *merged = json_object();
        char *list = NULL;
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
        } else {
                if (env && *env)
                        list = strdup(env);
                else if (getenv("HOME") && *getenv("HOME"))
                        list = eg_strdup_printf("%s/.kube/config", getenv("HOME"));
                else
                        list = strdup("");
                if (!list)
                        goto out;
                int n = 0;
                for (char *p = list, *next; p; p = next) {
                        json_t *doc = NULL;
                        next = strchr(p, ':');
                        if (next)
                                *next++ = 0;
                        if (!*p)
                                continue;
                        if (++n > MAX_KUBECONFIG_FILES) {
                                eg_error_set(err, "KUBECONFIG lists more than %d files", MAX_KUBECONFIG_FILES);
                                r = -EINVAL;
                                goto out;
                        }
                        r = load_one(p, &doc, err);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                goto out;
                        r = merge_into(merged, doc);
                        json_decref(doc);
                        if (r < 0)
                                goto out;
                        if (!found++ && !(c->source = strdup(p))) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
        }
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
        free(list);
        json_decref(merged);
        eg_kube_config_free(c);
        return r;
}

/* ---- exec credential plugins ---- */

/* "2006-01-02T15:04:05Z", with optional fraction and a Z or ±hh:mm offset. */
static int parse_rfc3339(const char *s, int64_t *ret_ms) {
        struct tm tm = {0};
        int consumed = 0;
        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                   &tm.tm_min, &tm.tm_sec, &consumed) != 6 || consumed == 0)
                return -EINVAL;
        const char *p = s + consumed;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        int64_t offset = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if (*p == '+' || *p == '-') {
                int hh, mm, n = 0;
                if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
                        return -EINVAL;
                offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
                p += 6;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_ms = ((int64_t)t - offset) * 1000;
        return 0;
}

static char *exec_info(const struct eg_kube_config *c) {
        json_t *spec = json_pack("{s:b}", "interactive", 0);
        if (spec && c->exec->provide_cluster_info) {
                json_t *cl = json_pack("{s:s, s:b}", "server", c->server, "insecure-skip-tls-verify",
                                       c->insecure_skip_tls_verify);
                if (cl && c->tls_server_name)
                        json_object_set_new(cl, "tls-server-name", json_string(c->tls_server_name));
                if (cl && c->proxy_url)
                        json_object_set_new(cl, "proxy-url", json_string(c->proxy_url));
                if (cl && c->ca_data)
                        json_object_set_new(cl, "certificate-authority-data", json_stringn(c->ca_data, c->ca_len));
                json_object_set_new(spec, "cluster", cl);
        }
        json_t *info = json_pack("{s:s, s:s, s:o}", "apiVersion", c->exec->api_version, "kind",
                                 "ExecCredential", "spec", spec);
        char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
        json_decref(info);
        return s;
}

/* Runs the plugin with stdin on /dev/null, collecting stdout within a deadline. */
static int exec_run(const struct eg_kube_config *c, struct eg_buf *out, struct eg_error *err) {
        const struct eg_kube_exec *e = c->exec;
        size_t nenv = 0, nextra = 0;
        while (environ[nenv])
                nenv++;
        while (e->env[nextra])
                nextra++;
        char **envp = calloc(nenv + nextra + 2, sizeof(char *));
        _cleanup_free_ char *info = exec_info(c);
        _cleanup_free_ char *info_env = info ? eg_strdup_printf("KUBERNETES_EXEC_INFO=%s", info) : NULL;
        posix_spawn_file_actions_t fa;
        int pipefd[2] = {-1, -1}, r, status = 0;
        pid_t pid = 0;
        if (!envp || !info_env) {
                free(envp);
                return -ENOMEM;
        }
        size_t k = 0;
        for (size_t i = 0; i < nenv; i++) {
                bool overridden = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;
                for (size_t j = 0; j < nextra && !overridden; j++) {
                        size_t l = strcspn(e->env[j], "=");
                        overridden = strncmp(environ[i], e->env[j], l + 1) == 0;
                }
                if (!overridden)
                        envp[k++] = environ[i];
        }
        for (size_t j = 0; j < nextra; j++)
                envp[k++] = e->env[j];
        envp[k++] = info_env;
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                free(envp);
                return r;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        r = -posix_spawnp(&pid, e->command, &fa, NULL, e->args, envp);
        posix_spawn_file_actions_destroy(&fa);
        free(envp);
        close(pipefd[1]);
        if (r < 0) {
                close(pipefd[0]);
                eg_error_set(err, "cannot run the exec credential plugin %s: %s", e->command, strerror(-r));
                return r;
        }
        int64_t deadline = eg_now_monotonic_ms() + EXEC_TIMEOUT_MS;
        for (;;) {
                int64_t left = deadline - eg_now_monotonic_ms();
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
                int n = poll(&pfd, 1, (int)left);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n == 0 ? -ETIMEDOUT : -errno;
                        break;
                }
                char chunk[4096];
                ssize_t got = read(pipefd[0], chunk, sizeof(chunk));
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0) {
                        r = got == 0 ? 0 : -errno;
                        break;
                }
                if ((r = eg_buf_append(out, chunk, (size_t)got)) < 0)
                        break;
        }
        close(pipefd[0]);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0) {
                eg_error_set(err, "exec credential plugin %s: %s", e->command,
                             r == -ETIMEDOUT ? "no answer within 60 s" : strerror(-r));
                return r;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                eg_error_set(err, "exec credential plugin %s failed (%s %d)", e->command,
                             WIFEXITED(status) ? "exit status" : "signal",
                             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                return -EIO;
        }
        return 0;
}

static int exec_refresh(struct eg_kube_config *c, struct eg_error *err) {
        struct eg_kube_exec *e = c->exec;
        struct eg_buf out;
        json_error_t je;
        int r;
        eg_buf_init(&out, EXEC_OUTPUT_MAX_BYTES);
        if ((r = exec_run(c, &out, err)) < 0) {
                eg_buf_done(&out);
                return r;
        }
        json_t *doc = json_loadb(out.data ? out.data : "", out.len, 0, &je);
        eg_buf_done(&out);
        json_t *st = json_object_get(doc, "status");
        const char *kind = jstr(doc, "kind"), *av = jstr(doc, "apiVersion");
        const char *token = jstr(st, "token"), *cert = jstr(st, "clientCertificateData"),
                   *key = jstr(st, "clientKeyData"), *exp = jstr(st, "expirationTimestamp");
        int64_t expiry = 0;
        r = -EBADMSG;
        if (!doc || !kind || strcmp(kind, "ExecCredential") != 0 || !json_is_object(st)) {
                eg_error_set(err, "exec credential plugin %s did not print an ExecCredential", e->command);
                goto out;
        }
        if (!av || strcmp(av, e->api_version) != 0) {
                eg_error_set(err, "exec credential plugin %s answered with apiVersion %s, not %s", e->command,
                             av ? av : "(none)", e->api_version);
                goto out;
        }
        if (!token && !(cert && key)) {
                eg_error_set(err, "exec credential plugin %s gave neither a token nor a client certificate and key",
                             e->command);
                goto out;
        }
        if (exp && parse_rfc3339(exp, &expiry) < 0) {
                eg_error_set(err, "exec credential plugin %s: expirationTimestamp %s is not RFC 3339", e->command, exp);
                goto out;
        }
        char *nt = token ? strdup(token) : NULL;
        char *nc = cert ? strdup(cert) : NULL, *nk = key ? strdup(key) : NULL;
        if ((token && !nt) || (cert && !nc) || (key && !nk)) {
                free(nt);
                free(nc);
                free(nk);
                r = -ENOMEM;
                goto out;
        }
        free(e->token);
        free(e->cert_data);
        free(e->key_data);
        e->token = nt;
        e->cert_data = nc;
        e->key_data = nk;
        e->cert_len = nc ? strlen(nc) : 0;
        e->key_len = nk ? strlen(nk) : 0;
        e->expiry_ms = exp ? expiry : 0;
        e->have = true;
        r = 0;
out:
        json_decref(doc);
        return r;
}

int eg_kube_config_credentials(struct eg_kube_config *c, bool refresh, struct eg_error *err) {
        struct eg_kube_credentials cr = {
                .token = c->token,
                .username = c->username,
                .password = c->password,
                .cert_file = c->cert_file,
                .key_file = c->key_file,
                .cert_data = c->cert_data,
                .key_data = c->key_data,
                .cert_len = c->cert_len,
                .key_len = c->key_len,
        };
        int r;
        if (c->token_file && !c->token) {
                /* re-read every time: projected service account tokens rotate */
                char *t = NULL;
                r = eg_read_file(c->token_file, TOKEN_MAX_BYTES, &t, NULL);
                if (r < 0) {
                        eg_error_set(err, "cannot read token file %s: %s", c->token_file, strerror(-r));
                        return r;
                }
                size_t l = strlen(t);
                while (l > 0 && (t[l - 1] == '\n' || t[l - 1] == '\r' || t[l - 1] == ' '))
                        t[--l] = 0;
                free(c->file_token);
                c->file_token = t;
                cr.token = t;
        }
        if (c->exec) {
                struct eg_kube_exec *e = c->exec;
                if (refresh || !e->have || (e->expiry_ms > 0 && eg_now_realtime_ms() >= e->expiry_ms)) {
                        if ((r = exec_refresh(c, err)) < 0)
                                return r;
                }
                if (e->token)
                        cr.token = e->token;
                if (e->cert_data) {
                        cr.cert_data = e->cert_data;
                        cr.cert_len = e->cert_len;
                        cr.key_data = e->key_data;
                        cr.key_len = e->key_len;
                        cr.cert_file = cr.key_file = NULL;
                }
        }
        c->cred = cr;
        return 0;
}
