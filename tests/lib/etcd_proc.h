/* Test helper: runs a real etcd member on free loopback ports in its own temporary directory. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

struct etcd_proc {
        pid_t pid; /* 0 when not running */
        char *dir; /* mkdtemp dir holding data/ and etcd.log; NULL before init */
        int client_port, peer_port;
        char client_url[64], peer_url[64];
        /* set by etcd_proc_use_tls: files in dir, the cert serves both ends */
        char *ca_file, *cert_file, *key_file;
};

/* Creates the temporary directory and picks two free ports, so the URLs are known
 * before the member is started (a member must be added to the cluster by its peer URL
 * before it starts). Returns 0 or a negative errno. */
int etcd_proc_init(struct etcd_proc *p);
/* Makes a CA and a certificate for 127.0.0.1 (server and client use) with the openssl
 * CLI, and switches the client URL to https with client-certificate auth. Call after
 * init, before start. */
int etcd_proc_use_tls(struct etcd_proc *p);
/* Picks fresh free ports (after losing a port race). */
int etcd_proc_repick_ports(struct etcd_proc *p);
/* Starts `etcd` (from PATH) as member name. initial_cluster NULL means
 * "<name>=<own peer url>"; state is "new" or "existing". The child gets SIGKILL when
 * the test process dies, so a crashed test leaves no etcd behind. */
int etcd_proc_start(struct etcd_proc *p, const char *name, const char *initial_cluster, const char *state,
                    const char *token);
/* Polls GET /health until it says true. -EADDRINUSE when etcd exited because a port
 * was taken, -ECHILD when it exited otherwise, -ETIMEDOUT past the deadline. */
int etcd_proc_wait_healthy(struct etcd_proc *p, int64_t timeout_ms);
/* init + start a fresh single-member cluster + wait, retrying with new ports when a
 * port was taken between picking and binding. */
int etcd_proc_start_single(struct etcd_proc *p, const char *name, int64_t timeout_ms);
/* SIGTERM, SIGKILL after a few seconds, reaped; a no-op when not running. */
void etcd_proc_stop(struct etcd_proc *p);
/* stop, then remove the directory. Safe on a zeroed or half-initialised struct. */
void etcd_proc_cleanup(struct etcd_proc *p);
/* Returns a free TCP port on 127.0.0.1 (nothing listens on it right after), or < 0. */
int etcd_proc_free_port(void);
/* A socket bound to a free loopback port, held so that nobody else takes the port. */
int etcd_proc_bind_any(int *ret_fd, int *ret_port);
void etcd_proc_sleep_ms(int64_t ms);
