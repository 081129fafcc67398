/* The manifest rules: typed decoding, defaults and validation of each document.
 *
 * Checks, per field (E = error, W = warning; "extension" = not in etcd-operator v0.9.4):
 *   apiVersion                 E required, exactly etcd.database.coreos.com/v1beta2
 *   kind                       E required, EtcdCluster | EtcdBackup | EtcdRestore
 *   metadata.name              E required, DNS-1123 label, at most 52 characters
 *   metadata.namespace         E DNS-1123 label, at most 63 characters; default "default"
 *   metadata.labels            E string -> string, Kubernetes label key/value syntax
 *   metadata.annotations       E string -> string, Kubernetes annotation key syntax
 *   metadata.generateName      E not supported (objects need a stable name)
 *   (any) unknown field        W (E with --strict); known Kubernetes bookkeeping fields
 *                                such as metadata.uid, metadata.resourceVersion and
 *                                status are accepted and ignored
 *   (any) duplicate key        E
 *   (any) integer literal      E outside int64; .inf/.nan are refused anywhere
 * EtcdCluster spec:
 *   size                       E required, integer >= 1; W above 7
 *   version                    E semantic version ("3.4.23"), "v" prefix stripped; default 3.2.13
 *   repository                 E non-empty, no whitespace; default quay.io/coreos/etcd
 *   paused                     E boolean
 *   pod.labels                 E label syntax; keys "app" and "etcd_*" reserved
 *   pod.annotations            E annotation syntax; key "etcd.version" reserved
 *   pod.nodeSelector           E string -> string
 *   pod.affinity, resources, persistentVolumeClaimSpec, securityContext
 *                              E mappings (passed through as JSON)
 *   pod.tolerations            E sequence of mappings
 *   pod.etcdEnv                E sequence of {name (required), value (string), valueFrom}
 *   pod.antiAffinity           E boolean; W when affinity is also set (ignored then)
 *   pod.busyboxImage           E non-empty, no whitespace; default busybox:1.28.0-glibc
 *   pod.DNSTimeoutInSecond     E integer >= 0
 *   pod.ClusterDomain          E "" or "." followed by a DNS subdomain
 *   TLS.static.member.peerSecret, .serverSecret, TLS.static.operatorSecret
 *                              E Secret names (DNS-1123 subdomain); operatorSecret and
 *                                member.serverSecret require each other
 * EtcdBackup spec:
 *   storageType                E required, S3 | ABS | GCS | OSS | File (File: extension)
 *   etcdEndpoints              E sequence of http(s) URLs
 *   etcdCluster.name           E extension: the cluster to back up, DNS-1123 label;
 *                                exactly one of etcdEndpoints / etcdCluster.name
 *   backupPolicy.timeoutInSecond        E integer >= 0; 0 or absent means 60
 *   backupPolicy.backupIntervalInSecond E integer >= 0 (0 = one shot)
 *   backupPolicy.maxBackups             E integer >= 0 (0 = unlimited); W on a one-shot backup
 *   schedule                   E extension: 5-field cron (minute hour day-of-month month
 *                                day-of-week; *, lists, ranges, steps, JAN-DEC, SUN-SAT);
 *                                not together with backupIntervalInSecond
 *   s3.path                    E required for S3, "<bucket>/<key>", S3 bucket naming
 *   s3.endpoint                E http(s) URL; s3.awsSecret: Secret name; forcePathStyle: boolean
 *   abs|gcs|oss.path           E required for that storage type, "<bucket>/<key>"
 *   file.path                  E extension: required for File, an absolute path
 *   clientTLSSecret            E Secret name
 *   a storage block of another type    W ignored
 * EtcdRestore spec:
 *   etcdCluster.name           E required, DNS-1123 label
 *   backupStorageType          E required, S3 | File
 *   s3, file                   as for EtcdBackup (the path names the backup)
 *   revision                   E extension: integer >= 0 (0 = newest)
 *   object                     E extension: non-empty string; not together with revision
 *   overwrite                  E extension: boolean
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "etcd-gitops/util.h"
#include "spec-internal.h"

#define DEFAULT_VERSION "3.2.13"
#define DEFAULT_REPOSITORY "quay.io/coreos/etcd"
#define DEFAULT_BUSYBOX "busybox:1.28.0-glibc"
#define DEFAULT_NAMESPACE "default"
#define DEFAULT_BACKUP_TIMEOUT 60
#define MAX_RECOMMENDED_SIZE 7

struct dec {
        struct eg_dctx *c;
        struct eg_object *o;
        bool has_storage_type;
};

typedef void (*field_fn)(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *target);

struct field {
        const char *name;
        field_fn fn;    /* NULL: known and ignored */
        size_t offset;  /* of the target member inside the decoded struct */
};

