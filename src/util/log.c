/* Logging to stderr with a level; the single piece of global state besides settings. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etcd-gitops/util.h"

static enum eg_log_level log_level = EG_LOG_INFO;

/* Whether stderr is the journal's stream for this service (systemd sets JOURNAL_STREAM to
 * its device and inode): then each line starts with its priority, which journald takes
 * for the entry's, so that `journalctl -p err` finds errors. Asked once. */
static bool stderr_is_journal(void) {
        static atomic_int known = -1;
        int v = atomic_load(&known);
        if (v < 0) {
                const char *js = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                v = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
                atomic_store(&known, v);
        }
        return v > 0;
}

void eg_log_set_level(enum eg_log_level level) { log_level = level; }

enum eg_log_level eg_log_get_level(void) { return log_level; }

const char *eg_log_journal_prefix(enum eg_log_level level) {
        /* syslog priorities (sd-daemon's SD_ERR ... SD_DEBUG) */
        static const char *const journal[] = {"<3>", "<4>", "<6>", "<7>"};
        return stderr_is_journal() ? journal[level] : "";
}

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
                /* syslog priorities (sd-daemon's SD_ERR ... SD_DEBUG) */
                char line[4096];
                int n = snprintf(line, sizeof(line), "%setcd-gitops: %s", eg_log_journal_prefix(level), prefix[level]);
                va_list ap;
                va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                if (n >= 0 && (size_t)n < sizeof(line))
                        vsnprintf(line + n, sizeof(line) - (size_t)n, expanded, ap);
#pragma GCC diagnostic pop
                va_end(ap);
                /* one call per line: lines of the daemon's threads never interleave */
                fprintf(stderr, "%s\n", line);
        }
        errno = saved;
        return err ? -err : -EIO;
}
