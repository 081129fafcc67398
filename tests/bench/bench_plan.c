/* Benchmark of the pure planner: 10,000 synthetic clusters of varied shapes must plan
 * well within the 200 ms a reconcile pass over a large source may spend on planning. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/plan.h"

#define N_CLUSTERS 10000
#define TARGET_MS 200.0
#define ROUNDS 5
#define NOW 100000000

static const char *const versions[] = {"3.4.23", "3.5.9", "3.5.12", "3.6.0"};

struct bench_cluster {
        char name[32];
        struct eg_cluster_spec spec;
        struct eg_observed_cluster obs;
        struct eg_plan_input in;
        const char *desired_hash;
        bool spec_gone;
};

static uint64_t rng_next(uint64_t *s) {
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * 2685821657736338717ULL;
}

static unsigned rng_below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One cluster of the given shape: the shapes cover every branch the planner takes. */
static int build(struct bench_cluster *c, unsigned i, uint64_t *rng, const struct eg_policy *pol) {
        unsigned shape = i % 12, size = 1 + 2 * rng_below(rng, 4), n = size;
        const char *v = versions[1 + rng_below(rng, 2)];

        snprintf(c->name, sizeof(c->name), "bench%u", i);
        c->spec = (struct eg_cluster_spec){.size = size, .version = (char *)v};
        c->obs = (struct eg_observed_cluster){.exists = true, .etcd_reachable = true};
        c->desired_hash = "h1";

        switch (shape) {
        case 0: /* fresh */
                n = 0;
                c->obs.exists = false;
                break;
        case 1: /* scale up by two */
                c->spec.size = size + 2;
                break;
        case 2: /* scale down */
                n = size + 2;
                break;
        case 3: /* rolling upgrade */
                v = "3.4.23";
                c->spec.version = "3.5.9";
                break;
        case 4: /* template change */
                c->desired_hash = "h2";
                break;
        default:
                break;
        }
        c->obs.n_members = n;
        c->obs.next_index = n + rng_below(rng, 5);
        c->obs.members = calloc(n ? n : 1, sizeof(struct eg_observed_member));
        if (!c->obs.members)
                return -1;
        for (unsigned j = 0; j < n; j++) {
                char *name;
                if (asprintf(&name, "%s-%u", c->name, j) < 0)
                        return -1;
                c->obs.members[j] = (struct eg_observed_member){
                        .name = name,
                        .id = 0x100 + j,
                        .in_runtime = true,
                        .running = true,
                        .in_membership = true,
                        .healthy = true,
                        .version = (char *)v,
                        .spec_hash = "h1",
                };
        }
        if (n > 0)
                c->obs.members[rng_below(rng, n)].is_leader = true;

        struct eg_observed_member *last = n ? &c->obs.members[n - 1] : NULL;
        switch (shape) {
        case 5: /* one dead member */
                if (last)
                        last->running = last->healthy = false;
                break;
        case 6: /* a learner joining */
                if (last) {
                        last->is_learner = true;
                        last->healthy = rng_below(rng, 2);
                        last->unhealthy_since_ms = last->healthy ? 0 : NOW - 1000;
                }
                break;
        case 7: /* quorum lost */
                for (unsigned j = 0; j < n; j++)
                        if (j * 2 < n + 1)
                                c->obs.members[j].running = c->obs.members[j].healthy = false;
                break;
        case 8: /* unknown runtime member */
                if (last) {
                        last->in_membership = false;
                        last->id = 0;
                }
                break;
        case 9: /* unhealthy, not dead yet */
                if (last) {
                        last->healthy = false;
                        last->unhealthy_since_ms = NOW - 2000;
                }
                break;
        case 10: /* manifest removed */
                c->spec_gone = true;
                break;
        default:
                break;
        }

        c->in = (struct eg_plan_input){
                .namespace = "default",
                .name = c->name,
                .spec = c->spec_gone ? NULL : &c->spec,
                .desired_hash = c->desired_hash,
                .observed = &c->obs,
                .policy = pol,
                .prune_allowed = true,
                .now_ms = NOW,
        };
        return 0;
}

/* Plans every cluster once; returns the wall time in ns, or -1 on a planning error. */
static int64_t run(struct bench_cluster *cs, size_t *ret_actions) {
        size_t actions = 0;
        int64_t t0 = now_ns();
        for (size_t i = 0; i < N_CLUSTERS; i++) {
                struct eg_plan p;
                if (eg_plan_cluster(&cs[i].in, &p) < 0)
                        return -1;
                actions += p.n_actions;
                eg_plan_done(&p);
        }
        int64_t t = now_ns() - t0;
        *ret_actions = actions;
        return t;
}

int main(void) {
        struct eg_policy pol;
        uint64_t rng = 0x2545f4914f6cdd1dULL;
        struct bench_cluster *cs = calloc(N_CLUSTERS, sizeof(*cs));
        size_t actions = 0;
        int ret = 1;

        eg_policy_init(&pol);
        pol.prune = true;
        if (!cs) {
                fprintf(stderr, "bench_plan: out of memory\n");
                return 2;
        }
        for (unsigned i = 0; i < N_CLUSTERS; i++)
                if (build(&cs[i], i, &rng, &pol) < 0) {
                        fprintf(stderr, "bench_plan: out of memory\n");
                        ret = 2;
                        goto out;
                }

        int64_t first = -1, best = -1;
        for (int r = 0; r < ROUNDS; r++) {
                int64_t t = run(cs, &actions);
                if (t < 0) {
                        fprintf(stderr, "bench_plan: planning failed\n");
                        ret = 2;
                        goto out;
                }
                if (first < 0)
                        first = t;
                if (best < 0 || t < best)
                        best = t;
        }

        double first_ms = (double)first / 1e6, best_ms = (double)best / 1e6;
        printf("bench_plan: %d clusters, %zu planned actions per pass\n", N_CLUSTERS, actions);
        printf("  first pass: %.2f ms total, %.2f us per cluster, %.4f of the %.0f ms target\n", first_ms,
               first_ms * 1000.0 / N_CLUSTERS, first_ms / TARGET_MS, TARGET_MS);
        printf("  best of %d: %.2f ms total, %.2f us per cluster, %.4f of the %.0f ms target\n", ROUNDS, best_ms,
               best_ms * 1000.0 / N_CLUSTERS, best_ms / TARGET_MS, TARGET_MS);
        ret = first_ms <= TARGET_MS ? 0 : 1;
        printf("  %s\n", ret == 0 ? "within target" : "OVER TARGET");
out:
        for (unsigned i = 0; i < N_CLUSTERS; i++) {
                for (size_t j = 0; j < cs[i].obs.n_members; j++)
                        free(cs[i].obs.members[j].name);
                free(cs[i].obs.members);
        }
        free(cs);
        return ret;
}
