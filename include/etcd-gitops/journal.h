/* journal: one record per decision, fanned out to the audit log and to every sink
 * (metrics, git notes, status, events) in the same order. */
#pragma once

#include <stdint.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

/* One decision, as whoever took it describes it. Every string is the caller's and may be
 * NULL (left out). The audit record carries kind as its "decision" field. */
struct eg_decision {
        const char *cluster; /* "namespace/name" */
        const char *kind;    /* create, add-learner, backup, backup-retention, recover, ... */
        const char *member;
        const char *reason;
        const char *outcome; /* "ok", "failed", "blocked", "skipped", "dry-run" */
        const char *error;
        const char *revision; /* source revision */
        const char *commit;   /* git commit id when known */
        const char *path;     /* manifest file */
        const char *blob;     /* git blob id when known */
        const char *actor;    /* who asked: "reconcile", "backup", "daemon", "cli:<uid>" */
        unsigned line;
        int64_t duration_ms;
        int64_t time_ms; /* realtime; 0 = now */
};

/* At most this many sinks per journal. */
#define EG_JOURNAL_MAX_SINKS 8

/* Called once per recorded decision, in the order records were taken, with the audit
 * seq (0 without an audit log or when appending failed) and time_ms filled in. It runs
 * under the journal's lock on the recording thread: it must be quick and must not
 * record to the same journal. */
typedef void (*eg_journal_sink_fn)(void *userdata, const struct eg_decision *d, uint64_t seq);

struct eg_journal;

/* audit may be NULL (nothing written to disk; sinks still see every decision). The
 * journal borrows audit: it must outlive the journal. */
int eg_journal_new(struct eg_audit *audit, struct eg_journal **ret);
/* Accepts NULL. */
void eg_journal_free(struct eg_journal *j);

/* Sinks are called in the order they were added. -ENOSPC past EG_JOURNAL_MAX_SINKS. */
int eg_journal_add_sink(struct eg_journal *j, eg_journal_sink_fn fn, void *userdata);

/* Appends d to the audit log, then hands it to every sink, all under one lock so each
 * sink sees the log's order; safe from any thread. The sinks are called even when the
 * append fails: then the errno is returned and err says what failed. j may be NULL
 * (nothing to record: 0). */
int eg_journal_record(struct eg_journal *j, const struct eg_decision *d, struct eg_error *err);
