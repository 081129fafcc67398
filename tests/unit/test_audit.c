/* Unit tests for the audit log: format, chain, reopen, filters, verify, torn lines, locks. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"
#define T0 INT64_C(1795834800123) /* 2026-11-28T03:00:00.123Z */

struct fixture {
        char *dir;
        char *log;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        char tmpl[] = "/tmp/eg-audit-XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        f->dir = strdup(tmpl);
        f->log = eg_strdup_printf("%s/state/sub/audit.jsonl", tmpl);
        umask(022);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        eg_rm_rf(f->dir);
        free(f->dir);
        free(f->log);
        free(f);
        return 0;
}

static char *read_all(const char *path, size_t *ret_len) {
        char *data;
        assert_int_equal(eg_read_file(path, 0, &data, ret_len), 0);
        return data;
}

static void write_all(const char *path, const char *data, size_t len) {
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        close(fd);
}

static void append_raw(const char *path, const char *data) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
        close(fd);
}

static off_t file_size(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

/* Pointers to the starts of the lines of data (modified in place: '\n' → 0). */
static size_t split_lines(char *data, char **lines, size_t max) {
        size_t n = 0;
        for (char *p = data; *p && n < max;) {
                char *nl = strchr(p, '\n');
                lines[n++] = p;
                if (!nl)
                        break;
                *nl = 0;
                p = nl + 1;
        }
        return n;
}

/* Appends one record per cluster name given, with a reason naming its position. */
static void append_n(const char *log, size_t n, const char *cluster) {
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(log, &a, NULL), 0);
        for (size_t i = 0; i < n; i++) {
                struct eg_audit_record r = {
                        .time_ms = T0 + (int64_t)i,
                        .cluster = cluster,
                        .decision = "noop",
                        .outcome = "ok",
                };
                _cleanup_free_ char *reason = eg_strdup_printf("reason number %zu", i);
                r.reason = reason;
                assert_int_equal(eg_audit_append(a, &r), 0);
        }
        eg_audit_close(a);
}

/* want_message: why the chain broke at want_line (want 1), or the warning (want 0). */
static void assert_verify(const char *log, int want, uint64_t want_records, unsigned want_line,
                          const char *want_message) {
        uint64_t n = 99;
        struct eg_error err = {0};
        char *warning = NULL;
        assert_int_equal(eg_audit_verify_full(log, &n, &err, &warning), want);
        assert_int_equal(n, want_records);
        assert_int_equal(err.line, want_line);
        const char *got = want == 1 ? err.message : warning;
        if (want_message)
                assert_string_equal(got, want_message);
        else
                assert_null(got);
        if (want == 1)
                assert_null(warning);
        free(warning);
        eg_error_done(&err);
}

