/* The daemon's one event loop: inotify on a directory source or polling with jitter for
 * git, a reconcile timer re-armed for the earliest due cluster, webhooks that trigger an
 * early read, signals, sd_notify and the watchdog, the HTTP endpoints, metrics, git notes;
 * source reads and reconcile passes run on one worker thread, backups stream on another. */
#include <errno.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "internal.h"

int eg_daemon_new(struct eg_daemon **ret) {
        struct eg_daemon *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        int r = eg_metrics_new(&d->metrics);
        if (r < 0) {
                free(d);
                return r;
        }
        d->rng = (uint64_t)eg_now_monotonic_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
        if (!d->rng)
                d->rng = 1;
        d->cycler.fd = d->backuper.fd = d->leaser.fd = d->control_fd = -1;
        d->leading = true;
        atomic_store(&d->act_until, INT64_MAX);
        *ret = d;
        return 0;
}

void eg_daemon_free(struct eg_daemon *d) {
        if (!d)
                return;
        eg_metrics_free(d->metrics);
        free(d->last_error);
        json_decref(d->source_diags);
        free(d->list_error);
        free(d->force_key);
        free(d->force_previous);
        free(d->force_commit);
        free(d->hook_commit);
        free(d->lease_holder);
        free(d->lease_error);
        free(d->source_real);
        free(d);
}

/* ---- timers ---- */

