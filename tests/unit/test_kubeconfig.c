/* Tests for kubeconfig loading: merging, contexts, certificate data and files, proxy-url, tokens, exec plugins, in-cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"

#define DATA EG_TEST_DATA "/kube"

struct fixture {
        char dir[64];
        struct eg_kube_config *cfg;
        struct eg_error err;
};

static int setup(void **state) {
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/eg-kubeconfig.XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        unsetenv("KUBECONFIG");
        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBERNETES_SERVICE_PORT");
        unsetenv("EG_TEST_EXPIRY");
        setenv("HOME", fx->dir, 1);
        setenv("EG_TEST_EXEC_DIR", fx->dir, 1);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        struct fixture *fx = *state;
        eg_kube_config_free(fx->cfg);
        eg_error_done(&fx->err);
        eg_rm_rf(fx->dir);
        free(fx);
        return 0;
}

static int load(struct fixture *fx, const char *file, const char *context) {
        eg_kube_config_free(fx->cfg);
        fx->cfg = NULL;
        eg_error_done(&fx->err);
        struct eg_kube_config_options o = {.kubeconfig = file, .context = context};
        return eg_kube_config_load(&o, &fx->cfg, &fx->err);
}

static char *slurp(const char *dir, const char *name) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        char *data = NULL;
        assert_int_equal(eg_read_file(p, 1 << 20, &data, NULL), 0);
        return data;
}

static void test_kubeconfig__merge_first_file_wins(void **state) {
        struct fixture *fx = *state;
        setenv("KUBECONFIG", DATA "/missing.yaml:" DATA "/a.yaml:" DATA "/b.yaml", 1);
        assert_int_equal(load(fx, NULL, NULL), 0);
        assert_string_equal(fx->cfg->source, DATA "/a.yaml");
        assert_string_equal(fx->cfg->context, "ctx-a");
        assert_string_equal(fx->cfg->server, "https://a.example:6443");
        assert_string_equal(fx->cfg->namespace, "ns-a");
        assert_string_equal(fx->cfg->ca_file, DATA "/ca.pem");
        assert_string_equal(fx->cfg->tls_server_name, "api.a.example");
        assert_string_equal(fx->cfg->token, "tok-a");
        assert_false(fx->cfg->insecure_skip_tls_verify);

        /* b's ctx-shared loses to a's, which names c1 (a's too) and u1 */
        assert_int_equal(load(fx, NULL, "ctx-shared"), 0);
        assert_string_equal(fx->cfg->server, "https://a.example:6443");
        assert_string_equal(fx->cfg->token, "tok-a");
        assert_null(fx->cfg->namespace);

        /* the other order: b sets current-context now */
        setenv("KUBECONFIG", DATA "/b.yaml:" DATA "/a.yaml", 1);
        assert_int_equal(load(fx, NULL, NULL), 0);
        assert_string_equal(fx->cfg->context, "ctx-b");
        assert_string_equal(fx->cfg->server, "https://b.example:443");
        assert_true(fx->cfg->insecure_skip_tls_verify);
        assert_int_equal(load(fx, NULL, "ctx-a"), 0);
        assert_string_equal(fx->cfg->server, "https://loser.example:6443");
}

static void test_kubeconfig__context_selection(void **state) {
        struct fixture *fx = *state;
        setenv("KUBECONFIG", DATA "/a.yaml:" DATA "/b.yaml", 1);
        assert_int_equal(load(fx, NULL, "ctx-b"), 0);
        assert_string_equal(fx->cfg->context, "ctx-b");
        assert_string_equal(fx->cfg->server, "https://b.example:443");
        assert_null(fx->cfg->token);
        assert_string_equal(fx->cfg->token_file, DATA "/token.txt");

        assert_int_equal(load(fx, NULL, "no-such"), -EINVAL);
        assert_non_null(strstr(fx->err.message, "no context named no-such"));
        assert_int_equal(load(fx, NULL, "ctx-dangling"), -EINVAL);
        assert_non_null(strstr(fx->err.message, "names cluster nowhere"));

        /* --kubeconfig names one file and ignores KUBECONFIG */
        assert_int_equal(load(fx, DATA "/b.yaml", NULL), 0);
        assert_string_equal(fx->cfg->context, "ctx-b");
        assert_int_equal(load(fx, DATA "/a.yaml", "ctx-b"), -EINVAL);
        assert_int_equal(load(fx, DATA "/nope.yaml", NULL), -ENOENT);
        assert_non_null(strstr(fx->err.message, "nope.yaml does not exist"));
        assert_int_equal(load(fx, DATA "/broken.yaml", NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "broken.yaml: line"));
}

