/* daemon internals: the daemon's state and what its files share. */
#pragma once

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "etcd-gitops/daemon.h"
#include "etcd-gitops/http.h"
#include "etcd-gitops/metrics.h"

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
        char *last_error;     /* of the last read (failed, or stale), NULL when it went well */
        bool read_failed;     /* the last read failed outright: the last good set is in force */
        /* What the source and the last pass found, for /status, /readyz and metrics; the
         * loop's, set when a cycle is published (cycle_publish):
         * - source_diags: the diagnostics of the desired set in force, as eg_cycle_diags_json
         *   gives them (an array of {file,line,column,severity,field?,message}); kept while
         *   reads fail (last_error, read_failed say why); NULL before the first read;
         *   source_errors counts its errors;
         * - last_pass: the last pass this daemon ran (time_ms 0: none yet). */
        json_t *source_diags;
        size_t source_errors;
        struct pass_outcome {
                int64_t time_ms; /* realtime it ended */
                int r;           /* its errno when it could not run (list_error says why) */
                struct eg_pass_result result;
        } last_pass;
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

        /* A cycle (a source read when one is asked for, a pass, the backups it finds due)
         * talks to git, etcd and the Kubernetes API, so it runs on a worker thread: the loop
         * keeps answering HTTP, signals and the watchdog however long etcd takes. While it
         * runs, the worker alone touches the reconciler, the source, the git note and
         * `cycle`; the loop publishes its results once it has joined it. */
        struct worker cycler;
        bool cycle_again; /* the timer fired during a cycle */
        sd_event_source *inotify_source;
        struct cycle {
                bool read, reload;          /* read the source first; a SIGHUP's reload waits on it */
                bool lead;                  /* pass (and maybe back up): this daemon holds the lease */
                struct eg_cycle_read in;    /* what the read produced */
                char *force_key;            /* a force-push not seen before */
                bool may_backup;            /* no batch out: the worker may start one */
                int64_t backup_due_ms;      /* the loop's value at the start, updated by the worker */
                struct eg_cycle_result out; /* its batch started by the worker, launched by the loop */
                struct control_job *jobs;   /* requests this cycle answers (control.c) */
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
        } * watches;
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
        atomic_bool standby; /* !leading or stopping, for the reconcile thread */
        /* monotonic: the renew deadline of the last successful try, judged by the clock
         * on both threads, so that a daemon that was frozen (SIGSTOP, a VM paused) past it
         * stops before its timers have even run; INT64_MAX without a lease */
        _Atomic int64_t act_until;
        volatile sig_atomic_t pass_stop; /* see eg_daemon_pass_stop */

        /* The control socket (control.c). A request that needs the reconciler waits in
         * control_jobs for the next cycle to start; that cycle's worker runs what it asks
         * and the loop answers it once the cycle is published. */
        int control_fd;
        sd_event_source *control_source;
        struct control_conn *control_conns;
        size_t n_control_conns;
        struct control_job *control_jobs;
        char *source_real; /* the source's location as apply would name it */
};

static inline void set_str(char **dst, const char *s) {
        free(*dst);
        *dst = s ? strdup(s) : NULL;
}

static inline bool str_eq(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

/* daemon.c */
int arm(sd_event_source *s, int64_t due_monotonic_ms);
uint64_t next_random(struct eg_daemon *d);
void read_soon(struct eg_daemon *d);
/* One decision of the daemon's own (force-push, webhook-rejected, leader) into the journal. */
void daemon_record(struct eg_daemon *d, const struct eg_source_revision *rev, const char *decision, const char *reason,
                   const char *outcome);

/* worker.c */
int worker_init(struct worker *w, struct eg_daemon *d, const char *what, void (*work)(struct eg_daemon *),
                void (*done)(struct eg_daemon *));
/* Starts the work on its thread, or runs it (and done) on the loop when no thread can be had. */
void worker_start(struct worker *w);
/* Waits for the thread, if one runs. */
void worker_join(struct worker *w);
void worker_done(struct worker *w);

/* watch.c */
/* A member changed: a pass now, or right after the one under way. */
void pass_soon(struct eg_daemon *d);
int on_runtime_change(sd_event_source *s, int fd, uint32_t revents, void *userdata);
void watches_sync(struct eg_daemon *d);
void watches_drop_all(struct eg_daemon *d);

/* lease.c */
int lease_setup(struct eg_daemon *d);
int on_lease_deadline(sd_event_source *s, uint64_t usec, void *userdata);
void lease_finish(struct eg_daemon *d);

/* control.c: one client of the control socket, and one request waiting on a cycle */
struct control_conn {
        struct control_conn *next;
        struct eg_daemon *d;
        int fd;
        sd_event_source *io, *timer;
        struct eg_buf in, out;
        size_t out_off;          /* of out, what went out already */
        char *actor;             /* "uid 1000 (alice)", from the peer's credentials */
        struct control_job *job; /* waiting for a cycle; NULL: none */
        bool requested, answered;
};
enum control_command { CONTROL_RECONCILE, CONTROL_SUSPEND, CONTROL_RESUME };
struct control_job {
        struct control_job *next;
        struct control_conn *conn; /* NULL once the client left */
        enum control_command command;
        char *ns, *name; /* NULL: every cluster */
        char *reason, *actor;
        /* suspend, resume: what the worker's call gave */
        int r;
        struct eg_error err;
};
void control_jobs_free(struct control_job *j);
/* Queues msg (taken) for the client; a client that does not read is dropped. */
void control_send(struct control_conn *c, json_t *msg);
/* Queues the result (taken); the connection closes once it is out. */
void control_reply(struct control_conn *c, json_t *result);
/* An error result: exit 2, message. */
void control_fail(struct control_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* control_jobs.c: what each request does */
void control_request(struct control_conn *c, json_t *req);

/* Listens on opt->control_socket, refusing when a daemon already answers there. */
int control_setup(struct eg_daemon *d);
/* Closes every connection, drops the jobs waiting, removes the socket. */
void control_teardown(struct eg_daemon *d);
/* On the loop, as a cycle starts: it takes the jobs waiting. */
void control_jobs_take(struct eg_daemon *d, struct cycle *c);
/* On the worker, before the read: runs what the cycle's jobs ask of the reconciler. */
void control_jobs_run(struct eg_daemon *d, struct cycle *c);
/* On the loop, the cycle published: answers its jobs and frees them. */
void control_jobs_answer(struct eg_daemon *d, struct cycle *c);

/* handlers.c */
int http_setup(struct eg_daemon *d);
int load_secret(struct eg_daemon *d);
