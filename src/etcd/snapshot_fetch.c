/* Snapshot transfers: etcd's gRPC Maintenance/Snapshot over HTTP/2 when the endpoint is
 * reached directly, the JSON gateway's stream otherwise (or when gRPC is not spoken). */
#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "internal.h"

/* fewer, larger write callbacks for a snapshot stream */
#define SNAPSHOT_CURL_BUFFER (512L << 10)

/* Where a gRPC snapshot reply goes: the decoder when it is a 200 HTTP/2 gRPC reply; the
 * capped buffer otherwise, to show what answered instead. */
struct grpc_response {
        CURL *curl;
        struct etcd_grpc_snapshot *decoder;
        struct eg_error *err;
        struct eg_buf body;
        bool decided, grpc;
        int r; /* why a callback stopped the transfer */
};

static size_t on_grpc_header(char *data, size_t size, size_t nmemb, void *userdata) {
        struct grpc_response *g = userdata;
        size_t n = size * nmemb;
        int r = etcd_grpc_snapshot_header(g->decoder, data, n);
        if (r < 0) {
                g->r = r;
                return 0;
        }
        return n;
}

static size_t on_grpc_write(char *data, size_t size, size_t nmemb, void *userdata) {
        struct grpc_response *g = userdata;
        size_t n = size * nmemb;
        if (!g->decided) {
                long status = 0, version = 0;
                curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &status);
                curl_easy_getinfo(g->curl, CURLINFO_HTTP_VERSION, &version);
                g->grpc = status == 200 && version == CURL_HTTP_VERSION_2_0 && etcd_grpc_snapshot_is_grpc(g->decoder);
                g->decided = true;
        }
        int r = g->grpc ? etcd_grpc_snapshot_feed(g->decoder, data, n, g->err) : eg_buf_append(&g->body, data, n);
        if (r < 0) {
                g->r = r;
                return 0;
        }
        return n;
}

/* Failures that say nothing about whether the server speaks gRPC: the gateway would meet
 * them too. */
static bool grpc_failure_is_final(CURLcode cc) {
        switch (cc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_OUT_OF_MEMORY:
                return true;
        default:
                return etcd_curl_code_to_errno(cc) == -EPROTO;
        }
}

/* Sets c's handle up for the Snapshot call to url, its reply going to g; *headers (the
 * caller frees them after the call) are gRPC's. */
static int grpc_setup(struct eg_etcd *c, const char *url, bool tls, struct grpc_response *g,
                      struct curl_slist **headers) {
        /* one gRPC frame: uncompressed, length 0, an empty SnapshotRequest */
        static const char request[5] = {0};
        const char *const hdrs[] = {"Content-Type: application/grpc", "TE: trailers", "Expect:"};
        for (size_t i = 0; i < EG_ELEMENTSOF(hdrs); i++) {
                struct curl_slist *more = curl_slist_append(*headers, hdrs[i]);
                if (!more)
                        return -ENOMEM;
                *headers = more;
        }
        CURL *h = c->curl;
        etcd_curl_setup(c, url, true);
        /* etcd serves h2c on a plain client port, and ALPN h2 on a TLS one */
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                         tls ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* etcd routes a connection by its first request: one that has carried gRPC must not
         * carry the gateway's JSON calls later, nor this one ride on theirs */
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, (long)SNAPSHOT_CURL_BUFFER);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_grpc_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, g);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_grpc_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, request);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)sizeof(request));
        return 0;
}

/* The snapshot through etcd's gRPC API (Maintenance/Snapshot, as etcdctl fetches it):
 * protobuf blobs rather than base64 in JSON. *ret_fallback is set when the server did not
 * answer as a gRPC server, nothing reached sink and the gateway may be tried instead. */
