/* The text of a git note: what one revision caused, built from its decisions. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/util.h"

#define NOTE_MAX ((size_t)64 << 10)
#define NOTE_REASON_MAX 200

struct eg_note {
        /* the daemon adds from its reconcile thread and its loop (backups) */
        pthread_mutex_t lock;
        char *revision;
        struct eg_buf text; /* finished lines */
        /* a pending line gathers the members of consecutive same decisions */
        char *cluster, *decision, *outcome, *reason;
        struct eg_buf members;
        bool dirty;
};

int eg_note_new(struct eg_note **ret) {
        struct eg_note *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        pthread_mutex_init(&n->lock, NULL);
        eg_buf_init(&n->text, NOTE_MAX);
        eg_buf_init(&n->members, 4096);
        *ret = n;
        return 0;
}

static void pending_clear(struct eg_note *n) {
        free(n->cluster);
        free(n->decision);
        free(n->outcome);
        free(n->reason);
        n->cluster = n->decision = n->outcome = n->reason = NULL;
        eg_buf_reset(&n->members);
}

void eg_note_free(struct eg_note *n) {
        if (!n)
                return;
        pending_clear(n);
        eg_buf_done(&n->text);
        eg_buf_done(&n->members);
        free(n->revision);
        pthread_mutex_destroy(&n->lock);
        free(n);
}

int eg_note_start(struct eg_note *n, const char *revision) {
        char *copy = revision ? strdup(revision) : NULL;
        if (revision && !copy)
                return -ENOMEM;
        pthread_mutex_lock(&n->lock);
        pending_clear(n);
        eg_buf_reset(&n->text);
        free(n->revision);
        n->revision = copy;
        n->dirty = false;
        pthread_mutex_unlock(&n->lock);
        return 0;
}

static void flush_pending(struct eg_note *n) {
        if (!n->cluster)
                return;
        struct eg_buf *t = &n->text;
        int r = eg_buf_printf(t, "%s: %s", n->cluster, n->decision);
        if (r >= 0 && n->members.len)
                r = eg_buf_printf(t, " %s", n->members.data);
        if (r >= 0)
                r = eg_buf_printf(t, " %s", n->outcome);
        if (r >= 0 && n->reason)
                r = eg_buf_printf(t, " (%.*s%s)", NOTE_REASON_MAX, n->reason,
                                  strlen(n->reason) > NOTE_REASON_MAX ? "…" : "");
        if (r >= 0)
                r = eg_buf_puts(t, "\n");
        if (r < 0 && t->len + 32 < NOTE_MAX)
                (void)eg_buf_puts(t, "(more decisions left out)\n");
        pending_clear(n);
}

static void add_locked(struct eg_note *n, const struct eg_decision *d) {
        if (!d->cluster || (n->revision && (!d->revision || strcmp(d->revision, n->revision) != 0)))
                return;
        const char *decision = d->kind ? d->kind : "?", *outcome = d->outcome ? d->outcome : "?";
        n->dirty = true;
        if (d->member && n->cluster && n->members.len && strcmp(n->cluster, d->cluster) == 0 &&
            strcmp(n->decision, decision) == 0 && strcmp(n->outcome, outcome) == 0) {
                (void)eg_buf_printf(&n->members, ",%s", d->member);
                return;
        }
        flush_pending(n);
        n->cluster = strdup(d->cluster);
        n->decision = strdup(decision);
        n->outcome = strdup(outcome);
        if (!n->cluster || !n->decision || !n->outcome) {
                pending_clear(n);
                return;
        }
        if (d->member)
                (void)eg_buf_puts(&n->members, d->member);
        else if (d->reason)
                n->reason = strdup(d->reason);
}

void eg_note_add(struct eg_note *n, const struct eg_decision *d) {
        pthread_mutex_lock(&n->lock);
        add_locked(n, d);
        pthread_mutex_unlock(&n->lock);
}

void eg_note_sink(void *userdata, const struct eg_decision *d, uint64_t seq) { eg_note_add(userdata, d); }

bool eg_note_dirty(struct eg_note *n) {
        pthread_mutex_lock(&n->lock);
        bool dirty = n->dirty;
        pthread_mutex_unlock(&n->lock);
        return dirty;
}

int eg_note_take(struct eg_note *n, char **ret) {
        pthread_mutex_lock(&n->lock);
        flush_pending(n);
        n->dirty = false;
        char *text = n->text.len ? strndup(n->text.data, n->text.len) : NULL;
        bool lost = n->text.len && !text;
        eg_buf_reset(&n->text);
        pthread_mutex_unlock(&n->lock);
        if (lost)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int eg_audit_note_for_commit(const char *path, const char *commit, char **ret) {
        struct eg_audit_filter f = {.revision = commit};
        struct eg_audit_record *recs = NULL;
        size_t n = 0;
        int r = eg_audit_read(path, &f, &recs, &n);
        if (r < 0)
                return r;
        struct eg_note *note = NULL;
        char *text = NULL;
        r = eg_note_new(&note);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct eg_audit_record *x = &recs[i];
                eg_note_add(note, &(const struct eg_decision){.cluster = x->cluster,
                                                              .kind = x->decision,
                                                              .member = x->member,
                                                              .reason = x->reason,
                                                              .outcome = x->outcome});
        }
        if (r >= 0)
                r = eg_note_take(note, &text);
        eg_note_free(note);
        eg_audit_records_free(recs, n);
        if (r < 0)
                return r;
        *ret = text;
        return (int)n;
}
