/* YAML (and JSON) bytes to a positioned, typed node tree with libyaml, within hard limits. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "etcd-gitops/util.h"
#include "etcd-gitops/yaml.h"
#include "spec-internal.h"

#define TAG_PREFIX "tag:yaml.org,2002:"
#define SATURATE ((size_t)1 << 40)

struct eg_yaml_reader {
        yaml_parser_t parser;
        const char *data;
        size_t len;
        bool done;
        size_t n_documents;
};

/* State of the document being built. */
struct builder {
        struct eg_ydoc *doc;
        struct eg_yn *stack[EG_SPEC_MAX_DEPTH];
        char *anchors[EG_SPEC_MAX_DEPTH]; /* anchor of each open collection, owned */
        unsigned depth;
        json_t *anchor_table; /* name -> node address */
        size_t expanded;      /* nodes produced through aliases so far */
};

int eg_yaml_reader_new(const char *data, size_t len, struct eg_yaml_reader **ret) {
        struct eg_yaml_reader *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        if (!yaml_parser_initialize(&r->parser)) {
                free(r);
                return -ENOMEM;
        }
        r->data = data;
        r->len = len;
        yaml_parser_set_input_string(&r->parser, (const unsigned char *)data, len);
        *ret = r;
        return 0;
}

void eg_yaml_reader_free(struct eg_yaml_reader *r) {
        if (!r)
                return;
        yaml_parser_delete(&r->parser);
        free(r);
}

void eg_ydoc_free(struct eg_ydoc *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n_nodes; i++) {
                free(d->nodes[i]->text);
                free(d->nodes[i]->items);
                free(d->nodes[i]);
        }
        free(d->nodes);
        free(d->error);
        free(d);
}

static void doc_error(struct eg_ydoc *d, unsigned line, unsigned column, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void doc_error(struct eg_ydoc *d, unsigned line, unsigned column, const char *fmt, ...) {
        if (d->error)
                return;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&d->error, fmt, ap) < 0)
                d->error = NULL;
        va_end(ap);
        if (!d->error)
                d->error = strdup("invalid document");
        d->error_line = line;
        d->error_column = column;
}

static struct eg_yn *node_new(struct eg_ydoc *d, enum eg_yn_type type, const yaml_mark_t *m) {
        if (d->n_nodes == d->alloc_nodes) {
                size_t n = d->alloc_nodes ? d->alloc_nodes * 2 : 64;
                struct eg_yn **p = realloc(d->nodes, n * sizeof(*p));
                if (!p)
                        return NULL;
                d->nodes = p;
                d->alloc_nodes = n;
        }
        struct eg_yn *y = calloc(1, sizeof(*y));
        if (!y)
                return NULL;
        y->type = type;
        y->line = (unsigned)m->line + 1;
        y->column = (unsigned)m->column + 1;
        y->weight = 1;
        d->nodes[d->n_nodes++] = y;
        return y;
}

static int node_append(struct eg_yn *parent, struct eg_yn *child) {
        if (parent->n_items == parent->alloc) {
                size_t n = parent->alloc ? parent->alloc * 2 : 4;
                struct eg_yn **p = realloc(parent->items, n * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                parent->items = p;
                parent->alloc = n;
        }
        parent->items[parent->n_items++] = child;
        return 0;
}

static int attach(struct builder *b, struct eg_yn *n) {
        if (b->depth == 0) {
                b->doc->root = n;
                return 0;
        }
        return node_append(b->stack[b->depth - 1], n);
}

static bool utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *)s, *end = p + len;
        while (p < end) {
                unsigned c = *p;
                size_t n;
                uint32_t cp;
                if (c < 0x80) {
                        p++;
                        continue;
                } else if ((c & 0xE0) == 0xC0) {
                        n = 1, cp = c & 0x1F;
                } else if ((c & 0xF0) == 0xE0) {
                        n = 2, cp = c & 0x0F;
                } else if ((c & 0xF8) == 0xF0) {
                        n = 3, cp = c & 0x07;
                } else
                        return false;
                if ((size_t)(end - p) <= n)
                        return false;
                for (size_t i = 1; i <= n; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3F);
                }
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                p += n + 1;
        }
        return true;
}

