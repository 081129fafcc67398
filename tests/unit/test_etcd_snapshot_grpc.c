/* Tests for snapshots over etcd's gRPC API: the frame and protobuf decoder on crafted bytes, real etcd, fallback. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "../../src/etcd/internal.h"
#include "../lib/etcd_proc.h"
#include "etcd-gitops/etcd.h"
#include "etcd-gitops/util.h"

extern char **environ;

#define START_TIMEOUT_MS 30000

/* ---- crafted replies ---- */

struct collected {
        struct eg_buf buf;
        int calls;
        int fail_after; /* sink calls before it fails; -1 never */
};

static int collect_sink(const void *data, size_t len, void *userdata) {
        struct collected *col = userdata;
        col->calls++;
        if (col->fail_after == 0)
                return -ENOSPC;
        if (col->fail_after > 0)
                col->fail_after--;
        return eg_buf_append(&col->buf, data, len);
}

static unsigned char *make_db(size_t n) {
        unsigned char *db = malloc(n);
        assert_non_null(db);
        uint32_t x = 2463534242u;
        for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                db[i] = (unsigned char)x;
        }
        return db;
}

static void put_varint(struct eg_buf *b, uint64_t v) {
        do {
                unsigned char c = (unsigned char)(v & 0x7f);
                v >>= 7;
                if (v)
                        c |= 0x80;
                assert_int_equal(eg_buf_append(b, &c, 1), 0);
        } while (v);
}

static void put_tag(struct eg_buf *b, uint32_t field, unsigned type) { put_varint(b, (uint64_t)field << 3 | type); }

static void put_bytes(struct eg_buf *b, uint32_t field, const void *p, size_t n) {
        put_tag(b, field, 2);
        put_varint(b, n);
        assert_int_equal(eg_buf_append(b, p, n), 0);
}

/* Wraps msg into a gRPC frame appended to out. */
static void put_frame(struct eg_buf *out, const struct eg_buf *msg) {
        unsigned char h[5] = {0, (unsigned char)(msg->len >> 24), (unsigned char)(msg->len >> 16),
                              (unsigned char)(msg->len >> 8), (unsigned char)msg->len};
        assert_int_equal(eg_buf_append(out, h, 5), 0);
        assert_int_equal(eg_buf_append(out, msg->data ? msg->data : "", msg->len), 0);
}

/* The SnapshotResponse etcd would send, or (odd) the same content with a header, unknown
 * fields of every wire type (a group among them) and the blob before remaining_bytes. */
static void put_message(struct eg_buf *out, const unsigned char *blob, size_t n, uint64_t remaining, bool odd) {
        struct eg_buf m, sub;
        eg_buf_init(&m, 0);
        eg_buf_init(&sub, 0);
        if (odd) {
                /* ResponseHeader {cluster_id = 1; member_id = 2; revision = 3; raft_term = 4} */
                put_tag(&sub, 1, 0);
                put_varint(&sub, UINT64_MAX);
                put_tag(&sub, 3, 0);
                put_varint(&sub, 12345);
                put_bytes(&m, 1, sub.data, sub.len);
                put_tag(&m, 7, 1);
                assert_int_equal(eg_buf_append(&m, "8bytes!!", 8), 0);
                put_tag(&m, 8, 5);
                assert_int_equal(eg_buf_append(&m, "4by!", 4), 0);
                put_tag(&m, 9, 3);
                put_tag(&m, 1, 0);
                put_varint(&m, 300);
                put_tag(&m, 2, 3);
                put_bytes(&m, 3, "nested", 6);
                put_tag(&m, 2, 4);
                put_tag(&m, 9, 4);
                put_bytes(&m, 3, "a blob that a later one replaces", 32);
                put_bytes(&m, 3, blob, n);
                put_tag(&m, 100000, 0);
                put_varint(&m, 1);
                put_tag(&m, 2, 0);
                put_varint(&m, remaining + 1000);
                put_tag(&m, 2, 0);
                put_varint(&m, remaining);
        } else {
                if (remaining > 0) {
                        put_tag(&m, 2, 0);
                        put_varint(&m, remaining);
                }
                if (n > 0)
                        put_bytes(&m, 3, blob, n);
        }
        put_frame(out, &m);
        eg_buf_done(&m);
        eg_buf_done(&sub);
}

/* The frames for db + sha256(db) in blobs of the given sizes (the last one repeats).
 * corrupt flips a bit of the hash. */
