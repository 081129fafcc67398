/* etcd-gitops apply: converge the clusters to the source once, then exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/cycle.h"
#include "control.h"
#include "policy_options.h"
#include "output.h"
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
                        fprintf(stderr, "etcd-gitops apply: --wait takes a duration such as 90s or 5m, got '%s'\n",
                                value);
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

/* Passes until converged, or with --wait until the deadline, or without it until a pass
 * takes no step; a stop signal ends it after the step under way. */
static int converge(struct eg_cycle *cycle, const struct eg_desired_set *set, const struct eg_source_revision *rev,
                    int64_t wait_ms, struct eg_pass_result *ret) {
        int64_t deadline = eg_now_monotonic_ms() + wait_ms;
        int r;
        for (;;) {
                struct eg_cycle_result res;
                r = eg_cycle_run(cycle, set, rev, NULL, &res);
                *ret = res.pass;
                eg_cycle_result_done(&res);
                if (r < 0 || ret->all_converged || stop_signal)
                        break;
                int64_t now = eg_now_monotonic_ms();
                if (wait_ms == 0 && ret->n_actions == 0)
                        break;
                if (wait_ms > 0 && now >= deadline)
                        break;
                sleep_until(ret->next_due_ms, wait_ms > 0 ? deadline : now + 1000);
        }
        return r;
}

/* Converges to what the cycle read, then takes the backups the source asks for that are
 * due now (one-shot ones once). Returns the exit code. */
static int apply_read(int64_t wait_ms, struct eg_cycle *cycle, const struct eg_cycle_read *in) {
        const struct eg_desired_set *set = in->set;
        struct eg_pass_result res = {0};
        catch_stop_signals();
        int r = converge(cycle, set, &in->rev, wait_ms, &res);
        if (stop_signal)
                fprintf(stderr,
                        "etcd-gitops apply: %s: stopped after the step under way; apply or run again to go on\n",
                        strsignal(stop_signal));
        int backups_failed = r >= 0 && !stop_signal ? eg_cycle_backups_now(cycle, set, in->rev.revision) : 0;
        /* the commit's note says what it caused */
        eg_cycle_note_flush(cycle);
        if (r < 0)
                return EG_EXIT_ERROR;
        printf("%zu %s: %zu converged, %zu blocked, %zu failing%s\n", res.n_clusters,
               eg_plural(res.n_clusters, "cluster", "clusters"), res.n_converged, res.n_blocked, res.n_failed,
               res.all_converged ? ""
               : wait_ms         ? " (not converged by the deadline)"
                                 : " (not converged yet: use --wait)");
        if (backups_failed > 0)
                printf("%d %s failed: etcd-gitops audit --decision backup --outcome failed\n", backups_failed,
                       eg_plural((size_t)backups_failed, "backup", "backups"));
        return res.all_converged && set->n_errors == 0 && backups_failed <= 0 ? EG_EXIT_OK : EG_EXIT_DIFF;
}

/* Reads the source through a cycle of env's and applies it. Returns the exit code. */
static int apply(int64_t wait_ms, struct eg_cli_env *env) {
        struct eg_backup_controller_options bo = {
                .runtime = env->runtime, .journal = env->journal, .state_dir = eg_settings.state_dir};
        struct eg_cycle_options co = {.rec = env->rec, .source = env->source, .journal = env->journal};
        struct eg_cycle *cycle = NULL;
        struct eg_cycle_read in = {0};
        int exit_code = EG_EXIT_ERROR;
        int r = eg_backup_controller_new(&bo, &co.backups);
        if (r >= 0)
                r = eg_cycle_new(&co, &cycle);
        if (r < 0)
                eg_log_error_errno(r, "cannot set up: %m");
        else if (eg_cycle_read(cycle, &in) < 0)
                eg_log_error("%s", in.error ? in.error : strerror(-in.r));
        else {
                if (in.rev.stale)
                        /* the source fell back to the last revision it could read */
                        eg_log_warning("%s", in.rev.stale);
                eg_cli_print_diags(in.set);
                exit_code = apply_read(wait_ms, cycle, &in);
        }
        eg_cycle_read_done(&in);
        eg_cycle_free(cycle);
        eg_backup_controller_free(co.backups);
        return exit_code;
}

int eg_cli_apply_here(const struct policy_args *p, int64_t wait_ms) {
        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.p = p, .want_audit = true, .stop = &stop_signal};
        if (eg_cli_env_open(&env, &eo) < 0)
                return EG_EXIT_ERROR;
        int exit_code = apply(wait_ms, &env);
        eg_cli_env_close(&env);
        return exit_code;
}

/* With a daemon running, the audit log and the clusters are its own: apply asks it to read
 * the source and pass, when it follows the same source; it says why not when it does not.
 * Returns the exit code, or -1 when no daemon answers. */
static int hand_off(const struct apply_args *a) {
        struct eg_control *c = NULL;
        int found = eg_control_find("apply", &c);
        if (found <= 0)
                return found == 0 ? -1 : EG_EXIT_ERROR;
        /* the daemon runs elsewhere: a directory is named as it resolves here */
        _cleanup_free_ char *src = eg_source_is_git_url(a->p.source) ? strdup(a->p.source)
                                                                     : realpath(a->p.source, NULL);
        json_t *req = json_pack("{s:s, s:b, s:s, s:s*, s:s*}", "command", "reconcile", "withSource", true, "source",
                                src ? src : a->p.source, "path", eg_settings.path, "ref", eg_settings.ref);
        int exit_code = EG_EXIT_ERROR;
        if (req) {
                eg_log_info("a daemon follows this state dir: asking it to read the source and pass");
                exit_code = eg_control_reconcile("apply", c, req, a->wait_ms);
        }
        json_decref(req);
        eg_control_free(c);
        return exit_code;
}

int cmd_apply(const struct eg_command *cmd, int argc, char **argv) {
        struct apply_args a = {0};
        eg_policy_init(&a.p.policy);
        int exit_code;
        if (eg_cli_parse_sourced(cmd, argc, argv, on_option, &a, &a.p, &exit_code) < 0)
                return exit_code;
        exit_code = hand_off(&a);
        return exit_code >= 0 ? exit_code : eg_cli_apply_here(&a.p, a.wait_ms);
}
