/* etcd-gitops reconcile: ask the running daemon for a pass now and wait for it, or, with
 * no daemon, apply the source here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "output.h"
#include "policy_options.h"
#include "setup.h"

#define DEFAULT_TIMEOUT_MS (5 * 60 * 1000)

enum { OPT_WITH_SOURCE = 1, OPT_TIMEOUT };

const struct eg_option cmd_reconcile_options[] = {
        POLICY_OPTIONS,
        {OPT_WITH_SOURCE, "with-source", 0, NULL, "fetch (git) or re-read (directory) the source first"},
        {OPT_TIMEOUT, "timeout", 0, "DURATION", "how long to wait for the pass (default 5m)"},
        {0},
};

struct reconcile_args {
        struct policy_args p;
        bool with_source;
        int64_t timeout_ms;
};

static int on_option(int id, const char *value, void *userdata) {
        struct reconcile_args *a = userdata;
        int k = policy_option(&a->p, id, value);
        if (k != 0)
                return k < 0 ? k : 0;
        if (id == OPT_WITH_SOURCE) {
                a->with_source = true;
                return 0;
        }
        if (id == OPT_TIMEOUT && eg_parse_duration_ms(value, &a->timeout_ms) >= 0 && a->timeout_ms > 0)
                return 0;
        fprintf(stderr, "etcd-gitops reconcile: --timeout takes a duration such as 90s or 5m, got '%s'\n", value);
        return -EINVAL;
}

static void print_decision(json_t *dec) {
        const char *cluster = json_string_value(json_object_get(dec, "cluster"));
        const char *kind = json_string_value(json_object_get(dec, "decision"));
        const char *member = json_string_value(json_object_get(dec, "member"));
        const char *reason = json_string_value(json_object_get(dec, "reason"));
        const char *outcome = json_string_value(json_object_get(dec, "outcome"));
        const char *error = json_string_value(json_object_get(dec, "error"));
        cluster = cluster ? cluster : "-";
        kind = kind ? kind : "?";
        if (outcome && strcmp(outcome, "failed") == 0)
                eg_log_error("%s: %s %s failed: %s", cluster, kind, member ? member : "", error ? error : "");
        else if (outcome && strcmp(outcome, "blocked") == 0)
                eg_log_warning("%s: %s%s%s", cluster, reason ? reason : kind, error ? ": " : "", error ? error : "");
        else
                eg_log_info("%s: %s%s%s%s%s", cluster, kind, member ? " " : "", member ? member : "",
                            reason ? ": " : "", reason ? reason : "");
}

static int on_event(json_t *ev, void *ud) {
        const char *what = json_string_value(json_object_get(ev, "event"));
        if (what && strcmp(what, "decision") == 0)
                print_decision(json_object_get(ev, "decision"));
        return 0;
}

/* As eg_cli_print_diags prints a desired set's. */
static void print_diags(json_t *diags) {
        size_t i;
        json_t *d;
        json_array_foreach(diags, i, d) {
                const char *sev = json_string_value(json_object_get(d, "severity"));
                const char *file = json_string_value(json_object_get(d, "file"));
                const char *field = json_string_value(json_object_get(d, "field"));
                const char *msg = json_string_value(json_object_get(d, "message"));
                bool error = sev && strcmp(sev, "error") == 0;
                fprintf(stderr, "%s%s:%lld:%lld: %s: %s%s%s\n",
                        eg_log_journal_prefix(error ? EG_LOG_ERROR : EG_LOG_WARNING), file ? file : "?",
                        (long long)json_integer_value(json_object_get(d, "line")),
                        (long long)json_integer_value(json_object_get(d, "column")), error ? "error" : "warning",
                        field ? field : "", field ? ": " : "", msg ? msg : "");
        }
}

