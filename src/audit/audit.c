/* audit: the append-only, hash-chained JSON Lines log of every decision (specs/audit-log.md). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define TRUNCATED_SUFFIX "\xe2\x80\xa6(truncated)"
/* Largest time the fixed-width RFC 3339 form can carry: 9999-12-31T23:59:59.999Z. */
#define TIME_MS_MAX INT64_C(253402300799999)

struct eg_audit {
        /* the daemon appends from its loop and its reconcile thread: one record at a time
         * keeps the chain whole */
        pthread_mutex_t lock;
        int fd;
        off_t size; /* we hold the lock, so nobody else moves the end */
        uint64_t last_seq;
        char last_hash[65];
};

enum field_kind { KIND_SEQ, KIND_TIME, KIND_STRING, KIND_LINE, KIND_DURATION, KIND_PREV };

/* The on-disk key order: part of the format, never reorder. */
static const struct field {
        const char *key;
        enum field_kind kind;
        size_t offset; /* of the const char * in struct eg_audit_record, for strings */
} fields[] = {
        {"seq", KIND_SEQ, 0},
        {"time", KIND_TIME, 0},
        {"revision", KIND_STRING, offsetof(struct eg_audit_record, revision)},
        {"commit", KIND_STRING, offsetof(struct eg_audit_record, commit)},
        {"path", KIND_STRING, offsetof(struct eg_audit_record, path)},
        {"line", KIND_LINE, 0},
        {"blob", KIND_STRING, offsetof(struct eg_audit_record, blob)},
        {"cluster", KIND_STRING, offsetof(struct eg_audit_record, cluster)},
        {"decision", KIND_STRING, offsetof(struct eg_audit_record, decision)},
        {"member", KIND_STRING, offsetof(struct eg_audit_record, member)},
        {"reason", KIND_STRING, offsetof(struct eg_audit_record, reason)},
        {"outcome", KIND_STRING, offsetof(struct eg_audit_record, outcome)},
        {"duration_ms", KIND_DURATION, 0},
        {"error", KIND_STRING, offsetof(struct eg_audit_record, error)},
        {"actor", KIND_STRING, offsetof(struct eg_audit_record, actor)},
        {"prev", KIND_PREV, 0},
};
#define N_FIELDS EG_ELEMENTSOF(fields)

static const char **record_string(struct eg_audit_record *r, const struct field *f) {
        return (const char **)((char *)r + f->offset);
}

static const char *record_string_const(const struct eg_audit_record *r, const struct field *f) {
        return *(const char *const *)((const char *)r + f->offset);
}

void eg_audit_record_done(struct eg_audit_record *r) {
        if (!r)
                return;
        for (size_t i = 0; i < N_FIELDS; i++)
                if (fields[i].kind == KIND_STRING)
                        free((void *)*record_string(r, &fields[i])); /* a read record owns them */
        free(r->prev);
        free(r->hash);
        *r = (struct eg_audit_record){0};
}

void eg_audit_records_free(struct eg_audit_record *r, size_t n) {
        for (size_t i = 0; r && i < n; i++)
                eg_audit_record_done(&r[i]);
        free(r);
}

/* ---- formatting ---- */

/* Length of the valid UTF-8 sequence at s (jansson's rules: no overlongs, surrogates or
 * code points past U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *s, size_t left) {
        unsigned char c = s[0];
        if (c < 0x80)
                return 1;
        size_t n;
        unsigned char lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        if (left < n || s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return n;
}

/* Copies at most max bytes of s, replacing bytes that are not UTF-8 with U+FFFD, since
 * jansson refuses invalid strings and error texts may quote arbitrary file content. */
static char *utf8_sanitize(const char *s, size_t max) {
        size_t len = strnlen(s, max);
        struct eg_buf b;
        eg_buf_init(&b, 3 * len + 1);
        const unsigned char *p = (const unsigned char *)s;
        for (size_t i = 0; i < len;) {
                size_t n = utf8_seq_len(p + i, len - i);
                int r = n ? eg_buf_append(&b, p + i, n) : eg_buf_puts(&b, "\xef\xbf\xbd");
                if (r < 0) {
                        eg_buf_done(&b);
                        return NULL;
                }
                i += n ? n : 1;
        }
        return eg_buf_steal(&b);
}

/* One string value while fitting the line: the sanitized text and how much of it stays. */
struct cut_string {
        char *text;
        size_t len;
        size_t keep;
};

static json_t *cut_string_json(const struct cut_string *c) {
        if (c->keep == c->len)
                return json_stringn(c->text, c->len);
        _cleanup_free_ char *s = eg_strdup_printf("%.*s" TRUNCATED_SUFFIX, (int)c->keep, c->text);
        return s ? json_string(s) : NULL;
}

