/* The daemon's one event loop: inotify on a directory source or polling with jitter for
 * git, a reconcile timer re-armed for the earliest due cluster, webhooks that trigger an
 * early read, signals, sd_notify and the watchdog, the HTTP endpoints, metrics, git notes;
 * source reads and reconcile passes run on one worker thread, backups stream on another. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "etcd-gitops/daemon.h"
#include "etcd-gitops/http.h"
#include "etcd-gitops/metrics.h"

#define NOTE_MAX ((size_t)64 << 10)
#define NOTE_REASON_MAX 200
#define STATUS_MAX_FILES 10000
#define STATUS_FILE_MAX ((size_t)1 << 20)
/* rejected webhooks recorded in the audit log per minute; the rest are only logged so a
 * flood of bad requests cannot flood the log */
#define REJECT_RECORDS_PER_MIN 10

struct eg_daemon;

/* Work that talks to the network, on a thread of its own: the loop learns it is done
 * through an eventfd, joins it there and runs done. Where no thread can be had, it runs
 * on the loop instead, rather than not at all. */
struct worker {
        const char *what;
        void (*work)(struct eg_daemon *d);
        void (*done)(struct eg_daemon *d); /* on the loop, after the join */
        struct eg_daemon *d;
        pthread_t thread;
        bool running;
        int fd;
        sd_event_source *source;
};

struct eg_daemon {
        const struct eg_daemon_options *opt;
        sd_event *event;
        sd_event_source *reconcile_timer, *debounce_timer, *rescan_timer, *hook_timer;
        struct eg_desired_set *desired;
        struct eg_source_revision rev;
        bool source_changed;
        bool ready;
        uint64_t passes;
        uint64_t rng;
        struct eg_metrics *metrics;
        struct eg_http *http;

        int64_t last_read_ms; /* realtime */
        char *last_error;     /* of the last read, NULL when it went well */
        /* why the last pass could not list every cluster (a grant missing in a namespace, the API
         * server down): the daemon is not ready meanwhile; NULL when it saw them all */
        char *list_error;

        /* the last force-push seen, for /status and to record each one once */
        char *force_key, *force_previous, *force_commit;
        bool force_held;
        int64_t force_time_ms;

        /* a commit a webhook named, read for until it shows up or the deadline passes */
        char *hook_commit;
        int64_t hook_started_ms, hook_deadline_ms;
        int64_t reject_window_ms;
        unsigned reject_records, reject_suppressed;

        /* the git note of the revision being applied: finished lines, and a pending line
         * that gathers the members of consecutive same decisions */
        char *note_commit, *note_revision;
        struct eg_buf note;
        char *pend_cluster, *pend_decision, *pend_outcome, *pend_reason;
        struct eg_buf pend_members;
        bool note_dirty, note_written, notes_off;

        /* A cycle (a source read when one is asked for, a pass, the backups it finds due)
         * talks to git, etcd and the Kubernetes API, so it runs on a worker thread: the loop
         * keeps answering HTTP, signals and the watchdog however long etcd takes. While it
         * runs, the worker alone touches the reconciler, the source, the git note and
         * `cycle`; the loop publishes its results once it has joined it. */
        struct worker cycler;
        bool cycle_again; /* the timer fired during a cycle */
        sd_event_source *inotify_source;
        struct cycle {
                bool read, reload; /* read the source first; a SIGHUP's reload waits on it */
                bool lead;         /* pass (and maybe back up): this daemon holds the lease */
                int read_r;
                struct eg_error read_err;
                bool changed;
                struct eg_desired_set *set; /* what the read produced */
                struct eg_source_revision rev;
                char *force_key;            /* a force-push not seen before */
                int pass_r;
                char *list_error; /* see eg_reconciler_list_problem */
                struct eg_pass_result res;
                bool may_backup;              /* no batch out: the worker may start one */
                int64_t backup_due_ms;        /* the loop's value at the start, updated by the worker */
                struct eg_backup_batch *batch; /* started by the worker, launched by the loop */
        } cycle;
        bool reload_pending;

        int64_t backup_due_ms; /* realtime; 0 = at the next pass */
        /* Snapshots stream on a worker thread (one batch at a time) so that a large one
         * holds up neither failover, nor the HTTP endpoints, nor the watchdog. */
        struct worker backuper;
        struct eg_backup_batch *backup_batch; /* non-NULL while the worker owns it */
        atomic_bool backup_cancel;

        /* A pidfd per member process the last pass saw running: its exit starts a pass at
         * once, so a killed member is restarted without waiting for the next recheck. */
        struct pid_watch {
                int64_t pid;
                sd_event_source *source; /* owns the pidfd */
                struct eg_daemon *d;
        } *watches;
        size_t n_watches;
        /* the runtime's own change signal (a pod watch): the same, for members that are no
         * process of this host */
        sd_event_source *change_source;