static bool all_in(const char *s, const char *set) {
        if (!*s)
                return false;
        return strspn(s, set) == strlen(s);
}

static bool is_one_of(const char *s, const char *a, const char *b, const char *c) {
        return strcmp(s, a) == 0 || strcmp(s, b) == 0 || strcmp(s, c) == 0;
}

/* Integers of the core schema: decimal, 0o octal, 0x hex. Out-of-range literals stay
 * integers with ->overflow set, so the error can say what was written. */
static bool resolve_int(struct eg_yn *n) {
        const char *s = n->text;
        int base = 10;
        bool neg = false;
        const char *digits = s;
        if (s[0] == '0' && s[1] == 'o' && all_in(s + 2, "01234567"))
                base = 8, digits = s + 2;
        else if (s[0] == '0' && s[1] == 'x' && all_in(s + 2, "0123456789abcdefABCDEF"))
                base = 16, digits = s + 2;
        else {
                if (*s == '-' || *s == '+')
                        neg = *s == '-', digits = s + 1;
                if (!all_in(digits, "0123456789"))
                        return false;
        }
        errno = 0;
        unsigned long long v = strtoull(digits, NULL, base);
        n->type = EG_YN_INT;
        if (errno == ERANGE || (!neg && v > (unsigned long long)INT64_MAX) ||
            (neg && v > (unsigned long long)INT64_MAX + 1)) {
                n->overflow = true;
                return true;
        }
        n->integer = neg ? (int64_t)(0 - v) : (int64_t)v;
        return true;
}

static bool resolve_float(struct eg_yn *n) {
        const char *s = n->text, *p = s;
        if (*p == '-' || *p == '+')
                p++;
        if (is_one_of(p, ".inf", ".Inf", ".INF")) {
                n->type = EG_YN_FLOAT;
                n->real = *s == '-' ? -INFINITY : INFINITY;
                return true;
        }
        if (p == s && is_one_of(p, ".nan", ".NaN", ".NAN")) {
                n->type = EG_YN_FLOAT;
                n->real = NAN;
                return true;
        }
        /* [0-9]+(\.[0-9]*)? | \.[0-9]+, then an optional exponent */
        size_t int_digits = strspn(p, "0123456789");
        p += int_digits;
        size_t frac_digits = 0;
        if (*p == '.') {
                p++;
                frac_digits = strspn(p, "0123456789");
                p += frac_digits;
        }
        if (int_digits == 0 && frac_digits == 0)
                return false;
        if (*p == 'e' || *p == 'E') {
                p++;
                if (*p == '-' || *p == '+')
                        p++;
                size_t e = strspn(p, "0123456789");
                if (e == 0)
                        return false;
                p += e;
        }
        if (*p)
                return false;
        n->type = EG_YN_FLOAT;
        n->real = strtod(s, NULL);
        return true;
}

/* YAML 1.2 core schema for plain scalars. */
static void resolve_plain(struct eg_yn *n) {
        const char *s = n->text;
        if (!*s || is_one_of(s, "~", "null", "Null") || strcmp(s, "NULL") == 0) {
                n->type = EG_YN_NULL;
                return;
        }
        if (is_one_of(s, "true", "True", "TRUE")) {
                n->type = EG_YN_BOOL;
                n->boolean = true;
                return;
        }
        if (is_one_of(s, "false", "False", "FALSE")) {
                n->type = EG_YN_BOOL;
                n->boolean = false;
                return;
        }
        if (resolve_int(n) || resolve_float(n))
                return;
        n->type = EG_YN_STR;
}

