/* Backup stores: objects named by a file path or "<bucket>/<key>", written so that they
 * appear whole or not at all. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* S3 allows 10000 parts: with 8 MiB parts that is 78 GiB, far past etcd's 8 GiB quota cap. */
#define S3_MAX_PARTS 10000
/* aborting a failed upload: its own time, as the backup's deadline may be what failed it */
#define S3_ABORT_MS 10000

struct store_writer {
        enum eg_storage_type type;
        bool committed;
        /* File */
        int fd;
        char *tmp, *final;
        /* S3: a part-sized buffer; a multipart upload starts only when it overflows */
        struct s3 *s3;
        char *bucket, *key;
        unsigned char *buf;
        size_t len;
        char *upload_id;
        char **etags;
        size_t n_parts;
};

static int split_dir(const char *path, char **ret_dir, char **ret_base) {
        _cleanup_free_ char *a = strdup(path), *b = strdup(path);
        if (!a || !b)
                return -ENOMEM;
        char *d = strdup(dirname(a)), *n = strdup(basename(b));
        if (!d || !n) {
                free(d);
                free(n);
                return -ENOMEM;
        }
        *ret_dir = d;
        *ret_base = n;
        return 0;
}

static int fsync_dir(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int store_writer_open(const struct eg_backup_store *store, const char *object, struct store_writer **ret,
                      struct eg_error *err) {
        struct store_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->type = store->type;
        w->fd = -1;
        int r;
        if (store->type == EG_STORAGE_FILE) {
                _cleanup_free_ char *dir = NULL, *base = NULL;
                r = split_dir(object, &dir, &base);
                if (r < 0)
                        goto fail;
                r = eg_mkdir_p(dir, 0700);
                if (r < 0) {
                        eg_error_set(err, "cannot create directory '%s': %s", dir, strerror(-r));
                        goto fail;
                }
                w->tmp = eg_strdup_printf("%s/.%s.partial", dir, base);
                w->final = strdup(object);
                if (!w->tmp || !w->final) {
                        r = -ENOMEM;
                        goto fail;
                }
                w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (w->fd < 0) {
                        r = -errno;
                        eg_error_set(err, "cannot create '%s': %s", w->tmp, strerror(-r));
                        goto fail;
                }
        } else if (store->type == EG_STORAGE_S3) {
                r = eg_s3_parse_path(object, &w->bucket, &w->key);
                if (r < 0) {
                        eg_error_set(err, "s3 path '%s' is not <bucket>/<key>", object);
                        goto fail;
                }
                r = s3_new(store, &w->s3, err);
                if (r < 0)
                        goto fail;
                w->buf = malloc(EG_S3_PART_SIZE);
                if (!w->buf) {
                        r = -ENOMEM;
                        goto fail;
                }
        } else {
                eg_error_set(err, "storage type %s is not supported: use S3 or File",
                             eg_storage_type_to_string(store->type));
                r = -EOPNOTSUPP;
                goto fail;
        }
        *ret = w;
        return 0;
fail:
        store_writer_free(w);
        return r;
}

static int flush_part(struct store_writer *w, struct eg_error *err) {
        int r;
        if (!w->upload_id && (r = s3_multipart_create(w->s3, w->bucket, w->key, &w->upload_id, err)) < 0)
                return r;
        if (w->n_parts == S3_MAX_PARTS) {
                eg_error_set(err, "snapshot needs more than %d parts of %zu bytes", S3_MAX_PARTS, EG_S3_PART_SIZE);
                return -EFBIG;
        }
        char **e = realloc(w->etags, (w->n_parts + 1) * sizeof(*e));
        if (!e)
                return -ENOMEM;
        w->etags = e;
        r = s3_multipart_part(w->s3, w->bucket, w->key, w->upload_id, (unsigned)w->n_parts + 1, w->buf, w->len,
                              &w->etags[w->n_parts], err);
        if (r < 0)
                return r;
        w->n_parts++;
        w->len = 0;
        return 0;
}

int store_writer_write(struct store_writer *w, const void *data, size_t len, struct eg_error *err) {
        const char *p = data;
        if (w->type == EG_STORAGE_FILE) {
                int r = eg_write_all(w->fd, data, len);
                if (r < 0)
                        eg_error_set(err, "cannot write '%s': %s", w->tmp, strerror(-r));
                return r;
        }
        while (len > 0) {
                /* a full buffer is sent only once more data follows: the last part may be short */
                if (w->len == EG_S3_PART_SIZE) {
                        int r = flush_part(w, err);
                        if (r < 0)
                                return r;
                }
                size_t n = EG_S3_PART_SIZE - w->len < len ? EG_S3_PART_SIZE - w->len : len;
                memcpy(w->buf + w->len, p, n);
                w->len += n;
                p += n;
                len -= n;
        }
        return 0;
}

int store_writer_commit(struct store_writer *w, struct eg_error *err) {
        int r;
        if (w->type == EG_STORAGE_FILE) {
                if (fsync(w->fd) < 0 || close(w->fd) < 0) {
                        r = -errno;
                        w->fd = -1;
                        eg_error_set(err, "cannot write '%s': %s", w->tmp, strerror(-r));
                        return r;
                }
                w->fd = -1;
                if (rename(w->tmp, w->final) < 0) {
                        r = -errno;
                        eg_error_set(err, "cannot rename '%s' to '%s': %s", w->tmp, w->final, strerror(-r));
                        return r;
                }
                w->committed = true;
                _cleanup_free_ char *dir = NULL, *base = NULL;
                if (split_dir(w->final, &dir, &base) == 0)
                        fsync_dir(dir);
                return 0;
        }
        if (!w->upload_id) {
                r = s3_put(w->s3, w->bucket, w->key, w->buf, w->len, err);
        } else {
                r = flush_part(w, err);
                if (r >= 0)
                        r = s3_multipart_complete(w->s3, w->bucket, w->key, w->upload_id, w->etags, w->n_parts, err);
        }
        if (r >= 0)
                w->committed = true;
        return r;
}

void store_writer_free(struct store_writer *w) {
        if (!w)
                return;
        if (w->fd >= 0)
                close(w->fd);
        if (w->tmp && !w->committed)
                unlink(w->tmp);
        if (w->upload_id && !w->committed) {
                /* best effort: a server that is gone keeps the parts, never an object */
                struct eg_error e = {0};
                s3_set_deadline(w->s3, eg_now_monotonic_ms() + S3_ABORT_MS);
                s3_multipart_abort(w->s3, w->bucket, w->key, w->upload_id, &e);
                eg_error_done(&e);
        }
        free(w->tmp);
        free(w->final);
        s3_free(w->s3);
        free(w->bucket);
        free(w->key);
        free(w->buf);
        free(w->upload_id);
        eg_strv_free(w->etags, w->n_parts);
        free(w);
}

/* "<bucket>/<key>" of every object whose key starts with base's key. */
static int s3_store_list(const struct eg_backup_store *store, const char *base, char ***ret, size_t *ret_n,
                         struct eg_error *err) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        if (eg_s3_parse_path(base, &bucket, &key) < 0) {
                eg_error_set(err, "s3 path '%s' is not <bucket>/<key>", base);
                return -EINVAL;
        }
        struct s3 *s;
        int r = s3_new(store, &s, err);
        if (r < 0)
                return r;
        char **keys = NULL;
        size_t n = 0;
        r = s3_list(s, bucket, key, &keys, &n, err);
        s3_free(s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char *full = eg_strdup_printf("%s/%s", bucket, keys[i]);
                if (!full) {
                        eg_strv_free(keys, n);
                        return -ENOMEM;
                }
                free(keys[i]);
                keys[i] = full;
        }
        *ret = keys;
        *ret_n = n;
        return 0;
}

