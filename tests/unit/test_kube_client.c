/* Tests for the Kubernetes REST client and runtime against the API test server (tests/kube/apiserver.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"
#include "etcd-gitops/runtime.h"

extern char **environ;

#define START_TIMEOUT_MS 60000
#define POD_TIMEOUT_MS 90000

struct server {
        char dir[64];
        char *src;        /* source tree */
        char *ready_file; /* holds the URL once listening */
        char *kc_dir;
        pid_t pid;
        bool in_netns; /* pods can resolve cluster DNS names */
        bool available;
};

static struct server srv;

static char *kc(const char *name) { return eg_strdup_printf("%s/%s", srv.kc_dir, name); }

static bool ready_file_exists(void *userdata) {
        int status;
        if (waitpid(srv.pid, &status, WNOHANG) == srv.pid) {
                srv.pid = 0;
                *(int *)userdata = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
                return true;
        }
        return access(srv.ready_file, F_OK) == 0;
}

static int spawn_server(bool netns) {
        _cleanup_free_ char *script = eg_strdup_printf("%s/tests/kube/apiserver.py", srv.src);
        _cleanup_free_ char *netns_run = eg_strdup_printf("%s/tests/kube/netns-run.sh", srv.src);
        _cleanup_free_ char *state = eg_strdup_printf("%s/api", srv.dir);
        _cleanup_free_ char *tls = eg_strdup_printf("%s/tls", srv.dir);
        _cleanup_free_ char *rbac = eg_strdup_printf("%s/rbac.yaml", srv.dir);
        _cleanup_free_ char *hosts = eg_strdup_printf("%s/hosts", srv.dir);
        _cleanup_free_ char *log = eg_strdup_printf("%s/server.log", srv.dir);
        const char *rbac_yaml = "apiVersion: rbac.authorization.k8s.io/v1\n"
                                "kind: Role\n"
                                "metadata: {name: reader, namespace: default}\n"
                                "rules:\n"
                                "- apiGroups: [\"\"]\n"
                                "  resources: [pods, services]\n"
                                "  verbs: [get, list]\n"
                                "---\n"
                                "apiVersion: rbac.authorization.k8s.io/v1\n"
                                "kind: RoleBinding\n"
                                "metadata: {name: reader, namespace: default}\n"
                                "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n"
                                "subjects:\n"
                                "- {kind: User, name: reader}\n";
        assert_int_equal(eg_write_file_atomic(rbac, rbac_yaml, strlen(rbac_yaml), 0600), 0);
        char *argv[] = {netns ? "bash" : "python3",
                        netns ? netns_run : script,
                        netns ? hosts : NULL,
                        netns ? "python3" : NULL,
                        netns ? script : NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        NULL};
        size_t n = netns ? 5 : 2;
        char *rest[] = {"--state-dir",      state,
                        "--tls-dir",        tls,
                        "--ready-file",     srv.ready_file,
                        "--kubeconfig-out", srv.kc_dir,
                        "--token",          "reader-token:reader",
                        "--rbac",           rbac,
                        "--hosts-file",     hosts};
        for (size_t i = 0; i < EG_ELEMENTSOF(rest); i++)
                argv[n++] = rest[i];
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
        posix_spawnattr_t at;
        posix_spawnattr_init(&at);
        /* its own process group: teardown stops the server and every etcd it started */
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&at, 0);
        int r = posix_spawnp(&srv.pid, argv[0], &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        assert_int_equal(r, 0);
        int exit_code = -1;
        assert_int_equal(eg_wait_for(ready_file_exists, &exit_code, START_TIMEOUT_MS, 50), 0);
        return exit_code;
}

static int group_setup(void **state) {
        const char *src = getenv("EG_SOURCE_DIR");
        srv.src = strdup(src ? src : ".");
        _cleanup_free_ char *script = eg_strdup_printf("%s/tests/kube/apiserver.py", srv.src);
        if (access(script, F_OK) < 0) {
                fprintf(stderr, "# %s does not exist yet: Kubernetes client tests skipped\n", script);
                return 0;
        }
        snprintf(srv.dir, sizeof(srv.dir), "/tmp/eg-kube-client.XXXXXX");
        assert_non_null(mkdtemp(srv.dir));
        srv.ready_file = eg_strdup_printf("%s/ready", srv.dir);
        srv.kc_dir = eg_strdup_printf("%s/kubeconfigs", srv.dir);
        int code = spawn_server(true);
        if (code == 77) {
                fprintf(stderr,
                        "# no private mount namespace here: pods cannot resolve cluster names, runtime test skipped\n");
                code = spawn_server(false);
        } else
                srv.in_netns = true;
        assert_int_equal(code, -1);
        srv.available = true;
        return 0;
}

