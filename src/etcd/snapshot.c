/* Snapshot stream decoding: the core that holds back and checks etcd's trailing sha256, and
 * the gateway's newline-separated JSON messages with base64 blobs that feed it. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <string.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "internal.h"

/* ---- the core both wire formats feed ---- */

int etcd_snapshot_core_init(struct etcd_snapshot_core *k, eg_etcd_snapshot_sink sink, void *userdata) {
        *k = (struct etcd_snapshot_core){.sink = sink, .userdata = userdata};
        return eg_sha256_new(&k->sha);
}

void etcd_snapshot_core_done(struct etcd_snapshot_core *k) {
        eg_sha256_free(k->sha);
        k->sha = NULL;
}

static int core_emit(struct etcd_snapshot_core *k, const unsigned char *p, size_t n, struct eg_error *err) {
        eg_sha256_update(k->sha, p, n);
        k->size += n;
        int r = k->sink ? k->sink(p, n, k->userdata) : 0;
        if (r < 0)
                eg_error_set(err, "snapshot sink failed: %s", strerror(-r));
        return r < 0 ? r : 0;
}

/* Passes on everything but the newest SHA256_LEN bytes. */
int etcd_snapshot_core_blob(struct etcd_snapshot_core *k, const unsigned char *p, size_t n, uint64_t remaining,
                            struct eg_error *err) {
        k->remaining = remaining;
        k->seen = true;
        size_t total = k->tail_len + n;
        if (total <= SHA256_LEN) {
                if (n > 0)
                        memcpy(k->tail + k->tail_len, p, n);
                k->tail_len = total;
                return 0;
        }
        size_t out = total - SHA256_LEN;
        size_t from_tail = out < k->tail_len ? out : k->tail_len;
        int r;
        if (from_tail > 0 && (r = core_emit(k, k->tail, from_tail, err)) < 0)
                return r;
        if (out > from_tail && (r = core_emit(k, p, out - from_tail, err)) < 0)
                return r;
        size_t kept = k->tail_len - from_tail;
        memmove(k->tail, k->tail + from_tail, kept);
        memcpy(k->tail + kept, p + (out - from_tail), SHA256_LEN - kept);
        k->tail_len = SHA256_LEN;
        return 0;
}

int etcd_snapshot_core_finish(struct etcd_snapshot_core *k, char ret_sha256[static 65], uint64_t *ret_size,
                              struct eg_error *err) {
        if (!k->seen || k->tail_len < SHA256_LEN) {
                eg_error_set(err, "snapshot stream too short (%" PRIu64 " bytes)", k->size + k->tail_len);
                return -EBADMSG;
        }
        if (k->remaining > 0) {
                eg_error_set(err, "snapshot stream truncated: %" PRIu64 " bytes missing", k->remaining);
                return -EBADMSG;
        }
        if (!k->sha)
                return -EINVAL;
        unsigned char digest[SHA256_LEN];
        eg_sha256_final_raw(k->sha, digest);
        k->sha = NULL;
        if (memcmp(digest, k->tail, SHA256_LEN) != 0) {
                eg_error_set(err, "snapshot sha256 mismatch: stream truncated or corrupt");
                return -EBADMSG;
        }
        for (int i = 0; i < SHA256_LEN; i++)
                snprintf(ret_sha256 + 2 * i, 3, "%02x", digest[i]);
        if (ret_size)
                *ret_size = k->size;
        return 0;
}

/* ---- the gateway's JSON stream ---- */

struct eg_etcd_snapshot_decoder {
        struct etcd_snapshot_core core;
        struct eg_buf line; /* the message being received, up to its newline */
        unsigned char *bin; /* scratch for one decoded blob */
        size_t bin_alloc;
        int failed; /* sticky: after an error every call returns it */
};

int eg_etcd_snapshot_decoder_new(eg_etcd_snapshot_sink sink, void *userdata, struct eg_etcd_snapshot_decoder **ret) {
        struct eg_etcd_snapshot_decoder *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        eg_buf_init(&d->line, SNAPSHOT_LINE_MAX);
        int r = etcd_snapshot_core_init(&d->core, sink, userdata);
        if (r < 0) {
                eg_etcd_snapshot_decoder_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

void eg_etcd_snapshot_decoder_free(struct eg_etcd_snapshot_decoder *d) {
        if (!d)
                return;
        eg_buf_done(&d->line);
        free(d->bin);
        etcd_snapshot_core_done(&d->core);
        free(d);
}

static bool span_has(const char *s, size_t len, const char *needle) {
        return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* The gateway's data messages are {"result":{"header":{...},"remainingBytes":"N",
 * "blob":"<base64>"}}. Building a jansson tree of each took most of a backup's CPU, so
 * the two fields are picked out directly; anything else (an error, escapes, another
 * shape) returns false and takes the full parse. */
static bool decoder_fast_fields(const char *s, size_t len, const char **ret_blob, size_t *ret_blen,
                                uint64_t *ret_remaining) {
        /* etcd 3.4's gateway writes remaining_bytes; newer ones remainingBytes */
        static const char blob_key[] = "\"blob\":\"",
                          rem_key[] = "\"remaining_bytes\":", rem_key2[] = "\"remainingBytes\":";
        if (len < 2 || s[0] != '{' || !span_has(s, len < 16 ? len : 16, "\"result\""))
                return false;
        const char *b = memmem(s, len, blob_key, sizeof(blob_key) - 1);
        if (!b)
                return false;
        const char *bs = b + sizeof(blob_key) - 1;
        const char *be = memchr(bs, '"', len - (size_t)(bs - s));
        if (!be || memchr(bs, '\\', (size_t)(be - bs)))
                return false;
        size_t head = (size_t)(b - s), tail = len - (size_t)(be - s);
        if (span_has(s, head, "\"error\"") || span_has(be, tail, "\"error\"") || span_has(be, tail, "\"blob\""))
                return false;
        size_t klen = sizeof(rem_key) - 1;
        const char *in = memmem(s, head, rem_key, klen);
        if (!in)
                in = memmem(be, tail, rem_key, klen);
        if (!in) {
                klen = sizeof(rem_key2) - 1;
                in = memmem(s, head, rem_key2, klen);
                if (!in)
                        in = memmem(be, tail, rem_key2, klen);
        }
        if (!in)
                return false;
        in += klen;
        if (*in == '"')
                in++;
        uint64_t v = 0;
        const char *end = s + len;
        if (in >= end || *in < '0' || *in > '9')
                return false;
        for (; in < end && *in >= '0' && *in <= '9'; in++) {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*in - '0');
        }
        *ret_blob = bs;
        *ret_blen = (size_t)(be - bs);
        *ret_remaining = v;
        return true;
}

