/* One way for every command to turn what the user typed into the cluster "NS/NAME" it means. */
#pragma once

#include <stddef.h>

/* arg as "NS/NAME": as given when it holds a '/', in --namespace when that is set, else the
 * one cluster of known (distinct "NS/NAME" strings) named arg, else "default/arg". Several clusters of
 * that name are refused (-EINVAL), the message on stderr for command listing them. *ret is
 * malloc'd. */
int eg_cli_resolve_cluster(const char *command, const char *arg, char *const *known, size_t n, char **ret);