static void test_audit__format_exact(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a;
        char *warning = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, &warning), 0);
        assert_null(warning);
        struct eg_audit_record full = {
                .time_ms = T0,
                .revision = "main@sha1:abcdef",
                .commit = "abcdef",
                .path = "clusters/a.yaml",
                .line = 3,
                .blob = "b10b",
                .cluster = "ns/a",
                .decision = "add-learner",
                .member = "a-3",
                .reason = "size 3 > 2 members",
                .outcome = "ok",
                .duration_ms = 12,
                .error = "none",
        };
        struct eg_audit_stamp st_full, st_sparse;
        assert_int_equal(eg_audit_append_full(a, &full, &st_full), 0);
        struct eg_audit_record sparse = {.time_ms = T0 + 1000, .decision = "noop", .outcome = "ok"};
        assert_int_equal(eg_audit_append_full(a, &sparse, &st_sparse), 0);
        eg_audit_close(a);

        size_t len;
        _cleanup_free_ char *data = read_all(f->log, &len);
        char *lines[4];
        assert_int_equal(split_lines(data, lines, 4), 2);
        assert_string_equal(lines[0],
                            "{\"seq\":1,\"time\":\"2026-11-28T03:00:00.123Z\",\"revision\":\"main@sha1:abcdef\","
                            "\"commit\":\"abcdef\",\"path\":\"clusters/a.yaml\",\"line\":3,\"blob\":\"b10b\","
                            "\"cluster\":\"ns/a\",\"decision\":\"add-learner\",\"member\":\"a-3\","
                            "\"reason\":\"size 3 > 2 members\",\"outcome\":\"ok\",\"duration_ms\":12,"
                            "\"error\":\"none\",\"prev\":\"" ZEROS "\"}");
        char h1[65];
        eg_sha256_hex(lines[0], strlen(lines[0]), h1);
        assert_string_equal(st_full.hash, h1);
        assert_int_equal(st_full.seq, 1);
        assert_int_equal(st_full.time_ms, T0);
        _cleanup_free_ char *want2 = eg_strdup_printf(
                "{\"seq\":2,\"time\":\"2026-11-28T03:00:01.123Z\",\"decision\":\"noop\",\"outcome\":\"ok\","
                "\"duration_ms\":0,\"prev\":\"%s\"}",
                h1);
        assert_string_equal(lines[1], want2);
        char h2[65];
        eg_sha256_hex(lines[1], strlen(lines[1]), h2);
        assert_string_equal(st_sparse.hash, h2);
        assert_int_equal(st_sparse.seq, 2);

        struct stat st;
        assert_int_equal(stat(f->log, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0640);
}

static void test_audit__time_defaults_to_now(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        struct eg_audit_record r = {.decision = "noop"};
        int64_t before = eg_now_realtime_ms();
        struct eg_audit_stamp st;
        assert_int_equal(eg_audit_append_full(a, &r, &st), 0);
        int64_t after = eg_now_realtime_ms();
        assert_in_range(st.time_ms, before, after);
        struct eg_audit_record bad = {.time_ms = -5};
        assert_int_equal(eg_audit_append(a, &bad), -EINVAL);
        eg_audit_close(a);

        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(recs[0].time_ms, st.time_ms);
        eg_audit_records_free(recs, n);
}

static void test_audit__reopen_continues_chain(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 3, "ns/a");
        struct eg_audit *a;
        char *warning = (char *)"unset";
        assert_int_equal(eg_audit_open(f->log, &a, &warning), 0);
        assert_null(warning);
        struct eg_audit_record r = {.time_ms = T0, .decision = "prune"};
        struct eg_audit_stamp st;
        assert_int_equal(eg_audit_append_full(a, &r, &st), 0);
        eg_audit_close(a);
        assert_int_equal(st.seq, 4);

        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(recs[i].seq, i + 1);
                assert_string_equal(recs[i].prev, i == 0 ? ZEROS : recs[i - 1].hash);
        }
        assert_string_equal(recs[3].hash, st.hash);
        assert_string_equal(recs[1].reason, "reason number 1");
        assert_string_equal(recs[1].cluster, "ns/a");
        assert_int_equal(recs[1].time_ms, T0 + 1);
        assert_null(recs[1].member);
        eg_audit_records_free(recs, n);
        assert_verify(f->log, 0, 4, 0, NULL);
}

