/* Test helper: etcd's v3 JSON gateway answered from memory, one membership per cluster. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/util.h"
#include "etcd_proc.h"
#include "fake_etcd.h"

/* A test's clusters are few and small: fixed tables keep the fake short. */
#define MAX_CLUSTERS 8
#define MAX_MEMBERS 16
#define MAX_BODY 65536

struct entry { /* one member of etcd's membership */
        uint64_t id;
        char *name; /* NULL until its process started */
        char *peer_url;
        bool learner;
        unsigned promote_refusals; /* left */
};

struct proc { /* one member's process, as the runtime runs it */
        char *member;
        char *peer_url;
        bool up;
        unsigned mute, refuse;
        int64_t delay_ms;
};

struct fcluster {
        char *ns, *name;
        struct entry entries[MAX_MEMBERS];
        size_t n_entries;
        struct proc procs[MAX_MEMBERS];
        size_t n_procs;
        uint64_t cluster_id, leader, term, raft_index;
        bool electing; /* no leader until fake_etcd_elect names one */
        struct fake_etcd_faults faults;
        unsigned add_refusals; /* left since the last join */
        size_t calls[_FAKE_CALL_MAX];
};

struct fake_etcd {
        struct MHD_Daemon *mhd;
        int port;
        pthread_mutex_t lock;
        struct fcluster clusters[MAX_CLUSTERS];
        size_t n_clusters;
        uint64_t next_id;
};

static const char *const call_paths[_FAKE_CALL_MAX] = {
        [FAKE_CALL_LIST] = "/v3/cluster/member/list",
        [FAKE_CALL_ADD] = "/v3/cluster/member/add",
        [FAKE_CALL_REMOVE] = "/v3/cluster/member/remove",
        [FAKE_CALL_PROMOTE] = "/v3/cluster/member/promote",
        [FAKE_CALL_STATUS] = "/v3/maintenance/status",
        [FAKE_CALL_HEALTH] = "/health",
        [FAKE_CALL_MOVE_LEADER] = "/v3/maintenance/transfer-leadership",
};

/* ---- the model (every function here runs under fe->lock) ---- */

static struct fcluster *cluster_find(struct fake_etcd *fe, const char *ns, const char *name, bool create) {
        for (size_t i = 0; i < fe->n_clusters; i++)
                if (strcmp(fe->clusters[i].ns, ns) == 0 && strcmp(fe->clusters[i].name, name) == 0)
                        return &fe->clusters[i];
        if (!create || fe->n_clusters == MAX_CLUSTERS)
                return NULL;
        struct fcluster *cl = &fe->clusters[fe->n_clusters];
        *cl = (struct fcluster){.ns = strdup(ns), .name = strdup(name), .cluster_id = 0xc000 + fe->n_clusters};
        if (!cl->ns || !cl->name) {
                free(cl->ns);
                free(cl->name);
                return NULL;
        }
        fe->n_clusters++;
        return cl;
}

static struct proc *proc_find(struct fcluster *cl, const char *member, bool create) {
        for (size_t i = 0; i < cl->n_procs; i++)
                if (strcmp(cl->procs[i].member, member) == 0)
                        return &cl->procs[i];
        if (!create || cl->n_procs == MAX_MEMBERS)
                return NULL;
        struct proc *p = &cl->procs[cl->n_procs];
        *p = (struct proc){.member = strdup(member)};
        if (!p->member)
                return NULL;
        cl->n_procs++;
        return p;
}

static struct entry *entry_named(struct fcluster *cl, const char *member) {
        for (size_t i = 0; i < cl->n_entries; i++)
                if (cl->entries[i].name && strcmp(cl->entries[i].name, member) == 0)
                        return &cl->entries[i];
        return NULL;
}

static struct entry *entry_by_id(struct fcluster *cl, uint64_t id) {
        for (size_t i = 0; i < cl->n_entries; i++)
                if (cl->entries[i].id == id)
                        return &cl->entries[i];
        return NULL;
}

static bool entry_up(struct fcluster *cl, const struct entry *e) {
        struct proc *p = e->name ? proc_find(cl, e->name, false) : NULL;
        return p && p->up;
}

