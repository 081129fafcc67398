/* lease: leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "etcd-gitops/kube.h"
#include "etcd-gitops/util.h"

/* client-go's usual durations: a holder that has not renewed for LEASE_DURATION may be
 * replaced; a leader that cannot renew within RENEW_DEADLINE stops acting, so it has stopped
 * before anyone may take over; candidates and the leader try every RETRY_PERIOD. */
#define EG_LEASE_DURATION_MS 15000
#define EG_LEASE_RENEW_DEADLINE_MS 10000
#define EG_LEASE_RETRY_PERIOD_MS 2000
#define EG_LEASE_DEFAULT_NAME "etcd-gitops"

/* ---- the record (pure) ---- */

/* A Lease's spec as leader election reads and writes it. Times are kept as the MicroTime
 * strings the API server holds: expiry is judged by the local clock, never by them. */
struct eg_lease_record {
        char *holder;                    /* holderIdentity; NULL when nobody holds it */
        int64_t duration_s;              /* leaseDurationSeconds */
        char *acquire_time, *renew_time; /* NULL when unset */
        int64_t transitions;             /* leaseTransitions */
};
void eg_lease_record_done(struct eg_lease_record *r);
bool eg_lease_record_equal(const struct eg_lease_record *a, const struct eg_lease_record *b);

/* Reads lease.spec (a missing or null spec is an empty record). -EBADMSG when spec or one of
 * its fields has the wrong type. */
int eg_lease_record_decode(const json_t *lease, struct eg_lease_record *ret);
/* The spec object for r (a new reference; NULL on allocation failure). */
json_t *eg_lease_record_encode(const struct eg_lease_record *r);

/* What a candidate remembers of the lease between tries: client-go's observedRecord and
 * observedTime. */
struct eg_lease_observation {
        bool seen;
        struct eg_lease_record rec;
        int64_t observed_ms; /* monotonic: when rec was last seen to change */
};
void eg_lease_observation_done(struct eg_lease_observation *o);

/* Takes in the record a read returned at now_ms (monotonic): the observed time moves only
 * when the record differs from the one seen before. */
int eg_lease_observe(struct eg_lease_observation *o, const struct eg_lease_record *rec, int64_t now_ms);

/* Whether identity may write the lease now: nobody holds it, identity already does, or the
 * record has not changed for its leaseDurationSeconds by the local clock. */
bool eg_lease_may_acquire(const struct eg_lease_observation *o, const char *identity, int64_t now_ms);

/* The record identity writes to take or renew the lease at now (realtime µs): a renewal
 * keeps acquireTime and leaseTransitions, a takeover counts one more transition. */
int eg_lease_next_record(const struct eg_lease_record *old, const char *identity, int64_t duration_s, int64_t now_us,
                         struct eg_lease_record *ret);

/* ---- the candidate (talks to the API server; one thread at a time) ---- */

struct eg_lease_options {
        const char *kubeconfig, *context, *service_account_dir; /* as eg_kube_config_options */
        const char *namespace;                                  /* NULL: the context's namespace, else "default" */
        const char *name;                                       /* NULL: EG_LEASE_DEFAULT_NAME */
        const char *identity;                                   /* NULL: hostname_pid_random */
        int64_t duration_ms;                                    /* 0: EG_LEASE_DURATION_MS */
        int64_t request_timeout_ms;                             /* per API request; 0: 4 s */
};

struct eg_lease;

/* Loads the kubeconfig and makes a client of its own (the runtime's is busy on another
 * thread). Contacts nobody. */
int eg_lease_new(const struct eg_lease_options *o, struct eg_lease **ret, struct eg_error *err);
/* Accepts NULL. Does not release the lease. */
void eg_lease_free(struct eg_lease *l);

/* Owned by the lease, valid until eg_lease_free. */
const char *eg_lease_identity(const struct eg_lease *l);
const char *eg_lease_namespace(const struct eg_lease *l);
const char *eg_lease_name(const struct eg_lease *l);

struct eg_lease_status {
        bool leader;
        char *holder;        /* the holder as last seen (us when leader); NULL: nobody or unknown */
        char *previous;      /* leader: who held it before this try; NULL: nobody (new, released) */
        int64_t transitions; /* as last seen */
};
void eg_lease_status_done(struct eg_lease_status *s);

/* One try at acquiring or renewing (client-go's tryAcquireOrRenew): reads the lease, creates
 * it when absent, writes it when eg_lease_may_acquire allows, with the resourceVersion read,
 * so that of two writers one gets a conflict and stays a candidate. Returns 0 with *ret
 * filled (leader or not), or a negative errno with err naming the request and what to
 * grant when it was refused; the caller judges how long it may still act on an earlier
 * success. */
int eg_lease_try(struct eg_lease *l, struct eg_lease_status *ret, struct eg_error *err);

/* Gives the lease up when this candidate holds it as last seen: holderIdentity empty and a
 * one-second duration, so a candidate takes over at its next try. 1 when given up, 0 when
 * there was nothing to give up. */
int eg_lease_release(struct eg_lease *l, struct eg_error *err);
