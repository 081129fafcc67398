/* backup internals: the S3 client and the File/S3 object store the backup and restore code share. */
#pragma once

#include <stdbool.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/util.h"

typedef int (*bk_sink)(const void *data, size_t len, void *userdata);

/* ---- S3 requests (s3.c), signed by libcurl's SigV4 ---- */

/* DeleteObjects takes at most this many keys */
#define S3_DELETE_MAX 1000

struct eg_buf;
/* Appends s percent-encoded as SigV4 wants it (RFC 3986 unreserved kept; '/' too with keep_slash). */
int s3_append_escaped(struct eg_buf *b, const char *s, bool keep_slash);

struct s3;
/* A client for store's endpoint and credentials (credentials_file, else the environment),
 * whose requests end by store's deadline. Each request is tried again (jittered back-off,
 * bounded) when it fails as a moment's trouble does: 5xx, SlowDown, a reset, a stall. */
int s3_new(const struct eg_backup_store *store, struct s3 **ret, struct eg_error *err);
void s3_free(struct s3 *s);
/* Moves the deadline (monotonic ms; 0: none), and the stall limit derived from it. */
void s3_set_deadline(struct s3 *s, int64_t deadline_ms);
int s3_put(struct s3 *s, const char *bucket, const char *key, const void *data, size_t len, struct eg_error *err);
int s3_multipart_create(struct s3 *s, const char *bucket, const char *key, char **ret_upload_id, struct eg_error *err);
int s3_multipart_part(struct s3 *s, const char *bucket, const char *key, const char *upload_id, unsigned part,
                      const void *data, size_t len, char **ret_etag, struct eg_error *err);
int s3_multipart_complete(struct s3 *s, const char *bucket, const char *key, const char *upload_id, char *const *etags,
                          size_t n, struct eg_error *err);
int s3_multipart_abort(struct s3 *s, const char *bucket, const char *key, const char *upload_id, struct eg_error *err);
/* Keys starting with prefix (every page of ListObjectsV2). */
int s3_list(struct s3 *s, const char *bucket, const char *prefix, char ***ret, size_t *ret_n, struct eg_error *err);
/* Deletes up to S3_DELETE_MAX keys in one request; ret_deleted[i] says whether keys[i] went
 * (-EIO with the first key's error in err when some did not). */
int s3_delete_objects(struct s3 *s, const char *bucket, const char *const *keys, size_t n, bool *ret_deleted,
                      struct eg_error *err);
/* Streams the object to sink; -ENOENT when it does not exist. */
int s3_get(struct s3 *s, const char *bucket, const char *key, bk_sink sink, void *userdata, struct eg_error *err);

/* ---- objects named by a path (file) or "<bucket>/<key>" (store.c) ---- */

struct store_writer;
/* Starts writing object; nothing is visible under its name until store_writer_commit. */
int store_writer_open(const struct eg_backup_store *store, const char *object, struct store_writer **ret,
                      struct eg_error *err);
int store_writer_write(struct store_writer *w, const void *data, size_t len, struct eg_error *err);
int store_writer_commit(struct store_writer *w, struct eg_error *err);
/* Aborts (when not committed) and frees; accepts NULL. */
void store_writer_free(struct store_writer *w);

/* Objects whose name starts with base (File: files in base's directory). */
int store_list(const struct eg_backup_store *store, const char *base, char ***ret, size_t *ret_n, struct eg_error *err);
/* Deletes objects (S3: S3_DELETE_MAX a request); ret_deleted[i] says whether objects[i] is
 * gone, also when it fails part way. */
int store_delete(const struct eg_backup_store *store, const char *const *objects, size_t n, bool *ret_deleted,
                 struct eg_error *err);
int store_get(const struct eg_backup_store *store, const char *object, bk_sink sink, void *userdata,
              struct eg_error *err);

static inline void bk_strv_free(char **v, size_t n) { eg_strv_free(v, n); }
