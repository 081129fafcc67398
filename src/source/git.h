/* Shared inside the git source: the source itself, and talking to its remote (URL redaction,
 * libgit2 errors, credentials and host keys). */
#pragma once

#include <git2.h>
#include <stdbool.h>

#include "etcd-gitops/source.h"

/* One git source; the ops see it as its first member. */
struct git_source {
        struct eg_source base;
        char *url;         /* as given: may carry userinfo, never printed */
        char *display_url; /* userinfo replaced by "***" */
        char *userinfo;    /* the part redacted, to scrub from libgit2's messages */
        char *host;
        unsigned port;
        char *ref;     /* as given, NULL = remote HEAD */
        char *subpath; /* "" = root */
        char *cache_dir;
        struct eg_spec_options spec;
        char *token; /* wiped before it is freed */
        char *ssh_key_file, *known_hosts_file;
        bool insecure, refuse_force_push, push_notes;
        git_repository *repo;
        unsigned auth_attempts;
        char *cb_error; /* why a callback refused, set before it returns GIT_EUSER */
};

/* Splits the URL into host, port and the userinfo to redact, and makes display_url. -ENOMEM only. */
int gsrc_parse_url(struct git_source *s);
/* Sets err to "<what> <url>: <why>" from the failed libgit2 call's result r (the callback's
 * reason for GIT_EUSER), with credentials scrubbed; returns -ENOENT, -EACCES or -EIO. */
int gsrc_fail(struct git_source *s, struct eg_error *err, int r, const char *what);
/* Records why a callback refuses (msg is taken; NULL is allowed), before it returns GIT_EUSER. */
void gsrc_cb_fail(struct git_source *s, char *msg);
/* Credentials and host key checks for one connection, which may ask for credentials once. */
git_remote_callbacks gsrc_callbacks(struct git_source *s);
int gsrc_remote_new(struct git_source *s, const char *name, const char *url, git_remote **ret);

bool gsrc_is_commit_id(const char *ref);
bool gsrc_have_commit(git_repository *repo, const git_oid *id);

/* The annotate op: see eg_source_ops. */
int gsrc_annotate(struct eg_source *base, const char *commit, const char *note, struct eg_error *err);
