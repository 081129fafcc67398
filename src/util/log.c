/* Logging to stderr with a level; the single piece of global state besides settings. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "etcd-gitops/util.h"

static enum eg_log_level log_level = EG_LOG_INFO;

void eg_log_set_level(enum eg_log_level level) { log_level = level; }

enum eg_log_level eg_log_get_level(void) { return log_level; }

int eg_log_parse_level(const char *s, enum eg_log_level *ret) {
        static const char *const names[] = {"error", "warning", "info", "debug"};
        for (size_t i = 0; i < EG_ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0) {
                        *ret = (enum eg_log_level)i;
                        return 0;
                }
        return -EINVAL;
}

int eg_log_full(enum eg_log_level level, int err, const char *fmt, ...) {
        int saved = errno;
        if (err < 0)
                err = -err;
        if (level <= log_level) {
                static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
                char expanded[1024];
                size_t o = 0;
                /* Expand %m ourselves so callers can name the errno they pass in. */
                for (const char *p = fmt; *p && o + 1 < sizeof(expanded); p++) {
                        if (p[0] == '%' && p[1] == 'm') {
                                const char *e = strerror(err ? err : saved);
                                size_t l = strlen(e);
                                if (o + l >= sizeof(expanded) - 1)
                                        break;
                                memcpy(expanded + o, e, l);
                                o += l;
                                p++;
                        } else if (p[0] == '%' && p[1] == '%') {
                                expanded[o++] = '%';
                                if (o + 1 < sizeof(expanded))
                                        expanded[o++] = '%';
                                p++;
                        } else
                                expanded[o++] = *p;
                }
                expanded[o] = 0;
                va_list ap;
                va_start(ap, fmt);
                fputs("etcd-gitops: ", stderr);
                fputs(prefix[level], stderr);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                vfprintf(stderr, expanded, ap);
#pragma GCC diagnostic pop
                fputc('\n', stderr);
                va_end(ap);
        }
        errno = saved;
        return err ? -err : -EIO;
}
