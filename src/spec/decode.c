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
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "decode.h"

#define DEFAULT_NAMESPACE "default"

void dec_err(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_dctx_vreport(d->c, EG_SEVERITY_ERROR, n->line, n->column, p, fmt, ap);
        va_end(ap);
}

void dec_warn(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_dctx_vreport(d->c, EG_SEVERITY_WARNING, n->line, n->column, p, fmt, ap);
        va_end(ap);
}

/* "must be X, got Y", with a hint when Y is only missing quotes. */
void dec_err_got(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *want) {
        _cleanup_free_ char *got = eg_yn_describe(n);
        bool quote_hint = strstr(want, "string") &&
                          (n->type == EG_YN_INT || n->type == EG_YN_FLOAT || n->type == EG_YN_BOOL);
        dec_err(d, n, p, "must be %s, got %s%s", want, got ? got : "?",
                quote_hint ? " (quote it to make it a string)" : "");
}

/* Integers out of range and non-finite numbers were reported by the JSON conversion. */
bool dec_reported_already(const struct eg_yn *n) {
        return (n->type == EG_YN_INT && n->overflow) || (n->type == EG_YN_FLOAT && !isfinite(n->real));
}

/* The struct *ptr points to (a pointer member of the decoded struct), allocated zeroed the first
 * time; NULL, with the document marked out of memory, when that fails. */
void *dec_alloc(struct dec *d, void *ptr, size_t size) {
        void **dst = ptr;
        if (!*dst) {
                *dst = calloc(1, size);
                if (!*dst)
                        d->c->oom = -ENOMEM;
        }
        return *dst;
}

void dec_set_str(char **dst, const char *s) {
        free(*dst);
        *dst = strdup(s);
}

bool dec_get_string(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, const char *want) {
        if (v->type == EG_YN_STR)
                return true;
        if (!dec_reported_already(v))
                dec_err_got(d, v, p, want ? want : "a string");
        return false;
}

void dec_string(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (dec_get_string(d, v, p, NULL))
                dec_set_str(t, v->text);
}

void dec_bool(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type == EG_YN_BOOL)
                *(bool *)t = v->boolean;
        else if (!dec_reported_already(v))
                dec_err_got(d, v, p, "a boolean (true or false)");
}

bool dec_get_int(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, int64_t min, int64_t *ret) {
        if (v->type == EG_YN_INT && !v->overflow && v->integer >= min) {
                *ret = v->integer;
                return true;
        }
        if (dec_reported_already(v))
                return false;
        char want[64];
        snprintf(want, sizeof(want), "an integer ≥ %lld", (long long)min);
        dec_err_got(d, v, p, want);
        return false;
}

