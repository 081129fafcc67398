/* Suspending a cluster by hand: one small file per cluster under the state dir, each change
 * recorded in the journal with who asked and why. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* A suspension file is a few hundred bytes; anything much larger is not one. */
#define SUSPENSION_MAX 65536

int eg_suspension_read(const char *state_dir, const char *ns, const char *name, json_t **ret) {
        if (ret)
                *ret = NULL;
        if (!state_dir)
                return 0;
        _cleanup_free_ char *path = eg_state_path(state_dir, EG_STATE_SUSPENDED, ns, name);
        if (!path)
                return -ENOMEM;
        if (!ret)
                return access(path, F_OK) == 0 ? 1 : errno == ENOENT ? 0 : -errno;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int k = eg_read_file(path, SUSPENSION_MAX, &text, &len);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        /* the file being there is what suspends: one that says nothing readable still does */
        json_t *s = json_loads(text, 0, NULL);
        if (!json_is_object(s)) {
                json_decref(s);
                s = json_object();
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 1;
}

static int suspension_write(const char *state_dir, const char *ns, const char *name, const char *reason,
                            const char *actor) {
        _cleanup_free_ char *dir = eg_state_path(state_dir, EG_STATE_SUSPENDED, ns, NULL);
        _cleanup_free_ char *path = eg_state_path(state_dir, EG_STATE_SUSPENDED, ns, name);
        char since[32];
        eg_format_rfc3339_ms(eg_now_realtime_ms(), since);
        json_t *s = json_pack("{s:s?, s:s?, s:s}", "reason", reason, "actor", actor, "since", since);
        _cleanup_free_ char *text = s ? json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(s);
        if (!dir || !path || !text)
                return -ENOMEM;
        int k = eg_mkdir_p(dir, 0755);
        if (k < 0)
                return k;
        return eg_write_file_atomic(path, text, strlen(text), 0644);
}

static int suspension_remove(const char *state_dir, const char *ns, const char *name) {
        _cleanup_free_ char *path = eg_state_path(state_dir, EG_STATE_SUSPENDED, ns, name);
        if (!path)
                return -ENOMEM;
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* The clusters a suspension may name, as sorted distinct "NS/NAME" strings. */
struct known {
        char **v;
        size_t n, cap;
};

static void known_done(struct known *k) { eg_strv_free(k->v, k->n); }

static bool known_has(const struct known *k, const char *full) {
        for (size_t i = 0; i < k->n; i++)
                if (strcmp(k->v[i], full) == 0)
                        return true;
        return false;
}

static int known_add(struct known *k, const char *ns, const char *name) {
        char *full = eg_strdup_printf("%s/%s", ns, name);
        if (!full)
                return -ENOMEM;
        if (known_has(k, full)) {
                free(full);
                return 0;
        }
        if (k->n + 1 >= k->cap) {
                size_t cap = k->cap ? 2 * k->cap : 16;
                char **v = realloc(k->v, cap * sizeof(*v));
                if (!v) {
                        free(full);
                        return -ENOMEM;
                }
                k->v = v;
                k->cap = cap;
        }
        k->v[k->n++] = full;
        return 0;
}

/* Every cluster with a suspension file under the state dir, in namespace ns when it is set. */
static int known_suspended(const char *state_dir, const char *ns, struct known *k) {
        _cleanup_free_ char *top = eg_state_path(state_dir, EG_STATE_SUSPENDED, NULL, NULL);
        DIR *d = top ? opendir(top) : NULL;
        if (!d)
                return !top ? -ENOMEM : errno == ENOENT ? 0 : -errno;
        int r = 0;
        for (struct dirent *e; r >= 0 && (e = readdir(d));) {
                if (e->d_name[0] == '.' || (ns && strcmp(ns, e->d_name) != 0))
                        continue;
                _cleanup_free_ char *sub = eg_state_path(state_dir, EG_STATE_SUSPENDED, e->d_name, NULL);
                DIR *nd = sub ? opendir(sub) : NULL;
                for (struct dirent *f; nd && r >= 0 && (f = readdir(nd));) {
                        size_t l = strlen(f->d_name);
                        if (f->d_name[0] == '.' || l <= 5 || strcmp(f->d_name + l - 5, ".json") != 0)
                                continue;
                        f->d_name[l - 5] = 0;
                        r = known_add(k, e->d_name, f->d_name);
                }
                if (nd)
                        closedir(nd);
        }
        closedir(d);
        return r;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* What r knows: the clusters desired at its last pass, those its runtime lists (looked for in
 * the namespaces r has seen and in ns) and the suspended ones, within r's namespace. */
static int known_load(struct eg_reconciler *r, const char *ns, struct known *ret, struct eg_error *err) {
        struct known k = {0};
        const char *scope = r->opt.namespace;
        _cleanup_free_ const char **nss = calloc(r->n_tracks + 2, sizeof(*nss));
        size_t n_ns = 0;
        int e = nss ? 0 : -ENOMEM;
        for (size_t i = 0; e >= 0 && i < r->n_tracks; i++) {
                const struct cluster_track *t = &r->tracks[i];
                nss[n_ns++] = t->ns;
                if (t->manifest && (!scope || strcmp(scope, t->ns) == 0))
                        e = known_add(&k, t->ns, t->name);
        }
        if (nss && ns)
                nss[n_ns++] = ns;
        struct eg_runtime_cluster *cs = NULL;
        size_t n = 0;
        if (e >= 0)
                e = eg_runtime_list(r->opt.runtime, nss, n_ns, &cs, &n, err);
        for (size_t i = 0; e >= 0 && i < n; i++)
                if (!scope || strcmp(scope, cs[i].namespace) == 0)
                        e = known_add(&k, cs[i].namespace, cs[i].name);
        eg_runtime_clusters_free(cs, n);
        if (e >= 0)
                e = known_suspended(r->opt.state_dir, scope, &k);
        if (e < 0) {
                known_done(&k);
                return e;
        }
        if (k.n)
                qsort(k.v, k.n, sizeof(*k.v), cmp_str);
        *ret = k;
        return 0;
}

/* -ENOENT, err naming what r does know; full NULL: asked for every cluster. */
static int unknown_cluster(const struct known *k, const char *full, struct eg_error *err) {
        struct eg_buf b;
        eg_buf_init(&b, 4096);
        for (size_t i = 0; i < k->n; i++)
                (void)eg_buf_printf(&b, "%s%s", i ? ", " : "", k->v[i]);
        if (k->n)
                eg_error_set(err, "no cluster %s; the clusters are %s", full, b.data);
        else
                eg_error_set(err, "%s%s%sthere are no clusters", full ? "no cluster " : "", full ? full : "",
                             full ? "; " : "");
        eg_buf_done(&b);
        return -ENOENT;
}

/* 1 when ns/name changed, 0 when it already was so. The file changes first; when the record
 * of it cannot be taken, it is changed back: no suspension goes unaudited. */
static int set_one(struct eg_reconciler *r, const char *ns, const char *name, bool on, const char *reason,
                   const char *actor, struct eg_error *err) {
        const char *dir = r->opt.state_dir;
        int was = eg_suspension_read(dir, ns, name, NULL);
        if (was < 0 || (was > 0) == on)
                return was < 0 ? was : 0;
        int k = on ? suspension_write(dir, ns, name, reason, actor) : suspension_remove(dir, ns, name);
        if (k < 0) {
                eg_error_set(err, "cannot %s %s/%s: %s", on ? "suspend" : "resume", ns, name, strerror(-k));
                return k;
        }
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", ns, name);
        struct eg_decision d = {.cluster = cluster,
                                .kind = on ? "suspend" : "resume",
                                .reason = reason,
                                .outcome = "ok",
                                .actor = actor};
        k = cluster ? eg_journal_record(r->journal, &d, err) : -ENOMEM;
        if (k < 0) {
                (void)(on ? suspension_remove(dir, ns, name) : suspension_write(dir, ns, name, reason, actor));
                return k;
        }
        /* taken up at the next pass, whatever back-off it was in */
        struct cluster_track *t = on ? NULL : track_get(r, ns, name);
        if (t)
                t->next_attempt_ms = 0;
        return 1;
}

int eg_reconciler_set_suspended(struct eg_reconciler *r, const char *ns, const char *name, bool on, const char *reason,
                                const char *actor, struct eg_error *err) {
        if (!r->opt.state_dir) {
                eg_error_set(err, "no state directory to keep the suspension in");
                return -EINVAL;
        }
        struct known k = {0};
        int e = known_load(r, ns, &k, err);
        if (e < 0)
                return e;
        _cleanup_free_ char *full = ns && name ? eg_strdup_printf("%s/%s", ns, name) : NULL;
        int changed = 0;
        if (ns && name && !full)
                e = -ENOMEM;
        else if ((full && !known_has(&k, full)) || k.n == 0)
                e = unknown_cluster(&k, full, err);
        else if (full)
                changed = e = set_one(r, ns, name, on, reason, actor, err);
        for (size_t i = 0; !full && e >= 0 && i < k.n; i++) {
                char *slash = strchr(k.v[i], '/');
                *slash = 0;
                e = set_one(r, k.v[i], slash + 1, on, reason, actor, err);
                *slash = '/';
                changed += e > 0;
        }
        known_done(&k);
        return e < 0 ? e : changed;
}
