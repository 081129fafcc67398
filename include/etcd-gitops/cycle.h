/* cycle: one turn of the loop that apply and the daemon share: a reconcile pass over the
 * desired set, the backups it finds due, and the git note of what the revision caused. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/runtime.h"
#include "etcd-gitops/source.h"

/* ---- the backup controller: when each EtcdBackup runs (src/reconcile/backups.c) ---- */

struct eg_backup_controller_options {
        struct eg_runtime *runtime; /* for etcdCluster.name: members' client URLs, TLS */
        struct eg_journal *journal; /* each backup is a record; may be NULL */
        const char *state_dir;
        bool dry_run;                     /* audit what would run, take nothing */
        const char *aws_credentials_file; /* overrides awsSecret / environment; may be NULL */
};

struct eg_backup_controller;
int eg_backup_controller_new(const struct eg_backup_controller_options *o, struct eg_backup_controller **ret);
void eg_backup_controller_free(struct eg_backup_controller *c);

/* Runs every EtcdBackup of desired that is due: a one-shot once per manifest content
 * (remembered in its status file, so a restart does not repeat it; a failed one is tried
 * again a minute later), a periodic one by its interval or cron schedule. Each backup and
 * each retention deletion is one journal record ("backup", "backup-retention").
 * *ret_next_due_realtime_ms is when the next one is due (INT64_MAX: none). Returns the
 * number of backups that failed this pass, or a negative errno. */
int eg_backup_controller_pass(struct eg_backup_controller *c, const struct eg_desired_set *desired,
                              const char *revision, int64_t now_realtime_ms, int64_t *ret_next_due_realtime_ms);

/* The same pass in three steps, so that the transfers run off the caller's thread: start
 * picks what is due and copies all it needs into a batch (*ret_batch NULL: nothing due;
 * *ret_next_due for the rest); run, on any thread, takes the snapshots and applies
 * retention, touching nothing shared; finish writes status and audit records, frees the
 * batch and gives when the batch's backups are due again. start (which asks the runtime)
 * and finish may run on different threads but never at once: the daemon starts a batch
 * on its reconcile thread, finishes it on its loop, and starts none while one is out.
 * desired may be freed once start returns. finish returns the number that failed. */
struct eg_backup_batch;
int eg_backup_controller_start(struct eg_backup_controller *c, const struct eg_desired_set *desired,
                               const char *revision, int64_t now_realtime_ms, struct eg_backup_batch **ret_batch,
                               int64_t *ret_next_due_realtime_ms);
void eg_backup_batch_run(struct eg_backup_batch *b, const atomic_bool *cancel);
int eg_backup_controller_finish(struct eg_backup_controller *c, struct eg_backup_batch *b,
                                int64_t *ret_next_due_realtime_ms);
void eg_backup_batch_free(struct eg_backup_batch *b);

/* ---- the cycle ---- */

struct eg_cycle_options {
        struct eg_reconciler *rec;            /* borrowed */
        struct eg_source *source;             /* borrowed; annotated with the git notes */
        struct eg_backup_controller *backups; /* borrowed; NULL: no backups */
        /* borrowed; the cycle's git note follows it. Without one (NULL) there are no notes. */
        struct eg_journal *journal;
};

struct eg_cycle;

int eg_cycle_new(const struct eg_cycle_options *o, struct eg_cycle **ret);
/* Accepts NULL. */
void eg_cycle_free(struct eg_cycle *c);

/* What a read of the source gave. */
struct eg_cycle_read {
        int r;                      /* the read's errno when it failed: the last set stays in force */
        char *error;                /* why it failed; NULL when it did not */
        struct eg_desired_set *set; /* NULL when it failed */
        /* rev.stale: a git fetch failed and this is the last commit read, the warning to give */
        struct eg_source_revision rev;
        /* a revision other than the last one read: the last one's git note is finished (its
         * lines not written yet go out now), this one's starts empty, every cluster is due */
        bool changed;
};
void eg_cycle_read_done(struct eg_cycle_read *r);

/* Reads the cycle's source into *ret (the caller's, freed with eg_cycle_read_done, also
 * when it failed). Logs nothing. Returns ret->r. */
int eg_cycle_read(struct eg_cycle *c, struct eg_cycle_read *ret);

/* The desired set's diagnostics as a JSON array of {"file","line","column","severity"
 * ("error" or "warning"),"field","message"} ("field" only when about one); caller owns.
 * NULL when out of memory. */
json_t *eg_cycle_diags_json(const struct eg_desired_set *set);

/* When backups may be picked. */
struct eg_cycle_backups {
        bool may;         /* none out (the daemon's run one batch at a time), and acting */
        int64_t due_ms;   /* realtime the earliest is due; 0: now */
        bool wait_settle; /* wait for every cluster to converge, up to a minute past due */
        /* asked after the pass, whether this still may pick backups (the daemon may have
         * stopped leading meanwhile); NULL: it may */
        bool (*still_may)(void *userdata);
        void *userdata;
};

struct eg_cycle_result {
        int pass_r; /* the pass's errno when it could not run */
        struct eg_pass_result pass;
        char *list_error; /* why the pass could not see every cluster; NULL when it did */
        /* backups due: run them (eg_backup_batch_run, any thread), then finish them
         * (eg_backup_controller_finish); NULL when none */
        struct eg_backup_batch *batch;
        int64_t backup_due_ms; /* realtime the next is due after those; INT64_MAX: none */
        /* the pass's decisions as the journal took them, oldest first: a JSON array of
         * {"cluster","decision","member","reason","outcome","error"} (absent fields left
         * out), at most EG_CYCLE_MAX_DECISIONS; NULL when out of memory */
        json_t *decisions;
};
#define EG_CYCLE_MAX_DECISIONS 1000
void eg_cycle_result_done(struct eg_cycle_result *r);

/* One pass over desired at rev (see eg_reconciler_pass); the revision's note is written
 * after its first pass and again once a pass takes no step; then the backups due, as b
 * allows. Fails only when the pass could not run (ret->pass_r, also in ret->list_error). */
int eg_cycle_run(struct eg_cycle *c, const struct eg_desired_set *desired, const struct eg_source_revision *rev,
                 const struct eg_cycle_backups *b, struct eg_cycle_result *ret);

/* Picks, starts and finishes the backups due now, on this thread (apply). Returns how
 * many failed. */
int eg_cycle_backups_now(struct eg_cycle *c, const struct eg_desired_set *desired, const char *revision);

/* Writes what the revision caused and is not in its note yet (when stopping). */
void eg_cycle_note_flush(struct eg_cycle *c);
