/* source: where manifests come from (a local directory watched with inotify, or a git
 * repository read with libgit2) and the desired set it produces. */
#pragma once

#include <stdbool.h>

#include "etcd-gitops/spec.h"
#include "etcd-gitops/util.h"

struct eg_source_options {
        const char *location;  /* directory, or git URL */
        const char *subpath;   /* --path: folder inside the source; NULL = root */
        const char *ref;       /* --ref (git): branch, tag or full commit id; NULL = remote HEAD */
        const char *state_dir; /* git: the bare cache repository lives under <state_dir>/git/ */
        struct eg_spec_options spec;
        /* git authentication, read from files, never from argv */
        const char *token_file;       /* HTTPS token (or "user:password") */
        const char *ssh_key_file;     /* private key for ssh:// and user@host:path */
        const char *known_hosts_file; /* default ~/.ssh/known_hosts; checked strictly */
        bool insecure_skip_host_key_check;
        bool refuse_force_push; /* hold at the last revision instead of following a force-push */
        bool push_notes;        /* push refs/notes/etcd-gitops to the remote after annotating */
};

/* What revision a read produced. */
struct eg_source_revision {
        char *revision;        /* "sha256:<hex>" (directory) or "<ref>@sha1:<40 hex>" (git) */
        char *commit;          /* commit id when known (git, or a directory inside a work tree) */
        bool dirty;            /* directory: uncommitted changes under the source */
        char *author;          /* git: "Name <email>" of the commit */
        char *subject;         /* git: first line of the commit message */
        bool force_push;       /* git: the new tip does not descend from the last one read */
        char *previous_commit; /* git: the last commit read, when force_push */
        bool held;             /* git: a force-push was refused; this is still the old revision */
        bool fetched;          /* git: this read fetched from the remote (the ref moved) */
        /* git: the fetch failed and this is the last commit read; why, for the caller to
         * warn with. NULL when the read is current. */
        char *stale;
};
void eg_source_revision_done(struct eg_source_revision *r);

struct eg_source;

/* The git source keeps a bare cache repository in <state_dir>/git/<sha256 of the URL>/
 * and reads manifests from the commit's tree, never from a checkout.
 * - revision is "<ref>@sha1:<hex>" (ref as given, or the remote's default branch such as
 *   "main"); a ref that is a full commit id gives "sha1:<hex>".
 * - read() first lists the remote ref and fetches only when it moved; a commit id already
 *   in the cache needs no connection at all.
 * - When the remote cannot be reached or the ref is gone, read() returns 0 with the last
 *   commit read for that ref (kept in the cache, so also after a restart) and the
 *   revision's stale set to why the fetch failed: the caller warns with it. With no
 *   earlier read it returns -errno with err set.
 * - Force-push: a new tip that does not descend from the last commit read sets force_push
 *   and previous_commit. With refuse_force_push the read returns the last commit's set
 *   with held, and keeps doing so (also across restarts) until the ref moves back onto a
 *   descendant of it or a read without refuse_force_push takes the new history. Every
 *   read of a branch or tag, diff's included, moves "the last commit read".
 * - annotate() appends note to the commit's note under refs/notes/etcd-gitops in the
 *   cache. Text the note already ends with is not added again; text that starts with the
 *   whole note (a fuller summary of the same commit) replaces it; a note past 64 KiB
 *   starts over with the newest text. With push_notes it force-pushes that notes ref to
 *   the remote: etcd-gitops is taken to be its only writer.
 * - watch_fd() is -1: the daemon polls on its interval. */
struct eg_source_ops {
        const char *kind; /* "dir", "git" */
        /* A fresh desired set (caller frees) and its revision (caller frees with
         * eg_source_revision_done). git: fetches first when the remote ref moved, and may
         * return a stale revision (see above). err is set only on failure. */
        int (*read)(struct eg_source *s, struct eg_desired_set **ret, struct eg_source_revision *ret_rev,
                    struct eg_error *err);
        /* A descriptor to poll for changes, or -1 (git: polled on an interval instead). */
        int (*watch_fd)(struct eg_source *s);
        int (*process_events)(struct eg_source *s, bool *ret_changed);
        /* Records what a revision did (git notes); NULL when the source cannot. */
        int (*annotate)(struct eg_source *s, const char *commit, const char *note, struct eg_error *err);
        void (*free)(struct eg_source *s);
};

/* Implementations embed this first. */
struct eg_source {
        const struct eg_source_ops *ops;
};

/* True when location names a git remote (https://, ssh://, file://, git://, user@host:path). */
bool eg_source_is_git_url(const char *location);

int eg_source_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err);
int eg_source_dir_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err);
int eg_source_git_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err);
void eg_source_free(struct eg_source *s);

int eg_source_read(struct eg_source *s, struct eg_desired_set **ret, struct eg_source_revision *ret_rev,
                   struct eg_error *err);
int eg_source_watch_fd(struct eg_source *s);
int eg_source_process_events(struct eg_source *s, bool *ret_changed);
/* -EOPNOTSUPP when the source keeps no notes. */
int eg_source_annotate(struct eg_source *s, const char *commit, const char *note, struct eg_error *err);