        /* Leader election (opt->lease). Tries run on a worker of their own, one every retry
         * period; the loop alone decides whether the daemon acts: from a try's success
         * until the renew deadline, counted from that try's start, so that it has stopped
         * before another daemon may judge the lease expired. */
        struct worker leaser;
        sd_event_source *lease_timer, *lease_deadline;
        bool leading;         /* always true without a lease */
        char *lease_holder;   /* as last seen; NULL: nobody, or not known yet */
        char *lease_error;    /* of the last try, for /readyz and /status */
        int lease_error_r;    /* the errno last logged: a message differs by the ms curl waited */
        int64_t lease_try_ms; /* monotonic start of the last try */
        int lease_r;          /* the try's result: the worker's until joined */
        struct eg_lease_status lease_st;
        struct eg_error lease_err;
        atomic_bool standby;  /* !leading or stopping, for the reconcile thread */
        /* monotonic: the renew deadline of the last successful try, judged by the clock
         * on both threads, so that a daemon that was frozen (SIGSTOP, a VM paused) past it
         * stops before its timers have even run; INT64_MAX without a lease */
        _Atomic int64_t act_until;
        volatile sig_atomic_t pass_stop; /* see eg_daemon_pass_stop */
};

int eg_daemon_new(struct eg_daemon **ret) {
        struct eg_daemon *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        int r = eg_metrics_new(&d->metrics);
        if (r < 0) {
                free(d);
                return r;
        }
        eg_buf_init(&d->note, NOTE_MAX);
        eg_buf_init(&d->pend_members, 4096);
        d->rng = (uint64_t)eg_now_monotonic_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
        if (!d->rng)
                d->rng = 1;
        d->cycler.fd = d->backuper.fd = d->leaser.fd = -1;
        d->leading = true;
        atomic_store(&d->act_until, INT64_MAX);
        *ret = d;
        return 0;
}

static void pending_clear(struct eg_daemon *d) {
        free(d->pend_cluster);
        free(d->pend_decision);
        free(d->pend_outcome);
        free(d->pend_reason);
        d->pend_cluster = d->pend_decision = d->pend_outcome = d->pend_reason = NULL;
        eg_buf_reset(&d->pend_members);
}

void eg_daemon_free(struct eg_daemon *d) {
        if (!d)
                return;
        eg_metrics_free(d->metrics);
        free(d->last_error);
        free(d->list_error);
        free(d->force_key);
        free(d->force_previous);
        free(d->force_commit);
        free(d->hook_commit);
        free(d->lease_holder);
        free(d->lease_error);
        free(d->note_commit);
        free(d->note_revision);
        pending_clear(d);
        eg_buf_done(&d->note);
        eg_buf_done(&d->pend_members);
        free(d);
}

static void set_str(char **dst, const char *s) {
        free(*dst);
        *dst = s ? strdup(s) : NULL;
}

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* ---- timers ---- */

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

static uint64_t next_random(struct eg_daemon *d) {
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

/* ---- work off the loop ---- */

static void *worker_main(void *userdata) {
        struct worker *w = userdata;
        w->work(w->d);
        uint64_t one = 1;
        if (write(w->fd, &one, sizeof(one)) < 0)
                eg_log_warning_errno(-errno, "cannot signal the end of the %s: %m", w->what);
        return NULL;
}

/* Waits for the thread, if one runs. */
static void worker_join(struct worker *w) {
        if (!w->running)
                return;
        pthread_join(w->thread, NULL);
        w->running = false;
}

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct worker *w = userdata;
        uint64_t n;
        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                return 0;
        if (w->running) {
                worker_join(w);
                w->done(w->d);
        }
        return 0;
}

static int worker_init(struct worker *w, struct eg_daemon *d, const char *what, void (*work)(struct eg_daemon *),
                       void (*done)(struct eg_daemon *)) {
        *w = (struct worker){.what = what, .work = work, .done = done, .d = d};
        w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->fd < 0)
                return eg_log_error_errno(-errno, "cannot set up the %s thread's signal: %m", what);
        int r = sd_event_add_io(d->event, &w->source, w->fd, EPOLLIN, on_worker_done, w);
        if (r < 0)
                return eg_log_error_errno(r, "cannot set up the %s thread's signal: %m", what);
        return 0;
}

static void worker_start(struct worker *w) {
        w->running = true;
        int r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r >= 0)
                return;
        w->running = false;
        eg_log_warning_errno(r, "cannot start the %s thread (%m): running it on the loop", w->what);
        w->work(w->d);
        w->done(w->d);
}

static void worker_done(struct worker *w) {
        sd_event_source_unref(w->source);
        w->source = NULL;
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}

/* ---- git notes ---- */

static void note_flush_pending(struct eg_daemon *d) {
        if (!d->pend_cluster)
                return;
        struct eg_buf *n = &d->note;
        int r = eg_buf_printf(n, "%s: %s", d->pend_cluster, d->pend_decision);
        if (r >= 0 && d->pend_members.len)
                r = eg_buf_printf(n, " %s", d->pend_members.data);
        if (r >= 0)
                r = eg_buf_printf(n, " %s", d->pend_outcome);
        if (r >= 0 && d->pend_reason)
                r = eg_buf_printf(n, " (%.*s%s)", NOTE_REASON_MAX, d->pend_reason,
                                  strlen(d->pend_reason) > NOTE_REASON_MAX ? "…" : "");
        if (r >= 0)
                r = eg_buf_puts(n, "\n");
        if (r < 0 && n->len + 32 < NOTE_MAX)
                (void)eg_buf_puts(n, "(more decisions left out)\n");
        pending_clear(d);
}

