/* etcd-gitops diff: what applying the source would do, without changing anything. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "policy_options.h"
#include "setup.h"

enum { OPT_OUTPUT = 1 };

const struct eg_option cmd_diff_options[] = {
        POLICY_OPTIONS,
        {OPT_OUTPUT, "output", 'o', "text|json", "output format (default text)"},
        {0},
};

struct diff_args {
        struct policy_args p;
        enum eg_out_format fmt;
};

static int on_option(int id, const char *value, void *userdata) {
        struct diff_args *a = userdata;
        static const char *const formats[] = {"text", "json", NULL};
        int k = policy_option(&a->p, id, value);
        if (k != 0)
                return k < 0 ? k : 0;
        return id == OPT_OUTPUT ? eg_out_option("diff", value, formats, &a->fmt) : -EINVAL;
}

/* The spec lines that can be compared with what runs: desired from the manifest,
 * observed from the members. */
static int spec_lines(json_t *entry, bool desired, char ***ret, size_t *ret_n) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        if (desired) {
                json_t *spec = json_object_get(json_object_get(entry, "desired"), "spec");
                if (spec) {
                        json_t *size = json_object_get(spec, "size"), *ver = json_object_get(spec, "version");
                        if (size)
                                eg_buf_printf(&b, "size: %lld\n", (long long)json_integer_value(size));
                        eg_buf_printf(&b, "version: %s\n", ver ? json_string_value(ver) : "3.2.13");
                        if (json_is_true(json_object_get(spec, "paused")))
                                eg_buf_puts(&b, "paused: true\n");
                }
        } else {
                json_t *st = json_object_get(json_object_get(entry, "observed"), "status");
                json_t *members = json_object_get(st, "memberDetails"), *m;
                size_t i, voters = 0;
                json_array_foreach(members, i, m)
                        voters += json_is_true(json_object_get(m, "inMembership")) &&
                                  strcmp(json_string_value(json_object_get(m, "role")), "learner") != 0;
                const char *ver = json_string_value(json_object_get(st, "currentVersion"));
                if (json_array_size(members) > 0) {
                        eg_buf_printf(&b, "size: %zu\n", voters);
                        if (ver)
                                eg_buf_printf(&b, "version: %s\n", ver);
                        if (json_is_true(json_object_get(st, "controlPaused")))
                                eg_buf_puts(&b, "paused: true\n");
                }
        }
        char *text = eg_buf_steal(&b);
        if (!text)
                return -ENOMEM;
        size_t n = 0, cap = 8;
        char **lines = calloc(cap, sizeof(char *));
        for (char *s = text, *nl; lines && (nl = strchr(s, '\n')); s = nl + 1) {
                *nl = 0;
                if (n + 1 >= cap) {
                        char **g = realloc(lines, (cap *= 2) * sizeof(char *));
                        if (!g)
                                break;
                        lines = g;
                }
                lines[n++] = strdup(s);
        }
        free(text);
        if (!lines)
                return -ENOMEM;
        *ret = lines;
        *ret_n = n;
        return 0;
}