static void test_audit__read_filters(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        static const struct {
                const char *cluster, *commit, *revision;
        } in[] = {
                {"ns/a", "abcdef0123456789abcdef0123456789abcdef01",
                 "main@sha1:abcdef0123456789abcdef0123456789abcdef01"},
                {"ns/ab", "abcdef0123456789abcdef0123456789abcdef01",
                 "main@sha1:abcdef0123456789abcdef0123456789abcdef01"},
                {"ns/a", NULL, "sha256:77aa99bb"},
                {"ns/a", "1234567890123456789012345678901234567890",
                 "release@sha1:1234567890123456789012345678901234567890"},
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(in); i++) {
                struct eg_audit_record r = {
                        .time_ms = T0, .cluster = in[i].cluster, .commit = in[i].commit, .revision = in[i].revision};
                assert_int_equal(eg_audit_append(a, &r), 0);
        }
        eg_audit_close(a);

        static const struct {
                struct eg_audit_filter filter;
                const char *want; /* seqs */
        } cases[] = {
                {{0}, "1234"},
                {{.cluster = "ns/a"}, "134"},
                {{.cluster = "ns/ab"}, "2"},
                {{.cluster = "ns"}, ""},
                {{.revision = "abcd"}, "12"},
                {{.revision = "ABCDEF01"}, "12"},
                {{.revision = "bcdef"}, "12"}, /* not a commit prefix, but inside the revision */
                {{.revision = "sha256:77"}, "3"},
                {{.revision = "77aa"}, "3"},
                {{.revision = "release@"}, "4"},
                {{.revision = "ffff"}, ""},
                {{.cluster = "ns/a", .revision = "abcd"}, "1"},
                {{.since_seq = 2}, "34"},
                {{.since_seq = 2, .cluster = "ns/a"}, "34"},
        };
        for (size_t c = 0; c < EG_ELEMENTSOF(cases); c++) {
                struct eg_audit_record *recs;
                size_t n, skipped = 9;
                assert_int_equal(eg_audit_read_full(f->log, &cases[c].filter, &recs, &n, &skipped), 0);
                char got[8] = "";
                for (size_t i = 0; i < n && i < 7; i++)
                        got[i] = (char)('0' + recs[i].seq);
                got[n < 7 ? n : 7] = 0;
                if (strcmp(got, cases[c].want) != 0)
                        fail_msg("case %zu: got seqs '%s', want '%s'", c, got, cases[c].want);
                assert_int_equal(skipped, 0);
                eg_audit_records_free(recs, n);
        }
}

static void test_audit__read_missing(void **state) {
        struct fixture *f = *state;
        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), -ENOENT);
        assert_int_equal(eg_audit_verify(f->log, NULL, NULL), -ENOENT);
}

/* Rewrites the log with line `edit` (0-based) passed through fn. */
static void rewrite_lines(const char *log, void (*fn)(char **lines, size_t *n)) {
        size_t len;
        _cleanup_free_ char *data = read_all(log, &len);
        char *lines[32];
        size_t n = split_lines(data, lines, 32);
        fn(lines, &n);
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(eg_buf_printf(&b, "%s\n", lines[i]), 0);
        write_all(log, b.data, b.len);
        eg_buf_done(&b);
}

static void edit_reason_of_line3(char **lines, size_t *n) {
        char *p = strstr(lines[2], "reason number 2");
        assert_non_null(p);
        p[7] = 'N';
}

static void delete_line3(char **lines, size_t *n) {
        memmove(&lines[2], &lines[3], (*n - 3) * sizeof(char *));
        (*n)--;
}

static void delete_line1(char **lines, size_t *n) {
        memmove(&lines[0], &lines[1], (*n - 1) * sizeof(char *));
        (*n)--;
}

static void swap_lines_2_3(char **lines, size_t *n) {
        char *t = lines[1];
        lines[1] = lines[2];
        lines[2] = t;
}

static void garble_line2(char **lines, size_t *n) { lines[1] = (char *)"{\"seq\":2,"; }

static void wrong_time_line2(char **lines, size_t *n) {
        char *p = strstr(lines[1], "T03:00");
        assert_non_null(p);
        p[1] = '9';
        p[2] = '9';
}

static void test_audit__verify_catches_edit(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 5, "ns/a");
        assert_verify(f->log, 0, 5, 0, NULL);
        rewrite_lines(f->log, edit_reason_of_line3);
        /* the edited line itself still parses: the next line's prev no longer fits it, and
         * it is the edited line that is blamed */
        assert_verify(f->log, 1, 2, 3, "its hash is not what line 4 records as prev (record edited?)");
        struct eg_error err = {0};
        assert_int_equal(eg_audit_verify(f->log, &err, NULL), 1);
        assert_int_equal(err.line, 3);
        eg_error_done(&err);
}

