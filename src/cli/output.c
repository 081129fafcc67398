/* Aligned tables and JSON/YAML rendering for command output. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <yaml.h>

#include "output.h"
#include "etcd-gitops/util.h"

int eg_out_parse_format(const char *s, const char *const *allowed, enum eg_out_format *ret) {
        static const char *const names[] = {"table", "wide", "json", "yaml", "text", "name"};
        for (const char *const *a = allowed; *a; a++) {
                if (strcmp(s, *a) != 0)
                        continue;
                for (size_t i = 0; i < EG_ELEMENTSOF(names); i++)
                        if (strcmp(s, names[i]) == 0) {
                                *ret = (enum eg_out_format)i;
                                return 0;
                        }
        }
        return -EINVAL;
}

int eg_out_option(const char *command, const char *s, const char *const *allowed, enum eg_out_format *ret) {
        if (eg_out_parse_format(s, allowed, ret) == 0)
                return 0;
        fprintf(stderr, "etcd-gitops %s: -o must be ", command);
        for (const char *const *a = allowed; *a; a++)
                fprintf(stderr, "%s%s", *a, !a[1] ? "" : !a[2] ? " or " : ", ");
        fprintf(stderr, ", got '%s'\n", s);
        return -EINVAL;
}

struct eg_table {
        size_t n_cols, n_rows;
        char **cells;
};

int eg_table_new(size_t n_cols, struct eg_table **ret) {
        struct eg_table *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->n_cols = n_cols;
        *ret = t;
        return 0;
}

int eg_table_add(struct eg_table *t, const char *const *cells) {
        char **c = realloc(t->cells, (t->n_rows + 1) * t->n_cols * sizeof(char *));
        if (!c)
                return -ENOMEM;
        t->cells = c;
        for (size_t i = 0; i < t->n_cols; i++)
                c[t->n_rows * t->n_cols + i] = strdup(cells[i] && *cells[i] ? cells[i] : "-");
        t->n_rows++;
        return 0;
}

void eg_table_print(struct eg_table *t, FILE *f) {
        size_t *w = calloc(t->n_cols, sizeof(size_t));
        if (!w)
                return;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_cols; c++) {
                        const char *s = t->cells[r * t->n_cols + c];
                        size_t l = s ? strlen(s) : 1;
                        if (l > w[c])
                                w[c] = l;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_cols; c++) {
                        const char *s = t->cells[r * t->n_cols + c];
                        if (c + 1 == t->n_cols)
                                fprintf(f, "%s\n", s ? s : "-");
                        else
                                fprintf(f, "%-*s   ", (int)w[c], s ? s : "-");
                }
        }
        free(w);
}

void eg_table_free(struct eg_table *t) {
        if (!t)
                return;
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
}

void eg_out_age(int64_t since_ms, int64_t now_ms, char buf[static 24]) {
        int64_t s = (now_ms - since_ms) / 1000;
        if (since_ms <= 0)
                snprintf(buf, 24, "-");
        else if (s < 120)
                snprintf(buf, 24, "%llds", (long long)(s < 0 ? 0 : s));
        else if (s < 2 * 3600)
                snprintf(buf, 24, "%lldm", (long long)(s / 60));
        else if (s < 2 * 86400)
                snprintf(buf, 24, "%lldh", (long long)(s / 3600));
        else
                snprintf(buf, 24, "%lldd", (long long)(s / 86400));
}

int eg_out_json(json_t *j, FILE *f) {
        if (json_dumpf(j, f, JSON_INDENT(2)) < 0)
                return -EIO;
        fputc('\n', f);
        return 0;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style) {
        yaml_event_t ev;
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1, style))
                return -ENOMEM;
        return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
}

static int emit(yaml_emitter_t *em, json_t *j) {
        yaml_event_t ev;
        char num[64];
        size_t i;
        const char *key;
        json_t *v;
        switch (json_typeof(j)) {
        case JSON_OBJECT:
                if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
                    !yaml_emitter_emit(em, &ev))
                        return -EIO;
                json_object_foreach(j, key, v) {
                        if (emit_scalar(em, key, YAML_ANY_SCALAR_STYLE) < 0 || emit(em, v) < 0)
                                return -EIO;
                }
                if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
                        return -EIO;
                return 0;
        case JSON_ARRAY:
                if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
                    !yaml_emitter_emit(em, &ev))
                        return -EIO;
                json_array_foreach(j, i, v) {
                        if (emit(em, v) < 0)
                                return -EIO;
                }
                if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
                        return -EIO;
                return 0;
        case JSON_STRING:
                /* quoted so "3", "true" or "null" stay strings when read back */
                return emit_scalar(em, json_string_value(j), YAML_DOUBLE_QUOTED_SCALAR_STYLE);
        case JSON_INTEGER:
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
                return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
        case JSON_REAL:
                snprintf(num, sizeof(num), "%.17g", json_real_value(j));
                return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
        case JSON_TRUE:
                return emit_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
        case JSON_FALSE:
                return emit_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
        default:
                return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
        }
}

int eg_out_yaml(json_t *j, FILE *f) {
        yaml_emitter_t em;
        yaml_event_t ev;
        int r = -EIO;
        if (!yaml_emitter_initialize(&em))
                return -ENOMEM;
        yaml_emitter_set_output_file(&em, f);
        yaml_emitter_set_unicode(&em, 1);
        if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && yaml_emitter_emit(&em, &ev) &&
            yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && yaml_emitter_emit(&em, &ev) &&
            emit(&em, j) == 0 && yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
            yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev))
                r = 0;
        yaml_emitter_delete(&em);
        return r;
}
