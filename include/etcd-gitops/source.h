/* source: where manifests come from (a local directory, watched with inotify; git URLs
 * are recognised) and the desired set it produces. */
#pragma once

#include <stdbool.h>

#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

struct eg_source_options {
        const char *location; /* directory, or git URL */
        const char *subpath;  /* --path: folder inside the source; NULL = root */
        const char *ref;      /* --ref (git) */
        struct eg_spec_options spec;
};

struct eg_source;

/* True when location names a git remote (https://, ssh://, file://, git://, user@host:path). */
bool eg_source_is_git_url(const char *location);

int eg_source_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err);
void eg_source_free(struct eg_source *s);

/* Reads the whole source into a fresh desired set (caller frees). The set's revision is
 * the content hash; ret_commit (may be NULL) receives the HEAD commit id when the
 * directory is inside a git work tree (malloc'd, NULL otherwise), and ret_dirty whether
 * the work tree has uncommitted changes under the source. */
int eg_source_read(struct eg_source *s, struct eg_desired_set **ret, char **ret_commit,
                   bool *ret_dirty, struct eg_error *err);

/* inotify descriptor to poll for changes, or -1 when the source cannot be watched. */
int eg_source_watch_fd(struct eg_source *s);
/* Drains pending inotify events (adding watches for new folders). *ret_changed is true
 * when any event may have changed a manifest. */
int eg_source_process_events(struct eg_source *s, bool *ret_changed);
