/* spec: the etcd.database.coreos.com/v1beta2 manifest model, parsing and validation. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

#define EG_API_VERSION "etcd.database.coreos.com/v1beta2"

/* Bounds on hostile input; documented in specs/manifests.md ("Limits"). */
#define EG_SPEC_MAX_FILE_BYTES ((size_t)4 << 20)
#define EG_SPEC_MAX_DEPTH 64
#define EG_SPEC_MAX_DOCUMENTS 1000
#define EG_SPEC_MAX_ALIAS_EXPANSION 10000 /* nodes produced through aliases, per document */
#define EG_SPEC_MAX_FILES 100000
#define EG_SPEC_MAX_NAME 52

/* EtcdCluster annotation: once quorum has been lost this long (a duration, at least 30s),
 * force a new cluster from the most advanced member that still answers. Off by default:
 * writes only the lost members had seen are gone. */
#define EG_ANN_AUTO_RECOVER_AFTER "etcd-gitops/auto-recover-after"
#define EG_AUTO_RECOVER_MIN_MS 30000

enum eg_kind { EG_KIND_CLUSTER, EG_KIND_BACKUP, EG_KIND_RESTORE, _EG_KIND_MAX };

/* "EtcdCluster", "EtcdBackup", "EtcdRestore". */
const char *eg_kind_to_string(enum eg_kind k);
int eg_kind_from_string(const char *s, enum eg_kind *ret);

/* Where a member's process or pod is in its life. Only RUNNING members are asked whether
 * etcd serves; STARTING is judged against a deadline, never as dead; FAILING is never judged
 * dead at all (a fresh member would fail the same way). */
enum eg_member_life {
        EG_LIFE_RUNNING = 0, /* process verified alive / pod Running and not terminating */
        EG_LIFE_STARTING,    /* on its way: pod being scheduled (or unschedulable), pulling, initialising */
        EG_LIFE_FAILING,     /* will not run by itself: image pull error, crash loop */
        EG_LIFE_GONE,        /* process exited / never launched, pod Failed, deleted or on a lost node */
};

/* Where an object came from. path is relative to the source root. blob and commit are
 * the git ids (40 hex) when the source is git, else NULL. */
struct eg_origin {
        char *path;
        unsigned line, column; /* 1-based position of the document's first node */
        char *blob;
        char *commit;
};

struct eg_metadata {
        char *name;
        char *namespace;     /* "default" when absent */
        json_t *labels;      /* object of strings or NULL */
        json_t *annotations; /* object of strings or NULL */
};

/* PodPolicy. The Kubernetes-typed parts are kept as JSON values, passed through. */
struct eg_pod_policy {
        json_t *labels;        /* object string->string, reserved keys refused */
        json_t *node_selector; /* object string->string */
        json_t *affinity;
        bool anti_affinity;
        json_t *resources;
        json_t *tolerations; /* array */
        json_t *etcd_env;    /* array of EnvVar */
        json_t *persistent_volume_claim_spec;
        json_t *annotations; /* object string->string, "etcd.version" refused */
        char *busybox_image; /* default "busybox:1.28.0-glibc" */
        json_t *security_context;
        int64_t dns_timeout_in_second; /* 0 = wait forever */
        char *cluster_domain;          /* e.g. ".cluster.local"; "" by default */
};

struct eg_tls_policy {
        /* static: */
        char *peer_secret;     /* member.peerSecret */
        char *server_secret;   /* member.serverSecret */
        char *operator_secret; /* operatorSecret */
};

struct eg_cluster_spec {
        int64_t size;
        char *version;    /* leading "v" stripped; default "3.2.13" */
        char *repository; /* default "quay.io/coreos/etcd" */
        bool paused;
        struct eg_pod_policy *pod; /* NULL when absent */
        struct eg_tls_policy *tls; /* NULL when absent */
};

enum eg_storage_type { EG_STORAGE_S3, EG_STORAGE_ABS, EG_STORAGE_GCS, EG_STORAGE_OSS, EG_STORAGE_FILE };
const char *eg_storage_type_to_string(enum eg_storage_type t);

struct eg_s3_source {
        char *path; /* "<bucket>/<key>" */
        char *aws_secret;
        char *endpoint;
        bool force_path_style;
};

struct eg_file_source {
        char *path; /* extension: a local directory (backup) or file (restore) */
};

struct eg_backup_spec {
        char **etcd_endpoints; /* NULL-terminated, may be empty */
        size_t n_etcd_endpoints;
        char *etcd_cluster_name; /* extension: etcdCluster.name instead of endpoints */
        enum eg_storage_type storage_type;
        int64_t timeout_in_second;         /* default 60 */
        int64_t backup_interval_in_second; /* 0 = one shot */
        int64_t max_backups;               /* 0 = unlimited */
        char *schedule;                    /* extension: 5-field cron */
        struct eg_s3_source s3;            /* valid when storage_type == S3 (or OSS/GCS/ABS unused) */
        struct eg_file_source file;        /* valid when storage_type == FILE */
        char *client_tls_secret;
};

