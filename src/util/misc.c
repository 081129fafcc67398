/* Strings, numbers, durations, clocks and RFC 3339 times, sha256 and bounded polling. */
#include <ctype.h>
#include <pwd.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "etcd-gitops/util.h"

void eg_strv_free(char **v, size_t n) {
        for (size_t i = 0; v && i < n && (n != EG_STRV_ALL || v[i]); i++)
                free(v[i]);
        free(v);
}

char *eg_actor_of_uid(unsigned uid) {
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found) == 0 && found)
                return eg_strdup_printf("uid %u (%s)", uid, found->pw_name);
        return eg_strdup_printf("uid %u", uid);
}

char *eg_random_hex(size_t n) {
        _cleanup_free_ unsigned char *raw = malloc(n ? n : 1);
        size_t got = 0;
        if (!raw)
                return NULL;
        while (got < n) {
                ssize_t k = getrandom(raw + got, n - got, 0);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return NULL;
                got += (size_t)k;
        }
        char *hex = malloc(2 * n + 1);
        if (!hex)
                return NULL;
        for (size_t i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        hex[2 * n] = 0;
        return hex;
}

char *eg_strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

bool eg_str_has_prefix(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

size_t eg_edit_distance(const char *a, const char *b, size_t limit, bool ignore_case) {
        enum { LEN_MAX = 64 };
        size_t na = strlen(a), nb = strlen(b);
        if (na > LEN_MAX || nb > LEN_MAX || (na > nb ? na - nb : nb - na) > limit)
                return limit + 1;
        size_t row[LEN_MAX + 1];
        for (size_t j = 0; j <= nb; j++)
                row[j] = j;
        for (size_t i = 1; i <= na; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= nb; j++) {
                        unsigned char x = a[i - 1], y = b[j - 1];
                        bool same = ignore_case ? tolower(x) == tolower(y) : x == y;
                        size_t up = row[j], best = diag + !same;
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        diag = up;
                        row[j] = best;
                }
        }
        return row[nb] > limit ? limit + 1 : row[nb];
}

bool eg_str_has_suffix(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

int eg_parse_int64(const char *s, int64_t *ret) {
        if (!s || !*s || isspace((unsigned char)*s))
                return -EINVAL;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int eg_parse_uint64(const char *s, uint64_t *ret) {
        if (!s || !isdigit((unsigned char)*s))
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int eg_parse_duration_ms(const char *s, int64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        int64_t total = 0;
        const char *p = s;
        bool bare = true;
        while (*p) {
                if (!isdigit((unsigned char)*p))
                        return -EINVAL;
                int64_t v = 0;
                while (isdigit((unsigned char)*p)) {
                        if (v > INT64_MAX / 10 - 10)
                                return -ERANGE;
                        v = v * 10 + (*p++ - '0');
                }
                int64_t unit;
                if (eg_str_has_prefix(p, "ms"))
                        unit = 1, p += 2;
                else if (*p == 's')
                        unit = 1000, p++;
                else if (*p == 'm')
                        unit = 60000, p++;
                else if (*p == 'h')
                        unit = 3600000, p++;
                else if (*p == 0 && bare)
                        unit = 1000;
                else
                        return -EINVAL;
                bare = false;
                if (v > (INT64_MAX - total) / unit)
                        return -ERANGE;
                total += v * unit;
        }
        *ret = total;
        return 0;
}

static int64_t clock_ms(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t eg_now_monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

int64_t eg_now_realtime_ms(void) { return clock_ms(CLOCK_REALTIME); }

int64_t eg_now_realtime_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* t in units of 1/per second, its fraction written with digits digits */
static void format_rfc3339(int64_t t, int64_t per, int digits, char buf[static 32]) {
        time_t secs = (time_t)(t / per);
        struct tm tm;
        gmtime_r(&secs, &tm);
        size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 32 - n, ".%0*dZ", digits, (int)(t % per));
}

void eg_format_rfc3339_ms(int64_t realtime_ms, char buf[static 32]) { format_rfc3339(realtime_ms, 1000, 3, buf); }

void eg_format_rfc3339_us(int64_t realtime_us, char buf[static 32]) { format_rfc3339(realtime_us, 1000000, 6, buf); }

/* Whether s starts with shape, where 'd' stands for any decimal digit. */
static bool has_shape(const char *s, const char *shape) {
        for (; *shape; s++, shape++)
                if (*shape == 'd' ? !isdigit((unsigned char)*s) : *s != *shape)
                        return false;
        return true;
}

static int digits_value(const char *s, int n) {
        int v = 0;
        for (int i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0');
        return v;
}

int eg_parse_rfc3339_ms(const char *s, int64_t *ret_ms) {
        if (!has_shape(s, "dddd-dd-ddTdd:dd:dd"))
                return -EINVAL;
        struct tm tm = {
                .tm_year = digits_value(s, 4) - 1900,
                .tm_mon = digits_value(s + 5, 2) - 1,
                .tm_mday = digits_value(s + 8, 2),
                .tm_hour = digits_value(s + 11, 2),
                .tm_min = digits_value(s + 14, 2),
                .tm_sec = digits_value(s + 17, 2),
        };
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
                return -EINVAL;
        const char *p = s + 19;
        int64_t ms = 0;
        if (*p == '.') {
                if (!isdigit((unsigned char)*++p))
                        return -EINVAL;
                for (int64_t scale = 100; isdigit((unsigned char)*p); p++, scale /= 10)
                        ms += (*p - '0') * scale;
        }
        int64_t offset_s = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if ((*p == '+' || *p == '-') && has_shape(p + 1, "dd:dd")) {
                offset_s = (*p == '+' ? 1 : -1) * (digits_value(p + 1, 2) * 3600 + digits_value(p + 4, 2) * 60);
                p += 6;
        } else
                return -EINVAL;
        time_t t = *p ? (time_t)-1 : timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_ms = ((int64_t)t - offset_s) * 1000 + ms;
        return 0;
}

struct eg_sha256 {
        EVP_MD_CTX *ctx;
};

int eg_sha256_new(struct eg_sha256 **ret) {
        struct eg_sha256 *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                eg_sha256_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

void eg_sha256_update(struct eg_sha256 *h, const void *data, size_t len) { EVP_DigestUpdate(h->ctx, data, len); }

void eg_sha256_final_raw(struct eg_sha256 *h, unsigned char out[static 32]) {
        unsigned int n = 32;
        EVP_DigestFinal_ex(h->ctx, out, &n);
        eg_sha256_free(h);
}

void eg_sha256_final_hex(struct eg_sha256 *h, char out[static 65]) {
        unsigned char raw[32];
        eg_sha256_final_raw(h, raw);
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void eg_sha256_free(struct eg_sha256 *h) {
        if (!h)
                return;
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

void eg_sha256_hex(const void *data, size_t len, char out[static 65]) {
        unsigned char raw[32];
        unsigned int n = 32;
        EVP_Digest(data, len, raw, &n, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int eg_wait_for(bool (*cond)(void *userdata), void *userdata, int64_t timeout_ms, int64_t interval_ms) {
        int64_t deadline = eg_now_monotonic_ms() + timeout_ms;
        for (;;) {
                if (cond(userdata))
                        return 0;
                if (eg_now_monotonic_ms() >= deadline)
                        return -ETIMEDOUT;
                struct timespec ts = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000};
                nanosleep(&ts, NULL);
        }
}
