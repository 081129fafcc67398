/* The local runtime's record of a cluster: its members and how to find their processes,
 * kept in clusters/<ns>/<name>/cluster.json under the state dir. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

#define MAX_MEMBERS 1000

enum member_state { MEMBER_PREPARED, MEMBER_STARTED };

struct lmember {
        char *name;
        enum member_state state;
        int64_t pid;
        uint64_t start_time; /* field 22 of /proc/<pid>/stat, ticks since boot */
        int client_port, peer_port;
        char *client_url, *peer_url;
        char *version, *spec_hash, *revision; /* revision may be NULL */
        char *data_dir;
        int64_t started_realtime_ms;
        /* what it is (or will be) started with, so that a restart after a crash or a reboot
         * starts it exactly so: a member of the initial cluster also takes the token and
         * --initial-cluster-state=new (a member that never ran has nothing to rejoin from) */
        char *initial_cluster; /* may be NULL in records written before it was kept */
        bool bootstrap;
};

/* What clusters/<ns>/<name>/cluster.json holds. */
struct lrecord {
        uint64_t next_index;
        char *token;
        struct lmember *members;
        size_t n_members;
};

/* Names and versions end up in paths and in etcd flags: letters, digits and the
 * characters in punct, not starting with a dot, at most max of them. */
bool eg_local_token_is_valid(const char *s, size_t max, const char *punct);
/* A member or cluster name: "-_." and at most 253 characters. */
bool eg_local_name_is_valid(const char *s);

void eg_lmember_done(struct lmember *m);
void eg_lrecord_done(struct lrecord *r);
struct lmember *eg_lrecord_find(struct lrecord *r, const char *member);
/* Frees m and closes the gap; pointers to later members move. */
void eg_lrecord_remove(struct lrecord *r, struct lmember *m);
/* Appends an empty member; the pointer is valid until the next append. */
struct lmember *eg_lrecord_append(struct lrecord *r);
/* Member names are <cluster>-<n>: keeps next_index past every n handed out. */
void eg_lrecord_note_member(struct lrecord *r, const char *cluster, const char *member);

/* -ENOENT (with no message) when there is no record; -EBADMSG for one that is not ours. */
int eg_lrecord_load(const char *path, struct lrecord *ret, struct eg_error *err);
/* Written atomically (0600, its directory made 0700). */
int eg_lrecord_save(const char *path, const char *ns, const char *name, const struct lrecord *rec,
                    struct eg_error *err);