static void make_reply(struct eg_buf *out, const unsigned char *db, size_t n, const size_t *sizes, size_t n_sizes,
                       bool odd, bool corrupt) {
        unsigned char *all = malloc(n + 32);
        assert_non_null(all);
        memcpy(all, db, n);
        unsigned int hl = 32;
        EVP_Digest(db, n, all + n, &hl, EVP_sha256(), NULL);
        if (corrupt)
                all[n + 5] ^= 0x01;
        eg_buf_init(out, 0);
        for (size_t i = 0, off = 0; off < n + 32; i++) {
                size_t k = sizes[i < n_sizes ? i : n_sizes - 1];
                if (k > n + 32 - off)
                        k = n + 32 - off;
                off += k;
                put_message(out, all + off - k, k, off >= n ? 0 : n - off, odd);
        }
        free(all);
}

static const char status_ok[] = "grpc-status: 0\r\n";

/* Feeds reply cut at the given offsets (0 ends the list), then the header lines. */
static int decode_cuts(const void *reply, size_t len, const size_t *cuts, const char *const *lines,
                       struct collected *col, char sha[static 65], uint64_t *size, struct eg_error *err) {
        struct etcd_grpc_snapshot *d = NULL;
        assert_int_equal(etcd_grpc_snapshot_new(collect_sink, col, &d), 0);
        assert_int_equal(etcd_grpc_snapshot_header(d, "HTTP/2 200\r\n", 12), 0);
        assert_int_equal(etcd_grpc_snapshot_header(d, "content-type: application/grpc\r\n", 32), 0);
        assert_true(etcd_grpc_snapshot_is_grpc(d));
        const char *p = reply;
        size_t off = 0;
        int r = 0;
        for (size_t i = 0; r >= 0 && off < len; i++) {
                size_t to = cuts && cuts[i] ? cuts[i] : len;
                r = etcd_grpc_snapshot_feed(d, p + off, to - off, err);
                off = to;
        }
        for (size_t i = 0; r >= 0 && lines && lines[i]; i++)
                assert_int_equal(etcd_grpc_snapshot_header(d, lines[i], strlen(lines[i])), 0);
        if (r >= 0)
                r = etcd_grpc_snapshot_finish(d, sha, size, err);
        if (r < 0)
                assert_non_null(err->message);
        etcd_grpc_snapshot_free(d);
        return r;
}

static int decode_steps(const void *reply, size_t len, size_t step, const char *const *lines, struct collected *col,
                        char sha[static 65], uint64_t *size, struct eg_error *err) {
        size_t n = (len + step - 1) / step + 1;
        size_t *cuts = calloc(n, sizeof(*cuts));
        assert_non_null(cuts);
        for (size_t i = 0; i + 1 < n; i++)
                cuts[i] = (i + 1) * step < len ? (i + 1) * step : len;
        int r = decode_cuts(reply, len, cuts, lines, col, sha, size, err);
        free(cuts);
        return r;
}

static void expect_db(struct collected *col, const unsigned char *db, size_t n, const char *sha, uint64_t size) {
        char want[65];
        eg_sha256_hex(db, n, want);
        assert_int_equal(size, n);
        assert_int_equal(col->buf.len, n);
        assert_memory_equal(col->buf.data, db, n);
        assert_string_equal(sha, want);
}

static void test_etcd_snapshot_grpc__decoder(void **state) {
        const size_t n = 100000;
        unsigned char *db = make_db(n);
        const size_t etcd[] = {32768};
        /* the hash straddles messages, a message smaller than the hash, an empty blob */
        const size_t odd[] = {10, 5, 0, 40000, 59980, 20, 7};
        const size_t steps[] = {1, 3, 5, 4096, 32773, 1 << 20};
        const char *const lines[] = {status_ok, "grpc-message: \r\n", NULL};

        for (int v = 0; v < 4; v++) {
                struct eg_buf reply;
                make_reply(&reply, db, n, v < 2 ? etcd : odd, v < 2 ? 1 : EG_ELEMENTSOF(odd), v % 2, false);
                for (size_t i = 0; i < EG_ELEMENTSOF(steps); i++) {
                        struct collected col = {.fail_after = -1};
                        eg_buf_init(&col.buf, 0);
                        struct eg_error err = {0};
                        char sha[65] = {0};
                        uint64_t size = 0;
                        assert_int_equal(decode_steps(reply.data, reply.len, steps[i], lines, &col, sha, &size, &err),
                                         0);
                        expect_db(&col, db, n, sha, size);
                        assert_null(err.message);
                        eg_buf_done(&col.buf);
                }
                eg_buf_done(&reply);
        }
        free(db);
}

