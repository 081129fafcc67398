/* etcd-gitops validate: parse and check manifests, report with file:line:col. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "output.h"
#include "etcd-gitops/spec.h"

enum { OPT_STRICT = 1, OPT_OUTPUT };

struct validate_args {
        bool strict;
        enum eg_out_format fmt;
};

const struct eg_option cmd_validate_options[] = {
        {OPT_STRICT, "strict", 0, NULL, "unknown fields are errors, not warnings",
         EG_OPT_FLAG_AT(struct validate_args, strict)},
        {OPT_OUTPUT, "output", 'o', "text|json", "output format (default text)"},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"text", "json", NULL};
        struct validate_args *a = userdata;
        if (id == OPT_OUTPUT && eg_out_parse_format(value, formats, &a->fmt) == 0)
                return 0;
        fprintf(stderr, "etcd-gitops validate: --output must be text or json, got '%s'\n", value);
        return -EINVAL;
}

static int print_text(const struct eg_desired_set *set) {
        size_t warnings = set->n_diags - set->n_errors;
        for (size_t i = 0; i < set->n_diags; i++) {
                const struct eg_diag *d = &set->diags[i];
                const char *sev = d->severity == EG_SEVERITY_ERROR ? "error" : "warning";
                if (d->field)
                        fprintf(stderr, "%s:%u:%u: %s: %s: %s\n", d->path, d->line, d->column, sev, d->field,
                                d->message);
                else
                        fprintf(stderr, "%s:%u:%u: %s: %s\n", d->path, d->line, d->column, sev, d->message);
        }
        for (size_t i = 0; i < set->n_objects; i++) {
                const struct eg_object *o = set->objects[i];
                printf("ok  %-11s  %s/%s  %s:%u\n", eg_kind_to_string(o->kind), o->meta.namespace, o->meta.name,
                       o->origin.path, o->origin.line);
        }
        printf("%zu %s valid, %zu invalid (%zu %s, %zu %s) in %zu %s\n", set->n_objects,
               eg_plural(set->n_objects, "object", "objects"), set->n_invalid, set->n_errors,
               eg_plural(set->n_errors, "error", "errors"), warnings, eg_plural(warnings, "warning", "warnings"),
               set->n_files, eg_plural(set->n_files, "file", "files"));
        return 0;
}

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static int print_json(const struct eg_desired_set *set) {
        json_t *objects = json_array(), *diags = json_array();
        int r = objects && diags ? 0 : -ENOMEM;
        for (size_t i = 0; r == 0 && i < set->n_objects; i++) {
                const struct eg_object *o = set->objects[i];
                json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "kind", eg_kind_to_string(o->kind), "namespace",
                                      o->meta.namespace, "name", o->meta.name, "path", o->origin.path, "line",
                                      (json_int_t)o->origin.line, "column", (json_int_t)o->origin.column);
                if (!j || json_array_append_new(objects, j) < 0)
                        r = -ENOMEM;
        }
        for (size_t i = 0; r == 0 && i < set->n_diags; i++) {
                const struct eg_diag *d = &set->diags[i];
                json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:o, s:s, s:o, s:o, s:o}", "severity",
                                      d->severity == EG_SEVERITY_ERROR ? "error" : "warning", "path", d->path, "line",
                                      (json_int_t)d->line, "column", (json_int_t)d->column, "field",
                                      string_or_null(d->field), "message", d->message, "kind",
                                      d->has_object ? json_string(eg_kind_to_string(d->kind)) : json_null(),
                                      "namespace", string_or_null(d->has_object ? d->namespace : NULL), "name",
                                      string_or_null(d->has_object ? d->name : NULL));
                if (!j || json_array_append_new(diags, j) < 0)
                        r = -ENOMEM;
        }
        if (r < 0) {
                json_decref(objects);
                json_decref(diags);
                return r;
        }
        json_t *doc = json_pack("{s:b, s:I, s:I, s:I, s:o, s:o}", "valid", set->n_errors == 0, "files",
                                (json_int_t)set->n_files, "errors", (json_int_t)set->n_errors, "warnings",
                                (json_int_t)(set->n_diags - set->n_errors), "objects", objects, "diagnostics", diags);
        if (!doc)
                return -ENOMEM;
        r = json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ? -EIO : 0;
        json_decref(doc);
        if (r == 0)
                putchar('\n');
        return r;
}

int cmd_validate(const struct eg_command *cmd, int argc, char **argv) {
        struct validate_args a = {0};
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        if (n == 0) {
                fprintf(stderr, "etcd-gitops validate: no PATH given (see 'etcd-gitops validate --help')\n");
                free(args);
                return EG_EXIT_ERROR;
        }
        struct eg_spec_options opt = {.strict = a.strict, .paths_as_given = true};
        struct eg_desired_set *set = NULL;
        int load = eg_spec_load_paths(args, n, &opt, &set);
        free(args);
        if (!set)
                return eg_log_error_errno(load, "cannot load manifests: %m"), EG_EXIT_ERROR;
        if (load == -ENOMEM) {
                eg_desired_set_free(set);
                return eg_log_error_errno(load, "cannot load manifests: %m"), EG_EXIT_ERROR;
        }
        r = a.fmt == EG_OUT_JSON ? print_json(set) : print_text(set);
        fflush(stdout);
        int code = load < 0 || r < 0 ? EG_EXIT_ERROR : set->n_errors > 0 ? EG_EXIT_DIFF : EG_EXIT_OK;
        eg_desired_set_free(set);
        return code;
}
