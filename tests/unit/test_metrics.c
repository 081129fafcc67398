/* Unit tests for the Prometheus rendering of the daemon's metrics: exact text for given
 * reconcile events, cumulative histogram buckets, label escaping, limits, the clusters'
 * conditions, the build and the process. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "etcd-gitops/metrics.h"

static void pass(struct eg_metrics *m, const char *ns, const char *name, int64_t ms, size_t ready, size_t desired,
                 bool quorum) {
        struct eg_reconcile_event ev = {.kind = EG_EVENT_CLUSTER_PASS,
                                        .namespace = ns,
                                        .name = name,
                                        .duration_ms = ms,
                                        .state = EG_PLAN_CONVERGED,
                                        .ready = ready,
                                        .desired = desired,
                                        .voters = ready,
                                        .healthy_voters = ready,
                                        .quorum = quorum};
        eg_metrics_record(m, &ev);
}

static void decision(struct eg_metrics *m, const char *d, const char *outcome) {
        struct eg_reconcile_event ev = {
                .kind = EG_EVENT_DECISION, .namespace = "default", .name = "a", .decision = d, .outcome = outcome};
        eg_metrics_record(m, &ev);
}

static char *render(struct eg_metrics *m) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_metrics_render(m, &b), 0);
        return eg_buf_steal(&b);
}

/* The lines of text that start with prefix, joined. */
static char *lines_with(const char *text, const char *prefix) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
                if (strncmp(p, prefix, strlen(prefix)) == 0)
                        assert_int_equal(eg_buf_append(&b, p, n), 0);
                p += n;
        }
        assert_int_equal(eg_buf_append(&b, "", 0), 0);
        return eg_buf_steal(&b);
}

static void test_metrics__histogram_cumulative(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        pass(m, "default", "a", 3, 3, 3, true);
        pass(m, "default", "a", 60, 3, 3, true);
        pass(m, "default", "a", 2000, 2, 3, true);
        pass(m, "default", "a", 45000, 2, 3, true);
        _cleanup_free_ char *text = render(m);
        _cleanup_free_ char *h = lines_with(text, "etcd_gitops_reconcile_duration_seconds");
        assert_string_equal(
                h, "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.005\"} 1\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.01\"} 1\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.025\"} 1\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.05\"} 1\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.1\"} 2\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.25\"} 2\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"0.5\"} 2\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"1\"} 2\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"2.5\"} 3\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"5\"} 3\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"10\"} 3\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"30\"} 3\n"
                   "etcd_gitops_reconcile_duration_seconds_bucket{namespace=\"default\",name=\"a\",le=\"+Inf\"} 4\n"
                   "etcd_gitops_reconcile_duration_seconds_sum{namespace=\"default\",name=\"a\"} 47.063\n"
                   "etcd_gitops_reconcile_duration_seconds_count{namespace=\"default\",name=\"a\"} 4\n");
        /* the last pass's gauges win */
        _cleanup_free_ char *g = lines_with(text, "etcd_gitops_cluster_");
        assert_string_equal(g, "etcd_gitops_cluster_members_ready{namespace=\"default\",name=\"a\"} 2\n"
                               "etcd_gitops_cluster_members_desired{namespace=\"default\",name=\"a\"} 3\n"
                               "etcd_gitops_cluster_quorum{namespace=\"default\",name=\"a\"} 1\n"
                               "etcd_gitops_cluster_condition{namespace=\"default\",name=\"a\",type=\"Ready\","
                               "reason=\"Converged\"} 1\n"
                               "etcd_gitops_cluster_condition{namespace=\"default\",name=\"a\",type=\"Stalled\","
                               "reason=\"Converged\"} 0\n");
        eg_metrics_free(m);
}

