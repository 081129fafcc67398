/* backup names: periodic object names, retention order by revision, cron schedules. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/backup.h"

char *eg_backup_name_periodic(const char *path, int64_t revision, int64_t realtime_ms) {
        time_t t = (time_t)(realtime_ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                return NULL;
        return eg_strdup_printf("%s_v%lld_%04d-%02d-%02d-%02d:%02d:%02d", path, (long long)revision, tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
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

int eg_backup_retention(const char *path, char *const *names, size_t n, int64_t keep, const char ***ret,
                        size_t *ret_n) {
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
