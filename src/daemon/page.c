/* The status page of GET /: the /status document and the audit log's last records as one
 * HTML page that needs no JavaScript and fetches nothing. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/http.h"

/* a long audit log costs no more to show than a short one */
#define AUDIT_TAIL_BYTES ((size_t)256 << 10)
#define DECISIONS_SHOWN 20
/* a source full of errors still makes a page that loads */
#define DIAGNOSTICS_SHOWN 100

/* The page being written: the first failed append is kept and every later one skipped,
 * so the writers below check nothing and the caller checks once. */
struct page {
        struct eg_buf *out;
        int error;
};

static void put(struct page *p, const char *s) {
        if (p->error >= 0)
                p->error = eg_buf_puts(p->out, s);
}

/* Text from the document or the log, where any byte may come from a manifest. */
static void put_text(struct page *p, const char *s) {
        static const char specials[] = "&<>\"'";
        static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
        for (; s && *s && p->error >= 0; s++) {
                const char *special = strchr(specials, *s);
                if (special)
                        put(p, entities[special - specials]);
                else
                        p->error = eg_buf_append(p->out, s, 1);
        }
}

static const char *str(const json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }
static const char *either(const char *a, const char *b) { return a ? a : b; }

/* "WHY<sep>ERROR" when there are both (malloc'd), else NULL: see either(). */
static char *joined(const char *why, const char *sep, const char *error) {
        return why && error ? eg_strdup_printf("%s%s%s", why, sep, error) : NULL;
}

/* A table cell; cls is one of this file's literals, never data. */
static void cell(struct page *p, const char *cls, const char *text) {
        put(p, cls ? "<td class=\"" : "<td>");
        if (cls) {
                put(p, cls);
                put(p, "\">");
        }
        put_text(p, text);
        put(p, "</td>");
}

static void row_end(struct page *p) { put(p, "</tr>\n"); }

static void heading(struct page *p, const char *title, const char *const *columns) {
        put(p, "<h2>");
        put(p, title);
        put(p, "</h2>\n<table><tr>");
        for (; *columns; columns++) {
                put(p, "<th>");
                put(p, *columns);
                put(p, "</th>");
        }
        row_end(p);
}

static void table_end(struct page *p) { put(p, "</table>\n"); }

/* before LABEL between TEXT after, only TEXT coming from outside; nothing without text. */
static void labelled(struct page *p, const char *before, const char *label, const char *between, const char *text,
                     const char *after) {
        if (!text || !*text)
                return;
        put(p, before);
        put(p, label);
        put(p, between);
        put_text(p, text);
        put(p, after);
}

static void field(struct page *p, const char *name, const char *value) {
        labelled(p, "<dt>", name, "</dt><dd>", value, "</dd>\n");
}

static void error_box(struct page *p, const char *title, const char *text) {
        labelled(p, "<div class=\"error\"><strong>", title, "</strong><pre>", text, "</pre></div>\n");
}

static const char *phase_class(const char *phase) {
        if (phase && strcmp(phase, "Running") == 0)
                return "ok";
        return phase && strcmp(phase, "Failed") == 0 ? "bad" : "warn";
}

static const json_t *condition(const json_t *status, const char *type) {
        size_t i;
        const json_t *c;
        json_array_foreach(json_object_get(status, "conditions"), i, c) {
                const char *t = str(c, "type");
                if (t && strcmp(t, type) == 0)
                        return c;
        }
        return NULL;
}

/* "namespace/name", malloc'd (NULL when out of memory). */
static char *cluster_name(const json_t *cluster) {
        const json_t *md = json_object_get(cluster, "metadata");
        return eg_strdup_printf("%s/%s", either(str(md, "namespace"), "?"), either(str(md, "name"), "?"));
}

static void cluster_row(struct page *p, const json_t *cluster) {
        const json_t *st = json_object_get(cluster, "status");
        _cleanup_free_ char *name = cluster_name(cluster);
        const char *phase = str(st, "phase");
        const char *available = str(condition(st, "Available"), "status");
        bool quorum = available && strcmp(available, "True") == 0;
        const char *why = either(str(st, "reason"), str(st, "planReason")), *error = str(st, "lastError");
        _cleanup_free_ char *both = joined(why, "; last error: ", error);
        put(p, "<tr>");
        cell(p, NULL, either(name, "?"));
        cell(p, phase_class(phase), phase);
        cell(p, NULL, str(st, "readyMembers"));
        cell(p, NULL, either(str(st, "leader"), "none"));
        cell(p, available ? (quorum ? "ok" : "bad") : NULL, available ? (quorum ? "yes" : "lost") : "unknown");
        cell(p, NULL, str(st, "currentVersion"));
        cell(p, error ? "bad" : NULL, either(both, either(error, why)));
        row_end(p);
}

