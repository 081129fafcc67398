/* Counters and gauges for /metrics, kept in sorted arrays so output order is stable. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/metrics.h"

static const int64_t buckets_ms[] = {EG_METRICS_BUCKETS_MS};
#define N_BUCKETS EG_ELEMENTSOF(buckets_ms)

struct cluster_metrics {
        char *ns, *name;
        uint64_t bucket[N_BUCKETS]; /* not cumulative; summed when rendered */
        uint64_t count;
        int64_t sum_ms;
        uint64_t ready, desired;
        bool quorum;
        bool passed; /* a pass has reported it: the series above mean something */
        enum eg_plan_state state;
        /* the reason of the last failure while it stands (static; NULL: none), and when it
         * was recorded (monotonic): a pass that began after it clears it */
        const char *failure;
        int64_t failed_ms;
};

/* Where a cluster stands, as its condition gauges say it: kstatus's and Flux's Ready (as
 * the manifest says) and Stalled (will not get there without someone acting), with one
 * CamelCase reason for both. */
struct condition {
        bool ready, stalled;
        const char *reason;
};

struct backup_metrics {
        char *ns, *name;
        int64_t last_success_ms; /* realtime; 0: none yet */
        int64_t last_duration_ms;
        uint64_t last_size;
        uint64_t failures;
};

struct decision_count {
        char *decision, *outcome;
        uint64_t n;
};

struct eg_metrics {
        /* recorded from the daemon's reconcile thread, rendered on its loop */
        pthread_mutex_t lock;
        struct cluster_metrics *clusters;
        size_t n_clusters, alloc_clusters;
        struct decision_count *decisions;
        size_t n_decisions, alloc_decisions;
        struct backup_metrics *backups;
        size_t n_backups, alloc_backups;
        char *revision, *commit;
        size_t source_errors;
        bool source_ready;
        uint64_t fetch_failures, force_pushes, dropped;
        uint64_t events_lost;
        uint64_t webhooks[EG_WEBHOOK_N_RESULTS];
        char *leader_identity; /* NULL: no leader election */
        bool leading;
};

const char *eg_webhook_result_to_string(enum eg_webhook_result r) {
        static const char *const names[EG_WEBHOOK_N_RESULTS] = {
                [EG_WEBHOOK_ACCEPTED] = "accepted",
                [EG_WEBHOOK_PING] = "ping",
                [EG_WEBHOOK_REJECTED] = "rejected",
                [EG_WEBHOOK_TOO_LARGE] = "too-large",
        };
        return (unsigned)r < EG_WEBHOOK_N_RESULTS ? names[r] : "unknown";
}

int eg_metrics_new(struct eg_metrics **ret) {
        struct eg_metrics *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        m->source_ready = true;
        *ret = m;
        return 0;
}

void eg_metrics_free(struct eg_metrics *m) {
        if (!m)
                return;
        for (size_t i = 0; i < m->n_clusters; i++) {
                free(m->clusters[i].ns);
                free(m->clusters[i].name);
        }
        free(m->clusters);
        for (size_t i = 0; i < m->n_decisions; i++) {
                free(m->decisions[i].decision);
                free(m->decisions[i].outcome);
        }
        free(m->decisions);
        for (size_t i = 0; i < m->n_backups; i++) {
                free(m->backups[i].ns);
                free(m->backups[i].name);
        }
        free(m->backups);
        free(m->revision);
        free(m->commit);
        free(m->leader_identity);
        pthread_mutex_destroy(&m->lock);
        free(m);
}

static int cmp2(const char *a1, const char *a2, const char *b1, const char *b2) {
        int c = strcmp(a1, b1);
        return c ? c : strcmp(a2, b2);
}

/* Index of (a, b) in a sorted array of n elements of size sz whose first two members are
 * the keys, or the insertion point with *found = false. */
static size_t find_sorted(const void *base, size_t n, size_t sz, const char *a, const char *b, bool *found) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                char *const *keys = (char *const *)((const char *)base + mid * sz);
                int c = cmp2(keys[0], keys[1], a, b);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

