/* "Did you mean": the closest known word to a mistyped one. */
#include <string.h>

#include "hints.h"

enum { HINT_MAX_DISTANCE = 2, HINT_MAX_LEN = 64 };

size_t eg_hint_distance(const char *a, const char *b, size_t limit) {
        size_t na = strlen(a), nb = strlen(b);
        if (na > HINT_MAX_LEN || nb > HINT_MAX_LEN || (na > nb ? na - nb : nb - na) > limit)
                return limit + 1;
        size_t row[HINT_MAX_LEN + 1];
        for (size_t j = 0; j <= nb; j++)
                row[j] = j;
        for (size_t i = 1; i <= na; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= nb; j++) {
                        size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        diag = up;
                        row[j] = best;
                }
        }
        return row[nb] > limit ? limit + 1 : row[nb];
}

const char *eg_hint_closest(const char *typed, const char *const *names) {
        const char *best = NULL;
        size_t best_d = HINT_MAX_DISTANCE + 1;
        for (const char *const *n = names; *n; n++) {
                size_t d = eg_hint_distance(typed, *n, HINT_MAX_DISTANCE);
                /* a one- or two-letter word is within two edits of anything that short */
                if (d < best_d && d < strlen(typed) && d < strlen(*n)) {
                        best = *n;
                        best_d = d;
                }
        }
        return best;
}
