/* kube client: a small Kubernetes REST client on libcurl and jansson, with retries and readable errors. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "etcd-gitops/kube.h"
#include "internal.h"

#define RESPONSE_MAX_BYTES ((size_t)64 << 20)
#define LIST_MAX_ITEMS 100000
#define LIST_MAX_PAGES 10000
#define BACKOFF_CAP_MS 8000
#define RETRY_AFTER_CAP_MS 30000

struct eg_kube_client {
        struct eg_kube_config *cfg;
        int64_t timeout_ms;
        int max_retries;
        int64_t retry_base_ms;
        CURL *h;           /* reused: keeps the connection to the API server alive */
        char *url_server;  /* the server as requests name it (tls-server-name swaps the host) */
        char *connect_to;  /* CURLOPT_CONNECT_TO entry for tls-server-name; NULL otherwise */
        char *proxy;       /* CURLOPT_PROXY for proxy-url (socks5 resolving names at the proxy) */
        char *proxy_shown; /* proxy-url for error messages, without its user:password */
        /* etcd access through the pod proxy */
        char *access_header;
        const char *access_headers[2];
        char *ca_path, *cert_path, *key_path;
};

struct eg_kube_config *eg_kube_client_config(struct eg_kube_client *c) {
        return c->cfg;
}

/* Splits "scheme://host[:port][/prefix]" into its parts; host may be a [v6] literal. */
static int split_server(const char *server, char **ret_scheme, char **ret_host, char **ret_port, char **ret_rest) {
        const char *p = strstr(server, "://");
        if (!p)
                return -EINVAL;
        const char *h = p + 3;
        const char *end = h + strcspn(h, "/");
        const char *colon = NULL;
        if (*h == '[') {
                const char *rb = memchr(h, ']', (size_t)(end - h));
                if (!rb)
                        return -EINVAL;
                colon = rb[1] == ':' ? rb + 1 : NULL;
        } else
                colon = memchr(h, ':', (size_t)(end - h));
        bool https = strncmp(server, "https", 5) == 0;
        *ret_scheme = strndup(server, (size_t)(p - server));
        *ret_host = strndup(h, (size_t)((colon ? colon : end) - h));
        *ret_port = colon ? strndup(colon + 1, (size_t)(end - colon - 1)) : strdup(https ? "443" : "80");
        *ret_rest = strdup(end);
        if (!*ret_scheme || !*ret_host || !*ret_port || !*ret_rest) {
                free(*ret_scheme);
                free(*ret_host);
                free(*ret_port);
                free(*ret_rest);
                return -ENOMEM;
        }
        return 0;
}

/* proxy-url (checked by the loader) as curl takes it: kubectl's socks5 has the proxy resolve
 * names, which is curl's socks5h; and as errors show it, without user:password. */
static int proxy_for_curl(const char *u, char **ret_proxy, char **ret_shown) {
        const char *p = strstr(u, "://");
        const char *host = p ? p + 3 : u;
        const char *at = memrchr(host, '@', strcspn(host, "/?#"));
        if (p && (size_t)(p - u) == 6 && strncasecmp(u, "socks5", 6) == 0)
                *ret_proxy = eg_strdup_printf("socks5h%s", p);
        else
                *ret_proxy = strdup(u);
        *ret_shown = eg_strdup_printf("%.*s%s", (int)(host - u), u, at ? at + 1 : host);
        return *ret_proxy && *ret_shown ? 0 : -ENOMEM;
}

