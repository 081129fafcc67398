/* ignore: .sourceignore files (gitignore syntax) that keep files kept beside the manifests,
 * such as alert rules or dashboards, out of a source, as Flux does. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "etcd-gitops/spec.h"

#define EG_IGNORE_FILE ".sourceignore"
#define EG_IGNORE_MAX_BYTES ((size_t)64 << 10) /* per file */
#define EG_IGNORE_MAX_PATTERNS 10000           /* over all the files of one source */
#define EG_IGNORE_MAX_LINE 4096

/* The patterns of every .sourceignore met so far in one walk of a source. */
struct eg_ignore;

int eg_ignore_new(struct eg_ignore **ret);
void eg_ignore_free(struct eg_ignore *ig);

/* Adds the patterns of the .sourceignore in folder dir (relative to the source root, ""
 * for the root itself, no trailing '/'); data holds its len bytes and display names it
 * in diagnostics. A line that is no valid pattern is a warning at display:LINE and the
 * other lines still apply. A file past EG_IGNORE_MAX_BYTES, or patterns past
 * EG_IGNORE_MAX_PATTERNS, are an error about the file and none of its patterns apply.
 * The file feeds the set's content hash: changing it makes a new revision. -ENOMEM only. */
int eg_ignore_add(struct eg_ignore *ig, struct eg_desired_set *set, const char *dir, const char *display,
                  const char *data, size_t len);

/* 1 when path (relative to the source root, no trailing '/') is ignored, 0 when not,
 * -ENOMEM. The last pattern that matches decides, a deeper folder's file coming after
 * its parents'; a '!' pattern takes the path back. Callers do not descend into an ignored
 * folder, so as in git a file below one cannot be taken back. */
int eg_ignore_check(const struct eg_ignore *ig, const char *path, bool is_dir);
