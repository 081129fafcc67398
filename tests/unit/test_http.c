/* Unit tests for the HTTP endpoints: webhook signature checks for GitHub, GitLab and the
 * generic style, payload commit extraction, --listen parsing, the status page's HTML, and a
 * real server on an ephemeral port driven by an sd-event loop, queried with libcurl. */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/http.h"

static const char secret[] = "It's a Secret to Everybody";

/* "sha256=<hex>" of body under key, the way GitHub signs. */
static char *sign(const char *key, const char *body) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        assert_non_null(
                HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)body, strlen(body), mac, &len));
        assert_int_equal(len, 32);
        char *s = malloc(7 + 64 + 1);
        assert_non_null(s);
        memcpy(s, "sha256=", 7);
        for (unsigned i = 0; i < len; i++)
                snprintf(s + 7 + 2 * i, 3, "%02x", mac[i]);
        return s;
}

static int verify(const struct eg_webhook_request *rq, const char **why) {
        *why = NULL;
        return eg_webhook_verify(rq, secret, strlen(secret), why);
}

static void test_http__github_signature(void **state) {
        /* GitHub's documented example: this secret and body give this signature */
        const char *body = "Hello, World!";
        const char *why;
        struct eg_webhook_request rq = {
                .github_event = "push",
                .github_signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                .body = body,
                .body_len = strlen(body)};
        assert_int_equal(verify(&rq, &why), 0);
        /* hex digits in upper case are the same signature */
        rq.github_signature = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
        assert_int_equal(verify(&rq, &why), 0);
        /* one bit of the body changed */
        rq.body = "Hello, World?";
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "X-Hub-Signature-256 does not match the payload");
        rq.body = body;
        rq.github_signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1";
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "malformed X-Hub-Signature-256");
        rq.github_signature = "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "malformed X-Hub-Signature-256");
        rq.github_signature = NULL;
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "GitHub request without X-Hub-Signature-256");
        /* a ping is answered only when signed */
        _cleanup_free_ char *sig = sign(secret, "{\"zen\":\"Keep it logically awesome.\"}");
        struct eg_webhook_request ping = {.github_event = "ping",
                                          .github_signature = sig,
                                          .body = "{\"zen\":\"Keep it logically awesome.\"}",
                                          .body_len = strlen("{\"zen\":\"Keep it logically awesome.\"}")};
        assert_int_equal(verify(&ping, &why), 1);
        ping.github_signature = NULL;
        assert_int_equal(verify(&ping, &why), -EACCES);
}

static void test_http__gitlab_token(void **state) {
        const char *why;
        struct eg_webhook_request rq = {.gitlab_token = secret, .body = "{}", .body_len = 2};
        assert_int_equal(verify(&rq, &why), 0);
        rq.gitlab_token = "It's a Secret to Everybod";
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "X-Gitlab-Token does not match");
        rq.gitlab_token = "";
        assert_int_equal(verify(&rq, &why), -EACCES);
        /* the secret file's value is not a prefix match either way */
        rq.gitlab_token = "It's a Secret to Everybody!";
        assert_int_equal(verify(&rq, &why), -EACCES);
}

static void test_http__generic_signature(void **state) {
        const char *why;
        const char *body = "{\"commit\":\"0123abcd\"}";
        _cleanup_free_ char *sig = sign(secret, body);
        struct eg_webhook_request rq = {.signature = sig, .body = body, .body_len = strlen(body)};
        assert_int_equal(verify(&rq, &why), 0);
        _cleanup_free_ char *other = sign("another secret", body);
        rq.signature = other;
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "X-Signature does not match the payload");
        rq.signature = "sha256=zz";
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "malformed X-Signature");
        rq.signature = NULL;
        assert_int_equal(verify(&rq, &why), -EACCES);
        assert_string_equal(why, "no X-Hub-Signature-256, X-Gitlab-Token or X-Signature header");
        /* without a secret nothing passes, not even a correct-looking request */
        rq.signature = sig;
        assert_int_equal(eg_webhook_verify(&rq, NULL, 0, &why), -EACCES);
        assert_string_equal(why, "no webhook secret is configured (--webhook-secret-file)");
        assert_int_equal(eg_webhook_verify(&rq, "", 0, &why), -EACCES);
}

