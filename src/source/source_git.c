/* The git source: a bare cache repository per URL, fetched only when the remote ref
 * moved, manifests (and .sourceignore files) read straight from the commit's tree, notes
 * written back. */
#include <errno.h>
#include <git2.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/ignore.h"
#include "etcd-gitops/util.h"
#include "git.h"

#define READ_PREFIX "refs/etcd-gitops/read/"       /* last commit read, per remote ref */
#define FETCHED_PREFIX "refs/etcd-gitops/fetched/" /* what the last fetch brought, per remote ref */
#define DEFAULT_HEAD "refs/etcd-gitops/HEAD"       /* the remote's default branch, for offline reads */
#define MAX_TREE_DEPTH 32
#define MAX_SECRET_FILE ((size_t)64 << 10)

/* What a remote ref resolved to. */
struct target {
        char *full;    /* "refs/heads/main"; NULL when the ref is a commit id */
        char *display; /* name in the revision string */
        git_oid tip;
};

static void target_done(struct target *t) {
        free(t->full);
        free(t->display);
        *t = (struct target){0};
}

/* ---- opening ---- */

static int read_secret(const char *path, char **ret, struct eg_error *err) {
        char *data = NULL;
        size_t len = 0;
        int r = eg_read_file(path, MAX_SECRET_FILE, &data, &len);
        if (r < 0) {
                eg_error_set(err, "cannot read the token file '%s': %s", path, strerror(-r));
                return r;
        }
        while (len > 0 && strchr(" \t\r\n", data[len - 1]))
                data[--len] = 0;
        if (len == 0 || memchr(data, '\n', len)) {
                eg_error_set(err, "the token file '%s' must hold one line: a token or user:password", path);
                free(data);
                return -EINVAL;
        }
        *ret = data;
        return 0;
}

bool gsrc_is_commit_id(const char *ref) {
        return ref && strlen(ref) == GIT_OID_HEXSZ && strspn(ref, "0123456789abcdefABCDEF") == GIT_OID_HEXSZ;
}

static char *normalize_subpath(const char *p) {
        if (!p)
                return strdup("");
        while (*p == '/' || (p[0] == '.' && p[1] == '/'))
                p += *p == '/' ? 1 : 2;
        size_t n = strlen(p);
        while (n > 0 && p[n - 1] == '/')
                n--;
        if (n == 1 && p[0] == '.')
                n = 0;
        return strndup(p, n);
}

static int open_cache(struct git_source *s, const char *state_dir, struct eg_error *err) {
        char hex[65];
        eg_sha256_hex(s->url, strlen(s->url), hex);
        _cleanup_free_ char *base = eg_path_join(state_dir, "git");
        s->cache_dir = base ? eg_path_join(base, hex) : NULL;
        if (!s->cache_dir)
                return -ENOMEM;
        int r = eg_mkdir_p(s->cache_dir, 0700);
        if (r < 0) {
                eg_error_set(err, "cannot create the git cache '%s': %s", s->cache_dir, strerror(-r));
                return r;
        }
        if (git_repository_open_bare(&s->repo, s->cache_dir) < 0 && git_repository_init(&s->repo, s->cache_dir, 1) < 0)
                return gsrc_fail(s, err, -1, "cannot create the cache repository for");
        /* for people looking into the cache; fetches use the full URL without storing it */
        git_config *cfg = NULL;
        git_config_entry *entry = NULL;
        git_remote *origin = NULL;
        r = git_repository_config(&cfg, s->repo);
        if (r >= 0 && git_config_get_entry(&entry, cfg, "remote.origin.url") < 0)
                r = gsrc_remote_new(s, "origin", s->display_url, &origin);
        git_config_entry_free(entry);
        git_config_free(cfg);
        git_remote_free(origin);
        return r < 0 ? gsrc_fail(s, err, r, "cannot record the remote of") : 0;
}

static const struct eg_source_ops git_ops;
static void git_free(struct eg_source *base);

