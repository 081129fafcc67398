/* The EtcdCluster spec: size, version, pod policy and TLS. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "decode.h"

#define DEFAULT_VERSION "3.2.13"
#define DEFAULT_REPOSITORY "quay.io/coreos/etcd"
#define DEFAULT_BUSYBOX "busybox:1.28.0-glibc"
#define MAX_RECOMMENDED_SIZE 7

static void f_size(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_int(d, v, p, 1, t))
                return;
        if (v->integer > MAX_RECOMMENDED_SIZE)
                dec_warn(d, v, p, "%lld members is more than the recommended maximum of %d", (long long)v->integer,
                         MAX_RECOMMENDED_SIZE);
}

static void f_version(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_semver sv;
        if (!dec_get_string(d, v, p, "a version string such as \"3.4.23\""))
                return;
        if (eg_semver_parse(v->text, &sv) < 0)
                dec_err_got(d, v, p, "a semantic version such as \"3.4.23\"");
        else
                dec_set_str(t, v->text + (v->text[0] == 'v'));
}

static void f_cluster_domain(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (!dec_get_string(d, v, p, NULL))
                return;
        if (*v->text && (v->text[0] != '.' || !dec_dns_subdomain(v->text + 1)))
                dec_err_got(d, v, p, "empty or a domain starting with '.', such as \".cluster.local\"");
        else
                dec_set_str(t, v->text);
}

static void f_etcd_env(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        if (v->type != EG_YN_SEQ) {
                if (!dec_reported_already(v))
                        dec_err_got(d, v, p, "a sequence of environment variables");
                return;
        }
        size_t errors = d->c->n_errors;
        for (size_t i = 0; i < v->n_items; i++) {
                const struct eg_yn *e = v->items[i];
                struct eg_fpath ip = {p, NULL, i};
                if (!dec_want_map(d, e, &ip))
                        continue;
                for (size_t k = 0; k + 1 < e->n_items; k += 2) {
                        const struct eg_yn *key = e->items[k], *val = e->items[k + 1];
                        if (key->type != EG_YN_STR)
                                continue;
                        struct eg_fpath kp = {&ip, key->text, 0};
                        if (strcmp(key->text, "name") == 0) {
                                if (dec_get_string(d, val, &kp, NULL) && (!*val->text || strchr(val->text, '=')))
                                        dec_err_got(d, val, &kp, "a non-empty variable name without '='");
                        } else if (strcmp(key->text, "value") == 0) {
                                if (val->type != EG_YN_NULL)
                                        dec_get_string(d, val, &kp, NULL);
                        } else if (strcmp(key->text, "valueFrom") == 0) {
                                if (val->type != EG_YN_NULL)
                                        dec_want_map(d, val, &kp);
                        } else
                                eg_dctx_report(d->c,
                                               d->c->opt && d->c->opt->strict ? EG_SEVERITY_ERROR : EG_SEVERITY_WARNING,
                                               key->line, key->column, &kp, "unknown field");
                }
                const struct eg_yn *name = dec_map_get(e, "name");
                if (!name || name->type == EG_YN_NULL)
                        dec_required(d, e, &ip, "name", NULL);
        }
        if (d->c->n_errors == errors)
                dec_keep_json(t, j);
}

#define POD(m) offsetof(struct eg_pod_policy, m)
static const struct field pod_fields[] = {
        {"labels", dec_pod_labels, POD(labels)},
        {"nodeSelector", dec_selector, POD(node_selector)},
        {"affinity", dec_json_map, POD(affinity)},
        {"antiAffinity", dec_bool, POD(anti_affinity)},
        {"resources", dec_json_map, POD(resources)},
        {"tolerations", dec_json_seq_of_maps, POD(tolerations)},
        {"etcdEnv", f_etcd_env, POD(etcd_env)},
        {"persistentVolumeClaimSpec", dec_json_map, POD(persistent_volume_claim_spec)},
        {"annotations", dec_pod_annotations, POD(annotations)},
        {"busyboxImage", dec_image, POD(busybox_image)},
        {"securityContext", dec_json_map, POD(security_context)},
        {"DNSTimeoutInSecond", dec_int_nonneg, POD(dns_timeout_in_second)},
        {"ClusterDomain", f_cluster_domain, POD(cluster_domain)},
        {0},
};

static void f_pod(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_pod_policy *pod = dec_alloc(d, t, sizeof(*pod));
        if (!pod || !dec_map(d, v, j, p, pod_fields, pod))
                return;
        if (!pod->busybox_image)
                dec_set_str(&pod->busybox_image, DEFAULT_BUSYBOX);
        if (!pod->cluster_domain)
                dec_set_str(&pod->cluster_domain, "");
        if (!pod->busybox_image || !pod->cluster_domain)
                d->c->oom = -ENOMEM;
        const struct eg_yn *anti = dec_map_get(v, "antiAffinity"), *aff = dec_map_get(v, "affinity");
        if (pod->anti_affinity && aff && aff->type != EG_YN_NULL) {
                struct eg_fpath ap = {p, "antiAffinity", 0};
                dec_warn(d, anti, &ap, "ignored because affinity is set");
        }
}

static const struct field member_fields[] = {
        {"peerSecret", dec_secret, offsetof(struct eg_tls_policy, peer_secret)},
        {"serverSecret", dec_secret, offsetof(struct eg_tls_policy, server_secret)},
        {0},
};

static void f_member(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        dec_map(d, v, j, p, member_fields, t);
}

static const struct field static_fields[] = {
        {"member", f_member, 0},
        {"operatorSecret", dec_secret, offsetof(struct eg_tls_policy, operator_secret)},
        {0},
};

static void f_static(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_tls_policy *tls = t;
        if (!dec_map(d, v, j, p, static_fields, tls))
                return;
        /* Clients need the server's CA and the server checks client certs: both or neither. */
        const struct eg_yn *member = dec_map_get(v, "member");
        const struct eg_yn *server = member && member->type == EG_YN_MAP ? dec_map_get(member, "serverSecret") : NULL;
        const struct eg_yn *op = dec_map_get(v, "operatorSecret");
        bool has_server = server && server->type != EG_YN_NULL, has_op = op && op->type != EG_YN_NULL;
        struct eg_fpath mp = {p, "member", 0}, sp = {&mp, "serverSecret", 0};
        if (has_op && !has_server)
                dec_err(d, member && member->type == EG_YN_MAP ? member : v, &sp,
                        "required when operatorSecret is set (client TLS needs both)");
        else if (has_server && !has_op)
                dec_required(d, v, p, "operatorSecret", "when member.serverSecret is set (client TLS needs both)");
}

