/* journal: one decision recorded once, fanned out to the audit log and the sinks. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "etcd-gitops/journal.h"

struct sink {
        eg_journal_sink_fn fn;
        void *userdata;
};

struct eg_journal {
        /* the daemon records from its loop (backups, its own decisions) and from the
         * reconcile thread: one lock keeps the log's order and the sinks' order the same */
        pthread_mutex_t lock;
        struct eg_audit *audit;
        struct sink sinks[EG_JOURNAL_MAX_SINKS];
        size_t n_sinks;
};

int eg_journal_new(struct eg_audit *audit, struct eg_journal **ret) {
        struct eg_journal *j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        pthread_mutex_init(&j->lock, NULL);
        j->audit = audit;
        *ret = j;
        return 0;
}

void eg_journal_free(struct eg_journal *j) {
        if (!j)
                return;
        pthread_mutex_destroy(&j->lock);
        free(j);
}

int eg_journal_add_sink(struct eg_journal *j, eg_journal_sink_fn fn, void *userdata) {
        pthread_mutex_lock(&j->lock);
        int r = -ENOSPC;
        if (j->n_sinks < EG_JOURNAL_MAX_SINKS) {
                j->sinks[j->n_sinks++] = (struct sink){fn, userdata};
                r = 0;
        }
        pthread_mutex_unlock(&j->lock);
        return r;
}

static int append(struct eg_audit *audit, const struct eg_decision *d, struct eg_audit_stamp *ret) {
        const struct eg_audit_record rec = {
                .time_ms = d->time_ms,
                .revision = d->revision,
                .commit = d->commit,
                .path = d->path,
                .line = d->line,
                .blob = d->blob,
                .cluster = d->cluster,
                .decision = d->kind,
                .member = d->member,
                .reason = d->reason,
                .outcome = d->outcome,
                .duration_ms = d->duration_ms,
                .error = d->error,
                .actor = d->actor,
        };
        return eg_audit_append_full(audit, &rec, ret);
}

int eg_journal_record(struct eg_journal *j, const struct eg_decision *d, struct eg_error *err) {
        if (!j)
                return 0;
        struct eg_decision stamped = *d;
        if (!stamped.time_ms)
                stamped.time_ms = eg_now_realtime_ms();
        struct eg_audit_stamp st = {0};
        pthread_mutex_lock(&j->lock);
        int r = j->audit ? append(j->audit, &stamped, &st) : 0;
        for (size_t i = 0; i < j->n_sinks; i++)
                j->sinks[i].fn(j->sinks[i].userdata, &stamped, st.seq);
        pthread_mutex_unlock(&j->lock);
        if (r < 0)
                eg_error_set(err, "cannot append to the audit log: %s", strerror(-r));
        return r;
}
