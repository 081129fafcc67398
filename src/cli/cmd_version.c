/* etcd-gitops version: this build and the libraries it runs with, as text or JSON. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>

#include "cli.h"
#include "etcd-gitops/metrics.h"
#include "output.h"

enum { OPT_OUTPUT = 1 };

const struct eg_option cmd_version_options[] = {
        {OPT_OUTPUT, "output", 'o', "text|json", "output format (default text)"},
        {0},
};

static int on_option(int id, const char *value, void *userdata) {
        static const char *const formats[] = {"text", "json", NULL};
        return id == OPT_OUTPUT ? eg_out_option("version", value, formats, userdata) : -EINVAL;
}

static json_t *versions(const struct eg_build_info *bi) {
        json_t *libs = json_object();
        for (size_t i = 0; libs && i < EG_BUILD_N_LIBRARIES; i++)
                json_object_set_new(libs, bi->libraries[i].name, json_string(bi->libraries[i].version));
        return libs ? json_pack("{s:s, s:s, s:o}", "version", bi->version, "gitCommit", bi->commit, "libraries", libs)
                    : NULL;
}

int cmd_version(const struct eg_command *cmd, int argc, char **argv) {
        enum eg_out_format fmt = EG_OUT_TEXT;
        char **args;
        size_t n;
        int r = eg_cli_parse(cmd, argc, argv, on_option, &fmt, &args, &n);
        if (r != 0)
                return eg_cli_parse_exit(r);
        free(args);
        struct eg_build_info bi;
        eg_build_info_get(&bi);
        if (fmt == EG_OUT_JSON) {
                json_t *v = versions(&bi);
                if (!v)
                        return EG_EXIT_ERROR;
                eg_out_json(v, stdout);
                json_decref(v);
                return EG_EXIT_OK;
        }
        printf("etcd-gitops %s (commit %s)\n", bi.version, bi.commit);
        /* OpenSSL's version names it ("OpenSSL 3.0.11 19 Sep 2023") */
        printf("libyaml %s, libgit2 %s, libcurl %s, jansson %s, libmicrohttpd %s, %s\n",
               bi.libraries[EG_BUILD_LIBYAML].version, bi.libraries[EG_BUILD_LIBGIT2].version,
               bi.libraries[EG_BUILD_LIBCURL].version, bi.libraries[EG_BUILD_JANSSON].version,
               bi.libraries[EG_BUILD_LIBMICROHTTPD].version, bi.libraries[EG_BUILD_OPENSSL].version);
        return EG_EXIT_OK;
}
