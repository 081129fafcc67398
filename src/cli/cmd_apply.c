/* etcd-gitops apply: converge the clusters to the source once, then exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/backup.h"
#include "policy_options.h"
#include "setup.h"

#define DEFAULT_WAIT_MS (5 * 60 * 1000)

enum { OPT_WAIT = 1 };

const struct eg_option cmd_apply_options[] = {
        POLICY_OPTIONS,
        {OPT_WAIT, "wait", 0, "DURATION", "wait until converged (default 5m when given without a value)", true},
        {0},
};

struct apply_args {
        struct policy_args p;
        int64_t wait_ms; /* 0: take every step that needs no waiting, then stop */
};

static int on_option(int id, const char *value, void *userdata) {
        struct apply_args *a = userdata;
        int k = policy_option(&a->p, id, value);
        if (k != 0)
                return k < 0 ? k : 0;
        if (id == OPT_WAIT) {
                if (!value) {
                        a->wait_ms = DEFAULT_WAIT_MS;
                        return 0;
                }
                if (eg_parse_duration_ms(value, &a->wait_ms) < 0) {
                        fprintf(stderr, "etcd-gitops apply: --wait takes a duration such as 90s or 5m, got '%s'\n", value);
                        return -EINVAL;
                }
                return 0;
        }
        return -EINVAL;
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

/* SIGINT and SIGTERM let the step under way finish (every step is resumable, but one
 * finished is one the next run need not redo); a second one ends apply at once. */
static void catch_stop_signals(void) {
        struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

static void sleep_until(int64_t due_ms, int64_t deadline_ms) {
        int64_t now = eg_now_monotonic_ms();
        int64_t until = due_ms < deadline_ms ? due_ms : deadline_ms;
        if (until <= now)
                return;
        int64_t ms = until - now;
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

int cmd_apply(const struct eg_command *cmd, int argc, char **argv) {
        struct apply_args a = {0};
        eg_policy_init(&a.p.policy);
        int r, exit_code;
        if (eg_cli_parse_sourced(cmd, argc, argv, on_option, &a, &a.p, &exit_code) < 0)
                return exit_code;

        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.p = &a.p, .want_audit = true, .stop = &stop_signal};
        if (eg_cli_env_open(&env, &eo) < 0)
                return EG_EXIT_ERROR;

        struct eg_desired_set *set = NULL;
        struct eg_source_revision srev = {0};
        struct eg_error err = {0};
        if (eg_cli_read_source(&env, &set, &srev) < 0) {
                eg_cli_env_close(&env);
                return EG_EXIT_ERROR;
        }
        eg_cli_print_diags(set);
        struct eg_revision_info rev = {.revision = srev.revision, .commit = srev.commit, .dirty = srev.dirty};

        int64_t deadline = eg_now_monotonic_ms() + a.wait_ms;
        struct eg_pass_result res = {0};
        bool backups_failed = false;
        catch_stop_signals();
        for (;;) {
                r = eg_reconciler_pass(env.rec, set, &rev, &res);
                if (r < 0 || res.all_converged || stop_signal)
                        break;
                int64_t now = eg_now_monotonic_ms();
                if (a.wait_ms == 0 && res.n_actions == 0)
                        break;
                if (a.wait_ms > 0 && now >= deadline)
                        break;
                sleep_until(res.next_due_ms, a.wait_ms > 0 ? deadline : now + 1000);
        }
        if (stop_signal)
                fprintf(stderr, "etcd-gitops apply: %s: stopped after the step under way; apply or run again to go on\n",
                        strsignal(stop_signal));
        if (r >= 0 && !stop_signal) {
                /* backups the source asks for that are due now (one-shot ones once) */
                struct eg_backup_controller *bc = NULL;
                struct eg_backup_controller_options bo = {.runtime = env.runtime, .audit = env.audit,
                                                          .state_dir = eg_settings.state_dir};
                int64_t next = 0;
                if (eg_backup_controller_new(&bo, &bc) < 0)
                        r = -ENOMEM;
                else if (eg_backup_controller_pass(bc, set, srev.revision, eg_now_realtime_ms(), &next) > 0)
                        backups_failed = true;
                eg_backup_controller_free(bc);
        }
        if (r >= 0 && srev.commit && env.audit && env.source->ops->annotate) {
                /* the commit's note says what it caused, from the audit log */
                _cleanup_free_ char *note = NULL;
                if (eg_audit_note_for_commit(eg_settings.audit_log, srev.commit, &note) >= 0 &&
                    eg_source_annotate(env.source, srev.commit, note, &err) < 0) {
                        eg_log_warning("cannot write the git note on %s: %s", srev.commit,
                                       err.message ? err.message : "unknown error");
                        eg_error_done(&err);
                }
        }
        exit_code = r < 0                                                      ? EG_EXIT_ERROR
                        : res.all_converged && set->n_errors == 0 && !backups_failed ? EG_EXIT_OK
                                                                                      : EG_EXIT_DIFF;
        if (r >= 0)
                printf("%zu clusters: %zu converged, %zu blocked, %zu failing%s\n", res.n_clusters, res.n_converged,
                       res.n_blocked, res.n_failed,
                       res.all_converged ? "" : a.wait_ms ? " (not converged by the deadline)" : " (not converged yet: use --wait)");
        eg_desired_set_free(set);
        eg_source_revision_done(&srev);
        eg_cli_env_close(&env);
        return exit_code;
}