static void err(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void err(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_dctx_vreport(d->c, EG_SEVERITY_ERROR, n->line, n->column, p, fmt, ap);
        va_end(ap);
}

static void warn(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void warn(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_dctx_vreport(d->c, EG_SEVERITY_WARNING, n->line, n->column, p, fmt, ap);
        va_end(ap);
}

/* "must be X, got Y", with a hint when Y is only missing quotes. */
static void err_got(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *want) {
        _cleanup_free_ char *got = eg_yn_describe(n);
        bool quote_hint = strstr(want, "string") && (n->type == EG_YN_INT || n->type == EG_YN_FLOAT || n->type == EG_YN_BOOL);
        err(d, n, p, "must be %s, got %s%s", want, got ? got : "?", quote_hint ? " (quote it to make it a string)" : "");
}

/* Integers out of range and non-finite numbers were reported by the JSON conversion. */
static bool reported_already(const struct eg_yn *n) {
        return (n->type == EG_YN_INT && n->overflow) || (n->type == EG_YN_FLOAT && !isfinite(n->real));
}

static void set_str(char **dst, const char *s) {
        free(*dst);
        *dst = strdup(s);
}

static bool get_string(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, const char *want) {
        if (v->type == EG_YN_STR)
                return true;
        if (!reported_already(v))
                err_got(d, v, p, want ? want : "a string");
        return false;
}

static void f_string(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (get_string(d, v, p, NULL))
                set_str(t, v->text);
}

static void f_bool(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type == EG_YN_BOOL)
                *(bool *)t = v->boolean;
        else if (!reported_already(v))
                err_got(d, v, p, "a boolean (true or false)");
}

static bool get_int(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, int64_t min, int64_t *ret) {
        if (v->type == EG_YN_INT && !v->overflow && v->integer >= min) {
                *ret = v->integer;
                return true;
        }
        if (reported_already(v))
                return false;
        char want[64];
        snprintf(want, sizeof(want), "an integer ≥ %lld", (long long)min);
        err_got(d, v, p, want);
        return false;
}

static void f_int_nonneg(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        get_int(d, v, p, 0, t);
}

/* ---- syntax of names ---- */

static bool is_alnum_lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static bool is_alnum(char c) { return is_alnum_lower(c) || (c >= 'A' && c <= 'Z'); }

static bool dns_label(const char *s, size_t len) {
        if (len == 0 || !is_alnum_lower(s[0]) || !is_alnum_lower(s[len - 1]))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_alnum_lower(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool dns_subdomain(const char *s) {
        size_t len = strlen(s);
        if (len == 0 || len > 253)
                return false;
        for (const char *label = s;;) {
                const char *dot = strchr(label, '.');
                size_t n = dot ? (size_t)(dot - label) : strlen(label);
                if (n > 63 || !dns_label(label, n))
                        return false;
                if (!dot)
                        return true;
                label = dot + 1;
        }
}

/* Kubernetes "qualified name": [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63. */
static bool qualified_name(const char *s, size_t len) {
        if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
                        return false;
        return true;
}

/* Label and annotation keys: an optional DNS subdomain prefix and '/', then a name. */
static bool label_key(const char *k) {
        const char *slash = strchr(k, '/');
        if (!slash)
                return qualified_name(k, strlen(k));
        _cleanup_free_ char *prefix = strndup(k, (size_t)(slash - k));
        return prefix && dns_subdomain(prefix) && qualified_name(slash + 1, strlen(slash + 1));
}

static bool label_value(const char *v) { return !*v || qualified_name(v, strlen(v)); }

static bool has_space(const char *s) { return strpbrk(s, " \t\r\n\v\f") != NULL; }

static bool is_http_url(const char *s) {
        const char *host = eg_str_has_prefix(s, "http://") ? s + 7 : eg_str_has_prefix(s, "https://") ? s + 8 : NULL;
        return host && *host && *host != '/' && !has_space(s);
}

/* ---- generic field walking ---- */

static const struct field *find_field(const struct field *fields, const char *name) {
        for (const struct field *f = fields; f->name; f++)
                if (strcmp(f->name, name) == 0)
                        return f;
        return NULL;
}

static bool want_map(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p) {
        if (v->type == EG_YN_MAP)
                return true;
        if (!reported_already(v))
                err_got(d, v, p, "a mapping");
        return false;
}

/* Decodes the known keys of a mapping into target; null values count as absent. */
static bool decode_map(struct dec *d, const struct eg_yn *m, json_t *jm, const struct eg_fpath *p,
                       const struct field *fields, void *target) {
        if (!want_map(d, m, p))
                return false;
        for (size_t i = 0; i + 1 < m->n_items; i += 2) {
                const struct eg_yn *k = m->items[i], *v = m->items[i + 1];
                if (k->type == EG_YN_MAP || k->type == EG_YN_SEQ || k->type == EG_YN_NULL)
                        continue; /* reported by the JSON conversion */
                struct eg_fpath kp = {p, k->text, 0};
                const struct field *f = find_field(fields, k->text);
                if (!f) {
                        const struct field *near = NULL;
                        for (const struct field *g = fields; g->name && !near; g++)
                                if (strcasecmp(g->name, k->text) == 0)
                                        near = g;
                        enum eg_severity sev = d->c->opt && d->c->opt->strict ? EG_SEVERITY_ERROR : EG_SEVERITY_WARNING;
                        if (near)
                                eg_dctx_report(d->c, sev, k->line, k->column, &kp, "unknown field (did you mean \"%s\"?)",
                                               near->name);
                        else
                                eg_dctx_report(d->c, sev, k->line, k->column, &kp, "unknown field");
                        continue;
                }
                if (!f->fn || v->type == EG_YN_NULL)
                        continue;
                f->fn(d, v, jm ? json_object_get(jm, k->text) : NULL, &kp, (char *)target + f->offset);
        }
        return true;
}

/* The value under key; NULL when absent or null, which mean the same everywhere. */
static const struct eg_yn *map_get(const struct eg_yn *m, const char *key) {
        if (!m || m->type != EG_YN_MAP)
                return NULL;
        for (size_t i = 0; i + 1 < m->n_items; i += 2)
                if (m->items[i]->type != EG_YN_MAP && m->items[i]->type != EG_YN_SEQ && m->items[i]->text &&
                    strcmp(m->items[i]->text, key) == 0)
                        return m->items[i + 1]->type == EG_YN_NULL ? NULL : m->items[i + 1];
        return NULL;
}

static void required(struct dec *d, const struct eg_yn *m, const struct eg_fpath *p, const char *key, const char *why) {
        struct eg_fpath kp = {p, key, 0};
        err(d, m, &kp, "required%s%s", why ? " " : "", why ? why : "");
}

static void keep_json(json_t **dst, json_t *j) {
        json_decref(*dst);
        *dst = json_incref(j);
}

/* A mapping or sequence passed through as JSON. */
static void f_json_map(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (want_map(d, v, p))
                keep_json(t, j);
}

static void f_json_seq_of_maps(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type != EG_YN_SEQ) {
                if (!reported_already(v))
                        err_got(d, v, p, "a sequence");
                return;
        }
        bool ok = true;
        for (size_t i = 0; i < v->n_items; i++) {
                struct eg_fpath ip = {p, NULL, i};
                ok = want_map(d, v->items[i], &ip) && ok;
        }
        if (ok)
                keep_json(t, j);
}

enum string_map_rules { MAP_LABELS, MAP_ANNOTATIONS, MAP_POD_LABELS, MAP_POD_ANNOTATIONS, MAP_SELECTOR };

static void string_map(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, json_t **dst,
                       enum string_map_rules rules) {
        if (!want_map(d, v, p))
                return;
        size_t errors = d->c->n_errors;
        for (size_t i = 0; i + 1 < v->n_items; i += 2) {
                const struct eg_yn *k = v->items[i], *val = v->items[i + 1];
                if (k->type == EG_YN_MAP || k->type == EG_YN_SEQ || k->type == EG_YN_NULL)
                        continue;
                struct eg_fpath kp = {p, k->text, 0};
                bool annotations = rules == MAP_ANNOTATIONS || rules == MAP_POD_ANNOTATIONS;
                if (k->type != EG_YN_STR)
                        err_got(d, k, &kp, "a string key");
                else if (!label_key(k->text))
                        err(d, k, &kp, "%s key must be a name of letters, digits, '-', '_' and '.' "
                                       "(at most 63, starting and ending with a letter or digit), "
                                       "optionally prefixed by a DNS subdomain and '/'",
                            annotations ? "an annotation" : "a label");
                else if (rules == MAP_POD_LABELS && (strcmp(k->text, "app") == 0 || eg_str_has_prefix(k->text, "etcd_")))
                        err(d, k, &kp, "label \"%s\" is reserved: etcd-gitops sets \"app\" and \"etcd_*\" labels itself",
                            k->text);
                else if (rules == MAP_POD_ANNOTATIONS && strcmp(k->text, "etcd.version") == 0)
                        err(d, k, &kp, "annotation \"etcd.version\" is reserved: etcd-gitops sets it itself");
                if (val->type != EG_YN_STR) {
                        if (!reported_already(val))
                                err_got(d, val, &kp, "a string");
                } else if (!annotations && !label_value(val->text))
                        err(d, val, &kp, "a label value must be empty or at most 63 letters, digits, '-', '_' "
                                         "and '.', starting and ending with a letter or digit");
                else if (rules == MAP_ANNOTATIONS && k->type == EG_YN_STR &&
                         strcmp(k->text, EG_ANN_AUTO_RECOVER_AFTER) == 0) {
                        int64_t ms;
                        if (eg_parse_duration_ms(val->text, &ms) < 0 || ms < EG_AUTO_RECOVER_MIN_MS)
                                err(d, val, &kp, "a duration of at least 30s, such as 10m: how long quorum must have "
                                                 "been lost before a new cluster is forced from the most advanced "
                                                 "survivor");
                }
        }
        if (d->c->n_errors == errors)
                keep_json(dst, j);
}

static void f_labels(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_LABELS);
}
static void f_annotations(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_ANNOTATIONS);
}
static void f_pod_labels(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_POD_LABELS);
}
static void f_pod_annotations(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_POD_ANNOTATIONS);
}
static void f_selector(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_SELECTOR);
}

