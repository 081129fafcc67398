/* The EtcdBackup and EtcdRestore specs: storage, endpoints, policy and schedule. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "decode.h"

#define DEFAULT_BACKUP_TIMEOUT 60

/* ---- cron (extension: EtcdBackup spec.schedule) ---- */

static void f_schedule(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        static const char *const names[] = {"minute", "hour", "day of month", "month", "day of week"};
        struct eg_cron c;
        int bad = -1, r = eg_cron_parse_at(v->text, &c, &bad);
        if (r == -ENOMEM) {
                d->c->oom = -ENOMEM;
                return;
        }
        if (r < 0 && bad < 0) {
                dec_err_got(d, v, p, "a cron schedule of 5 fields (minute hour day-of-month month day-of-week)");
                return;
        }
        if (r < 0) {
                /* name the field as written */
                const char *q = v->text;
                for (int i = 0;; i++) {
                        q += strspn(q, " \t");
                        if (i == bad)
                                break;
                        q += strcspn(q, " \t");
                }
                dec_err(d, v, p, "invalid %s field \"%.*s\" in cron schedule", names[bad], (int)strcspn(q, " \t"), q);
                return;
        }
        dec_set_str(t, v->text);
}

/* ---- storage (EtcdBackup, EtcdRestore) ---- */

static const struct field s3_fields[] = {
        {"path", dec_bucket_path, offsetof(struct eg_s3_source, path)},
        {"awsSecret", dec_secret, offsetof(struct eg_s3_source, aws_secret)},
        {"endpoint", dec_url, offsetof(struct eg_s3_source, endpoint)},
        {"forcePathStyle", dec_bool, offsetof(struct eg_s3_source, force_path_style)},
        {0},
};

static void f_s3(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        dec_map(d, v, j, p, s3_fields, t);
}

static const struct field file_fields[] = {
        {"path", dec_absolute_path, offsetof(struct eg_file_source, path)},
        {0},
};

static void f_file(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        dec_map(d, v, j, p, file_fields, t);
}

/* ABS, GCS and OSS blocks are checked but not kept: no store of ours implements them. */
struct other_store {
        char *path, *abs_secret, *gcp_secret, *oss_secret, *endpoint;
};

#define OTHER(m) offsetof(struct other_store, m)
static const struct field other_store_fields[] = {
        {"path", dec_bucket_path, OTHER(path)},       {"absSecret", dec_secret, OTHER(abs_secret)},
        {"gcpSecret", dec_secret, OTHER(gcp_secret)}, {"ossSecret", dec_secret, OTHER(oss_secret)},
        {"endpoint", dec_url, OTHER(endpoint)},       {0},
};

static void f_other_store(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct other_store scratch = {0};
        dec_map(d, v, j, p, other_store_fields, &scratch);
        free(scratch.path);
        free(scratch.abs_secret);
        free(scratch.gcp_secret);
        free(scratch.oss_secret);
        free(scratch.endpoint);
}

static int storage_from_string(const char *s, enum eg_storage_type *ret) {
        for (enum eg_storage_type t = EG_STORAGE_S3; t <= EG_STORAGE_FILE; t++)
                if (strcmp(s, eg_storage_type_to_string(t)) == 0) {
                        *ret = t;
                        return 0;
                }
        return -EINVAL;
}

static void f_storage_type(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        enum eg_storage_type st;
        bool restore = d->o->kind == EG_KIND_RESTORE;
        const char *want = restore ? "one of S3, File" : "one of S3, ABS, GCS, OSS, File";
        if (!dec_get_string(d, v, p, want))
                return;
        if (storage_from_string(v->text, &st) < 0 || (restore && st != EG_STORAGE_S3 && st != EG_STORAGE_FILE)) {
                dec_err_got(d, v, p, want);
                return;
        }
        *(enum eg_storage_type *)t = st;
        d->has_storage_type = true;
}

static const char *const storage_keys[] = {[EG_STORAGE_S3] = "s3",
                                           [EG_STORAGE_ABS] = "abs",
                                           [EG_STORAGE_GCS] = "gcs",
                                           [EG_STORAGE_OSS] = "oss",
                                           [EG_STORAGE_FILE] = "file"};

/* The block of the chosen storage type must be there with a path; others are ignored. */
static void check_storage(struct dec *d, const struct eg_yn *s, const struct eg_fpath *p, const char *type_key,
                          enum eg_storage_type st) {
        for (enum eg_storage_type t = EG_STORAGE_S3; t <= EG_STORAGE_FILE; t++) {
                const struct eg_yn *block = dec_map_get(s, storage_keys[t]);
                bool present = block && block->type != EG_YN_NULL;
                struct eg_fpath bp = {p, storage_keys[t], 0};
                if (t == st) {
                        if (!present)
                                dec_required(d, s, p, storage_keys[t],
                                             t == EG_STORAGE_FILE ? "(with path) when the storage type is File"
                                                                  : "(with path) for this storage type");
                        else if (block->type == EG_YN_MAP && !dec_map_get(block, "path"))
                                dec_required(d, block, &bp, "path", NULL);
                } else if (present) {
                        dec_warn(d, block, &bp, "ignored because %s is %s", type_key, eg_storage_type_to_string(st));
                }
        }
}

static void f_endpoints(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_backup_spec *b = &d->o->backup;
        if (v->type != EG_YN_SEQ) {
                if (!dec_reported_already(v))
                        dec_err_got(d, v, p, "a sequence of URLs");
                return;
        }
        char **list = calloc(v->n_items + 1, sizeof(char *));
        if (!list) {
                d->c->oom = -ENOMEM;
                return;
        }
        size_t n = 0;
        for (size_t i = 0; i < v->n_items; i++) {
                struct eg_fpath ip = {p, NULL, i};
                dec_url(d, v->items[i], NULL, &ip, &list[n]);
                if (list[n])
                        n++;
        }
        for (size_t i = 0; b->etcd_endpoints && b->etcd_endpoints[i]; i++)
                free(b->etcd_endpoints[i]);
        free(b->etcd_endpoints);
        b->etcd_endpoints = list;
        b->n_etcd_endpoints = n;
}

