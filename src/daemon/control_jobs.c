/* What the control socket's requests do: answered at once on the loop (ping, record-backup), or through
 * the next cycle, whose worker alone may touch the reconciler (reconcile, suspend, resume). */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

void control_jobs_free(struct control_job *j) {
        while (j) {
                struct control_job *next = j->next;
                if (j->conn)
                        j->conn->job = NULL;
                free(j->ns);
                free(j->name);
                free(j->reason);
                free(j->actor);
                eg_error_done(&j->err);
                free(j);
                j = next;
        }
}

/* "ns/name" into its halves; NULL, both NULL: every cluster. */
static int split_cluster(const char *s, char **ret_ns, char **ret_name) {
        *ret_ns = *ret_name = NULL;
        if (!s)
                return 0;
        const char *slash = strchr(s, '/');
        if (!slash || slash == s || !slash[1] || strchr(slash + 1, '/'))
                return -EINVAL;
        *ret_ns = strndup(s, (size_t)(slash - s));
        *ret_name = strdup(slash + 1);
        return *ret_ns && *ret_name ? 0 : -ENOMEM;
}

static void request_ping(struct control_conn *c) {
        struct eg_daemon *d = c->d;
        control_reply(c, json_pack("{s:s, s:i, s:I, s:s, s:s?, s:s?, s:s?, s:b}", "result", "ok", "exit", 0, "pid",
                                   (json_int_t)getpid(), "source", d->source_real, "path", d->opt->source_path, "ref",
                                   d->opt->source_ref, "revision", d->rev.revision, "leading", d->leading));
}

/* Whether req names the daemon's own source; else refuses it, saying both. */
static bool same_source(struct control_conn *c, json_t *req) {
        struct eg_daemon *d = c->d;
        const char *src = json_string_value(json_object_get(req, "source"));
        const char *path = json_string_value(json_object_get(req, "path"));
        const char *ref = json_string_value(json_object_get(req, "ref"));
        if (!src ||
            (str_eq(src, d->source_real) && str_eq(path, d->opt->source_path) && str_eq(ref, d->opt->source_ref)))
                return true;
        const char *dp = d->opt->source_path, *dr = d->opt->source_ref;
        control_fail(c,
                     "the daemon (pid %d) follows %s%s%s%s%s, not %s%s%s%s%s: stop it to apply another source, or "
                     "point it at this one (--source in its settings, then reload it) and run etcd-gitops reconcile "
                     "--with-source",
                     (int)getpid(), d->source_real, dp ? " --path " : "", dp ? dp : "", dr ? " --ref " : "",
                     dr ? dr : "", src, path ? " --path " : "", path ? path : "", ref ? " --ref " : "", ref ? ref : "");
        return false;
}

/* The request in the audit log, with who made it. */
static void request_record(struct control_conn *c, const char *cluster, const char *reason) {
        struct eg_decision dec = {
                .cluster = cluster, .kind = "reconcile-request", .reason = reason, .outcome = "ok", .actor = c->actor};
        struct eg_error err = {0};
        if (eg_journal_record(c->d->opt->journal, &dec, &err) < 0)
                eg_log_error("%s", err.message ? err.message : "cannot append to the audit log");
        eg_error_done(&err);
}

/* Waits for the next cycle to start; that cycle answers it. */
static void job_queue(struct control_conn *c, struct control_job *j) {
        struct eg_daemon *d = c->d;
        struct control_job **p = &d->control_jobs;
        while (*p)
                p = &(*p)->next;
        *p = j;
        j->conn = c;
        c->job = j;
        arm(d->reconcile_timer, 0);
}

static struct control_job *job_new(struct control_conn *c, enum control_command command, json_t *req) {
        struct control_job *j = calloc(1, sizeof(*j));
        if (!j) {
                control_fail(c, "out of memory");
                return NULL;
        }
        j->command = command;
        const char *cluster = json_string_value(json_object_get(req, "cluster"));
        const char *reason = json_string_value(json_object_get(req, "reason"));
        int r = split_cluster(cluster, &j->ns, &j->name);
        if (r >= 0 && ((reason && !(j->reason = strdup(reason))) || !(j->actor = strdup(c->actor))))
                r = -ENOMEM;
        if (r < 0) {
                control_jobs_free(j);
                control_fail(c, r == -EINVAL ? "\"cluster\" must be NAMESPACE/NAME, got '%s'" : "out of memory",
                             cluster);
                return NULL;
        }
        return j;
}

static void request_reconcile(struct control_conn *c, json_t *req) {
        struct eg_daemon *d = c->d;
        if (!same_source(c, req))
                return;
        struct control_job *j = job_new(c, CONTROL_RECONCILE, req);
        if (!j)
                return;
        bool with_source = json_is_true(json_object_get(req, "withSource"));
        request_record(c, json_string_value(json_object_get(req, "cluster")),
                       with_source ? "asked to read the source and pass now" : "asked to pass now");
        if (with_source)
                d->source_changed = true;
        job_queue(c, j);
}

/* Suspends or resumes through the next cycle's worker, with the caller as actor. */
static void request_suspend(struct control_conn *c, json_t *req, enum control_command command) {
        struct control_job *j = job_new(c, command, req);
        if (j)
                job_queue(c, j);
}

/* An ad-hoc backup taken by the CLI while this daemon holds the audit log: recorded here,
 * with the actor the socket vouches for, never one the request names. */