static void f_image(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        if (!*v->text || has_space(v->text))
                err_got(d, v, p, "an image reference without spaces");
        else
                set_str(t, v->text);
}

static void f_secret(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, "a Secret name"))
                return;
        if (!dns_subdomain(v->text))
                err_got(d, v, p, "a Secret name (lowercase letters, digits, '-' and '.', at most 253)");
        else
                set_str(t, v->text);
}

static void f_label_name(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, char **dst, size_t max) {
        if (!get_string(d, v, p, NULL))
                return;
        if (v->len > max)
                err(d, v, p, "must be at most %zu characters, got %zu", max, v->len);
        else if (!dns_label(v->text, v->len))
                err_got(d, v, p, "a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
                                 "with a letter or digit)");
        else
                set_str(dst, v->text);
}

static void f_name(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        f_label_name(d, v, p, t, EG_SPEC_MAX_NAME);
}

static void f_namespace(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        f_label_name(d, v, p, t, 63);
}

static void f_absolute_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        if (v->text[0] != '/')
                err_got(d, v, p, "an absolute path");
        else
                set_str(t, v->text);
}

static void f_url(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        if (!is_http_url(v->text))
                err_got(d, v, p, "an http:// or https:// URL");
        else
                set_str(t, v->text);
}

/* "<bucket>/<key>" with S3 bucket naming (3-63 of a-z, 0-9, '.', '-'). */
static void f_bucket_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        const char *slash = strchr(v->text, '/');
        size_t blen = slash ? (size_t)(slash - v->text) : 0;
        bool ok = slash && slash[1] && blen >= 3 && blen <= 63 && is_alnum_lower(v->text[0]) &&
                  is_alnum_lower(v->text[blen - 1]);
        for (size_t i = 0; ok && i < blen; i++)
                ok = is_alnum_lower(v->text[i]) || v->text[i] == '-' || v->text[i] == '.';
        if (!ok)
                err_got(d, v, p, "\"<bucket>/<key>\" (a bucket name of 3-63 lowercase letters, digits, '.' and '-', "
                                 "then a non-empty key)");
        else
                set_str(t, v->text);
}