static void test_audit__verify_catches_delete(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 5, "ns/a");
        rewrite_lines(f->log, delete_line3);
        assert_verify(f->log, 1, 2, 3, "seq is 4, expected 3 (record removed, reordered or duplicated?)");
}

static void test_audit__verify_catches_reorder(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 5, "ns/a");
        rewrite_lines(f->log, swap_lines_2_3);
        assert_verify(f->log, 1, 1, 2, "seq is 3, expected 2 (record removed, reordered or duplicated?)");
}

static void test_audit__verify_catches_garbage(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 3, "ns/a");
        rewrite_lines(f->log, garble_line2);
        assert_verify(f->log, 1, 1, 2, "not valid JSON: string or '}' expected near end of file (column 9)");
        struct eg_audit_record *recs;
        size_t n, skipped;
        assert_int_equal(eg_audit_read_full(f->log, NULL, &recs, &n, &skipped), 0);
        assert_int_equal(n, 2);
        assert_int_equal(skipped, 1);
        assert_int_equal(recs[1].seq, 3);
        eg_audit_records_free(recs, n);
}

static void test_audit__verify_catches_bad_field(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 3, "ns/a");
        rewrite_lines(f->log, wrong_time_line2);
        assert_verify(f->log, 1, 1, 2, "'time' must be an RFC 3339 UTC time with milliseconds");
}

static void test_audit__verify_first_line(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 3, "ns/a");
        rewrite_lines(f->log, delete_line3);
        /* drop the first record: line 1 now has seq 2 */
        rewrite_lines(f->log, delete_line1);
        assert_verify(f->log, 1, 0, 1, "seq is 2, expected 1 (record removed, reordered or duplicated?)");
}

static void test_audit__verify_empty(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        eg_audit_close(a);
        assert_int_equal(file_size(f->log), 0);
        assert_verify(f->log, 0, 0, 0, NULL);
}

static void test_audit__torn_line_dropped(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 3, "ns/a");
        off_t good = file_size(f->log);
        append_raw(f->log, "{\"seq\":4,\"ti");
        assert_verify(f->log, 0, 3, 0,
                      "line 4: torn last record of 12 bytes without a newline (a crash while appending; the next "
                      "writer drops it)");
        struct eg_audit_record *recs;
        size_t n, skipped;
        assert_int_equal(eg_audit_read_full(f->log, NULL, &recs, &n, &skipped), 0);
        assert_int_equal(n, 3);
        assert_int_equal(skipped, 0);
        eg_audit_records_free(recs, n);

        struct eg_audit *a;
        char *warning = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, &warning), 0);
        _cleanup_free_ char *want = eg_strdup_printf(
                "audit log %s: dropped a torn last record of 12 bytes at offset %jd", f->log, (intmax_t)good);
        assert_string_equal(warning, want);
        free(warning);
        assert_int_equal(file_size(f->log), good);
        struct eg_audit_record r = {.time_ms = T0, .decision = "noop"};
        struct eg_audit_stamp st;
        assert_int_equal(eg_audit_append_full(a, &r, &st), 0);
        assert_int_equal(st.seq, 4);
        eg_audit_close(a);
        assert_verify(f->log, 0, 4, 0, NULL);
}

static void test_audit__invalid_last_line_dropped(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 2, "ns/a");
        off_t good = file_size(f->log);
        append_raw(f->log, "not json\n");
        /* a complete line cannot come from a crash: verify calls it a break */
        assert_verify(f->log, 1, 2, 3, "not valid JSON: '[' or '{' expected near 'not' (column 3)");
        struct eg_audit *a;
        char *warning = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, &warning), 0);
        _cleanup_free_ char *want = eg_strdup_printf(
                "audit log %s: dropped a torn last record of 9 bytes at offset %jd", f->log, (intmax_t)good);
        assert_string_equal(warning, want);
        free(warning);
        eg_audit_close(a);
        assert_verify(f->log, 0, 2, 0, NULL);
}

