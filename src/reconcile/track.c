/* What the reconciler remembers of each cluster and member between passes: back-off, what
 * was last recorded, since when a member is unhealthy, its restarts in place, the client
 * that reaches its etcd. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "internal.h"

void track_done(struct cluster_track *t) {
        free(t->ns);
        free(t->name);
        free(t->recorded_revision);
        free(t->backoff_revision);
        free(t->recorded_reason);
        free(t->last_error);
        free(t->manifest);
        free(t->applied_revision);
        for (size_t i = 0; i < t->n_members; i++)
                free(t->members[i].name);
        free(t->members);
        free(t->pids);
        track_etcd_drop(t);
        free(t->member_hash);
        free(t->member_hash_revision);
}

void track_pids(struct cluster_track *t, const struct eg_runtime_cluster *rc) {
        int64_t *pids = calloc(rc->n_members + 1, sizeof(int64_t));
        size_t n = 0;
        for (size_t i = 0; pids && i < rc->n_members; i++)
                if (rc->members[i].running && rc->members[i].pid > 0)
                        pids[n++] = rc->members[i].pid;
        free(t->pids);
        t->pids = pids;
        t->n_pids = pids ? n : 0;
}

int eg_reconciler_member_pids(struct eg_reconciler *r, int64_t **ret, size_t *ret_n) {
        size_t n = 0, k = 0;
        for (size_t i = 0; i < r->n_tracks; i++)
                n += r->tracks[i].n_pids;
        int64_t *v = n ? calloc(n, sizeof(int64_t)) : NULL;
        if (n && !v)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_tracks; i++)
                for (size_t j = 0; j < r->tracks[i].n_pids; j++)
                        v[k++] = r->tracks[i].pids[j];
        *ret = v;
        *ret_n = n;
        return 0;
}

void eg_reconciler_poke_all(struct eg_reconciler *r) {
        for (size_t i = 0; i < r->n_tracks; i++)
                r->tracks[i].next_attempt_ms = 0;
}

struct cluster_track *track_get(struct eg_reconciler *r, const char *ns, const char *name) {
        for (size_t i = 0; i < r->n_tracks; i++)
                if (strcmp(r->tracks[i].ns, ns) == 0 && strcmp(r->tracks[i].name, name) == 0)
                        return &r->tracks[i];
        struct cluster_track *t = realloc(r->tracks, (r->n_tracks + 1) * sizeof(*t));
        if (!t)
                return NULL;
        r->tracks = t;
        t = &r->tracks[r->n_tracks];
        *t = (struct cluster_track){.ns = strdup(ns), .name = strdup(name), .recorded_state = -1};
        if (!t->ns || !t->name) {
                track_done(t);
                return NULL;
        }
        r->n_tracks++;
        return t;
}

static struct member_track *track_member(struct cluster_track *t, const char *member) {
        for (size_t i = 0; i < t->n_members; i++)
                if (strcmp(t->members[i].name, member) == 0)
                        return &t->members[i];
        struct member_track *n = realloc(t->members, (t->n_members + 1) * sizeof(*n));
        if (!n)
                return NULL;
        t->members = n;
        n = &t->members[t->n_members];
        *n = (struct member_track){.name = strdup(member)};
        if (!n->name)
                return NULL;
        t->n_members++;
        return n;
}

bool track_began_failing(struct cluster_track *t, const struct eg_observed_cluster *oc) {
        bool began = false;
        for (size_t i = 0; i < oc->n_members; i++) {
                const struct eg_observed_member *m = &oc->members[i];
                struct member_track *mt = m->in_runtime ? track_member(t, m->name) : NULL;
                if (!mt)
                        continue;
                bool failing = m->life == EG_LIFE_FAILING;
                began |= failing && !mt->failing;
                mt->failing = failing;
        }
        return began;
}

/* Remembers when a condition was first seen false, so "dead after N seconds" and "quorum
 * lost after a grace" can be judged by the pure planner from a timestamp. */
static int64_t since(int64_t *first_seen, bool ok, int64_t now) {
        if (ok)
                *first_seen = 0;
        else if (*first_seen == 0)
                *first_seen = now;
        return *first_seen;
}

static unsigned restarts_within(const struct member_track *m, int64_t window_ms, int64_t now) {
        unsigned n = 0;
        size_t kept = m->n_restarts < RESTART_HISTORY ? m->n_restarts : RESTART_HISTORY;
        for (size_t i = 0; i < kept; i++)
                if (now - m->restart_ms[i] < window_ms)
                        n++;
        return n;
}