int eg_source_git_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err) {
        if (!opt->state_dir) {
                eg_error_set(err, "git sources need a state directory for their cache");
                return -EINVAL;
        }
        if (opt->ref && !opt->ref[0]) {
                eg_error_set(err, "--ref must not be empty");
                return -EINVAL;
        }
        struct git_source *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        git_libgit2_init();
        s->base.ops = &git_ops;
        s->spec = opt->spec;
        s->insecure = opt->insecure_skip_host_key_check;
        s->refuse_force_push = opt->refuse_force_push;
        s->push_notes = opt->push_notes;
        int r = -ENOMEM;
        s->url = strdup(opt->location);
        s->subpath = normalize_subpath(opt->subpath);
        s->ref = opt->ref ? strdup(opt->ref) : NULL;
        s->ssh_key_file = opt->ssh_key_file ? strdup(opt->ssh_key_file) : NULL;
        const char *home = getenv("HOME");
        s->known_hosts_file = opt->known_hosts_file ? strdup(opt->known_hosts_file)
                                                    : eg_strdup_printf("%s/.ssh/known_hosts", home ? home : "");
        if (!s->url || !s->subpath || (opt->ref && !s->ref) || (opt->ssh_key_file && !s->ssh_key_file) ||
            !s->known_hosts_file || gsrc_parse_url(s) < 0)
                goto fail;
        if (opt->token_file && (r = read_secret(opt->token_file, &s->token, err)) < 0)
                goto fail;
        if (opt->ssh_key_file && access(opt->ssh_key_file, R_OK) < 0) {
                r = -errno;
                eg_error_set(err, "cannot read the SSH key '%s': %s", opt->ssh_key_file, strerror(-r));
                goto fail;
        }
        r = open_cache(s, opt->state_dir, err);
        if (r < 0)
                goto fail;
        *ret = &s->base;
        return 0;
fail:
        git_free(&s->base);
        return r;
}

static void git_free(struct eg_source *base) {
        struct git_source *s = (struct git_source *)base;
        if (s->token)
                explicit_bzero(s->token, strlen(s->token));
        free(s->token);
        if (s->userinfo)
                explicit_bzero(s->userinfo, strlen(s->userinfo));
        free(s->userinfo);
        if (s->url)
                explicit_bzero(s->url, strlen(s->url));
        free(s->url);
        free(s->display_url);
        free(s->host);
        free(s->ref);
        free(s->subpath);
        free(s->cache_dir);
        free(s->ssh_key_file);
        free(s->known_hosts_file);
        free(s->cb_error);
        git_repository_free(s->repo);
        free(s);
        git_libgit2_shutdown();
}

/* ---- resolving and fetching ---- */

static char *ref_with_prefix(const char *prefix, const char *full) {
        return eg_strdup_printf("%s%s", prefix, eg_str_has_prefix(full, "refs/") ? full + 5 : full);
}

static const char *short_name(const char *full) {
        if (eg_str_has_prefix(full, "refs/heads/"))
                return full + 11;
        if (eg_str_has_prefix(full, "refs/tags/"))
                return full + 10;
        return full;
}

bool gsrc_have_commit(git_repository *repo, const git_oid *id) {
        git_commit *c = NULL;
        int r = git_commit_lookup(&c, repo, id);
        git_commit_free(c);
        return r == 0;
}

static bool have_object(git_repository *repo, const git_oid *id) {
        git_odb *odb = NULL;
        bool ok = git_repository_odb(&odb, repo) == 0 && git_odb_exists(odb, id);
        git_odb_free(odb);
        return ok;
}

/* The ref as the remote lists it: a full name as given, else a branch before a tag. */
static const git_remote_head *find_head(const git_remote_head **heads, size_t n, const char *ref) {
        const char *prefixes[] = {"", "refs/heads/", "refs/tags/"};
        for (size_t p = 0; p < EG_ELEMENTSOF(prefixes); p++) {
                if (p == 0 && !eg_str_has_prefix(ref, "refs/"))
                        continue;
                size_t pl = strlen(prefixes[p]);
                for (size_t i = 0; i < n; i++)
                        if (strncmp(heads[i]->name, prefixes[p], pl) == 0 && strcmp(heads[i]->name + pl, ref) == 0)
                                return heads[i];
        }
        return NULL;
}

