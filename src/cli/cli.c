/* Option parsing for every subcommand: one table drives both parsing and --help. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hints.h"

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
        OPT_CONTROL_SOCKET,
        OPT_HELP,
};

/* Each common option may also come from ETCD_GITOPS_<NAME> (systemd/etcd-gitops.env). */
const struct eg_option eg_common_options[] = {
        {OPT_RUNTIME, "runtime", 0, "local|kubernetes", "where members run (default local)"},
        {OPT_STATE_DIR, "state-dir", 0, "DIR", "state directory (default /var/lib/etcd-gitops as root)"},
        {OPT_AUDIT_LOG, "audit-log", 0, "FILE", "audit log (default STATE-DIR/audit.jsonl)"},
        {OPT_ETCD_BIN_DIR, "etcd-bin-dir", 0, "DIR", "etcd binaries: DIR/<version>/etcd or DIR/etcd-<version>",
         EG_OPT_STRING_AT(struct eg_settings, etcd_bin_dir)},
        {OPT_ADVERTISE_HOST, "advertise-host", 0, "HOST", "address local members listen on (default 127.0.0.1)",
         EG_OPT_STRING_AT(struct eg_settings, advertise_host)},
        {OPT_KUBECONFIG, "kubeconfig", 0, "FILE", "kubeconfig for the kubernetes runtime",
         EG_OPT_STRING_AT(struct eg_settings, kubeconfig)},
        {OPT_CONTEXT, "context", 0, "NAME", "kubeconfig context", EG_OPT_STRING_AT(struct eg_settings, context)},
        {OPT_ETCD_ACCESS, "etcd-access", 0, "proxy|direct",
         "kubernetes: reach etcd through the API server's pod proxy (default) or member DNS names"},
        {OPT_NAMESPACE, "namespace", 'n', "NS", "only this namespace", EG_OPT_STRING_AT(struct eg_settings, namespace)},
        {OPT_PATH, "path", 0, "SUBDIR", "folder inside the source", EG_OPT_STRING_AT(struct eg_settings, path)},
        {OPT_REF, "ref", 0, "REF", "git branch, tag or commit", EG_OPT_STRING_AT(struct eg_settings, ref)},
        {OPT_LOG_LEVEL, "log-level", 0, "LEVEL", "error, warning, info (default) or debug"},
        {OPT_CONTROL_SOCKET, "control-socket", 0, "PATH",
         "the daemon's control socket (default STATE-DIR/control.sock; run: $RUNTIME_DIRECTORY/control.sock "
         "under systemd)",
         EG_OPT_STRING_AT(struct eg_settings, control_socket)},
        {0},
};

/* value is a or b; else says so for option name. */
static int one_of(const char *name, const char *value, const char *a, const char *b) {
        if (strcmp(value, a) == 0 || strcmp(value, b) == 0)
                return 0;
        fprintf(stderr, "etcd-gitops: --%s must be %s or %s, got '%s'\n", name, a, b, value);
        return -EINVAL;
}

static int set_owned(char **dst, const char *value) {
        free(*dst);
        *dst = strdup(value);
        return *dst ? 0 : -ENOMEM;
}

static int set_common(int id, const char *value) {
        switch (id) {
        case OPT_RUNTIME:
                if (one_of("runtime", value, "local", "kubernetes") < 0)
                        return -EINVAL;
                eg_settings.runtime = value;
                return 0;
        case OPT_STATE_DIR:
                return set_owned(&eg_settings.state_dir, value);
        case OPT_AUDIT_LOG:
                return set_owned(&eg_settings.audit_log, value);
        case OPT_ETCD_ACCESS:
                if (one_of("etcd-access", value, "proxy", "direct") < 0)
                        return -EINVAL;
                eg_settings.etcd_access_direct = strcmp(value, "direct") == 0;
                return 0;
        case OPT_LOG_LEVEL: {
                enum eg_log_level l;
                if (eg_log_parse_level(value, &l) < 0) {
                        fprintf(stderr, "etcd-gitops: --log-level must be error, warning, info or debug, got '%s'\n",
                                value);
                        return -EINVAL;
                }
                eg_log_set_level(l);
                return 0;
        }
        }
        return -EINVAL;
}

/* Stores the option's value where its table row says, or hands it to h (set_common for the
 * common options). */
static int apply_option(const struct eg_option *o, const char *value, bool is_common, eg_option_handler h,
                        void *userdata) {
        char *at = (char *)(is_common ? (void *)&eg_settings : userdata) + o->offset;
        switch (o->store) {
        case EG_OPT_STRING:
                *(const char **)at = value;
                return 0;
        case EG_OPT_FLAG:
                *(bool *)at = true;
                return 0;
        default:
                return is_common ? set_common(o->id, value) : h ? h(o->id, value, userdata) : -EINVAL;
        }
}

/* A bad value is as much a usage error as on the command line: going on would act with
 * settings nobody asked for (another runtime, another state dir). */
static int load_common_from_env(void) {
        for (const struct eg_option *o = eg_common_options; o->name; o++) {
                char var[64] = "ETCD_GITOPS_";
                size_t n = strlen(var);
                for (const char *p = o->name; *p && n + 1 < sizeof(var); p++)
                        var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                var[n] = 0;
                const char *v = getenv(var);
                if (v && *v && apply_option(o, v, true, NULL, NULL) < 0) {
                        fprintf(stderr,
                                "etcd-gitops: %s='%s' is not a valid value (see --%s in 'etcd-gitops --help')\n", var,
                                v, o->name);
                        return -EINVAL;
                }
        }
        return 0;
}