/* ---- cron (extension: EtcdBackup spec.schedule) ---- */

static void f_schedule(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        static const char *const names[] = {"minute", "hour", "day of month", "month", "day of week"};
        struct eg_cron c;
        int bad = -1, r = eg_cron_parse_at(v->text, &c, &bad);
        if (r == -ENOMEM) {
                d->c->oom = -ENOMEM;
                return;
        }
        if (r < 0 && bad < 0) {
                err_got(d, v, p, "a cron schedule of 5 fields (minute hour day-of-month month day-of-week)");
                return;
        }
        if (r < 0) {
                /* name the field as written */
                const char *q = v->text;
                for (int i = 0;; i++) {
                        q += strspn(q, " \t");
                        if (i == bad)
                                break;
                        q += strcspn(q, " \t");
                }
                err(d, v, p, "invalid %s field \"%.*s\" in cron schedule", names[bad], (int)strcspn(q, " \t"), q);
                return;
        }
        set_str(t, v->text);
}

/* ---- metadata ---- */

static const struct field metadata_fields[] = {
        {"name", f_name, offsetof(struct eg_metadata, name)},
        {"namespace", f_namespace, offsetof(struct eg_metadata, namespace)},
        {"labels", f_labels, offsetof(struct eg_metadata, labels)},
        {"annotations", f_annotations, offsetof(struct eg_metadata, annotations)},
        {"generateName", NULL, 0},
        {"uid", NULL, 0},
        {"resourceVersion", NULL, 0},
        {"generation", NULL, 0},
        {"creationTimestamp", NULL, 0},
        {"deletionTimestamp", NULL, 0},
        {"deletionGracePeriodSeconds", NULL, 0},
        {"selfLink", NULL, 0},
        {"ownerReferences", NULL, 0},
        {"finalizers", NULL, 0},
        {"managedFields", NULL, 0},
        {"clusterName", NULL, 0},
        {0},
};

static void decode_metadata(struct dec *d, const struct eg_yn *root, const struct eg_yn *m, json_t *jm) {
        struct eg_fpath p = {NULL, "metadata", 0};
        if (!m || m->type == EG_YN_NULL) {
                required(d, root, NULL, "metadata", NULL);
                return;
        }
        if (!decode_map(d, m, jm, &p, metadata_fields, &d->o->meta))
                return;
        const struct eg_yn *gen = map_get(m, "generateName");
        if (gen && gen->type != EG_YN_NULL) {
                struct eg_fpath gp = {&p, "generateName", 0};
                err(d, gen, &gp, "not supported: objects need a stable metadata.name");
        }
        const struct eg_yn *name = map_get(m, "name");
        if (!name || name->type == EG_YN_NULL)
                required(d, m, &p, "name", NULL);
}

/* ---- EtcdCluster ---- */

static void f_size(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_int(d, v, p, 1, t))
                return;
        if (v->integer > MAX_RECOMMENDED_SIZE)
                warn(d, v, p, "%lld members is more than the recommended maximum of %d", (long long)v->integer,
                     MAX_RECOMMENDED_SIZE);
}

static void f_version(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_semver sv;
        if (!get_string(d, v, p, "a version string such as \"3.4.23\""))
                return;
        if (eg_semver_parse(v->text, &sv) < 0)
                err_got(d, v, p, "a semantic version such as \"3.4.23\"");
        else
                set_str(t, v->text + (v->text[0] == 'v'));
}

static void f_cluster_domain(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!get_string(d, v, p, NULL))
                return;
        if (*v->text && (v->text[0] != '.' || !dns_subdomain(v->text + 1)))
                err_got(d, v, p, "empty or a domain starting with '.', such as \".cluster.local\"");
        else
                set_str(t, v->text);
}

static void f_etcd_env(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type != EG_YN_SEQ) {
                if (!reported_already(v))
                        err_got(d, v, p, "a sequence of environment variables");
                return;
        }
        size_t errors = d->c->n_errors;
        for (size_t i = 0; i < v->n_items; i++) {
                const struct eg_yn *e = v->items[i];
                struct eg_fpath ip = {p, NULL, i};
                if (!want_map(d, e, &ip))
                        continue;
                for (size_t k = 0; k + 1 < e->n_items; k += 2) {
                        const struct eg_yn *key = e->items[k], *val = e->items[k + 1];
                        if (key->type != EG_YN_STR)
                                continue;
                        struct eg_fpath kp = {&ip, key->text, 0};
                        if (strcmp(key->text, "name") == 0) {
                                if (get_string(d, val, &kp, NULL) && (!*val->text || strchr(val->text, '=')))
                                        err_got(d, val, &kp, "a non-empty variable name without '='");
                        } else if (strcmp(key->text, "value") == 0) {
                                if (val->type != EG_YN_NULL)
                                        get_string(d, val, &kp, NULL);
                        } else if (strcmp(key->text, "valueFrom") == 0) {
                                if (val->type != EG_YN_NULL)
                                        want_map(d, val, &kp);
                        } else
                                eg_dctx_report(d->c, d->c->opt && d->c->opt->strict ? EG_SEVERITY_ERROR : EG_SEVERITY_WARNING,
                                               key->line, key->column, &kp, "unknown field");
                }
                const struct eg_yn *name = map_get(e, "name");
                if (!name || name->type == EG_YN_NULL)
                        required(d, e, &ip, "name", NULL);
        }
        if (d->c->n_errors == errors)
                keep_json(t, j);
}

