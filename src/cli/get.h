/* What the parts of `get` share: its arguments and one listing rendered into a stream. */
#pragma once

#include <jansson.h>
#include <stdio.h>

#include "cli.h"
#include "output.h"

struct get_args {
        enum eg_out_format fmt;
        bool all_namespaces, no_headers, watch;
        const char *source; /* get backups: only those whose manifest it still holds */
        const char *kind;   /* "clusters", "members" or "backups" */
        const char *name;   /* NULL: all */
};

/* Prints one listing of a->kind into f (messages on stderr); returns the exit code. */
typedef int (*get_render_fn)(const struct get_args *a, FILE *f);

int get_backups(const struct get_args *a, FILE *f);

/* Adds etcd's view to each running member of the clusters in sel (memberDetails[]):
 * "peerURL" from the runtime, "dbSize", "raftTerm" and "raftIndex" from its status. A member
 * that does not answer keeps none of them. */
int get_members_etcd_status(json_t *sel);

/* The entries of all named name ("NAME" or "NS/NAME"; NULL: all), whose namespace and name are
 * under key (NULL: at the top). A new reference. */
json_t *get_filter(json_t *all, const char *key, const char *name);

/* What every listing shares: "no KIND named" when name matched nothing, and the JSON and YAML
 * formats. False when the table or names are still to print. */
bool get_print_common(json_t *sel, const char *kind, const char *name, enum eg_out_format fmt, FILE *f, int *ret_exit);

/* Re-renders the listing each time a status file under the state dir changes, printing it
 * when it differs from the last; returns 0 on SIGINT or SIGTERM. */
int get_watch(const struct get_args *a, get_render_fn render);

static inline const char *get_str(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }
