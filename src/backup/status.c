/* Backup status files: what the controller recorded about each EtcdBackup. */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "etcd-gitops/backup.h"

#define STATUS_MAX_BYTES ((size_t)1 << 20)

json_t *eg_backup_status_load(const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        json_t *j = NULL;
        if (eg_read_file(path, STATUS_MAX_BYTES, &text, &len) >= 0)
                j = json_loadb(text, len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                j = json_object();
        }
        return j;
}

static int cmp_status(const void *a, const void *b) {
        json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        const char *xn = json_string_value(json_object_get(x, "namespace")),
                   *yn = json_string_value(json_object_get(y, "namespace"));
        int c = strcmp(xn ? xn : "", yn ? yn : "");
        if (c)
                return c;
        xn = json_string_value(json_object_get(x, "name"));
        yn = json_string_value(json_object_get(y, "name"));
        return strcmp(xn ? xn : "", yn ? yn : "");
}

int eg_backup_status_all(const char *state_dir, json_t **ret) {
        _cleanup_free_ char *root = eg_state_path(state_dir, EG_STATE_BACKUPS, NULL, NULL);
        if (!root)
                return -ENOMEM;
        json_t *all = json_array();
        if (!all)
                return -ENOMEM;
        DIR *d = opendir(root);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *nsdir = eg_path_join(root, de->d_name);
                DIR *d2 = nsdir ? opendir(nsdir) : NULL;
                struct dirent *f;
                while (d2 && (f = readdir(d2))) {
                        if (f->d_name[0] == '.' || !eg_str_has_suffix(f->d_name, ".json"))
                                continue;
                        _cleanup_free_ char *p = eg_path_join(nsdir, f->d_name);
                        json_t *st = p ? eg_backup_status_load(p) : NULL;
                        if (st && json_object_get(st, "name"))
                                json_array_append_new(all, st);
                        else
                                json_decref(st);
                }
                if (d2)
                        closedir(d2);
        }
        if (d)
                closedir(d);
        size_t n = json_array_size(all);
        json_t **items = calloc(n ? n : 1, sizeof(*items));
        if (!items) {
                json_decref(all);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                items[i] = json_incref(json_array_get(all, i));
        qsort(items, n, sizeof(*items), cmp_status);
        json_array_clear(all);
        for (size_t i = 0; i < n; i++)
                json_array_append_new(all, items[i]);
        free(items);
        *ret = all;
        return 0;
}