/* Makes room at index i of an array (grown by doubling) and zeroes the new slot. */
static int insert_at(void **base, size_t *n, size_t *alloc, size_t sz, size_t i) {
        if (*n == *alloc) {
                size_t na = *alloc ? *alloc * 2 : 8;
                void *p = realloc(*base, na * sz);
                if (!p)
                        return -ENOMEM;
                *base = p;
                *alloc = na;
        }
        char *b = *base;
        memmove(b + (i + 1) * sz, b + i * sz, (*n - i) * sz);
        memset(b + i * sz, 0, sz);
        (*n)++;
        return 0;
}

/* The entry of (a, b) in a sorted array of records whose first two members are the keys,
 * inserted zeroed when new; NULL (counted as dropped) past the limit or out of memory. */
static void *entry_get(struct eg_metrics *m, void **base, size_t *n, size_t *alloc, size_t sz, size_t max,
                       const char *a, const char *b) {
        bool found;
        size_t i = find_sorted(*base, *n, sz, a, b, &found);
        if (found)
                return (char *)*base + i * sz;
        if (*n >= max) {
                m->dropped++;
                return NULL;
        }
        char *ka = strdup(a), *kb = strdup(b);
        if (!ka || !kb || insert_at(base, n, alloc, sz, i) < 0) {
                free(ka);
                free(kb);
                m->dropped++;
                return NULL;
        }
        char **keys = (char **)((char *)*base + i * sz);
        keys[0] = ka;
        keys[1] = kb;
        return keys;
}

static struct cluster_metrics *cluster_get(struct eg_metrics *m, const char *ns, const char *name) {
        return entry_get(m, (void **)&m->clusters, &m->n_clusters, &m->alloc_clusters, sizeof(*m->clusters),
                         EG_METRICS_MAX_CLUSTERS, ns, name);
}

static void cluster_forget(struct eg_metrics *m, const char *ns, const char *name) {
        bool found;
        size_t i = find_sorted(m->clusters, m->n_clusters, sizeof(*m->clusters), ns, name, &found);
        if (!found)
                return;
        free(m->clusters[i].ns);
        free(m->clusters[i].name);
        memmove(&m->clusters[i], &m->clusters[i + 1], (m->n_clusters - i - 1) * sizeof(*m->clusters));
        m->n_clusters--;
}

static void count_decision(struct eg_metrics *m, const char *decision, const char *outcome) {
        struct decision_count *c = entry_get(m, (void **)&m->decisions, &m->n_decisions, &m->alloc_decisions,
                                             sizeof(*m->decisions), EG_METRICS_MAX_DECISIONS, decision, outcome);
        if (c)
                c->n++;
}

/* A failed decision of the reconciler about a cluster, shown in its conditions at once: a
 * pass that fails to observe the cluster or to restore it ends without reporting it. Clusters
 * not seen yet are taken in, so one never observed still shows why. */
static void cluster_failed(struct eg_metrics *m, const char *ns, const char *name, const char *decision) {
        struct cluster_metrics *c = cluster_get(m, ns, name);
        if (!c)
                return;
        c->failure = strcmp(decision, "failed") == 0 ? "ObserveFailed" : "StepFailed";
        c->failed_ms = eg_now_monotonic_ms();
}

