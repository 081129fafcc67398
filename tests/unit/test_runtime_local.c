/* Tests for the local runtime against real etcd processes on 127.0.0.1 in a temporary state dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-gitops/runtime.h"

extern char **environ;

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define ETCD_VERSION "3.4.23"
#define HEALTH_TIMEOUT_MS 30000
#define CMD_TIMEOUT_MS 20000

struct fixture {
        char *dir;
        char *state_dir;
        char *bin_dir;
        int port_base;
        struct eg_runtime *rt;
        struct eg_runtime *rt_extra; /* a second instance a test made, freed on teardown */
        pid_t child;                 /* a helper process a test started, killed on teardown */
        json_t *env;
        struct eg_pod_policy pod;
        struct eg_cluster_spec spec;
};

static struct eg_runtime *new_runtime(struct fixture *fx, const char *bin_dir) {
        struct eg_runtime_local_options opt = {
                .state_dir = fx->state_dir,
                .etcd_bin_dir = bin_dir,
                .port_base = fx->port_base,
                .stop_grace_ms = 5000,
        };
        struct eg_runtime *rt = NULL;
        struct eg_error err = {0};
        int r = eg_runtime_local_new(&opt, &rt, &err);
        if (r < 0)
                fail_msg("eg_runtime_local_new: %s", err.message);
        eg_error_done(&err);
        return rt;
}

static int setup(void **state) {
        struct fixture *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        char tmpl[] = "/tmp/eg-test-runtime-XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        fx->dir = strdup(tmpl);
        fx->state_dir = eg_path_join(tmpl, "state");
        fx->bin_dir = eg_path_join(tmpl, "bin");
        assert_int_equal(eg_mkdir_p(fx->bin_dir, 0755), 0);
        /* other tests run concurrently: spread over 40000-59999 so ranges rarely meet */
        uint32_t rnd = 0;
        assert_int_equal(getrandom(&rnd, sizeof(rnd), 0), (ssize_t)sizeof(rnd));
        fx->port_base = 40000 + (int)(rnd % 20000);
        fx->env = json_pack("[{s:s, s:s}]", "name", "EG_TEST_MARK", "value", "hello");
        fx->pod.etcd_env = fx->env;
        fx->spec = (struct eg_cluster_spec){.size = 3, .version = (char *)ETCD_VERSION, .pod = &fx->pod};
        fx->rt = new_runtime(fx, fx->bin_dir);
        *state = fx;
        return 0;
}

/* Runs on failure too: every recorded member is stopped and the state removed. */
static int teardown(void **state) {
        struct fixture *fx = *state;
        struct eg_runtime_cluster *cs = NULL;
        size_t n = 0;
        struct eg_error err = {0};
        if (fx->rt && eg_runtime_list(fx->rt, NULL, 0, &cs, &n, &err) == 0) {
                for (size_t i = 0; i < n; i++)
                        eg_runtime_delete_cluster(fx->rt, cs[i].namespace, cs[i].name, true, &err);
                eg_runtime_clusters_free(cs, n);
        }
        eg_error_done(&err);
        if (fx->rt)
                eg_runtime_free(fx->rt);
        if (fx->rt_extra)
                eg_runtime_free(fx->rt_extra);
        if (fx->child > 0) {
                kill(fx->child, SIGKILL);
                waitpid(fx->child, NULL, 0);
        }
        eg_rm_rf(fx->dir);
        json_decref(fx->env);
        free(fx->dir);
        free(fx->state_dir);
        free(fx->bin_dir);
        free(fx);
        return 0;
}

/* ---- helpers ---- */

static size_t collect(char *data, size_t size, size_t nmemb, void *userdata) {
        return eg_buf_append(userdata, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

static bool health_ok(void *userdata) {
        const char *client_url = userdata;
        _cleanup_free_ char *url = eg_strdup_printf("%s/health", client_url);
        struct eg_buf body;
        eg_buf_init(&body, 1 << 16);
        CURL *c = curl_easy_init();
        if (!c || !url)
                return false;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        long status = 0;
        bool ok = false;
        if (curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status == 200 && body.data) {
                json_t *j = json_loads(body.data, 0, NULL);
                const char *h = json_string_value(json_object_get(j, "health"));
                ok = h && strcmp(h, "true") == 0;
                json_decref(j);
        }
        curl_easy_cleanup(c);
        eg_buf_done(&body);
        return ok;
}

static void assert_healthy(const char *client_url) {
        if (eg_wait_for(health_ok, (void *)client_url, HEALTH_TIMEOUT_MS, 100) < 0)
                fail_msg("%s/health did not report healthy within %d ms", client_url, HEALTH_TIMEOUT_MS);
}

/* Runs argv with a deadline; returns the exit status (or -1) and its stdout+stderr. */
static int run_cmd(char *const argv[], char **ret_out) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], 1);
        posix_spawn_file_actions_adddup2(&fa, p[1], 2);
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        assert_int_equal(r, 0);
        struct eg_buf out;
        eg_buf_init(&out, 1 << 20);
        int64_t deadline = eg_now_monotonic_ms() + CMD_TIMEOUT_MS;
        bool timed_out = false;
        for (;;) {
                int64_t left = deadline - eg_now_monotonic_ms();
                struct pollfd pfd = {.fd = p[0], .events = POLLIN};
                if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
                        timed_out = true;
                        break;
                }
                char chunk[4096];
                ssize_t n = read(p[0], chunk, sizeof(chunk));
                if (n <= 0 || eg_buf_append(&out, chunk, (size_t)n) < 0)
                        break;
        }
        close(p[0]);
        if (timed_out)
                kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        *ret_out = eg_buf_steal(&out);
        return !timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void observe(struct fixture *fx, struct eg_runtime *rt, const char *name, struct eg_runtime_cluster *c) {
        struct eg_error err = {0};
        int r = eg_runtime_observe(rt, "default", name, c, &err);
        if (r < 0)
                fail_msg("observe %s: %s (%d)", name, err.message, r);
        eg_error_done(&err);
}

