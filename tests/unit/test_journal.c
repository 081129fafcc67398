/* Unit tests for the journal: audit append, fan-out order, failures, threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "etcd-gitops/journal.h"
#include "etcd-gitops/util.h"

#define T0 INT64_C(1795834800123) /* 2026-11-28T03:00:00.123Z */
#define N_THREADS 4
#define N_PER_THREAD 200

struct fixture {
        char *dir;
        char *log;
        struct eg_audit *audit;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        char tmpl[] = "/tmp/eg-journal-XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        f->dir = strdup(tmpl);
        f->log = eg_strdup_printf("%s/audit.jsonl", tmpl);
        assert_int_equal(eg_audit_open(f->log, &f->audit, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        eg_audit_close(f->audit);
        eg_rm_rf(f->dir);
        free(f->dir);
        free(f->log);
        free(f);
        return 0;
}

/* What a sink saw, in order: "<sink>:<seq>:<kind>" lines. */
struct seen {
        char name;
        struct eg_buf *trace;
        uint64_t last_seq;
        size_t n;
        bool in_order;
};

static void sink(void *userdata, const struct eg_decision *d, uint64_t seq) {
        struct seen *s = userdata;
        if (s->trace)
                eg_buf_printf(s->trace, "%c:%" PRIu64 ":%s ", s->name, seq, d->kind ? d->kind : "-");
        s->in_order = s->in_order && (seq == 0 || seq > s->last_seq) && d->time_ms > 0;
        s->last_seq = seq;
        s->n++;
}

static void test_journal__fans_out_in_order(void **state) {
        struct fixture *f = *state;
        struct eg_journal *j;
        assert_int_equal(eg_journal_new(f->audit, &j), 0);
        struct eg_buf trace;
        eg_buf_init(&trace, 0);
        struct seen a = {.name = 'a', .trace = &trace, .in_order = true};
        struct seen b = {.name = 'b', .trace = &trace, .in_order = true};
        assert_int_equal(eg_journal_add_sink(j, sink, &a), 0);
        assert_int_equal(eg_journal_add_sink(j, sink, &b), 0);
        static const char *const kinds[] = {"create", "backup", "noop"};
        for (size_t i = 0; i < EG_ELEMENTSOF(kinds); i++) {
                struct eg_decision d = {
                        .cluster = "ns/a", .kind = kinds[i], .outcome = "ok", .actor = "reconcile", .time_ms = T0};
                assert_int_equal(eg_journal_record(j, &d, NULL), 0);
        }
        eg_journal_free(j);
        assert_string_equal(trace.data, "a:1:create b:1:create a:2:backup b:2:backup a:3:noop b:3:noop ");
        eg_buf_done(&trace);

        struct eg_audit_record *recs;
        size_t n;
        assert_int_equal(eg_audit_read(f->log, NULL, &recs, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(recs[1].decision, "backup");
        assert_string_equal(recs[1].actor, "reconcile");
        assert_string_equal(recs[1].cluster, "ns/a");
        assert_int_equal(recs[1].time_ms, T0);
        eg_audit_records_free(recs, n);
}

static void test_journal__audit_failure_reported(void **state) {
        struct fixture *f = *state;
        struct eg_journal *j;
        assert_int_equal(eg_journal_new(f->audit, &j), 0);
        struct seen a = {.name = 'a', .in_order = true};
        assert_int_equal(eg_journal_add_sink(j, sink, &a), 0);
        /* a time the log cannot write: the append fails, the sinks still hear of it */
        struct eg_decision bad = {.kind = "create", .time_ms = -5};
        struct eg_error err = {0};
        assert_int_equal(eg_journal_record(j, &bad, &err), -EINVAL);
        assert_non_null(err.message);
        assert_non_null(strstr(err.message, "cannot append to the audit log"));
        eg_error_done(&err);
        assert_int_equal(a.n, 1);
        assert_int_equal(a.last_seq, 0);
        struct eg_decision good = {.kind = "create"};
        assert_int_equal(eg_journal_record(j, &good, NULL), 0);
        assert_int_equal(a.last_seq, 1);
        eg_journal_free(j);
}

static void test_journal__without_audit(void **state) {
        (void)state;
        struct eg_journal *j;
        assert_int_equal(eg_journal_new(NULL, &j), 0);
        struct seen a = {.name = 'a', .in_order = true};
        assert_int_equal(eg_journal_add_sink(j, sink, &a), 0);
        struct eg_decision d = {.kind = "noop"};
        assert_int_equal(eg_journal_record(j, &d, NULL), 0);
        assert_int_equal(a.n, 1);
        assert_int_equal(a.last_seq, 0);
        assert_true(a.in_order); /* time_ms was filled in */
        eg_journal_free(j);
        assert_int_equal(eg_journal_record(NULL, &d, NULL), 0);
}

static void test_journal__sinks_capped(void **state) {
        (void)state;
        struct eg_journal *j;
        assert_int_equal(eg_journal_new(NULL, &j), 0);
        struct seen a = {.name = 'a'};
        for (size_t i = 0; i < EG_JOURNAL_MAX_SINKS; i++)
                assert_int_equal(eg_journal_add_sink(j, sink, &a), 0);
        assert_int_equal(eg_journal_add_sink(j, sink, &a), -ENOSPC);
        eg_journal_free(j);
}

static void *record_many(void *userdata) {
        struct eg_journal *j = userdata;
        for (int i = 0; i < N_PER_THREAD; i++) {
                struct eg_decision d = {.cluster = "ns/a", .kind = "noop", .outcome = "ok"};
                if (eg_journal_record(j, &d, NULL) < 0)
                        return (void *)1;
        }
        return NULL;
}

/* Records from several threads: the log stays one chain and every sink sees seq rising. */
static void test_journal__threads(void **state) {
        struct fixture *f = *state;
        struct eg_journal *j;
        assert_int_equal(eg_journal_new(f->audit, &j), 0);
        struct seen a = {.name = 'a', .in_order = true};
        assert_int_equal(eg_journal_add_sink(j, sink, &a), 0);
        pthread_t t[N_THREADS];
        for (size_t i = 0; i < N_THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, record_many, j), 0);
        for (size_t i = 0; i < N_THREADS; i++) {
                void *res;
                assert_int_equal(pthread_join(t[i], &res), 0);
                assert_null(res);
        }
        eg_journal_free(j);
        assert_true(a.in_order);
        assert_int_equal(a.n, N_THREADS * N_PER_THREAD);
        assert_int_equal(a.last_seq, N_THREADS * N_PER_THREAD);
        uint64_t n_records = 0;
        assert_int_equal(eg_audit_verify_full(f->log, &n_records, NULL, NULL), 0);
        assert_int_equal(n_records, N_THREADS * N_PER_THREAD);
}

#define T(name) cmocka_unit_test_setup_teardown(test_journal__##name, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(fans_out_in_order), T(audit_failure_reported), T(without_audit), T(sinks_capped), T(threads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