int arm(sd_event_source *s, int64_t due_monotonic_ms) {
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

uint64_t next_random(struct eg_daemon *d) {
        d->rng ^= d->rng << 13;
        d->rng ^= d->rng >> 7;
        d->rng ^= d->rng << 17;
        return d->rng;
}

/* interval ± 10 %, so many daemons polling one server do not knock in step */
static int64_t jittered(struct eg_daemon *d, int64_t interval_ms) {
        int64_t spread = interval_ms / 10;
        if (spread <= 0)
                return interval_ms;
        return interval_ms - spread + (int64_t)(next_random(d) % (uint64_t)(2 * spread + 1));
}

const volatile sig_atomic_t *eg_daemon_pass_stop(struct eg_daemon *d) { return &d->pass_stop; }

/* On either thread: whether this daemon may take a step now. */
static bool may_act(struct eg_daemon *d) {
        return !atomic_load(&d->standby) && eg_now_monotonic_ms() < atomic_load(&d->act_until);
}

void eg_daemon_on_event(void *userdata, const struct eg_reconcile_event *ev) {
        struct eg_daemon *d = userdata;
        /* the reconciler checks its stop flag before each cluster, and reports each
         * cluster: this is where the reconcile thread learns in time that the daemon
         * stopped leading */
        d->pass_stop = !may_act(d);
        eg_metrics_record(d->metrics, ev);
}

/* ---- audit records of the daemon's own decisions ---- */

void daemon_record(struct eg_daemon *d, const struct eg_source_revision *rev, const char *decision, const char *reason,
                   const char *outcome) {
        struct eg_decision dec = {.revision = rev->revision,
                                  .commit = rev->commit,
                                  .kind = decision,
                                  .reason = reason,
                                  .outcome = outcome,
                                  .actor = "daemon"};
        struct eg_error err = {0};
        if (eg_journal_record(d->opt->journal, &dec, &err) < 0)
                eg_log_error("%s", err.message ? err.message : "cannot append to the audit log");
        eg_error_done(&err);
}

/* On the worker: a force-push not seen before is logged and recorded; the loop shows it
 * in /status once the cycle is back (cycle_publish_read). */
static void force_push_seen(struct eg_daemon *d, struct cycle *c) {
        const struct eg_source_revision *rev = &c->in.rev;
        _cleanup_free_ char *key = eg_strdup_printf("%s %s %d", rev->previous_commit ? rev->previous_commit : "",
                                                    rev->commit ? rev->commit : "", rev->held);
        if (!key || str_eq(key, d->force_key))
                return;
        eg_metrics_force_push(d->metrics);
        const char *prev = rev->previous_commit ? rev->previous_commit : "(unknown)";
        const char *now = rev->commit ? rev->commit : "(unknown)";
        _cleanup_free_ char *reason =
                rev->held ? eg_strdup_printf("the ref was force-pushed away from %s; refused (--refuse-force-push), "
                                             "holding at %s",
                                             prev, now)
                          : eg_strdup_printf("the ref was force-pushed: %s does not descend from %s; following it", now,
                                             prev);
        eg_log_warning("%s", reason ? reason : "force-push");
        /* the record names the revision it is about, which the read just produced */
        daemon_record(d, rev, "force-push", reason, rev->held ? "blocked" : "ok");
        c->force_key = TAKE_PTR(key);
}

/* ---- reading the source ---- */

static void hook_check(struct eg_daemon *d) {
        if (!d->hook_commit)
                return;
        int64_t now = eg_now_monotonic_ms();
        if (!d->rev.commit || eg_str_has_prefix(d->rev.commit, d->hook_commit)) {
                if (d->rev.commit)
                        eg_log_info("webhook: commit %s read after %lld ms", d->hook_commit,
                                    (long long)(now - d->hook_started_ms));
                set_str(&d->hook_commit, NULL);
                sd_event_source_set_enabled(d->hook_timer, SD_EVENT_OFF);
                return;
        }
        if (now >= d->hook_deadline_ms) {
                eg_log_warning("webhook named commit %s, but after %lld ms the source still shows %s", d->hook_commit,
                               (long long)(now - d->hook_started_ms), d->rev.commit);
                set_str(&d->hook_commit, NULL);
                return;
        }
        arm(d->hook_timer, now + (d->opt->hook_retry_ms > 0 ? d->opt->hook_retry_ms : 200));
}

/* On the worker: reads the source into the cycle. A new revision is logged with its
 * diagnostics; the desired set itself is swapped in by the loop. */
static void cycle_read(struct eg_daemon *d, struct cycle *c) {
        struct eg_cycle_read *in = &c->in;
        if (eg_cycle_read(d->opt->cycle, in) < 0) {
                /* keep the last good desired set: a vanished folder or an unreachable
                 * remote must not look like every manifest was deleted */
                eg_metrics_fetch_failed(d->metrics);
                eg_log_error("%s; keeping the last revision", in->error ? in->error : strerror(-in->r));
                return;
        }
        if (in->rev.stale) {
                eg_metrics_fetch_failed(d->metrics);
                eg_log_warning("%s; using the revision fetched before", in->rev.stale);
        }
        if (in->rev.force_push)
                force_push_seen(d, c);
        if (!in->changed)
                return;
        const struct eg_desired_set *set = in->set;
        for (size_t i = 0; i < set->n_diags; i++) {
                _cleanup_free_ char *m = eg_diag_format(&set->diags[i]);
                if (set->diags[i].severity == EG_SEVERITY_ERROR)
                        eg_log_error("%s", m ? m : "(out of memory)");
                else
                        eg_log_warning("%s", m ? m : "(out of memory)");
        }
        const struct eg_source_revision *rev = &in->rev;
        eg_log_info("source revision %s%s%s%s: %zu objects, %zu errors", rev->revision, rev->commit ? " (commit " : "",
                    rev->commit ? rev->commit : "", rev->commit ? (rev->dirty ? ", dirty)" : ")") : "", set->n_objects,
                    set->n_errors);
        eg_metrics_set_revision(d->metrics, rev->revision, rev->commit);
}

/* On the loop, the worker joined: what the read found becomes the daemon's. */
static void cycle_publish_read(struct eg_daemon *d, struct cycle *c) {
        struct eg_cycle_read *in = &c->in;
        d->last_read_ms = eg_now_realtime_ms();
        d->read_failed = in->r < 0;
        if (in->r < 0)
                set_str(&d->last_error, in->error ? in->error : strerror(-in->r));
        else {
                set_str(&d->last_error, in->rev.stale);
                if (c->force_key) {
                        free(d->force_key);
                        d->force_key = TAKE_PTR(c->force_key);
                        set_str(&d->force_previous, in->rev.previous_commit);
                        set_str(&d->force_commit, in->rev.commit);
                        d->force_held = in->rev.held;
                        d->force_time_ms = eg_now_realtime_ms();
                }
                json_t *diags = eg_cycle_diags_json(in->set);
                if (diags) {
                        json_decref(d->source_diags);
                        d->source_diags = diags;
                        d->source_errors = in->set->n_errors;
                }
                eg_desired_set_free(d->desired);
                eg_source_revision_done(&d->rev);
                d->desired = TAKE_PTR(in->set);
                d->rev = in->rev;
                in->rev = (struct eg_source_revision){0};
        }
        hook_check(d);
        if (c->reload)
                sd_notify(0, "READY=1");
}

/* ---- backups ---- */

static void backups_work(struct eg_daemon *d) { eg_backup_batch_run(d->backup_batch, &d->backup_cancel); }

/* Records what the batch did. */
static void backups_record(struct eg_daemon *d) {
        int64_t again = INT64_MAX;
        eg_backup_controller_finish(d->opt->backups, d->backup_batch, &again);
        d->backup_batch = NULL;
        if (again < d->backup_due_ms)
                d->backup_due_ms = again;
}

static void backups_done(struct eg_daemon *d) {
        backups_record(d);
        if (!d->cycler.running)
                arm(d->reconcile_timer, 0);
        else
                d->cycle_again = true;
}

/* ---- the reconcile cycle ---- */

static bool may_act_cb(void *userdata) { return may_act(userdata); }

static void cycle_work(struct eg_daemon *d) {
        struct cycle *c = &d->cycle;
        control_jobs_run(d, c);
        if (c->read)
                cycle_read(d, c);
        if (c->in.changed)
                c->backup_due_ms = 0; /* a new revision may bring new backups */
        const struct eg_desired_set *desired = c->in.set ? c->in.set : d->desired;
        const struct eg_source_revision *src = c->in.set ? &c->in.rev : &d->rev;
        if (!desired || !c->lead)
                return;
        d->pass_stop = !may_act(d);
        const struct eg_cycle_backups b = {.may = c->may_backup,
                                           .due_ms = c->backup_due_ms,
                                           .wait_settle = true,
                                           .still_may = may_act_cb,
                                           .userdata = d};
        eg_cycle_run(d->opt->cycle, desired, src, &b, &c->out);
        c->backup_due_ms = c->out.backup_due_ms;
}

static void cycle_done(struct cycle *c) {
        eg_cycle_result_done(&c->out);
        eg_cycle_read_done(&c->in);
        control_jobs_free(c->jobs);
        free(c->force_key);
        *c = (struct cycle){0};
}

/* On the loop, the worker joined: takes its results and arms the next cycle. */
static void cycle_publish(struct eg_daemon *d) {
        struct cycle *c = &d->cycle;
        if (d->inotify_source)
                sd_event_source_set_enabled(d->inotify_source, SD_EVENT_ON);
        if (c->read)
                cycle_publish_read(d, c);
        int64_t now = eg_now_monotonic_ms();
        int64_t due = now + 1000;
        if (d->desired) {
                if (c->lead) {
                        d->passes++;
                        free(d->list_error);
                        d->list_error = TAKE_PTR(c->out.list_error);
                        d->last_pass = (struct pass_outcome){
                                .time_ms = eg_now_realtime_ms(), .r = c->out.pass_r, .result = c->out.pass};
                        if (c->out.pass_r >= 0) {
                                due = c->out.pass.next_due_ms;
                                watches_sync(d);
                        }
                }
                if (!d->ready) {
                        d->ready = true;
                        sd_notify(0, "READY=1");
                }
                if (c->lead)
                        sd_notifyf(0, "STATUS=revision %s: %zu cluster%s, %zu converged, %zu blocked, %zu failing",
                                   d->rev.revision, c->out.pass.n_clusters, c->out.pass.n_clusters == 1 ? "" : "s",
                                   c->out.pass.n_converged, c->out.pass.n_blocked, c->out.pass.n_failed);
                else
                        sd_notifyf(0, "STATUS=revision %s: standing by, the lease %s/%s is held by %s", d->rev.revision,
                                   eg_lease_namespace(d->opt->lease), eg_lease_name(d->opt->lease),
                                   d->lease_holder ? d->lease_holder : "nobody yet");
        }
        if (c->may_backup)
                d->backup_due_ms = c->backup_due_ms;
        else if (c->in.changed)
                d->backup_due_ms = 0;
        if (c->out.batch) {
                d->backup_batch = TAKE_PTR(c->out.batch);
                /* the lease lost since the worker picked the batch: abandoned at once, recorded */
                atomic_store(&d->backup_cancel, !d->leading);
                worker_start(&d->backuper);
        }
        if (d->opt->backups && !d->backup_batch && d->backup_due_ms != INT64_MAX) {
                int64_t bdue = d->backup_due_ms == 0 ? now : now + (d->backup_due_ms - eg_now_realtime_ms());
                if (bdue < due)
                        due = bdue;
        }
        control_jobs_answer(d, c);
        bool again = d->cycle_again;
        d->cycle_again = false;
        cycle_done(c);
        /* a daemon standing by reads the source when it changes, and passes again only
         * once it leads (lease_lead) */
        if (again || d->leading)
                arm(d->reconcile_timer, again ? now : due);
        else
                sd_event_source_set_enabled(d->reconcile_timer, SD_EVENT_OFF);
}

static int on_reconcile(sd_event_source *s, uint64_t usec, void *userdata) {
        struct eg_daemon *d = userdata;
        /* woken past the renew deadline (frozen, suspended): this timer may run before that one */
        if (d->leading && eg_now_monotonic_ms() >= atomic_load(&d->act_until))
                on_lease_deadline(NULL, 0, d);
        if (d->cycler.running) {
                d->cycle_again = true;
                return 0;
        }
        struct cycle *c = &d->cycle;
        *c = (struct cycle){0};
        control_jobs_take(d, c);
        c->read = d->source_changed || !d->desired;
        d->source_changed = false;
        if (c->read) {
                c->reload = d->reload_pending;
                d->reload_pending = false;
        }
        c->lead = d->leading;
        c->may_backup = d->opt->backups && !d->backup_batch && d->leading;
        c->backup_due_ms = d->backup_due_ms;
        /* the worker reads the source: inotify events wait in the kernel until it is done */
        if (c->read && d->inotify_source)
                sd_event_source_set_enabled(d->inotify_source, SD_EVENT_OFF);
        worker_start(&d->cycler);
        return 0;
}

void read_soon(struct eg_daemon *d) {
        d->source_changed = true;
        arm(d->reconcile_timer, 0);
}

static int on_debounced(sd_event_source *s, uint64_t usec, void *userdata) {
        read_soon(userdata);
        return 0;
}

static int on_rescan(sd_event_source *s, uint64_t usec, void *userdata) {
        struct eg_daemon *d = userdata;
        read_soon(d);
        return arm(s, eg_now_monotonic_ms() + jittered(d, d->opt->interval_ms));
}

static int on_hook_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        read_soon(userdata);
        return 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct eg_daemon *d = userdata;
        bool changed = false;
        int r = eg_source_process_events(d->opt->source, &changed);
        if (r < 0)
                eg_log_warning_errno(r, "watching the source failed: %m; relying on the periodic re-read");
        if (changed)
                return arm(d->debounce_timer, eg_now_monotonic_ms() + d->opt->debounce_ms);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct eg_daemon *d = userdata;
        if (si->ssi_signo == SIGHUP) {
                uint64_t now;
                sd_event_now(d->event, CLOCK_MONOTONIC, &now);
                sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now);
                eg_log_info("received SIGHUP: re-reading the webhook secret and the source");
                if (load_secret(d) < 0)
                        eg_log_warning("keeping the webhook secret read before");
                /* READY=1 follows once the source has been read again (cycle_publish_read) */
                d->reload_pending = true;
                read_soon(d);
                return 0;
        }
        eg_log_info("received %s, stopping", strsignal((int)si->ssi_signo));
        /* a pass under way finishes its current step and takes up no further cluster */
        atomic_store(&d->standby, true);
        sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int loop_setup(struct eg_daemon *d) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int r = sd_event_new(&d->event);
        if (r < 0)
                return eg_log_error_errno(r, "cannot create the event loop: %m");
        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->reconcile_timer, CLOCK_MONOTONIC, 0, 0, on_reconcile, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->debounce_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounced, d)) <
                    0 ||
            (r = sd_event_add_time(d->event, &d->hook_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_hook_timer, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->rescan_timer, CLOCK_MONOTONIC, 0, 0, on_rescan, d)) < 0)
                return eg_log_error_errno(r, "cannot set up the event loop: %m");
        /* Timers need an accuracy finer than sd-event's 250 ms default to meet the
         * reaction and failover targets. */
        sd_event_source_set_time_accuracy(d->reconcile_timer, 1000);
        sd_event_source_set_time_accuracy(d->debounce_timer, 1000);
        sd_event_source_set_time_accuracy(d->hook_timer, 1000);
        sd_event_source_set_time_accuracy(d->rescan_timer, 100000);
        sd_event_source_set_enabled(d->debounce_timer, SD_EVENT_OFF);
        sd_event_source_set_enabled(d->hook_timer, SD_EVENT_OFF);
        arm(d->rescan_timer, eg_now_monotonic_ms() + jittered(d, d->opt->interval_ms));
        return 0;
}