static const struct eg_runtime_member *find_member(const struct eg_runtime_cluster *c, const char *name) {
        for (size_t i = 0; i < c->n_members; i++)
                if (strcmp(c->members[i].name, name) == 0)
                        return &c->members[i];
        fail_msg("member %s not observed", name);
        return NULL;
}

static void bootstrap(struct fixture *fx, const char *name, char *const *members, size_t n) {
        struct eg_runtime_target t = {"default", name, &fx->spec, "rev-1"};
        struct eg_error err = {0};
        int r = eg_runtime_bootstrap(fx->rt, &t, members, n, &err);
        if (r < 0)
                fail_msg("bootstrap %s: %s (%d)", name, err.message, r);
        eg_error_done(&err);
}

/* Gone, or a zombie nobody has reaped yet: either way not a running process. */
static bool pid_gone(int64_t pid) {
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/stat", pid);
        _cleanup_free_ char *data = NULL;
        if (eg_read_file(path, 1 << 16, &data, NULL) < 0)
                return true;
        const char *p = strrchr(data, ')');
        return p && (p[2] == 'Z' || p[2] == 'X');
}

static uint64_t proc_start_time(int64_t pid) {
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/stat", pid);
        _cleanup_free_ char *data = NULL;
        assert_int_equal(eg_read_file(path, 1 << 16, &data, NULL), 0);
        char *p = strrchr(data, ')') + 2;
        for (int field = 3; field < 22; field++)
                p = strchr(p, ' ') + 1;
        return strtoull(p, NULL, 10);
}

static bool environ_has(int64_t pid, const char *entry) {
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/environ", pid);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(path, 1 << 20, &data, &len), 0);
        for (const char *p = data; p < data + len; p += strlen(p) + 1)
                if (eg_str_has_prefix(p, entry))
                        return true;
        return false;
}

static json_t *load_record(struct fixture *fx, const char *name) {
        _cleanup_free_ char *path = eg_strdup_printf("%s/clusters/default/%s/cluster.json", fx->state_dir, name);
        json_error_t je;
        json_t *j = json_load_file(path, 0, &je);
        if (!j)
                fail_msg("%s: %s", path, je.text);
        return j;
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...) {
        struct eg_buf path;
        eg_buf_init(&path, 0);
        va_list ap;
        va_start(ap, fmt);
        assert_int_equal(eg_buf_vprintf(&path, fmt, ap), 0);
        va_end(ap);
        bool found = access(path.data, F_OK) == 0;
        eg_buf_done(&path);
        return found;
}

struct kill_check {
        struct eg_runtime *rt;
        struct fixture *fx;
        const char *member;
};

static bool member_not_running(void *userdata) {
        struct kill_check *k = userdata;
        struct eg_runtime_cluster c = {0};
        observe(k->fx, k->rt, "c1", &c);
        bool down = !find_member(&c, k->member)->running;
        eg_runtime_cluster_done(&c);
        return down;
}

/* ---- tests ---- */