static int group_teardown(void **state) {
        if (srv.pid > 0) {
                kill(-srv.pid, SIGTERM);
                for (int i = 0; i < 100 && waitpid(srv.pid, NULL, WNOHANG) == 0; i++)
                        usleep(50000);
                kill(-srv.pid, SIGKILL);
                waitpid(srv.pid, NULL, 0);
        }
        if (*srv.dir)
                eg_rm_rf(srv.dir);
        free(srv.src);
        free(srv.ready_file);
        free(srv.kc_dir);
        return 0;
}

struct fixture {
        struct eg_kube_client *c;
        struct eg_error err;
};

/* A client from one of the server's kubeconfigs; with server_name, told to expect that
 * name in the server's certificate (tls-server-name). */
static struct eg_kube_client *client_named(const char *kubeconfig_name, const char *server_name) {
        _cleanup_free_ char *path = kc(kubeconfig_name);
        struct eg_kube_config_options o = {.kubeconfig = path};
        struct eg_kube_config *cfg = NULL;
        struct eg_error err = {0};
        if (eg_kube_config_load(&o, &cfg, &err) < 0)
                fail_msg("load %s: %s", path, err.message);
        if (server_name) {
                free(cfg->tls_server_name);
                cfg->tls_server_name = strdup(server_name);
        }
        struct eg_kube_client_options co = {.timeout_ms = 10000, .retry_base_ms = 50};
        struct eg_kube_client *c = NULL;
        if (eg_kube_client_new(cfg, &co, &c, &err) < 0)
                fail_msg("client: %s", err.message);
        return c;
}

static struct eg_kube_client *client_for(const char *kubeconfig_name) { return client_named(kubeconfig_name, NULL); }

static int setup(void **state) {
        if (!srv.available)
                skip();
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        fx->c = client_for("admin.kubeconfig");
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        struct fixture *fx = *state;
        if (!fx)
                return 0;
        eg_kube_client_free(fx->c);
        eg_error_done(&fx->err);
        free(fx);
        return 0;
}

static json_t *service(const char *name, const char *app, int port) {
        return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:[{s:s, s:i}], s:{s:s}}}", "apiVersion", "v1", "kind",
                         "Service", "metadata", "name", name, "labels", "app", app, "spec", "ports", "name", "client",
                         "port", port, "selector", "app", app);
}

static const char *ann(json_t *o, const char *key) {
        return json_string_value(json_object_get(json_object_get(json_object_get(o, "metadata"), "annotations"), key));
}

#define SVCS "/api/v1/namespaces/default/services"

static void test_kube_client__crud(void **state) {
        struct fixture *fx = *state;
        json_t *s = service("crud-a", "crud", 2379), *got = NULL;
        assert_int_equal(eg_kube_create(fx->c, SVCS, s, &got, &fx->err), 0);
        assert_non_null(json_object_get(got, "metadata"));
        json_decref(got);
        /* a second create: AlreadyExists */
        assert_int_equal(eg_kube_create(fx->c, SVCS, s, NULL, &fx->err), -EEXIST);
        assert_non_null(strstr(fx->err.message, "AlreadyExists"));
        json_decref(s);

        assert_int_equal(eg_kube_get(fx->c, SVCS "/crud-a", &got, &fx->err), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(got, "metadata"), "name")), "crud-a");
        json_decref(got);

        json_t *patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "k", "merged");
        assert_int_equal(eg_kube_patch(fx->c, SVCS "/crud-a", EG_KUBE_PATCH_MERGE, patch, &got, &fx->err), 0);
        assert_string_equal(ann(got, "k"), "merged");
        json_decref(got);
        json_decref(patch);
        /* strategic merge keys ports by their port number: a new one is added, not a replacement */
        patch = json_pack("{s:{s:[{s:s, s:i}]}}", "spec", "ports", "name", "peer", "port", 2380);
        assert_int_equal(eg_kube_patch(fx->c, SVCS "/crud-a", EG_KUBE_PATCH_STRATEGIC, patch, &got, &fx->err), 0);
        assert_int_equal(json_array_size(json_object_get(json_object_get(got, "spec"), "ports")), 2);
        json_decref(got);
        json_decref(patch);

        assert_int_equal(eg_kube_delete(fx->c, SVCS "/crud-a", 0, "Background", &fx->err), 0);
        assert_int_equal(eg_kube_get(fx->c, SVCS "/crud-a", NULL, &fx->err), -ENOENT);
        assert_non_null(strstr(fx->err.message, "HTTP 404 NotFound"));
        assert_non_null(strstr(fx->err.message, "\"crud-a\" not found"));
        assert_int_equal(eg_kube_delete(fx->c, SVCS "/crud-a", -1, NULL, &fx->err), -ENOENT);
}

struct watch_seen {
        size_t lines;
        bool cancel_after_first;
        struct eg_buf buf;
};

static int watch_data(const char *p, size_t n, void *userdata) {
        struct watch_seen *w = userdata;
        for (size_t i = 0; i < n; i++)
                w->lines += p[i] == '\n';
        return eg_buf_append(&w->buf, p, n);
}

