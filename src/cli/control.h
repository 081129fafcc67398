/* control: the CLI's side of the daemon's control socket (specs/control.md): one request,
 * the events the daemon streams while it works, one result. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "etcd-gitops/util.h"

struct eg_control;

/* The socket the CLI talks to: --control-socket (ETCD_GITOPS_CONTROL_SOCKET), else
 * <state-dir>/control.sock, where the daemon keeps its socket or a link to it. Caller
 * frees; NULL when out of memory. */
char *eg_control_socket_path(void);

/* Connects to the daemon. -ENOENT or -ECONNREFUSED: no daemon answers there (act
 * directly); any other negative errno with err set: one does, but cannot be reached
 * (permissions). */
int eg_control_open(struct eg_control **ret, struct eg_error *err);
/* Accepts NULL. */
void eg_control_free(struct eg_control *c);

/* eg_control_open for a command that acts through the daemon when one runs, else here:
 * 1 with *ret when a daemon answers, 0 when none does (act here), -1 when one does but
 * cannot be reached (already said on stderr, naming command). */
int eg_control_find(const char *command, struct eg_control **ret);

/* Sends request (borrowed), then calls on_event (may be NULL) with each event object the
 * daemon sends, in order, until the result object: *ret_result (caller owns). on_event
 * returning < 0 stops the call with that errno. deadline_ms is monotonic
 * (eg_now_monotonic_ms); 0: none. -ETIMEDOUT past it, -EPROTO for a reply that is not
 * the protocol, other negative errnos when the connection fails; err says what. One call
 * per connection. */
int eg_control_call(struct eg_control *c, json_t *request, int (*on_event)(json_t *ev, void *ud), void *ud,
                    json_t **ret_result, int64_t deadline_ms, struct eg_error *err);

/* Sends a reconcile request and prints what the daemon's pass decided and came to, as
 * apply prints its own (command names the CLI command in messages); waits timeout_ms at
 * most (0: 5 minutes). Returns the exit code. */
int eg_control_reconcile(const char *command, struct eg_control *c, json_t *req, int64_t timeout_ms);
