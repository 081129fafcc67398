/* Reading the audit log: streaming its lines, queries and verifying the chain. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ---- streaming lines ---- */

struct line_reader {
        int fd;
        char *chunk;
        size_t pos, len;
        bool eof;
        struct eg_buf line; /* the current line without '\n', capped */
        size_t line_bytes;  /* its real length, also when too long to keep */
};

/* -errno when path cannot be opened; line_reader_done() is due whatever it returns. */
static int line_reader_open(struct line_reader *lr, const char *path) {
        *lr = (struct line_reader){.fd = open(path, O_RDONLY | O_CLOEXEC)};
        eg_buf_init(&lr->line, EG_AUDIT_LINE_MAX - 1);
        if (lr->fd < 0)
                return -errno;
        lr->chunk = malloc(CHUNK_SIZE);
        return lr->chunk ? 0 : -ENOMEM;
}

static void line_reader_done(struct line_reader *lr) {
        free(lr->chunk);
        eg_buf_done(&lr->line);
        if (lr->fd >= 0)
                close(lr->fd);
}

/* Returns 1 with the next line, 0 at the end of the file, or a negative errno.
 * *ret_complete is false for a last line without newline; *ret_too_long is true when the
 * line is longer than a record may be (lr->line then holds only part of it). */
static int line_reader_next(struct line_reader *lr, bool *ret_complete, bool *ret_too_long) {
        eg_buf_reset(&lr->line);
        lr->line_bytes = 0;
        bool any = false, too_long = false;
        for (;;) {
                if (lr->pos == lr->len) {
                        if (lr->eof)
                                break;
                        ssize_t n = read(lr->fd, lr->chunk, CHUNK_SIZE);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (n == 0) {
                                lr->eof = true;
                                break;
                        }
                        lr->pos = 0;
                        lr->len = (size_t)n;
                }
                any = true;
                char *start = lr->chunk + lr->pos;
                char *nl = memchr(start, '\n', lr->len - lr->pos);
                size_t n = nl ? (size_t)(nl - start) : lr->len - lr->pos;
                lr->line_bytes += n;
                if (!too_long) {
                        int r = eg_buf_append(&lr->line, start, n);
                        if (r == -E2BIG)
                                too_long = true;
                        else if (r < 0)
                                return r;
                }
                lr->pos += nl ? n + 1 : n;
                if (nl) {
                        *ret_complete = true;
                        *ret_too_long = too_long;
                        return 1;
                }
        }
        if (!any)
                return 0;
        *ret_complete = false;
        *ret_too_long = too_long;
        return 1;
}

static const char *line_data(const struct line_reader *lr) { return lr->line.data ? lr->line.data : ""; }

/* ---- reading and verifying ---- */

static bool is_hex(const char *s) {
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
                        return false;
        return true;
}

static bool filter_match(const struct eg_audit_filter *f, const struct eg_audit_record *rec) {
        if (!f)
                return true;
        if (rec->seq <= f->since_seq)
                return false;
        if (f->cluster && (!rec->cluster || strcmp(rec->cluster, f->cluster) != 0))
                return false;
        if (f->revision) {
                size_t n = strlen(f->revision);
                bool commit = n >= 4 && is_hex(f->revision) && rec->commit &&
                              strncasecmp(rec->commit, f->revision, n) == 0;
                if (!commit && !(rec->revision && strstr(rec->revision, f->revision)))
                        return false;
        }
        return true;
}

int eg_audit_read_full(const char *path, const struct eg_audit_filter *filter, struct eg_audit_record **ret,
                       size_t *ret_n, size_t *ret_n_skipped) {
        struct line_reader lr;
        struct eg_audit_record *recs = NULL;
        size_t n = 0, alloc = 0, skipped = 0;
        bool complete, too_long;
        int r = line_reader_open(&lr, path);
        /* a last line without newline was torn by a crash: not a record yet */
        while (r >= 0 && (r = line_reader_next(&lr, &complete, &too_long)) > 0 && complete) {
                struct eg_audit_record rec;
                struct eg_error e = {0};
                int k = too_long ? -EINVAL : audit_parse_line(line_data(&lr), lr.line.len, &rec, &e);
                eg_error_done(&e);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        skipped++;
                        continue;
                }
                if (!filter_match(filter, &rec)) {
                        eg_audit_record_done(&rec);
                        continue;
                }
                if (n == alloc) {
                        size_t na = alloc ? alloc * 2 : 64;
                        struct eg_audit_record *p = reallocarray(recs, na, sizeof(*recs));
                        if (!p) {
                                eg_audit_record_done(&rec);
                                r = -ENOMEM;
                                break;
                        }
                        recs = p;
                        alloc = na;
                }
                recs[n++] = rec;
        }
        line_reader_done(&lr);
        if (r < 0) {
                eg_audit_records_free(recs, n);
                return r;
        }
        *ret = recs;
        *ret_n = n;
        if (ret_n_skipped)
                *ret_n_skipped = skipped;
        return 0;
}