static void test_http__payload_commit(void **state) {
        const char *gh = "{\"ref\":\"refs/heads/main\",\"before\":\"1111111111111111111111111111111111111111\","
                         "\"after\":\"A94A8FE5CCB19BA61C4C0873D391E987982FBBD3\"}";
        _cleanup_free_ char *c1 = eg_webhook_commit(gh, strlen(gh));
        assert_string_equal(c1, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
        const char *gl =
                "{\"object_kind\":\"push\",\"after\":\"1234567\",\"checkout_sha\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\"}";
        _cleanup_free_ char *c2 = eg_webhook_commit(gl, strlen(gl));
        assert_string_equal(c2, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
        const char *gen = "{\"commit\":\"beef\"}";
        _cleanup_free_ char *c3 = eg_webhook_commit(gen, strlen(gen));
        assert_string_equal(c3, "beef");
        /* a deleted branch, not hex, too short, not JSON, not an object */
        const char *bad[] = {"{\"after\":\"0000000000000000000000000000000000000000\"}",
                             "{\"commit\":\"main\"}",
                             "{\"commit\":\"abc\"}",
                             "commit=abcdef",
                             "[\"abcdef\"]",
                             "{\"commit\":12345}",
                             ""};
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++)
                assert_null(eg_webhook_commit(bad[i], strlen(bad[i])));
}

static void test_http__parse_listen(void **state) {
        struct sockaddr_storage ss;
        socklen_t sl;
        struct eg_error err = {0};
        assert_int_equal(eg_http_parse_listen("127.0.0.1:9630", &ss, &sl, &err), 0);
        assert_int_equal(ss.ss_family, AF_INET);
        assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9630);
        assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000001);
        assert_int_equal(eg_http_parse_listen("[::1]:80", &ss, &sl, &err), 0);
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 80);
        const char *bad[] = {"9630",         "127.0.0.1:", ":9630",         "127.0.0.1:65536",
                             "127.0.0.1:-1", "[::1:80",    "127.0.0.1:http"};
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++) {
                assert_int_equal(eg_http_parse_listen(bad[i], &ss, &sl, &err), -EINVAL);
                assert_non_null(err.message);
                eg_error_done(&err);
        }
}

static void test_http__secret_file(void **state) {
        char path[] = "/tmp/eg-http-secret-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(eg_write_file_atomic(path, "s3cret \n\n", 9, 0600), 0);
        char *s = NULL;
        size_t n = 0;
        assert_int_equal(eg_webhook_secret_read(path, &s, &n), 0);
        assert_int_equal(n, 6);
        assert_string_equal(s, "s3cret");
        free(s);
        assert_int_equal(eg_write_file_atomic(path, "\n", 1, 0600), 0);
        assert_int_equal(eg_webhook_secret_read(path, &s, &n), -ENODATA);
        unlink(path);
        assert_int_equal(eg_webhook_secret_read(path, &s, &n), -ENOENT);
}

/* ---- the status page ---- */

static const char page_status[] =
        "{\"ready\":true,\"listError\":null,"
        "\"source\":{\"kind\":\"git\",\"revision\":\"main@sha1:0123abcd\",\"commit\":\"0123abcd\","
        "\"subject\":\"<b>bold</b> & co\",\"dirty\":false,\"lastRead\":null,"
        "\"lastError\":\"clusters/x.yaml:3:7: spec.size: must be at least 1\","
        "\"diagnostics\":[{\"file\":\"clusters/x.yaml\",\"line\":3,\"column\":7,\"severity\":\"error\","
        "\"field\":\"spec.size\",\"message\":\"must be <at least> 1\"},{\"file\":\"y.yaml\",\"line\":1,"
        "\"column\":1,\"severity\":\"warning\",\"message\":\"unknown field\"}]},"
        "\"lastPass\":{\"time\":\"2026-12-05T19:00:00.000Z\",\"outcome\":\"failing\",\"clusters\":3,"
        "\"converged\":1,\"progressing\":1,\"blocked\":0,\"failing\":1,\"actions\":1},"
        "\"forcePush\":null,\"leaderElection\":null,\"clusters\":[{\"metadata\":"
        "{\"name\":\"<script>alert(1)</script>\",\"namespace\":\"prod\"},\"status\":{\"phase\":\"Running\","
        "\"readyMembers\":\"2/3\",\"leader\":\"orders-1\",\"currentVersion\":\"3.5.9\","
        "\"reason\":\"QuorumLost: 1 of 3 voting members healthy\","
        "\"lastError\":\"etcd said \\\"no\\\" <img src=x onerror=alert(2)>\","
        "\"conditions\":[{\"type\":\"Available\",\"status\":\"True\"}],"
        "\"memberDetails\":[{\"name\":\"orders-1\",\"state\":\"healthy\",\"role\":\"leader\","
        "\"version\":\"3.5.9\",\"clientURL\":\"http://127.0.0.1:2379\",\"restarts\":4}]}}]}";

