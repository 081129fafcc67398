/* kube errors: the API server's replies as errors a user can act on (for a 403, the grant and
 * the kubectl command that makes it). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "internal.h"

#define RBAC_FILE "examples/kubernetes/rbac.yaml"

/* What RBAC calls the request: verb, resource (with subresource and group) and namespace. */
static void describe_request(const char *method, const char *path, char **ret_verb, char **ret_resource,
                             char **ret_ns) {
        _cleanup_free_ char *p = strndup(path, strcspn(path, "?"));
        char *seg[16];
        size_t n = 0;
        *ret_verb = *ret_resource = *ret_ns = NULL;
        if (!p)
                return;
        for (char *s = p, *next; s && n < EG_ELEMENTSOF(seg); s = next) {
                next = strchr(s, '/');
                if (next)
                        *next++ = 0;
                if (*s)
                        seg[n++] = s;
        }
        size_t i = 0;
        const char *group = NULL;
        if (n >= 2 && strcmp(seg[0], "api") == 0)
                i = 2;
        else if (n >= 3 && strcmp(seg[0], "apis") == 0) {
                group = seg[1];
                i = 3;
        } else
                return;
        if (n >= i + 3 && strcmp(seg[i], "namespaces") == 0) {
                *ret_ns = strdup(seg[i + 1]);
                i += 2;
        }
        if (i >= n)
                return;
        const char *res = seg[i], *name = i + 1 < n ? seg[i + 1] : NULL, *sub = i + 2 < n ? seg[i + 2] : NULL;
        *ret_resource = eg_strdup_printf("%s%s%s%s%s", res, sub ? "/" : "", sub ? sub : "", group ? "." : "",
                                         group ? group : "");
        const char *verb = "get";
        const char *query = strchr(path, '?');
        if (strcmp(method, "GET") == 0 && query && (strstr(query, "watch=1") || strstr(query, "watch=true")))
                verb = "watch";
        else if (strcmp(method, "GET") == 0)
                verb = name ? "get" : "list";
        else if (strcmp(method, "POST") == 0)
                verb = "create";
        else if (strcmp(method, "PUT") == 0)
                verb = "update";
        else if (strcmp(method, "PATCH") == 0)
                verb = "patch";
        else if (strcmp(method, "DELETE") == 0)
                verb = name ? "delete" : "deletecollection";
        *ret_verb = strdup(verb);
}

/* The user an RBAC denial names ('... User "NAME" cannot VERB ...' in the API server's
 * message); NULL when the message is no RBAC denial (a quota, an admission webhook). */
static char *denied_user(const char *msg) {
        const char *u = msg ? strstr(msg, "User \"") : NULL;
        const char *end = u ? strchr(u + 6, '"') : NULL;
        if (!end || end == u + 6 || !eg_str_has_prefix(end, "\" cannot "))
                return NULL;
        return strndup(u + 6, (size_t)(end - u - 6));
}

/* How kubectl names user as a binding's subject ("--serviceaccount NS:NAME", "--user NAME");
 * NULL when it cannot be put on a command line as it is. */
static char *kubectl_subject(const char *user) {
        static const char sa[] = "system:serviceaccount:";
        if (!user ||
            strspn(user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:@_-") != strlen(user))
                return NULL;
        if (eg_str_has_prefix(user, sa) && strchr(user + strlen(sa), ':'))
                return eg_strdup_printf("--serviceaccount %s", user + strlen(sa));
        return eg_strdup_printf("--user %s", user);
}

/* A 403. An RBAC denial names what was refused (verb, resource, namespace) and the binding of
 * RBAC_FILE that grants it, as a kubectl command when the API server named the subject: the
 * Lease's Role for leases, else the runtime's ClusterRole; in the namespace with a RoleBinding,
 * across namespaces with a ClusterRoleBinding (or, for a list, one namespace with -n). */
static void forbidden_error(const char *method, const char *path, const char *msg, struct eg_error *err) {
        _cleanup_free_ char *verb = NULL, *res = NULL, *ns = NULL, *cmd = NULL;
        _cleanup_free_ char *user = denied_user(msg), *subject = kubectl_subject(user);
        if (msg && !user) {
                /* refused by something other than RBAC: its words are the whole story */
                eg_error_set(err, "forbidden: %s %s: %s", method, path, msg);
                return;
        }
        describe_request(method, path, &verb, &res, &ns);
        if (!verb || !res) {
                eg_error_set(err, "forbidden: %s %s: %s: check the grants of " RBAC_FILE, method, path,
                             msg ? msg : "no reason given");
                return;
        }
        bool lease = strcmp(res, "leases.coordination.k8s.io") == 0;
        const char *role = lease ? "etcd-gitops-leader-election" : "etcd-gitops-runtime";
        if (subject)
                cmd = ns ? eg_strdup_printf("kubectl create rolebinding %s --namespace %s --%s %s %s", role, ns,
                                            lease ? "role" : "clusterrole", role, subject)
                         : eg_strdup_printf("kubectl create clusterrolebinding %s --clusterrole %s %s", role, role,
                                            subject);
        /* what the API server adds to its sentence (a binding to a role that does not exist) */
        const char *extra = msg ? strstr(msg, ": RBAC: ") : NULL;
        _cleanup_free_ char *who = user ? eg_strdup_printf("User \"%s\"", user) : strdup("the credentials");
        _cleanup_free_ char *denied = eg_strdup_printf("forbidden: %s cannot %s %s %s%s%s%s%s", who ? who : "?", verb,
                                                       res, ns ? "in namespace " : "in every namespace (cluster-wide)",
                                                       ns ? ns : "", extra ? " (" : "", extra ? extra + 2 : "",
                                                       extra ? ")" : "");
        if (!denied)
                return;
        if (ns)
                eg_error_set(err, "%s: bind the %s %s of " RBAC_FILE " there with a RoleBinding%s%s", denied,
                             lease ? "Role" : "ClusterRole", role, cmd ? ": " : "", cmd ? cmd : "");
        else
                eg_error_set(err, "%s: bind the ClusterRole %s of " RBAC_FILE " with a ClusterRoleBinding%s%s%s%s",
                             denied, role, cmd ? " (" : "", cmd ? cmd : "", cmd ? ")" : "",
                             strcmp(verb, "list") == 0 || strcmp(verb, "watch") == 0
                                     ? ", or look in one namespace with -n NAMESPACE"
                                     : "");
}

int kube_status_error(long status, const char *method, const char *path, json_t *body, struct eg_error *err) {
        const char *msg = json_string_value(json_object_get(body, "message"));
        const char *reason = json_string_value(json_object_get(body, "reason"));
        if (status == 403) {
                forbidden_error(method, path, msg, err);
                return -EACCES;
        }
        if (status == 401) {
                eg_error_set(err,
                             "unauthorized: the API server did not accept the kubeconfig's credentials for %s %s%s%s",
                             method, path, msg ? ": " : "", msg ? msg : "");
                return -EPERM;
        }
        eg_error_set(err, "%s %s: HTTP %ld%s%s%s%s%s", method, path, status, reason ? " " : "", reason ? reason : "",
                     msg ? ": " : "", msg ? msg : "", body ? "" : " (no Status in the reply)");
        switch (status) {
        case 404:
                return -ENOENT;
        case 409:
                return reason && strcmp(reason, "AlreadyExists") == 0 ? -EEXIST : -ESTALE;
        case 400:
        case 422:
                return -EINVAL;
        case 410:
                return -ESTALE;
        default:
                return status == 429 || status >= 500 ? -EAGAIN : -EIO;
        }
}
