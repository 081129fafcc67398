/* libFuzzer target: any bytes as a kubeconfig (YAML or JSON), alone or merged with a second
 * file through $KUBECONFIG, through the loader. It loads only: credentials are never fetched,
 * and the process-spawning calls below abort, so a fuzzed exec: stanza can never run.
 *
 * Input: a flags byte (bit 0: split the rest at its first NUL into two files listed in
 * $KUBECONFIG; bit 1: ask for context "fuzz" rather than the current-context), then the
 * file's bytes. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd-gitops/kube.h"
#include "etcd-gitops/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Interposed over libc's for the whole process: loading a kubeconfig must never start one. */
static void no_spawn(const char *what) {
        fprintf(stderr, "fuzz_kubeconfig: %s called while loading a kubeconfig\n", what);
        abort();
}
int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                char *const argv[], char *const envp[]) {
        no_spawn("posix_spawn");
        return -1;
}
int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                 char *const argv[], char *const envp[]) {
        no_spawn("posix_spawnp");
        return -1;
}
pid_t fork(void) {
        no_spawn("fork");
        return -1;
}
int execve(const char *path, char *const argv[], char *const envp[]) {
        no_spawn("execve");
        return -1;
}

static char *dir, *path_a, *path_b, *list;

static void cleanup(void) {
        if (dir)
                eg_rm_rf(dir);
}

static void setup(void) {
        char tmpl[] = "/dev/shm/eg-fuzz-kubeconfig.XXXXXX", tmpl2[] = "/tmp/eg-fuzz-kubeconfig.XXXXXX";
        const char *d = mkdtemp(tmpl);
        if (!d)
                d = mkdtemp(tmpl2);
        if (!d || !(dir = strdup(d)))
                abort();
        atexit(cleanup);
        /* two directories: relative paths resolve against each file's own */
        _cleanup_free_ char *da = eg_path_join(dir, "a"), *db = eg_path_join(dir, "b");
        if (!da || !db || eg_mkdir_p(da, 0700) < 0 || eg_mkdir_p(db, 0700) < 0)
                abort();
        path_a = eg_path_join(da, "config");
        path_b = eg_path_join(db, "config");
        list = eg_strdup_printf("%s:%s", path_a, path_b);
        if (!path_a || !path_b || !list)
                abort();
        /* never the in-cluster configuration, nor the user's own */
        unsetenv("KUBERNETES_SERVICE_HOST");
        setenv("HOME", dir, 1);
}

static void write_file(const char *path, const void *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || eg_write_all(fd, data, size) < 0 || close(fd) < 0)
                abort();
}

static void check_path(const char *p) {
        if (p && p[0] != '/')
                abort(); /* relative paths are made absolute */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        if (!dir)
                setup();
        bool merge = data[0] & 1;
        struct eg_kube_config_options o = {.context = data[0] & 2 ? "fuzz" : NULL};
        data++;
        size--;
        if (merge) {
                const uint8_t *nul = memchr(data, 0, size);
                size_t n = nul ? (size_t)(nul - data) : size;
                write_file(path_a, data, n);
                write_file(path_b, nul ? nul + 1 : data, nul ? size - n - 1 : 0);
                setenv("KUBECONFIG", list, 1);
        } else {
                write_file(path_a, data, size);
                o.kubeconfig = path_a;
                unsetenv("KUBECONFIG");
        }
        struct eg_kube_config *c = NULL;
        struct eg_error err = {0};
        int r = eg_kube_config_load(&o, &c, &err);
        if (r < 0 && !err.message)
                abort(); /* every failure says why */
        if (r == -ENOMEM)
                abort(); /* inputs this small never exhaust memory: some other failure is misreported */
        if (r == 0) {
                if (!c->source || !c->context || !c->server || !*c->server || c->server[strlen(c->server) - 1] == '/')
                        abort();
                if ((c->cert_file || c->cert_data) != (c->key_file || c->key_data))
                        abort();
                if ((!c->ca_data && c->ca_len) || (!c->cert_data && c->cert_len) || (!c->key_data && c->key_len))
                        abort();
                check_path(c->ca_file);
                check_path(c->cert_file);
                check_path(c->key_file);
                check_path(c->token_file);
                /* without a token file or an exec plugin this only fills c->cred */
                if (!c->token_file && !c->exec && eg_kube_config_credentials(c, false, &err) < 0)
                        abort();
        }
        eg_kube_config_free(c);
        eg_error_done(&err);
        return 0;
}
