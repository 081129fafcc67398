/* lease: leader election on a coordination.k8s.io/v1 Lease with client-go's rules. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/lease.h"

#define LEASES_API "/apis/coordination.k8s.io/v1/namespaces/"
#define HOSTNAME_MAX 256

/* ---- the record ---- */

void eg_lease_record_done(struct eg_lease_record *r) {
        free(r->holder);
        free(r->acquire_time);
        free(r->renew_time);
        *r = (struct eg_lease_record){0};
}

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

bool eg_lease_record_equal(const struct eg_lease_record *a, const struct eg_lease_record *b) {
        return str_eq(a->holder, b->holder) && a->duration_s == b->duration_s &&
               str_eq(a->acquire_time, b->acquire_time) && str_eq(a->renew_time, b->renew_time) &&
               a->transitions == b->transitions;
}

static int copy_str(const char *s, char **ret) {
        *ret = NULL;
        if (s && !(*ret = strdup(s)))
                return -ENOMEM;
        return 0;
}

static int record_copy(const struct eg_lease_record *from, struct eg_lease_record *ret) {
        struct eg_lease_record r = {.duration_s = from->duration_s, .transitions = from->transitions};
        if (copy_str(from->holder, &r.holder) < 0 || copy_str(from->acquire_time, &r.acquire_time) < 0 ||
            copy_str(from->renew_time, &r.renew_time) < 0) {
                eg_lease_record_done(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

/* An optional string field: absent and null leave *ret NULL, so does "" (nobody). */
static int spec_str(const json_t *spec, const char *key, char **ret) {
        const json_t *v = json_object_get(spec, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EBADMSG;
        return json_string_length(v) ? copy_str(json_string_value(v), ret) : 0;
}

static int spec_int(const json_t *spec, const char *key, int64_t *ret) {
        const json_t *v = json_object_get(spec, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v))
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

int eg_lease_record_decode(const json_t *lease, struct eg_lease_record *ret) {
        struct eg_lease_record r = {0};
        const json_t *spec = json_object_get(lease, "spec");
        int k = 0;
        if (spec && !json_is_null(spec) && !json_is_object(spec))
                return -EBADMSG;
        if (spec && json_is_object(spec) &&
            ((k = spec_str(spec, "holderIdentity", &r.holder)) < 0 ||
             (k = spec_int(spec, "leaseDurationSeconds", &r.duration_s)) < 0 ||
             (k = spec_str(spec, "acquireTime", &r.acquire_time)) < 0 ||
             (k = spec_str(spec, "renewTime", &r.renew_time)) < 0 ||
             (k = spec_int(spec, "leaseTransitions", &r.transitions)) < 0)) {
                eg_lease_record_done(&r);
                return k;
        }
        *ret = r;
        return 0;
}

json_t *eg_lease_record_encode(const struct eg_lease_record *r) {
        json_t *spec = json_pack("{s:I, s:I}", "leaseDurationSeconds", (json_int_t)r->duration_s, "leaseTransitions",
                                 (json_int_t)r->transitions);
        if (spec && ((r->holder && json_object_set_new(spec, "holderIdentity", json_string(r->holder)) < 0) ||
                     (r->acquire_time && json_object_set_new(spec, "acquireTime", json_string(r->acquire_time)) < 0) ||
                     (r->renew_time && json_object_set_new(spec, "renewTime", json_string(r->renew_time)) < 0))) {
                json_decref(spec);
                return NULL;
        }
        return spec;
}

/* ---- judging it ---- */

void eg_lease_observation_done(struct eg_lease_observation *o) {
        eg_lease_record_done(&o->rec);
        *o = (struct eg_lease_observation){0};
}

int eg_lease_observe(struct eg_lease_observation *o, const struct eg_lease_record *rec, int64_t now_ms) {
        if (o->seen && eg_lease_record_equal(&o->rec, rec))
                return 0;
        struct eg_lease_record copy;
        if (record_copy(rec, &copy) < 0)
                return -ENOMEM;
        eg_lease_record_done(&o->rec);
        o->rec = copy;
        o->seen = true;
        o->observed_ms = now_ms;
        return 0;
}

bool eg_lease_may_acquire(const struct eg_lease_observation *o, const char *identity, int64_t now_ms) {
        if (!o->seen || !o->rec.holder || str_eq(o->rec.holder, identity))
                return true;
        /* the holder's renewTime is its clock, not ours: what counts is how long we have
         * seen the record stand still */
        return o->observed_ms + o->rec.duration_s * 1000 <= now_ms;
}

int eg_lease_next_record(const struct eg_lease_record *old, const char *identity, int64_t duration_s, int64_t now_us,
                         struct eg_lease_record *ret) {
        bool ours = old && str_eq(old->holder, identity);
        char now[40];
        eg_format_rfc3339_us(now_us, now);
        struct eg_lease_record r = {
                .duration_s = duration_s,
                .transitions = ours  ? old->transitions
                               : old ? old->transitions + 1
                                     : 0,
        };
        if (copy_str(identity, &r.holder) < 0 || copy_str(now, &r.renew_time) < 0 ||
            copy_str(ours && old->acquire_time ? old->acquire_time : now, &r.acquire_time) < 0) {
                eg_lease_record_done(&r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

/* ---- the candidate ---- */

struct eg_lease {
        struct eg_kube_client *client;
        char *ns, *name, *identity;
        char *collection, *path;
        int64_t duration_s;
        struct eg_lease_observation obs;
        /* the Lease as last read or written: its resourceVersion makes our next write
         * conditional on nobody having written since */
        json_t *object;
};

static char *make_identity(void) {
        char host[HOSTNAME_MAX + 1] = "";
        uint32_t rnd = 0;
        if (gethostname(host, HOSTNAME_MAX) < 0 || !*host)
                snprintf(host, sizeof(host), "unknown");
        host[HOSTNAME_MAX] = 0;
        /* a daemon restarted with the same pid on the same host is still someone new */
        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                rnd = (uint32_t)eg_now_realtime_us();
        return eg_strdup_printf("%s_%d_%08x", host, (int)getpid(), rnd);
}

void eg_lease_free(struct eg_lease *l) {
        if (!l)
                return;
        eg_kube_client_free(l->client);
        free(l->ns);
        free(l->name);
        free(l->identity);
        free(l->collection);
        free(l->path);
        eg_lease_observation_done(&l->obs);
        json_decref(l->object);
        free(l);
}

int eg_lease_new(const struct eg_lease_options *o, struct eg_lease **ret, struct eg_error *err) {
        struct eg_kube_config_options co = {
                .kubeconfig = o->kubeconfig, .context = o->context, .service_account_dir = o->service_account_dir};
        struct eg_kube_config *cfg = NULL;
        struct eg_lease *l = calloc(1, sizeof(*l));
        int r = -ENOMEM;
        if (!l)
                return r;
        if ((r = eg_kube_config_load(&co, &cfg, err)) < 0)
                goto fail;
        const char *ns = o->namespace ? o->namespace : cfg->namespace ? cfg->namespace : "default";
        l->ns = strdup(ns);
        l->name = strdup(o->name ? o->name : EG_LEASE_DEFAULT_NAME);
        l->identity = o->identity ? strdup(o->identity) : make_identity();
        l->duration_s = (o->duration_ms > 0 ? o->duration_ms : EG_LEASE_DURATION_MS) / 1000;
        r = -ENOMEM;
        if (!l->ns || !l->name || !l->identity)
                goto fail;
        l->collection = eg_strdup_printf(LEASES_API "%s/leases", l->ns);
        l->path = eg_strdup_printf(LEASES_API "%s/leases/%s", l->ns, l->name);
        if (!l->collection || !l->path)
                goto fail;
        /* one retry at most: a failed try is tried again a retry period later anyway, and
         * the renew deadline must not pass inside one */
        struct eg_kube_client_options ko = {
                .timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 4000,
                .max_retries = 1,
                .retry_base_ms = 200,
        };
        if ((r = eg_kube_client_new(TAKE_PTR(cfg), &ko, &l->client, err)) < 0)
                goto fail;
        *ret = l;
        return 0;
fail:
        eg_kube_config_free(cfg);
        eg_lease_free(l);
        return r;
}

const char *eg_lease_identity(const struct eg_lease *l) { return l->identity; }
const char *eg_lease_namespace(const struct eg_lease *l) { return l->ns; }
const char *eg_lease_name(const struct eg_lease *l) { return l->name; }

void eg_lease_status_done(struct eg_lease_status *s) {
        free(s->holder);
        free(s->previous);
        *s = (struct eg_lease_status){0};
}

static int status_set(struct eg_lease_status *s, bool leader, const struct eg_lease_record *rec,
                      const struct eg_lease_record *previous) {
        *s = (struct eg_lease_status){.leader = leader, .transitions = rec ? rec->transitions : 0};
        if (copy_str(rec ? rec->holder : NULL, &s->holder) < 0 ||
            copy_str(previous ? previous->holder : NULL, &s->previous) < 0) {
                eg_lease_status_done(s);
                return -ENOMEM;
        }
        return 0;
}

/* Names the lease in err; a refusal (which names the Role to bind where) also the way out. */
static int explain(struct eg_lease *l, int r, struct eg_error *err) {
        if (r >= 0)
                return r;
        _cleanup_free_ char *why = strdup(err->message ? err->message : strerror(-r));
        if (r == -EACCES)
                eg_error_set(err,
                             "leader election on the lease %s/%s: %s; or name another namespace with "
                             "--leader-elect-namespace",
                             l->ns, l->name, why ? why : "forbidden");
        else
                eg_error_set(err, "leader election on the lease %s/%s: %s", l->ns, l->name, why ? why : "failed");
        return r;
}

/* Replaces the kept object and observation with what the API server returned for a write. */
static int take_written(struct eg_lease *l, json_t *obj, int64_t now_ms) {
        struct eg_lease_record rec;
        int r = eg_lease_record_decode(obj, &rec);
        if (r < 0) {
                json_decref(obj);
                return r;
        }
        json_decref(l->object);
        l->object = obj;
        r = eg_lease_observe(&l->obs, &rec, now_ms);
        eg_lease_record_done(&rec);
        return r;
}

static int create(struct eg_lease *l, int64_t now_ms, struct eg_lease_status *ret, struct eg_error *err) {
        struct eg_lease_record rec;
        json_t *written = NULL;
        int r = eg_lease_next_record(NULL, l->identity, l->duration_s, eg_now_realtime_us(), &rec);
        if (r < 0)
                return r;
        json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "apiVersion", "coordination.k8s.io/v1", "kind",
                                "Lease", "metadata", "name", l->name, "namespace", l->ns, "spec",
                                eg_lease_record_encode(&rec));
        if (!obj) {
                eg_lease_record_done(&rec);
                return -ENOMEM;
        }
        r = eg_kube_create(l->client, l->collection, obj, &written, err);
        json_decref(obj);
        if (r == -EEXIST) {
                /* another candidate created it first: it leads */
                eg_lease_record_done(&rec);
                return status_set(ret, false, NULL, NULL);
        }
        if (r >= 0 && (r = take_written(l, written, now_ms)) >= 0)
                r = status_set(ret, true, &rec, NULL);
        eg_lease_record_done(&rec);
        return explain(l, r, err);
}

/* PUT the kept object with spec rec, conditional on its resourceVersion. */
static int write_record(struct eg_lease *l, const struct eg_lease_record *rec, int64_t now_ms, struct eg_error *err) {
        json_t *obj = json_deep_copy(l->object), *written = NULL;
        json_t *spec = eg_lease_record_encode(rec);
        int r = -ENOMEM;
        if (obj && spec && json_object_set_new(obj, "spec", TAKE_PTR(spec)) >= 0 &&
            (r = eg_kube_replace(l->client, l->path, obj, &written, err)) >= 0)
                r = take_written(l, written, now_ms);
        json_decref(spec);
        json_decref(obj);
        return r;
}

int eg_lease_try(struct eg_lease *l, struct eg_lease_status *ret, struct eg_error *err) {
        int64_t now_ms = eg_now_monotonic_ms();
        json_t *obj = NULL;
        struct eg_lease_record old = {0}, next = {0};
        int r = eg_kube_get(l->client, l->path, &obj, err);
        if (r == -ENOENT)
                return create(l, now_ms, ret, err);
        if (r < 0)
                return explain(l, r, err);
        if ((r = eg_lease_record_decode(obj, &old)) < 0) {
                eg_error_set(err, "its spec is not a Lease's");
                json_decref(obj);
                return explain(l, r, err);
        }
        json_decref(l->object);
        l->object = obj;
        if ((r = eg_lease_observe(&l->obs, &old, now_ms)) < 0)
                goto out;
        if (!eg_lease_may_acquire(&l->obs, l->identity, now_ms)) {
                r = status_set(ret, false, &old, NULL);
                goto out;
        }
        if ((r = eg_lease_next_record(&old, l->identity, l->duration_s, eg_now_realtime_us(), &next)) < 0)
                goto out;
        r = write_record(l, &next, now_ms, err);
        if (r == -ESTALE) {
                /* written by someone else since our read: they won this round */
                r = status_set(ret, false, &old, NULL);
                goto out;
        }
        if (r >= 0)
                r = status_set(ret, true, &next, &old);
        r = explain(l, r, err);
out:
        eg_lease_record_done(&old);
        eg_lease_record_done(&next);
        return r;
}

int eg_lease_release(struct eg_lease *l, struct eg_error *err) {
        if (!l->object || !l->obs.seen || !str_eq(l->obs.rec.holder, l->identity))
                return 0;
        char now[40];
        eg_format_rfc3339_us(eg_now_realtime_us(), now);
        struct eg_lease_record rec = {
                .duration_s = 1, .acquire_time = now, .renew_time = now, .transitions = l->obs.rec.transitions};
        int r = write_record(l, &rec, eg_now_monotonic_ms(), err);
        return r < 0 ? explain(l, r, err) : 1;
}
