/* audit: the append-only, hash-chained JSON Lines log of every decision. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

/* A record line is at most this many bytes including its newline; append cuts long
 * strings to one common length (ending them with "…(truncated)") to fit, readers reject
 * longer lines. */
#define EG_AUDIT_LINE_MAX 65536

/* One decision. Strings may be NULL (omitted from the record). Passed to append, the
 * strings are the caller's and only read; the log stamps seq, time and prev itself.
 * Returned by a read, every string (prev and hash too) is owned by the record and freed
 * by eg_audit_record_done(). Format: specs/audit-log.md. */
struct eg_audit_record {
        uint64_t seq;
        int64_t time_ms;      /* realtime; 0 = now */
        const char *revision; /* source revision, e.g. "main@sha1:<hex>" or "sha256:<hex>" */
        const char *commit;   /* git commit id when known */
        const char *path;     /* manifest file */
        unsigned line;
        const char *blob;     /* git blob id when known */
        const char *cluster;  /* "namespace/name" */
        const char *decision; /* create, add-learner, promote, remove, replace-dead, upgrade-member,
                                 stop-unknown, remove-orphan, prune, noop, blocked, failed, invalid, ... */
        const char *member;
        const char *reason;
        const char *outcome; /* "ok", "failed", "blocked", "skipped", "dry-run" */
        int64_t duration_ms;
        const char *error;
        const char *actor; /* who asked: "reconcile", "backup", "daemon", "cli:<uid>" */
        char *prev;        /* hex sha256 of the previous record's line; filled by read */
        char *hash;        /* hex sha256 of this record's line; filled by read */
};
/* Frees every string of a record that a read returned (the struct itself is the
 * caller's) and zeroes it. */
void eg_audit_record_done(struct eg_audit_record *r);

/* Formats r as its on-disk line (compact JSON, fixed key order, no newline) from r->seq,
 * r->time_ms and r->prev as they are, cutting long strings to fit EG_AUDIT_LINE_MAX.
 * *ret is malloc'd. -EINVAL when time_ms is outside years 1970..9999. */
int eg_audit_record_format(const struct eg_audit_record *r, char **ret);

struct eg_audit; /* an open log */

/* Opens (creating with parents) the log, takes an exclusive flock on it for as long as it
 * is open, and reads its tail to continue the chain. A torn last line (no trailing newline
 * after a crash, or a last line that is not a valid record) is truncated away with a
 * warning in *ret_warning (malloc'd, may be NULL). Returns -EBUSY when another process
 * (or another open in this one) holds the log, -EBADMSG when, after dropping at most one
 * torn line, the last line still is not a valid record (run 'etcd-gitops audit verify'). */
int eg_audit_open(const char *path, struct eg_audit **ret, char **ret_warning);
/* Accepts NULL. */
void eg_audit_close(struct eg_audit *a);

/* What the log stamped on an appended record. */
struct eg_audit_stamp {
        uint64_t seq;
        int64_t time_ms;
        char hash[65]; /* hex sha256 of the record's line */
};

/* Appends one record, fsync'd before returning. Its seq, prev and hash are the log's:
 * those of r are ignored; time_ms 0 means now. Long strings are cut in the line only.
 * On failure the file is truncated back so the chain stays intact. */
int eg_audit_append(struct eg_audit *a, const struct eg_audit_record *r);
/* Same, also giving what was stamped in *ret (may be NULL), on success only. */
int eg_audit_append_full(struct eg_audit *a, const struct eg_audit_record *r, struct eg_audit_stamp *ret);

struct eg_audit_filter {
        const char *cluster;  /* exact "ns/name" */
        const char *revision; /* prefix of commit id (4+ hex chars), or substring of revision */
        uint64_t since_seq;   /* only records with seq > since_seq; 0 = all */
};

/* Reads every record matching filter (NULL = all), streaming the file. Lines that are not
 * valid records are skipped, as is a torn last line. ret is an array the caller frees
 * with eg_audit_records_free(). -ENOENT when the log does not exist. */
int eg_audit_read(const char *path, const struct eg_audit_filter *filter, struct eg_audit_record **ret, size_t *ret_n);
/* Same, also counting the skipped invalid lines (a torn last line is not counted). */
int eg_audit_read_full(const char *path, const struct eg_audit_filter *filter, struct eg_audit_record **ret,
                       size_t *ret_n, size_t *ret_n_skipped);
void eg_audit_records_free(struct eg_audit_record *r, size_t n);

/* Checks the hash chain. Returns 0 when intact, 1 when broken (err says why, err->line is the
 * 1-based line where the chain breaks), negative errno on I/O failure. A last line without
 * newline (torn by a crash) is not a break: the result is 0 and *ret_warning (malloc'd)
 * describes it; otherwise *ret_warning is NULL. ret_warning may be NULL. */
int eg_audit_verify(const char *path, struct eg_error *err, char **ret_warning);
/* Same, also returning the number of valid records checked. */
int eg_audit_verify_full(const char *path, uint64_t *ret_n_records, struct eg_error *err, char **ret_warning);

/* A git note's text for commit from the records that name it, in the lines eg_note
 * writes (journal.h). Returns the number of records or a negative errno; *ret is
 * malloc'd, NULL when no record names the commit. */
int eg_audit_note_for_commit(const char *path, const char *commit, char **ret);
