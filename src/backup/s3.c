/* S3: credentials, URLs, and the requests backups need, signed by libcurl's SigV4. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "internal.h"
#include "s3_xml.h"

#define S3_REPLY_MAX ((size_t)16 << 20)
#define S3_CONNECT_TIMEOUT_MS 10000
/* a request that moves no byte for this long fails (and is tried again) */
#define S3_STALL_MIN_S 2L
#define S3_STALL_MAX_S 60L
#define S3_MAX_PAGES 10000
/* tries of one request that fails as a moment's trouble does; the waits between them add up
 * to at most 250 + 500 + 1000 + 2000 ms */
#define S3_MAX_TRIES 5
#define S3_BACKOFF_BASE_MS 250

/* ---- requests ---- */

struct s3 {
        CURL *h;
        const atomic_bool *cancel;
        struct eg_s3_credentials cred;
        char *endpoint;
        bool path_style;
        char *sigv4;
        int64_t deadline_ms; /* monotonic; 0: none */
        long stall_s;
        char errbuf[CURL_ERROR_SIZE];
};

void s3_set_deadline(struct s3 *s, int64_t deadline_ms) {
        s->deadline_ms = deadline_ms;
        s->stall_s = S3_STALL_MAX_S;
        if (deadline_ms <= 0)
                return;
        /* a quarter of the time left: a stalled request is cut early enough to try it again */
        int64_t quarter_s = (deadline_ms - eg_now_monotonic_ms()) / 4000;
        s->stall_s = quarter_s < S3_STALL_MIN_S   ? S3_STALL_MIN_S
                     : quarter_s > S3_STALL_MAX_S ? S3_STALL_MAX_S
                                                  : (long)quarter_s;
}

int s3_new(const struct eg_backup_store *store, struct s3 **ret, struct eg_error *err) {
        struct s3 *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int r = eg_s3_credentials_load(store->credentials_file, &s->cred, err);
        if (r < 0)
                goto fail;
        s->path_style = store->force_path_style;
        s->cancel = store->cancel;
        s3_set_deadline(s, store->deadline_ms);
        s->endpoint = store->endpoint && *store->endpoint ? strdup(store->endpoint) : NULL;
        s->sigv4 = eg_strdup_printf("aws:amz:%s:s3", s->cred.region);
        s->h = curl_easy_init();
        if ((store->endpoint && *store->endpoint && !s->endpoint) || !s->sigv4 || !s->h) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        s3_free(s);
        return r;
}

void s3_free(struct s3 *s) {
        if (!s)
                return;
        if (s->h)
                curl_easy_cleanup(s->h);
        eg_s3_credentials_done(&s->cred);
        free(s->endpoint);
        free(s->sigv4);
        free(s);
}

/* One S3 operation: what it sends, and what messages call it. */
struct op {
        const char *name;                          /* as S3's API reference does: "UploadPart" */
        unsigned part;                             /* UploadPart's number */
        const char *method, *bucket, *key, *query; /* key and query may be NULL */
        const void *body;                          /* NULL: none */
        size_t len;
        const char *type; /* body's Content-Type */
        bool md5;         /* with a Content-MD5 (DeleteObjects requires one) */
};

struct reply {
        struct s3 *s;
        struct eg_buf body;
        bk_sink sink; /* a 2xx body goes here instead of body */
        void *userdata;
        int sink_error;
        bool sunk; /* the sink has had bytes: the request cannot be tried again */
        char *etag;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        struct reply *rp = userdata;
        size_t n = size * nmemb;
        long status = 0;
        curl_easy_getinfo(rp->s->h, CURLINFO_RESPONSE_CODE, &status);
        if (rp->sink && status / 100 == 2) {
                rp->sunk = true;
                int r = rp->sink(data, n, rp->userdata);
                if (r < 0) {
                        rp->sink_error = r;
                        return 0;
                }
                return n;
        }
        return eg_buf_append(&rp->body, data, n) < 0 ? 0 : n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata) {
        struct reply *rp = userdata;
        size_t n = size * nmemb;
        if (n > 5 && strncasecmp(data, "etag:", 5) == 0 && !rp->etag) {
                const char *v = data + 5, *end = data + n;
                while (v < end && isspace((unsigned char)*v))
                        v++;
                while (end > v && isspace((unsigned char)end[-1]))
                        end--;
                rp->etag = strndup(v, (size_t)(end - v));
        }
        return n;
}

static bool cancelled(const struct s3 *s) { return s->cancel && atomic_load(s->cancel); }

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
        return cancelled(userdata);
}

