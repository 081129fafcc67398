/* Test helper: runs a real etcd member on free loopback ports in its own temporary directory. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/util.h"
#include "etcd_proc.h"

#define ETCD_PROC_STOP_GRACE_MS 5000
#define ETCD_PROC_START_TRIES 5

extern char **environ;

void etcd_proc_sleep_ms(int64_t ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

int etcd_proc_bind_any(int *ret_fd, int *ret_port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        *ret_port = ntohs(a.sin_port);
        return 0;
}

int etcd_proc_free_port(void) {
        int fd = -1, port = 0;
        int r = etcd_proc_bind_any(&fd, &port);
        if (r < 0)
                return r;
        close(fd);
        return port;
}

int etcd_proc_repick_ports(struct etcd_proc *p) {
        /* both bound at once so the two ports differ */
        int fd1 = -1, fd2 = -1;
        int r = etcd_proc_bind_any(&fd1, &p->client_port);
        if (r < 0)
                return r;
        r = etcd_proc_bind_any(&fd2, &p->peer_port);
        close(fd1);
        if (r < 0)
                return r;
        close(fd2);
        snprintf(p->client_url, sizeof(p->client_url), "%s://127.0.0.1:%d", p->cert_file ? "https" : "http",
                 p->client_port);
        snprintf(p->peer_url, sizeof(p->peer_url), "http://127.0.0.1:%d", p->peer_port);
        return 0;
}

