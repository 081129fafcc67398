/* The HTTP endpoints on libmicrohttpd, run from the daemon's sd-event loop through MHD's
 * epoll fd and timeout, and the checks that make a webhook trustworthy. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/http.h"

#define PAGE_MAX ((size_t)8 << 20)

/* ---- webhook checks ---- */

/* Decodes "sha256=<64 hex>" into out; false when malformed. */
static bool parse_signature(const char *s, unsigned char out[static 32]) {
        if (!eg_str_has_prefix(s, "sha256="))
                return false;
        s += strlen("sha256=");
        if (strlen(s) != 64)
                return false;
        for (size_t i = 0; i < 32; i++) {
                int v = 0;
                for (int k = 0; k < 2; k++) {
                        int c = tolower((unsigned char)s[2 * i + (size_t)k]);
                        if (c >= '0' && c <= '9')
                                v = v * 16 + (c - '0');
                        else if (c >= 'a' && c <= 'f')
                                v = v * 16 + (c - 'a' + 10);
                        else
                                return false;
                }
                out[i] = (unsigned char)v;
        }
        return true;
}

static bool hmac_matches(const void *secret, size_t secret_len, const void *body, size_t len,
                         const unsigned char want[static 32]) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        static const unsigned char empty;
        if (!HMAC(EVP_sha256(), secret, (int)secret_len, body ? body : &empty, len, mac, &mac_len) || mac_len != 32)
                return false;
        bool ok = CRYPTO_memcmp(mac, want, 32) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
        return ok;
}

int eg_webhook_verify(const struct eg_webhook_request *req, const void *secret, size_t secret_len,
                      const char **ret_why) {
        unsigned char want[32];
        if (!secret || secret_len == 0 || secret_len > INT32_MAX) {
                *ret_why = "no webhook secret is configured (--webhook-secret-file)";
                return -EACCES;
        }
        if (req->github_event || req->github_signature) {
                if (!req->github_signature) {
                        *ret_why = "GitHub request without X-Hub-Signature-256";
                        return -EACCES;
                }
                if (!parse_signature(req->github_signature, want)) {
                        *ret_why = "malformed X-Hub-Signature-256";
                        return -EACCES;
                }
                if (!hmac_matches(secret, secret_len, req->body, req->body_len, want)) {
                        *ret_why = "X-Hub-Signature-256 does not match the payload";
                        return -EACCES;
                }
                return req->github_event && strcmp(req->github_event, "ping") == 0 ? 1 : 0;
        }
        if (req->gitlab_token) {
                /* compare digests so neither the length nor the content leaks through timing */
                unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
                SHA256((const unsigned char *)req->gitlab_token, strlen(req->gitlab_token), a);
                SHA256(secret, secret_len, b);
                if (CRYPTO_memcmp(a, b, sizeof(a)) != 0) {
                        *ret_why = "X-Gitlab-Token does not match";
                        return -EACCES;
                }
                return 0;
        }
        if (req->signature) {
                if (!parse_signature(req->signature, want)) {
                        *ret_why = "malformed X-Signature";
                        return -EACCES;
                }
                if (!hmac_matches(secret, secret_len, req->body, req->body_len, want)) {
                        *ret_why = "X-Signature does not match the payload";
                        return -EACCES;
                }
                return 0;
        }
        *ret_why = "no X-Hub-Signature-256, X-Gitlab-Token or X-Signature header";
        return -EACCES;
}

