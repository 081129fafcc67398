/* Tests for the etcd gateway client against real etcd processes, and for its stream decoder. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../lib/etcd_proc.h"
#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"

extern char **environ;

#define START_TIMEOUT_MS 30000

/* One single-member cluster shared by the tests that only read or add keys. */
static struct etcd_proc e1;

static int group_setup(void **state) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -1;
        int r = etcd_proc_start_single(&e1, "m1", START_TIMEOUT_MS);
        if (r < 0) {
                fprintf(stderr, "cannot start etcd: %s\n", strerror(-r));
                etcd_proc_cleanup(&e1);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        etcd_proc_cleanup(&e1);
        curl_global_cleanup();
        return 0;
}

static struct eg_etcd *client_for(char *const *endpoints, size_t n, int64_t timeout_ms) {
        struct eg_etcd_options opt = {.timeout_ms = timeout_ms, .connect_timeout_ms = 300};
        struct eg_etcd *c = NULL;
        assert_int_equal(eg_etcd_new(endpoints, n, &opt, &c), 0);
        assert_non_null(c);
        return c;
}

static struct eg_etcd *client_e1(void) {
        char *eps[] = {e1.client_url};
        return client_for(eps, 1, 5000);
}

/* A socket that completes TCP handshakes (backlog) but never answers: a hung server. */
static int blackhole(char url[static 64]) {
        int fd, port;
        assert_int_equal(etcd_proc_bind_any(&fd, &port), 0);
        assert_int_equal(listen(fd, 16), 0);
        snprintf(url, 64, "http://127.0.0.1:%d", port);
        return fd;
}

static void dead_url(char url[static 64]) {
        int port = etcd_proc_free_port();
        assert_true(port > 0);
        snprintf(url, 64, "http://127.0.0.1:%d", port);
}

static void test_etcd__member_list(void **state) {
        struct eg_etcd *c = client_e1();
        struct eg_etcd_member_list l = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_true(l.cluster_id != 0);
        struct eg_etcd_member *m = &l.members[0];
        assert_true(m->id != 0);
        assert_string_equal(m->name, "m1");
        assert_int_equal(m->n_peer_urls, 1);
        assert_string_equal(m->peer_urls[0], e1.peer_url);
        assert_int_equal(m->n_client_urls, 1);
        assert_string_equal(m->client_urls[0], e1.client_url);
        assert_false(m->is_learner);

        /* the same id comes back from status: both are parsed from decimal strings */
        struct eg_etcd_status s = {0};
        assert_int_equal(eg_etcd_status_of(c, e1.client_url, &s, &err), 0);
        assert_true(s.member_id == m->id);
        eg_etcd_status_done(&s);
        eg_etcd_member_list_done(&l);
        eg_error_done(&err);
        eg_etcd_free(c);
}

static void test_etcd__put_get(void **state) {
        struct eg_etcd *c = client_e1();
        struct eg_error err = {0};
        char *v = NULL;
        size_t len = 0;

        assert_int_equal(eg_etcd_put(c, "/test/plain", "hello", 5, &err), 0);
        assert_int_equal(eg_etcd_get(c, "/test/plain", &v, &len, &err), 0);
        assert_int_equal(len, 5);
        assert_string_equal(v, "hello");
        free(v);

        const unsigned char bin[] = {0x00, 0xff, 0x10, 0x00, '\n', '"', 0x80, 0x7f, 0x00};
        assert_int_equal(eg_etcd_put(c, "/test/bin", bin, sizeof(bin), &err), 0);
        assert_int_equal(eg_etcd_get(c, "/test/bin", &v, &len, &err), 0);
        assert_int_equal(len, sizeof(bin));
        assert_memory_equal(v, bin, sizeof(bin));
        assert_int_equal(v[len], 0);
        free(v);

        assert_int_equal(eg_etcd_put(c, "/test/empty", "", 0, &err), 0);
        assert_int_equal(eg_etcd_get(c, "/test/empty", &v, &len, &err), 0);
        assert_int_equal(len, 0);
        assert_string_equal(v, "");
        free(v);

        v = NULL;
        assert_int_equal(eg_etcd_get(c, "/test/missing", &v, &len, &err), -ENOENT);
        assert_null(v);
        assert_non_null(err.message);
        assert_non_null(strstr(err.message, "/test/missing"));
        eg_error_done(&err);
        eg_etcd_free(c);
}

