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
        char *revision; /* "sha256:<hex>" (directory) or "<ref>@sha1:<40 hex>" (git) */
        char *commit;   /* commit id when known (git, or a directory inside a work tree) */
        bool dirty;     /* directory: uncommitted changes under the source */
        char *author;   /* git: "Name <email>" of the commit */
        char *subject;  /* git: first line of the commit message */
        bool force_push;        /* git: the new tip does not descend from the last one read */
        char *previous_commit;  /* git: the last commit read, when force_push */
        bool held;              /* git: a force-push was refused; this is still the old revision */
};
void eg_source_revision_done(struct eg_source_revision *r);

struct eg_source;

struct eg_source_ops {
        const char *kind; /* "dir", "git" */
        /* A fresh desired set (caller frees) and its revision (caller frees with
         * eg_source_revision_done). git: fetches first when the remote ref moved. */
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
