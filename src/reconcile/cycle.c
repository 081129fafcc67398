/* cycle: source read, pass, backups due and the git note, the same for apply and the daemon. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "etcd-gitops/cycle.h"

/* Backups wait for the clusters to settle (a member still starting would fail them), but
 * never this long past due, so one stuck cluster cannot starve every backup. */
#define BACKUP_SETTLE_MAX_MS 60000

struct eg_cycle {
        struct eg_cycle_options o;
        /* the git note of the revision being applied, filled by the journal */
        struct eg_note *note;
        char *note_commit;
        bool note_written, notes_off;
        char *revision; /* the last one read */
        /* the decisions of the pass under way, taken on the thread running it (backups
         * finished on another are not the pass's) */
        pthread_mutex_t lock;
        json_t *decisions;
        pthread_t passer;
};

static void collect_sink(void *userdata, const struct eg_decision *d, uint64_t seq) {
        struct eg_cycle *c = userdata;
        pthread_mutex_lock(&c->lock);
        if (c->decisions && pthread_equal(c->passer, pthread_self()) &&
            json_array_size(c->decisions) < EG_CYCLE_MAX_DECISIONS)
                json_array_append_new(c->decisions,
                                      json_pack("{s:s*, s:s*, s:s*, s:s*, s:s*, s:s*}", "cluster", d->cluster,
                                                "decision", d->kind, "member", d->member, "reason", d->reason,
                                                "outcome", d->outcome, "error", d->error));
        pthread_mutex_unlock(&c->lock);
}

