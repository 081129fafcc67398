/* etcd-gitops run: the daemon that keeps clusters converged to the source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/daemon.h"
#include "etcd-gitops/http.h"
#include "policy_options.h"
#include "setup.h"

enum {
        OPT_INTERVAL = 1,
        OPT_LISTEN,
        OPT_DRY_RUN,
        OPT_DEBOUNCE,
        OPT_WEBHOOK_SECRET_FILE,
        OPT_LEADER_ELECT,
        OPT_NO_LEADER_ELECT,
        OPT_LEADER_ELECT_LEASE,
        OPT_LEADER_ELECT_NAMESPACE,
        OPT_READYZ_SOURCE,
};

const struct eg_option cmd_run_options[] = {
        POLICY_OPTIONS,
        {OPT_INTERVAL, "interval", 0, "DURATION", "re-read the source at least this often (default 15s, ±10 %)"},
        {OPT_DEBOUNCE, "debounce", 0, "DURATION", "quiet time after a file change before reading (default 20ms)"},
        {OPT_LISTEN, "listen", 0, "ADDR",
         "HTTP endpoints on HOST:PORT (default " EG_HTTP_DEFAULT_LISTEN "; none: off)"},
        {OPT_READYZ_SOURCE, "readyz-source", 0, "required|optional",
         "whether /readyz fails while the source cannot be read (default required)"},
        {OPT_WEBHOOK_SECRET_FILE, "webhook-secret-file", 0, "FILE",
         "secret that POST /hook requests must be signed with"},
        {OPT_DRY_RUN, "dry-run", 0, NULL, "plan and record what would be done; change nothing"},
        {OPT_LEADER_ELECT, "leader-elect", 0, NULL,
         "act only while holding a Lease, so that one of several daemons acts (default with --runtime kubernetes, "
         "unless --dry-run)"},
        {OPT_NO_LEADER_ELECT, "no-leader-elect", 0, NULL, "act without a Lease: this daemon must be the only one"},
        {OPT_LEADER_ELECT_LEASE, "leader-elect-lease", 0, "NAME", "the Lease (default " EG_LEASE_DEFAULT_NAME ")"},
        {OPT_LEADER_ELECT_NAMESPACE, "leader-elect-namespace", 0, "NS",
         "the Lease's namespace (default: the kubeconfig context's, else default)"},
        {0},
};

struct run_args {
        struct policy_args p;
        int64_t interval_ms, debounce_ms;
        bool dry_run;
        const char *listen;
        const char *webhook_secret_file;
        bool listen_given;
        bool readyz_source_optional;
        int leader_elect; /* -1: the runtime's default */
        const char *lease_name, *lease_namespace;
};

static int on_option(int id, const char *value, void *userdata) {
        struct run_args *a = userdata;
        int k = policy_option(&a->p, id, value);
        if (k != 0)
                return k < 0 ? k : 0;
        switch (id) {
        case OPT_INTERVAL:
        case OPT_DEBOUNCE: {
                int64_t *dst = id == OPT_INTERVAL ? &a->interval_ms : &a->debounce_ms;
                if (eg_parse_duration_ms(value, dst) < 0 || (id == OPT_INTERVAL && *dst < 100)) {
                        fprintf(stderr, "etcd-gitops run: --%s takes a duration such as 15s, got '%s'\n",
                                id == OPT_INTERVAL ? "interval" : "debounce", value);
                        return -EINVAL;
                }
                return 0;
        }
        case OPT_LISTEN: {
                a->listen_given = true;
                if (strcmp(value, "none") == 0 || strcmp(value, "off") == 0) {
                        a->listen = NULL;
                        return 0;
                }
                struct sockaddr_storage ss;
                socklen_t sl;
                struct eg_error err = {0};
                if (eg_http_parse_listen(value, &ss, &sl, &err) < 0) {
                        fprintf(stderr, "etcd-gitops run: %s\n", err.message ? err.message : "bad --listen");
                        eg_error_done(&err);
                        return -EINVAL;
                }
                a->listen = value;
                return 0;
        }
        case OPT_READYZ_SOURCE:
                if (strcmp(value, "required") != 0 && strcmp(value, "optional") != 0) {
                        fprintf(stderr, "etcd-gitops run: --readyz-source takes required or optional, got '%s'\n",
                                value);
                        return -EINVAL;
                }
                a->readyz_source_optional = strcmp(value, "optional") == 0;
                return 0;
        case OPT_WEBHOOK_SECRET_FILE:
                a->webhook_secret_file = value;
                return 0;
        case OPT_DRY_RUN:
                a->dry_run = true;
                return 0;
        case OPT_LEADER_ELECT:
        case OPT_NO_LEADER_ELECT:
                a->leader_elect = id == OPT_LEADER_ELECT;
                return 0;
        case OPT_LEADER_ELECT_LEASE:
                a->lease_name = value;
                return 0;
        case OPT_LEADER_ELECT_NAMESPACE:
                a->lease_namespace = value;
                return 0;
        }
        return -EINVAL;
}