static bool watch_cancelled(void *userdata) {
        const struct watch_seen *w = userdata;
        return w->cancel_after_first && w->lines > 0;
}

static void test_kube_client__watch(void **state) {
        struct fixture *fx = *state;
        json_t *s = service("watch-a", "watch", 2379);
        assert_int_equal(eg_kube_create(fx->c, SVCS, s, NULL, &fx->err), 0);
        json_decref(s);
        struct watch_seen seen = {0};
        eg_buf_init(&seen.buf, 1 << 20);
        const struct eg_kube_watcher w = {.on_data = watch_data, .cancelled = watch_cancelled, .userdata = &seen};
        /* the server ends the watch after its timeout: no error, the caller watches again */
        assert_int_equal(eg_kube_watch(fx->c, SVCS "?watch=1&timeoutSeconds=1", 10000, &w, &fx->err), 0);
        assert_true(seen.lines >= 1);
        assert_non_null(memmem(seen.buf.data, seen.buf.len, "\"watch-a\"", 9));
        /* the client's own deadline ends it the same way */
        assert_int_equal(eg_kube_watch(fx->c, SVCS "?watch=1&timeoutSeconds=30", 1500, &w, &fx->err), 0);
        /* cancelled: over within about a second, though the server would go on for a minute */
        seen.lines = 0;
        seen.cancel_after_first = true;
        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_kube_watch(fx->c, SVCS "?watch=1&timeoutSeconds=60", 90000, &w, &fx->err), -ECANCELED);
        assert_true(eg_now_monotonic_ms() - t0 < 10000);
        /* refused: the verb and the binding to add, as for any request */
        struct eg_kube_client *reader = client_for("reader.kubeconfig");
        seen.cancel_after_first = false;
        assert_int_equal(eg_kube_watch(reader, "/api/v1/pods?watch=1&timeoutSeconds=1", 10000, &w, &fx->err), -EACCES);
        assert_true(eg_str_has_prefix(fx->err.message, "forbidden: User \"reader\" cannot watch pods in every "
                                                       "namespace (cluster-wide): "));
        eg_kube_client_free(reader);
        eg_buf_done(&seen.buf);
}

static void test_kube_client__invalid(void **state) {
        struct fixture *fx = *state;
        json_t *s = service("bad-port", "bad", 70000);
        assert_int_equal(eg_kube_create(fx->c, SVCS, s, NULL, &fx->err), -EINVAL);
        assert_non_null(strstr(fx->err.message, "HTTP 422 Invalid"));
        assert_non_null(strstr(fx->err.message, "spec.ports[0].port"));
        json_decref(s);
}

static void test_kube_client__pagination(void **state) {
        struct fixture *fx = *state;
        char name[96];
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "page-%d", i);
                json_t *s = service(name, i < 4 ? "paged" : "other", 2379);
                assert_int_equal(eg_kube_create(fx->c, SVCS, s, NULL, &fx->err), 0);
                json_decref(s);
        }
        json_t *items = NULL;
        assert_int_equal(eg_kube_list(fx->c, SVCS, "app=paged", 1, &items, &fx->err), 0);
        assert_int_equal(json_array_size(items), 4);
        for (size_t i = 0; i < 4; i++) {
                snprintf(name, sizeof(name), "page-%zu", i);
                assert_string_equal(json_string_value(json_object_get(
                                            json_object_get(json_array_get(items, i), "metadata"), "name")),
                                    name);
        }
        json_decref(items);
        assert_int_equal(eg_kube_list(fx->c, SVCS, "app in (paged,other)", 2, &items, &fx->err), 0);
        assert_int_equal(json_array_size(items), 5);
        json_decref(items);
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), SVCS "/page-%d", i);
                assert_int_equal(eg_kube_delete(fx->c, name, 0, NULL, &fx->err), 0);
        }
}

struct racer {
        struct eg_kube_client *other;
        int calls;
};

/* Writes the object behind the updater's back on the first call, so its PUT conflicts. */
static int racing_mutate(json_t *obj, void *userdata) {
        struct racer *r = userdata;
        if (r->calls++ == 0) {
                json_t *p = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "racer", "was here");
                assert_int_equal(eg_kube_patch(r->other, SVCS "/conflict", EG_KUBE_PATCH_MERGE, p, NULL, NULL), 0);
                json_decref(p);
        }
        json_t *a = json_object_get(obj, "metadata");
        if (!json_object_get(a, "annotations"))
                json_object_set_new(a, "annotations", json_object());
        json_object_set_new(json_object_get(a, "annotations"), "mine", json_string("set"));
        return 0;
}