static int fetch(struct git_source *s, git_remote *remote, char *refspec, struct eg_error *err) {
        git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
        fo.callbacks = gsrc_callbacks(s);
        fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
        fo.prune = GIT_FETCH_NO_PRUNE;
        fo.update_fetchhead = 0;
        git_strarray specs = {.strings = &refspec, .count = 1};
        int r = git_remote_fetch(remote, &specs, &fo, "etcd-gitops fetch");
        return r < 0 ? gsrc_fail(s, err, r, "cannot fetch from") : 0;
}

/* The commit may be on any branch or tag: all of them are brought. */
static int fetch_commit(struct git_source *s, git_remote *remote, const git_oid *id, bool *ret_fetched,
                        struct eg_error *err) {
        int r = fetch(s, remote, "+refs/heads/*:" FETCHED_PREFIX "heads/*", err);
        if (r >= 0)
                r = fetch(s, remote, "+refs/tags/*:" FETCHED_PREFIX "tags/*", err);
        if (r < 0)
                return r;
        *ret_fetched = true;
        if (!gsrc_have_commit(s->repo, id)) {
                eg_error_set(err, "commit %s is not on any branch or tag of %s", s->ref, s->display_url);
                return -ENOENT;
        }
        return 0;
}

/* The remote's head for the ref, or for its default branch when no ref was given. */
static int find_ref_head(struct git_source *s, git_remote *remote, const git_remote_head **heads, size_t n,
                         const git_remote_head **ret, struct eg_error *err) {
        if (s->ref) {
                *ret = find_head(heads, n, s->ref);
                if (!*ret) {
                        eg_error_set(err, "%s has no branch or tag '%s'", s->display_url, s->ref);
                        return -ENOENT;
                }
                return 0;
        }
        git_buf def = GIT_BUF_INIT;
        int r = git_remote_default_branch(&def, remote);
        if (r == GIT_ENOTFOUND) {
                eg_error_set(err, "%s has no default branch (empty, or HEAD detached): pass --ref", s->display_url);
                return -ENOENT;
        }
        if (r < 0)
                return gsrc_fail(s, err, r, "cannot find the default branch (pass --ref) of");
        *ret = find_head(heads, n, def.ptr);
        git_buf_dispose(&def);
        if (!*ret) {
                eg_error_set(err, "the default branch of %s is not listed", s->display_url);
                return -ENOENT;
        }
        return 0;
}

/* Fetches the ref when its tracking ref in the cache is not where the remote has it, and
 * fills t with what arrived; remembers the default branch for offline reads. */
static int fetch_ref(struct git_source *s, git_remote *remote, const git_remote_head *h, struct target *t,
                     bool *ret_fetched, struct eg_error *err) {
        _cleanup_free_ char *tracking = NULL, *refspec = NULL;
        t->full = strdup(h->name);
        t->display = strdup(s->ref ? s->ref : short_name(h->name));
        tracking = t->full ? ref_with_prefix(FETCHED_PREFIX, t->full) : NULL;
        refspec = tracking ? eg_strdup_printf("+%s:%s", t->full, tracking) : NULL;
        if (!t->display || !refspec)
                return -ENOMEM;
        git_oid local;
        if (git_reference_name_to_id(&local, s->repo, tracking) < 0 || !git_oid_equal(&local, &h->oid) ||
            !have_object(s->repo, &h->oid)) {
                int r = fetch(s, remote, refspec, err);
                if (r < 0)
                        return r;
                *ret_fetched = true;
        }
        /* the ref may have moved again between listing and fetching: take what arrived */
        if (git_reference_name_to_id(&t->tip, s->repo, tracking) < 0)
                return gsrc_fail(s, err, -1, "fetch brought no ref from");
        if (s->ref)
                return 0;
        _cleanup_free_ char *read_ref = ref_with_prefix(READ_PREFIX, t->full);
        git_reference *sym = NULL;
        if (!read_ref || git_reference_symbolic_create(&sym, s->repo, DEFAULT_HEAD, read_ref, 1, NULL) < 0)
                return gsrc_fail(s, err, -1, "cannot remember the default branch of");
        git_reference_free(sym);
        return 0;
}

