#!/usr/bin/env bash
# Compares Clover with etcd on this machine: starts a 3-node Clover cluster
# (bin/cloverd) and a 3-node etcd cluster on loopback, runs the same
# clover-bench workloads against both (16-byte keys, 256-byte values),
# alternating which system goes first from step to step, and prints a table
# of throughput and latency ratios against the targets:
#
#   write-1c           single-client writes        clover p50 <= 0.5x etcd
#   write-64c          writes, 64 clients          clover >= 3x etcd ops/s, p99 no worse
#   write-256c         writes, 256 clients         clover >= 3x etcd ops/s, p99 no worse
#   write-64c-1shard   the same two steps against a Clover keyspace of one
#   write-256c-1shard  shard, one Raft group like etcd's (the rows above use
#                      the bench's default keyspace of 8 shards)
#   read-lin-64c       linearizable reads, 64      clover >= 4x etcd ops/s
#   read-follower-64c  clover follower reads (max-stale 100ms) vs etcd
#                      serializable reads, 64      clover >= 5x etcd ops/s
#
# Environment:
#   BENCH_DURATION  measured time per step (default 20s; a number is seconds)
#   BENCH_WARMUP    warm-up per step (default 5s)
#   BENCH_QUICK=1   smoke run: 5s steps, 2s warm-up, 10,000 records
#   BENCH_RECORDS   records loaded for the read steps (default 100,000)
#   BENCH_CONNS     client connections of the multi-client steps (default 4)
#   BENCH_OUT       output directory (default ./bench-out/<timestamp>)
#   BENCH_PORT      base port (default 17400; uses base+1..3, +101..103, ... +803)
#   BENCH_PROFILE=1 take a 10s CPU profile of one cloverd during write-64c
#                   (needs cloverd's --pprof-addr)
#   BENCH_SECURE=0  skip the second Clover cluster. By default a second
#                   3-node Clover cluster runs in secure mode (certificates
#                   from clover cert, mutual TLS, the gateway deciding every
#                   request) beside the plaintext one, every Clover step
#                   runs against both in alternation, and a second table
#                   gives secure/plaintext ratios (goal: within 10%).
#                   BENCH_SECURE_FIRST=1 starts the alternation with it.
#   BENCH_AUDIT=0   skip the audited keyspace. By default the 8-shard steps
#                   also run against a keyspace of the plaintext cluster
#                   created with --audit all (every read and write recorded
#                   in its audit log), in rotation with the unaudited one,
#                   and a third table gives audited/unaudited ratios (goal:
#                   0.8x for writes, 0.7x for reads).
#
# Each run's JSON result, its table, and the nodes' logs go to the output
# directory; data directories live in a temporary directory removed at exit.
set -euo pipefail
# The benchmarked clusters run on loopback in insecure mode (cloverd,
# clover and clover-bench all read this).
export CLOVER_INSECURE=true
cd "$(dirname "$0")/.."
BIN=./bin
for b in cloverd clover clover-bench; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b missing: run 'make build' first" >&2; exit 1; }
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  DUR=${BENCH_DURATION:-5s} WARM=${BENCH_WARMUP:-2s} RECORDS=${BENCH_RECORDS:-10000}
else
  DUR=${BENCH_DURATION:-20s} WARM=${BENCH_WARMUP:-5s} RECORDS=${BENCH_RECORDS:-100000}
fi
[[ $DUR =~ ^[0-9]+$ ]] && DUR=${DUR}s
[[ $WARM =~ ^[0-9]+$ ]] && WARM=${WARM}s
[[ $DUR =~ ^[0-9]+(s|ms)$ && $WARM =~ ^[0-9]+(s|ms)$ ]] ||
  { echo "BENCH_DURATION=$DUR, BENCH_WARMUP=$WARM: want seconds (20, 20s) or milliseconds (500ms)" >&2; exit 1; }
