/* local_record: the local runtime's record of a cluster (clusters/<ns>/<name>/cluster.json). */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "local_record.h"

#define RECORD_MAX_BYTES ((size_t)4 << 20)
#define NAME_MAX_LEN 253

bool eg_local_token_is_valid(const char *s, size_t max, const char *punct) {
        if (!s || !*s || s[0] == '.' || strlen(s) > max)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr(punct, *p)))
                        return false;
        return true;
}

bool eg_local_name_is_valid(const char *s) { return eg_local_token_is_valid(s, NAME_MAX_LEN, "-_."); }

void eg_lmember_done(struct lmember *m) {
        free(m->name);
        free(m->client_url);
        free(m->peer_url);
        free(m->version);
        free(m->spec_hash);
        free(m->revision);
        free(m->data_dir);
        free(m->initial_cluster);
        *m = (struct lmember){0};
}

void eg_lrecord_done(struct lrecord *r) {
        for (size_t i = 0; i < r->n_members; i++)
                eg_lmember_done(&r->members[i]);
        free(r->members);
        free(r->token);
        *r = (struct lrecord){0};
}

struct lmember *eg_lrecord_find(struct lrecord *r, const char *member) {
        for (size_t i = 0; i < r->n_members; i++)
                if (strcmp(r->members[i].name, member) == 0)
                        return &r->members[i];
        return NULL;
}

void eg_lrecord_remove(struct lrecord *r, struct lmember *m) {
        size_t i = (size_t)(m - r->members);
        eg_lmember_done(m);
        memmove(&r->members[i], &r->members[i + 1], (r->n_members - i - 1) * sizeof(*m));
        r->n_members--;
}

struct lmember *eg_lrecord_append(struct lrecord *r) {
        struct lmember *m = realloc(r->members, (r->n_members + 1) * sizeof(*m));
        if (!m)
                return NULL;
        r->members = m;
        m = &r->members[r->n_members++];
        *m = (struct lmember){0};
        return m;
}

void eg_lrecord_note_member(struct lrecord *r, const char *cluster, const char *member) {
        size_t l = strlen(cluster);
        uint64_t n;
        if (strncmp(member, cluster, l) != 0 || member[l] != '-' || eg_parse_uint64(member + l + 1, &n) < 0 ||
            n == UINT64_MAX)
                return;
        if (n + 1 > r->next_index)
                r->next_index = n + 1;
}

static int json_dup_string(json_t *o, const char *key, bool required, char **ret) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return required ? -EBADMSG : 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int json_get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *ret) {
        json_t *v = json_object_get(o, key);
        if (!json_is_integer(v))
                return -EBADMSG;
        json_int_t i = json_integer_value(v);
        if (i < min || i > max)
                return -EBADMSG;
        *ret = i;
        return 0;
}

static int lmember_from_json(json_t *o, struct lmember *m) {
        int64_t pid, start, cport, pport, started;
        char *state = NULL;
        int r;
        if (!json_is_object(o))
                return -EBADMSG;
        if ((r = json_dup_string(o, "name", true, &m->name)) < 0 ||
            (r = json_dup_string(o, "state", true, &state)) < 0 ||
            (r = json_dup_string(o, "client_url", true, &m->client_url)) < 0 ||
            (r = json_dup_string(o, "peer_url", true, &m->peer_url)) < 0 ||
            (r = json_dup_string(o, "version", true, &m->version)) < 0 ||
            (r = json_dup_string(o, "spec_hash", true, &m->spec_hash)) < 0 ||
            (r = json_dup_string(o, "revision", false, &m->revision)) < 0 ||
            (r = json_dup_string(o, "data_dir", true, &m->data_dir)) < 0 ||
            (r = json_dup_string(o, "initial_cluster", false, &m->initial_cluster)) < 0 ||
            (r = json_get_int(o, "pid", 0, INT32_MAX, &pid)) < 0 ||
            (r = json_get_int(o, "start_time", 0, INT64_MAX, &start)) < 0 ||
            (r = json_get_int(o, "client_port", 1, 65535, &cport)) < 0 ||
            (r = json_get_int(o, "peer_port", 1, 65535, &pport)) < 0 ||
            (r = json_get_int(o, "started_realtime_ms", 0, INT64_MAX, &started)) < 0)
                goto out;
        if (strcmp(state, "prepared") == 0)
                m->state = MEMBER_PREPARED;
        else if (strcmp(state, "started") == 0)
                m->state = MEMBER_STARTED;
        else {
                r = -EBADMSG;
                goto out;
        }
        if (!eg_local_name_is_valid(m->name)) {
                r = -EBADMSG;
                goto out;
        }
        m->pid = pid;
        m->start_time = (uint64_t)start;
        m->client_port = (int)cport;
        m->peer_port = (int)pport;
        m->started_realtime_ms = started;
        m->bootstrap = json_is_true(json_object_get(o, "bootstrap"));
out:
        free(state);
        return r;
}

