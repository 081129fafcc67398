/* util: the state directory's layout, the one place that names what lies where in it. */
#include <string.h>

#include "etcd-gitops/util.h"

static const struct {
        const char *dir;
        const char *suffix; /* after NAME */
} areas[] = {
        [EG_STATE_AUDIT_LOG] = {"audit.jsonl", ""},
        [EG_STATE_STATUS] = {"status", ".json"},
        [EG_STATE_BACKUPS] = {"backups", ".json"},
        [EG_STATE_RESTORES] = {"restores", ".json"},
        [EG_STATE_RESTORE_WORK] = {"restore", ""},
        [EG_STATE_SECRETS] = {"secrets", ""},
        [EG_STATE_AWS_CREDENTIALS] = {"secrets", "/credentials"},
        [EG_STATE_GIT] = {"git", ""},
        [EG_STATE_CLUSTERS] = {"clusters", ""},
        [EG_STATE_LOCAL_LOCK] = {"runtime-local.lock", ""},
        [EG_STATE_KUBE] = {"kube", ""},
        [EG_STATE_KUBE_NAMESPACES] = {"kube/namespaces", ""},
        [EG_STATE_SUSPENDED] = {"suspended", ".json"},
};

char *eg_state_path(const char *state_dir, enum eg_state_area area, const char *ns, const char *name) {
        if ((unsigned)area >= EG_ELEMENTSOF(areas) || !areas[area].dir)
                return NULL;
        size_t n = strlen(state_dir);
        const char *sep = n > 0 && state_dir[n - 1] == '/' ? "" : "/", *dir = areas[area].dir;
        if (!ns)
                return eg_strdup_printf("%s%s%s", state_dir, sep, dir);
        if (!name)
                return eg_strdup_printf("%s%s%s/%s", state_dir, sep, dir, ns);
        return eg_strdup_printf("%s%s%s/%s/%s%s", state_dir, sep, dir, ns, name, areas[area].suffix);
}