static void test_metrics__full_text(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        /* inserted out of order: output is sorted */
        pass(m, "prod", "b", 7, 0, 3, false);
        pass(m, "default", "z", 1, 1, 1, true);
        decision(m, "noop", "skipped");
        decision(m, "create", "ok");
        decision(m, "create", "ok");
        decision(m, "create", "failed");
        assert_int_equal(eg_metrics_set_revision(m, "main@sha1:abc", "abc"), 0);
        eg_metrics_fetch_failed(m);
        eg_metrics_fetch_failed(m);
        eg_metrics_set_source(m, 2, false);
        eg_metrics_force_push(m);
        eg_metrics_record(m, &(struct eg_reconcile_event){.kind = EG_EVENT_PLATFORM_EVENT_LOST,
                                                          .namespace = "default",
                                                          .name = "z",
                                                          .decision = "create"});
        eg_metrics_webhook(m, EG_WEBHOOK_ACCEPTED);
        eg_metrics_webhook(m, EG_WEBHOOK_REJECTED);
        eg_metrics_webhook(m, EG_WEBHOOK_REJECTED);
        _cleanup_free_ char *text = render(m);
        _cleanup_free_ char *rest = lines_with(text, "etcd_gitops_");
        const char *want = "etcd_gitops_decisions_total{decision=\"create\",outcome=\"failed\"} 1\n"
                           "etcd_gitops_decisions_total{decision=\"create\",outcome=\"ok\"} 2\n"
                           "etcd_gitops_decisions_total{decision=\"noop\",outcome=\"skipped\"} 1\n"
                           "etcd_gitops_cluster_members_ready{namespace=\"default\",name=\"z\"} 1\n"
                           "etcd_gitops_cluster_members_ready{namespace=\"prod\",name=\"b\"} 0\n"
                           "etcd_gitops_cluster_members_desired{namespace=\"default\",name=\"z\"} 1\n"
                           "etcd_gitops_cluster_members_desired{namespace=\"prod\",name=\"b\"} 3\n"
                           "etcd_gitops_cluster_quorum{namespace=\"default\",name=\"z\"} 1\n"
                           "etcd_gitops_cluster_quorum{namespace=\"prod\",name=\"b\"} 0\n"
                           "etcd_gitops_cluster_condition{namespace=\"default\",name=\"a\",type=\"Ready\","
                           "reason=\"StepFailed\"} 0\n"
                           "etcd_gitops_cluster_condition{namespace=\"default\",name=\"a\",type=\"Stalled\","
                           "reason=\"StepFailed\"} 0\n"
                           "etcd_gitops_cluster_condition{namespace=\"default\",name=\"z\",type=\"Ready\","
                           "reason=\"Converged\"} 1\n"
                           "etcd_gitops_cluster_condition{namespace=\"default\",name=\"z\",type=\"Stalled\","
                           "reason=\"Converged\"} 0\n"
                           "etcd_gitops_cluster_condition{namespace=\"prod\",name=\"b\",type=\"Ready\","
                           "reason=\"Converged\"} 1\n"
                           "etcd_gitops_cluster_condition{namespace=\"prod\",name=\"b\",type=\"Stalled\","
                           "reason=\"Converged\"} 0\n"
                           "etcd_gitops_source_revision_info{revision=\"main@sha1:abc\",commit=\"abc\"} 1\n"
                           "etcd_gitops_source_errors 2\n"
                           "etcd_gitops_source_ready 0\n"
                           "etcd_gitops_source_read_failures_total 2\n"
                           "etcd_gitops_source_force_pushes_total 1\n"
                           "etcd_gitops_events_lost_total 1\n"
                           "etcd_gitops_webhooks_total{result=\"accepted\"} 1\n"
                           "etcd_gitops_webhooks_total{result=\"ping\"} 0\n"
                           "etcd_gitops_webhooks_total{result=\"rejected\"} 2\n"
                           "etcd_gitops_webhooks_total{result=\"too-large\"} 0\n"
                           "etcd_gitops_metrics_dropped_total 0\n"
                           "etcd_gitops_build_info{";
        const char *tail = strstr(rest, "etcd_gitops_decisions_total");
        assert_non_null(tail);
        assert_true(strncmp(tail, want, strlen(want)) == 0);
        assert_string_equal(strchr(tail + strlen(want), '\n'), "\n");
        /* every family is announced once, with its type */
        assert_non_null(strstr(text, "# TYPE etcd_gitops_reconcile_duration_seconds histogram\n"));
        assert_non_null(strstr(text, "# TYPE etcd_gitops_decisions_total counter\n"));
        assert_non_null(strstr(text, "# TYPE etcd_gitops_cluster_quorum gauge\n"));
        assert_non_null(strstr(text, "# TYPE etcd_gitops_source_revision_info gauge\n"));
        /* histograms in namespace order too */
        assert_true(strstr(text, "namespace=\"default\",name=\"z\",le=") <
                    strstr(text, "namespace=\"prod\",name=\"b\",le="));
        eg_metrics_free(m);
}

