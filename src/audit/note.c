/* The text of a git note: what the audit log says one commit caused. */
#include <errno.h>
#include <string.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

#define NOTE_MAX ((size_t)64 << 10)

int eg_audit_note_for_commit(const char *path, const char *commit, char **ret) {
        struct eg_audit_filter f = {.revision = commit};
        struct eg_audit_record *recs = NULL;
        size_t n = 0;
        int r = eg_audit_read(path, &f, &recs, &n);
        if (r < 0)
                return r;
        struct eg_buf b;
        eg_buf_init(&b, NOTE_MAX);
        eg_buf_printf(&b, "etcd-gitops: %zu decision%s\n", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
                const struct eg_audit_record *x = &recs[i];
                char when[32];
                eg_format_rfc3339_ms(x->time_ms, when);
                /* a note past the cap ends with what fitted: the audit log has the rest */
                if (eg_buf_printf(&b, "%s %s %s%s%s %s: %s%s%s\n", when, x->cluster ? x->cluster : "-",
                                  x->decision ? x->decision : "-", x->member ? " " : "", x->member ? x->member : "",
                                  x->outcome ? x->outcome : "-", x->reason ? x->reason : "",
                                  x->error ? " — " : "", x->error ? x->error : "") < 0)
                        break;
        }
        eg_audit_records_free(recs, n);
        *ret = eg_buf_steal(&b);
        return *ret ? (int)n : -ENOMEM;
}