CONNS=${BENCH_CONNS:-4}
BASE=${BENCH_PORT:-17400}
OUT=${BENCH_OUT:-./bench-out/$(date +%Y%m%d-%H%M%S)}
LOGS=$OUT/logs
mkdir -p "$OUT" "$LOGS" "$OUT/load"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/clover-bench-compare.XXXXXX")

pids=()     # cluster processes
bg_pids=()  # helpers (profile download)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${bg_pids[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg_pids[@]}" "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports: Clover gRPC base+1..3, Raft +101..103, gossip +201..203; the
# secure Clover cluster +11..13, +111..113, +211..213; etcd clients
# +401..403, peers +501..503; cloverd pprof +901.
SECURE=${BENCH_SECURE:-1}
clover_grpc() { echo "127.0.0.1:$((BASE + $1))"; }
etcd_client() { echo "127.0.0.1:$((BASE + 400 + $1))"; }
for p in $(seq $((BASE + 1)) $((BASE + 3))) $(seq $((BASE + 101)) $((BASE + 103))) $(seq $((BASE + 201)) $((BASE + 203))) \
  $(seq $((BASE + 11)) $((BASE + 13))) $(seq $((BASE + 111)) $((BASE + 113))) $(seq $((BASE + 211)) $((BASE + 213))) \
  $(seq $((BASE + 401)) $((BASE + 403))) $(seq $((BASE + 501)) $((BASE + 503))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is in use: set BENCH_PORT to another base" >&2
    exit 1
  fi
done

command -v curl >/dev/null || { echo "curl is needed to check etcd's health" >&2; exit 1; }
if ! command -v etcd >/dev/null; then
  echo "== etcd missing: installing Debian's etcd-server"
  SUDO=
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server
fi

{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) cpus"
  echo "clover: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "etcd: $(etcd --version 2>/dev/null | head -1)"
  echo "steps: ${DUR} measured after ${WARM} warm-up; ${RECORDS} records; ${CONNS} connections for multi-client steps"
  echo "data: $(df -PT "$WORK" | awk 'NR==2 {print $2}') filesystem under $WORK"
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# alive fails when a started process has exited.
alive() {
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a cluster process exited; see $LOGS" >&2; return 1; }
  done
}

echo "== starting 3 cloverd nodes"
PPROF_ADDR=
pprof_flag=()
if [ "${BENCH_PROFILE:-0}" = 1 ]; then
  if "$BIN/cloverd" --help 2>&1 | grep -q -- '--pprof-addr'; then
    PPROF_ADDR=127.0.0.1:$((BASE + 901))
    pprof_flag=(--pprof-addr "$PPROF_ADDR")
  else
    echo "note: BENCH_PROFILE=1, but cloverd has no --pprof-addr flag: no CPU profile will be taken"
  fi
fi
start_cloverd() { # index id locality [flags]
  local i=$1 id=$2 loc=$3
  shift 3
  "$BIN/cloverd" --node-id "$id" --locality "$loc" --data-dir "$WORK/$id" \
    --listen-grpc "$(clover_grpc "$i")" --listen-raft "127.0.0.1:$((BASE + 100 + i))" \
    --listen-gossip "127.0.0.1:$((BASE + 200 + i))" "$@" >"$LOGS/cloverd-$id.log" 2>&1 &
  pids+=($!)
}
start_cloverd 1 ie-1 country=IE,region=ie-dublin,zone=a --bootstrap "${pprof_flag[@]}"
start_cloverd 2 ie-2 country=IE,region=ie-dublin,zone=b --join "127.0.0.1:$((BASE + 201))"
start_cloverd 3 no-1 country=NO,region=no-hamar,zone=a --join "127.0.0.1:$((BASE + 201))"
CEP="$(clover_grpc 1),$(clover_grpc 2),$(clover_grpc 3)"

SEP=
CERTS=$WORK/certs
SECURE_FLAGS=(--insecure=false --tls-cert "$CERTS/user.bench.crt" --tls-key "$CERTS/user.bench.key" --tls-ca "$CERTS/ca.crt")
if [ "$SECURE" = 1 ]; then
  echo "== starting 3 cloverd nodes in secure mode (PKI in $CERTS)"
  cert() { "$BIN/clover" cert --certs-dir "$CERTS" "$@" >/dev/null; }
  cert create-ca --cluster clover-bench
  cert create-node --node-id ie-1 --country IE --region ie-dublin --zone a --host 127.0.0.1
  cert create-node --node-id ie-2 --country IE --region ie-dublin --zone b --host 127.0.0.1
  cert create-node --node-id no-1 --country NO --region no-hamar --zone a --host 127.0.0.1
  cert create-user --name bench --roles admin,auditor,reader,writer --jurisdiction IE
  start_secure() { # index id [flags]
    local i=$1 id=$2
    shift 2
    "$BIN/cloverd" --insecure=false --tls-cert "$CERTS/node.$id.crt" --tls-key "$CERTS/node.$id.key" --tls-ca "$CERTS/ca.crt" \
      --data-dir "$WORK/secure-$id" --listen-grpc "$(clover_grpc $((10 + i)))" --listen-raft "127.0.0.1:$((BASE + 110 + i))" \
      --listen-gossip "127.0.0.1:$((BASE + 210 + i))" "$@" >"$LOGS/cloverd-secure-$id.log" 2>&1 &
    pids+=($!)
  }
  start_secure 1 ie-1 --bootstrap
  start_secure 2 ie-2 --join "127.0.0.1:$((BASE + 211))"
  start_secure 3 no-1 --join "127.0.0.1:$((BASE + 211))"
  SEP="$(clover_grpc 11),$(clover_grpc 12),$(clover_grpc 13)"
fi

echo "== starting 3 etcd members"
ETCD_CLUSTER="e1=http://127.0.0.1:$((BASE + 501)),e2=http://127.0.0.1:$((BASE + 502)),e3=http://127.0.0.1:$((BASE + 503))"
for i in 1 2 3; do
  cu="http://$(etcd_client "$i")" pu="http://127.0.0.1:$((BASE + 500 + i))"
  etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
    --listen-client-urls "$cu" --advertise-client-urls "$cu" \
    --listen-peer-urls "$pu" --initial-advertise-peer-urls "$pu" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-token clover-bench --initial-cluster-state new \
    --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) >"$LOGS/etcd-$i.log" 2>&1 &
  pids+=($!)