/* Types a scalar from its tag, or from its text when plain and untagged. */
static void resolve_scalar(struct builder *b, struct eg_yn *n, const yaml_event_t *ev) {
        const char *tag = (const char *)ev->data.scalar.tag;
        if (!tag) {
                if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                        resolve_plain(n);
                else
                        n->type = EG_YN_STR;
                return;
        }
        if (strcmp(tag, "!") == 0 || strcmp(tag, TAG_PREFIX "str") == 0) {
                n->type = EG_YN_STR;
                return;
        }
        resolve_plain(n);
        enum eg_yn_type want;
        if (strcmp(tag, TAG_PREFIX "null") == 0)
                want = EG_YN_NULL;
        else if (strcmp(tag, TAG_PREFIX "bool") == 0)
                want = EG_YN_BOOL;
        else if (strcmp(tag, TAG_PREFIX "int") == 0)
                want = EG_YN_INT;
        else if (strcmp(tag, TAG_PREFIX "float") == 0) {
                want = EG_YN_FLOAT;
                if (n->type == EG_YN_INT && !n->overflow) {
                        n->type = EG_YN_FLOAT;
                        n->real = (double)n->integer;
                }
        } else {
                doc_error(b->doc, n->line, n->column, "unsupported tag '%s'", tag);
                return;
        }
        if (n->type != want)
                doc_error(b->doc, n->line, n->column, "'%s' is not a valid %s", n->text, tag + strlen(TAG_PREFIX));
}

static void close_collection(struct eg_yn *n) {
        size_t w = 1;
        unsigned h = 0;
        for (size_t i = 0; i < n->n_items; i++) {
                w += n->items[i]->weight;
                if (w > SATURATE)
                        w = SATURATE;
                if (n->items[i]->height > h)
                        h = n->items[i]->height;
        }
        n->weight = w;
        n->height = h + 1;
}

static int remember_anchor(struct builder *b, const char *anchor, struct eg_yn *n) {
        if (!anchor)
                return 0;
        if (!utf8_valid(anchor, strlen(anchor)))
                return 0;
        /* The table holds the node's address: nodes live as long as the document. */
        json_t *v = json_integer((json_int_t)(intptr_t)n);
        if (!v || json_object_set_new(b->anchor_table, anchor, v) < 0)
                return -ENOMEM;
        return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev) {
        struct eg_yn *n = node_new(b->doc, EG_YN_STR, &ev->start_mark);
        if (!n)
                return -ENOMEM;
        size_t len = ev->data.scalar.length;
        n->text = malloc(len + 1);
        if (!n->text)
                return -ENOMEM;
        memcpy(n->text, ev->data.scalar.value, len);
        n->text[len] = 0;
        n->len = len;
        if (memchr(n->text, 0, len)) {
                doc_error(b->doc, n->line, n->column, "text contains a NUL character");
                return 0;
        }
        if (!utf8_valid(n->text, len)) {
                doc_error(b->doc, n->line, n->column, "text is not valid UTF-8");
                return 0;
        }
        resolve_scalar(b, n, ev);
        int r = attach(b, n);
        if (r < 0)
                return r;
        return remember_anchor(b, (const char *)ev->data.scalar.anchor, n);
}

