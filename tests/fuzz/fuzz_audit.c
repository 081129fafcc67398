/* libFuzzer target: any bytes as an audit log, through verify, read, the git note and the
 * writer's open and append, with the readers, the verifier and the writer held to agree. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

/* records re-formatted and read back, per input */
#define ROUND_TRIPS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir, *log_path, *rt_path;

static void cleanup(void) {
        if (dir)
                eg_rm_rf(dir);
}

static int setup(void) {
        char tmpl[] = "/dev/shm/eg-fuzz-audit.XXXXXX", tmpl2[] = "/tmp/eg-fuzz-audit.XXXXXX";
        /* a tmpfs keeps the fsync of every append cheap */
        const char *d = mkdtemp(tmpl);
        if (!d)
                d = mkdtemp(tmpl2);
        if (!d || !(dir = strdup(d)) || !(log_path = eg_path_join(dir, "audit.jsonl")) ||
            !(rt_path = eg_path_join(dir, "rt.jsonl")))
                abort();
        atexit(cleanup);
        return 0;
}

static void write_file(const char *path, const void *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || eg_write_all(fd, data, size) < 0 || close(fd) < 0)
                abort();
}

/* A parsed record formats to a line that reads back as the same record, hash included. */
static void round_trip(const struct eg_audit_record *rec) {
        _cleanup_free_ char *line = NULL, *again = NULL;
        if (eg_audit_record_format(rec, &line) < 0)
                abort(); /* whatever the reader accepts, the writer can write */
        size_t len = strlen(line);
        if (len >= EG_AUDIT_LINE_MAX)
                abort();
        _cleanup_free_ char *with_nl = eg_strdup_printf("%s\n", line);
        if (!with_nl)
                abort();
        write_file(rt_path, with_nl, len + 1);
        struct eg_audit_record *back = NULL;
        size_t n = 0, skipped = 0;
        if (eg_audit_read_full(rt_path, NULL, &back, &n, &skipped) < 0 || n != 1 || skipped != 0)
                abort();
        char hash[65];
        eg_sha256_hex(line, len, hash);
        if (!back[0].hash || strcmp(back[0].hash, hash) != 0)
                abort();
        if (eg_audit_record_format(&back[0], &again) < 0 || strcmp(line, again) != 0)
                abort();
        eg_audit_records_free(back, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!dir)
                setup();
        write_file(log_path, data, size);

        uint64_t n_records = 0;
        struct eg_error broken = {0};
        char *warning = NULL;
        int v = eg_audit_verify_full(log_path, &n_records, &broken, &warning);
        if (v < 0 || (v == 1) != (broken.line > 0) || (v == 1) != (broken.message != NULL) || (v == 1 && warning))
                abort();
        free(warning);
        eg_error_done(&broken);

        struct eg_audit_record *recs = NULL;
        size_t n = 0, skipped = 0;
        if (eg_audit_read_full(log_path, NULL, &recs, &n, &skipped) < 0)
                abort();
        if (v == 0) {
                /* an intact chain: the reader takes every record the verifier counted */
                if (n != n_records || skipped != 0)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (recs[i].seq != i + 1 || !recs[i].prev || !recs[i].hash ||
                            (i > 0 && strcmp(recs[i].prev, recs[i - 1].hash) != 0))
                                abort();
        }
        for (size_t i = 0; i < n && i < ROUND_TRIPS; i++)
                round_trip(&recs[i]);
        const char *commit = n > 0 && recs[0].commit ? recs[0].commit : "3f1c2a9e";
        _cleanup_free_ char *note = NULL;
        if (eg_audit_note_for_commit(log_path, commit, &note) < 0)
                abort();
        eg_audit_records_free(recs, n);

        struct eg_audit_filter f = {.cluster = "default/fuzzseed", .revision = "sha256:1c54", .since_seq = 2};
        if (eg_audit_read(log_path, &f, &recs, &n) < 0)
                abort();
        for (size_t i = 0; i < n; i++)
                if (recs[i].seq <= 2 || !recs[i].cluster || strcmp(recs[i].cluster, f.cluster) != 0)
                        abort();
        eg_audit_records_free(recs, n);

        /* the writer continues the chain from the tail; after an intact log, the chain
         * stays intact with one more record */
        struct eg_audit *a = NULL;
        warning = NULL;
        int o = eg_audit_open(log_path, &a, &warning);
        free(warning);
        if (o < 0 && (v == 0 || o != -EBADMSG))
                abort();
        if (o < 0)
                return 0;
        struct eg_audit_record rec = {
                .time_ms = INT64_C(1764939600000),
                .cluster = strdup("default/fuzz"),
                .decision = strdup("noop"),
                .reason = strdup("fuzzed"),
                .outcome = strdup("skipped"),
        };
        struct eg_audit_stamp st;
        if (eg_audit_append_full(a, &rec, &st) < 0)
                abort();
        eg_audit_close(a);
        if (v == 0) {
                uint64_t n_after = 0;
                warning = NULL;
                if (eg_audit_verify_full(log_path, &n_after, NULL, &warning) != 0 || warning ||
                    n_after != n_records + 1 || st.seq != n_records + 1)
                        abort();
        }
        eg_audit_record_done(&rec);
        return 0;
}
