/* Option parsing for every subcommand: one table drives both parsing and --help. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct eg_settings eg_settings = {.runtime = "local"};

enum {
        OPT_RUNTIME = -100,
        OPT_STATE_DIR,
        OPT_AUDIT_LOG,
        OPT_ETCD_BIN_DIR,
        OPT_KUBECONFIG,
        OPT_CONTEXT,
        OPT_ETCD_ACCESS,
        OPT_NAMESPACE,
        OPT_PATH,
        OPT_REF,
        OPT_LOG_LEVEL,
        OPT_ADVERTISE_HOST,
        OPT_HELP,
};

/* Each common option may also come from ETCD_GITOPS_<NAME> (systemd/etcd-gitops.env). */
static const struct eg_option common_options[] = {
        {OPT_RUNTIME, "runtime", 0, "local|kubernetes", "where members run (default local)"},
        {OPT_STATE_DIR, "state-dir", 0, "DIR", "state directory (default /var/lib/etcd-gitops as root)"},
        {OPT_AUDIT_LOG, "audit-log", 0, "FILE", "audit log (default STATE-DIR/audit.jsonl)"},
        {OPT_ETCD_BIN_DIR, "etcd-bin-dir", 0, "DIR", "etcd binaries: DIR/<version>/etcd or DIR/etcd-<version>"},
        {OPT_ADVERTISE_HOST, "advertise-host", 0, "HOST", "address local members listen on (default 127.0.0.1)"},
        {OPT_KUBECONFIG, "kubeconfig", 0, "FILE", "kubeconfig for the kubernetes runtime"},
        {OPT_CONTEXT, "context", 0, "NAME", "kubeconfig context"},
        {OPT_ETCD_ACCESS, "etcd-access", 0, "proxy|direct",
         "kubernetes: reach etcd through the API server's pod proxy (default) or member DNS names"},
        {OPT_NAMESPACE, "namespace", 'n', "NS", "only this namespace"},
        {OPT_PATH, "path", 0, "SUBDIR", "folder inside the source"},
        {OPT_REF, "ref", 0, "REF", "git branch, tag or commit"},
        {OPT_LOG_LEVEL, "log-level", 0, "LEVEL", "error, warning, info (default) or debug"},
        {0},
};

static int set_common(int id, const char *value) {
        switch (id) {
        case OPT_RUNTIME:
                if (strcmp(value, "local") != 0 && strcmp(value, "kubernetes") != 0) {
                        fprintf(stderr, "etcd-gitops: --runtime must be local or kubernetes, got '%s'\n", value);
                        return -EINVAL;
                }
                eg_settings.runtime = value;
                return 0;
        case OPT_STATE_DIR:
                free(eg_settings.state_dir);
                eg_settings.state_dir = strdup(value);
                return eg_settings.state_dir ? 0 : -ENOMEM;
        case OPT_AUDIT_LOG:
                free(eg_settings.audit_log);
                eg_settings.audit_log = strdup(value);
                return eg_settings.audit_log ? 0 : -ENOMEM;
        case OPT_ETCD_BIN_DIR:
                eg_settings.etcd_bin_dir = value;
                return 0;
        case OPT_ADVERTISE_HOST:
                eg_settings.advertise_host = value;
                return 0;
        case OPT_KUBECONFIG:
                eg_settings.kubeconfig = value;
                return 0;
        case OPT_CONTEXT:
                eg_settings.context = value;
                return 0;
        case OPT_ETCD_ACCESS:
                if (strcmp(value, "proxy") != 0 && strcmp(value, "direct") != 0) {
                        fprintf(stderr, "etcd-gitops: --etcd-access must be proxy or direct, got '%s'\n", value);
                        return -EINVAL;
                }
                eg_settings.etcd_access_direct = strcmp(value, "direct") == 0;
                return 0;
        case OPT_NAMESPACE:
                eg_settings.namespace = value;
                return 0;
        case OPT_PATH:
                eg_settings.path = value;
                return 0;
        case OPT_REF:
                eg_settings.ref = value;
                return 0;
        case OPT_LOG_LEVEL: {
                enum eg_log_level l;
                if (eg_log_parse_level(value, &l) < 0) {
                        fprintf(stderr, "etcd-gitops: --log-level must be error, warning, info or debug, got '%s'\n", value);
                        return -EINVAL;
                }
                eg_log_set_level(l);
                return 0;
        }
        }
        return -EINVAL;
}

static void load_common_from_env(void) {
        for (const struct eg_option *o = common_options; o->name; o++) {
                char var[64] = "ETCD_GITOPS_";
                size_t n = strlen(var);
                for (const char *p = o->name; *p && n + 1 < sizeof(var); p++)
                        var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                var[n] = 0;
                const char *v = getenv(var);
                if (v && *v && set_common(o->id, v) < 0)
                        fprintf(stderr, "etcd-gitops: ignoring %s\n", var);
        }
}

