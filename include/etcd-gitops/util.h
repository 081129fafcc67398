/* util: logging, bounded buffers, time, files and hashing shared by every module. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* ---- cleanup helpers (systemd style) ---- */

static inline void eg_freep(void *p) { free(*(void **)p); }
#define _cleanup_free_ __attribute__((cleanup(eg_freep)))
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _tp = (p); \
                (p) = NULL;              \
                _tp;                     \
        })
#define EG_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging: the only global state besides parsed settings ---- */

enum eg_log_level { EG_LOG_ERROR, EG_LOG_WARNING, EG_LOG_INFO, EG_LOG_DEBUG };

void eg_log_set_level(enum eg_log_level level);
enum eg_log_level eg_log_get_level(void);
/* Parses "error", "warning", "info", "debug"; returns -EINVAL otherwise. */
/* "<N>" (the syslog priority journald reads off a line) when stderr is this service's journal
 * stream, else "": for lines written to stderr other than through eg_log_*. */
const char *eg_log_journal_prefix(enum eg_log_level level);
int eg_log_parse_level(const char *s, enum eg_log_level *ret);
/* Logs to stderr; returns -abs(err) so callers can `return eg_log_errno(...)`.
 * "%m" in fmt expands to strerror(err). */
int eg_log_full(enum eg_log_level level, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define eg_log_error(...) eg_log_full(EG_LOG_ERROR, 0, __VA_ARGS__)
#define eg_log_warning(...) eg_log_full(EG_LOG_WARNING, 0, __VA_ARGS__)
#define eg_log_info(...) eg_log_full(EG_LOG_INFO, 0, __VA_ARGS__)
#define eg_log_debug(...) eg_log_full(EG_LOG_DEBUG, 0, __VA_ARGS__)
#define eg_log_error_errno(err, ...) eg_log_full(EG_LOG_ERROR, (err), __VA_ARGS__)
#define eg_log_warning_errno(err, ...) eg_log_full(EG_LOG_WARNING, (err), __VA_ARGS__)

/* ---- an error for the user, owned by the caller ---- */

/* The one error shape: a message and, where the user needs them, which server said it and
 * where in which file it is. Unset fields are NULL or 0. */
struct eg_error {
        char *message;    /* NULL when no error was set */
        char *endpoint;   /* the server that answered (or did not) */
        long http_status; /* 0: no HTTP reply */
        char *file;
        unsigned line, column; /* 1-based */
};
/* Each setter replaces the whole error, clearing what it does not set; fmt may use the old
 * message. On allocation failure the message is NULL. e may be NULL. */
void eg_error_set(struct eg_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void eg_error_setv(struct eg_error *e, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* endpoint may be NULL, http_status 0. */
void eg_error_set_http(struct eg_error *e, const char *endpoint, long http_status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* file may be NULL (the position is in data without a name), line and column 0. */
void eg_error_set_at(struct eg_error *e, const char *file, unsigned line, unsigned column, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
/* Hands from's error to to (freeing what to held) and leaves from empty; to may be NULL. */
void eg_error_move(struct eg_error *to, struct eg_error *from);
void eg_error_done(struct eg_error *e);

/* How a client proves who it is and checks the server: files, not data. All NULL: plain
 * http. Used by the etcd client and described by the Kubernetes client for its proxy. */
struct eg_tls_client {
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        bool insecure_skip_verify; /* the server's certificate is not checked (a kubeconfig said so) */
        /* "NAME:PORT:HOST:PORT": URLs name NAME, the name the certificate must carry, and
         * connections go to HOST (a kubeconfig's tls-server-name); NULL: none */
        const char *connect_to;
};

/* ---- growable byte buffer with a hard cap (curl's dynbuf) ---- */

struct eg_buf {
        char *data; /* always NUL-terminated when len > 0 or after any append */
        size_t len;
        size_t alloc;
        size_t max; /* appends past this fail with -E2BIG; 0 means EG_BUF_DEFAULT_MAX */
};

#define EG_BUF_DEFAULT_MAX ((size_t)64 << 20)

void eg_buf_init(struct eg_buf *b, size_t max);
void eg_buf_done(struct eg_buf *b);
void eg_buf_reset(struct eg_buf *b);
int eg_buf_append(struct eg_buf *b, const void *data, size_t len);
int eg_buf_puts(struct eg_buf *b, const char *s);
int eg_buf_printf(struct eg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int eg_buf_vprintf(struct eg_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the buffer's string to the caller (never NULL on success: "" when empty). */
char *eg_buf_steal(struct eg_buf *b);

/* ---- strings ---- */

/* Frees the first n strings of v (NULL entries allowed) and v; with EG_STRV_ALL, every string
 * up to the NULL that ends v. Accepts NULL. */
#define EG_STRV_ALL SIZE_MAX
void eg_strv_free(char **v, size_t n);

/* n random bytes (getrandom) as 2n lowercase hex digits; malloc'd, NULL on failure. */
char *eg_random_hex(size_t n);

/* A user as the audit log's actor names a person: "uid 1000 (alice)", "uid 1000" when the
 * user has no name. malloc'd, NULL on failure. */
char *eg_actor_of_uid(unsigned uid);

/* Like asprintf; returns NULL on allocation failure. */
char *eg_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool eg_str_has_prefix(const char *s, const char *prefix);
bool eg_str_has_suffix(const char *s, const char *suffix);
/* Levenshtein distance of a and b (ASCII case aside when ignore_case), counted up to limit
 * (< SIZE_MAX): farther, or either longer than 64 bytes, is limit + 1. For "did you mean". */
size_t eg_edit_distance(const char *a, const char *b, size_t limit, bool ignore_case);
/* Strict decimal parsers: whole string, no sign surprises, range checked. */
int eg_parse_int64(const char *s, int64_t *ret);
int eg_parse_uint64(const char *s, uint64_t *ret);
/* Durations such as "500ms", "15s", "2m", "1h30m", or a bare number of seconds. */
int eg_parse_duration_ms(const char *s, int64_t *ret);

/* ---- time ---- */

int64_t eg_now_monotonic_ms(void);
int64_t eg_now_realtime_ms(void);
int64_t eg_now_realtime_us(void);
/* RFC 3339 UTC with milliseconds, e.g. 2026-11-28T03:00:00.123Z, into buf of >= 32 bytes. */
void eg_format_rfc3339_ms(int64_t realtime_ms, char buf[static 32]);
/* The same with microseconds (a Kubernetes MicroTime), e.g. 2026-11-28T03:00:00.123456Z. */
void eg_format_rfc3339_us(int64_t realtime_us, char buf[static 32]);
/* RFC 3339 (2026-11-28T03:00:01Z; a fraction, kept to the millisecond, and a +hh:mm offset
 * allowed) into Unix ms; -EINVAL for anything else, out-of-range fields included. */
int eg_parse_rfc3339_ms(const char *s, int64_t *ret_ms);

/* ---- files ---- */

/* Reads a whole file, failing with -EFBIG past max bytes. *ret is NUL-terminated. */
int eg_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* All of data, retrying short writes and EINTR; negative errno. */
int eg_write_all(int fd, const void *data, size_t len);
/* Appends what fd gives to out until end of file, for at most timeout_ms: 0 at the end,
 * -ETIMEDOUT, -E2BIG past out's cap, or the negative errno of poll or read. */
int eg_read_fd_timeout(int fd, struct eg_buf *out, int64_t timeout_ms);
/* Writes via a temporary file, fsync and rename, so readers see old or new, never half;
 * the file gets mode as given (the umask does not apply). */
int eg_write_file_atomic(const char *path, const void *data, size_t len, int mode);
int eg_mkdir_p(const char *path, int mode);
/* Removes a directory tree; a missing path is success. */
int eg_rm_rf(const char *path);
char *eg_path_join(const char *a, const char *b);

/* ---- the state directory's layout: every path under it is spelled here ---- */

enum eg_state_area {
        EG_STATE_AUDIT_LOG,       /* audit.jsonl */
        EG_STATE_STATUS,          /* status/NS/NAME.json: a cluster's last pass */
        EG_STATE_BACKUPS,         /* backups/NS/NAME.json: an EtcdBackup's status */
        EG_STATE_RESTORES,        /* restores/NS/NAME.json: an EtcdRestore's status */
        EG_STATE_RESTORE_WORK,    /* restore/NS/NAME: a restore's download, while it runs */
        EG_STATE_SECRETS,         /* secrets/NS/NAME: a secret's keys as files */
        EG_STATE_AWS_CREDENTIALS, /* secrets/NS/NAME/credentials: an AWS shared credentials file */
        EG_STATE_GIT,             /* git: clones of git sources */
        EG_STATE_CLUSTERS,        /* clusters/NS/NAME: the local runtime's members and record */
        EG_STATE_LOCAL_LOCK,      /* runtime-local.lock: one local runtime per state dir */
        EG_STATE_KUBE,            /* kube: the kubernetes runtime's materialised TLS files */
        EG_STATE_KUBE_NAMESPACES, /* kube/namespaces/NS/NAME: the clusters it made, one empty file each */
        EG_STATE_SUSPENDED,       /* suspended/NS/NAME.json: a cluster suspended by hand, and by whom */
};
/* <state_dir>/<area>, then /ns when ns is given, then /name (with the area's suffix) when both
 * are; malloc'd, NULL on allocation failure. */
char *eg_state_path(const char *state_dir, enum eg_state_area area, const char *ns, const char *name);

/* ---- base64 (OpenSSL) ---- */

/* Decodes base64, skipping whitespace (PEM, YAML and JSON fields). *ret is malloc'd and
 * NUL-terminated. -EBADMSG for what is not base64. */
int eg_base64_decode(const char *in, char **ret, size_t *ret_len);
/* Strict standard base64 with padding, as Go's encoding/json writes []byte: -EBADMSG for any
 * character outside the alphabet, whitespace included. out holds len / 4 * 3 bytes; no
 * allocation, for the hot path of a snapshot stream. */
int eg_base64_decode_strict(const char *in, size_t len, void *out, size_t *ret_len);
/* NUL-terminated standard base64 with padding; malloc'd, NULL on allocation failure. */
char *eg_base64_encode(const void *data, size_t len);

/* ---- hashing (OpenSSL) ---- */

/* Lowercase hex sha256 of data into out (65 bytes with NUL). */
void eg_sha256_hex(const void *data, size_t len, char out[static 65]);

struct eg_sha256; /* incremental */
int eg_sha256_new(struct eg_sha256 **ret);
void eg_sha256_update(struct eg_sha256 *h, const void *data, size_t len);
/* Finishes and frees h. */
void eg_sha256_final_hex(struct eg_sha256 *h, char out[static 65]);
void eg_sha256_final_raw(struct eg_sha256 *h, unsigned char out[static 32]);
void eg_sha256_free(struct eg_sha256 *h);

/* ---- cron: 5 fields (minute hour day-of-month month day-of-week), UTC ---- */

struct eg_cron {
        uint64_t minute;
        uint32_t hour;
        uint32_t dom;          /* bits 1..31 */
        uint16_t month;        /* bits 1..12 */
        uint8_t dow;           /* bits 0..6, Sunday 0 (7 is folded into 0) */
        bool dom_any, dow_any; /* '*' : when both are restricted either matching suffices */
};
/* -EINVAL for a bad schedule; *ret_bad_field (may be NULL) is the 0-based field that is
 * wrong, or -1 when the number of fields is. */
int eg_cron_parse_at(const char *expr, struct eg_cron *ret, int *ret_bad_field);
int eg_cron_parse(const char *expr, struct eg_cron *ret);
/* The first matching minute strictly after after_ms; -ERANGE when none in 5 years. */
int eg_cron_next(const struct eg_cron *c, int64_t after_ms, int64_t *ret_ms);

/* ---- processes ---- */

/* Polls cond(userdata) every interval_ms until it returns true or timeout_ms passes.
 * Returns 0 when the condition held, -ETIMEDOUT otherwise. */
int eg_wait_for(bool (*cond)(void *userdata), void *userdata, int64_t timeout_ms, int64_t interval_ms);