#define POD(m) offsetof(struct eg_pod_policy, m)
static const struct field pod_fields[] = {
        {"labels", f_pod_labels, POD(labels)},
        {"nodeSelector", f_selector, POD(node_selector)},
        {"affinity", f_json_map, POD(affinity)},
        {"antiAffinity", f_bool, POD(anti_affinity)},
        {"resources", f_json_map, POD(resources)},
        {"tolerations", f_json_seq_of_maps, POD(tolerations)},
        {"etcdEnv", f_etcd_env, POD(etcd_env)},
        {"persistentVolumeClaimSpec", f_json_map, POD(persistent_volume_claim_spec)},
        {"annotations", f_pod_annotations, POD(annotations)},
        {"busyboxImage", f_image, POD(busybox_image)},
        {"securityContext", f_json_map, POD(security_context)},
        {"DNSTimeoutInSecond", f_int_nonneg, POD(dns_timeout_in_second)},
        {"ClusterDomain", f_cluster_domain, POD(cluster_domain)},
        {0},
};

static void f_pod(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_pod_policy **dst = t;
        if (!*dst) {
                *dst = calloc(1, sizeof(**dst));
                if (!*dst) {
                        d->c->oom = -ENOMEM;
                        return;
                }
        }
        struct eg_pod_policy *pod = *dst;
        if (!decode_map(d, v, j, p, pod_fields, pod))
                return;
        if (!pod->busybox_image)
                set_str(&pod->busybox_image, DEFAULT_BUSYBOX);
        if (!pod->cluster_domain)
                set_str(&pod->cluster_domain, "");
        if (!pod->busybox_image || !pod->cluster_domain)
                d->c->oom = -ENOMEM;
        const struct eg_yn *anti = map_get(v, "antiAffinity"), *aff = map_get(v, "affinity");
        if (pod->anti_affinity && aff && aff->type != EG_YN_NULL) {
                struct eg_fpath ap = {p, "antiAffinity", 0};
                warn(d, anti, &ap, "ignored because affinity is set");
        }
}

static const struct field member_fields[] = {
        {"peerSecret", f_secret, offsetof(struct eg_tls_policy, peer_secret)},
        {"serverSecret", f_secret, offsetof(struct eg_tls_policy, server_secret)},
        {0},
};

static void f_member(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        decode_map(d, v, j, p, member_fields, t);
}

static const struct field static_fields[] = {
        {"member", f_member, 0},
        {"operatorSecret", f_secret, offsetof(struct eg_tls_policy, operator_secret)},
        {0},
};

static void f_static(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_tls_policy *tls = t;
        if (!decode_map(d, v, j, p, static_fields, tls))
                return;
        /* Clients need the server's CA and the server checks client certs: both or neither. */
        const struct eg_yn *member = map_get(v, "member");
        const struct eg_yn *server = member && member->type == EG_YN_MAP ? map_get(member, "serverSecret") : NULL;
        const struct eg_yn *op = map_get(v, "operatorSecret");
        bool has_server = server && server->type != EG_YN_NULL, has_op = op && op->type != EG_YN_NULL;
        struct eg_fpath mp = {p, "member", 0}, sp = {&mp, "serverSecret", 0};
        if (has_op && !has_server)
                err(d, member && member->type == EG_YN_MAP ? member : v, &sp,
                    "required when operatorSecret is set (client TLS needs both)");
        else if (has_server && !has_op)
                required(d, v, p, "operatorSecret", "when member.serverSecret is set (client TLS needs both)");
}

static const struct field tls_fields[] = {
        {"static", f_static, 0},
        {0},
};

static void f_tls(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_tls_policy **dst = t;
        if (!*dst) {
                *dst = calloc(1, sizeof(**dst));
                if (!*dst) {
                        d->c->oom = -ENOMEM;
                        return;
                }
        }
        decode_map(d, v, j, p, tls_fields, *dst);
}

#define CLUSTER(m) offsetof(struct eg_cluster_spec, m)
static const struct field cluster_fields[] = {
        {"size", f_size, CLUSTER(size)},
        {"version", f_version, CLUSTER(version)},
        {"repository", f_image, CLUSTER(repository)},
        {"paused", f_bool, CLUSTER(paused)},
        {"pod", f_pod, CLUSTER(pod)},
        {"TLS", f_tls, CLUSTER(tls)},
        {0},
};

static void decode_cluster(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_cluster_spec *c = &d->o->cluster;
        if (decode_map(d, s, js, p, cluster_fields, c)) {
                const struct eg_yn *size = map_get(s, "size");
                if (!size || size->type == EG_YN_NULL)
                        required(d, s, p, "size", "(the number of members, ≥ 1)");
        }
        if (!c->version)
                set_str(&c->version, DEFAULT_VERSION);
        if (!c->repository)
                set_str(&c->repository, DEFAULT_REPOSITORY);
        if (!c->version || !c->repository)
                d->c->oom = -ENOMEM;
}

/* ---- storage (EtcdBackup, EtcdRestore) ---- */

static const struct field s3_fields[] = {
        {"path", f_bucket_path, offsetof(struct eg_s3_source, path)},
        {"awsSecret", f_secret, offsetof(struct eg_s3_source, aws_secret)},
        {"endpoint", f_url, offsetof(struct eg_s3_source, endpoint)},
        {"forcePathStyle", f_bool, offsetof(struct eg_s3_source, force_path_style)},
        {0},
};

static void f_s3(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        decode_map(d, v, j, p, s3_fields, t);
}

static const struct field file_fields[] = {
        {"path", f_absolute_path, offsetof(struct eg_file_source, path)},
        {0},
};

static void f_file(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        decode_map(d, v, j, p, file_fields, t);
}