static const struct eg_option *find_option(const struct eg_option *opts, const char *name, size_t name_len,
                                           char short_name) {
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
                                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                                 o->optional_arg ? "[=" : " ", o->arg, o->optional_arg ? "]" : "");
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
                print_options(eg_common_options);
        }
        printf("  %-36s %s\n", "-h, --help", "show this help");
}

/* The option argument a names (--name, --name=value, -x, -xvalue), the command's own before
 * the common ones; *ret_value is the value written into a, if any. */
static const struct eg_option *lookup(const struct eg_command *cmd, const char *a, const char **ret_value,
                                      bool *ret_common) {
        const char *name = a[1] == '-' ? a + 2 : NULL, *eq = name ? strchr(name, '=') : NULL;
        size_t len = !name ? 0 : eq ? (size_t)(eq - name) : strlen(name);
        char short_name = name ? 0 : a[1];
        const struct eg_option *o = find_option(cmd->options, name, len, short_name);
        *ret_common = false;
        if (!o && cmd->uses_common) {
                o = find_option(eg_common_options, name, len, short_name);
                *ret_common = true;
        }
        *ret_value = !o ? NULL : name ? (eq ? eq + 1 : NULL) : (a[2] ? a + 2 : NULL);
        return o;
}

/* The long option of cmd (or a common one) closest to the mistyped typed, "name" or "name=value". */
static const char *closest_option(const struct eg_command *cmd, const char *typed) {
        const char *names[128];
        size_t n = 0;
        _cleanup_free_ char *name = strndup(typed, strcspn(typed, "="));
        for (const struct eg_option *o = cmd->options; o && o->name && n + 1 < EG_ELEMENTSOF(names); o++)
                names[n++] = o->name;
        for (const struct eg_option *o = eg_common_options; cmd->uses_common && o->name && n + 1 < EG_ELEMENTSOF(names);
             o++)
                names[n++] = o->name;
        names[n] = NULL;
        return name ? eg_hint_closest(name, names) : NULL;
}

/* One option at argv[*i], its value taken from the next argument when it needs one. */
static int parse_option(const struct eg_command *cmd, int argc, char **argv, int *i, eg_option_handler h,
                        void *userdata) {
        const char *a = argv[*i], *value;
        bool is_common;
        const struct eg_option *o = lookup(cmd, a, &value, &is_common);
        if (!o) {
                const char *near = a[1] == '-' ? closest_option(cmd, a + 2) : NULL;
                fprintf(stderr, "etcd-gitops %s: unknown option '%s'%s%s%s (see 'etcd-gitops %s --help')\n", cmd->name,
                        a, near ? "; did you mean '--" : "", near ? near : "", near ? "'?" : "", cmd->name);
                return -EINVAL;
        }
        if (!o->arg && value) {
                fprintf(stderr, "etcd-gitops %s: option '--%s' takes no value\n", cmd->name, o->name);
                return -EINVAL;
        }
        if (o->arg && !value && !o->optional_arg) {
                if (*i + 1 >= argc) {
                        fprintf(stderr, "etcd-gitops %s: option '--%s' needs %s\n", cmd->name, o->name, o->arg);
                        return -EINVAL;
                }
                value = argv[++*i];
                /* "--source --listen X" leaves --source without its value, not --listen without a flag */
                if (value[0] == '-' && value[1] == '-' && value[2]) {
                        fprintf(stderr,
                                "etcd-gitops %s: option '--%s' needs %s, got the option '%s' (a value starting "
                                "with '--' is written --%s=VALUE)\n",
                                cmd->name, o->name, o->arg, value, o->name);
                        return -EINVAL;
                }
        }
        return apply_option(o, value, is_common, h, userdata) < 0 ? -EINVAL : 0;
}

int eg_cli_parse(const struct eg_command *cmd, int argc, char **argv, eg_option_handler h, void *userdata,
                 char ***ret_args, size_t *ret_n) {
        if (cmd->uses_common && load_common_from_env() < 0)
                return -EINVAL;
        char **args = calloc((size_t)argc + 1, sizeof(char *));
        if (!args)
                return -ENOMEM;
        size_t n = 0;
        bool only_positional = false;
        int r = 0;
        for (int i = 1; i < argc && r == 0; i++) {
                char *a = argv[i];
                if (only_positional || a[0] != '-' || a[1] == 0)
                        args[n++] = a;
                else if (strcmp(a, "--") == 0)
                        only_positional = true;
                else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                        eg_cli_print_help(cmd);
                        r = EG_CLI_STOP_OK;
                } else
                        r = parse_option(cmd, argc, argv, &i, h, userdata);
        }
        if (r == 0 && cmd->uses_common && eg_settings_finish() < 0)
                r = -ENOMEM;
        if (r != 0) {
                free(args);
                return r;
        }
        *ret_args = args;
        *ret_n = n;
        return 0;
}

int eg_cli_cluster_name(const char *arg, char **ret_ns, char **ret_name) {
        const char *slash = strchr(arg, '/');
        char *ns = slash ? strndup(arg, (size_t)(slash - arg))
                         : strdup(eg_settings.namespace ? eg_settings.namespace : "default");
        char *name = strdup(slash ? slash + 1 : arg);
        if (!ns || !name) {
                free(ns);
                free(name);
                return -ENOMEM;
        }
        *ret_ns = ns;
        *ret_name = name;
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
                eg_settings.audit_log = eg_state_path(eg_settings.state_dir, EG_STATE_AUDIT_LOG, NULL, NULL);
                if (!eg_settings.audit_log)
                        return -ENOMEM;
        }
        eg_settings.color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        return 0;
}