static int snapshot_grpc(struct eg_etcd *c, const char *endpoint, eg_etcd_snapshot_sink sink, void *userdata,
                         char ret_sha256[static 65], uint64_t *ret_size, bool *ret_fallback, struct eg_error *err) {
        static const char path[] = "/etcdserverpb.Maintenance/Snapshot";
        *ret_fallback = false;
        _cleanup_free_ char *url = eg_strdup_printf("%s%s", endpoint, path);
        if (!url)
                return -ENOMEM;
        struct grpc_response g = {.curl = c->curl, .err = err};
        eg_buf_init(&g.body, RESPONSE_MAX);
        struct curl_slist *headers = NULL;
        int r = etcd_grpc_snapshot_new(sink, userdata, &g.decoder);
        if (r < 0)
                goto out;
        r = grpc_setup(c, url, strncasecmp(endpoint, "https://", 8) == 0, &g, &headers);
        if (r < 0)
                goto out;

        CURL *h = c->curl;
        CURLcode cc = curl_easy_perform(h);
        long status = 0, version = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        /* the next call must not inherit the h2-only setting */
        curl_easy_reset(h);

        if (!g.decided) /* no body: a gRPC error comes as headers only */
                g.grpc = status == 200 && version == CURL_HTTP_VERSION_2_0 && etcd_grpc_snapshot_is_grpc(g.decoder);
        if (cc != CURLE_OK && g.r < 0 && g.grpc) {
                r = g.r; /* the decoder or sink stopped it; err says why */
        } else if (cc != CURLE_OK && (g.grpc || grpc_failure_is_final(cc))) {
                eg_error_set_http(err, endpoint, status, "%s: %s%s%s", url, curl_easy_strerror(cc),
                                  c->errbuf[0] ? ": " : "", c->errbuf);
                r = etcd_curl_code_to_errno(cc);
        } else if (!g.grpc) {
                /* not a gRPC server, or not over HTTP/2 (an h1 proxy): nothing reached sink */
                int n = g.body.len > 200 ? 200 : (int)g.body.len;
                if (cc != CURLE_OK)
                        eg_error_set_http(err, endpoint, status, "%s: %s%s%s", url, curl_easy_strerror(cc),
                                          c->errbuf[0] ? ": " : "", c->errbuf);
                else
                        eg_error_set_http(err, endpoint, status, "%s: not a gRPC reply (HTTP %ld, version %ld): %.*s",
                                          url, status, version, n, n > 0 ? g.body.data : "");
                *ret_fallback = true;
                r = cc != CURLE_OK ? etcd_curl_code_to_errno(cc) : -EPROTONOSUPPORT;
        } else
                r = etcd_grpc_snapshot_finish(g.decoder, ret_sha256, ret_size, err);
out:
        curl_slist_free_all(headers);
        etcd_grpc_snapshot_free(g.decoder);
        eg_buf_done(&g.body);
        return r;
}

/* Over gRPC when etcd is reached directly; over the JSON gateway through a proxy (which
 * cannot carry gRPC) or when the gRPC attempt met no gRPC server. */
int eg_etcd_snapshot(struct eg_etcd *c, const char *endpoint, eg_etcd_snapshot_sink sink, void *userdata,
                     char ret_sha256[static 65], uint64_t *ret_size, struct eg_error *err) {
        int r;
        if (!c->headers) {
                struct eg_error gerr = {0};
                bool fallback = false;
                r = snapshot_grpc(c, endpoint, sink, userdata, ret_sha256, ret_size, &fallback, &gerr);
                if (r >= 0 || !fallback) {
                        if (r < 0 && !gerr.endpoint)
                                gerr.endpoint = strdup(endpoint);
                        eg_error_move(err, &gerr);
                        return r;
                }
                eg_error_done(&gerr);
        }
        struct etcd_response resp = {.decoder_err = err};
        r = eg_etcd_snapshot_decoder_new(sink, userdata, &resp.decoder);
        if (r < 0)
                return r;
        eg_buf_init(&resp.body, RESPONSE_MAX);
        long status = 0;
        r = etcd_http_exchange(c, endpoint, "/v3/maintenance/snapshot", "{}", &resp, &status, err);
        if (r >= 0 && status != 200)
                r = etcd_reply_error(endpoint, "/v3/maintenance/snapshot", status, &resp.body, NULL, err);
        if (r >= 0)
                r = eg_etcd_snapshot_decoder_finish(resp.decoder, ret_sha256, ret_size, err);
        if (r < 0 && err && !err->endpoint)
                err->endpoint = strdup(endpoint);
        eg_etcd_snapshot_decoder_free(resp.decoder);
        eg_buf_done(&resp.body);
        return r;
}
