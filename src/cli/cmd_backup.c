/* etcd-gitops backup: an ad-hoc snapshot of a cluster to a file or S3. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "control.h"
#include "output.h"
#include "resolve.h"
#include "setup.h"
#include "etcd-gitops/backup.h"
#include "etcd-gitops/journal.h"

enum {
        OPT_TO = 1,
        OPT_ENDPOINTS,
        OPT_CACERT,
        OPT_CERT,
        OPT_KEY,
        OPT_AWS_CREDENTIALS,
        OPT_S3_ENDPOINT,
        OPT_S3_PATH_STYLE,
        OPT_TIMEOUT,
        OPT_OUTPUT,
};

struct backup_args {
        const char *to, *endpoints, *cacert, *cert, *key, *aws_credentials, *s3_endpoint;
        bool path_style;
        enum eg_out_format fmt;
        int64_t timeout_ms;
};

const struct eg_option cmd_backup_options[] = {
        {OPT_TO, "to", 0, "s3://BUCKET/KEY|PATH", "where the snapshot goes (required)",
         EG_OPT_STRING_AT(struct backup_args, to)},
        {OPT_ENDPOINTS, "endpoints", 0, "URL,...", "client URLs to snapshot instead of a local cluster",
         EG_OPT_STRING_AT(struct backup_args, endpoints)},
        {OPT_CACERT, "cacert", 0, "FILE", "CA certificate of the etcd server",
         EG_OPT_STRING_AT(struct backup_args, cacert)},
        {OPT_CERT, "cert", 0, "FILE", "client certificate for etcd", EG_OPT_STRING_AT(struct backup_args, cert)},
        {OPT_KEY, "key", 0, "FILE", "client key for etcd", EG_OPT_STRING_AT(struct backup_args, key)},
        {OPT_AWS_CREDENTIALS, "aws-credentials-file", 0, "FILE",
         "AWS shared credentials file (default: environment, then ~/.aws/credentials)",
         EG_OPT_STRING_AT(struct backup_args, aws_credentials)},
        {OPT_S3_ENDPOINT, "s3-endpoint", 0, "URL", "S3-compatible server (default AWS)",
         EG_OPT_STRING_AT(struct backup_args, s3_endpoint)},
        {OPT_S3_PATH_STYLE, "s3-force-path-style", 0, NULL, "address objects as ENDPOINT/BUCKET/KEY",
         EG_OPT_FLAG_AT(struct backup_args, path_style)},
        {OPT_TIMEOUT, "timeout", 0, "DURATION", "longest the whole backup may take, retries included (default 60s)"},
        {OPT_OUTPUT, "output", 'o', "text|json", "output format (default text)"},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"text", "json", NULL};
        struct backup_args *a = userdata;
        switch (id) {
        case OPT_TIMEOUT:
                if (eg_parse_duration_ms(value, &a->timeout_ms) < 0 || a->timeout_ms <= 0) {
                        fprintf(stderr, "etcd-gitops backup: --timeout takes a duration such as 90s, got '%s'\n",
                                value);
                        return -EINVAL;
                }
                return 0;
        case OPT_OUTPUT:
                return eg_out_option("backup", value, formats, &a->fmt);
        }
        return -EINVAL;
}

static void progress(uint64_t bytes, uint64_t expected, void *userdata) {
        int64_t *last = userdata, now = eg_now_monotonic_ms();
        if (now - *last < 200)
                return;
        *last = now;
        double mib = (double)bytes / (1 << 20);
        if (expected > 0) {
                unsigned pct = bytes >= expected ? 100 : (unsigned)(bytes * 100 / expected);
                char bar[41];
                memset(bar, ' ', 40);
                memset(bar, '#', pct * 40 / 100);
                bar[40] = 0;
                fprintf(stderr, "\r[%s] %3u%% %.1f MiB", bar, pct, mib);
        } else
                fprintf(stderr, "\r%.1f MiB", mib);
        fflush(stderr);
}

/* Client URLs of a cluster's running members. */
static int running_endpoints(const struct eg_runtime_cluster *c, char ***ret, size_t *ret_n) {
        char **v = calloc(c->n_members + 1, sizeof(*v));
        size_t n = 0;
        for (size_t i = 0; v && i < c->n_members; i++)
                if (c->members[i].running && c->members[i].client_url && !(v[n++] = strdup(c->members[i].client_url))) {
                        eg_strv_free(v, n);
                        return -ENOMEM;
                }
        if (!v)
                return -ENOMEM;
        if (n == 0) {
                eg_log_error("cluster %s/%s has no running member", c->namespace, c->name);
                free(v);
                return -EHOSTUNREACH;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int split_endpoints(const char *list, char ***ret, size_t *ret_n) {
        size_t n = 1;
        for (const char *p = list; *p; p++)
                n += *p == ',';
        char **v = calloc(n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t k = 0;
        for (const char *p = list;;) {
                size_t len = strcspn(p, ",");
                if (len > 0 && !(v[k++] = strndup(p, len))) {
                        eg_strv_free(v, k);
                        return -ENOMEM;
                }
                if (!p[len])
                        break;
                p += len + 1;
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

/* The members to snapshot and how to reach them: a cluster's (eo from its runtime, which
 * *ret_rt keeps valid, unless TLS files were given) or the --endpoints. */
static int find_endpoints(const char *cluster, const struct backup_args *a, char ***ret, size_t *ret_n,
                          struct eg_etcd_options *eo, struct eg_runtime **ret_rt, char **ret_cluster) {
        struct eg_runtime_cluster c = {0};
        struct eg_runtime *rt = NULL;
        struct eg_error e = {0};
        int r;
        if (!cluster)
                return split_endpoints(a->endpoints, ret, ret_n);
        if ((r = eg_cli_open_cluster("backup", cluster, &rt, &c)) < 0)
                return r;
        if (!(*ret_cluster = eg_strdup_printf("%s/%s", c.namespace, c.name)))
                r = -ENOMEM;
        else
                r = running_endpoints(&c, ret, ret_n);
        if (r >= 0 && !(a->cacert || a->cert || a->key) &&
            (r = eg_runtime_etcd_access(rt, c.namespace, c.name, eo, &e)) < 0) {
                eg_log_error("cannot reach the members of %s/%s: %s", c.namespace, c.name,
                             e.message ? e.message : strerror(-r));
                eg_strv_free(*ret, *ret_n);
        }
        eg_runtime_cluster_done(&c);
        eg_error_done(&e);
        if (r < 0)
                eg_runtime_free(rt);
        else
                *ret_rt = rt;
        return r;
}

/* An ad-hoc backup is a decision like a scheduled one, recorded with who asked for it.
 * NULL with *ret_held: a daemon (or an apply) holds the audit log, so the record goes
 * through the daemon's control socket; NULL otherwise: nothing to record to. */
static struct eg_audit *audit_open(bool *ret_held) {
        struct eg_audit *a = NULL;
        char *warning = NULL;
        int r = eg_audit_open(eg_settings.audit_log, &a, &warning);
        if (warning) {
                eg_log_warning("%s", warning);
                free(warning);
        }
        *ret_held = r == -EBUSY;
        if (r < 0 && r != -EBUSY)
                eg_log_warning_errno(r, "this backup will not be in the audit log: cannot open '%s': %m",
                                     eg_settings.audit_log);
        return r < 0 ? NULL : a;
}

static void audit_record(struct eg_audit *a, const struct eg_decision *d) {
        struct eg_journal *j = NULL;
        struct eg_error err = {0};
        _cleanup_free_ char *actor = eg_actor_of_uid(getuid());
        struct eg_decision mine = *d;
        mine.actor = actor;
        int r = eg_journal_new(a, &j);
        if (r >= 0)
                r = eg_journal_record(j, &mine, &err);
        if (r < 0)
                eg_log_warning("this backup is not in the audit log: %s", err.message ? err.message : strerror(-r));
        eg_journal_free(j);
        eg_error_done(&err);
}

/* The daemon records it, naming the caller as its socket tells it. */
static void daemon_record(const struct eg_decision *d) {
        struct eg_control *c = NULL;
        struct eg_error err = {0};
        json_t *res = NULL;
        json_t *req = json_pack("{s:s, s:{s:s?, s:s, s:s, s:s?, s:I}}", "command", "record-backup", "decision",
                                "cluster", d->cluster, "reason", d->reason, "outcome", d->outcome, "error", d->error,
                                "durationMs", (json_int_t)d->duration_ms);
        int r = req ? eg_control_open(&c, &err) : -ENOMEM;
        if (r >= 0)
                r = eg_control_call(c, req, NULL, NULL, &res, eg_now_monotonic_ms() + 10000, &err);
        const char *result = json_string_value(json_object_get(res, "result"));
        if (r >= 0 && (!result || strcmp(result, "ok") != 0)) {
                const char *m = json_string_value(json_object_get(res, "message"));
                eg_error_set(&err, "the daemon refused it: %s", m ? m : "no reason given");
                r = -EPROTO;
        }
        if (r == -ENOENT || r == -ECONNREFUSED)
                eg_log_warning("this backup is not in the audit log: %s is held by another etcd-gitops (an apply under "
                               "way, or a daemon with no control socket here)",
                               eg_settings.audit_log);
        else if (r < 0)
                eg_log_warning("this backup is not in the audit log: %s", err.message ? err.message : strerror(-r));
        json_decref(req);
        json_decref(res);
        eg_control_free(c);
        eg_error_done(&err);
}

static void record(struct eg_audit *a, bool held, const char *cluster, const struct backup_args *args,
                   const char *error, const struct eg_backup_result *res, int64_t duration_ms) {
        _cleanup_free_ char *reason = cluster ? eg_strdup_printf("ad-hoc backup to %s", args->to)
                                              : eg_strdup_printf("ad-hoc backup of %s to %s", args->endpoints,
                                                                 args->to);
        struct eg_decision d = {.cluster = cluster,
                                .kind = "backup",
                                .reason = reason,
                                .outcome = error ? "failed" : "ok",
                                .error = error,
                                .duration_ms = duration_ms,
                                .size_bytes = error ? 0 : res->size};
        if (a)
                audit_record(a, &d);
        else if (held)
                daemon_record(&d);
}

static void print_result(const struct eg_backup_result *res, bool json) {
        if (!json) {
                printf("sha256: %s\nsize: %llu\nrevision: %lld\nversion: %s\nendpoint: %s\nobject: %s\nduration: %lld ms\n",
                       res->sha256, (unsigned long long)res->size, (long long)res->revision, res->version,
                       res->endpoint, res->object, (long long)res->duration_ms);
                return;
        }
        json_t *j = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:I}", "sha256", res->sha256, "size",
                              (json_int_t)res->size, "revision", (json_int_t)res->revision, "etcdVersion", res->version,
                              "endpoint", res->endpoint, "object", res->object, "durationMs",
                              (json_int_t)res->duration_ms);
        if (j)
                json_dumpf(j, stdout, JSON_INDENT(2));
        printf("\n");
        json_decref(j);
}

int cmd_backup(const struct eg_command *cmd, int argc, char **argv) {
        struct backup_args a = {0};
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *cluster = n > 0 ? args[0] : NULL;
        free(args);
        if (!a.to || n > 1 || (!cluster && !a.endpoints) || (cluster && a.endpoints)) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                return EG_EXIT_ERROR;
        }
        char **eps = NULL;
        size_t n_eps = 0;
        struct eg_etcd_options eo = {0};
        struct eg_runtime *rt = NULL;
        _cleanup_free_ char *name = NULL;
        if (find_endpoints(cluster, &a, &eps, &n_eps, &eo, &rt, &name) < 0)
                return EG_EXIT_ERROR;
        if (a.cacert || a.cert || a.key)
                eo.tls = (struct eg_tls_client){a.cacert, a.cert, a.key};
        struct eg_backup_options bo = {.endpoints = eps, .n_endpoints = n_eps, .etcd = &eo, .timeout_ms = a.timeout_ms};
        int64_t last = 0;
        if (isatty(STDERR_FILENO)) {
                bo.progress = progress;
                bo.progress_userdata = &last;
        }
        if (eg_str_has_prefix(a.to, "s3://"))
                bo.store = (struct eg_backup_store){.type = EG_STORAGE_S3,
                                                    .path = a.to + 5,
                                                    .endpoint = a.s3_endpoint,
                                                    .force_path_style = a.path_style,
                                                    .credentials_file = a.aws_credentials};
        else
                bo.store = (struct eg_backup_store){.type = EG_STORAGE_FILE, .path = a.to};
        struct eg_backup_result res = {0};
        struct eg_error err = {0};
        bool held = false;
        struct eg_audit *audit = audit_open(&held);
        int64_t start = eg_now_monotonic_ms();
        r = eg_backup_take(&bo, &res, &err);
        if (bo.progress && last)
                fprintf(stderr, "\n");
        if (r < 0 && !err.message)
                eg_error_set(&err, "%s", strerror(-r));
        record(audit, held, name, &a, r < 0 ? err.message : NULL, &res, eg_now_monotonic_ms() - start);
        eg_audit_close(audit);
        eg_strv_free(eps, n_eps);
        eg_runtime_free(rt);
        if (r < 0) {
                eg_log_error("backup failed: %s", err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                return EG_EXIT_ERROR;
        }
        if (res.skipped)
                eg_log_warning("skipped unreachable endpoints: %s", res.skipped);
        print_result(&res, a.fmt == EG_OUT_JSON);
        eg_backup_result_done(&res);
        return EG_EXIT_OK;
}
