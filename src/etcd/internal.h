/* Shared inside the etcd module: error filling, base64 and JSON number helpers. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd-gitops/etcd.h"

#define SHA256_LEN 32
/* A snapshot message carries 32 KiB of db as base64 in JSON; anything far beyond is bogus. */
#define SNAPSHOT_LINE_MAX ((size_t)4 << 20)

void etcd_error_set(struct eg_etcd_error *e, const char *endpoint, long http_status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Strict base64 (OpenSSL underneath): -EBADMSG for characters outside the alphabet. */
int etcd_b64_decode(const char *in, size_t len, unsigned char *out, size_t *ret_len);
/* A uint64 given as a JSON string (as the gateway sends them) or integer; absent is 0. */
int etcd_json_get_u64(json_t *obj, const char *key, uint64_t *ret);