static void note_decision(struct eg_daemon *d, const struct eg_reconcile_event *ev) {
        if (d->notes_off || !d->note_commit || !str_eq(ev->revision, d->note_revision))
                return;
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", ev->namespace ? ev->namespace : "",
                                                        ev->name ? ev->name : "");
        const char *decision = ev->decision ? ev->decision : "?", *outcome = ev->outcome ? ev->outcome : "?";
        if (!cluster)
                return;
        d->note_dirty = true;
        /* consecutive same decisions on members of one cluster share a line */
        if (ev->member && d->pend_cluster && d->pend_members.len && strcmp(d->pend_cluster, cluster) == 0 &&
            strcmp(d->pend_decision, decision) == 0 && strcmp(d->pend_outcome, outcome) == 0) {
                (void)eg_buf_printf(&d->pend_members, ",%s", ev->member);
                return;
        }
        note_flush_pending(d);
        d->pend_cluster = TAKE_PTR(cluster);
        d->pend_decision = strdup(decision);
        d->pend_outcome = strdup(outcome);
        if (!d->pend_decision || !d->pend_outcome) {
                pending_clear(d);
                return;
        }
        if (ev->member)
                (void)eg_buf_puts(&d->pend_members, ev->member);
        else if (ev->reason)
                d->pend_reason = strdup(ev->reason);
}

static void note_write(struct eg_daemon *d) {
        if (d->notes_off || !d->note_commit)
                return;
        note_flush_pending(d);
        d->note_dirty = false;
        d->note_written = true;
        if (!d->note.len)
                return;
        /* the source appends to the commit's note: hand it only the lines not written yet */
        struct eg_error err = {0};
        int r = eg_source_annotate(d->opt->source, d->note_commit, d->note.data, &err);
        eg_buf_reset(&d->note);
        if (r == -EOPNOTSUPP) {
                d->notes_off = true;
        } else if (r < 0) {
                eg_log_warning("cannot write the git note of %s: %s", d->note_commit,
                               err.message ? err.message : strerror(-r));
        } else
                eg_log_debug("git note written on %s", d->note_commit);
        eg_error_done(&err);
}

/* A new revision: the old one's note is finished, the new one starts empty. */
static void note_start(struct eg_daemon *d, const struct eg_source_revision *rev) {
        if (d->note_dirty)
                note_write(d);
        pending_clear(d);
        eg_buf_reset(&d->note);
        set_str(&d->note_commit, rev->commit);
        set_str(&d->note_revision, rev->revision);
        d->note_dirty = d->note_written = false;
}

/* Written after the first pass at a revision, and again once it settles if more was done. */
static void note_after_pass(struct eg_daemon *d, const struct eg_pass_result *res) {
        if (!d->note_commit || d->notes_off)
                return;
        if (!d->note_written || (d->note_dirty && res->n_actions == 0))
                note_write(d);
}

const volatile sig_atomic_t *eg_daemon_pass_stop(struct eg_daemon *d) { return &d->pass_stop; }

/* On either thread: whether this daemon may take a step now. */
static bool may_act(struct eg_daemon *d) {
        return !atomic_load(&d->standby) && eg_now_monotonic_ms() < atomic_load(&d->act_until);
}

void eg_daemon_on_event(void *userdata, const struct eg_reconcile_event *ev) {
        struct eg_daemon *d = userdata;
        /* the reconciler checks its stop flag before each cluster, and reports each step
         * and each cluster: this is where the reconcile thread learns in time that the
         * daemon stopped leading */
        d->pass_stop = !may_act(d);
        eg_metrics_record(d->metrics, ev);
        if (ev->kind == EG_EVENT_DECISION)
                note_decision(d, ev);
}

/* ---- audit records of the daemon's own decisions ---- */

static void record(struct eg_daemon *d, const struct eg_source_revision *rev, const char *decision,
                   const char *reason, const char *outcome) {
        struct eg_reconcile_event ev = {.kind = EG_EVENT_DECISION, .decision = decision, .outcome = outcome};
        eg_metrics_record(d->metrics, &ev);
        if (!d->opt->audit)
                return;
        struct eg_audit_record rec = {
                .revision = rev->revision,
                .commit = rev->commit,
                .decision = (char *)decision,
                .reason = (char *)reason,
                .outcome = (char *)outcome,
        };
        int r = eg_audit_append(d->opt->audit, &rec);
        if (r < 0)
                eg_log_error_errno(r, "cannot append to the audit log: %m");
        free(rec.prev);
        free(rec.hash);
}

/* On the worker: a force-push not seen before is logged and recorded; the loop shows it
 * in /status once the cycle is back (cycle_publish_read). */
