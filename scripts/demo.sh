#!/usr/bin/env bash
# Starts a local multi-region demo cluster as four processes on loopback:
# two nodes in Ireland (ie-dublin, zones a and b), one in Norway (no-hamar),
# one in the US (us-east). Creates "users" (residency EEA, personal data) and
# "videos" (anywhere, public), writes sample records, prints where each
# shard's replicas and leaders are, shows a read of users through the US node
# refused, and keeps running until Ctrl-C.
#
# Environment: CLOVER_DEMO_DIR (default ./demo-data), CLOVER_DEMO_PORT
# (first gRPC port, default 7401; node i uses gRPC PORT+i, Raft PORT+100+i,
# gossip PORT+200+i), CLOVER_DEMO_BIN (where cloverd and clover are,
# default ./bin). Each start keeps the previous run's logs in
# $CLOVER_DEMO_DIR/previous/ and starts on fresh data.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${CLOVER_DEMO_BIN:-./bin}
DATA=${CLOVER_DEMO_DIR:-./demo-data}
PORT=${CLOVER_DEMO_PORT:-7401}
[ -x "$BIN/cloverd" ] && [ -x "$BIN/clover" ] || { echo "run 'make build' first" >&2; exit 1; }

ids=(ie-1 ie-2 no-1 us-1)

