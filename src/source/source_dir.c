/* The directory source: reads manifests from a folder, watches it with inotify, and
 * notes the git commit when the folder lives in a work tree. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/ignore.h"
#include "etcd-gitops/source.h"

#define WATCH_MASK                                                                                              \
        (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | \
         IN_ATTRIB)
#define MAX_WATCHES 4096

struct watch {
        int wd;
        char *path;
};

struct dir_source {
        struct eg_source base;
        char *root; /* absolute */
        struct eg_spec_options spec;
        int inotify_fd;
        struct watch *watches;
        size_t n_watches;
};

static void watches_clear(struct dir_source *s) {
        for (size_t i = 0; i < s->n_watches; i++)
                free(s->watches[i].path);
        free(s->watches);
        s->watches = NULL;
        s->n_watches = 0;
}

/* Watches dir and every non-hidden folder below it; editors that save by renaming a
 * temporary file over the original show up as IN_MOVED_TO on the folder. */
static int watch_tree(struct dir_source *s, const char *dir, unsigned depth) {
        if (depth > 32 || s->n_watches >= MAX_WATCHES)
                return 0;
        int wd = inotify_add_watch(s->inotify_fd, dir, WATCH_MASK | IN_ONLYDIR);
        if (wd < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        bool known = false;
        for (size_t i = 0; i < s->n_watches; i++)
                if (s->watches[i].wd == wd)
                        known = true;
        if (!known) {
                struct watch *w = realloc(s->watches, (s->n_watches + 1) * sizeof(*w));
                if (!w)
                        return -ENOMEM;
                s->watches = w;
                w[s->n_watches].wd = wd;
                w[s->n_watches].path = strdup(dir);
                if (!w[s->n_watches].path)
                        return -ENOMEM;
                s->n_watches++;
        }
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d)) && r >= 0) {
                if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
                        continue;
                _cleanup_free_ char *p = eg_path_join(dir, de->d_name);
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                        r = watch_tree(s, p, depth + 1);
        }
        closedir(d);
        return r;
}

static const struct eg_source_ops dir_ops;

int eg_source_dir_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err) {
        _cleanup_free_ char *joined = opt->subpath ? eg_path_join(opt->location, opt->subpath) : strdup(opt->location);
        if (!joined)
                return -ENOMEM;
        char *root = realpath(joined, NULL);
        struct stat st;
        if (!root || stat(root, &st) < 0 || !S_ISDIR(st.st_mode)) {
                int r = root ? -ENOTDIR : -errno;
                eg_error_set(err, "source '%s' is not a readable directory: %s", joined, strerror(-r));
                free(root);
                return r;
        }
        struct dir_source *s = calloc(1, sizeof(*s));
        if (!s) {
                free(root);
                return -ENOMEM;
        }
        s->base.ops = &dir_ops;
        s->root = root;
        s->spec = opt->spec;
        s->inotify_fd = -1;
        git_libgit2_init();
        *ret = &s->base;
        return 0;
}

static void dir_free(struct eg_source *base) {
        struct dir_source *s = (struct dir_source *)base;
        if (s->inotify_fd >= 0)
                close(s->inotify_fd);
        watches_clear(s);
        free(s->root);
        free(s);
        git_libgit2_shutdown();
}

/* HEAD commit and dirtiness of the work tree holding root, when there is one. */
static void git_revision(const char *root, char **ret_commit, bool *ret_dirty) {
        git_repository *repo = NULL;
        git_status_list *st = NULL;
        if (git_repository_open_ext(&repo, root, 0, NULL) < 0 || git_repository_is_bare(repo))
                goto out;
        git_oid oid;
        if (git_reference_name_to_id(&oid, repo, "HEAD") < 0)
                goto out;
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), &oid);
        if (ret_commit)
                *ret_commit = strdup(hex);
        const char *workdir = git_repository_workdir(repo);
        size_t wl = workdir ? strlen(workdir) : 0;
        git_status_options so = GIT_STATUS_OPTIONS_INIT;
        so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
        char *spec = NULL;
        if (workdir && strncmp(root, workdir, wl > 0 ? wl - 1 : 0) == 0 && strlen(root) >= wl) {
                spec = eg_strdup_printf("%s/", root + wl);
                if (spec && spec[0] != '/') {
                        so.pathspec.strings = &spec;
                        so.pathspec.count = 1;
                }
        }
        if (ret_dirty && git_status_list_new(&st, repo, &so) == 0)
                *ret_dirty = git_status_list_entrycount(st) > 0;
        free(spec);
