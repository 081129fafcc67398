/* The etcd v3 calls over the JSON gateway: membership, status and health of one endpoint, key/value. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "internal.h"

static const struct errmap map_add[] = {
        {"Peer URLs already exists", -EEXIST},
        /* ids derive from the peer URLs and the second, so a repeated add can hit this first */
        {"member ID already exist", -EEXIST},
        /* strict reconfiguration check: voters connected for less than 5 s */
        {"unhealthy cluster", -EAGAIN},
        {"not enough started members", -EAGAIN},
        {NULL, 0},
};
static const struct errmap map_member[] = {
        {"member not found", -ENOENT},
        {"ID removed", -ENOENT},
        {"can only promote a learner member which is in sync with leader", -EAGAIN},
        /* removing a voter is refused until the others have been connected for 5 s */
        {"unhealthy cluster", -EAGAIN},
        {"not enough started members", -EAGAIN},
        {NULL, 0},
};

/* ---- JSON fields: the gateway writes 64-bit integers as strings and omits zero values ---- */

int etcd_json_get_u64(json_t *obj, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_string(v))
                return eg_parse_uint64(json_string_value(v), ret) < 0 ? -EBADMSG : 0;
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
                *ret = (uint64_t)json_integer_value(v);
                return 0;
        }
        return -EBADMSG;
}

static int json_get_i64(json_t *obj, const char *key, int64_t *ret) {
        json_t *v = json_object_get(obj, key);
        if (!v) {
                *ret = 0;
                return 0;
        }
        if (json_is_string(v))
                return eg_parse_int64(json_string_value(v), ret) < 0 ? -EBADMSG : 0;
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return 0;
        }
        return -EBADMSG;
}