static void test_metrics__label_escaping(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_metrics_escape_label(&b, "a\"b\\c\nd"), 0);
        assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
        eg_buf_reset(&b);
        assert_int_equal(eg_metrics_escape_label(&b, ""), 0);
        assert_string_equal(b.data, "");
        eg_buf_done(&b);

        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        decision(m, "we\"ird", "line\nbreak\\");
        assert_int_equal(eg_metrics_set_revision(m, "rev\"1", NULL), 0);
        _cleanup_free_ char *text = render(m);
        assert_non_null(
                strstr(text, "etcd_gitops_decisions_total{decision=\"we\\\"ird\",outcome=\"line\\nbreak\\\\\"} 1\n"));
        assert_non_null(strstr(text, "etcd_gitops_source_revision_info{revision=\"rev\\\"1\",commit=\"\"} 1\n"));
        eg_metrics_free(m);
}

static void test_metrics__absent_cluster_forgotten(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        pass(m, "default", "gone", 5, 1, 1, true);
        struct eg_reconcile_event ev = {
                .kind = EG_EVENT_CLUSTER_PASS, .namespace = "default", .name = "gone", .state = EG_PLAN_ABSENT};
        eg_metrics_record(m, &ev);
        _cleanup_free_ char *text = render(m);
        assert_null(strstr(text, "name=\"gone\""));
        eg_metrics_free(m);
}

static void test_metrics__cap_on_decisions(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        for (int i = 0; i < EG_METRICS_MAX_DECISIONS + 5; i++) {
                char d[32];
                snprintf(d, sizeof(d), "d%04d", i);
                decision(m, d, "ok");
        }
        _cleanup_free_ char *text = render(m);
        assert_non_null(strstr(text, "decision=\"d0511\""));
        assert_null(strstr(text, "decision=\"d0512\""));
        assert_non_null(strstr(text, "etcd_gitops_metrics_dropped_total 5\n"));
        eg_metrics_free(m);
}

static void test_metrics__render_cap(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        pass(m, "default", "a", 1, 1, 1, true);
        struct eg_buf b;
        eg_buf_init(&b, 100);
        assert_int_equal(eg_metrics_render(m, &b), -E2BIG);
        eg_buf_done(&b);
        eg_metrics_free(m);
}

static void test_metrics__leader(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        char *text = render(m);
        /* a daemon that does not elect has no such family */
        assert_null(strstr(text, "etcd_gitops_leader"));
        free(text);
        assert_int_equal(eg_metrics_set_leader(m, "host_1_\"x\"", false), 0);
        text = render(m);
        assert_non_null(
                strstr(text, "# TYPE etcd_gitops_leader gauge\netcd_gitops_leader{identity=\"host_1_\\\"x\\\"\"} 0\n"));
        free(text);
        assert_int_equal(eg_metrics_set_leader(m, "host_1_\"x\"", true), 0);
        text = render(m);
        assert_non_null(strstr(text, "etcd_gitops_leader{identity=\"host_1_\\\"x\\\"\"} 1\n"));
        free(text);
        eg_metrics_free(m);
}