/* The source's inotify descriptor (else polling) and the runtime's change signal. */
static int changes_setup(struct eg_daemon *d) {
        const struct eg_daemon_options *opt = d->opt;
        int fd = eg_source_watch_fd(opt->source);
        if (fd >= 0) {
                int r = sd_event_add_io(d->event, &d->inotify_source, fd, EPOLLIN, on_inotify, d);
                if (r < 0)
                        return eg_log_error_errno(r, "cannot watch the source: %m");
        } else
                eg_log_info("polling the %s source every %lld ms (±10 %%)", opt->source->ops->kind,
                            (long long)opt->interval_ms);
        if (opt->runtime && opt->runtime->ops->change_fd) {
                struct eg_error err = {0};
                fd = opt->runtime->ops->change_fd(opt->runtime, &err);
                /* best effort, as the pidfds: without it rechecks still find every change */
                if (fd < 0 || sd_event_add_io(d->event, &d->change_source, fd, EPOLLIN, on_runtime_change, d) < 0)
                        eg_log_warning("cannot follow changes of the %s runtime (%s): they are found by rechecks",
                                       opt->runtime->ops->name,
                                       err.message ? err.message : strerror(fd < 0 ? -fd : EIO));
                eg_error_done(&err);
        }
        return 0;
}

/* After the loop: the step in progress finishes with its record (bounded by its
 * timeouts), a snapshot still streaming is abandoned (nothing of it is left) and
 * recorded, and what the last revision did goes into its note even when stopped before
 * it settled. */