/* What the daemon's pass came to, as apply prints it. Returns the exit code. */
static int print_result(const char *command, json_t *res) {
        const char *msg = json_string_value(json_object_get(res, "message"));
        int exit_code = (int)json_integer_value(json_object_get(res, "exit"));
        const char *result = json_string_value(json_object_get(res, "result"));
        if (!result || strcmp(result, "ok") != 0) {
                fprintf(stderr, "etcd-gitops %s: %s\n", command, msg ? msg : "the daemon refused");
                return exit_code == EG_EXIT_DIFF ? EG_EXIT_DIFF : EG_EXIT_ERROR;
        }
        const char *warning = json_string_value(json_object_get(res, "warning"));
        if (warning)
                eg_log_warning("%s", warning);
        print_diags(json_object_get(res, "diagnostics"));
        json_t *p = json_object_get(res, "pass");
        json_int_t n = json_integer_value(json_object_get(p, "clusters"));
        bool all = json_is_true(json_object_get(p, "allConverged"));
        printf("%lld %s: %lld converged, %lld blocked, %lld failing%s\n", (long long)n,
               eg_plural((size_t)n, "cluster", "clusters"),
               (long long)json_integer_value(json_object_get(p, "converged")),
               (long long)json_integer_value(json_object_get(p, "blocked")),
               (long long)json_integer_value(json_object_get(p, "failing")),
               all ? "" : " (not converged yet: the daemon goes on)");
        return exit_code == EG_EXIT_OK ? EG_EXIT_OK : EG_EXIT_DIFF;
}

int eg_control_reconcile(const char *command, struct eg_control *c, json_t *req, int64_t timeout_ms) {
        json_t *res = NULL;
        struct eg_error err = {0};
        int64_t ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
        int r = eg_control_call(c, req, on_event, NULL, &res, eg_now_monotonic_ms() + ms, &err);
        if (r == -ETIMEDOUT)
                fprintf(stderr,
                        "etcd-gitops %s: the daemon's pass did not end within %llds (--timeout); it goes on: see "
                        "etcd-gitops get and etcd-gitops audit\n",
                        command, (long long)(ms / 1000));
        else if (r < 0)
                fprintf(stderr, "etcd-gitops %s: %s\n", command, err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        if (r < 0)
                return EG_EXIT_ERROR;
        int exit_code = print_result(command, res);
        json_decref(res);
        return exit_code;
}

/* The cluster argument as the daemon takes it: NAMESPACE/NAME, NAME in --namespace. */
static int reconcile_daemon(const struct reconcile_args *a, struct eg_control *c, const char *cluster) {
        _cleanup_free_ char *ns = NULL, *name = NULL, *full = NULL;
        if (cluster && (eg_cli_cluster_name(cluster, &ns, &name) < 0 || !(full = eg_strdup_printf("%s/%s", ns, name))))
                return EG_EXIT_ERROR;
        json_t *req = json_pack("{s:s, s:b, s:s*}", "command", "reconcile", "withSource", a->with_source, "cluster",
                                full);
        if (!req)
                return EG_EXIT_ERROR;
        int exit_code = eg_control_reconcile("reconcile", c, req, a->timeout_ms);
        json_decref(req);
        return exit_code;
}

int cmd_reconcile(const struct eg_command *cmd, int argc, char **argv) {
        struct reconcile_args a = {0};
        eg_policy_init(&a.p.policy);
        const char *env_source = getenv("ETCD_GITOPS_SOURCE");
        a.p.source = env_source && *env_source ? env_source : NULL;
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *cluster = n == 1 ? args[0] : NULL;
        free(args);
        if (n > 1) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                return EG_EXIT_ERROR;
        }
        struct eg_control *c = NULL;
        int found = eg_control_find("reconcile", &c);
        if (found != 0) {
                int exit_code = found > 0 ? reconcile_daemon(&a, c, cluster) : EG_EXIT_ERROR;
                eg_control_free(c);
                return exit_code;
        }
        if (!a.p.source) {
                _cleanup_free_ char *path = eg_control_socket_path();
                fprintf(stderr,
                        "etcd-gitops reconcile: no daemon answers on %s, and there is no --source "
                        "($ETCD_GITOPS_SOURCE) to apply here\n",
                        path ? path : "the control socket");
                return EG_EXIT_ERROR;
        }
        return eg_cli_apply_here(&a.p, 0);
}