static void test_audit__more_damage_refused(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 2, "ns/a");
        append_raw(f->log, "not json\n{\"seq\":3");
        off_t size = file_size(f->log);
        struct eg_audit *a = NULL;
        char *warning = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, &warning), -EBADMSG);
        assert_null(a);
        assert_null(warning);
        assert_int_equal(file_size(f->log), size);
}

static void test_audit__second_open_busy(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a, *b = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        assert_int_equal(eg_audit_open(f->log, &b, NULL), -EBUSY);
        assert_null(b);
        eg_audit_close(a);
        assert_int_equal(eg_audit_open(f->log, &b, NULL), 0);
        eg_audit_close(b);
}

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        assert_non_null(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

static void test_audit__line_capped(void **state) {
        struct fixture *f = *state;
        _cleanup_free_ char *reason = repeat('r', 100000);
        _cleanup_free_ char *error = repeat('e', 200000);
        _cleanup_free_ char *ctl = repeat('\x01', 30000); /* 6 bytes each once escaped */
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        struct eg_audit_record r1 = {.time_ms = T0, .cluster = "ns/a", .reason = reason, .error = error};
        struct eg_audit_stamp st1, st2;
        assert_int_equal(eg_audit_append_full(a, &r1, &st1), 0);
        struct eg_audit_record r2 = {.time_ms = T0, .cluster = "ns/a", .reason = ctl};
        assert_int_equal(eg_audit_append_full(a, &r2, &st2), 0);
        eg_audit_close(a);
        assert_ptr_equal(r1.reason, reason); /* the caller's strings stay whole */
        assert_int_equal(strlen(r1.reason), 100000);

        size_t len;
        _cleanup_free_ char *data = read_all(f->log, &len);
        char *lines[4];
        assert_int_equal(split_lines(data, lines, 4), 2);
        assert_true(strlen(lines[0]) <= EG_AUDIT_LINE_MAX - 1);
        assert_true(strlen(lines[0]) > EG_AUDIT_LINE_MAX - 200);
        assert_true(strlen(lines[1]) <= EG_AUDIT_LINE_MAX - 1);
        assert_true(strlen(lines[1]) > EG_AUDIT_LINE_MAX - 200);

        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 2);
        const char *suffix = "\xe2\x80\xa6(truncated)";
        assert_true(eg_str_has_suffix(recs[0].reason, suffix));
        assert_true(eg_str_has_suffix(recs[0].error, suffix));
        /* both long strings are cut to the same length, neither wiped out */
        assert_int_equal(strlen(recs[0].reason), strlen(recs[0].error));
        size_t kept = strlen(recs[0].reason) - strlen(suffix);
        assert_true(kept > 30000);
        assert_memory_equal(recs[0].reason, reason, kept);
        assert_memory_equal(recs[0].error, error, kept);
        assert_string_equal(recs[0].cluster, "ns/a");
        assert_true(eg_str_has_suffix(recs[1].reason, suffix));
        size_t kept_ctl = strlen(recs[1].reason) - strlen(suffix);
        assert_true(kept_ctl > 10000);
        assert_memory_equal(recs[1].reason, ctl, kept_ctl);
        assert_string_equal(recs[0].hash, st1.hash);
        assert_string_equal(recs[1].hash, st2.hash);
        eg_audit_records_free(recs, n);
        assert_verify(f->log, 0, 2, 0, NULL);
}

