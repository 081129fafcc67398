/* etcd-gitops get: live clusters and members, as tables, names, JSON or YAML. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "get.h"
#include "hints.h"
#include "setup.h"

enum { OPT_OUTPUT = 1, OPT_ALL_NAMESPACES, OPT_NO_HEADERS, OPT_WATCH, OPT_SOURCE };

const struct eg_option cmd_get_options[] = {
        {OPT_OUTPUT, "output", 'o', "table|wide|name|json|yaml", "output format (default table)"},
        {OPT_ALL_NAMESPACES, "all-namespaces", 'A', NULL, "every namespace, whatever --namespace says",
         EG_OPT_FLAG_AT(struct get_args, all_namespaces)},
        {OPT_NO_HEADERS, "no-headers", 0, NULL, "tables without their header line",
         EG_OPT_FLAG_AT(struct get_args, no_headers)},
        {OPT_WATCH, "watch", 'w', NULL, "print again whenever a status changes, until Ctrl-C",
         EG_OPT_FLAG_AT(struct get_args, watch)},
        {OPT_SOURCE, "source", 0, "SRC", "get backups: only those whose manifest SRC still holds",
         EG_OPT_STRING_AT(struct get_args, source)},
        {0},
};

static const char *const kinds[][2] = {{"clusters", "cluster"}, {"members", "member"}, {"backups", "backup"}};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"table", "wide", "name", "json", "yaml", NULL};
        struct get_args *a = userdata;
        return id == OPT_OUTPUT ? eg_out_option("get", value, formats, &a->fmt) : -EINVAL;
}

/* A table cell on one line: messages may hold newlines. */
static char *one_line(const char *s) {
        char *c = s ? strdup(s) : NULL;
        for (char *p = c; p && *p; p++)
                if ((unsigned char)*p < 0x20)
                        *p = ' ';
        return c;
}

/* Why a cluster is not simply fine: suspended, its last error, or what its plan waits for. */
static char *cluster_message(json_t *st) {
        const char *plan = get_str(st, "plan");
        json_t *suspended = json_object_get(st, "suspended");
        if (suspended) {
                const char *why = get_str(suspended, "reason");
                _cleanup_free_ char *line = one_line(why);
                return eg_strdup_printf("Suspended%s%s", line ? ": " : "", line ? line : "");
        }
        if (get_str(st, "lastError"))
                return one_line(get_str(st, "lastError"));
        if (plan && strcmp(plan, "converged") != 0)
                return one_line(get_str(st, "planReason"));
        return NULL;
}

/* Since when etcd-gitops has known the cluster: its oldest condition's transition. */
static int64_t cluster_since_ms(json_t *st) {
        int64_t oldest = 0, t;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(st, "conditions"), i, c) {
                const char *s = get_str(c, "lastTransitionTime");
                if (s && eg_parse_rfc3339_ms(s, &t) == 0 && (oldest == 0 || t < oldest))
                        oldest = t;
        }
        return oldest;
}

static char *join_urls(json_t *urls) {
        struct eg_buf b;
        size_t j;
        json_t *u;
        eg_buf_init(&b, 0);
        json_array_foreach(urls, j, u) eg_buf_printf(&b, "%s%s", j ? "," : "", json_string_value(u));
        return eg_buf_steal(&b);
}

static void cluster_row(struct eg_table *t, json_t *c, bool wide, int64_t now) {
        json_t *md = json_object_get(c, "metadata"), *st = json_object_get(c, "status");
        _cleanup_free_ char *eps = wide ? join_urls(json_object_get(st, "clientURLs")) : NULL;
        _cleanup_free_ char *message = cluster_message(st);
        char rev[20] = "", age[24];
        if (get_str(st, "lastAppliedRevision"))
                snprintf(rev, sizeof(rev), "%.19s", get_str(st, "lastAppliedRevision"));
        eg_out_age(cluster_since_ms(st), now, age);
        const char *reason = get_str(st, "reason") ? get_str(st, "reason") : get_str(st, "planReason");
        const char *row[] = {get_str(md, "namespace"),
                             get_str(md, "name"),
                             get_str(st, "phase"),
                             get_str(st, "readyMembers"),
                             get_str(st, "currentVersion"),
                             get_str(st, "leader"),
                             get_str(st, "plan"),
                             wide ? rev : message,
                             wide ? eps : age,
                             reason,
                             message,
                             age};
        eg_table_add(t, row);
}

