/* The git source's notes: what each revision did, under refs/notes/etcd-gitops, pushed back on request. */
#include <errno.h>
#include <string.h>

#include "etcd-gitops/util.h"
#include "git.h"

#define NOTES_REF "refs/notes/etcd-gitops"
#define MAX_NOTE_BYTES ((size_t)64 << 10)

static int cb_push_update(const char *refname, const char *status, void *payload) {
        struct git_source *s = payload;
        if (status)
                gsrc_cb_fail(s, eg_strdup_printf("the remote refused %s: %s", refname, status));
        return 0;
}

static int push_notes(struct git_source *s, struct eg_error *err) {
        git_remote *remote = NULL;
        int r = gsrc_remote_new(s, NULL, s->url, &remote);
        if (r < 0)
                return gsrc_fail(s, err, r, "invalid git URL");
        git_push_options po = GIT_PUSH_OPTIONS_INIT;
        po.callbacks = gsrc_callbacks(s);
        po.callbacks.push_update_reference = cb_push_update;
        /* forced: the daemon is the only writer of these notes */
        char *spec = "+" NOTES_REF ":" NOTES_REF;
        git_strarray specs = {.strings = &spec, .count = 1};
        r = git_remote_push(remote, &specs, &po);
        git_remote_free(remote);
        if (r >= 0 && s->cb_error)
                r = GIT_EUSER;
        return r < 0 ? gsrc_fail(s, err, r, "cannot push notes to") : 0;
}

int gsrc_annotate(struct eg_source *base, const char *commit, const char *note, struct eg_error *err) {
        struct git_source *s = (struct git_source *)base;
        git_oid id;
        if (!gsrc_is_commit_id(commit) || git_oid_fromstr(&id, commit) < 0 || !gsrc_have_commit(s->repo, &id)) {
                eg_error_set(err, "cannot annotate '%s': not a commit read from %s", commit, s->display_url);
                return -ENOENT;
        }
        git_note *old = NULL;
        git_signature *sig = NULL;
        _cleanup_free_ char *text = NULL;
        int r = 0;
        if (git_note_read(&old, s->repo, NOTES_REF, &id) == 0) {
                const char *prev = git_note_message(old);
                size_t pl = strlen(prev), nl = strlen(note);
                while (pl > 0 && prev[pl - 1] == '\n')
                        pl--;
                /* the same lines again (a pass with nothing new) are not repeated; a full
                 * summary that starts with what the note holds replaces it */
                if (pl >= nl && strncmp(prev + pl - nl, note, nl) == 0 && (pl == nl || prev[pl - nl - 1] == '\n'))
                        goto push;
                if (!(nl >= pl && strncmp(note, prev, pl) == 0 && (nl == pl || note[pl] == '\n')) &&
                    pl + nl + 2 <= MAX_NOTE_BYTES)
                        text = eg_strdup_printf("%.*s\n%s", (int)pl, prev, note);
        }
        if (!text && !(text = strdup(note))) {
                r = -ENOMEM;
                goto out;
        }
        git_oid note_id;
        if (git_signature_now(&sig, "etcd-gitops", "etcd-gitops@localhost") < 0 ||
            git_note_create(&note_id, s->repo, NOTES_REF, sig, sig, &id, text, 1) < 0) {
                r = gsrc_fail(s, err, -1, "cannot write a note in the cache of");
                goto out;
        }
push:
        if (s->push_notes)
                r = push_notes(s, err);
out:
        git_signature_free(sig);
        git_note_free(old);
        return r;
}