static void force_push_seen(struct eg_daemon *d, struct cycle *c) {
        const struct eg_source_revision *rev = &c->rev;
        _cleanup_free_ char *key = eg_strdup_printf("%s %s %d", rev->previous_commit ? rev->previous_commit : "",
                                                    rev->commit ? rev->commit : "", rev->held);
        if (!key || str_eq(key, d->force_key))
                return;
        eg_metrics_force_push(d->metrics);
        const char *prev = rev->previous_commit ? rev->previous_commit : "(unknown)";
        const char *now = rev->commit ? rev->commit : "(unknown)";
        _cleanup_free_ char *reason =
                rev->held ? eg_strdup_printf("the ref was force-pushed away from %s; refused (--refuse-force-push), "
                                             "holding at %s", prev, now)
                          : eg_strdup_printf("the ref was force-pushed: %s does not descend from %s; following it", now, prev);
        eg_log_warning("%s", reason ? reason : "force-push");
        /* the record names the revision it is about, which the read just produced */
        record(d, rev, "force-push", reason, rev->held ? "blocked" : "ok");
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

/* On the worker: reads the source into the cycle. A new revision starts its git note and
 * pokes every cluster; the desired set itself is swapped in by the loop. */
static void cycle_read(struct eg_daemon *d, struct cycle *c) {
        c->read_r = eg_source_read(d->opt->source, &c->set, &c->rev, &c->read_err);
        if (c->read_r < 0) {
                /* keep the last good desired set: a vanished folder or an unreachable
                 * remote must not look like every manifest was deleted */
                eg_metrics_fetch_failed(d->metrics);
                eg_log_error("%s; keeping the last revision",
                             c->read_err.message ? c->read_err.message : strerror(-c->read_r));
                return;
        }
        if (c->read_err.message) {
                /* a failed fetch that still produced what was fetched before */
                eg_metrics_fetch_failed(d->metrics);
                eg_log_warning("%s; using the revision fetched before", c->read_err.message);
        }
        if (c->rev.force_push)
                force_push_seen(d, c);
        c->changed = !d->desired || strcmp(d->rev.revision, c->rev.revision) != 0;
        if (!c->changed)
                return;
        const struct eg_desired_set *set = c->set;
        for (size_t i = 0; i < set->n_diags; i++) {
                _cleanup_free_ char *m = eg_diag_format(&set->diags[i]);
                if (set->diags[i].severity == EG_SEVERITY_ERROR)
                        eg_log_error("%s", m ? m : "(out of memory)");
                else
                        eg_log_warning("%s", m ? m : "(out of memory)");
        }
        const struct eg_source_revision *rev = &c->rev;
        eg_log_info("source revision %s%s%s%s: %zu objects, %zu errors", rev->revision, rev->commit ? " (commit " : "",
                    rev->commit ? rev->commit : "", rev->commit ? (rev->dirty ? ", dirty)" : ")") : "", set->n_objects,
                    set->n_errors);
        eg_metrics_set_revision(d->metrics, rev->revision, rev->commit);
        note_start(d, rev);
        eg_reconciler_poke_all(d->opt->rec);
}

/* On the loop, the worker joined: what the read found becomes the daemon's. */
static void cycle_publish_read(struct eg_daemon *d, struct cycle *c) {
        d->last_read_ms = eg_now_realtime_ms();
        if (c->read_r < 0)
                set_str(&d->last_error, c->read_err.message ? c->read_err.message : strerror(-c->read_r));
        else {
                set_str(&d->last_error, c->read_err.message);
                if (c->force_key) {
                        free(d->force_key);
                        d->force_key = TAKE_PTR(c->force_key);
                        set_str(&d->force_previous, c->rev.previous_commit);
                        set_str(&d->force_commit, c->rev.commit);
                        d->force_held = c->rev.held;
                        d->force_time_ms = eg_now_realtime_ms();
                }
                eg_desired_set_free(d->desired);
                eg_source_revision_done(&d->rev);
                d->desired = TAKE_PTR(c->set);
                d->rev = c->rev;
                c->rev = (struct eg_source_revision){0};
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

/* On the worker, after the pass: picks the backups due. They wait for the clusters to
 * settle (a member still starting would fail them), but never more than a minute past
 * due, so one stuck cluster cannot starve every backup. */
static void cycle_backups(struct eg_daemon *d, struct cycle *c, const struct eg_desired_set *desired,
                          const char *revision) {
        int64_t now = eg_now_realtime_ms();
        if (c->backup_due_ms == 0)
                c->backup_due_ms = now;
        if (now < c->backup_due_ms || (!c->res.all_converged && now - c->backup_due_ms < 60000))
                return;
        int64_t next = INT64_MAX;
        if (eg_backup_controller_start(d->opt->backups, desired, revision, now, &c->batch, &next) < 0) {
                eg_log_error("cannot prepare the backups due: out of memory");
                next = now + 60000;
        }
        c->backup_due_ms = next;
}


/* ---- the reconcile cycle ---- */

static void cycle_work(struct eg_daemon *d) {
        struct cycle *c = &d->cycle;
        if (c->read)
                cycle_read(d, c);
        if (c->changed)
                c->backup_due_ms = 0; /* a new revision may bring new backups */
        const struct eg_desired_set *desired = c->set ? c->set : d->desired;
        const struct eg_source_revision *src = c->set ? &c->rev : &d->rev;
        if (!desired || !c->lead)
                return;
        d->pass_stop = !may_act(d);
        struct eg_revision_info rev = {.revision = src->revision, .commit = src->commit, .dirty = src->dirty};
        c->pass_r = eg_reconciler_pass(d->opt->rec, desired, &rev, &c->res);
        if (c->pass_r >= 0)
                note_after_pass(d, &c->res);
        const char *why = eg_reconciler_list_problem(d->opt->rec);
        if (why || c->pass_r < 0)
                c->list_error = strdup(why ? why : strerror(-c->pass_r));
        if (c->may_backup && may_act(d))
                cycle_backups(d, c, desired, rev.revision);
}

static void cycle_done(struct cycle *c) {
        eg_error_done(&c->read_err);
        free(c->list_error);
        eg_desired_set_free(c->set);
        eg_source_revision_done(&c->rev);
        free(c->force_key);
        eg_backup_batch_free(c->batch);
        *c = (struct cycle){0};
}

static void watch_drop(struct pid_watch *w) {
        sd_event_source_disable_unref(w->source);
        w->source = NULL;
}

/* A member changed: a pass now, or right after the one under way. */
static void pass_soon(struct eg_daemon *d) {
        if (d->cycler.running)
                d->cycle_again = true;
        else
                arm(d->reconcile_timer, eg_now_monotonic_ms());
}

static int on_member_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct pid_watch *w = userdata;
        watch_drop(w);
        pass_soon(w->d);
        return 0;
}

static int on_runtime_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct eg_daemon *d = userdata;
        uint64_t n;
        (void)!read(fd, &n, sizeof(n));
        eg_log_debug("the %s runtime reports a change", d->opt->runtime->ops->name);
        /* a daemon standing by passes only once it leads: a change would only make it re-read
         * the source */
        if (d->leading)
                pass_soon(d);
        return 0;
}

/* Watches exactly the member processes the reconciler last saw running. Best effort: a
 * process that cannot be watched is still found by the next recheck. */
static void watches_sync(struct eg_daemon *d) {
        int64_t *pids = NULL;
        size_t n = 0;
        if (eg_reconciler_member_pids(d->opt->rec, &pids, &n) < 0)
                return;
        struct pid_watch *ws = n ? calloc(n, sizeof(*ws)) : NULL;
        size_t k = 0;
        for (size_t i = 0; ws && i < n; i++) {
                struct pid_watch *old = NULL;
                for (size_t j = 0; j < d->n_watches; j++)
                        if (d->watches[j].pid == pids[i] && d->watches[j].source)
                                old = &d->watches[j];
                if (old) {
                        ws[k] = *old;
                        old->source = NULL;
                } else {
                        int fd = pidfd_open((pid_t)pids[i], 0);
                        if (fd < 0)
                                continue;
                        ws[k] = (struct pid_watch){.pid = pids[i], .d = d};
                        if (sd_event_add_io(d->event, &ws[k].source, fd, EPOLLIN, on_member_exit, NULL) < 0) {
                                close(fd);
                                continue;
                        }
                        sd_event_source_set_io_fd_own(ws[k].source, true);
                }
                k++;
        }
        for (size_t j = 0; j < d->n_watches; j++)
                watch_drop(&d->watches[j]);
        free(d->watches);
        d->watches = ws;
        d->n_watches = ws ? k : 0;
        /* the array is final: the callbacks may now point into it */
        for (size_t i = 0; i < d->n_watches; i++)
                sd_event_source_set_userdata(d->watches[i].source, &d->watches[i]);
        free(pids);
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
                        d->list_error = TAKE_PTR(c->list_error);
                        if (c->pass_r >= 0) {
                                due = c->res.next_due_ms;
                                watches_sync(d);
                        }
                }
                if (!d->ready) {
                        d->ready = true;
                        sd_notify(0, "READY=1");
                }
                if (c->lead)
                        sd_notifyf(0, "STATUS=revision %s: %zu clusters, %zu converged, %zu blocked, %zu failing",
                                   d->rev.revision, c->res.n_clusters, c->res.n_converged, c->res.n_blocked,
                                   c->res.n_failed);
                else
                        sd_notifyf(0, "STATUS=revision %s: standing by, the lease %s/%s is held by %s", d->rev.revision,
                                   eg_lease_namespace(d->opt->lease), eg_lease_name(d->opt->lease),
                                   d->lease_holder ? d->lease_holder : "nobody yet");
        }
        if (c->may_backup)
                d->backup_due_ms = c->backup_due_ms;
        else if (c->changed)
                d->backup_due_ms = 0;
        if (c->batch) {
                d->backup_batch = TAKE_PTR(c->batch);
                /* the lease lost since the worker picked the batch: abandoned at once, recorded */
                atomic_store(&d->backup_cancel, !d->leading);
                worker_start(&d->backuper);
        }
        if (d->opt->backups && !d->backup_batch && d->backup_due_ms != INT64_MAX) {
                int64_t bdue = d->backup_due_ms == 0 ? now : now + (d->backup_due_ms - eg_now_realtime_ms());
                if (bdue < due)
                        due = bdue;
        }
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