static int json_get_str(json_t *obj, const char *key, char **ret) {
        json_t *v = json_object_get(obj, key);
        if (v && !json_is_string(v))
                return -EBADMSG;
        char *s = strdup(v ? json_string_value(v) : "");
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int json_get_strv(json_t *obj, const char *key, char ***ret, size_t *ret_n) {
        json_t *arr = json_object_get(obj, key);
        *ret = NULL;
        *ret_n = 0;
        if (!arr)
                return 0;
        if (!json_is_array(arr))
                return -EBADMSG;
        size_t n = json_array_size(arr);
        if (n == 0)
                return 0;
        char **v = calloc(n, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(arr, i);
                if (!json_is_string(s)) {
                        eg_strv_free(v, i);
                        return -EBADMSG;
                }
                v[i] = strdup(json_string_value(s));
                if (!v[i]) {
                        eg_strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---- members ---- */

static void member_done(struct eg_etcd_member *m) {
        free(m->name);
        eg_strv_free(m->peer_urls, m->n_peer_urls);
        eg_strv_free(m->client_urls, m->n_client_urls);
        *m = (struct eg_etcd_member){0};
}

void eg_etcd_member_list_done(struct eg_etcd_member_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                member_done(&l->members[i]);
        free(l->members);
        *l = (struct eg_etcd_member_list){0};
}

static int member_decode(json_t *o, struct eg_etcd_member *ret) {
        struct eg_etcd_member m = {0};
        int r;
        if (!json_is_object(o))
                return -EBADMSG;
        json_t *learner = json_object_get(o, "isLearner");
        if (learner && !json_is_boolean(learner))
                return -EBADMSG;
        m.is_learner = json_is_true(learner);
        if ((r = etcd_json_get_u64(o, "ID", &m.id)) < 0 || (r = json_get_str(o, "name", &m.name)) < 0 ||
            (r = json_get_strv(o, "peerURLs", &m.peer_urls, &m.n_peer_urls)) < 0 ||
            (r = json_get_strv(o, "clientURLs", &m.client_urls, &m.n_client_urls)) < 0) {
                member_done(&m);
                return r;
        }
        *ret = m;
        return 0;
}

static int member_list_decode(json_t *o, struct eg_etcd_member_list *ret) {
        struct eg_etcd_member_list l = {0};
        int r = etcd_json_get_u64(json_object_get(o, "header"), "cluster_id", &l.cluster_id);
        if (r < 0)
                return r;
        json_t *arr = json_object_get(o, "members");
        if (arr && !json_is_array(arr))
                return -EBADMSG;
        size_t n = json_array_size(arr);
        if (n > 0) {
                l.members = calloc(n, sizeof(*l.members));
                if (!l.members)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                r = member_decode(json_array_get(arr, i), &l.members[i]);
                if (r < 0) {
                        eg_etcd_member_list_done(&l);
                        return r;
                }
                l.n++;
        }
        *ret = l;
        return 0;
}

int eg_etcd_member_list_parse(const char *json, size_t len, struct eg_etcd_member_list *ret, struct eg_error *err) {
        json_error_t jerr;
        json_t *o = json_loadb(json, len, 0, &jerr);
        if (!json_is_object(o)) {
                json_decref(o);
                eg_error_set(err, "invalid member list: %s", o ? "not an object" : jerr.text);
                return -EBADMSG;
        }
        int r = member_list_decode(o, ret);
        if (r == -EBADMSG)
                eg_error_set(err, "invalid member list: unexpected field types");
        json_decref(o);
        return r;
}

/* A call whose request it takes (NULL: it could not be built), to endpoint or (NULL) any; the
 * reply goes to *ret, or is dropped when ret is NULL. */
static int call(struct eg_etcd *c, const char *endpoint, const char *path, json_t *req, const struct errmap *map,
                json_t **ret, struct eg_error *err) {
        json_t *reply = NULL;
        if (!req)
                return -ENOMEM;
        int r = endpoint ? etcd_call_one(c, endpoint, path, req, map, &reply, err)
                         : etcd_call_any(c, path, req, map, &reply, err);
        json_decref(req);
        if (r >= 0 && ret)
                *ret = reply;
        else
                json_decref(reply);
        return r;
}

static int bad_reply(struct eg_etcd *c, const char *what, struct eg_error *err) {
        eg_error_set_http(err, c->endpoints[c->preferred], 200, "unexpected %s reply", what);
        return -EBADMSG;
}

int eg_etcd_member_list(struct eg_etcd *c, struct eg_etcd_member_list *ret, struct eg_error *err) {
        json_t *reply = NULL;
        int r = call(c, NULL, "/v3/cluster/member/list", json_object(), NULL, &reply, err);
        if (r < 0)
                return r;
        r = member_list_decode(reply, ret);
        json_decref(reply);
        if (r == -EBADMSG)
                return bad_reply(c, "member list", err);
        return r;
}

/* The id goes as a decimal string: a JSON number would pass through a double in some readers. */
static json_t *id_request(uint64_t id) {
        char s[21];
        snprintf(s, sizeof(s), "%" PRIu64, id);
        return json_pack("{s:s}", "ID", s);
}

int eg_etcd_member_add(struct eg_etcd *c, const char *peer_url, bool learner, uint64_t *ret_id, struct eg_error *err) {
        json_t *reply = NULL;
        int r = call(c, NULL, "/v3/cluster/member/add",
                     json_pack("{s:[s],s:b}", "peerURLs", peer_url, "isLearner", learner), map_add, &reply, err);
        if (r < 0)
                return r;
        json_t *m = json_object_get(reply, "member");
        uint64_t id = 0;
        r = json_is_object(m) ? etcd_json_get_u64(m, "ID", &id) : -EBADMSG;
        json_decref(reply);
        if (r < 0 || id == 0)
                return bad_reply(c, "member add", err);
        if (ret_id)
                *ret_id = id;
        return 0;
}

static int member_call(struct eg_etcd *c, const char *path, uint64_t id, struct eg_error *err) {
        return call(c, NULL, path, id_request(id), map_member, NULL, err);
}

int eg_etcd_member_remove(struct eg_etcd *c, uint64_t id, struct eg_error *err) {
        return member_call(c, "/v3/cluster/member/remove", id, err);
}

int eg_etcd_member_promote(struct eg_etcd *c, uint64_t id, struct eg_error *err) {
        return member_call(c, "/v3/cluster/member/promote", id, err);
}

int eg_etcd_move_leader(struct eg_etcd *c, const char *leader_endpoint, uint64_t target_id, struct eg_error *err) {
        char id[21];
        snprintf(id, sizeof(id), "%" PRIu64, target_id);
        return call(c, leader_endpoint, "/v3/maintenance/transfer-leadership", json_pack("{s:s}", "targetID", id), NULL,
                    NULL, err);
}

/* ---- status and health of one endpoint ---- */

void eg_etcd_status_done(struct eg_etcd_status *s) {
        if (!s)
                return;
        free(s->version);
        *s = (struct eg_etcd_status){0};
}

int eg_etcd_status_of(struct eg_etcd *c, const char *endpoint, struct eg_etcd_status *ret, struct eg_error *err) {
        json_t *reply = NULL;
        int r = call(c, endpoint, "/v3/maintenance/status", json_object(), NULL, &reply, err);
        if (r < 0)
                return r;
        struct eg_etcd_status s = {0};
        json_t *hdr = json_object_get(reply, "header");
        json_t *learner = json_object_get(reply, "isLearner");
        s.is_learner = json_is_true(learner);
        if (etcd_json_get_u64(hdr, "member_id", &s.member_id) < 0 || json_get_i64(hdr, "revision", &s.revision) < 0 ||
            etcd_json_get_u64(reply, "leader", &s.leader) < 0 ||
            etcd_json_get_u64(reply, "raftIndex", &s.raft_index) < 0 ||
            etcd_json_get_u64(reply, "raftTerm", &s.raft_term) < 0 || json_get_i64(reply, "dbSize", &s.db_size) < 0 ||
            (learner && !json_is_boolean(learner)))
                r = -EBADMSG;
        else
                r = json_get_str(reply, "version", &s.version);
        json_decref(reply);
        if (r < 0) {
                eg_etcd_status_done(&s);
                if (r == -EBADMSG)
                        eg_error_set_http(err, endpoint, 200, "%s: unexpected status reply", endpoint);
                return r;
        }
        *ret = s;
        return 0;
}

int eg_etcd_health_of(struct eg_etcd *c, const char *endpoint, struct eg_error *err) {
        json_t *reply = NULL;
        int r = etcd_call_one(c, endpoint, "/health", NULL, NULL, &reply, err);
        if (r < 0)
                return r;
        const char *h = json_string_value(json_object_get(reply, "health"));
        if (!h || strcmp(h, "true") != 0) {
                eg_error_set_http(err, endpoint, 200, "%s: unhealthy (health: %s)", endpoint, h ? h : "missing");
                r = -EIO;
        }
        json_decref(reply);
        return r;
}

/* ---- key/value ---- */

int eg_etcd_put(struct eg_etcd *c, const char *key, const void *val, size_t len, struct eg_error *err) {
        _cleanup_free_ char *k = eg_base64_encode(key, strlen(key));
        _cleanup_free_ char *v = eg_base64_encode(val ? val : "", len);
        if (!k || !v)
                return -ENOMEM;
        return call(c, NULL, "/v3/kv/put", json_pack("{s:s,s:s}", "key", k, "value", v), NULL, NULL, err);
}

int eg_etcd_get(struct eg_etcd *c, const char *key, char **ret, size_t *ret_len, struct eg_error *err) {
        _cleanup_free_ char *k = eg_base64_encode(key, strlen(key));
        if (!k)
                return -ENOMEM;
        json_t *reply = NULL;
        int r = call(c, NULL, "/v3/kv/range", json_pack("{s:s}", "key", k), NULL, &reply, err);
        if (r < 0)
                return r;
        json_t *kvs = json_object_get(reply, "kvs");
        json_t *value = json_object_get(json_array_get(kvs, 0), "value");
        if (json_array_size(kvs) == 0) {
                eg_error_set_http(err, c->endpoints[c->preferred], 200, "key '%s' not found", key);
                r = -ENOENT;
        } else if (value && !json_is_string(value)) {
                r = -EBADMSG;
        } else {
                /* an empty value is omitted from the reply */
                const char *b = value ? json_string_value(value) : "";
                size_t blen = value ? json_string_length(value) : 0;
                unsigned char *out = malloc(blen / 4 * 3 + 1);
                size_t n = 0;
                if (!out)
                        r = -ENOMEM;
                else if ((r = eg_base64_decode_strict(b, blen, out, &n)) < 0)
                        free(out);
                else {
                        out[n] = 0;
                        *ret = (char *)out;
                        if (ret_len)
                                *ret_len = n;
                }
        }
        json_decref(reply);
        if (r == -EBADMSG)
                return bad_reply(c, "range", err);
        return r;
}
