/* etcd-gitops get members -o wide: what each running member's etcd says of itself. */
#include <errno.h>
#include <string.h>

#include "etcd-gitops/etcd.h"
#include "get.h"
#include "setup.h"

static void add_status(json_t *m, const struct eg_runtime_member *rm, const struct eg_etcd_options *eo) {
        struct eg_etcd *c = NULL;
        struct eg_etcd_status st = {0};
        char *url = rm->client_url;
        if (rm->peer_url)
                json_object_set_new(m, "peerURL", json_string(rm->peer_url));
        if (!rm->running || !url || eg_etcd_new(&url, 1, eo, &c) < 0)
                return;
        if (eg_etcd_status_of(c, url, &st, NULL) >= 0) {
                json_object_set_new(m, "dbSize", json_integer(st.db_size));
                json_object_set_new(m, "raftTerm", json_integer((json_int_t)st.raft_term));
                json_object_set_new(m, "raftIndex", json_integer((json_int_t)st.raft_index));
        }
        eg_etcd_status_done(&st);
        eg_etcd_free(c);
}

static int cluster_status(struct eg_runtime *rt, json_t *cluster) {
        json_t *md = json_object_get(cluster, "metadata");
        json_t *details = json_object_get(json_object_get(cluster, "status"), "memberDetails"), *m;
        const char *ns = get_str(md, "namespace"), *name = get_str(md, "name");
        struct eg_runtime_cluster rc = {0};
        struct eg_etcd_options eo = {0};
        struct eg_error err = {0};
        int r = eg_runtime_observe(rt, ns, name, &rc, &err);
        if (r >= 0)
                r = eg_runtime_etcd_access(rt, ns, name, &eo, &err);
        if (r < 0)
                eg_log_warning("cannot reach the members of %s/%s: %s", ns, name,
                               err.message ? err.message : strerror(-r));
        size_t i;
        json_array_foreach(details, i, m) {
                for (size_t k = 0; r >= 0 && k < rc.n_members; k++)
                        if (strcmp(rc.members[k].name, get_str(m, "name")) == 0)
                                add_status(m, &rc.members[k], &eo);
        }
        eg_runtime_cluster_done(&rc);
        eg_error_done(&err);
        return r;
}

int get_members_etcd_status(json_t *sel) {
        struct eg_runtime *rt = NULL;
        struct eg_error err = {0};
        int r = eg_cli_runtime_open(true, &rt, &err);
        eg_error_done(&err);
        if (r < 0)
                return r;
        size_t i;
        json_t *c;
        json_array_foreach(sel, i, c) cluster_status(rt, c);
        eg_runtime_free(rt);
        return 0;
}