static void test_etcd__status_and_health(void **state) {
        struct eg_etcd *c = client_e1();
        struct eg_error err = {0};
        struct eg_etcd_status s0 = {0}, s1 = {0};
        assert_int_equal(eg_etcd_status_of(c, e1.client_url, &s0, &err), 0);
        assert_true(s0.member_id != 0);
        assert_true(s0.leader == s0.member_id);
        assert_true(s0.raft_index > 0);
        assert_true(s0.raft_term > 0);
        assert_true(s0.db_size > 0);
        assert_true(s0.revision >= 1);
        assert_false(s0.is_learner);
        assert_non_null(s0.version);
        assert_true(eg_str_has_prefix(s0.version, "3."));

        assert_int_equal(eg_etcd_put(c, "/test/rev", "x", 1, &err), 0);
        assert_int_equal(eg_etcd_status_of(c, e1.client_url, &s1, &err), 0);
        assert_int_equal(s1.revision, s0.revision + 1);
        assert_true(s1.raft_index > s0.raft_index);

        assert_int_equal(eg_etcd_health_of(c, e1.client_url, &err), 0);

        char dead[64];
        dead_url(dead);
        assert_int_equal(eg_etcd_health_of(c, dead, &err), -ECONNREFUSED);
        assert_string_equal(err.endpoint, dead);
        assert_int_equal(err.http_status, 0);
        assert_non_null(strstr(err.message, dead));

        eg_etcd_status_done(&s0);
        eg_etcd_status_done(&s1);
        eg_error_done(&err);
        eg_etcd_free(c);
}

struct caught_up {
        struct eg_etcd *c;
        const char *learner;
        const char *leader;
};

static bool learner_caught_up(void *userdata) {
        struct caught_up *cu = userdata;
        struct eg_etcd_status ls = {0}, ll = {0};
        bool ok = eg_etcd_status_of(cu->c, cu->leader, &ll, NULL) >= 0 &&
                  eg_etcd_status_of(cu->c, cu->learner, &ls, NULL) >= 0 && ls.is_learner && ls.leader == ll.member_id &&
                  ls.raft_index >= ll.raft_index;
        eg_etcd_status_done(&ls);
        eg_etcd_status_done(&ll);
        return ok;
}

static const struct eg_etcd_member *find_member(const struct eg_etcd_member_list *l, uint64_t id) {
        for (size_t i = 0; i < l->n; i++)
                if (l->members[i].id == id)
                        return &l->members[i];
        return NULL;
}

