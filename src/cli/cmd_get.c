/* etcd-gitops get: live clusters and members, as tables, JSON or YAML. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/backup.h"
#include "output.h"
#include "setup.h"

enum { OPT_OUTPUT = 1 };

const struct eg_option cmd_get_options[] = {
        {OPT_OUTPUT, "output", 'o', "table|wide|json|yaml", "output format (default table)"},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"table", "wide", "json", "yaml", NULL};
        return id == OPT_OUTPUT ? eg_out_option("get", value, formats, userdata) : -EINVAL;
}

static const char *sget(json_t *o, const char *key) {
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : NULL;
}

static void print_clusters(json_t *all, bool wide) {
        struct eg_table *t;
        if (eg_table_new(wide ? 10 : 7, &t) < 0)
                return;
        const char *head[] = {"NAMESPACE", "NAME", "PHASE", "READY", "VERSION", "LEADER", "PLAN",
                              "REVISION", "ENDPOINTS", "REASON"};
        eg_table_add(t, head);
        size_t i;
        json_t *c;
        json_array_foreach(all, i, c) {
                json_t *md = json_object_get(c, "metadata"), *st = json_object_get(c, "status");
                _cleanup_free_ char *eps = NULL;
                json_t *urls = json_object_get(st, "clientURLs"), *u;
                size_t j;
                struct eg_buf b;
                eg_buf_init(&b, 0);
                json_array_foreach(urls, j, u) eg_buf_printf(&b, "%s%s", j ? "," : "", json_string_value(u));
                eps = eg_buf_steal(&b);
                const char *rev = sget(st, "lastAppliedRevision");
                char revbuf[20] = "";
                if (rev)
                        snprintf(revbuf, sizeof(revbuf), "%.19s", rev);
                const char *reason = sget(st, "reason") ? sget(st, "reason") : sget(st, "planReason");
                const char *row[] = {sget(md, "namespace"), sget(md, "name"), sget(st, "phase"),
                                     sget(st, "readyMembers"), sget(st, "currentVersion"), sget(st, "leader"),
                                     sget(st, "plan"), revbuf, eps, reason};
                eg_table_add(t, row);
        }
        eg_table_print(t, stdout);
        eg_table_free(t);
}

static void print_members(json_t *all, bool wide) {
        struct eg_table *t;
        if (eg_table_new(wide ? 11 : 6, &t) < 0)
                return;
        const char *head[] = {"CLUSTER", "MEMBER", "STATE", "ROLE", "VERSION", "ID",
                              "PID", "CLIENT-URL", "IN-ETCD", "RESTARTS", "REASON"};
        eg_table_add(t, head);
        size_t i, j;
        json_t *c, *m;
        json_array_foreach(all, i, c) {
                json_t *md = json_object_get(c, "metadata");
                _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", sget(md, "namespace"), sget(md, "name"));
                json_array_foreach(json_object_get(json_object_get(c, "status"), "memberDetails"), j, m) {
                        char pid[24], restarts[24];
                        snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(json_object_get(m, "pid")));
                        snprintf(restarts, sizeof(restarts), "%lld",
                                 (long long)json_integer_value(json_object_get(m, "restarts")));
                        const char *row[] = {cluster,
                                             sget(m, "name"),
                                             sget(m, "state"),
                                             sget(m, "role"),
                                             sget(m, "version"),
                                             sget(m, "id"),
                                             pid,
                                             sget(m, "clientURL"),
                                             json_is_true(json_object_get(m, "inMembership")) ? "yes" : "no",
                                             restarts,
                                             sget(m, "lifeReason")};
                        eg_table_add(t, row);
                }
        }
        eg_table_print(t, stdout);
        eg_table_free(t);
}

/* Keeps the clusters named name (either "name" or "ns/name"). */
/* The entries of all named name ("NAME" or "NS/NAME"; NULL: all), whose namespace and name are
 * under key (NULL: at the top). */
static json_t *filter(json_t *all, const char *key, const char *name) {
        json_t *out = json_array(), *c;
        size_t i;
        json_array_foreach(all, i, c) {
                json_t *md = key ? json_object_get(c, key) : c;
                const char *ns = sget(md, "namespace"), *n = sget(md, "name");
                _cleanup_free_ char *full = eg_strdup_printf("%s/%s", ns, n);
                if (!name || strcmp(name, n) == 0 || (full && strcmp(name, full) == 0))
                        json_array_append(out, c);
        }
        return out;
}

