/* The daemon's HTTP handlers: readiness, /status, /metrics and webhooks, and the webhook
 * secret that SIGHUP reloads. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "internal.h"

#define STATUS_MAX_FILES 10000
#define STATUS_FILE_MAX ((size_t)1 << 20)
/* rejected webhooks recorded in the audit log per minute; the rest are only logged so a
 * flood of bad requests cannot flood the log */
#define REJECT_RECORDS_PER_MIN 10

/* Whether the source lets the daemon be ready: a revision is in force and, unless
 * --readyz-source=optional, the last read worked. */
static bool source_ready(const struct eg_daemon *d) {
        return d->desired && (!d->last_error || d->opt->readyz_source_optional);
}

static bool http_ready(void *userdata) {
        struct eg_daemon *d = userdata;
        return d->ready && d->leading && !d->list_error && source_ready(d);
}

/* What /readyz says when not ready, malloc'd (NULL: "not ready"): standing by, not seeing
 * every cluster, then the source. */
static char *unready_why(const struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        if (l && !d->leading && d->lease_holder)
                return eg_strdup_printf("standby: the lease %s/%s is held by %s", eg_lease_namespace(l),
                                        eg_lease_name(l), d->lease_holder);
        if (l && !d->leading)
                return eg_strdup_printf("standby: waiting for the lease %s/%s%s%s", eg_lease_namespace(l),
                                        eg_lease_name(l), d->lease_error ? ": " : "",
                                        d->lease_error ? d->lease_error : "");
        if (d->list_error)
                return eg_strdup_printf("cannot see every cluster: %s", d->list_error);
        if (source_ready(d) || !d->last_error)
                return NULL;
        if (!d->desired)
                return eg_strdup_printf("no revision of the source read yet: %s", d->last_error);
        if (d->read_failed)
                return eg_strdup_printf("source unreadable: %s; revision %s stays applied", d->last_error,
                                        d->rev.revision);
        return eg_strdup_printf("source unreadable: %s", d->last_error);
}

static char *http_unready_why(void *userdata) {
        _cleanup_free_ char *why = unready_why(userdata);
        return why ? eg_strdup_printf("%s\n", why) : NULL;
}

static int http_metrics(void *userdata, struct eg_buf *out) {
        struct eg_daemon *d = userdata;
        /* the loop's own view of the source, which a scrape reads on the loop too */
        eg_metrics_set_source(d->metrics, d->desired ? d->desired->n_invalid : 0, d->desired && !d->last_error);
        return eg_metrics_render(d->metrics, out);
}

static int cmp_dirent(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int no_dots(const struct dirent *e) { return e->d_name[0] != '.'; }

/* The status files the reconciler wrote after its last pass, sorted by namespace and
 * name: no etcd call on the loop, bounded in count and size. */
static json_t *cached_statuses(const char *state_dir) {
        json_t *arr = json_array();
        _cleanup_free_ char *root = state_dir ? eg_path_join(state_dir, "status") : NULL;
        struct dirent **ns = NULL;
        int n_ns = root ? scandir(root, &ns, no_dots, cmp_dirent) : -1;
        for (int i = 0; i < n_ns; i++) {
                _cleanup_free_ char *dir = eg_path_join(root, ns[i]->d_name);
                struct dirent **files = NULL;
                int n = dir ? scandir(dir, &files, no_dots, cmp_dirent) : -1;
                for (int k = 0; k < n; k++) {
                        if (arr && json_array_size(arr) < STATUS_MAX_FILES &&
                            eg_str_has_suffix(files[k]->d_name, ".json")) {
                                _cleanup_free_ char *p = eg_path_join(dir, files[k]->d_name);
                                _cleanup_free_ char *text = NULL;
                                size_t len;
                                json_t *j = p && eg_read_file(p, STATUS_FILE_MAX, &text, &len) == 0
                                                    ? json_loadb(text, len, 0, NULL)
                                                    : NULL;
                                if (j)
                                        json_array_append_new(arr, j);
                        }
                        free(files[k]);
                }
                free(files);
                free(ns[i]);
        }
        free(ns);
        return arr;
}

static json_t *time_or_null(int64_t ms) {
        if (!ms)
                return json_null();
        char buf[32];
        eg_format_rfc3339_ms(ms, buf);
        return json_string(buf);
}

/* The source as read last: the revision in force, the last read's error (readFailed: the
 * read failed outright, else a git fetch did and the commit fetched before was read) and
 * the diagnostics of the revision in force. */
static json_t *source_json(const struct eg_daemon *d) {
        return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:o, s:s?, s:b, s:s?, s:I, s:O?}", "kind",
                         d->opt->source->ops->kind, "revision", d->rev.revision, "commit", d->rev.commit, "author",
                         d->rev.author, "subject", d->rev.subject, "dirty", d->rev.dirty, "lastRead",
                         time_or_null(d->last_read_ms), "lastError", d->last_error, "readFailed", d->read_failed,
                         "waitingForCommit", d->hook_commit, "errors", (json_int_t)d->source_errors, "diagnostics",
                         d->source_diags);
}

