#!/usr/bin/env bash
# Measures how the cost of a 3-node Clover cluster grows with its shard count.
# For each shard count it starts a fresh cluster of bin/cloverd processes on
# loopback (ie-1, ie-2, no-1), creates one keyspace "scale" with that many
# shards (residency EEA, 3 replicas), waits until every shard conforms (three
# voters and a leader), lets it settle, and then:
#
#   idle   over SCALE_IDLE, each cloverd's CPU time (utime+stime from
#          /proc/PID/stat) as % of one core, and its RSS (VmRSS) at the start
#          and end of the window; leader changes and elections won in it.
#          The per-replica idle cost is
#            (total CPU % at N shards - total CPU % at 0 shards) / (3 N).
#   write  clover-bench's write-only workload (16-byte keys, 256-byte values,
#          64 clients) against the keyspace: ops/s, p50, p99 (not for 0 shards).
#
# Environment:
#   SCALE_SHARDS         shard counts (default "0 10 100 1000"; at most 1024,
#                        the server's limit per keyspace)
#   SCALE_SETTLE         wait after the shards conform (default 10s)
#   SCALE_IDLE           idle measurement window (default 30s)
#   SCALE_WRITE          measured write time (default 15s)
#   SCALE_WARMUP         write warm-up (default 5s)
#   SCALE_QUICK=1        smoke run: shards "0 10 100", settle 3s, idle 10s,
#                        write 5s, warm-up 2s
#   SCALE_READY_TIMEOUT  longest wait for the shards to conform (default 600s);
#                        past it the step is measured anyway and marked
#   SCALE_CLIENTS, SCALE_CONNS, SCALE_RECORDS
#                        write clients (64), client instances (4), key range
#                        (100000)
#   SCALE_MIN_MEM_MIB    abort a step when MemAvailable drops below this
#                        (default 2048)
#   SCALE_STOP_GRACE     seconds a node gets to stop on SIGTERM before SIGKILL
#                        (default 20)
#   BENCH_OUT            output directory (default ./bench-out/scale-<timestamp>)
#   SCALE_PORT           base port (default 18500; uses base+1..3, +101..103, +201..203)
#
# Output: scale.txt (the table), scale.csv (one row per shard count),
# nodes.csv (one row per node and shard count), env.txt, the write results
# (write-N.{txt,json,csv}) and the nodes' logs (logs/N-ID.log.gz). Data
# directories live in a temporary directory removed at exit.
set -euo pipefail
# The benchmarked clusters run on loopback in insecure mode (cloverd,
# clover and clover-bench all read this).
export CLOVER_INSECURE=true
cd "$(dirname "$0")/.."
BIN=./bin
for b in cloverd clover clover-bench; do
  [ -x "$BIN/$b" ] || { echo "$BIN/$b missing: run 'make build' first" >&2; exit 1; }
done
if ! command -v jq >/dev/null; then
  echo "installing jq (Debian) to read the CLI's JSON"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null) ||
    { echo "jq is needed to read the CLI's JSON: apt-get install -y jq" >&2; exit 1; }
fi

if [ "${SCALE_QUICK:-0}" = 1 ]; then
  SHARDS=${SCALE_SHARDS:-0 10 100} SETTLE=${SCALE_SETTLE:-3} IDLE=${SCALE_IDLE:-10}
  WDUR=${SCALE_WRITE:-5} WARM=${SCALE_WARMUP:-2}
else
  SHARDS=${SCALE_SHARDS:-0 10 100 1000} SETTLE=${SCALE_SETTLE:-10} IDLE=${SCALE_IDLE:-30}
  WDUR=${SCALE_WRITE:-15} WARM=${SCALE_WARMUP:-5}