static void op_error(struct eg_error *err, const struct op *o, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void op_error(struct eg_error *err, const struct op *o, const char *fmt, ...) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        va_list ap;
        va_start(ap, fmt);
        eg_buf_printf(&b, "s3 %s %s/%s", o->name, o->bucket, o->key ? o->key : "");
        if (o->part)
                eg_buf_printf(&b, " (part %u)", o->part);
        eg_buf_puts(&b, ": ");
        eg_buf_vprintf(&b, fmt, ap);
        va_end(ap);
        eg_error_set(err, "%s", b.data ? b.data : o->name);
        eg_buf_done(&b);
}

static char *content_md5_header(const void *data, size_t len) {
        unsigned char raw[16];
        unsigned int n = sizeof(raw);
        unsigned char b64[25];
        if (!EVP_Digest(data, len, raw, &n, EVP_md5(), NULL) || n != sizeof(raw))
                return NULL;
        EVP_EncodeBlock(b64, raw, (int)sizeof(raw));
        return eg_strdup_printf("Content-MD5: %s", (const char *)b64);
}

/* The headers curl's SigV4 signs besides Host and x-amz-date: every one of them is sent (an
 * empty "Name:" entry, which tells curl to drop a header, is signed by libcurl before 8.3 and
 * not sent, so there is none: curl's own "Expect: 100-continue" goes unsigned). */
static int op_headers(const struct s3 *s, const struct op *o, struct curl_slist **ret) {
        char sha[65];
        /* S3 wants the payload hash as a header; curl's SigV4 then signs that same value */
        eg_sha256_hex(o->body ? o->body : "", o->body ? o->len : 0, sha);
        _cleanup_free_ char *hash = eg_strdup_printf("x-amz-content-sha256: %s", sha);
        /* a body's own type: curl would send its form type, and S3 keeps the one an upload
         * is created with as the object's */
        _cleanup_free_ char *type = o->body ? eg_strdup_printf("Content-Type: %s", o->type) : NULL;
        _cleanup_free_ char *md5 = o->md5 ? content_md5_header(o->body, o->len) : NULL;
        _cleanup_free_ char *token = s->cred.session_token
                                             ? eg_strdup_printf("x-amz-security-token: %s", s->cred.session_token)
                                             : NULL;
        const struct {
                bool wanted;
                const char *line;
        } h[] = {{true, hash}, {o->body != NULL, type}, {o->md5, md5}, {s->cred.session_token != NULL, token}};
        struct curl_slist *l = NULL;
        for (size_t i = 0; i < EG_ELEMENTSOF(h); i++) {
                if (!h[i].wanted)
                        continue;
                struct curl_slist *t = h[i].line ? curl_slist_append(l, h[i].line) : NULL;
                if (!t) {
                        curl_slist_free_all(l);
                        return -ENOMEM;
                }
                l = t;
        }
        *ret = l;
        return 0;
}

static bool curl_transient(CURLcode cc) {
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT: /* a stall, or a connect that took too long */
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return true;
        default:
                return false;
        }
}

/* what AWS asks clients to try again after */
static bool http_transient(long status, const char *code) {
        static const char *const codes[] = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"};
        for (size_t i = 0; code && i < EG_ELEMENTSOF(codes); i++)
                if (strcmp(code, codes[i]) == 0)
                        return true;
        return status == 500 || status == 502 || status == 503 || status == 504;
}

/* One try of o to url. A non-2xx status (or an <Error> document) is -EIO (-ENOENT for 404,
 * -EACCES for 403) with S3's Code and Message in err. *ret_again: the failure is a moment's
 * trouble that another try may not meet. */
/* Sets s's handle up for one try of o at url, with left ms before the deadline. */
static void request_setup(struct s3 *s, const struct op *o, const char *url, struct curl_slist *hdrs, int64_t left,
                          struct reply *rp) {
        CURL *h = s->h;
        /* reset drops the previous request's options but keeps the connection */
        curl_easy_reset(h);
        s->errbuf[0] = 0;
        rp->s = s;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "etcd-gitops/" EG_VERSION);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)(left < S3_CONNECT_TIMEOUT_MS ? left : S3_CONNECT_TIMEOUT_MS));
        if (s->deadline_ms > 0)
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->stall_s);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(h, CURLOPT_USERNAME, s->cred.access_key_id);
        curl_easy_setopt(h, CURLOPT_PASSWORD, s->cred.secret_access_key);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, rp);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, rp);
        /* a DELETE cleans up (an aborted upload): it runs even when cancelled */
        if (s->cancel && strcmp(o->method, "DELETE") != 0) {
                curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
                curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
                curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        }
        if (o->body) {
                /* postfields, not a read callback: curl's SigV4 then signs the payload hash */
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->len);
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->len ? o->body : "");
        }
        if (strcmp(o->method, "GET") == 0)
                curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        else
                curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, o->method);
}

