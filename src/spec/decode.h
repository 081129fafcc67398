/* Shared by the manifest decoders (decode.c and one file per kind): the state of one document's
 * decoding, the field tables, and the field decoders every kind uses. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec-internal.h"

struct dec {
        struct eg_dctx *c;
        struct eg_object *o;
        bool has_storage_type;
};

typedef void (*field_fn)(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *target);

struct field {
        const char *name;
        field_fn fn;   /* NULL: known and ignored */
        size_t offset; /* of the target member inside the decoded struct */
};

/* Diagnostics at node n, field p. */
void dec_err(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void dec_warn(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void dec_err_got(struct dec *d, const struct eg_yn *n, const struct eg_fpath *p, const char *want);
bool dec_reported_already(const struct eg_yn *n);

/* Typed reads: false (reported) when v is not of the type. */
bool dec_get_string(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, const char *want);
bool dec_get_int(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p, int64_t min, int64_t *ret);
bool dec_want_map(struct dec *d, const struct eg_yn *v, const struct eg_fpath *p);
void dec_set_str(char **dst, const char *s);
void *dec_alloc(struct dec *d, void *ptr, size_t size);
void dec_keep_json(json_t **dst, json_t *j);
bool dec_dns_subdomain(const char *s);

bool dec_map(struct dec *d, const struct eg_yn *m, json_t *jm, const struct eg_fpath *p, const struct field *fields,
             void *target);
const struct eg_yn *dec_map_get(const struct eg_yn *m, const char *key);
void dec_required(struct dec *d, const struct eg_yn *m, const struct eg_fpath *p, const char *key, const char *why);

/* Field decoders, for the tables. */
void dec_string(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_bool(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_int_nonneg(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_json_map(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_json_seq_of_maps(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_pod_labels(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_pod_annotations(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_selector(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_image(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_secret(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_name(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_absolute_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_url(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);
void dec_bucket_path(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t);

/* The spec of each kind. */
void dec_cluster(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p);
void dec_backup(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p);
void dec_restore(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p);
