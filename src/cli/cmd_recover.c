/* etcd-gitops recover: the way back for a cluster whose quorum is lost for good. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setup.h"

enum {
        OPT_FROM_MEMBER = 1,
        OPT_FROM_BACKUP,
        OPT_DRY_RUN,
        OPT_FORCE,
        OPT_S3_ENDPOINT,
        OPT_S3_PATH_STYLE,
        OPT_SOURCE,
};

struct recover_args {
        struct eg_recover_request req;
        bool from_member, dry_run, path_style;
        const char *s3_endpoint, *source;
};

const struct eg_option cmd_recover_options[] = {
        {OPT_FROM_MEMBER, "from-member", 0, "NAME",
         "force a new cluster from this survivor (default: the most advanced), the others stopped, data kept", true},
        {OPT_FROM_BACKUP, "from-backup", 0, "REF",
         "restore a new cluster from PATH or s3://BUCKET/KEY (default: the newest verified backup)", true},
        {OPT_DRY_RUN, "dry-run", 0, NULL, "print what would happen and what would be lost; change nothing",
         EG_OPT_FLAG_AT(struct recover_args, dry_run)},
        {OPT_FORCE, "force", 0, NULL, "recover although members with data kept could be restarted in place",
         EG_OPT_FLAG_AT(struct recover_args, req.force)},
        {OPT_S3_ENDPOINT, "s3-endpoint", 0, "URL", "S3-compatible server of an s3:// backup (default AWS)",
         EG_OPT_STRING_AT(struct recover_args, s3_endpoint)},
        {OPT_S3_PATH_STYLE, "s3-force-path-style", 0, NULL, "address objects as ENDPOINT/BUCKET/KEY",
         EG_OPT_FLAG_AT(struct recover_args, path_style)},
        {OPT_SOURCE, "source", 0, "SRC",
         "the manifests: the new cluster runs the cluster's version and etcd environment (default: the "
         "version its members ran, no environment)",
         EG_OPT_STRING_AT(struct recover_args, source)},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        struct recover_args *a = userdata;
        switch (id) {
        case OPT_FROM_MEMBER:
                a->from_member = true;
                a->req.member = value;
                return 0;
        case OPT_FROM_BACKUP:
                a->req.from_backup = true;
                a->req.backup_ref = value;
                return 0;
        }
        return -EINVAL;
}

/* "--from-member NAME" and "--from-backup REF" as two words: the parser leaves the value
 * among the positional arguments (the option's value is optional); take it back. */
static const char *take_value(int argc, char **argv, const char *option, char **args, size_t *n) {
        for (int i = 1; i + 1 < argc; i++) {
                if (strcmp(argv[i], option) != 0)
                        continue;
                for (size_t j = 0; j < *n; j++)
                        if (args[j] == argv[i + 1]) {
                                memmove(&args[j], &args[j + 1], (*n - j - 1) * sizeof(*args));
                                (*n)--;
                                return argv[i + 1];
                        }
        }
        return NULL;
}

static const char *yes_no(bool b) { return b ? "yes" : "no"; }

static void print_survivors(const char *cluster, const struct eg_recover_view *v) {
        size_t answering = 0;
        int top = eg_recover_most_advanced(v);
        for (size_t i = 0; i < v->n_members; i++)
                answering += v->members[i].voter && v->members[i].answers;
        printf("cluster %s: %zu of %zu voting members answer (quorum needs %zu)\n\n", cluster, answering, v->voters,
               eg_quorum(v->voters));
        printf("%-24s %-8s %-8s %-12s %-10s %s\n", "MEMBER", "RUNNING", "ANSWERS", "RAFT-INDEX", "REVISION", "DATA");
        for (size_t i = 0; i < v->n_members; i++) {
                const struct eg_recover_member *m = &v->members[i];
                char index[24] = "-", rev[24] = "-";
                if (m->answers) {
                        snprintf(index, sizeof(index), "%" PRIu64, m->raft_index);
                        snprintf(rev, sizeof(rev), "%" PRId64, m->revision);
                }
                printf("%-24s %-8s %-8s %-12s %-10s %s%s\n", m->name, yes_no(m->running), yes_no(m->answers), index,
                       rev,
                       m->running     ? "in use"
                       : m->data_kept ? "kept"
                                      : "gone",
                       (int)i == top ? "  (most advanced)" : "");
        }
        if (v->backup_ref) {
                printf("\nnewest verified backup: %s", v->backup_ref);
                if (v->backup_revision > 0)
                        printf(" (revision %" PRId64 ")", v->backup_revision);
                printf(", taken %s\n", v->backup_date ? v->backup_date : "at an unknown time");
        } else
                printf("\nnewest verified backup: none recorded by an EtcdBackup\n");
}