static char *dump_line(const struct eg_audit_record *r, int64_t time_ms, uint64_t seq, const char *prev,
                       const struct cut_string *strs) {
        json_t *o = json_object();
        if (!o)
                return NULL;
        char time_buf[32];
        eg_format_rfc3339_ms(time_ms, time_buf);
        bool ok = true;
        for (size_t i = 0; ok && i < N_FIELDS; i++) {
                const struct field *f = &fields[i];
                json_t *v = NULL;
                switch (f->kind) {
                case KIND_SEQ:
                        v = json_integer((json_int_t)seq);
                        break;
                case KIND_TIME:
                        v = json_string(time_buf);
                        break;
                case KIND_STRING:
                        if (!strs[i].text)
                                continue;
                        v = cut_string_json(&strs[i]);
                        break;
                case KIND_LINE:
                        if (r->line == 0)
                                continue;
                        v = json_integer((json_int_t)r->line);
                        break;
                case KIND_DURATION:
                        v = json_integer((json_int_t)r->duration_ms);
                        break;
                case KIND_PREV:
                        if (!prev)
                                continue;
                        v = json_string(prev);
                        break;
                }
                ok = v && json_object_set_new(o, f->key, v) == 0;
        }
        char *line = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        return line;
}

/* Cuts every string longer than limit bytes to limit (on a UTF-8 boundary). */
static void cut_strings(struct cut_string *strs, size_t limit) {
        for (size_t i = 0; i < N_FIELDS; i++) {
                struct cut_string *c = &strs[i];
                if (!c->text)
                        continue;
                c->keep = c->len <= limit ? c->len : limit;
                while (c->keep > 0 && c->keep < c->len && ((unsigned char)c->text[c->keep] & 0xc0) == 0x80)
                        c->keep--;
        }
}

/* Builds the line. When it is too long, every string is cut to one common length, the
 * largest that fits (found by bisection), so a long error does not wipe out the reason. */
static int format_line(const struct eg_audit_record *rec, int64_t time_ms, uint64_t seq, const char *prev, char **ret) {
        if (time_ms < 0 || time_ms > TIME_MS_MAX || seq > INT64_MAX)
                return -EINVAL;
        struct cut_string strs[N_FIELDS] = {{0}};
        char *line = NULL;
        int r = -ENOMEM;
        for (size_t i = 0; i < N_FIELDS; i++) {
                const char *s = fields[i].kind == KIND_STRING ? record_string_const(rec, &fields[i]) : NULL;
                if (!s)
                        continue;
                /* anything longer is cut anyway: bound the work on absurd input */
                strs[i].text = utf8_sanitize(s, EG_AUDIT_LINE_MAX);
                if (!strs[i].text)
                        goto out;
                strs[i].len = strs[i].keep = strlen(strs[i].text);
        }
        line = dump_line(rec, time_ms, seq, prev, strs);
        if (!line)
                goto out;
        if (strlen(line) >= EG_AUDIT_LINE_MAX) {
                free(line);
                line = NULL;
                size_t lo = 0, hi = EG_AUDIT_LINE_MAX;
                while (lo <= hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        cut_strings(strs, mid);
                        char *l = dump_line(rec, time_ms, seq, prev, strs);
                        if (!l)
                                goto out;
                        if (strlen(l) < EG_AUDIT_LINE_MAX) {
                                free(line);
                                line = l;
                                lo = mid + 1;
                        } else {
                                free(l);
                                if (mid == 0)
                                        break;
                                hi = mid - 1;
                        }
                }
                if (!line) {
                        r = -E2BIG;
                        goto out;
                }
        }
        r = 0;
        *ret = TAKE_PTR(line);
out:
        for (size_t i = 0; i < N_FIELDS; i++)
                free(strs[i].text);
        free(line);
        return r;
}

int eg_audit_record_format(const struct eg_audit_record *r, char **ret) {
        return format_line(r, r->time_ms, r->seq, r->prev, ret);
}

/* ---- parsing ---- */

static unsigned parse_digits(const char *s, size_t n) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (unsigned)(s[i] - '0');
        return v;
}

/* Exactly the form eg_format_rfc3339_ms writes; formatting the result back rejects
 * dates such as February 30th that timegm would quietly move. */
static int parse_time_ms(const char *s, int64_t *ret) {
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (strlen(s) != sizeof(shape) - 1)
                return -EINVAL;
        for (size_t i = 0; shape[i]; i++)
                if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != shape[i])
                        return -EINVAL;
        struct tm tm = {
                .tm_year = (int)parse_digits(s, 4) - 1900,
                .tm_mon = (int)parse_digits(s + 5, 2) - 1,
                .tm_mday = (int)parse_digits(s + 8, 2),
                .tm_hour = (int)parse_digits(s + 11, 2),
                .tm_min = (int)parse_digits(s + 14, 2),
                .tm_sec = (int)parse_digits(s + 17, 2),
        };
        time_t t = timegm(&tm);
        if (t < 0)
                return -EINVAL;
        int64_t ms = (int64_t)t * 1000 + parse_digits(s + 20, 3);
        char back[32];
        eg_format_rfc3339_ms(ms, back);
        if (strcmp(back, s) != 0)
                return -EINVAL;
        *ret = ms;
        return 0;
}

