/* Opening what apply, run, diff and get need, from the common settings. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/kube.h"
#include "setup.h"

int eg_cli_runtime_open(bool read_only, struct eg_runtime **ret, struct eg_error *err) {
        if (strcmp(eg_settings.runtime, "kubernetes") == 0) {
                struct eg_runtime_kube_options ko = {
                        .state_dir = eg_settings.state_dir,
                        .kubeconfig = eg_settings.kubeconfig,
                        .context = eg_settings.context,
                        .namespace = eg_settings.namespace,
                        .etcd_access = eg_settings.etcd_access_direct ? EG_KUBE_ACCESS_DIRECT : EG_KUBE_ACCESS_PROXY,
                        /* observe repairs services and the PDB: not while only looking */
                        .read_only = read_only,
                };
                return eg_runtime_kube_new(&ko, ret, err);
        }
        struct eg_runtime_local_options lo = {
                .state_dir = eg_settings.state_dir,
                .etcd_bin_dir = eg_settings.etcd_bin_dir,
                .advertise_host = eg_settings.advertise_host,
        };
        return eg_runtime_local_new(&lo, ret, err);
}

int eg_cli_env_open(struct eg_cli_env *e, const struct eg_cli_env_options *opt) {
        *e = (struct eg_cli_env){0};
        struct eg_error err = {0};
        int r = eg_cli_runtime_open(opt->dry_run || opt->read_only, &e->runtime, &err);
        if (r < 0)
                goto fail;
        if (opt->p && opt->p->source) {
                struct eg_source_options so = {
                        .location = opt->p->source,
                        .subpath = eg_settings.path,
                        .ref = eg_settings.ref,
                        .state_dir = eg_settings.state_dir,
                        .spec = {.strict = opt->p->strict},
                        .token_file = opt->p->token_file,
                        .ssh_key_file = opt->p->ssh_key_file,
                        .known_hosts_file = opt->p->known_hosts_file,
                        .insecure_skip_host_key_check = opt->p->insecure_host_key,
                        .refuse_force_push = opt->p->refuse_force_push,
                        .push_notes = opt->p->push_notes,
                };
                r = eg_source_open(&so, &e->source, &err);
                if (r < 0)
                        goto fail;
        }
        if (opt->want_audit) {
                char *warning = NULL;
                r = eg_audit_open(eg_settings.audit_log, &e->audit, &warning);
                if (warning) {
                        eg_log_warning("%s", warning);
                        free(warning);
                }
                if (r < 0) {
                        eg_log_error_errno(r, "cannot open the audit log '%s': %m", eg_settings.audit_log);
                        eg_cli_env_close(e);
                        return r;
                }
        }
        r = eg_journal_new(e->audit, &e->journal);
        if (r < 0) {
                eg_cli_env_close(e);
                return eg_log_error_errno(r, "cannot set up: %m");
        }
        struct eg_policy policy;
        if (opt->p)
                policy = opt->p->policy;
        else
                eg_policy_init(&policy);
        struct eg_reconciler_options ro = {
                .runtime = e->runtime,
                .journal = e->journal,
                .policy = policy,
                .dry_run = opt->dry_run,
                .state_dir = eg_settings.state_dir,
                .namespace = eg_settings.namespace,
                .on_event = opt->on_event,
                .event_userdata = opt->event_userdata,
                .stop = opt->stop,
        };
        r = eg_reconciler_new(&ro, &e->rec);
        if (r < 0) {
                eg_cli_env_close(e);
                return eg_log_error_errno(r, "cannot set up: %m");
        }
        return 0;
fail:
        eg_log_error("%s", err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        eg_cli_env_close(e);
        return r;
}

void eg_cli_env_close(struct eg_cli_env *e) {
        eg_reconciler_free(e->rec);
        eg_source_free(e->source);
        eg_journal_free(e->journal);
        if (e->audit)
                eg_audit_close(e->audit);
        if (e->runtime)
                e->runtime->ops->free(e->runtime);
        *e = (struct eg_cli_env){0};
}

void eg_cli_print_diags(const struct eg_desired_set *set) {
        for (size_t i = 0; i < set->n_diags; i++) {
                const struct eg_diag *d = &set->diags[i];
                bool error = d->severity == EG_SEVERITY_ERROR;
                fprintf(stderr, "%s%s:%u:%u: %s: %s%s%s\n",
                        eg_log_journal_prefix(error ? EG_LOG_ERROR : EG_LOG_WARNING), d->path ? d->path : "?", d->line,
                        d->column, error ? "error" : "warning", d->field ? d->field : "", d->field ? ": " : "",
                        d->message);
        }
}

int eg_cli_read_source(struct eg_cli_env *e, struct eg_desired_set **ret, struct eg_source_revision *ret_rev) {
        struct eg_error err = {0};
        int r = eg_source_read(e->source, ret, ret_rev, &err);
        if (r < 0)
                eg_log_error("%s", err.message ? err.message : strerror(-r));
        else if (ret_rev->stale)
                /* the source fell back to the last revision it could read */
                eg_log_warning("%s", ret_rev->stale);
        eg_error_done(&err);
        return r;
}

int eg_cli_parse_sourced(const struct eg_command *cmd, int argc, char **argv, eg_option_handler h, void *userdata,
                         const struct policy_args *p, int *ret_exit) {
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, h, userdata, &args, &n);
        if (r != 0) {
                *ret_exit = eg_cli_parse_exit(r);
                return -1;
        }
        free(args);
        if (!p->source || n > 0) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                *ret_exit = EG_EXIT_ERROR;
                return -1;
        }
        return 0;
}
