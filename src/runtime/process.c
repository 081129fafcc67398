/* Process helpers of the local runtime: detached spawning, /proc checks, binaries. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process.h"

extern char **environ;

#define PROC_FILE_MAX_BYTES ((size_t)1 << 20)
#define VERSION_OUTPUT_MAX_BYTES ((size_t)64 << 10)
#define VERSION_PROBE_TIMEOUT_MS 5000
#define SPAWN_TIMEOUT_MS 10000

enum { REPORT_PID, REPORT_SETUP_ERRNO, REPORT_EXEC_ERRNO };

/* A NULL-terminated, owned string vector (argv, envp). */

void eg_strv_done(struct strv *s) {
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        *s = (struct strv){0};
}

/* Takes ownership of str; a NULL str is an allocation failure. */
int eg_strv_push(struct strv *s, char *str) {
        if (!str)
                return -ENOMEM;
        if (s->n + 2 > s->alloc) {
                size_t n = s->alloc ? s->alloc * 2 : 16;
                char **v = realloc(s->v, n * sizeof(*v));
                if (!v) {
                        free(str);
                        return -ENOMEM;
                }
                s->v = v;
                s->alloc = n;
        }
        s->v[s->n++] = str;
        s->v[s->n] = NULL;
        return 0;
}

void eg_close_fd(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

/* Moves fd above stdio so the dup2() calls in a child never clobber it. */
static int fd_above_stdio(int fd) {
        if (fd < 0 || fd > 2)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int saved = errno;
        close(fd);
        errno = saved;
        return n;
}

/* State letter and start time (field 22) of /proc/<pid>/stat; -ENOENT when gone. */
int eg_proc_stat(int64_t pid, char *ret_state, uint64_t *ret_start) {
        _cleanup_free_ char *path = eg_strdup_printf("/proc/%" PRId64 "/stat", pid);
        _cleanup_free_ char *data = NULL;
        if (!path)
                return -ENOMEM;
        int r = eg_read_file(path, PROC_FILE_MAX_BYTES, &data, NULL);
        if (r < 0)
                return r == -ESRCH ? -ENOENT : r;
        /* comm may contain spaces and parentheses: fields start after the last ')' */
        char *p = strrchr(data, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EBADMSG;
        p += 2;
        char state = *p;
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || (*end != ' ' && *end != '\n' && *end != 0))
                return -EBADMSG;
        *ret_state = state;
        *ret_start = v;
        return 0;
}

/* True for "--flag=value" or "--flag" "value" among the NUL-separated args. */
bool eg_proc_cmdline_has(const char *data, size_t len, const char *flag, const char *value) {
        size_t lf = strlen(flag);
        const char *prev = NULL;
        for (const char *p = data; p < data + len; p += strlen(p) + 1) {
                if (strncmp(p, flag, lf) == 0 && p[lf] == '=' && strcmp(p + lf + 1, value) == 0)
                        return true;
                if (prev && strcmp(prev, flag) == 0 && strcmp(p, value) == 0)
                        return true;
                prev = p;
        }
        return false;
}

/* The daemon's own ETCD_* variables would be read by etcd as flags (and clash with
 * ours): members see the daemon's environment without them, plus etcdEnv. */
int eg_proc_build_env(json_t *etcd_env, struct strv *ret) {
        struct strv env = {0};
        int r = 0;
        for (char **e = environ; e && *e; e++) {
                if (eg_str_has_prefix(*e, "ETCD_"))
                        continue;
                bool overridden = false;
                for (size_t i = 0; i < json_array_size(etcd_env) && !overridden; i++) {
                        const char *n = json_string_value(json_object_get(json_array_get(etcd_env, i), "name"));
                        size_t l = n ? strlen(n) : 0;
                        overridden = l > 0 && strncmp(*e, n, l) == 0 && (*e)[l] == '=';
                }
                if (!overridden && (r = eg_strv_push(&env, strdup(*e))) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < json_array_size(etcd_env); i++) {
                json_t *v = json_array_get(etcd_env, i);
                const char *n = json_string_value(json_object_get(v, "name"));
                const char *val = json_string_value(json_object_get(v, "value"));
                /* valueFrom (Kubernetes secrets and fields) has no local meaning */
                if (!n || !*n || strchr(n, '='))
                        continue;
                if ((r = eg_strv_push(&env, eg_strdup_printf("%s=%s", n, val ? val : ""))) < 0)
                        goto fail;
        }
        if (!env.v && !(env.v = calloc(1, sizeof(*env.v)))) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = env;
        return 0;
fail:
        eg_strv_done(&env);
        return r;
}

struct spawn_report {
        int32_t kind;
        int32_t value;
};

static void report_write(int fd, int32_t kind, int32_t value) {
        struct spawn_report m = {kind, value};
        ssize_t n;
        do
                n = write(fd, &m, sizeof(m));
        while (n < 0 && errno == EINTR);
}

/* In the grandchild, after fork: async-signal-safe calls only. */
static _Noreturn void grandchild_exec(const char *bin, char *const *argv, char *const *envp, int null_fd, int log_fd,
                                      int report_fd) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int s = 1; s < NSIG; s++)
                sigaction(s, &dfl, NULL);
        if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0 ||
            chdir("/") < 0) {
                report_write(report_fd, REPORT_SETUP_ERRNO, errno);
                _exit(127);
        }
        /* report_fd is O_CLOEXEC: it stays until exec and tells the parent exec worked */
        if (close_range(3, (unsigned)report_fd - 1, 0) < 0 || close_range((unsigned)report_fd + 1, ~0U, 0) < 0) {
                struct rlimit rl;
                int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
                for (int fd = 3; fd < max; fd++)
                        if (fd != report_fd)
                                close(fd);
        }
        report_write(report_fd, REPORT_PID, (int32_t)getpid());
        execve(bin, argv, envp);
        report_write(report_fd, REPORT_EXEC_ERRNO, errno);
        _exit(127);
}

