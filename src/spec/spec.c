/* spec: the desired set (objects, diagnostics, cross-file checks) and small model helpers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "spec-internal.h"

/* More than this per document is noise: the first ones tell what is wrong. */
#define MAX_DIAGS_PER_DOCUMENT 100

static const char *const kind_names[_EG_KIND_MAX] = {
        [EG_KIND_CLUSTER] = "EtcdCluster",
        [EG_KIND_BACKUP] = "EtcdBackup",
        [EG_KIND_RESTORE] = "EtcdRestore",
};

const char *eg_kind_to_string(enum eg_kind k) { return (unsigned)k < _EG_KIND_MAX ? kind_names[k] : NULL; }

int eg_kind_from_string(const char *s, enum eg_kind *ret) {
        for (int k = 0; s && k < _EG_KIND_MAX; k++)
                if (strcmp(s, kind_names[k]) == 0) {
                        *ret = (enum eg_kind)k;
                        return 0;
                }
        return -EINVAL;
}

const char *eg_storage_type_to_string(enum eg_storage_type t) {
        switch (t) {
        case EG_STORAGE_S3:
                return "S3";
        case EG_STORAGE_ABS:
                return "ABS";
        case EG_STORAGE_GCS:
                return "GCS";
        case EG_STORAGE_OSS:
                return "OSS";
        case EG_STORAGE_FILE:
                return "File";
        }
        return NULL;
}

/* ---- semantic versions ---- */

