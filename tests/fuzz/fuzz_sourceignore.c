/* libFuzzer target: .sourceignore files (gitignore syntax) through the matcher. The input
 * is a file's text, then after a NUL byte the paths to check, one a line. Each answer must
 * be 0 or 1 and the same when asked again; a file past the size cap adds no pattern. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-gitops/ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct eg_ignore *ig, const char *path, bool is_dir) {
        int a = eg_ignore_check(ig, path, is_dir);
        if (a == -ENOMEM)
                return;
        if ((a != 0 && a != 1) || eg_ignore_check(ig, path, is_dir) != a)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t file_len = nul ? (size_t)(nul - data) : size;
        struct eg_ignore *ig = NULL;
        struct eg_desired_set *set = NULL;
        if (eg_ignore_new(&ig) < 0 || eg_desired_set_new(&set) < 0)
                goto out;
        /* the root's file and the same one again one folder down, where it applies below */
        if (eg_ignore_add(ig, set, "", ".sourceignore", (const char *)data, file_len) < 0 ||
            eg_ignore_add(ig, set, "sub", "sub/.sourceignore", (const char *)data, file_len) < 0)
                goto out;
        char *paths = nul ? strndup((const char *)nul + 1, size - file_len - 1) : NULL;
        for (char *save = NULL, *p = paths ? strtok_r(paths, "\n", &save) : NULL; p; p = strtok_r(NULL, "\n", &save)) {
                check(ig, p, false);
                check(ig, p, true);
        }
        free(paths);
        check(ig, "a", false);
        check(ig, "sub/a/b.yaml", false);
out:
        eg_desired_set_free(set);
        eg_ignore_free(ig);
        return 0;
}
