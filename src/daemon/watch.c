/* What starts a pass at once rather than at the next recheck: a member process's exit
 * (a pidfd each) and the runtime's own change signal. */
#include <errno.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "internal.h"

static void watch_drop(struct pid_watch *w) {
        sd_event_source_disable_unref(w->source);
        w->source = NULL;
}

void pass_soon(struct eg_daemon *d) {
        if (d->cycler.running)
                d->cycle_again = true;
        else
                arm(d->reconcile_timer, eg_now_monotonic_ms());
}

static int on_member_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct pid_watch *w = userdata;
        watch_drop(w);
        pass_soon(w->d);
        return 0;
}

int on_runtime_change(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct eg_daemon *d = userdata;
        uint64_t n;
        (void)!read(fd, &n, sizeof(n));
        eg_log_debug("the %s runtime reports a change", d->opt->runtime->ops->name);
        /* a daemon standing by passes only once it leads: a change would only make it re-read
         * the source */
        if (d->leading)
                pass_soon(d);
        return 0;
}

/* Watches exactly the member processes the reconciler last saw running. Best effort: a
 * process that cannot be watched is still found by the next recheck. */
void watches_sync(struct eg_daemon *d) {
        int64_t *pids = NULL;
        size_t n = 0;
        if (eg_reconciler_member_pids(d->opt->rec, &pids, &n) < 0)
                return;
        struct pid_watch *ws = n ? calloc(n, sizeof(*ws)) : NULL;
        size_t k = 0;
        for (size_t i = 0; ws && i < n; i++) {
                struct pid_watch *old = NULL;
                for (size_t j = 0; j < d->n_watches; j++)
                        if (d->watches[j].pid == pids[i] && d->watches[j].source)
                                old = &d->watches[j];
                if (old) {
                        ws[k] = *old;
                        old->source = NULL;
                } else {
                        int fd = pidfd_open((pid_t)pids[i], 0);
                        if (fd < 0)
                                continue;
                        ws[k] = (struct pid_watch){.pid = pids[i], .d = d};
                        if (sd_event_add_io(d->event, &ws[k].source, fd, EPOLLIN, on_member_exit, NULL) < 0) {
                                close(fd);
                                continue;
                        }
                        sd_event_source_set_io_fd_own(ws[k].source, true);
                }
                k++;
        }
        for (size_t j = 0; j < d->n_watches; j++)
                watch_drop(&d->watches[j]);
        free(d->watches);
        d->watches = ws;
        d->n_watches = ws ? k : 0;
        /* the array is final: the callbacks may now point into it */
        for (size_t i = 0; i < d->n_watches; i++)
                sd_event_source_set_userdata(d->watches[i].source, &d->watches[i]);
        free(pids);
}

void watches_drop_all(struct eg_daemon *d) {
        for (size_t i = 0; i < d->n_watches; i++)
                watch_drop(&d->watches[i]);
        free(d->watches);
        d->watches = NULL;
        d->n_watches = 0;
}