static void print_clusters(json_t *all, const struct get_args *a, FILE *f) {
        bool wide = a->fmt == EG_OUT_WIDE;
        struct eg_table *t;
        if (eg_table_new(wide ? 12 : 9, &t) < 0)
                return;
        const char *head[] = {"NAMESPACE",
                              "NAME",
                              "PHASE",
                              "READY",
                              "VERSION",
                              "LEADER",
                              "PLAN",
                              wide ? "REVISION" : "MESSAGE",
                              wide ? "ENDPOINTS" : "AGE",
                              "REASON",
                              "MESSAGE",
                              "AGE"};
        if (!a->no_headers)
                eg_table_add(t, head);
        int64_t now = eg_now_realtime_ms();
        size_t i;
        json_t *c;
        json_array_foreach(all, i, c) cluster_row(t, c, wide, now);
        eg_table_print(t, f);
        eg_table_free(t);
}

static void member_row(struct eg_table *t, const char *cluster, json_t *m) {
        char pid[24], restarts[24], db[24] = "", term[24] = "", index[24] = "";
        snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(json_object_get(m, "pid")));
        snprintf(restarts, sizeof(restarts), "%lld", (long long)json_integer_value(json_object_get(m, "restarts")));
        if (json_object_get(m, "dbSize")) {
                snprintf(db, sizeof(db), "%lld", (long long)json_integer_value(json_object_get(m, "dbSize")));
                snprintf(term, sizeof(term), "%lld", (long long)json_integer_value(json_object_get(m, "raftTerm")));
                snprintf(index, sizeof(index), "%lld", (long long)json_integer_value(json_object_get(m, "raftIndex")));
        }
        const char *row[] = {cluster,
                             get_str(m, "name"),
                             get_str(m, "state"),
                             get_str(m, "role"),
                             get_str(m, "version"),
                             get_str(m, "id"),
                             pid,
                             get_str(m, "clientURL"),
                             get_str(m, "peerURL"),
                             db,
                             term,
                             index,
                             json_is_true(json_object_get(m, "inMembership")) ? "yes" : "no",
                             restarts,
                             get_str(m, "lifeReason")};
        eg_table_add(t, row);
}

static void print_members(json_t *all, const struct get_args *a, FILE *f) {
        bool wide = a->fmt == EG_OUT_WIDE;
        struct eg_table *t;
        if (eg_table_new(wide ? 15 : 6, &t) < 0)
                return;
        const char *head[] = {"CLUSTER",   "MEMBER",     "STATE",      "ROLE",     "VERSION",
                              "ID",        "PID",        "CLIENT-URL", "PEER-URL", "DB-SIZE",
                              "RAFT-TERM", "RAFT-INDEX", "IN-ETCD",    "RESTARTS", "REASON"};
        if (!a->no_headers)
                eg_table_add(t, head);
        size_t i, j;
        json_t *c, *m;
        json_array_foreach(all, i, c) {
                json_t *md = json_object_get(c, "metadata");
                _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", get_str(md, "namespace"), get_str(md, "name"));
                json_array_foreach(json_object_get(json_object_get(c, "status"), "memberDetails"), j, m)
                        member_row(t, cluster, m);
        }
        eg_table_print(t, f);
        eg_table_free(t);
}

static void print_names(json_t *sel, bool members, FILE *f) {
        size_t i, j;
        json_t *c, *m;
        json_array_foreach(sel, i, c) {
                json_t *md = json_object_get(c, "metadata");
                if (!members) {
                        fprintf(f, "cluster/%s/%s\n", get_str(md, "namespace"), get_str(md, "name"));
                        continue;
                }
                json_array_foreach(json_object_get(json_object_get(c, "status"), "memberDetails"), j, m) fprintf(
                        f, "member/%s/%s/%s\n", get_str(md, "namespace"), get_str(md, "name"), get_str(m, "name"));
        }
}

json_t *get_filter(json_t *all, const char *key, const char *name) {
        json_t *out = json_array(), *c;
        size_t i;
        json_array_foreach(all, i, c) {
                json_t *md = key ? json_object_get(c, key) : c;
                const char *ns = get_str(md, "namespace"), *n = get_str(md, "name");
                _cleanup_free_ char *full = eg_strdup_printf("%s/%s", ns, n);
                if (!name || strcmp(name, n) == 0 || (full && strcmp(name, full) == 0))
                        json_array_append(out, c);
        }
        return out;
}

