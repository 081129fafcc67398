/* metrics: the daemon's counters and gauges, fed by the journal and by reconcile events,
 * rendered in the Prometheus text format for /metrics. */
#pragma once

#include <stdint.h>

#include "etcd-gitops/journal.h"
#include "etcd-gitops/reconcile.h"
#include "etcd-gitops/util.h"

/* Upper bounds (ms) of the reconcile duration histogram; +Inf follows the last. */
#define EG_METRICS_BUCKETS_MS 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000

/* At most this many clusters, EtcdBackups and decision/outcome pairs are tracked; more are dropped
 * (and counted in etcd_gitops_metrics_dropped_total) so a flood of names cannot grow
 * the daemon without bound. */
#define EG_METRICS_MAX_CLUSTERS 10000
#define EG_METRICS_MAX_DECISIONS 512

enum eg_webhook_result {
        EG_WEBHOOK_ACCEPTED,  /* signature good, a read was triggered */
        EG_WEBHOOK_PING,      /* GitHub ping answered */
        EG_WEBHOOK_REJECTED,  /* signature or token missing or wrong (401) */
        EG_WEBHOOK_TOO_LARGE, /* payload over the limit (413) */
        EG_WEBHOOK_N_RESULTS,
};
const char *eg_webhook_result_to_string(enum eg_webhook_result r);

struct eg_metrics;

int eg_metrics_new(struct eg_metrics **ret);
/* Accepts NULL. */
void eg_metrics_free(struct eg_metrics *m);

/* Counts a DECISION (by decision and outcome) or records a CLUSTER_PASS (duration into
 * the cluster's histogram, members ready and desired, quorum, and its plan's state for its
 * conditions). A cluster whose pass says ABSENT with nothing running is forgotten. A failed
 * DECISION about a cluster shows in its conditions until a pass that began after it.
 * Allocation failures drop the event. */
void eg_metrics_record(struct eg_metrics *m, const struct eg_reconcile_event *ev);
/* A journal sink (userdata: the metrics): counts the decision by kind and outcome; a
 * "backup" decision about an EtcdBackup (d->object) also sets its last success time,
 * duration and size ("ok") or counts a failure ("failed"); a failed decision of the
 * reconciler's (actor "reconcile") about a cluster is a failure of the cluster's, as with
 * eg_metrics_record. */
void eg_metrics_journal_sink(void *userdata, const struct eg_decision *d, uint64_t seq);
/* The revision applied now; commit may be NULL (shown as ""). */
int eg_metrics_set_revision(struct eg_metrics *m, const char *revision, const char *commit);
/* How the source stands: the documents and files of the revision applied that were
 * rejected, and whether the last read worked (false: it failed, or a git fetch failed and
 * the commit fetched before was read again). */
void eg_metrics_set_source(struct eg_metrics *m, size_t errors, bool ready);
/* A read of the source failed (etcd_gitops_source_read_failures_total). */
void eg_metrics_fetch_failed(struct eg_metrics *m);
void eg_metrics_force_push(struct eg_metrics *m);
void eg_metrics_webhook(struct eg_metrics *m, enum eg_webhook_result r);
/* Leader election: this daemon's identity and whether it leads now. Without a call, the
 * etcd_gitops_leader family is left out (a daemon that does not elect). */
int eg_metrics_set_leader(struct eg_metrics *m, const char *identity, bool leading);

/* Appends every family in a fixed order (clusters by namespace then name, decisions by
 * decision then outcome), then this build's and the process's, to out. -E2BIG when out's
 * cap is reached, -ENOMEM. */
int eg_metrics_render(struct eg_metrics *m, struct eg_buf *out);

/* ---- this build ---- */

enum eg_build_library {
        EG_BUILD_LIBYAML,
        EG_BUILD_LIBGIT2,
        EG_BUILD_LIBCURL,
        EG_BUILD_JANSSON,
        EG_BUILD_LIBMICROHTTPD,
        EG_BUILD_OPENSSL,
        EG_BUILD_N_LIBRARIES,
};

struct eg_build_info {
        const char *version; /* static */
        const char *commit;  /* static: the short commit of the checkout CMake configured, or "unknown" */
        struct {
                const char *name; /* static */
                char version[96]; /* as loaded, not as compiled against */
        } libraries[EG_BUILD_N_LIBRARIES];
};

void eg_build_info_get(struct eg_build_info *ret);

/* ---- the process, as the Prometheus client libraries report it ---- */

/* The fields of /proc/self/stat the process_* families are made of (proc_pid_stat(5)). */
struct eg_process_stat {
        uint64_t utime_ticks, stime_ticks; /* CPU time, in clock ticks */
        uint64_t start_ticks;              /* when it started, in clock ticks since boot */
        uint64_t vsize_bytes;
        uint64_t rss_pages;
};

/* Parses the text of /proc/PID/stat (a comm may hold spaces and parentheses). -EINVAL when
 * it is not what Linux writes. */
int eg_process_stat_parse(const char *text, struct eg_process_stat *ret);

/* Appends the process_* families (CPU seconds, resident and virtual memory, open and
 * maximum fds, start time), read from /proc/self alone: /proc/stat may be hidden
 * (ProcSubset=pid), so the boot time comes from CLOCK_BOOTTIME. Leaves out what cannot be
 * read; -E2BIG or -ENOMEM as eg_metrics_render. */
int eg_metrics_render_process(struct eg_buf *out);

/* Appends s escaped as a label value: backslash, double quote and newline. */
int eg_metrics_escape_label(struct eg_buf *out, const char *s);