static void test_runtime_local__bootstrap_adopt_kill(void **state) {
        struct fixture *fx = *state;
        char *members[] = {"c1-0", "c1-1", "c1-2"};
        /* a daemon's own ETCD_* variable must not reach etcd (3.4 refuses to start on a
         * variable shadowed by a flag) */
        setenv("ETCD_NAME", "not-this", 1);
        bootstrap(fx, "c1", members, 3);
        unsetenv("ETCD_NAME");

        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c1", &c);
        assert_string_equal(c.namespace, "default");
        assert_string_equal(c.name, "c1");
        assert_int_equal(c.n_members, 3);
        assert_int_equal(c.next_index, 3);
        int64_t pids[3];
        for (size_t i = 0; i < 3; i++) {
                const struct eg_runtime_member *m = &c.members[i];
                assert_string_equal(m->name, members[i]);
                assert_true(m->running);
                assert_true(m->pid > 0);
                assert_string_equal(m->version, ETCD_VERSION);
                assert_true(eg_str_has_prefix(m->spec_hash, "sha256:"));
                assert_true(eg_str_has_prefix(m->client_url, "http://127.0.0.1:"));
                assert_true(m->started_realtime_ms > 0);
                pids[i] = m->pid;
                assert_true(environ_has(m->pid, "EG_TEST_MARK=hello"));
                assert_false(environ_has(m->pid, "ETCD_NAME="));
        }
        assert_true(pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2]);
        for (size_t i = 0; i < 3; i++)
                assert_healthy(c.members[i].client_url);

        json_t *rec = load_record(fx, "c1");
        const char *token = json_string_value(json_object_get(rec, "token"));
        assert_non_null(token);
        assert_int_equal(strlen(token), 32);
        assert_int_equal(strspn(token, "0123456789abcdef"), 32);
        json_t *rm = json_object_get(rec, "members");
        assert_int_equal(json_array_size(rm), 3);
        int ports[6];
        for (size_t i = 0; i < 3; i++) {
                json_t *m = json_array_get(rm, i);
                assert_string_equal(json_string_value(json_object_get(m, "state")), "started");
                assert_int_equal(json_integer_value(json_object_get(m, "pid")), pids[i]);
                assert_int_equal(json_integer_value(json_object_get(m, "start_time")), proc_start_time(pids[i]));
                assert_string_equal(json_string_value(json_object_get(m, "revision")), "rev-1");
                ports[2 * i] = (int)json_integer_value(json_object_get(m, "client_port"));
                ports[2 * i + 1] = (int)json_integer_value(json_object_get(m, "peer_port"));
                _cleanup_free_ char *url = eg_strdup_printf("http://127.0.0.1:%d", ports[2 * i]);
                assert_string_equal(c.members[i].client_url, url);
                assert_true(ports[2 * i] >= fx->port_base);
                assert_true(exists("%s/clusters/default/c1/members/%s/data/member", fx->state_dir, members[i]));
                assert_true(exists("%s/clusters/default/c1/members/%s/etcd.log", fx->state_dir, members[i]));
        }
        for (size_t i = 0; i < 6; i++)
                for (size_t j = 0; j < i; j++)
                        assert_int_not_equal(ports[i], ports[j]);
        json_decref(rec);

        struct eg_runtime_target t = {"default", "c1", &fx->spec, "rev-1"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &t, members, 3, &err), -EEXIST);
        assert_non_null(strstr(err.message, "already exists"));
        eg_error_done(&err);

        /* a restarted daemon adopts the members as they are */
        struct eg_runtime *rt2 = fx->rt_extra = new_runtime(fx, NULL);
        struct eg_runtime_cluster c2 = {0};
        observe(fx, rt2, "c1", &c2);
        assert_int_equal(c2.n_members, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_true(c2.members[i].running);
                assert_int_equal(c2.members[i].pid, pids[i]);
        }
        eg_runtime_cluster_done(&c2);

        assert_int_equal(kill((pid_t)pids[1], SIGKILL), 0);
        struct kill_check k1 = {rt2, fx, "c1-1"}, k2 = {fx->rt, fx, "c1-1"};
        assert_int_equal(eg_wait_for(member_not_running, &k1, 10000, 20), 0);
        assert_int_equal(eg_wait_for(member_not_running, &k2, 10000, 20), 0);
        observe(fx, rt2, "c1", &c2);
        assert_true(find_member(&c2, "c1-0")->running);
        assert_true(find_member(&c2, "c1-2")->running);
        assert_int_equal(find_member(&c2, "c1-1")->pid, 0);
        eg_runtime_cluster_done(&c2);

        /* freeing a runtime leaves members alone */
        eg_runtime_free(rt2);
        fx->rt_extra = NULL;
        assert_false(pid_gone(pids[0]));
        assert_false(pid_gone(pids[2]));
        eg_runtime_cluster_done(&c);
}

static void write_record(struct fixture *fx, const char *name, json_t *members) {
        json_t *rec = json_pack("{s:s, s:s, s:i, s:s, s:o}", "namespace", "default", "name", name, "next_index", 9,
                                "token", "00", "members", members);
        _cleanup_free_ char *dir = eg_strdup_printf("%s/clusters/default/%s", fx->state_dir, name);
        _cleanup_free_ char *path = eg_path_join(dir, "cluster.json");
        assert_int_equal(eg_mkdir_p(dir, 0700), 0);
        assert_int_equal(json_dump_file(rec, path, 0), 0);
        json_decref(rec);
}

static json_t *member_json(const char *name, int64_t pid, uint64_t start, const char *data_dir, int port) {
        return json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:I}", "name", name, "state",
                         "started", "pid", (json_int_t)pid, "start_time", (json_int_t)start, "client_port", port,
                         "peer_port", port + 1, "client_url", "http://127.0.0.1:1", "peer_url", "http://127.0.0.1:2",
                         "version", ETCD_VERSION, "spec_hash", "sha256:x", "data_dir", data_dir, "started_realtime_ms",
                         (json_int_t)1);
}

/* Observes a one-member record and tells whether the member counts as running. */
static bool record_running(struct fixture *fx, const char *member, int64_t pid, uint64_t start, const char *data_dir) {
        json_t *ms = json_array();
        json_array_append_new(ms, member_json(member, pid, start, data_dir, 1000));
        write_record(fx, "c9", ms);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c9", &c);
        assert_int_equal(c.n_members, 1);
        assert_int_equal(c.next_index, 9);
        bool running = c.members[0].running;
        assert_int_equal(c.members[0].pid, running ? pid : 0);
        eg_runtime_cluster_done(&c);
        return running;
}

