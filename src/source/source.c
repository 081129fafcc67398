/* Source dispatch: tells git URLs from directories. */
#include <string.h>

#include "etcd-gitops/source.h"

bool eg_source_is_git_url(const char *location) {
        static const char *const schemes[] = {"https://", "http://", "ssh://", "git://", "file://"};
        for (size_t i = 0; i < EG_ELEMENTSOF(schemes); i++)
                if (eg_str_has_prefix(location, schemes[i]))
                        return true;
        /* scp-like user@host:path, as git itself accepts it; a local path never has '@'
         * before its first ':' and '/' */
        const char *at = strchr(location, '@'), *colon = strchr(location, ':'),
                   *slash = strchr(location, '/');
        return at && colon && at < colon && (!slash || colon < slash);
}