static void test_etcd__learner_lifecycle(void **state) {
        struct etcd_proc *e2 = *state;
        struct eg_etcd *c = client_e1();
        struct eg_error err = {0};
        struct eg_etcd_member_list l = {0};
        uint64_t id = 0, id2 = 0;

        assert_int_equal(etcd_proc_init(e2), 0);
        assert_int_equal(eg_etcd_member_add(c, e2->peer_url, true, &id, &err), 0);
        assert_true(id != 0);
        assert_int_equal(eg_etcd_member_add(c, e2->peer_url, true, &id2, &err), -EEXIST);
        assert_int_equal(id2, 0);
        assert_non_null(err.message);

        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 2);
        const struct eg_etcd_member *m = find_member(&l, id);
        assert_non_null(m);
        assert_true(m->is_learner);
        assert_string_equal(m->name, "");
        assert_int_equal(m->n_client_urls, 0);
        assert_int_equal(m->n_peer_urls, 1);
        assert_string_equal(m->peer_urls[0], e2->peer_url);
        eg_etcd_member_list_done(&l);

        /* not started yet, so certainly not in sync */
        assert_int_equal(eg_etcd_member_promote(c, id, &err), -EAGAIN);
        assert_int_equal(err.http_status, 412);
        assert_string_equal(err.endpoint, e1.client_url);

        _cleanup_free_ char *initial = eg_strdup_printf("m1=%s,m2=%s", e1.peer_url, e2->peer_url);
        assert_non_null(initial);
        assert_int_equal(etcd_proc_start(e2, "m2", initial, "existing", "ignored-when-joining"), 0);
        assert_int_equal(etcd_proc_wait_healthy(e2, START_TIMEOUT_MS), 0);
        struct caught_up cu = {c, e2->client_url, e1.client_url};
        assert_int_equal(eg_wait_for(learner_caught_up, &cu, 20000, 100), 0);

        /* a learner listed first (names sort as text: "c-10" before "c-2") refuses all but its
         * status; the voters behind it answer */
        char *learner_only[] = {e2->client_url};
        struct eg_etcd *lc = client_for(learner_only, 1, 5000);
        assert_true(eg_etcd_member_list(lc, &l, &err) < 0);
        assert_non_null(strstr(err.message, "not supported for learner"));
        eg_etcd_free(lc);
        char *learner_first[] = {e2->client_url, e1.client_url};
        lc = client_for(learner_first, 2, 5000);
        assert_int_equal(eg_etcd_member_list(lc, &l, &err), 0);
        assert_int_equal(l.n, 2);
        eg_etcd_member_list_done(&l);
        eg_etcd_free(lc);

        int r;
        int64_t deadline = eg_now_monotonic_ms() + 20000;
        while ((r = eg_etcd_member_promote(c, id, &err)) == -EAGAIN && eg_now_monotonic_ms() < deadline)
                etcd_proc_sleep_ms(100);
        assert_int_equal(r, 0);

        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 2);
        m = find_member(&l, id);
        assert_non_null(m);
        assert_false(m->is_learner);
        assert_string_equal(m->name, "m2");
        assert_int_equal(m->n_client_urls, 1);
        assert_string_equal(m->client_urls[0], e2->client_url);
        eg_etcd_member_list_done(&l);

        /* etcd refuses to remove a voter until the rest have been connected for 5 s */
        deadline = eg_now_monotonic_ms() + 20000;
        while ((r = eg_etcd_member_remove(c, id, &err)) == -EAGAIN && eg_now_monotonic_ms() < deadline)
                etcd_proc_sleep_ms(200);
        assert_int_equal(r, 0);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_null(find_member(&l, id));
        eg_etcd_member_list_done(&l);

        assert_int_equal(eg_etcd_member_remove(c, id, &err), -ENOENT);
        assert_int_equal(eg_etcd_member_promote(c, id, &err), -ENOENT);
        assert_int_equal(eg_etcd_member_remove(c, 0x8000000000000001ULL, &err), -ENOENT);
        assert_int_equal(err.http_status, 404);
        assert_non_null(strstr(err.message, "member not found"));

        eg_error_done(&err);
        eg_etcd_free(c);
}

static int e2_setup(void **state) {
        struct etcd_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -1;
        *state = p;
        return 0;
}

static int e2_teardown(void **state) {
        etcd_proc_cleanup(*state);
        free(*state);
        return 0;
}

static void test_etcd__tls(void **state) {
        struct etcd_proc *e = *state;
        assert_int_equal(etcd_proc_init(e), 0);
        assert_int_equal(etcd_proc_use_tls(e), 0);
        assert_true(eg_str_has_prefix(e->client_url, "https://"));
        assert_int_equal(etcd_proc_start(e, "tls1", NULL, "new", "eg-test-tls"), 0);
        assert_int_equal(etcd_proc_wait_healthy(e, START_TIMEOUT_MS), 0);

        char *eps[] = {e->client_url};
        struct eg_etcd_options opt = {.tls = {e->ca_file, e->cert_file, e->key_file}};
        struct eg_etcd *c = NULL;
        struct eg_error err = {0};
        struct eg_etcd_member_list l = {0};
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.members[0].name, "tls1");
        assert_string_equal(l.members[0].client_urls[0], e->client_url);
        eg_etcd_member_list_done(&l);
        assert_int_equal(eg_etcd_health_of(c, e->client_url, &err), 0);
        char *v = NULL;
        assert_int_equal(eg_etcd_put(c, "/tls", "yes", 3, &err), 0);
        assert_int_equal(eg_etcd_get(c, "/tls", &v, NULL, &err), 0);
        assert_string_equal(v, "yes");
        free(v);
        eg_etcd_free(c);

        /* no CA: the server's certificate cannot be verified */
        opt.tls.ca_file = NULL;
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), -EPROTO);
        assert_int_equal(err.http_status, 0);
        assert_non_null(strstr(err.message, e->client_url));
        eg_etcd_free(c);

        /* no client certificate: etcd drops the connection */
        opt.tls = (struct eg_tls_client){.ca_file = e->ca_file};
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        int r = eg_etcd_member_list(c, &l, &err);
        assert_true(r == -ECONNRESET || r == -EPROTO);
        assert_int_equal(err.http_status, 0);
        eg_etcd_free(c);
        eg_error_done(&err);
}

