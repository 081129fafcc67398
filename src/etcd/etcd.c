/* etcd: a v3 client over etcd's JSON gRPC gateway, with endpoint failover. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "internal.h"

#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_CONNECT_TIMEOUT_MS 500
/* a snapshot stream's stall limit never drops below this */
#define SNAPSHOT_MIN_STALL_S 5

/* ---- client ---- */

static void strip_trailing_slashes(char *s) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
                s[--n] = 0;
}

static int dup_opt(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int eg_etcd_new(char *const *endpoints, size_t n, const struct eg_etcd_options *opt, struct eg_etcd **ret) {
        if (!endpoints || n == 0)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!endpoints[i] || !*endpoints[i])
                        return -EINVAL;
        struct eg_etcd *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        int r = -ENOMEM;
        c->endpoints = calloc(n, sizeof(*c->endpoints));
        if (!c->endpoints)
                goto fail;
        for (size_t i = 0; i < n; i++) {
                c->endpoints[i] = strdup(endpoints[i]);
                if (!c->endpoints[i])
                        goto fail;
                c->n_endpoints++;
                strip_trailing_slashes(c->endpoints[i]);
        }
        c->timeout_ms = opt && opt->timeout_ms > 0 ? opt->timeout_ms : DEFAULT_TIMEOUT_MS;
        c->connect_timeout_ms = opt && opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms
                                                                   : DEFAULT_CONNECT_TIMEOUT_MS;
        c->deadline_ms = opt ? opt->deadline_ms : 0;
        if (opt && (dup_opt(opt->tls.ca_file, &c->ca_file) < 0 || dup_opt(opt->tls.cert_file, &c->cert_file) < 0 ||
                    dup_opt(opt->tls.key_file, &c->key_file) < 0 || dup_opt(opt->proxy, &c->proxy) < 0))
                goto fail;
        if (opt && opt->tls.connect_to && !(c->connect_to = curl_slist_append(NULL, opt->tls.connect_to)))
                goto fail;
        c->insecure_skip_verify = opt && opt->tls.insecure_skip_verify;
        if (opt && opt->headers) {
                size_t nh = 0;
                while (opt->headers[nh])
                        nh++;
                c->headers = calloc(nh + 1, sizeof(char *));
                if (!c->headers)
                        goto fail;
                for (size_t i = 0; i < nh; i++)
                        if (!(c->headers[i] = strdup(opt->headers[i])))
                                goto fail;
        }
        c->curl = curl_easy_init();
        if (!c->curl)
                goto fail;
        *ret = c;
        return 0;
fail:
        eg_etcd_free(c);
        return r;
}

void eg_etcd_free(struct eg_etcd *c) {
        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        eg_strv_free(c->endpoints, c->n_endpoints);
        free(c->ca_file);
        free(c->cert_file);
        free(c->key_file);
        curl_slist_free_all(c->connect_to);
        free(c->proxy);
        for (size_t i = 0; c->headers && c->headers[i]; i++)
                free(c->headers[i]);
        free(c->headers);
        free(c);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata) {
        struct etcd_response *resp = userdata;
        size_t n = size * nmemb;
        int r;
        long status = 0;
        if (resp->decoder)
                curl_easy_getinfo(resp->curl, CURLINFO_RESPONSE_CODE, &status);
        if (resp->decoder && status == 200)
                r = eg_etcd_snapshot_decoder_feed(resp->decoder, data, n, resp->decoder_err);
        else
                r = eg_buf_append(&resp->body, data, n);
        if (r < 0) {
                resp->r = r;
                return 0;
        }
        return n;
}

int etcd_curl_code_to_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
                return -EPROTO;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EHOSTUNREACH;
        }
}

static bool is_transport_error(int r) {
        return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ECONNRESET || r == -EPROTO;
}

