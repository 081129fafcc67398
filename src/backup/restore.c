/* Restore: fetch and verify a stored snapshot, build a member's data dir from it with etcdctl. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ETCDCTL_TIMEOUT_MS (5 * 60 * 1000)
/* Listing, download and check of the snapshot to restore, S3 retries included: the pass
 * that restores waits for them, and a server trickling a byte a second must not hold it. */
#define FETCH_TIMEOUT_MS (10 * 60 * 1000)
#define ETCDCTL_OUTPUT_MAX 4096

extern char **environ;

void eg_restore_info_done(struct eg_restore_info *i) {
        free(i->object);
        *i = (struct eg_restore_info){0};
}

int eg_snapshot_verify(const char *path, char ret_sha256[static 65], uint64_t *ret_size, struct eg_error *err) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                eg_error_set(err, "cannot open '%s': %s", path, strerror(-r));
                return r;
        }
        struct stat sb;
        int r = fstat(fd, &sb) < 0 ? -errno : 0;
        struct eg_sha256 *h = NULL;
        _cleanup_free_ unsigned char *buf = malloc(1 << 20);
        if (r >= 0 && !buf)
                r = -ENOMEM;
        if (r >= 0 && sb.st_size < EG_SNAPSHOT_TRAILER) {
                eg_error_set(err, "snapshot '%s' is truncated: %lld bytes, shorter than its sha256 trailer", path,
                             (long long)sb.st_size);
                r = -EBADMSG;
        }
        if (r >= 0)
                r = eg_sha256_new(&h);
        uint64_t db = r >= 0 ? (uint64_t)sb.st_size - EG_SNAPSHOT_TRAILER : 0, left = db;
        while (r >= 0 && left > 0) {
                ssize_t n = read(fd, buf, left < (1 << 20) ? (size_t)left : (1 << 20));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EBADMSG;
                        eg_error_set(err, "cannot read '%s': %s", path, n < 0 ? strerror(errno) : "file shrank");
                        break;
                }
                eg_sha256_update(h, buf, (size_t)n);
                left -= (size_t)n;
        }
        unsigned char trailer[EG_SNAPSHOT_TRAILER], digest[32];
        if (r >= 0 && pread(fd, trailer, sizeof(trailer), (off_t)db) != (ssize_t)sizeof(trailer)) {
                eg_error_set(err, "cannot read the trailer of '%s'", path);
                r = -EIO;
        }
        if (r >= 0) {
                eg_sha256_final_raw(h, digest);
                h = NULL;
                if (memcmp(digest, trailer, sizeof(digest)) != 0) {
                        eg_error_set(err,
                                     "snapshot '%s' is corrupt or truncated: its sha256 does not match the trailer",
                                     path);
                        r = -EBADMSG;
                }
        }
        eg_sha256_free(h);
        close(fd);
        if (r < 0)
                return r;
        for (int i = 0; i < 32; i++)
                snprintf(ret_sha256 + 2 * i, 3, "%02x", digest[i]);
        if (ret_size)
                *ret_size = db;
        return 0;
}

/* The revision of any periodic name ("..._v<rev>_<date>"); -EINVAL when it is not one. */
static int any_revision(const char *name, int64_t *ret) {
        for (const char *p = strstr(name, "_v"); p; p = strstr(p + 1, "_v")) {
                _cleanup_free_ char *prefix = strndup(name, (size_t)(p - name));
                if (prefix && eg_backup_name_parse(prefix, name, ret) == 0)
                        return 0;
        }
        return -EINVAL;
}

