#!/usr/bin/env bash
# run --runtime kubernetes on the real kube-apiserver (2 s image pulls): resize 3 -> 5 -> 3 with a
# key intact, pods matching the members, and one pod created per member added, no more.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2
. "$EG_SOURCE_DIR/tests/lib/kube.sh"
start_kube_server

cluster_yaml kr 3
start_daemon "${K[@]}" --listen none
wait_until 180 "3 healthy members" kube_healthy kr 3
etcd_put kr kr-0 /e2e/resize kept

say "3 -> 5"
cluster_yaml kr 5
wait_until 180 "5 healthy members" kube_healthy kr 5
m=$(kube_members kr)
# names are never reused: additions get indexes from 3 up (a refused add burns its name)
python3 -c 'import sys; n=sorted(int(x.split("-")[1]) for x in sys.argv[1:]); sys.exit(0 if n[:3]==[0,1,2] and len(n)==5 and n[3]>=3 and n[4]>n[3] else 1)' $m ||
  fail "members after scale-up: '$m'"
[ "$(kube_pods kr)" = "$m" ] || fail "pods '$(kube_pods kr)' are not the members '$m'"
[ "$(pods_created kr)" = 5 ] || fail "$(pods_created kr) pods created for 5 members"
newest=$(tr ' ' '\n' <<<"$m" | sort -t- -k2 -n | tail -n1)
[ "$(etcd_get kr "$newest" /e2e/resize)" = kept ] || fail "the key is not on $newest"

say "5 -> 3"
cluster_yaml kr 3
three_pods() { kube_healthy kr 3 && [ "$(kube_pods kr | wc -w)" = 3 ]; }
wait_until 180 "3 healthy members and 3 pods" three_pods
m=$(kube_members kr)
[ "$(kube_pods kr)" = "$m" ] || fail "pods '$(kube_pods kr)' are not the members '$m'"
for p in $m; do
  [ "$(etcd_get kr "$p" /e2e/resize)" = kept ] || fail "the key is not on $p"
done
[ "$(pods_created kr)" = 5 ] || fail "$(pods_created kr) pods created: scale-down made some"
[ "$(kube_api "/apis/policy/v1/namespaces/default/poddisruptionbudgets/kr" | jget 'd["spec"]["minAvailable"]')" = 2 ] ||
  fail "PDB minAvailable is not 2 for size 3"
stop_daemon