fi
# secs VALUE NAME: whole seconds of N or Ns.
secs() {
  [[ $1 =~ ^([0-9]+)s?$ ]] || { echo "$2=$1: want whole seconds (10 or 10s)" >&2; exit 1; }
  echo "${BASH_REMATCH[1]}"
}
SETTLE=$(secs "$SETTLE" SCALE_SETTLE)
IDLE=$(secs "$IDLE" SCALE_IDLE)
WDUR=$(secs "$WDUR" SCALE_WRITE)
WARM=$(secs "$WARM" SCALE_WARMUP)
READY_TIMEOUT=$(secs "${SCALE_READY_TIMEOUT:-600}" SCALE_READY_TIMEOUT)
STOP_GRACE=$(secs "${SCALE_STOP_GRACE:-20}" SCALE_STOP_GRACE)
[ "$IDLE" -gt 0 ] || { echo "SCALE_IDLE must be at least 1s" >&2; exit 1; }
for n in $SHARDS; do
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -le 1024 ] || { echo "SCALE_SHARDS: $n: want 0..1024" >&2; exit 1; }
done
CLIENTS=${SCALE_CLIENTS:-64} CONNS=${SCALE_CONNS:-4} RECORDS=${SCALE_RECORDS:-100000}
MIN_MEM=${SCALE_MIN_MEM_MIB:-2048}
BASE=${SCALE_PORT:-18500}
TCK=$(getconf CLK_TCK)
OUT=${BENCH_OUT:-./bench-out/scale-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/logs"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/clover-bench-scale.XXXXXX")

IDS=(ie-1 ie-2 no-1)
LOCS=(country=IE,region=ie-dublin,zone=a country=IE,region=ie-dublin,zone=b country=NO,region=no-hamar,zone=a)
KS=scale
CEP="127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"

pids=() # the running cluster's cloverd processes, in IDS order