static void test_etcd__failover(void **state) {
        char dead[64], hung[64];
        dead_url(dead);
        int hole = blackhole(hung);
        struct eg_error err = {0};
        struct eg_etcd_member_list l = {0};

        char *eps[] = {dead, e1.client_url};
        struct eg_etcd *c = client_for(eps, 2, 600);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.members[0].name, "m1");
        eg_etcd_member_list_done(&l);
        assert_int_equal(eg_etcd_put(c, "/test/failover", "1", 1, &err), 0);
        eg_etcd_free(c);

        /* a hung endpoint costs one timeout, then the live one is remembered and tried first */
        char *eps2[] = {hung, e1.client_url};
        c = client_for(eps2, 2, 600);
        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        int64_t t1 = eg_now_monotonic_ms();
        eg_etcd_member_list_done(&l);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), 0);
        int64_t t2 = eg_now_monotonic_ms();
        eg_etcd_member_list_done(&l);
        assert_true(t1 - t0 >= 590);
        assert_true(t2 - t1 < 500);
        eg_etcd_free(c);

        /* an etcd error reply is final: the hung endpoint after it is never tried */
        char *eps3[] = {e1.client_url, hung};
        c = client_for(eps3, 2, 600);
        t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_etcd_member_remove(c, 12345, &err), -ENOENT);
        assert_true(eg_now_monotonic_ms() - t0 < 500);
        assert_string_equal(err.endpoint, e1.client_url);
        eg_etcd_free(c);

        close(hole);
        eg_error_done(&err);
}

static void test_etcd__all_dead(void **state) {
        char dead[64], hung[64];
        dead_url(dead);
        int hole = blackhole(hung);
        struct eg_error err = {0};
        struct eg_etcd_member_list l = {0};

        char *eps[] = {dead};
        struct eg_etcd *c = client_for(eps, 1, 400);
        assert_int_equal(eg_etcd_member_list(c, &l, &err), -ECONNREFUSED);
        assert_string_equal(err.endpoint, dead);
        assert_int_equal(err.http_status, 0);
        assert_non_null(strstr(err.message, dead));
        eg_etcd_free(c);

        char *eps2[] = {dead, hung};
        c = client_for(eps2, 2, 400);
        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_etcd_put(c, "/k", "v", 1, &err), -ETIMEDOUT);
        int64_t elapsed = eg_now_monotonic_ms() - t0;
        assert_true(elapsed >= 390);
        assert_true(elapsed < 2000);
        assert_non_null(strstr(err.message, dead));
        assert_non_null(strstr(err.message, hung));
        assert_string_equal(err.endpoint, hung);
        eg_etcd_free(c);

        close(hole);
        eg_error_done(&err);
}

static int write_sink(const void *data, size_t len, void *userdata) {
        return eg_write_all(*(int *)userdata, data, len);
}