int eg_audit_read(const char *path, const struct eg_audit_filter *filter, struct eg_audit_record **ret, size_t *ret_n) {
        return eg_audit_read_full(path, filter, ret, ret_n, NULL);
}

/* Checks one line against the chain so far. Returns 0 and copies the line's hash to hash when
 * it continues the chain, 1 with err set at the line to blame when it breaks it. */
static int verify_line(const struct line_reader *lr, bool too_long, uint64_t lineno, uint64_t expect_seq,
                       char hash[static 65], struct eg_error *err) {
        if (too_long) {
                eg_error_set_at(err, NULL, lineno, 0, "longer than %d bytes", EG_AUDIT_LINE_MAX);
                return 1;
        }
        struct eg_audit_record rec;
        struct eg_error e = {0};
        int r = audit_parse_line(line_data(lr), lr->line.len, &rec, &e);
        if (r < 0) {
                if (r != -ENOMEM)
                        eg_error_set_at(err, NULL, lineno, 0, "%s", e.message ? e.message : "not a record");
                eg_error_done(&e);
                return r == -ENOMEM ? r : 1;
        }
        r = 1;
        if (rec.seq != expect_seq)
                eg_error_set_at(err, NULL, lineno, 0,
                                "seq is %" PRIu64 ", expected %" PRIu64 " (record removed, reordered or duplicated?)",
                                rec.seq, expect_seq);
        else if (strcmp(rec.prev, hash) != 0 && lineno == 1)
                eg_error_set_at(err, NULL, 1, 0, "prev is not 64 zeros (records removed from the start?)");
        else if (strcmp(rec.prev, hash) != 0)
                /* the line before still parsed, so it is the one most likely edited: blamed,
                 * the chain holds up to the line before it */
                eg_error_set_at(err, NULL, lineno - 1, 0,
                                "its hash is not what line %" PRIu64 " records as prev (record edited?)", lineno);
        else {
                memcpy(hash, rec.hash, 65);
                r = 0;
        }
        eg_audit_record_done(&rec);
        return r;
}

int eg_audit_verify_full(const char *path, uint64_t *ret_n_records, struct eg_error *err, char **ret_warning) {
        struct line_reader lr;
        char prev_hash[65] = ZERO_HASH;
        uint64_t lineno = 0, n_records = 0;
        struct eg_error broken = {0};
        char *warning = NULL;
        bool complete, too_long;
        int r = line_reader_open(&lr, path);
        while (r >= 0 && (r = line_reader_next(&lr, &complete, &too_long)) > 0) {
                lineno++;
                if (!complete) {
                        warning = eg_strdup_printf("line %" PRIu64 ": torn last record of %zu bytes without a newline "
                                                   "(a crash while appending; the next writer drops it)",
                                                   lineno, lr.line_bytes);
                        r = warning ? 0 : -ENOMEM;
                        break;
                }
                r = verify_line(&lr, too_long, lineno, n_records + 1, prev_hash, &broken);
                if (r == 1) {
                        /* the line blamed may be the one before, which was counted as good */
                        n_records -= broken.line < lineno;
                        r = broken.message ? 0 : -ENOMEM;
                        break;
                }
                if (r < 0)
                        break;
                n_records++;
        }
        line_reader_done(&lr);
        if (r >= 0) {
                r = broken.message ? 1 : 0;
                if (ret_n_records)
                        *ret_n_records = n_records;
                if (ret_warning)
                        *ret_warning = TAKE_PTR(warning);
                eg_error_move(err, &broken);
        }
        free(warning);
        eg_error_done(&broken);
        return r;
}

int eg_audit_verify(const char *path, struct eg_error *err, char **ret_warning) {
        return eg_audit_verify_full(path, NULL, err, ret_warning);
}
