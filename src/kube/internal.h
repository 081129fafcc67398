/* Shared inside the kube module: the exec plugin's state (kubeconfig.c parses it, credentials.c
 * runs it), JSON field helpers and the API server's errors. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "etcd-gitops/kube.h"

struct eg_kube_exec {
        char *api_version;
        char *command;
        char **args; /* NULL-terminated, args[0] is the command */
        char **env;  /* "NAME=value", NULL-terminated */
        bool provide_cluster_info;
        /* the cached result */
        bool have;
        int64_t expiry_ms; /* 0: until refreshed */
        char *token;
        char *cert_data, *key_data;
        size_t cert_len, key_len;
};

/* A user's exec entry; where names it in messages ("FILE: user NAME"). */
int kube_exec_parse(json_t *ex, const char *where, struct eg_kube_exec **ret, struct eg_error *err);
void kube_exec_free(struct eg_kube_exec *e);

static inline const char *kube_jstr(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A non-empty string field, copied; absent or empty leaves *ret alone. */
static inline int kube_dup_field(json_t *o, const char *key, char **ret) {
        const char *s = kube_jstr(o, key);
        if (!s || !*s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* A reply outside 2xx as err and its errno (kube.h lists them); body is the Status object, or
 * NULL when the reply held none. */
int kube_status_error(long status, const char *method, const char *path, json_t *body, struct eg_error *err);
