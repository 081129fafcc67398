/* spec: what the module's files share (YAML node tree, diagnostics, field paths). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "etcd-gitops/spec.h"

/* A resolved YAML node. Scalars are typed by the YAML 1.2 core schema, honouring quotes
 * and explicit tags. Aliases are not copied: the aliased node is shared, which is why
 * nodes belong to their document (struct eg_ydoc) and are freed with it. */
enum eg_yn_type { EG_YN_NULL, EG_YN_BOOL, EG_YN_INT, EG_YN_FLOAT, EG_YN_STR, EG_YN_SEQ, EG_YN_MAP };

struct eg_yn {
        enum eg_yn_type type;
        unsigned line, column; /* 1-based */
        char *text;            /* scalar as written (after escapes), NUL-terminated */
        size_t len;
        bool boolean;
        int64_t integer;
        double real;
        bool overflow;        /* an integer literal outside int64 */
        struct eg_yn **items; /* SEQ: items; MAP: key, value, key, value... */
        size_t n_items;       /* for MAP, twice the number of pairs */
        size_t alloc;
        size_t weight;   /* nodes in the subtree with aliases expanded (saturating) */
        unsigned height; /* nesting levels of the subtree with aliases expanded */
};

struct eg_ydoc {
        struct eg_yn *root; /* NULL for an empty document */
        struct eg_yn **nodes;
        size_t n_nodes, alloc_nodes;
        char *error; /* syntax or limit error; the document is unusable */
        unsigned error_line, error_column;
        bool fatal; /* the rest of the stream cannot be read either */
};

struct eg_yaml_reader;

int eg_yaml_reader_new(const char *data, size_t len, struct eg_yaml_reader **ret);
void eg_yaml_reader_free(struct eg_yaml_reader *r);
/* Reads the next document: 1 with *ret set (check ->error), 0 at the end of the stream,
 * -ENOMEM. After a fatal error the next call returns 0. */
int eg_yaml_reader_next(struct eg_yaml_reader *r, struct eg_ydoc **ret);
void eg_ydoc_free(struct eg_ydoc *d);

/* A field path as a chain on the stack, rendered only when a diagnostic needs it. */
struct eg_fpath {
        const struct eg_fpath *parent;
        const char *key; /* NULL for a sequence index */
        size_t index;
};
char *eg_fpath_render(const struct eg_fpath *p);

/* Collects the diagnostics of one document before they are handed to the set, so the
 * object's identity can be stamped on all of them once metadata is known. */
struct eg_dctx {
        const char *path;
        const struct eg_spec_options *opt;
        struct eg_diag *diags;
        size_t n_diags, alloc;
        size_t n_errors;
        bool truncated;
        int oom; /* -ENOMEM once an allocation failed */
};

void eg_dctx_report(struct eg_dctx *c, enum eg_severity sev, unsigned line, unsigned column,
                    const struct eg_fpath *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void eg_dctx_vreport(struct eg_dctx *c, enum eg_severity sev, unsigned line, unsigned column,
                     const struct eg_fpath *field, const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
void eg_dctx_done(struct eg_dctx *c);

/* Short rendering of a node for "got ..." in messages: "three" quoted, 3, a mapping. */
char *eg_yn_describe(const struct eg_yn *n);

/* Converts a node to JSON, reporting what JSON cannot hold (duplicate or non-string
 * keys, out-of-range integers, NaN/infinity). *ret is NULL when anything was reported. */
int eg_yn_to_json(struct eg_dctx *c, const struct eg_yn *n, const struct eg_fpath *p, json_t **ret);

/* Set internals shared by decode.c and load.c. */
int eg_set_add_object(struct eg_desired_set *s, struct eg_object *o);
int eg_set_take_diags(struct eg_desired_set *s, struct eg_dctx *c);
/* Feeds one file into the content hash behind the default revision. */
int eg_set_hash_file(struct eg_desired_set *s, const char *path, const void *data, size_t len);
void eg_object_free(struct eg_object *o);
void eg_diag_done(struct eg_diag *d);