/* Through the journal: decisions counted; a backup's success sets its gauges, a failure
 * counts, a dry run does neither. */
static void test_metrics__journal_backups(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        struct eg_decision ok = {.cluster = "prod/orders",
                                 .object = "prod/nightly",
                                 .kind = "backup",
                                 .outcome = "ok",
                                 .time_ms = INT64_C(1795834800123),
                                 .duration_ms = 2500,
                                 .size_bytes = 1048608};
        eg_metrics_journal_sink(m, &ok, 1);
        struct eg_decision failed = {.cluster = "prod/orders",
                                     .object = "prod/nightly",
                                     .kind = "backup",
                                     .outcome = "failed",
                                     .time_ms = INT64_C(1795834900000)};
        eg_metrics_journal_sink(m, &failed, 2);
        eg_metrics_journal_sink(m, &failed, 3);
        struct eg_decision dry = {.cluster = "default/a",
                                  .object = "default/hourly",
                                  .kind = "backup",
                                  .outcome = "dry-run",
                                  .time_ms = INT64_C(1795834900000)};
        eg_metrics_journal_sink(m, &dry, 4);
        eg_metrics_journal_sink(m, &(struct eg_decision){.cluster = "prod/orders", .kind = "create", .outcome = "ok"},
                                5);
        _cleanup_free_ char *text = render(m);
        _cleanup_free_ char *b = lines_with(text, "etcd_gitops_backup_");
        assert_string_equal(
                b,
                "etcd_gitops_backup_last_success_timestamp_seconds{namespace=\"default\",name=\"hourly\"} 0.000\n"
                "etcd_gitops_backup_last_success_timestamp_seconds{namespace=\"prod\",name=\"nightly\"} 1795834800.123\n"
                "etcd_gitops_backup_last_duration_seconds{namespace=\"default\",name=\"hourly\"} 0.000\n"
                "etcd_gitops_backup_last_duration_seconds{namespace=\"prod\",name=\"nightly\"} 2.500\n"
                "etcd_gitops_backup_last_size_bytes{namespace=\"default\",name=\"hourly\"} 0\n"
                "etcd_gitops_backup_last_size_bytes{namespace=\"prod\",name=\"nightly\"} 1048608\n"
                "etcd_gitops_backup_failures_total{namespace=\"default\",name=\"hourly\"} 0\n"
                "etcd_gitops_backup_failures_total{namespace=\"prod\",name=\"nightly\"} 2\n");
        assert_non_null(strstr(text, "# TYPE etcd_gitops_backup_failures_total counter\n"));
        assert_non_null(strstr(text, "# TYPE etcd_gitops_backup_last_size_bytes gauge\n"));
        _cleanup_free_ char *d = lines_with(text, "etcd_gitops_decisions_total");
        assert_string_equal(d, "etcd_gitops_decisions_total{decision=\"backup\",outcome=\"dry-run\"} 1\n"
                               "etcd_gitops_decisions_total{decision=\"backup\",outcome=\"failed\"} 2\n"
                               "etcd_gitops_decisions_total{decision=\"backup\",outcome=\"ok\"} 1\n"
                               "etcd_gitops_decisions_total{decision=\"create\",outcome=\"ok\"} 1\n");
        eg_metrics_free(m);
}

static void state_pass(struct eg_metrics *m, const char *name, enum eg_plan_state st) {
        eg_metrics_record(m, &(struct eg_reconcile_event){.kind = EG_EVENT_CLUSTER_PASS,
                                                          .namespace = "default",
                                                          .name = name,
                                                          .state = st,
                                                          .ready = 1,
                                                          .desired = 1,
                                                          .voters = 1,
                                                          .healthy_voters = 1,
                                                          .quorum = true});
}