static int choose(const struct eg_backup_store *store, const struct eg_restore_spec *r, bool dir, char **ret,
                  int64_t *ret_rev, struct eg_error *err) {
        char **names = NULL;
        size_t n = 0;
        /* File: every file in the directory; S3: the keys under path */
        _cleanup_free_ char *base = dir ? eg_strdup_printf("%s/", store->path) : strdup(store->path);
        if (!base)
                return -ENOMEM;
        int q = store_list(store, base, &names, &n, err);
        if (q < 0)
                return q;
        const char *best = NULL;
        int64_t best_rev = 0;
        for (size_t i = 0; i < n; i++) {
                int64_t rev;
                if (any_revision(names[i], &rev) < 0)
                        continue;
                if (r->revision > 0 && rev != r->revision)
                        continue;
                if (!best || rev > best_rev || (rev == best_rev && strcmp(names[i], best) > 0)) {
                        best = names[i];
                        best_rev = rev;
                }
        }
        if (!best && r->revision == 0 && !dir)
                for (size_t i = 0; i < n; i++)
                        if (strcmp(names[i], store->path) == 0)
                                best = names[i];
        int ret_r = 0;
        if (!best) {
                if (r->revision > 0)
                        eg_error_set(err, "no backup at revision %lld under '%s'", (long long)r->revision, store->path);
                else
                        eg_error_set(err, "no backup found under '%s'", store->path);
                ret_r = -ENOENT;
        } else if (!(*ret = strdup(best)))
                ret_r = -ENOMEM;
        else
                *ret_rev = best_rev;
        eg_strv_free(names, n);
        return ret_r;
}

static int to_fd(const void *data, size_t len, void *userdata) { return eg_write_all(*(int *)userdata, data, len); }

/* A File restore's object: the named one, the file itself, or the newest backup in the folder. */
static int file_object(const struct eg_restore_spec *r, struct eg_backup_store *store, char **ret_object,
                       int64_t *ret_rev, struct eg_error *err) {
        struct stat sb;
        store->path = r->file.path;
        if (!store->path || stat(store->path, &sb) < 0) {
                int q = store->path ? -errno : -EINVAL;
                eg_error_set(err, "cannot use backup file '%s': %s", store->path ? store->path : "", strerror(-q));
                return q;
        }
        bool is_dir = S_ISDIR(sb.st_mode);
        if (r->object)
                *ret_object = r->object[0] == '/' || !is_dir ? strdup(r->object) : eg_path_join(store->path, r->object);
        else if (!is_dir)
                *ret_object = strdup(store->path);
        else
                return choose(store, r, true, ret_object, ret_rev, err);
        return *ret_object ? 0 : -ENOMEM;
}

/* An S3 restore's object: the named one, or the newest backup under the path. */
static int s3_object(const struct eg_restore_spec *r, const char *ns, const char *state_dir,
                     struct eg_backup_store *store, char **ret_creds, char **ret_object, int64_t *ret_rev,
                     struct eg_error *err) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        store->path = r->s3.path;
        store->endpoint = r->s3.endpoint;
        store->force_path_style = r->s3.force_path_style;
        if (r->s3.aws_secret) {
                *ret_creds = eg_state_path(state_dir, EG_STATE_AWS_CREDENTIALS, ns, r->s3.aws_secret);
                if (!*ret_creds)
                        return -ENOMEM;
                store->credentials_file = *ret_creds;
        }
        if (!store->path || eg_s3_parse_path(store->path, &bucket, &key) < 0) {
                eg_error_set(err, "s3 path '%s' is not <bucket>/<key>", store->path ? store->path : "");
                return -EINVAL;
        }
        if (!r->object)
                return choose(store, r, false, ret_object, ret_rev, err);
        *ret_object = eg_strdup_printf("%s/%s", bucket, r->object);
        return *ret_object ? 0 : -ENOMEM;
}

/* Brings object to tmp, which must not exist (a link a crash left is removed first). */
static int download(const struct eg_backup_store *store, const char *object, const char *tmp, struct eg_error *err) {
        int q;
        /* what a crash left here may be a link to a backup: never write through it */
        if (unlink(tmp) < 0 && errno != ENOENT) {
                q = -errno;
                eg_error_set(err, "cannot remove '%s': %s", tmp, strerror(-q));
                return q;
        }
        /* a File backup on the same filesystem is linked, not copied: nothing writes to the
         * snapshot, and the link keeps it whole even if retention deletes the backup */
        if (store->type == EG_STORAGE_FILE && link(object, tmp) == 0)
                return 0;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                q = -errno;
                eg_error_set(err, "cannot create '%s': %s", tmp, strerror(-q));
                return q;
        }
        q = store_get(store, object, to_fd, &fd, err);
        if (q == -ENOENT && !err->message)
                eg_error_set(err, "backup '%s' does not exist", object);
        if (q >= 0 && fsync(fd) < 0)
                q = -errno;
        close(fd);
        return q;
}

