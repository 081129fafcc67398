/* Guided quorum recovery: who survived, the newest verified backup, and etcd's documented
 * disaster recovery from one member (--force-new-cluster) or from a backup, when asked. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd-gitops/backup.h"
#include "internal.h"

#define ETCD_TIMEOUT_MS 1500
#define ANSWER_TIMEOUT_MS 30000
#define ANSWER_POLL_MS 100

void eg_recover_view_done(struct eg_recover_view *v) {
        for (size_t i = 0; i < v->n_members; i++) {
                free(v->members[i].name);
                free(v->members[i].client_url);
        }
        free(v->members);
        free(v->version);
        free(v->backup_ref);
        free(v->backup_date);
        *v = (struct eg_recover_view){0};
}

void eg_recover_plan_done(struct eg_recover_plan *p) {
        free(p->reason);
        *p = (struct eg_recover_plan){0};
}

static const struct eg_etcd_member *membership_find(const struct eg_etcd_member_list *ml,
                                                    const struct eg_runtime_member *m) {
        for (size_t i = 0; i < ml->n; i++) {
                const struct eg_etcd_member *em = &ml->members[i];
                if (em->name && *em->name && strcmp(em->name, m->name) == 0)
                        return em;
                for (size_t j = 0; m->peer_url && j < em->n_peer_urls; j++)
                        if (strcmp(em->peer_urls[j], m->peer_url) == 0)
                                return em;
        }
        return NULL;
}

/* The newest backup of cluster an EtcdBackup took: only those recorded with the sha256
 * that etcd's trailer confirmed are verified. */
static int newest_backup(const char *state_dir, const char *cluster, struct eg_recover_view *v) {
        json_t *all = NULL, *best = NULL, *st;
        size_t i;
        int r = eg_backup_status_all(state_dir, &all);
        if (r < 0)
                return r;
        json_array_foreach(all, i, st) {
                const char *c = json_string_value(json_object_get(st, "cluster"));
                const char *date = json_string_value(json_object_get(st, "lastSuccessDate"));
                if (!c || strcmp(c, cluster) != 0 || !date || !json_string_value(json_object_get(st, "object")) ||
                    !json_string_value(json_object_get(st, "sha256")))
                        continue;
                json_int_t rev = json_integer_value(json_object_get(st, "etcdRevision"));
                json_int_t best_rev = best ? json_integer_value(json_object_get(best, "etcdRevision")) : 0;
                if (!best || rev > best_rev ||
                    (rev == best_rev && strcmp(date, json_string_value(json_object_get(best, "lastSuccessDate"))) > 0))
                        best = st;
        }
        if (best) {
                const char *object = json_string_value(json_object_get(best, "object"));
                /* the status names a File backup by its path and an S3 one as <bucket>/<key> */
                v->backup_ref = object[0] == '/' || access(object, F_OK) == 0 ? strdup(object)
                                                                              : eg_strdup_printf("s3://%s", object);
                v->backup_date = strdup(json_string_value(json_object_get(best, "lastSuccessDate")));
                v->backup_revision = json_integer_value(json_object_get(best, "etcdRevision"));
                if (!v->backup_ref || !v->backup_date)
                        r = -ENOMEM;
        }
        json_decref(all);
        return r;
}

int eg_recover_most_advanced(const struct eg_recover_view *v) {
        int best = -1;
        for (size_t i = 0; i < v->n_members; i++) {
                const struct eg_recover_member *m = &v->members[i];
                if (!m->answers)
                        continue;
                const struct eg_recover_member *b = best >= 0 ? &v->members[best] : NULL;
                if (!b || m->raft_index > b->raft_index ||
                    (m->raft_index == b->raft_index && m->revision > b->revision))
                        best = (int)i;
        }
        return best;
}