int eg_cycle_new(const struct eg_cycle_options *o, struct eg_cycle **ret) {
        struct eg_cycle *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->o = *o;
        pthread_mutex_init(&c->lock, NULL);
        int r = eg_note_new(&c->note);
        if (r >= 0 && o->journal)
                r = eg_journal_add_sink(o->journal, eg_note_sink, c->note);
        if (r >= 0 && o->journal)
                r = eg_journal_add_sink(o->journal, collect_sink, c);
        if (r < 0) {
                eg_cycle_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void eg_cycle_free(struct eg_cycle *c) {
        if (!c)
                return;
        eg_note_free(c->note);
        free(c->note_commit);
        free(c->revision);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

void eg_cycle_result_done(struct eg_cycle_result *r) {
        free(r->list_error);
        eg_backup_batch_free(r->batch);
        json_decref(r->decisions);
        *r = (struct eg_cycle_result){0};
}

static void note_write(struct eg_cycle *c) {
        if (c->notes_off || !c->note_commit || !c->o.journal)
                return;
        c->note_written = true;
        /* the source appends to the commit's note: hand it only the lines not written yet */
        _cleanup_free_ char *text = NULL;
        if (eg_note_take(c->note, &text) < 0 || !text)
                return;
        struct eg_error err = {0};
        int r = eg_source_annotate(c->o.source, c->note_commit, text, &err);
        if (r == -EOPNOTSUPP)
                c->notes_off = true;
        else if (r < 0)
                eg_log_warning("cannot write the git note of %s: %s", c->note_commit,
                               err.message ? err.message : strerror(-r));
        else
                eg_log_debug("git note written on %s", c->note_commit);
        eg_error_done(&err);
}

void eg_cycle_note_flush(struct eg_cycle *c) {
        if (eg_note_dirty(c->note))
                note_write(c);
}

static void revision_start(struct eg_cycle *c, const struct eg_source_revision *rev) {
        eg_cycle_note_flush(c);
        if (eg_note_start(c->note, rev->revision) < 0)
                eg_log_warning("cannot start the git note of %s: out of memory", rev->revision);
        free(c->note_commit);
        c->note_commit = rev->commit ? strdup(rev->commit) : NULL;
        c->note_written = false;
        eg_reconciler_poke_all(c->o.rec);
}

void eg_cycle_read_done(struct eg_cycle_read *r) {
        free(r->error);
        eg_desired_set_free(r->set);
        eg_source_revision_done(&r->rev);
        *r = (struct eg_cycle_read){0};
}

int eg_cycle_read(struct eg_cycle *c, struct eg_cycle_read *ret) {
        *ret = (struct eg_cycle_read){0};
        struct eg_error err = {0};
        ret->r = eg_source_read(c->o.source, &ret->set, &ret->rev, &err);
        if (ret->r < 0) {
                ret->error = strdup(err.message ? err.message : strerror(-ret->r));
                eg_error_done(&err);
                return ret->r;
        }
        eg_error_done(&err);
        ret->changed = !c->revision || strcmp(c->revision, ret->rev.revision) != 0;
        if (ret->changed) {
                free(c->revision);
                c->revision = strdup(ret->rev.revision);
                revision_start(c, &ret->rev);
        }
        return 0;
}

json_t *eg_cycle_diags_json(const struct eg_desired_set *set) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < set->n_diags; i++) {
                const struct eg_diag *d = &set->diags[i];
                json_t *j = json_pack("{s:s?, s:I, s:I, s:s, s:s*, s:s?}", "file", d->path, "line", (json_int_t)d->line,
                                      "column", (json_int_t)d->column, "severity",
                                      d->severity == EG_SEVERITY_ERROR ? "error" : "warning", "field", d->field,
                                      "message", d->message);
                if (json_array_append_new(arr, j) < 0) {
                        json_decref(arr);
                        return NULL;
                }
        }
        return arr;
}

static void pick_backups(struct eg_cycle *c, const struct eg_desired_set *desired, const char *revision,
                         const struct eg_cycle_backups *b, struct eg_cycle_result *ret) {
        int64_t now = eg_now_realtime_ms();
        int64_t due = b->due_ms ? b->due_ms : now;
        ret->backup_due_ms = due;
        if (now < due || (b->wait_settle && !ret->pass.all_converged && now - due < BACKUP_SETTLE_MAX_MS))
                return;
        int64_t next = INT64_MAX;
        if (eg_backup_controller_start(c->o.backups, desired, revision, now, &ret->batch, &next) < 0) {
                eg_log_error("cannot prepare the backups due: out of memory");
                next = now + BACKUP_SETTLE_MAX_MS;
        }
        ret->backup_due_ms = next;
}

int eg_cycle_run(struct eg_cycle *c, const struct eg_desired_set *desired, const struct eg_source_revision *rev,
                 const struct eg_cycle_backups *b, struct eg_cycle_result *ret) {
        *ret = (struct eg_cycle_result){.backup_due_ms = b ? b->due_ms : INT64_MAX};
        struct eg_revision_info ri = {.revision = rev->revision, .commit = rev->commit, .dirty = rev->dirty};
        pthread_mutex_lock(&c->lock);
        c->decisions = json_array();
        c->passer = pthread_self();
        pthread_mutex_unlock(&c->lock);
        ret->pass_r = eg_reconciler_pass(c->o.rec, desired, &ri, &ret->pass);
        pthread_mutex_lock(&c->lock);
        ret->decisions = TAKE_PTR(c->decisions);
        pthread_mutex_unlock(&c->lock);
        if (ret->pass_r >= 0 && (!c->note_written || (eg_note_dirty(c->note) && ret->pass.n_actions == 0)))
                note_write(c);
        const char *why = eg_reconciler_list_problem(c->o.rec);
        if (why || ret->pass_r < 0)
                ret->list_error = strdup(why ? why : strerror(-ret->pass_r));
        if (c->o.backups && b && b->may && (!b->still_may || b->still_may(b->userdata)))
                pick_backups(c, desired, rev->revision, b, ret);
        return ret->pass_r < 0 ? ret->pass_r : 0;
}

int eg_cycle_backups_now(struct eg_cycle *c, const struct eg_desired_set *desired, const char *revision) {
        if (!c->o.backups)
                return 0;
        int64_t next;
        return eg_backup_controller_pass(c->o.backups, desired, revision, eg_now_realtime_ms(), &next);
}
