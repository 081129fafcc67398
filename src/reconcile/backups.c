/* The backup controller: runs due EtcdBackups beside the cluster pass, writes their status
 * files and records each backup in the journal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/cycle.h"

#define ONE_SHOT_RETRY_MS 60000

struct dry_entry {
        char *key;
        int64_t last_ms;
};

struct eg_backup_controller {
        struct eg_backup_controller_options o;
        struct eg_journal *journal; /* o.journal */
        char *state_dir;
        char *aws_credentials_file;
        struct dry_entry *dry; /* dry-run attempts, which are never written to status files */
        size_t n_dry;
};

int eg_backup_controller_new(const struct eg_backup_controller_options *o, struct eg_backup_controller **ret) {
        struct eg_backup_controller *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->o = *o;
        c->state_dir = strdup(o->state_dir);
        c->aws_credentials_file = o->aws_credentials_file ? strdup(o->aws_credentials_file) : NULL;
        if (!c->state_dir || (o->aws_credentials_file && !c->aws_credentials_file)) {
                eg_backup_controller_free(c);
                return -ENOMEM;
        }
        c->o.state_dir = c->state_dir;
        c->o.aws_credentials_file = c->aws_credentials_file;
        c->journal = o->journal;
        *ret = c;
        return 0;
}

void eg_backup_controller_free(struct eg_backup_controller *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_dry; i++)
                free(c->dry[i].key);
        free(c->dry);
        free(c->state_dir);
        free(c->aws_credentials_file);
        free(c);
}

/* ---- status files ---- */

static char *status_path(const char *state_dir, const char *ns, const char *name) {
        return eg_state_path(state_dir, EG_STATE_BACKUPS, ns, name);
}

static int status_save(const char *state_dir, const char *ns, const char *name, json_t *st) {
        _cleanup_free_ char *dir = eg_state_path(state_dir, EG_STATE_BACKUPS, ns, NULL);
        _cleanup_free_ char *path = status_path(state_dir, ns, name);
        _cleanup_free_ char *text = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!dir || !path || !text)
                return -ENOMEM;
        int r = eg_mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        return eg_write_file_atomic(path, text, strlen(text), 0600);
}

/* ---- one backup ---- */

/* What one backup decision was about, for its journal record. */
struct backup_decision {
        const struct eg_origin *origin;
        const char *revision, *cluster, *object; /* object: the EtcdBackup, "ns/name" */
};

static void record(struct eg_backup_controller *c, const struct backup_decision *b, const char *kind,
                   const char *reason, const char *outcome, const char *error, int64_t duration_ms, uint64_t size) {
        struct eg_decision d = {
                .revision = b->revision,
                .commit = b->origin->commit,
                .path = b->origin->path,
                .line = b->origin->line,
                .blob = b->origin->blob,
                .cluster = b->cluster,
                .object = b->object,
                .kind = kind,
                .reason = reason,
                .outcome = outcome,
                .error = error,
                .duration_ms = duration_ms,
                .size_bytes = size,
                .actor = "backup",
        };
        /* said where the command or the daemon's journal shows it, not only in the audit log */
        if (error)
                eg_log_error("EtcdBackup %s: %s %s: %s", b->object, kind, outcome, error);
        else
                eg_log_info("EtcdBackup %s: %s %s: %s", b->object, kind, outcome, reason);
        struct eg_error err = {0};
        if (eg_journal_record(c->journal, &d, &err) < 0)
                eg_log_warning("%s", err.message ? err.message : "cannot append to the audit log");
        eg_error_done(&err);
}