/* Finds what the ref points at on the remote and fetches it when the cache does not have
 * it yet. A commit id already in the cache needs no connection at all. */
static int resolve_and_fetch(struct git_source *s, struct target *ret, bool *ret_fetched, struct eg_error *err) {
        struct target t = {0};
        git_remote *remote = NULL;
        const git_remote_head **heads = NULL, *h = NULL;
        size_t n = 0;
        bool commit = gsrc_is_commit_id(s->ref);
        int r;

        *ret_fetched = false;
        if (commit) {
                git_oid_fromstr(&t.tip, s->ref);
                if (gsrc_have_commit(s->repo, &t.tip))
                        goto done;
        }
        if (gsrc_remote_new(s, NULL, s->url, &remote) < 0) {
                r = gsrc_fail(s, err, -1, "invalid git URL");
                goto out;
        }
        git_remote_callbacks cb = gsrc_callbacks(s);
        r = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
        if (r < 0) {
                r = gsrc_fail(s, err, r, "cannot connect to");
                goto out;
        }
        r = git_remote_ls(&heads, &n, remote);
        if (r < 0) {
                r = gsrc_fail(s, err, r, "cannot list the refs of");
                goto out;
        }
        if (commit)
                r = fetch_commit(s, remote, &t.tip, ret_fetched, err);
        else {
                r = find_ref_head(s, remote, heads, n, &h, err);
                if (r >= 0)
                        r = fetch_ref(s, remote, h, &t, ret_fetched, err);
        }
        if (r < 0)
                goto out;
done:
        if (!t.display && !(t.display = strdup(s->ref))) {
                r = -ENOMEM;
                goto out;
        }
        *ret = t;
        t = (struct target){0};
        r = 0;
out:
        if (remote)
                git_remote_disconnect(remote);
        git_remote_free(remote);
        target_done(&t);
        return r;
}

/* ---- reading a commit's tree ---- */

struct walk {
        struct git_source *s;
        struct eg_desired_set *set;
        const char *commit;
        size_t n_entries;
        struct eg_ignore *ignore;
};

static bool is_manifest_name(const char *name) {
        return eg_str_has_suffix(name, ".yaml") || eg_str_has_suffix(name, ".yml") || eg_str_has_suffix(name, ".json");
}

static int load_blob(struct walk *w, const git_tree_entry *e, const char *path) {
        git_blob *blob = NULL;
        if (git_blob_lookup(&blob, w->s->repo, git_tree_entry_id(e)) < 0) {
                w->set->n_files++;
                return eg_desired_set_add_file_error(w->set, path, "blob %s is missing from the cache", w->commit);
        }
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), git_tree_entry_id(e));
        struct eg_origin origin = {.path = (char *)path, .blob = hex, .commit = (char *)w->commit};
        int r = eg_spec_parse_buffer(w->set, &origin, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob),
                                     &w->s->spec);
        git_blob_free(blob);
        return r;
}

/* The folder's .sourceignore, taken from the same commit as the manifests beside it. */
static int load_ignore(struct walk *w, const git_tree *tree, const char *rel) {
        const git_tree_entry *e = git_tree_entry_byname(tree, EG_IGNORE_FILE);
        if (!e)
                return 0;
        _cleanup_free_ char *path = rel[0] ? eg_path_join(rel, EG_IGNORE_FILE) : strdup(EG_IGNORE_FILE);
        if (!path)
                return -ENOMEM;
        const char *why = git_tree_entry_filemode(e) == GIT_FILEMODE_LINK ? "symlink in the repository: not followed"
                          : git_tree_entry_type(e) != GIT_OBJECT_BLOB     ? "not a regular file"
                                                                          : NULL;
        git_blob *blob = NULL;
        if (!why && git_blob_lookup(&blob, w->s->repo, git_tree_entry_id(e)) < 0)
                why = "blob is missing from the cache";
        if (why) {
                w->set->n_files++;
                return eg_desired_set_add_file_error(w->set, path, "%s", why);
        }
        int r = eg_ignore_add(w->ignore, w->set, rel, path, git_blob_rawcontent(blob), (size_t)git_blob_rawsize(blob));
        git_blob_free(blob);
        return r;
}