static void entry_drop(struct fcluster *cl, size_t i) {
        free(cl->entries[i].name);
        free(cl->entries[i].peer_url);
        memmove(&cl->entries[i], &cl->entries[i + 1], (cl->n_entries - i - 1) * sizeof(struct entry));
        cl->n_entries--;
}

static size_t voters(struct fcluster *cl, bool up_only) {
        size_t n = 0;
        for (size_t i = 0; i < cl->n_entries; i++)
                n += !cl->entries[i].learner && (!up_only || entry_up(cl, &cl->entries[i]));
        return n;
}

static bool has_quorum(struct fcluster *cl) {
        size_t v = voters(cl, false);
        return v > 0 && voters(cl, true) >= v / 2 + 1;
}

/* A majority keeps (or elects) a leader among the voters that run; without one there is none. */
static void elect(struct fcluster *cl) {
        struct entry *l = entry_by_id(cl, cl->leader);
        if (cl->electing || !has_quorum(cl)) {
                cl->leader = 0;
                return;
        }
        if (l && !l->learner && entry_up(cl, l))
                return;
        for (size_t i = 0; i < cl->n_entries; i++)
                if (!cl->entries[i].learner && entry_up(cl, &cl->entries[i])) {
                        cl->leader = cl->entries[i].id;
                        cl->term++;
                        return;
                }
}

static void cluster_clear(struct fcluster *cl) {
        while (cl->n_entries > 0)
                entry_drop(cl, cl->n_entries - 1);
        for (size_t i = 0; i < cl->n_procs; i++) {
                free(cl->procs[i].member);
                free(cl->procs[i].peer_url);
        }
        cl->n_procs = 0;
        cl->leader = 0;
}

/* ---- answers ---- */

struct answer {
        unsigned status;
        json_t *body;
        bool drop; /* close the connection without a reply */
};

static void refuse(struct answer *a, unsigned http, int code, const char *msg) {
        a->status = http;
        a->body = json_pack("{s:s, s:i, s:s}", "error", msg, "code", code, "message", msg);
}

static json_t *id_json(uint64_t id) {
        char s[24];
        snprintf(s, sizeof(s), "%" PRIu64, id);
        return json_string(s);
}

static json_t *header(struct fcluster *cl, const struct entry *self) {
        return json_pack("{s:o, s:o, s:o, s:s}", "cluster_id", id_json(cl->cluster_id), "member_id", id_json(self->id),
                         "raft_term", id_json(cl->term), "revision", "1");
}

static json_t *member_json(struct fake_etcd *fe, struct fcluster *cl, const struct entry *e) {
        json_t *m = json_pack("{s:o, s:[s]}", "ID", id_json(e->id), "peerURLs", e->peer_url);
        if (e->name) {
                _cleanup_free_ char *url = fake_etcd_client_url(fe, cl->ns, cl->name, e->name);
                json_object_set_new(m, "name", json_string(e->name));
                json_object_set_new(m, "clientURLs", json_pack("[s]", url ? url : ""));
        }
        if (e->learner)
                json_object_set_new(m, "isLearner", json_true());
        return m;
}

static json_t *members_json(struct fake_etcd *fe, struct fcluster *cl) {
        json_t *arr = json_array();
        for (size_t i = 0; i < cl->n_entries; i++)
                json_array_append_new(arr, member_json(fe, cl, &cl->entries[i]));
        return arr;
}

static uint64_t req_id(json_t *req, const char *key) {
        uint64_t id = 0;
        const char *s = json_string_value(json_object_get(req, key));
        return s && eg_parse_uint64(s, &id) == 0 ? id : 0;
}

/* What every membership change is refused for before its own checks. */
static bool change_refused(struct fcluster *cl, const struct entry *self, struct answer *a) {
        if (self->learner)
                refuse(a, 400, 9, "etcdserver: rpc not supported for learner");
        else if (!has_quorum(cl))
                refuse(a, 503, 14, "etcdserver: request timed out");
        else
                return false;
        return true;
}