/* Every split of a reply into two pieces, and into three around each frame header. */
static void test_etcd_snapshot_grpc__every_split(void **state) {
        const size_t n = 1500;
        unsigned char *db = make_db(n);
        const size_t sizes[] = {700, 3, 40};
        const char *const lines[] = {status_ok, NULL};
        for (int v = 0; v < 2; v++) {
                struct eg_buf reply;
                make_reply(&reply, db, n, sizes, EG_ELEMENTSOF(sizes), v == 1, false);
                for (size_t k = 1; k < reply.len; k++) {
                        size_t cuts2[] = {k, 0};
                        size_t cuts3[] = {k / 2, k, 0};
                        const size_t *cuts[] = {cuts2, k / 2 > 0 ? cuts3 : cuts2};
                        for (int c = 0; c < 2; c++) {
                                struct collected col = {.fail_after = -1};
                                eg_buf_init(&col.buf, 0);
                                struct eg_error err = {0};
                                char sha[65] = {0};
                                uint64_t size = 0;
                                assert_int_equal(
                                        decode_cuts(reply.data, reply.len, cuts[c], lines, &col, sha, &size, &err), 0);
                                expect_db(&col, db, n, sha, size);
                                eg_buf_done(&col.buf);
                        }
                }
                eg_buf_done(&reply);
        }
        free(db);
}

/* One frame of raw message bytes, then what the decoder says. */
static int decode_message(const void *msg, size_t len, struct eg_error *err) {
        struct eg_buf m = {0}, reply;
        eg_buf_init(&m, 0);
        eg_buf_init(&reply, 0);
        assert_int_equal(eg_buf_append(&m, msg, len), 0);
        put_frame(&reply, &m);
        struct collected col = {.fail_after = -1};
        eg_buf_init(&col.buf, 0);
        char sha[65] = "unchanged";
        uint64_t size = 7;
        const char *const lines[] = {status_ok, NULL};
        int r = decode_steps(reply.data, reply.len, 1, lines, &col, sha, &size, err);
        if (r < 0) {
                assert_string_equal(sha, "unchanged");
                assert_int_equal(size, 7);
        }
        assert_int_equal(col.calls, 0);
        eg_buf_done(&col.buf);
        eg_buf_done(&m);
        eg_buf_done(&reply);
        return r;
}