/* The two ways back, each with what it would lose. */
static void print_ways(const char *cluster, const struct eg_recover_view *v, bool force) {
        struct eg_recover_request member = {.force = force}, backup = {.from_backup = true, .force = force};
        struct eg_recover_plan p = {0};
        struct eg_error e = {0};
        printf("\nways back (add --dry-run to see one in full):\n");
        if (eg_recover_plan(v, &member, cluster, &p, &e) >= 0)
                printf("  etcd-gitops recover %s --from-member %s\n      %s\n", cluster, v->members[p.seed].name,
                       p.reason);
        else
                printf("  etcd-gitops recover %s --from-member NAME\n      %s\n", cluster, e.message ? e.message : "");
        eg_recover_plan_done(&p);
        eg_error_done(&e);
        if (eg_recover_plan(v, &backup, cluster, &p, &e) >= 0)
                printf("  etcd-gitops recover %s --from-backup\n      %s\n", cluster, p.reason);
        else
                printf("  etcd-gitops recover %s --from-backup PATH|s3://BUCKET/KEY\n      %s\n", cluster,
                       e.message ? e.message : "");
        eg_recover_plan_done(&p);
        eg_error_done(&e);
}

/* The cluster's manifest in src: *ret_source and *ret_set own what *ret_obj points into. */
static int read_manifest(const char *src, const char *ns, const char *name, struct eg_source **ret_source,
                         struct eg_desired_set **ret_set, struct eg_source_revision *ret_rev,
                         const struct eg_object **ret_obj) {
        struct eg_source_options so = {
                .location = src,
                .subpath = eg_settings.path,
                .ref = eg_settings.ref,
                .state_dir = eg_settings.state_dir,
        };
        struct eg_error err = {0};
        int r = eg_source_open(&so, ret_source, &err);
        if (r >= 0)
                r = eg_source_read(*ret_source, ret_set, ret_rev, &err);
        if (r < 0) {
                eg_log_error("cannot read the manifests in %s: %s", src, err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                return r;
        }
        eg_error_done(&err);
        const struct eg_object *obj = eg_desired_set_find(*ret_set, EG_KIND_CLUSTER, ns, name);
        if (!obj || eg_desired_set_object_has_errors(*ret_set, EG_KIND_CLUSTER, ns, name)) {
                eg_cli_print_diags(*ret_set);
                eg_log_error("%s has no %s %s/%s", src, obj ? "valid EtcdCluster" : "EtcdCluster", ns, name);
                return -ENOENT;
        }
        *ret_obj = obj;
        return 0;
}

/* A daemon or an apply holds the audit log for as long as it runs: recovering under it
 * would race its own steps. */
static int open_audit(struct eg_audit **ret) {
        char *warning = NULL;
        int r = eg_audit_open(eg_settings.audit_log, ret, &warning);
        if (warning) {
                eg_log_warning("%s", warning);
                free(warning);
        }
        if (r == -EBUSY)
                eg_log_error("the audit log %s is held by another etcd-gitops (the daemon, `etcd-gitops run`, or an "
                             "apply under way): stop it (systemctl stop etcd-gitops), recover, then start it again "
                             "to grow the cluster back",
                             eg_settings.audit_log);
        else if (r < 0)
                eg_log_error_errno(r, "cannot open the audit log '%s': %m", eg_settings.audit_log);
        return r;
}

/* What a recovery works on; recovery_done frees it all. */
struct recovery {
        char *ns, *name, *cluster;
        struct eg_audit *audit;
        struct eg_runtime *rt;
        struct eg_recover_view view;
        struct eg_source *source;
        struct eg_desired_set *set;
        struct eg_source_revision srev;
        const struct eg_object *manifest; /* in set */
};

static void recovery_done(struct recovery *x) {
        eg_recover_view_done(&x->view);
        eg_desired_set_free(x->set);
        eg_source_revision_done(&x->srev);
        eg_source_free(x->source);
        eg_runtime_free(x->rt);
        eg_audit_close(x->audit);
        free(x->ns);
        free(x->name);
        free(x->cluster);
}

/* The manifest (with --source), the runtime and what is left of the cluster; logs why not. */
static int observe(const struct recover_args *a, bool act, struct recovery *x) {
        struct eg_error err = {0};
        int r = 0;
        if (a->source &&
            (r = read_manifest(a->source, x->ns, x->name, &x->source, &x->set, &x->srev, &x->manifest)) < 0)
                return r;
        if ((r = eg_cli_runtime_open(!act, &x->rt, &err)) < 0)
                eg_log_error("%s", err.message ? err.message : strerror(-r));
        else if ((r = eg_recover_observe(x->rt, eg_settings.state_dir, x->ns, x->name, &x->view, &err)) == -ENOENT)
                eg_log_error("no cluster %s on the %s runtime (state dir %s): see `etcd-gitops get clusters`",
                             x->cluster, eg_runtime_name(x->rt), eg_settings.state_dir);
        else if (r < 0)
                eg_log_error("cannot observe %s: %s", x->cluster, err.message ? err.message : strerror(-r));
        eg_error_done(&err);
        return r;
}

/* No way chosen: the survivors and the ways back. */
static int survey(const struct recover_args *a, const struct recovery *x) {
        struct eg_recover_request any = {.force = a->req.force};
        struct eg_recover_plan plan = {0};
        struct eg_error err = {0};
        int exit_code = EG_EXIT_DIFF;
        print_survivors(x->cluster, &x->view);
        if (eg_recover_plan(&x->view, &any, x->cluster, &plan, &err) == -EBUSY) {
                fflush(stdout);
                eg_log_error("%s", err.message);
                exit_code = EG_EXIT_ERROR;
        } else
                print_ways(x->cluster, &x->view, a->req.force);
        eg_recover_plan_done(&plan);
        eg_error_done(&err);
        return exit_code;
}

static int run(const struct recover_args *a, const struct recovery *x, struct eg_recover_plan *plan,
               struct eg_error *err) {
        struct eg_recover_options ro = {
                .runtime = x->rt,
                .audit = x->audit,
                .state_dir = eg_settings.state_dir,
                .namespace = x->ns,
                .name = x->name,
                .spec = x->manifest ? &x->manifest->cluster : NULL,
                .origin = x->manifest ? &x->manifest->origin : NULL,
                .revision = x->srev.revision,
                .s3_endpoint = a->s3_endpoint,
                .s3_force_path_style = a->path_style,
        };
        int r = eg_recover_run(&ro, &x->view, plan, err);
        if (r < 0) {
                eg_log_error("recovery of %s failed: %s", x->cluster, err->message ? err->message : strerror(-r));
                return EG_EXIT_ERROR;
        }
        printf("recovered %s: %s\n", x->cluster, plan->reason);
        if (plan->revision_gap >= 0)
                printf("revision gap: %" PRId64 "\n", plan->revision_gap);
        printf("now `etcd-gitops apply --source SRC` (or the daemon) grows it back to spec.size\n");
        return EG_EXIT_OK;
}

/* The way chosen: planned, then taken or (dry run) told. */
static int recover(const struct recover_args *a, const struct recovery *x) {
        struct eg_recover_plan plan = {0};
        struct eg_error err = {0};
        int exit_code = EG_EXIT_ERROR, r;
        if ((r = eg_recover_plan(&x->view, &a->req, x->cluster, &plan, &err)) < 0)
                eg_log_error("%s", err.message ? err.message : strerror(-r));
        else if (!eg_runtime_supports(x->rt, EG_RUNTIME_FORCE_NEW_CLUSTER))
                eg_log_error(
                        "recovery on the %s runtime is not supported yet: follow etcd's disaster recovery guide by "
                        "hand (etcdctl snapshot restore, or --force-new-cluster on one member)",
                        eg_runtime_name(x->rt));
        else if (a->dry_run) {
                printf("would %s\n", plan.reason);
                printf("nothing changed (dry run)\n");
                exit_code = EG_EXIT_OK;
        } else
                exit_code = run(a, x, &plan, &err);
        eg_recover_plan_done(&plan);
        eg_error_done(&err);
        return exit_code;
}

int cmd_recover(const struct eg_command *cmd, int argc, char **argv) {
        struct recover_args a = {0};
        struct recovery x = {0};
        char **args = NULL;
        size_t n = 0;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        if (a.from_member && !a.req.member)
                a.req.member = take_value(argc, argv, "--from-member", args, &n);
        if (a.req.from_backup && !a.req.backup_ref)
                a.req.backup_ref = take_value(argc, argv, "--from-backup", args, &n);
        const char *arg = n == 1 ? args[0] : NULL;
        free(args);
        if (!arg || (a.from_member && a.req.from_backup)) {
                fprintf(stderr, "usage: etcd-gitops %s\n", cmd->usage);
                return EG_EXIT_ERROR;
        }
        if (eg_cli_cluster_name(arg, &x.ns, &x.name) < 0 || !(x.cluster = eg_strdup_printf("%s/%s", x.ns, x.name))) {
                recovery_done(&x);
                return EG_EXIT_ERROR;
        }
        bool act = (a.from_member || a.req.from_backup) && !a.dry_run;
        int exit_code = EG_EXIT_ERROR;
        if ((act && open_audit(&x.audit) < 0) || observe(&a, act, &x) < 0)
                exit_code = EG_EXIT_ERROR;
        else if (!a.from_member && !a.req.from_backup)
                exit_code = survey(&a, &x);
        else
                exit_code = recover(&a, &x);
        recovery_done(&x);
        return exit_code;
}
