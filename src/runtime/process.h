/* Process helpers of the local runtime: detached spawning, /proc checks, binaries. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

struct strv {
        char **v;
        size_t n, alloc;
};
void eg_strv_done(struct strv *s);
/* Takes str (NULL means out of memory: -ENOMEM); keeps the list NULL-terminated. */
int eg_strv_push(struct strv *s, char *str);
void eg_close_fd(int *fd);

/* State letter and start time (clock ticks since boot, field 22) of /proc/<pid>/stat. */
int eg_proc_stat(int64_t pid, char *ret_state, uint64_t *ret_start);
/* Whether a NUL-separated command line holds "flag=value" or "flag" "value". */
bool eg_proc_cmdline_has(const char *data, size_t len, const char *flag, const char *value);
/* The environment for etcd: ours without ETCD_* (etcd 3.4 refuses variables that clash
 * with flags), plus etcd_env ([{name, value}]). */
int eg_proc_build_env(json_t *etcd_env, struct strv *ret);
/* Starts bin in its own session, reparented away from us (double fork), stdout and
 * stderr on log_fd; *ret_pid is the process running bin. An exec failure is an error. */
int eg_proc_spawn_detached(const char *bin, char *const *argv, char *const *envp, int log_fd, pid_t *ret_pid,
                           struct eg_error *err);
bool eg_proc_is_executable(const char *path);
/* malloc'd path of name on $PATH, or NULL. */
char *eg_proc_find_on_path(const char *name);
/* The version `bin --version` reports ("etcd Version: X"), bounded in time. */
int eg_proc_probe_version(const char *bin, char **ret);
