/* The one error type: a message with an optional endpoint and HTTP status, or file position. */
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/util.h"

void eg_error_done(struct eg_error *e) {
        if (!e)
                return;
        free(e->message);
        free(e->endpoint);
        free(e->file);
        *e = (struct eg_error){0};
}

/* Copies endpoint and file before freeing what e held: either may be one of e's own strings. */
static void __attribute__((format(printf, 7, 0)))
error_setv_full(struct eg_error *e, const char *endpoint, long http_status, const char *file, unsigned line,
                unsigned column, const char *fmt, va_list ap) {
        if (!e)
                return;
        char *ep = endpoint ? strdup(endpoint) : NULL;
        char *f = file ? strdup(file) : NULL;
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        eg_error_done(e);
        *e = (struct eg_error){
                .message = s, .endpoint = ep, .http_status = http_status, .file = f, .line = line, .column = column};
}

void eg_error_setv(struct eg_error *e, const char *fmt, va_list ap) {
        error_setv_full(e, NULL, 0, NULL, 0, 0, fmt, ap);
}

void eg_error_set(struct eg_error *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_error_setv(e, fmt, ap);
        va_end(ap);
}

void eg_error_set_http(struct eg_error *e, const char *endpoint, long http_status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        error_setv_full(e, endpoint, http_status, NULL, 0, 0, fmt, ap);
        va_end(ap);
}

void eg_error_set_at(struct eg_error *e, const char *file, unsigned line, unsigned column, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        error_setv_full(e, NULL, 0, file, line, column, fmt, ap);
        va_end(ap);
}

void eg_error_move(struct eg_error *to, struct eg_error *from) {
        if (to == from)
                return;
        if (!to) {
                eg_error_done(from);
                return;
        }
        eg_error_done(to);
        *to = *from;
        *from = (struct eg_error){0};
}
