/* Strings, numbers, durations, clocks, sha256 and bounded polling. */
#include <ctype.h>
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