static void test_runtime_local__recycled_pid(void **state) {
        struct fixture *fx = *state;
        /* a live process that carries the member's flags, as a positive control; the loop
         * keeps the shell from exec'ing into sleep and losing them */
        char *argv[] = {"/bin/sh", "-c", "while :; do sleep 0.1; done", "--name=c9-2", "--data-dir=/x/c9-2", NULL};
        pid_t sh;
        assert_int_equal(posix_spawn(&sh, argv[0], NULL, NULL, argv, environ), 0);
        fx->child = sh;
        uint64_t sh_start = proc_start_time(sh);
        int64_t self = getpid();

        /* our own pid with its real start time, but not a member's command line */
        assert_false(record_running(fx, "c9-0", self, proc_start_time(self), "/x/c9-0"));
        /* the member's command line under another start time: the pid was reused */
        assert_false(record_running(fx, "c9-2", sh, sh_start + 1, "/x/c9-2"));
        /* right pid and start time, another member's name or data dir */
        assert_false(record_running(fx, "c9-1", sh, sh_start, "/x/c9-2"));
        assert_false(record_running(fx, "c9-2", sh, sh_start, "/x/other"));

        /* a member that is not the process must never be signalled */
        struct eg_error err = {0};
        assert_false(record_running(fx, "c9-0", self, proc_start_time(self), "/x/c9-0"));
        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c9", "c9-0", true, &err), 0);
        assert_false(record_running(fx, "c9-2", sh, sh_start + 1, "/x/c9-2"));
        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c9", "c9-2", true, &err), 0);
        assert_false(pid_gone(sh));

        assert_true(record_running(fx, "c9-2", sh, sh_start, "/x/c9-2"));
        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c9", "c9-2", true, &err), 0);
        int status;
        assert_int_equal(waitpid(sh, &status, 0), sh);
        fx->child = 0;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        eg_error_done(&err);
}

struct member_add {
        char **argv;
        char *out;
};

static bool member_add_ok(void *userdata) {
        struct member_add *ma = userdata;
        free(ma->out);
        ma->out = NULL;
        return run_cmd(ma->argv, &ma->out) == 0;
}

static bool file_exists(void *userdata) { return access(userdata, F_OK) == 0; }

static void test_runtime_local__stop_escalates_to_sigkill(void **state) {
        struct fixture *fx = *state;
        struct eg_runtime_local_options opt = {.state_dir = fx->state_dir, .stop_grace_ms = 300};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_local_new(&opt, &fx->rt_extra, &err), 0);
        struct eg_runtime *rt = fx->rt_extra;
        _cleanup_free_ char *mark = eg_path_join(fx->dir, "trapped");
        /* the mark says SIGTERM is ignored from now on */
        char *argv[] = {"/bin/sh",     "-c", "trap '' TERM; : > \"$1\"; while :; do sleep 0.1; done",
                        "--name=c9-0", mark, "--data-dir=/x/c9-0",
                        NULL};
        pid_t sh;
        assert_int_equal(posix_spawn(&sh, argv[0], NULL, NULL, argv, environ), 0);
        fx->child = sh;
        assert_int_equal(eg_wait_for(file_exists, mark, 10000, 10), 0);
        assert_true(record_running(fx, "c9-0", sh, proc_start_time(sh), "/x/c9-0"));

        int64_t t0 = eg_now_monotonic_ms();
        assert_int_equal(eg_runtime_stop_member(rt, "default", "c9", "c9-0", true, &err), 0);
        int64_t took = eg_now_monotonic_ms() - t0;
        int status;
        assert_int_equal(waitpid(sh, &status, 0), sh);
        fx->child = 0;
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_true(took >= 300 && took < 5000);
        eg_error_done(&err);
}

static void test_runtime_local__ports_skip_taken(void **state) {
        struct fixture *fx = *state;
        /* the base port is in use by someone else, the next two belong to another record */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)fx->port_base),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        assert_true(fd >= 0);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                skip();
        assert_int_equal(listen(fd, 1), 0);
        json_t *ms = json_array();
        json_array_append_new(ms, member_json("c9-0", 0, 0, "/x/c9-0", fx->port_base + 1));
        write_record(fx, "c9", ms);

        char *members[] = {"c11-0"};
        bootstrap(fx, "c11", members, 1);
        close(fd);
        json_t *rec = load_record(fx, "c11");
        json_t *m = json_array_get(json_object_get(rec, "members"), 0);
        int cport = (int)json_integer_value(json_object_get(m, "client_port"));
        int pport = (int)json_integer_value(json_object_get(m, "peer_port"));
        json_decref(rec);
        assert_true(cport >= fx->port_base + 3);
        assert_true(pport > cport);

        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c11", &c);
        assert_true(c.members[0].running);
        assert_healthy(c.members[0].client_url);
        eg_runtime_cluster_done(&c);
}

