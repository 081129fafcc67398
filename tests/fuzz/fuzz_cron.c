/* libFuzzer target: cron expressions through the parser, and the next time they fire from a
 * fixed start and from one the input picks, checked against a plain minute-by-minute search. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd-gitops/util.h"

/* 2024-02-28T23:59:30.500Z: a leap day, a month and a year end are near */
#define FIXED_START_MS INT64_C(1709164770500)
#define MINUTE_MS INT64_C(60000)
#define DAY_S INT64_C(86400)
/* eg_cron_next's horizon */
#define HORIZON_DAYS (5 * 366)
/* gaps up to this long are checked minute by minute */
#define BRUTE_MINUTES (3 * 24 * 60)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool day_ok(const struct eg_cron *c, const struct tm *tm) {
        if (!(c->month & (1u << (tm->tm_mon + 1))))
                return false;
        bool dom = c->dom & (1u << tm->tm_mday), dow = c->dow & (1u << tm->tm_wday);
        return !c->dom_any && !c->dow_any ? dom || dow : dom && dow;
}

static bool minute_ok(const struct eg_cron *c, int64_t ms) {
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        if (!gmtime_r(&t, &tm))
                abort();
        return day_ok(c, &tm) && (c->hour & (1u << tm.tm_hour)) && (c->minute & ((uint64_t)1 << tm.tm_min));
}

/* The first whole minute strictly after ms (floor division: ms may be negative). */
static int64_t next_minute(int64_t ms) {
        int64_t m = ms / MINUTE_MS;
        if (ms % MINUTE_MS < 0)
                m--;
        return (m + 1) * MINUTE_MS;
}

/* A day matching the date fields exists at or after the day of from_s and before to_s. */
static bool some_day_between(const struct eg_cron *c, int64_t from_s, int64_t to_s) {
        for (int64_t t = from_s - (from_s % DAY_S + DAY_S) % DAY_S; t < to_s; t += DAY_S) {
                time_t tt = (time_t)t;
                struct tm tm;
                if (!gmtime_r(&tt, &tm))
                        abort();
                if (day_ok(c, &tm))
                        return true;
        }
        return false;
}

static void check_next(const struct eg_cron *c, int64_t after) {
        int64_t next;
        int r = eg_cron_next(c, after, &next);
        /* the plain search below needs gmtime and no overflow: years 0..9999 */
        bool checkable = after >= INT64_C(-62135596800000) &&
                         after <= INT64_C(253402300799999) - 6 * 366 * DAY_S * 1000;
        if (r == -ERANGE) {
                /* every field has at least one value, so a matching day means a match */
                if (checkable && some_day_between(c, next_minute(after) / 1000 + DAY_S,
                                                  next_minute(after) / 1000 + (HORIZON_DAYS - 1) * DAY_S))
                        abort();
                return;
        }
        if (r < 0)
                abort();
        if (next <= after || next % MINUTE_MS != 0)
                abort();
        if (!checkable)
                return;
        if (!minute_ok(c, next))
                abort();
        int64_t first = next_minute(after);
        if ((next - first) / MINUTE_MS <= BRUTE_MINUTES) {
                for (int64_t m = first; m < next; m += MINUTE_MS)
                        if (minute_ok(c, m))
                                abort();
        } else if (some_day_between(c, first / 1000 + DAY_S, next / 1000 - DAY_S)) {
                /* whole days strictly between the start's day and the result's */
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* the expression is the input up to a NUL; 8 bytes after it pick another start */
        const uint8_t *nul = memchr(data, 0, size);
        size_t len = nul ? (size_t)(nul - data) : size;
        if (len > 4096)
                return 0;
        char *expr = strndup((const char *)data, len);
        if (!expr)
                return 0;
        struct eg_cron c;
        int bad = -2;
        int r = eg_cron_parse_at(expr, &c, &bad);
        if (r == -EINVAL && (bad < -1 || bad > 4))
                abort();
        if (r == 0) {
                /* only the values each field can have */
                if ((c.minute >> 60) || (c.hour >> 24) || (c.dom & 1u) || (c.month & ~UINT16_C(0x1ffe)) ||
                    (c.dow & 0x80) || !c.minute || !c.hour || !(c.dom >> 1) || !c.month || !c.dow)
                        abort();
                check_next(&c, FIXED_START_MS);
                if (nul && size - len - 1 >= 8) {
                        int64_t start;
                        memcpy(&start, nul + 1, sizeof(start));
                        check_next(&c, start);
                }
        }
        free(expr);
        return 0;
}