/* Tree order is git's (names compared as bytes, folders as if ending in '/'); the set
 * sorts objects by path anyway. Only what a checkout would give as regular files is read. */
static int walk_tree(struct walk *w, const git_tree *tree, const char *rel, unsigned depth) {
        size_t n = git_tree_entrycount(tree);
        int r = load_ignore(w, tree, rel);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const git_tree_entry *e = git_tree_entry_byindex(tree, i);
                const char *name = git_tree_entry_name(e);
                if (name[0] == '.')
                        continue;
                _cleanup_free_ char *path = rel[0] ? eg_path_join(rel, name) : strdup(name);
                if (!path)
                        return -ENOMEM;
                git_object_t type = git_tree_entry_type(e);
                if (type == GIT_OBJECT_BLOB && !is_manifest_name(name))
                        continue;
                int ignored = eg_ignore_check(w->ignore, path, type == GIT_OBJECT_TREE);
                if (ignored < 0)
                        return ignored;
                if (ignored)
                        continue;
                if (++w->n_entries > EG_SPEC_MAX_FILES) {
                        if (w->n_entries == EG_SPEC_MAX_FILES + 1)
                                return eg_desired_set_add_file_error(
                                        w->set, path, "more than %d files and directories; the rest is not read",
                                        EG_SPEC_MAX_FILES);
                        return 0;
                }
                if (type == GIT_OBJECT_TREE) {
                        if (depth == MAX_TREE_DEPTH) {
                                r = eg_desired_set_add_file_error(w->set, path,
                                                                  "directories nested deeper than %d levels; not read",
                                                                  MAX_TREE_DEPTH);
                                continue;
                        }
                        git_tree *sub = NULL;
                        if (git_tree_lookup(&sub, w->s->repo, git_tree_entry_id(e)) < 0)
                                r = eg_desired_set_add_file_error(w->set, path, "tree is missing from the cache");
                        else
                                r = walk_tree(w, sub, path, depth + 1);
                        git_tree_free(sub);
                } else if (type == GIT_OBJECT_COMMIT) {
                        w->set->n_files++;
                        r = eg_desired_set_add_file_error(w->set, path,
                                                          "submodule: not followed, manifests inside it are not read");
                } else if (git_tree_entry_filemode(e) == GIT_FILEMODE_LINK) {
                        w->set->n_files++;
                        r = eg_desired_set_add_file_error(w->set, path, "symlink in the repository: not followed");
                } else if (type == GIT_OBJECT_BLOB)
                        r = load_blob(w, e, path);
        }
        return r;
}

static int read_commit(struct git_source *s, const git_commit *c, const char *display, struct eg_desired_set **ret,
                       struct eg_error *err) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), git_commit_id(c));
        git_tree *root = NULL, *sub = NULL;
        git_tree_entry *entry = NULL;
        struct eg_desired_set *set = NULL;
        int r = git_commit_tree(&root, c);
        if (r < 0) {
                r = gsrc_fail(s, err, r, "cannot read the tree of a commit from");
                goto out;
        }
        const git_tree *tree = root;
        if (s->subpath[0]) {
                if (git_tree_entry_bypath(&entry, root, s->subpath) < 0 ||
                    git_tree_entry_type(entry) != GIT_OBJECT_TREE ||
                    git_tree_lookup(&sub, s->repo, git_tree_entry_id(entry)) < 0) {
                        eg_error_set(err, "commit %s of %s has no folder '%s'", hex, s->display_url, s->subpath);
                        r = -ENOENT;
                        goto out;
                }
                tree = sub;
        }
        r = eg_desired_set_new(&set);
        if (r < 0)
                goto out;
        struct walk w = {.s = s, .set = set, .commit = hex};
        r = eg_ignore_new(&w.ignore);
        if (r >= 0)
                r = walk_tree(&w, tree, "", 0);
        eg_ignore_free(w.ignore);
        if (r >= 0) {
                /* set before finish, which only makes up a content hash when there is none */
                set->revision = gsrc_is_commit_id(display) ? eg_strdup_printf("sha1:%s", hex)
                                                           : eg_strdup_printf("%s@sha1:%s", display, hex);
                r = set->revision ? eg_desired_set_finish(set) : -ENOMEM;
        }
        if (r < 0) {
                eg_error_set(err, "cannot read commit %s of %s: %s", hex, s->display_url, strerror(-r));
                goto out;
        }
        *ret = TAKE_PTR(set);