static void test_kubeconfig__home_default(void **state) {
        struct fixture *fx = *state;
        assert_int_equal(load(fx, NULL, NULL), -ENOENT);
        assert_non_null(strstr(fx->err.message, "~/.kube/config does not exist"));
        _cleanup_free_ char *kube = eg_path_join(fx->dir, ".kube");
        _cleanup_free_ char *cfgp = eg_path_join(kube, "config");
        _cleanup_free_ char *src = slurp(DATA, "a.yaml");
        assert_int_equal(eg_mkdir_p(kube, 0700), 0);
        assert_int_equal(eg_write_file_atomic(cfgp, src, strlen(src), 0600), 0);
        assert_int_equal(load(fx, NULL, NULL), 0);
        assert_string_equal(fx->cfg->source, cfgp);
        /* relative paths follow the file that names them */
        _cleanup_free_ char *ca = eg_path_join(kube, "ca.pem");
        assert_string_equal(fx->cfg->ca_file, ca);
}

static void test_kubeconfig__data_and_files(void **state) {
        struct fixture *fx = *state;
        assert_int_equal(load(fx, DATA "/certs.yaml", NULL), 0);
        assert_int_equal(fx->cfg->ca_len, 13);
        assert_memory_equal(fx->cfg->ca_data, "CA-FROM-DATA\n", 13);
        assert_null(fx->cfg->ca_file);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_int_equal(fx->cfg->cred.cert_len, 15);
        assert_memory_equal(fx->cfg->cred.cert_data, "CERT-FROM-DATA\n", 15);
        assert_memory_equal(fx->cfg->cred.key_data, "KEY-FROM-DATA\n", 14);
        assert_null(fx->cfg->cred.cert_file);
        assert_null(fx->cfg->cred.token);

        assert_int_equal(load(fx, DATA "/certs.yaml", "files"), 0);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.cert_file, DATA "/client.crt");
        assert_string_equal(fx->cfg->cred.key_file, DATA "/./client.key");
        assert_null(fx->cfg->cred.cert_data);
}

static void test_kubeconfig__token_file_and_basic(void **state) {
        struct fixture *fx = *state;
        /* a copy, so the test can rotate the token */
        _cleanup_free_ char *b = slurp(DATA, "b.yaml");
        _cleanup_free_ char *cfgp = eg_path_join(fx->dir, "b.yaml");
        _cleanup_free_ char *tok = eg_path_join(fx->dir, "token.txt");
        assert_int_equal(eg_write_file_atomic(cfgp, b, strlen(b), 0600), 0);
        assert_int_equal(eg_write_file_atomic(tok, "first\n", 6, 0600), 0);
        assert_int_equal(load(fx, cfgp, "ctx-b"), 0);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "first");
        assert_int_equal(eg_write_file_atomic(tok, "second", 6, 0600), 0);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "second");
        unlink(tok);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), -ENOENT);
        assert_non_null(strstr(fx->err.message, "cannot read token file"));

        assert_int_equal(load(fx, cfgp, "ctx-basic"), 0);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.username, "alice");
        assert_string_equal(fx->cfg->cred.password, "s3cret:x");
        assert_null(fx->cfg->cred.token);
}

static int exec_count(struct fixture *fx) {
        _cleanup_free_ char *s = slurp(fx->dir, "count");
        int64_t n;
        s[strcspn(s, "\n")] = 0;
        assert_int_equal(eg_parse_int64(s, &n), 0);
        return (int)n;
}

static void test_kubeconfig__exec_plugin(void **state) {
        struct fixture *fx = *state;
        setenv("EG_TEST_EXPIRY", "2999-01-01T00:00:00Z", 1);
        assert_int_equal(load(fx, DATA "/exec.yaml", NULL), 0);
        assert_non_null(fx->cfg->exec);
        /* nothing runs at load time */
        _cleanup_free_ char *count = eg_path_join(fx->dir, "count");
        assert_int_equal(access(count, F_OK), -1);

        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-1");
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-1"); /* cached until expiry */
        assert_int_equal(exec_count(fx), 1);

        /* what the plugin was given */
        _cleanup_free_ char *args = slurp(fx->dir, "args.txt");
        assert_string_equal(args, "--prefix tok hello\n");
        _cleanup_free_ char *in = slurp(fx->dir, "stdin.txt");
        assert_string_equal(in, "/dev/null\n");
        _cleanup_free_ char *info = slurp(fx->dir, "info.json");
        json_t *j = json_loads(info, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "apiVersion")), "client.authentication.k8s.io/v1");
        assert_string_equal(json_string_value(json_object_get(j, "kind")), "ExecCredential");
        json_t *spec = json_object_get(j, "spec");
        assert_true(json_is_false(json_object_get(spec, "interactive")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(spec, "cluster"), "server")),
                            "https://exec.example");
        json_decref(j);

        /* a 401 forces a refresh */
        assert_int_equal(eg_kube_config_credentials(fx->cfg, true, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-2");
        assert_int_equal(exec_count(fx), 2);

        /* an expired credential is fetched again on every use */
        setenv("EG_TEST_EXPIRY", "2001-01-01T00:00:00+02:00", 1);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, true, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-3");
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-4");
        unsetenv("EG_TEST_EXPIRY");
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-5");
        /* no expiry: kept until refreshed */
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "tok-5");
        assert_int_equal(exec_count(fx), 5);

        setenv("EG_TEST_EXPIRY", "not a time", 1);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, true, &fx->err), -EBADMSG);
        assert_non_null(strstr(fx->err.message, "is not RFC 3339"));
}