static int parse_number(const char **p, int64_t *ret) {
        const char *s = *p;
        if (*s < '0' || *s > '9')
                return -EINVAL;
        if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
                return -EINVAL; /* no leading zeros (semver 2.0.0, rule 2) */
        int64_t v = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (INT64_MAX - (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (*s - '0');
        }
        *p = s;
        *ret = v;
        return 0;
}

/* Dot-separated, non-empty identifiers of [0-9A-Za-z-]. */
static int parse_identifiers(const char **p) {
        const char *s = *p;
        for (;;) {
                size_t n = strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");
                if (n == 0)
                        return -EINVAL;
                s += n;
                if (*s != '.')
                        break;
                s++;
        }
        *p = s;
        return 0;
}

int eg_semver_parse(const char *s, struct eg_semver *ret) {
        struct eg_semver v;
        if (!s)
                return -EINVAL;
        if (*s == 'v')
                s++;
        if (parse_number(&s, &v.major) < 0 || *s++ != '.' || parse_number(&s, &v.minor) < 0 || *s++ != '.' ||
            parse_number(&s, &v.patch) < 0)
                return -EINVAL;
        if (*s == '-') {
                s++;
                if (parse_identifiers(&s) < 0)
                        return -EINVAL;
        }
        if (*s == '+') {
                s++;
                if (parse_identifiers(&s) < 0)
                        return -EINVAL;
        }
        if (*s)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int cmp64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

int eg_semver_compare(const struct eg_semver *a, const struct eg_semver *b) {
        int c = cmp64(a->major, b->major);
        if (c == 0)
                c = cmp64(a->minor, b->minor);
        if (c == 0)
                c = cmp64(a->patch, b->patch);
        return c;
}

/* ---- diagnostics ---- */

char *eg_diag_format(const struct eg_diag *d) {
        if (d->field)
                return eg_strdup_printf("%s:%u:%u: %s: %s", d->path, d->line, d->column, d->field, d->message);
        return eg_strdup_printf("%s:%u:%u: %s", d->path, d->line, d->column, d->message);
}

void eg_diag_to_error(const struct eg_diag *d, struct eg_error *err) {
        eg_error_set_at(err, d->path && *d->path ? d->path : NULL, d->line, d->column, "%s%s%s",
                        d->field ? d->field : "", d->field ? ": " : "", d->message);
}

void eg_diag_done(struct eg_diag *d) {
        free(d->path);
        free(d->field);
        free(d->message);
        free(d->namespace);
        free(d->name);
}

static bool key_is_plain(const char *k) {
        if (!*k)
                return false;
        for (const char *p = k; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
                      *p == '-'))
                        return false;
        return true;
}

static int fpath_render_into(struct eg_buf *b, const struct eg_fpath *p) {
        if (!p)
                return 0;
        int r = fpath_render_into(b, p->parent);
        if (r < 0)
                return r;
        if (!p->key)
                return eg_buf_printf(b, "[%zu]", p->index);
        if (key_is_plain(p->key))
                return eg_buf_printf(b, "%s%s", p->parent ? "." : "", p->key);
        r = eg_buf_puts(b, "[\"");
        for (const char *c = p->key; r >= 0 && *c; c++)
                r = *c == '"' || *c == '\\' ? eg_buf_printf(b, "\\%c", *c) : eg_buf_append(b, c, 1);
        return r < 0 ? r : eg_buf_puts(b, "\"]");
}

char *eg_fpath_render(const struct eg_fpath *p) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        if (fpath_render_into(&b, p) < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

void eg_dctx_vreport(struct eg_dctx *c, enum eg_severity sev, unsigned line, unsigned column,
                     const struct eg_fpath *field, const char *fmt, va_list ap) {
        if (sev == EG_SEVERITY_ERROR)
                c->n_errors++;
        if (c->truncated || c->oom)
                return;
        if (c->n_diags == c->alloc) {
                size_t n = c->alloc ? c->alloc * 2 : 4;
                struct eg_diag *p = realloc(c->diags, n * sizeof(*p));
                if (!p) {
                        c->oom = -ENOMEM;
                        return;
                }
                c->diags = p;
                c->alloc = n;
        }
        struct eg_diag *d = &c->diags[c->n_diags];
        *d = (struct eg_diag){.severity = sev, .line = line, .column = column};
        d->path = strdup(c->path);
        if (c->n_diags + 1 == MAX_DIAGS_PER_DOCUMENT) {
                d->severity = EG_SEVERITY_ERROR;
                d->message = eg_strdup_printf("more than %d problems in this document; the rest are not shown",
                                              MAX_DIAGS_PER_DOCUMENT - 1);
                c->truncated = true;
        } else {
                if (field)
                        d->field = eg_fpath_render(field);
                if (vasprintf(&d->message, fmt, ap) < 0)
                        d->message = NULL;
        }
        c->n_diags++;
        if (!d->path || !d->message || (field && !d->field && !c->truncated))
                c->oom = -ENOMEM;
}

void eg_dctx_report(struct eg_dctx *c, enum eg_severity sev, unsigned line, unsigned column,
                    const struct eg_fpath *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_dctx_vreport(c, sev, line, column, field, fmt, ap);
        va_end(ap);
}

void eg_dctx_done(struct eg_dctx *c) {
        for (size_t i = 0; i < c->n_diags; i++)
                eg_diag_done(&c->diags[i]);
        free(c->diags);
        c->diags = NULL;
        c->n_diags = c->alloc = 0;
}

/* ---- objects and the set ---- */

static void s3_done(struct eg_s3_source *s) {
        free(s->path);
        free(s->aws_secret);
        free(s->endpoint);
}

void eg_object_free(struct eg_object *o) {
        if (!o)
                return;
        free(o->origin.path);
        free(o->origin.blob);
        free(o->origin.commit);
        free(o->meta.name);
        free(o->meta.namespace);
        json_decref(o->meta.labels);
        json_decref(o->meta.annotations);
        switch (o->kind) {
        case EG_KIND_CLUSTER: {
                struct eg_cluster_spec *c = &o->cluster;
                free(c->version);
                free(c->repository);
                if (c->pod) {
                        struct eg_pod_policy *p = c->pod;
                        json_decref(p->labels);
                        json_decref(p->node_selector);
                        json_decref(p->affinity);
                        json_decref(p->resources);
                        json_decref(p->tolerations);
                        json_decref(p->etcd_env);
                        json_decref(p->persistent_volume_claim_spec);
                        json_decref(p->annotations);
                        json_decref(p->security_context);
                        free(p->busybox_image);
                        free(p->cluster_domain);
                        free(p);
                }
                if (c->tls) {
                        free(c->tls->peer_secret);
                        free(c->tls->server_secret);
                        free(c->tls->operator_secret);
                        free(c->tls);
                }
                break;
        }
        case EG_KIND_BACKUP: {
                struct eg_backup_spec *b = &o->backup;
                for (size_t i = 0; b->etcd_endpoints && b->etcd_endpoints[i]; i++)
                        free(b->etcd_endpoints[i]);
                free(b->etcd_endpoints);
                free(b->etcd_cluster_name);
                free(b->schedule);
                s3_done(&b->s3);
                free(b->file.path);
                free(b->client_tls_secret);
                break;
        }
        case EG_KIND_RESTORE: {
                struct eg_restore_spec *r = &o->restore;
                free(r->etcd_cluster_name);
                s3_done(&r->s3);
                free(r->file.path);
                free(r->object);
                break;
        }
        default:
                break;
        }
        json_decref(o->document);
        free(o);
}

int eg_desired_set_new(struct eg_desired_set **ret) {
        struct eg_desired_set *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void eg_desired_set_free(struct eg_desired_set *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_objects; i++)
                eg_object_free(s->objects[i]);
        free(s->objects);
        for (size_t i = 0; i < s->n_diags; i++)
                eg_diag_done(&s->diags[i]);
        free(s->diags);
        free(s->revision);
        eg_sha256_free(s->content_hash);
        free(s);
}

/* Arrays hold 8, 16, 32... entries: one is full exactly when its count is one of those. */
static int grow(void **array, size_t n, size_t size) {
        if (n != 0 && (n < 8 || (n & (n - 1)) != 0))
                return 0;
        size_t cap = n ? n * 2 : 8;
        void *p = realloc(*array, cap * size);
        if (!p)
                return -ENOMEM;
        *array = p;
        return 0;
}

int eg_set_add_object(struct eg_desired_set *s, struct eg_object *o) {
        int r = grow((void **)&s->objects, s->n_objects, sizeof(*s->objects));
        if (r < 0)
                return r;
        s->objects[s->n_objects++] = o;
        return 0;
}

static int add_diag(struct eg_desired_set *s, struct eg_diag *d) {
        int r = grow((void **)&s->diags, s->n_diags, sizeof(*s->diags));
        if (r < 0)
                return r;
        s->diags[s->n_diags++] = *d;
        if (d->severity == EG_SEVERITY_ERROR)
                s->n_errors++;
        return 0;
}

int eg_set_take_diags(struct eg_desired_set *s, struct eg_dctx *c) {
        size_t i = 0;
        int r = 0;
        for (; i < c->n_diags; i++) {
                r = add_diag(s, &c->diags[i]);
                if (r < 0)
                        break;
        }
        /* what was not moved is freed by eg_dctx_done */
        if (i > 0 && i < c->n_diags)
                memmove(c->diags, c->diags + i, (c->n_diags - i) * sizeof(*c->diags));
        c->n_diags -= i;
        return r;
}

int eg_set_hash_file(struct eg_desired_set *s, const char *path, const void *data, size_t len) {
        if (!s->content_hash) {
                int r = eg_sha256_new(&s->content_hash);
                if (r < 0)
                        return r;
        }
        /* length-prefixed so that (path, content) pairs cannot run into each other */
        uint64_t lens[2] = {strlen(path), len};
        eg_sha256_update(s->content_hash, &lens[0], sizeof(lens[0]));
        eg_sha256_update(s->content_hash, path, lens[0]);
        eg_sha256_update(s->content_hash, &lens[1], sizeof(lens[1]));
        eg_sha256_update(s->content_hash, data, len);
        return 0;
}

int eg_desired_set_add_file_error(struct eg_desired_set *s, const char *path, const char *fmt, ...) {
        struct eg_diag d = {.severity = EG_SEVERITY_ERROR, .line = 1, .column = 1};
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&d.message, fmt, ap) < 0)
                d.message = NULL;
        va_end(ap);
        d.path = strdup(path);
        int r = d.path && d.message ? add_diag(s, &d) : -ENOMEM;
        if (r < 0) {
                eg_diag_done(&d);
                return r;
        }
        s->n_invalid++;
        return 0;
}