int eg_kube_client_new(struct eg_kube_config *cfg, const struct eg_kube_client_options *o, struct eg_kube_client **ret,
                       struct eg_error *err) {
        struct eg_kube_client *c = calloc(1, sizeof(*c));
        if (!c) {
                eg_kube_config_free(cfg);
                return -ENOMEM;
        }
        c->cfg = cfg;
        c->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms : 30000;
        c->max_retries = o && o->max_retries > 0 ? o->max_retries : 5;
        c->retry_base_ms = o && o->retry_base_ms > 0 ? o->retry_base_ms : 200;
        if (strncmp(cfg->server, "https://", 8) != 0 && strncmp(cfg->server, "http://", 7) != 0) {
                eg_error_set(err, "%s: server %s is not an http(s) URL", cfg->source, cfg->server);
                eg_kube_client_free(c);
                return -EINVAL;
        }
        if (cfg->tls_server_name) {
                /* curl checks the certificate against the URL's host: name the URL after
                 * tls-server-name and connect to the real address */
                char *scheme = NULL, *host = NULL, *port = NULL, *rest = NULL;
                int r = split_server(cfg->server, &scheme, &host, &port, &rest);
                if (r < 0) {
                        eg_error_set(err, "%s: cannot parse server %s", cfg->source, cfg->server);
                        eg_kube_client_free(c);
                        return r;
                }
                c->url_server = eg_strdup_printf("%s://%s:%s%s", scheme, cfg->tls_server_name, port, rest);
                c->connect_to = eg_strdup_printf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
                free(scheme);
                free(host);
                free(port);
                free(rest);
        } else
                c->url_server = strdup(cfg->server);
        if (cfg->proxy_url && proxy_for_curl(cfg->proxy_url, &c->proxy, &c->proxy_shown) < 0) {
                eg_kube_client_free(c);
                return -ENOMEM;
        }
        c->h = curl_easy_init();
        if (!c->url_server || !c->h || (cfg->tls_server_name && !c->connect_to)) {
                eg_kube_client_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void eg_kube_client_free(struct eg_kube_client *c) {
        if (!c)
                return;
        if (c->h)
                curl_easy_cleanup(c->h);
        eg_kube_config_free(c->cfg);
        free(c->url_server);
        free(c->connect_to);
        free(c->proxy);
        free(c->proxy_shown);
        free(c->access_header);
        free(c->ca_path);
        free(c->cert_path);
        free(c->key_path);
        free(c);
}

/* ---- one HTTP exchange ---- */

struct exchange {
        struct eg_buf body;
        int64_t retry_after_ms; /* -1 when absent */
        /* a watch: the body streams to it as it comes (body keeps only its start, for an
         * error's Status), and it may end the exchange */
        const struct eg_kube_watcher *watch;
};

/* Enough of a refused watch's body to name why (its Status is small). */
#define WATCH_ERROR_BYTES 8192

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        struct exchange *x = userdata;
        if (x->watch) {
                if (x->body.len < WATCH_ERROR_BYTES)
                        eg_buf_append(&x->body, p, size * n < WATCH_ERROR_BYTES ? size * n : WATCH_ERROR_BYTES);
                return x->watch->on_data(p, size * n, x->watch->userdata) < 0 ? 0 : size * n;
        }
        return eg_buf_append(&x->body, p, size * n) < 0 ? 0 : size * n;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        const struct exchange *x = userdata;
        return x->watch->cancelled(x->watch->userdata) ? 1 : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        struct exchange *x = userdata;
        size_t len = size * n;
        if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
                _cleanup_free_ char *v = strndup(p + 12, len - 12);
                uint64_t secs;
                if (v) {
                        char *s = v + strspn(v, " \t");
                        s[strcspn(s, " \t\r\n")] = 0;
                        if (eg_parse_uint64(s, &secs) >= 0)
                                x->retry_after_ms = secs > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS
                                                                                     : (int64_t)secs * 1000;
                }
        }
        return len;
}

static char *basic_auth(const char *user, const char *pass) {
        _cleanup_free_ char *plain = eg_strdup_printf("%s:%s", user, pass ? pass : "");
        if (!plain)
                return NULL;
        size_t n = strlen(plain);
        unsigned char *enc = malloc(4 * ((n + 2) / 3) + 1);
        if (!enc)
                return NULL;
        EVP_EncodeBlock(enc, (const unsigned char *)plain, (int)n);
        char *h = eg_strdup_printf("Authorization: Basic %s", enc);
        free(enc);
        return h;
}

static char *auth_header(const struct eg_kube_credentials *cr) {
        if (cr->token)
                return eg_strdup_printf("Authorization: Bearer %s", cr->token);
        if (cr->username)
                return basic_auth(cr->username, cr->password);
        return NULL;
}

/* How the API server is trusted and reached, as the kubeconfig says: the one decision that
 * both the REST calls and etcd through the pod proxy follow. */