struct eg_restore_spec {
        char *etcd_cluster_name;
        enum eg_storage_type backup_storage_type;
        struct eg_s3_source s3;
        struct eg_file_source file;
        int64_t revision; /* extension: choose the backup with this revision; 0 = newest */
        char *object;     /* extension: exact object name/path; NULL = newest */
        bool overwrite;   /* extension: allow replacing a running cluster */
};

struct eg_object {
        enum eg_kind kind;
        struct eg_origin origin;
        struct eg_metadata meta;
        union {
                struct eg_cluster_spec cluster;
                struct eg_backup_spec backup;
                struct eg_restore_spec restore;
        };
        json_t *document; /* the document as parsed, for diff output (owned) */
};

enum eg_severity { EG_SEVERITY_ERROR, EG_SEVERITY_WARNING };

/* One finding. kind/namespace/name are set when the document got far enough to name
 * its object, so the caller knows which object to leave alone. */
struct eg_diag {
        enum eg_severity severity;
        char *path; /* file, relative to the source root */
        unsigned line, column;
        char *field; /* e.g. "spec.size"; NULL when not about a field */
        char *message;
        bool has_object;
        enum eg_kind kind;
        char *namespace;
        char *name;
};

/* Renders "path:line:col: field: message" (or "path:line:col: message" without a field)
 * into a new string. File-level findings (unreadable, too large) are placed at 1:1. */
char *eg_diag_format(const struct eg_diag *d);
/* The finding as the one error type, for a caller that returns a single error: its file (unset
 * when the path is empty), line and column, and "field: message" (or the message alone). */
void eg_diag_to_error(const struct eg_diag *d, struct eg_error *err);

struct eg_desired_set {
        struct eg_object **objects; /* valid objects only, in stable (path, position) order */
        size_t n_objects;
        struct eg_diag *diags; /* errors and warnings, in the same order */
        size_t n_diags;
        size_t n_errors;
        size_t n_files;
        char *revision;                 /* content hash "sha256:<hex>" for a directory, or set by the source */
        size_t n_invalid;               /* documents (or whole files) rejected: each has at least one error */
        struct eg_sha256 *content_hash; /* internal: fed with every parsed file, in order */
};

struct eg_spec_options {
        bool strict;         /* unknown fields are errors instead of warnings */
        bool paths_as_given; /* eg_spec_load_paths: report "ARG/rel/path", not "rel/path" (the CLI) */
};

int eg_desired_set_new(struct eg_desired_set **ret);
void eg_desired_set_free(struct eg_desired_set *s);

/* Parses one file's bytes (multi-document YAML or JSON) and appends its objects and
 * diagnostics to set. origin->path names the file in diagnostics; origin's blob/commit
 * are copied onto every object. Returns 0 even when the content is invalid (that is
 * reported in set->diags); negative errno only on allocation failure. Duplicate
 * detection across files happens in eg_desired_set_finish(). */
int eg_spec_parse_buffer(struct eg_desired_set *set, const struct eg_origin *origin, const char *data, size_t len,
                         const struct eg_spec_options *opt);

/* Walks files and directories (recursively, sorted, hidden entries and what the
 * .sourceignore files of a directory argument name skipped, symlinks leaving the root
 * refused, .yaml/.yml/.json only), parses everything, then calls
 * eg_desired_set_finish(). Paths in diagnostics are relative to each argument's root
 * (a file argument is reported as given). Returns -errno for an unreadable argument or
 * an unreadable file below it (the set is still returned with what was read, and the
 * failure is also one of its diagnostics). */
int eg_spec_load_paths(char *const *paths, size_t n_paths, const struct eg_spec_options *opt,
                       struct eg_desired_set **ret);

/* Cross-file checks (duplicate kind/namespace/name naming both places), stable sort,
 * and the content-hash revision when none is set. Idempotent. */
int eg_desired_set_finish(struct eg_desired_set *set);

/* Adds an error about a whole file (placed at 1:1), for a source that could not read it or
 * would not follow it (a symlink, a submodule); the file counts as one invalid object, so a
 * source with it is not clean. -ENOMEM only. */
int eg_desired_set_add_file_error(struct eg_desired_set *s, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* NULL when absent. */
const struct eg_object *eg_desired_set_find(const struct eg_desired_set *s, enum eg_kind kind, const char *namespace,
                                            const char *name);

/* True when an error was reported for this object (its manifest is present but
 * invalid): the reconciler must leave that object's cluster as it is. */
bool eg_desired_set_object_has_errors(const struct eg_desired_set *s, enum eg_kind kind, const char *namespace,
                                      const char *name);

/* Parses "3.4.23" / "v3.4.23" (pre-release/build suffixes allowed). */
struct eg_semver {
        int64_t major, minor, patch;
};
int eg_semver_parse(const char *s, struct eg_semver *ret);
int eg_semver_compare(const struct eg_semver *a, const struct eg_semver *b);