/* ABS, GCS and OSS blocks are checked but not kept: no store of ours implements them. */
struct other_store {
        char *path, *abs_secret, *gcp_secret, *oss_secret, *endpoint;
};

#define OTHER(m) offsetof(struct other_store, m)
static const struct field other_store_fields[] = {
        {"path", f_bucket_path, OTHER(path)},
        {"absSecret", f_secret, OTHER(abs_secret)},
        {"gcpSecret", f_secret, OTHER(gcp_secret)},
        {"ossSecret", f_secret, OTHER(oss_secret)},
        {"endpoint", f_url, OTHER(endpoint)},
        {0},
};

static void f_other_store(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct other_store scratch = {0};
        decode_map(d, v, j, p, other_store_fields, &scratch);
        free(scratch.path);
        free(scratch.abs_secret);
        free(scratch.gcp_secret);
        free(scratch.oss_secret);
        free(scratch.endpoint);
}

static int storage_from_string(const char *s, enum eg_storage_type *ret) {
        for (enum eg_storage_type t = EG_STORAGE_S3; t <= EG_STORAGE_FILE; t++)
                if (strcmp(s, eg_storage_type_to_string(t)) == 0) {
                        *ret = t;
                        return 0;
                }
        return -EINVAL;
}

static void f_storage_type(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        enum eg_storage_type st;
        bool restore = d->o->kind == EG_KIND_RESTORE;
        const char *want = restore ? "one of S3, File" : "one of S3, ABS, GCS, OSS, File";
        if (!get_string(d, v, p, want))
                return;
        if (storage_from_string(v->text, &st) < 0 ||
            (restore && st != EG_STORAGE_S3 && st != EG_STORAGE_FILE)) {
                err_got(d, v, p, want);
                return;
        }
        *(enum eg_storage_type *)t = st;
        d->has_storage_type = true;
}

static const char *const storage_keys[] = {[EG_STORAGE_S3] = "s3", [EG_STORAGE_ABS] = "abs", [EG_STORAGE_GCS] = "gcs",
                                           [EG_STORAGE_OSS] = "oss", [EG_STORAGE_FILE] = "file"};

/* The block of the chosen storage type must be there with a path; others are ignored. */
static void check_storage(struct dec *d, const struct eg_yn *s, const struct eg_fpath *p, const char *type_key,
                          enum eg_storage_type st) {
        for (enum eg_storage_type t = EG_STORAGE_S3; t <= EG_STORAGE_FILE; t++) {
                const struct eg_yn *block = map_get(s, storage_keys[t]);
                bool present = block && block->type != EG_YN_NULL;
                struct eg_fpath bp = {p, storage_keys[t], 0};
                if (t == st) {
                        if (!present)
                                required(d, s, p, storage_keys[t], t == EG_STORAGE_FILE ? "(with path) when the storage type is File" : "(with path) for this storage type");
                        else if (block->type == EG_YN_MAP && !map_get(block, "path"))
                                required(d, block, &bp, "path", NULL);
                } else if (present) {
                        warn(d, block, &bp, "ignored because %s is %s", type_key, eg_storage_type_to_string(st));
                }
        }
}

static void f_endpoints(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_backup_spec *b = &d->o->backup;
        if (v->type != EG_YN_SEQ) {
                if (!reported_already(v))
                        err_got(d, v, p, "a sequence of URLs");
                return;
        }
        char **list = calloc(v->n_items + 1, sizeof(char *));
        if (!list) {
                d->c->oom = -ENOMEM;
                return;
        }
        size_t n = 0;
        for (size_t i = 0; i < v->n_items; i++) {
                struct eg_fpath ip = {p, NULL, i};
                f_url(d, v->items[i], NULL, &ip, &list[n]);
                if (list[n])
                        n++;
        }
        for (size_t i = 0; b->etcd_endpoints && b->etcd_endpoints[i]; i++)
                free(b->etcd_endpoints[i]);
        free(b->etcd_endpoints);
        b->etcd_endpoints = list;
        b->n_etcd_endpoints = n;
}

static const struct field cluster_ref_fields[] = {
        {"name", f_name, 0},
        {0},
};

static void f_cluster_ref(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (decode_map(d, v, j, p, cluster_ref_fields, t) && !map_get(v, "name"))
                required(d, v, p, "name", NULL);
}

#define BACKUP(m) offsetof(struct eg_backup_spec, m)
static const struct field backup_policy_fields[] = {
        {"timeoutInSecond", f_int_nonneg, BACKUP(timeout_in_second)},
        {"backupIntervalInSecond", f_int_nonneg, BACKUP(backup_interval_in_second)},
        {"maxBackups", f_int_nonneg, BACKUP(max_backups)},
        {0},
};

static void f_backup_policy(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        decode_map(d, v, j, p, backup_policy_fields, t);
}

static const struct field backup_fields[] = {
        {"etcdEndpoints", f_endpoints, 0},
        {"etcdCluster", f_cluster_ref, BACKUP(etcd_cluster_name)},
        {"storageType", f_storage_type, BACKUP(storage_type)},
        {"backupPolicy", f_backup_policy, 0},
        {"schedule", f_schedule, BACKUP(schedule)},
        {"s3", f_s3, BACKUP(s3)},
        {"abs", f_other_store, 0},
        {"gcs", f_other_store, 0},
        {"oss", f_other_store, 0},
        {"file", f_file, BACKUP(file)},
        {"clientTLSSecret", f_secret, BACKUP(client_tls_secret)},
        {0},
};