struct server_trust {
        const char *ca_data; /* certificate-authority-data, else */
        size_t ca_len;
        const char *ca_file;    /* certificate-authority */
        bool verify;            /* false: insecure-skip-tls-verify */
        const char *connect_to; /* tls-server-name: the name checked, the address dialled */
        const char *proxy;      /* proxy-url as curl takes it; NULL: none (curl's environment) */
};

static struct server_trust server_trust(const struct eg_kube_client *c) {
        const struct eg_kube_config *cfg = c->cfg;
        return (struct server_trust){
                .ca_data = cfg->ca_data,
                .ca_len = cfg->ca_len,
                .ca_file = cfg->ca_data ? NULL : cfg->ca_file,
                .verify = !cfg->insecure_skip_tls_verify,
                .connect_to = c->connect_to,
                .proxy = c->proxy,
        };
}

static void set_tls(CURL *h, const struct eg_kube_client *c) {
        const struct eg_kube_config *cfg = c->cfg;
        const struct eg_kube_credentials *cr = &cfg->cred;
        struct server_trust t = server_trust(c);
        if (t.ca_data) {
                struct curl_blob b = {.data = (void *)t.ca_data, .len = t.ca_len, .flags = CURL_BLOB_COPY};
                curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
        } else if (t.ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, t.ca_file);
        if (!t.verify) {
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (t.proxy) {
                curl_easy_setopt(h, CURLOPT_PROXY, t.proxy);
                /* kubectl sends everything through proxy-url, whatever no_proxy says */
                curl_easy_setopt(h, CURLOPT_NOPROXY, "");
        }
        if (cr->cert_data) {
                struct curl_blob b = {.data = (void *)cr->cert_data, .len = cr->cert_len, .flags = CURL_BLOB_COPY};
                curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
                curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        } else if (cr->cert_file)
                curl_easy_setopt(h, CURLOPT_SSLCERT, cr->cert_file);
        if (cr->key_data) {
                struct curl_blob b = {.data = (void *)cr->key_data, .len = cr->key_len, .flags = CURL_BLOB_COPY};
                curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
                curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        } else if (cr->key_file)
                curl_easy_setopt(h, CURLOPT_SSLKEY, cr->key_file);
}

static int curl_errno(CURLcode cc) {
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
                return -EHOSTUNREACH;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_WRITE_ERROR:
                return -E2BIG;
        default:
                return -EPROTO;
        }
}

/* The options of one request on the reused handle, from a reset. */
static void set_request(struct eg_kube_client *c, const char *method, const char *url, const char *body,
                        size_t body_len, struct curl_slist *hdrs, struct curl_slist *connect_to, struct exchange *x,
                        char *errbuf) {
        CURL *h = c->h;
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        /* managedFields and audit logs name the manager by it */
        curl_easy_setopt(h, CURLOPT_USERAGENT, "etcd-gitops/" EG_VERSION);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->timeout_ms < 10000 ? c->timeout_ms : 10000));
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "HEAD") == 0)
                curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        if (body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        if (connect_to)
                curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
        if (x->watch) {
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        }
        set_tls(h, c);
}

