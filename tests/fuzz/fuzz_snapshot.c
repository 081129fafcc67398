/* libFuzzer target: snapshot streams (the gateway's JSON lines, or etcd's gRPC frames with
 * their header and trailer lines) fed whole and in random chunks, which must decode alike.
 *
 * Input: a mode byte (bit 0: gRPC; bit 1: the sink fails past SINK_FAIL_AFTER bytes), four
 * bytes seeding the chunk sizes, then for gRPC a big-endian 16-bit length and that many
 * bytes of header and trailer lines ("name: value\r\n"), then the body. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"
#include "../../src/etcd/internal.h"

#define SINK_FAIL_AFTER 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
        struct eg_sha256 *sha;
        uint64_t size;
        bool fail;
};

static int sink_fn(const void *p, size_t n, void *userdata) {
        struct sink *s = userdata;
        if (n == 0)
                abort(); /* the decoders never pass empty chunks on */
        if (s->fail && s->size + n > SINK_FAIL_AFTER)
                return -ENOSPC;
        eg_sha256_update(s->sha, p, n);
        s->size += n;
        return 0;
}

/* What one decoding came to. */
struct outcome {
        int r;
        char sha[65];      /* the decoder's, on success */
        uint64_t size;     /* the decoder's, on success */
        char sink_sha[65]; /* of what reached the sink */
        uint64_t sink_size;
};

struct input {
        bool grpc, sink_fails;
        uint32_t seed;
        const char *lines;
        size_t lines_len;
        const uint8_t *body;
        size_t body_len;
};

static uint32_t next_rand(uint32_t *x) {
        /* xorshift32; never seeded with 0 */
        *x ^= *x << 13;
        *x ^= *x >> 17;
        *x ^= *x << 5;
        return *x;
}

/* The next chunk's length: whole when seed is 0, else mostly small, sometimes large. */
static size_t chunk_len(uint32_t *x, size_t left) {
        if (*x == 0)
                return left;
        uint32_t v = next_rand(x);
        size_t n = v % 8 == 0 ? v % 65536 : v % 64;
        return n < left ? n : left;
}

static void feed_lines(struct etcd_grpc_snapshot *d, const char *s, size_t len) {
        while (len > 0) {
                const char *nl = memchr(s, '\n', len);
                size_t n = nl ? (size_t)(nl - s) + 1 : len;
                if (etcd_grpc_snapshot_header(d, s, n) < 0)
                        abort(); /* -ENOMEM only */
                s += n;
                len -= n;
        }
}

static void decode(const struct input *in, uint32_t seed, struct outcome *ret) {
        struct sink s = {.fail = in->sink_fails};
        struct eg_error err = {0};
        struct eg_etcd_snapshot_decoder *gw = NULL;
        struct etcd_grpc_snapshot *grpc = NULL;
        uint32_t x = seed;
        int r = 0;
        *ret = (struct outcome){0};
        if (eg_sha256_new(&s.sha) < 0)
                abort();
        if (in->grpc ? etcd_grpc_snapshot_new(sink_fn, &s, &grpc) < 0
                     : eg_etcd_snapshot_decoder_new(sink_fn, &s, &gw) < 0)
                abort();
        for (size_t off = 0; off < in->body_len && r >= 0;) {
                size_t n = chunk_len(&x, in->body_len - off);
                r = grpc ? etcd_grpc_snapshot_feed(grpc, in->body + off, n, &err)
                         : eg_etcd_snapshot_decoder_feed(gw, in->body + off, n, &err);
                if (r > 0)
                        abort();
                off += n;
        }
        if (grpc)
                feed_lines(grpc, in->lines, in->lines_len);
        if (r >= 0) {
                r = grpc ? etcd_grpc_snapshot_finish(grpc, ret->sha, &ret->size, &err)
                         : eg_etcd_snapshot_decoder_finish(gw, ret->sha, &ret->size, &err);
                if (r > 0)
                        abort();
        }
        if ((r < 0 && !err.message) || r == -ENOMEM)
                abort(); /* every failure says why, and inputs this small never exhaust memory */
        /* an error is sticky: one more feed and finish say the same */
        if (r < 0) {
                char sha[65];
                int again = grpc ? etcd_grpc_snapshot_feed(grpc, "x", 1, &err)
                                 : eg_etcd_snapshot_decoder_feed(gw, "x", 1, &err);
                if (again != r)
                        abort();
                again = grpc ? etcd_grpc_snapshot_finish(grpc, sha, NULL, &err)
                             : eg_etcd_snapshot_decoder_finish(gw, sha, NULL, &err);
                if (again != r)
                        abort();
        }
        ret->r = r;
        ret->sink_size = s.size;
        eg_sha256_final_hex(s.sha, ret->sink_sha);
        eg_error_done(&err);
        eg_etcd_snapshot_decoder_free(gw);
        etcd_grpc_snapshot_free(grpc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 5)
                return 0;
        struct input in = {.grpc = data[0] & 1, .sink_fails = data[0] & 2};
        memcpy(&in.seed, data + 1, sizeof(in.seed));
        data += 5;
        size -= 5;
        if (in.grpc) {
                if (size < 2)
                        return 0;
                size_t n = (size_t)data[0] << 8 | data[1];
                if (n > size - 2)
                        n = size - 2;
                in.lines = (const char *)data + 2;
                in.lines_len = n;
                data += 2 + n;
                size -= 2 + n;
        }
        in.body = data;
        in.body_len = size;

        struct outcome whole, chunked;
        decode(&in, 0, &whole);
        decode(&in, in.seed ? in.seed : 1, &chunked);
        if (whole.r != chunked.r || whole.sink_size != chunked.sink_size ||
            strcmp(whole.sink_sha, chunked.sink_sha) != 0)
                abort();
        if (whole.r == 0) {
                /* the decoder's sha256 and size are those of what the sink got */
                if (whole.size != whole.sink_size || strcmp(whole.sha, whole.sink_sha) != 0 ||
                    chunked.size != whole.size || strcmp(chunked.sha, whole.sha) != 0)
                        abort();
        }
        return 0;
}
