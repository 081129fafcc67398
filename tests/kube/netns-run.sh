#!/usr/bin/env bash
# Runs a command in a private mount namespace whose /etc/hosts is HOSTS_FILE (the file that
# apiserver.py --hosts-file keeps in sync with pod and service names), so the API test server,
# the etcd processes it starts and the daemon under test all resolve cluster DNS names.
# Usage: netns-run.sh HOSTS_FILE COMMAND [ARG...]   Exit 77: not permitted here (skip).
set -euo pipefail

if (($# < 2)); then
        echo "usage: $0 HOSTS_FILE COMMAND [ARG...]" >&2
        exit 2
fi
hosts=$1
shift
if [[ $(id -u) != 0 ]]; then
        echo "netns-run.sh: needs root for unshare --mount and mount --bind" >&2
        exit 77
fi
if ! unshare --mount --propagation private true 2>/dev/null; then
        echo "netns-run.sh: unshare --mount is not permitted here" >&2
        exit 77
fi
# The bind mount pins the file's inode: the server rewrites it in place, never by rename.
[[ -e $hosts ]] || printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$hosts"
hosts=$(realpath "$hosts")
exec unshare --mount --propagation private -- \
        /bin/sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$hosts" "$@"