bool get_print_common(json_t *sel, const char *kind, const char *name, enum eg_out_format fmt, FILE *f, int *ret_exit) {
        *ret_exit = EG_EXIT_OK;
        if (name && json_array_size(sel) == 0) {
                fprintf(stderr, "etcd-gitops get: no %s named '%s'\n", kind, name);
                *ret_exit = EG_EXIT_DIFF;
        } else if (fmt == EG_OUT_JSON)
                eg_out_json(sel, f);
        else if (fmt == EG_OUT_YAML)
                eg_out_yaml(sel, f);
        else
                return false;
        return true;
}

/* Whether each cluster is suspended, from its suspension file: a status written before a
 * suspend or resume (or by no pass at all) does not say. */
static void mark_suspended(json_t *all) {
        size_t i;
        json_t *c;
        json_array_foreach(all, i, c) {
                json_t *md = json_object_get(c, "metadata"), *st = json_object_get(c, "status"), *s = NULL;
                if (!st)
                        continue;
                if (eg_suspension_read(eg_settings.state_dir, get_str(md, "namespace"), get_str(md, "name"), &s) > 0)
                        json_object_set_new(st, "suspended", s);
                else
                        json_object_del(st, "suspended");
        }
}

static int get_clusters(const struct get_args *a, FILE *f) {
        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.read_only = true};
        json_t *all = NULL;
        if (eg_cli_env_open(&env, &eo) < 0)
                return EG_EXIT_ERROR;
        int r = eg_reconciler_status_all(env.rec, &all);
        eg_cli_env_close(&env);
        if (r < 0)
                return EG_EXIT_ERROR;
        mark_suspended(all);
        bool members = strcmp(a->kind, "members") == 0;
        json_t *sel = get_filter(all, "metadata", a->name);
        json_decref(all);
        if (members && a->fmt == EG_OUT_WIDE && get_members_etcd_status(sel) < 0)
                eg_log_warning("cannot ask etcd for the members' status");
        int exit_code;
        if (!get_print_common(sel, "cluster", a->name, a->fmt, f, &exit_code)) {
                if (a->fmt == EG_OUT_NAME)
                        print_names(sel, members, f);
                else if (members)
                        print_members(sel, a, f);
                else if (json_array_size(sel) == 0)
                        fprintf(f, "no clusters\n");
                else
                        print_clusters(sel, a, f);
        }
        json_decref(sel);
        return exit_code;
}

/* The plural of a kind or of its singular; NULL for anything else. */
static const char *kind_of(const char *what) {
        for (size_t i = 0; i < EG_ELEMENTSOF(kinds); i++)
                if (strcmp(what, kinds[i][0]) == 0 || strcmp(what, kinds[i][1]) == 0)
                        return kinds[i][0];
        return NULL;
}

static int check_args(const struct eg_command *cmd, struct get_args *a, char **args, size_t n) {
        const char *what = n > 0 ? args[0] : "clusters";
        if (n > 2) {
                fprintf(stderr, "etcd-gitops get: unexpected argument '%s'\nusage: etcd-gitops %s\n", args[2],
                        cmd->usage);
                return -EINVAL;
        }
        a->kind = kind_of(what);
        if (!a->kind) {
                const char *names[2 * EG_ELEMENTSOF(kinds) + 1] = {0};
                for (size_t i = 0; i < 2 * EG_ELEMENTSOF(kinds); i++)
                        names[i] = kinds[i / 2][i % 2];
                const char *near = eg_hint_closest(what, names);
                fprintf(stderr,
                        "etcd-gitops get: unknown kind '%s'%s%s%s: get shows clusters, members or backups "
                        "(or cluster, member, backup)\n",
                        what, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
                return -EINVAL;
        }
        if (a->source && strcmp(a->kind, "backups") != 0) {
                fprintf(stderr, "etcd-gitops get: --source only applies to get backups\n");
                return -EINVAL;
        }
        a->name = n > 1 ? args[1] : NULL;
        if (a->all_namespaces)
                eg_settings.namespace = NULL;
        return 0;
}

int cmd_get(const struct eg_command *cmd, int argc, char **argv) {
        struct get_args a = {.fmt = EG_OUT_TABLE};
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        r = check_args(cmd, &a, args, n);
        free(args);
        if (r < 0)
                return EG_EXIT_ERROR;
        get_render_fn render = strcmp(a.kind, "backups") == 0 ? get_backups : get_clusters;
        if (a.watch)
                return get_watch(&a, render);
        return render(&a, stdout);
}