/* Runs argv with stdout to out_path; returns the exit status or -1. */
static int run(char *const argv[], const char *out_path) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -1;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_etcd__snapshot(void **state) {
        struct eg_etcd *c = client_e1();
        struct eg_error err = {0};
        /* enough data for several 32 KiB stream messages */
        char val[4096];
        memset(val, 'v', sizeof(val));
        for (int i = 0; i < 64; i++) {
                char key[32];
                snprintf(key, sizeof(key), "/snap/%02d", i);
                assert_int_equal(eg_etcd_put(c, key, val, sizeof(val), &err), 0);
        }
        struct eg_etcd_status s = {0};
        assert_int_equal(eg_etcd_status_of(c, e1.client_url, &s, &err), 0);

        _cleanup_free_ char *path = eg_path_join(e1.dir, "snap.db");
        _cleanup_free_ char *out = eg_path_join(e1.dir, "snap.json");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        char sha[65] = {0};
        uint64_t size = 0;
        assert_int_equal(eg_etcd_snapshot(c, e1.client_url, write_sink, &fd, sha, &size, &err), 0);
        assert_int_equal(close(fd), 0);
        assert_true(size > 64 * 4096);

        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(path, (size_t)64 << 20, &data, &len), 0);
        assert_int_equal(len, size);
        char file_sha[65];
        eg_sha256_hex(data, len, file_sha);
        assert_string_equal(sha, file_sha);

        char *argv[] = {"etcdctl", "--write-out=json", "snapshot", "status", path, NULL};
        assert_int_equal(run(argv, out), 0);
        _cleanup_free_ char *json = NULL;
        assert_int_equal(eg_read_file(out, 1 << 20, &json, &len), 0);
        json_t *o = json_loads(json, 0, NULL);
        assert_non_null(o);
        assert_int_equal(json_integer_value(json_object_get(o, "revision")), s.revision);
        assert_int_equal(json_integer_value(json_object_get(o, "totalSize")), size);
        assert_true(json_integer_value(json_object_get(o, "totalKey")) >= 64);
        json_decref(o);

        eg_etcd_status_done(&s);
        eg_error_done(&err);
        eg_etcd_free(c);
}

/* ---- the stream decoder on crafted input ---- */

struct collected {
        struct eg_buf buf;
        int fail_after; /* sink calls before it fails; -1 never */
};

static int collect_sink(const void *data, size_t len, void *userdata) {
        struct collected *col = userdata;
        if (col->fail_after == 0)
                return -ENOSPC;
        if (col->fail_after > 0)
                col->fail_after--;
        return eg_buf_append(&col->buf, data, len);
}

static unsigned char *make_db(size_t n) {
        unsigned char *db = malloc(n);
        assert_non_null(db);
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                db[i] = (unsigned char)x;
        }
        return db;
}

/* Builds the gateway's stream for db + sha256(db), split into blobs of the given sizes
 * (the last size repeats). corrupt flips a bit of the hash. */
static char *make_stream(const unsigned char *db, size_t n, const size_t *sizes, size_t n_sizes, bool corrupt) {
        size_t total = n + 32;
        unsigned char *all = malloc(total);
        assert_non_null(all);
        memcpy(all, db, n);
        unsigned int hl = 32;
        EVP_Digest(db, n, all + n, &hl, EVP_sha256(), NULL);
        if (corrupt)
                all[n + 5] ^= 0x01;
        struct eg_buf s;
        eg_buf_init(&s, 0);
        size_t off = 0;
        for (size_t i = 0; off < total; i++) {
                size_t k = sizes[i < n_sizes ? i : n_sizes - 1];
                if (k > total - off)
                        k = total - off;
                char *b64 = malloc(4 * ((k + 2) / 3) + 1);
                assert_non_null(b64);
                EVP_EncodeBlock((unsigned char *)b64, all + off, (int)k);
                off += k;
                uint64_t remaining = off >= n ? 0 : n - off;
                assert_int_equal(eg_buf_printf(&s,
                                               "{\"result\":{\"remainingBytes\":\"%" PRIu64 "\",\"blob\":\"%s\"}}\n",
                                               remaining, b64),
                                 0);
                free(b64);
        }
        free(all);
        return eg_buf_steal(&s);
}

static int decode_in_steps(const char *stream, size_t len, size_t step, struct collected *col, char sha[static 65],
                           uint64_t *size) {
        struct eg_etcd_snapshot_decoder *d = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_snapshot_decoder_new(collect_sink, col, &d), 0);
        int r = 0;
        for (size_t off = 0; off < len && r >= 0; off += step)
                r = eg_etcd_snapshot_decoder_feed(d, stream + off, len - off < step ? len - off : step, &err);
        if (r >= 0)
                r = eg_etcd_snapshot_decoder_finish(d, sha, size, &err);
        if (r < 0)
                assert_non_null(err.message);
        eg_etcd_snapshot_decoder_free(d);
        eg_error_done(&err);
        return r;
}