# stop_cluster sends SIGTERM, gives the nodes STOP_GRACE seconds, then SIGKILL.
# It sets STOP_SECS and STOP_KILLED (nodes that needed SIGKILL).
stop_cluster() {
  local t0 p left i
  STOP_KILLED=0 STOP_SECS=0
  [ ${#pids[@]} -gt 0 ] || return 0
  t0=$(now)
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for ((i = 0; i < STOP_GRACE * 5; i++)); do
    left=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -9 "$p" 2>/dev/null || true
      STOP_KILLED=$((STOP_KILLED + 1))
    fi
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  STOP_SECS=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  pids=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_cluster
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
mem_avail_mib() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
# cpu_ticks PID: utime+stime in clock ticks (fields 14 and 15 of /proc/PID/stat;
# the command name may hold spaces, so count from the closing parenthesis).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# status_mib PID FIELD: a kB field of /proc/PID/status (VmRSS, VmHWM) in MiB.
status_mib() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# host_busy: busy and total jiffies of all CPUs (idle and iowait are not busy).
host_busy() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
clover() { "$BIN/clover" --endpoints "$CEP" --timeout 30s "$@"; }

# alive fails when a node has exited.
alive() {
  local i
  for i in 0 1 2; do
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "   ${IDS[$i]} exited; see $OUT/logs" >&2; return 1; }
  done
}

# guard fails when the machine runs short of memory or a node has exited.
guard() {
  alive || return 1
  local m
  m=$(mem_avail_mib)
  if [ "$m" -lt "$MIN_MEM" ]; then
    echo "   only $m MiB available (SCALE_MIN_MEM_MIB=$MIN_MEM): aborting this step" >&2
    return 1
  fi
}

# nap SECONDS: sleeps, checking guard every second.
nap() {
  local i
  for ((i = 0; i < $1; i++)); do
    guard || return 1
    sleep 1
  done
}

start_cluster() { # dir
  local i join
  for i in 0 1 2; do
    join=(--join "127.0.0.1:$((BASE + 201))")
    [ "$i" = 0 ] && join=(--bootstrap)
    "$BIN/cloverd" --node-id "${IDS[$i]}" --locality "${LOCS[$i]}" --data-dir "$1/${IDS[$i]}" \
      --listen-grpc "127.0.0.1:$((BASE + 1 + i))" --listen-raft "127.0.0.1:$((BASE + 101 + i))" \
      --listen-gossip "127.0.0.1:$((BASE + 201 + i))" "${join[@]}" >"$1/${IDS[$i]}.log" 2>&1 &
    pids+=($!)
  done
}

check_ports() {
  local p
  for p in $(seq $((BASE + 1)) $((BASE + 3))) $(seq $((BASE + 101)) $((BASE + 103))) $(seq $((BASE + 201)) $((BASE + 203))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port $p is in use: set SCALE_PORT to another base" >&2
      return 1
    fi
  done
}

# wait_live: until the cluster reports three live nodes (60s at most).
wait_live() {
  local i live=0
  for ((i = 0; i < 300; i++)); do
    alive || return 1
    live=$(clover cluster status -w json 2>/dev/null | jq '[.nodes[] | select(.live)] | length' 2>/dev/null || echo 0)
    [ "$live" = 3 ] && return 0
    sleep 0.2
  done
  echo "   cluster did not come up ($live live nodes)" >&2
  return 1
}

# conforming: shards of the keyspace with three voters and a leader (empty when unknown).
conforming() { clover keyspace status "$KS" -w json 2>/dev/null | jq -r '.conforming' 2>/dev/null || true; }
# leaders: "SHARD LEADER" lines of the keyspace.
leaders() { clover keyspace show "$KS" -w json 2>/dev/null | jq -r '.shards[] | "\(.id) \(if .leader == "" then "-" else .leader end)"' 2>/dev/null || true; }
# log_won FILE FROM TO: elections won in a byte range of a log (all groups, then the meta group).
log_won() {
  tail -c +"$(($2 + 1))" "$1" | head -c "$(($3 - $2))" | awk '/msg="election won"/ { n++; if (/ shard=0 /) m++ } END { print n + 0, m + 0 }'
}

echo "date: $(date -Is)" >"$OUT/env.txt"
{
  echo "host: $(uname -srm), $(nproc) cpus, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "clover: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git status --porcelain 2>/dev/null | grep -q . && echo ' (working tree modified)')"
  echo "shards: $SHARDS; settle ${SETTLE}s, idle ${IDLE}s; writes ${WDUR}s after ${WARM}s warm-up, $CLIENTS clients, $CONNS client instances, $RECORDS keys"
  echo "data: $(df -PT "$WORK" | awk 'NR==2 {print $2}') filesystem under $WORK"
  echo "load average at start: $(loadavg)"
} >>"$OUT/env.txt"
cat "$OUT/env.txt"

CSV=$OUT/scale.csv NODES=$OUT/nodes.csv
echo "shards,status,create_s,ready_s,conforming,replicas_per_node_avg,leaders_per_node_avg,idle_cpu_pct_node_avg,idle_cpu_pct_total,idle_cpu_pct_per_replica,host_busy_pct_of_all_cpus,rss_mib_node_avg,rss_growth_mib_idle,hwm_mib_node_max,leader_changes_idle,elections_won_idle,meta_elections_won_idle,write_ops_per_sec,write_p50_ms,write_p99_ms,write_errors,stop_s,stop_killed" >"$CSV"
echo "shards,node,replicas,leaders,idle_cpu_pct,rss_mib_start,rss_mib_end,hwm_mib" >"$NODES"

# step N: one fresh cluster with N shards; appends to the CSVs.
step() {
  local n=$1 dir=$WORK/$1 status=ok create_s=- ready_s=- conf=- t0 t1 i rc
  local -a tick0 tick1 rss0 rss1 hwm held led off0 off1
  local lead0= lead1= changes=- won=0 mwon=0 hb0 hb1 host=- wops=- wp50=- wp99=- werr=-
  echo
  echo "== $n shards"
  check_ports
  mkdir -p "$dir"
  start_cluster "$dir"
  if ! wait_live; then status=no-cluster; fi

  if [ "$status" = ok ] && [ "$n" -gt 0 ]; then
    t0=$(now)
    rc=0
    for i in 1 2 3 4 5; do
      "$BIN/clover" --endpoints "$CEP" --timeout "${READY_TIMEOUT}s" keyspace create "$KS" \
        --residency EEA --replicas 3 --shards "$n" >"$dir/create.txt" 2>&1 && rc=0 && break
      rc=$?
      grep -q 'already exists' "$dir/create.txt" && rc=0 && break
      sleep 1
    done
    t1=$(now)
    create_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" != 0 ]; then
      echo "   create failed: $(tail -1 "$dir/create.txt")" >&2
      status=create-failed
    else
      echo "   keyspace created in ${create_s}s; waiting for $n conforming shards"
      local deadline last=0 shown=0
      deadline=$(awk -v a="$t0" -v d="$READY_TIMEOUT" 'BEGIN { print int(a + d) }')
      while :; do
        if ! guard; then status=aborted; break; fi
        conf=$(conforming)
        [ "$conf" = "$n" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then status=not-ready; break; fi
        if [ $(($(date +%s) - shown)) -ge 15 ]; then
          echo "   $(date +%T) conforming: ${conf:-unknown}/$n, load $(loadavg)"
          shown=$(date +%s)
        fi
        sleep 2
      done
      ready_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
      [ -n "$conf" ] || conf=unknown
      case $status in
        ok) echo "   all $n shards conform after ${ready_s}s (create included)" ;;
        not-ready) echo "   only $conf/$n shards conform after ${ready_s}s; measuring anyway" >&2 ;;
      esac
    fi
  fi

  if [ "$status" = ok ] || [ "$status" = not-ready ]; then
    echo "   settling ${SETTLE}s"
    nap "$SETTLE" || status=aborted
  fi

  if [ "$status" = ok ] || [ "$status" = not-ready ]; then
    echo "   idle ${IDLE}s"
    [ "$n" -gt 0 ] && lead0=$(leaders)
    for i in 0 1 2; do
      off0[$i]=$(stat -c %s "$dir/${IDS[$i]}.log")
      rss0[$i]=$(status_mib "${pids[$i]}" VmRSS)
    done
    read -r hb0 ht0 < <(host_busy)
    t0=$(now)
    for i in 0 1 2; do tick0[$i]=$(cpu_ticks "${pids[$i]}"); done
    if nap "$IDLE"; then
      for i in 0 1 2; do tick1[$i]=$(cpu_ticks "${pids[$i]}"); done
      t1=$(now)
      read -r hb1 ht1 < <(host_busy)
      host=$(awk -v b=$((hb1 - hb0)) -v t=$((ht1 - ht0)) 'BEGIN { printf "%.1f", (t > 0 ? 100 * b / t : 0) }')
      for i in 0 1 2; do
        rss1[$i]=$(status_mib "${pids[$i]}" VmRSS)
        hwm[$i]=$(status_mib "${pids[$i]}" VmHWM)
        off1[$i]=$(stat -c %s "$dir/${IDS[$i]}.log")
      done
      local node_json
      node_json=$(clover cluster status -w json 2>/dev/null || echo '{}')
      for i in 0 1 2; do
        held[$i]=$(jq -r --arg id "${IDS[$i]}" '[.nodes[]? | select(.id == $id) | .shardsHeld] | first // "-"' <<<"$node_json")
        led[$i]=$(jq -r --arg id "${IDS[$i]}" '[.nodes[]? | select(.id == $id) | .shardsLed] | first // "-"' <<<"$node_json")
      done
      if [ "$n" -gt 0 ]; then
        lead1=$(leaders)
        if [ -n "$lead0" ] && [ -n "$lead1" ]; then
          changes=$(join <(sort <<<"$lead0") <(sort <<<"$lead1") | awk '$2 != $3 { c++ } END { print c + 0 }')
        fi
      fi
      local w m
      for i in 0 1 2; do
        read -r w m < <(log_won "$dir/${IDS[$i]}.log" "${off0[$i]}" "${off1[$i]}")
        won=$((won + w)) mwon=$((mwon + m))
      done
      for i in 0 1 2; do
        local cpu
        cpu=$(awk -v a="${tick0[$i]}" -v b="${tick1[$i]}" -v hz="$TCK" -v s="$t0" -v e="$t1" \
          'BEGIN { printf "%.2f", 100 * (b - a) / hz / (e - s) }')
        echo "$n,${IDS[$i]},${held[$i]},${led[$i]},$cpu,${rss0[$i]},${rss1[$i]},${hwm[$i]}" >>"$NODES"
        echo "   ${IDS[$i]}: ${held[$i]} replicas (${led[$i]} led), CPU $cpu% of a core, RSS ${rss0[$i]} -> ${rss1[$i]} MiB (peak ${hwm[$i]})"
      done
      echo "   leader changes: $changes; elections won: $won (meta group: $mwon); host CPU busy: $host% of all cpus"
    else
      status=aborted
    fi
  fi

  if [ "$n" -gt 0 ] && { [ "$status" = ok ] || [ "$status" = not-ready ]; }; then
    echo "   writes: $CLIENTS clients, ${WDUR}s after ${WARM}s warm-up"
    local res=$OUT/write-$n
    rc=0
    timeout $((WARM + WDUR + 180)) "$BIN/clover-bench" run --endpoints "$CEP" --keyspace "$KS" --shards "$n" \
      -P bench/workloads/workload_writeonly -p "recordcount=$RECORDS" -p keylength=16 -p fieldlength=256 \
      -p operationcount=0 --clients "$CLIENTS" --conns "$CONNS" -d "${WDUR}s" --warmup "${WARM}s" \
      --label "shards=$n" --json "$res.json" --csv "$res.csv" >"$res.txt" 2>"$res.err" || rc=$?
    if [ "$rc" = 0 ] && [ -s "$res.csv" ]; then
      read -r wops wp50 wp99 werr < <(awk -F, '$4 == "TOTAL" { printf "%.0f %.2f %.2f %d\n", $8, $11 / 1000, $13 / 1000, $6 }' "$res.csv")
      echo "   $(sed -n 2p "$res.txt")"
    else
      echo "   clover-bench failed (exit $rc): $(tail -1 "$res.err")" >&2
      [ "$status" = ok ] && status=write-failed
    fi
  fi

  stop_cluster
  echo "   stopped in ${STOP_SECS}s$([ "$STOP_KILLED" -gt 0 ] && echo ", $STOP_KILLED node(s) needed SIGKILL")"
  for i in 0 1 2; do gzip -1 -c "$dir/${IDS[$i]}.log" >"$OUT/logs/$n-${IDS[$i]}.log.gz"; done
  rm -rf "$dir"

  local avg_held=- avg_led=- avg_cpu=- tot_cpu=- avg_rss=- growth=- max_hwm=-
  if [ ${#tick1[@]} = 3 ]; then
    read -r avg_held avg_led avg_cpu tot_cpu avg_rss growth max_hwm < <(awk -F, -v n="$n" '
      $1 == n { k++; h += $3; l += $4; c += $5; r += $7; g += $7 - $6; if ($8 > m) m = $8 }
      END { printf "%.1f %.1f %.2f %.2f %.1f %.1f %.1f\n", h / k, l / k, c / k, c, r / k, g / k, m }' "$NODES")
  fi
  echo "$n,$status,$create_s,$ready_s,$conf,$avg_held,$avg_led,$avg_cpu,$tot_cpu,-,$host,$avg_rss,$growth,$max_hwm,$changes,$won,$mwon,$wops,$wp50,$wp99,$werr,$STOP_SECS,$STOP_KILLED" >>"$CSV"
}

for n in $SHARDS; do step "$n"; done

# The per-replica cost needs the 0-shard baseline.
base=$(awk -F, 'NR > 1 && $1 == 0 && $9 != "-" { print $9 }' "$CSV")
awk -F, -v OFS=, -v base="$base" 'NR > 1 && base != "" && $1 > 0 && $9 != "-" { $10 = sprintf("%.4f", ($9 - base) / (3 * $1)) } { print }' \
  "$CSV" >"$CSV.tmp" && mv "$CSV.tmp" "$CSV"

echo "load average at end: $(loadavg)" >>"$OUT/env.txt"
{
  echo "Clover idle cost and write throughput by shard count (3 nodes, 3 replicas per shard)"
  echo "idle: ${IDLE}s after ${SETTLE}s settle; writes: $CLIENTS clients, ${WDUR}s after ${WARM}s warm-up, 16 B keys, 256 B values"
  echo "CPU % is of one core; per-replica = (total - total at 0 shards) / (3 x shards)"
  echo
  awk -F, 'NR == 1 { next }
    { printf "%-6s  %-9s  %-9s  %-9s  %-12s  %-7s  %-8s  %-8s  %-8s  %-9s  %s\n",
        $1, $6, $8, $9, $10, $12, $18, $19, $20, $5, $2 }' "$CSV" |
    { printf "%-6s  %-9s  %-9s  %-9s  %-12s  %-7s  %-8s  %-8s  %-8s  %-9s  %s\n" \
        shards "repl/node" "cpu%/node" "cpu%total" "cpu%/replica" "rss MiB" "write/s" "p50 ms" "p99 ms" conforming status
      cat; }
  echo
  echo "create s, ready s (create included), leader changes / elections won (meta) during idle, host busy % of all cpus, stop s:"
  awk -F, 'NR > 1 { printf "  %5s shards: create %s, ready %s, leader changes %s, elections %s (%s), host busy %s%%, rss growth %s MiB, peak rss %s MiB, stop %ss%s\n",
    $1, $3, $4, $15, $16, $17, $11, $13, $14, $22, ($23 > 0 ? " (" $23 " SIGKILLed)" : "") }' "$CSV"
  echo
  sed -n '/^load average/p' "$OUT/env.txt"
} | tee "$OUT/scale.txt"
echo "results in $OUT"
