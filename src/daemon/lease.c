/* Leader election for the daemon: tries on a worker of their own, and the loop's
 * decision whether this daemon acts. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static void lease_work(struct eg_daemon *d) { d->lease_r = eg_lease_try(d->opt->lease, &d->lease_st, &d->lease_err); }

static void lease_lead(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        const char *prev = d->lease_st.previous;
        bool back = str_eq(prev, eg_lease_identity(l));
        _cleanup_free_ char *reason =
                !prev  ? eg_strdup_printf("took the lease %s/%s, held by nobody (transition %lld)",
                                          eg_lease_namespace(l), eg_lease_name(l), (long long)d->lease_st.transitions)
                : back ? eg_strdup_printf("renewed the lease %s/%s again after missing the renew deadline",
                                          eg_lease_namespace(l), eg_lease_name(l))
                       : eg_strdup_printf("took the lease %s/%s over from %s (transition %lld)", eg_lease_namespace(l),
                                          eg_lease_name(l), prev, (long long)d->lease_st.transitions);
        d->leading = true;
        atomic_store(&d->standby, false);
        eg_metrics_set_leader(d->metrics, eg_lease_identity(l), true);
        eg_log_info("leading as %s: %s", eg_lease_identity(l), reason ? reason : "took the lease");
        daemon_record(d, &d->rev, "leader-elected", reason, "ok");
        /* every step is resumable: the first pass goes on from wherever the last leader stopped */
        arm(d->reconcile_timer, 0);
}

static void lease_stand_by(struct eg_daemon *d, const char *why) {
        d->leading = false;
        atomic_store(&d->standby, true);
        atomic_store(&d->act_until, 0);
        sd_event_source_set_enabled(d->lease_deadline, SD_EVENT_OFF);
        if (d->backup_batch)
                atomic_store(&d->backup_cancel, true);
        eg_metrics_set_leader(d->metrics, eg_lease_identity(d->opt->lease), false);
        eg_log_warning("standing by: %s; the pass under way stops after its current step", why);
        daemon_record(d, &d->rev, "leader-lost", why, "ok");
}

/* On the loop, the try joined: what it found decides whether this daemon acts. */
static void lease_done(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        struct eg_lease_status *st = &d->lease_st;
        if (d->lease_r < 0) {
                const char *why = d->lease_err.message ? d->lease_err.message : strerror(-d->lease_r);
                /* once per kind of error; a leader keeps acting until its renew deadline */
                if (d->lease_r != d->lease_error_r)
                        eg_log_error("%s", why);
                d->lease_error_r = d->lease_r;
                set_str(&d->lease_error, why);
        } else {
                if (d->lease_error)
                        eg_log_info("leader election: the lease %s/%s can be read and written again",
                                    eg_lease_namespace(l), eg_lease_name(l));
                set_str(&d->lease_error, NULL);
                d->lease_error_r = 0;
                if (st->leader) {
                        atomic_store(&d->act_until, d->lease_try_ms + EG_LEASE_RENEW_DEADLINE_MS);
                        arm(d->lease_deadline, d->lease_try_ms + EG_LEASE_RENEW_DEADLINE_MS);
                        if (!d->leading)
                                lease_lead(d);
                } else if (d->leading) {
                        _cleanup_free_ char *why = eg_strdup_printf("the lease %s/%s was taken over by %s",
                                                                    eg_lease_namespace(l), eg_lease_name(l),
                                                                    st->holder ? st->holder : "another daemon");
                        lease_stand_by(d, why ? why : "the lease was taken over");
                } else if (st->holder && !str_eq(st->holder, d->lease_holder))
                        eg_log_info("standing by: the lease %s/%s is held by %s", eg_lease_namespace(l),
                                    eg_lease_name(l), st->holder);
                set_str(&d->lease_holder, st->holder);
        }
        eg_lease_status_done(st);
        eg_error_done(&d->lease_err);
        /* as client-go: the leader renews every retry period, candidates wait up to 1.2
         * periods more, at random, so that they do not all write at once */
        int64_t wait = EG_LEASE_RETRY_PERIOD_MS;
        if (!d->leading)
                wait += (int64_t)(next_random(d) % (uint64_t)(EG_LEASE_RETRY_PERIOD_MS * 12 / 10));
        arm(d->lease_timer, d->lease_try_ms + wait);
}

static int on_lease_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct eg_daemon *d = userdata;
        d->lease_try_ms = eg_now_monotonic_ms();
        worker_start(&d->leaser);
        return 0;
}

int on_lease_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct eg_daemon *d = userdata;
        const struct eg_lease *l = d->opt->lease;
        if (!d->leading)
                return 0;
        _cleanup_free_ char *why = eg_strdup_printf(
                "the lease %s/%s could not be renewed for %d s%s%s", eg_lease_namespace(l), eg_lease_name(l),
                EG_LEASE_RENEW_DEADLINE_MS / 1000, d->lease_error ? ": " : "", d->lease_error ? d->lease_error : "");
        lease_stand_by(d, why ? why : "the lease could not be renewed");
        return 0;
}

int lease_setup(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        int r = worker_init(&d->leaser, d, "lease", lease_work, lease_done);
        if (r < 0)
                return r;
        if ((r = sd_event_add_time(d->event, &d->lease_timer, CLOCK_MONOTONIC, 0, 0, on_lease_timer, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->lease_deadline, CLOCK_MONOTONIC, UINT64_MAX, 0, on_lease_deadline,
                                   d)) < 0)
                return eg_log_error_errno(r, "cannot set up leader election: %m");
        sd_event_source_set_time_accuracy(d->lease_timer, 1000);
        sd_event_source_set_time_accuracy(d->lease_deadline, 1000);
        sd_event_source_set_enabled(d->lease_deadline, SD_EVENT_OFF);
        d->leading = false;
        atomic_store(&d->standby, true);
        atomic_store(&d->act_until, 0);
        eg_metrics_set_leader(d->metrics, eg_lease_identity(l), false);
        eg_log_info("leader election on the lease %s/%s as %s: passes and backups run only while it is held",
                    eg_lease_namespace(l), eg_lease_name(l), eg_lease_identity(l));
        return 0;
}

/* After the loop and the last pass: gives the lease up so that a standby need not wait for
 * it to expire. */
void lease_finish(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        /* what a try still under way finds no longer matters */
        worker_join(&d->leaser);
        eg_lease_status_done(&d->lease_st);
        eg_error_done(&d->lease_err);
        struct eg_error err = {0};
        int r = eg_lease_release(d->opt->lease, &err);
        if (r > 0)
                eg_log_info("released the lease %s/%s: a standby takes over at its next try", eg_lease_namespace(l),
                            eg_lease_name(l));
        else if (r < 0)
                eg_log_warning("cannot release the lease %s/%s: %s; a standby takes over once it expires",
                               eg_lease_namespace(l), eg_lease_name(l), err.message ? err.message : strerror(-r));
        eg_error_done(&err);
}