static void request_record_backup(struct control_conn *c, json_t *req) {
        json_t *in = json_object_get(req, "decision");
        const char *outcome = json_string_value(json_object_get(in, "outcome"));
        const char *reason = json_string_value(json_object_get(in, "reason"));
        if (!json_is_object(in) || !reason || !outcome ||
            (strcmp(outcome, "ok") != 0 && strcmp(outcome, "failed") != 0)) {
                control_fail(c, "\"decision\" must be an object with \"reason\" and an \"outcome\" of ok or failed");
                return;
        }
        json_int_t duration = json_integer_value(json_object_get(in, "durationMs"));
        struct eg_decision dec = {.cluster = json_string_value(json_object_get(in, "cluster")),
                                  .kind = "backup",
                                  .reason = reason,
                                  .outcome = outcome,
                                  .error = json_string_value(json_object_get(in, "error")),
                                  .actor = c->actor,
                                  .duration_ms = duration > 0 ? (int64_t)duration : 0};
        struct eg_error err = {0};
        if (eg_journal_record(c->d->opt->journal, &dec, &err) < 0)
                control_fail(c, "%s", err.message ? err.message : "cannot append to the audit log");
        else
                control_reply(c, json_pack("{s:s, s:i}", "result", "ok", "exit", 0));
        eg_error_done(&err);
}

void control_request(struct control_conn *c, json_t *req) {
        const char *command = json_string_value(json_object_get(req, "command"));
        if (!command)
                control_fail(c, "the request names no \"command\"");
        else if (strcmp(command, "ping") == 0)
                request_ping(c);
        else if (strcmp(command, "reconcile") == 0)
                request_reconcile(c, req);
        else if (strcmp(command, "suspend") == 0 || strcmp(command, "resume") == 0)
                request_suspend(c, req, command[0] == 's' ? CONTROL_SUSPEND : CONTROL_RESUME);
        else if (strcmp(command, "record-backup") == 0)
                request_record_backup(c, req);
        else
                control_fail(c, "unknown command '%s'", command);
}

void control_jobs_take(struct eg_daemon *d, struct cycle *c) {
        c->jobs = d->control_jobs;
        d->control_jobs = NULL;
}

void control_jobs_run(struct eg_daemon *d, struct cycle *c) {
        for (struct control_job *j = c->jobs; j; j = j->next)
                if (j->command == CONTROL_RECONCILE)
                        /* a cluster waiting out a back-off is asked again now */
                        eg_reconciler_poke_all(d->opt->rec);
                else
                        j->r = eg_reconciler_set_suspended(d->opt->rec, j->ns, j->name, j->command == CONTROL_SUSPEND,
                                                           j->reason, j->actor, &j->err);
}

static bool decision_wanted(const struct control_job *j, json_t *dec) {
        if (!j->ns)
                return true;
        const char *cluster = json_string_value(json_object_get(dec, "cluster"));
        size_t n = strlen(j->ns);
        return cluster && strncmp(cluster, j->ns, n) == 0 && cluster[n] == '/' && strcmp(cluster + n + 1, j->name) == 0;
}

/* Why the cycle has no pass to report, or NULL. */
static char *no_pass(struct eg_daemon *d, struct cycle *c) {
        if (c->read && c->in.r < 0)
                return eg_strdup_printf("cannot read the source: %s", c->in.error ? c->in.error : strerror(-c->in.r));
        if (!d->desired)
                return strdup("no revision of the source has been read yet");
        if (!c->lead)
                return eg_strdup_printf("this daemon stands by: the lease %s/%s is held by %s; ask the one holding it",
                                        eg_lease_namespace(d->opt->lease), eg_lease_name(d->opt->lease),
                                        d->lease_holder ? d->lease_holder : "nobody yet");
        if (c->out.pass_r < 0)
                return eg_strdup_printf("the pass could not run: %s",
                                        d->list_error ? d->list_error : strerror(-c->out.pass_r));
        return NULL;
}

static void answer_reconcile(struct eg_daemon *d, struct cycle *c, struct control_job *j) {
        struct control_conn *conn = j->conn;
        _cleanup_free_ char *why = no_pass(d, c);
        if (why) {
                control_fail(conn, "%s", why);
                return;
        }
        if (j->ns && !eg_desired_set_find(d->desired, EG_KIND_CLUSTER, j->ns, j->name)) {
                control_fail(conn, "the source (revision %s) has no EtcdCluster %s/%s", d->rev.revision, j->ns,
                             j->name);
                return;
        }
        size_t i;
        json_t *dec;
        json_array_foreach(c->out.decisions, i, dec) {
                if (decision_wanted(j, dec)) {
                        control_send(conn, json_pack("{s:s, s:O}", "event", "decision", "decision", dec));
                        if (!j->conn)
                                return;
                }
        }
        const struct eg_pass_result *p = &c->out.pass;
        bool ok = p->all_converged && d->source_errors == 0;
        control_reply(conn, json_pack("{s:s, s:i, s:s, s:s?, s:{s:I, s:I, s:I, s:I, s:b}, s:O*}", "result", "ok",
                                      "exit", ok ? 0 : 1, "revision", d->rev.revision, "warning", d->last_error, "pass",
                                      "clusters", (json_int_t)p->n_clusters, "converged", (json_int_t)p->n_converged,
                                      "blocked", (json_int_t)p->n_blocked, "failing", (json_int_t)p->n_failed,
                                      "allConverged", p->all_converged, "diagnostics", d->source_diags));
}

void control_jobs_answer(struct eg_daemon *d, struct cycle *c) {
        for (struct control_job *j = c->jobs; j; j = j->next) {
                if (!j->conn)
                        continue;
                if (j->command == CONTROL_RECONCILE)
                        answer_reconcile(d, c, j);
                else if (j->r < 0)
                        control_fail(j->conn, "%s", j->err.message ? j->err.message : strerror(-j->r));
                else
                        control_reply(j->conn,
                                      json_pack("{s:s, s:i, s:i}", "result", "ok", "exit", 0, "changed", j->r));
        }
        control_jobs_free(c->jobs);
        c->jobs = NULL;
}
