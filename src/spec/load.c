/* Loading manifests from files and directory trees: sorted walk, hidden entries and what
 * .sourceignore files name skipped, symlinks kept inside the root, every read bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/ignore.h"
#include "etcd-gitops/util.h"
#include "spec-internal.h"

struct walker {
        struct eg_desired_set *set;
        const struct eg_spec_options *opt;
        const char *arg;       /* the argument as given */
        const char *root_real; /* its resolved path, for the symlink check */
        size_t n_files;        /* files and directories visited, over all arguments */
        bool budget_reported;
        int io_error;             /* first -errno of a file that could not be read */
        struct eg_ignore *ignore; /* the argument's .sourceignore patterns so far */
        struct stat dirs[EG_SPEC_MAX_DEPTH];
        unsigned depth;
};

static bool is_manifest_name(const char *name) {
        return eg_str_has_suffix(name, ".yaml") || eg_str_has_suffix(name, ".yml") || eg_str_has_suffix(name, ".json");
}

static char *display_path(const struct walker *w, const char *rel) {
        if (!rel)
                return strdup(w->arg);
        if (!w->opt || !w->opt->paths_as_given || strcmp(w->arg, ".") == 0 || strcmp(w->arg, "./") == 0)
                return strdup(rel);
        return eg_path_join(w->arg, rel);
}

static bool over_budget(struct walker *w, const char *display) {
        if (++w->n_files <= EG_SPEC_MAX_FILES)
                return false;
        if (!w->budget_reported) {
                w->budget_reported = true;
                if (eg_desired_set_add_file_error(w->set, display,
                                                  "more than %d files and directories; the rest is not read",
                                                  EG_SPEC_MAX_FILES) < 0)
                        w->io_error = w->io_error ? w->io_error : -ENOMEM;
        }
        return true;
}

static int io_failure(struct walker *w, const char *display, int err) {
        w->set->n_files++;
        if (!w->io_error)
                w->io_error = err;
        return eg_desired_set_add_file_error(w->set, display, "cannot read: %s", strerror(-err));
}

/* Reads the regular file at full into b, at most EG_SPEC_MAX_FILE_BYTES: 1 when read, 0
 * when what went wrong is a diagnostic in the set, -ENOMEM. */
static int read_regular(struct walker *w, const char *full, const char *display, int flags, struct eg_buf *b) {
        int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
        if (fd < 0 && errno == ELOOP && (flags & O_NOFOLLOW)) {
                w->set->n_files++;
                return eg_desired_set_add_file_error(w->set, display, "symlink: not followed");
        }
        if (fd < 0)
                return io_failure(w, display, -errno);
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                return io_failure(w, display, r);
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                w->set->n_files++;
                return eg_desired_set_add_file_error(w->set, display, "not a regular file");
        }
        int r = 0;
        if ((uint64_t)st.st_size > EG_SPEC_MAX_FILE_BYTES)
                r = -E2BIG;
        while (r == 0) {
                char chunk[65536];
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = -errno;
                else if (n == 0)
                        break;
                else
                        r = eg_buf_append(b, chunk, (size_t)n);
        }
        close(fd);
        if (r == 0)
                return 1;
        if (r == -E2BIG) {
                w->set->n_files++;
                return eg_desired_set_add_file_error(w->set, display,
                                                     "file is too large (%lld bytes; the limit is %zu)",
                                                     (long long)st.st_size, EG_SPEC_MAX_FILE_BYTES);
        }
        return r == -ENOMEM ? r : io_failure(w, display, r);
}

static int load_file(struct walker *w, const char *full, const char *display) {
        struct eg_buf b;
        eg_buf_init(&b, EG_SPEC_MAX_FILE_BYTES);
        int r = read_regular(w, full, display, 0, &b);
        if (r > 0) {
                struct eg_origin origin = {.path = (char *)display};
                r = eg_spec_parse_buffer(w->set, &origin, b.data ? b.data : "", b.len, w->opt);
        }
        eg_buf_done(&b);
        return r;
}

/* The .sourceignore of the folder rel (NULL for the root): not followed when a symlink,
 * as a manifest leading outside the root would not be either. */
static int load_ignore(struct walker *w, const char *full, const char *rel) {
        _cleanup_free_ char *f = eg_path_join(full, EG_IGNORE_FILE);
        _cleanup_free_ char *rp = rel ? eg_path_join(rel, EG_IGNORE_FILE) : strdup(EG_IGNORE_FILE);
        _cleanup_free_ char *display = rp ? display_path(w, rp) : NULL;
        if (!f || !display)
                return -ENOMEM;
        struct eg_buf b;
        eg_buf_init(&b, EG_SPEC_MAX_FILE_BYTES);
        int r = read_regular(w, f, display, O_NOFOLLOW, &b);
        if (r > 0)
                r = eg_ignore_add(w->ignore, w->set, rel ? rel : "", display, b.data ? b.data : "", b.len);
        eg_buf_done(&b);
        return r;
}
static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Names in the directory, hidden ones left out, in byte order, and whether it holds a
 * .sourceignore. */