static void decode_backup(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_backup_spec *b = &d->o->backup;
        b->etcd_endpoints = calloc(1, sizeof(char *));
        if (!b->etcd_endpoints) {
                d->c->oom = -ENOMEM;
                return;
        }
        if (!decode_map(d, s, js, p, backup_fields, b))
                return;
        if (!d->has_storage_type) {
                if (!map_get(s, "storageType"))
                        required(d, s, p, "storageType", "(S3, ABS, GCS, OSS or File)");
        } else
                check_storage(d, s, p, "storageType", b->storage_type);
        const struct eg_yn *eps = map_get(s, "etcdEndpoints"), *ref = map_get(s, "etcdCluster");
        bool eps_given = eps && eps->type != EG_YN_NULL, has_ref = ref && ref->type != EG_YN_NULL;
        bool has_eps = eps_given && !(eps->type == EG_YN_SEQ && eps->n_items == 0);
        if (!has_eps && !has_ref)
                required(d, s, p, "etcdEndpoints", "(or etcdCluster.name)");
        else if (has_eps && has_ref) {
                struct eg_fpath rp = {p, "etcdCluster", 0};
                err(d, ref, &rp, "set either etcdEndpoints or etcdCluster, not both");
        }
        const struct eg_yn *sched = map_get(s, "schedule");
        struct eg_fpath sp = {p, "schedule", 0};
        if (b->schedule && b->backup_interval_in_second > 0)
                err(d, sched, &sp, "set either schedule or backupPolicy.backupIntervalInSecond, not both");
        if (b->max_backups > 0 && !b->schedule && b->backup_interval_in_second == 0) {
                const struct eg_yn *pol = map_get(s, "backupPolicy"), *max = map_get(pol, "maxBackups");
                struct eg_fpath pp = {p, "backupPolicy", 0}, mp = {&pp, "maxBackups", 0};
                if (max)
                        warn(d, max, &mp, "has no effect on a one-shot backup (no schedule or backupIntervalInSecond)");
        }
        if (b->timeout_in_second == 0)
                b->timeout_in_second = DEFAULT_BACKUP_TIMEOUT;
}

#define RESTORE(m) offsetof(struct eg_restore_spec, m)
static const struct field restore_fields[] = {
        {"etcdCluster", f_cluster_ref, RESTORE(etcd_cluster_name)},
        {"backupStorageType", f_storage_type, RESTORE(backup_storage_type)},
        {"s3", f_s3, RESTORE(s3)},
        {"file", f_file, RESTORE(file)},
        {"abs", f_other_store, 0},
        {"gcs", f_other_store, 0},
        {"oss", f_other_store, 0},
        {"revision", f_int_nonneg, RESTORE(revision)},
        {"object", f_string, RESTORE(object)},
        {"overwrite", f_bool, RESTORE(overwrite)},
        {0},
};

static void decode_restore(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_restore_spec *r = &d->o->restore;
        if (!decode_map(d, s, js, p, restore_fields, r))
                return;
        if (!map_get(s, "etcdCluster"))
                required(d, s, p, "etcdCluster", "(with name: the cluster to restore into)");
        if (!d->has_storage_type) {
                if (!map_get(s, "backupStorageType"))
                        required(d, s, p, "backupStorageType", "(S3 or File)");
        } else
                check_storage(d, s, p, "backupStorageType", r->backup_storage_type);
        const struct eg_yn *obj = map_get(s, "object");
        struct eg_fpath op = {p, "object", 0};
        if (r->object && !*r->object)
                err(d, obj, &op, "must not be empty");
        if (r->object && r->revision > 0)
                err(d, obj, &op, "set either object or revision, not both");
}

/* ---- documents ---- */

/* Nothing is checked past an unknown kind: its schema is not ours. */
static void decode_document(struct dec *d, const struct eg_yn *root, json_t *doc, enum eg_kind kind, bool kind_ok) {
        if (!kind_ok)
                return;
        decode_metadata(d, root, map_get(root, "metadata"), doc ? json_object_get(doc, "metadata") : NULL);
        const struct eg_yn *spec = map_get(root, "spec");
        struct eg_fpath p = {NULL, "spec", 0};
        if (!spec || spec->type == EG_YN_NULL) {
                required(d, root, NULL, "spec", NULL);
                return;
        }
        json_t *js = doc ? json_object_get(doc, "spec") : NULL;
        switch (kind) {
        case EG_KIND_CLUSTER:
                decode_cluster(d, spec, js, &p);
                break;
        case EG_KIND_BACKUP:
                decode_backup(d, spec, js, &p);
                break;
        default:
                decode_restore(d, spec, js, &p);
                break;
        }
}

static const struct field top_fields[] = {
        {"apiVersion", NULL, 0}, {"kind", NULL, 0}, {"metadata", NULL, 0},
        {"spec", NULL, 0},       {"status", NULL, 0}, {0},
};

static bool check_header(struct dec *d, const struct eg_yn *root, enum eg_kind *ret_kind) {
        const struct eg_yn *api = map_get(root, "apiVersion"), *kind = map_get(root, "kind");
        struct eg_fpath ap = {NULL, "apiVersion", 0}, kp = {NULL, "kind", 0};
        if (!api || api->type == EG_YN_NULL)
                required(d, root, NULL, "apiVersion", "(" EG_API_VERSION ")");
        else if (api->type != EG_YN_STR || strcmp(api->text, EG_API_VERSION) != 0)
                err_got(d, api, &ap, "\"" EG_API_VERSION "\"");
        if (!kind || kind->type == EG_YN_NULL) {
                required(d, root, NULL, "kind", "(EtcdCluster, EtcdBackup or EtcdRestore)");
                return false;
        }
        if (kind->type != EG_YN_STR || eg_kind_from_string(kind->text, ret_kind) < 0) {
                err_got(d, kind, &kp, "EtcdCluster, EtcdBackup or EtcdRestore");
                return false;
        }
        return true;
}

