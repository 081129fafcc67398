/* Cluster names as typed ("NAME" or "NS/NAME") resolved against the clusters a command knows. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resolve.h"

static bool named(const char *full, const char *name) {
        const char *slash = strchr(full, '/');
        return slash && strcmp(slash + 1, name) == 0;
}

int eg_cli_resolve_cluster(const char *command, const char *arg, char *const *known, size_t n, char **ret) {
        char *out = NULL;
        size_t matches = 0;
        if (strchr(arg, '/') || eg_settings.namespace)
                out = strchr(arg, '/') ? strdup(arg) : eg_strdup_printf("%s/%s", eg_settings.namespace, arg);
        else {
                for (size_t i = 0; i < n; i++)
                        if (named(known[i], arg) && matches++ == 0)
                                out = known[i];
                if (matches > 1) {
                        fprintf(stderr, "etcd-gitops %s: '%s' names more than one cluster:", command, arg);
                        for (size_t i = 0, k = 0; i < n; i++)
                                if (named(known[i], arg))
                                        fprintf(stderr, "%s %s", k++ ? "," : "", known[i]);
                        fprintf(stderr, "; say which as NAMESPACE/NAME\n");
                        return -EINVAL;
                }
                out = matches ? strdup(out) : eg_strdup_printf("default/%s", arg);
        }
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
