/* Test helper: etcd's v3 JSON gateway served in-process (libmicrohttpd) from an in-memory
 * membership per cluster, hostile on request: refusals, lost leaders, slow and mute members. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The gateway calls our client makes, for faults and call counts. */
enum fake_etcd_call {
        FAKE_CALL_LIST,
        FAKE_CALL_ADD,
        FAKE_CALL_REMOVE,
        FAKE_CALL_PROMOTE,
        FAKE_CALL_STATUS,
        FAKE_CALL_HEALTH,
        FAKE_CALL_MOVE_LEADER,
        _FAKE_CALL_MAX
};
#define FAKE_CALL_BIT(c) (1u << (c))

/* What etcd refuses for a while, per cluster. */
struct fake_etcd_faults {
        /* member add answers "unhealthy cluster" this many times after each join (etcd's strict
         * reconfiguration check: a new voter's peers have not been connected long enough) */
        unsigned add_refusals_after_join;
        /* promote answers "not in sync with leader" this many times per learner */
        unsigned promote_refusals;
};

struct fake_etcd;

/* Listens on a free loopback port; every cluster starts empty. */
int fake_etcd_new(struct fake_etcd **ret);
void fake_etcd_free(struct fake_etcd *fe);

/* Where a member's process answers: http://127.0.0.1:PORT/NS/NAME/MEMBER (malloc'd). */
char *fake_etcd_client_url(struct fake_etcd *fe, const char *ns, const char *name, const char *member);

/* ---- what the runtime's processes do to etcd ---- */

/* A new cluster of n voters (peer_urls[i] for members[i]), none of them up yet. -EEXIST when
 * it has a membership already. */
int fake_etcd_bootstrap(struct fake_etcd *fe, const char *ns, const char *name, char *const *members,
                        char *const *peer_urls, size_t n);
/* A member's process starts (up) or ends. A process whose peer URL an unstarted entry of the
 * membership has takes that entry's place under its name, as a join does; one etcd does not
 * list answers nothing, as an etcd that exits at once. */
void fake_etcd_set_up(struct fake_etcd *fe, const char *ns, const char *name, const char *member, const char *peer_url,
                      bool up);
/* --force-new-cluster: the membership becomes member alone (it keeps its id). */
void fake_etcd_force_new(struct fake_etcd *fe, const char *ns, const char *name, const char *member);
/* Forgets the cluster (every process gone, data deleted). */
void fake_etcd_forget(struct fake_etcd *fe, const char *ns, const char *name);

/* ---- hostility ---- */

void fake_etcd_set_faults(struct fake_etcd *fe, const char *ns, const char *name, const struct fake_etcd_faults *f);
/* The member drops the connection on the calls in mask (FAKE_CALL_BIT), as one cut off
 * from this daemon's network for some paths. */
void fake_etcd_mute(struct fake_etcd *fe, const char *ns, const char *name, const char *member, unsigned mask);
/* The member refuses the calls in mask as "unhealthy cluster", as one whose transport to a new
 * peer is too fresh for etcd's strict reconfiguration check. */
void fake_etcd_refuse(struct fake_etcd *fe, const char *ns, const char *name, const char *member, unsigned mask);
/* Every answer of the member comes this late (0: at once). */
void fake_etcd_delay(struct fake_etcd *fe, const char *ns, const char *name, const char *member, int64_t delay_ms);
/* Leadership moves to member (an election or a transfer); -ENOENT unless it is an up voter.
 * NULL: an election that does not end until a member is elected. */
int fake_etcd_elect(struct fake_etcd *fe, const char *ns, const char *name, const char *member);

/* ---- what the test asserts on ---- */

/* The membership in order of joining, space-separated: "c-0 c-1 c-3~" (~: learner, an
 * unstarted entry is "?"); "" without one. malloc'd. */
char *fake_etcd_membership(struct fake_etcd *fe, const char *ns, const char *name);
/* The leader's name (malloc'd); NULL without quorum. */
char *fake_etcd_leader(struct fake_etcd *fe, const char *ns, const char *name);
/* How often the cluster's members were asked call (answered or refused). */
size_t fake_etcd_calls(struct fake_etcd *fe, const char *ns, const char *name, enum fake_etcd_call call);
