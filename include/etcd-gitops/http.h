/* http: the daemon's HTTP endpoints (the status page at /, /healthz, /readyz, /status,
 * /metrics, POST /hook) served by libmicrohttpd on the daemon's sd-event loop, and the
 * webhook checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "etcd-gitops/metrics.h"
#include "etcd-gitops/util.h"

#define EG_HTTP_DEFAULT_LISTEN "127.0.0.1:9630"
#define EG_HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)

/* ---- webhook checks (pure; no I/O) ---- */

/* The headers that matter, NULL when absent, and the raw body. */
struct eg_webhook_request {
        const char *github_event;     /* X-GitHub-Event */
        const char *github_signature; /* X-Hub-Signature-256: sha256=<hex> */
        const char *gitlab_token;     /* X-Gitlab-Token */
        const char *signature;        /* X-Signature: sha256=<hex> (generic) */
        const void *body;
        size_t body_len;
};

/* Checks a push notification against the secret: GitHub (HMAC-SHA256 of the body in
 * X-Hub-Signature-256), GitLab (X-Gitlab-Token equal to the secret) or generic
 * (HMAC-SHA256 in X-Signature), comparing in constant time. Returns 0 when authentic,
 * 1 when authentic and a GitHub ping, -EACCES otherwise with *ret_why naming the check
 * that failed (a static string that never contains the secret). A NULL or empty secret
 * fails every request. */
int eg_webhook_verify(const struct eg_webhook_request *req, const void *secret, size_t secret_len,
                      const char **ret_why);

/* The commit a push payload names (GitHub "after", GitLab "checkout_sha", generic
 * "commit"), lowercased, when it is 4 to 64 hex digits and not all zeros (a deleted
 * branch); else NULL. Caller frees. */
char *eg_webhook_commit(const void *body, size_t len);

/* ---- the server ---- */

struct eg_webhook_event {
        enum eg_webhook_result result;
        const char *remote; /* client address as text */
        const char *why;    /* REJECTED: the check that failed */
        const char *commit; /* ACCEPTED: what the payload names, or NULL */
};

/* What the endpoints ask the daemon. Called on the loop; none may block for long. */
struct eg_http_handlers {
        bool (*ready)(void *userdata);
        /* Optional: the body of /readyz's 503, one line saying why (malloc'd, caller frees;
         * NULL: "not ready"). */
        char *(*unready_why)(void *userdata);
        /* /status body: a JSON document (malloc'd, caller frees); also what / shows. */
        int (*status)(void *userdata, char **ret);
        /* /metrics body appended to out. */
        int (*metrics)(void *userdata, struct eg_buf *out);
        /* Every POST /hook after its response is queued. */
        void (*webhook)(void *userdata, const struct eg_webhook_event *ev);
        void *userdata;
};

struct eg_http_options {
        const char *listen;    /* "HOST:PORT" or "[V6]:PORT"; port 0 picks a free one */
        size_t max_body;       /* POST /hook payload limit; 0 = EG_HTTP_DEFAULT_MAX_BODY */
        const char *audit_log; /* the page shows its last records; NULL: no decisions on the page */
        struct eg_http_handlers handlers;
};

struct eg_http;

/* Parses "HOST:PORT" or "[V6ADDR]:PORT" (HOST may be a name; resolved once, the first
 * address is used). -EINVAL with a message in err when malformed or unresolvable. */
int eg_http_parse_listen(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, struct eg_error *err);

/* Binds and starts serving on the loop e (sources at SD_EVENT_PRIORITY_IMPORTANT so a
 * response goes out before the work it triggers). */
int eg_http_new(sd_event *e, const struct eg_http_options *opt, struct eg_http **ret, struct eg_error *err);
/* Stops serving and closes every connection. Accepts NULL. */
void eg_http_free(struct eg_http *h);
/* Replaces the webhook secret (copied); NULL or empty refuses every webhook. */
int eg_http_set_secret(struct eg_http *h, const void *secret, size_t len);
/* The port bound (useful after asking for port 0). */
unsigned eg_http_port(const struct eg_http *h);

/* The status page: the /status document status (JSON text) as HTML, with the last records
 * of the audit log at audit_log when not NULL (read from the file's tail only), appended to
 * out. Every string of the document and the log is escaped; the page runs no script and
 * loads nothing. -EINVAL when status is not a JSON object, or out's error when it is full. */
int eg_http_page_render(const char *status, const char *audit_log, struct eg_buf *out);

/* Reads a secret file (at most 64 KiB), dropping trailing whitespace; -ENODATA when
 * nothing is left. *ret is malloc'd; the caller wipes and frees it. */
int eg_webhook_secret_read(const char *path, char **ret, size_t *ret_len);
