/* Taking a snapshot: choose the member, stream its snapshot into a store, verify, retain. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define STATUS_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 60000

void eg_backup_result_done(struct eg_backup_result *r) {
        free(r->version);
        free(r->endpoint);
        free(r->object);
        free(r->skipped);
        *r = (struct eg_backup_result){0};
}

struct take {
        struct store_writer *w;
        struct eg_error *err;
        uint64_t bytes, expected;
        eg_backup_progress_fn progress;
        void *progress_userdata;
        const atomic_bool *cancel;
        bool store_failed; /* err already says what failed */
};

static int on_chunk(const void *data, size_t len, void *userdata) {
        struct take *t = userdata;
        if (t->cancel && atomic_load(t->cancel)) {
                eg_error_set(t->err, "cancelled: etcd-gitops is stopping");
                t->store_failed = true;
                return -ECANCELED;
        }
        int r = store_writer_write(t->w, data, len, t->err);
        if (r < 0) {
                t->store_failed = true;
                return r;
        }
        t->bytes += len;
        if (t->progress)
                t->progress(t->bytes, t->expected, t->progress_userdata);
        return 0;
}

static int hex_to_raw(const char *hex, unsigned char out[static 32]) {
        for (int i = 0; i < 32; i++) {
                unsigned v;
                if (sscanf(hex + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (unsigned char)v;
        }
        return 0;
}

/* The reachable endpoint with the highest revision; the others' failures in *skipped. */
static int choose_endpoint(const struct eg_backup_options *o, int64_t deadline_ms, size_t *ret_idx,
                           struct eg_etcd_status *ret, struct eg_buf *skipped) {
        struct eg_etcd_options eo = o->etcd ? *o->etcd : (struct eg_etcd_options){0};
        eo.timeout_ms = STATUS_TIMEOUT_MS;
        eo.deadline_ms = deadline_ms;
        struct eg_etcd *c;
        int r = eg_etcd_new(o->endpoints, o->n_endpoints, &eo, &c);
        if (r < 0)
                return r;
        bool found = false;
        for (size_t i = 0; i < o->n_endpoints; i++) {
                struct eg_etcd_status st = {0};
                struct eg_error e = {0};
                r = eg_etcd_status_of(c, o->endpoints[i], &st, &e);
                if (r < 0) {
                        eg_buf_printf(skipped, "%s%s: %s", skipped->len ? "; " : "", o->endpoints[i],
                                      e.message ? e.message : strerror(-r));
                        eg_error_done(&e);
                        continue;
                }
                if (!found || st.revision > ret->revision) {
                        if (found)
                                eg_etcd_status_done(ret);
                        *ret = st;
                        *ret_idx = i;
                        found = true;
                } else
                        eg_etcd_status_done(&st);
        }
        eg_etcd_free(c);
        return found ? 0 : -EHOSTUNREACH;
}

/* Streams a snapshot of res->endpoint into res->object with its sha256 trailer, and commits it
 * there (filling res's sha256 and size). */
static int stream(const struct eg_backup_options *o, const struct eg_backup_store *store, int64_t timeout_ms,
                  int64_t db_size, struct eg_backup_result *res, struct eg_error *err) {
        struct store_writer *w = NULL;
        struct eg_etcd *c = NULL;
        struct eg_error e = {0};
        struct eg_etcd_options eo = o->etcd ? *o->etcd : (struct eg_etcd_options){0};
        eo.timeout_ms = timeout_ms;
        eo.deadline_ms = store->deadline_ms;
        int r = store_writer_open(store, res->object, &w, err);
        if (r >= 0)
                r = eg_etcd_new(&res->endpoint, 1, &eo, &c);
        if (r < 0)
                goto out;
        struct take t = {.w = w,
                         .err = err,
                         .expected = db_size > 0 ? (uint64_t)db_size : 0,
                         .progress = o->progress,
                         .progress_userdata = o->progress_userdata,
                         .cancel = o->cancel};
        r = eg_etcd_snapshot(c, res->endpoint, on_chunk, &t, res->sha256, &res->size, &e);
        if (r < 0) {
                if (!t.store_failed)
                        eg_error_set(err, "snapshot from %s: %s", res->endpoint, e.message ? e.message : strerror(-r));
                goto out;
        }
        unsigned char trailer[EG_SNAPSHOT_TRAILER];
        r = hex_to_raw(res->sha256, trailer);
        if (r >= 0)
                r = store_writer_write(w, trailer, sizeof(trailer), err);
        if (r >= 0)
                r = store_writer_commit(w, err);
out:
        eg_error_done(&e);
        store_writer_free(w);
        eg_etcd_free(c);
        return r;
}

int eg_backup_take(const struct eg_backup_options *o, struct eg_backup_result *ret, struct eg_error *err) {
        int64_t start = eg_now_monotonic_ms();
        int64_t timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
        int64_t deadline = start + timeout_ms;
        struct eg_backup_store store = o->store;
        store.deadline_ms = deadline;
        struct eg_backup_result res = {0};
        struct eg_etcd_status st = {0};
        struct eg_buf skipped;
        eg_buf_init(&skipped, 1 << 16);
        size_t idx = 0;
        int r;
        if (o->n_endpoints == 0) {
                eg_error_set(err, "no endpoints to back up");
                r = -EINVAL;
                goto out;
        }
        r = choose_endpoint(o, deadline, &idx, &st, &skipped);
        if (r < 0) {
                if (r == -EHOSTUNREACH)
                        eg_error_set(err, "no endpoint answered: %s", skipped.data ? skipped.data : "");
                goto out;
        }
        res.revision = st.revision;
        res.version = st.version ? strdup(st.version) : strdup("");
        res.endpoint = strdup(o->endpoints[idx]);
        res.object = o->periodic ? eg_backup_name_periodic(o->store.path, st.revision, eg_now_realtime_ms())
                                 : strdup(o->store.path);
        if (skipped.len)
                res.skipped = strdup(skipped.data);
        if (!res.version || !res.endpoint || !res.object || (skipped.len && !res.skipped)) {
                r = -ENOMEM;
                goto out;
        }
        r = stream(o, &store, timeout_ms, st.db_size, &res, err);
        if (r < 0)
                goto out;
        res.duration_ms = eg_now_monotonic_ms() - start;
        *ret = res;
        res = (struct eg_backup_result){0};
out:
        /* whatever ran out of time says how; this says why it had no more */
        if (r < 0 && r != -ECANCELED && eg_now_monotonic_ms() >= deadline)
                eg_error_set(
                        err,
                        "the backup did not finish within its timeout of %lld s (raise it if the snapshot needs longer: "
                        "backupPolicy.timeoutInSecond, or backup --timeout): %s",
                        (long long)((timeout_ms + 999) / 1000), err->message ? err->message : strerror(-r));
        eg_etcd_status_done(&st);
        eg_buf_done(&skipped);
        eg_backup_result_done(&res);
        return r;
}

int eg_backup_retain(const struct eg_backup_store *store, int64_t keep, char ***ret_deleted, size_t *ret_n,
                     struct eg_error *err) {
        char **names = NULL, **deleted = NULL;
        size_t n = 0, n_deleted = 0;
        const char **doomed = NULL;
        size_t n_doomed = 0;
        bool *gone = NULL;
        if (ret_deleted) {
                *ret_deleted = NULL;
                *ret_n = 0;
        }
        int r = store_list(store, store->path, &names, &n, err);
        if (r < 0)
                return r;
        r = eg_backup_retention(store->path, names, n, keep, &doomed, &n_doomed);
        if (r >= 0 && n_doomed > 0 &&
            (!(deleted = calloc(n_doomed, sizeof(*deleted))) || !(gone = calloc(n_doomed, sizeof(*gone)))))
                r = -ENOMEM;
        if (r >= 0 && n_doomed > 0)
                r = store_delete(store, doomed, n_doomed, gone, err);
        /* what went is reported also when the rest did not */
        int q = 0;
        for (size_t i = 0; gone && i < n_doomed && q >= 0; i++)
                if (gone[i] && !(deleted[n_deleted++] = strdup(doomed[i]))) {
                        n_deleted--;
                        q = -ENOMEM;
                }
        r = r < 0 ? r : q;
        free(gone);
        free(doomed);
        eg_strv_free(names, n);
        if (ret_deleted) {
                *ret_deleted = TAKE_PTR(deleted);
                *ret_n = n_deleted;
        }
        eg_strv_free(deleted, n_deleted);
        return r;
}