static void test_runtime_local__add_learner(void **state) {
        struct fixture *fx = *state;
        char *members[] = {"c2-0", "c2-1", "c2-2"};
        bootstrap(fx, "c2", members, 3);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c2", &c);
        for (size_t i = 0; i < 3; i++)
                assert_healthy(c.members[i].client_url);

        struct eg_runtime_target t = {"default", "c2", &fx->spec, "rev-2"};
        struct eg_error err = {0};
        char *peer = NULL;
        assert_int_equal(eg_runtime_prepare_member(fx->rt, &t, "c2-3", &peer, &err), 0);
        assert_true(eg_str_has_prefix(peer, "http://127.0.0.1:"));
        char *again = NULL;
        assert_int_equal(eg_runtime_prepare_member(fx->rt, &t, "c2-3", &again, &err), -EEXIST);
        assert_null(again);

        /* etcd refused it: released, and the name is handed out again */
        struct eg_runtime_cluster p = {0};
        assert_int_equal(eg_runtime_release_member(fx->rt, "default", "c2", "c2-3", &err), 0);
        observe(fx, fx->rt, "c2", &p);
        assert_int_equal(p.n_members, 3);
        assert_int_equal(p.next_index, 3);
        eg_runtime_cluster_done(&p);
        free(peer);
        peer = NULL;
        assert_int_equal(eg_runtime_prepare_member(fx->rt, &t, "c2-3", &peer, &err), 0);
        /* a started member is never released */
        assert_int_equal(eg_runtime_release_member(fx->rt, "default", "c2", "c2-0", &err), -EBUSY);

        observe(fx, fx->rt, "c2", &p);
        assert_int_equal(p.n_members, 4);
        assert_int_equal(p.next_index, 4);
        const struct eg_runtime_member *m3 = find_member(&p, "c2-3");
        assert_false(m3->running);
        assert_int_equal(m3->pid, 0);
        assert_string_equal(m3->peer_url, peer);
        for (size_t i = 0; i < 3; i++) {
                assert_string_not_equal(c.members[i].peer_url, peer);
                assert_string_not_equal(c.members[i].client_url, m3->client_url);
        }

        _cleanup_free_ char *ep = eg_strdup_printf("--endpoints=%s", c.members[0].client_url);
        _cleanup_free_ char *pu = eg_strdup_printf("--peer-urls=%s", peer);
        char *add[] = {ETCDCTL_BIN, ep, "member", "add", "c2-3", pu, "--learner", NULL};
        struct member_add ma = {add, NULL};
        /* etcd refuses members until every peer has been connected for 5 s */
        if (eg_wait_for(member_add_ok, &ma, HEALTH_TIMEOUT_MS, 500) < 0)
                fail_msg("etcdctl member add: %s", ma.out);
        free(ma.out);

        _cleanup_free_ char *ic = eg_strdup_printf("c2-0=%s,c2-1=%s,c2-2=%s,c2-3=%s", c.members[0].peer_url,
                                                   c.members[1].peer_url, c.members[2].peer_url, peer);
        int r = eg_runtime_start_member(fx->rt, &t, "c2-3", ic, &err);
        if (r < 0)
                fail_msg("start_member: %s", err.message);
        assert_int_equal(eg_runtime_start_member(fx->rt, &t, "c2-3", ic, &err), -EALREADY);
        assert_healthy(m3->client_url);

        struct eg_runtime_cluster s = {0};
        observe(fx, fx->rt, "c2", &s);
        assert_true(find_member(&s, "c2-3")->running);
        assert_true(find_member(&s, "c2-3")->pid > 0);

        char *list[] = {ETCDCTL_BIN, ep, "member", "list", NULL};
        _cleanup_free_ char *lout = NULL;
        assert_int_equal(run_cmd(list, &lout), 0);
        if (!strstr(lout, ", started, c2-3, ") || !strstr(lout, ", true\n"))
                fail_msg("c2-3 is not a started learner: %s", lout);

        eg_runtime_cluster_done(&s);
        eg_runtime_cluster_done(&p);
        eg_runtime_cluster_done(&c);
        eg_error_done(&err);
        free(peer);
}

static void test_runtime_local__upgrade(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *vdir = eg_path_join(fx->bin_dir, "3.4.99");
        _cleanup_free_ char *vbin = eg_path_join(vdir, "etcd");
        assert_int_equal(eg_mkdir_p(vdir, 0755), 0);
        assert_int_equal(symlink(ETCD_BIN, vbin), 0);

        char *members[] = {"c3-0"};
        bootstrap(fx, "c3", members, 1);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c3", &c);
        assert_healthy(c.members[0].client_url);
        int64_t old_pid = c.members[0].pid;
        _cleanup_free_ char *ep = eg_strdup_printf("--endpoints=%s", c.members[0].client_url);
        char *put[] = {ETCDCTL_BIN, ep, "put", "upgrade-key", "kept", NULL};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run_cmd(put, &out), 0);

        /* no binary for the target: the member stays as it is */
        struct eg_cluster_spec missing = fx->spec;
        missing.version = "3.5.9";
        struct eg_runtime_target tm = {"default", "c3", &missing, "rev-3"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_upgrade_member(fx->rt, &tm, "c3-0", &err), -ENOENT);
        assert_non_null(strstr(err.message, "3.5.9"));
        assert_false(pid_gone(old_pid));

        struct eg_cluster_spec up = fx->spec;
        up.version = "3.4.99";
        struct eg_runtime_target t = {"default", "c3", &up, "rev-3"};
        int r = eg_runtime_upgrade_member(fx->rt, &t, "c3-0", &err);
        if (r < 0)
                fail_msg("upgrade_member: %s", err.message);
        assert_true(pid_gone(old_pid));

        struct eg_runtime_cluster u = {0};
        observe(fx, fx->rt, "c3", &u);
        assert_int_equal(u.n_members, 1);
        assert_true(u.members[0].running);
        assert_int_not_equal(u.members[0].pid, old_pid);
        assert_string_equal(u.members[0].version, "3.4.99");
        _cleanup_free_ char *hash = eg_runtime_member_hash(fx->rt, &up);
        assert_string_equal(u.members[0].spec_hash, hash);
        assert_string_equal(u.members[0].client_url, c.members[0].client_url);
        assert_string_equal(u.members[0].peer_url, c.members[0].peer_url);

        _cleanup_free_ char *cmdline_path = eg_strdup_printf("/proc/%" PRId64 "/cmdline", u.members[0].pid);
        _cleanup_free_ char *cmdline = NULL;
        assert_int_equal(eg_read_file(cmdline_path, 1 << 20, &cmdline, NULL), 0);
        assert_string_equal(cmdline, vbin);

        json_t *rec = load_record(fx, "c3");
        json_t *m = json_array_get(json_object_get(rec, "members"), 0);
        assert_string_equal(json_string_value(json_object_get(m, "version")), "3.4.99");
        assert_string_equal(json_string_value(json_object_get(m, "revision")), "rev-3");
        assert_int_equal(json_integer_value(json_object_get(m, "pid")), u.members[0].pid);
        json_decref(rec);

        assert_healthy(u.members[0].client_url);
        char *get[] = {ETCDCTL_BIN, ep, "get", "--print-value-only", "upgrade-key", NULL};
        _cleanup_free_ char *got = NULL;
        assert_int_equal(run_cmd(get, &got), 0);
        assert_string_equal(got, "kept\n");

        eg_runtime_cluster_done(&u);
        eg_runtime_cluster_done(&c);
        eg_error_done(&err);
}