static int request_once(struct s3 *s, const struct op *o, const char *url, struct curl_slist *hdrs, struct reply *rp,
                        bool *ret_again, struct eg_error *err) {
        *ret_again = false;
        eg_buf_reset(&rp->body);
        free(rp->etag);
        rp->etag = NULL;
        rp->sink_error = 0;
        int64_t left = s->deadline_ms > 0 ? s->deadline_ms - eg_now_monotonic_ms() : INT64_MAX;
        if (left <= 0) {
                op_error(err, o, "no time left before the deadline");
                return -ETIMEDOUT;
        }
        CURL *h = s->h;
        request_setup(s, o, url, hdrs, left, rp);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        if (rp->sink_error < 0) {
                op_error(err, o, "%s", strerror(-rp->sink_error));
                return rp->sink_error;
        }
        if (cc == CURLE_ABORTED_BY_CALLBACK) {
                op_error(err, o, "cancelled: etcd-gitops is stopping");
                return -ECANCELED;
        }
        if (cc != CURLE_OK) {
                bool late = s->deadline_ms > 0 && eg_now_monotonic_ms() >= s->deadline_ms;
                *ret_again = curl_transient(cc) && !late && !rp->sunk;
                op_error(err, o, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
                return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
                       : cc == CURLE_COULDNT_CONNECT  ? -ECONNREFUSED
                       : curl_transient(cc)           ? -ECONNRESET
                                                      : -EIO;
        }
        if (status / 100 != 2 || s3_xml_is_error(rp->body.data)) {
                _cleanup_free_ char *code = s3_xml_text(rp->body.data, "Code", NULL),
                                    *msg = s3_xml_text(rp->body.data, "Message", NULL);
                *ret_again = http_transient(status, code) && !rp->sunk;
                op_error(err, o, "HTTP %ld%s%s%s%s", status, code ? " " : "", code ? code : "", msg ? ": " : "",
                         msg ? msg : "");
                return status == 404 ? -ENOENT : status == 403 ? -EACCES : -EIO;
        }
        return 0;
}

/* How long to wait before try n + 1: between half and all of S3_BACKOFF_BASE_MS << (n - 1),
 * at random, so that parts and daemons that failed together do not come back together. */
static int64_t backoff_ms(unsigned n) {
        int64_t span = (int64_t)S3_BACKOFF_BASE_MS << (n - 1);
        uint32_t rnd;
        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
                rnd = (uint32_t)eg_now_monotonic_ms();
        return span / 2 + (int64_t)(rnd % (uint32_t)(span / 2 + 1));
}

/* false when cancelled meanwhile */
static bool backoff_wait(const struct s3 *s, int64_t ms) {
        int64_t until = eg_now_monotonic_ms() + ms;
        for (int64_t now; !cancelled(s) && (now = eg_now_monotonic_ms()) < until;) {
                /* in slices, to notice a cancel */
                int64_t slice = until - now < 100 ? until - now : 100;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
                nanosleep(&ts, NULL);
        }
        return !cancelled(s);
}

/* o, signed, tried up to S3_MAX_TRIES times while it fails as a moment's trouble does (5xx,
 * SlowDown, a reset, a stall), within the deadline; a GET whose body has begun to reach the
 * sink is not tried again. Returns as request_once; err has the last try's failure. */
static int request(struct s3 *s, const struct op *o, struct reply *rp, struct eg_error *err) {
        _cleanup_free_ char *url = eg_s3_url(s->endpoint, s->cred.region, s->path_style, o->bucket, o->key, o->query);
        if (!url)
                return -ENOMEM;
        struct curl_slist *hdrs = NULL;
        int r = op_headers(s, o, &hdrs);
        if (r < 0)
                return r;
        /* err is the caller's only when all tries failed */
        struct eg_error last = {0};
        for (unsigned n = 1;; n++) {
                bool again;
                r = request_once(s, o, url, hdrs, rp, &again, &last);
                if (r >= 0 || !again)
                        break;
                if (n == S3_MAX_TRIES) {
                        eg_error_set(&last, "%s (tried %u times)", last.message ? last.message : strerror(-r), n);
                        break;
                }
                int64_t wait = backoff_ms(n);
                /* the deadline's message says the rest */
                if (s->deadline_ms > 0 && eg_now_monotonic_ms() + wait >= s->deadline_ms)
                        break;
                if (!backoff_wait(s, wait)) {
                        op_error(&last, o, "cancelled: etcd-gitops is stopping");
                        r = -ECANCELED;
                        break;
                }
        }
        curl_slist_free_all(hdrs);
        if (r < 0 && last.message)
                eg_error_set(err, "%s", last.message);
        eg_error_done(&last);
        return r;
}

static void reply_done(struct reply *rp) {
        eg_buf_done(&rp->body);
        free(rp->etag);
}

static struct reply reply_new(void) {
        struct reply rp = {0};
        eg_buf_init(&rp.body, S3_REPLY_MAX);
        return rp;
}

int s3_put(struct s3 *s, const char *bucket, const char *key, const void *data, size_t len, struct eg_error *err) {
        struct reply rp = reply_new();
        const struct op o = {.name = "PutObject",
                             .method = "PUT",
                             .bucket = bucket,
                             .key = key,
                             .body = data,
                             .len = len,
                             .type = "application/octet-stream"};
        int r = request(s, &o, &rp, err);
        reply_done(&rp);
        return r;
}

int s3_multipart_create(struct s3 *s, const char *bucket, const char *key, char **ret_upload_id, struct eg_error *err) {
        struct reply rp = reply_new();
        /* no body, but the object's type, which S3 takes from this request */
        const struct op o = {.name = "CreateMultipartUpload",
                             .method = "POST",
                             .bucket = bucket,
                             .key = key,
                             .query = "uploads=",
                             .body = "",
                             .len = 0,
                             .type = "application/octet-stream"};
        int r = request(s, &o, &rp, err);
        if (r >= 0) {
                char *id = s3_xml_text(rp.body.data, "UploadId", NULL);
                if (!id || !*id) {
                        free(id);
                        op_error(err, &o, "no UploadId in the reply");
                        r = -EBADMSG;
                } else
                        *ret_upload_id = id;
        }
        reply_done(&rp);
        return r;
}

static char *upload_query(const char *upload_id, unsigned part) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        /* parameters sorted and escaped already: the canonical form SigV4 signs */
        int r = part ? eg_buf_printf(&b, "partNumber=%u&uploadId=", part) : eg_buf_puts(&b, "uploadId=");
        if (r >= 0)
                r = s3_append_escaped(&b, upload_id, false);
        if (r < 0) {
                eg_buf_done(&b);
                return NULL;
        }
        return eg_buf_steal(&b);
}