/* What the grandchild reports on fd: its pid, then nothing (exec closed the pipe) or why exec
 * failed. */
static int spawn_wait_report(const char *bin, int fd, pid_t *ret_pid, struct eg_error *err) {
        struct spawn_report msgs[2];
        struct eg_buf b;
        eg_buf_init(&b, sizeof(msgs));
        int r = eg_read_fd_timeout(fd, &b, SPAWN_TIMEOUT_MS);
        size_t got = b.len;
        memcpy(msgs, b.data ? b.data : "", got < sizeof(msgs) ? got : sizeof(msgs));
        eg_buf_done(&b);
        if (r < 0 && r != -ETIMEDOUT && r != -E2BIG) {
                eg_error_set(err, "cannot start %s: %s", bin, strerror(-r));
                return r;
        }
        if (got < sizeof(msgs[0])) {
                eg_error_set(err, "cannot start %s: the starter process died", bin);
                return -ECHILD;
        }
        if (msgs[0].kind != REPORT_PID || msgs[0].value <= 0) {
                int e = msgs[0].kind != REPORT_PID && msgs[0].value > 0 ? msgs[0].value : EIO;
                eg_error_set(err, "cannot start %s: %s", bin, strerror(e));
                return -e;
        }
        if (got >= sizeof(msgs) && msgs[1].kind == REPORT_EXEC_ERRNO) {
                eg_error_set(err, "cannot exec %s: %s", bin, strerror(msgs[1].value));
                return -msgs[1].value;
        }
        if (got > sizeof(msgs[0]) || r == -ETIMEDOUT) {
                kill(msgs[0].value, SIGKILL);
                eg_error_set(err, "cannot start %s: no word from the new process", bin);
                return -ETIMEDOUT;
        }
        *ret_pid = msgs[0].value;
        return 0;
}

/* Starts bin detached: its own session, not our child (double fork), stdin /dev/null,
 * stdout and stderr appended to log_fd, no other fds. Returns once exec succeeded. */
