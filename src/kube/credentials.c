/* kube credentials: what proves who we are on the next request, from a kubeconfig's token file
 * or exec credential plugin, and TLS material written out as files for those who need paths. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"
#include "internal.h"

extern char **environ;

#define TOKEN_MAX_BYTES ((size_t)1 << 20)
#define EXEC_OUTPUT_MAX_BYTES ((size_t)4 << 20)
#define EXEC_TIMEOUT_MS 60000

void kube_exec_free(struct eg_kube_exec *e) {
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

int kube_exec_parse(json_t *ex, const char *where, struct eg_kube_exec **ret, struct eg_error *err) {
        struct eg_kube_exec *e = calloc(1, sizeof(*e));
        json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env");
        const char *mode = kube_jstr(ex, "interactiveMode");
        int r = -ENOMEM;
        if (!e)
                return r;
        if ((r = kube_dup_field(ex, "apiVersion", &e->api_version)) < 0 ||
            (r = kube_dup_field(ex, "command", &e->command)) < 0)
                goto fail;
        r = -EINVAL;
        if (!e->command) {
                eg_error_set(err, "%s: exec has no command", where);
                goto fail;
        }
        if (!e->api_version || (strcmp(e->api_version, "client.authentication.k8s.io/v1") != 0 &&
                                strcmp(e->api_version, "client.authentication.k8s.io/v1beta1") != 0)) {
                eg_error_set(err,
                             "%s: exec apiVersion %s is not supported (use client.authentication.k8s.io/v1 or v1beta1)",
                             where, e->api_version ? e->api_version : "(none)");
                goto fail;
        }
        if (mode && strcmp(mode, "Always") == 0) {
                eg_error_set(err, "%s: exec interactiveMode Always needs a terminal, which this daemon never has",
                             where);
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
                const char *n = kube_jstr(it, "name"), *v = kube_jstr(it, "value");
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
        kube_exec_free(e);
        return r;
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
        json_t *info = json_pack("{s:s, s:s, s:o}", "apiVersion", c->exec->api_version, "kind", "ExecCredential",
                                 "spec", spec);
        char *s = info ? json_dumps(info, JSON_COMPACT) : NULL;
        json_decref(info);
        return s;
}

/* The plugin's environment: ours without what its env entries and KUBERNETES_EXEC_INFO set,
 * then those. The strings stay owned by environ, e and info_env. */
static char **exec_environment(const struct eg_kube_exec *e, char *info_env) {
        size_t nenv = 0, nextra = 0, k = 0;
        while (environ[nenv])
                nenv++;
        while (e->env[nextra])
                nextra++;
        char **envp = calloc(nenv + nextra + 2, sizeof(char *));
        if (!envp)
                return NULL;
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
        envp[k] = info_env;
        return envp;
}

/* Starts the plugin with stdin on /dev/null and stdout on *ret_fd. */
static int exec_spawn(const struct eg_kube_config *c, pid_t *ret_pid, int *ret_fd) {
        const struct eg_kube_exec *e = c->exec;
        _cleanup_free_ char *info = exec_info(c);
        _cleanup_free_ char *info_env = info ? eg_strdup_printf("KUBERNETES_EXEC_INFO=%s", info) : NULL;
        _cleanup_free_ char **envp = info_env ? exec_environment(e, info_env) : NULL;
        posix_spawn_file_actions_t fa;
        int pipefd[2] = {-1, -1};
        if (!envp)
                return -ENOMEM;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        int r = -posix_spawnp(ret_pid, e->command, &fa, NULL, e->args, envp);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        if (r < 0) {
                close(pipefd[0]);
                return r;
        }
        *ret_fd = pipefd[0];
        return 0;
}

/* Runs the plugin, collecting stdout within a deadline. */
static int exec_run(const struct eg_kube_config *c, struct eg_buf *out, struct eg_error *err) {
        const struct eg_kube_exec *e = c->exec;
        pid_t pid = 0;
        int fd = -1, status = 0;
        int r = exec_spawn(c, &pid, &fd);
        if (r < 0) {
                eg_error_set(err, "cannot run the exec credential plugin %s: %s", e->command, strerror(-r));
                return r;
        }
        r = eg_read_fd_timeout(fd, out, EXEC_TIMEOUT_MS);
        close(fd);
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
        const char *kind = kube_jstr(doc, "kind"), *av = kube_jstr(doc, "apiVersion");
        const char *token = kube_jstr(st, "token"), *cert = kube_jstr(st, "clientCertificateData"),
                   *key = kube_jstr(st, "clientKeyData"), *exp = kube_jstr(st, "expirationTimestamp");
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
        if (exp && eg_parse_rfc3339_ms(exp, &expiry) < 0) {
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

int eg_kube_materialise(const char *dir, const char *name, const char *data, size_t len, char **path,
                        struct eg_error *err) {
        _cleanup_free_ char *p = eg_path_join(dir, name);
        _cleanup_free_ char *have = NULL;
        size_t have_len = 0;
        if (!p)
                return -ENOMEM;
        if (eg_read_file(p, len + 1, &have, &have_len) < 0 || have_len != len || memcmp(have, data, len) != 0) {
                int r = eg_write_file_atomic(p, data, len, 0600);
                if (r < 0) {
                        eg_error_set(err, "cannot write %s: %s", p, strerror(-r));
                        return r;
                }
        }
        free(*path);
        *path = TAKE_PTR(p);
        return 0;
}
