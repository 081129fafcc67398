/* Options shared by apply, run and diff that set the reconcile policy. */
#pragma once

#include "cli.h"
#include "etcd-gitops/plan.h"

enum {
        POLICY_OPT_PRUNE = 1000,
        POLICY_OPT_ALLOW_EMPTY,
        POLICY_OPT_KEEP_REMOVED_DATA,
        POLICY_OPT_DELETE_PRUNED_DATA,
        POLICY_OPT_STRICT,
        POLICY_OPT_SOURCE,
};

#define POLICY_OPTIONS                                                                                     \
        {POLICY_OPT_SOURCE, "source", 0, "SRC", "manifest directory (git URLs: not built yet)"},            \
        {POLICY_OPT_PRUNE, "prune", 0, NULL, "stop clusters whose manifest was deleted"},                  \
        {POLICY_OPT_ALLOW_EMPTY, "allow-empty", 0, NULL, "let prune remove every cluster at once"},        \
        {POLICY_OPT_KEEP_REMOVED_DATA, "keep-removed-data", 0, NULL, "keep the data of members removed by scale-down or replacement"}, \
        {POLICY_OPT_DELETE_PRUNED_DATA, "delete-pruned-data", 0, NULL, "delete the data of pruned clusters (default: keep)"}, \
        {POLICY_OPT_STRICT, "strict", 0, NULL, "unknown manifest fields are errors"}

struct policy_args {
        const char *source;
        bool strict;
        struct eg_policy policy;
};

/* Returns 1 when id was a policy option, 0 when not. */
static inline int policy_option(struct policy_args *a, int id, const char *value) {
        switch (id) {
        case POLICY_OPT_SOURCE:
                a->source = value;
                return 1;
        case POLICY_OPT_PRUNE:
                a->policy.prune = true;
                return 1;
        case POLICY_OPT_ALLOW_EMPTY:
                a->policy.allow_empty = true;
                return 1;
        case POLICY_OPT_KEEP_REMOVED_DATA:
                a->policy.keep_removed_data = true;
                return 1;
        case POLICY_OPT_DELETE_PRUNED_DATA:
                a->policy.delete_pruned_data = true;
                return 1;
        case POLICY_OPT_STRICT:
                a->strict = true;
                return 1;
        }
        return 0;
}