static int record_from_json(json_t *o, struct eg_audit_record *ret, struct eg_error *e) {
        if (!json_is_object(o)) {
                eg_error_set(e, "not a JSON object");
                return -EINVAL;
        }
        struct eg_audit_record rec = {0};
        int r = -EINVAL;
        for (size_t i = 0; i < N_FIELDS; i++) {
                const struct field *f = &fields[i];
                json_t *v = json_object_get(o, f->key);
                if (!v || json_is_null(v)) {
                        if (f->kind == KIND_SEQ || f->kind == KIND_TIME || f->kind == KIND_PREV) {
                                eg_error_set(e, "'%s' is missing", f->key);
                                goto out;
                        }
                        continue;
                }
                json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
                switch (f->kind) {
                case KIND_SEQ:
                        if (!json_is_integer(v) || n < 1) {
                                eg_error_set(e, "'seq' must be a positive integer");
                                goto out;
                        }
                        rec.seq = (uint64_t)n;
                        break;
                case KIND_TIME:
                        if (!json_is_string(v) || parse_time_ms(json_string_value(v), &rec.time_ms) < 0) {
                                eg_error_set(e, "'time' must be an RFC 3339 UTC time with milliseconds");
                                goto out;
                        }
                        break;
                case KIND_LINE:
                        if (!json_is_integer(v) || n < 0 || n > UINT_MAX) {
                                eg_error_set(e, "'line' must be a non-negative integer");
                                goto out;
                        }
                        rec.line = (unsigned)n;
                        break;
                case KIND_DURATION:
                        if (!json_is_integer(v)) {
                                eg_error_set(e, "'duration_ms' must be an integer");
                                goto out;
                        }
                        rec.duration_ms = n;
                        break;
                case KIND_STRING:
                case KIND_PREV: {
                        if (!json_is_string(v)) {
                                eg_error_set(e, "'%s' must be a string", f->key);
                                goto out;
                        }
                        char *s = strdup(json_string_value(v));
                        if (!s) {
                                r = -ENOMEM;
                                goto out;
                        }
                        if (f->kind == KIND_PREV)
                                rec.prev = s;
                        else
                                *record_string(&rec, f) = s;
                        break;
                }
                }
        }
        *ret = rec;
        return 0;
out:
        eg_audit_record_done(&rec);
        return r;
}

int audit_parse_line(const char *line, size_t len, struct eg_audit_record *ret, struct eg_error *e) {
        json_error_t jerr;
        json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o) {
                eg_error_set(e, "not valid JSON: %s (column %d)", jerr.text, jerr.column);
                return -EINVAL;
        }
        struct eg_audit_record rec;
        int r = record_from_json(o, &rec, e);
        json_decref(o);
        if (r < 0)
                return r;
        char hash[65];
        eg_sha256_hex(line, len, hash);
        rec.hash = strdup(hash);
        if (!rec.hash) {
                eg_audit_record_done(&rec);
                return -ENOMEM;
        }
        *ret = rec;
        return 0;
}

/* ---- writing ---- */