void track_member_seen(struct cluster_track *t, const char *member, struct eg_observed_member *om,
                       int64_t restart_window_ms, int64_t now) {
        struct member_track *mt = track_member(t, member);
        if (!mt) {
                om->unhealthy_since_ms = om->unreachable_since_ms = now;
                return;
        }
        if (om->healthy)
                mt->last_healthy_ms = now;
        om->healthy_since_start = om->started_ms != 0 && mt->last_healthy_ms >= om->started_ms;
        om->unhealthy_since_ms = since(&mt->unhealthy_since_ms, om->healthy, now);
        om->unreachable_since_ms = since(&mt->unreachable_since_ms, om->reachable, now);
        /* only a member the runtime holds is restarted in place */
        if (!om->in_runtime)
                return;
        om->restarts = restarts_within(mt, restart_window_ms, now);
        om->restart_not_before_ms = mt->restart_not_before_ms;
}

/* A restart in place is spaced from the next by 1 s doubling to 60 s, counted over the
 * restarts within the policy's window. */
void track_restart(struct cluster_track *t, const char *member, int64_t window_ms, int64_t now) {
        struct member_track *m = track_member(t, member);
        if (!m)
                return;
        m->restart_ms[m->n_restarts++ % RESTART_HISTORY] = now;
        unsigned n = restarts_within(m, window_ms, now);
        int64_t delay = BACKOFF_FIRST_MS;
        for (unsigned i = 1; i < n && delay < BACKOFF_MAX_MS; i++)
                delay *= 2;
        m->restart_not_before_ms = now + (delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS);
}

/* A failing cluster waits 1 s, 2 s, 4 s ... up to a minute, and never blocks the others. The
 * wait holds for the revision that failed, whether or not its failure made an audit record. */
void track_backoff(struct cluster_track *t, const struct eg_revision_info *rev) {
        t->failures++;
        int64_t delay = BACKOFF_FIRST_MS;
        for (int i = 1; i < t->failures && delay < BACKOFF_MAX_MS; i++)
                delay *= 2;
        if (delay > BACKOFF_MAX_MS)
                delay = BACKOFF_MAX_MS;
        t->next_attempt_ms = eg_now_monotonic_ms() + delay;
        set_str(&t->backoff_revision, rev ? rev->revision : NULL);
}

void track_etcd_drop(struct cluster_track *t) {
        eg_etcd_free(t->etcd);
        t->etcd = NULL;
        free(t->etcd_key);
        t->etcd_key = NULL;
}

static int key_add(struct eg_buf *b, const char *what, const char *s) {
        /* length-prefixed: no value can pass for two */
        return s ? eg_buf_printf(b, "%s %zu:%s\n", what, strlen(s), s) : 0;
}

/* Everything a client is made from, as one string: clients with equal keys are alike. */
static char *etcd_key(char *const *endpoints, size_t n, const struct eg_etcd_options *eo) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        int k = eg_buf_printf(&b, "timeouts %" PRId64 " %" PRId64 " insecure %d\n", eo->timeout_ms,
                              eo->connect_timeout_ms, eo->tls.insecure_skip_verify);
        const char *const fields[][2] = {{"ca", eo->tls.ca_file},
                                         {"cert", eo->tls.cert_file},
                                         {"key", eo->tls.key_file},
                                         {"connect-to", eo->tls.connect_to},
                                         {"proxy", eo->proxy}};
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = key_add(&b, "endpoint", endpoints[i]);
        for (size_t i = 0; k >= 0 && i < EG_ELEMENTSOF(fields); i++)
                k = key_add(&b, fields[i][0], fields[i][1]);
        for (size_t i = 0; k >= 0 && eo->headers && eo->headers[i]; i++)
                k = key_add(&b, "header", eo->headers[i]);
        if (k < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

struct eg_etcd *track_etcd(struct eg_reconciler *r, struct cluster_track *t, char *const *endpoints, size_t n,
                           struct eg_error *err) {
        struct eg_etcd_options eo = {0};
        if (eg_runtime_etcd_access(r->opt.runtime, t->ns, t->name, &eo, err) < 0 || n == 0) {
                track_etcd_drop(t);
                return NULL;
        }
        eo.timeout_ms = r->opt.etcd_timeout_ms;
        eo.connect_timeout_ms = r->opt.etcd_timeout_ms / 3;
        char *key = etcd_key(endpoints, n, &eo);
        if (t->etcd && key && strcmp(key, t->etcd_key) == 0) {
                free(key);
                return t->etcd;
        }
        track_etcd_drop(t);
        if (!key || eg_etcd_new(endpoints, n, &eo, &t->etcd) < 0) {
                free(key);
                return NULL;
        }
        t->etcd_key = key;
        return t->etcd;
}

char *track_member_hash(struct cluster_track *t, struct eg_runtime *rt, const struct eg_object *obj,
                        const char *revision) {
        if (!obj)
                return NULL;
        if (!t || !revision)
                return eg_runtime_member_hash(rt, &obj->cluster);
        if (!t->member_hash || !str_eq(revision, t->member_hash_revision)) {
                char *hash = eg_runtime_member_hash(rt, &obj->cluster);
                if (!hash)
                        return NULL;
                free(t->member_hash);
                t->member_hash = hash;
                set_str(&t->member_hash_revision, revision);
        }
        return strdup(t->member_hash);
}