/* The lease when this daemon elects a leader (*ret NULL when it does not). Logs what failed. */
static int lease_open(const struct run_args *a, struct eg_lease **ret) {
        bool kube = strcmp(eg_settings.runtime, "kubernetes") == 0;
        /* a dry run changes nothing, so it must not keep the daemon that does from acting */
        bool elect = a->leader_elect < 0 ? kube && !a->dry_run : a->leader_elect;
        *ret = NULL;
        if (!elect)
                return 0;
        if (!kube) {
                eg_log_error(
                        "--leader-elect needs --runtime kubernetes: the local runtime's members live on this host, "
                        "which one daemon looks after");
                return -EINVAL;
        }
        struct eg_error err = {0};
        struct eg_lease_options lo = {.kubeconfig = eg_settings.kubeconfig,
                                      .context = eg_settings.context,
                                      .namespace = a->lease_namespace,
                                      .name = a->lease_name};
        int r = eg_lease_new(&lo, ret, &err);
        if (r < 0)
                eg_log_error("cannot set up leader election: %s", err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        return r;
}

/* --control-socket, else $RUNTIME_DIRECTORY/control.sock (its first directory: systemd's
 * RuntimeDirectory=), else the state dir's control.sock. Caller frees. */
static char *control_socket_path(void) {
        if (eg_settings.control_socket && *eg_settings.control_socket)
                return strdup(eg_settings.control_socket);
        const char *rt = getenv("RUNTIME_DIRECTORY");
        if (rt && *rt) {
                size_t n = strcspn(rt, ":");
                return eg_strdup_printf("%.*s/control.sock", (int)n, rt);
        }
        return eg_path_join(eg_settings.state_dir, "control.sock");
}

/* Runs the daemon over what env opened, with its backups and its cycle. */
static int run(const struct run_args *a, struct eg_daemon *daemon, struct eg_cli_env *env, struct eg_lease *lease) {
        eg_log_info("following %s (%s runtime, state in %s, audit log %s)%s", a->p.source, eg_settings.runtime,
                    eg_settings.state_dir, eg_settings.audit_log,
                    a->dry_run ? ", dry run: nothing will be changed" : "");
        _cleanup_free_ char *control = control_socket_path();
        _cleanup_free_ char *control_link = eg_path_join(eg_settings.state_dir, "control.sock");
        if (!control || !control_link)
                return eg_log_error_errno(-ENOMEM, "cannot set up: %m");
        struct eg_daemon_options d = {
                .source = env->source,
                .source_location = a->p.source,
                .source_path = eg_settings.path,
                .source_ref = eg_settings.ref,
                .control_socket = control,
                .control_link = control_link,
                .rec = env->rec,
                .journal = env->journal,
                .audit_log = eg_settings.audit_log,
                .interval_ms = a->interval_ms,
                .debounce_ms = a->debounce_ms,
                .listen = a->listen,
                .listen_optional = !a->listen_given,
                .readyz_source_optional = a->readyz_source_optional,
                .webhook_secret_file = a->webhook_secret_file,
                .state_dir = eg_settings.state_dir,
                .lease = lease,
                .runtime = env->runtime,
        };
        struct eg_backup_controller_options bo = {.runtime = env->runtime,
                                                  .journal = env->journal,
                                                  .state_dir = eg_settings.state_dir,
                                                  .dry_run = a->dry_run};
        struct eg_cycle_options co = {.rec = env->rec, .source = env->source, .journal = env->journal};
        int r = eg_backup_controller_new(&bo, &d.backups);
        if (r >= 0) {
                co.backups = d.backups;
                r = eg_cycle_new(&co, &d.cycle);
        }
        if (r >= 0)
                r = eg_daemon_run(daemon, &d);
        else
                eg_log_error_errno(r, "cannot set up: %m");
        eg_cycle_free(d.cycle);
        eg_backup_controller_free(d.backups);
        return r;
}

int cmd_run(const struct eg_command *cmd, int argc, char **argv) {
        struct run_args a = {
                .interval_ms = 15000, .debounce_ms = 20, .listen = EG_HTTP_DEFAULT_LISTEN, .leader_elect = -1};
        eg_policy_init(&a.p.policy);
        int exit_code;
        if (eg_cli_parse_sourced(cmd, argc, argv, on_option, &a, &a.p, &exit_code) < 0)
                return exit_code;
        struct eg_lease *lease = NULL;
        if (lease_open(&a, &lease) < 0)
                return EG_EXIT_ERROR;
        struct eg_daemon *daemon = NULL;
        struct eg_cli_env env = {0};
        int r = eg_daemon_new(&daemon);
        if (r < 0)
                eg_log_error("out of memory");
        struct eg_cli_env_options eo = {.p = &a.p,
                                        .want_audit = true,
                                        .dry_run = a.dry_run,
                                        .on_event = eg_daemon_on_event,
                                        .event_userdata = daemon,
                                        .stop = daemon ? eg_daemon_pass_stop(daemon) : NULL};
        if (r >= 0 && (r = eg_cli_env_open(&env, &eo)) >= 0) {
                r = run(&a, daemon, &env, lease);
                eg_cli_env_close(&env);
        }
        eg_daemon_free(daemon);
        eg_lease_free(lease);
        return r < 0 ? EG_EXIT_ERROR : EG_EXIT_OK;
}