static void test_audit__overlong_line(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 1, "ns/a");
        off_t good = file_size(f->log);
        _cleanup_free_ char *big = repeat('x', EG_AUDIT_LINE_MAX + 4000);
        big[EG_AUDIT_LINE_MAX + 3999] = '\n';
        append_raw(f->log, big);
        assert_verify(f->log, 1, 1, 2, "longer than 65536 bytes");
        struct eg_audit_record *recs;
        size_t n, skipped;
        assert_int_equal(eg_audit_read_full(f->log, NULL, &recs, &n, &skipped), 0);
        assert_int_equal(n, 1);
        assert_int_equal(skipped, 1);
        eg_audit_records_free(recs, n);
        struct eg_audit *a;
        char *warning = NULL;
        assert_int_equal(eg_audit_open(f->log, &a, &warning), 0);
        _cleanup_free_ char *want = eg_strdup_printf(
                "audit log %s: dropped a torn last record of %d bytes at offset %jd", f->log, EG_AUDIT_LINE_MAX + 4000,
                (intmax_t)good);
        assert_string_equal(warning, want);
        free(warning);
        eg_audit_close(a);
        assert_verify(f->log, 0, 1, 0, NULL);
}

static void test_audit__cut_keeps_utf8_whole(void **state) {
        struct fixture *f = *state;
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (int i = 0; i < 40000; i++)
                assert_int_equal(eg_buf_puts(&b, "\xe6\x97\xa5"), 0); /* 日, 3 bytes */
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        struct eg_audit_record r = {.time_ms = T0, .reason = b.data};
        assert_int_equal(eg_audit_append(a, &r), 0);
        eg_audit_close(a);
        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 1);
        size_t kept = strlen(recs[0].reason) - strlen("\xe2\x80\xa6(truncated)");
        assert_int_equal(kept % 3, 0);
        assert_memory_equal(recs[0].reason, b.data, kept);
        eg_audit_records_free(recs, n);
        eg_buf_done(&b);
}

static void test_audit__strings_round_trip(void **state) {
        struct fixture *f = *state;
        static const char *const values[] = {
                "two\nlines\r\nand \"quotes\" and \\ backslash\tand tab",
                "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
                "ctl \x01\x1f\x7f end",
                "}\n{\"seq\":99,\"prev\":\"" ZEROS "\"}",
        };
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        for (size_t i = 0; i < EG_ELEMENTSOF(values); i++) {
                struct eg_audit_record r = {
                        .time_ms = T0, .reason = values[i], .error = values[i], .member = values[i]};
                assert_int_equal(eg_audit_append(a, &r), 0);
        }
        /* bytes that are not UTF-8 become U+FFFD rather than losing the record */
        struct eg_audit_record bad = {.time_ms = T0,
                                      .reason = "a\xff"
                                                "b\xc3"};
        assert_int_equal(eg_audit_append(a, &bad), 0);
        eg_audit_close(a);

        size_t len;
        _cleanup_free_ char *data = read_all(f->log, &len);
        size_t newlines = 0;
        for (size_t i = 0; i < len; i++)
                newlines += data[i] == '\n';
        assert_int_equal(newlines, EG_ELEMENTSOF(values) + 1);

        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, EG_ELEMENTSOF(values) + 1);
        for (size_t i = 0; i < EG_ELEMENTSOF(values); i++) {
                assert_string_equal(recs[i].reason, values[i]);
                assert_string_equal(recs[i].error, values[i]);
                assert_string_equal(recs[i].member, values[i]);
        }
        assert_string_equal(recs[n - 1].reason, "a\xef\xbf\xbd"
                                                "b\xef\xbf\xbd");
        eg_audit_records_free(recs, n);
        assert_verify(f->log, 0, EG_ELEMENTSOF(values) + 1, 0, NULL);
}

static void test_audit__record_format_matches_disk(void **state) {
        struct fixture *f = *state;
        append_n(f->log, 2, "ns/b");
        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        size_t len;
        _cleanup_free_ char *data = read_all(f->log, &len);
        char *lines[4];
        assert_int_equal(split_lines(data, lines, 4), 2);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *line = NULL;
                assert_int_equal(eg_audit_record_format(&recs[i], &line), 0);
                assert_string_equal(line, lines[i]);
        }
        eg_audit_records_free(recs, n);
}

