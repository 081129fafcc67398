/* Growable, capped byte buffer: every outside-controlled size goes through one of these. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/util.h"

void eg_buf_init(struct eg_buf *b, size_t max) { *b = (struct eg_buf){.max = max ? max : EG_BUF_DEFAULT_MAX}; }

void eg_buf_done(struct eg_buf *b) {
        free(b->data);
        b->data = NULL;
        b->len = b->alloc = 0;
}

void eg_buf_reset(struct eg_buf *b) {
        b->len = 0;
        if (b->data)
                b->data[0] = 0;
}

static int buf_reserve(struct eg_buf *b, size_t extra) {
        size_t max = b->max ? b->max : EG_BUF_DEFAULT_MAX;
        if (extra > max || b->len > max - extra)
                return -E2BIG;
        size_t need = b->len + extra + 1;
        if (need <= b->alloc)
                return 0;
        size_t n = b->alloc ? b->alloc : 256;
        while (n < need)
                n *= 2;
        char *p = realloc(b->data, n);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->alloc = n;
        return 0;
}

int eg_buf_append(struct eg_buf *b, const void *data, size_t len) {
        int r = buf_reserve(b, len);
        if (r < 0)
                return r;
        if (len)
                memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = 0;
        return 0;
}

int eg_buf_puts(struct eg_buf *b, const char *s) { return eg_buf_append(b, s, strlen(s)); }

int eg_buf_vprintf(struct eg_buf *b, const char *fmt, va_list ap) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        if (n < 0)
                return -EINVAL;
        int r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        b->len += (size_t)n;
        return 0;
}

int eg_buf_printf(struct eg_buf *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = eg_buf_vprintf(b, fmt, ap);
        va_end(ap);
        return r;
}

char *eg_buf_steal(struct eg_buf *b) {
        char *p = b->data;
        if (!p)
                p = strdup("");
        b->data = NULL;
        b->len = b->alloc = 0;
        return p;
}