# port_taken reports whether something accepts TCP connections on the port.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# check_ports stops the demo before it starts anything when one of its
# ports is taken, naming the port and the variable that moves them all.
check_ports() {
  local i kind p
  for i in 0 1 2 3; do
    for kind in gRPC:0 Raft:100 gossip:200; do
      p=$((PORT + ${kind#*:} + i))
      if port_taken "$p"; then
        echo "port $p (${kind%%:*} of ${ids[$i]}) on 127.0.0.1 is taken by another program." >&2
        echo "The demo uses gRPC $PORT-$((PORT + 3)), Raft $((PORT + 100))-$((PORT + 103)) and gossip $((PORT + 200))-$((PORT + 203));" >&2
        echo "set CLOVER_DEMO_PORT to move them, e.g. CLOVER_DEMO_PORT=$((PORT + 1000)) make run" >&2
        exit 1
      fi
    done
  done
}

# fresh_data empties the demo directory but keeps the last run's logs in
# previous/ (replacing the logs kept before them).
fresh_data() {
  mkdir -p "$DATA"
  local logs=("$DATA"/*.log)
  if [ -e "${logs[0]}" ]; then
    rm -rf "$DATA/previous"
    mkdir "$DATA/previous"
    mv "${logs[@]}" "$DATA/previous/"
  fi
  find "$DATA" -mindepth 1 -maxdepth 1 ! -name previous -exec rm -rf {} +
}

check_ports
fresh_data
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "stopping the demo cluster..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; data and logs are in $DATA"
  [ ! -d "$DATA/previous" ] || echo "(the logs of the run before are in $DATA/previous)"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# check_nodes stops the demo if a node has exited, with the end of its log.
check_nodes() {
  local i
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "node ${ids[$i]} exited; the end of $DATA/${ids[$i]}.log:" >&2
      tail -n 20 "$DATA/${ids[$i]}.log" | sed 's/^/  /' >&2
      exit 1
    fi
  done
}

grpc_of() { echo "127.0.0.1:$((PORT + $1))"; }
gossip_of() { echo "127.0.0.1:$((PORT + 200 + $1))"; }

start_node() { # index locality [extra flags]
  local i=$1 id=${ids[$1]} loc=$2; shift 2
  "$BIN/cloverd" --node-id "$id" --locality "$loc" --data-dir "$DATA/$id" \
    --listen-grpc "$(grpc_of "$i")" --listen-raft "127.0.0.1:$((PORT + 100 + i))" \
    --listen-gossip "$(gossip_of "$i")" "$@" >"$DATA/$id.log" 2>&1 &
  pids+=($!)
  echo "  started $id ($loc) gRPC $(grpc_of "$i"), log $DATA/$id.log"
}

echo "== starting 4 nodes"
start_node 0 country=IE,region=ie-dublin,zone=a --bootstrap --personal-data-jurisdiction EEA
start_node 1 country=IE,region=ie-dublin,zone=b --join "$(gossip_of 0)"
start_node 2 country=NO,region=no-hamar,zone=a --join "$(gossip_of 0)"
start_node 3 country=US,region=us-east,zone=a --join "$(gossip_of 0)"

EP="$(grpc_of 0),$(grpc_of 1),$(grpc_of 2),$(grpc_of 3)"
clover() { "$BIN/clover" --endpoints "$EP" "$@"; }

echo "== waiting for all 4 nodes to be live"
for _ in $(seq 1 150); do
  live=$(clover cluster status -w json 2>/dev/null | grep -c '"live": true' || true)
  [ "$live" = 4 ] && break
  check_nodes
  sleep 0.2
done
[ "$live" = 4 ] || { echo "cluster did not come up; see $DATA/*.log" >&2; exit 1; }

echo
echo "== creating keyspaces"
echo "\$ clover keyspace create users --residency EEA --replicas 3 --shards 8 --class personal"
clover keyspace create users --residency EEA --replicas 3 --shards 8 --class personal >/dev/null
echo "\$ clover keyspace create videos --residency anywhere --replicas 3 --shards 4 --class public"
clover keyspace create videos --residency anywhere --replicas 3 --shards 4 --class public >/dev/null

echo
echo "== the personal-data guardrail (EEA, recorded when ie-1 founded the cluster) keeps users in the EEA:"
echo "\$ clover keyspace set-policy users --residency anywhere"
clover keyspace set-policy users --residency anywhere || true

echo
echo "== writing sample records"
clover kv put users user/1001 '{"name":"Aoife Byrne","email":"aoife@example.ie","phone":"+353 1 555 0101","ip":"192.0.2.10"}'
clover kv put users user/1002 '{"name":"Ola Nordmann","email":"ola@example.no","phone":"+47 555 01 002","ip":"198.51.100.7"}'
clover kv put users user/1003 '{"name":"Seán Murphy","email":"sean@example.ie","phone":"+353 21 555 0103","ip":"203.0.113.5"}'
clover kv put videos video/9001 '{"title":"Cliffs of Moher at dawn","owner":"user/1001"}'
clover kv put videos video/9002 '{"title":"Northern lights over Hamar","owner":"user/1002"}'

echo
echo "== where the data lives"
clover keyspace show users
echo
clover keyspace show videos
echo
clover cluster status

echo
echo "== a read of users through the US node is refused (it never proxies):"
echo "\$ clover --endpoints $(grpc_of 3) --direct kv get users user/1001"
"$BIN/clover" --endpoints "$(grpc_of 3)" --direct kv get users user/1001 || true
echo
echo "== the same node serves public videos:"
echo "\$ clover --endpoints $(grpc_of 3) --direct kv get videos video/9001"
"$BIN/clover" --endpoints "$(grpc_of 3)" --direct kv get videos video/9001
echo
echo "== through an Irish node, users is served:"
echo "\$ clover --endpoints $(grpc_of 0) --direct kv get users user/1001"
"$BIN/clover" --endpoints "$(grpc_of 0)" --direct kv get users user/1001

cat <<MSG

The cluster keeps running. Try the CLI against it from another terminal:
  export CLOVER_ENDPOINTS=$EP
  ./bin/clover cluster status
  ./bin/clover kv scan users --prefix user/
  ./bin/clover kv get users user/1002 --follower 1s
  ./bin/clover --endpoints $(grpc_of 3) --direct kv put users user/1004 x   # refused: US node
Press Ctrl-C to stop.
MSG
# Until Ctrl-C; a node that exits meanwhile stops the demo with its log.
wait -n "${pids[@]}" || true
check_nodes