static void answer_add(struct fake_etcd *fe, struct fcluster *cl, const struct entry *self, json_t *req,
                       struct answer *a) {
        const char *peer = json_string_value(json_array_get(json_object_get(req, "peerURLs"), 0));
        bool learner = json_is_true(json_object_get(req, "isLearner"));
        size_t learners = 0;
        for (size_t i = 0; i < cl->n_entries; i++) {
                learners += cl->entries[i].learner;
                if (peer && strcmp(cl->entries[i].peer_url, peer) == 0) {
                        refuse(a, 400, 9, "etcdserver: Peer URLs already exists");
                        return;
                }
        }
        if (change_refused(cl, self, a))
                return;
        if (!peer || cl->n_entries == MAX_MEMBERS) {
                refuse(a, 400, 3, "etcdserver: bad peer URLs");
                return;
        }
        if (cl->add_refusals > 0) {
                cl->add_refusals--;
                refuse(a, 503, 14, "etcdserver: unhealthy cluster");
                return;
        }
        if (learner && learners >= 1) {
                refuse(a, 400, 9, "etcdserver: too many learner members in cluster");
                return;
        }
        struct entry *e = &cl->entries[cl->n_entries++];
        *e = (struct entry){.id = fe->next_id++,
                            .peer_url = strdup(peer),
                            .learner = learner,
                            .promote_refusals = cl->faults.promote_refusals};
        cl->raft_index++;
        a->status = 200;
        a->body = json_pack("{s:o, s:o, s:o}", "header", header(cl, self), "member", member_json(fe, cl, e), "members",
                            members_json(fe, cl));
}

/* The member a remove or promote names, past the refusals every change meets; NULL: refused. */
static struct entry *change_target(struct fcluster *cl, const struct entry *self, json_t *req, struct answer *a) {
        if (change_refused(cl, self, a))
                return NULL;
        struct entry *e = entry_by_id(cl, req_id(req, "ID"));
        if (!e)
                refuse(a, 404, 5, "etcdserver: member not found");
        return e;
}

static void answer_remove(struct fcluster *cl, const struct entry *self, json_t *req, struct answer *a) {
        struct entry *e = change_target(cl, self, req, a);
        if (!e)
                return;
        /* what is left must still have a majority running */
        size_t v = voters(cl, false) - !e->learner, up = voters(cl, true) - (!e->learner && entry_up(cl, e));
        if (!e->learner && (v == 0 || up < v / 2 + 1)) {
                refuse(a, 503, 14, "etcdserver: re-configuration failed due to not enough started members");
                return;
        }
        uint64_t self_id = self->id;
        entry_drop(cl, (size_t)(e - cl->entries));
        cl->raft_index++;
        elect(cl);
        a->status = 200;
        a->body = json_pack("{s:{s:o}}", "header", "member_id", id_json(self_id));
}

static void answer_promote(struct fcluster *cl, const struct entry *self, json_t *req, struct answer *a) {
        struct entry *e = change_target(cl, self, req, a);
        if (!e)
                return;
        if (!e->learner) {
                refuse(a, 400, 9, "etcdserver: can only promote a learner member");
                return;
        }
        if (!entry_up(cl, e) || e->promote_refusals > 0) {
                e->promote_refusals -= e->promote_refusals > 0;
                refuse(a, 400, 9, "etcdserver: can only promote a learner member which is in sync with leader");
                return;
        }
        e->learner = false;
        cl->raft_index++;
        a->status = 200;
        a->body = json_pack("{s:o}", "header", header(cl, self));
}

static void answer_status(struct fcluster *cl, const struct entry *self, struct answer *a) {
        a->status = 200;
        a->body = json_pack("{s:o, s:s, s:s, s:o, s:o}", "header", header(cl, self), "version", "3.4.23", "dbSize",
                            "20480", "raftIndex", id_json(cl->raft_index), "raftTerm", id_json(cl->term));
        if (cl->leader)
                json_object_set_new(a->body, "leader", id_json(cl->leader));
        if (self->learner)
                json_object_set_new(a->body, "isLearner", json_true());
}