static void record_locked(struct eg_metrics *m, const struct eg_reconcile_event *ev) {
        if (ev->kind == EG_EVENT_DECISION) {
                count_decision(m, ev->decision ? ev->decision : "", ev->outcome ? ev->outcome : "");
                if (ev->namespace && ev->name && ev->decision && ev->outcome && strcmp(ev->outcome, "failed") == 0)
                        cluster_failed(m, ev->namespace, ev->name, ev->decision);
                return;
        }
        if (ev->kind == EG_EVENT_PLATFORM_EVENT_LOST) {
                m->events_lost++;
                return;
        }
        if (ev->kind != EG_EVENT_CLUSTER_PASS || !ev->namespace || !ev->name)
                return;
        if (ev->state == EG_PLAN_ABSENT && ev->ready == 0 && ev->voters == 0) {
                cluster_forget(m, ev->namespace, ev->name);
                return;
        }
        struct cluster_metrics *c = cluster_get(m, ev->namespace, ev->name);
        if (!c)
                return;
        int64_t d = ev->duration_ms < 0 ? 0 : ev->duration_ms;
        for (size_t i = 0; i < N_BUCKETS; i++)
                if (d <= buckets_ms[i]) {
                        c->bucket[i]++;
                        break;
                }
        c->count++;
        c->sum_ms += d;
        c->ready = ev->ready;
        c->desired = ev->desired;
        c->quorum = ev->quorum;
        c->passed = true;
        c->state = ev->state;
        /* a failure recorded during this pass stands; one from a pass before does not */
        if (c->failure && c->failed_ms < eg_now_monotonic_ms() - d)
                c->failure = NULL;
}

void eg_metrics_record(struct eg_metrics *m, const struct eg_reconcile_event *ev) {
        pthread_mutex_lock(&m->lock);
        record_locked(m, ev);
        pthread_mutex_unlock(&m->lock);
}

static void backup_locked(struct eg_metrics *m, const struct eg_decision *d) {
        const char *slash = strchr(d->object, '/');
        if (!slash)
                return;
        _cleanup_free_ char *ns = strndup(d->object, (size_t)(slash - d->object));
        if (!ns)
                return;
        struct backup_metrics *b = entry_get(m, (void **)&m->backups, &m->n_backups, &m->alloc_backups,
                                             sizeof(*m->backups), EG_METRICS_MAX_CLUSTERS, ns, slash + 1);
        if (!b)
                return;
        if (strcmp(d->outcome, "ok") == 0) {
                b->last_success_ms = d->time_ms;
                b->last_duration_ms = d->duration_ms;
                b->last_size = d->size_bytes;
        } else if (strcmp(d->outcome, "failed") == 0)
                b->failures++;
}

/* A failed decision of the reconciler's about a cluster ("namespace/name"). */
static void journal_cluster_failed(struct eg_metrics *m, const struct eg_decision *d) {
        const char *slash = strchr(d->cluster, '/');
        if (!slash)
                return;
        _cleanup_free_ char *ns = strndup(d->cluster, (size_t)(slash - d->cluster));
        if (ns)
                cluster_failed(m, ns, slash + 1, d->kind);
}

void eg_metrics_journal_sink(void *userdata, const struct eg_decision *d, uint64_t seq) {
        struct eg_metrics *m = userdata;
        pthread_mutex_lock(&m->lock);
        count_decision(m, d->kind ? d->kind : "", d->outcome ? d->outcome : "");
        if (d->kind && strcmp(d->kind, "backup") == 0 && d->object && d->outcome)
                backup_locked(m, d);
        if (d->cluster && d->kind && d->outcome && strcmp(d->outcome, "failed") == 0 && d->actor &&
            strcmp(d->actor, "reconcile") == 0)
                journal_cluster_failed(m, d);
        pthread_mutex_unlock(&m->lock);
}