/* What the last pass this daemon ran came to, null before the first. */
static json_t *last_pass_json(const struct eg_daemon *d) {
        const struct pass_outcome *p = &d->last_pass;
        const struct eg_pass_result *res = &p->result;
        if (!p->time_ms)
                return json_null();
        size_t settled = res->n_converged + res->n_blocked + res->n_failed;
        const char *outcome = p->r < 0             ? "failed"
                              : res->all_converged ? "converged"
                              : res->n_failed      ? "failing"
                              : res->n_blocked     ? "blocked"
                                                   : "progressing";
        return json_pack("{s:o, s:s, s:s?, s:I, s:I, s:I, s:I, s:I, s:I}", "time", time_or_null(p->time_ms), "outcome",
                         outcome, "error", p->r < 0 ? (d->list_error ? d->list_error : strerror(-p->r)) : NULL,
                         "clusters", (json_int_t)res->n_clusters, "converged", (json_int_t)res->n_converged,
                         "progressing", (json_int_t)(res->n_clusters > settled ? res->n_clusters - settled : 0),
                         "blocked", (json_int_t)res->n_blocked, "failing", (json_int_t)res->n_failed, "actions",
                         (json_int_t)res->n_actions);
}

static int http_status(void *userdata, char **ret) {
        struct eg_daemon *d = userdata;
        json_t *fp = d->force_key
                             ? json_pack("{s:s?, s:s?, s:b, s:o}", "previousCommit", d->force_previous, "commit",
                                         d->force_commit, "held", d->force_held, "time", time_or_null(d->force_time_ms))
                             : json_null();
        const struct eg_lease *l = d->opt->lease;
        json_t *le = l ? json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?}", "namespace", eg_lease_namespace(l), "lease",
                                   eg_lease_name(l), "identity", eg_lease_identity(l), "leader", d->leading, "holder",
                                   d->lease_holder, "lastError", d->lease_error)
                       : json_null();
        bool ready = http_ready(d);
        _cleanup_free_ char *why = ready ? NULL : unready_why(d);
        const char *not_ready = ready ? NULL : why ? why : "not ready";
        json_t *doc = json_pack("{s:b, s:s?, s:s?, s:o, s:o, s:o, s:o, s:o}", "ready", ready, "notReady", not_ready,
                                "listError", d->list_error, "source", source_json(d), "lastPass", last_pass_json(d),
                                "forcePush", fp, "leaderElection", le, "clusters", cached_statuses(d->opt->state_dir));
        if (!doc)
                return -ENOMEM;
        *ret = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        return *ret ? 0 : -ENOMEM;
}