static char *document_hash(const struct eg_object *obj) {
        _cleanup_free_ char *text = obj->document ? json_dumps(obj->document, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        const char *src = text ? text : obj->origin.blob ? obj->origin.blob : obj->meta.name;
        char hex[65];
        eg_sha256_hex(src, strlen(src), hex);
        return strdup(hex);
}

static int64_t jint(json_t *st, const char *key) { return json_integer_value(json_object_get(st, key)); }

/* Endpoints and TLS for the backup: the runtime's running members, or the spec's list. */
static int resolve_endpoints(struct eg_backup_controller *c, const struct eg_object *obj, char ***ret, size_t *ret_n,
                             struct eg_etcd_options *eo, struct eg_error *err) {
        const struct eg_backup_spec *b = &obj->backup;
        char **v = NULL;
        size_t n = 0;
        if (b->etcd_cluster_name) {
                struct eg_runtime_cluster rc = {0};
                int r = c->o.runtime
                                ? eg_runtime_look(c->o.runtime, obj->meta.namespace, b->etcd_cluster_name, &rc, err)
                                : -ENOENT;
                if (r < 0) {
                        if (!err->message)
                                eg_error_set(err, "cluster %s/%s is not known to the runtime", obj->meta.namespace,
                                             b->etcd_cluster_name);
                        return r;
                }
                v = calloc(rc.n_members + 1, sizeof(*v));
                for (size_t i = 0; v && i < rc.n_members; i++)
                        if (rc.members[i].running && rc.members[i].client_url)
                                v[n++] = strdup(rc.members[i].client_url);
                eg_runtime_cluster_done(&rc);
                if (!v)
                        return -ENOMEM;
                int q = c->o.runtime->ops->etcd_access
                                ? c->o.runtime->ops->etcd_access(c->o.runtime, obj->meta.namespace,
                                                                 b->etcd_cluster_name, eo, err)
                                : 0;
                if (q < 0) {
                        eg_strv_free(v, n);
                        return q;
                }
        } else {
                v = calloc(b->n_etcd_endpoints + 1, sizeof(*v));
                for (size_t i = 0; v && i < b->n_etcd_endpoints; i++)
                        v[n++] = strdup(b->etcd_endpoints[i]);
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (!v[i]) {
                        eg_strv_free(v, n);
                        return -ENOMEM;
                }
        if (n == 0) {
                free(v);
                eg_error_set(err, "no running member to back up");
                return -EHOSTUNREACH;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* One due backup with everything its transfer needs copied, so that the transfer can run
 * on another thread while the daemon goes on (and replaces the desired set). Only its
 * preparation and its finish touch the runtime, status files and audit. */
struct job {
        char *ns, *name, *cluster, *hash, *revision;
        struct eg_origin origin;
        const char *kind; /* "periodic" or "one-shot" */
        bool periodic, one_shot;
        int64_t max_backups, interval_s;
        char *schedule;
        int64_t now;
        json_t *st;
        /* the transfer */
        char **eps;
        size_t n_eps;
        char *ca, *cert, *key;
        char **headers; /* NULL-terminated */
        char *store_path, *store_endpoint, *creds;
        enum eg_storage_type store_type;
        bool path_style;
        int64_t timeout_ms;
        /* what happened */
        int r;
        struct eg_error err;
        struct eg_backup_result res;
        int retain_r;
        struct eg_error retain_err;
        char **deleted;
        size_t n_deleted;
};

struct eg_backup_batch {
        struct job *jobs;
        size_t n;
};

static void job_done(struct job *j) {
        free(j->ns);
        free(j->name);
        free(j->cluster);
        free(j->hash);
        free(j->revision);
        free(j->origin.path);
        free(j->origin.blob);
        free(j->origin.commit);
        free(j->schedule);
        json_decref(j->st);
        eg_strv_free(j->eps, j->n_eps);
        free(j->ca);
        free(j->cert);
        free(j->key);
        for (char **h = j->headers; h && *h; h++)
                free(*h);
        free(j->headers);
        free(j->store_path);
        free(j->store_endpoint);
        free(j->creds);
        eg_error_done(&j->err);
        eg_backup_result_done(&j->res);
        eg_error_done(&j->retain_err);
        eg_strv_free(j->deleted, j->n_deleted);
        *j = (struct job){0};
}

void eg_backup_batch_free(struct eg_backup_batch *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n; i++)
                job_done(&b->jobs[i]);
        free(b->jobs);
        free(b);
}

static int dup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return s && !*ret ? -ENOMEM : 0;
}

static char **dup_headers(const char *const *h) {
        size_t n = 0;
        while (h && h[n])
                n++;
        char **v = calloc(n + 1, sizeof(*v));
        for (size_t i = 0; v && i < n; i++)
                if (!(v[i] = strdup(h[i]))) {
                        for (size_t k = 0; k < i; k++)
                                free(v[k]);
                        free(v);
                        return NULL;
                }
        return v;
}

/* Where the backup reads from and writes to, copied into j; a failure is j's outcome. */
static int job_resolve(struct eg_backup_controller *c, const struct eg_object *obj, struct job *j) {
        const struct eg_backup_spec *b = &obj->backup;
        struct eg_etcd_options eo = {0};
        int r = resolve_endpoints(c, obj, &j->eps, &j->n_eps, &eo, &j->err);
        if (r >= 0 && (dup_or_null(eo.tls.ca_file, &j->ca) < 0 || dup_or_null(eo.tls.cert_file, &j->cert) < 0 ||
                       dup_or_null(eo.tls.key_file, &j->key) < 0 || !(j->headers = dup_headers(eo.headers))))
                return -ENOMEM;
        if (r < 0)
                return r;
        /* on kubernetes the secrets are Secrets: written where they are read below */
        struct eg_runtime *rt = c->o.runtime;
        const char *secrets[] = {b->client_tls_secret, b->storage_type == EG_STORAGE_S3 && !c->aws_credentials_file
                                                               ? b->s3.aws_secret
                                                               : NULL};
        for (size_t i = 0; i < EG_ELEMENTSOF(secrets) && rt && rt->ops->sync_secret; i++)
                if (secrets[i] && (r = rt->ops->sync_secret(rt, obj->meta.namespace, secrets[i], &j->err)) < 0) {
                        if (r == -ENOENT)
                                eg_error_set(&j->err, "secret %s/%s not found", obj->meta.namespace, secrets[i]);
                        return r;
                }
        if (b->client_tls_secret) {
                _cleanup_free_ char *sd = eg_state_path(c->state_dir, EG_STATE_SECRETS, obj->meta.namespace,
                                                        b->client_tls_secret);
                free(j->ca);
                free(j->cert);
                free(j->key);
                j->ca = sd ? eg_path_join(sd, "etcd-client-ca.crt") : NULL;
                j->cert = sd ? eg_path_join(sd, "etcd-client.crt") : NULL;
                j->key = sd ? eg_path_join(sd, "etcd-client.key") : NULL;
                if (!j->ca || !j->cert || !j->key)
                        return -ENOMEM;
        }
        j->store_type = b->storage_type;
        j->timeout_ms = b->timeout_in_second > 0 ? b->timeout_in_second * 1000 : 60000;
        if (b->storage_type == EG_STORAGE_FILE)
                j->store_path = eg_path_join(b->file.path, obj->meta.name);
        else if (b->storage_type == EG_STORAGE_S3) {
                j->path_style = b->s3.force_path_style;
                if (dup_or_null(b->s3.path, &j->store_path) < 0 || dup_or_null(b->s3.endpoint, &j->store_endpoint) < 0)
                        return -ENOMEM;
                if (c->aws_credentials_file)
                        j->creds = strdup(c->aws_credentials_file);
                else if (b->s3.aws_secret)
                        j->creds = eg_state_path(c->state_dir, EG_STATE_AWS_CREDENTIALS, obj->meta.namespace,
                                                 b->s3.aws_secret);
                if ((c->aws_credentials_file || b->s3.aws_secret) && !j->creds)
                        return -ENOMEM;
        } else {
                eg_error_set(&j->err, "storage type %s is not supported: use S3 or File",
                             eg_storage_type_to_string(b->storage_type));
                return -EOPNOTSUPP;
        }
        return j->store_path ? 0 : -ENOMEM;
}

static int job_prepare(struct eg_backup_controller *c, const struct eg_object *obj, const char *revision,
                       const char *cluster, const char *hash, json_t *st, int64_t now, struct job *j) {
        const struct eg_backup_spec *b = &obj->backup;
        *j = (struct job){.now = now, .st = json_incref(st), .origin.line = obj->origin.line};
        j->periodic = b->schedule || b->backup_interval_in_second > 0;
        j->one_shot = !j->periodic;
        j->kind = j->periodic ? "periodic" : "one-shot";
        j->max_backups = b->max_backups;
        j->interval_s = b->backup_interval_in_second;
        if (!(j->ns = strdup(obj->meta.namespace)) || !(j->name = strdup(obj->meta.name)) ||
            !(j->cluster = strdup(cluster)) || !(j->hash = strdup(hash)) || dup_or_null(revision, &j->revision) < 0 ||
            dup_or_null(obj->origin.path, &j->origin.path) < 0 || dup_or_null(obj->origin.blob, &j->origin.blob) < 0 ||
            dup_or_null(obj->origin.commit, &j->origin.commit) < 0 || dup_or_null(b->schedule, &j->schedule) < 0)
                return -ENOMEM;
        j->r = job_resolve(c, obj, j);
        return j->r == -ENOMEM ? -ENOMEM : 0;
}

static void job_run(struct job *j, const atomic_bool *cancel) {
        if (j->r < 0)
                return;
        struct eg_etcd_options eo = {
                .tls = {j->ca, j->cert, j->key},
                .headers = j->headers && j->headers[0] ? (const char *const *)j->headers : NULL,
        };
        struct eg_backup_options bo = {
                .endpoints = j->eps,
                .n_endpoints = j->n_eps,
                .etcd = &eo,
                .periodic = j->periodic,
                .timeout_ms = j->timeout_ms,
                .cancel = cancel,
                .store = {.type = j->store_type,
                          .path = j->store_path,
                          .endpoint = j->store_endpoint,
                          .force_path_style = j->path_style,
                          .credentials_file = j->creds,
                          .cancel = cancel},
        };
        j->r = eg_backup_take(&bo, &j->res, &j->err);
        /* as long again for retention, which the snapshot's time must not starve */
        bo.store.deadline_ms = eg_now_monotonic_ms() + j->timeout_ms;
        if (j->r >= 0 && j->periodic && j->max_backups > 0)
                j->retain_r = eg_backup_retain(&bo.store, j->max_backups, &j->deleted, &j->n_deleted, &j->retain_err);
}

/* Status, journal records and when this backup is due again. */
static int64_t job_finish(struct eg_backup_controller *c, struct job *j) {
        _cleanup_free_ char *object = eg_strdup_printf("%s/%s", j->ns, j->name);
        const struct backup_decision bd = {&j->origin, j->revision, j->cluster, object};
        json_t *st = j->st;
        int64_t now = j->now;
        char date[32];
        eg_format_rfc3339_ms(now, date);
        json_object_set_new(st, "attemptHash", json_string(j->hash));
        json_object_set_new(st, "lastAttemptDate", json_string(date));
        json_object_set_new(st, "lastAttemptMs", json_integer(now));
        json_object_set_new(st, "succeeded", json_boolean(j->r >= 0));
        if (j->r >= 0) {
                const struct eg_backup_result *res = &j->res;
                _cleanup_free_ char *reason = eg_strdup_printf(
                        "%s snapshot of %s at revision %lld from %s: %llu bytes, sha256 %s, to %s", j->kind, j->cluster,
                        (long long)res->revision, res->endpoint, (unsigned long long)res->size, res->sha256,
                        res->object);
                json_object_set_new(st, "reason", json_string(""));
                json_object_set_new(st, "etcdVersion", json_string(res->version));
                json_object_set_new(st, "etcdRevision", json_integer(res->revision));
                json_object_set_new(st, "lastSuccessDate", json_string(date));
                json_object_set_new(st, "sha256", json_string(res->sha256));
                json_object_set_new(st, "size", json_integer((json_int_t)res->size));
                json_object_set_new(st, "durationMs", json_integer(res->duration_ms));
                json_object_set_new(st, "object", json_string(res->object));
                json_object_set_new(st, "endpoint", json_string(res->endpoint));
                json_object_set_new(st, "skippedEndpoints", res->skipped ? json_string(res->skipped) : json_null());
                record(c, &bd, "backup", reason, "ok", res->skipped, res->duration_ms, res->size);
                if (j->one_shot)
                        json_object_set_new(st, "oneShotDone", json_string(j->hash));
        } else {
                const char *msg = j->err.message ? j->err.message : strerror(-j->r);
                json_object_set_new(st, "reason", json_string(msg));
                _cleanup_free_ char *reason = eg_strdup_printf("%s snapshot of %s", j->kind, j->cluster);
                record(c, &bd, "backup", reason, "failed", msg, 0, 0);
        }
        for (size_t i = 0; i < j->n_deleted; i++) {
                _cleanup_free_ char *reason = eg_strdup_printf(
                        "deleted %s: keeping the newest %lld backups by revision", j->deleted[i],
                        (long long)j->max_backups);
                record(c, &bd, "backup-retention", reason, "ok", NULL, 0, 0);
        }
        if (j->retain_r < 0) {
                _cleanup_free_ char *reason = eg_strdup_printf("keeping the newest %lld backups",
                                                               (long long)j->max_backups);
                record(c, &bd, "backup-retention", reason, "failed",
                       j->retain_err.message ? j->retain_err.message : strerror(-j->retain_r), 0, 0);
        }
        int q = status_save(c->state_dir, j->ns, j->name, st);
        if (q < 0)
                eg_log_warning_errno(q, "cannot write the status of backup %s/%s: %m", j->ns, j->name);
        int64_t again = j->interval_s > 0          ? now + j->interval_s * 1000
                        : j->r < 0 && !j->schedule ? now + ONE_SHOT_RETRY_MS
                                                   : INT64_MAX;
        if (j->schedule) {
                struct eg_cron cron;
                if (eg_cron_parse(j->schedule, &cron) < 0 || eg_cron_next(&cron, now, &again) < 0)
                        again = INT64_MAX;
        }
        return again;
}

static struct dry_entry *dry_find(struct eg_backup_controller *c, const char *key) {
        for (size_t i = 0; i < c->n_dry; i++)
                if (strcmp(c->dry[i].key, key) == 0)
                        return &c->dry[i];
        struct dry_entry *v = realloc(c->dry, (c->n_dry + 1) * sizeof(*v));
        if (!v)
                return NULL;
        c->dry = v;
        v[c->n_dry] = (struct dry_entry){strdup(key), 0};
        if (!v[c->n_dry].key)
                return NULL;
        return &v[c->n_dry++];
}

/* When the backup obj describes is due, from its status st: by its cron schedule or its
 * interval since the last attempt, a one-shot once per manifest content (hash) and a
 * minute after a failed try. INT64_MAX: never again. */
static int64_t backup_due(struct eg_backup_controller *c, const struct eg_object *obj, json_t *st, const char *hash,
                          int64_t last, int64_t now) {
        const struct eg_backup_spec *b = &obj->backup;
        int64_t due;
        if (b->schedule) {
                struct eg_cron cron;
                if (!json_object_get(st, "firstSeenMs")) {
                        json_object_set_new(st, "firstSeenMs", json_integer(now));
                        if (!c->o.dry_run)
                                status_save(c->state_dir, obj->meta.namespace, obj->meta.name, st);
                }
                int64_t base = last > 0 ? last : jint(st, "firstSeenMs");
                if (eg_cron_parse(b->schedule, &cron) < 0 || eg_cron_next(&cron, base, &due) < 0)
                        due = INT64_MAX;
                return due;
        }
        if (b->backup_interval_in_second > 0)
                return last > 0 ? last + b->backup_interval_in_second * 1000 : now;
        const char *done = json_string_value(json_object_get(st, "oneShotDone"));
        if (done && strcmp(done, hash) == 0)
                return INT64_MAX;
        const char *attempted = json_string_value(json_object_get(st, "attemptHash"));
        return last > 0 && attempted && strcmp(attempted, hash) == 0 ? last + ONE_SHOT_RETRY_MS : now;
}

/* A dry run records what would run and when it would be due again; returns that time. */
static int64_t dry_run(struct eg_backup_controller *c, const struct eg_object *obj, const char *revision,
                       const char *cluster, struct dry_entry *dry, int64_t now) {
        const struct eg_backup_spec *b = &obj->backup;
        _cleanup_free_ char *reason = eg_strdup_printf("would snapshot %s", cluster);
        _cleanup_free_ char *object = eg_strdup_printf("%s/%s", obj->meta.namespace, obj->meta.name);
        const struct backup_decision bd = {&obj->origin, revision, cluster, object};
        record(c, &bd, "backup", reason, "dry-run", NULL, 0, 0);
        if (dry)
                dry->last_ms = now;
        if (!b->schedule && b->backup_interval_in_second <= 0)
                return INT64_MAX;
        return now + (b->backup_interval_in_second > 0 ? b->backup_interval_in_second * 1000 : 60000);
}

/* Adds obj's backup to batch when it is due, else lowers *next to when it is. */
static int consider(struct eg_backup_controller *c, const struct eg_object *obj, const char *revision, int64_t now,
                    struct eg_backup_batch *batch, int64_t *next) {
        const struct eg_backup_spec *b = &obj->backup;
        _cleanup_free_ char *path = status_path(c->state_dir, obj->meta.namespace, obj->meta.name);
        _cleanup_free_ char *hash = document_hash(obj);
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", obj->meta.namespace,
                                                        b->etcd_cluster_name ? b->etcd_cluster_name : obj->meta.name);
        json_t *st = path && hash && cluster ? eg_backup_status_load(path) : NULL;
        if (!st)
                return -ENOMEM;
        json_object_set_new(st, "namespace", json_string(obj->meta.namespace));
        json_object_set_new(st, "name", json_string(obj->meta.name));
        json_object_set_new(st, "cluster", json_string(cluster));
        struct dry_entry *dry = c->o.dry_run ? dry_find(c, path) : NULL;
        int64_t last = c->o.dry_run ? (dry ? dry->last_ms : now) : jint(st, "lastAttemptMs");
        int64_t due = backup_due(c, obj, st, hash, last, now);
        int r = 0;
        if (due > now || c->o.dry_run) {
                if (due <= now)
                        due = dry_run(c, obj, revision, cluster, dry, now);
                if (due < *next)
                        *next = due;
        } else {
                struct job *v = realloc(batch->jobs, (batch->n + 1) * sizeof(*v));
                r = v ? job_prepare(c, obj, revision, cluster, hash, st, now, &v[batch->n]) : -ENOMEM;
                if (v)
                        batch->jobs = v;
                if (v)
                        batch->n++;
        }
        json_decref(st);
        return r;
}

int eg_backup_controller_start(struct eg_backup_controller *c, const struct eg_desired_set *desired,
                               const char *revision, int64_t now, struct eg_backup_batch **ret_batch,
                               int64_t *ret_next_due_realtime_ms) {
        int64_t next = INT64_MAX;
        struct eg_backup_batch *batch = calloc(1, sizeof(*batch));
        if (!batch)
                return -ENOMEM;
        for (size_t i = 0; i < desired->n_objects; i++) {
                const struct eg_object *obj = desired->objects[i];
                if (obj->kind != EG_KIND_BACKUP ||
                    eg_desired_set_object_has_errors(desired, EG_KIND_BACKUP, obj->meta.namespace, obj->meta.name))
                        continue;
                int r = consider(c, obj, revision, now, batch, &next);
                if (r < 0) {
                        eg_backup_batch_free(batch);
                        return r;
                }
        }
        if (batch->n == 0) {
                eg_backup_batch_free(batch);
                batch = NULL;
        }
        *ret_batch = batch;
        *ret_next_due_realtime_ms = next;
        return 0;
}

void eg_backup_batch_run(struct eg_backup_batch *b, const atomic_bool *cancel) {
        for (size_t i = 0; b && i < b->n; i++)
                job_run(&b->jobs[i], cancel);
}

int eg_backup_controller_finish(struct eg_backup_controller *c, struct eg_backup_batch *b,
                                int64_t *ret_next_due_realtime_ms) {
        int failed = 0;
        int64_t next = INT64_MAX;
        for (size_t i = 0; b && i < b->n; i++) {
                int64_t again = job_finish(c, &b->jobs[i]);
                if (b->jobs[i].r < 0)
                        failed++;
                if (again < next)
                        next = again;
        }
        eg_backup_batch_free(b);
        *ret_next_due_realtime_ms = next;
        return failed;
}

int eg_backup_controller_pass(struct eg_backup_controller *c, const struct eg_desired_set *desired,
                              const char *revision, int64_t now, int64_t *ret_next_due_realtime_ms) {
        struct eg_backup_batch *b = NULL;
        int64_t next = INT64_MAX, again = INT64_MAX;
        int r = eg_backup_controller_start(c, desired, revision, now, &b, &next);
        if (r < 0)
                return r;
        eg_backup_batch_run(b, NULL);
        int failed = eg_backup_controller_finish(c, b, &again);
        *ret_next_due_realtime_ms = again < next ? again : next;
        return failed;
}
