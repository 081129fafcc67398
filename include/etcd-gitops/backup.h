/* backup: etcd snapshots to File and S3 stores, retention, backup status, the backup
 * controller, and fetching a snapshot back for a restore. */
#pragma once

#include <stdatomic.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

/* Smallest multipart part; snapshots up to this size go up in one PUT. */
#define EG_S3_PART_SIZE ((size_t)8 << 20)
/* Stored snapshots are what `etcdctl snapshot save` writes: the db followed by its
 * 32-byte sha256, so `etcdctl snapshot restore` verifies them. */
#define EG_SNAPSHOT_TRAILER 32

/* ---- names and retention ---- */

/* "<path>_v<revision>_<UTC 2006-01-02-15:04:05>" (upstream's periodic name); malloc'd. */
char *eg_backup_name_periodic(const char *path, int64_t revision, int64_t realtime_ms);
/* The revision of a periodic name made from path; -EINVAL for any other name. */
int eg_backup_name_parse(const char *path, const char *name, int64_t *ret_revision);
/* Of names (any order), those retention deletes: every periodic name of path beyond
 * the newest keep, newest meaning the highest revision as a number (ties: the later
 * name). Names that are not periodic names of path are never chosen. keep 0 keeps all.
 * *ret is a malloc'd array of pointers into names (may be NULL when *ret_n is 0). */
int eg_backup_retention(const char *path, char *const *names, size_t n, int64_t keep, const char ***ret, size_t *ret_n);

/* ---- S3 ---- */

struct eg_s3_credentials {
        char *access_key_id;
        char *secret_access_key;
        char *session_token; /* may be NULL */
        char *region;        /* from the profile's "region" key; may be NULL */
};
void eg_s3_credentials_done(struct eg_s3_credentials *c);
/* Parses the AWS shared credentials format (INI: [profile], key = value, # and ;
 * comments) and returns profile's keys. -ENOENT when the profile is missing or has no
 * key pair. */
int eg_s3_credentials_parse(const char *text, const char *profile, struct eg_s3_credentials *ret);
/* file when given (profile AWS_PROFILE or "default"); otherwise AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) from the environment; otherwise
 * ~/.aws/credentials. The region, when not in the file, is AWS_REGION or
 * AWS_DEFAULT_REGION or us-east-1. Messages never contain the secret. */
int eg_s3_credentials_load(const char *file, struct eg_s3_credentials *ret, struct eg_error *err);

/* "<bucket>/<key>" (also "s3://<bucket>/<key>") into its parts; -EINVAL without both. */
int eg_s3_parse_path(const char *path, char **ret_bucket, char **ret_key);
/* The URL of key in bucket (key percent-encoded except '/'; query appended as given,
 * without '?', or NULL). endpoint NULL or "" means https://s3.<region>.amazonaws.com.
 * Path style: <endpoint>/<bucket>/<key>; virtual-hosted: <scheme>://<bucket>.<host>/<key>. */
char *eg_s3_url(const char *endpoint, const char *region, bool path_style, const char *bucket, const char *key,
                const char *query);

/* ---- taking a snapshot ---- */

/* Where a snapshot goes or comes from. */
struct eg_backup_store {
        enum eg_storage_type type; /* EG_STORAGE_S3 or EG_STORAGE_FILE */
        const char *path;          /* FILE: the file; S3: "<bucket>/<key>" */
        const char *endpoint;      /* S3 only; NULL: AWS */
        bool force_path_style;
        const char *credentials_file; /* S3: NULL means environment, then ~/.aws/credentials */
        const atomic_bool *cancel;    /* S3 requests stop when it is set; may be NULL */
        /* eg_now_monotonic_ms() by which S3 requests end, retries included; each request
         * also fails when it stalls for a quarter of the time left (2 to 60 s) and is tried
         * again. 0: no deadline, a 60 s stall limit */
        int64_t deadline_ms;
};

struct eg_backup_result {
        char sha256[65];  /* of the db (without the trailer) */
        uint64_t size;    /* db bytes; the object is size + EG_SNAPSHOT_TRAILER */
        int64_t revision; /* of the member snapshotted */
        char *version;    /* etcd server version */
        char *endpoint;   /* member snapshotted */
        char *object;     /* file path or "<bucket>/<key>" written */
        int64_t duration_ms;
        char *skipped; /* endpoints that did not answer and why, "; "-separated; may be NULL */
};
void eg_backup_result_done(struct eg_backup_result *r);

typedef void (*eg_backup_progress_fn)(uint64_t bytes, uint64_t expected, void *userdata);

