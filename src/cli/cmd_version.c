/* etcd-gitops version: this build and the libraries it runs with, as text or JSON. */
#include <curl/curl.h>
#include <errno.h>
#include <git2.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

#include "cli.h"
#include "output.h"

/* A build from a git checkout may name its commit with -DEG_GIT_COMMIT="..." */
#ifndef EG_GIT_COMMIT
#define EG_GIT_COMMIT "unknown"
#endif

enum { OPT_OUTPUT = 1 };

const struct eg_option cmd_version_options[] = {
        {OPT_OUTPUT, "output", 'o', "text|json", "output format (default text)"},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"text", "json", NULL};
        return id == OPT_OUTPUT ? eg_out_option("version", value, formats, userdata) : -EINVAL;
}

/* The versions of the libraries as loaded, not as compiled against. */
static json_t *versions(void) {
        int major, minor, rev;
        char git2[48];
        git_libgit2_version(&major, &minor, &rev);
        snprintf(git2, sizeof(git2), "%d.%d.%d", major, minor, rev);
        const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
        return json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s}}", "version", EG_VERSION, "gitCommit",
                         EG_GIT_COMMIT, "libraries", "libgit2", git2, "libcurl", curl->version, "jansson",
                         jansson_version_str(), "libyaml", yaml_get_version_string(), "libmicrohttpd",
                         MHD_get_version(), "openssl", OpenSSL_version(OPENSSL_VERSION));
}

int cmd_version(const struct eg_command *cmd, int argc, char **argv) {
        enum eg_out_format fmt = EG_OUT_TEXT;
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &fmt, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        free(args);
        json_t *v = versions();
        if (!v)
                return EG_EXIT_ERROR;
        if (fmt == EG_OUT_JSON)
                eg_out_json(v, stdout);
        else {
                json_t *libs = json_object_get(v, "libraries");
                printf("etcd-gitops %s (commit %s)\n", EG_VERSION, EG_GIT_COMMIT);
                printf("libyaml %s, libgit2 %s, libcurl %s, jansson %s, libmicrohttpd %s, %s\n",
                       json_string_value(json_object_get(libs, "libyaml")),
                       json_string_value(json_object_get(libs, "libgit2")),
                       json_string_value(json_object_get(libs, "libcurl")),
                       json_string_value(json_object_get(libs, "jansson")),
                       json_string_value(json_object_get(libs, "libmicrohttpd")),
                       json_string_value(json_object_get(libs, "openssl")));
        }
        json_decref(v);
        return EG_EXIT_OK;
}