static void answer_move_leader(struct fcluster *cl, const struct entry *self, json_t *req, struct answer *a) {
        struct entry *to = entry_by_id(cl, req_id(req, "targetID"));
        if (!cl->leader || self->id != cl->leader) {
                refuse(a, 503, 14, "etcdserver: not leader");
                return;
        }
        if (!to || to->learner || !entry_up(cl, to)) {
                refuse(a, 400, 9, "etcdserver: bad leader transferee");
                return;
        }
        cl->leader = to->id;
        cl->term++;
        a->status = 200;
        a->body = json_pack("{s:o}", "header", header(cl, self));
}

static void answer_call(struct fake_etcd *fe, struct fcluster *cl, struct entry *self, enum fake_etcd_call call,
                        json_t *req, struct answer *a) {
        elect(cl);
        switch (call) {
        case FAKE_CALL_LIST:
                /* 3.4 answers from the member's own store, quorum or not */
                a->status = 200;
                a->body = json_pack("{s:o, s:o}", "header", header(cl, self), "members", members_json(fe, cl));
                break;
        case FAKE_CALL_ADD:
                answer_add(fe, cl, self, req, a);
                break;
        case FAKE_CALL_REMOVE:
                answer_remove(cl, self, req, a);
                break;
        case FAKE_CALL_PROMOTE:
                answer_promote(cl, self, req, a);
                break;
        case FAKE_CALL_STATUS:
                answer_status(cl, self, a);
                break;
        case FAKE_CALL_HEALTH:
                a->status = cl->leader ? 200 : 503;
                a->body = json_pack("{s:s}", "health", cl->leader ? "true" : "false");
                break;
        case FAKE_CALL_MOVE_LEADER:
                answer_move_leader(cl, self, req, a);
                break;
        default:
                refuse(a, 404, 12, "Not Found");
        }
}

/* Answers "/NS/NAME/MEMBER/<gateway path>"; *ret_delay is how late. */
static void answer_url(struct fake_etcd *fe, const char *url, const char *body, struct answer *a, int64_t *ret_delay) {
        char ns[64], name[64], member[64];
        int off = 0;
        a->drop = true;
        if (sscanf(url, "/%63[^/]/%63[^/]/%63[^/]%n", ns, name, member, &off) != 3)
                return;
        const char *path = url + off;
        enum fake_etcd_call call = _FAKE_CALL_MAX;
        for (size_t i = 0; i < _FAKE_CALL_MAX; i++)
                if (strcmp(path, call_paths[i]) == 0)
                        call = i;
        json_t *req = body && *body ? json_loads(body, 0, NULL) : NULL;
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        struct proc *p = cl ? proc_find(cl, member, false) : NULL;
        struct entry *self = cl ? entry_named(cl, member) : NULL;
        if (cl && call < _FAKE_CALL_MAX)
                cl->calls[call]++;
        /* an etcd that is not running, or that exited because no membership lists it */
        if (p && p->up && self && call < _FAKE_CALL_MAX && !(p->mute & FAKE_CALL_BIT(call))) {
                a->drop = false;
                *ret_delay = p->delay_ms;
                if (p->refuse & FAKE_CALL_BIT(call))
                        refuse(a, 503, 14, "etcdserver: unhealthy cluster");
                else
                        answer_call(fe, cl, self, call, req, a);
        }
        pthread_mutex_unlock(&fe->lock);
        json_decref(req);
}

