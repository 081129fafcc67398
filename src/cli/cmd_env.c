/* etcd-gitops env: the etcdctl environment of a cluster, for a shell to eval. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/runtime.h"
#include "resolve.h"
#include "setup.h"

/* export NAME='value', the value quoted for any POSIX shell. */
static void export_var(const char *name, const char *value) {
        printf("export %s='", name);
        for (const char *p = value; *p; p++)
                if (*p == '\'')
                        fputs("'\\''", stdout);
                else
                        putchar(*p);
        printf("'\n");
}

static int print_env(struct eg_runtime *rt, const struct eg_runtime_cluster *c, void *userdata) {
        (void)userdata;
        struct eg_etcd_options eo = {0};
        struct eg_error err = {0};
        int r = eg_runtime_etcd_access(rt, c->namespace, c->name, &eo, &err);
        if (r < 0) {
                fprintf(stderr, "etcd-gitops env: cannot reach the members of %s/%s: %s\n", c->namespace, c->name,
                        err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                return r;
        }
        if (eo.headers) {
                fprintf(stderr,
                        "etcd-gitops env: the members of %s/%s are reached through the API server's pod "
                        "proxy, which etcdctl cannot use; with --etcd-access direct it reaches them itself\n",
                        c->namespace, c->name);
                return -EPROTONOSUPPORT;
        }
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < c->n_members; i++)
                if (c->members[i].client_url)
                        eg_buf_printf(&b, "%s%s", b.len ? "," : "", c->members[i].client_url);
        _cleanup_free_ char *endpoints = eg_buf_steal(&b);
        if (!endpoints || !*endpoints) {
                fprintf(stderr, "etcd-gitops env: cluster %s/%s has no member with a client URL\n", c->namespace,
                        c->name);
                return -EHOSTUNREACH;
        }
        export_var("ETCDCTL_API", "3");
        export_var("ETCDCTL_ENDPOINTS", endpoints);
        if (eo.tls.ca_file)
                export_var("ETCDCTL_CACERT", eo.tls.ca_file);
        if (eo.tls.cert_file)
                export_var("ETCDCTL_CERT", eo.tls.cert_file);
        if (eo.tls.key_file)
                export_var("ETCDCTL_KEY", eo.tls.key_file);
        return 0;
}

int cmd_env(const struct eg_command *cmd, int argc, char **argv) {
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, NULL, NULL, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *cluster = n == 1 ? args[0] : NULL;
        free(args);
        if (!cluster) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                return EG_EXIT_ERROR;
        }
        return eg_cli_with_cluster("env", cluster, print_env, NULL);
}
