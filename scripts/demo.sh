#!/usr/bin/env bash
# Starts a local multi-region demo cluster in secure mode as four processes
# on loopback: two nodes in Ireland (ie-dublin, zones a and b), one in Norway
# (no-hamar), one in the US (us-east). It first makes the cluster's PKI with
# clover cert (a CA, a certificate per node attesting its locality, and
# users with roles and the country they work from). Creates "users"
# (residency EEA, personal data) and "videos" (anywhere, public), writes
# sample records, prints where each shard's replicas and leaders are, shows
# a read of users through the US node refused, a reader in IE served, a
# reader in CN refused users and served videos, an auditor who verifies
# placement but reads nothing, and keeps running until Ctrl-C.
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
locs=(country=IE,region=ie-dublin,zone=a country=IE,region=ie-dublin,zone=b country=NO,region=no-hamar,zone=a country=US,region=us-east,zone=a)
CERTS=$DATA/certs
# The demo's processes run in secure mode, whatever the caller's shell says.
unset CLOVER_INSECURE

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

# A node's ID and locality come from its certificate: no --node-id or
# --locality.
start_node() { # index [extra flags]
  local i=$1 id=${ids[$1]}; shift
  "$BIN/cloverd" --data-dir "$DATA/$id" \
    --tls-cert "$CERTS/node.$id.crt" --tls-key "$CERTS/node.$id.key" --tls-ca "$CERTS/ca.crt" \
    --listen-grpc "$(grpc_of "$i")" --listen-raft "127.0.0.1:$((PORT + 100 + i))" \
    --listen-gossip "$(gossip_of "$i")" "$@" >"$DATA/$id.log" 2>&1 &
  pids+=($!)
  echo "  started $id (${locs[$i]}, from its certificate) gRPC $(grpc_of "$i"), log $DATA/$id.log"
}

cert() { "$BIN/clover" cert --certs-dir "$CERTS" "$@" >/dev/null; }
echo "== making the cluster's PKI in $CERTS"
echo "\$ clover cert create-ca --cluster clover-demo"
cert create-ca --cluster clover-demo
for i in 0 1 2 3; do
  IFS=, read -r c r z <<<"${locs[$i]}"
  cert create-node --node-id "${ids[$i]}" --country "${c#country=}" --region "${r#region=}" --zone "${z#zone=}" --host 127.0.0.1
done
echo "\$ clover cert create-node --node-id ie-1 --country IE --region ie-dublin --zone a --host 127.0.0.1   (and ie-2, no-1, us-1)"
cert create-user --name admin --roles admin,auditor --jurisdiction IE
cert create-user --name alice --roles reader,writer --jurisdiction IE
cert create-user --name chen --roles reader --jurisdiction CN
cert create-user --name nora --roles auditor --jurisdiction NO
echo "\$ clover cert create-user --name alice --roles reader,writer --jurisdiction IE   (and admin: admin,auditor IE; chen: reader CN; nora: auditor NO)"
"$BIN/clover" cert --certs-dir "$CERTS" list

echo
echo "== starting 4 nodes"
start_node 0 --bootstrap --personal-data-jurisdiction EEA
start_node 1 --join "$(gossip_of 0)"
start_node 2 --join "$(gossip_of 0)"
start_node 3 --join "$(gossip_of 0)"

EP="$(grpc_of 0),$(grpc_of 1),$(grpc_of 2),$(grpc_of 3)"
# as USER clover ARGS: the CLI with USER's certificate.
as() {
  local u=$1; shift
  "$BIN/clover" --tls-cert "$CERTS/user.$u.crt" --tls-key "$CERTS/user.$u.key" --tls-ca "$CERTS/ca.crt" "$@"
}
clover() { as admin --endpoints "$EP" "$@"; }

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
echo "== writing sample records (as alice: writer, working from IE; admin may not write data)"
writer() { as alice --endpoints "$EP" "$@"; }
writer kv put users user/1001 '{"name":"Aoife Byrne","email":"aoife@example.ie","phone":"+353 1 555 0101","ip":"192.0.2.10"}'
writer kv put users user/1002 '{"name":"Ola Nordmann","email":"ola@example.no","phone":"+47 555 01 002","ip":"198.51.100.7"}'
writer kv put users user/1003 '{"name":"Seán Murphy","email":"sean@example.ie","phone":"+353 21 555 0103","ip":"203.0.113.5"}'
writer kv put videos video/9001 '{"title":"Cliffs of Moher at dawn","owner":"user/1001"}'
writer kv put videos video/9002 '{"title":"Northern lights over Hamar","owner":"user/1002"}'

