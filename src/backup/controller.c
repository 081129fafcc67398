/* The backup controller: runs due EtcdBackups, records their status and audit records. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ONE_SHOT_RETRY_MS 60000
#define STATUS_MAX_BYTES ((size_t)1 << 20)

struct dry_entry {
        char *key;
        int64_t last_ms;
};

struct eg_backup_controller {
        struct eg_backup_controller_options o;
        char *state_dir;
        char *aws_credentials_file;
        struct dry_entry *dry; /* dry-run attempts, which are never written to status files */
        size_t n_dry;
};

int eg_backup_controller_new(const struct eg_backup_controller_options *o,
                             struct eg_backup_controller **ret) {
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
        return eg_strdup_printf("%s/backups/%s/%s.json", state_dir, ns, name);
}

static json_t *status_load(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        json_t *j = NULL;
        if (eg_read_file(path, STATUS_MAX_BYTES, &text, &len) >= 0)
                j = json_loadb(text, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                j = json_object();
        }
        return j;
}

static int status_save(const char *state_dir, const char *ns, const char *name, json_t *st) {
        _cleanup_free_ char *dir = eg_strdup_printf("%s/backups/%s", state_dir, ns);
        _cleanup_free_ char *path = status_path(state_dir, ns, name);
        _cleanup_free_ char *text = json_dumps(st, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!dir || !path || !text)
                return -ENOMEM;
        int r = eg_mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        return eg_write_file_atomic(path, text, strlen(text), 0600);
}

static int cmp_status(const void *a, const void *b) {
        json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        const char *xn = json_string_value(json_object_get(x, "namespace")), *yn = json_string_value(json_object_get(y, "namespace"));
        int c = strcmp(xn ? xn : "", yn ? yn : "");
        if (c)
                return c;
        xn = json_string_value(json_object_get(x, "name"));
        yn = json_string_value(json_object_get(y, "name"));
        return strcmp(xn ? xn : "", yn ? yn : "");
}