void dec_int_nonneg(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        dec_get_int(d, v, p, 0, t);
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

bool dec_dns_subdomain(const char *s) {
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
        return prefix && dec_dns_subdomain(prefix) && qualified_name(slash + 1, strlen(slash + 1));
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

enum { NEAR_MAX = 2 };

/* The known field an unknown key of m was probably meant to be: the closest within two edits
 * (case aside) that m does not have already, provided the key is longer than the edits;
 * NULL when none is that close. */
static const struct field *near_field(const struct field *fields, const struct eg_yn *m, const char *key) {
        const struct field *near = NULL;
        size_t best = NEAR_MAX + 1;
        for (const struct field *g = fields; g->name; g++) {
                if (dec_map_get(m, g->name))
                        continue;
                size_t d = eg_edit_distance(g->name, key, NEAR_MAX, true);
                if (d < best && d < strlen(key)) {
                        near = g;
                        best = d;
                }
        }
        return near;
}

bool dec_want_map(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p) {
        if (v->type == EG_YN_MAP)
                return true;
        if (!dec_reported_already(v))
                dec_err_got(d, v, p, "a mapping");
        return false;
}

/* Decodes the known keys of a mapping into target; null values count as absent. */
bool dec_map(struct dec *d, const struct eg_yn *m, json_t *jm, const struct eg_fpath *p, const struct field *fields,
             void *target) {
        if (!dec_want_map(d, m, p))
                return false;
        for (size_t i = 0; i + 1 < m->n_items; i += 2) {
                const struct eg_yn *k = m->items[i], *v = m->items[i + 1];
                if (k->type == EG_YN_MAP || k->type == EG_YN_SEQ || k->type == EG_YN_NULL)
                        continue; /* reported by the JSON conversion */
                struct eg_fpath kp = {p, k->text, 0};
                const struct field *f = find_field(fields, k->text);
                if (!f) {
                        const struct field *near = near_field(fields, m, k->text);
                        enum eg_severity sev = d->c->opt && d->c->opt->strict ? EG_SEVERITY_ERROR : EG_SEVERITY_WARNING;
                        if (near)
                                eg_dctx_report(d->c, sev, k->line, k->column, &kp,
                                               "unknown field (did you mean \"%s\"?)", near->name);
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
const struct eg_yn *dec_map_get(const struct eg_yn *m, const char *key) {
        if (!m || m->type != EG_YN_MAP)
                return NULL;
        for (size_t i = 0; i + 1 < m->n_items; i += 2)
                if (m->items[i]->type != EG_YN_MAP && m->items[i]->type != EG_YN_SEQ && m->items[i]->text &&
                    strcmp(m->items[i]->text, key) == 0)
                        return m->items[i + 1]->type == EG_YN_NULL ? NULL : m->items[i + 1];
        return NULL;
}

void dec_required(struct dec *d, const struct eg_yn *m, const struct eg_fpath *p, const char *key, const char *why) {
        struct eg_fpath kp = {p, key, 0};
        dec_err(d, m, &kp, "required%s%s", why ? " " : "", why ? why : "");
}

void dec_keep_json(json_t **dst, json_t *j) {
        json_decref(*dst);
        *dst = json_incref(j);
}

/* A mapping or sequence passed through as JSON. */
void dec_json_map(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (dec_want_map(d, v, p))
                dec_keep_json(t, j);
}

void dec_json_seq_of_maps(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type != EG_YN_SEQ) {
                if (!dec_reported_already(v))
                        dec_err_got(d, v, p, "a sequence");
                return;
        }
        bool ok = true;
        for (size_t i = 0; i < v->n_items; i++) {
                struct eg_fpath ip = {p, NULL, i};
                ok = dec_want_map(d, v->items[i], &ip) && ok;
        }
        if (ok)
                dec_keep_json(t, j);
}

enum string_map_rules { MAP_LABELS, MAP_ANNOTATIONS, MAP_POD_LABELS, MAP_POD_ANNOTATIONS, MAP_SELECTOR };

static void string_map(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, json_t **dst,
                       enum string_map_rules rules) {
        if (!dec_want_map(d, v, p))
                return;
        size_t errors = d->c->n_errors;
        for (size_t i = 0; i + 1 < v->n_items; i += 2) {
                const struct eg_yn *k = v->items[i], *val = v->items[i + 1];
                if (k->type == EG_YN_MAP || k->type == EG_YN_SEQ || k->type == EG_YN_NULL)
                        continue;
                struct eg_fpath kp = {p, k->text, 0};
                bool annotations = rules == MAP_ANNOTATIONS || rules == MAP_POD_ANNOTATIONS;
                if (k->type != EG_YN_STR)
                        dec_err_got(d, k, &kp, "a string key");
                else if (!label_key(k->text))
                        dec_err(d, k, &kp,
                                "%s key must be a name of letters, digits, '-', '_' and '.' "
                                "(at most 63, starting and ending with a letter or digit), "
                                "optionally prefixed by a DNS subdomain and '/'",
                                annotations ? "an annotation" : "a label");
                else if (rules == MAP_POD_LABELS &&
                         (strcmp(k->text, "app") == 0 || eg_str_has_prefix(k->text, "etcd_")))
                        dec_err(d, k, &kp,
                                "label \"%s\" is reserved: etcd-gitops sets \"app\" and \"etcd_*\" labels itself",
                                k->text);
                else if (rules == MAP_POD_ANNOTATIONS && strcmp(k->text, "etcd.version") == 0)
                        dec_err(d, k, &kp, "annotation \"etcd.version\" is reserved: etcd-gitops sets it itself");
                if (val->type != EG_YN_STR) {
                        if (!dec_reported_already(val))
                                dec_err_got(d, val, &kp, "a string");
                } else if (!annotations && !label_value(val->text))
                        dec_err(d, val, &kp,
                                "a label value must be empty or at most 63 letters, digits, '-', '_' "
                                "and '.', starting and ending with a letter or digit");
                else if (rules == MAP_ANNOTATIONS && k->type == EG_YN_STR &&
                         strcmp(k->text, EG_ANN_AUTO_RECOVER_AFTER) == 0) {
                        int64_t ms;
                        if (eg_parse_duration_ms(val->text, &ms) < 0 || ms < EG_AUTO_RECOVER_MIN_MS)
                                dec_err(d, val, &kp,
                                        "a duration of at least 30s, such as 10m: how long quorum must have "
                                        "been lost before a new cluster is forced from the most advanced "
                                        "survivor");
                }
        }
        if (d->c->n_errors == errors)
                dec_keep_json(dst, j);
}

static void f_labels(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_LABELS);
}
static void f_annotations(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_ANNOTATIONS);
}
void dec_pod_labels(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_POD_LABELS);
}
void dec_pod_annotations(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_POD_ANNOTATIONS);
}
void dec_selector(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        string_map(d, v, j, p, t, MAP_SELECTOR);
}

