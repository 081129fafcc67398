/* etcd-gitops audit: listing the records, once or following the log as it grows. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_list.h"
#include "output.h"

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

static int print_table(const struct eg_audit_record *recs, size_t n, bool header) {
        struct eg_table *t;
        int r = eg_table_new(8, &t);
        if (r < 0)
                return r;
        const char *head[] = {"SEQ", "TIME", "CLUSTER", "DECISION", "MEMBER", "OUTCOME", "REVISION", "REASON"};
        if (header)
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

/* The records as on disk (same keys, same order) plus "hash": an array, or one a line. */
static int print_json(const struct eg_audit_record *recs, size_t n, bool lines) {
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
        size_t i;
        json_t *o;
        if (r >= 0 && !lines)
                r = eg_out_json(all, stdout);
        else if (r >= 0)
                json_array_foreach(all, i, o) {
                        if (json_dumpf(o, stdout, JSON_COMPACT) < 0 || fputc('\n', stdout) == EOF)
                                r = -EIO;
                }
        json_decref(all);
        return r;
}

/* Keeps, in order, the records that the filters the log reader does not apply select;
 * frees the others. Returns how many are kept. */
static size_t keep_selected(const struct audit_args *a, struct eg_audit_record *recs, size_t n) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                struct eg_audit_record *rec = &recs[i];
                if (rec->time_ms >= a->since_ms &&
                    (!a->outcome || (rec->outcome && strcmp(rec->outcome, a->outcome) == 0)) &&
                    (!a->decision || (rec->decision && strcmp(rec->decision, a->decision) == 0)))
                        recs[k++] = *rec;
                else
                        eg_audit_record_done(rec);
        }
        return k;
}

/* Prints the selected records after *seq and moves *seq past them; *first: nothing printed
 * yet (the table's header, the note on a missing log). Returns an exit code. */
static int print_batch(const struct audit_args *a, uint64_t *seq, bool *first) {
        const char *path = eg_settings.audit_log;
        struct eg_audit_filter filter = a->filter;
        struct eg_audit_record *recs = NULL;
        size_t n = 0, skipped = 0;
        filter.since_seq = *seq;
        int r = eg_audit_read_full(path, &filter, &recs, &n, &skipped);
        if (r == -ENOENT) {
                if (*first)
                        fprintf(stderr, "etcd-gitops audit: no audit log at %s\n", path);
                if (*first && a->format == EG_OUT_JSON && !a->follow)
                        printf("[]\n");
                *first = false;
                return EG_EXIT_OK;
        }
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot read %s: %s\n", path, strerror(-r));
                return EG_EXIT_ERROR;
        }
        if (skipped > 0 && *first)
                fprintf(stderr,
                        "etcd-gitops audit: skipped %zu line%s of %s that %s (see 'etcd-gitops audit verify')\n",
                        skipped, skipped == 1 ? "" : "s", path,
                        skipped == 1 ? "is not a valid record" : "are not valid records");
        if (n > 0)
                *seq = recs[n - 1].seq;
        n = keep_selected(a, recs, n);
        if (a->format == EG_OUT_JSON)
                r = print_json(recs, n, a->follow);
        else if (*first || n > 0)
                r = print_table(recs, n, *first);
        eg_audit_records_free(recs, n);
        fflush(stdout);
        *first = false;
        if (r < 0) {
                fprintf(stderr, "etcd-gitops audit: cannot print the records: %s\n", strerror(-r));
                return EG_EXIT_ERROR;
        }
        return EG_EXIT_OK;
}

enum { FOLLOW_POLL_MS = 200 };

static volatile sig_atomic_t follow_stop;

static void on_stop(int sig) {
        (void)sig;
        follow_stop = 1;
}

int audit_list(const struct audit_args *a) {
        uint64_t seq = a->filter.since_seq;
        bool first = true;
        int k = print_batch(a, &seq, &first);
        if (k != EG_EXIT_OK || !a->follow)
                return k;
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        struct stat st;
        /* records are only ever appended: a change of size or inode is worth a read */
        struct stat seen = {0};
        if (stat(eg_settings.audit_log, &seen) < 0)
                seen.st_size = -1;
        while (!follow_stop && k == EG_EXIT_OK) {
                usleep(FOLLOW_POLL_MS * 1000);
                if (stat(eg_settings.audit_log, &st) < 0 || (st.st_size == seen.st_size && st.st_ino == seen.st_ino))
                        continue;
                seen = st;
                k = print_batch(a, &seq, &first);
        }
        return k;
}