/* The object eg_restore_fetch names, brought to final and checked, by store's deadline. */
static int fetch(const struct eg_restore_spec *r, const char *ns, const char *state_dir, struct eg_backup_store *store,
                 char **ret_final, struct eg_restore_info *ret, struct eg_error *err) {
        _cleanup_free_ char *creds = NULL, *object = NULL, *dir = NULL, *tmp = NULL, *final = NULL;
        struct eg_restore_info info = {0};
        int64_t rev = 0;
        int q;
        if (r->backup_storage_type == EG_STORAGE_FILE)
                q = file_object(r, store, &object, &rev, err);
        else if (r->backup_storage_type == EG_STORAGE_S3)
                q = s3_object(r, ns, state_dir, store, &creds, &object, &rev, err);
        else {
                eg_error_set(err, "backup storage type %s is not supported: use S3 or File",
                             eg_storage_type_to_string(r->backup_storage_type));
                q = -EOPNOTSUPP;
        }
        if (q < 0)
                return q;
        if (rev == 0)
                any_revision(object, &rev);
        dir = eg_state_path(state_dir, EG_STATE_RESTORE_WORK, ns, r->etcd_cluster_name);
        tmp = dir ? eg_path_join(dir, ".snapshot.db.partial") : NULL;
        final = dir ? eg_path_join(dir, "snapshot.db") : NULL;
        if (!tmp || !final)
                return -ENOMEM;
        q = eg_mkdir_p(dir, 0700);
        if (q < 0) {
                eg_error_set(err, "cannot create '%s': %s", dir, strerror(-q));
                return q;
        }
        q = download(store, object, tmp, err);
        if (q >= 0)
                q = eg_snapshot_verify(tmp, info.sha256, &info.size, err);
        if (q >= 0 && rename(tmp, final) < 0) {
                q = -errno;
                eg_error_set(err, "cannot rename '%s': %s", tmp, strerror(-q));
        }
        if (q < 0) {
                unlink(tmp);
                return q;
        }
        info.object = TAKE_PTR(object);
        info.revision = rev;
        *ret_final = TAKE_PTR(final);
        *ret = info;
        return 0;
}

int eg_restore_fetch(const struct eg_restore_spec *r, const char *ns, const char *state_dir, char **ret_snapshot_path,
                     struct eg_restore_info *ret, struct eg_error *err) {
        int64_t deadline = eg_now_monotonic_ms() + FETCH_TIMEOUT_MS;
        struct eg_backup_store store = {.type = r->backup_storage_type, .deadline_ms = deadline};
        int q = fetch(r, ns, state_dir, &store, ret_snapshot_path, ret, err);
        /* whatever ran out of time says how; this says why it had no more */
        if (q < 0 && eg_now_monotonic_ms() >= deadline)
                eg_error_set(err, "the snapshot to restore did not arrive within %d s: %s", FETCH_TIMEOUT_MS / 1000,
                             err->message ? err->message : strerror(-q));
        return q;
}

int eg_restore_seed_url(const struct eg_restore_spec *r, const char *object, const char *credentials_file,
                        char **ret_url, char **ret_region, struct eg_error *err) {
        _cleanup_free_ char *bucket = NULL, *key = NULL;
        struct eg_s3_credentials cred = {0};
        if (r->backup_storage_type != EG_STORAGE_S3) {
                eg_error_set(err, "backup storage type %s cannot be fetched by a member: restore from S3",
                             eg_storage_type_to_string(r->backup_storage_type));
                return -EOPNOTSUPP;
        }
        if (!object || eg_s3_parse_path(object, &bucket, &key) < 0) {
                eg_error_set(err, "s3 object '%s' is not <bucket>/<key>", object ? object : "");
                return -EINVAL;
        }
        int q = eg_s3_credentials_load(credentials_file, &cred, err);
        if (q < 0)
                return q;
        char *url = eg_s3_url(r->s3.endpoint, cred.region, r->s3.force_path_style, bucket, key, NULL);
        char *region = strdup(cred.region ? cred.region : "us-east-1");
        eg_s3_credentials_done(&cred);
        if (!url || !region) {
                free(url);
                free(region);
                return -ENOMEM;
        }
        *ret_url = url;
        *ret_region = region;
        return 0;
}