static void test_etcd_snapshot_grpc__malformed_protobuf(void **state) {
        static const struct {
                const char *what;
                unsigned char bytes[16];
                size_t len;
        } bad[] = {
                {"11-byte varint", {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12},
                {"varint past 64 bits", {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 11},
                {"varint cut at the end", {0x10, 0x80, 0x80}, 3},
                {"tag cut at the end", {0x80}, 1},
                {"field number 0", {0x00, 0x01}, 2},
                {"tag beyond 32 bits", {0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00}, 7},
                {"blob longer than the message", {0x1a, 0x05, 'a', 'b', 'c', 'd'}, 6},
                {"length longer than the message", {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
                {"blob as a varint", {0x18, 0x05}, 2},
                {"remaining_bytes as bytes", {0x12, 0x01, 0x00}, 3},
                {"fixed64 cut", {0x39, 1, 2, 3, 4, 5, 6, 7}, 8},
                {"fixed32 cut", {0x3d, 1, 2, 3}, 4},
                {"wire type 6", {0x3e, 0x00}, 2},
                {"wire type 7", {0x3f, 0x00}, 2},
                {"end group alone", {0x3c}, 1},
                {"group never ended", {0x3b, 0x08, 0x01}, 3},
                {"group ended by another field", {0x3b, 0x08, 0x01, 0x44}, 4},
        };
        for (size_t i = 0; i < EG_ELEMENTSOF(bad); i++) {
                struct eg_error err = {0};
                int r = decode_message(bad[i].bytes, bad[i].len, &err);
                if (r != -EBADMSG)
                        fail_msg("%s: %d", bad[i].what, r);
                assert_non_null(strstr(err.message, "malformed protobuf"));
                eg_error_done(&err);
        }
        /* groups nested past the bound */
        unsigned char deep[40];
        for (size_t i = 0; i < 20; i++)
                deep[i] = 0x3b, deep[39 - i] = 0x3c;
        struct eg_error err = {0};
        assert_int_equal(decode_message(deep, sizeof(deep), &err), -EBADMSG);
        eg_error_done(&err);
        /* the same nesting, shallow enough, is skipped: then only the (missing) hash fails */
        assert_int_equal(decode_message(deep + 10, 20, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "too short"));
        eg_error_done(&err);
}

static void test_etcd_snapshot_grpc__rejects(void **state) {
        /* two full 32 KiB messages, then one with the hash alone */
        const size_t n = 65536;
        unsigned char *db = make_db(n);
        const size_t etcd[] = {32768};
        const char *const lines[] = {status_ok, NULL};
        struct collected col = {.fail_after = -1};
        eg_buf_init(&col.buf, 0);
        struct eg_error err = {0};
        char sha[65] = "unchanged";
        uint64_t size = 7;
        struct eg_buf reply;

        /* wrong trailing hash: the sink got the db, never the hash */
        make_reply(&reply, db, n, etcd, 1, false, true);
        assert_int_equal(decode_steps(reply.data, reply.len, 1000, lines, &col, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "sha256 mismatch"));
        assert_int_equal(col.buf.len, n);
        assert_string_equal(sha, "unchanged");
        assert_int_equal(size, 7);
        eg_buf_done(&reply);

        make_reply(&reply, db, n, etcd, 1, false, false);
        /* cut inside the last frame, with and without the trailers */
        const char *const none[] = {NULL};
        for (int t = 0; t < 2; t++) {
                eg_buf_reset(&col.buf);
                assert_int_equal(
                        decode_steps(reply.data, reply.len - 3, 1000, t ? lines : none, &col, sha, &size, &err),
                        -EBADMSG);
                assert_non_null(strstr(err.message, "inside a gRPC frame"));
                eg_error_done(&err);
        }
        /* cut inside the second frame's header: the first is 5 + 1+3 + 1+3 + 32768 bytes */
        const size_t second = 5 + 32776;
        assert_int_equal(reply.len, second + 5 + 32772 + 5 + 2 + 32);
        assert_int_equal(decode_steps(reply.data, second + 2, 1000, lines, &col, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "inside a gRPC frame"));
        eg_error_done(&err);
        /* cut at a frame boundary: the hash's message is missing */
        size_t last = reply.len - (5 + 2 + 32);
        assert_int_equal((unsigned char)reply.data[last + 5], 0x1a);
        assert_int_equal(decode_steps(reply.data, last, 1000, lines, &col, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "truncated"));
        eg_error_done(&err);
        /* whole, but no grpc-status: the stream may have been cut */
        assert_int_equal(decode_steps(reply.data, reply.len, 1000, none, &col, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "no grpc-status"));
        eg_error_done(&err);
        /* nothing at all */
        assert_int_equal(decode_steps("", 0, 1, lines, &col, sha, &size, &err), -EBADMSG);
        assert_non_null(strstr(err.message, "too short"));
        eg_error_done(&err);

        /* a failing sink stops the stream, and the error sticks */
        struct collected failing = {.fail_after = 1};
        eg_buf_init(&failing.buf, 0);
        assert_int_equal(decode_steps(reply.data, reply.len, 1000, lines, &failing, sha, &size, &err), -ENOSPC);
        assert_int_equal(failing.calls, 2);
        assert_non_null(strstr(err.message, "sink"));
        eg_error_done(&err);
        eg_buf_done(&failing.buf);

        /* compressed flag, unknown flags, a frame over the cap */
        char *copy = malloc(reply.len);
        assert_non_null(copy);
        static const struct {
                unsigned char flag;
                uint32_t len;
                const char *says;
        } frames[] = {
                {1, 32768 + 5, "compressed"}, {2, 32768 + 5, "bad flags"}, {0, (16u << 20) + 1, "more than 16777216"}};
        for (size_t i = 0; i < EG_ELEMENTSOF(frames); i++) {
                memcpy(copy, reply.data, reply.len);
                /* the second frame, so the first one's bytes are out already */
                size_t at = second;
                uint32_t want = 1 + 3 + 32768; /* remaining_bytes is 0 from here: not sent */
                const unsigned char *h = (const unsigned char *)copy + at;
                assert_int_equal((uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4], want);
                copy[at] = (char)frames[i].flag;
                if (frames[i].flag == 0) {
                        uint32_t l = frames[i].len;
                        copy[at + 1] = (char)(l >> 24), copy[at + 2] = (char)(l >> 16), copy[at + 3] = (char)(l >> 8),
                                  copy[at + 4] = (char)l;
                }
                struct collected c2 = {.fail_after = -1};
                eg_buf_init(&c2.buf, 0);
                assert_int_equal(decode_steps(copy, reply.len, 7, lines, &c2, sha, &size, &err), -EBADMSG);
                assert_non_null(strstr(err.message, frames[i].says));
                assert_int_equal(c2.buf.len, 32768 - 32);
                eg_error_done(&err);
                eg_buf_done(&c2.buf);
        }
        free(copy);
        eg_buf_done(&reply);
        eg_buf_done(&col.buf);
        free(db);
}

static void test_etcd_snapshot_grpc__status(void **state) {
        const size_t n = 5000;
        unsigned char *db = make_db(n);
        const size_t etcd[] = {32768};
        struct eg_buf reply;
        make_reply(&reply, db, n, etcd, 1, false, false);
        struct collected col = {.fail_after = -1};
        eg_buf_init(&col.buf, 0);
        struct eg_error err = {0};
        char sha[65] = "unchanged";
        uint64_t size = 7;

        /* a whole db and a good hash, but etcd says it failed: the status wins */
        const char *const failed[] = {"Grpc-Status: 14\r\n",
                                      "grpc-message: etcdserver: %E2%9C%93 request timed out%2C %zz 100%\r\n", NULL};
        assert_int_equal(decode_steps(reply.data, reply.len, 4096, failed, &col, sha, &size, &err), -EIO);
        assert_string_equal(err.message, "snapshot failed: etcdserver: \xe2\x9c\x93 request timed out, %zz 100%");
        eg_error_done(&err);
        /* headers only, as gRPC answers an error before any message */
        const char *const only[] = {"grpc-status: 8\r\n", NULL};
        assert_int_equal(decode_steps("", 0, 1, only, &col, sha, &size, &err), -EIO);
        assert_string_equal(err.message, "snapshot failed: grpc-status 8");
        eg_error_done(&err);
        const char *const garbled[] = {"grpc-status: zero\r\n", NULL};
        assert_int_equal(decode_steps(reply.data, reply.len, 4096, garbled, &col, sha, &size, &err), -EIO);
        assert_string_equal(err.message, "snapshot failed: unreadable grpc-status");
        eg_error_done(&err);
        assert_string_equal(sha, "unchanged");
        /* status 0 with trailing blanks, after a message line that is ignored */
        const char *const ok[] = {"grpc-message: fine\r\n", "grpc-status:0 \r\n", NULL};
        eg_buf_reset(&col.buf);
        assert_int_equal(decode_steps(reply.data, reply.len, 4096, ok, &col, sha, &size, &err), 0);
        expect_db(&col, db, n, sha, size);

        /* what says gRPC and what does not */
        static const struct {
                const char *line;
                bool grpc;
        } ct[] = {{"content-type: application/grpc\r\n", true},
                  {"Content-Type: application/grpc+proto\r\n", true},
                  {"content-type:application/grpc; charset=x\r\n", true},
                  {"content-type: application/json\r\n", false},
                  {"content-type: application/grpcx\r\n", false},
                  {"x-content-type: application/grpc\r\n", false},
                  {"grpc-status: 0\r\n", true},
                  {"HTTP/2 200\r\n", false}};
        for (size_t i = 0; i < EG_ELEMENTSOF(ct); i++) {
                struct etcd_grpc_snapshot *d = NULL;
                assert_int_equal(etcd_grpc_snapshot_new(NULL, NULL, &d), 0);
                assert_int_equal(etcd_grpc_snapshot_header(d, ct[i].line, strlen(ct[i].line)), 0);
                if (etcd_grpc_snapshot_is_grpc(d) != ct[i].grpc)
                        fail_msg("%s", ct[i].line);
                etcd_grpc_snapshot_free(d);
        }
        eg_buf_done(&col.buf);
        eg_buf_done(&reply);
        free(db);
}

/* ---- an HTTP/1.1-only server: the gRPC attempt fails, the gateway is tried ---- */

struct h1_server {
        int fd;
        int port;
        int conns;            /* to accept */
        char *first_lines[2]; /* what each connection started with */
        char *saw_header;     /* a header line to look for in the gateway request */
        bool header_seen;
        struct eg_buf stream; /* the gateway reply body */
        pthread_t thread;
};

/* Reads until the end of the request head (or the h2 preface's first line), bounded. */
static int read_head(int fd, struct eg_buf *b) {
        char buf[4096];
        while (!memmem(b->data ? b->data : "", b->len, "\r\n\r\n", 4)) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 10000) <= 0)
                        return -ETIMEDOUT;
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k <= 0)
                        return -EIO;
                if (eg_buf_append(b, buf, (size_t)k) < 0)
                        return -E2BIG;
        }
        return 0;
}