static int on_lease_deadline(sd_event_source *s, uint64_t usec, void *userdata);

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

static void read_soon(struct eg_daemon *d) {
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

/* ---- leader election ---- */

static void lease_work(struct eg_daemon *d) { d->lease_r = eg_lease_try(d->opt->lease, &d->lease_st, &d->lease_err); }

static void lease_lead(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        const char *prev = d->lease_st.previous;
        bool back = str_eq(prev, eg_lease_identity(l));
        _cleanup_free_ char *reason =
                !prev  ? eg_strdup_printf("took the lease %s/%s, held by nobody (transition %lld)", eg_lease_namespace(l),
                                          eg_lease_name(l), (long long)d->lease_st.transitions)
                : back ? eg_strdup_printf("renewed the lease %s/%s again after missing the renew deadline",
                                          eg_lease_namespace(l), eg_lease_name(l))
                       : eg_strdup_printf("took the lease %s/%s over from %s (transition %lld)", eg_lease_namespace(l),
                                          eg_lease_name(l), prev, (long long)d->lease_st.transitions);
        d->leading = true;
        atomic_store(&d->standby, false);
        eg_metrics_set_leader(d->metrics, eg_lease_identity(l), true);
        eg_log_info("leading as %s: %s", eg_lease_identity(l), reason ? reason : "took the lease");
        record(d, &d->rev, "leader-elected", reason, "ok");
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
        record(d, &d->rev, "leader-lost", why, "ok");
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
                        eg_log_info("standing by: the lease %s/%s is held by %s", eg_lease_namespace(l), eg_lease_name(l),
                                    st->holder);
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

static int on_lease_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        struct eg_daemon *d = userdata;
        const struct eg_lease *l = d->opt->lease;
        if (!d->leading)
                return 0;
        _cleanup_free_ char *why =
                eg_strdup_printf("the lease %s/%s could not be renewed for %d s%s%s", eg_lease_namespace(l),
                                 eg_lease_name(l), EG_LEASE_RENEW_DEADLINE_MS / 1000, d->lease_error ? ": " : "",
                                 d->lease_error ? d->lease_error : "");
        lease_stand_by(d, why ? why : "the lease could not be renewed");
        return 0;
}

static int lease_setup(struct eg_daemon *d) {
        const struct eg_lease *l = d->opt->lease;
        int r = worker_init(&d->leaser, d, "lease", lease_work, lease_done);
        if (r < 0)
                return r;
        if ((r = sd_event_add_time(d->event, &d->lease_timer, CLOCK_MONOTONIC, 0, 0, on_lease_timer, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->lease_deadline, CLOCK_MONOTONIC, UINT64_MAX, 0, on_lease_deadline, d)) < 0)
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
static void lease_finish(struct eg_daemon *d) {
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

/* ---- HTTP handlers ---- */

static bool http_ready(void *userdata) {
        struct eg_daemon *d = userdata;
        return d->ready && d->leading && !d->list_error;
}

static char *http_unready_why(void *userdata) {
        struct eg_daemon *d = userdata;
        if (d->leading && d->list_error)
                return eg_strdup_printf("cannot see every cluster: %s\n", d->list_error);
        if (!d->opt->lease || d->leading)
                return NULL;
        const struct eg_lease *l = d->opt->lease;
        if (d->lease_holder)
                return eg_strdup_printf("standby: the lease %s/%s is held by %s\n", eg_lease_namespace(l),
                                        eg_lease_name(l), d->lease_holder);
        return eg_strdup_printf("standby: waiting for the lease %s/%s%s%s\n", eg_lease_namespace(l), eg_lease_name(l),
                                d->lease_error ? ": " : "", d->lease_error ? d->lease_error : "");
}

static int http_metrics(void *userdata, struct eg_buf *out) {
        return eg_metrics_render(((struct eg_daemon *)userdata)->metrics, out);
}

static int cmp_dirent(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int no_dots(const struct dirent *e) { return e->d_name[0] != '.'; }

/* The status files the reconciler wrote after its last pass, sorted by namespace and
 * name: no etcd call on the loop, bounded in count and size. */
static json_t *cached_statuses(const char *state_dir) {
        json_t *arr = json_array();
        _cleanup_free_ char *root = state_dir ? eg_path_join(state_dir, "status") : NULL;
        struct dirent **ns = NULL;
        int n_ns = root ? scandir(root, &ns, no_dots, cmp_dirent) : -1;
        for (int i = 0; i < n_ns; i++) {
                _cleanup_free_ char *dir = eg_path_join(root, ns[i]->d_name);
                struct dirent **files = NULL;
                int n = dir ? scandir(dir, &files, no_dots, cmp_dirent) : -1;
                for (int k = 0; k < n; k++) {
                        if (arr && json_array_size(arr) < STATUS_MAX_FILES && eg_str_has_suffix(files[k]->d_name, ".json")) {
                                _cleanup_free_ char *p = eg_path_join(dir, files[k]->d_name);
                                _cleanup_free_ char *text = NULL;
                                size_t len;
                                json_t *j = p && eg_read_file(p, STATUS_FILE_MAX, &text, &len) == 0
                                                    ? json_loadb(text, len, 0, NULL) : NULL;
                                if (j)
                                        json_array_append_new(arr, j);
                        }
                        free(files[k]);
                }
                free(files);
                free(ns[i]);
        }
        free(ns);
        return arr;
}

static json_t *time_or_null(int64_t ms) {
        if (!ms)
                return json_null();
        char buf[32];
        eg_format_rfc3339_ms(ms, buf);
        return json_string(buf);
}

static int http_status(void *userdata, char **ret) {
        struct eg_daemon *d = userdata;
        json_t *fp = d->force_key ? json_pack("{s:s?, s:s?, s:b, s:o}", "previousCommit", d->force_previous, "commit",
                                              d->force_commit, "held", d->force_held, "time", time_or_null(d->force_time_ms))
                                  : json_null();
        const struct eg_lease *l = d->opt->lease;
        json_t *le = l ? json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?}", "namespace", eg_lease_namespace(l), "lease",
                                   eg_lease_name(l), "identity", eg_lease_identity(l), "leader", d->leading, "holder",
                                   d->lease_holder, "lastError", d->lease_error)
                       : json_null();
        json_t *doc = json_pack(
                "{s:b, s:s?, s:{s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:o, s:s?, s:s?}, s:o, s:o, s:o}", "ready",
                d->ready, "listError", d->list_error, "source",
                "kind", d->opt->source->ops->kind, "revision", d->rev.revision, "commit", d->rev.commit, "author",
                d->rev.author, "subject", d->rev.subject, "dirty", d->rev.dirty, "lastRead", time_or_null(d->last_read_ms),
                "lastError", d->last_error, "waitingForCommit", d->hook_commit, "forcePush", fp, "leaderElection", le,
                "clusters", cached_statuses(d->opt->state_dir));
        if (!doc)
                return -ENOMEM;
        *ret = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        return *ret ? 0 : -ENOMEM;
}

static void http_webhook(void *userdata, const struct eg_webhook_event *ev) {
        struct eg_daemon *d = userdata;
        eg_metrics_webhook(d->metrics, ev->result);
        switch (ev->result) {
        case EG_WEBHOOK_ACCEPTED:
                eg_log_info("webhook from %s%s%s: reading the source", ev->remote, ev->commit ? " for commit " : "",
                            ev->commit ? ev->commit : "");
                if (ev->commit) {
                        set_str(&d->hook_commit, ev->commit);
                        d->hook_started_ms = eg_now_monotonic_ms();
                        d->hook_deadline_ms = d->hook_started_ms + (d->opt->hook_wait_ms > 0 ? d->opt->hook_wait_ms : 10000);
                }
                read_soon(d);
                return;
        case EG_WEBHOOK_PING:
                eg_log_info("webhook ping from %s", ev->remote);
                return;
        case EG_WEBHOOK_TOO_LARGE:
                eg_log_warning("webhook from %s refused: payload too large", ev->remote);
                return;
        case EG_WEBHOOK_REJECTED:
        case EG_WEBHOOK_N_RESULTS:
                break;
        }
        eg_log_warning("webhook from %s rejected: %s", ev->remote, ev->why);
        int64_t now = eg_now_monotonic_ms();
        if (now - d->reject_window_ms >= 60000) {
                d->reject_window_ms = now;
                d->reject_records = 0;
        }
        if (d->reject_records >= REJECT_RECORDS_PER_MIN) {
                d->reject_suppressed++;
                return;
        }
        d->reject_records++;
        _cleanup_free_ char *reason =
                d->reject_suppressed
                        ? eg_strdup_printf("webhook from %s rejected: %s (%u more rejected without a record before it)",
                                           ev->remote, ev->why, d->reject_suppressed)
                        : eg_strdup_printf("webhook from %s rejected: %s", ev->remote, ev->why);
        d->reject_suppressed = 0;
        record(d, &d->rev, "webhook-rejected", reason, "blocked");
}

/* ---- settings that SIGHUP reloads ---- */

static int load_secret(struct eg_daemon *d) {
        if (!d->http || !d->opt->webhook_secret_file)
                return 0;
        char *s = NULL;
        size_t n = 0;
        int r = eg_webhook_secret_read(d->opt->webhook_secret_file, &s, &n);
        if (r < 0)
                return eg_log_error_errno(r, "cannot read the webhook secret '%s': %m", d->opt->webhook_secret_file);
        r = eg_http_set_secret(d->http, s, n);
        explicit_bzero(s, n);
        free(s);
        return r;
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

int eg_daemon_run(struct eg_daemon *d, const struct eg_daemon_options *opt) {
        d->opt = opt;
        int r;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_new(&d->event);
        if (r < 0)
                return eg_log_error_errno(r, "cannot create the event loop: %m");
        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_signal, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->reconcile_timer, CLOCK_MONOTONIC, 0, 0, on_reconcile, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->debounce_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounced, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->hook_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_hook_timer, d)) < 0 ||
            (r = sd_event_add_time(d->event, &d->rescan_timer, CLOCK_MONOTONIC, 0, 0, on_rescan, d)) < 0) {
                eg_log_error_errno(r, "cannot set up the event loop: %m");
                goto out;
        }
        /* Timers need an accuracy finer than sd-event's 250 ms default to meet the
         * reaction and failover targets. */
        sd_event_source_set_time_accuracy(d->reconcile_timer, 1000);
        sd_event_source_set_time_accuracy(d->debounce_timer, 1000);
        sd_event_source_set_time_accuracy(d->hook_timer, 1000);
        sd_event_source_set_time_accuracy(d->rescan_timer, 100000);
        sd_event_source_set_enabled(d->debounce_timer, SD_EVENT_OFF);
        sd_event_source_set_enabled(d->hook_timer, SD_EVENT_OFF);
        arm(d->rescan_timer, eg_now_monotonic_ms() + jittered(d, opt->interval_ms));
        int fd = eg_source_watch_fd(opt->source);
        if (fd >= 0) {
                r = sd_event_add_io(d->event, &d->inotify_source, fd, EPOLLIN, on_inotify, d);
                if (r < 0) {
                        eg_log_error_errno(r, "cannot watch the source: %m");
                        goto out;
                }
        } else
                eg_log_info("polling the %s source every %lld ms (±10 %%)", opt->source->ops->kind,
                            (long long)opt->interval_ms);
        if (opt->runtime && opt->runtime->ops->change_fd) {
                struct eg_error err = {0};
                fd = opt->runtime->ops->change_fd(opt->runtime, &err);
                /* best effort, as the pidfds: without it rechecks still find every change */
                if (fd < 0 || sd_event_add_io(d->event, &d->change_source, fd, EPOLLIN, on_runtime_change, d) < 0)
                        eg_log_warning("cannot follow changes of the %s runtime (%s): they are found by rechecks",
                                       opt->runtime->ops->name, err.message ? err.message : strerror(fd < 0 ? -fd : EIO));
                eg_error_done(&err);
        }
        if (opt->listen) {
                struct eg_error err = {0};
                struct eg_http_options ho = {
                        .listen = opt->listen,
                        .handlers = {.ready = http_ready, .unready_why = http_unready_why, .status = http_status,
                                     .metrics = http_metrics, .webhook = http_webhook, .userdata = d},
                };
                r = eg_http_new(d->event, &ho, &d->http, &err);
                if (r < 0 && opt->listen_optional) {
                        /* a second daemon on this host (another state dir) still runs */
                        eg_log_warning("%s; running without the HTTP endpoints", err.message ? err.message : strerror(-r));
                        eg_error_done(&err);
                } else if (r < 0) {
                        eg_log_error("%s", err.message ? err.message : strerror(-r));
                        eg_error_done(&err);
                        goto out;
                }
        }
        if (d->http) {
                eg_log_info("serving /healthz, /readyz, /status, /metrics and POST /hook on %s (port %u)", opt->listen,
                            eg_http_port(d->http));
                if ((r = load_secret(d)) < 0)
                        goto out;
        } else if (opt->webhook_secret_file && !opt->listen)
                eg_log_warning("--webhook-secret-file is ignored without --listen");
        if ((r = worker_init(&d->cycler, d, "reconcile", cycle_work, cycle_publish)) < 0 ||
            (opt->backups && (r = worker_init(&d->backuper, d, "backup", backups_work, backups_done)) < 0) ||
            (opt->lease && (r = lease_setup(d)) < 0))
                goto out;
        sd_event_set_watchdog(d->event, true);
        r = sd_event_loop(d->event);
        /* the step in progress finishes, with its audit record (bounded by its timeouts) */
        if (d->cycler.running) {
                eg_log_info("waiting for the reconcile pass in progress");
                worker_join(&d->cycler);
                cycle_done(&d->cycle);
        }
        /* a snapshot still streaming is abandoned (nothing of it is left), and recorded */
        if (d->backup_batch) {
                eg_log_info("abandoning the backup in progress");
                atomic_store(&d->backup_cancel, true);
                worker_join(&d->backuper);
                backups_record(d);
        }
        /* what the last revision did goes into its note even when stopped before it settled */
        if (d->note_dirty)
                note_write(d);
        if (opt->lease)
                lease_finish(d);
out:
        eg_http_free(d->http);
        d->http = NULL;
        sd_event_source_unref(d->reconcile_timer);
        sd_event_source_unref(d->debounce_timer);
        sd_event_source_unref(d->rescan_timer);
        sd_event_source_unref(d->hook_timer);
        sd_event_source_unref(d->inotify_source);
        d->change_source = sd_event_source_disable_unref(d->change_source);
        sd_event_source_unref(d->lease_timer);
        sd_event_source_unref(d->lease_deadline);
        d->lease_timer = d->lease_deadline = NULL;
        for (size_t i = 0; i < d->n_watches; i++)
                watch_drop(&d->watches[i]);
        free(d->watches);
        d->watches = NULL;
        d->n_watches = 0;
        d->reconcile_timer = d->debounce_timer = d->rescan_timer = d->hook_timer = d->inotify_source = NULL;
        worker_done(&d->cycler);
        worker_done(&d->backuper);
        worker_done(&d->leaser);
        sd_event_unref(d->event);
        d->event = NULL;
        eg_desired_set_free(d->desired);
        d->desired = NULL;
        eg_source_revision_done(&d->rev);
        return r < 0 ? r : 0;
}