void dec_image(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        if (!*v->text || has_space(v->text))
                dec_err_got(d, v, p, "an image reference without spaces");
        else
                dec_set_str(t, v->text);
}

void dec_secret(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, "a Secret name"))
                return;
        if (!dec_dns_subdomain(v->text))
                dec_err_got(d, v, p, "a Secret name (lowercase letters, digits, '-' and '.', at most 253)");
        else
                dec_set_str(t, v->text);
}

static void f_label_name(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, char **dst, size_t max) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        if (v->len > max)
                dec_err(d, v, p, "must be at most %zu characters, got %zu", max, v->len);
        else if (!dns_label(v->text, v->len))
                dec_err_got(d, v, p,
                            "a DNS-1123 label (lowercase letters, digits and '-', starting and ending "
                            "with a letter or digit)");
        else
                dec_set_str(dst, v->text);
}

void dec_name(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        f_label_name(d, v, p, t, EG_SPEC_MAX_NAME);
}

static void f_namespace(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        f_label_name(d, v, p, t, 63);
}

void dec_absolute_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        if (v->text[0] != '/')
                dec_err_got(d, v, p, "an absolute path");
        else
                dec_set_str(t, v->text);
}

void dec_url(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        if (!is_http_url(v->text))
                dec_err_got(d, v, p, "an http:// or https:// URL");
        else
                dec_set_str(t, v->text);
}

/* "<bucket>/<key>" with S3 bucket naming (3-63 of a-z, 0-9, '.', '-'). */
void dec_bucket_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        const char *slash = strchr(v->text, '/');
        size_t blen = slash ? (size_t)(slash - v->text) : 0;
        bool ok = slash && slash[1] && blen >= 3 && blen <= 63 && is_alnum_lower(v->text[0]) &&
                  is_alnum_lower(v->text[blen - 1]);
        for (size_t i = 0; ok && i < blen; i++)
                ok = is_alnum_lower(v->text[i]) || v->text[i] == '-' || v->text[i] == '.';
        if (!ok)
                dec_err_got(d, v, p,
                            "\"<bucket>/<key>\" (a bucket name of 3-63 lowercase letters, digits, '.' and '-', "
                            "then a non-empty key)");
        else
                dec_set_str(t, v->text);
}

/* ---- metadata ---- */

