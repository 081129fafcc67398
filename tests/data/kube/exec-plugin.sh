#!/bin/sh
# Test exec credential plugin: counts its runs in $EG_TEST_EXEC_DIR, records what it was
# given (exec info, stdin, env) and prints an ExecCredential expiring at $EG_TEST_EXPIRY.
set -eu
dir=$EG_TEST_EXEC_DIR
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$dir/info.json"
readlink /proc/self/fd/0 > "$dir/stdin.txt"
printf '%s %s\n' "$*" "${PLUGIN_GREETING:-}" > "$dir/args.txt"
exp=""
if [ -n "${EG_TEST_EXPIRY:-}" ]; then exp=",\"expirationTimestamp\":\"$EG_TEST_EXPIRY\""; fi
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s-%s"%s}}\n' "$2" "$n" "$exp"