/* Each member of rc as recovery sees it, with the status of those that answer. */
static int recover_members(struct eg_etcd *c, const struct eg_runtime_cluster *rc, struct eg_recover_view *v) {
        for (size_t i = 0; i < rc->n_members; i++) {
                const struct eg_runtime_member *rm = &rc->members[i];
                struct eg_recover_member *m = &v->members[v->n_members++];
                m->name = strdup(rm->name);
                m->client_url = rm->client_url ? strdup(rm->client_url) : NULL;
                if (!m->name || (rm->client_url && !m->client_url))
                        return -ENOMEM;
                m->running = rm->running;
                m->data_kept = !rm->running && rm->data_kept;
                struct eg_etcd_status st = {0};
                if (c && rm->running && rm->client_url && eg_etcd_status_of(c, rm->client_url, &st, NULL) >= 0) {
                        m->answers = true;
                        m->raft_index = st.raft_index;
                        m->revision = st.revision;
                }
                eg_etcd_status_done(&st);
        }
        return 0;
}

/* The voters: those of the membership a survivor reports (a lone survivor still answers it
 * from its own log), else every member that ever started. */
static void recover_voters(struct eg_etcd *c, const struct eg_runtime_cluster *rc, struct eg_recover_view *v) {
        struct eg_etcd_member_list ml = {0};
        bool ml_ok = c && eg_etcd_member_list(c, &ml, NULL) >= 0;
        for (size_t i = 0; ml_ok && i < ml.n; i++)
                v->voters += !ml.members[i].is_learner;
        for (size_t i = 0; i < rc->n_members; i++) {
                const struct eg_etcd_member *em = ml_ok ? membership_find(&ml, &rc->members[i]) : NULL;
                v->members[i].voter = ml_ok ? em && !em->is_learner : !rc->members[i].never_started;
                v->voters += !ml_ok && v->members[i].voter;
        }
        eg_etcd_member_list_done(&ml);
}

/* The version the most advanced member ran, else any member's. */
static const char *recover_version(const struct eg_runtime_cluster *rc, const struct eg_recover_view *v) {
        int top = eg_recover_most_advanced(v);
        const char *version = top >= 0 ? rc->members[top].version : NULL;
        for (size_t i = 0; !version && i < rc->n_members; i++)
                version = rc->members[i].version;
        return version;
}

int eg_recover_observe(struct eg_runtime *rt, const char *state_dir, const char *ns, const char *name,
                       struct eg_recover_view *ret, struct eg_error *err) {
        struct eg_runtime_cluster rc = {0};
        struct eg_recover_view v = {0};
        struct eg_etcd *c = NULL;
        _cleanup_free_ char **eps = NULL;
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", ns, name);
        size_t n_eps = 0;
        int r = cluster ? eg_runtime_observe(rt, ns, name, &rc, err) : -ENOMEM;
        if (r < 0)
                return r;
        v.next_index = rc.next_index;
        v.members = calloc(rc.n_members + 1, sizeof(*v.members));
        eps = calloc(rc.n_members + 1, sizeof(*eps));
        if (!v.members || !eps)
                goto oom;
        for (size_t i = 0; i < rc.n_members; i++)
                if (rc.members[i].running && rc.members[i].client_url)
                        eps[n_eps++] = rc.members[i].client_url;
        struct eg_reconciler_options ro = {.runtime = rt, .etcd_timeout_ms = ETCD_TIMEOUT_MS};
        c = reconcile_etcd_client(&ro, ns, name, eps, n_eps, err);
        if (!c && err && err->message) {
                r = -EHOSTUNREACH;
                goto out;
        }
        if (recover_members(c, &rc, &v) < 0)
                goto oom;
        recover_voters(c, &rc, &v);
        const char *version = recover_version(&rc, &v);
        if (version && !(v.version = strdup(version)))
                goto oom;
        if (newest_backup(state_dir, cluster, &v) < 0)
                goto oom;
        *ret = v;
        v = (struct eg_recover_view){0};
        r = 0;
        goto out;
oom:
        r = -ENOMEM;
        eg_error_set(err, "out of memory observing %s", cluster ? cluster : name);
out:
        eg_recover_view_done(&v);
        eg_etcd_free(c);
        eg_runtime_cluster_done(&rc);
        return r;
}