static int on_collection_start(struct builder *b, const yaml_event_t *ev, enum eg_yn_type type) {
        struct eg_yn *n = node_new(b->doc, type, &ev->start_mark);
        if (!n)
                return -ENOMEM;
        if (b->depth >= EG_SPEC_MAX_DEPTH) {
                doc_error(b->doc, n->line, n->column, "nesting is deeper than %d levels", EG_SPEC_MAX_DEPTH);
                return 0;
        }
        const yaml_char_t *tag = type == EG_YN_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
        if (tag && strcmp((const char *)tag, "!") != 0 &&
            strcmp((const char *)tag, type == EG_YN_MAP ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0) {
                doc_error(b->doc, n->line, n->column, "unsupported tag '%s'", (const char *)tag);
                return 0;
        }
        int r = attach(b, n);
        if (r < 0)
                return r;
        const yaml_char_t *anchor = type == EG_YN_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
        if (anchor) {
                b->anchors[b->depth] = strdup((const char *)anchor);
                if (!b->anchors[b->depth])
                        return -ENOMEM;
        }
        b->stack[b->depth++] = n;
        return 0;
}

static int on_collection_end(struct builder *b) {
        if (b->depth == 0)
                return 0;
        struct eg_yn *n = b->stack[--b->depth];
        close_collection(n);
        _cleanup_free_ char *anchor = TAKE_PTR(b->anchors[b->depth]);
        /* Registered only now, so an alias inside its own anchor is unknown: no cycles. */
        return remember_anchor(b, anchor, n);
}

static int on_alias(struct builder *b, const yaml_event_t *ev) {
        unsigned line = (unsigned)ev->start_mark.line + 1, column = (unsigned)ev->start_mark.column + 1;
        const char *name = (const char *)ev->data.alias.anchor;
        json_t *v = utf8_valid(name, strlen(name)) ? json_object_get(b->anchor_table, name) : NULL;
        if (!v) {
                doc_error(b->doc, line, column, "unknown anchor '%s'", name);
                return 0;
        }
        struct eg_yn *target = (struct eg_yn *)(intptr_t)json_integer_value(v);
        /* Counted before anything is expanded, so a "billion laughs" document stops at
         * the first alias that crosses the limit. */
        b->expanded += target->weight;
        if (b->expanded > EG_SPEC_MAX_ALIAS_EXPANSION) {
                doc_error(b->doc, line, column, "aliases expand to more than %d nodes (\"billion laughs\" document?)",
                          EG_SPEC_MAX_ALIAS_EXPANSION);
                return 0;
        }
        if (b->depth + target->height > EG_SPEC_MAX_DEPTH) {
                doc_error(b->doc, line, column, "nesting is deeper than %d levels", EG_SPEC_MAX_DEPTH);
                return 0;
        }
        return attach(b, target);
}

/* libyaml's reader errors carry a byte offset, not a mark. */
static void offset_to_position(const char *data, size_t len, size_t offset, unsigned *line, unsigned *column) {
        unsigned l = 1, c = 1;
        if (offset > len)
                offset = len;
        for (size_t i = 0; i < offset; i++) {
                unsigned char ch = (unsigned char)data[i];
                if (ch == '\n')
                        l++, c = 1;
                else if ((ch & 0xC0) != 0x80)
                        c++;
        }
        *line = l;
        *column = c;
}

static int parser_error(struct eg_yaml_reader *r, struct eg_ydoc *d) {
        yaml_parser_t *p = &r->parser;
        if (p->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        unsigned line, column;
        if (p->error == YAML_READER_ERROR) {
                offset_to_position(r->data, r->len, p->problem_offset, &line, &column);
                free(d->error);
                d->error = NULL;
                doc_error(d, line, column, "invalid text: %s", p->problem ? p->problem : "unreadable");
        } else {
                line = (unsigned)p->problem_mark.line + 1;
                column = (unsigned)p->problem_mark.column + 1;
                free(d->error);
                d->error = NULL;
                if (p->context)
                        doc_error(d, line, column, "invalid YAML: %s (%s at %zu:%zu)",
                                  p->problem ? p->problem : "syntax error", p->context, p->context_mark.line + 1,
                                  p->context_mark.column + 1);
                else
                        doc_error(d, line, column, "invalid YAML: %s", p->problem ? p->problem : "syntax error");
        }
        d->fatal = true;
        r->done = true;
        return 1;
}

static void builder_done(struct builder *b) {
        for (unsigned i = 0; i < EG_SPEC_MAX_DEPTH; i++)
                free(b->anchors[i]);
        json_decref(b->anchor_table);
}

int eg_yaml_reader_next(struct eg_yaml_reader *r, struct eg_ydoc **ret) {
        if (r->done)
                return 0;
        struct builder b = {0};
        b.doc = calloc(1, sizeof(*b.doc));
        b.anchor_table = json_object();
        if (!b.doc || !b.anchor_table) {
                free(b.doc);
                json_decref(b.anchor_table);
                return -ENOMEM;
        }
        int res = 0;
        for (;;) {
                yaml_event_t ev;
                if (!yaml_parser_parse(&r->parser, &ev)) {
                        res = parser_error(r, b.doc);
                        break;
                }
                int k = 0;
                bool finished = false;
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        r->done = true;
                        finished = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++r->n_documents > EG_SPEC_MAX_DOCUMENTS) {
                                doc_error(b.doc, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1,
                                          "more than %d documents in one file", EG_SPEC_MAX_DOCUMENTS);
                                b.doc->fatal = true;
                                r->done = true;
                                res = 1;
                                finished = true;
                        }
                        break;
                case YAML_DOCUMENT_END_EVENT:
                        res = 1;
                        finished = true;
                        break;
                case YAML_SCALAR_EVENT:
                        if (!b.doc->error)
                                k = on_scalar(&b, &ev);
                        break;
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (!b.doc->error)
                                k = on_collection_start(&b, &ev,
                                                        ev.type == YAML_MAPPING_START_EVENT ? EG_YN_MAP : EG_YN_SEQ);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        if (!b.doc->error)
                                k = on_collection_end(&b);
                        break;
                case YAML_ALIAS_EVENT:
                        if (!b.doc->error)
                                k = on_alias(&b, &ev);
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
                if (k < 0) {
                        res = k;
                        break;
                }
                if (finished)
                        break;
        }
        builder_done(&b);
        if (res <= 0) {
                eg_ydoc_free(b.doc);
                return res;
        }
        *ret = b.doc;
        return 1;
}

char *eg_yn_describe(const struct eg_yn *n) {
        switch (n->type) {
        case EG_YN_MAP:
                return strdup("a mapping");
        case EG_YN_SEQ:
                return strdup("a sequence");
        case EG_YN_NULL:
                return strdup("null");
        case EG_YN_STR:
                break;
        default:
                if (n->len <= 40)
                        return strdup(n->text);
                return eg_strdup_printf("%.40s...", n->text);
        }
        struct eg_buf b;
        eg_buf_init(&b, 0);
        int r = eg_buf_puts(&b, "\"");
        size_t i = 0;
        for (; r >= 0 && i < n->len && i < 40; i++) {
                unsigned char c = (unsigned char)n->text[i];
                if (c == '"' || c == '\\')
                        r = eg_buf_printf(&b, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                        r = eg_buf_printf(&b, "\\x%02x", c);
                else
                        r = eg_buf_append(&b, &n->text[i], 1);
        }
        /* do not cut a UTF-8 sequence in half */
        while (r >= 0 && i < n->len && ((unsigned char)n->text[i] & 0xC0) == 0x80)
                r = eg_buf_append(&b, &n->text[i++], 1);
        if (r >= 0)
                r = eg_buf_puts(&b, i < n->len ? "...\"" : "\"");
        if (r < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

static int map_to_json(struct eg_dctx *c, const struct eg_yn *n, const struct eg_fpath *p, json_t *obj) {
        for (size_t i = 0; i + 1 < n->n_items; i += 2) {
                const struct eg_yn *k = n->items[i], *v = n->items[i + 1];
                if (k->type == EG_YN_MAP || k->type == EG_YN_SEQ || k->type == EG_YN_NULL) {
                        eg_dctx_report(c, EG_SEVERITY_ERROR, k->line, k->column, p,
                                       "mapping keys must be strings, got %s",
                                       k->type == EG_YN_NULL  ? "null"
                                       : k->type == EG_YN_MAP ? "a mapping"
                                                              : "a sequence");
                        continue;
                }
                struct eg_fpath kp = {p, k->text, 0};
                if (json_object_get(obj, k->text)) {
                        const struct eg_yn *first = NULL;
                        for (size_t j = 0; !c->truncated && j < i && !first; j += 2)
                                if (n->items[j]->type != EG_YN_MAP && n->items[j]->type != EG_YN_SEQ &&
                                    n->items[j]->text && strcmp(n->items[j]->text, k->text) == 0)
                                        first = n->items[j];
                        if (first)
                                eg_dctx_report(c, EG_SEVERITY_ERROR, k->line, k->column, &kp,
                                               "duplicate key (first at %u:%u)", first->line, first->column);
                        else
                                eg_dctx_report(c, EG_SEVERITY_ERROR, k->line, k->column, &kp, "duplicate key");
                        continue;
                }
                json_t *jv = NULL;
                int r = eg_yn_to_json(c, v, &kp, &jv);
                if (r < 0)
                        return r;
                if (!jv)
                        continue;
                if (json_object_set_new(obj, k->text, jv) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int eg_yn_to_json(struct eg_dctx *c, const struct eg_yn *n, const struct eg_fpath *p, json_t **ret) {
        size_t errors = c->n_errors;
        json_t *j = NULL;
        int r = 0;
        *ret = NULL;
        switch (n->type) {
        case EG_YN_NULL:
                j = json_null();
                break;
        case EG_YN_BOOL:
                j = json_boolean(n->boolean);
                break;
        case EG_YN_INT:
                if (n->overflow) {
                        eg_dctx_report(c, EG_SEVERITY_ERROR, n->line, n->column, p,
                                       "integer %s is out of range (64-bit signed)", n->text);
                        return 0;
                }
                j = json_integer(n->integer);
                break;
        case EG_YN_FLOAT:
                if (!isfinite(n->real)) {
                        eg_dctx_report(c, EG_SEVERITY_ERROR, n->line, n->column, p,
                                       "%s cannot be represented (not a finite number)", n->text);
                        return 0;
                }
                j = json_real(n->real);
                break;
        case EG_YN_STR:
                j = json_stringn(n->text, n->len);
                break;
        case EG_YN_SEQ:
                j = json_array();
                for (size_t i = 0; j && i < n->n_items; i++) {
                        struct eg_fpath ip = {p, NULL, i};
                        json_t *v = NULL;
                        r = eg_yn_to_json(c, n->items[i], &ip, &v);
                        if (r < 0)
                                break;
                        if (v && json_array_append_new(j, v) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                }
                break;
        case EG_YN_MAP:
                j = json_object();
                if (j)
                        r = map_to_json(c, n, p, j);
                break;
        }
        if (!j)
                return -ENOMEM;
        if (r < 0 || c->n_errors != errors) {
                json_decref(j);
                return r;
        }
        *ret = j;
        return 0;
}

int eg_yaml_to_json(const char *data, size_t len, unsigned flags, json_t **ret, struct eg_error *err) {
        struct eg_yaml_reader *r = NULL;
        struct eg_ydoc *d = NULL;
        struct eg_dctx c = {.path = ""};
        json_t *j = NULL;
        int k = eg_yaml_reader_new(data, len, &r);
        if (k >= 0)
                k = eg_yaml_reader_next(r, &d);
        if (k < 0)
                goto out;
        if (d && d->error) {
                eg_error_set_at(err, NULL, d->error_line, d->error_column, "%s", d->error);
                k = -EBADMSG;
                goto out;
        }
        if (!d || !d->root) {
                j = json_object();
                k = j ? 0 : -ENOMEM;
                goto out;
        }
        if (d->root->type != EG_YN_MAP) {
                eg_error_set(err, "the document is not a mapping");
                k = -EBADMSG;
                goto out;
        }
        for (size_t i = 0; (flags & EG_YAML_PLAIN_STRINGS) && i < d->n_nodes; i++)
                if (d->nodes[i]->type == EG_YN_INT || d->nodes[i]->type == EG_YN_FLOAT)
                        d->nodes[i]->type = EG_YN_STR;
        k = eg_yn_to_json(&c, d->root, NULL, &j);
        if (k >= 0 && c.oom)
                k = c.oom;
        else if (k >= 0 && c.n_diags > 0) {
                eg_diag_to_error(&c.diags[0], err);
                k = -EBADMSG;
        }
out:
        if (k == 0)
                *ret = TAKE_PTR(j);
        json_decref(j);
        eg_dctx_done(&c);
        eg_ydoc_free(d);
        eg_yaml_reader_free(r);
        return k;
}