static void test_kube_client__conflict_retried(void **state) {
        struct fixture *fx = *state;
        json_t *s = service("conflict", "conflict", 2379), *got = NULL;
        assert_int_equal(eg_kube_create(fx->c, SVCS, s, &got, &fx->err), 0);
        json_decref(s);
        /* a PUT with the old resourceVersion after a change: Conflict */
        json_t *p = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", "bump", "1");
        assert_int_equal(eg_kube_patch(fx->c, SVCS "/conflict", EG_KUBE_PATCH_MERGE, p, NULL, &fx->err), 0);
        json_decref(p);
        assert_int_equal(eg_kube_replace(fx->c, SVCS "/conflict", got, NULL, &fx->err), -ESTALE);
        assert_non_null(strstr(fx->err.message, "HTTP 409 Conflict"));
        json_decref(got);

        struct racer r = {.other = client_for("admin.kubeconfig")};
        assert_int_equal(eg_kube_update(fx->c, SVCS "/conflict", racing_mutate, &r, &got, &fx->err), 0);
        assert_int_equal(r.calls, 2);
        assert_string_equal(ann(got, "racer"), "was here");
        assert_string_equal(ann(got, "mine"), "set");
        json_decref(got);
        eg_kube_client_free(r.other);
        assert_int_equal(eg_kube_delete(fx->c, SVCS "/conflict", 0, NULL, &fx->err), 0);
}

/* The test server answers the next `requests` requests with `code` (POST /testing/throttle). */
static void throttle(struct fixture *fx, int requests, int code, int retry_after_s) {
        json_t *t = retry_after_s >= 0 ? json_pack("{s:i, s:i, s:i}", "requests", requests, "code", code,
                                                   "retryAfterSeconds", retry_after_s)
                                       : json_pack("{s:i, s:i}", "requests", requests, "code", code);
        assert_int_equal(eg_kube_request(fx->c, "POST", "/testing/throttle", t, NULL, NULL, NULL, &fx->err), 0);
        json_decref(t);
}

static void test_kube_client__throttled_retried(void **state) {
        struct fixture *fx = *state;
        json_t *items = NULL;
        /* 429 with Retry-After (API Priority and Fairness): waited out as the server asks */
        throttle(fx, 2, 429, 1);
        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_kube_list(fx->c, SVCS, NULL, 0, &items, &fx->err), 0);
        int64_t took = eg_now_monotonic_ms() - t0;
        assert_true(took >= 1900 && took < 5000);
        json_decref(items);

        /* 503 without Retry-After: backed off from retry_base_ms (50), doubling */
        throttle(fx, 3, 503, -1);
        t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_kube_list(fx->c, SVCS, NULL, 0, &items, &fx->err), 0);
        took = eg_now_monotonic_ms() - t0;
        assert_true(took >= 50 + 100 + 200 && took < 2000);
        json_decref(items);

        /* more than max_retries (5): the caller gets a clear error, and the next pass retries */
        throttle(fx, 100, 429, 0);
        assert_int_equal(eg_kube_list(fx->c, SVCS, NULL, 0, &items, &fx->err), -EAGAIN);
        assert_non_null(strstr(fx->err.message, "HTTP 429 TooManyRequests: Too many requests"));
        throttle(fx, 0, 429, -1);
        assert_int_equal(eg_kube_list(fx->c, SVCS, NULL, 0, &items, &fx->err), 0);
        json_decref(items);
}

/* tls-server-name: the name checked in the server's certificate (SANs 127.0.0.1, ::1 and
 * localhost), while the connection still goes to the server's address */
static void test_kube_client__tls_server_name(void **state) {
        struct fixture *fx = *state;
        json_t *items = NULL;
        struct eg_kube_client *c = client_named("admin.kubeconfig", "localhost");
        assert_int_equal(eg_kube_list(c, SVCS, NULL, 0, &items, &fx->err), 0);
        json_decref(items);
        eg_kube_client_free(c);
        c = client_named("admin.kubeconfig", "elsewhere.example");
        assert_true(eg_kube_list(c, SVCS, NULL, 0, &items, &fx->err) < 0);
        assert_non_null(strstr(fx->err.message, "elsewhere.example"));
        eg_kube_client_free(c);
}