int store_list(const struct eg_backup_store *store, const char *base, char ***ret, size_t *ret_n,
               struct eg_error *err) {
        int r;
        if (store->type == EG_STORAGE_S3)
                return s3_store_list(store, base, ret, ret_n, err);
        _cleanup_free_ char *dir = NULL, *name = NULL;
        /* "DIR/" lists everything in DIR */
        if (eg_str_has_suffix(base, "/")) {
                dir = strndup(base, strlen(base) - 1);
                name = strdup("");
                r = dir && name ? 0 : -ENOMEM;
        } else
                r = split_dir(base, &dir, &name);
        if (r < 0)
                return r;
        DIR *d = opendir(dir);
        if (!d) {
                r = -errno;
                if (r == -ENOENT) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                eg_error_set(err, "cannot list '%s': %s", dir, strerror(-r));
                return r;
        }
        char **v = NULL;
        size_t n = 0;
        struct dirent *de;
        r = 0;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || strncmp(de->d_name, name, strlen(name)) != 0)
                        continue;
                char **nv = realloc(v, (n + 1) * sizeof(*v));
                char *full = eg_path_join(dir, de->d_name);
                if (!nv || !full) {
                        free(full);
                        if (nv)
                                v = nv;
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n++] = full;
        }
        closedir(d);
        if (r < 0) {
                eg_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* object's key when it is in bucket, else NULL */
static const char *key_in(const char *object, const char *bucket) {
        if (eg_str_has_prefix(object, "s3://"))
                object += 5;
        size_t n = strlen(bucket);
        return strncmp(object, bucket, n) == 0 && object[n] == '/' && object[n + 1] ? object + n + 1 : NULL;
}

int store_delete(const struct eg_backup_store *store, const char *const *objects, size_t n, bool *ret_deleted,
                 struct eg_error *err) {
        for (size_t i = 0; i < n; i++)
                ret_deleted[i] = false;
        if (store->type == EG_STORAGE_FILE) {
                for (size_t i = 0; i < n; i++) {
                        if (unlink(objects[i]) < 0 && errno != ENOENT) {
                                int r = -errno;
                                eg_error_set(err, "cannot delete '%s': %s", objects[i], strerror(-r));
                                return r;
                        }
                        ret_deleted[i] = true;
                }
                return 0;
        }
        const char **keys = calloc(n ? n : 1, sizeof(*keys));
        char *bucket = NULL;
        struct s3 *s = NULL;
        int r = keys ? s3_new(store, &s, err) : -ENOMEM;
        /* batches of the objects in one bucket: retention's are all in one */
        for (size_t i = 0, k = 0; r >= 0 && i < n; i = k) {
                char *b, *key;
                if ((r = eg_s3_parse_path(objects[i], &b, &key)) < 0) {
                        eg_error_set(err, "s3 path '%s' is not <bucket>/<key>", objects[i]);
                        break;
                }
                free(key);
                free(bucket);
                bucket = b;
                for (k = i; k < n && k - i < S3_DELETE_MAX && (keys[k - i] = key_in(objects[k], bucket)); k++)
                        ;
                r = s3_delete_objects(s, bucket, keys, k - i, ret_deleted + i, err);
        }
        s3_free(s);
        free(bucket);
        free(keys);
        return r;
}

int store_get(const struct eg_backup_store *store, const char *object, bk_sink sink, void *userdata,
              struct eg_error *err) {
        int r;
        if (store->type == EG_STORAGE_FILE) {
                int fd = open(object, O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        eg_error_set(err, "cannot open '%s': %s", object, strerror(-r));
                        return r;
                }
                size_t sz = 1 << 20;
                _cleanup_free_ char *buf = malloc(sz);
                r = buf ? 0 : -ENOMEM;
                while (r >= 0) {
                        ssize_t n = read(fd, buf, sz);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                r = -errno;
                                eg_error_set(err, "cannot read '%s': %s", object, strerror(-r));
                        }
                        if (n <= 0)
                                break;
                        r = sink(buf, (size_t)n, userdata);
                }
                close(fd);
                return r < 0 ? r : 0;
        }
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        if (eg_s3_parse_path(object, &bucket, &key) < 0)
                return -EINVAL;
        struct s3 *s;
        r = s3_new(store, &s, err);
        if (r < 0)
                return r;
        r = s3_get(s, bucket, key, sink, userdata, err);
        s3_free(s);
        return r;
}
