/* etcd: a v3 client over etcd's JSON gateway, and its gRPC API for snapshots (libcurl + jansson). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

struct eg_etcd_options {
        int64_t timeout_ms;         /* whole call, per endpoint; default 2000 */
        int64_t connect_timeout_ms; /* default 500 */
        /* eg_now_monotonic_ms() by which every call ends, snapshot streams included (their
         * stall limit alone lets a trickle run forever); 0: none */
        int64_t deadline_ms;
        struct eg_tls_client tls; /* all NULL: plain http */
        /* Extra request headers ("Authorization: Bearer ..."), NULL-terminated; for
         * endpoints reached through a proxy such as the Kubernetes API server's. */
        const char *const *headers;
        /* CURLOPT_PROXY (a kubeconfig's proxy-url), used whatever no_proxy says; NULL: none
         * named, curl's http_proxy/https_proxy environment applies */
        const char *proxy;
};

struct eg_etcd; /* a client bound to a list of endpoints, tried in order with failover */

/* endpoints: "http://127.0.0.1:2379" style URLs; copied. */
int eg_etcd_new(char *const *endpoints, size_t n, const struct eg_etcd_options *opt, struct eg_etcd **ret);
void eg_etcd_free(struct eg_etcd *c);

struct eg_etcd_member {
        uint64_t id;
        char *name; /* empty until the member has started */
        char **peer_urls;
        size_t n_peer_urls;
        char **client_urls;
        size_t n_client_urls;
        bool is_learner;
};

struct eg_etcd_member_list {
        uint64_t cluster_id;
        struct eg_etcd_member *members;
        size_t n;
};
void eg_etcd_member_list_done(struct eg_etcd_member_list *l);

struct eg_etcd_status {
        uint64_t member_id;
        uint64_t leader;
        uint64_t raft_index;
        uint64_t raft_term;
        int64_t revision;
        int64_t db_size;
        char *version;
        bool is_learner;
};
void eg_etcd_status_done(struct eg_etcd_status *s);

/* All calls: 0 on success, negative errno on failure with *err filled (endpoint and HTTP status
 * where known) when err != NULL.
 * -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH/-ECONNRESET/-EPROTO when no endpoint answered
 * (err->message then names every endpoint tried); -EIO for an etcd error reply (message
 * in err), -EBADMSG for a reply that is not what etcd sends. An etcd error reply is
 * final: only transport failures move on to the next endpoint. */

int eg_etcd_member_list(struct eg_etcd *c, struct eg_etcd_member_list *ret, struct eg_error *err);
/* Adds a member with the given peer URL; ret_id receives its id. -EEXIST when a member
 * already has that peer URL. */
int eg_etcd_member_add(struct eg_etcd *c, const char *peer_url, bool learner, uint64_t *ret_id, struct eg_error *err);
/* -ENOENT when no such member exists (or it was removed before); -EAGAIN when etcd
 * refuses because too few of the other voters have been connected long enough. */
int eg_etcd_member_remove(struct eg_etcd *c, uint64_t id, struct eg_error *err);
/* -EAGAIN when etcd refuses because the learner is not yet in sync; -ENOENT as above. */
int eg_etcd_member_promote(struct eg_etcd *c, uint64_t id, struct eg_error *err);

/* Hands leadership to target_id; must be sent to the current leader's endpoint. Used
 * before restarting the leader so writes pause for a transfer, not an election. */
int eg_etcd_move_leader(struct eg_etcd *c, const char *leader_endpoint, uint64_t target_id, struct eg_error *err);

/* Status and health of one endpoint (not the failover list). */
int eg_etcd_status_of(struct eg_etcd *c, const char *endpoint, struct eg_etcd_status *ret, struct eg_error *err);
/* GET /health on one endpoint: 0 when {"health":"true"}, -EIO otherwise. */
int eg_etcd_health_of(struct eg_etcd *c, const char *endpoint, struct eg_error *err);

/* Key/value, for tests, benchmarks and status checks. Keys and values are bytes. */
int eg_etcd_put(struct eg_etcd *c, const char *key, const void *val, size_t len, struct eg_error *err);
/* -ENOENT when the key does not exist; *ret is malloc'd and NUL-terminated. */
int eg_etcd_get(struct eg_etcd *c, const char *key, char **ret, size_t *ret_len, struct eg_error *err);

/* Streams a snapshot from one endpoint, calling sink for each decoded chunk of the db
 * file. Verifies the sha256 etcd appends before returning 0 (-EBADMSG when it does
 * not match). ret_sha256 receives the hex sha256 of the bytes given to sink. */
typedef int (*eg_etcd_snapshot_sink)(const void *data, size_t len, void *userdata);
/* The transfer has no total timeout but the options' deadline_ms: it fails when it stalls
 * for timeout_ms (at least 5 s). A negative return from sink aborts the transfer and is
 * returned. */
int eg_etcd_snapshot(struct eg_etcd *c, const char *endpoint, eg_etcd_snapshot_sink sink, void *userdata,
                     char ret_sha256[static 65], uint64_t *ret_size, struct eg_error *err);

/* ---- for tests and backups ---- */

/* Decodes the gateway's snapshot stream (newline-separated {"result":{"blob":"<base64>"}}
 * objects whose concatenated blobs are the db file followed by its sha256) in constant
 * memory: sink gets the db bytes only, never the trailing hash. Feed it arbitrary chunks. */
struct eg_etcd_snapshot_decoder;
int eg_etcd_snapshot_decoder_new(eg_etcd_snapshot_sink sink, void *userdata, struct eg_etcd_snapshot_decoder **ret);
/* -EBADMSG on malformed input, -EIO for an error object in the stream, or sink's error. */
int eg_etcd_snapshot_decoder_feed(struct eg_etcd_snapshot_decoder *d, const void *data, size_t len,
                                  struct eg_error *err);
/* Ends the stream: -EBADMSG when it is truncated or the trailing sha256 does not match. */
int eg_etcd_snapshot_decoder_finish(struct eg_etcd_snapshot_decoder *d, char ret_sha256[static 65], uint64_t *ret_size,
                                    struct eg_error *err);
void eg_etcd_snapshot_decoder_free(struct eg_etcd_snapshot_decoder *d);

/* Decodes a /v3/cluster/member/list reply body (ids as decimal strings or integers). */
int eg_etcd_member_list_parse(const char *json, size_t len, struct eg_etcd_member_list *ret, struct eg_error *err);
