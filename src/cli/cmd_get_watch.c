/* etcd-gitops get --watch: the listing again whenever a status file under the state dir changes. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "get.h"

enum {
        WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM,
        WATCH_DEBOUNCE_MS = 100,
        /* a stop request is seen at least this often, whatever the signal interrupted */
        WATCH_TICK_MS = 1000,
};

static volatile sig_atomic_t watch_stop;

static void on_stop(int sig) {
        (void)sig;
        watch_stop = 1;
}

/* The directories whose changes matter: the state dir (for status/ or backups/ appearing),
 * the kind's status dir and its namespace dirs. Adding a watch twice is harmless. */
static void add_watches(int fd, const char *status_dir) {
        inotify_add_watch(fd, eg_settings.state_dir, IN_CREATE | IN_MOVED_TO);
        if (inotify_add_watch(fd, status_dir, WATCH_MASK) < 0)
                return;
        DIR *d = opendir(status_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *p = eg_path_join(status_dir, de->d_name);
                if (p)
                        inotify_add_watch(fd, p, WATCH_MASK);
        }
        if (d)
                closedir(d);
}

/* Reads every pending event; true when any came within timeout_ms. */
static bool drain(int fd, int timeout_ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool any = false;
        while (!watch_stop && poll(&p, 1, any ? 0 : timeout_ms) > 0) {
                if (read(fd, buf, sizeof(buf)) <= 0)
                        break;
                any = true;
        }
        return any;
}

/* Renders into memory and prints when it differs from *last, which it replaces. */
static int render_changed(const struct get_args *a, get_render_fn render, char **last) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        render(a, f);
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        if (!*last || strcmp(*last, text) != 0) {
                if (*last)
                        fputc('\n', stdout);
                fputs(text, stdout);
                fflush(stdout);
                free(*last);
                *last = text;
        } else
                free(text);
        return 0;
}

int get_watch(const struct get_args *a, get_render_fn render) {
        _cleanup_free_ char *status_dir = eg_state_path(
                eg_settings.state_dir, strcmp(a->kind, "backups") == 0 ? EG_STATE_BACKUPS : EG_STATE_STATUS, NULL,
                NULL);
        int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (!status_dir || fd < 0) {
                eg_log_error_errno(fd < 0 ? -errno : -ENOMEM, "cannot watch %s: %m", eg_settings.state_dir);
                if (fd >= 0)
                        close(fd);
                return EG_EXIT_ERROR;
        }
        struct sigaction sa = {.sa_handler = on_stop};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        char *last = NULL;
        int r = 0;
        while (!watch_stop && r >= 0) {
                add_watches(fd, status_dir);
                r = render_changed(a, render, &last);
                while (!watch_stop && !drain(fd, WATCH_TICK_MS))
                        ;
                /* a pass writes many status files at once: one listing for all of them */
                while (!watch_stop && drain(fd, WATCH_DEBOUNCE_MS))
                        ;
        }
        free(last);
        close(fd);
        return r < 0 ? EG_EXIT_ERROR : EG_EXIT_OK;
}
