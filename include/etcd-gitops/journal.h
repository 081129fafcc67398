/* journal: one record per decision, fanned out to the audit log and to every sink
 * (metrics, git notes, status, events) in the same order. */
#pragma once

#include <stdbool.h>
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
        /* "namespace/name" of the object decided about when it is not the cluster (an
         * EtcdBackup); not in the audit record, which has its path and line */
        const char *object;
        uint64_t size_bytes; /* backup: the snapshot's size; not in the audit record */
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

/* ---- git notes: what one revision caused ---- */

/* The text of a git note: one line per decision about a cluster,
 * "ns/name: decision[ member,member...] outcome[ (reason)]", the reason only for decisions
 * about no member. Consecutive same decisions with the same outcome on members of one
 * cluster share a line. */
struct eg_note;

int eg_note_new(struct eg_note **ret);
/* Accepts NULL. */
void eg_note_free(struct eg_note *n);
/* Starts over for revision (NULL: every decision added counts); the lines not taken yet
 * are dropped. */
int eg_note_start(struct eg_note *n, const char *revision);
/* Adds d when it is about a cluster and names the note's revision. Thread-safe. */
void eg_note_add(struct eg_note *n, const struct eg_decision *d);
/* eg_note_add as a journal sink (userdata: the note). */
void eg_note_sink(void *userdata, const struct eg_decision *d, uint64_t seq);
/* Whether lines were added since the last take. */
bool eg_note_dirty(struct eg_note *n);
/* The lines added since the last take, at most 64 KiB (then ending with "(more decisions
 * left out)"); *ret is malloc'd, NULL when there are none. */
int eg_note_take(struct eg_note *n, char **ret);