int etcd_proc_init(struct etcd_proc *p) {
        *p = (struct etcd_proc){0};
        const char *tmp = getenv("TMPDIR");
        char *dir = eg_strdup_printf("%s/eg-etcd-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!dir)
                return -ENOMEM;
        if (!mkdtemp(dir)) {
                int r = -errno;
                free(dir);
                return r;
        }
        p->dir = dir;
        return etcd_proc_repick_ports(p);
}

/* Runs argv quietly (output to dir/openssl.log); 0 when it exits 0. */
static int etcd_proc_run(const struct etcd_proc *p, char *const argv[]) {
        _cleanup_free_ char *log = eg_path_join(p->dir, "openssl.log");
        if (!log)
                return -ENOMEM;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -r;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int etcd_proc_use_tls(struct etcd_proc *p) {
        _cleanup_free_ char *ca_key = eg_path_join(p->dir, "ca.key");
        char *ca = eg_path_join(p->dir, "ca.crt");
        char *cert = eg_path_join(p->dir, "member.crt");
        char *key = eg_path_join(p->dir, "member.key");
        int r = -ENOMEM;
        if (!ca_key || !ca || !cert || !key)
                goto fail;
        char *ca_argv[] = {"openssl",
                           "req",
                           "-x509",
                           "-newkey",
                           "ec",
                           "-pkeyopt",
                           "ec_paramgen_curve:prime256v1",
                           "-nodes",
                           "-days",
                           "2",
                           "-subj",
                           "/CN=etcd-gitops test CA",
                           "-keyout",
                           ca_key,
                           "-out",
                           ca,
                           NULL};
        char *cert_argv[] = {"openssl",
                             "req",
                             "-x509",
                             "-newkey",
                             "ec",
                             "-pkeyopt",
                             "ec_paramgen_curve:prime256v1",
                             "-nodes",
                             "-days",
                             "2",
                             "-subj",
                             "/CN=127.0.0.1",
                             "-CA",
                             ca,
                             "-CAkey",
                             ca_key,
                             "-addext",
                             "basicConstraints=critical,CA:FALSE",
                             "-addext",
                             "subjectAltName=IP:127.0.0.1",
                             "-addext",
                             "extendedKeyUsage=serverAuth,clientAuth",
                             "-keyout",
                             key,
                             "-out",
                             cert,
                             NULL};
        if ((r = etcd_proc_run(p, ca_argv)) < 0 || (r = etcd_proc_run(p, cert_argv)) < 0)
                goto fail;
        p->ca_file = ca;
        p->cert_file = cert;
        p->key_file = key;
        snprintf(p->client_url, sizeof(p->client_url), "https://127.0.0.1:%d", p->client_port);
        return 0;
fail:
        free(ca);
        free(cert);
        free(key);
        return r;
}

int etcd_proc_start(struct etcd_proc *p, const char *name, const char *initial_cluster, const char *state,
                    const char *token) {
        if (p->pid > 0)
                return -EBUSY;
        _cleanup_free_ char *data = eg_path_join(p->dir, "data");
        _cleanup_free_ char *log = eg_path_join(p->dir, "etcd.log");
        _cleanup_free_ char *own = eg_strdup_printf("%s=%s", name, p->peer_url);
        _cleanup_free_ char *a_name = eg_strdup_printf("--name=%s", name);
        _cleanup_free_ char *a_data = data ? eg_strdup_printf("--data-dir=%s", data) : NULL;
        _cleanup_free_ char *a_lc = eg_strdup_printf("--listen-client-urls=%s", p->client_url);
        _cleanup_free_ char *a_ac = eg_strdup_printf("--advertise-client-urls=%s", p->client_url);
        _cleanup_free_ char *a_lp = eg_strdup_printf("--listen-peer-urls=%s", p->peer_url);
        _cleanup_free_ char *a_ap = eg_strdup_printf("--initial-advertise-peer-urls=%s", p->peer_url);
        _cleanup_free_ char *a_ic = eg_strdup_printf("--initial-cluster=%s", initial_cluster ? initial_cluster : own);
        _cleanup_free_ char *a_st = eg_strdup_printf("--initial-cluster-state=%s", state);
        _cleanup_free_ char *a_tok = eg_strdup_printf("--initial-cluster-token=%s", token);
        if (!log || !own || !a_name || !a_data || !a_lc || !a_ac || !a_lp || !a_ap || !a_ic || !a_st || !a_tok)
                return -ENOMEM;
        _cleanup_free_ char *a_cert = eg_strdup_printf("--cert-file=%s", p->cert_file);
        _cleanup_free_ char *a_key = eg_strdup_printf("--key-file=%s", p->key_file);
        _cleanup_free_ char *a_ca = eg_strdup_printf("--trusted-ca-file=%s", p->ca_file);
        if (!a_cert || !a_key || !a_ca)
                return -ENOMEM;
        char *argv[] = {"etcd",
                        a_name,
                        a_data,
                        a_lc,
                        a_ac,
                        a_lp,
                        a_ap,
                        a_ic,
                        a_st,
                        a_tok,
                        p->cert_file ? "--client-cert-auth" : NULL,
                        a_cert,
                        a_key,
                        a_ca,
                        NULL};

        int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (logfd < 0)
                return -errno;
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(logfd);
                return r;
        }
        if (pid == 0) {
                /* die with the test, even when it crashes before its teardown */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (nullfd < 0 || dup2(nullfd, STDIN_FILENO) < 0 || dup2(logfd, STDOUT_FILENO) < 0 ||
                    dup2(logfd, STDERR_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(logfd);
        p->pid = pid;
        return 0;
}

static size_t etcd_proc_collect(char *data, size_t size, size_t nmemb, void *userdata) {
        return eg_buf_append(userdata, data, size * nmemb) < 0 ? 0 : size * nmemb;
}

static bool etcd_proc_healthy(const struct etcd_proc *p) {
        CURL *h = curl_easy_init();
        if (!h)
                return false;
        _cleanup_free_ char *url = eg_strdup_printf("%s/health", p->client_url);
        struct eg_buf body;
        eg_buf_init(&body, 4096);
        long status = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, etcd_proc_collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        if (p->cert_file) {
                curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_file);
                curl_easy_setopt(h, CURLOPT_SSLCERT, p->cert_file);
                curl_easy_setopt(h, CURLOPT_SSLKEY, p->key_file);
        }
        bool ok = url && curl_easy_perform(h) == CURLE_OK &&
                  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200 && body.data &&
                  strstr(body.data, "\"health\":\"true\"");
        curl_easy_cleanup(h);
        eg_buf_done(&body);
        return ok;
}

static bool etcd_proc_log_says(const struct etcd_proc *p, const char *needle) {
        _cleanup_free_ char *log = eg_path_join(p->dir, "etcd.log");
        _cleanup_free_ char *text = NULL;
        size_t len;
        return log && eg_read_file(log, (size_t)16 << 20, &text, &len) >= 0 && strstr(text, needle);
}

int etcd_proc_wait_healthy(struct etcd_proc *p, int64_t timeout_ms) {
        int64_t deadline = eg_now_monotonic_ms() + timeout_ms;
        for (;;) {
                if (p->pid <= 0)
                        return -ECHILD;
                int status;
                if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
                        p->pid = 0;
                        return etcd_proc_log_says(p, "address already in use") ? -EADDRINUSE : -ECHILD;
                }
                if (etcd_proc_healthy(p))
                        return 0;
                if (eg_now_monotonic_ms() >= deadline)
                        return -ETIMEDOUT;
                etcd_proc_sleep_ms(50);
        }
}

int etcd_proc_start_single(struct etcd_proc *p, const char *name, int64_t timeout_ms) {
        int r = etcd_proc_init(p);
        if (r < 0)
                return r;
        _cleanup_free_ char *token = eg_strdup_printf("eg-test-%d-%d", (int)getpid(), p->peer_port);
        if (!token)
                return -ENOMEM;
        for (int i = 0; i < ETCD_PROC_START_TRIES; i++) {
                r = etcd_proc_start(p, name, NULL, "new", token);
                if (r < 0)
                        return r;
                r = etcd_proc_wait_healthy(p, timeout_ms);
                if (r != -EADDRINUSE)
                        return r;
                _cleanup_free_ char *data = eg_path_join(p->dir, "data");
                if (!data)
                        return -ENOMEM;
                (void)eg_rm_rf(data);
                r = etcd_proc_repick_ports(p);
                if (r < 0)
                        return r;
        }
        return -EADDRINUSE;
}

void etcd_proc_stop(struct etcd_proc *p) {
        if (p->pid <= 0)
                return;
        int status;
        kill(p->pid, SIGTERM);
        int64_t deadline = eg_now_monotonic_ms() + ETCD_PROC_STOP_GRACE_MS;
        for (;;) {
                pid_t w = waitpid(p->pid, &status, WNOHANG);
                if (w == p->pid || (w < 0 && errno == ECHILD))
                        break;
                if (eg_now_monotonic_ms() >= deadline) {
                        kill(p->pid, SIGKILL);
                        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        break;
                }
                etcd_proc_sleep_ms(20);
        }
        p->pid = 0;
}

void etcd_proc_cleanup(struct etcd_proc *p) {
        etcd_proc_stop(p);
        if (p->dir)
                (void)eg_rm_rf(p->dir);
        free(p->dir);
        free(p->ca_file);
        free(p->cert_file);
        free(p->key_file);
        p->dir = p->ca_file = p->cert_file = p->key_file = NULL;
}