int eg_backup_status_all(const char *state_dir, json_t **ret) {
        _cleanup_free_ char *root = eg_strdup_printf("%s/backups", state_dir);
        if (!root)
                return -ENOMEM;
        json_t *all = json_array();
        if (!all)
                return -ENOMEM;
        DIR *d = opendir(root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *nsdir = eg_path_join(root, de->d_name);
                DIR *d2 = nsdir ? opendir(nsdir) : NULL;
                struct dirent *f;
                while (d2 && (f = readdir(d2))) {
                        if (f->d_name[0] == '.' || !eg_str_has_suffix(f->d_name, ".json"))
                                continue;
                        _cleanup_free_ char *p = eg_path_join(nsdir, f->d_name);
                        json_t *st = p ? status_load(p) : NULL;
                        if (st && json_object_get(st, "name"))
                                json_array_append_new(all, st);
                        else
                                json_decref(st);
                }
                if (d2)
                        closedir(d2);
        }
        if (d)
                closedir(d);
        size_t n = json_array_size(all);
        json_t **items = calloc(n ? n : 1, sizeof(*items));
        if (!items) {
                json_decref(all);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                items[i] = json_incref(json_array_get(all, i));
        qsort(items, n, sizeof(*items), cmp_status);
        json_array_clear(all);
        for (size_t i = 0; i < n; i++)
                json_array_append_new(all, items[i]);
        free(items);
        *ret = all;
        return 0;
}

/* ---- one backup ---- */

static void audit(struct eg_backup_controller *c, const struct eg_object *obj, const char *revision,
                  const char *decision, const char *cluster, const char *reason, const char *outcome,
                  const char *error, int64_t duration_ms) {
        if (!c->o.audit)
                return;
        struct eg_audit_record rec = {
                .revision = (char *)revision,
                .commit = obj->origin.commit,
                .path = obj->origin.path,
                .line = obj->origin.line,
                .blob = obj->origin.blob,
                .cluster = (char *)cluster,
                .decision = (char *)decision,
                .reason = (char *)reason,
                .outcome = (char *)outcome,
                .error = (char *)error,
                .duration_ms = duration_ms,
        };
        int r = eg_audit_append(c->o.audit, &rec);
        if (r < 0)
                eg_log_warning_errno(r, "cannot append to the audit log: %m");
        free(rec.prev);
        free(rec.hash);
}

static char *document_hash(const struct eg_object *obj) {
        _cleanup_free_ char *text = obj->document ? json_dumps(obj->document, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        const char *src = text ? text : obj->origin.blob ? obj->origin.blob : obj->meta.name;
        char hex[65];
        eg_sha256_hex(src, strlen(src), hex);
        return strdup(hex);
}

static int64_t jint(json_t *st, const char *key) {
        return json_integer_value(json_object_get(st, key));
}

/* Endpoints and TLS for the backup: the runtime's running members, or the spec's list. */
static int resolve_endpoints(struct eg_backup_controller *c, const struct eg_object *obj, char ***ret,
                             size_t *ret_n, struct eg_etcd_options *eo, struct eg_error *err) {
        const struct eg_backup_spec *b = &obj->backup;
        char **v = NULL;
        size_t n = 0;
        if (b->etcd_cluster_name) {
                struct eg_runtime_cluster rc = {0};
                int r = c->o.runtime ? c->o.runtime->ops->observe(c->o.runtime, obj->meta.namespace, b->etcd_cluster_name, &rc, err)
                                     : -ENOENT;
                if (r < 0) {
                        if (!err->message)
                                eg_error_set(err, "cluster %s/%s is not known to the runtime", obj->meta.namespace, b->etcd_cluster_name);
                        return r;
                }
                v = calloc(rc.n_members + 1, sizeof(*v));
                for (size_t i = 0; v && i < rc.n_members; i++)
                        if (rc.members[i].running && rc.members[i].client_url)
                                v[n++] = strdup(rc.members[i].client_url);
                eg_runtime_cluster_done(&rc);
                if (!v)
                        return -ENOMEM;
                if (c->o.runtime->ops->etcd_access) {
                        struct eg_error e = {0};
                        if (c->o.runtime->ops->etcd_access(c->o.runtime, obj->meta.namespace, b->etcd_cluster_name, eo, &e) < 0)
                                *eo = (struct eg_etcd_options){0};
                        eg_error_done(&e);
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
                        bk_strv_free(v, n);
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

struct tls_files {
        char *ca, *cert, *key;
};

static int run_one(struct eg_backup_controller *c, const struct eg_object *obj, const char *revision,
                   const char *cluster, json_t *st, int64_t now) {
        const struct eg_backup_spec *b = &obj->backup;
        struct eg_error err = {0};
        struct eg_etcd_options eo = {0};
        struct tls_files tls = {0};
        char **eps = NULL;
        size_t n_eps = 0;
        struct eg_backup_result res = {0};
        _cleanup_free_ char *dir_object = NULL, *creds = NULL;
        bool periodic = b->schedule || b->backup_interval_in_second > 0;
        int r = resolve_endpoints(c, obj, &eps, &n_eps, &eo, &err);
        /* on kubernetes the secrets are Secrets: written where they are read below */
        struct eg_runtime *rt = c->o.runtime;
        const char *secrets[] = {b->client_tls_secret, b->storage_type == EG_STORAGE_S3 && !c->aws_credentials_file
                                                               ? b->s3.aws_secret
                                                               : NULL};
        for (size_t i = 0; i < EG_ELEMENTSOF(secrets) && r >= 0 && rt && rt->ops->sync_secret; i++)
                if (secrets[i] && (r = rt->ops->sync_secret(rt, obj->meta.namespace, secrets[i], &err)) == -ENOENT)
                        eg_error_set(&err, "secret %s/%s not found", obj->meta.namespace, secrets[i]);
        if (r >= 0 && b->client_tls_secret) {
                _cleanup_free_ char *sd = eg_strdup_printf("%s/secrets/%s/%s", c->state_dir, obj->meta.namespace, b->client_tls_secret);
                tls.ca = sd ? eg_path_join(sd, "etcd-client-ca.crt") : NULL;
                tls.cert = sd ? eg_path_join(sd, "etcd-client.crt") : NULL;
                tls.key = sd ? eg_path_join(sd, "etcd-client.key") : NULL;
                if (!tls.ca || !tls.cert || !tls.key)
                        r = -ENOMEM;
                eo.tls = (struct eg_etcd_tls){tls.ca, tls.cert, tls.key};
        }
        struct eg_backup_options bo = {
                .endpoints = eps,
                .n_endpoints = n_eps,
                .etcd = &eo,
                .periodic = periodic,
                .timeout_ms = b->timeout_in_second > 0 ? b->timeout_in_second * 1000 : 60000,
        };
        bo.store.type = b->storage_type;
        if (b->storage_type == EG_STORAGE_FILE) {
                dir_object = eg_path_join(b->file.path, obj->meta.name);
                bo.store.path = dir_object;
        } else {
                bo.store.path = b->s3.path;
                bo.store.endpoint = b->s3.endpoint;
                bo.store.force_path_style = b->s3.force_path_style;
                if (c->aws_credentials_file)
                        bo.store.credentials_file = c->aws_credentials_file;
                else if (b->s3.aws_secret)
                        bo.store.credentials_file = creds = eg_strdup_printf("%s/secrets/%s/%s/credentials", c->state_dir,
                                                                             obj->meta.namespace, b->s3.aws_secret);
        }
        if (r >= 0 && !bo.store.path)
                r = -ENOMEM;
        if (r >= 0 && b->storage_type != EG_STORAGE_FILE && b->storage_type != EG_STORAGE_S3) {
                eg_error_set(&err, "storage type %s is not supported: use S3 or File", eg_storage_type_to_string(b->storage_type));
                r = -EOPNOTSUPP;
        }
        if (r >= 0)
                r = eg_backup_take(&bo, &res, &err);
        char date[32];
        eg_format_rfc3339_ms(now, date);
        json_object_set_new(st, "lastAttemptDate", json_string(date));
        json_object_set_new(st, "lastAttemptMs", json_integer(now));
        json_object_set_new(st, "succeeded", json_boolean(r >= 0));
        if (r >= 0) {
                _cleanup_free_ char *reason = eg_strdup_printf("%s snapshot of %s at revision %lld from %s: %llu bytes, sha256 %s, to %s",
                                                               periodic ? "periodic" : "one-shot", cluster, (long long)res.revision,
                                                               res.endpoint, (unsigned long long)res.size, res.sha256, res.object);
                json_object_set_new(st, "reason", json_string(""));
                json_object_set_new(st, "etcdVersion", json_string(res.version));
                json_object_set_new(st, "etcdRevision", json_integer(res.revision));
                json_object_set_new(st, "lastSuccessDate", json_string(date));
                json_object_set_new(st, "sha256", json_string(res.sha256));
                json_object_set_new(st, "size", json_integer((json_int_t)res.size));
                json_object_set_new(st, "durationMs", json_integer(res.duration_ms));
                json_object_set_new(st, "object", json_string(res.object));
                json_object_set_new(st, "endpoint", json_string(res.endpoint));
                json_object_set_new(st, "skippedEndpoints", res.skipped ? json_string(res.skipped) : json_null());
                audit(c, obj, revision, "backup", cluster, reason, "ok", res.skipped, res.duration_ms);
        } else {
                const char *msg = err.message ? err.message : strerror(-r);
                json_object_set_new(st, "reason", json_string(msg));
                _cleanup_free_ char *reason = eg_strdup_printf("%s snapshot of %s", periodic ? "periodic" : "one-shot", cluster);
                audit(c, obj, revision, "backup", cluster, reason, "failed", msg, 0);
        }
        eg_error_done(&err);
        if (r >= 0 && periodic && b->max_backups > 0) {
                char **deleted = NULL;
                size_t n_deleted = 0;
                int q = eg_backup_retain(&bo.store, b->max_backups, &deleted, &n_deleted, &err);
                for (size_t i = 0; q >= 0 && i < n_deleted; i++) {
                        _cleanup_free_ char *reason = eg_strdup_printf("deleted %s: keeping the newest %lld backups by revision",
                                                                       deleted[i], (long long)b->max_backups);
                        audit(c, obj, revision, "backup-retention", cluster, reason, "ok", NULL, 0);
                }
                if (q < 0) {
                        _cleanup_free_ char *reason = eg_strdup_printf("keeping the newest %lld backups", (long long)b->max_backups);
                        audit(c, obj, revision, "backup-retention", cluster, reason, "failed", err.message ? err.message : strerror(-q), 0);
                }
                bk_strv_free(deleted, n_deleted);
                eg_error_done(&err);
        }
        eg_backup_result_done(&res);
        bk_strv_free(eps, n_eps);
        free(tls.ca);
        free(tls.cert);
        free(tls.key);
        return r;
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

int eg_backup_controller_pass(struct eg_backup_controller *c, const struct eg_desired_set *desired,
                              const char *revision, int64_t now, int64_t *ret_next_due_realtime_ms) {
        int64_t next = INT64_MAX;
        int failed = 0;
        for (size_t i = 0; i < desired->n_objects; i++) {
                const struct eg_object *obj = desired->objects[i];
                if (obj->kind != EG_KIND_BACKUP ||
                    eg_desired_set_object_has_errors(desired, EG_KIND_BACKUP, obj->meta.namespace, obj->meta.name))
                        continue;
                const struct eg_backup_spec *b = &obj->backup;
                _cleanup_free_ char *path = status_path(c->state_dir, obj->meta.namespace, obj->meta.name);
                _cleanup_free_ char *hash = document_hash(obj);
                _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", obj->meta.namespace,
                                                                b->etcd_cluster_name ? b->etcd_cluster_name : obj->meta.name);
                if (!path || !hash || !cluster)
                        return -ENOMEM;
                json_t *st = status_load(path);
                if (!st)
                        return -ENOMEM;
                json_object_set_new(st, "namespace", json_string(obj->meta.namespace));
                json_object_set_new(st, "name", json_string(obj->meta.name));
                json_object_set_new(st, "cluster", json_string(cluster));
                struct dry_entry *dry = c->o.dry_run ? dry_find(c, path) : NULL;
                int64_t last = c->o.dry_run ? (dry ? dry->last_ms : now) : jint(st, "lastAttemptMs");
                bool same_doc = json_string_value(json_object_get(st, "attemptHash")) &&
                                strcmp(json_string_value(json_object_get(st, "attemptHash")), hash) == 0;
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
                } else if (b->backup_interval_in_second > 0)
                        due = last > 0 ? last + b->backup_interval_in_second * 1000 : now;
                else {
                        const char *done = json_string_value(json_object_get(st, "oneShotDone"));
                        if (done && strcmp(done, hash) == 0)
                                due = INT64_MAX;
                        else
                                due = last > 0 && same_doc ? last + ONE_SHOT_RETRY_MS : now;
                }
                if (due > now) {
                        if (due < next)
                                next = due;
                        json_decref(st);
                        continue;
                }
                if (c->o.dry_run) {
                        _cleanup_free_ char *reason = eg_strdup_printf("would snapshot %s", cluster);
                        audit(c, obj, revision, "backup", cluster, reason, "dry-run", NULL, 0);
                        if (dry)
                                dry->last_ms = now;
                        if (b->schedule || b->backup_interval_in_second > 0) {
                                int64_t again = now + (b->backup_interval_in_second > 0 ? b->backup_interval_in_second * 1000 : 60000);
                                if (again < next)
                                        next = again;
                        }
                        json_decref(st);
                        continue;
                }
                json_object_set_new(st, "attemptHash", json_string(hash));
                int r = run_one(c, obj, revision, cluster, st, now);
                if (r < 0)
                        failed++;
                else if (!b->schedule && b->backup_interval_in_second == 0)
                        json_object_set_new(st, "oneShotDone", json_string(hash));
                int q = status_save(c->state_dir, obj->meta.namespace, obj->meta.name, st);
                if (q < 0)
                        eg_log_warning_errno(q, "cannot write backup status '%s': %m", path);
                int64_t again = b->backup_interval_in_second > 0 ? now + b->backup_interval_in_second * 1000
                                : r < 0 && !b->schedule          ? now + ONE_SHOT_RETRY_MS
                                                                 : INT64_MAX;
                if (b->schedule) {
                        struct eg_cron cron;
                        if (eg_cron_parse(b->schedule, &cron) < 0 || eg_cron_next(&cron, now, &again) < 0)
                                again = INT64_MAX;
                }
                if (again < next)
                        next = again;
                json_decref(st);
        }
        *ret_next_due_realtime_ms = next;
        return failed;
}