static void test_etcd__snapshot_decoder(void **state) {
        const size_t n = 100000;
        unsigned char *db = make_db(n);
        char want[65];
        eg_sha256_hex(db, n, want);
        const size_t gateway[] = {32768};
        /* the hash straddles messages, and a message smaller than the hash */
        const size_t odd[] = {10, 5, 40000, 59980, 20, 7};
        const size_t steps[] = {1, 3, 4096, 1 << 20};

        for (size_t v = 0; v < 2; v++) {
                char *stream = v == 0 ? make_stream(db, n, gateway, 1, false)
                                      : make_stream(db, n, odd, EG_ELEMENTSOF(odd), false);
                for (size_t i = 0; i < EG_ELEMENTSOF(steps); i++) {
                        struct collected col = {.fail_after = -1};
                        eg_buf_init(&col.buf, 0);
                        char sha[65] = {0};
                        uint64_t size = 0;
                        assert_int_equal(decode_in_steps(stream, strlen(stream), steps[i], &col, sha, &size), 0);
                        assert_int_equal(size, n);
                        assert_int_equal(col.buf.len, n);
                        assert_memory_equal(col.buf.data, db, n);
                        assert_string_equal(sha, want);
                        eg_buf_done(&col.buf);
                }
                free(stream);
        }
        free(db);
}

static void test_etcd__snapshot_decoder_rejects(void **state) {
        const size_t n = 70000;
        unsigned char *db = make_db(n);
        const size_t gateway[] = {32768};
        char sha[65] = "unchanged";
        uint64_t size = 7;
        struct collected col = {.fail_after = -1};
        eg_buf_init(&col.buf, 0);

        /* wrong trailing hash */
        char *bad = make_stream(db, n, gateway, 1, true);
        assert_int_equal(decode_in_steps(bad, strlen(bad), 1000, &col, sha, &size), -EBADMSG);
        /* the sink never saw the hash bytes even so */
        assert_int_equal(col.buf.len, n);
        free(bad);

        char *good = make_stream(db, n, gateway, 1, false);
        size_t len = strlen(good);
        /* cut inside the last message */
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_in_steps(good, len - 20, 1000, &col, sha, &size), -EBADMSG);
        /* cut at a message boundary: the hash message is missing */
        const char *last = good + len - 1;
        while (last > good && last[-1] != '\n')
                last--;
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_in_steps(good, (size_t)(last - good), 1000, &col, sha, &size), -EBADMSG);
        /* only the first message: remainingBytes says more was coming */
        const char *first_end = strchr(good, '\n') + 1;
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_in_steps(good, (size_t)(first_end - good), 1000, &col, sha, &size), -EBADMSG);
        /* the same with etcd 3.4's key spelling */
        struct eg_buf sb;
        eg_buf_init(&sb, 0);
        for (const char *q = good, *k; *q; q = k + 14) {
                k = strstr(q, "remainingBytes");
                if (!k) {
                        assert_int_equal(eg_buf_puts(&sb, q), 0);
                        break;
                }
                assert_int_equal(eg_buf_append(&sb, q, (size_t)(k - q)), 0);
                assert_int_equal(eg_buf_puts(&sb, "remaining_bytes"), 0);
        }
        char *snake = eg_buf_steal(&sb);
        assert_non_null(strstr(snake, "remaining_bytes"));
        const char *snake_end = strchr(snake, '\n') + 1;
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_in_steps(snake, (size_t)(snake_end - snake), 1000, &col, sha, &size), -EBADMSG);
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_in_steps(snake, strlen(snake), 1000, &col, sha, &size), 0);
        assert_int_equal(col.buf.len, n);
        free(snake);
        snprintf(sha, sizeof(sha), "unchanged");
        size = 7;
        /* nothing at all */
        assert_int_equal(decode_in_steps("", 0, 1, &col, sha, &size), -EBADMSG);
        /* an error object in the stream */
        const char *err_stream = "{\"error\":{\"grpc_code\":14,\"message\":\"etcdserver: stopped\"}}\n";
        assert_int_equal(decode_in_steps(err_stream, strlen(err_stream), 7, &col, sha, &size), -EIO);
        /* bad base64 */
        const char *b64 = "{\"result\":{\"blob\":\"AA-A\"}}\n";
        assert_int_equal(decode_in_steps(b64, strlen(b64), 100, &col, sha, &size), -EBADMSG);
        /* a sink error stops the stream and is returned */
        struct collected failing = {.fail_after = 1};
        eg_buf_init(&failing.buf, 0);
        assert_int_equal(decode_in_steps(good, len, 4096, &failing, sha, &size), -ENOSPC);
        assert_int_equal(failing.buf.len, 32768 - 32);

        assert_string_equal(sha, "unchanged");
        assert_int_equal(size, 7);
        eg_buf_done(&failing.buf);
        eg_buf_done(&col.buf);
        free(good);
        free(db);
}