struct eg_backup_options {
        char *const *endpoints;
        size_t n_endpoints;
        const struct eg_etcd_options *etcd; /* TLS, headers; NULL: plain http */
        struct eg_backup_store store;
        bool periodic; /* name the object eg_backup_name_periodic(store.path, ...) */
        /* the whole backup (finding the member, the snapshot and its upload, retries
         * included) fails after this; default 60 s */
        int64_t timeout_ms;
        eg_backup_progress_fn progress; /* may be NULL */
        void *progress_userdata;
        /* set (from any thread) to abandon the transfer: -ECANCELED, nothing left behind */
        const atomic_bool *cancel; /* may be NULL */
};

/* Snapshots the reachable member with the highest revision (endpoints that do not answer
 * are skipped) straight into the store in bounded memory, and declares success only after
 * etcd's trailing sha256 matched; the object becomes visible atomically then (File:
 * ".<name>.partial", fsync, rename; S3: one PUT, or multipart completed only then and
 * aborted on any failure). Returns 0 and fills *ret, or a negative errno with err set
 * (-EHOSTUNREACH when no endpoint answered, -EBADMSG for a corrupt stream). */
int eg_backup_take(const struct eg_backup_options *o, struct eg_backup_result *ret, struct eg_error *err);

/* Lists the periodic backups of store->path and deletes all but the newest keep (by
 * revision as a number; S3: up to 1000 in one DeleteObjects request). *ret_deleted (may be
 * NULL) receives the deleted object names, also when it fails part way. */
int eg_backup_retain(const struct eg_backup_store *store, int64_t keep, char ***ret_deleted, size_t *ret_n,
                     struct eg_error *err);

/* ---- status ----
 * When an EtcdBackup runs is the reconcile layer's (eg_backup_controller in cycle.h). */

/* Every <state_dir>/backups/<ns>/<name>.json as a JSON array (sorted by ns, name) of
 * {"namespace","name","succeeded","reason","etcdVersion","etcdRevision",
 * "lastSuccessDate","sha256","size","durationMs","object","lastAttemptDate", ...}.
 * An empty array when there are none. *ret is a new reference. */
int eg_backup_status_all(const char *state_dir, json_t **ret);
/* One status file as a JSON object: an empty one when it is missing or holds no object;
 * NULL only when out of memory. A new reference. */
json_t *eg_backup_status_load(const char *path);

/* ---- restore ---- */

struct eg_restore_info {
        char *object;     /* file path or "<bucket>/<key>" fetched */
        int64_t revision; /* parsed from a periodic name; 0 when not one */
        char sha256[65];  /* of the db, checked against the trailer */
        uint64_t size;    /* db bytes */
};
void eg_restore_info_done(struct eg_restore_info *i);

/* Finds the snapshot r names (object, else revision, else the newest), links (File, same
 * filesystem), copies or downloads it to <state_dir>/restore/<ns>/<cluster>/snapshot.db
 * and checks its trailing sha256; the snapshot is only ever read there.
 * *ret_snapshot_path is malloc'd. -ENOENT when there is no such backup, -EBADMSG (with
 * the reason in err) for truncated or corrupt data; nothing is left behind on failure. S3 credentials: <state_dir>/secrets/<ns>/<awsSecret>/credentials
 * when awsSecret is set, else as eg_s3_credentials_load(NULL). */
int eg_restore_fetch(const struct eg_restore_spec *r, const char *ns, const char *state_dir, char **ret_snapshot_path,
                     struct eg_restore_info *ret, struct eg_error *err);

/* Where a member fetches object ("<bucket>/<key>", as eg_restore_fetch chose it) itself: its
 * URL and signing region, from r's endpoint and addressing style and the credentials file
 * (its profile's region, or the config file beside it). S3 only: -EOPNOTSUPP otherwise. */
int eg_restore_seed_url(const struct eg_restore_spec *r, const char *object, const char *credentials_file,
                        char **ret_url, char **ret_region, struct eg_error *err);

/* Checks a snapshot file's trailing sha256 (constant memory). -EBADMSG when it does not
 * match or the file is shorter than a trailer. */
int eg_snapshot_verify(const char *path, char ret_sha256[static 65], uint64_t *ret_size, struct eg_error *err);

/* Creates data_dir from snapshot with `etcdctl snapshot restore` (ETCDCTL_API=3, etcdctl
 * from PATH, killed after 5 minutes); data_dir must not exist. etcdctl's stderr is in the
 * error. */
int eg_restore_data_dir(const char *snapshot, const char *member, const char *peer_url, const char *initial_cluster,
                        const char *token, const char *data_dir, struct eg_error *err);
