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
        POLICY_OPT_TOKEN_FILE,
        POLICY_OPT_SSH_KEY_FILE,
        POLICY_OPT_KNOWN_HOSTS_FILE,
        POLICY_OPT_INSECURE_HOST_KEY,
        POLICY_OPT_REFUSE_FORCE_PUSH,
        POLICY_OPT_PUSH_NOTES,
        POLICY_OPT_POD_START_TIMEOUT,
};

#define POLICY_OPTIONS                                                                                              \
        {POLICY_OPT_SOURCE, "source", 0, "SRC", "manifest directory or git URL"},                                   \
                {POLICY_OPT_PRUNE, "prune", 0, NULL, "stop clusters whose manifest was deleted"},                   \
                {POLICY_OPT_ALLOW_EMPTY, "allow-empty", 0, NULL, "let prune remove every cluster at once"},         \
                {POLICY_OPT_KEEP_REMOVED_DATA, "keep-removed-data", 0, NULL,                                        \
                 "keep the data of members removed by scale-down or replacement"},                                  \
                {POLICY_OPT_DELETE_PRUNED_DATA, "delete-pruned-data", 0, NULL,                                      \
                 "delete the data of pruned clusters (default: keep)"},                                             \
                {POLICY_OPT_STRICT, "strict", 0, NULL, "unknown manifest fields are errors"},                       \
                {POLICY_OPT_TOKEN_FILE, "token-file", 0, "FILE", "git over HTTPS: token or user:password in FILE"}, \
                {POLICY_OPT_SSH_KEY_FILE, "ssh-key-file", 0, "FILE", "git over SSH: private key"},                  \
                {POLICY_OPT_KNOWN_HOSTS_FILE, "known-hosts-file", 0, "FILE",                                        \
                 "git over SSH: known_hosts (default ~/.ssh/known_hosts)"},                                         \
                {POLICY_OPT_INSECURE_HOST_KEY, "insecure-skip-host-key-check", 0, NULL,                             \
                 "git over SSH: accept any host key"},                                                              \
                {POLICY_OPT_REFUSE_FORCE_PUSH, "refuse-force-push", 0, NULL,                                        \
                 "hold at the last revision when the branch is force-pushed"},                                      \
                {POLICY_OPT_PUSH_NOTES, "push-notes", 0, NULL, "push refs/notes/etcd-gitops to the remote"}, {      \
                POLICY_OPT_POD_START_TIMEOUT, "pod-start-timeout", 0, "DURATION",                                   \
                        "a member still starting this long (pod pending or unschedulable) is replaced (default 5m)" \
        }

struct policy_args {
        const char *source;
        bool strict;
        struct eg_policy policy;
        const char *token_file, *ssh_key_file, *known_hosts_file;
        bool insecure_host_key, refuse_force_push, push_notes;
};

/* Returns 1 when id was a policy option, 0 when not, -EINVAL (said on stderr) for a bad value. */
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
        case POLICY_OPT_TOKEN_FILE:
                a->token_file = value;
                return 1;
        case POLICY_OPT_SSH_KEY_FILE:
                a->ssh_key_file = value;
                return 1;
        case POLICY_OPT_KNOWN_HOSTS_FILE:
                a->known_hosts_file = value;
                return 1;
        case POLICY_OPT_INSECURE_HOST_KEY:
                a->insecure_host_key = true;
                return 1;
        case POLICY_OPT_REFUSE_FORCE_PUSH:
                a->refuse_force_push = true;
                return 1;
        case POLICY_OPT_PUSH_NOTES:
                a->push_notes = true;
                return 1;
        case POLICY_OPT_POD_START_TIMEOUT:
                if (eg_parse_duration_ms(value, &a->policy.start_timeout_ms) < 0 || a->policy.start_timeout_ms < 1000) {
                        fprintf(stderr,
                                "etcd-gitops: --pod-start-timeout takes a duration of at least 1s, such as 5m, got '%s'\n",
                                value);
                        return -EINVAL;
                }
                return 1;
        }
        return 0;
}