static char *commit_from(json_t *v) {
        const char *s = json_string_value(v);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        if (n < 4 || n > 64)
                return NULL;
        bool nonzero = false;
        for (size_t i = 0; i < n; i++) {
                if (!isxdigit((unsigned char)s[i]))
                        return NULL;
                nonzero |= s[i] != '0';
        }
        if (!nonzero)
                return NULL;
        char *c = strdup(s);
        for (char *p = c; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return c;
}

char *eg_webhook_commit(const void *body, size_t len) {
        if (!body || len == 0)
                return NULL;
        json_t *j = json_loadb(body, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return NULL;
        }
        char *c = commit_from(json_object_get(j, "checkout_sha"));
        if (!c)
                c = commit_from(json_object_get(j, "after"));
        if (!c)
                c = commit_from(json_object_get(j, "commit"));
        json_decref(j);
        return c;
}

int eg_webhook_secret_read(const char *path, char **ret, size_t *ret_len) {
        char *s = NULL;
        size_t n = 0;
        int r = eg_read_file(path, 65536, &s, &n);
        if (r < 0)
                return r;
        while (n > 0 && isspace((unsigned char)s[n - 1]))
                s[--n] = 0;
        if (n == 0) {
                free(s);
                return -ENODATA;
        }
        *ret = s;
        *ret_len = n;
        return 0;
}

/* ---- the server ---- */

struct eg_http {
        struct eg_http_options opt;
        struct MHD_Daemon *mhd;
        sd_event_source *io, *timer;
        unsigned port;
        unsigned char *secret;
        size_t secret_len;
};

/* Per request: the body of a POST, capped. */
struct request {
        struct eg_buf body;
        bool too_big;
};

int eg_http_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, struct eg_error *err) {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s || !colon[1]) {
                eg_error_set(err, "--listen takes HOST:PORT, got '%s'", s);
                return -EINVAL;
        }
        _cleanup_free_ char *host = strndup(s, (size_t)(colon - s));
        if (!host)
                return -ENOMEM;
        if (host[0] == '[') {
                size_t n = strlen(host);
                if (n < 3 || host[n - 1] != ']') {
                        eg_error_set(err, "--listen: bad address in '%s'", s);
                        return -EINVAL;
                }
                memmove(host, host + 1, n - 2);
                host[n - 2] = 0;
        }
        uint64_t port;
        if (eg_parse_uint64(colon + 1, &port) < 0 || port > 65535) {
                eg_error_set(err, "--listen: bad port in '%s'", s);
                return -EINVAL;
        }
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        int k = getaddrinfo(host, colon + 1, &hints, &ai);
        if (k != 0 || !ai) {
                eg_error_set(err, "--listen: cannot resolve '%s': %s", host, gai_strerror(k));
                return -EINVAL;
        }
        memset(ret, 0, sizeof(*ret));
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t len) {
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        socklen_t sl = sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (!sa || getnameinfo(sa, sl, host, sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
                snprintf(buf, len, "unknown");
                return;
        }
        snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* A response of type; copy=false hands body (malloc'd) to MHD, which frees it even when
 * this fails (NULL). */
static struct MHD_Response *response_new(const char *type, char *body, size_t len, bool copy) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(
                len, body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                if (!copy)
                        free(body);
                return NULL;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        return resp;
}

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *resp) {
        if (!resp)
                return MHD_NO;
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, char *body, size_t len,
                               bool copy) {
        return queue(c, status, response_new(type, body, len, copy));
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text) {
        return respond(c, status, "text/plain; charset=utf-8", (char *)text, strlen(text), true);
}

/* 405 naming the methods the path takes, as RFC 9110 asks. */
static enum MHD_Result respond_not_allowed(struct MHD_Connection *c, const char *allow, const char *text) {
        struct MHD_Response *resp = response_new("text/plain; charset=utf-8", (char *)text, strlen(text), true);
        if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        return queue(c, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

static enum MHD_Result handle_page(struct eg_http *h, struct MHD_Connection *c) {
        const struct eg_http_handlers *hd = &h->opt.handlers;
        _cleanup_free_ char *status = NULL;
        struct eg_buf b;
        eg_buf_init(&b, PAGE_MAX);
        if (!hd->status || hd->status(hd->userdata, &status) < 0 ||
            eg_http_page_render(status, h->opt.audit_log, &b) < 0) {
                eg_buf_done(&b);
                return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot build the status page\n");
        }
        size_t len = b.len;
        struct MHD_Response *resp = response_new("text/html; charset=utf-8", eg_buf_steal(&b), len, false);
        /* a name that slipped through escaping still could not run or load anything */
        if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY,
                                        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
                                        "frame-ancestors 'none'");
        return queue(c, MHD_HTTP_OK, resp);
}

static enum MHD_Result handle_hook(struct eg_http *h, struct MHD_Connection *c, struct request *rq) {
        char remote[NI_MAXHOST + NI_MAXSERV + 8];
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        format_addr(ci ? ci->client_addr : NULL, remote, sizeof(remote));
        struct eg_webhook_event ev = {.remote = remote};
        enum MHD_Result ret;
        if (rq->too_big) {
                ev.result = EG_WEBHOOK_TOO_LARGE;
                ret = respond_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "payload too large\n");
                goto out;
        }
        struct eg_webhook_request wr = {
                .github_event = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-GitHub-Event"),
                .github_signature = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hub-Signature-256"),
                .gitlab_token = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Gitlab-Token"),
                .signature = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Signature"),
                .body = rq->body.data,
                .body_len = rq->body.len,
        };
        int r = eg_webhook_verify(&wr, h->secret, h->secret_len, &ev.why);
        if (r < 0) {
                ev.result = EG_WEBHOOK_REJECTED;
                ret = respond_text(c, MHD_HTTP_UNAUTHORIZED, "unauthorized\n");
        } else if (r == 1) {
                ev.result = EG_WEBHOOK_PING;
                ret = respond_text(c, MHD_HTTP_OK, "pong\n");
        } else {
                ev.result = EG_WEBHOOK_ACCEPTED;
                ret = respond_text(c, MHD_HTTP_ACCEPTED, "accepted\n");
        }
out:;
        _cleanup_free_ char *commit = ev.result == EG_WEBHOOK_ACCEPTED ? eg_webhook_commit(rq->body.data, rq->body.len)
                                                                       : NULL;
        ev.commit = commit;
        if (h->opt.handlers.webhook)
                h->opt.handlers.webhook(h->opt.handlers.userdata, &ev);
        return ret;
}

static enum MHD_Result handle_get(struct eg_http *h, struct MHD_Connection *c, const char *url) {
        const struct eg_http_handlers *hd = &h->opt.handlers;
        if (strcmp(url, "/") == 0)
                return handle_page(h, c);
        if (strcmp(url, "/healthz") == 0)
                return respond_text(c, MHD_HTTP_OK, "ok\n");
        if (strcmp(url, "/readyz") == 0) {
                bool ready = hd->ready && hd->ready(hd->userdata);
                _cleanup_free_ char *why = !ready && hd->unready_why ? hd->unready_why(hd->userdata) : NULL;
                if (why)
                        return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, why);
                return respond_text(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                    ready ? "ready\n" : "not ready\n");
        }
        if (strcmp(url, "/status") == 0) {
                char *body = NULL;
                if (!hd->status || hd->status(hd->userdata, &body) < 0)
                        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot build the status\n");
                return respond(c, MHD_HTTP_OK, "application/json", body, strlen(body), false);
        }
        if (strcmp(url, "/metrics") == 0) {
                struct eg_buf b;
                eg_buf_init(&b, (size_t)32 << 20);
                if (!hd->metrics || hd->metrics(hd->userdata, &b) < 0 || eg_buf_append(&b, "", 0) < 0) {
                        eg_buf_done(&b);
                        return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render the metrics\n");
                }
                size_t len = b.len;
                return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", eg_buf_steal(&b), len,
                               false);
        }
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        struct eg_http *h = cls;
        bool hook = strcmp(url, "/hook") == 0;
        struct request *rq = *con_cls;
        if (!rq) {
                rq = calloc(1, sizeof(*rq));
                if (!rq)
                        return MHD_NO;
                eg_buf_init(&rq->body, h->opt.max_body);
                *con_cls = rq;
                const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
                uint64_t n;
                if (hook && cl && eg_parse_uint64(cl, &n) == 0 && n > h->opt.max_body)
                        rq->too_big = true;
                /* answer an oversize payload before reading it */
                if (!rq->too_big)
                        return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (!rq->too_big && (!hook || eg_buf_append(&rq->body, upload_data, *upload_data_size) < 0)) {
                        rq->too_big = hook;
                        eg_buf_done(&rq->body);
                        eg_buf_init(&rq->body, h->opt.max_body);
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (hook) {
                if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
                        return respond_not_allowed(c, "POST", "POST only\n");
                return handle_hook(h, c, rq);
        }
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return respond_not_allowed(c, "GET, HEAD", "GET only\n");
        return handle_get(h, c, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        struct request *rq = *con_cls;
        if (!rq)
                return;
        eg_buf_done(&rq->body);
        free(rq);
        *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        struct eg_buf b;
        eg_buf_init(&b, 4096);
        if (eg_buf_vprintf(&b, fmt, ap) >= 0 && b.len) {
                while (b.len && b.data[b.len - 1] == '\n')
                        b.data[--b.len] = 0;
                eg_log_debug("http: %s", b.data);
        }
        eg_buf_done(&b);
}

/* Runs MHD and re-arms the timer for whatever MHD wants to do next. */
static int run_mhd(struct eg_http *h) {
        MHD_run(h->mhd);
        MHD_UNSIGNED_LONG_LONG ms;
        if (MHD_get_timeout(h->mhd, &ms) != MHD_YES)
                return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
        uint64_t now;
        sd_event_now(sd_event_source_get_event(h->timer), CLOCK_MONOTONIC, &now);
        int r = sd_event_source_set_time(h->timer, now + (uint64_t)ms * 1000);
        return r < 0 ? r : sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) { return run_mhd(userdata); }
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) { return run_mhd(userdata); }

int eg_http_new(sd_event *e, const struct eg_http_options *opt, struct eg_http **ret, struct eg_error *err) {
        struct sockaddr_storage ss;
        socklen_t sl;
        int r = eg_http_parse_listen(opt->listen, &ss, &sl, err);
        if (r < 0)
                return r;
        struct eg_http *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->opt = *opt;
        if (!h->opt.max_body)
                h->opt.max_body = EG_HTTP_DEFAULT_MAX_BODY;
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
                r = -errno;
                eg_error_set(err, "cannot listen on %s: %s", opt->listen, strerror(errno));
                if (fd >= 0)
                        close(fd);
                free(h);
                return r;
        }
        struct sockaddr_storage bound;
        socklen_t bl = sizeof(bound);
        if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
                h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                            : ((struct sockaddr_in *)&bound)->sin_port);
        unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
        /* MHD owns fd from here, closing it when stopped */
        h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                  (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
                                  h, MHD_OPTION_END);
        if (!h->mhd) {
                close(fd);
                free(h);
                eg_error_set(err, "cannot start the HTTP server on %s", opt->listen);
                return -EIO;
        }
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!di || (r = sd_event_add_io(e, &h->io, di->epoll_fd, EPOLLIN, on_io, h)) < 0 ||
            (r = sd_event_add_time(e, &h->timer, CLOCK_MONOTONIC, 0, 0, on_timer, h)) < 0) {
                eg_error_set(err, "cannot serve HTTP from the event loop: %s", strerror(di ? -r : EIO));
                eg_http_free(h);
                return di ? r : -EIO;
        }
        sd_event_source_set_priority(h->io, SD_EVENT_PRIORITY_IMPORTANT);
        sd_event_source_set_priority(h->timer, SD_EVENT_PRIORITY_IMPORTANT);
        sd_event_source_set_time_accuracy(h->timer, 1);
        r = run_mhd(h);
        if (r < 0) {
                eg_error_set(err, "cannot arm the HTTP timer: %s", strerror(-r));
                eg_http_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

void eg_http_free(struct eg_http *h) {
        if (!h)
                return;
        sd_event_source_disable_unref(h->io);
        sd_event_source_disable_unref(h->timer);
        if (h->mhd)
                MHD_stop_daemon(h->mhd);
        if (h->secret) {
                OPENSSL_cleanse(h->secret, h->secret_len);
                free(h->secret);
        }
        free(h);
}

int eg_http_set_secret(struct eg_http *h, const void *secret, size_t len) {
        unsigned char *s = NULL;
        if (secret && len) {
                s = malloc(len);
                if (!s)
                        return -ENOMEM;
                memcpy(s, secret, len);
        }
        if (h->secret) {
                OPENSSL_cleanse(h->secret, h->secret_len);
                free(h->secret);
        }
        h->secret = s;
        h->secret_len = s ? len : 0;
        return 0;
}

unsigned eg_http_port(const struct eg_http *h) { return h->port; }