static int list_dir(const char *full, char ***ret, size_t *ret_n, bool *ret_ignore) {
        int fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *dir = fdopendir(fd);
        if (!dir) {
                int r = -errno;
                close(fd);
                return r;
        }
        char **names = NULL;
        size_t n = 0, alloc = 0;
        int r = 0;
        struct dirent *de;
        bool ignore = false;
        while ((errno = 0, de = readdir(dir))) {
                if (de->d_name[0] == '.') {
                        ignore = ignore || strcmp(de->d_name, EG_IGNORE_FILE) == 0;
                        continue;
                }
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 16;
                        char **p = realloc(names, na * sizeof(*p));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        names = p;
                        alloc = na;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
                if (n > EG_SPEC_MAX_FILES)
                        break; /* the file budget stops the walk anyway */
        }
        if (r == 0 && errno != 0 && !de)
                r = -errno;
        closedir(dir);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(names[i]);
                free(names);
                return r;
        }
        if (n > 1)
                qsort(names, n, sizeof(*names), cmp_names);
        *ret = names;
        *ret_n = n;
        *ret_ignore = ignore;
        return 0;
}

static bool inside_root(const struct walker *w, const char *real) {
        size_t n = strlen(w->root_real);
        if (strcmp(w->root_real, "/") == 0)
                return true;
        return strncmp(real, w->root_real, n) == 0 && (real[n] == 0 || real[n] == '/');
}

static int walk_dir(struct walker *w, const char *full, const char *rel);

static int walk_entry(struct walker *w, const char *full, const char *rel) {
        _cleanup_free_ char *display = display_path(w, rel);
        if (!display)
                return -ENOMEM;
        struct stat st, target;
        if (lstat(full, &st) < 0)
                return errno == ENOENT ? 0 : io_failure(w, display, -errno);
        bool is_dir = S_ISDIR(st.st_mode) ||
                      (S_ISLNK(st.st_mode) && stat(full, &target) == 0 && S_ISDIR(target.st_mode));
        int r = eg_ignore_check(w->ignore, rel, is_dir);
        if (r != 0)
                return r < 0 ? r : 0;
        if (S_ISLNK(st.st_mode)) {
                _cleanup_free_ char *real = realpath(full, NULL);
                if (!real || stat(real, &st) < 0) {
                        if (errno == ENOMEM)
                                return -ENOMEM;
                        if (!is_manifest_name(rel))
                                return 0;
                        w->set->n_files++;
                        return eg_desired_set_add_file_error(w->set, display, "broken symlink: %s", strerror(errno));
                }
                if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) && is_manifest_name(rel)))
                        return 0;
                if (!inside_root(w, real)) {
                        w->set->n_files++;
                        return eg_desired_set_add_file_error(
                                w->set, display, "symlink leads outside the source root (to %s); refused", real);
                }
        }
        if (S_ISDIR(st.st_mode)) {
                if (over_budget(w, display))
                        return 0;
                for (unsigned i = 0; i < w->depth; i++)
                        if (w->dirs[i].st_dev == st.st_dev && w->dirs[i].st_ino == st.st_ino)
                                return eg_desired_set_add_file_error(w->set, display, "symlink loop; not followed");
                if (w->depth == EG_SPEC_MAX_DEPTH)
                        return eg_desired_set_add_file_error(w->set, display,
                                                             "directories nested deeper than %d levels; not read",
                                                             EG_SPEC_MAX_DEPTH);
                w->dirs[w->depth++] = st;
                r = walk_dir(w, full, rel);
                w->depth--;
                return r;
        }
        if (!S_ISREG(st.st_mode) || !is_manifest_name(rel))
                return 0;
        if (over_budget(w, display))
                return 0;
        return load_file(w, full, display);
}

static int walk_dir(struct walker *w, const char *full, const char *rel) {
        char **names = NULL;
        size_t n = 0;
        bool has_ignore = false;
        int r = list_dir(full, &names, &n, &has_ignore);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                _cleanup_free_ char *display = display_path(w, rel ? rel : ".");
                return display ? io_failure(w, display, r) : -ENOMEM;
        }
        if (has_ignore)
                r = load_ignore(w, full, rel);
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *f = eg_path_join(full, names[i]);
                _cleanup_free_ char *rp = rel ? eg_path_join(rel, names[i]) : strdup(names[i]);
                r = f && rp ? walk_entry(w, f, rp) : -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r;
}

/* A directory argument: its own root for symlinks and for .sourceignore files. */
static int walk_root(struct walker *w, const char *path, const struct stat *st) {
        _cleanup_free_ char *real = realpath(path, NULL);
        if (!real)
                return io_failure(w, path, -errno);
        int r = eg_ignore_new(&w->ignore);
        if (r < 0)
                return r;
        w->root_real = real;
        w->dirs[w->depth++] = *st;
        r = walk_dir(w, path, NULL);
        w->root_real = NULL;
        eg_ignore_free(w->ignore);
        w->ignore = NULL;
        return r;
}

int eg_spec_load_paths(char *const *paths, size_t n_paths, const struct eg_spec_options *opt,
                       struct eg_desired_set **ret) {
        struct eg_desired_set *set;
        int r = eg_desired_set_new(&set);
        if (r < 0)
                return r;
        struct walker w = {.set = set, .opt = opt};
        for (size_t i = 0; i < n_paths && r >= 0; i++) {
                struct stat st;
                w.arg = paths[i];
                w.depth = 0;
                if (stat(paths[i], &st) < 0) {
                        r = io_failure(&w, paths[i], -errno);
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (!over_budget(&w, paths[i]))
                                r = load_file(&w, paths[i], paths[i]);
                        continue;
                }
                r = walk_root(&w, paths[i], &st);
        }
        if (r >= 0)
                r = eg_desired_set_finish(set);
        *ret = set;
        if (r < 0)
                return r;
        return w.io_error;
}