int s3_multipart_part(struct s3 *s, const char *bucket, const char *key, const char *upload_id, unsigned part,
                      const void *data, size_t len, char **ret_etag, struct eg_error *err) {
        _cleanup_free_ char *q = upload_query(upload_id, part);
        if (!q)
                return -ENOMEM;
        struct reply rp = reply_new();
        const struct op o = {.name = "UploadPart",
                             .part = part,
                             .method = "PUT",
                             .bucket = bucket,
                             .key = key,
                             .query = q,
                             .body = data,
                             .len = len,
                             .type = "application/octet-stream"};
        int r = request(s, &o, &rp, err);
        if (r >= 0 && !rp.etag) {
                op_error(err, &o, "no ETag in the reply");
                r = -EBADMSG;
        }
        if (r >= 0)
                *ret_etag = TAKE_PTR(rp.etag);
        reply_done(&rp);
        return r;
}

/* open, text escaped for XML, close. */
static int put_element(struct eg_buf *b, const char *open, const char *text, const char *close) {
        int r = eg_buf_puts(b, open);
        if (r >= 0)
                r = s3_xml_escape(b, text);
        if (r >= 0)
                r = eg_buf_puts(b, close);
        return r;
}

int s3_multipart_complete(struct s3 *s, const char *bucket, const char *key, const char *upload_id, char *const *etags,
                          size_t n, struct eg_error *err) {
        _cleanup_free_ char *q = upload_query(upload_id, 0);
        if (!q)
                return -ENOMEM;
        struct eg_buf body;
        eg_buf_init(&body, 0);
        int r = eg_buf_puts(&body, "<CompleteMultipartUpload>");
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = eg_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber>", i + 1);
                if (r >= 0)
                        r = put_element(&body, "<ETag>", etags[i], "</ETag></Part>");
        }
        if (r >= 0)
                r = eg_buf_puts(&body, "</CompleteMultipartUpload>");
        struct reply rp = reply_new();
        const struct op o = {.name = "CompleteMultipartUpload",
                             .method = "POST",
                             .bucket = bucket,
                             .key = key,
                             .query = q,
                             .body = body.data,
                             .len = body.len,
                             .type = "application/xml"};
        if (r >= 0)
                r = request(s, &o, &rp, err);
        reply_done(&rp);
        eg_buf_done(&body);
        return r;
}