out:
        eg_desired_set_free(set);
        git_tree_entry_free(entry);
        git_tree_free(sub);
        git_tree_free(root);
        return r;
}

static int fill_revision(const git_commit *c, const char *revision, struct eg_source_revision *rev) {
        char hex[GIT_OID_HEXSZ + 1];
        git_oid_tostr(hex, sizeof(hex), git_commit_id(c));
        const git_signature *a = git_commit_author(c);
        const char *msg = git_commit_message(c);
        msg = msg ? msg : "";
        rev->revision = strdup(revision);
        rev->commit = strdup(hex);
        rev->author = eg_strdup_printf("%s <%s>", a && a->name ? a->name : "", a && a->email ? a->email : "");
        rev->subject = strndup(msg, strcspn(msg, "\n"));
        return rev->revision && rev->commit && rev->author && rev->subject ? 0 : -ENOMEM;
}

/* The commit last read for the remote ref: where a fetch failure falls back to and what
 * a force-push is measured against. */
static int last_read(struct git_source *s, const char *read_ref, git_oid *ret) {
        return read_ref && git_reference_name_to_id(ret, s->repo, read_ref) == 0 ? 0 : -ENOENT;
}

/* When the remote cannot be reached: the ref's last read commit, found without it. */
static int offline_target(struct git_source *s, struct target *ret) {
        struct target t = {0};
        if (gsrc_is_commit_id(s->ref))
                return -ENOENT; /* a commit in the cache needs no connection: it is not there */
        if (s->ref) {
                const char *prefixes[] = {"", "refs/heads/", "refs/tags/"};
                for (size_t p = 0; p < EG_ELEMENTSOF(prefixes) && !t.full; p++) {
                        if (p == 0 && !eg_str_has_prefix(s->ref, "refs/"))
                                continue;
                        _cleanup_free_ char *full = eg_strdup_printf("%s%s", prefixes[p], s->ref);
                        _cleanup_free_ char *read_ref = full ? ref_with_prefix(READ_PREFIX, full) : NULL;
                        if (!read_ref)
                                return -ENOMEM;
                        if (last_read(s, read_ref, &t.tip) == 0)
                                t.full = TAKE_PTR(full);
                }
                if (!t.full)
                        return -ENOENT;
                t.display = strdup(s->ref);
        } else {
                git_reference *sym = NULL;
                if (git_reference_lookup(&sym, s->repo, DEFAULT_HEAD) < 0 || !git_reference_symbolic_target(sym)) {
                        git_reference_free(sym);
                        return -ENOENT;
                }
                const char *target = git_reference_symbolic_target(sym);
                int r = last_read(s, target, &t.tip);
                if (r == 0) {
                        t.full = eg_strdup_printf("refs/%s", target + strlen(READ_PREFIX));
                        t.display = t.full ? strdup(short_name(t.full)) : NULL;
                }
                git_reference_free(sym);
                if (r < 0)
                        return r;
        }
        if (!t.full || !t.display) {
                target_done(&t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

/* The commit the ref's tip names: itself, or an annotated tag's commit. */
static int lookup_tip(struct git_source *s, const git_oid *id, git_commit **ret, struct eg_error *err) {
        int r = git_commit_lookup(ret, s->repo, id);
        if (r >= 0)
                return 0;
        git_object *obj = NULL;
        if (git_object_lookup(&obj, s->repo, id, GIT_OBJECT_ANY) == 0 &&
            git_object_peel((git_object **)ret, obj, GIT_OBJECT_COMMIT) == 0)
                r = 0;
        git_object_free(obj);
        return r < 0 ? gsrc_fail(s, err, r, "the ref does not lead to a commit in") : 0;
}

/* Notes in rev a tip that does not descend from the last commit read, and with
 * refuse_force_push puts that last commit in *ret_use instead. -ENOMEM only. */
static int check_force_push(struct git_source *s, const char *read_ref, const git_commit *tip,
                            struct eg_source_revision *rev, git_commit **ret_use) {
        git_oid last;
        const git_oid *tip_id = git_commit_id(tip);
        if (last_read(s, read_ref, &last) < 0 || git_oid_equal(&last, tip_id) ||
            git_graph_descendant_of(s->repo, tip_id, &last) == 1)
                return 0;
        rev->force_push = true;
        rev->previous_commit = malloc(GIT_OID_HEXSZ + 1);
        if (!rev->previous_commit)
                return -ENOMEM;
        git_oid_tostr(rev->previous_commit, GIT_OID_HEXSZ + 1, &last);
        if (s->refuse_force_push && git_commit_lookup(ret_use, s->repo, &last) == 0)
                rev->held = true;
        return 0;
}

/* Moves the ref's "last commit read" to c. */
static int record_read(struct git_source *s, const char *read_ref, const git_commit *c, struct eg_error *err) {
        git_reference *ref = NULL;
        if (git_reference_create(&ref, s->repo, read_ref, git_commit_id(c), 1, "etcd-gitops read") < 0)
                return gsrc_fail(s, err, -1, "cannot record the commit read from");
        git_reference_free(ref);
        return 0;
}

static int git_read(struct eg_source *base, struct eg_desired_set **ret, struct eg_source_revision *ret_rev,
                    struct eg_error *err) {
        struct git_source *s = (struct git_source *)base;
        struct target t = {0};
        struct eg_error fetch_err = {0};
        struct eg_source_revision rev = {0};
        struct eg_desired_set *set = NULL;
        git_commit *tip = NULL, *use = NULL;
        _cleanup_free_ char *read_ref = NULL;
        bool fetched = false;
        int r = resolve_and_fetch(s, &t, &fetched, &fetch_err);
        if (r < 0 && offline_target(s, &t) < 0) {
                eg_error_set(err, "%s", fetch_err.message ? fetch_err.message : strerror(-r));
                goto out;
        }
        r = lookup_tip(s, &t.tip, &tip, err);
        if (r < 0)
                goto out;
        if (t.full && !(read_ref = ref_with_prefix(READ_PREFIX, t.full)))
                r = -ENOMEM;
        else
                r = check_force_push(s, read_ref, tip, &rev, &use);
        if (r >= 0 && !use && git_commit_dup(&use, tip) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = read_commit(s, use, t.display, &set, err);
        if (r >= 0)
                r = fill_revision(use, set->revision, &rev);
        /* a held force-push leaves the last read commit where it was, so every read until
         * the ref moves back onto it (or someone reads without refusing) holds again */
        if (r >= 0 && read_ref && !rev.held)
                r = record_read(s, read_ref, use, err);
        if (r < 0)
                goto out;
        rev.fetched = fetched;
        if (fetch_err.message && !(rev.stale = eg_strdup_printf("%s; still at %s", fetch_err.message, rev.revision))) {
                r = -ENOMEM;
                goto out;
        }
        *ret = TAKE_PTR(set);
        *ret_rev = rev;
        rev = (struct eg_source_revision){0};
        r = 0;
out:
        eg_source_revision_done(&rev);
        eg_desired_set_free(set);
        git_commit_free(tip);
        git_commit_free(use);
        eg_error_done(&fetch_err);
        target_done(&t);
        return r;
}

static int git_watch_fd(struct eg_source *base) { return -1; }

static const struct eg_source_ops git_ops = {
        .kind = "git",
        .read = git_read,
        .watch_fd = git_watch_fd,
        .annotate = gsrc_annotate,
        .free = git_free,
};
