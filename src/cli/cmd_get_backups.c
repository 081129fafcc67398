/* etcd-gitops get backups: the EtcdBackups' recorded status, without the scheduler's own fields. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/backup.h"
#include "get.h"
#include "setup.h"

/* What the scheduler keeps for itself in a status file: not the user's business. */
static const char *const internal_fields[] = {"attemptHash", "lastAttemptMs", "oneShotDone", "firstSeenMs"};

static void print_table(json_t *sel, const struct get_args *a, FILE *f) {
        struct eg_table *t;
        json_t *b;
        size_t i;
        bool wide = a->fmt == EG_OUT_WIDE;
        if (eg_table_new(wide ? 9 : 7, &t) < 0)
                return;
        const char *head[] = {"NAMESPACE",    "NAME",   "SUCCEEDED", "REVISION", "SIZE",
                              "LAST-SUCCESS", "OBJECT", "SHA256",    "REASON"};
        if (!a->no_headers)
                eg_table_add(t, head);
        json_array_foreach(sel, i, b) {
                char rev[24], size[24];
                snprintf(rev, sizeof(rev), "%lld", (long long)json_integer_value(json_object_get(b, "etcdRevision")));
                snprintf(size, sizeof(size), "%lld", (long long)json_integer_value(json_object_get(b, "size")));
                const char *row[] = {get_str(b, "namespace"),
                                     get_str(b, "name"),
                                     json_is_true(json_object_get(b, "succeeded")) ? "true" : "false",
                                     rev,
                                     size,
                                     get_str(b, "lastSuccessDate"),
                                     get_str(b, "object"),
                                     get_str(b, "sha256"),
                                     get_str(b, "reason")};
                eg_table_add(t, row);
        }
        eg_table_print(t, f);
        eg_table_free(t);
}

/* "NS/NAME" of every EtcdBackup the source holds, as keys of a new object. */
static int source_backups(const char *source, json_t **ret) {
        struct policy_args p = {.source = source};
        struct eg_cli_env_options eo = {.p = &p, .read_only = true};
        struct eg_cli_env env;
        struct eg_desired_set *set = NULL;
        struct eg_source_revision rev = {0};
        eg_policy_init(&p.policy);
        if (eg_cli_env_open(&env, &eo) < 0)
                return -EIO;
        int r = eg_cli_read_source(&env, &set, &rev);
        eg_cli_env_close(&env);
        if (r < 0)
                return r;
        json_t *names = json_object();
        for (size_t i = 0; names && i < set->n_objects; i++) {
                const struct eg_object *o = set->objects[i];
                _cleanup_free_ char *key = eg_strdup_printf("%s/%s", o->meta.namespace, o->meta.name);
                if (o->kind == EG_KIND_BACKUP && key)
                        json_object_set_new(names, key, json_true());
        }
        eg_desired_set_free(set);
        eg_source_revision_done(&rev);
        *ret = names;
        return names ? 0 : -ENOMEM;
}

/* Drops the internal fields, and with a source the backups whose manifest is gone. */
static json_t *visible(json_t *all, json_t *in_source) {
        json_t *out = json_array(), *b;
        size_t i;
        json_array_foreach(all, i, b) {
                _cleanup_free_ char *key = eg_strdup_printf("%s/%s", get_str(b, "namespace"), get_str(b, "name"));
                if (in_source && (!key || !json_object_get(in_source, key)))
                        continue;
                json_t *c = json_copy(b);
                for (size_t k = 0; c && k < EG_ELEMENTSOF(internal_fields); k++)
                        json_object_del(c, internal_fields[k]);
                json_array_append_new(out, c);
        }
        return out;
}

int get_backups(const struct get_args *a, FILE *f) {
        json_t *all = NULL, *in_source = NULL;
        if (a->source && source_backups(a->source, &in_source) < 0)
                return EG_EXIT_ERROR;
        if (eg_backup_status_all(eg_settings.state_dir, &all) < 0) {
                eg_log_error("cannot read the backup status under %s", eg_settings.state_dir);
                json_decref(in_source);
                return EG_EXIT_ERROR;
        }
        json_t *shown = visible(all, in_source), *sel = get_filter(shown, NULL, a->name);
        json_decref(all);
        json_decref(shown);
        json_decref(in_source);
        int exit_code;
        if (!get_print_common(sel, "backup", a->name, a->fmt, f, &exit_code)) {
                size_t i;
                json_t *b;
                if (!a->source && a->fmt != EG_OUT_NAME)
                        fprintf(stderr,
                                "etcd-gitops get: backups as recorded in %s, whether or not their manifest "
                                "remains (--source SRC: only those it holds)\n",
                                eg_settings.state_dir);
                if (a->fmt == EG_OUT_NAME)
                        json_array_foreach(sel, i, b)
                                fprintf(f, "backup/%s/%s\n", get_str(b, "namespace"), get_str(b, "name"));
                else if (json_array_size(sel) == 0)
                        fprintf(f, "no backups\n");
                else
                        print_table(sel, a, f);
        }
        json_decref(sel);
        return exit_code;
}