static bool pid_gone_cb(void *userdata) { return pid_gone(*(int64_t *)userdata); }

/* Whether the process runs with flag among its arguments. */
static bool cmdline_has(int64_t pid, const char *flag) {
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/cmdline", pid);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(path, 1 << 20, &data, &len), 0);
        for (size_t i = 0; i < len; i += strlen(data + i) + 1)
                if (strcmp(data + i, flag) == 0)
                        return true;
        return false;
}

static void test_runtime_local__force_new_cluster(void **state) {
        struct fixture *fx = *state;
        char *members[] = {"c9-0"};
        bootstrap(fx, "c9", members, 1);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c9", &c);
        assert_healthy(c.members[0].client_url);
        int64_t old_pid = c.members[0].pid;
        _cleanup_free_ char *ep = eg_strdup_printf("--endpoints=%s", c.members[0].client_url);
        char *put[] = {ETCDCTL_BIN, ep, "put", "forced-key", "kept", NULL};
        _cleanup_free_ char *out = NULL;
        assert_int_equal(run_cmd(put, &out), 0);

        struct eg_runtime_target t = {"default", "c9", &fx->spec, "rev-9"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_force_new_cluster(fx->rt, &t, "c9-7", &err), -ENOENT);
        int r = eg_runtime_force_new_cluster(fx->rt, &t, "c9-0", &err);
        if (r < 0)
                fail_msg("force_new_cluster: %s", err.message);
        assert_true(pid_gone(old_pid));
        struct eg_runtime_cluster f = {0};
        observe(fx, fx->rt, "c9", &f);
        assert_true(f.members[0].running);
        assert_true(cmdline_has(f.members[0].pid, "--force-new-cluster"));
        assert_healthy(f.members[0].client_url);
        char *get[] = {ETCDCTL_BIN, ep, "get", "--print-value-only", "forced-key", NULL};
        _cleanup_free_ char *got = NULL;
        assert_int_equal(run_cmd(get, &got), 0);
        assert_string_equal(got, "kept\n");

        /* only that start was forced: a restart in place is an ordinary one */
        assert_int_equal(kill((pid_t)f.members[0].pid, SIGKILL), 0);
        assert_int_equal(eg_wait_for(pid_gone_cb, &f.members[0].pid, 10000, 20), 0);
        assert_int_equal(eg_runtime_restart_member(fx->rt, &t, "c9-0", NULL, &err), 0);
        struct eg_runtime_cluster g = {0};
        observe(fx, fx->rt, "c9", &g);
        assert_true(g.members[0].running);
        assert_false(cmdline_has(g.members[0].pid, "--force-new-cluster"));
        assert_healthy(g.members[0].client_url);

        /* no log to force a cluster from */
        _cleanup_free_ char *data = eg_strdup_printf("%s/clusters/default/c9/members/c9-0/data", fx->state_dir);
        assert_int_equal(kill((pid_t)g.members[0].pid, SIGKILL), 0);
        assert_int_equal(eg_wait_for(pid_gone_cb, &g.members[0].pid, 10000, 20), 0);
        assert_int_equal(eg_rm_rf(data), 0);
        assert_int_equal(eg_runtime_force_new_cluster(fx->rt, &t, "c9-0", &err), -ENODATA);
        assert_non_null(strstr(err.message, "no write-ahead log"));

        eg_runtime_cluster_done(&g);
        eg_runtime_cluster_done(&f);
        eg_runtime_cluster_done(&c);
        eg_error_done(&err);
}

static bool member_has_wal(void *userdata) {
        struct fixture *fx = userdata;
        return exists("%s/clusters/default/c4/members/%s/data/member/wal", fx->state_dir, "c4-1");
}

