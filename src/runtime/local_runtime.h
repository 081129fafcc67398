/* The local runtime's state, shared by runtime_local.c (the object, its layout, lock and
 * observations), local_start.c (binaries, ports, processes) and local_members.c (the changes
 * to a cluster's members). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "etcd-gitops/runtime.h"
#include "local_record.h"

struct local_runtime {
        struct eg_runtime base;
        char *state_dir; /* absolute */
        char *clusters_dir;
        char *bin_dir; /* absolute; NULL when not configured */
        char *host;
        int port_base;
        int64_t stop_grace_ms;
        /* `etcd` on PATH, probed once per instance: a version check runs a process. */
        bool path_probed;
        char *path_etcd;    /* NULL when there is none */
        char *path_version; /* NULL when it did not say */
};

static inline struct local_runtime *to_local(struct eg_runtime *rt) { return (struct local_runtime *)rt; }

static inline bool version_is_valid(const char *s) { return eg_local_token_is_valid(s, 64, "-+."); }

/* ---- runtime_local.c: names, layout, lock ---- */

int local_check_names(const char *ns, const char *name, struct eg_error *err);
int local_check_target(const struct eg_runtime_target *t, struct eg_error *err);
int local_check_member(const char *member, struct eg_error *err);

/* clusters/NS/NAME, its cluster.json and members/MEMBER; malloc'd */
char *local_cluster_dir(struct local_runtime *lr, const char *ns, const char *name);
char *local_record_path(struct local_runtime *lr, const char *ns, const char *name);
char *local_member_dir(struct local_runtime *lr, const char *ns, const char *name, const char *member);
int local_record_save(struct local_runtime *lr, const char *ns, const char *name, const struct lrecord *rec,
                      struct eg_error *err);
/* Loads the record for a mutation; a missing one is an error naming the cluster. */
int local_load_for_change(struct local_runtime *lr, const char *ns, const char *name, struct lrecord *ret,
                          struct eg_error *err);
char *local_host_url(struct local_runtime *lr, int port);
/* One mutation of the state dir at a time, across threads and processes: *ret_fd holds the lock. */
int local_state_lock(struct local_runtime *lr, int *ret_fd, struct eg_error *err);

/* Whether a member's data dir holds a write-ahead log; whether it is still as reserved. */
bool local_wal_present(const char *data_dir);
bool local_data_untouched(const char *data_dir);

/* ---- local_start.c: binaries, ports, processes ---- */

struct ports {
        int *v;
        size_t n;
};

/* Calls fn for every clusters/<ns>/<name> directory, sorted; stops at the first error. */
int local_for_each_cluster_dir(struct local_runtime *lr,
                               int (*fn)(struct local_runtime *lr, const char *ns, const char *name, void *userdata),
                               void *userdata, struct eg_error *err);
/* Every port any record holds. */
int local_ports_recorded(struct local_runtime *lr, struct ports *ret);
int local_resolve_binary(struct local_runtime *lr, const char *version, char **ret, struct eg_error *err);

bool local_member_alive(const struct lmember *m);
bool local_members_adopt_unrecorded(struct lrecord *rec);
int local_member_kill(struct local_runtime *lr, const char *ns, const char *name, struct lmember *m,
                      struct eg_error *err);

json_t *local_spec_env(const struct eg_cluster_spec *spec);
char *local_member_hash(struct eg_runtime *rt, const struct eg_cluster_spec *spec);
int local_member_reserve(struct local_runtime *lr, const struct eg_runtime_target *t, const char *member,
                         struct ports *used, struct lmember *m, struct eg_error *err);
int local_member_dir_move_aside(struct local_runtime *lr, const char *ns, const char *name, const char *member,
                                struct eg_error *err);
int local_member_start(struct local_runtime *lr, const char *ns, const char *name, struct lmember *m, const char *bin,
                       const char *initial_cluster, const char *token, const char *extra, json_t *etcd_env,
                       struct eg_error *err);

/* ---- local_members.c: the runtime operations on members ---- */

int local_bootstrap(struct eg_runtime *rt, const struct eg_runtime_target *t, char *const *members, size_t n,
                    struct eg_error *err);
int local_prepare_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         char **ret_peer_url, struct eg_error *err);
int local_start_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                       const char *initial_cluster, struct eg_error *err);
int local_restart_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         const char *initial_cluster, struct eg_error *err);
int local_force_new_cluster(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                            struct eg_error *err);
int local_stop_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member, bool delete_data,
                      struct eg_error *err);
int local_release_member(struct eg_runtime *rt, const char *ns, const char *name, const char *member,
                         struct eg_error *err);
int local_upgrade_member(struct eg_runtime *rt, const struct eg_runtime_target *t, const char *member,
                         struct eg_error *err);