static const char *state_class(const char *state) {
        if (state && strcmp(state, "healthy") == 0)
                return "ok";
        if (state && (strcmp(state, "starting") == 0 || strcmp(state, "no-leader") == 0))
                return "warn";
        return "bad";
}

static void member_rows(struct page *p, const json_t *cluster) {
        _cleanup_free_ char *cname = cluster_name(cluster);
        size_t i;
        const json_t *m;
        json_array_foreach(json_object_get(json_object_get(cluster, "status"), "memberDetails"), i, m) {
                _cleanup_free_ char *restarts = eg_strdup_printf(
                        "%lld", (long long)json_integer_value(json_object_get(m, "restarts")));
                put(p, "<tr>");
                cell(p, NULL, str(m, "name"));
                cell(p, NULL, either(cname, "?"));
                cell(p, state_class(str(m, "state")), str(m, "state"));
                cell(p, NULL, str(m, "role"));
                cell(p, NULL, str(m, "version"));
                cell(p, NULL, str(m, "clientURL"));
                cell(p, NULL, restarts);
                cell(p, NULL, str(m, "lifeReason"));
                row_end(p);
        }
}

static void clusters_section(struct page *p, const json_t *clusters) {
        static const char *const ccols[] = {"Cluster", "Phase",   "Ready",   "Leader",
                                            "Quorum",  "Version", "Message", NULL};
        static const char *const mcols[] = {"Member",     "Cluster",  "State",  "Role", "Version",
                                            "Client URL", "Restarts", "Reason", NULL};
        size_t i;
        const json_t *c;
        heading(p, "Clusters", ccols);
        json_array_foreach(clusters, i, c) cluster_row(p, c);
        table_end(p);
        if (json_array_size(clusters) == 0)
                put(p, "<p class=\"none\">No cluster yet.</p>\n");
        heading(p, "Members", mcols);
        json_array_foreach(clusters, i, c) member_rows(p, c);
        table_end(p);
}

static const char *severity_class(const char *severity) {
        return severity && strcmp(severity, "error") == 0 ? "bad" : "warn";
}

/* The errors and warnings of the revision in force, where each is: none, no section. */
static void diagnostics_section(struct page *p, const json_t *doc) {
        static const char *const cols[] = {"Where", "Severity", "Message", NULL};
        const json_t *diags = json_object_get(json_object_get(doc, "source"), "diagnostics");
        size_t i;
        const json_t *dg;
        if (json_array_size(diags) == 0)
                return;
        heading(p, "Source diagnostics", cols);
        json_array_foreach(diags, i, dg) {
                if (i == DIAGNOSTICS_SHOWN)
                        break;
                _cleanup_free_ char *where = eg_strdup_printf(
                        "%s:%lld:%lld", either(str(dg, "file"), "?"),
                        (long long)json_integer_value(json_object_get(dg, "line")),
                        (long long)json_integer_value(json_object_get(dg, "column")));
                const char *field = str(dg, "field"), *message = str(dg, "message");
                _cleanup_free_ char *both = joined(field, ": ", message);
                put(p, "<tr>");
                cell(p, NULL, either(where, "?"));
                cell(p, severity_class(str(dg, "severity")), str(dg, "severity"));
                cell(p, NULL, either(both, message));
                row_end(p);
        }
        table_end(p);
        _cleanup_free_ char *more = json_array_size(diags) > DIAGNOSTICS_SHOWN
                                            ? eg_strdup_printf("%zu more in /status.",
                                                               json_array_size(diags) - DIAGNOSTICS_SHOWN)
                                            : NULL;
        labelled(p, "<p class=\"none\">", "", "", more, "</p>\n");
}

/* "converged: 3 clusters, 3 converged, 0 progressing, 0 blocked, 0 failing", malloc'd;
 * NULL before the first pass. */
