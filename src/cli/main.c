/* etcd-gitops: entry point and the subcommand table. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "hints.h"

const struct eg_command eg_commands[] = {
        {"validate", cmd_validate, "Parse and validate manifests; exit 1 if any object is invalid.",
         "validate [--strict] [-o text|json] PATH...", cmd_validate_options, false},
        {"diff", cmd_diff, "Show what applying the source would do; exit 0 no change, 1 changes, 2 error.",
         "diff [--source SRC] [options] (SRC defaults to $ETCD_GITOPS_SOURCE)", cmd_diff_options, true},
        {"apply", cmd_apply, "Converge the clusters once and exit (0 converged, 1 not converged, 2 error).",
         "apply --source SRC [--wait[=DURATION]] [--prune]", cmd_apply_options, true},
        {"reconcile", cmd_reconcile,
         "Ask the running daemon for a pass now and wait for it (without one: apply here); exit as apply.",
         "reconcile [CLUSTER] [--with-source] [--timeout DURATION]", cmd_reconcile_options, true},
        {"run", cmd_run, "Keep the clusters converged to the source (the daemon).",
         "run --source SRC [--interval DURATION] [--listen ADDR] [--prune] [--dry-run]", cmd_run_options, true},
        {"get", cmd_get, "Show live clusters, members or backups.",
         "get [clusters|members|backups] [NAME] [-A] [-w] [--no-headers] [-o table|wide|name|json|yaml]",
         cmd_get_options, true},
        {"audit", cmd_audit, "List audit records, or verify the log's hash chain.",
         "audit [--cluster [NS/]NAME] [--revision REV] [--since DURATION|TIME] [--outcome O] [--decision D] [-f] "
         "[-o table|json] | audit verify",
         cmd_audit_options, true},
        {"backup", cmd_backup, "Take an ad-hoc snapshot of a cluster.",
         "backup CLUSTER|--endpoints URL,... --to s3://BUCKET/KEY|PATH", cmd_backup_options, true},
        {"recover", cmd_recover,
         "Bring back a cluster whose quorum is lost for good: survivors, backups, the way back.",
         "recover CLUSTER [--from-member [NAME] | --from-backup [PATH|s3://BUCKET/KEY]] [--dry-run] [--force] "
         "[--source SRC]",
         cmd_recover_options, true},
        {"env", cmd_env, "Print a cluster's etcdctl environment (ETCDCTL_ENDPOINTS, certificates) to eval.",
         "env CLUSTER", NULL, true},
        {"logs", cmd_logs, "Print a cluster's member logs (local: under the state dir; kubernetes: the pods').",
         "logs CLUSTER [MEMBER] [-f]", cmd_logs_options, true},
        {"suspend", cmd_suspend, "Hold a cluster as it is: observed and reported, never changed, until resumed.",
         "suspend CLUSTER|--all [--reason TEXT]", cmd_suspend_options, true},
        {"resume", cmd_resume, "Let a suspended cluster converge again.", "resume CLUSTER|--all [--reason TEXT]",
         cmd_suspend_options, true},
        {"completion", cmd_completion, "Print a shell completion script for bash, zsh or fish.",
         "completion bash|zsh|fish", NULL, false},
        {"version", cmd_version, "Print the version and the libraries' (-o json: with the git commit).",
         "version [-o text|json]", cmd_version_options, false},
};
const size_t eg_n_commands = EG_ELEMENTSOF(eg_commands);

static void usage(FILE *f) {
        fprintf(f, "usage: etcd-gitops <command> [options]\n\n"
                   "Keeps etcd clusters in the shape a git repository or directory describes.\n\n"
                   "commands:\n");
        for (size_t i = 0; i < eg_n_commands; i++)
                fprintf(f, "  %-10s %s\n", eg_commands[i].name, eg_commands[i].summary);
        fprintf(f,
                "\nSee 'etcd-gitops <command> --help'. Exit codes: 0 ok, 1 differences/not converged/invalid, 2 error.\n");
}

int main(int argc, char **argv) {
        if (argc < 2) {
                usage(stderr);
                return EG_EXIT_ERROR;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return EG_EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0)
                return cmd_version(&eg_commands[eg_n_commands - 1], 1, argv + 1);
        for (size_t i = 0; i < eg_n_commands; i++) {
                if (strcmp(argv[1], eg_commands[i].name) != 0)
                        continue;
                curl_global_init(CURL_GLOBAL_DEFAULT);
                int r = eg_commands[i].fn(&eg_commands[i], argc - 1, argv + 1);
                curl_global_cleanup();
                free(eg_settings.state_dir);
                free(eg_settings.audit_log);
                return r;
        }
        const char *names[EG_ELEMENTSOF(eg_commands) + 1] = {0};
        for (size_t i = 0; i < eg_n_commands; i++)
                names[i] = eg_commands[i].name;
        const char *near = eg_hint_closest(argv[1], names);
        fprintf(stderr, "etcd-gitops: '%s' is not a command%s%s%s (see 'etcd-gitops --help')\n", argv[1],
                near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
        return EG_EXIT_ERROR;
}