static void test_kubeconfig__exec_failures(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *src = slurp(DATA, "exec.yaml");
        _cleanup_free_ char *p = eg_path_join(fx->dir, "exec.yaml");
        /* the plugin path is relative to the kubeconfig: here it does not exist */
        assert_int_equal(eg_write_file_atomic(p, src, strlen(src), 0600), 0);
        assert_int_equal(load(fx, p, NULL), 0);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), -ENOENT);
        assert_non_null(strstr(fx->err.message, "cannot run the exec credential plugin"));

        /* a daemon has no terminal to give an interactive plugin */
        size_t at = (size_t)(strstr(src, "interactiveMode: Never") - src);
        _cleanup_free_ char *head = strndup(src, at);
        _cleanup_free_ char *tail = strdup(src + at + strlen("interactiveMode: Never"));
        _cleanup_free_ char *txt = eg_strdup_printf("%sinteractiveMode: Always%s", head, tail);
        assert_int_equal(eg_write_file_atomic(p, txt, strlen(txt), 0600), 0);
        assert_int_equal(load(fx, p, NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "interactiveMode Always"));
}

/* Read as manifests are (spec's YAML reader), with every plain scalar but null and booleans a
 * string as written. */
static void test_kubeconfig__yaml(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *p = eg_path_join(fx->dir, "config");
        const char *typed = "current-context: c\nclusters: [{name: c, cluster: &cl {server: \"https://k:6443\"}}]\n"
                            "contexts: [{name: c, context: {cluster: c, user: u, namespace: 0123}}]\n"
                            "users: [{name: u, user: {token: 12345, password: 1e3}}]\n";
        assert_int_equal(eg_write_file_atomic(p, typed, strlen(typed), 0600), 0);
        assert_int_equal(load(fx, p, NULL), 0);
        assert_string_equal(fx->cfg->namespace, "0123");
        assert_string_equal(fx->cfg->token, "12345");
        assert_string_equal(fx->cfg->password, "1e3");
        const char *dup = "current-context: c\ncurrent-context: d\n";
        assert_int_equal(eg_write_file_atomic(p, dup, strlen(dup), 0600), 0);
        assert_int_equal(load(fx, p, NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "line 2 column 1: current-context: duplicate key"));
        assert_string_equal(fx->err.file, p);
        assert_int_equal(fx->err.line, 2);
        assert_int_equal(fx->err.column, 1);
        const char *empty = "---\n---\ncurrent-context: c\n";
        assert_int_equal(eg_write_file_atomic(p, empty, strlen(empty), 0600), 0);
        assert_int_equal(load(fx, p, NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "the document is not a mapping"));
}

/* Found by fuzz_kubeconfig. */
static void test_kubeconfig__rejects(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *p = eg_path_join(fx->dir, "config");
        /* a server of slashes only is no server */
        const char *slashes = "current-context: c\nclusters: [{name: c, cluster: {server: \"//\"}}]\n"
                              "contexts: [{name: c, context: {cluster: c}}]\n";
        assert_int_equal(eg_write_file_atomic(p, slashes, strlen(slashes), 0600), 0);
        assert_int_equal(load(fx, p, NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "cluster c has no server"));
        /* nested too deeply: refused without leaking the innermost node (ASan) */
        char deep[201];
        memset(deep, '[', 100);
        memset(deep + 100, ']', 100);
        deep[200] = 0;
        assert_int_equal(eg_write_file_atomic(p, deep, strlen(deep), 0600), 0);
        assert_int_equal(load(fx, p, NULL), -EINVAL);
        assert_non_null(strstr(fx->err.message, "nesting is deeper than"));
}