static char *last_pass_text(const json_t *doc) {
        const json_t *lp = json_object_get(doc, "lastPass");
        if (!json_is_object(lp))
                return NULL;
        const char *error = str(lp, "error");
        return eg_strdup_printf("%s at %s: %lld clusters, %lld converged, %lld progressing, %lld blocked, %lld "
                                "failing%s%s",
                                either(str(lp, "outcome"), "?"), either(str(lp, "time"), "?"),
                                (long long)json_integer_value(json_object_get(lp, "clusters")),
                                (long long)json_integer_value(json_object_get(lp, "converged")),
                                (long long)json_integer_value(json_object_get(lp, "progressing")),
                                (long long)json_integer_value(json_object_get(lp, "blocked")),
                                (long long)json_integer_value(json_object_get(lp, "failing")), error ? ": " : "",
                                error ? error : "");
}

static void source_section(struct page *p, const json_t *doc) {
        const json_t *src = json_object_get(doc, "source");
        const json_t *fp = json_object_get(doc, "forcePush");
        put(p, "<h2>Source</h2>\n<dl>\n");
        field(p, "Kind", str(src, "kind"));
        field(p, "Revision", str(src, "revision"));
        field(p, "Commit", str(src, "commit"));
        field(p, "Subject", str(src, "subject"));
        field(p, "Author", str(src, "author"));
        field(p, "Last read", str(src, "lastRead"));
        _cleanup_free_ char *pass = last_pass_text(doc);
        field(p, "Last pass", pass);
        field(p, "Waiting for commit", str(src, "waitingForCommit"));
        if (json_is_true(json_object_get(src, "dirty")))
                field(p, "Working tree", "has uncommitted changes");
        if (json_is_true(json_object_get(fp, "held")))
                field(p, "Force push held", str(fp, "commit"));
        field(p, "Lease holder", str(json_object_get(doc, "leaderElection"), "holder"));
        put(p, "</dl>\n");
}

/* First on the page: what keeps the daemon from following the source everywhere. */
static void errors_section(struct page *p, const json_t *doc) {
        error_box(p, "Not ready", str(doc, "notReady"));
        error_box(p, "Source error", str(json_object_get(doc, "source"), "lastError"));
        error_box(p, "Cannot see every cluster", str(doc, "listError"));
        error_box(p, "Leader election", str(json_object_get(doc, "leaderElection"), "lastError"));
}

/* Complete lines only: a torn last line is skipped, as readers of the log do. */
static void append_records(json_t *arr, const char *data, size_t len, bool partial_first) {
        const char *p = data, *end = data + len;
        if (partial_first) {
                const char *nl = memchr(p, '\n', len);
                p = nl ? nl + 1 : end;
        }
        for (const char *nl; p < end && (nl = memchr(p, '\n', (size_t)(end - p))); p = nl + 1) {
                json_t *rec = json_loadb(p, (size_t)(nl - p), 0, NULL);
                if (json_is_object(rec) && str(rec, "decision"))
                        json_array_append(arr, rec);
                json_decref(rec);
        }
        while (json_array_size(arr) > DECISIONS_SHOWN)
                json_array_remove(arr, 0);
}

/* The last records of the audit log at path, oldest first; NULL with *ret_err set when it
 * cannot be read (a missing log is an empty one). */
static json_t *audit_tail(const char *path, int *ret_err) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                *ret_err = errno == ENOENT ? 0 : -errno;
                return errno == ENOENT ? json_array() : NULL;
        }
        struct stat sb;
        json_t *arr = NULL;
        _cleanup_free_ char *data = NULL;
        if (fstat(fd, &sb) < 0) {
                *ret_err = -errno;
                goto out;
        }
        size_t want = (size_t)sb.st_size > AUDIT_TAIL_BYTES ? AUDIT_TAIL_BYTES : (size_t)sb.st_size;
        off_t off = sb.st_size - (off_t)want;
        ssize_t n = (data = malloc(want + 1)) ? pread(fd, data, want, off) : -1;
        if (n < 0) {
                *ret_err = data ? -errno : -ENOMEM;
                goto out;
        }
        arr = json_array();
        if (arr)
                append_records(arr, data, (size_t)n, off > 0);
        *ret_err = arr ? 0 : -ENOMEM;
