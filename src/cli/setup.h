/* What apply, run, diff and get share: opening the runtime, audit log, source and
 * reconciler from the common settings, and printing a desired set's diagnostics. */
#pragma once

#include "cli.h"
#include "policy_options.h"
#include "etcd-gitops/audit.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/source.h"

struct eg_cli_env {
        struct eg_runtime *runtime;
        struct eg_audit *audit;     /* only when asked for */
        struct eg_journal *journal; /* over audit, or without a log: sinks only */
        struct eg_source *source;   /* only when a source was given */
        struct eg_reconciler *rec;
};

struct eg_cli_env_options {
        const struct policy_args *p; /* source, policy and git settings; NULL: no source */
        bool want_audit;
        bool dry_run;
        bool read_only;                 /* diff, get: nothing may change, not even repairs */
        eg_reconcile_event_fn on_event; /* metrics, notes; may be NULL */
        void *event_userdata;
        const volatile sig_atomic_t *stop; /* see eg_reconciler_options.stop; may be NULL */
};

/* eg_cli_parse for commands that take --source and no positional arguments (apply,
 * diff, run). Returns 0 to go on, else the exit code to return (0 after --help). */
int eg_cli_parse_sourced(const struct eg_command *cmd, int argc, char **argv, eg_option_handler h, void *userdata,
                         const struct policy_args *p, int *ret_exit);

/* The runtime the common settings name (--runtime and its options). */
int eg_cli_runtime_open(bool read_only, struct eg_runtime **ret, struct eg_error *err);

/* Logs what failed; returns a negative errno. */
int eg_cli_env_open(struct eg_cli_env *e, const struct eg_cli_env_options *opt);
void eg_cli_env_close(struct eg_cli_env *e);

/* Reads e->source: logs a read failure (returns it), warns when a git source fell back
 * to its last good revision. */
int eg_cli_read_source(struct eg_cli_env *e, struct eg_desired_set **ret, struct eg_source_revision *ret_rev);

/* apply without a daemon: reads p's source, converges (waiting up to wait_ms, 0: taking
 * every step that needs no waiting), takes the backups due. Returns the exit code. */
int eg_cli_apply_here(const struct policy_args *p, int64_t wait_ms);

/* Prints every diagnostic as "path:line:col: error: field: message" on stderr. */
void eg_cli_print_diags(const struct eg_desired_set *set);