static void http_webhook(void *userdata, const struct eg_webhook_event *ev) {
        struct eg_daemon *d = userdata;
        eg_metrics_webhook(d->metrics, ev->result);
        switch (ev->result) {
        case EG_WEBHOOK_ACCEPTED:
                eg_log_info("webhook from %s%s%s: reading the source", ev->remote, ev->commit ? " for commit " : "",
                            ev->commit ? ev->commit : "");
                if (ev->commit) {
                        set_str(&d->hook_commit, ev->commit);
                        d->hook_started_ms = eg_now_monotonic_ms();
                        d->hook_deadline_ms = d->hook_started_ms +
                                              (d->opt->hook_wait_ms > 0 ? d->opt->hook_wait_ms : 10000);
                }
                read_soon(d);
                return;
        case EG_WEBHOOK_PING:
                eg_log_info("webhook ping from %s", ev->remote);
                return;
        case EG_WEBHOOK_TOO_LARGE:
                eg_log_warning("webhook from %s refused: payload too large", ev->remote);
                return;
        case EG_WEBHOOK_REJECTED:
        case EG_WEBHOOK_N_RESULTS:
                break;
        }
        eg_log_warning("webhook from %s rejected: %s", ev->remote, ev->why);
        int64_t now = eg_now_monotonic_ms();
        if (now - d->reject_window_ms >= 60000) {
                d->reject_window_ms = now;
                d->reject_records = 0;
        }
        if (d->reject_records >= REJECT_RECORDS_PER_MIN) {
                d->reject_suppressed++;
                return;
        }
        d->reject_records++;
        _cleanup_free_ char *reason =
                d->reject_suppressed
                        ? eg_strdup_printf("webhook from %s rejected: %s (%u more rejected without a record before it)",
                                           ev->remote, ev->why, d->reject_suppressed)
                        : eg_strdup_printf("webhook from %s rejected: %s", ev->remote, ev->why);
        d->reject_suppressed = 0;
        daemon_record(d, &d->rev, "webhook-rejected", reason, "blocked");
}

int load_secret(struct eg_daemon *d) {
        if (!d->http || !d->opt->webhook_secret_file)
                return 0;
        char *s = NULL;
        size_t n = 0;
        int r = eg_webhook_secret_read(d->opt->webhook_secret_file, &s, &n);
        if (r < 0)
                return eg_log_error_errno(r, "cannot read the webhook secret '%s': %m", d->opt->webhook_secret_file);
        r = eg_http_set_secret(d->http, s, n);
        explicit_bzero(s, n);
        free(s);
        return r;
}

/* The HTTP endpoints when asked for; a failure to bind the default address only warns. */
int http_setup(struct eg_daemon *d) {
        const struct eg_daemon_options *opt = d->opt;
        if (opt->listen) {
                struct eg_error err = {0};
                struct eg_http_options ho = {
                        .listen = opt->listen,
                        .audit_log = opt->audit_log,
                        .handlers = {.ready = http_ready,
                                     .unready_why = http_unready_why,
                                     .status = http_status,
                                     .metrics = http_metrics,
                                     .webhook = http_webhook,
                                     .userdata = d},
                };
                int r = eg_http_new(d->event, &ho, &d->http, &err);
                if (r < 0 && opt->listen_optional)
                        /* a second daemon on this host (another state dir) still runs */
                        eg_log_warning("%s; running without the HTTP endpoints",
                                       err.message ? err.message : strerror(-r));
                else if (r < 0)
                        eg_log_error("%s", err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                if (r < 0 && !opt->listen_optional)
                        return r;
        }
        if (d->http) {
                eg_log_info("serving /healthz, /readyz, /status, /metrics and POST /hook on %s (port %u)", opt->listen,
                            eg_http_port(d->http));
                return load_secret(d);
        }
        if (opt->webhook_secret_file && !opt->listen)
                eg_log_warning("--webhook-secret-file is ignored without --listen");
        return 0;
}