out:
        close(fd);
        return arr;
}

static const char *outcome_class(const char *outcome) {
        if (!outcome || strcmp(outcome, "ok") == 0 || strcmp(outcome, "dry-run") == 0)
                return NULL;
        return strcmp(outcome, "failed") == 0 ? "bad" : "warn";
}

static void decision_row(struct page *p, const json_t *rec) {
        const char *reason = str(rec, "reason"), *error = str(rec, "error");
        _cleanup_free_ char *both = joined(reason, ": ", error);
        put(p, "<tr>");
        cell(p, NULL, str(rec, "time"));
        cell(p, NULL, str(rec, "cluster"));
        cell(p, NULL, str(rec, "decision"));
        cell(p, NULL, str(rec, "member"));
        cell(p, outcome_class(str(rec, "outcome")), str(rec, "outcome"));
        cell(p, error ? "bad" : NULL, either(both, either(error, reason)));
        row_end(p);
}

static void decisions_section(struct page *p, const char *audit_log) {
        static const char *const cols[] = {"Time", "Cluster", "Decision", "Member", "Outcome", "Reason", NULL};
        int r = 0;
        json_t *recs = audit_tail(audit_log, &r);
        if (!recs) {
                _cleanup_free_ char *msg = eg_strdup_printf("%s: %s", audit_log, strerror(-r));
                put(p, "<h2>Last decisions</h2>\n");
                error_box(p, "Cannot read the audit log", either(msg, strerror(-r)));
                return;
        }
        heading(p, "Last decisions", cols);
        for (size_t i = json_array_size(recs); i > 0; i--)
                decision_row(p, json_array_get(recs, i - 1));
        table_end(p);
        json_decref(recs);
}

static const char page_head[] =
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        "<meta http-equiv=\"refresh\" content=\"10\"><title>etcd-gitops</title>\n<style>\n"
        "body{font:14px/1.4 sans-serif;margin:1.5em;color:#1d2733;background:#fff}\n"
        "h1{font-size:1.4em;margin:0 0 .5em}h2{font-size:1.1em;margin:1.4em 0 .4em}\n"
        "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .6em;"
        "border-bottom:1px solid #d5dbe3;vertical-align:top;white-space:nowrap}th{background:#eef2f7}\n"
        "td:last-child{white-space:normal}\n"
        "dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}dt{color:#5a6878}dd{margin:0}\n"
        ".ok{color:#11702e;font-weight:bold}.warn{color:#9a5b00;font-weight:bold}.bad{color:#b3261e;font-weight:bold}\n"
        ".badge{padding:.1em .5em;border-radius:.3em;color:#fff;font-size:.8em;vertical-align:middle}\n"
        ".badge.ok{background:#11702e;color:#fff}.badge.bad{background:#b3261e;color:#fff}\n"
        ".error{border-left:4px solid #b3261e;background:#fbeaea;padding:.4em .8em;margin:.6em 0}\n"
        ".error pre{margin:.3em 0 0;white-space:pre-wrap}.none{color:#5a6878}\n"
        "</style></head><body>\n";

int eg_http_page_render(const char *status, const char *audit_log, struct eg_buf *out) {
        json_t *doc = json_loads(status, 0, NULL);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return -EINVAL;
        }
        struct page p = {.out = out};
        bool ready = json_is_true(json_object_get(doc, "ready"));
        char now[32];
        eg_format_rfc3339_ms(eg_now_realtime_ms(), now);
        put(&p, page_head);
        put(&p, ready ? "<h1>etcd-gitops <span class=\"badge ok\">ready</span></h1>\n"
                      : "<h1>etcd-gitops <span class=\"badge bad\">not ready</span></h1>\n");
        put(&p, "<p class=\"none\">As of ");
        put(&p, now);
        put(&p, "; the same data as <a href=\"/status\">/status</a>, also <a href=\"/metrics\">/metrics</a>.</p>\n");
        errors_section(&p, doc);
        diagnostics_section(&p, doc);
        clusters_section(&p, json_object_get(doc, "clusters"));
        if (audit_log)
                decisions_section(&p, audit_log);
        source_section(&p, doc);
        put(&p, "</body></html>\n");
        json_decref(doc);
        return p.error < 0 ? p.error : 0;
}