done
EEP="$(etcd_client 1),$(etcd_client 2),$(etcd_client 3)"

echo "== waiting for both clusters"
ready=0
for _ in $(seq 1 300); do
  alive
  live=$("$BIN/clover" --endpoints "$CEP" cluster status -w json 2>/dev/null | grep -c '"live": true' || true)
  if [ "$SECURE" = 1 ]; then
    slive=$("$BIN/clover" --endpoints "$SEP" "${SECURE_FLAGS[@]}" cluster status -w json 2>/dev/null | grep -c '"live": true' || true)
    [ "$slive" = 3 ] || live=0
  fi
  healthy=0
  for i in 1 2 3; do
    curl -fsS "http://$(etcd_client "$i")/health" 2>/dev/null | grep -q '"health":"true"' && healthy=$((healthy + 1))
  done
  if [ "$live" = 3 ] && [ "$healthy" = 3 ]; then ready=1; break; fi
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "clusters did not come up (clover live: $live, etcd healthy: $healthy); see $LOGS" >&2; exit 1; }

WRITE=(-P bench/workloads/workload_writeonly -p "recordcount=$RECORDS")
READ=(-P bench/workloads/workload_readonly -p "recordcount=$RECORDS")

# bench DRIVER STEP [clover-bench run flags]: one measured run, its result in
# $OUT. DRIVER clover-secure is the clover driver against the secure
# cluster; its result is recorded under that name, for the second table.
bench() {
  local driver=$1 step=$2 eps extra=()
  shift 2
  case $driver in
    clover) eps=$CEP ;;
    clover-secure) eps=$SEP extra=("${SECURE_FLAGS[@]}") ;;
    clover-audited) eps=$CEP extra=(--keyspace bench-audited --audit all) ;;
    *) eps=$EEP ;;
  esac
  echo "-- $step: $driver"
  alive
  "$BIN/clover-bench" run --driver "${driver%%-*}" --endpoints "$eps" "${extra[@]}" --label "step=$step" \
    -p keylength=16 -p fieldlength=256 -p operationcount=0 -d "$DUR" --warmup "$WARM" \
    --json "$OUT/$step-$driver.json" --html "$OUT/$step-$driver.html" "$@" >"$OUT/$step-$driver.txt"
  case $driver in
    clover-*) sed -i 's/"driver": *"clover"/"driver": "'"$driver"'"/' "$OUT/$step-$driver.json" ;;
  esac
  sed -n 2p "$OUT/$step-$driver.txt"
}