static int find_member(const struct eg_recover_view *v, const char *name) {
        for (size_t i = 0; i < v->n_members; i++)
                if (strcmp(v->members[i].name, name) == 0)
                        return (int)i;
        return -1;
}

/* "a, b" of every member but skip (-1: all); "none" when there is none. */
static int names_but(const struct eg_recover_view *v, int skip, struct eg_buf *b) {
        size_t n = 0;
        int r = 0;
        for (size_t i = 0; r >= 0 && i < v->n_members; i++)
                if ((int)i != skip)
                        r = eg_buf_printf(b, "%s%s", n++ ? ", " : "", v->members[i].name);
        return r < 0 ? r : n ? 0 : eg_buf_puts(b, "none");
}

static int gap_text(struct eg_buf *b, const struct eg_recover_view *v, int top, int64_t gap) {
        if (gap < 0)
                return eg_buf_puts(b, top < 0 ? "revision gap unknown: no member answers"
                                              : "revision gap unknown until the new cluster answers");
        return eg_buf_printf(b, "revision gap %" PRId64 " (the most advanced survivor, %s, is at revision %" PRId64 ")",
                             gap, v->members[top].name, v->members[top].revision);
}

/* Refuses a recovery while quorum holds or (unless forced) could come back by itself:
 * members down with their data kept are restarted in place by apply. */
static int needs_recovery(const struct eg_recover_view *v, const struct eg_recover_request *req, const char *cluster,
                          struct eg_error *err) {
        struct eg_buf down;
        size_t answering = 0, could = 0, quorum = eg_quorum(v->voters);
        int r = 0;
        eg_buf_init(&down, 0);
        for (size_t i = 0; r >= 0 && i < v->n_members; i++) {
                const struct eg_recover_member *m = &v->members[i];
                if (!m->voter)
                        continue;
                answering += m->answers;
                if (m->data_kept) {
                        could++;
                        r = eg_buf_printf(&down, "%s%s", down.len ? ", " : "", m->name);
                }
        }
        if (r < 0)
                r = -ENOMEM;
        else if (v->voters > 0 && answering >= quorum) {
                eg_error_set(err,
                             "%s still has quorum: %zu of %zu voting members answer (need %zu); nothing to recover "
                             "— `etcd-gitops apply` heals what is missing",
                             cluster, answering, v->voters, quorum);
                r = -EBUSY;
        } else if (!req->force && answering + could >= quorum) {
                eg_error_set(err,
                             "%s can get quorum back by itself: %s %s down with %s data kept, and "
                             "`etcd-gitops apply` restarts %s in place; recover with --force only if %s keep%s failing "
                             "(see %s etcd.log)",
                             cluster, down.data, could == 1 ? "is" : "are", could == 1 ? "its" : "their",
                             could == 1 ? "it" : "them", could == 1 ? "it" : "they", could == 1 ? "s" : "",
                             could == 1 ? "its" : "their");
                r = -EBUSY;
        }
        eg_buf_done(&down);
        return r;
}

