/* local_logs: a local member's etcd.log kept to a size while etcd goes on writing to it. */
#pragma once

/* When path (a member's etcd.log) has grown past ETCD_GITOPS_MEMBER_LOG_MAX_SIZE (default
 * 10 MiB), copies it to path.1, the older copies moving up to path.ETCD_GITOPS_MEMBER_LOG_KEEP
 * (default 3; the oldest is dropped), and empties it. etcd holds the file open with
 * O_APPEND, so it goes on writing at the new end; what it writes between the copy and the
 * emptying (microseconds) is lost, as with logrotate's copytruncate. path.1 appears, a new
 * file, only once path is empty again: a reader that sees a new path.1 finds there what it
 * had not read yet. A rotation under way elsewhere is left to finish. 0 when nothing was
 * to do or the log was rotated, else a negative errno. */
int local_member_log_rotate(const char *path);