static void test_kube_client__forbidden_and_unauthorized(void **state) {
        struct fixture *fx = *state;
        struct eg_kube_client *reader = client_for("reader.kubeconfig");
        json_t *items = NULL;
        assert_int_equal(eg_kube_list(reader, "/api/v1/namespaces/default/pods", NULL, 0, &items, &fx->err), 0);
        json_decref(items);
        json_t *body = json_object();
        assert_int_equal(eg_kube_request(reader, "POST",
                                         "/api/v1/namespaces/default/pods/example-0:2379/proxy/v3/cluster/member/list",
                                         body, NULL, NULL, NULL, &fx->err),
                         -EACCES);
        /* verb, resource, namespace, and the binding that grants them, as a command to run */
        assert_string_equal(
                fx->err.message,
                "forbidden: User \"reader\" cannot create pods/proxy in namespace default: bind the "
                "ClusterRole etcd-gitops-runtime of examples/kubernetes/rbac.yaml there with a RoleBinding: "
                "kubectl create rolebinding etcd-gitops-runtime --namespace default --clusterrole "
                "etcd-gitops-runtime --user reader");
        json_decref(body);
        assert_int_equal(
                eg_kube_delete(reader, "/apis/policy/v1/namespaces/kube-x/poddisruptionbudgets/a", -1, NULL, &fx->err),
                -EACCES);
        assert_true(eg_str_has_prefix(fx->err.message, "forbidden: User \"reader\" cannot delete "
                                                       "poddisruptionbudgets.policy in namespace kube-x: bind"));
        /* across namespaces: a ClusterRoleBinding, or one namespace at a time */
        assert_int_equal(eg_kube_list(reader, "/api/v1/pods", NULL, 0, &items, &fx->err), -EACCES);
        assert_string_equal(
                fx->err.message,
                "forbidden: User \"reader\" cannot list pods in every namespace (cluster-wide): bind the "
                "ClusterRole etcd-gitops-runtime of examples/kubernetes/rbac.yaml with a ClusterRoleBinding "
                "(kubectl create clusterrolebinding etcd-gitops-runtime --clusterrole etcd-gitops-runtime "
                "--user reader), or look in one namespace with -n NAMESPACE");
        assert_int_equal(eg_kube_get(reader, "/api/v1/pods?watch=1&timeoutSeconds=1", NULL, &fx->err), -EACCES);
        assert_true(eg_str_has_prefix(fx->err.message, "forbidden: User \"reader\" cannot watch pods in every "
                                                       "namespace (cluster-wide): "));
        eg_kube_client_free(reader);

        /* a token the server does not know */
        struct eg_kube_client *bad = client_for("reader.kubeconfig");
        struct eg_kube_config *cfg = eg_kube_client_config(bad);
        free(cfg->token);
        cfg->token = strdup("nobody");
        assert_int_equal(eg_kube_get(bad, SVCS, NULL, &fx->err), -EPERM);
        assert_non_null(strstr(fx->err.message, "unauthorized"));
        eg_kube_client_free(bad);
}

