/* cli: the command table, option parsing shared by every subcommand, global settings. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

/* Stable exit codes (specs/cli.md). */
enum {
        EG_EXIT_OK = 0,
        EG_EXIT_DIFF = 1, /* differences / not converged / invalid */
        EG_EXIT_ERROR = 2 /* usage or runtime error */
};

/* Parsed common options; the only global besides logging. */
struct eg_settings {
        const char *runtime; /* "local" | "kubernetes" */
        char *state_dir;
        char *audit_log; /* default <state_dir>/audit.jsonl */
        const char *etcd_bin_dir;
        const char *kubeconfig;
        const char *context;
        bool etcd_access_direct; /* kubernetes: member DNS names, not the pod proxy */
        const char *namespace;
        const char *path;
        const char *ref;
        const char *advertise_host;
        const char *control_socket; /* the daemon's; NULL: <state_dir>/control.sock */
        bool color;                 /* stdout is a terminal and NO_COLOR unset */
};
extern struct eg_settings eg_settings;

/* What parsing does with an option: call the command's handler, or store it in the handler's
 * userdata (eg_settings for the common options) at offset. */
enum eg_option_store {
        EG_OPT_HANDLER,
        EG_OPT_STRING, /* a const char * member: the value */
        EG_OPT_FLAG,   /* a bool member: true */
};

struct eg_option {
        int id;           /* passed to the command's handler; < 0 for common options */
        const char *name; /* long name without "--" */
        char short_name;  /* 0 for none */
        const char *arg;  /* metavar; NULL for a flag */
        const char *help;
        bool optional_arg; /* "--wait" or "--wait=30s" */
        enum eg_option_store store;
        size_t offset;
};
/* For an option table row: the value lands in member of type. */
#define EG_OPT_STRING_AT(type, member) .store = EG_OPT_STRING, .offset = offsetof(type, member)
#define EG_OPT_FLAG_AT(type, member) .store = EG_OPT_FLAG, .offset = offsetof(type, member)

struct eg_command;
typedef int (*eg_command_fn)(const struct eg_command *cmd, int argc, char **argv);

struct eg_command {
        const char *name;
        eg_command_fn fn;
        const char *summary;
        const char *usage;               /* after "etcd-gitops " */
        const struct eg_option *options; /* terminated by {0} */
        bool uses_common;                /* accepts the common options */
};

extern const struct eg_command eg_commands[];
extern const size_t eg_n_commands;
/* Taken by every command with uses_common; terminated by {0}. */
extern const struct eg_option eg_common_options[];

/* Called for each command-specific option; value is NULL for a flag. Return < 0 to
 * reject (after printing why). */
typedef int (*eg_option_handler)(int id, const char *value, void *userdata);

/* Parses argv (argv[0] is the command name). Positional arguments are left in
 * *ret_args (pointers into argv). Returns 0 to go on, EG_CLI_STOP_OK after printing
 * --help, or -EINVAL after printing a usage error. */
#define EG_CLI_STOP_OK 1
int eg_cli_parse(const struct eg_command *cmd, int argc, char **argv, eg_option_handler h, void *userdata,
                 char ***ret_args, size_t *ret_n);
void eg_cli_print_help(const struct eg_command *cmd);

/* "NS/NAME", or "NAME" in --namespace (default "default"), into two malloc'd strings. */
int eg_cli_cluster_name(const char *arg, char **ret_ns, char **ret_name);

/* Applies defaults that depend on the environment (state dir, audit log path). */
int eg_settings_finish(void);

/* Exit code for a parse result: 0 for --help, 2 for a usage error. */
static inline int eg_cli_parse_exit(int r) { return r == EG_CLI_STOP_OK ? EG_EXIT_OK : EG_EXIT_ERROR; }

/* Subcommands. */
int cmd_validate(const struct eg_command *cmd, int argc, char **argv);
int cmd_diff(const struct eg_command *cmd, int argc, char **argv);
int cmd_apply(const struct eg_command *cmd, int argc, char **argv);
int cmd_run(const struct eg_command *cmd, int argc, char **argv);
int cmd_get(const struct eg_command *cmd, int argc, char **argv);
int cmd_audit(const struct eg_command *cmd, int argc, char **argv);
int cmd_version(const struct eg_command *cmd, int argc, char **argv);
int cmd_backup(const struct eg_command *cmd, int argc, char **argv);
int cmd_recover(const struct eg_command *cmd, int argc, char **argv);
int cmd_completion(const struct eg_command *cmd, int argc, char **argv);
int cmd_env(const struct eg_command *cmd, int argc, char **argv);
int cmd_logs(const struct eg_command *cmd, int argc, char **argv);
int cmd_reconcile(const struct eg_command *cmd, int argc, char **argv);
int cmd_suspend(const struct eg_command *cmd, int argc, char **argv);
int cmd_resume(const struct eg_command *cmd, int argc, char **argv);

extern const struct eg_option cmd_validate_options[];
extern const struct eg_option cmd_diff_options[];
extern const struct eg_option cmd_apply_options[];
extern const struct eg_option cmd_run_options[];
extern const struct eg_option cmd_get_options[];
extern const struct eg_option cmd_audit_options[];
extern const struct eg_option cmd_backup_options[];
extern const struct eg_option cmd_recover_options[];
extern const struct eg_option cmd_version_options[];
extern const struct eg_option cmd_logs_options[];
extern const struct eg_option cmd_reconcile_options[];
extern const struct eg_option cmd_suspend_options[];