static void failed(struct eg_metrics *m, const char *cluster, const char *kind) {
        eg_metrics_journal_sink(
                m, &(struct eg_decision){.cluster = cluster, .kind = kind, .outcome = "failed", .actor = "reconcile"},
                1);
}

/* Ready and Stalled with one reason per cluster, from its last pass and the failures
 * recorded since; a reason that changes takes its series with it. */
static void test_metrics__conditions(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        state_pass(m, "blocked", EG_PLAN_BLOCKED);
        state_pass(m, "invalid", EG_PLAN_UNTOUCHED);
        state_pass(m, "lost", EG_PLAN_QUORUM_LOST);
        state_pass(m, "paused", EG_PLAN_PAUSED);
        state_pass(m, "stepping", EG_PLAN_PROGRESSING);
        /* a step that failed, then its pass */
        failed(m, "default/stepping", "add-learner");
        state_pass(m, "stepping", EG_PLAN_PROGRESSING);
        /* never observed: shown with no member series */
        failed(m, "default/unseen", "failed");
        /* a backup's failure is no step of the cluster's */
        eg_metrics_journal_sink(m,
                                &(struct eg_decision){.cluster = "default/paused",
                                                      .object = "default/nightly",
                                                      .kind = "backup",
                                                      .outcome = "failed",
                                                      .actor = "backup"},
                                2);
        _cleanup_free_ char *text = render(m);
        _cleanup_free_ char *c = lines_with(text, "etcd_gitops_cluster_condition{");
        assert_string_equal(
                c,
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"blocked\",type=\"Ready\",reason=\"Blocked\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"blocked\",type=\"Stalled\",reason=\"Blocked\"} 1\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"invalid\",type=\"Ready\",reason=\"InvalidManifest\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"invalid\",type=\"Stalled\",reason=\"InvalidManifest\"} 1\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"lost\",type=\"Ready\",reason=\"QuorumLost\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"lost\",type=\"Stalled\",reason=\"QuorumLost\"} 1\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"paused\",type=\"Ready\",reason=\"Paused\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"paused\",type=\"Stalled\",reason=\"Paused\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"stepping\",type=\"Ready\",reason=\"StepFailed\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"stepping\",type=\"Stalled\",reason=\"StepFailed\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"unseen\",type=\"Ready\",reason=\"ObserveFailed\"} 0\n"
                "etcd_gitops_cluster_condition{namespace=\"default\",name=\"unseen\",type=\"Stalled\",reason=\"ObserveFailed\"} 0\n");
        assert_null(strstr(text, "etcd_gitops_cluster_members_ready{namespace=\"default\",name=\"unseen\"}"));
        assert_null(strstr(text, "name=\"unseen\",le="));
        /* the next passes, begun after those failures: the step went through, the others
         * moved on or went away */
        usleep(3000);
        state_pass(m, "stepping", EG_PLAN_CONVERGED);
        state_pass(m, "unseen", EG_PLAN_WAITING);
        eg_metrics_record(m, &(struct eg_reconcile_event){.kind = EG_EVENT_CLUSTER_PASS,
                                                          .namespace = "default",
                                                          .name = "blocked",
                                                          .state = EG_PLAN_ABSENT});
        _cleanup_free_ char *text2 = render(m);
        _cleanup_free_ char *c2 = lines_with(text2, "etcd_gitops_cluster_condition{");
        assert_null(strstr(c2, "name=\"blocked\""));
        assert_null(strstr(c2, "StepFailed"));
        assert_null(strstr(c2, "ObserveFailed"));
        assert_non_null(
                strstr(c2, "{namespace=\"default\",name=\"stepping\",type=\"Ready\",reason=\"Converged\"} 1\n"));
        assert_non_null(strstr(c2, "{namespace=\"default\",name=\"unseen\",type=\"Ready\",reason=\"Waiting\"} 0\n"));
        assert_non_null(strstr(text2, "# TYPE etcd_gitops_cluster_condition gauge\n"));
        eg_metrics_free(m);
}

