/* Source dispatch: git URLs to the git source, everything else to the directory source. */
#include <errno.h>
#include <string.h>

#include "etcd-gitops/source.h"

bool eg_source_is_git_url(const char *location) {
        static const char *const schemes[] = {"https://", "http://", "ssh://", "git://", "file://"};
        for (size_t i = 0; i < EG_ELEMENTSOF(schemes); i++)
                if (eg_str_has_prefix(location, schemes[i]))
                        return true;
        /* scp-like user@host:path, as git itself accepts it; a local path never has '@'
         * before its first ':' and '/' */
        const char *at = strchr(location, '@'), *colon = strchr(location, ':'), *slash = strchr(location, '/');
        return at && colon && at < colon && (!slash || colon < slash);
}

int eg_source_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err) {
        if (eg_source_is_git_url(opt->location))
                return eg_source_git_open(opt, ret, err);
        return eg_source_dir_open(opt, ret, err);
}

void eg_source_free(struct eg_source *s) {
        if (s)
                s->ops->free(s);
}

void eg_source_revision_done(struct eg_source_revision *r) {
        if (!r)
                return;
        free(r->revision);
        free(r->commit);
        free(r->author);
        free(r->subject);
        free(r->previous_commit);
        free(r->stale);
        *r = (struct eg_source_revision){0};
}

int eg_source_read(struct eg_source *s, struct eg_desired_set **ret, struct eg_source_revision *ret_rev,
                   struct eg_error *err) {
        struct eg_source_revision rev = {0};
        int r = s->ops->read(s, ret, &rev, err);
        if (r < 0)
                return r;
        if (ret_rev)
                *ret_rev = rev;
        else
                eg_source_revision_done(&rev);
        return 0;
}

int eg_source_watch_fd(struct eg_source *s) { return s->ops->watch_fd ? s->ops->watch_fd(s) : -1; }

int eg_source_process_events(struct eg_source *s, bool *ret_changed) {
        *ret_changed = false;
        return s->ops->process_events ? s->ops->process_events(s, ret_changed) : 0;
}

int eg_source_annotate(struct eg_source *s, const char *commit, const char *note, struct eg_error *err) {
        return s->ops->annotate ? s->ops->annotate(s, commit, note, err) : -EOPNOTSUPP;
}