static void run_finish(struct eg_daemon *d) {
        if (d->cycler.running) {
                eg_log_info("waiting for the reconcile pass in progress");
                worker_join(&d->cycler);
                cycle_done(&d->cycle);
        }
        if (d->backup_batch) {
                eg_log_info("abandoning the backup in progress");
                atomic_store(&d->backup_cancel, true);
                worker_join(&d->backuper);
                backups_record(d);
        }
        eg_cycle_note_flush(d->opt->cycle);
        if (d->opt->lease)
                lease_finish(d);
}

static void run_teardown(struct eg_daemon *d) {
        eg_http_free(d->http);
        d->http = NULL;
        sd_event_source_unref(d->reconcile_timer);
        sd_event_source_unref(d->debounce_timer);
        sd_event_source_unref(d->rescan_timer);
        sd_event_source_unref(d->hook_timer);
        sd_event_source_unref(d->inotify_source);
        d->reconcile_timer = d->debounce_timer = d->rescan_timer = d->hook_timer = d->inotify_source = NULL;
        d->change_source = sd_event_source_disable_unref(d->change_source);
        sd_event_source_unref(d->lease_timer);
        sd_event_source_unref(d->lease_deadline);
        d->lease_timer = d->lease_deadline = NULL;
        watches_drop_all(d);
        control_teardown(d);
        worker_done(&d->cycler);
        worker_done(&d->backuper);
        worker_done(&d->leaser);
        sd_event_unref(d->event);
        d->event = NULL;
        eg_desired_set_free(d->desired);
        d->desired = NULL;
        eg_source_revision_done(&d->rev);
}

int eg_daemon_run(struct eg_daemon *d, const struct eg_daemon_options *opt) {
        d->opt = opt;
        int r;
        if ((r = loop_setup(d)) < 0 || (r = changes_setup(d)) < 0 || (r = http_setup(d)) < 0 ||
            (r = control_setup(d)) < 0)
                goto out;
        if ((r = eg_journal_add_sink(opt->journal, eg_metrics_journal_sink, d->metrics)) < 0) {
                eg_log_error_errno(r, "cannot follow the journal: %m");
                goto out;
        }
        if ((r = worker_init(&d->cycler, d, "reconcile", cycle_work, cycle_publish)) < 0 ||
            (opt->backups && (r = worker_init(&d->backuper, d, "backup", backups_work, backups_done)) < 0) ||
            (opt->lease && (r = lease_setup(d)) < 0))
                goto out;
        sd_event_set_watchdog(d->event, true);
        r = sd_event_loop(d->event);
        run_finish(d);
out:
        run_teardown(d);
        return r < 0 ? r : 0;
}