static char *render(const char *status, const char *audit_log) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_http_page_render(status, audit_log, &b), 0);
        return eg_buf_steal(&b);
}

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;
        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

static void test_http__page(void **state) {
        static const char *const escaped[] = {
                "&lt;script&gt;alert(1)&lt;/script&gt;",
                ("<td class=\"bad\">QuorumLost: 1 of 3 voting members healthy; last error: etcd said &quot;no&quot; "
                 "&lt;img src=x onerror=alert(2)&gt;</td>"),
                "&lt;b&gt;bold&lt;/b&gt; &amp; co",
                "<td class=\"ok\">Running</td>",
                "<td>2/3</td>",
                "<td class=\"ok\">yes</td>",
                "<td>orders-1</td><td>prod/&lt;script&gt;",
                "<td>http://127.0.0.1:2379</td><td>4</td>",
                "clusters/x.yaml:3:7: spec.size: must be at least 1",
                "main@sha1:0123abcd",
                ("<td>clusters/x.yaml:3:7</td><td class=\"bad\">error</td>"
                 "<td>spec.size: must be &lt;at least&gt; 1</td>"),
                "<td>y.yaml:1:1</td><td class=\"warn\">warning</td><td>unknown field</td>",
                "failing at 2026-12-05T19:00:00.000Z: 3 clusters, 1 converged, 1 progressing, 0 blocked, 1 failing",
        };
        /* the only markup is the page's own: no tag a manifest or git wrote survives; no
         * audit log given, no decisions section */
        static const char *const absent[] = {"<script", "<img", "<b>", "Last decisions"};
        _cleanup_free_ char *html = render(page_status, NULL);
        assert_true(eg_str_has_prefix(html, "<!doctype html>"));
        for (size_t i = 0; i < EG_ELEMENTSOF(escaped); i++)
                if (!strstr(html, escaped[i]))
                        fail_msg("the page lacks %s", escaped[i]);
        for (size_t i = 0; i < EG_ELEMENTSOF(absent); i++)
                if (strstr(html, absent[i]))
                        fail_msg("the page has %s", absent[i]);
        assert_int_equal(count(html, "<td"), count(html, "</td>"));
        /* a failure to read the source is the first thing on the page */
        const char *source_error = strstr(html, "<strong>Source error</strong>");
        assert_non_null(source_error);
        assert_true(source_error < strstr(html, "<h2>Clusters</h2>"));

        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_http_page_render("[]", NULL, &b), -EINVAL);
        assert_int_equal(eg_http_page_render("not json", NULL, &b), -EINVAL);
        eg_buf_done(&b);
        eg_buf_init(&b, 512);
        assert_int_equal(eg_http_page_render(page_status, NULL, &b), -E2BIG);
        eg_buf_done(&b);
        _cleanup_free_ char *empty = render("{\"clusters\":[]}", NULL);
        assert_non_null(strstr(empty, "No cluster yet."));
        assert_non_null(strstr(empty, "not ready"));
        assert_null(strstr(empty, "Source diagnostics"));
        assert_null(strstr(empty, "Last pass"));
        /* a source full of errors: the first hundred, and how many more */
        struct eg_buf many;
        eg_buf_init(&many, 0);
        assert_int_equal(eg_buf_puts(&many, "{\"source\":{\"diagnostics\":["), 0);
        for (int i = 0; i < 150; i++)
                assert_int_equal(eg_buf_printf(&many,
                                               "%s{\"file\":\"f%d.yaml\",\"line\":1,\"column\":1,"
                                               "\"severity\":\"error\",\"message\":\"bad\"}",
                                               i ? "," : "", i),
                                 0);
        assert_int_equal(eg_buf_puts(&many, "]}}"), 0);
        _cleanup_free_ char *capped = render(many.data, NULL);
        eg_buf_done(&many);
        assert_non_null(strstr(capped, "<td>f99.yaml:1:1</td>"));
        assert_null(strstr(capped, "<td>f100.yaml:1:1</td>"));
        assert_non_null(strstr(capped, "<p class=\"none\">50 more in /status.</p>"));
        _cleanup_free_ char *unready = render("{\"ready\":false,\"notReady\":\"source unreadable: <gone>\"}", NULL);
        assert_non_null(strstr(unready, "<strong>Not ready</strong><pre>source unreadable: &lt;gone&gt;</pre>"));
}