/* Who the diagnostics are about, even when the document is half broken. */
static void stamp_identity(struct eg_dctx *c, const struct eg_yn *root) {
        const struct eg_yn *kind = map_get(root, "kind"), *meta = map_get(root, "metadata");
        const struct eg_yn *name = map_get(meta, "name"), *ns = map_get(meta, "namespace");
        enum eg_kind k;
        if (!kind || kind->type != EG_YN_STR || eg_kind_from_string(kind->text, &k) < 0 || !name ||
            name->type != EG_YN_STR || !*name->text)
                return;
        const char *nss = ns && ns->type == EG_YN_STR ? ns->text : DEFAULT_NAMESPACE;
        for (size_t i = 0; i < c->n_diags; i++) {
                struct eg_diag *g = &c->diags[i];
                g->has_object = true;
                g->kind = k;
                g->namespace = strdup(nss);
                g->name = strdup(name->text);
                if (!g->namespace || !g->name)
                        c->oom = -ENOMEM;
        }
}

static int copy_origin(struct eg_origin *dst, const struct eg_origin *src, const struct eg_yn *root) {
        dst->path = strdup(src->path);
        dst->blob = src->blob ? strdup(src->blob) : NULL;
        dst->commit = src->commit ? strdup(src->commit) : NULL;
        dst->line = root->line;
        dst->column = root->column;
        if (!dst->path || (src->blob && !dst->blob) || (src->commit && !dst->commit))
                return -ENOMEM;
        return 0;
}

/* A document of another API group and kind (a Role, a ConfigMap, ...): GitOps
 * repositories hold more than etcd manifests, and those are not ours to judge. A
 * document that names our group or one of our kinds is ours, and checked strictly. */
static bool foreign_object(const struct eg_yn *root) {
        if (root->type != EG_YN_MAP)
                return false;
        const struct eg_yn *api = map_get(root, "apiVersion"), *kind = map_get(root, "kind");
        enum eg_kind k;
        if (!api || api->type != EG_YN_STR || !kind || kind->type != EG_YN_STR)
                return false;
        return !eg_str_has_prefix(api->text, "etcd.database.coreos.com/") &&
               eg_kind_from_string(kind->text, &k) < 0;
}

static int process_document(struct eg_desired_set *set, const struct eg_origin *origin, struct eg_ydoc *doc,
                            const struct eg_spec_options *opt) {
        struct eg_dctx c = {.path = origin->path, .opt = opt};
        struct eg_object *o = NULL;
        json_t *json = NULL;
        const struct eg_yn *root = doc->root;
        int r = 0;
        if (doc->error) {
                eg_dctx_report(&c, EG_SEVERITY_ERROR, doc->error_line, doc->error_column, NULL, "%s%s", doc->error,
                               doc->fatal ? "; the rest of the file is not read" : "");
        } else if (!root || root->type == EG_YN_NULL) {
                return 0; /* empty document, e.g. a trailing "---" */
        } else if (foreign_object(root)) {
                return 0; /* another API group's object sharing the repository */
        } else if (root->type != EG_YN_MAP) {
                _cleanup_free_ char *got = eg_yn_describe(root);
                eg_dctx_report(&c, EG_SEVERITY_ERROR, root->line, root->column, NULL,
                               "a manifest must be a mapping, got %s", got ? got : "?");
        } else {
                r = eg_yn_to_json(&c, root, NULL, &json);
                if (r < 0)
                        goto out;
                o = calloc(1, sizeof(*o));
                if (!o) {
                        r = -ENOMEM;
                        goto out;
                }
                struct dec d = {.c = &c, .o = o};
                enum eg_kind kind = EG_KIND_CLUSTER;
                bool kind_ok = check_header(&d, root, &kind);
                o->kind = kind_ok ? kind : _EG_KIND_MAX;
                decode_map(&d, root, json, NULL, top_fields, NULL);
                decode_document(&d, root, json, kind, kind_ok);
                if (!o->meta.namespace)
                        set_str(&o->meta.namespace, DEFAULT_NAMESPACE);
                if (!o->meta.namespace || copy_origin(&o->origin, origin, root) < 0)
                        c.oom = -ENOMEM;
        }
        if (root && root->type == EG_YN_MAP)
                stamp_identity(&c, root);
        if (c.oom) {
                r = c.oom;
                goto out;
        }
        if (c.n_errors == 0 && o) {
                o->document = TAKE_PTR(json);
                r = eg_set_add_object(set, o);
                if (r < 0)
                        goto out;
                o = NULL;
        } else
                set->n_invalid++;
        r = eg_set_take_diags(set, &c);
out:
        eg_object_free(o);
        json_decref(json);
        eg_dctx_done(&c);
        return r;
}

int eg_spec_parse_buffer(struct eg_desired_set *set, const struct eg_origin *origin, const char *data, size_t len,
                         const struct eg_spec_options *opt) {
        set->n_files++;
        if (len > EG_SPEC_MAX_FILE_BYTES)
                return eg_set_file_error(set, origin->path, "file is too large (%zu bytes; the limit is %zu)", len,
                                         EG_SPEC_MAX_FILE_BYTES);
        int r = eg_set_hash_file(set, origin->path, data, len);
        if (r < 0)
                return r;
        struct eg_yaml_reader *reader;
        r = eg_yaml_reader_new(data, len, &reader);
        if (r < 0)
                return r;
        for (;;) {
                struct eg_ydoc *doc = NULL;
                r = eg_yaml_reader_next(reader, &doc);
                if (r <= 0)
                        break;
                r = process_document(set, origin, doc, opt);
                eg_ydoc_free(doc);
                if (r < 0)
                        break;
        }
        eg_yaml_reader_free(reader);
        return r < 0 ? r : 0;
}
