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

void eg_error_setv(struct eg_error *e, const char *fmt, va_list ap) {
        if (!e)
                return;
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        eg_error_done(e);
        e->message = s;
}

void eg_error_set(struct eg_error *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        eg_error_setv(e, fmt, ap);
        va_end(ap);
}

void eg_error_set_http(struct eg_error *e, const char *endpoint, long http_status, const char *fmt, ...) {
        if (!e)
                return;
        char *ep = endpoint ? strdup(endpoint) : NULL;
        va_list ap;
        va_start(ap, fmt);
        eg_error_setv(e, fmt, ap);
        va_end(ap);
        e->endpoint = ep;
        e->http_status = http_status;
}

void eg_error_set_at(struct eg_error *e, const char *file, unsigned line, unsigned column, const char *fmt, ...) {
        if (!e)
                return;
        char *f = file ? strdup(file) : NULL;
        va_list ap;
        va_start(ap, fmt);
        eg_error_setv(e, fmt, ap);
        va_end(ap);
        e->file = f;
        e->line = line;
        e->column = column;
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