echo
echo "== nora, the auditor, keeps a checkpoint of the users keyspace's audit log (and the admin stream):"
echo "\$ clover audit checkpoint --keyspace users --admin -o $DATA/audit-checkpoint.json   (as nora)"
as nora --endpoints "$EP" audit checkpoint --keyspace users --admin -o "$DATA/audit-checkpoint.json"

echo
echo "== where the data lives"
clover keyspace show users
echo
clover keyspace show videos
echo
clover cluster status

echo
echo "== a read of users through the US node is refused (it never proxies):"
echo "\$ clover --endpoints $(grpc_of 3) --direct kv get users user/1001   (as alice)"
as alice --endpoints "$(grpc_of 3)" --direct kv get users user/1001 || true
echo
echo "== the same node serves public videos:"
echo "\$ clover --endpoints $(grpc_of 3) --direct kv get videos video/9001   (as alice)"
as alice --endpoints "$(grpc_of 3)" --direct kv get videos video/9001
echo
echo "== alice, a reader working from IE, reads users through an Irish node:"
echo "\$ clover whoami; clover --endpoints $(grpc_of 0) --direct kv get users user/1001   (as alice)"
as alice --endpoints "$EP" whoami
as alice --endpoints "$(grpc_of 0)" --direct kv get users user/1001
echo
echo "== chen, a reader working from CN, is refused users even through an Irish node, and reads videos:"
echo "\$ clover --endpoints $(grpc_of 0) kv get users user/1001   (as chen)"
as chen --endpoints "$EP" kv get users user/1001 || true
echo "\$ clover --endpoints $(grpc_of 0) kv get videos video/9001   (as chen)"
as chen --endpoints "$EP" kv get videos video/9001
echo
echo "== nora, an auditor, proves where every replica is but reads no record:"
echo "\$ clover placement verify   (as nora)"
as nora --endpoints "$EP" placement verify
echo "\$ clover kv get users user/1001   (as nora)"
as nora --endpoints "$EP" kv get users user/1001 || true
echo
echo "== nora's audit: every read and write of users is recorded, keys only as HMACs; chen's refused read is an incident:"
echo "\$ clover audit tail --keyspace users -n 8   (as nora)"
as nora --endpoints "$EP" audit tail --keyspace users -n 8
# Refusals are recorded in the background: give them a moment to commit.
for _ in $(seq 1 50); do
  as nora --endpoints "$EP" audit incidents --keyspace users -w json 2>/dev/null | grep -q 'user:chen' && break
  sleep 0.1
done
echo "\$ clover audit incidents --keyspace users   (as nora)"
as nora --endpoints "$EP" audit incidents --keyspace users
echo
echo "== and proves, against the checkpoint she kept, that no replica's log was truncated or rewritten since:"
echo "\$ clover audit verify --since $DATA/audit-checkpoint.json   (as nora)"
as nora --endpoints "$EP" audit verify --since "$DATA/audit-checkpoint.json"

cat <<MSG

The cluster keeps running in secure mode. Try the CLI against it from another
terminal, as one of the users in $CERTS (admin, alice, chen, nora):
  export CLOVER_ENDPOINTS=$EP CLOVER_TLS_CA=$CERTS/ca.crt
  export CLOVER_TLS_CERT=$CERTS/user.alice.crt CLOVER_TLS_KEY=$CERTS/user.alice.key
  ./bin/clover whoami
  ./bin/clover kv scan users --prefix user/
  ./bin/clover kv get users user/1002 --follower 1s
  ./bin/clover --endpoints $(grpc_of 3) --direct kv put users user/1004 x   # refused: US node
  CLOVER_TLS_CERT=$CERTS/user.nora.crt CLOVER_TLS_KEY=$CERTS/user.nora.key ./bin/clover audit incidents --follow
  CLOVER_TLS_CERT=$CERTS/user.admin.crt CLOVER_TLS_KEY=$CERTS/user.admin.key ./bin/clover cluster status
Press Ctrl-C to stop.
MSG
# Until Ctrl-C; a node that exits meanwhile stops the demo with its log.
wait -n "${pids[@]}" || true
check_nodes