static const struct field cluster_ref_fields[] = {
        {"name", dec_name, 0},
        {0},
};

static void f_cluster_ref(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (dec_map(d, v, j, p, cluster_ref_fields, t) && !dec_map_get(v, "name"))
                dec_required(d, v, p, "name", NULL);
}

#define BACKUP(m) offsetof(struct eg_backup_spec, m)
static const struct field backup_policy_fields[] = {
        {"timeoutInSecond", dec_int_nonneg, BACKUP(timeout_in_second)},
        {"backupIntervalInSecond", dec_int_nonneg, BACKUP(backup_interval_in_second)},
        {"maxBackups", dec_int_nonneg, BACKUP(max_backups)},
        {0},
};

static void f_backup_policy(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        dec_map(d, v, j, p, backup_policy_fields, t);
}

static const struct field backup_fields[] = {
        {"etcdEndpoints", f_endpoints, 0},
        {"etcdCluster", f_cluster_ref, BACKUP(etcd_cluster_name)},
        {"storageType", f_storage_type, BACKUP(storage_type)},
        {"backupPolicy", f_backup_policy, 0},
        {"schedule", f_schedule, BACKUP(schedule)},
        {"s3", f_s3, BACKUP(s3)},
        {"abs", f_other_store, 0},
        {"gcs", f_other_store, 0},
        {"oss", f_other_store, 0},
        {"file", f_file, BACKUP(file)},
        {"clientTLSSecret", dec_secret, BACKUP(client_tls_secret)},
        {0},
};

void dec_backup(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_backup_spec *b = &d->o->backup;
        b->etcd_endpoints = calloc(1, sizeof(char *));
        if (!b->etcd_endpoints) {
                d->c->oom = -ENOMEM;
                return;
        }
        if (!dec_map(d, s, js, p, backup_fields, b))
                return;
        if (!d->has_storage_type) {
                if (!dec_map_get(s, "storageType"))
                        dec_required(d, s, p, "storageType", "(S3, ABS, GCS, OSS or File)");
        } else
                check_storage(d, s, p, "storageType", b->storage_type);
        const struct eg_yn *eps = dec_map_get(s, "etcdEndpoints"), *ref = dec_map_get(s, "etcdCluster");
        bool eps_given = eps && eps->type != EG_YN_NULL, has_ref = ref && ref->type != EG_YN_NULL;
        bool has_eps = eps_given && !(eps->type == EG_YN_SEQ && eps->n_items == 0);
        if (!has_eps && !has_ref)
                dec_required(d, s, p, "etcdEndpoints", "(or etcdCluster.name)");
        else if (has_eps && has_ref) {
                struct eg_fpath rp = {p, "etcdCluster", 0};
                dec_err(d, ref, &rp, "set either etcdEndpoints or etcdCluster, not both");
        }
        const struct eg_yn *sched = dec_map_get(s, "schedule");
        struct eg_fpath sp = {p, "schedule", 0};
        if (b->schedule && b->backup_interval_in_second > 0)
                dec_err(d, sched, &sp, "set either schedule or backupPolicy.backupIntervalInSecond, not both");
        if (b->max_backups > 0 && !b->schedule && b->backup_interval_in_second == 0) {
                const struct eg_yn *pol = dec_map_get(s, "backupPolicy"), *max = dec_map_get(pol, "maxBackups");
                struct eg_fpath pp = {p, "backupPolicy", 0}, mp = {&pp, "maxBackups", 0};
                if (max)
                        dec_warn(d, max, &mp,
                                 "has no effect on a one-shot backup (no schedule or backupIntervalInSecond)");
        }
        if (b->timeout_in_second == 0)
                b->timeout_in_second = DEFAULT_BACKUP_TIMEOUT;
}

#define RESTORE(m) offsetof(struct eg_restore_spec, m)
static const struct field restore_fields[] = {
        {"etcdCluster", f_cluster_ref, RESTORE(etcd_cluster_name)},
        {"backupStorageType", f_storage_type, RESTORE(backup_storage_type)},
        {"s3", f_s3, RESTORE(s3)},
        {"file", f_file, RESTORE(file)},
        {"abs", f_other_store, 0},
        {"gcs", f_other_store, 0},
        {"oss", f_other_store, 0},
        {"revision", dec_int_nonneg, RESTORE(revision)},
        {"object", dec_string, RESTORE(object)},
        {"overwrite", dec_bool, RESTORE(overwrite)},
        {0},
};

void dec_restore(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_restore_spec *r = &d->o->restore;
        if (!dec_map(d, s, js, p, restore_fields, r))
                return;
        if (!dec_map_get(s, "etcdCluster"))
                dec_required(d, s, p, "etcdCluster", "(with name: the cluster to restore into)");
        if (!d->has_storage_type) {
                if (!dec_map_get(s, "backupStorageType"))
                        dec_required(d, s, p, "backupStorageType", "(S3 or File)");
        } else
                check_storage(d, s, p, "backupStorageType", r->backup_storage_type);
        const struct eg_yn *obj = dec_map_get(s, "object");
        struct eg_fpath op = {p, "object", 0};
        if (r->object && !*r->object)
                dec_err(d, obj, &op, "must not be empty");
        if (r->object && r->revision > 0)
                dec_err(d, obj, &op, "set either object or revision, not both");
}
