/* Restores: which EtcdRestore names a cluster, whether it was applied already, and the
 * restore step of a cluster's pass. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/backup.h"
#include "internal.h"

/* The EtcdRestore naming this cluster, if the source has one. */
static const struct eg_object *find_restore(const struct eg_desired_set *d, const char *ns, const char *name) {
        for (size_t i = 0; d && i < d->n_objects; i++) {
                const struct eg_object *o = d->objects[i];
                if (o->kind == EG_KIND_RESTORE && strcmp(o->meta.namespace, ns) == 0 && o->restore.etcd_cluster_name &&
                    strcmp(o->restore.etcd_cluster_name, name) == 0)
                        return o;
        }
        return NULL;
}

const char *restore_source(const struct eg_restore_spec *s) {
        if (s->object)
                return s->object;
        return s->backup_storage_type == EG_STORAGE_FILE ? s->file.path : s->s3.path;
}

/* A restore is applied once per manifest content: its marker holds the content hash. */
static char *restore_marker(const char *state_dir, const char *ns, const char *name) {
        return eg_strdup_printf("%s/restores/%s/%s.json", state_dir, ns, name);
}

static void restore_hash(const struct eg_object *restore, char out[static 65]) {
        _cleanup_free_ char *text = json_dumps(restore->document, JSON_SORT_KEYS | JSON_COMPACT);
        eg_sha256_hex(text ? text : "", text ? strlen(text) : 0, out);
}

static bool restore_done(const char *state_dir, const char *ns, const char *name, const struct eg_object *restore) {
        _cleanup_free_ char *p = restore_marker(state_dir, ns, name);
        json_t *j = p ? json_load_file(p, 0, NULL) : NULL;
        char hash[65];
        restore_hash(restore, hash);
        bool done = j && json_is_true(json_object_get(j, "succeeded")) &&
                    strcmp(json_string_value(json_object_get(j, "contentHash")) ?: "", hash) == 0;
        json_decref(j);
        return done;
}

/* Writes <state_dir>/restores/<ns>/<name>.json: upstream's succeeded/reason plus what was restored. */
static void restore_record(const char *state_dir, const char *ns, const char *name, const struct eg_object *restore,
                           const struct eg_restore_info *info, bool ok, const char *reason) {
        _cleanup_free_ char *p = restore_marker(state_dir, ns, name);
        _cleanup_free_ char *dir = eg_strdup_printf("%s/restores/%s", state_dir, ns);
        char hash[65], when[32];
        restore_hash(restore, hash);
        eg_format_rfc3339_ms(eg_now_realtime_ms(), when);
        json_t *j = json_pack("{s:b, s:s?, s:s, s:s?, s:I, s:s?, s:I, s:s}", "succeeded", ok, "reason", reason,
                              "contentHash", hash, "object", info->object, "revision", (json_int_t)info->revision,
                              "sha256", info->sha256[0] ? info->sha256 : NULL, "size", (json_int_t)info->size, "date",
                              when);
        _cleanup_free_ char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        if (p && dir && text && eg_mkdir_p(dir, 0755) >= 0)
                eg_write_file_atomic(p, text, strlen(text), 0644);
        json_decref(j);
}

static char *aws_credentials_file(const char *state_dir, const char *ns, const struct eg_restore_spec *r) {
        return eg_strdup_printf("%s/secrets/%s/%s/credentials", state_dir, ns, r->s3.aws_secret);
}

/* Before a restore's snapshot is fetched: refuses what the runtime cannot restore (its seed
 * fetches from S3 with an awsSecret, or nothing) and writes the awsSecret's files where the
 * fetch reads them. */
static int restore_ready(struct eg_runtime *rt, const char *ns, const struct eg_restore_spec *r, struct eg_error *err) {
        bool s3 = r->backup_storage_type == EG_STORAGE_S3;
        if (eg_runtime_fetches_restores(rt) && (!s3 || !r->s3.aws_secret)) {
                eg_error_set(err,
                             "on the %s runtime the seed member fetches the snapshot itself: restore from S3 "
                             "with s3.awsSecret naming a secret with the AWS credentials file",
                             eg_runtime_name(rt));
                return -EOPNOTSUPP;
        }
        if (s3 && r->s3.aws_secret) {
                int k = eg_runtime_sync_secret(rt, ns, r->s3.aws_secret, err);
                if (k < 0) {
                        if (k == -ENOENT)
                                eg_error_set(err, "secret %s/%s (s3.awsSecret) not found", ns, r->s3.aws_secret);
                        return k;
                }
        }
        return 0;
}