static int lrecord_from_json(json_t *root, struct lrecord *ret) {
        struct lrecord rec = {0};
        int64_t next;
        int r;
        if (!json_is_object(root))
                return -EBADMSG;
        json_t *members = json_object_get(root, "members");
        if ((r = json_get_int(root, "next_index", 0, INT64_MAX, &next)) < 0 ||
            (r = json_dup_string(root, "token", true, &rec.token)) < 0)
                goto fail;
        rec.next_index = (uint64_t)next;
        if (!json_is_array(members) || json_array_size(members) > MAX_MEMBERS) {
                r = -EBADMSG;
                goto fail;
        }
        for (size_t i = 0; i < json_array_size(members); i++) {
                struct lmember *m = eg_lrecord_append(&rec);
                if (!m) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = lmember_from_json(json_array_get(members, i), m);
                if (r < 0)
                        goto fail;
        }
        *ret = rec;
        return 0;
fail:
        eg_lrecord_done(&rec);
        return r;
}

int eg_lrecord_load(const char *path, struct lrecord *ret, struct eg_error *err) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = eg_read_file(path, RECORD_MAX_BYTES, &data, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                eg_error_set(err, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        json_error_t je;
        json_t *root = json_loadb(data, len, 0, &je);
        if (!root) {
                eg_error_set(err, "%s:%d: invalid cluster record: %s", path, je.line, je.text);
                return -EBADMSG;
        }
        r = lrecord_from_json(root, ret);
        json_decref(root);
        if (r == -EBADMSG)
                eg_error_set(err, "%s: invalid cluster record: missing or wrong field", path);
        else if (r < 0)
                eg_error_set(err, "%s: %s", path, strerror(-r));
        return r;
}

static json_t *lmember_to_json(const struct lmember *m) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:I}", "name", m->name, "state",
                              m->state == MEMBER_STARTED ? "started" : "prepared", "pid", (json_int_t)m->pid,
                              "start_time", (json_int_t)m->start_time, "client_port", m->client_port, "peer_port",
                              m->peer_port, "client_url", m->client_url, "peer_url", m->peer_url, "version", m->version,
                              "spec_hash", m->spec_hash, "data_dir", m->data_dir, "started_realtime_ms",
                              (json_int_t)m->started_realtime_ms);
        if (!o)
                return NULL;
        if ((m->revision && json_object_set_new(o, "revision", json_string(m->revision)) < 0) ||
            (m->initial_cluster && json_object_set_new(o, "initial_cluster", json_string(m->initial_cluster)) < 0) ||
            (m->bootstrap && json_object_set_new(o, "bootstrap", json_true()) < 0)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int eg_lrecord_save(const char *path, const char *ns, const char *name, const struct lrecord *rec,
                    struct eg_error *err) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = slash ? strndup(path, (size_t)(slash - path)) : NULL;
        _cleanup_free_ char *data = NULL;
        json_t *root = NULL, *members = NULL;
        int r = -ENOMEM;
        if (!dir)
                goto out;
        members = json_array();
        if (!members)
                goto out;
        for (size_t i = 0; i < rec->n_members; i++)
                if (json_array_append_new(members, lmember_to_json(&rec->members[i])) < 0)
                        goto out;
        root = json_pack("{s:s, s:s, s:I, s:s, s:O}", "namespace", ns, "name", name, "next_index",
                         (json_int_t)rec->next_index, "token", rec->token, "members", members);
        if (!root)
                goto out;
        data = json_dumps(root, JSON_INDENT(2));
        if (!data)
                goto out;
        r = eg_mkdir_p(dir, 0700);
        if (r >= 0) {
                size_t len = strlen(data);
                /* the NUL becomes the final newline: only len + 1 bytes are written */
                data[len] = '\n';
                r = eg_write_file_atomic(path, data, len + 1, 0600);
        }
        if (r < 0)
                eg_error_set(err, "cannot write %s: %s", path, strerror(-r));
out:
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory writing the record of %s/%s", ns, name);
        json_decref(root);
        json_decref(members);
        return r;
}
