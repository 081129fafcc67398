/* What this build is: its version, the commit it was built from and the libraries it runs
 * with, for `version` and etcd_gitops_build_info. */
#include <curl/curl.h>
#include <git2.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

#include "etcd-gitops/metrics.h"

/* CMake names the commit of a build from a git checkout */
#ifndef EG_GIT_COMMIT
#define EG_GIT_COMMIT "unknown"
#endif

void eg_build_info_get(struct eg_build_info *ret) {
        int major, minor, rev;
        git_libgit2_version(&major, &minor, &rev);
        char git2[48];
        snprintf(git2, sizeof(git2), "%d.%d.%d", major, minor, rev);
        *ret = (struct eg_build_info){.version = EG_VERSION, .commit = EG_GIT_COMMIT};
        const char *const versions[EG_BUILD_N_LIBRARIES] = {
                [EG_BUILD_LIBYAML] = yaml_get_version_string(),
                [EG_BUILD_LIBGIT2] = git2,
                [EG_BUILD_LIBCURL] = curl_version_info(CURLVERSION_NOW)->version,
                [EG_BUILD_JANSSON] = jansson_version_str(),
                [EG_BUILD_LIBMICROHTTPD] = MHD_get_version(),
                [EG_BUILD_OPENSSL] = OpenSSL_version(OPENSSL_VERSION),
        };
        static const char *const names[EG_BUILD_N_LIBRARIES] = {
                [EG_BUILD_LIBYAML] = "libyaml",
                [EG_BUILD_LIBGIT2] = "libgit2",
                [EG_BUILD_LIBCURL] = "libcurl",
                [EG_BUILD_JANSSON] = "jansson",
                [EG_BUILD_LIBMICROHTTPD] = "libmicrohttpd",
                [EG_BUILD_OPENSSL] = "openssl",
        };
        for (size_t i = 0; i < EG_BUILD_N_LIBRARIES; i++) {
                ret->libraries[i].name = names[i];
                snprintf(ret->libraries[i].version, sizeof(ret->libraries[i].version), "%s",
                         versions[i] ? versions[i] : "unknown");
        }
}