/* The seed member, checked, and what recovering from it does, into b. */
static int plan_from_member(const struct eg_recover_view *v, const struct eg_recover_request *req, const char *cluster,
                            int top, struct eg_recover_plan *p, struct eg_buf *b, struct eg_error *err) {
        int r;
        p->seed = req->member ? find_member(v, req->member) : top;
        if (p->seed < 0) {
                if (names_but(v, -1, b) < 0)
                        return -ENOMEM;
                if (req->member)
                        eg_error_set(err, "%s has no member %s (its members: %s)", cluster, req->member, b->data);
                else
                        eg_error_set(err,
                                     "no member of %s answers: name the one to recover from "
                                     "(--from-member NAME, one whose data is kept) or recover from a backup "
                                     "(--from-backup)",
                                     cluster);
                return -ENOENT;
        }
        const struct eg_recover_member *s = &v->members[p->seed];
        if (!s->running && !s->data_kept) {
                eg_error_set(err,
                             "member %s of %s has no data left to recover from: choose another "
                             "(--from-member NAME) or a backup (--from-backup)",
                             s->name, cluster);
                return -ENODATA;
        }
        if (!s->voter) {
                eg_error_set(err,
                             "member %s of %s is not a voting member (a learner, or not in the membership "
                             "the survivors report): choose a voter (--from-member NAME)",
                             s->name, cluster);
                return -EINVAL;
        }
        if (s->answers)
                p->revision_gap = v->members[top].revision > s->revision ? v->members[top].revision - s->revision : 0;
        if (s->answers)
                r = eg_buf_printf(b,
                                  "force a new cluster from member %s (raft index %" PRIu64 ", revision %" PRId64 "); ",
                                  s->name, s->raft_index, s->revision);
        else
                r = eg_buf_printf(b, "force a new cluster from member %s (not answering: its revision is unknown); ",
                                  s->name);
        if (r >= 0)
                r = eg_buf_puts(b, "stop and forget the other members, their data kept aside: ");
        return r < 0 || names_but(v, p->seed, b) < 0 ? -ENOMEM : 0;
}

/* The backup, and what restoring a new cluster from it does, into b. */
static int plan_from_backup(const struct eg_recover_view *v, const struct eg_recover_request *req, const char *cluster,
                            int top, struct eg_recover_plan *p, struct eg_buf *b, struct eg_error *err) {
        p->backup_ref = req->backup_ref ? req->backup_ref : v->backup_ref;
        if (!p->backup_ref) {
                eg_error_set(err,
                             "no verified backup of %s is recorded: name one (--from-backup PATH or "
                             "--from-backup s3://BUCKET/KEY)",
                             cluster);
                return -ENOENT;
        }
        bool newest = v->backup_ref && strcmp(p->backup_ref, v->backup_ref) == 0;
        int64_t rev = newest ? v->backup_revision : 0;
        int r;
        if (rev > 0 && top >= 0)
                p->revision_gap = v->members[top].revision > rev ? v->members[top].revision - rev : 0;
        if (rev > 0)
                r = eg_buf_printf(b, "restore a new cluster from backup %s (revision %" PRId64 "); ", p->backup_ref,
                                  rev);
        else
                r = eg_buf_printf(b, "restore a new cluster from backup %s; ", p->backup_ref);
        if (r >= 0)
                r = eg_buf_puts(b, "stop and forget every member, their data kept aside: ");
        return r < 0 || names_but(v, -1, b) < 0 ? -ENOMEM : 0;
}

int eg_recover_plan(const struct eg_recover_view *v, const struct eg_recover_request *req, const char *cluster,
                    struct eg_recover_plan *ret, struct eg_error *err) {
        struct eg_recover_plan p = {.seed = -1, .revision_gap = -1};
        struct eg_buf b;
        int top = eg_recover_most_advanced(v);
        eg_buf_init(&b, 0);
        int r = needs_recovery(v, req, cluster, err);
        if (r >= 0)
                r = req->from_backup ? plan_from_backup(v, req, cluster, top, &p, &b, err)
                                     : plan_from_member(v, req, cluster, top, &p, &b, err);
        if (r >= 0 && (eg_buf_puts(&b, "; ") < 0 || gap_text(&b, v, top, p.revision_gap) < 0 ||
                       eg_buf_puts(&b, "; then the cluster grows back to spec.size as learners join") < 0))
                r = -ENOMEM;
        if (r == -ENOMEM)
                eg_error_set(err, "out of memory planning the recovery of %s", cluster);
        if (r >= 0) {
                p.reason = eg_buf_steal(&b);
                *ret = p;
                r = 0;
        }
        eg_buf_done(&b);
        return r;
}

