/* Five-field cron schedules (minute hour day-of-month month day-of-week), in UTC. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "etcd-gitops/util.h"

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static bool cron_value(const char **p, int field, int64_t *ret) {
        const char *s = *p;
        if (*s >= '0' && *s <= '9') {
                int64_t v = 0;
                while (*s >= '0' && *s <= '9' && v < 1000)
                        v = v * 10 + (*s++ - '0');
                *p = s;
                *ret = v;
                return true;
        }
        const char *const *names = field == 3 ? month_names : field == 4 ? day_names : NULL;
        size_t n = field == 3 ? 12 : 7;
        for (size_t i = 0; names && i < n; i++)
                if (strncasecmp(s, names[i], 3) == 0) {
                        *p = s + 3;
                        *ret = (int64_t)i + (field == 3);
                        return true;
                }
        return false;
}

static int cron_field(const char *s, size_t len, int field, uint64_t *ret, bool *ret_any) {
        static const int64_t lo[] = {0, 0, 1, 1, 0}, hi[] = {59, 23, 31, 12, 7};
        _cleanup_free_ char *copy = strndup(s, len);
        if (!copy)
                return -ENOMEM;
        const char *p = copy;
        uint64_t bits = 0;
        *ret_any = strcmp(copy, "*") == 0;
        for (;;) {
                int64_t a = lo[field], b = hi[field], step = 1;
                bool single = false;
                if (*p == '*')
                        p++;
                else {
                        if (!cron_value(&p, field, &a))
                                return -EINVAL;
                        b = a;
                        single = *p != '-';
                        if (*p == '-') {
                                p++;
                                if (!cron_value(&p, field, &b))
                                        return -EINVAL;
                        }
                        if (a < lo[field] || b > hi[field] || a > b)
                                return -EINVAL;
                }
                if (*p == '/') {
                        p++;
                        if (*p < '0' || *p > '9' || !cron_value(&p, 0, &step) || step < 1 || step > hi[field])
                                return -EINVAL;
                        if (single)
                                b = hi[field]; /* "5/15" means from 5 to the end */
                }
                for (int64_t v = a; v <= b; v += step)
                        bits |= (uint64_t)1 << (field == 4 && v == 7 ? 0 : v);
                if (*p == 0)
                        break;
                if (*p++ != ',')
                        return -EINVAL;
        }
        *ret = bits;
        return 0;
}

int eg_cron_parse_at(const char *expr, struct eg_cron *ret, int *ret_bad_field) {
        if (ret_bad_field)
                *ret_bad_field = -1;
        const char *f[5];
        size_t len[5];
        int n = 0;
        for (const char *q = expr;;) {
                q += strspn(q, " \t");
                if (!*q)
                        break;
                if (n == 5)
                        return -EINVAL;
                f[n] = q;
                len[n] = strcspn(q, " \t");
                q += len[n++];
        }
        if (n != 5)
                return -EINVAL;
        uint64_t bits[5];
        bool any[5];
        for (int i = 0; i < 5; i++) {
                int r = cron_field(f[i], len[i], i, &bits[i], &any[i]);
                if (r < 0) {
                        if (ret_bad_field && r == -EINVAL)
                                *ret_bad_field = i;
                        return r;
                }
        }
        *ret = (struct eg_cron){.minute = bits[0],
                                .hour = (uint32_t)bits[1],
                                .dom = (uint32_t)bits[2],
                                .month = (uint16_t)bits[3],
                                .dow = (uint8_t)bits[4],
                                .dom_any = any[2],
                                .dow_any = any[4]};
        return 0;
}

static bool day_matches(const struct eg_cron *c, const struct tm *tm) {
        bool dom = c->dom & (1u << tm->tm_mday), dow = c->dow & (1u << tm->tm_wday);
        /* Vixie cron: with both fields restricted, either one matching is enough */
        if (!c->dom_any && !c->dow_any)
                return dom || dow;
        return dom && dow;
}

int eg_cron_next(const struct eg_cron *c, int64_t after_ms, int64_t *ret_ms) {
        /* the next whole minute, rounding down before 1970 too */
        int64_t m = after_ms / 60000 - (after_ms % 60000 < 0);
        time_t t = (time_t)((m + 1) * 60);
        time_t limit = t + (time_t)5 * 366 * 24 * 3600;
        while (t < limit) {
                struct tm tm;
                if (!gmtime_r(&t, &tm))
                        return -ERANGE;
                if (!(c->month & (1u << (tm.tm_mon + 1))) || !day_matches(c, &tm)) {
                        t += (time_t)(24 - tm.tm_hour) * 3600 - tm.tm_min * 60; /* next midnight */
                        continue;
                }
                if (!(c->hour & (1u << tm.tm_hour))) {
                        t += (time_t)(60 - tm.tm_min) * 60;
                        continue;
                }
                if (!(c->minute & ((uint64_t)1 << tm.tm_min))) {
                        t += 60;
                        continue;
                }
                /* a start near the end of int64 has its next minute past it */
                if (t > INT64_MAX / 1000)
                        return -ERANGE;
                *ret_ms = (int64_t)t * 1000;
                return 0;
        }
        return -ERANGE;
}

int eg_cron_parse(const char *expr, struct eg_cron *ret) { return eg_cron_parse_at(expr, ret, NULL); }