/* ---- finishing: duplicates, order, revision ---- */

struct ranked {
        void *item;
        size_t index;
};

static int cmp_position(const char *pa, unsigned la, unsigned ca, size_t ia, const char *pb, unsigned lb, unsigned cb,
                        size_t ib) {
        int c = strcmp(pa, pb);
        if (c)
                return c;
        if (la != lb)
                return la < lb ? -1 : 1;
        if (ca != cb)
                return ca < cb ? -1 : 1;
        return ia < ib ? -1 : ia > ib;
}

static int cmp_objects(const void *a, const void *b) {
        const struct ranked *x = a, *y = b;
        const struct eg_object *o = x->item, *p = y->item;
        return cmp_position(o->origin.path, o->origin.line, o->origin.column, x->index, p->origin.path, p->origin.line,
                            p->origin.column, y->index);
}

static int cmp_diags(const void *a, const void *b) {
        const struct ranked *x = a, *y = b;
        const struct eg_diag *d = x->item, *e = y->item;
        return cmp_position(d->path, d->line, d->column, x->index, e->path, e->line, e->column, y->index);
}

/* qsort is not stable: rank by original index so equal positions keep their order. */
static int stable_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n < 2)
                return 0;
        struct ranked *r = calloc(n, sizeof(*r));
        _cleanup_free_ char *copy = malloc(n * size);
        if (!r || !copy) {
                free(r);
                return -ENOMEM;
        }
        memcpy(copy, base, n * size);
        for (size_t i = 0; i < n; i++)
                r[i] = (struct ranked){copy + i * size, i};
        qsort(r, n, sizeof(*r), cmp);
        for (size_t i = 0; i < n; i++)
                memcpy((char *)base + i * size, r[i].item, size);
        free(r);
        return 0;
}