static const struct field tls_fields[] = {
        {"static", f_static, 0},
        {0},
};

static void f_tls(struct dec *d, const struct eg_yn *v, json_t *j, const struct eg_fpath *p, void *t) {
        struct eg_tls_policy *tls = dec_alloc(d, t, sizeof(*tls));
        if (tls)
                dec_map(d, v, j, p, tls_fields, tls);
}

#define CLUSTER(m) offsetof(struct eg_cluster_spec, m)
static const struct field cluster_fields[] = {
        {"size", f_size, CLUSTER(size)},
        {"version", f_version, CLUSTER(version)},
        {"repository", dec_image, CLUSTER(repository)},
        {"paused", dec_bool, CLUSTER(paused)},
        {"pod", f_pod, CLUSTER(pod)},
        {"TLS", f_tls, CLUSTER(tls)},
        {0},
};

void dec_cluster(struct dec *d, const struct eg_yn *s, json_t *js, const struct eg_fpath *p) {
        struct eg_cluster_spec *c = &d->o->cluster;
        if (dec_map(d, s, js, p, cluster_fields, c)) {
                const struct eg_yn *size = dec_map_get(s, "size");
                if (!size || size->type == EG_YN_NULL)
                        dec_required(d, s, p, "size", "(the number of members, ≥ 1)");
        }
        if (!c->version)
                dec_set_str(&c->version, DEFAULT_VERSION);
        if (!c->repository)
                dec_set_str(&c->repository, DEFAULT_REPOSITORY);
        if (!c->version || !c->repository)
                d->c->oom = -ENOMEM;
}
