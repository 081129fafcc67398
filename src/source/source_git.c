/* The git source: not part of this build yet; git URLs are refused with a clear error. */
#include <errno.h>

#include "etcd-gitops/source.h"

int eg_source_git_open(const struct eg_source_options *opt, struct eg_source **ret, struct eg_error *err) {
        eg_error_set(err, "git sources (%s) are not built yet in this version: use a local directory",
                     opt->location);
        return -EOPNOTSUPP;
}
