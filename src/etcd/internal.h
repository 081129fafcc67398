/* Shared inside the etcd module: base64 and JSON helpers, snapshot decoding. */
#pragma once

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"

#define SHA256_LEN 32
/* A snapshot message carries 32 KiB of db as base64 in JSON; anything far beyond is bogus. */
#define SNAPSHOT_LINE_MAX ((size_t)4 << 20)

#define RESPONSE_MAX ((size_t)16 << 20)

struct eg_etcd {
        CURL *curl;
        char **endpoints;
        size_t n_endpoints;
        size_t preferred; /* the endpoint that answered last, tried first */
        int64_t timeout_ms;
        int64_t connect_timeout_ms;
        int64_t deadline_ms; /* monotonic; 0: none */
        char *ca_file;
        char *cert_file;
        char *key_file;
        bool insecure_skip_verify;
        struct curl_slist *connect_to;
        char *proxy;
        char **headers;               /* extra request headers, NULL-terminated */
        char errbuf[CURL_ERROR_SIZE]; /* curl requires a buffer of exactly this size */
};

/* Where a response body goes: a capped buffer, or (a 200 reply of a snapshot) the decoder. */
struct etcd_response {
        CURL *curl;
        struct eg_buf body;
        struct eg_etcd_snapshot_decoder *decoder;
        struct eg_error *decoder_err;
        int r; /* why the write callback stopped the transfer */
};

/* Which etcd error messages mean something a caller acts on. */
struct errmap {
        const char *needle;
        int error;
};

/* Resets c's handle for one request to url: timeouts (stream: none in total but the
 * deadline, only a stall limit), TLS files, error buffer. */
void etcd_curl_setup(struct eg_etcd *c, const char *url, bool stream);
int etcd_curl_code_to_errno(CURLcode cc);
/* One HTTP exchange with one endpoint: POST body (or GET when body is NULL) to path.
 * Returns 0 with the HTTP status when any response arrived, whatever the status. */
int etcd_http_exchange(struct eg_etcd *c, const char *endpoint, const char *path, const char *body,
                       struct etcd_response *resp, long *ret_status, struct eg_error *err);
/* Turns a non-200 reply into err; map (may be NULL) picks errnos from etcd's messages. */
int etcd_reply_error(const char *endpoint, const char *path, long status, const struct eg_buf *body,
                     const struct errmap *map, struct eg_error *err);

/* POSTs req (or GETs when req is NULL) to one endpoint and parses the 200 reply (*ret, a JSON object). */
int etcd_call_one(struct eg_etcd *c, const char *endpoint, const char *path, json_t *req, const struct errmap *map,
                  json_t **ret, struct eg_error *err);
/* The same to the endpoints in turn, the one that answered last first, until one answers. */
int etcd_call_any(struct eg_etcd *c, const char *path, json_t *req, const struct errmap *map, json_t **ret,
                  struct eg_error *err);

/* A uint64 given as a JSON string (as the gateway sends them) or integer; absent is 0. */
int etcd_json_get_u64(json_t *obj, const char *key, uint64_t *ret);

/* What both snapshot wire formats (gateway JSON, gRPC) decode to: a sequence of blobs whose
 * concatenation is the db file followed by etcd's sha256 of it, each blob tagged with the
 * db bytes still to come. The core passes all but the newest SHA256_LEN bytes to sink, so
 * sink never sees the hash, and checks it at the end. Constant memory. */
struct etcd_snapshot_core {
        eg_etcd_snapshot_sink sink;
        void *userdata;
        struct eg_sha256 *sha;          /* of the bytes given to sink */
        unsigned char tail[SHA256_LEN]; /* the newest bytes, held back */
        size_t tail_len;
        uint64_t size;      /* bytes given to sink */
        uint64_t remaining; /* of the last blob */
        bool seen;          /* any blob at all */
};
int etcd_snapshot_core_init(struct etcd_snapshot_core *k, eg_etcd_snapshot_sink sink, void *userdata);
void etcd_snapshot_core_done(struct etcd_snapshot_core *k);
/* Returns sink's error (with err filled) when sink fails. */
int etcd_snapshot_core_blob(struct etcd_snapshot_core *k, const unsigned char *p, size_t n, uint64_t remaining,
                            struct eg_error *err);
/* -EBADMSG when no blob came, remaining did not reach 0 or the sha256 does not match. Once. */
int etcd_snapshot_core_finish(struct etcd_snapshot_core *k, char ret_sha256[static 65], uint64_t *ret_size,
                              struct eg_error *err);

/* gRPC frames go up to this; etcd sends 32 KiB of db per message. */
#define GRPC_FRAME_MAX ((size_t)16 << 20)

/* Decoder of the gRPC reply of etcdserverpb.Maintenance/Snapshot: length-prefixed frames,
 * each a protobuf SnapshotResponse {header = 1; uint64 remaining_bytes = 2; bytes blob = 3},
 * fed in arbitrary chunks, plus the response's header and trailer lines for grpc-status. */
struct etcd_grpc_snapshot;
int etcd_grpc_snapshot_new(eg_etcd_snapshot_sink sink, void *userdata, struct etcd_grpc_snapshot **ret);
void etcd_grpc_snapshot_free(struct etcd_grpc_snapshot *d);
/* The body. -EBADMSG on a malformed or compressed frame, or sink's error; sticky. */
int etcd_grpc_snapshot_feed(struct etcd_grpc_snapshot *d, const void *data, size_t len, struct eg_error *err);
/* One header or trailer line as curl gives it ("name: value\r\n"); picks out content-type,
 * grpc-status and grpc-message, ignores the rest. -ENOMEM only. */
int etcd_grpc_snapshot_header(struct etcd_grpc_snapshot *d, const char *line, size_t len);
/* Whether the reply says it is gRPC: content-type application/grpc or a grpc-status. */
bool etcd_grpc_snapshot_is_grpc(const struct etcd_grpc_snapshot *d);
/* Ends the reply: -EIO with grpc-message in err for a non-zero grpc-status, -EBADMSG when
 * the status is missing or a frame was cut, or the core's verdict. */
int etcd_grpc_snapshot_finish(struct etcd_grpc_snapshot *d, char ret_sha256[static 65], uint64_t *ret_size,
                              struct eg_error *err);