static void write_all(int fd, const void *p, size_t n) {
        const char *c = p;
        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k <= 0)
                        return;
                c += k;
                n -= (size_t)k;
        }
}

static void *h1_serve(void *arg) {
        struct h1_server *s = arg;
        for (int i = 0; i < s->conns; i++) {
                struct pollfd p = {.fd = s->fd, .events = POLLIN};
                if (poll(&p, 1, 10000) <= 0)
                        break;
                int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        break;
                struct eg_buf head;
                eg_buf_init(&head, 1 << 20);
                if (read_head(c, &head) == 0) {
                        char *nl = memchr(head.data, '\r', head.len);
                        s->first_lines[i] = strndup(head.data, nl ? (size_t)(nl - head.data) : head.len);
                        if (s->saw_header && strcasestr(head.data, s->saw_header))
                                s->header_seen = true;
                        if (eg_str_has_prefix(head.data, "POST /v3/maintenance/snapshot ")) {
                                _cleanup_free_ char *h = eg_strdup_printf(
                                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                        s->stream.len);
                                write_all(c, h, strlen(h));
                                write_all(c, s->stream.data, s->stream.len);
                        } else {
                                static const char no[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                                         "Connection: close\r\n\r\n";
                                write_all(c, no, sizeof(no) - 1);
                        }
                }
                eg_buf_done(&head);
                shutdown(c, SHUT_WR);
                close(c);
        }
        return NULL;
}

/* The gateway's stream for db + sha256(db) in one message. */
static void gateway_stream(struct eg_buf *out, const unsigned char *db, size_t n) {
        unsigned char *all = malloc(n + 32);
        assert_non_null(all);
        memcpy(all, db, n);
        unsigned int hl = 32;
        EVP_Digest(db, n, all + n, &hl, EVP_sha256(), NULL);
        char *b64 = malloc(4 * ((n + 32 + 2) / 3) + 1);
        assert_non_null(b64);
        EVP_EncodeBlock((unsigned char *)b64, all, (int)(n + 32));
        eg_buf_init(out, 0);
        assert_int_equal(eg_buf_printf(out, "{\"result\":{\"remaining_bytes\":\"0\",\"blob\":\"%s\"}}\n", b64), 0);
        free(b64);
        free(all);
}

static void h1_start(struct h1_server *s, const unsigned char *db, size_t n, int conns) {
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(s->fd, 4), 0);
        assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
        s->port = ntohs(a.sin_port);
        s->conns = conns;
        gateway_stream(&s->stream, db, n);
        assert_int_equal(pthread_create(&s->thread, NULL, h1_serve, s), 0);
}

