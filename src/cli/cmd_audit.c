/* etcd-gitops audit: its options, and verifying the log's hash chain (cmd_audit_list.c lists). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "audit_list.h"
#include "resolve.h"

enum { OPT_CLUSTER = 1, OPT_REVISION, OPT_SINCE_SEQ, OPT_SINCE, OPT_OUTCOME, OPT_DECISION, OPT_FOLLOW, OPT_OUTPUT };

const struct eg_option cmd_audit_options[] = {
        {OPT_CLUSTER, "cluster", 0, "NS/NAME",
         "only records about this cluster (NAME alone when one namespace has it)"},
        {OPT_REVISION, "revision", 0, "REV",
         "only records of this revision: commit id prefix (4+ hex digits) or part of the revision"},
        {OPT_SINCE_SEQ, "since-seq", 0, "N", "only records after sequence number N"},
        {OPT_SINCE, "since", 0, "DURATION|TIME", "only records of the last DURATION (1h) or from TIME (RFC 3339) on"},
        {OPT_OUTCOME, "outcome", 0, "OUTCOME",
         "only records with this outcome (ok, failed, blocked, skipped, dry-run)"},
        {OPT_DECISION, "decision", 0, "DECISION",
         "only records of this decision (create, upgrade-member, backup, ...)"},
        {OPT_FOLLOW, "follow", 'f', NULL, "keep printing records as they are appended, until Ctrl-C"},
        {OPT_OUTPUT, "output", 'o', "table|json",
         "output format (default table; with --follow, JSON is one record a line)"},
        {0},
};

/* A duration back from now (1h) or a time (RFC 3339), as Unix ms. */
static int parse_since(const char *value, int64_t *ret_ms) {
        int64_t d;
        if (eg_parse_duration_ms(value, &d) == 0 && d >= 0) {
                *ret_ms = eg_now_realtime_ms() - d;
                return 0;
        }
        if (eg_parse_rfc3339_ms(value, ret_ms) == 0)
                return 0;
        fprintf(stderr,
                "etcd-gitops audit: --since takes a duration such as 1h or a time such as "
                "2026-11-28T03:00:00Z, got '%s'\n",
                value);
        return -EINVAL;
}

static int on_option(int id, const char *value, void *userdata) {
        struct audit_args *a = userdata;
        static const char *const formats[] = {"table", "json", NULL};
        a->filtered = true;
        switch (id) {
        case OPT_CLUSTER:
                a->cluster = value;
                return 0;
        case OPT_REVISION:
                if (!*value) {
                        fprintf(stderr, "etcd-gitops audit: --revision must not be empty\n");
                        return -EINVAL;
                }
                a->filter.revision = value;
                return 0;
        case OPT_SINCE_SEQ:
                if (eg_parse_uint64(value, &a->filter.since_seq) < 0) {
                        fprintf(stderr, "etcd-gitops audit: --since-seq must be a number, got '%s'\n", value);
                        return -EINVAL;
                }
                return 0;
        case OPT_SINCE:
                return parse_since(value, &a->since_ms);
        case OPT_OUTCOME:
                a->outcome = value;
                return 0;
        case OPT_DECISION:
                a->decision = value;
                return 0;
        case OPT_FOLLOW:
                a->follow = true;
                return 0;
        case OPT_OUTPUT:
                return eg_out_option("audit", value, formats, &a->format);
        }
        return -EINVAL;
}

/* A missing log is an error here, unlike for listing: a chain that was there and is gone
 * must not pass a check. */
static int verify(void) {
        const char *path = eg_settings.audit_log;
        uint64_t n = 0;
        struct eg_error broken = {0};
        _cleanup_free_ char *warning = NULL;
        int r = eg_audit_verify_full(path, &n, &broken, &warning);
        if (r == -ENOENT) {
                fprintf(stderr, "etcd-gitops audit: no audit log at %s\n", path);
                return EG_EXIT_ERROR;
        }
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot read %s: %s\n", path, strerror(-r));
                return EG_EXIT_ERROR;
        }
        if (r == 1) {
                printf("audit log %s: chain broken after %" PRIu64 " good record%s: line %u: %s\n", path, n,
                       n == 1 ? "" : "s", broken.line, broken.message);
                eg_error_done(&broken);
                return EG_EXIT_DIFF;
        }
        if (warning)
                fprintf(stderr, "etcd-gitops audit: warning: %s\n", warning);
        printf("audit log %s: %" PRIu64 " record%s, chain intact\n", path, n, n == 1 ? "" : "s");
        return EG_EXIT_OK;
}

/* --cluster as the log knows it: NAME alone finds the one namespace that has it. */
static int resolve_cluster(struct audit_args *a, char **ret) {
        struct eg_audit_record *recs = NULL;
        size_t n = 0, n_known = 0;
        int r = eg_audit_read(eg_settings.audit_log, NULL, &recs, &n);
        if (r < 0 && r != -ENOENT)
                n = 0;
        char **known = calloc(n + 1, sizeof(char *));
        json_t *seen = json_object();
        for (size_t i = 0; known && seen && i < n; i++)
                if (recs[i].cluster && !json_object_get(seen, recs[i].cluster)) {
                        json_object_set_new(seen, recs[i].cluster, json_true());
                        known[n_known++] = (char *)recs[i].cluster;
                }
        r = known && seen ? eg_cli_resolve_cluster("audit", a->cluster, known, n_known, ret) : -ENOMEM;
        free(known);
        json_decref(seen);
        eg_audit_records_free(recs, n);
        return r;
}

/* "verify" alone, or nothing: what else was typed is said. */
static int check_args(char **args, size_t n, const struct audit_args *a, bool *ret_verify) {
        bool verify = n > 0 && strcmp(args[0], "verify") == 0;
        if (verify && n > 1)
                fprintf(stderr, "etcd-gitops audit: verify takes no argument, got '%s'\n", args[1]);
        else if (!verify && n > 0)
                fprintf(stderr, "etcd-gitops audit: unexpected argument '%s' (the only one is 'verify')\n", args[0]);
        else if (verify && a->filtered)
                fprintf(stderr, "etcd-gitops audit: verify checks the whole log and takes no --cluster, --revision, "
                                "--since-seq, --since, --outcome, --decision, --follow or -o\n");
        else {
                *ret_verify = verify;
                return 0;
        }
        return -EINVAL;
}

int cmd_audit(const struct eg_command *cmd, int argc, char **argv) {
        struct audit_args a = {.format = EG_OUT_TABLE};
        char **args;
        size_t n;
        bool do_verify = false;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        r = check_args(args, n, &a, &do_verify);
        free(args);
        if (r < 0)
                return EG_EXIT_ERROR;
        if (do_verify)
                return verify();
        _cleanup_free_ char *cluster = NULL;
        if (a.cluster && resolve_cluster(&a, &cluster) < 0)
                return EG_EXIT_ERROR;
        a.filter.cluster = cluster;
        return audit_list(&a);
}
