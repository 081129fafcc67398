/* daemon: the event loop of `run` (sd-event): source watch or polling, reconcile timer,
 * signals, sd_notify and the watchdog, the HTTP endpoints, metrics and git notes. */
#pragma once

#include <stdint.h>

#include "etcd-gitops/backup.h"
#include "etcd-gitops/cycle.h"
#include "etcd-gitops/journal.h"
#include "etcd-gitops/lease.h"
#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/runtime.h"
#include "etcd-gitops/source.h"

struct eg_daemon_options {
        struct eg_source *source;  /* borrowed */
        struct eg_reconciler *rec; /* borrowed; created with eg_daemon_on_event */
        struct eg_cycle *cycle;    /* borrowed; over rec, source, backups and journal */
        /* borrowed: the daemon's own decisions (force-push, webhook-rejected, leader) are
         * recorded through it, and it adds its metrics and git note as sinks */
        struct eg_journal *journal;
        int64_t interval_ms;                  /* full re-read of the source even without events (±10 % jitter) */
        int64_t debounce_ms;                  /* quiet time after a change before reading */
        const char *listen;                   /* HTTP endpoints, "HOST:PORT"; NULL = none */
        bool listen_optional;                 /* listen is the default: a failure to bind only warns */
        const char *webhook_secret_file;      /* NULL: every webhook is refused */
        const char *state_dir;                /* /status reads the status files under <state_dir>/status/ */
        const char *audit_log;                /* the page at / shows its last records; NULL: none */
        int64_t hook_wait_ms;                 /* how long to re-read for a commit a webhook named; 0 = 10 s */
        int64_t hook_retry_ms;                /* between those reads; 0 = 200 ms */
        struct eg_backup_controller *backups; /* borrowed; runs EtcdBackups when due; may be NULL */
        /* borrowed; NULL: no leader election, this daemon always acts. With one, the daemon
         * reads the source and serves HTTP always, but passes and backups run only while
         * it holds the lease, and it gives the lease up when it stops. */
        struct eg_lease *lease;
        /* borrowed; may be NULL. Where it has a change signal (a pod watch), each change starts
         * a pass at once, as a member process's exit does. */
        struct eg_runtime *runtime;
        /* The control socket (specs/control.md) to listen on; NULL: none. control_link: a
         * second name for it (the state dir's control.sock, where the CLI looks), a symlink
         * made when it differs; may be NULL. */
        const char *control_socket, *control_link;
        /* what the source was opened from (--source, --path, --ref), so that apply can be
         * told whether it names the same one; path and ref may be NULL */
        const char *source_location, *source_path, *source_ref;
        /* /readyz is 503 while the last read of the source failed (--readyz-source=required, the
         * default); true (optional): ready on the last good revision all the same */
        bool readyz_source_optional;
};

struct eg_daemon;

int eg_daemon_new(struct eg_daemon **ret);
/* Accepts NULL. */
void eg_daemon_free(struct eg_daemon *d);

/* The reconciler's event callback (userdata: the daemon): feeds the per-cluster metrics
 * (decisions come through the journal). Called on the daemon's reconcile thread. */
void eg_daemon_on_event(void *userdata, const struct eg_reconcile_event *ev);

/* The reconciler's stop flag (eg_reconciler_options.stop): set when the daemon stops or
 * loses the lease, so that a pass finishes the step under way and takes up no further
 * cluster. Read and written on the reconcile thread only. */
const volatile sig_atomic_t *eg_daemon_pass_stop(struct eg_daemon *d);

/* Runs until SIGTERM/SIGINT: finishes the step in progress and its audit record, then
 * returns 0. Negative errno when the loop, the HTTP server or the webhook secret cannot
 * be set up (logged). */
int eg_daemon_run(struct eg_daemon *d, const struct eg_daemon_options *opt);