/* The writer reproduces the example in specs/audit-log.md byte for byte. */
static void test_audit__matches_spec_example(void **state) {
        struct fixture *f = *state;
        const char *c = "5d41402abc4b2a76b9719d911017c592aa11bb22";
        _cleanup_free_ char *rev = eg_strdup_printf("main@sha1:%s", c);
        struct eg_audit_record recs[] = {
                {.time_ms = T0,
                 .revision = rev,
                 .commit = c,
                 .path = "clusters/orders.yaml",
                 .line = 1,
                 .blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
                 .cluster = "payments/orders-etcd",
                 .decision = "create",
                 .member = "orders-etcd-0",
                 .reason = "bootstrap 3 members at 3.5.17",
                 .outcome = "ok",
                 .duration_ms = 2140},
                {.time_ms = T0 - 123 + 9870,
                 .revision = rev,
                 .commit = c,
                 .path = "clusters/orders.yaml",
                 .line = 1,
                 .blob = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
                 .cluster = "payments/orders-etcd",
                 .decision = "add-learner",
                 .member = "orders-etcd-3",
                 .reason = "scale up 3 -> 4: add member orders-etcd-3 as learner",
                 .outcome = "failed",
                 .duration_ms = 1502,
                 .error = "member add: etcdserver: too many learner members in cluster"},
                {.time_ms = T0 - 123 + 15002,
                 .revision = rev,
                 .commit = c,
                 .path = "clusters/orders.yaml",
                 .line = 1,
                 .cluster = "payments/orders-etcd",
                 .decision = "waiting",
                 .reason = "learner orders-etcd-3 is catching up before promotion",
                 .outcome = "skipped"},
        };
        static const char *const hashes[] = {
                "9fecdf5f6f8aac71e6e69a6bab6b20b5e8868db46178a87534864f58a893c8d1",
                "7777dd4a50e29ceea984889c9d0b135b00df5f23cb3b9f4125b66559e1079bc4",
                "e220b4a853126876956c03a92a145dbce54b4912962b8241a23f84be9910b798",
        };
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        for (size_t i = 0; i < EG_ELEMENTSOF(recs); i++) {
                struct eg_audit_stamp st;
                assert_int_equal(eg_audit_append_full(a, &recs[i], &st), 0);
                assert_string_equal(st.hash, hashes[i]);
        }
        eg_audit_close(a);
}

/* actor is optional: placed after error when set, absent otherwise (older lines read the same). */
static void test_audit__actor_optional(void **state) {
        struct fixture *f = *state;
        struct eg_audit *a;
        assert_int_equal(eg_audit_open(f->log, &a, NULL), 0);
        struct eg_audit_record r = {.time_ms = T0, .decision = "backup", .error = "e", .actor = "cli:1000"};
        assert_int_equal(eg_audit_append(a, &r), 0);
        eg_audit_close(a);
        size_t len;
        _cleanup_free_ char *data = read_all(f->log, &len);
        assert_non_null(strstr(data, "\"error\":\"e\",\"actor\":\"cli:1000\",\"prev\":"));
        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(recs[0].actor, "cli:1000");
        eg_audit_records_free(recs, n);
        append_n(f->log, 1, "ns/a");
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_null(recs[1].actor);
        eg_audit_records_free(recs, n);
        assert_verify(f->log, 0, 2, 0, NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(test_audit__##name, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(format_exact),
                T(time_defaults_to_now),
                T(reopen_continues_chain),
                T(read_filters),
                T(read_missing),
                T(verify_catches_edit),
                T(verify_catches_delete),
                T(verify_catches_reorder),
                T(verify_catches_garbage),
                T(verify_catches_bad_field),
                T(verify_first_line),
                T(verify_empty),
                T(torn_line_dropped),
                T(invalid_last_line_dropped),
                T(more_damage_refused),
                T(second_open_busy),
                T(line_capped),
                T(overlong_line),
                T(cut_keeps_utf8_whole),
                T(strings_round_trip),
                T(record_format_matches_disk),
                T(matches_spec_example),
                T(actor_optional),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