static const struct field metadata_fields[] = {
        {"name", dec_name, offsetof(struct eg_metadata, name)},
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
                dec_required(d, root, NULL, "metadata", NULL);
                return;
        }
        if (!dec_map(d, m, jm, &p, metadata_fields, &d->o->meta))
                return;
        const struct eg_yn *gen = dec_map_get(m, "generateName");
        if (gen && gen->type != EG_YN_NULL) {
                struct eg_fpath gp = {&p, "generateName", 0};
                dec_err(d, gen, &gp, "not supported: objects need a stable metadata.name");
        }
        const struct eg_yn *name = dec_map_get(m, "name");
        if (!name || name->type == EG_YN_NULL)
                dec_required(d, m, &p, "name", NULL);
}

/* ---- documents ---- */

/* Nothing is checked past an unknown kind: its schema is not ours. */
static void decode_document(struct dec *d, const struct eg_yn *root, json_t *doc, enum eg_kind kind, bool kind_ok) {
        if (!kind_ok)
                return;
        decode_metadata(d, root, dec_map_get(root, "metadata"), doc ? json_object_get(doc, "metadata") : NULL);
        const struct eg_yn *spec = dec_map_get(root, "spec");
        struct eg_fpath p = {NULL, "spec", 0};
        if (!spec || spec->type == EG_YN_NULL) {
                dec_required(d, root, NULL, "spec", NULL);
                return;
        }
        json_t *js = doc ? json_object_get(doc, "spec") : NULL;
        switch (kind) {
        case EG_KIND_CLUSTER:
                dec_cluster(d, spec, js, &p);
                break;
        case EG_KIND_BACKUP:
                dec_backup(d, spec, js, &p);
                break;
        default:
                dec_restore(d, spec, js, &p);
                break;
        }
}

static const struct field top_fields[] = {
        {"apiVersion", NULL, 0}, {"kind", NULL, 0}, {"metadata", NULL, 0}, {"spec", NULL, 0}, {"status", NULL, 0}, {0},
};

static bool check_header(struct dec *d, const struct eg_yn *root, enum eg_kind *ret_kind) {
        const struct eg_yn *api = dec_map_get(root, "apiVersion"), *kind = dec_map_get(root, "kind");
        struct eg_fpath ap = {NULL, "apiVersion", 0}, kp = {NULL, "kind", 0};
        if (!api || api->type == EG_YN_NULL)
                dec_required(d, root, NULL, "apiVersion", "(" EG_API_VERSION ")");
        else if (api->type != EG_YN_STR || strcmp(api->text, EG_API_VERSION) != 0)
                dec_err_got(d, api, &ap, "\"" EG_API_VERSION "\"");
        if (!kind || kind->type == EG_YN_NULL) {
                dec_required(d, root, NULL, "kind", "(EtcdCluster, EtcdBackup or EtcdRestore)");
                return false;
        }
        if (kind->type != EG_YN_STR || eg_kind_from_string(kind->text, ret_kind) < 0) {
                dec_err_got(d, kind, &kp, "EtcdCluster, EtcdBackup or EtcdRestore");
                return false;
        }
        return true;
}

/* Who the diagnostics are about, even when the document is half broken. */
static void stamp_identity(struct eg_dctx *c, const struct eg_yn *root) {
        const struct eg_yn *kind = dec_map_get(root, "kind"), *meta = dec_map_get(root, "metadata");
        const struct eg_yn *name = dec_map_get(meta, "name"), *ns = dec_map_get(meta, "namespace");
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
        const struct eg_yn *api = dec_map_get(root, "apiVersion"), *kind = dec_map_get(root, "kind");
        enum eg_kind k;
        if (!api || api->type != EG_YN_STR || !kind || kind->type != EG_YN_STR)
                return false;
        return !eg_str_has_prefix(api->text, "etcd.database.coreos.com/") && eg_kind_from_string(kind->text, &k) < 0;
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
                dec_map(&d, root, json, NULL, top_fields, NULL);
                decode_document(&d, root, json, kind, kind_ok);
                if (!o->meta.namespace)
                        dec_set_str(&o->meta.namespace, DEFAULT_NAMESPACE);
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
                return eg_desired_set_add_file_error(set, origin->path,
                                                     "file is too large (%zu bytes; the limit is %zu)", len,
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