static const struct eg_option *find_option(const struct eg_option *opts, const char *name,
                                           size_t name_len, char short_name) {
        for (const struct eg_option *o = opts; o && o->name; o++) {
                if (short_name ? o->short_name == short_name
                               : strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0)
                        return o;
        }
        return NULL;
}

static void print_options(const struct eg_option *opts) {
        for (const struct eg_option *o = opts; o && o->name; o++) {
                char left[96];
                if (o->arg)
                        snprintf(left, sizeof(left), "%s%c%s--%s%s%s%s", o->short_name ? "-" : "",
                                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ",
                                 o->name, o->optional_arg ? "[=" : " ", o->arg, o->optional_arg ? "]" : "");
                else
                        snprintf(left, sizeof(left), "%s%c%s--%s", o->short_name ? "-" : "",
                                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name);
                printf("  %-36s %s\n", left, o->help);
        }
}

void eg_cli_print_help(const struct eg_command *cmd) {
        printf("usage: etcd-gitops %s\n\n%s\n", cmd->usage, cmd->summary);
        if (cmd->options && cmd->options[0].name) {
                printf("\noptions:\n");
                print_options(cmd->options);
        }
        if (cmd->uses_common) {
                printf("\ncommon options (also from ETCD_GITOPS_<NAME> variables):\n");
                print_options(common_options);
        }
        printf("  %-36s %s\n", "-h, --help", "show this help");
}

int eg_cli_parse(const struct eg_command *cmd, int argc, char **argv, eg_option_handler h,
                 void *userdata, char ***ret_args, size_t *ret_n) {
        if (cmd->uses_common)
                load_common_from_env();
        char **args = calloc((size_t)argc + 1, sizeof(char *));
        if (!args)
                return -ENOMEM;
        size_t n = 0;
        bool only_positional = false;
        for (int i = 1; i < argc; i++) {
                char *a = argv[i];
                if (only_positional || a[0] != '-' || a[1] == 0) {
                        args[n++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0) {
                        only_positional = true;
                        continue;
                }
                if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        eg_cli_print_help(cmd);
                        free(args);
                        return EG_CLI_STOP_OK;
                }
                const struct eg_option *o;
                const char *value = NULL;
                bool is_common;
                if (a[1] == '-') {
                        const char *name = a + 2, *eq = strchr(name, '=');
                        size_t len = eq ? (size_t)(eq - name) : strlen(name);
                        o = find_option(cmd->options, name, len, 0);
                        is_common = false;
                        if (!o && cmd->uses_common) {
                                o = find_option(common_options, name, len, 0);
                                is_common = true;
                        }
                        if (o && eq)
                                value = eq + 1;
                } else {
                        o = find_option(cmd->options, NULL, 0, a[1]);
                        is_common = false;
                        if (!o && cmd->uses_common) {
                                o = find_option(common_options, NULL, 0, a[1]);
                                is_common = true;
                        }
                        if (o && a[2])
                                value = a + 2;
                }
                if (!o) {
                        fprintf(stderr, "etcd-gitops %s: unknown option '%s' (see 'etcd-gitops %s --help')\n",
                                cmd->name, a, cmd->name);
                        free(args);
                        return -EINVAL;
                }
                if (!o->arg && value) {
                        fprintf(stderr, "etcd-gitops %s: option '--%s' takes no value\n", cmd->name, o->name);
                        free(args);
                        return -EINVAL;
                }
                if (o->arg && !value && !o->optional_arg) {
                        if (i + 1 >= argc) {
                                fprintf(stderr, "etcd-gitops %s: option '--%s' needs %s\n", cmd->name,
                                        o->name, o->arg);
                                free(args);
                                return -EINVAL;
                        }
                        value = argv[++i];
                }
                int r = is_common ? set_common(o->id, value) : h ? h(o->id, value, userdata) : -EINVAL;
                if (r < 0) {
                        free(args);
                        return -EINVAL;
                }
        }
        if (cmd->uses_common && eg_settings_finish() < 0) {
                free(args);
                return -ENOMEM;
        }
        *ret_args = args;
        *ret_n = n;
        return 0;
}

int eg_settings_finish(void) {
        if (!eg_settings.state_dir) {
                const char *home = getenv("HOME"), *xdg = getenv("XDG_STATE_HOME");
                if (geteuid() == 0)
                        eg_settings.state_dir = strdup("/var/lib/etcd-gitops");
                else if (xdg && *xdg)
                        eg_settings.state_dir = eg_path_join(xdg, "etcd-gitops");
                else
                        eg_settings.state_dir = eg_strdup_printf("%s/.local/state/etcd-gitops", home ? home : "/tmp");
                if (!eg_settings.state_dir)
                        return -ENOMEM;
        }
        if (!eg_settings.audit_log) {
                eg_settings.audit_log = eg_path_join(eg_settings.state_dir, "audit.jsonl");
                if (!eg_settings.audit_log)
                        return -ENOMEM;
        }
        eg_settings.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        return 0;
}