static int decoder_blob(struct eg_etcd_snapshot_decoder *d, const char *b64, size_t blen, uint64_t remaining,
                        struct eg_error *err) {
        if (blen / 4 * 3 > d->bin_alloc) {
                unsigned char *p = realloc(d->bin, blen / 4 * 3);
                if (!p)
                        return -ENOMEM;
                d->bin = p;
                d->bin_alloc = blen / 4 * 3;
        }
        size_t n = 0;
        if (blen > 0 && eg_base64_decode_strict(b64, blen, d->bin, &n) < 0) {
                eg_error_set(err, "invalid snapshot stream message: bad base64 blob");
                return -EBADMSG;
        }
        return etcd_snapshot_core_blob(&d->core, d->bin, n, remaining, err);
}

static int decoder_message(struct eg_etcd_snapshot_decoder *d, const char *s, size_t len, struct eg_error *err) {
        const char *fb;
        size_t fblen;
        uint64_t frem;
        if (decoder_fast_fields(s, len, &fb, &fblen, &frem))
                return decoder_blob(d, fb, fblen, frem, err);
        json_error_t jerr;
        json_t *o = json_loadb(s, len, 0, &jerr);
        int r = 0;
        if (!json_is_object(o)) {
                eg_error_set(err, "invalid snapshot stream message: %s", o ? "not an object" : jerr.text);
                r = -EBADMSG;
                goto out;
        }
        json_t *e = json_object_get(o, "error");
        if (e) {
                const char *msg = json_string_value(e);
                if (!msg)
                        msg = json_string_value(json_object_get(e, "message"));
                eg_error_set(err, "snapshot failed: %s", msg ? msg : "unknown error");
                r = -EIO;
                goto out;
        }
        json_t *res = json_object_get(o, "result");
        json_t *blob = json_object_get(res, "blob");
        uint64_t remaining = 0;
        if (!json_is_object(res) || (blob && !json_is_string(blob)) ||
            etcd_json_get_u64(res, json_object_get(res, "remaining_bytes") ? "remaining_bytes" : "remainingBytes",
                              &remaining) < 0) {
                eg_error_set(err, "invalid snapshot stream message: no result");
                r = -EBADMSG;
                goto out;
        }
        r = decoder_blob(d, blob ? json_string_value(blob) : "", blob ? json_string_length(blob) : 0, remaining, err);
out:
        json_decref(o);
        return r;
}

static int decoder_flush_line(struct eg_etcd_snapshot_decoder *d, struct eg_error *err) {
        bool blank = true;
        for (size_t i = 0; i < d->line.len && blank; i++)
                blank = isspace((unsigned char)d->line.data[i]);
        int r = blank ? 0 : decoder_message(d, d->line.data, d->line.len, err);
        eg_buf_reset(&d->line);
        return r;
}

int eg_etcd_snapshot_decoder_feed(struct eg_etcd_snapshot_decoder *d, const void *data, size_t len,
                                  struct eg_error *err) {
        if (d->failed)
                return d->failed;
        const char *p = data;
        int r = 0;
        while (len > 0) {
                const char *nl = memchr(p, '\n', len);
                size_t n = nl ? (size_t)(nl - p) : len;
                r = eg_buf_append(&d->line, p, n);
                if (r == -E2BIG) {
                        eg_error_set(err, "snapshot stream message longer than %zu bytes", d->line.max);
                        r = -EBADMSG;
                }
                if (r < 0 || !nl)
                        break;
                r = decoder_flush_line(d, err);
                if (r < 0)
                        break;
                p += n + 1;
                len -= n + 1;
        }
        if (r < 0)
                d->failed = r;
        return r;
}

int eg_etcd_snapshot_decoder_finish(struct eg_etcd_snapshot_decoder *d, char ret_sha256[static 65], uint64_t *ret_size,
                                    struct eg_error *err) {
        if (d->failed)
                return d->failed;
        int r = decoder_flush_line(d, err);
        if (r >= 0)
                r = etcd_snapshot_core_finish(&d->core, ret_sha256, ret_size, err);
        if (r < 0)
                d->failed = r;
        return r;
}