void etcd_curl_setup(struct eg_etcd *c, const char *url, bool stream) {
        CURL *h = c->curl;
        /* reset drops the previous call's options but keeps the connection cache */
        curl_easy_reset(h);
        c->errbuf[0] = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
        /* past the deadline a call still gets 1 ms: curl reads 0 as no limit at all */
        int64_t left = c->deadline_ms > 0 ? c->deadline_ms - eg_now_monotonic_ms() : INT64_MAX;
        left = left < 1 ? 1 : left;
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(c->connect_timeout_ms < left ? c->connect_timeout_ms : left));
        if (stream) {
                long stall_s = (long)((c->timeout_ms + 999) / 1000);
                curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
                curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                                 stall_s < SNAPSHOT_MIN_STALL_S ? (long)SNAPSHOT_MIN_STALL_S : stall_s);
                if (c->deadline_ms > 0)
                        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
        } else
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_ms < left ? c->timeout_ms : left));
        /* a client may live as long as its cluster, its connections kept: one to each
         * endpoint, and a CA file rewritten in place (a rotated secret) read at the next
         * handshake rather than after curl's day-long cache of it */
        curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)(c->n_endpoints > 5 ? c->n_endpoints : 5));
        curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, 0L);
        if (c->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        if (c->cert_file)
                curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
        if (c->key_file)
                curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
        if (c->insecure_skip_verify) {
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (c->connect_to)
                curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
        if (c->proxy) {
                curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
                curl_easy_setopt(h, CURLOPT_NOPROXY, "");
        }
}

int etcd_http_exchange(struct eg_etcd *c, const char *endpoint, const char *path, const char *body,
                       struct etcd_response *resp, long *ret_status, struct eg_error *err) {
        _cleanup_free_ char *url = NULL;
        size_t elen = strlen(endpoint);
        while (elen > 0 && endpoint[elen - 1] == '/')
                elen--;
        url = eg_strdup_printf("%.*s%s", (int)elen, endpoint, path);
        if (!url)
                return -ENOMEM;

        CURL *h = c->curl;
        etcd_curl_setup(c, url, resp->decoder != NULL);
        resp->curl = h;
        resp->r = 0;
        struct curl_slist *headers = NULL;
        if (body) {
                headers = curl_slist_append(NULL, "Content-Type: application/json");
                if (!headers)
                        return -ENOMEM;
        }
        for (size_t i = 0; c->headers && c->headers[i]; i++) {
                struct curl_slist *more = curl_slist_append(headers, c->headers[i]);
                if (!more) {
                        curl_slist_free_all(headers);
                        return -ENOMEM;
                }
                headers = more;
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }

        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        /* the slist must outlive the transfer, and no later call may see it */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(headers);

        if (cc != CURLE_OK && resp->r < 0) {
                if (resp->r == -E2BIG)
                        eg_error_set_http(err, endpoint, status, "response from %s larger than %zu bytes", url,
                                          resp->body.max);
                else if (err && !err->endpoint)
                        err->endpoint = strdup(endpoint);
                return resp->r;
        }
        if (cc != CURLE_OK) {
                if (c->errbuf[0])
                        eg_error_set_http(err, endpoint, status, "%s: %s: %s", url, curl_easy_strerror(cc), c->errbuf);
                else
                        eg_error_set_http(err, endpoint, status, "%s: %s", url, curl_easy_strerror(cc));
                return etcd_curl_code_to_errno(cc);
        }
        *ret_status = status;
        return 0;
}

/* {"error":..,"message":..,"code":..} is etcd's shape */
int etcd_reply_error(const char *endpoint, const char *path, long status, const struct eg_buf *body,
                     const struct errmap *map, struct eg_error *err) {
        json_t *o = body->len > 0 ? json_loadb(body->data, body->len, 0, NULL) : NULL;
        const char *msg = NULL;
        if (json_is_object(o)) {
                json_t *e = json_object_get(o, "error");
                msg = json_string_value(json_object_get(o, "message"));
                if (!msg)
                        msg = json_string_value(e);
                if (!msg)
                        msg = json_string_value(json_object_get(e, "message"));
        }
        int r = -EIO;
        if (msg) {
                for (const struct errmap *m = map; m && m->needle; m++)
                        if (strstr(msg, m->needle)) {
                                r = m->error;
                                break;
                        }
                eg_error_set_http(err, endpoint, status, "%s", msg);
        } else {
                /* not etcd speaking (a proxy, a wrong port): show the start of what it said */
                int n = body->len > 200 ? 200 : (int)body->len;
                while (n > 0 && isspace((unsigned char)body->data[n - 1]))
                        n--;
                eg_error_set_http(err, endpoint, status, "%s%s: HTTP %ld: %.*s", endpoint, path, status, n,
                                  n > 0 ? body->data : "");
        }
        json_decref(o);
        return r;
}

/* POSTs req (or GETs when req is NULL) to one endpoint and parses the 200 reply. */
int etcd_call_one(struct eg_etcd *c, const char *endpoint, const char *path, json_t *req, const struct errmap *map,
                  json_t **ret, struct eg_error *err) {
        _cleanup_free_ char *body = NULL;
        if (req) {
                body = json_dumps(req, JSON_COMPACT);
                if (!body)
                        return -ENOMEM;
        }
        struct etcd_response resp = {0};
        eg_buf_init(&resp.body, RESPONSE_MAX);
        long status = 0;
        int r = etcd_http_exchange(c, endpoint, path, body, &resp, &status, err);
        if (r < 0)
                goto out;
        if (status != 200) {
                r = etcd_reply_error(endpoint, path, status, &resp.body, map, err);
                goto out;
        }
        json_error_t jerr;
        json_t *o = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
        if (!json_is_object(o)) {
                json_decref(o);
                eg_error_set_http(err, endpoint, status, "%s%s: invalid JSON reply: %s", endpoint, path, jerr.text);
                r = -EBADMSG;
                goto out;
        }
        *ret = o;
out:
        eg_buf_done(&resp.body);
        return r;
}

/* A learner serves little but its status: anything else is for the voters, and a learner first in
 * the list (member names sort as text: "c-10" before "c-2") must not hide them. */
static bool refused_by_learner(int r, const struct eg_error *e) {
        return r == -EIO && e->message && strstr(e->message, "rpc not supported for learner");
}

/* Tries the endpoints, the last one that answered first, until one answers. */
int etcd_call_any(struct eg_etcd *c, const char *path, json_t *req, const struct errmap *map, json_t **ret,
                  struct eg_error *err) {
        struct eg_buf summary;
        eg_buf_init(&summary, 0);
        struct eg_error one = {0};
        int r = -EHOSTUNREACH;
        for (size_t k = 0; k < c->n_endpoints; k++) {
                size_t i = k == 0 ? c->preferred : (k <= c->preferred ? k - 1 : k);
                r = etcd_call_one(c, c->endpoints[i], path, req, map, ret, &one);
                if (r >= 0 || !(is_transport_error(r) || refused_by_learner(r, &one))) {
                        if (r >= 0)
                                c->preferred = i;
                        else
                                eg_error_move(err, &one);
                        eg_error_done(&one);
                        eg_buf_done(&summary);
                        return r;
                }
                (void)eg_buf_printf(&summary, "%s%s", summary.len ? "; " : "",
                                    one.message ? one.message : c->endpoints[i]);
        }
        if (c->n_endpoints == 1)
                eg_error_move(err, &one);
        else
                eg_error_set_http(err, one.endpoint, 0, "no etcd endpoint answered: %s",
                                  summary.data ? summary.data : "");
        eg_error_done(&one);
        eg_buf_done(&summary);
        return r;
}