int eg_proc_spawn_detached(const char *bin, char *const *argv, char *const *envp, int log_fd, pid_t *ret_pid,
                           struct eg_error *err) {
        int p[2] = {-1, -1}, null_fd = -1, lfd = -1, r = 0;
        if (pipe2(p, O_CLOEXEC) < 0)
                goto fail_errno;
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        null_fd = fd_above_stdio(open("/dev/null", O_RDWR | O_CLOEXEC));
        lfd = fcntl(log_fd, F_DUPFD_CLOEXEC, 3);
        if (p[0] < 0 || p[1] < 0 || null_fd < 0 || lfd < 0)
                goto fail_errno;

        pid_t child = fork();
        if (child < 0)
                goto fail_errno;
        if (child == 0) {
                if (setsid() < 0) {
                        report_write(p[1], REPORT_SETUP_ERRNO, errno);
                        _exit(127);
                }
                pid_t g = fork();
                if (g < 0) {
                        report_write(p[1], REPORT_SETUP_ERRNO, errno);
                        _exit(127);
                }
                if (g > 0)
                        _exit(0);
                grandchild_exec(bin, argv, envp, null_fd, lfd, p[1]);
        }
        eg_close_fd(&p[1]);
        eg_close_fd(&null_fd);
        eg_close_fd(&lfd);
        /* the intermediate exits at once; ECHILD if someone else reaped it */
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                ;

        r = spawn_wait_report(bin, p[0], ret_pid, err);
        eg_close_fd(&p[0]);
        return r;
fail_errno:
        r = -errno;
        eg_error_set(err, "cannot start %s: %s", bin, strerror(errno));
        eg_close_fd(&p[0]);
        eg_close_fd(&p[1]);
        eg_close_fd(&null_fd);
        eg_close_fd(&lfd);
        return r;
}

bool eg_proc_is_executable(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Only absolute PATH entries: the binary must not depend on the daemon's cwd. */
char *eg_proc_find_on_path(const char *name) {
        const char *path = getenv("PATH");
        for (const char *p = path; p && *p;) {
                const char *end = strchr(p, ':');
                size_t l = end ? (size_t)(end - p) : strlen(p);
                if (l > 0 && p[0] == '/') {
                        char *full = eg_strdup_printf("%.*s/%s", (int)l, p, name);
                        if (!full)
                                return NULL;
                        if (eg_proc_is_executable(full))
                                return full;
                        free(full);
                }
                p = end ? end + 1 : p + l;
        }
        return NULL;
}

/* Runs `bin --version` for at most VERSION_PROBE_TIMEOUT_MS; *ret is what follows
 * "etcd Version: ", or NULL when it printed no such line. */
int eg_proc_probe_version(const char *bin, char **ret) {
        struct strv env = {0};
        posix_spawn_file_actions_t fa;
        int p[2] = {-1, -1}, r;
        pid_t pid = -1;
        struct eg_buf out;
        eg_buf_init(&out, VERSION_OUTPUT_MAX_BYTES);
        char *argv[] = {(char *)bin, (char *)"--version", NULL};

        r = eg_proc_build_env(NULL, &env);
        if (r < 0)
                return r;
        if (pipe2(p, O_CLOEXEC) < 0) {
                r = -errno;
                eg_strv_done(&env);
                return r;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        r = -posix_spawn(&pid, bin, &fa, NULL, argv, env.v);
        posix_spawn_file_actions_destroy(&fa);
        eg_strv_done(&env);
        eg_close_fd(&p[1]);
        if (r < 0) {
                eg_close_fd(&p[0]);
                return r;
        }

        r = eg_read_fd_timeout(p[0], &out, VERSION_PROBE_TIMEOUT_MS);
        eg_close_fd(&p[0]);
        if (r < 0)
                kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        *ret = NULL;
        if (r == 0 && out.data) {
                const char *key = "etcd Version: ";
                char *line = strstr(out.data, key);
                if (line && (line == out.data || line[-1] == '\n')) {
                        line += strlen(key);
                        *ret = strndup(line, strcspn(line, " \r\n"));
                        if (!*ret)
                                r = -ENOMEM;
                }
        }
        eg_buf_done(&out);
        return r;
}
