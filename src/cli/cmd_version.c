/* etcd-gitops version */
#include <curl/curl.h>
#include <git2.h>
#include <jansson.h>
#include <stdio.h>
#include <yaml.h>

#include "cli.h"

int cmd_version(const struct eg_command *cmd, int argc, char **argv) {
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, NULL, NULL, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        free(args);
        int major, minor, rev;
        git_libgit2_version(&major, &minor, &rev);
        printf("etcd-gitops %s\n", EG_VERSION);
        printf("libyaml %s, libgit2 %d.%d.%d, %s, jansson %s\n", yaml_get_version_string(), major,
               minor, rev, curl_version(), JANSSON_VERSION);
        return EG_EXIT_OK;
}