struct request {
        struct eg_buf body;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        struct fake_etcd *fe = cls;
        struct request *rq = *con_cls;
        if (!rq) {
                if (!(rq = calloc(1, sizeof(*rq))))
                        return MHD_NO;
                eg_buf_init(&rq->body, MAX_BODY);
                *con_cls = rq;
                return MHD_YES;
        }
        if (*upload_size > 0) {
                int r = eg_buf_append(&rq->body, upload, *upload_size);
                *upload_size = 0;
                return r < 0 ? MHD_NO : MHD_YES;
        }
        struct answer a = {0};
        int64_t delay = 0;
        _cleanup_free_ char *body = eg_buf_steal(&rq->body);
        answer_url(fe, url, body, &a, &delay);
        if (delay > 0)
                nanosleep(&(struct timespec){delay / 1000, (delay % 1000) * 1000000}, NULL);
        char *text = a.body ? json_dumps(a.body, JSON_COMPACT) : NULL;
        json_decref(a.body);
        if (a.drop || !text) {
                free(text);
                return MHD_NO;
        }
        struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(text);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result r = MHD_queue_response(c, a.status, resp);
        MHD_destroy_response(resp);
        return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        struct request *rq = *con_cls;
        if (rq) {
                eg_buf_done(&rq->body);
                free(rq);
        }
        *con_cls = NULL;
}

/* ---- the API ---- */

int fake_etcd_new(struct fake_etcd **ret) {
        struct fake_etcd *fe = calloc(1, sizeof(*fe));
        int fd = -1;
        if (!fe)
                return -ENOMEM;
        int r = etcd_proc_bind_any(&fd, &fe->port);
        if (r < 0 || listen(fd, 64) < 0) {
                r = r < 0 ? r : -errno;
                if (fd >= 0)
                        close(fd);
                free(fe);
                return r;
        }
        pthread_mutex_init(&fe->lock, NULL);
        fe->next_id = 0x1000;
        /* a thread per connection: a member told to answer late holds up no other */
        fe->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                                   on_request, fe, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
                                   on_completed, fe, MHD_OPTION_END);
        if (!fe->mhd) {
                close(fd);
                pthread_mutex_destroy(&fe->lock);
                free(fe);
                return -EIO;
        }
        *ret = fe;
        return 0;
}

void fake_etcd_free(struct fake_etcd *fe) {
        if (!fe)
                return;
        MHD_stop_daemon(fe->mhd);
        for (size_t i = 0; i < fe->n_clusters; i++) {
                cluster_clear(&fe->clusters[i]);
                free(fe->clusters[i].ns);
                free(fe->clusters[i].name);
        }
        pthread_mutex_destroy(&fe->lock);
        free(fe);
}

char *fake_etcd_client_url(struct fake_etcd *fe, const char *ns, const char *name, const char *member) {
        return eg_strdup_printf("http://127.0.0.1:%d/%s/%s/%s", fe->port, ns, name, member);
}

int fake_etcd_bootstrap(struct fake_etcd *fe, const char *ns, const char *name, char *const *members,
                        char *const *peer_urls, size_t n) {
        int r = 0;
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, true);
        if (!cl || n > MAX_MEMBERS)
                r = -ENOSPC;
        else if (cl->n_entries > 0)
                r = -EEXIST;
        for (size_t i = 0; r == 0 && i < n; i++)
                cl->entries[cl->n_entries++] = (struct entry){
                        .id = fe->next_id++, .name = strdup(members[i]), .peer_url = strdup(peer_urls[i])};
        if (r == 0) {
                cl->raft_index = n;
                cl->add_refusals = cl->faults.add_refusals_after_join;
        }
        pthread_mutex_unlock(&fe->lock);
        return r;
}

void fake_etcd_set_up(struct fake_etcd *fe, const char *ns, const char *name, const char *member, const char *peer_url,
                      bool up) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, true);
        struct proc *p = cl ? proc_find(cl, member, true) : NULL;
        if (p) {
                p->up = up;
                if (peer_url && (!p->peer_url || strcmp(p->peer_url, peer_url) != 0)) {
                        free(p->peer_url);
                        p->peer_url = strdup(peer_url);
                }
                for (size_t i = 0; up && p->peer_url && i < cl->n_entries; i++) {
                        struct entry *e = &cl->entries[i];
                        if (!e->name && strcmp(e->peer_url, p->peer_url) == 0) {
                                e->name = strdup(member);
                                cl->raft_index++;
                                cl->add_refusals = cl->faults.add_refusals_after_join;
                        }
                }
                elect(cl);
        }
        pthread_mutex_unlock(&fe->lock);
}

