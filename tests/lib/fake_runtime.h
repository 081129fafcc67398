/* Test helper: a runtime (struct eg_runtime_ops) whose members live in memory, no process
 * anywhere, their etcd answered by a fake_etcd kept consistent with them. A restore's seed is
 * bootstrapped without calling prepare_data: filling a data dir from a snapshot is etcdutl's,
 * a process. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "etcd-gitops/runtime.h"
#include "fake_etcd.h"

struct fake_runtime;

/* fe is borrowed and must outlive the runtime. */
int fake_runtime_new(struct fake_etcd *fe, struct fake_runtime **ret);
void fake_runtime_free(struct fake_runtime *fr);
/* The runtime to give the reconciler (owned by fr). */
struct eg_runtime *fake_runtime_get(struct fake_runtime *fr);

/* ---- how its members behave from now on ---- */

/* A member started stays STARTING ("ContainerCreating") for this many observations of its
 * cluster, then runs (0: it runs at once). */
void fake_runtime_start_after(struct fake_runtime *fr, unsigned observations);
/* Every start (bootstrap, join, restart, upgrade) fails with why; NULL: starts succeed. */
void fake_runtime_refuse_starts(struct fake_runtime *fr, const char *why);
/* Observing a cluster fails with why (the platform's API unreachable); NULL: it works. */
void fake_runtime_break_observe(struct fake_runtime *fr, const char *why);
/* Whether a changed member template can be applied in place (as a pod on an emptyDir cannot). */
void fake_runtime_rolls_in_place(struct fake_runtime *fr, bool in_place);

/* ---- what happens to members behind the daemon's back ---- */

/* The member's process exits; with keep_data it can be restarted in place. */
int fake_runtime_kill(struct fake_runtime *fr, const char *ns, const char *name, const char *member, bool keep_data);
/* The member will not run (an image pull error, a crash loop): reason is the platform's words. */
int fake_runtime_fail(struct fake_runtime *fr, const char *ns, const char *name, const char *member,
                      const char *reason);
/* The runtime loses its record of the member (its process gone with it); etcd still lists it. */
int fake_runtime_forget(struct fake_runtime *fr, const char *ns, const char *name, const char *member);
/* A running member that no etcd membership lists (a join that never happened). */
int fake_runtime_add_stray(struct fake_runtime *fr, const char *ns, const char *name, const char *member);
/* Objects an upstream EtcdCluster resource still owns (NULL: none), until disowned. */
int fake_runtime_set_upstream_owned(struct fake_runtime *fr, const char *ns, const char *name, const char *what);

/* ---- what the test asserts on ---- */

/* The members the runtime holds, space-separated in the order they were made: "c-0 c-1@3.5.0
 * c-2(gone)". with_version adds "@version"; a member that does not run says how it is:
 * (starting), (failing), (gone) or (reserved) for one prepared and never started. NULL when
 * the runtime has no such cluster. malloc'd. */
char *fake_runtime_members(struct fake_runtime *fr, const char *ns, const char *name, bool with_version);
/* Clusters bootstrapped from a snapshot (a restore's seed). */
size_t fake_runtime_restores(struct fake_runtime *fr);
/* Decisions told to the platform (record_event), and how many of them were warnings. */
size_t fake_runtime_events(struct fake_runtime *fr, size_t *ret_warnings);