static void test_http__page_decisions(void **state) {
        char path[] = "/tmp/eg-test-audit-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        close(fd);
        _cleanup_free_ char *missing = eg_strdup_printf("%s.none", path);
        _cleanup_free_ char *none = render(page_status, missing);
        assert_non_null(strstr(none, "Last decisions"));
        assert_null(strstr(none, "Cannot read"));

        /* 30 records, a long one cut by the tail's start, then a torn last line */
        struct eg_buf log;
        eg_buf_init(&log, 0);
        assert_int_equal(eg_buf_printf(&log, "{\"seq\":1,\"decision\":\"%0300000d\"}\n", 0), 0);
        for (int i = 2; i <= 31; i++)
                assert_int_equal(eg_buf_printf(&log,
                                               "{\"seq\":%d,\"time\":\"2026-01-01T00:00:%02d.000Z\","
                                               "\"cluster\":\"prod/o<i>\",\"decision\":\"add-learner\","
                                               "\"member\":\"m-%d\",\"reason\":\"grow\",\"outcome\":\"%s\"%s}\n",
                                               i, i, i, i == 31 ? "failed" : "ok",
                                               i == 31 ? ",\"error\":\"etcdserver: <too many learners>\"" : ""),
                                 0);
        assert_int_equal(eg_buf_puts(&log, "{\"seq\":32,\"decision\":\"torn"), 0);
        assert_int_equal(eg_write_file_atomic(path, log.data, log.len, 0600), 0);
        eg_buf_done(&log);
        _cleanup_free_ char *html = render(page_status, path);
        unlink(path);
        assert_int_equal(count(html, "<td>add-learner</td>"), 20);
        assert_null(strstr(html, "<td>m-11</td>"));
        assert_non_null(strstr(html, "<td>m-12</td>"));
        assert_null(strstr(html, "torn"));
        assert_null(strstr(html, "0000000000"));
        assert_non_null(strstr(html, "<td>prod/o&lt;i&gt;</td>"));
        /* newest first, a failure with its error */
        assert_true(strstr(html, "<td>m-31</td>") < strstr(html, "<td>m-30</td>"));
        assert_non_null(strstr(html, "<td class=\"bad\">failed</td><td class=\"bad\">grow: etcdserver: "
                                     "&lt;too many learners&gt;</td>"));
}

/* ---- a real server ---- */

struct server {
        pthread_t thread;
        int stop_fd;
        unsigned port;
        int start_error;
        pthread_mutex_t lock;
        pthread_cond_t started;
        bool is_started;
        bool ready;
        unsigned n_webhooks;
        struct eg_webhook_event last;
        char last_commit[80], last_why[200];
};

static bool srv_ready(void *userdata) {
        struct server *s = userdata;
        return __atomic_load_n(&s->ready, __ATOMIC_SEQ_CST);
}

static int srv_status(void *userdata, char **ret) {
        *ret = strdup("{\"clusters\":[]}");
        return *ret ? 0 : -ENOMEM;
}

static int srv_metrics(void *userdata, struct eg_buf *out) {
        struct eg_metrics *m;
        int r = eg_metrics_new(&m);
        if (r < 0)
                return r;
        eg_metrics_fetch_failed(m);
        r = eg_metrics_render(m, out);
        eg_metrics_free(m);
        return r;
}

