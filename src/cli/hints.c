/* "Did you mean": the closest known word to a mistyped one. */
#include <string.h>

#include "etcd-gitops/util.h"
#include "hints.h"

enum { HINT_MAX_DISTANCE = 2 };

const char *eg_hint_closest(const char *typed, const char *const *names) {
        const char *best = NULL;
        size_t best_d = HINT_MAX_DISTANCE + 1;
        for (const char *const *n = names; *n; n++) {
                size_t d = eg_edit_distance(typed, *n, HINT_MAX_DISTANCE, false);
                /* a one- or two-letter word is within two edits of anything that short */
                if (d < best_d && d < strlen(typed) && d < strlen(*n)) {
                        best = *n;
                        best_d = d;
                }
        }
        return best;
}