static void h1_join(struct h1_server *s) {
        pthread_join(s->thread, NULL);
        close(s->fd);
}

static void h1_done(struct h1_server *s) {
        for (size_t i = 0; i < EG_ELEMENTSOF(s->first_lines); i++)
                free(s->first_lines[i]);
        eg_buf_done(&s->stream);
}

static void h1_snapshot(const struct h1_server *s, const char *const *headers, int want_r, struct collected *col,
                        char sha[static 65], uint64_t *size) {
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
        char *eps[] = {url};
        struct eg_etcd_options opt = {.timeout_ms = 5000, .connect_timeout_ms = 1000, .headers = headers};
        struct eg_etcd *c = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        int r = eg_etcd_snapshot(c, url, collect_sink, col, sha, size, &err);
        if (r != want_r)
                fail_msg("snapshot: %d %s", r, err.message ? err.message : "");
        eg_error_done(&err);
        eg_etcd_free(c);
}

static void test_etcd_snapshot_grpc__fallback_to_gateway(void **state) {
        const size_t n = 3000;
        unsigned char *db = make_db(n);
        char sha[65] = {0};
        uint64_t size = 0;

        /* no gRPC spoken here: the one gateway attempt follows */
        struct h1_server s = {0};
        h1_start(&s, db, n, 2);
        struct collected col = {.fail_after = -1};
        eg_buf_init(&col.buf, 0);
        h1_snapshot(&s, NULL, 0, &col, sha, &size);
        h1_join(&s);
        expect_db(&col, db, n, sha, size);
        assert_non_null(s.first_lines[0]);
        assert_string_equal(s.first_lines[0], "PRI * HTTP/2.0");
        assert_non_null(s.first_lines[1]);
        assert_string_equal(s.first_lines[1], "POST /v3/maintenance/snapshot HTTP/1.1");
        h1_done(&s);

        /* extra headers (a proxy in between): the gateway only, headers passed on */
        struct h1_server p = {.saw_header = "X-Through-Proxy: yes"};
        h1_start(&p, db, n, 1);
        eg_buf_reset(&col.buf);
        const char *const headers[] = {"X-Through-Proxy: yes", NULL};
        h1_snapshot(&p, headers, 0, &col, sha, &size);
        h1_join(&p);
        expect_db(&col, db, n, sha, size);
        assert_non_null(p.first_lines[0]);
        assert_string_equal(p.first_lines[0], "POST /v3/maintenance/snapshot HTTP/1.1");
        assert_true(p.header_seen);
        h1_done(&p);
        eg_buf_done(&col.buf);
        free(db);
}

