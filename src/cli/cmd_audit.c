/* etcd-gitops audit: list the decision records, or verify the log's hash chain. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "etcd-gitops/audit.h"
#include "output.h"

enum { OPT_CLUSTER = 1, OPT_REVISION, OPT_SINCE, OPT_OUTPUT };

const struct eg_option cmd_audit_options[] = {
        {OPT_CLUSTER, "cluster", 0, "NS/NAME", "only records about this cluster"},
        {OPT_REVISION, "revision", 0, "REV", "only records of this revision: commit id prefix (4+ hex digits) or part of the revision"},
        {OPT_SINCE, "since-seq", 0, "N", "only records after sequence number N"},
        {OPT_OUTPUT, "output", 'o', "table|json", "output format (default table)"},
        {0},
};

struct audit_args {
        struct eg_audit_filter filter;
        enum eg_out_format format;
        bool filtered; /* any listing option given: meaningless with verify */
};

static int on_option(int id, const char *value, void *userdata) {
        struct audit_args *a = userdata;
        static const char *const formats[] = {"table", "json", NULL};
        a->filtered = true;
        switch (id) {
        case OPT_CLUSTER:
                a->filter.cluster = value;
                return 0;
        case OPT_REVISION:
                if (!*value) {
                        fprintf(stderr, "etcd-gitops audit: --revision must not be empty\n");
                        return -EINVAL;
                }
                a->filter.revision = value;
                return 0;
        case OPT_SINCE:
                if (eg_parse_uint64(value, &a->filter.since_seq) < 0) {
                        fprintf(stderr, "etcd-gitops audit: --since-seq must be a number, got '%s'\n", value);
                        return -EINVAL;
                }
                return 0;
        case OPT_OUTPUT:
                return eg_out_option("audit", value, formats, &a->format);
        }
        return -EINVAL;
}

/* A table cell on one line: reasons and errors may hold newlines and control bytes. */
static char *one_line(const char *s) {
        if (!s)
                return NULL;
        char *c = strdup(s);
        if (c)
                for (char *p = c; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f)
                                *p = ' ';
        return c;
}

/* The commit's first 12 characters, or of the part after the revision's last ':' (the
 * hash in "main@sha1:<hex>" or "sha256:<hex>"): what --revision accepts back. */
static char *short_revision(const struct eg_audit_record *r) {
        const char *s = r->commit;
        if (!s && r->revision) {
                const char *colon = strrchr(r->revision, ':');
                s = colon && colon[1] ? colon + 1 : r->revision;
        }
        if (!s)
                return NULL;
        _cleanup_free_ char *c = strndup(s, 12);
        return one_line(c);
}

static int print_table(const struct eg_audit_record *recs, size_t n) {
        struct eg_table *t;
        int r = eg_table_new(8, &t);
        if (r < 0)
                return r;
        const char *head[] = {"SEQ", "TIME", "CLUSTER", "DECISION", "MEMBER", "OUTCOME", "REVISION", "REASON"};
        r = eg_table_add(t, head);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct eg_audit_record *rec = &recs[i];
                char seq[24], time[32];
                snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
                eg_format_rfc3339_ms(rec->time_ms, time);
                /* seconds are enough to read a table by; -o json has the milliseconds */
                time[19] = 'Z';
                time[20] = 0;
                _cleanup_free_ char *cluster = one_line(rec->cluster), *decision = one_line(rec->decision),
                                    *member = one_line(rec->member), *outcome = one_line(rec->outcome),
                                    *rev = short_revision(rec), *reason = one_line(rec->reason);
                const char *row[] = {seq, time, cluster, decision, member, outcome, rev, reason};
                r = eg_table_add(t, row);
        }
        if (r >= 0)
                eg_table_print(t, stdout);
        eg_table_free(t);
        return r;
}

/* The records as on disk (same keys, same order) plus "hash". */
static int print_json(const struct eg_audit_record *recs, size_t n) {
        json_t *all = json_array();
        if (!all)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *line = NULL;
                r = eg_audit_record_format(&recs[i], &line);
                if (r < 0)
                        break;
                json_t *o = json_loads(line, 0, NULL);
                if (!o || json_object_set_new(o, "hash", json_string(recs[i].hash)) < 0 ||
                    json_array_append_new(all, o) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = eg_out_json(all, stdout);
        json_decref(all);
        return r;
}

static int list(const struct audit_args *a) {
        const char *path = eg_settings.audit_log;
        struct eg_audit_record *recs = NULL;
        size_t n = 0, skipped = 0;
        int r = eg_audit_read_full(path, &a->filter, &recs, &n, &skipped);
        if (r == -ENOENT) {
                fprintf(stderr, "etcd-gitops audit: no audit log at %s\n", path);
                if (a->format == EG_OUT_JSON)
                        printf("[]\n");
                return EG_EXIT_OK;
        }
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot read %s: %s\n", path, strerror(-r));
                return EG_EXIT_ERROR;
        }
        if (skipped > 0)
                fprintf(stderr, "etcd-gitops audit: skipped %zu line%s of %s that %s (see 'etcd-gitops audit verify')\n",
                        skipped, skipped == 1 ? "" : "s", path,
                        skipped == 1 ? "is not a valid record" : "are not valid records");
        r = a->format == EG_OUT_JSON ? print_json(recs, n) : print_table(recs, n);
        eg_audit_records_free(recs, n);
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot print the records: %s\n", strerror(-r));
                return EG_EXIT_ERROR;
        }
        return EG_EXIT_OK;
}

/* A missing log is an error here, unlike for listing: a chain that was there and is gone
 * must not pass a check. */
static int verify(void) {
        const char *path = eg_settings.audit_log;
        uint64_t n = 0, bad = 0;
        _cleanup_free_ char *message = NULL;
        int r = eg_audit_verify_full(path, &n, &bad, &message);
        if (r == -ENOENT) {
                fprintf(stderr, "etcd-gitops audit: no audit log at %s\n", path);
                return EG_EXIT_ERROR;
        }
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot read %s: %s\n", path, strerror(-r));
                return EG_EXIT_ERROR;
        }
        if (r == 1) {
                printf("audit log %s: chain broken after %" PRIu64 " good record%s: %s\n", path, n,
                       n == 1 ? "" : "s", message);
                return EG_EXIT_DIFF;
        }
        if (message)
                fprintf(stderr, "etcd-gitops audit: warning: %s\n", message);
        printf("audit log %s: %" PRIu64 " record%s, chain intact\n", path, n, n == 1 ? "" : "s");
        return EG_EXIT_OK;
}

int cmd_audit(const struct eg_command *cmd, int argc, char **argv) {
        struct audit_args a = {.format = EG_OUT_TABLE};
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &a, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        bool do_verify = n == 1 && strcmp(args[0], "verify") == 0;
        if (n > 1 || (n == 1 && !do_verify)) {
                fprintf(stderr, "etcd-gitops audit: unexpected argument '%s' (the only one is 'verify')\n",
                        do_verify ? args[1] : args[0]);
                free(args);
                return EG_EXIT_ERROR;
        }
        free(args);
        if (do_verify && a.filtered) {
                fprintf(stderr, "etcd-gitops audit: verify checks the whole log and takes no "
                                "--cluster, --revision, --since-seq or -o\n");
                return EG_EXIT_ERROR;
        }
        return do_verify ? verify() : list(&a);
}