static void srv_webhook(void *userdata, const struct eg_webhook_event *ev) {
        struct server *s = userdata;
        pthread_mutex_lock(&s->lock);
        s->n_webhooks++;
        s->last.result = ev->result;
        snprintf(s->last_commit, sizeof(s->last_commit), "%s", ev->commit ? ev->commit : "");
        snprintf(s->last_why, sizeof(s->last_why), "%s", ev->why ? ev->why : "");
        pthread_mutex_unlock(&s->lock);
}

static int on_stop(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(es), 0);
}

static void *serve(void *arg) {
        struct server *s = arg;
        sd_event *e = NULL;
        struct eg_http *h = NULL;
        struct eg_error err = {0};
        int r = sd_event_new(&e);
        if (r >= 0)
                r = sd_event_add_io(e, NULL, s->stop_fd, EPOLLIN, on_stop, s);
        if (r >= 0) {
                struct eg_http_options o = {
                        .listen = "127.0.0.1:0",
                        .max_body = 4096,
                        .handlers = {.ready = srv_ready,
                                     .status = srv_status,
                                     .metrics = srv_metrics,
                                     .webhook = srv_webhook,
                                     .userdata = s},
                };
                r = eg_http_new(e, &o, &h, &err);
        }
        if (r >= 0)
                r = eg_http_set_secret(h, secret, strlen(secret));
        pthread_mutex_lock(&s->lock);
        s->start_error = r;
        s->port = r >= 0 ? eg_http_port(h) : 0;
        s->is_started = true;
        pthread_cond_signal(&s->started);
        pthread_mutex_unlock(&s->lock);
        if (r >= 0)
                sd_event_loop(e);
        eg_http_free(h);
        sd_event_unref(e);
        eg_error_done(&err);
        return NULL;
}

struct reply {
        long status;
        struct eg_buf body, headers;
        char *content_type;
};

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        struct reply *r = userdata;
        return eg_buf_append(&r->headers, p, size * n) < 0 ? 0 : size * n;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        struct reply *r = userdata;
        return eg_buf_append(&r->body, p, size * n) < 0 ? 0 : size * n;
}

/* method NULL: GET */
static void request(const struct server *s, const char *method, const char *path, struct curl_slist *headers,
                    const char *body, size_t body_len, struct reply *ret) {
        CURL *c = curl_easy_init();
        assert_non_null(c);
        _cleanup_free_ char *url = eg_strdup_printf("http://127.0.0.1:%u%s", s->port, path);
        eg_buf_init(&ret->body, 0);
        eg_buf_init(&ret->headers, 0);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, ret);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, ret);
        if (headers)
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        if (method && strcmp(method, "POST") == 0) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
        } else if (method)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ret->status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        ret->content_type = ct ? strdup(ct) : NULL;
        eg_buf_append(&ret->body, "", 0);
        eg_buf_append(&ret->headers, "", 0);
        curl_easy_cleanup(c);
}

static void reply_done(struct reply *r) {
        eg_buf_done(&r->body);
        eg_buf_done(&r->headers);
        free(r->content_type);
}

static void server_start(struct server *s) {
        *s = (struct server){.lock = PTHREAD_MUTEX_INITIALIZER, .started = PTHREAD_COND_INITIALIZER};
        s->stop_fd = eventfd(0, EFD_CLOEXEC);
        assert_true(s->stop_fd >= 0);
        assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
        pthread_mutex_lock(&s->lock);
        while (!s->is_started)
                pthread_cond_wait(&s->started, &s->lock);
        pthread_mutex_unlock(&s->lock);
        assert_int_equal(s->start_error, 0);
        assert_true(s->port > 0);
}

static void server_stop(struct server *s) {
        uint64_t one = 1;
        assert_int_equal(write(s->stop_fd, &one, sizeof(one)), sizeof(one));
        assert_int_equal(pthread_join(s->thread, NULL), 0);
        close(s->stop_fd);
}