void fake_etcd_force_new(struct fake_etcd *fe, const char *ns, const char *name, const char *member) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        for (size_t i = cl ? cl->n_entries : 0; i-- > 0;) {
                if (cl->entries[i].name && strcmp(cl->entries[i].name, member) == 0)
                        cl->entries[i].learner = false;
                else
                        entry_drop(cl, i);
        }
        if (cl) {
                cl->raft_index++;
                elect(cl);
        }
        pthread_mutex_unlock(&fe->lock);
}

void fake_etcd_forget(struct fake_etcd *fe, const char *ns, const char *name) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        if (cl)
                cluster_clear(cl);
        pthread_mutex_unlock(&fe->lock);
}

void fake_etcd_set_faults(struct fake_etcd *fe, const char *ns, const char *name, const struct fake_etcd_faults *f) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, true);
        if (cl) {
                cl->faults = *f;
                cl->add_refusals = f->add_refusals_after_join;
                for (size_t i = 0; i < cl->n_entries; i++)
                        cl->entries[i].promote_refusals = cl->entries[i].learner ? f->promote_refusals : 0;
        }
        pthread_mutex_unlock(&fe->lock);
}

static void set_mask(struct fake_etcd *fe, const char *ns, const char *name, const char *member, bool mute,
                     unsigned mask) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, true);
        struct proc *p = cl ? proc_find(cl, member, true) : NULL;
        if (p)
                *(mute ? &p->mute : &p->refuse) = mask;
        pthread_mutex_unlock(&fe->lock);
}

void fake_etcd_mute(struct fake_etcd *fe, const char *ns, const char *name, const char *member, unsigned mask) {
        set_mask(fe, ns, name, member, true, mask);
}

void fake_etcd_refuse(struct fake_etcd *fe, const char *ns, const char *name, const char *member, unsigned mask) {
        set_mask(fe, ns, name, member, false, mask);
}

void fake_etcd_delay(struct fake_etcd *fe, const char *ns, const char *name, const char *member, int64_t delay_ms) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, true);
        struct proc *p = cl ? proc_find(cl, member, true) : NULL;
        if (p)
                p->delay_ms = delay_ms;
        pthread_mutex_unlock(&fe->lock);
}

int fake_etcd_elect(struct fake_etcd *fe, const char *ns, const char *name, const char *member) {
        int r = -ENOENT;
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        struct entry *e = cl && member ? entry_named(cl, member) : NULL;
        if (cl && !member) {
                cl->electing = true;
                cl->leader = 0;
                r = 0;
        } else if (e && !e->learner && entry_up(cl, e) && has_quorum(cl)) {
                cl->electing = false;
                cl->leader = e->id;
                cl->term++;
                r = 0;
        }
        pthread_mutex_unlock(&fe->lock);
        return r;
}

char *fake_etcd_membership(struct fake_etcd *fe, const char *ns, const char *name) {
        struct eg_buf b;
        eg_buf_init(&b, 0);
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        for (size_t i = 0; cl && i < cl->n_entries; i++)
                (void)eg_buf_printf(&b, "%s%s%s", b.len ? " " : "", cl->entries[i].name ? cl->entries[i].name : "?",
                                    cl->entries[i].learner ? "~" : "");
        pthread_mutex_unlock(&fe->lock);
        return eg_buf_steal(&b);
}

char *fake_etcd_leader(struct fake_etcd *fe, const char *ns, const char *name) {
        char *s = NULL;
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        if (cl)
                elect(cl);
        struct entry *l = cl ? entry_by_id(cl, cl->leader) : NULL;
        if (l && l->name)
                s = strdup(l->name);
        pthread_mutex_unlock(&fe->lock);
        return s;
}

size_t fake_etcd_calls(struct fake_etcd *fe, const char *ns, const char *name, enum fake_etcd_call call) {
        pthread_mutex_lock(&fe->lock);
        struct fcluster *cl = cluster_find(fe, ns, name, false);
        size_t n = cl && call < _FAKE_CALL_MAX ? cl->calls[call] : 0;
        pthread_mutex_unlock(&fe->lock);
        return n;
}