out:
        git_status_list_free(st);
        git_repository_free(repo);
}

static int dir_read(struct eg_source *base, struct eg_desired_set **ret, struct eg_source_revision *ret_rev,
                    struct eg_error *err) {
        struct dir_source *s = (struct dir_source *)base;
        char *paths[] = {s->root};
        struct eg_desired_set *set = NULL;
        int r = eg_spec_load_paths(paths, 1, &s->spec, &set);
        if (r < 0 && !set) {
                eg_error_set(err, "cannot read source '%s': %s", s->root, strerror(-r));
                return r;
        }
        if (r < 0) {
                eg_error_set(err, "cannot read source '%s': %s", s->root, strerror(-r));
                eg_desired_set_free(set);
                return r;
        }
        *ret_rev = (struct eg_source_revision){.revision = strdup(set->revision)};
        if (!ret_rev->revision) {
                eg_desired_set_free(set);
                return -ENOMEM;
        }
        git_revision(s->root, &ret_rev->commit, &ret_rev->dirty);
        *ret = set;
        return 0;
}

static int dir_watch_fd(struct eg_source *base) {
        struct dir_source *s = (struct dir_source *)base;
        if (s->inotify_fd >= 0)
                return s->inotify_fd;
        s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->inotify_fd < 0)
                return -1;
        if (watch_tree(s, s->root, 0) < 0) {
                close(s->inotify_fd);
                s->inotify_fd = -1;
                watches_clear(s);
        }
        return s->inotify_fd;
}

static const char *watch_path(struct dir_source *s, int wd) {
        for (size_t i = 0; i < s->n_watches; i++)
                if (s->watches[i].wd == wd)
                        return s->watches[i].path;
        return NULL;
}

static int dir_process_events(struct eg_source *base, bool *ret_changed) {
        struct dir_source *s = (struct dir_source *)base;
        *ret_changed = false;
        if (s->inotify_fd < 0)
                return 0;
        char buf[sizeof(struct inotify_event) + NAME_MAX + 1]
                __attribute__((aligned(__alignof__(struct inotify_event))));
        bool rewatch = false;
        for (;;) {
                ssize_t n = read(s->inotify_fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                for (char *p = buf; p < buf + n;) {
                        const struct inotify_event *ev = (const struct inotify_event *)p;
                        p += sizeof(*ev) + ev->len;
                        if (ev->mask & IN_Q_OVERFLOW) {
                                *ret_changed = rewatch = true;
                                continue;
                        }
                        if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
                                *ret_changed = rewatch = true;
                                continue;
                        }
                        /* hidden files are editors' swap and temp files, but .sourceignore
                         * says what the source holds */
                        if (ev->len == 0 || (ev->name[0] == '.' && strcmp(ev->name, EG_IGNORE_FILE) != 0))
                                continue;
                        *ret_changed = true;
                        if ((ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
                                const char *dir = watch_path(s, ev->wd);
                                _cleanup_free_ char *sub = dir ? eg_path_join(dir, ev->name) : NULL;
                                if (sub) {
                                        int r = watch_tree(s, sub, 1);
                                        if (r < 0)
                                                return r;
                                }
                        }
                }
        }
        if (rewatch) {
                /* A folder went away or the queue overflowed: rebuild every watch. */
                for (size_t i = 0; i < s->n_watches; i++)
                        inotify_rm_watch(s->inotify_fd, s->watches[i].wd);
                watches_clear(s);
                int r = watch_tree(s, s->root, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const struct eg_source_ops dir_ops = {
        .kind = "dir",
        .read = dir_read,
        .watch_fd = dir_watch_fd,
        .process_events = dir_process_events,
        .free = dir_free,
};