static void test_http__server_endpoints(void **state) {
        struct server s;
        server_start(&s);
        struct reply r;
        request(&s, NULL, "/healthz", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body.data, "ok\n");
        reply_done(&r);

        request(&s, NULL, "/readyz", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 503);
        reply_done(&r);
        __atomic_store_n(&s.ready, true, __ATOMIC_SEQ_CST);
        request(&s, NULL, "/readyz", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        reply_done(&r);

        request(&s, NULL, "/metrics", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert_non_null(strstr(r.body.data, "# TYPE etcd_gitops_source_read_failures_total counter\n"
                                            "etcd_gitops_source_read_failures_total 1\n"));
        reply_done(&r);

        request(&s, NULL, "/status", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.body.data, "{\"clusters\":[]}");
        reply_done(&r);

        request(&s, NULL, "/", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "text/html; charset=utf-8");
        assert_non_null(
                strstr(r.headers.data, "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'"));
        assert_non_null(strstr(r.body.data, "No cluster yet."));
        reply_done(&r);

        request(&s, NULL, "/nope", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 404);
        reply_done(&r);
        request(&s, NULL, "/hook", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 405);
        assert_non_null(strstr(r.headers.data, "\r\nAllow: POST\r\n"));
        reply_done(&r);
        request(&s, "DELETE", "/", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 405);
        assert_non_null(strstr(r.headers.data, "\r\nAllow: GET, HEAD\r\n"));
        reply_done(&r);
        assert_int_equal(s.n_webhooks, 0);
        server_stop(&s);
}

static void test_http__server_webhooks(void **state) {
        struct server s;
        server_start(&s);
        struct reply r;

        /* unsigned: 401, reported with the check that failed */
        const char *body = "{\"ref\":\"refs/heads/main\",\"after\":\"a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\"}";
        struct curl_slist *h = curl_slist_append(NULL, "X-GitHub-Event: push");
        request(&s, "POST", "/hook", h, body, strlen(body), &r);
        assert_int_equal(r.status, 401);
        reply_done(&r);
        assert_int_equal(s.n_webhooks, 1);
        assert_int_equal(s.last.result, EG_WEBHOOK_REJECTED);
        assert_string_equal(s.last_why, "GitHub request without X-Hub-Signature-256");
        assert_string_equal(s.last_commit, "");

        /* signed: 202 and the commit it names */
        _cleanup_free_ char *sig = sign(secret, body);
        _cleanup_free_ char *hdr = eg_strdup_printf("X-Hub-Signature-256: %s", sig);
        h = curl_slist_append(h, hdr);
        request(&s, "POST", "/hook", h, body, strlen(body), &r);
        assert_int_equal(r.status, 202);
        reply_done(&r);
        curl_slist_free_all(h);
        assert_int_equal(s.n_webhooks, 2);
        assert_int_equal(s.last.result, EG_WEBHOOK_ACCEPTED);
        assert_string_equal(s.last_commit, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");

        /* GitLab token, wrong then right */
        h = curl_slist_append(NULL, "X-Gitlab-Token: nope");
        request(&s, "POST", "/hook", h, "{}", 2, &r);
        assert_int_equal(r.status, 401);
        reply_done(&r);
        curl_slist_free_all(h);
        _cleanup_free_ char *tok = eg_strdup_printf("X-Gitlab-Token: %s", secret);
        h = curl_slist_append(NULL, tok);
        request(&s, "POST", "/hook", h, "{}", 2, &r);
        assert_int_equal(r.status, 202);
        reply_done(&r);
        curl_slist_free_all(h);

        /* over the 4 KiB limit of this server: 413, whether announced or streamed */
        char *big = malloc(8192);
        assert_non_null(big);
        memset(big, 'x', 8192);
        h = curl_slist_append(NULL, tok);
        request(&s, "POST", "/hook", h, big, 8192, &r);
        assert_int_equal(r.status, 413);
        reply_done(&r);
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
        request(&s, "POST", "/hook", h, big, 8192, &r);
        assert_int_equal(r.status, 413);
        reply_done(&r);
        curl_slist_free_all(h);
        free(big);
        assert_int_equal(s.last.result, EG_WEBHOOK_TOO_LARGE);
        assert_int_equal(s.n_webhooks, 6);
        server_stop(&s);
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http__github_signature),
                cmocka_unit_test(test_http__gitlab_token),
                cmocka_unit_test(test_http__generic_signature),
                cmocka_unit_test(test_http__payload_commit),
                cmocka_unit_test(test_http__parse_listen),
                cmocka_unit_test(test_http__secret_file),
                cmocka_unit_test(test_http__page),
                cmocka_unit_test(test_http__page_decisions),
                cmocka_unit_test(test_http__server_endpoints),
                cmocka_unit_test(test_http__server_webhooks),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return r;
}