# clover_both STEP FLAGS...: the step against the plaintext cluster and,
# with BENCH_SECURE, the secure one, and with BENCH_AUDIT (steps on the
# 8-shard keyspace) an audited keyspace of the plaintext cluster, in an
# order that rotates by step.
flip=${BENCH_SECURE_FIRST:-0} # 1: the secure cluster goes first in the first step
AUDIT=${BENCH_AUDIT:-1}
clover_both() {
  local step=$1
  shift
  local drivers=(clover)
  [ "$SECURE" != 1 ] || drivers+=(clover-secure)
  case $step in
    *1shard) ;;
    *) [ "$AUDIT" != 1 ] || drivers+=(clover-audited) ;;
  esac
  local n=${#drivers[@]} k=$((flip++ % ${#drivers[@]})) j
  for ((j = 0; j < n; j++)); do
    bench "${drivers[$(((j + k) % n))]}" "$step" "$@"
  done
}

# seconds DURATION: whole seconds of a duration given as N, Ns or Nms.
seconds() {
  case $1 in
    *ms) echo 0 ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}

# profile_during: a 10s CPU profile of ie-1 in the background, starting once
# the next step's warm-up is over.
profile_during() {
  [ -n "$PPROF_ADDR" ] || return 0
  (sleep "$(seconds "$WARM")"
    curl -fsS -o "$OUT/cpu-cloverd-ie-1.pprof" "http://$PPROF_ADDR/debug/pprof/profile?seconds=10" &&
    echo "   CPU profile of ie-1: $OUT/cpu-cloverd-ie-1.pprof") &
  bg_pids+=($!)
}

echo "== write-1c: single-client writes"
clover_both write-1c "${WRITE[@]}" --clients 1 --conns 1
bench etcd write-1c "${WRITE[@]}" --clients 1 --conns 1

echo "== write-64c: writes, 64 clients"
bench etcd write-64c "${WRITE[@]}" --clients 64 --conns "$CONNS"
profile_during
clover_both write-64c "${WRITE[@]}" --clients 64 --conns "$CONNS"

echo "== write-256c: writes, 256 clients"
clover_both write-256c "${WRITE[@]}" --clients 256 --conns "$CONNS"
bench etcd write-256c "${WRITE[@]}" --clients 256 --conns "$CONNS"

# One Raft group against one Raft group: a keyspace of one shard.
WRITE1=("${WRITE[@]}" --keyspace bench1 --shards 1)
echo "== write-64c-1shard: writes, 64 clients, one-shard keyspace"
bench etcd write-64c-1shard "${WRITE[@]}" --clients 64 --conns "$CONNS"
clover_both write-64c-1shard "${WRITE1[@]}" --clients 64 --conns "$CONNS"

echo "== write-256c-1shard: writes, 256 clients, one-shard keyspace"
clover_both write-256c-1shard "${WRITE1[@]}" --clients 256 --conns "$CONNS"
bench etcd write-256c-1shard "${WRITE[@]}" --clients 256 --conns "$CONNS"