static void test_runtime_local__stop_member(void **state) {
        struct fixture *fx = *state;
        char *members[] = {"c4-0", "c4-1"};
        bootstrap(fx, "c4", members, 2);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c4", &c);
        int64_t pid0 = find_member(&c, "c4-0")->pid, pid1 = find_member(&c, "c4-1")->pid;
        assert_true(pid0 > 0 && pid1 > 0);
        eg_runtime_cluster_done(&c);
        assert_int_equal(eg_wait_for(member_has_wal, fx, 10000, 20), 0);

        struct eg_error err = {0};
        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c4", "c4-0", true, &err), 0);
        assert_true(pid_gone(pid0));
        assert_false(exists("%s/clusters/default/c4/members/%s", fx->state_dir, "c4-0"));
        observe(fx, fx->rt, "c4", &c);
        assert_int_equal(c.n_members, 1);
        assert_string_equal(c.members[0].name, "c4-1");
        assert_true(c.members[0].running);
        assert_int_equal(c.next_index, 2);
        eg_runtime_cluster_done(&c);

        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c4", "c4-1", false, &err), 0);
        assert_true(pid_gone(pid1));
        assert_false(exists("%s/clusters/default/c4/members/%s", fx->state_dir, "c4-1"));
        _cleanup_free_ char *removed = eg_strdup_printf("%s/clusters/default/c4/removed", fx->state_dir);
        struct dirent **ents = NULL;
        int n = scandir(removed, &ents, NULL, alphasort);
        assert_int_equal(n, 3); /* ".", "..", c4-1-<ms> */
        assert_true(eg_str_has_prefix(ents[2]->d_name, "c4-1-"));
        assert_true(exists("%s/%s/data/member/wal", removed, ents[2]->d_name));
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);

        observe(fx, fx->rt, "c4", &c);
        assert_int_equal(c.n_members, 0);
        eg_runtime_cluster_done(&c);
        assert_int_equal(eg_runtime_stop_member(fx->rt, "default", "c4", "c4-1", true, &err), -ENOENT);
        assert_non_null(strstr(err.message, "c4-1"));
        eg_error_done(&err);
}

static void test_runtime_local__delete_keeps_data(void **state) {
        struct fixture *fx = *state;
        char *members[] = {"c5-0"};
        bootstrap(fx, "c5", members, 1);
        struct eg_runtime_cluster c = {0};
        observe(fx, fx->rt, "c5", &c);
        int64_t pid = c.members[0].pid;
        eg_runtime_cluster_done(&c);

        struct eg_error err = {0};
        assert_int_equal(eg_runtime_delete_cluster(fx->rt, "default", "c5", false, &err), 0);
        assert_true(pid_gone(pid));
        assert_int_equal(eg_runtime_observe(fx->rt, "default", "c5", &c, &err), -ENOENT);
        assert_true(exists("%s/clusters/default/c5/%s", fx->state_dir, "cluster.json.deleted"));
        assert_true(exists("%s/clusters/default/c5/members/%s/data", fx->state_dir, "c5-0"));
        struct eg_runtime_cluster *cs = NULL;
        size_t n = 99;
        assert_int_equal(eg_runtime_list(fx->rt, NULL, 0, &cs, &n, &err), 0);
        assert_int_equal(n, 0);
        eg_runtime_clusters_free(cs, n);

        /* the same name again starts clean; the old member dir is moved aside */
        bootstrap(fx, "c5", members, 1);
        observe(fx, fx->rt, "c5", &c);
        assert_true(c.members[0].running);
        eg_runtime_cluster_done(&c);
        assert_true(exists("%s/clusters/default/c5/%s", fx->state_dir, "removed"));
        assert_int_equal(eg_runtime_list(fx->rt, NULL, 0, &cs, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(cs[0].name, "c5");
        eg_runtime_clusters_free(cs, n);

        assert_int_equal(eg_runtime_delete_cluster(fx->rt, "default", "c5", true, &err), 0);
        assert_false(exists("%s/clusters/default/%s", fx->state_dir, "c5"));
        eg_error_done(&err);
}

static void assert_nothing_left(struct fixture *fx, const char *name) {
        struct eg_runtime_cluster c = {0};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_observe(fx->rt, "default", name, &c, &err), -ENOENT);
        assert_false(exists("%s/clusters/default/%s", fx->state_dir, name));
        eg_error_done(&err);
}

static void test_runtime_local__missing_version(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *vdir = eg_path_join(fx->bin_dir, "3.4.99");
        _cleanup_free_ char *vbin = eg_path_join(vdir, "etcd");
        assert_int_equal(eg_mkdir_p(vdir, 0755), 0);
        assert_int_equal(symlink(ETCD_BIN, vbin), 0);

        struct eg_cluster_spec spec = fx->spec;
        spec.version = "3.5.9";
        struct eg_runtime_target t = {"default", "c6", &spec, NULL};
        char *members[] = {"c6-0", "c6-1"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &t, members, 2, &err), -ENOENT);
        _cleanup_free_ char *want = eg_strdup_printf("no etcd binary for version 3.5.9: have 3.4.99 (%s), " ETCD_VERSION
                                                     " (" ETCD_BIN "); put one at %s/3.5.9/etcd",
                                                     vbin, fx->bin_dir);
        assert_string_equal(err.message, want);
        assert_nothing_left(fx, "c6");
        eg_error_done(&err);
}

