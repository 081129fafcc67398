/* Cluster names as typed ("NAME" or "NS/NAME") resolved against the clusters a command knows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "resolve.h"
#include "setup.h"

static bool named(const char *full, const char *name) {
        const char *slash = strchr(full, '/');
        return slash && strcmp(slash + 1, name) == 0;
}

int eg_cli_resolve_cluster(const char *command, const char *arg, char *const *known, size_t n, char **ret) {
        char *out = NULL;
        size_t matches = 0;
        if (strchr(arg, '/') || eg_settings.namespace)
                out = strchr(arg, '/') ? strdup(arg) : eg_strdup_printf("%s/%s", eg_settings.namespace, arg);
        else {
                for (size_t i = 0; i < n; i++)
                        if (named(known[i], arg) && matches++ == 0)
                                out = known[i];
                if (matches > 1) {
                        fprintf(stderr, "etcd-gitops %s: '%s' names more than one cluster:", command, arg);
                        for (size_t i = 0, k = 0; i < n; i++)
                                if (named(known[i], arg))
                                        fprintf(stderr, "%s %s", k++ ? "," : "", known[i]);
                        fprintf(stderr, "; say which as NAMESPACE/NAME\n");
                        return -EINVAL;
                }
                out = matches ? strdup(out) : eg_strdup_printf("default/%s", arg);
        }
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

/* "NS/NAME" of every cluster on rt; only needed for a bare name outside --namespace. */
static int known_clusters(struct eg_runtime *rt, const char *arg, char ***ret, size_t *ret_n, struct eg_error *err) {
        struct eg_runtime_cluster *cs = NULL;
        size_t n = 0;
        *ret = NULL;
        *ret_n = 0;
        if (strchr(arg, '/') || eg_settings.namespace)
                return 0;
        int r = eg_runtime_list(rt, NULL, 0, &cs, &n, err);
        if (r < 0)
                return r;
        char **v = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; v && i < n; i++)
                if (!(v[i] = eg_strdup_printf("%s/%s", cs[i].namespace, cs[i].name)))
                        r = -ENOMEM;
        eg_runtime_clusters_free(cs, n);
        if (!v || r < 0) {
                eg_strv_free(v, n);
                return -ENOMEM;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int eg_cli_resolve_on(struct eg_runtime *rt, const char *command, const char *arg, char **ret_ns, char **ret_name) {
        struct eg_error err = {0};
        char **known = NULL, *full = NULL;
        size_t n = 0;
        int r = known_clusters(rt, arg, &known, &n, &err);
        if (r < 0)
                fprintf(stderr, "etcd-gitops %s: cannot look up cluster %s: %s\n", command, arg,
                        err.message ? err.message : strerror(-r));
        else
                r = eg_cli_resolve_cluster(command, arg, known, n, &full);
        eg_strv_free(known, n);
        eg_error_done(&err);
        if (r < 0)
                return r;
        char *slash = strchr(full, '/');
        char *name = strdup(slash + 1);
        *slash = 0;
        if (!name) {
                free(full);
                return -ENOMEM;
        }
        *ret_ns = full;
        *ret_name = name;
        return 0;
}

int eg_cli_open_cluster(const char *command, const char *arg, struct eg_runtime **ret_rt,
                        struct eg_runtime_cluster *ret_c) {
        struct eg_error err = {0};
        struct eg_runtime *rt = NULL;
        _cleanup_free_ char *ns = NULL, *name = NULL;
        int r = eg_cli_runtime_open(true, &rt, &err);
        if (r < 0) {
                fprintf(stderr, "etcd-gitops %s: cannot look up cluster %s: %s\n", command, arg,
                        err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                return r;
        }
        r = eg_cli_resolve_on(rt, command, arg, &ns, &name);
        if (r >= 0)
                r = eg_runtime_observe(rt, ns, name, ret_c, &err);
        if (r == -ENOENT)
                fprintf(stderr, "etcd-gitops %s: no cluster %s/%s on the %s runtime%s%s\n", command, ns, name,
                        eg_settings.runtime, strcmp(eg_settings.runtime, "local") == 0 ? ", state dir " : "",
                        strcmp(eg_settings.runtime, "local") == 0 ? eg_settings.state_dir : "");
        else if (r < 0 && ns)
                fprintf(stderr, "etcd-gitops %s: cannot look up cluster %s: %s\n", command, arg,
                        err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        if (r < 0) {
                eg_runtime_free(rt);
                return r;
        }
        *ret_rt = rt;
        return 0;
}

int eg_cli_with_cluster(const char *command, const char *arg, eg_cli_cluster_fn fn, void *userdata) {
        struct eg_runtime *rt = NULL;
        struct eg_runtime_cluster c = {0};
        if (eg_cli_open_cluster(command, arg, &rt, &c) < 0)
                return EG_EXIT_ERROR;
        int r = fn(rt, &c, userdata);
        eg_runtime_cluster_done(&c);
        eg_runtime_free(rt);
        return r < 0 ? EG_EXIT_ERROR : EG_EXIT_OK;
}