echo "== loading $RECORDS records into both"
loaders=(etcd clover)
[ "$SECURE" != 1 ] || loaders+=(clover-secure)
[ "$AUDIT" != 1 ] || loaders+=(clover-audited)
for driver in "${loaders[@]}"; do
  extra=()
  case $driver in
    clover) eps=$CEP ;;
    clover-secure) eps=$SEP extra=("${SECURE_FLAGS[@]}") ;;
    clover-audited) eps=$CEP extra=(--keyspace bench-audited --audit all) ;;
    *) eps=$EEP ;;
  esac
  "$BIN/clover-bench" load --driver "${driver%%-*}" --endpoints "$eps" "${extra[@]}" "${READ[@]}" -p keylength=16 -p fieldlength=256 \
    --clients 64 --conns "$CONNS" --json "$OUT/load/$driver.json" >"$OUT/load/$driver.txt"
  echo "   $driver: $(sed -n 2p "$OUT/load/$driver.txt")"
done

echo "== read-lin-64c: linearizable reads, 64 clients"
bench etcd read-lin-64c "${READ[@]}" --clients 64 --conns "$CONNS" --read linearizable
clover_both read-lin-64c "${READ[@]}" --clients 64 --conns "$CONNS" --read linearizable

echo "== read-follower-64c: clover follower reads (max-stale 100ms) vs etcd serializable reads, 64 clients"
clover_both read-follower-64c "${READ[@]}" --clients 64 --conns "$CONNS" --read follower --max-stale 100ms
bench etcd read-follower-64c "${READ[@]}" --clients 64 --conns "$CONNS" --read serializable

echo
echo "== clover vs etcd ($DUR per step after $WARM warm-up; results in $OUT)"
"$BIN/clover-bench" compare \
  --goal 'write-1c=p50<=0.5' \
  --goal 'write-64c=ops>=3,p99<=1' \
  --goal 'write-256c=ops>=3,p99<=1' \
  --goal 'write-64c-1shard=ops>=3,p99<=1' \
  --goal 'write-256c-1shard=ops>=3,p99<=1' \
  --goal 'read-lin-64c=ops>=4' \
  --goal 'read-follower-64c=ops>=5' \
  "$OUT"/*-clover.json "$OUT"/*-etcd.json | tee "$OUT/summary.txt"
if [ "$SECURE" = 1 ]; then
  echo | tee -a "$OUT/summary.txt"
  echo "== secure mode (mutual TLS, the gateway) vs plaintext, the same steps in alternation" | tee -a "$OUT/summary.txt"
  goals=()
  for st in write-1c write-64c write-256c write-64c-1shard write-256c-1shard read-lin-64c read-follower-64c; do
    goals+=(--goal "$st=ops>=0.9")
  done
  "$BIN/clover-bench" compare --candidate clover-secure --baseline clover "${goals[@]}" \
    "$OUT"/*-clover-secure.json "$OUT"/*-clover.json | tee -a "$OUT/summary.txt"
fi
if [ "$AUDIT" = 1 ]; then
  echo | tee -a "$OUT/summary.txt"
  echo "== an audited keyspace (--audit all: every read and write recorded) vs the same cluster's unaudited one, in alternation" | tee -a "$OUT/summary.txt"
  "$BIN/clover-bench" compare --candidate clover-audited --baseline clover \
    --goal 'write-1c=ops>=0.8' --goal 'write-64c=ops>=0.8' --goal 'write-256c=ops>=0.8' \
    --goal 'read-lin-64c=ops>=0.7' --goal 'read-follower-64c=ops>=0.7' \
    "$OUT"/*-clover-audited.json "$OUT"/*-clover.json | tee -a "$OUT/summary.txt"
fi
echo "read-follower-64c compares clover follower reads (max-stale 100ms) with etcd serializable reads." | tee -a "$OUT/summary.txt"
echo "write-*c-1shard write to a Clover keyspace of one shard (one Raft group, as etcd has); the other write rows to 8 shards." | tee -a "$OUT/summary.txt"
