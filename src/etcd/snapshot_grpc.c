/* The gRPC reply of etcdserverpb.Maintenance/Snapshot: frames, a bounded protobuf reader, grpc-status. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "internal.h"

#define GRPC_FRAME_HEADER 5
/* grpc-message is for people; a longer one is cut rather than kept whole */
#define GRPC_MESSAGE_MAX 1024
/* groups are obsolete and nothing etcd sends has them; nesting is bounded all the same */
#define PB_GROUP_DEPTH_MAX 16

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_SGROUP = 3, PB_EGROUP = 4, PB_I32 = 5 };
enum { FIELD_REMAINING_BYTES = 2, FIELD_BLOB = 3 };

struct etcd_grpc_snapshot {
        struct etcd_snapshot_core core;
        unsigned char hdr[GRPC_FRAME_HEADER]; /* of the frame being received */
        size_t hdr_len;
        size_t msg_len;    /* of that frame, once hdr_len is complete */
        struct eg_buf msg; /* its message, when it arrives in pieces */
        bool content_grpc; /* content-type: application/grpc[+proto] */
        bool has_status;
        long status;   /* grpc-status; -1 when not a number */
        char *message; /* grpc-message, percent-decoded */
        int failed;    /* sticky: after an error every call returns it */
};

int etcd_grpc_snapshot_new(eg_etcd_snapshot_sink sink, void *userdata, struct etcd_grpc_snapshot **ret) {
        struct etcd_grpc_snapshot *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        eg_buf_init(&d->msg, GRPC_FRAME_MAX);
        int r = etcd_snapshot_core_init(&d->core, sink, userdata);
        if (r < 0) {
                etcd_grpc_snapshot_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

void etcd_grpc_snapshot_free(struct etcd_grpc_snapshot *d) {
        if (!d)
                return;
        etcd_snapshot_core_done(&d->core);
        eg_buf_done(&d->msg);
        free(d->message);
        free(d);
}

/* ---- protobuf wire format, only as much as SnapshotResponse needs ---- */

/* At most 10 bytes, and the 10th may only carry the 64th bit. */
static int pb_varint(const unsigned char **p, const unsigned char *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EBADMSG;
                unsigned char b = *(*p)++;
                if (shift == 63 && b > 1)
                        return -EBADMSG;
                v |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

static int pb_tag(const unsigned char **p, const unsigned char *end, uint32_t *ret_field, unsigned *ret_type) {
        uint64_t tag;
        if (pb_varint(p, end, &tag) < 0 || tag > UINT32_MAX || (tag >> 3) == 0)
                return -EBADMSG;
        *ret_field = (uint32_t)(tag >> 3);
        *ret_type = (unsigned)(tag & 7);
        return 0;
}

static int pb_advance(const unsigned char **p, const unsigned char *end, uint64_t n) {
        if (n > (uint64_t)(end - *p))
                return -EBADMSG;
        *p += n;
        return 0;
}

/* Skips the value of a field of the given wire type; a group up to its matching end. */
static int pb_skip(const unsigned char **p, const unsigned char *end, uint32_t field, unsigned type, unsigned depth) {
        uint64_t v;
        switch (type) {
        case PB_VARINT:
                return pb_varint(p, end, &v);
        case PB_I64:
                return pb_advance(p, end, 8);
        case PB_I32:
                return pb_advance(p, end, 4);
        case PB_LEN:
                if (pb_varint(p, end, &v) < 0)
                        return -EBADMSG;
                return pb_advance(p, end, v);
        case PB_SGROUP:
                if (depth >= PB_GROUP_DEPTH_MAX)
                        return -EBADMSG;
                for (;;) {
                        uint32_t f;
                        unsigned t;
                        if (pb_tag(p, end, &f, &t) < 0)
                                return -EBADMSG;
                        if (t == PB_EGROUP)
                                return f == field ? 0 : -EBADMSG;
                        if (pb_skip(p, end, f, t, depth + 1) < 0)
                                return -EBADMSG;
                }
        default:
                /* an end-group without its start, or wire types 6 and 7 */
                return -EBADMSG;
        }
}

/* One SnapshotResponse. Fields may come in any order and repeat (the last one counts, as
 * protobuf has it); the header (field 1) and unknown fields are skipped. */
static int grpc_message(struct etcd_grpc_snapshot *d, const unsigned char *p, size_t n, struct eg_error *err) {
        const unsigned char *end = p + n, *blob = NULL;
        uint64_t blob_len = 0, remaining = 0;
        while (p < end) {
                uint32_t field;
                unsigned type;
                int r = pb_tag(&p, end, &field, &type);
                if (r >= 0 && field == FIELD_REMAINING_BYTES)
                        r = type == PB_VARINT ? pb_varint(&p, end, &remaining) : -EBADMSG;
                else if (r >= 0 && field == FIELD_BLOB) {
                        if (type != PB_LEN || pb_varint(&p, end, &blob_len) < 0)
                                r = -EBADMSG;
                        else {
                                blob = p;
                                r = pb_advance(&p, end, blob_len);
                        }
                } else if (r >= 0)
                        r = pb_skip(&p, end, field, type, 0);
                if (r < 0) {
                        eg_error_set_http(err, NULL, 0,
                                          "invalid snapshot gRPC message: malformed protobuf at byte %zu of %zu",
                                          n - (size_t)(end - p), n);
                        return -EBADMSG;
                }
        }
        return etcd_snapshot_core_blob(&d->core, blob, (size_t)blob_len, remaining, err);
}

/* ---- frames ---- */

static int frame_header(struct etcd_grpc_snapshot *d, struct eg_error *err) {
        const unsigned char *h = d->hdr;
        if (h[0] != 0) {
                eg_error_set(err, "invalid snapshot gRPC frame: %s",
                             h[0] == 1 ? "compressed, though no compression was offered" : "bad flags");
                return -EBADMSG;
        }
        uint32_t len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
        if (len > GRPC_FRAME_MAX) {
                eg_error_set(err, "snapshot gRPC message of %" PRIu32 " bytes, more than %zu", len, GRPC_FRAME_MAX);
                return -EBADMSG;
        }
        d->msg_len = len;
        eg_buf_reset(&d->msg);
        return 0;
}

int etcd_grpc_snapshot_feed(struct etcd_grpc_snapshot *d, const void *data, size_t len, struct eg_error *err) {
        if (d->failed)
                return d->failed;
        const unsigned char *p = data;
        int r = 0;
        while (len > 0 && r >= 0) {
                if (d->hdr_len < GRPC_FRAME_HEADER) {
                        size_t k = GRPC_FRAME_HEADER - d->hdr_len;
                        if (k > len)
                                k = len;
                        memcpy(d->hdr + d->hdr_len, p, k);
                        d->hdr_len += k;
                        p += k;
                        len -= k;
                        if (d->hdr_len < GRPC_FRAME_HEADER || (r = frame_header(d, err)) < 0)
                                continue;
                }
                if (d->msg.len == 0 && len >= d->msg_len) {
                        /* the whole message is here: no copy */
                        r = grpc_message(d, p, d->msg_len, err);
                        p += d->msg_len;
                        len -= d->msg_len;
                        d->hdr_len = 0;
                        continue;
                }
                size_t k = d->msg_len - d->msg.len;
                if (k > len)
                        k = len;
                r = eg_buf_append(&d->msg, p, k);
                p += k;
                len -= k;
                if (r >= 0 && d->msg.len == d->msg_len) {
                        r = grpc_message(d, (const unsigned char *)d->msg.data, d->msg.len, err);
                        d->hdr_len = 0;
                        eg_buf_reset(&d->msg);
                }
        }
        if (r < 0)
                d->failed = r;
        return r;
}

/* ---- status in headers and trailers ---- */

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* gRPC percent-encodes the message; a stray '%' is kept as it is. */
static char *percent_decode(const char *s, size_t n) {
        if (n > GRPC_MESSAGE_MAX)
                n = GRPC_MESSAGE_MAX;
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
                        *o++ = (char)(hi << 4 | lo);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return out;
}

static bool name_is(const char *name, size_t len, const char *want) {
        return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

int etcd_grpc_snapshot_header(struct etcd_grpc_snapshot *d, const char *line, size_t len) {
        while (len > 0 &&
               (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
                len--;
        const char *colon = memchr(line, ':', len);
        if (!colon)
                return 0;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *end = line + len;
        while (v < end && (*v == ' ' || *v == '\t'))
                v++;
        size_t vlen = (size_t)(end - v);
        if (name_is(line, nlen, "content-type")) {
                static const char grpc[] = "application/grpc";
                size_t k = sizeof(grpc) - 1;
                d->content_grpc = vlen >= k && strncasecmp(v, grpc, k) == 0 &&
                                  (vlen == k || v[k] == '+' || v[k] == ';');
        } else if (name_is(line, nlen, "grpc-status")) {
                long s = vlen > 0 && vlen <= 9 ? 0 : -1;
                for (size_t i = 0; i < vlen && s >= 0; i++)
                        s = v[i] >= '0' && v[i] <= '9' ? s * 10 + (v[i] - '0') : -1;
                d->has_status = true;
                d->status = s;
        } else if (name_is(line, nlen, "grpc-message")) {
                char *m = percent_decode(v, vlen);
                if (!m)
                        return -ENOMEM;
                free(d->message);
                d->message = m;
        }
        return 0;
}

bool etcd_grpc_snapshot_is_grpc(const struct etcd_grpc_snapshot *d) { return d->content_grpc || d->has_status; }

int etcd_grpc_snapshot_finish(struct etcd_grpc_snapshot *d, char ret_sha256[static 65], uint64_t *ret_size,
                              struct eg_error *err) {
        if (d->failed)
                return d->failed;
        int r;
        if (d->has_status && d->status != 0) {
                if (d->message && *d->message)
                        eg_error_set(err, "snapshot failed: %s", d->message);
                else if (d->status > 0)
                        eg_error_set(err, "snapshot failed: grpc-status %ld", d->status);
                else
                        eg_error_set(err, "snapshot failed: unreadable grpc-status");
                r = -EIO;
        } else if (d->hdr_len > 0) {
                eg_error_set(err, "snapshot stream truncated inside a gRPC frame");
                r = -EBADMSG;
        } else if (!d->has_status) {
                eg_error_set(err, "snapshot stream truncated: no grpc-status at its end");
                r = -EBADMSG;
        } else
                r = etcd_snapshot_core_finish(&d->core, ret_sha256, ret_size, err);
        d->failed = r < 0 ? r : -EALREADY;
        return r;
}