static void test_kube_client__client_certificate(void **state) {
        struct fixture *fx = *state;
        struct eg_kube_client *c = client_for("cert.kubeconfig");
        json_t *items = NULL;
        assert_int_equal(eg_kube_list(c, "/api/v1/namespaces", NULL, 0, &items, &fx->err), 0);
        assert_true(json_array_size(items) >= 1);
        json_decref(items);

        /* etcd access through the proxy: the data lands in 0600 files, read back equal */
        _cleanup_free_ char *dir = eg_strdup_printf("%s/access", srv.dir);
        struct eg_kube_access eo = {0};
        assert_int_equal(eg_kube_client_access(c, dir, &eo, &fx->err), 0);
        assert_null(eo.headers);
        struct eg_kube_config *cfg = eg_kube_client_config(c);
        const char *files[] = {eo.tls.ca_file, eo.tls.cert_file, eo.tls.key_file};
        const char *data[] = {cfg->ca_data, cfg->cred.cert_data, cfg->cred.key_data};
        for (size_t i = 0; i < 3; i++) {
                struct stat st;
                _cleanup_free_ char *got = NULL;
                assert_non_null(files[i]);
                assert_int_equal(stat(files[i], &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                assert_int_equal(eg_read_file(files[i], 1 << 20, &got, NULL), 0);
                assert_string_equal(got, data[i]);
        }
        eg_kube_client_free(c);

        struct eg_kube_access to = {0};
        assert_int_equal(eg_kube_client_access(fx->c, dir, &to, &fx->err), 0);
        assert_non_null(to.headers);
        assert_string_equal(to.headers[0], "Authorization: Bearer admin");
        assert_null(to.headers[1]);
        assert_null(to.tls.cert_file);
        _cleanup_free_ char *url = eg_kube_pod_proxy_url(fx->c, "ns1", "m-0", 2379, true);
        _cleanup_free_ char *want = eg_strdup_printf("%s/api/v1/namespaces/ns1/pods/https:m-0:2379/proxy",
                                                     eg_kube_client_config(fx->c)->server);
        assert_string_equal(url, want);
}

/* ---- the runtime, end to end ---- */

struct pods_ready {
        struct eg_kube_client *c;
        size_t want;
};

static bool all_pods_ready(void *userdata) {
        struct pods_ready *p = userdata;
        json_t *items = NULL;
        size_t ready = 0, i;
        json_t *pod;
        if (eg_kube_list(p->c, "/api/v1/namespaces/default/pods", "app=etcd,etcd_cluster=kt", 0, &items, NULL) < 0)
                return false;
        json_array_foreach(items, i, pod) {
                json_t *st = json_object_get(pod, "status"), *cond;
                size_t j;
                if (strcmp(json_string_value(json_object_get(st, "phase")) ?: "", "Running") != 0)
                        continue;
                json_array_foreach(json_object_get(st, "conditions"), j, cond) {
                        if (strcmp(json_string_value(json_object_get(cond, "type")) ?: "", "Ready") == 0 &&
                            strcmp(json_string_value(json_object_get(cond, "status")) ?: "", "True") == 0)
                                ready++;
                }
        }
        bool ok = json_array_size(items) == p->want && ready == p->want;
        json_decref(items);
        return ok;
}

struct members_seen {
        struct eg_runtime *rt;
        size_t want;
        struct eg_etcd_member_list ml;
};

static bool etcd_members(void *userdata) {
        struct members_seen *m = userdata;
        struct eg_runtime_cluster c = {0};
        struct eg_etcd_options eo = {.timeout_ms = 3000};
        struct eg_etcd *e = NULL;
        bool ok = false;
        if (eg_runtime_observe(m->rt, "default", "kt", &c, NULL) < 0)
                return false;
        char **urls = calloc(c.n_members + 1, sizeof(char *));
        for (size_t i = 0; i < c.n_members; i++)
                urls[i] = c.members[i].client_url;
        eg_etcd_member_list_done(&m->ml);
        if (eg_runtime_etcd_access(m->rt, "default", "kt", &eo, NULL) >= 0 &&
            eg_etcd_new(urls, c.n_members, &eo, &e) >= 0 && eg_etcd_member_list(e, &m->ml, NULL) >= 0)
                ok = m->ml.n == m->want;
        eg_etcd_free(e);
        free(urls);
        eg_runtime_cluster_done(&c);
        return ok;
}

static void test_kube_client__runtime_bootstrap(void **state) {
        struct fixture *fx = *state;
        if (!srv.in_netns)
                skip();
        _cleanup_free_ char *kcp = kc("admin.kubeconfig");
        _cleanup_free_ char *sd = eg_strdup_printf("%s/eg-state", srv.dir);
        struct eg_runtime_kube_options o = {.state_dir = sd, .kubeconfig = kcp, .namespace = "default"};
        struct eg_runtime *rt = NULL;
        if (eg_runtime_kube_new(&o, &rt, &fx->err) < 0)
                fail_msg("runtime: %s", fx->err.message);
        assert_string_equal(eg_runtime_name(rt), "kubernetes");
        struct eg_cluster_spec spec = {.size = 3, .version = "3.4.23", .repository = "quay.io/coreos/etcd"};
        struct eg_runtime_target t = {.namespace = "default", .name = "kt", .spec = &spec, .revision = "rev-1"};
        struct eg_runtime_cluster c = {0};
        assert_int_equal(eg_runtime_observe(rt, "default", "kt", &c, &fx->err), -ENOENT);

        char *members[] = {"kt-0", "kt-1", "kt-2"};
        if (eg_runtime_bootstrap(rt, &t, members, 3, &fx->err) < 0)
                fail_msg("bootstrap: %s", fx->err.message);
        assert_int_equal(eg_runtime_bootstrap(rt, &t, members, 3, &fx->err), -EEXIST);

        /* the objects upstream made */
        json_t *pod = NULL, *svc = NULL, *pdb = NULL;
        assert_int_equal(eg_kube_get(fx->c, "/api/v1/namespaces/default/pods/kt-1", &pod, &fx->err), 0);
        json_t *meta = json_object_get(pod, "metadata"), *pspec = json_object_get(pod, "spec");
        assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "labels"), "etcd_node")), "kt-1");
        assert_string_equal(ann(pod, "etcd.version"), "3.4.23");
        assert_string_equal(ann(pod, "etcd-gitops/revision"), "rev-1");
        _cleanup_free_ char *hash = eg_runtime_member_hash(rt, &spec);
        assert_string_equal(ann(pod, "etcd-gitops/spec-hash"), hash);
        assert_string_equal(json_string_value(json_object_get(pspec, "hostname")), "kt-1");
        assert_string_equal(json_string_value(json_object_get(pspec, "subdomain")), "kt");
        assert_string_equal(json_string_value(json_object_get(pspec, "restartPolicy")), "Never");
        json_t *ctr = json_array_get(json_object_get(pspec, "containers"), 0);
        assert_string_equal(json_string_value(json_object_get(ctr, "image")), "quay.io/coreos/etcd:v3.4.23");
        json_t *cmd = json_object_get(ctr, "command");
        assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/usr/local/bin/etcd");
        assert_string_equal(json_string_value(json_array_get(cmd, 3)),
                            "--initial-advertise-peer-urls=http://kt-1.kt.default.svc:2380");
        assert_string_equal(
                json_string_value(json_array_get(cmd, 7)),
                "--initial-cluster=kt-0=http://kt-0.kt.default.svc:2380,kt-1=http://kt-1.kt.default.svc:2380,"
                "kt-2=http://kt-2.kt.default.svc:2380");
        assert_string_equal(json_string_value(json_array_get(cmd, 8)), "--initial-cluster-state=new");
        json_decref(pod);
        assert_int_equal(eg_kube_get(fx->c, SVCS "/kt-client", &svc, &fx->err), 0);
        assert_string_equal(ann(svc, "etcd-gitops/next-index"), "3");
        json_decref(svc);
        assert_int_equal(
                eg_kube_get(fx->c, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/kt", &pdb, &fx->err), 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(pdb, "spec"), "minAvailable")), 2);
        json_decref(pdb);

        struct pods_ready pr = {.c = fx->c, .want = 3};
        assert_int_equal(eg_wait_for(all_pods_ready, &pr, POD_TIMEOUT_MS, 200), 0);
        struct members_seen ms = {.rt = rt, .want = 3};
        assert_int_equal(eg_wait_for(etcd_members, &ms, POD_TIMEOUT_MS, 500), 0);
        for (size_t i = 0; i < ms.ml.n; i++) {
                const struct eg_etcd_member *em = &ms.ml.members[i];
                _cleanup_free_ char *want = eg_strdup_printf("http://%s.kt.default.svc:2380", em->name);
                assert_true(eg_str_has_prefix(em->name, "kt-"));
                assert_false(em->is_learner);
                assert_int_equal(em->n_peer_urls, 1);
                assert_string_equal(em->peer_urls[0], want);
        }
        eg_etcd_member_list_done(&ms.ml);

        /* observe: members by name, proxy URLs, hash and version from the annotations */
        assert_int_equal(eg_runtime_observe(rt, "default", "kt", &c, &fx->err), 0);
        assert_int_equal(c.n_members, 3);
        assert_int_equal(c.next_index, 3);
        _cleanup_free_ char *url0 = eg_kube_pod_proxy_url(fx->c, "default", "kt-0", 2379, false);
        assert_string_equal(c.members[0].name, "kt-0");
        assert_string_equal(c.members[0].client_url, url0);
        assert_string_equal(c.members[0].peer_url, "http://kt-0.kt.default.svc:2380");
        assert_string_equal(c.members[0].spec_hash, hash);
        assert_string_equal(c.members[0].version, "3.4.23");
        assert_true(c.members[0].running);
        assert_true(c.members[0].started_realtime_ms > 0);
        eg_runtime_cluster_done(&c);

        /* a deleted service comes back on the next observe; an edited one is repaired */
        assert_int_equal(eg_kube_delete(fx->c, SVCS "/kt", 0, NULL, &fx->err), 0);
        json_t *p = json_pack("{s:{s:{s:s}}}", "spec", "selector", "app", "other");
        assert_int_equal(eg_kube_patch(fx->c, SVCS "/kt-client", EG_KUBE_PATCH_MERGE, p, NULL, &fx->err), 0);
        json_decref(p);
        assert_int_equal(eg_runtime_observe(rt, "default", "kt", &c, &fx->err), 0);
        eg_runtime_cluster_done(&c);
        assert_int_equal(eg_kube_get(fx->c, SVCS "/kt", &svc, &fx->err), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(svc, "spec"), "clusterIP")), "None");
        json_decref(svc);
        assert_int_equal(eg_kube_get(fx->c, SVCS "/kt-client", &svc, &fx->err), 0);
        assert_string_equal(
                json_string_value(json_object_get(json_object_get(json_object_get(svc, "spec"), "selector"), "app")),
                "etcd");
        json_decref(svc);

        /* list finds the cluster */
        struct eg_runtime_cluster *all = NULL;
        size_t n = 0;
        assert_int_equal(eg_runtime_list(rt, NULL, 0, &all, &n, &fx->err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(all[0].name, "kt");
        assert_int_equal(all[0].n_members, 3);
        eg_runtime_clusters_free(all, n);

        assert_int_equal(eg_runtime_delete_cluster(rt, "default", "kt", true, &fx->err), 0);
        assert_int_equal(eg_kube_get(fx->c, SVCS "/kt-client", NULL, &fx->err), -ENOENT);
        pr.want = 0;
        assert_int_equal(eg_wait_for(all_pods_ready, &pr, POD_TIMEOUT_MS, 200), 0);
        assert_int_equal(eg_runtime_delete_cluster(rt, "default", "kt", true, &fx->err), -ENOENT);
        eg_runtime_free(rt);
}

static struct eg_runtime *runtime_as(const char *kubeconfig, const char *state_dir) {
        _cleanup_free_ char *kcp = kc(kubeconfig);
        struct eg_runtime_kube_options o = {.state_dir = state_dir, .kubeconfig = kcp};
        struct eg_runtime *rt = NULL;
        struct eg_error err = {0};
        if (eg_runtime_kube_new(&o, &rt, &err) < 0)
                fail_msg("runtime: %s", err.message);
        return rt;
}

/* list: which namespaces, from whose RoleBinding */
static size_t listed(struct eg_runtime *rt, const char *const *nss, size_t n, int want_r, struct eg_error *err) {
        struct eg_runtime_cluster *all = NULL;
        size_t got = 0;
        eg_error_done(err);
        assert_int_equal(eg_runtime_list(rt, nss, n, &all, &got, err), want_r);
        eg_runtime_clusters_free(all, got);
        return got;
}

/* Credentials bound in one namespace only (reader: a RoleBinding in default) may not list
 * every namespace: the runtime looks in the namespaces the source names and those it
 * remembers, and names the grant a namespace lacks. */
static void test_kube_client__runtime_namespaced(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *sd = eg_strdup_printf("%s/eg-ns-state", srv.dir);
        json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}}, s:{s:[{s:s, s:s, s:[s]}]}}", "apiVersion", "v1",
                                "kind", "Pod", "metadata", "name", "ks-0", "labels", "app", "etcd", "etcd_cluster",
                                "ks", "etcd_node", "ks-0", "spec", "containers", "name", "etcd", "image",
                                "quay.io/coreos/etcd:v3.4.23", "command", "true");
        assert_int_equal(eg_kube_create(fx->c, "/api/v1/namespaces/default/pods", pod, NULL, &fx->err), 0);
        json_decref(pod);
        struct eg_runtime *reader = runtime_as("reader.kubeconfig", sd);
        const char *const in_default[] = {"default"};

        /* no source and nothing remembered: no guess, the way out */
        listed(reader, NULL, 0, -EACCES, &fx->err);
        assert_non_null(strstr(fx->err.message, "cannot list pods in every namespace (cluster-wide)"));
        assert_non_null(strstr(fx->err.message, "or look in one namespace with -n NAMESPACE"));
        assert_non_null(strstr(fx->err.message, "no namespace is known to look in instead"));

        /* the source's namespace; the cluster found there is remembered */
        assert_int_equal(listed(reader, in_default, 1, 0, &fx->err), 1);
        assert_null(fx->err.message);
        _cleanup_free_ char *mark = eg_strdup_printf("%s/kube/namespaces/default/ks", sd);
        assert_int_equal(access(mark, F_OK), 0);
        /* so it is found with a source that no longer names it */
        assert_int_equal(listed(reader, in_default, 0, 0, &fx->err), 1);

        /* a namespace the source names without a grant there: skipped, the rest goes on, and the
         * warning names verb, resource, namespace and the binding to add */
        const char *const both[] = {"kube-x", "default"};
        assert_int_equal(listed(reader, both, 2, 0, &fx->err), 1);
        assert_non_null(fx->err.message);
        assert_non_null(strstr(fx->err.message, "cannot look in namespace kube-x, which the source names: forbidden: "
                                                "User \"reader\" cannot list pods in namespace kube-x: bind the "
                                                "ClusterRole etcd-gitops-runtime of examples/kubernetes/rbac.yaml "
                                                "there with a RoleBinding: kubectl create rolebinding "
                                                "etcd-gitops-runtime --namespace kube-x --clusterrole "
                                                "etcd-gitops-runtime --user reader"));

        /* one only remembered (deleted with its RoleBinding): skipped, said, the rest goes on */
        _cleanup_free_ char *gone = eg_strdup_printf("%s/kube/namespaces/kube-y", sd);
        _cleanup_free_ char *gone_mark = eg_strdup_printf("%s/old", gone);
        assert_int_equal(eg_mkdir_p(gone, 0700), 0);
        assert_int_equal(eg_write_file_atomic(gone_mark, "", 0, 0600), 0);
        assert_int_equal(listed(reader, in_default, 1, 0, &fx->err), 1);
        assert_non_null(fx->err.message);
        assert_non_null(strstr(fx->err.message, "cannot look in namespace kube-y, where etcd-gitops made clusters "
                                                "(they are neither listed nor pruned): forbidden: "));
        assert_non_null(strstr(fx->err.message, gone));

        /* deleted: forgotten, so a source naming nothing finds nothing to prune there */
        struct eg_runtime *admin = runtime_as("admin.kubeconfig", sd);
        assert_int_equal(eg_runtime_delete_cluster(admin, "default", "ks", true, &fx->err), 0);
        assert_int_equal(access(mark, F_OK), -1);
        assert_int_equal(unlink(gone_mark), 0);
        assert_int_equal(listed(reader, in_default, 0, 0, &fx->err), 0);
        assert_null(fx->err.message);
        eg_runtime_free(admin);
        eg_runtime_free(reader);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_kube_client__crud, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__invalid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__watch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__pagination, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__conflict_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__throttled_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__tls_server_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__forbidden_and_unauthorized, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__client_certificate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__runtime_bootstrap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kube_client__runtime_namespaced, setup, teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
