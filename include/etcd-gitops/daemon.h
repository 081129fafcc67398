/* daemon: the event loop of `run` (sd-event): source watch, reconcile timer, signals,
 * sd_notify and the watchdog. */
#pragma once

#include <stdint.h>

#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/source.h"

struct eg_daemon_options {
        struct eg_source *source;     /* borrowed */
        struct eg_reconciler *rec;    /* borrowed */
        int64_t interval_ms;          /* full re-read of the source even without events */
        int64_t debounce_ms;          /* quiet time after a change before reading */
};

/* Runs until SIGTERM/SIGINT: finishes the step in progress and its audit record, then
 * returns 0. Negative errno when the loop cannot be set up. */
int eg_daemon_run(const struct eg_daemon_options *opt);
