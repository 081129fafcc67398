/* yaml: spec's YAML front-end (libyaml, YAML 1.2 core schema, its depth and alias limits) for
 * the other configuration files the daemon reads, such as kubeconfigs. */
#pragma once

#include <stddef.h>

#include <jansson.h>

#include "etcd-gitops/util.h"

enum eg_yaml_flags {
        /* plain scalars other than null and booleans stay the strings they were written as
         * (a kubeconfig's `namespace: 123`), as kubectl's loader reads a config */
        EG_YAML_PLAIN_STRINGS = 1 << 0,
};

/* The first document of data as a JSON object (a stream without one is {}).
 * -EBADMSG when it is not YAML, not a mapping or not representable in JSON (duplicate keys,
 * numbers out of range), with err saying why and, where the document says it, at which line and
 * column (its file unset: data has no name); -ENOMEM. */
int eg_yaml_to_json(const char *data, size_t len, unsigned flags, json_t **ret, struct eg_error *err);