static int cmp_objects_direct(const void *a, const void *b) {
        struct ranked x = {*(struct eg_object *const *)((const struct ranked *)a)->item,
                           ((const struct ranked *)a)->index};
        struct ranked y = {*(struct eg_object *const *)((const struct ranked *)b)->item,
                           ((const struct ranked *)b)->index};
        return cmp_objects(&x, &y);
}

static int report_duplicate(struct eg_desired_set *s, const struct eg_object *o, const struct eg_object *other) {
        struct eg_diag d = {.severity = EG_SEVERITY_ERROR,
                            .line = o->origin.line,
                            .column = o->origin.column,
                            .has_object = true,
                            .kind = o->kind};
        d.path = strdup(o->origin.path);
        d.field = strdup("metadata.name");
        d.namespace = strdup(o->meta.namespace);
        d.name = strdup(o->meta.name);
        d.message = eg_strdup_printf("duplicate %s %s/%s: also defined at %s:%u:%u", eg_kind_to_string(o->kind),
                                     o->meta.namespace, o->meta.name, other->origin.path, other->origin.line,
                                     other->origin.column);
        int r = d.path && d.field && d.namespace && d.name && d.message ? add_diag(s, &d) : -ENOMEM;
        if (r < 0)
                eg_diag_done(&d);
        return r;
}

static int remove_duplicates(struct eg_desired_set *s) {
        json_t *seen = json_object();
        bool *dup = calloc(s->n_objects ? s->n_objects : 1, sizeof(bool));
        int r = seen && dup ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < s->n_objects; i++) {
                const struct eg_object *o = s->objects[i];
                _cleanup_free_ char *key = eg_strdup_printf("%d/%s/%s", (int)o->kind, o->meta.namespace, o->meta.name);
                if (!key) {
                        r = -ENOMEM;
                        break;
                }
                json_t *v = json_object_get(seen, key);
                if (!v) {
                        if (json_object_set_new(seen, key, json_integer((json_int_t)i)) < 0)
                                r = -ENOMEM;
                        continue;
                }
                size_t f = (size_t)json_integer_value(v);
                if (!dup[f]) {
                        dup[f] = true;
                        r = report_duplicate(s, s->objects[f], o);
                }
                dup[i] = true;
                if (r >= 0)
                        r = report_duplicate(s, o, s->objects[f]);
        }
        if (r >= 0) {
                size_t k = 0;
                for (size_t i = 0; i < s->n_objects; i++) {
                        if (dup[i]) {
                                s->n_invalid++;
                                eg_object_free(s->objects[i]);
                        } else
                                s->objects[k++] = s->objects[i];
                }
                s->n_objects = k;
        }
        json_decref(seen);
        free(dup);
        return r;
}

int eg_desired_set_finish(struct eg_desired_set *s) {
        int r = stable_sort(s->objects, s->n_objects, sizeof(*s->objects), cmp_objects_direct);
        if (r < 0)
                return r;
        r = remove_duplicates(s);
        if (r < 0)
                return r;
        r = stable_sort(s->diags, s->n_diags, sizeof(*s->diags), cmp_diags);
        if (r < 0)
                return r;
        if (!s->revision) {
                if (!s->content_hash) {
                        r = eg_sha256_new(&s->content_hash);
                        if (r < 0)
                                return r;
                }
                char hex[65];
                eg_sha256_final_hex(s->content_hash, hex);
                s->content_hash = NULL;
                s->revision = eg_strdup_printf("sha256:%s", hex);
                if (!s->revision)
                        return -ENOMEM;
        }
        return 0;
}

const struct eg_object *eg_desired_set_find(const struct eg_desired_set *s, enum eg_kind kind, const char *namespace,
                                            const char *name) {
        for (size_t i = 0; s && i < s->n_objects; i++) {
                const struct eg_object *o = s->objects[i];
                if (o->kind == kind && strcmp(o->meta.namespace, namespace) == 0 && strcmp(o->meta.name, name) == 0)
                        return o;
        }
        return NULL;
}

bool eg_desired_set_object_has_errors(const struct eg_desired_set *s, enum eg_kind kind, const char *namespace,
                                      const char *name) {
        for (size_t i = 0; s && i < s->n_diags; i++) {
                const struct eg_diag *d = &s->diags[i];
                if (d->severity == EG_SEVERITY_ERROR && d->has_object && d->kind == kind && d->namespace && d->name &&
                    strcmp(d->namespace, namespace) == 0 && strcmp(d->name, name) == 0)
                        return true;
        }
        return false;
}
