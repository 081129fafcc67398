/* Work off the daemon's loop: one thread per kind of work, joined on the loop when an
 * eventfd says it is done. */
#include <errno.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"

static void *worker_main(void *userdata) {
        struct worker *w = userdata;
        w->work(w->d);
        uint64_t one = 1;
        if (write(w->fd, &one, sizeof(one)) < 0)
                eg_log_warning_errno(-errno, "cannot signal the end of the %s: %m", w->what);
        return NULL;
}

void worker_join(struct worker *w) {
        if (!w->running)
                return;
        pthread_join(w->thread, NULL);
        w->running = false;
}

static int on_worker_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct worker *w = userdata;
        uint64_t n;
        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                return 0;
        if (w->running) {
                worker_join(w);
                w->done(w->d);
        }
        return 0;
}

int worker_init(struct worker *w, struct eg_daemon *d, const char *what, void (*work)(struct eg_daemon *),
                void (*done)(struct eg_daemon *)) {
        *w = (struct worker){.what = what, .work = work, .done = done, .d = d};
        w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->fd < 0)
                return eg_log_error_errno(-errno, "cannot set up the %s thread's signal: %m", what);
        int r = sd_event_add_io(d->event, &w->source, w->fd, EPOLLIN, on_worker_done, w);
        if (r < 0)
                return eg_log_error_errno(r, "cannot set up the %s thread's signal: %m", what);
        return 0;
}

void worker_start(struct worker *w) {
        w->running = true;
        int r = -pthread_create(&w->thread, NULL, worker_main, w);
        if (r >= 0)
                return;
        w->running = false;
        eg_log_warning_errno(r, "cannot start the %s thread (%m): running it on the loop", w->what);
        w->work(w->d);
        w->done(w->d);
}

void worker_done(struct worker *w) {
        sd_event_source_unref(w->source);
        w->source = NULL;
        if (w->fd >= 0)
                close(w->fd);
        w->fd = -1;
}