/* ---- real etcd ---- */

static struct etcd_proc e1;

static int group_setup(void **state) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -1;
        return 0;
}

static int group_teardown(void **state) {
        curl_global_cleanup();
        return 0;
}

static int etcd_setup(void **state) {
        int r = etcd_proc_start_single(&e1, "g1", START_TIMEOUT_MS);
        if (r < 0) {
                fprintf(stderr, "cannot start etcd: %s\n", strerror(-r));
                etcd_proc_cleanup(&e1);
                return -1;
        }
        return 0;
}

static int etcd_teardown(void **state) {
        etcd_proc_cleanup(&e1);
        return 0;
}

/* Runs argv with stdout to out_path (NULL: /dev/null); returns the exit status or -1. */
static int run(char *const argv[], const char *out_path) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path ? out_path : "/dev/null",
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0)
                return -1;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int write_sink(const void *data, size_t len, void *userdata) {
        return eg_write_all(*(int *)userdata, data, len);
}

/* Snapshot of e1 into path through a client with the given headers; returns its sha256. */
static void snapshot_to(const char *path, const struct eg_etcd_options *opt, const char *url, char sha[static 65],
                        uint64_t *size) {
        char *eps[] = {(char *)url};
        struct eg_etcd *c = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_new(eps, 1, opt, &c), 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        int r = eg_etcd_snapshot(c, url, write_sink, &fd, sha, size, &err);
        if (r != 0)
                fail_msg("snapshot: %d %s", r, err.message ? err.message : "");
        assert_int_equal(close(fd), 0);
        /* the client still works for JSON calls after a gRPC transfer */
        struct eg_etcd_status s = {0};
        assert_int_equal(eg_etcd_status_of(c, url, &s, &err), 0);
        assert_true(s.revision > 0);
        eg_etcd_status_done(&s);
        eg_error_done(&err);
        eg_etcd_free(c);
}

static void test_etcd_snapshot_grpc__real_etcd(void **state) {
        char *eps[] = {e1.client_url};
        struct eg_etcd_options opt = {.timeout_ms = 5000, .connect_timeout_ms = 1000};
        struct eg_etcd *c = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        /* several MiB that do not compress, over many 32 KiB messages */
        const size_t vlen = 256 << 10;
        unsigned char *val = make_db(vlen);
        for (int i = 0; i < 24; i++) {
                char key[32];
                snprintf(key, sizeof(key), "/grpc/%02d", i);
                val[0] = (unsigned char)i;
                assert_int_equal(eg_etcd_put(c, key, val, vlen, &err), 0);
        }
        free(val);
        eg_etcd_free(c);

        _cleanup_free_ char *grpc_path = eg_path_join(e1.dir, "grpc.db");
        _cleanup_free_ char *gw_path = eg_path_join(e1.dir, "gateway.db");
        _cleanup_free_ char *ctl_path = eg_path_join(e1.dir, "etcdctl.db");
        char sha[65] = {0}, gw_sha[65] = {0};
        uint64_t size = 0, gw_size = 0;
        snapshot_to(grpc_path, &opt, e1.client_url, sha, &size);
        assert_true(size > (size_t)24 * vlen);
        char *argv[] = {"etcdctl", "--endpoints", e1.client_url, "snapshot", "save", ctl_path, NULL};
        assert_int_equal(run(argv, NULL), 0);
        const char *const headers[] = {"X-Through-Proxy: yes", NULL};
        struct eg_etcd_options gw_opt = opt;
        gw_opt.headers = headers;
        snapshot_to(gw_path, &gw_opt, e1.client_url, gw_sha, &gw_size);

        _cleanup_free_ char *data = NULL, *ctl = NULL, *gw = NULL;
        size_t len = 0, ctl_len = 0, gw_len = 0;
        assert_int_equal(eg_read_file(grpc_path, (size_t)64 << 20, &data, &len), 0);
        assert_int_equal(len, size);
        char file_sha[65];
        eg_sha256_hex(data, len, file_sha);
        assert_string_equal(sha, file_sha);
        /* etcdctl keeps etcd's trailing hash in its file; the db before it is the same */
        assert_int_equal(eg_read_file(ctl_path, (size_t)64 << 20, &ctl, &ctl_len), 0);
        assert_int_equal(ctl_len, len + 32);
        assert_memory_equal(ctl, data, len);
        unsigned char raw[32];
        unsigned int hl = 32;
        EVP_Digest(data, len, raw, &hl, EVP_sha256(), NULL);
        assert_memory_equal(ctl + len, raw, 32);
        /* the gateway, as through a proxy, gives the same */
        assert_string_equal(gw_sha, sha);
        assert_int_equal(gw_size, size);
        assert_int_equal(eg_read_file(gw_path, (size_t)64 << 20, &gw, &gw_len), 0);
        assert_int_equal(gw_len, len);
        assert_memory_equal(gw, data, len);

        _cleanup_free_ char *out = eg_path_join(e1.dir, "status.txt");
        char *st[] = {"etcdctl", "--write-out=simple", "snapshot", "status", grpc_path, NULL};
        assert_int_equal(run(st, out), 0);
        eg_error_done(&err);
}

