/* audit internals: what writing and reading the log share. */
#pragma once

#include <stddef.h>

#include "etcd-gitops/audit.h"
#include "etcd-gitops/util.h"

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"
#define CHUNK_SIZE ((size_t)65536)

/* Parses one line (without its newline) into *ret, hash included; e says why a line is
 * not a record (-EINVAL). */
int audit_parse_line(const char *line, size_t len, struct eg_audit_record *ret, struct eg_error *e);