static void test_runtime_local__exec_failure(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *vbin = eg_path_join(fx->bin_dir, "etcd-3.4.98");
        assert_int_equal(symlink(EG_TEST_DATA "/runtime/bad-interpreter-etcd", vbin), 0);
        struct eg_cluster_spec spec = fx->spec;
        spec.version = "3.4.98";
        struct eg_runtime_target t = {"default", "c7", &spec, NULL};
        char *members[] = {"c7-0", "c7-1"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &t, members, 2, &err), -ENOENT);
        _cleanup_free_ char *want = eg_strdup_printf("member c7-0 of default/c7: cannot exec %s: %s", vbin,
                                                     strerror(ENOENT));
        assert_string_equal(err.message, want);
        assert_nothing_left(fx, "c7");
        eg_error_done(&err);
}

static void test_runtime_local__path_version(void **state) {
        struct fixture *fx = *state;
        _cleanup_free_ char *old = strdup(getenv("PATH"));
        _cleanup_free_ char *path = eg_strdup_printf("%s:%s", EG_TEST_DATA "/runtime/path", old);
        setenv("PATH", path, 1);
        struct eg_runtime *rt = new_runtime(fx, NULL);
        struct eg_runtime_target t = {"default", "c8", &fx->spec, NULL};
        char *members[] = {"c8-0"};
        struct eg_error err = {0};
        int r = eg_runtime_bootstrap(rt, &t, members, 1, &err);
        setenv("PATH", old, 1);
        eg_runtime_free(rt);
        assert_int_equal(r, -ENOENT);
        assert_string_equal(err.message, "no etcd binary for version " ETCD_VERSION ": have 9.9.9 (" EG_TEST_DATA
                                         "/runtime/path/etcd); configure an etcd "
                                         "binary directory and put one at DIR/" ETCD_VERSION "/etcd");
        assert_nothing_left(fx, "c8");
        eg_error_done(&err);
}

static void test_runtime_local__member_hash(void **state) {
        struct fixture *fx = *state;
        struct eg_runtime *rt = fx->rt;
        _cleanup_free_ char *h1 = eg_runtime_member_hash(rt, &fx->spec);
        _cleanup_free_ char *h1b = eg_runtime_member_hash(rt, &fx->spec);
        char hex[65];
        const char *input = ETCD_VERSION "\n[{\"name\":\"EG_TEST_MARK\",\"value\":\"hello\"}]";
        eg_sha256_hex(input, strlen(input), hex);
        _cleanup_free_ char *want = eg_strdup_printf("sha256:%s", hex);
        assert_string_equal(h1, want);
        assert_string_equal(h1, h1b);

        /* key order inside an EnvVar is not a change */
        json_t *reordered = json_pack("[{s:s, s:s}]", "value", "hello", "name", "EG_TEST_MARK");
        struct eg_pod_policy pod = {.etcd_env = reordered};
        struct eg_cluster_spec spec = fx->spec;
        spec.pod = &pod;
        _cleanup_free_ char *h2 = eg_runtime_member_hash(rt, &spec);
        assert_string_equal(h1, h2);

        json_t *changed = json_pack("[{s:s, s:s}]", "name", "EG_TEST_MARK", "value", "bye");
        pod.etcd_env = changed;
        _cleanup_free_ char *h3 = eg_runtime_member_hash(rt, &spec);
        assert_string_not_equal(h1, h3);

        spec.pod = &fx->pod;
        spec.version = "3.4.24";
        _cleanup_free_ char *h4 = eg_runtime_member_hash(rt, &spec);
        assert_string_not_equal(h1, h4);

        /* no pod policy and an empty env apply the same thing */
        spec.pod = NULL;
        _cleanup_free_ char *h5 = eg_runtime_member_hash(rt, &spec);
        json_t *empty = json_array();
        pod.etcd_env = empty;
        spec.pod = &pod;
        _cleanup_free_ char *h6 = eg_runtime_member_hash(rt, &spec);
        assert_string_equal(h5, h6);
        assert_string_not_equal(h4, h5);
        json_decref(reordered);
        json_decref(changed);
        json_decref(empty);
}

static void test_runtime_local__invalid_names(void **state) {
        struct fixture *fx = *state;
        struct eg_runtime_target t = {"default", "c10", &fx->spec, NULL};
        char *bad[] = {"../escape"};
        char *dup[] = {"c10-0", "c10-0"};
        struct eg_error err = {0};
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &t, bad, 1, &err), -EINVAL);
        assert_string_equal(err.message, "invalid member name \"../escape\"");
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &t, dup, 2, &err), -EINVAL);
        assert_string_equal(err.message, "member c10-0 given twice");
        struct eg_runtime_target tn = {"default", "../x", &fx->spec, NULL};
        assert_int_equal(eg_runtime_bootstrap(fx->rt, &tn, dup, 1, &err), -EINVAL);
        struct eg_runtime_cluster c = {0};
        assert_int_equal(eg_runtime_observe(fx->rt, "default", "nope", &c, &err), -ENOENT);
        char *url = NULL;
        assert_int_equal(eg_runtime_prepare_member(fx->rt, &t, "c10-0", &url, &err), -ENOENT);
        assert_non_null(strstr(err.message, "no cluster default/c10"));
        assert_nothing_left(fx, "c10");
        eg_error_done(&err);
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_runtime_local__bootstrap_adopt_kill, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__recycled_pid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__stop_escalates_to_sigkill, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__ports_skip_taken, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__add_learner, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__upgrade, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__force_new_cluster, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__stop_member, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__delete_keeps_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__missing_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__exec_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__path_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__member_hash, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_local__invalid_names, setup, teardown),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return r;
}
