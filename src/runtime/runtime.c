/* runtime: helpers shared by every runtime implementation. */
#include <stdlib.h>

#include "etcd-gitops/runtime.h"

const char *eg_member_life_to_string(enum eg_member_life l) {
        static const char *const names[] = {
                [EG_LIFE_RUNNING] = "running",
                [EG_LIFE_STARTING] = "starting",
                [EG_LIFE_FAILING] = "failing",
                [EG_LIFE_GONE] = "gone",
        };
        return (unsigned)l < EG_ELEMENTSOF(names) ? names[l] : NULL;
}

static void members_free(struct eg_runtime_member *members, size_t n) {
        for (size_t i = 0; i < n; i++) {
                struct eg_runtime_member *m = &members[i];
                free(m->name);
                free(m->version);
                free(m->spec_hash);
                free(m->client_url);
                free(m->peer_url);
                free(m->life_reason);
        }
        free(members);
}

void eg_runtime_cluster_done(struct eg_runtime_cluster *c) {
        if (!c)
                return;
        members_free(c->members, c->n_members);
        members_free(c->stuck, c->n_stuck);
        free(c->upstream_owned);
        free(c->namespace);
        free(c->name);
        *c = (struct eg_runtime_cluster){0};
}

void eg_runtime_clusters_free(struct eg_runtime_cluster *c, size_t n) {
        if (!c)
                return;
        for (size_t i = 0; i < n; i++)
                eg_runtime_cluster_done(&c[i]);
        free(c);
}