static void test_etcd_snapshot_grpc__real_etcd_sink_fails(void **state) {
        char *eps[] = {e1.client_url};
        struct eg_etcd_options opt = {.timeout_ms = 5000, .connect_timeout_ms = 1000};
        struct eg_etcd *c = NULL;
        struct eg_error err = {0};
        assert_int_equal(eg_etcd_new(eps, 1, &opt, &c), 0);
        struct collected col = {.fail_after = 1};
        eg_buf_init(&col.buf, 0);
        char sha[65] = "unchanged";
        uint64_t size = 7;
        /* no second attempt through the gateway: the sink has consumed bytes */
        assert_int_equal(eg_etcd_snapshot(c, e1.client_url, collect_sink, &col, sha, &size, &err), -ENOSPC);
        assert_int_equal(col.calls, 2);
        assert_non_null(strstr(err.message, "sink"));
        assert_string_equal(err.endpoint, e1.client_url);
        assert_string_equal(sha, "unchanged");
        assert_int_equal(size, 7);
        eg_error_done(&err);
        /* nothing listens: an error, not a fallback that waits again */
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", etcd_proc_free_port());
        assert_int_equal(eg_etcd_snapshot(c, url, collect_sink, &col, sha, &size, &err), -ECONNREFUSED);
        assert_string_equal(err.endpoint, url);
        eg_error_done(&err);
        eg_buf_done(&col.buf);
        eg_etcd_free(c);
}

static int tls_setup(void **state) {
        struct etcd_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -1;
        *state = p;
        return 0;
}

static int tls_teardown(void **state) {
        etcd_proc_cleanup(*state);
        free(*state);
        return 0;
}

static void test_etcd_snapshot_grpc__tls(void **state) {
        struct etcd_proc *e = *state;
        assert_int_equal(etcd_proc_init(e), 0);
        assert_int_equal(etcd_proc_use_tls(e), 0);
        assert_int_equal(etcd_proc_start(e, "gt1", NULL, "new", "eg-test-grpc-tls"), 0);
        assert_int_equal(etcd_proc_wait_healthy(e, START_TIMEOUT_MS), 0);
        struct eg_etcd_options opt = {
                .timeout_ms = 5000, .connect_timeout_ms = 1000, .tls = {e->ca_file, e->cert_file, e->key_file}};
        _cleanup_free_ char *path = eg_path_join(e->dir, "tls.db");
        char sha[65] = {0};
        uint64_t size = 0;
        snapshot_to(path, &opt, e->client_url, sha, &size);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        assert_int_equal(eg_read_file(path, (size_t)64 << 20, &data, &len), 0);
        assert_int_equal(len, size);
        assert_true(size > 4096);
        char file_sha[65];
        eg_sha256_hex(data, len, file_sha);
        assert_string_equal(sha, file_sha);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_etcd_snapshot_grpc__decoder),
                cmocka_unit_test(test_etcd_snapshot_grpc__every_split),
                cmocka_unit_test(test_etcd_snapshot_grpc__malformed_protobuf),
                cmocka_unit_test(test_etcd_snapshot_grpc__rejects),
                cmocka_unit_test(test_etcd_snapshot_grpc__status),
                cmocka_unit_test(test_etcd_snapshot_grpc__fallback_to_gateway),
                cmocka_unit_test_setup_teardown(test_etcd_snapshot_grpc__real_etcd, etcd_setup, etcd_teardown),
                cmocka_unit_test_setup_teardown(test_etcd_snapshot_grpc__real_etcd_sink_fails, etcd_setup,
                                                etcd_teardown),
                cmocka_unit_test_setup_teardown(test_etcd_snapshot_grpc__tls, tls_setup, tls_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