int eg_metrics_set_revision(struct eg_metrics *m, const char *revision, const char *commit) {
        char *r = strdup(revision ? revision : ""), *c = strdup(commit ? commit : "");
        if (!r || !c) {
                free(r);
                free(c);
                return -ENOMEM;
        }
        pthread_mutex_lock(&m->lock);
        free(m->revision);
        free(m->commit);
        m->revision = r;
        m->commit = c;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

void eg_metrics_set_source(struct eg_metrics *m, size_t errors, bool ready) {
        pthread_mutex_lock(&m->lock);
        m->source_errors = errors;
        m->source_ready = ready;
        pthread_mutex_unlock(&m->lock);
}

static void count(struct eg_metrics *m, uint64_t *counter) {
        pthread_mutex_lock(&m->lock);
        (*counter)++;
        pthread_mutex_unlock(&m->lock);
}

void eg_metrics_fetch_failed(struct eg_metrics *m) { count(m, &m->fetch_failures); }
void eg_metrics_force_push(struct eg_metrics *m) { count(m, &m->force_pushes); }

void eg_metrics_webhook(struct eg_metrics *m, enum eg_webhook_result r) {
        if ((unsigned)r < EG_WEBHOOK_N_RESULTS)
                count(m, &m->webhooks[r]);
}

int eg_metrics_set_leader(struct eg_metrics *m, const char *identity, bool leading) {
        char *id = strdup(identity);
        if (!id)
                return -ENOMEM;
        pthread_mutex_lock(&m->lock);
        free(m->leader_identity);
        m->leader_identity = id;
        m->leading = leading;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

int eg_metrics_escape_label(struct eg_buf *out, const char *s) {
        int r = 0;
        for (const char *p = s; *p && r >= 0; p++) {
                const char *e = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
                r = e ? eg_buf_puts(out, e) : eg_buf_append(out, p, 1);
        }
        return r < 0 ? r : eg_buf_append(out, "", 0);
}

static int family(struct eg_buf *out, const char *name, const char *type, const char *help) {
        return eg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{namespace="..",name="..",<extra>} */
static int cluster_series(struct eg_buf *out, const char *metric, const struct cluster_metrics *c, const char *extra) {
        int r;
        if ((r = eg_buf_printf(out, "%s{namespace=\"", metric)) < 0 || (r = eg_metrics_escape_label(out, c->ns)) < 0 ||
            (r = eg_buf_puts(out, "\",name=\"")) < 0 || (r = eg_metrics_escape_label(out, c->name)) < 0)
                return r;
        return eg_buf_printf(out, "\"%s%s} ", extra ? "," : "", extra ? extra : "");
}

static int render_histograms(const struct eg_metrics *m, struct eg_buf *out) {
        static const char h[] = "etcd_gitops_reconcile_duration_seconds";
        int r = family(out, h, "histogram",
                       "Time one reconcile pass over a cluster took (observe, plan, maybe one step).");
        for (size_t i = 0; r >= 0 && i < m->n_clusters; i++) {
                const struct cluster_metrics *c = &m->clusters[i];
                uint64_t cum = 0;
                if (!c->passed)
                        continue;
                for (size_t b = 0; r >= 0 && b < N_BUCKETS; b++) {
                        cum += c->bucket[b];
                        /* "0.05", "1", "2.5": seconds as Prometheus clients write them */
                        char num[24], le[32];
                        snprintf(num, sizeof(num), "%lld.%03lld", (long long)(buckets_ms[b] / 1000),
                                 (long long)(buckets_ms[b] % 1000));
                        size_t n = strlen(num);
                        while (num[n - 1] == '0')
                                num[--n] = 0;
                        if (num[n - 1] == '.')
                                num[--n] = 0;
                        snprintf(le, sizeof(le), "le=\"%s\"", num);
                        if ((r = cluster_series(out, "etcd_gitops_reconcile_duration_seconds_bucket", c, le)) >= 0)
                                r = eg_buf_printf(out, "%llu\n", (unsigned long long)cum);
                }
                if (r >= 0 &&
                    (r = cluster_series(out, "etcd_gitops_reconcile_duration_seconds_bucket", c, "le=\"+Inf\"")) >= 0)
                        r = eg_buf_printf(out, "%llu\n", (unsigned long long)c->count);
                if (r >= 0 && (r = cluster_series(out, "etcd_gitops_reconcile_duration_seconds_sum", c, NULL)) >= 0)
                        r = eg_buf_printf(out, "%lld.%03lld\n", (long long)(c->sum_ms / 1000),
                                          (long long)(c->sum_ms % 1000));
                if (r >= 0 && (r = cluster_series(out, "etcd_gitops_reconcile_duration_seconds_count", c, NULL)) >= 0)
                        r = eg_buf_printf(out, "%llu\n", (unsigned long long)c->count);
        }
        return r;
}

enum gauge { GAUGE_READY, GAUGE_DESIRED, GAUGE_QUORUM };

static int render_gauge(const struct eg_metrics *m, struct eg_buf *out, const char *name, const char *help,
                        enum gauge g) {
        int r = family(out, name, "gauge", help);
        for (size_t i = 0; r >= 0 && i < m->n_clusters; i++) {
                const struct cluster_metrics *c = &m->clusters[i];
                uint64_t v = g == GAUGE_READY ? c->ready : g == GAUGE_DESIRED ? c->desired : c->quorum;
                if (c->passed && (r = cluster_series(out, name, c, NULL)) >= 0)
                        r = eg_buf_printf(out, "%llu\n", (unsigned long long)v);
        }
        return r;
}

static struct condition condition_of(const struct cluster_metrics *c) {
        static const struct condition by_state[] = {
                [EG_PLAN_CONVERGED] = {.ready = true, .reason = "Converged"},
                [EG_PLAN_PROGRESSING] = {.reason = "Progressing"},
                [EG_PLAN_WAITING] = {.reason = "Waiting"},
                [EG_PLAN_BLOCKED] = {.stalled = true, .reason = "Blocked"},
                [EG_PLAN_PAUSED] = {.reason = "Paused"},
                [EG_PLAN_QUORUM_LOST] = {.stalled = true, .reason = "QuorumLost"},
                [EG_PLAN_UNTOUCHED] = {.stalled = true, .reason = "InvalidManifest"},
                [EG_PLAN_ABSENT] = {.reason = "NoManifest"},
        };
        if (c->failure)
                return (struct condition){.reason = c->failure};
        if ((unsigned)c->state >= EG_ELEMENTSOF(by_state) || !by_state[c->state].reason)
                return (struct condition){.reason = "Unknown"};
        return by_state[c->state];
}

/* One series per condition of each cluster; one whose reason changed loses the series of
 * the old reason, one that is gone loses both. */
static int render_conditions(const struct eg_metrics *m, struct eg_buf *out) {
        static const char name[] = "etcd_gitops_cluster_condition";
        int r = family(out, name, "gauge",
                       "1 when the cluster's condition holds: Ready (as its manifest says), Stalled (will not get "
                       "there without someone acting); reason says where it stands.");
        for (size_t i = 0; r >= 0 && i < m->n_clusters; i++) {
                const struct cluster_metrics *c = &m->clusters[i];
                if (!c->passed && !c->failure)
                        continue;
                struct condition k = condition_of(c);
                char labels[96];
                snprintf(labels, sizeof(labels), "type=\"Ready\",reason=\"%s\"", k.reason);
                if ((r = cluster_series(out, name, c, labels)) < 0 || (r = eg_buf_printf(out, "%d\n", k.ready)) < 0)
                        break;
                snprintf(labels, sizeof(labels), "type=\"Stalled\",reason=\"%s\"", k.reason);
                if ((r = cluster_series(out, name, c, labels)) >= 0)
                        r = eg_buf_printf(out, "%d\n", k.stalled);
        }
        return r;
}

enum backup_gauge { BACKUP_LAST_SUCCESS, BACKUP_LAST_DURATION, BACKUP_LAST_SIZE, BACKUP_FAILURES };

static int render_backup(const struct eg_metrics *m, struct eg_buf *out, const char *name, const char *type,
                         const char *help, enum backup_gauge g) {
        int r = family(out, name, type, help);
        for (size_t i = 0; r >= 0 && i < m->n_backups; i++) {
                const struct backup_metrics *b = &m->backups[i];
                /* the same label shape as a cluster's series */
                const struct cluster_metrics keys = {.ns = b->ns, .name = b->name};
                if ((r = cluster_series(out, name, &keys, NULL)) < 0)
                        break;
                switch (g) {
                case BACKUP_LAST_SUCCESS:
                        r = eg_buf_printf(out, "%lld.%03lld\n", (long long)(b->last_success_ms / 1000),
                                          (long long)(b->last_success_ms % 1000));
                        break;
                case BACKUP_LAST_DURATION:
                        r = eg_buf_printf(out, "%lld.%03lld\n", (long long)(b->last_duration_ms / 1000),
                                          (long long)(b->last_duration_ms % 1000));
                        break;
                case BACKUP_LAST_SIZE:
                        r = eg_buf_printf(out, "%llu\n", (unsigned long long)b->last_size);
                        break;
                case BACKUP_FAILURES:
                        r = eg_buf_printf(out, "%llu\n", (unsigned long long)b->failures);
                        break;
                }
        }
        return r;
}

static int render_backups(const struct eg_metrics *m, struct eg_buf *out) {
        int r = render_backup(m, out, "etcd_gitops_backup_last_success_timestamp_seconds", "gauge",
                              "When the EtcdBackup last stored a verified snapshot (0: not since the daemon started).",
                              BACKUP_LAST_SUCCESS);
        if (r >= 0)
                r = render_backup(m, out, "etcd_gitops_backup_last_duration_seconds", "gauge",
                                  "How long the EtcdBackup's last successful snapshot took.", BACKUP_LAST_DURATION);
        if (r >= 0)
                r = render_backup(m, out, "etcd_gitops_backup_last_size_bytes", "gauge",
                                  "Size of the EtcdBackup's last successful snapshot.", BACKUP_LAST_SIZE);
        if (r >= 0)
                r = render_backup(m, out, "etcd_gitops_backup_failures_total", "counter",
                                  "Backups of the EtcdBackup that failed.", BACKUP_FAILURES);
        return r;
}

/* A counter or gauge without labels. */
static int render_single(struct eg_buf *out, const char *name, const char *type, const char *help, uint64_t v) {
        int r = family(out, name, type, help);
        return r < 0 ? r : eg_buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

static int render_clusters(const struct eg_metrics *m, struct eg_buf *out) {
        int r = render_histograms(m, out);
        if (r >= 0)
                r = family(out, "etcd_gitops_decisions_total", "counter",
                           "Decisions taken, by kind and outcome (as in the audit log).");
        for (size_t i = 0; r >= 0 && i < m->n_decisions; i++) {
                const struct decision_count *d = &m->decisions[i];
                if ((r = eg_buf_puts(out, "etcd_gitops_decisions_total{decision=\"")) >= 0 &&
                    (r = eg_metrics_escape_label(out, d->decision)) >= 0 &&
                    (r = eg_buf_puts(out, "\",outcome=\"")) >= 0 && (r = eg_metrics_escape_label(out, d->outcome)) >= 0)
                        r = eg_buf_printf(out, "\"} %llu\n", (unsigned long long)d->n);
        }
        if (r >= 0)
                r = render_gauge(m, out, "etcd_gitops_cluster_members_ready",
                                 "Members running, healthy and in the membership.", GAUGE_READY);
        if (r >= 0)
                r = render_gauge(m, out, "etcd_gitops_cluster_members_desired",
                                 "Members the manifest asks for (0 without a manifest).", GAUGE_DESIRED);
        if (r >= 0)
                r = render_gauge(m, out, "etcd_gitops_cluster_quorum",
                                 "1 when a majority of voters is healthy, else 0.", GAUGE_QUORUM);
        if (r >= 0)
                r = render_conditions(m, out);
        return r;
}

static int render_source(const struct eg_metrics *m, struct eg_buf *out) {
        int r = family(out, "etcd_gitops_source_revision_info", "gauge", "The source revision applied now.");
        if (r >= 0 && m->revision) {
                if ((r = eg_buf_puts(out, "etcd_gitops_source_revision_info{revision=\"")) >= 0 &&
                    (r = eg_metrics_escape_label(out, m->revision)) >= 0 &&
                    (r = eg_buf_puts(out, "\",commit=\"")) >= 0 && (r = eg_metrics_escape_label(out, m->commit)) >= 0)
                        r = eg_buf_puts(out, "\"} 1\n");
        }
        const struct single {
                const char *name, *type, *help;
                uint64_t value;
        } singles[] = {
                {"etcd_gitops_source_errors", "gauge",
                 "Manifests and files of the revision applied that were rejected as invalid.", m->source_errors},
                {"etcd_gitops_source_ready", "gauge",
                 "1 when the last read of the source worked, 0 when it failed (or a git fetch failed and the commit "
                 "fetched before was read).",
                 m->source_ready},
                {"etcd_gitops_source_read_failures_total", "counter",
                 "Reads of the source that failed; the last good revision stayed applied.", m->fetch_failures},
                {"etcd_gitops_source_force_pushes_total", "counter", "Force-pushes seen on the followed ref.",
                 m->force_pushes},
        };
        for (size_t i = 0; r >= 0 && i < EG_ELEMENTSOF(singles); i++)
                r = render_single(out, singles[i].name, singles[i].type, singles[i].help, singles[i].value);
        return r;
}

static int render_locked(const struct eg_metrics *m, struct eg_buf *out) {
        int r = render_clusters(m, out);
        if (r >= 0)
                r = render_backups(m, out);
        if (r >= 0)
                r = render_source(m, out);
        if (r >= 0)
                r = render_single(
                        out, "etcd_gitops_events_lost_total", "counter",
                        "Kubernetes Events of decisions that could not be posted (the audit log has the decisions).",
                        m->events_lost);
        if (r >= 0)
                r = family(out, "etcd_gitops_webhooks_total", "counter", "Webhook requests, by result.");
        for (int i = 0; r >= 0 && i < EG_WEBHOOK_N_RESULTS; i++)
                r = eg_buf_printf(out, "etcd_gitops_webhooks_total{result=\"%s\"} %llu\n",
                                  eg_webhook_result_to_string(i), (unsigned long long)m->webhooks[i]);
        if (r >= 0 && m->leader_identity &&
            (r = family(out, "etcd_gitops_leader", "gauge",
                        "1 while this daemon holds the leader lease and acts, else 0 (standing by).")) >= 0 &&
            (r = eg_buf_puts(out, "etcd_gitops_leader{identity=\"")) >= 0 &&
            (r = eg_metrics_escape_label(out, m->leader_identity)) >= 0)
                r = eg_buf_printf(out, "\"} %d\n", m->leading ? 1 : 0);
        if (r >= 0)
                r = render_single(out, "etcd_gitops_metrics_dropped_total", "counter",
                                  "Events not tracked because a limit on distinct series was reached.", m->dropped);
        return r < 0 ? r : 0;
}

/* etcd_gitops_build_info, as the Prometheus client libraries' *_build_info: labels, value 1. */
static int render_build_info(struct eg_buf *out) {
        struct eg_build_info bi;
        eg_build_info_get(&bi);
        int r = family(out, "etcd_gitops_build_info", "gauge",
                       "Always 1: this build's version and commit and the libraries it runs with, as labels.");
        if (r >= 0 && (r = eg_buf_puts(out, "etcd_gitops_build_info{version=\"")) >= 0 &&
            (r = eg_metrics_escape_label(out, bi.version)) >= 0 && (r = eg_buf_puts(out, "\",commit=\"")) >= 0)
                r = eg_metrics_escape_label(out, bi.commit);
        for (size_t i = 0; r >= 0 && i < EG_BUILD_N_LIBRARIES; i++)
                if ((r = eg_buf_printf(out, "\",%s=\"", bi.libraries[i].name)) >= 0)
                        r = eg_metrics_escape_label(out, bi.libraries[i].version);
        return r < 0 ? r : eg_buf_puts(out, "\"} 1\n");
}

int eg_metrics_render(struct eg_metrics *m, struct eg_buf *out) {
        pthread_mutex_lock(&m->lock);
        int r = render_locked(m, out);
        pthread_mutex_unlock(&m->lock);
        if (r >= 0)
                r = render_build_info(out);
        if (r >= 0)
                r = eg_metrics_render_process(out);
        return r < 0 ? r : 0;
}
