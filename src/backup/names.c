/* backup names: periodic object names, retention order by revision, cron schedules. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "etcd-gitops/backup.h"

char *eg_backup_name_periodic(const char *path, int64_t revision, int64_t realtime_ms) {
        time_t t = (time_t)(realtime_ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return NULL;
        return eg_strdup_printf("%s_v%lld_%04d-%02d-%02d-%02d:%02d:%02d", path, (long long)revision,
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static bool digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

int eg_backup_name_parse(const char *path, const char *name, int64_t *ret_revision) {
        size_t pl = strlen(path);
        if (strncmp(name, path, pl) != 0 || strncmp(name + pl, "_v", 2) != 0)
                return -EINVAL;
        const char *s = name + pl + 2, *us = strchr(s, '_');
        if (!us || us == s || !digits(s, (size_t)(us - s)) || us - s > 18)
                return -EINVAL;
        /* the date: 2006-01-02-15:04:05 exactly */
        const char *d = us + 1;
        static const char shape[] = "dddd-dd-dd-dd:dd:dd";
        if (strlen(d) != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'd' ? (d[i] < '0' || d[i] > '9') : d[i] != shape[i])
                        return -EINVAL;
        _cleanup_free_ char *num = strndup(s, (size_t)(us - s));
        if (!num)
                return -ENOMEM;
        return eg_parse_int64(num, ret_revision) < 0 ? -EINVAL : 0;
}

struct ranked {
        const char *name;
        int64_t revision;
};

static int cmp_newest_first(const void *a, const void *b) {
        const struct ranked *x = a, *y = b;
        if (x->revision != y->revision)
                return x->revision > y->revision ? -1 : 1;
        return -strcmp(x->name, y->name);
}

int eg_backup_retention(const char *path, char *const *names, size_t n, int64_t keep,
                        const char ***ret, size_t *ret_n) {
        struct ranked *r = calloc(n ? n : 1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
                int64_t rev;
                if (eg_backup_name_parse(path, names[i], &rev) == 0)
                        r[m++] = (struct ranked){names[i], rev};
        }
        qsort(r, m, sizeof(*r), cmp_newest_first);
        const char **out = NULL;
        size_t k = 0;
        if (keep > 0 && (uint64_t)keep < m) {
                out = calloc(m - (size_t)keep, sizeof(*out));
                if (!out) {
                        free(r);
                        return -ENOMEM;
                }
                for (size_t i = (size_t)keep; i < m; i++)
                        out[k++] = r[i].name;
        }
        free(r);
        *ret = out;
        *ret_n = k;
        return 0;
}

/* ---- cron ---- */

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

int eg_cron_parse(const char *expr, struct eg_cron *ret) {
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
                if (r < 0)
                        return r;
        }
        *ret = (struct eg_cron){.minute = bits[0], .hour = (uint32_t)bits[1], .dom = (uint32_t)bits[2],
                                .month = (uint16_t)bits[3], .dow = (uint8_t)bits[4],
                                .dom_any = any[2], .dow_any = any[4]};
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
        time_t t = (time_t)(after_ms / 1000);
        t = t - t % 60 + 60;
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
                *ret_ms = (int64_t)t * 1000;
                return 0;
        }
        return -ERANGE;
}