static void free_lines(char **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

/* Unified diff of two short line lists through their longest common subsequence. */
static void print_unified(char **a, size_t na, char **b, size_t nb, bool color) {
        size_t *lcs = calloc((na + 1) * (nb + 1), sizeof(size_t));
        if (!lcs)
                return;
#define L(i, j) lcs[(i) * (nb + 1) + (j)]
        for (size_t i = na; i-- > 0;)
                for (size_t j = nb; j-- > 0;)
                        L(i, j) = strcmp(a[i], b[j]) == 0 ? L(i + 1, j + 1) + 1
                                                          : (L(i + 1, j) > L(i, j + 1) ? L(i + 1, j) : L(i, j + 1));
        printf("@@ -1,%zu +1,%zu @@\n", na, nb);
        size_t i = 0, j = 0;
        while (i < na || j < nb) {
                if (i < na && j < nb && strcmp(a[i], b[j]) == 0) {
                        printf(" %s\n", a[i]);
                        i++, j++;
                } else if (i < na && (j == nb || L(i + 1, j) >= L(i, j + 1))) {
                        /* what goes before what replaces it, as diff(1) prints a hunk */
                        printf("%s-%s%s\n", color ? "\033[31m" : "", a[i], color ? "\033[0m" : "");
                        i++;
                } else {
                        printf("%s+%s%s\n", color ? "\033[32m" : "", b[j], color ? "\033[0m" : "");
                        j++;
                }
        }
#undef L
        free(lcs);
}

static bool entry_changes(json_t *e) {
        const char *state = json_string_value(json_object_get(e, "state"));
        return !state ||
               (strcmp(state, "converged") != 0 && strcmp(state, "paused") != 0 && strcmp(state, "absent") != 0);
}

static void print_text(json_t *plans, bool color) {
        size_t i, j;
        json_t *e, *act;
        json_array_foreach(plans, i, e) {
                const char *ns = json_string_value(json_object_get(e, "namespace"));
                const char *name = json_string_value(json_object_get(e, "name"));
                const char *state = json_string_value(json_object_get(e, "state"));
                const char *reason = json_string_value(json_object_get(e, "reason"));
                json_t *origin = json_object_get(e, "origin");
                printf("%scluster %s/%s: %s%s%s%s\n", color ? "\033[1m" : "", ns, name, state, reason ? " — " : "",
                       reason ? reason : "", color ? "\033[0m" : "");
                json_array_foreach(json_object_get(e, "actions"), j, act) {
                        const char *member = json_string_value(json_object_get(act, "member"));
                        printf("  %s %s%s%s: %s\n",
                               j == 0 ? "next:" : "then:", json_string_value(json_object_get(act, "kind")),
                               member ? " " : "", member ? member : "",
                               json_string_value(json_object_get(act, "reason")));
                }
                char **a = NULL, **b = NULL;
                size_t na = 0, nb = 0;
                if (spec_lines(e, false, &a, &na) == 0 && spec_lines(e, true, &b, &nb) == 0) {
                        bool same = na == nb;
                        for (size_t k = 0; same && k < na; k++)
                                same = strcmp(a[k], b[k]) == 0;
                        if (!same) {
                                printf("--- observed/%s/%s\n+++ desired/%s/%s", ns, name, ns, name);
                                if (origin)
                                        printf(" (%s:%lld)", json_string_value(json_object_get(origin, "path")),
                                               (long long)json_integer_value(json_object_get(origin, "line")));
                                printf("\n");
                                print_unified(a, na, b, nb, color);
                        }
                }
                free_lines(a, na);
                free_lines(b, nb);
        }
}

int cmd_diff(const struct eg_command *cmd, int argc, char **argv) {
        struct diff_args a = {.fmt = EG_OUT_TEXT};
        eg_policy_init(&a.p.policy);
        /* the daemon's source (systemd/etcd-gitops.env), so that diff compares with what it follows */
        const char *env_source = getenv("ETCD_GITOPS_SOURCE");
        a.p.source = env_source && *env_source ? env_source : NULL;
        int r, exit_code;
        if (eg_cli_parse_sourced(cmd, argc, argv, on_option, &a, &a.p, &exit_code) < 0)
                return exit_code;
        struct eg_cli_env env;
        struct eg_cli_env_options eo = {.p = &a.p, .read_only = true};
        if (eg_cli_env_open(&env, &eo) < 0)
                return EG_EXIT_ERROR;
        struct eg_desired_set *set = NULL;
        struct eg_source_revision srev = {0};
        if (eg_cli_read_source(&env, &set, &srev) < 0) {
                eg_cli_env_close(&env);
                return EG_EXIT_ERROR;
        }
        json_t *plans = NULL;
        r = eg_reconciler_plan_all(env.rec, set, &plans);
        eg_cli_env_close(&env);
        if (r < 0) {
                eg_desired_set_free(set);
                return EG_EXIT_ERROR;
        }
        bool changes = set->n_errors > 0;
        size_t i;
        json_t *e;
        json_array_foreach(plans, i, e) changes |= entry_changes(e);
        if (a.fmt == EG_OUT_JSON) {
                json_t *diags = json_array();
                for (size_t k = 0; k < set->n_diags; k++) {
                        const struct eg_diag *d = &set->diags[k];
                        json_array_append_new(diags,
                                              json_pack("{s:s, s:s, s:i, s:i, s:s?, s:s}", "severity",
                                                        d->severity == EG_SEVERITY_ERROR ? "error" : "warning", "path",
                                                        d->path, "line", (int)d->line, "column", (int)d->column,
                                                        "field", d->field, "message", d->message));
                }
                json_t *out = json_pack("{s:s, s:s?, s:b, s:b, s:o, s:o}", "revision", srev.revision, "commit",
                                        srev.commit, "dirty", srev.dirty, "changes", changes, "clusters",
                                        json_incref(plans), "diagnostics", diags);
                eg_out_json(out, stdout);
                json_decref(out);
        } else {
                eg_cli_print_diags(set);
                print_text(plans, eg_settings.color);
                if (!changes)
                        printf("no changes: every cluster matches %s\n", srev.revision);
        }
        json_decref(plans);
        eg_desired_set_free(set);
        eg_source_revision_done(&srev);
        return changes ? EG_EXIT_DIFF : EG_EXIT_OK;
}
