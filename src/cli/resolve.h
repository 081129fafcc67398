/* One way for every command to turn what the user typed into the cluster "NS/NAME" it means. */
#pragma once

#include <stddef.h>

struct eg_runtime;
struct eg_runtime_cluster;

/* arg as "NS/NAME": as given when it holds a '/', in --namespace when that is set, else the
 * one cluster of known (distinct "NS/NAME" strings) named arg, else "default/arg". Several clusters of
 * that name are refused (-EINVAL), the message on stderr for command listing them. *ret is
 * malloc'd. */
int eg_cli_resolve_cluster(const char *command, const char *arg, char *const *known, size_t n, char **ret);

/* arg resolved as eg_cli_resolve_cluster does against the clusters rt lists, into two malloc'd
 * strings. Says what failed on stderr for command. */
int eg_cli_resolve_on(struct eg_runtime *rt, const char *command, const char *arg, char **ret_ns, char **ret_name);

/* The cluster arg names on the runtime the common settings name: resolved against the
 * clusters it lists, then observed into *ret_c. *ret_rt stays open for the caller to free
 * (eg_runtime_free), after eg_runtime_cluster_done(ret_c). Says what failed on stderr. */
int eg_cli_open_cluster(const char *command, const char *arg, struct eg_runtime **ret_rt,
                        struct eg_runtime_cluster *ret_c);

/* eg_cli_open_cluster, then fn on the cluster, then both closed: the exit code, 0 when fn
 * returned >= 0, 2 when anything failed. */
typedef int (*eg_cli_cluster_fn)(struct eg_runtime *rt, const struct eg_runtime_cluster *c, void *userdata);
int eg_cli_with_cluster(const char *command, const char *arg, eg_cli_cluster_fn fn, void *userdata);