static int pread_full(int fd, void *buf, size_t n, off_t offset) {
        char *p = buf;
        while (n > 0) {
                ssize_t k = pread(fd, p, n, offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO; /* the file shrank under our lock: someone ignores it */
                p += k;
                n -= (size_t)k;
                offset += k;
        }
        return 0;
}

/* Offset of the last '\n' before end, or -1 when there is none; reads backwards in chunks
 * so a long log is never loaded whole. */
static int rfind_newline(int fd, off_t end, char *chunk, off_t *ret) {
        while (end > 0) {
                size_t n = (uint64_t)end < CHUNK_SIZE ? (size_t)end : CHUNK_SIZE;
                off_t start = end - (off_t)n;
                int r = pread_full(fd, chunk, n, start);
                if (r < 0)
                        return r;
                char *p = memrchr(chunk, '\n', n);
                if (p) {
                        *ret = start + (p - chunk);
                        return 0;
                }
                end = start;
        }
        *ret = -1;
        return 0;
}

/* Finds the last valid record to continue the chain from. A crash can only tear the line
 * being appended, so at most one bad last line is dropped; more damage than that is
 * for a human to look at, not for us to cut away. */
static int read_tail(struct eg_audit *a, const char *path, char **ret_warning) {
        struct stat st;
        if (fstat(a->fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        char *chunk = malloc(CHUNK_SIZE);
        if (!chunk)
                return -ENOMEM;
        off_t end = st.st_size;
        bool dropped = false;
        int r = 0;
        a->last_seq = 0;
        memcpy(a->last_hash, ZERO_HASH, sizeof(a->last_hash));
        while (end > 0) {
                char last;
                off_t nl, start;
                r = pread_full(a->fd, &last, 1, end - 1);
                if (r < 0)
                        goto out;
                r = rfind_newline(a->fd, last == '\n' ? end - 1 : end, chunk, &nl);
                if (r < 0)
                        goto out;
                start = nl + 1;
                if (last == '\n' && end - 1 - start < EG_AUDIT_LINE_MAX) {
                        size_t len = (size_t)(end - 1 - start);
                        r = pread_full(a->fd, chunk, len, start);
                        if (r < 0)
                                goto out;
                        struct eg_audit_record rec;
                        struct eg_error e = {0};
                        r = audit_parse_line(chunk, len, &rec, &e);
                        eg_error_done(&e);
                        if (r == -ENOMEM)
                                goto out;
                        if (r == 0) {
                                a->last_seq = rec.seq;
                                memcpy(a->last_hash, rec.hash, sizeof(a->last_hash));
                                eg_audit_record_done(&rec);
                                break;
                        }
                }
                if (dropped) {
                        r = -EBADMSG;
                        goto out;
                }
                dropped = true;
                end = start;
        }
        r = 0;
        if (end < st.st_size) {
                if (ftruncate(a->fd, end) < 0 || fdatasync(a->fd) < 0) {
                        r = -errno;
                        goto out;
                }
                if (ret_warning)
                        *ret_warning = eg_strdup_printf(
                                "audit log %s: dropped a torn last record of %jd bytes at offset %jd", path,
                                (intmax_t)(st.st_size - end), (intmax_t)end);
        }
        a->size = end;
out:
        free(chunk);
        return r;
}

int eg_audit_open(const char *path, struct eg_audit **ret, char **ret_warning) {
        const char *slash = strrchr(path, '/');
        if (slash && slash != path) {
                _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
                if (!dir)
                        return -ENOMEM;
                int r = eg_mkdir_p(dir, 0750);
                if (r < 0)
                        return r;
        }
        /* read-write, not write-only: the tail is read through the same locked descriptor */
        int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                close(fd);
                return r;
        }
        struct eg_audit *a = calloc(1, sizeof(*a));
        if (!a) {
                close(fd);
                return -ENOMEM;
        }
        a->fd = fd;
        pthread_mutex_init(&a->lock, NULL);
        char *warning = NULL;
        int r = read_tail(a, path, &warning);
        if (r < 0) {
                eg_audit_close(a);
                return r;
        }
        if (ret_warning)
                *ret_warning = warning;
        else
                free(warning);
        *ret = a;
        return 0;
}

void eg_audit_close(struct eg_audit *a) {
        if (!a)
                return;
        close(a->fd);
        pthread_mutex_destroy(&a->lock);
        free(a);
}

static int append_locked(struct eg_audit *a, const struct eg_audit_record *r, struct eg_audit_stamp *ret) {
        int64_t time_ms = r->time_ms ? r->time_ms : eg_now_realtime_ms();
        uint64_t seq = a->last_seq + 1;
        _cleanup_free_ char *line = NULL;
        int k = format_line(r, time_ms, seq, a->last_hash, &line);
        if (k < 0)
                return k;
        size_t len = strlen(line);
        char hash[65];
        eg_sha256_hex(line, len, hash);
        char *with_nl = realloc(line, len + 2);
        if (!with_nl)
                return -ENOMEM;
        line = with_nl;
        line[len] = '\n';
        line[len + 1] = 0;
        k = eg_write_all(a->fd, line, len + 1);
        if (k == 0 && fdatasync(a->fd) < 0)
                k = -errno;
        if (k < 0) {
                /* a half-written line would break the chain for every later record */
                if (ftruncate(a->fd, a->size) == 0)
                        fdatasync(a->fd);
                return k;
        }
        a->size += (off_t)len + 1;
        a->last_seq = seq;
        memcpy(a->last_hash, hash, sizeof(a->last_hash));
        if (ret) {
                ret->seq = seq;
                ret->time_ms = time_ms;
                memcpy(ret->hash, hash, sizeof(ret->hash));
        }
        return 0;
}

int eg_audit_append_full(struct eg_audit *a, const struct eg_audit_record *r, struct eg_audit_stamp *ret) {
        pthread_mutex_lock(&a->lock);
        int k = append_locked(a, r, ret);
        pthread_mutex_unlock(&a->lock);
        return k;
}

int eg_audit_append(struct eg_audit *a, const struct eg_audit_record *r) { return eg_audit_append_full(a, r, NULL); }
