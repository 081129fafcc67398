/* etcd-gitops suspend and resume: hold a cluster as it is, without a commit, and let it go. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "output.h"
#include "resolve.h"
#include "setup.h"

struct suspend_args {
        const char *reason;
        bool all;
};

const struct eg_option cmd_suspend_options[] = {
        {1, "all", 0, NULL, "every cluster (desired, running or suspended)", EG_OPT_FLAG_AT(struct suspend_args, all)},
        {2, "reason", 0, "TEXT", "why: kept in the audit log, and shown by get while suspended",
         EG_OPT_STRING_AT(struct suspend_args, reason)},
        {0},
};

/* What changed, on stdout; a cluster already so is not an error. */
static void report(bool on, const char *ns, const char *name, int changed) {
        const char *done = on ? "suspended" : "resumed";
        if (ns && changed)
                printf("cluster %s/%s %s\n", ns, name, done);
        else if (ns)
                printf("cluster %s/%s is %s suspended; nothing changed\n", ns, name, on ? "already" : "not");
        else if (changed)
                printf("%d %s %s\n", changed, eg_plural((size_t)changed, "cluster", "clusters"), done);
        else
                printf("%s; nothing changed\n", on ? "every cluster is already suspended" : "no cluster is suspended");
}

/* Without a daemon: the state dir and the audit log are this command's to change. */
static int set_here(const char *command, bool on, const char *arg, const struct suspend_args *a) {
        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.want_audit = true, .read_only = true};
        if (eg_cli_env_open(&env, &eo) < 0)
                return EG_EXIT_ERROR;
        _cleanup_free_ char *ns = NULL, *name = NULL, *actor = eg_actor_of_uid(getuid());
        struct eg_error err = {0};
        int k = arg ? eg_cli_resolve_on(env.runtime, command, arg, &ns, &name) : 0;
        if (k >= 0 && !actor)
                k = -ENOMEM;
        if (k >= 0) {
                k = eg_reconciler_set_suspended(env.rec, ns, name, on, a->reason, actor, &err);
                if (k < 0)
                        fprintf(stderr, "etcd-gitops %s: %s\n", command, err.message ? err.message : strerror(-k));
        }
        eg_error_done(&err);
        eg_cli_env_close(&env);
        if (k < 0)
                return EG_EXIT_ERROR;
        report(on, ns, name, k);
        return EG_EXIT_OK;
}

/* How long the daemon may take: its worker takes the request up between two passes. */
#define DAEMON_TIMEOUT_MS (5 * 60 * 1000)

/* Through the daemon, which holds the state dir and the audit log: the name resolved here,
 * the caller's uid told by the socket itself. */
static int set_through(struct eg_control *c, const char *command, bool on, const char *arg,
                       const struct suspend_args *a) {
        _cleanup_free_ char *ns = NULL, *name = NULL, *full = NULL;
        if (arg) {
                struct eg_error err = {0};
                struct eg_runtime *rt = NULL;
                int k = eg_cli_runtime_open(true, &rt, &err);
                if (k < 0)
                        fprintf(stderr, "etcd-gitops %s: cannot look up cluster %s: %s\n", command, arg,
                                err.message ? err.message : strerror(-k));
                else
                        k = eg_cli_resolve_on(rt, command, arg, &ns, &name);
                eg_runtime_free(rt);
                eg_error_done(&err);
                if (k < 0 || !(full = eg_strdup_printf("%s/%s", ns, name)))
                        return EG_EXIT_ERROR;
        }
        json_t *req = json_pack("{s:s, s:s?, s:s?}", "command", command, "cluster", full, "reason", a->reason);
        json_t *res = NULL;
        struct eg_error err = {0};
        int k = req ? eg_control_call(c, req, NULL, NULL, &res, eg_now_monotonic_ms() + DAEMON_TIMEOUT_MS, &err)
                    : -ENOMEM;
        json_decref(req);
        const char *result = json_string_value(json_object_get(res, "result"));
        const char *why = k < 0 ? (err.message ? err.message : strerror(-k))
                                : json_string_value(json_object_get(res, "message"));
        bool ok = k >= 0 && result && strcmp(result, "ok") == 0;
        if (ok)
                report(on, ns, name, (int)json_integer_value(json_object_get(res, "changed")));
        else
                fprintf(stderr, "etcd-gitops %s: %s\n", command, why ? why : "the daemon refused");
        json_decref(res);
        eg_error_done(&err);
        return ok ? EG_EXIT_OK : EG_EXIT_ERROR;
}

static int suspend_or_resume(const struct eg_command *cmd, int argc, char **argv, bool on) {
        struct suspend_args a = {0};
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, NULL, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *arg = n == 1 ? args[0] : NULL;
        free(args);
        if ((n == 1) == a.all || n > 1) {
                fprintf(stderr, "etcd-gitops %s: name one cluster or give --all\nusage: etcd-gitops %s\n", cmd->name,
                        cmd->usage);
                return EG_EXIT_ERROR;
        }
        struct eg_control *c = NULL;
        int found = eg_control_find(cmd->name, &c);
        if (found != 0) {
                int exit_code = found > 0 ? set_through(c, cmd->name, on, arg, &a) : EG_EXIT_ERROR;
                eg_control_free(c);
                return exit_code;
        }
        return set_here(cmd->name, on, arg, &a);
}

int cmd_suspend(const struct eg_command *cmd, int argc, char **argv) {
        return suspend_or_resume(cmd, argc, argv, true);
}

int cmd_resume(const struct eg_command *cmd, int argc, char **argv) {
        return suspend_or_resume(cmd, argc, argv, false);
}