static void test_metrics__build_info(void **state) {
        struct eg_metrics *m;
        assert_int_equal(eg_metrics_new(&m), 0);
        _cleanup_free_ char *text = render(m);
        _cleanup_free_ char *b = lines_with(text, "etcd_gitops_build_info{");
        assert_true(strncmp(b, "etcd_gitops_build_info{version=\"" EG_VERSION "\",commit=\"", 40) == 0);
        assert_non_null(strstr(b, "\",libgit2=\""));
        assert_non_null(strstr(b, "\",libcurl=\""));
        assert_non_null(strstr(b, "\",openssl=\""));
        assert_non_null(strstr(b, "\"} 1\n"));
        eg_metrics_free(m);
}

static void test_metrics__process_stat_parse(void **state) {
        struct eg_process_stat st;
        /* a comm with spaces and a parenthesis of its own */
        assert_int_equal(eg_process_stat_parse("4242 (etcd (x) y) S 1 4242 4242 0 -1 4194560 1905 0 0 0 37 12 0 0 "
                                               "20 0 3 0 987654 123457536 2345 18446744073709551615 1 1 0 0 0 0 0 "
                                               "4096 0 0 0 0 17 1 0 0 0 0 0\n",
                                               &st),
                         0);
        assert_int_equal(st.utime_ticks, 37);
        assert_int_equal(st.stime_ticks, 12);
        assert_int_equal(st.start_ticks, 987654);
        assert_int_equal(st.vsize_bytes, 123457536);
        assert_int_equal(st.rss_pages, 2345);
        assert_int_equal(eg_process_stat_parse("4242 (etcd) S 1 2 3", &st), -EINVAL);
        assert_int_equal(eg_process_stat_parse("4242 etcd S 1 2 3", &st), -EINVAL);
        assert_int_equal(eg_process_stat_parse("", &st), -EINVAL);
        assert_int_equal(eg_process_stat_parse("1 (a) S 1 1 1 0 -1 0 0 0 0 0 x 12 0 0 20 0 3 0 9 1 2", &st), -EINVAL);
}

/* The values of this very process, as a scrape would show them. */
static void test_metrics__process(void **state) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        assert_int_equal(eg_metrics_render_process(&b), 0);
        double rss = 0, start = 0, fds = 0, max_fds = 0, cpu = -1;
        for (const char *p = b.data; p && *p; p = strchr(p, '\n') + 1) {
                sscanf(p, "process_resident_memory_bytes %lf", &rss);
                sscanf(p, "process_start_time_seconds %lf", &start);
                sscanf(p, "process_open_fds %lf", &fds);
                sscanf(p, "process_max_fds %lf", &max_fds);
                sscanf(p, "process_cpu_seconds_total %lf", &cpu);
        }
        double now = (double)eg_now_realtime_ms() / 1000;
        assert_true(rss > 1 << 20);
        assert_true(start > now - 3600 && start <= now + 1);
        assert_true(fds >= 3 && fds <= max_fds);
        assert_true(cpu >= 0);
        assert_non_null(strstr(b.data, "# TYPE process_cpu_seconds_total counter\n"));
        assert_non_null(strstr(b.data, "# TYPE process_virtual_memory_bytes gauge\n"));
        eg_buf_done(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_metrics__histogram_cumulative),
                cmocka_unit_test(test_metrics__full_text),
                cmocka_unit_test(test_metrics__label_escaping),
                cmocka_unit_test(test_metrics__absent_cluster_forgotten),
                cmocka_unit_test(test_metrics__cap_on_decisions),
                cmocka_unit_test(test_metrics__render_cap),
                cmocka_unit_test(test_metrics__leader),
                cmocka_unit_test(test_metrics__journal_backups),
                cmocka_unit_test(test_metrics__conditions),
                cmocka_unit_test(test_metrics__build_info),
                cmocka_unit_test(test_metrics__process_stat_parse),
                cmocka_unit_test(test_metrics__process),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