static int restore_seed_init(struct restore_seed *s, const char *state_dir, const char *ns,
                             const struct eg_restore_spec *r, const char *object, struct eg_error *err) {
        *s = (struct restore_seed){0};
        _cleanup_free_ char *creds = aws_credentials_file(state_dir, ns, r);
        if (!creds)
                return -ENOMEM;
        int k = eg_restore_seed_url(r, object, creds, &s->url, &s->region, err);
        if (k < 0)
                return k;
        s->seed = (struct eg_runtime_seed){.url = s->url, .region = s->region, .aws_secret = r->s3.aws_secret};
        return 0;
}

static void restore_seed_done(struct restore_seed *s) {
        free(s->url);
        free(s->region);
        *s = (struct restore_seed){0};
}

int restore_prepare_data(void *userdata, const char *member, const char *peer_url, const char *initial_cluster,
                         const char *token, const char *data_dir, struct eg_error *err) {
        return eg_restore_data_dir(userdata, member, peer_url, initial_cluster, token, data_dir, err);
}

const struct eg_object *pending_restore(const char *state_dir, const struct eg_desired_set *d, const char *ns,
                                        const char *name, bool cluster_exists, const struct eg_object **ret_refused) {
        if (ret_refused)
                *ret_refused = NULL;
        const struct eg_object *restore = state_dir ? find_restore(d, ns, name) : NULL;
        if (!restore || restore_done(state_dir, ns, name, restore))
                return NULL;
        if (cluster_exists && !restore->restore.overwrite) {
                /* a running cluster is never replaced by a restore unless asked */
                if (ret_refused)
                        *ret_refused = restore;
                return NULL;
        }
        return restore;
}

int restore_step(struct cluster_pass *p) {
        struct eg_reconciler *r = p->r;
        struct restore_step *s = &p->restore;
        const struct eg_object *refused = NULL;
        s->restore = p->obj ? pending_restore(r->opt.state_dir, p->desired, p->ns, p->name, p->o.rc_exists, &refused)
                            : NULL;
        if (refused && (p->revision_changed || p->t->recorded_state != EG_PLAN_BLOCKED))
                record_decision(p, refused, NULL,
                                &(const struct eg_decision){
                                        .kind = "blocked",
                                        .reason = "EtcdRestore names a running cluster; set spec.overwrite: true to "
                                                  "replace it",
                                        .outcome = "blocked"});
        if (!s->restore || r->opt.dry_run)
                return 0;
        struct eg_error err = {0};
        int64_t t0 = eg_now_monotonic_ms();
        int k = restore_ready(r->opt.runtime, p->ns, &s->restore->restore, &err);
        if (k >= 0)
                k = eg_restore_fetch(&s->restore->restore, p->ns, r->opt.state_dir, &s->snapshot, &s->info, &err);
        if (k < 0) {
                record_decision(p, s->restore, NULL,
                                &(const struct eg_decision){.kind = "restore",
                                                            .reason = "fetch and verify the snapshot to restore",
                                                            .outcome = "failed",
                                                            .duration_ms = eg_now_monotonic_ms() - t0,
                                                            .error = err.message});
                restore_record(r->opt.state_dir, p->ns, p->name, s->restore, &s->info, false, err.message);
                pass_failed(p, "restore failed", err.message);
        }
        eg_error_done(&err);
        return k;
}

const char *restore_step_source(const struct restore_step *s) {
        if (!s->restore)
                return NULL;
        return s->info.object ? s->info.object : restore_source(&s->restore->restore);
}

int restore_step_target(struct cluster_pass *p, struct eg_runtime_target *tg, struct eg_error *err) {
        struct restore_step *s = &p->restore;
        struct eg_runtime *rt = p->r->opt.runtime;
        if (!s->snapshot)
                return 0;
        tg->prepare_data = restore_prepare_data;
        tg->prepare_data_userdata = s->snapshot;
        if (!eg_runtime_fetches_restores(rt))
                return 0;
        int k = restore_seed_init(&s->seed, p->r->opt.state_dir, p->ns, &s->restore->restore, s->info.object, err);
        if (k >= 0)
                tg->seed = &s->seed.seed;
        return k;
}

void restore_step_applied(struct cluster_pass *p) {
        struct restore_step *s = &p->restore;
        if (s->snapshot)
                restore_record(p->r->opt.state_dir, p->ns, p->name, s->restore, &s->info, true, NULL);
}

void restore_step_done(struct restore_step *s) {
        if (s->snapshot)
                unlink(s->snapshot);
        free(s->snapshot);
        eg_restore_info_done(&s->info);
        restore_seed_done(&s->seed);
        *s = (struct restore_step){0};
}
