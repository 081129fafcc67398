/* audit: the append-only, hash-chained JSON Lines log of every decision. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One decision. Strings may be NULL (omitted from the record). The log fills seq, time,
 * prev (sha256 of the previous line) when appending. Format: specs/audit-log.md. */
struct eg_audit_record {
        uint64_t seq;
        int64_t time_ms; /* realtime; 0 = now */
        char *revision;  /* source revision, e.g. "main@sha1:<hex>" or "sha256:<hex>" */
        char *commit;    /* git commit id when known */
        char *path;      /* manifest file */
        unsigned line;
        char *blob; /* git blob id when known */
        char *cluster; /* "namespace/name" */
        char *decision; /* create, add-learner, promote, remove, replace-dead, upgrade-member,
                           stop-unknown, remove-orphan, prune, noop, blocked, failed, invalid, ... */
        char *member;
        char *reason;
        char *outcome; /* "ok", "failed", "blocked", "skipped", "dry-run" */
        int64_t duration_ms;
        char *error;
        char *prev; /* hex sha256 of the previous record's line; filled by append */
        char *hash; /* hex sha256 of this record's line; filled by append and read */
};
void eg_audit_record_done(struct eg_audit_record *r);

struct eg_audit; /* an open log */

/* Opens (creating with parents) the log, reads its tail to continue the chain. A torn
 * last line (no trailing newline after a crash) is truncated away with a warning in
 * *ret_warning (malloc'd, may be NULL). */
int eg_audit_open(const char *path, struct eg_audit **ret, char **ret_warning);
void eg_audit_close(struct eg_audit *a);

/* Appends one record, fsync'd before returning. Fills r->seq, r->prev, r->hash and
 * r->time_ms when 0. */
int eg_audit_append(struct eg_audit *a, struct eg_audit_record *r);

struct eg_audit_filter {
        const char *cluster;  /* exact "ns/name" */
        const char *revision; /* prefix of commit id, or substring of revision */
        uint64_t since_seq;
};

/* Reads every record matching filter. ret is an array the caller frees with
 * eg_audit_records_free(). */
int eg_audit_read(const char *path, const struct eg_audit_filter *filter,
                  struct eg_audit_record **ret, size_t *ret_n);
void eg_audit_records_free(struct eg_audit_record *r, size_t n);

/* Checks the hash chain. Returns 0 when intact, 1 when broken (ret_bad_seq/line and
 * ret_message say where and why), negative errno on I/O failure. */
int eg_audit_verify(const char *path, uint64_t *ret_bad_line, char **ret_message);
