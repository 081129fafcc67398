/* The daemon's one event loop: inotify on the source, a reconcile timer re-armed for
 * the earliest due cluster, a periodic re-read, signals, sd_notify and the watchdog. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "etcd-gitops/daemon.h"

struct daemon {
        const struct eg_daemon_options *opt;
        sd_event *event;
        sd_event_source *reconcile_timer, *debounce_timer, *rescan_timer;
        struct eg_desired_set *desired;
        struct eg_source_revision rev;
        bool source_changed;
        bool ready;
        uint64_t passes;
};

static int arm(sd_event_source *s, int64_t due_monotonic_ms) {
        int64_t now = eg_now_monotonic_ms();
        uint64_t usec;
        sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &usec);
        /* sd-event and our clock are both CLOCK_MONOTONIC; convert through "now" anyway
         * so a cached loop time cannot make the timer fire late */
        int64_t delta = due_monotonic_ms > now ? due_monotonic_ms - now : 0;
        int r = sd_event_source_set_time(s, usec + (uint64_t)delta * 1000);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void read_source(struct daemon *d) {
        struct eg_desired_set *set = NULL;
        struct eg_source_revision rev = {0};
        struct eg_error err = {0};
        int r = eg_source_read(d->opt->source, &set, &rev, &err);
        if (r < 0) {
                /* keep the last good desired set: a vanished folder must not look like
                 * every manifest was deleted */
                eg_log_error("%s; keeping the last revision", err.message ? err.message : strerror(-r));
                eg_error_done(&err);
                return;
        }
        bool changed = !d->desired || strcmp(d->rev.revision, rev.revision) != 0;
        if (changed) {
                for (size_t i = 0; i < set->n_diags; i++) {
                        _cleanup_free_ char *s = eg_diag_format(&set->diags[i]);
                        if (set->diags[i].severity == EG_SEVERITY_ERROR)
                                eg_log_error("%s", s ? s : "(out of memory)");
                        else
                                eg_log_warning("%s", s ? s : "(out of memory)");
                }
                eg_log_info("source revision %s%s%s%s: %zu objects, %zu errors", rev.revision,
                            rev.commit ? " (commit " : "", rev.commit ? rev.commit : "",
                            rev.commit ? (rev.dirty ? ", dirty)" : ")") : "", set->n_objects, set->n_errors);
        }
        eg_desired_set_free(d->desired);
        eg_source_revision_done(&d->rev);
        d->desired = set;
        d->rev = rev;
        if (changed)
                eg_reconciler_poke_all(d->opt->rec);
}

static int on_reconcile(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        if (d->source_changed || !d->desired) {
                d->source_changed = false;
                read_source(d);
        }
        if (!d->desired)
                return arm(s, eg_now_monotonic_ms() + 1000);
        struct eg_revision_info rev = {.revision = d->rev.revision, .commit = d->rev.commit, .dirty = d->rev.dirty};
        struct eg_pass_result res = {0};
        int r = eg_reconciler_pass(d->opt->rec, d->desired, &rev, &res);
        d->passes++;
        if (r < 0)
                res.next_due_ms = eg_now_monotonic_ms() + 1000;
        if (!d->ready) {
                d->ready = true;
                sd_notify(0, "READY=1");
        }
        sd_notifyf(0, "STATUS=revision %s: %zu clusters, %zu converged, %zu blocked, %zu failing", rev.revision,
                   res.n_clusters, res.n_converged, res.n_blocked, res.n_failed);
        return arm(s, res.next_due_ms);
}

static int on_debounced(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        d->source_changed = true;
        return arm(d->reconcile_timer, 0);
}

static int on_rescan(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        d->source_changed = true;
        arm(d->reconcile_timer, 0);
        return arm(s, eg_now_monotonic_ms() + d->opt->interval_ms);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct daemon *d = userdata;
        bool changed = false;
        int r = eg_source_process_events(d->opt->source, &changed);
        if (r < 0)
                eg_log_warning_errno(r, "watching the source failed: %m; relying on the periodic re-read");
        if (changed)
                return arm(d->debounce_timer, eg_now_monotonic_ms() + d->opt->debounce_ms);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct daemon *d = userdata;
        if (si->ssi_signo == SIGHUP) {
                sd_notify(0, "RELOADING=1");
                d->source_changed = true;
                arm(d->reconcile_timer, 0);
                sd_notify(0, "READY=1");
                return 0;
        }
        eg_log_info("received %s, stopping", strsignal((int)si->ssi_signo));
        sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int eg_daemon_run(const struct eg_daemon_options *opt) {
        struct daemon d = {.opt = opt};
        int r;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_new(&d.event);
        if (r < 0)
                return eg_log_error_errno(r, "cannot create the event loop: %m");
        if ((r = sd_event_add_signal(d.event, NULL, SIGTERM, on_signal, &d)) < 0 ||
            (r = sd_event_add_signal(d.event, NULL, SIGINT, on_signal, &d)) < 0 ||
            (r = sd_event_add_signal(d.event, NULL, SIGHUP, on_signal, &d)) < 0 ||
            (r = sd_event_add_time(d.event, &d.reconcile_timer, CLOCK_MONOTONIC, 0, 0, on_reconcile, &d)) < 0 ||
            (r = sd_event_add_time(d.event, &d.debounce_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounced, &d)) < 0 ||
            (r = sd_event_add_time(d.event, &d.rescan_timer, CLOCK_MONOTONIC, 0, 0, on_rescan, &d)) < 0) {
                eg_log_error_errno(r, "cannot set up the event loop: %m");
                goto out;
        }
        /* Timers need an accuracy finer than sd-event's 250 ms default to meet the
         * reaction and failover targets. */
        sd_event_source_set_time_accuracy(d.reconcile_timer, 1000);
        sd_event_source_set_time_accuracy(d.debounce_timer, 1000);
        sd_event_source_set_time_accuracy(d.rescan_timer, 100000);
        sd_event_source_set_enabled(d.debounce_timer, SD_EVENT_OFF);
        arm(d.rescan_timer, eg_now_monotonic_ms() + opt->interval_ms);
        int fd = eg_source_watch_fd(opt->source);
        if (fd >= 0) {
                r = sd_event_add_io(d.event, NULL, fd, EPOLLIN, on_inotify, &d);
                if (r < 0) {
                        eg_log_error_errno(r, "cannot watch the source: %m");
                        goto out;
                }
        } else
                eg_log_warning("cannot watch the source for changes; re-reading it every %lld ms",
                               (long long)opt->interval_ms);
        sd_event_set_watchdog(d.event, true);
        r = sd_event_loop(d.event);
out:
        sd_event_source_unref(d.reconcile_timer);
        sd_event_source_unref(d.debounce_timer);
        sd_event_source_unref(d.rescan_timer);
        sd_event_unref(d.event);
        eg_desired_set_free(d.desired);
        eg_source_revision_done(&d.rev);
        return r < 0 ? r : 0;
}