int s3_multipart_abort(struct s3 *s, const char *bucket, const char *key, const char *upload_id, struct eg_error *err) {
        _cleanup_free_ char *q = upload_query(upload_id, 0);
        if (!q)
                return -ENOMEM;
        struct reply rp = reply_new();
        const struct op o = {
                .name = "AbortMultipartUpload", .method = "DELETE", .bucket = bucket, .key = key, .query = q};
        int r = request(s, &o, &rp, err);
        reply_done(&rp);
        return r;
}

int s3_list(struct s3 *s, const char *bucket, const char *prefix, char ***ret, size_t *ret_n, struct eg_error *err) {
        char **v = NULL;
        size_t n = 0, alloc = 0;
        _cleanup_free_ char *token = NULL;
        int r = 0;
        for (int page = 0; page < S3_MAX_PAGES; page++) {
                struct eg_buf q;
                eg_buf_init(&q, 0);
                if (token) {
                        eg_buf_puts(&q, "continuation-token=");
                        s3_append_escaped(&q, token, false);
                        eg_buf_puts(&q, "&");
                }
                eg_buf_puts(&q, "list-type=2&prefix=");
                r = s3_append_escaped(&q, prefix, false);
                struct reply rp = reply_new();
                const struct op o = {.name = "ListObjectsV2", .method = "GET", .bucket = bucket, .query = q.data};
                if (r >= 0)
                        r = request(s, &o, &rp, err);
                eg_buf_done(&q);
                free(token);
                token = NULL;
                if (r >= 0)
                        r = s3_xml_list_page(rp.body.data, &v, &n, &alloc, &token);
                reply_done(&rp);
                if (r < 0 || !token)
                        break;
        }
        if (r < 0) {
                eg_strv_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int s3_delete_objects(struct s3 *s, const char *bucket, const char *const *keys, size_t n, bool *ret_deleted,
                      struct eg_error *err) {
        for (size_t i = 0; i < n; i++)
                ret_deleted[i] = false;
        struct eg_buf body;
        eg_buf_init(&body, 0);
        /* quiet: the reply lists only the keys that failed */
        int r = eg_buf_puts(&body, "<Delete><Quiet>true</Quiet>");
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = put_element(&body, "<Object><Key>", keys[i], "</Key></Object>");
        }
        if (r >= 0)
                r = eg_buf_puts(&body, "</Delete>");
        struct reply rp = reply_new();
        const struct op o = {.name = "DeleteObjects",
                             .method = "POST",
                             .bucket = bucket,
                             .query = "delete=",
                             .body = body.data,
                             .len = body.len,
                             .type = "application/xml",
                             .md5 = true};
        if (r >= 0)
                r = request(s, &o, &rp, err);
        eg_buf_done(&body);
        if (r < 0) {
                reply_done(&rp);
                return r;
        }
        for (size_t i = 0; i < n; i++)
                ret_deleted[i] = true;
        _cleanup_free_ char *key = NULL, *code = NULL, *msg = NULL;
        size_t failed = s3_xml_delete_errors(rp.body.data, keys, n, ret_deleted, &key, &code, &msg);
        if (failed > 0)
                op_error(err, &o, "%s: %s%s%s", key ? key : "?", code ? code : "error", msg ? ": " : "",
                         msg ? msg : "");
        if (failed > 1)
                eg_error_set(err, "%s (and %zu more keys not deleted)", err->message ? err->message : "", failed - 1);
        reply_done(&rp);
        return failed ? -EIO : 0;
}

int s3_get(struct s3 *s, const char *bucket, const char *key, bk_sink sink, void *userdata, struct eg_error *err) {
        struct reply rp = reply_new();
        rp.sink = sink;
        rp.userdata = userdata;
        const struct op o = {.name = "GetObject", .method = "GET", .bucket = bucket, .key = key};
        int r = request(s, &o, &rp, err);
        reply_done(&rp);
        return r;
}