static void test_etcd__id_parse(void **state) {
        const char *json = "{\"header\":{\"cluster_id\":\"9223372036854775808\"},\"members\":["
                           "{\"ID\":\"18446744073709551615\",\"name\":\"a\",\"peerURLs\":[\"http://a:2380\"]},"
                           "{\"ID\":\"9007199254740993\",\"isLearner\":true},"
                           "{\"ID\":9007199254740995,\"clientURLs\":[\"http://c:2379\",\"http://c2:2379\"]}]}";
        struct eg_etcd_member_list l = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_member_list_parse(json, strlen(json), &l, &err), 0);
        assert_true(l.cluster_id == 9223372036854775808ULL);
        assert_int_equal(l.n, 3);
        assert_true(l.members[0].id == UINT64_MAX);
        assert_string_equal(l.members[0].name, "a");
        assert_int_equal(l.members[0].n_peer_urls, 1);
        assert_string_equal(l.members[0].peer_urls[0], "http://a:2380");
        assert_false(l.members[0].is_learner);
        /* 2^53 + 1 and 2^53 + 3 have no double: a trip through one would change them */
        assert_true(l.members[1].id == 9007199254740993ULL);
        assert_true(l.members[1].is_learner);
        assert_string_equal(l.members[1].name, "");
        assert_int_equal(l.members[1].n_peer_urls, 0);
        assert_true(l.members[2].id == 9007199254740995ULL);
        assert_int_equal(l.members[2].n_client_urls, 2);
        assert_string_equal(l.members[2].client_urls[1], "http://c2:2379");
        eg_etcd_member_list_done(&l);

        const char *bad[] = {
                "{\"members\":[{\"ID\":\"18446744073709551616\"}]}",
                "{\"members\":[{\"ID\":\"-1\"}]}",
                "{\"members\":[{\"ID\":\"1e3\"}]}",
                "{\"members\":[{\"ID\":1.5}]}",
                "{\"members\":[{\"ID\":-2}]}",
                "{\"members\":[{\"ID\":\"1\",\"peerURLs\":\"x\"}]}",
                "{\"members\":{}}",
                "[]",
                "{",
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++) {
                assert_int_equal(eg_etcd_member_list_parse(bad[i], strlen(bad[i]), &l, &err), -EBADMSG);
                assert_non_null(err.message);
        }
        eg_error_done(&err);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_etcd__id_parse),
                cmocka_unit_test(test_etcd__snapshot_decoder),
                cmocka_unit_test(test_etcd__snapshot_decoder_rejects),
                cmocka_unit_test(test_etcd__member_list),
                cmocka_unit_test(test_etcd__put_get),
                cmocka_unit_test(test_etcd__status_and_health),
                cmocka_unit_test(test_etcd__failover),
                cmocka_unit_test(test_etcd__all_dead),
                cmocka_unit_test(test_etcd__snapshot),
                cmocka_unit_test_setup_teardown(test_etcd__learner_lifecycle, e2_setup, e2_teardown),
                cmocka_unit_test_setup_teardown(test_etcd__tls, e2_setup, e2_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