/* Stops every member but skip (-1: all) and forgets it; its data is moved aside, never deleted. */
static int stop_members(const struct eg_recover_options *opt, const struct eg_recover_view *v, int skip,
                        struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        for (size_t i = 0; i < v->n_members; i++) {
                if ((int)i == skip)
                        continue;
                int r = eg_runtime_stop_member(rt, opt->namespace, opt->name, v->members[i].name, false, err);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

static void sleep_ms(int64_t ms) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
}

/* Waits until the member at url answers with a leader (itself, in a cluster of one). */
static int wait_answers(const struct eg_recover_options *opt, const char *member, const char *url,
                        int64_t *ret_revision, struct eg_error *err) {
        struct eg_reconciler_options ro = {.runtime = opt->runtime, .etcd_timeout_ms = ETCD_TIMEOUT_MS};
        char *eps[] = {(char *)url, NULL};
        int64_t timeout = opt->answer_timeout_ms > 0 ? opt->answer_timeout_ms : ANSWER_TIMEOUT_MS;
        int64_t deadline = eg_now_monotonic_ms() + timeout;
        struct eg_etcd *c = url ? reconcile_etcd_client(&ro, opt->namespace, opt->name, eps, 1, err) : NULL;
        int r = -ETIMEDOUT;
        while (c) {
                struct eg_etcd_status st = {0};
                bool led = eg_etcd_status_of(c, url, &st, NULL) >= 0 && st.leader != 0;
                int64_t rev = st.revision;
                eg_etcd_status_done(&st);
                if (led) {
                        *ret_revision = rev;
                        r = 0;
                        break;
                }
                if (eg_now_monotonic_ms() >= deadline)
                        break;
                sleep_ms(ANSWER_POLL_MS);
        }
        eg_etcd_free(c);
        if (r < 0)
                eg_error_set(err,
                             "member %s of %s/%s was started but has no leader after %" PRId64 " ms: see its etcd.log",
                             member, opt->namespace, opt->name, timeout);
        return r;
}

static int from_member(const struct eg_recover_options *opt, const struct eg_recover_view *v,
                       const struct eg_runtime_target *t, const struct eg_recover_plan *plan, struct eg_error *err) {
        const struct eg_recover_member *seed = &v->members[plan->seed];
        int64_t revision;
        /* the others first: none of them may still hold the old membership once it runs alone */
        int r = stop_members(opt, v, plan->seed, err);
        if (r >= 0)
                r = eg_runtime_force_new_cluster(opt->runtime, t, seed->name, err);
        if (r >= 0)
                r = wait_answers(opt, seed->name, seed->client_url, &revision, err);
        return r;
}

/* The snapshot serves this recovery only: a copy of a whole database is not left behind. */
static void snapshot_discard(char **path) {
        if (*path)
                unlink(*path);
        free(*path);
}

static int from_backup(const struct eg_recover_options *opt, const struct eg_recover_view *v,
                       struct eg_runtime_target *t, const char *seed, struct eg_recover_plan *plan,
                       struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        __attribute__((cleanup(snapshot_discard))) char *snapshot = NULL;
        struct eg_restore_info info = {0};
        struct eg_runtime_cluster rc = {0};
        bool s3 = eg_str_has_prefix(plan->backup_ref, "s3://");
        struct eg_restore_spec rs = {
                .etcd_cluster_name = (char *)opt->name,
                .backup_storage_type = s3 ? EG_STORAGE_S3 : EG_STORAGE_FILE,
                .s3 = {.path = s3 ? (char *)plan->backup_ref + 5 : NULL,
                       .endpoint = (char *)opt->s3_endpoint,
                       .force_path_style = opt->s3_force_path_style},
                .file = {.path = s3 ? NULL : (char *)plan->backup_ref},
        };
        char *members[] = {(char *)seed};
        int64_t revision;
        /* nothing is stopped before the snapshot is here and verified */
        int r = eg_restore_fetch(&rs, opt->namespace, opt->state_dir, &snapshot, &info, err);
        if (r >= 0)
                r = stop_members(opt, v, -1, err);
        if (r >= 0) {
                t->prepare_data = restore_prepare_data;
                t->prepare_data_userdata = snapshot;
                r = eg_runtime_bootstrap(rt, t, members, 1, err);
        }
        if (r >= 0)
                r = eg_runtime_observe(rt, opt->namespace, opt->name, &rc, err);
        const char *url = NULL;
        for (size_t i = 0; r >= 0 && i < rc.n_members; i++)
                if (strcmp(rc.members[i].name, seed) == 0)
                        url = rc.members[i].client_url;
        if (r >= 0)
                r = wait_answers(opt, seed, url, &revision, err);
        int top = eg_recover_most_advanced(v);
        if (r >= 0 && plan->revision_gap < 0 && top >= 0)
                plan->revision_gap = v->members[top].revision > revision ? v->members[top].revision - revision : 0;
        eg_runtime_cluster_done(&rc);
        eg_restore_info_done(&info);
        return r;
}

/* The recovery's one record, through the caller's journal, else straight to its log. */
static int record_recovery(const struct eg_recover_options *opt, const struct eg_decision *d) {
        struct eg_journal *own = NULL;
        int k = !opt->journal && opt->audit ? eg_journal_new(opt->audit, &own) : 0;
        if (k >= 0)
                k = eg_journal_record(opt->journal ? opt->journal : own, d, NULL);
        eg_journal_free(own);
        return k;
}

int eg_recover_run(const struct eg_recover_options *opt, const struct eg_recover_view *v, struct eg_recover_plan *plan,
                   struct eg_error *err) {
        struct eg_runtime *rt = opt->runtime;
        if (!eg_runtime_supports(rt, EG_RUNTIME_FORCE_NEW_CLUSTER)) {
                eg_error_set(err,
                             "recovery on the %s runtime is not supported yet: follow etcd's disaster recovery "
                             "guide by hand (etcdctl snapshot restore, or --force-new-cluster on one member)",
                             eg_runtime_name(rt));
                return -EOPNOTSUPP;
        }
        if (!v->version && !opt->spec) {
                eg_error_set(err,
                             "the etcd version of %s/%s is unknown (no member is left to record it): give "
                             "the manifests with --source",
                             opt->namespace, opt->name);
                return -EINVAL;
        }
        const struct eg_origin *origin = opt->origin;
        struct eg_cluster_spec spec = opt->spec ? *opt->spec : (struct eg_cluster_spec){.version = v->version};
        spec.size = 1;
        struct eg_runtime_target t = {
                .namespace = opt->namespace, .name = opt->name, .spec = &spec, .revision = opt->revision};
        _cleanup_free_ char *seed = plan->backup_ref ? eg_strdup_printf("%s-%" PRIu64, opt->name, v->next_index)
                                                     : strdup(v->members[plan->seed].name);
        _cleanup_free_ char *cluster = eg_strdup_printf("%s/%s", opt->namespace, opt->name);
        if (!seed || !cluster)
                return -ENOMEM;
        int64_t t0 = eg_now_monotonic_ms();
        bool gap_known = plan->revision_gap >= 0;
        int r = plan->backup_ref ? from_backup(opt, v, &t, seed, plan, err) : from_member(opt, v, &t, plan, err);
        _cleanup_free_ char *reason = !gap_known && plan->revision_gap >= 0
                                              ? eg_strdup_printf("%s; the new cluster answered: revision gap %" PRId64,
                                                                 plan->reason, plan->revision_gap)
                                              : strdup(plan->reason);
        const struct eg_decision d = {
                .cluster = cluster,
                .kind = "recover",
                .member = seed,
                .reason = reason ? reason : plan->reason,
                .outcome = r >= 0 ? "ok" : "failed",
                .error = r < 0 && err ? err->message : NULL,
                .revision = opt->revision,
                .commit = origin ? origin->commit : NULL,
                .path = origin ? origin->path : NULL,
                .blob = origin ? origin->blob : NULL,
                .line = origin ? origin->line : 0,
                .duration_ms = eg_now_monotonic_ms() - t0,
        };
        int k = record_recovery(opt, &d);
        if (r >= 0 && k < 0) {
                eg_error_set(err, "%s recovered, but its audit record could not be written: %s", cluster, strerror(-k));
                return k;
        }
        return r;
}