static int exchange_once(struct eg_kube_client *c, const char *method, const char *url, const char *body,
                         size_t body_len, const char *content_type, long *ret_status, struct exchange *x,
                         struct eg_error *err) {
        CURL *h = c->h;
        struct curl_slist *hdrs = NULL, *more;
        char errbuf[CURL_ERROR_SIZE] = "";
        _cleanup_free_ char *auth = NULL, *ctype = NULL;
        const char *lines[3] = {"Accept: application/json", NULL, NULL};
        int r = -ENOMEM;
        if (body) {
                ctype = eg_strdup_printf("Content-Type: %s", content_type ? content_type : "application/json");
                if (!ctype)
                        return -ENOMEM;
                lines[1] = ctype;
        }
        auth = auth_header(&c->cfg->cred);
        if (auth)
                lines[body ? 2 : 1] = auth;
        for (size_t i = 0; i < EG_ELEMENTSOF(lines) && lines[i]; i++) {
                if (!(more = curl_slist_append(hdrs, lines[i])))
                        goto out;
                hdrs = more;
        }
        struct curl_slist *connect_to = NULL;
        const char *via = server_trust(c).connect_to;
        if (via && !(connect_to = curl_slist_append(NULL, via)))
                goto out;
        set_request(c, method, url, body, body_len, hdrs, connect_to, x, errbuf);
        CURLcode cc = curl_easy_perform(h);
        curl_slist_free_all(connect_to);
        if (cc != CURLE_OK) {
                r = curl_errno(cc);
                if (c->proxy_shown)
                        eg_error_set(err, "%s %s through proxy %s: %s", method, url, c->proxy_shown,
                                     *errbuf ? errbuf : curl_easy_strerror(cc));
                else
                        eg_error_set(err, "%s %s: %s", method, url, *errbuf ? errbuf : curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
        r = 0;
out:
        curl_slist_free_all(hdrs);
        /* the handle must not keep pointers into our stack once we return */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
        return r;
}

static void sleep_ms(int64_t ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int eg_kube_request(struct eg_kube_client *c, const char *method, const char *path, json_t *body,
                    const char *content_type, long *ret_status, json_t **ret, struct eg_error *err) {
        _cleanup_free_ char *url = eg_strdup_printf("%s%s", c->url_server, path);
        _cleanup_free_ char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
        bool refreshed = false;
        int64_t backoff = c->retry_base_ms;
        int r;
        if (!url || (body && !data))
                return -ENOMEM;
        for (int attempt = 0;; attempt++) {
                struct exchange x = {.retry_after_ms = -1};
                long status = 0;
                eg_buf_init(&x.body, RESPONSE_MAX_BYTES);
                r = eg_kube_config_credentials(c->cfg, false, err);
                if (r >= 0)
                        r = exchange_once(c, method, url, data, data ? strlen(data) : 0, content_type, &status, &x,
                                          err);
                if (r < 0) {
                        /* transport failures are final: a POST may have been applied, and
                         * the caller's next pass observes again anyway */
                        eg_buf_done(&x.body);
                        return r;
                }
                json_t *doc = NULL;
                if (x.body.len > 0)
                        doc = json_loadb(x.body.data, x.body.len, 0, NULL);
                bool retryable = status == 429 || status >= 500;
                if (status == 401 && !refreshed && (c->cfg->exec || c->cfg->token_file)) {
                        refreshed = true;
                        json_decref(doc);
                        eg_buf_done(&x.body);
                        if ((r = eg_kube_config_credentials(c->cfg, true, err)) < 0)
                                return r;
                        continue;
                }
                if (retryable && attempt < c->max_retries) {
                        int64_t wait = x.retry_after_ms >= 0 ? x.retry_after_ms : backoff;
                        backoff = backoff * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : backoff * 2;
                        json_decref(doc);
                        eg_buf_done(&x.body);
                        sleep_ms(wait);
                        continue;
                }
                if (ret_status)
                        *ret_status = status;
                if (status < 200 || status >= 300) {
                        r = kube_status_error(status, method, path, json_is_object(doc) ? doc : NULL, err);
                        json_decref(doc);
                        eg_buf_done(&x.body);
                        return r;
                }
                if (x.body.len > 0 && !doc) {
                        eg_error_set(err, "%s %s: the reply is not JSON", method, path);
                        eg_buf_done(&x.body);
                        return -EBADMSG;
                }
                eg_buf_done(&x.body);
                if (ret)
                        *ret = doc;
                else
                        json_decref(doc);
                return 0;
        }
}

int eg_kube_watch(struct eg_kube_client *c, const char *path, int64_t timeout_ms, const struct eg_kube_watcher *w,
                  struct eg_error *err) {
        _cleanup_free_ char *url = eg_strdup_printf("%s%s", c->url_server, path);
        if (!url)
                return -ENOMEM;
        struct exchange x = {.retry_after_ms = -1, .watch = w};
        long status = 0;
        int64_t saved = c->timeout_ms;
        int r = eg_kube_config_credentials(c->cfg, false, err);
        eg_buf_init(&x.body, WATCH_ERROR_BYTES + 1);
        c->timeout_ms = timeout_ms;
        if (r >= 0)
                r = exchange_once(c, "GET", url, NULL, 0, NULL, &status, &x, err);
        c->timeout_ms = saved;
        if (r >= 0 && (status < 200 || status >= 300)) {
                json_t *doc = x.body.len ? json_loadb(x.body.data, x.body.len, 0, NULL) : NULL;
                r = kube_status_error(status, "GET", path, json_is_object(doc) ? doc : NULL, err);
                json_decref(doc);
                /* expired credentials: fresh ones for the next watch */
                if (status == 401 && (c->cfg->exec || c->cfg->token_file))
                        eg_kube_config_credentials(c->cfg, true, NULL);
        } else if (r == -ETIMEDOUT) {
                /* the watch outlived its time with nothing wrong: the caller watches again */
                eg_error_done(err);
                r = 0;
        } else if (r == -EPROTO && w->cancelled(w->userdata)) {
                eg_error_done(err);
                r = -ECANCELED;
        }
        eg_buf_done(&x.body);
        return r;
}

int eg_kube_get(struct eg_kube_client *c, const char *path, json_t **ret, struct eg_error *err) {
        return eg_kube_request(c, "GET", path, NULL, NULL, NULL, ret, err);
}

int eg_kube_get_once(struct eg_kube_client *c, const char *path, json_t **ret, struct eg_error *err) {
        int retries = c->max_retries;
        c->max_retries = 0;
        int r = eg_kube_get(c, path, ret, err);
        c->max_retries = retries;
        return r;
}

int eg_kube_create(struct eg_kube_client *c, const char *collection, json_t *obj, json_t **ret, struct eg_error *err) {
        return eg_kube_request(c, "POST", collection, obj, NULL, NULL, ret, err);
}

int eg_kube_replace(struct eg_kube_client *c, const char *path, json_t *obj, json_t **ret, struct eg_error *err) {
        return eg_kube_request(c, "PUT", path, obj, NULL, NULL, ret, err);
}

int eg_kube_patch(struct eg_kube_client *c, const char *path, enum eg_kube_patch_type type, json_t *patch, json_t **ret,
                  struct eg_error *err) {
        const char *ct = type == EG_KUBE_PATCH_STRATEGIC ? "application/strategic-merge-patch+json"
                                                         : "application/merge-patch+json";
        return eg_kube_request(c, "PATCH", path, patch, ct, NULL, ret, err);
}

int eg_kube_delete(struct eg_kube_client *c, const char *path, int64_t grace_seconds, const char *propagation,
                   struct eg_error *err) {
        json_t *opts = json_pack("{s:s, s:s}", "kind", "DeleteOptions", "apiVersion", "v1");
        int r = -ENOMEM;
        if (!opts)
                return r;
        if ((grace_seconds >= 0 && json_object_set_new(opts, "gracePeriodSeconds", json_integer(grace_seconds)) < 0) ||
            (propagation && json_object_set_new(opts, "propagationPolicy", json_string(propagation)) < 0))
                goto out;
        r = eg_kube_request(c, "DELETE", path, opts, NULL, NULL, NULL, err);
out:
        json_decref(opts);
        return r;
}

static char *escape(struct eg_kube_client *c, const char *s) {
        char *e = curl_easy_escape(c->h, s, 0);
        char *d = e ? strdup(e) : NULL;
        curl_free(e);
        return d;
}

int eg_kube_list(struct eg_kube_client *c, const char *path, const char *label_selector, int64_t limit, json_t **ret,
                 struct eg_error *err) {
        json_t *items = json_array();
        _cleanup_free_ char *sel = label_selector ? escape(c, label_selector) : NULL;
        char *cont = NULL;
        int r = -ENOMEM;
        if (!items || (label_selector && !sel))
                goto out;
        for (int page = 0;; page++) {
                struct eg_buf q;
                json_t *doc = NULL;
                eg_buf_init(&q, 0);
                r = eg_buf_puts(&q, path);
                char sep = strchr(path, '?') ? '&' : '?';
                if (r >= 0 && sel) {
                        r = eg_buf_printf(&q, "%clabelSelector=%s", sep, sel);
                        sep = '&';
                }
                if (r >= 0 && limit > 0) {
                        r = eg_buf_printf(&q, "%climit=%" PRId64, sep, limit);
                        sep = '&';
                }
                if (r >= 0 && cont)
                        r = eg_buf_printf(&q, "%ccontinue=%s", sep, cont);
                if (r >= 0)
                        r = eg_kube_get(c, q.data, &doc, err);
                eg_buf_done(&q);
                if (r < 0)
                        goto out;
                json_t *got = json_object_get(doc, "items");
                if (!json_is_array(got) && !json_is_null(got) && got) {
                        eg_error_set(err, "GET %s: the reply has no item list", path);
                        json_decref(doc);
                        r = -EBADMSG;
                        goto out;
                }
                if (got && json_is_array(got) && json_array_extend(items, got) < 0) {
                        json_decref(doc);
                        r = -ENOMEM;
                        goto out;
                }
                const char *next = json_string_value(json_object_get(json_object_get(doc, "metadata"), "continue"));
                bool more = next && *next;
                free(cont);
                cont = more ? escape(c, next) : NULL;
                json_decref(doc);
                if (more && !cont) {
                        r = -ENOMEM;
                        goto out;
                }
                if (!cont)
                        break;
                if (page >= LIST_MAX_PAGES || json_array_size(items) > LIST_MAX_ITEMS) {
                        eg_error_set(err, "GET %s: more than %d items or pages", path, LIST_MAX_ITEMS);
                        r = -E2BIG;
                        goto out;
                }
        }
        *ret = TAKE_PTR(items);
        r = 0;
out:
        free(cont);
        json_decref(items);
        return r;
}

int eg_kube_update(struct eg_kube_client *c, const char *path, eg_kube_mutate_fn mutate, void *userdata, json_t **ret,
                   struct eg_error *err) {
        int r = -ESTALE;
        for (int attempt = 0; attempt <= c->max_retries; attempt++) {
                json_t *obj = NULL;
                if ((r = eg_kube_get(c, path, &obj, err)) < 0)
                        return r;
                r = mutate(obj, userdata);
                if (r < 0) {
                        json_decref(obj);
                        return r;
                }
                if (r == 1) {
                        if (ret)
                                *ret = obj;
                        else
                                json_decref(obj);
                        return 0;
                }
                r = eg_kube_replace(c, path, obj, ret, err);
                json_decref(obj);
                if (r != -ESTALE)
                        return r;
        }
        eg_error_set(err, "PUT %s: still conflicting after %d attempts", path, c->max_retries + 1);
        return r;
}

char *eg_kube_pod_proxy_url(struct eg_kube_client *c, const char *ns, const char *pod, int port, bool https) {
        return eg_strdup_printf("%s/api/v1/namespaces/%s/pods/%s%s:%d/proxy", c->url_server, ns, https ? "https:" : "",
                                pod, port);
}

int eg_kube_client_access(struct eg_kube_client *c, const char *dir, struct eg_kube_access *ret, struct eg_error *err) {
        struct eg_kube_config *cfg = c->cfg;
        int r;
        if ((r = eg_kube_config_credentials(cfg, false, err)) < 0)
                return r;
        if ((r = eg_mkdir_p(dir, 0700)) < 0) {
                eg_error_set(err, "cannot create %s: %s", dir, strerror(-r));
                return r;
        }
        const struct eg_kube_credentials *cr = &cfg->cred;
        struct server_trust t = server_trust(c);
        if (t.ca_data && (r = eg_kube_materialise(dir, "ca.crt", t.ca_data, t.ca_len, &c->ca_path, err)) < 0)
                return r;
        if (cr->cert_data &&
            (r = eg_kube_materialise(dir, "client.crt", cr->cert_data, cr->cert_len, &c->cert_path, err)) < 0)
                return r;
        if (cr->key_data &&
            (r = eg_kube_materialise(dir, "client.key", cr->key_data, cr->key_len, &c->key_path, err)) < 0)
                return r;
        char *h = auth_header(cr);
        if (!h && (cr->token || cr->username))
                return -ENOMEM;
        free(c->access_header);
        c->access_header = h;
        c->access_headers[0] = h;
        c->access_headers[1] = NULL;
        ret->tls.ca_file = t.ca_data ? c->ca_path : t.ca_file;
        ret->tls.insecure_skip_verify = !t.verify;
        ret->tls.connect_to = t.connect_to;
        ret->proxy = t.proxy;
        ret->tls.cert_file = cr->cert_data ? c->cert_path : cr->cert_file;
        ret->tls.key_file = cr->key_data ? c->key_path : cr->key_file;
        ret->headers = h ? c->access_headers : NULL;
        return 0;
}