static char **env_with(const char *var) {
        size_t n = 0;
        while (environ[n])
                n++;
        char **v = calloc(n + 2, sizeof(*v));
        if (!v)
                return NULL;
        size_t k = 0, name_len = strcspn(var, "=") + 1;
        for (size_t i = 0; i < n; i++)
                if (strncmp(environ[i], var, name_len) != 0)
                        v[k++] = environ[i];
        v[k] = (char *)var;
        return v;
}

/* Waits for pid to end, killing it at deadline (monotonic ms): -ETIMEDOUT then. */
static int wait_child(pid_t pid, int64_t deadline, int *ret_status) {
        for (;;) {
                pid_t w = waitpid(pid, ret_status, WNOHANG);
                if (w == pid)
                        return 0;
                if (w < 0 && errno != EINTR)
                        return -errno;
                if (eg_now_monotonic_ms() >= deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, ret_status, 0);
                        return -ETIMEDOUT;
                }
                struct timespec ts = {0, 20 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
}

int eg_restore_data_dir(const char *snapshot, const char *member, const char *peer_url, const char *initial_cluster,
                        const char *token, const char *data_dir, struct eg_error *err) {
        struct stat sb;
        if (stat(data_dir, &sb) == 0) {
                eg_error_set(err, "data dir '%s' already exists", data_dir);
                return -EEXIST;
        }
        _cleanup_free_ char *a_name = eg_strdup_printf("--name=%s", member);
        _cleanup_free_ char *a_cluster = eg_strdup_printf("--initial-cluster=%s", initial_cluster);
        _cleanup_free_ char *a_token = eg_strdup_printf("--initial-cluster-token=%s", token);
        _cleanup_free_ char *a_peer = eg_strdup_printf("--initial-advertise-peer-urls=%s", peer_url);
        _cleanup_free_ char *a_dir = eg_strdup_printf("--data-dir=%s", data_dir);
        _cleanup_free_ char **envp = env_with("ETCDCTL_API=3");
        if (!a_name || !a_cluster || !a_token || !a_peer || !a_dir || !envp)
                return -ENOMEM;
        char *argv[] = {"etcdctl", "snapshot", "restore", (char *)snapshot, a_name, a_cluster, a_token,
                        a_peer,    a_dir,      NULL};
        int out = memfd_create("etcdctl-output", MFD_CLOEXEC);
        if (out < 0)
                return -errno;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, out, 1);
        posix_spawn_file_actions_adddup2(&fa, out, 2);
        pid_t pid;
        int r = -posix_spawnp(&pid, "etcdctl", &fa, NULL, argv, envp);
        posix_spawn_file_actions_destroy(&fa);
        if (r < 0) {
                eg_error_set(err, "cannot run etcdctl: %s", strerror(-r));
                close(out);
                return r;
        }
        int status = 0;
        r = wait_child(pid, eg_now_monotonic_ms() + ETCDCTL_TIMEOUT_MS, &status);
        if (r >= 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                r = -EIO;
        if (r < 0) {
                _cleanup_free_ char *msg = malloc(ETCDCTL_OUTPUT_MAX + 1);
                ssize_t n = msg ? pread(out, msg, ETCDCTL_OUTPUT_MAX, 0) : 0;
                if (msg)
                        msg[n > 0 ? n : 0] = 0;
                size_t l = msg ? strlen(msg) : 0;
                while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
                        msg[--l] = 0;
                if (r == -ETIMEDOUT)
                        eg_error_set(err, "etcdctl snapshot restore did not finish within %d s",
                                     ETCDCTL_TIMEOUT_MS / 1000);
                else
                        eg_error_set(err, "etcdctl snapshot restore failed: %s", l ? msg : "no output");
                eg_rm_rf(data_dir);
        }
        close(out);
        return r;
}