/* What every listing shares: "no KIND named" when name matched nothing, and the JSON and YAML
 * formats. False when the table is still to print. */
static bool print_common(json_t *sel, const char *kind, const char *name, enum eg_out_format fmt, int *ret_exit) {
        *ret_exit = EG_EXIT_OK;
        if (name && json_array_size(sel) == 0) {
                fprintf(stderr, "etcd-gitops get: no %s named '%s'\n", kind, name);
                *ret_exit = EG_EXIT_DIFF;
        } else if (fmt == EG_OUT_JSON)
                eg_out_json(sel, stdout);
        else if (fmt == EG_OUT_YAML)
                eg_out_yaml(sel, stdout);
        else
                return false;
        return true;
}

static void print_backups(json_t *sel, bool wide) {
        struct eg_table *t;
        json_t *b;
        size_t i;
        if (eg_table_new(wide ? 9 : 7, &t) < 0)
                return;
        const char *head[] = {"NAMESPACE", "NAME", "SUCCEEDED", "REVISION", "SIZE", "LAST-SUCCESS",
                              "OBJECT", "SHA256", "REASON"};
        eg_table_add(t, head);
        json_array_foreach(sel, i, b) {
                char rev[24], size[24];
                snprintf(rev, sizeof(rev), "%lld", (long long)json_integer_value(json_object_get(b, "etcdRevision")));
                snprintf(size, sizeof(size), "%lld", (long long)json_integer_value(json_object_get(b, "size")));
                const char *row[] = {sget(b, "namespace"), sget(b, "name"),
                                     json_is_true(json_object_get(b, "succeeded")) ? "true" : "false",
                                     rev, size, sget(b, "lastSuccessDate"), sget(b, "object"),
                                     sget(b, "sha256"), sget(b, "reason")};
                eg_table_add(t, row);
        }
        eg_table_print(t, stdout);
        eg_table_free(t);
}

static int get_backups(const char *name, enum eg_out_format fmt) {
        json_t *all = NULL;
        if (eg_backup_status_all(eg_settings.state_dir, &all) < 0) {
                eg_log_error("cannot read the backup status under %s", eg_settings.state_dir);
                return EG_EXIT_ERROR;
        }
        json_t *sel = filter(all, NULL, name);
        json_decref(all);
        int exit_code;
        if (!print_common(sel, "backup", name, fmt, &exit_code)) {
                if (json_array_size(sel) == 0)
                        printf("no backups\n");
                else
                        print_backups(sel, fmt == EG_OUT_WIDE);
        }
        json_decref(sel);
        return exit_code;
}

int cmd_get(const struct eg_command *cmd, int argc, char **argv) {
        enum eg_out_format fmt = EG_OUT_TABLE;
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &fmt, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        const char *what = n > 0 ? args[0] : "clusters", *name = n > 1 ? args[1] : NULL;
        if (n > 2 || (strcmp(what, "clusters") != 0 && strcmp(what, "members") != 0 && strcmp(what, "backups") != 0)) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                free(args);
                return EG_EXIT_ERROR;
        }
        if (strcmp(what, "backups") == 0) {
                int k = get_backups(name, fmt);
                free(args);
                return k;
        }
        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.read_only = true};
        if (eg_cli_env_open(&env, &eo) < 0) {
                free(args);
                return EG_EXIT_ERROR;
        }
        json_t *all = NULL;
        r = eg_reconciler_status_all(env.rec, &all);
        eg_cli_env_close(&env);
        if (r < 0) {
                free(args);
                return EG_EXIT_ERROR;
        }
        json_t *sel = filter(all, "metadata", name);
        json_decref(all);
        int exit_code;
        if (!print_common(sel, "cluster", name, fmt, &exit_code)) {
                if (strcmp(what, "members") == 0)
                        print_members(sel, fmt == EG_OUT_WIDE);
                else if (json_array_size(sel) == 0)
                        printf("no clusters\n");
                else
                        print_clusters(sel, fmt == EG_OUT_WIDE);
        }
        json_decref(sel);
        free(args);
        return exit_code;
}