/* proxy_config(fx, URL): loads a kubeconfig whose cluster c has proxy-url URL */
static int proxy_config(struct fixture *fx, const char *url) {
        _cleanup_free_ char *p = eg_path_join(fx->dir, "proxy.yaml");
        _cleanup_free_ char *src = eg_strdup_printf(
                "current-context: c\nclusters: [{name: c, cluster: {server: \"https://k.example:6443\", proxy-url: \"%s\"}}]\n"
                "contexts: [{name: c, context: {cluster: c}}]\n",
                url);
        assert_non_null(src);
        assert_int_equal(eg_write_file_atomic(p, src, strlen(src), 0600), 0);
        return load(fx, p, NULL);
}

static void test_kubeconfig__proxy_url(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *p = eg_path_join(fx->dir, "proxy.yaml");
        const char *good[] = {"http://127.0.0.1:3128", "https://proxy.example", "socks5://u:p@proxy.example:1080",
                              "HTTP://[::1]:8080/"};
        for (size_t i = 0; i < EG_ELEMENTSOF(good); i++) {
                assert_int_equal(proxy_config(fx, good[i]), 0);
                assert_string_equal(fx->cfg->proxy_url, good[i]);
        }
        /* none named: none kept (curl's environment then applies, as kubectl's does) */
        assert_int_equal(load(fx, DATA "/a.yaml", NULL), 0);
        assert_null(fx->cfg->proxy_url);
        assert_int_equal(proxy_config(fx, ""), 0);
        assert_null(fx->cfg->proxy_url);
        /* refused, naming the file, the cluster and the field, never the password */
        assert_int_equal(proxy_config(fx, "ftp://user:secret@proxy.example:21"), -EINVAL);
        assert_non_null(strstr(fx->err.message, p));
        assert_non_null(strstr(fx->err.message, "cluster c: proxy-url has scheme ftp"));
        assert_null(strstr(fx->err.message, "secret"));
        assert_int_equal(proxy_config(fx, "proxy.example:3128"), -EINVAL);
        assert_non_null(strstr(fx->err.message, "cluster c: proxy-url is not a URL"));
        assert_int_equal(proxy_config(fx, "socks5://user:secret@:1080"), -EINVAL);
        assert_non_null(strstr(fx->err.message, "cluster c: proxy-url names no host"));
        assert_null(strstr(fx->err.message, "secret"));
}

static void test_kubeconfig__in_cluster(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *sa = eg_path_join(fx->dir, "sa");
        _cleanup_free_ char *tok = eg_path_join(sa, "token");
        _cleanup_free_ char *ns = eg_path_join(sa, "namespace");
        _cleanup_free_ char *ca = eg_path_join(sa, "ca.crt");
        assert_int_equal(eg_mkdir_p(sa, 0700), 0);
        struct eg_kube_config_options o = {.service_account_dir = sa};
        /* no service host: no configuration at all */
        assert_int_equal(eg_kube_config_load(&o, &fx->cfg, &fx->err), -ENOENT);
        setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
        eg_error_done(&fx->err);
        assert_int_equal(eg_kube_config_load(&o, &fx->cfg, &fx->err), -ENOENT);
        assert_non_null(strstr(fx->err.message, "service account token"));
        assert_int_equal(eg_write_file_atomic(tok, "sa-token\n", 9, 0600), 0);
        assert_int_equal(eg_write_file_atomic(ns, "etcd-system\n", 12, 0600), 0);
        assert_int_equal(eg_write_file_atomic(ca, "CA", 2, 0600), 0);
        assert_int_equal(eg_kube_config_load(&o, &fx->cfg, &fx->err), 0);
        assert_string_equal(fx->cfg->source, "in-cluster");
        assert_string_equal(fx->cfg->server, "https://10.96.0.1:6443");
        assert_string_equal(fx->cfg->namespace, "etcd-system");
        assert_string_equal(fx->cfg->ca_file, ca);
        assert_int_equal(eg_kube_config_credentials(fx->cfg, false, &fx->err), 0);
        assert_string_equal(fx->cfg->cred.token, "sa-token");
        eg_kube_config_free(fx->cfg);
        fx->cfg = NULL;

        /* a kubeconfig beats the service account */
        setenv("KUBECONFIG", DATA "/a.yaml", 1);
        assert_int_equal(eg_kube_config_load(&o, &fx->cfg, &fx->err), 0);
        assert_string_equal(fx->cfg->server, "https://a.example:6443");
        eg_kube_config_free(fx->cfg);
        fx->cfg = NULL;

        unsetenv("KUBECONFIG");
        setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
        assert_int_equal(eg_kube_config_load(&o, &fx->cfg, &fx->err), 0);
        assert_string_equal(fx->cfg->server, "https://[fd00::1]:6443");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_kubeconfig__merge_first_file_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__context_selection, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__home_default, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__data_and_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__token_file_and_basic, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__exec_plugin, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__exec_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__rejects, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__yaml, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__proxy_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kubeconfig__in_cluster, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
