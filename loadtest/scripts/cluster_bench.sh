#!/usr/bin/env bash
# Cluster write benchmarks, in one session:
#   (f) KV PUT throughput and latency: 3 Proconsul servers vs a 3-member etcd,
#       both on loopback, data dirs on the same disk, the same generator
#       (proconsul-loadtest put), clients 1/16/64, 256-byte values, 10k keys;
#       writes per server-core = acked writes / CPU-s of all 3 servers' trees;
#   (g) write -> client visibility: a write on the Proconsul leader until a
#       client agent shows it (blocking KV query; DNS answer of a service
#       registered through the catalog);
#   (h) failover: writes to every server, SIGKILL of the leader's process
#       tree, time to the first write acknowledged after the kill; the killed
#       server is restarted between runs. Proconsul, then etcd.
#
# usage: loadtest/scripts/cluster_bench.sh [WORKDIR]
# Knobs (environment): PARTS ("put visibility failover"), CLIENTS ("1 16 64"),
#   ROUNDS (2; each round measures etcd then Proconsul per client count),
#   DUR (10 s), WARMUP (2 s), KEYS (10000), VALUE_BYTES (256),
#   TARGETING ("leader"; "leader all" also measures clients spread over all
#   servers), VIS_WRITES (200), FAILOVERS (3), ETCD_FAILOVER (1),
#   FAILOVER_TIMEOUT_MS (200: a write stuck on the dead leader is abandoned
#   and resent after this long, so it bounds the resolution of the failover time),
#   PROCONSUL_BIN, LOADTEST, ETCD (etcd binary; Debian's etcd-server is
#   installed when missing).
#
# Addresses: Proconsul servers 127.0.45.11-13 and a client agent 127.0.45.14
# (default ports 8500/8600/8300/8301/8302), etcd 127.0.46.11-13 (2379/2380).
# Everything this script starts is stopped at exit by PID (whole process
# trees: a Proconsul control plane and its data-plane child). Every wait is
# bounded.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/cluster_bench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

PARTS=${PARTS:-put visibility failover}
CLIENTS=${CLIENTS:-1 16 64}
ROUNDS=${ROUNDS:-2}
DUR=${DUR:-10}
WARMUP=${WARMUP:-2}
KEYS=${KEYS:-10000}
VALUE_BYTES=${VALUE_BYTES:-256}
TARGETING=${TARGETING:-leader}
VIS_WRITES=${VIS_WRITES:-200}
FAILOVERS=${FAILOVERS:-3}
ETCD_FAILOVER=${ETCD_FAILOVER:-1}
FAILOVER_TIMEOUT_MS=${FAILOVER_TIMEOUT_MS:-200}
PROCONSUL_BIN=${PROCONSUL_BIN:-$repo/target/release/proconsul}
LOADTEST=${LOADTEST:-$repo/target/release/proconsul-loadtest}
ETCD=${ETCD:-etcd}

PC_IPS=(127.0.45.11 127.0.45.12 127.0.45.13)
PC_CLIENT_IP=127.0.45.14
ETCD_IPS=(127.0.46.11 127.0.46.12 127.0.46.13)

results=$work/results.jsonl
: >"$results"
declare -A pid_of # name -> root pid
started=()        # every root pid started, for the exit trap

log() { printf '== %s\n' "$*" >&2; }

kill_tree() { # pid signal: the pid and every descendant
  local pid=$1 sig=$2 child
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do kill_tree "$child" "$sig"; done
  kill "-$sig" "$pid" 2>/dev/null || true
}

stop_tree() { # pid: TERM, up to 5 s, then KILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  local kids
  kids=$(pgrep -P "$pid" 2>/dev/null || true)
  kill_tree "$pid" TERM
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill_tree "$pid" KILL
  for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local p
  for p in "${started[@]}"; do stop_tree "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_until() { # seconds description command...: polls every 0.2 s
  local secs=$1 what=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${secs}s waiting for: $what"
      return 1
    fi
    sleep 0.2
  done
}

# ---------------------------------------------------------------- Proconsul
pc_join_args() { # own ip: -retry-join for the other servers
  local ip
  for ip in "${PC_IPS[@]}"; do [[ $ip == "$1" ]] || printf -- '-retry-join=%s ' "$ip"; done
}

start_pc_server() { # index 1..3 (restart keeps the data dir)
  local i=$1 ip=${PC_IPS[$(($1 - 1))]}
  local name=pcs$i
  mkdir -p "$work/proconsul/$name"
  # shellcheck disable=SC2046
  "$PROCONSUL_BIN" agent -server -bootstrap-expect=3 -data-dir="$work/proconsul/$name" -node="$name" \
    -client "$ip" -bind "$ip" -retry-interval=200ms $(pc_join_args "$ip") \
    >>"$work/proconsul/$name.log" 2>&1 &
  pid_of[$name]=$!
  started+=("$!")
}

start_pc_client() {
  mkdir -p "$work/proconsul/pcc1"
  local joins=()
  local ip
  for ip in "${PC_IPS[@]}"; do joins+=("-retry-join=$ip"); done
  "$PROCONSUL_BIN" agent -data-dir="$work/proconsul/pcc1" -node=pcc1 -client "$PC_CLIENT_IP" -bind "$PC_CLIENT_IP" \
    -retry-interval=200ms "${joins[@]}" >>"$work/proconsul/pcc1.log" 2>&1 &
  pid_of[pcc1]=$!
  started+=("$!")
}

pc_leader_of() { # ip: the leader's ip as that agent sees it (empty if none)
  curl -s -m 1 "http://$1:8500/v1/status/leader" | tr -d '"' | sed 's/:.*//'
}

pc_has_leader() { [[ -n $(pc_leader_of "$1") ]]; }

pc_leader() { # the leader's ip as the servers agree
  local ip l
  for ip in "${PC_IPS[@]}"; do
    l=$(pc_leader_of "$ip" || true)
    [[ -n $l ]] && { echo "$l"; return 0; }
  done
  return 1
}

# --------------------------------------------------------------------- etcd
ensure_etcd() {
  command -v "$ETCD" >/dev/null && return 0
  log "installing Debian's etcd-server (the system service is not used)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server etcd-client >"$work/apt.log" 2>&1
  command -v "$ETCD" >/dev/null
}

etcd_initial_cluster() {
  local i out=""
  for i in 1 2 3; do out+="e$i=http://${ETCD_IPS[$((i - 1))]}:2380,"; done
  echo "${out%,}"
}

start_etcd_member() { # index 1..3 (restart keeps the data dir)
  local i=$1 ip=${ETCD_IPS[$(($1 - 1))]}
  local name=e$i
  "$ETCD" --name "$name" --data-dir "$work/etcd/$name" \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
    --initial-cluster "$(etcd_initial_cluster)" --initial-cluster-state new \
    --initial-cluster-token proconsul-bench --log-level warn \
    >>"$work/etcd/$name.log" 2>&1 &
  pid_of[$name]=$!
  started+=("$!")
}

etcd_healthy() { curl -s -m 1 "http://$1:2379/health" | grep -q '"health":"true"'; }

etcd_leader() { # the ip of the member that says it leads
  local ip
  for ip in "${ETCD_IPS[@]}"; do
    if curl -s -m 1 -X POST "http://$ip:2379/v3/maintenance/status" -d '{}' |
      python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if d["header"]["member_id"]==d["leader"] else 1)' 2>/dev/null; then
      echo "$ip"
      return 0
    fi
  done
  return 1
}

# ------------------------------------------------------------------- start
[[ -x $PROCONSUL_BIN ]] || { log "no $PROCONSUL_BIN: cargo build --release -p proconsul-control"; exit 1; }
[[ -x $LOADTEST ]] || { log "no $LOADTEST: cargo build --release -p proconsul-loadtest"; exit 1; }
ensure_etcd
mkdir -p "$work/proconsul" "$work/etcd"

log "machine: $(nproc) cores, $(uname -r); $(uptime)"
log "starting 3 Proconsul servers + 1 client agent, 3 etcd members (work dir $work)"
for i in 1 2 3; do start_pc_server "$i"; done
start_pc_client
for i in 1 2 3; do start_etcd_member "$i"; done
for ip in "${PC_IPS[@]}" "$PC_CLIENT_IP"; do wait_until 60 "Proconsul $ip knows a leader" pc_has_leader "$ip"; done
for ip in "${ETCD_IPS[@]}"; do wait_until 60 "etcd $ip healthy" etcd_healthy "$ip"; done
pc_pids="${pid_of[pcs1]},${pid_of[pcs2]},${pid_of[pcs3]}"
etcd_pids="${pid_of[e1]},${pid_of[e2]},${pid_of[e3]}"

# --------------------------------------------------------------------- put
if [[ " $PARTS " == *" put "* ]]; then
  for targeting in $TARGETING; do
    for c in $CLIENTS; do
      for r in $(seq "$ROUNDS"); do
        for system in etcd proconsul; do
          if [[ $system == etcd ]]; then
            leader=$(etcd_leader) port=2379 proto=etcd pids=$etcd_pids ips=("${ETCD_IPS[@]}")
          else
            leader=$(pc_leader) port=8500 proto=consul pids=$pc_pids ips=("${PC_IPS[@]}")
          fi
          if [[ $targeting == leader ]]; then
            targets="$leader:$port"
          else
            targets=$(printf "%s:$port," "${ips[@]}")
            targets=${targets%,}
          fi
          log "put: $system, $c clients, $targeting ($targets), round $r"
          "$LOADTEST" put --protocol "$proto" --targets "$targets" --clients "$c" --keys "$KEYS" \
            --value-bytes "$VALUE_BYTES" --duration-s "$DUR" --warmup-s "$WARMUP" --server-pids "$pids" \
            --label "${system}_${targeting}_c${c}_r${r}" --json-out "$results" >"$work/put_${system}_${targeting}_c${c}_r${r}.txt" ||
            log "put run failed: $system $c clients (see $work/put_${system}_${targeting}_c${c}_r${r}.txt)"
        done
      done
    done
  done
  python3 - "$results" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if '"mode":"put"' in l]
by = {}
for r in rows:
    system, targeting, c, _ = r["label"].split("_")
    by.setdefault((targeting, int(c[1:])), {}).setdefault(system, []).append(r)
print(f"{'targets':8} {'clients':>7} | {'system':9} {'writes/s':>9} {'per core':>9} {'srv cores':>9} {'p50 ms':>7} {'p99 ms':>7} {'other':>6} | ratio/s  ratio/core")
for (targeting, c), systems in sorted(by.items()):
    med = {}
    for system in ("etcd", "proconsul"):
        runs = systems.get(system, [])
        for x in runs:
            print(f"{targeting:8} {c:>7} | {system:9} {x['operations_per_s']:>9.0f} {x['operations_per_server_core'] or 0:>9.0f} "
                  f"{x['server_cores'] or 0:>9.2f} {x['latency']['p50_us']/1000:>7.2f} {x['latency']['p99_us']/1000:>7.2f} {x['other_cores']:>6.2f} |")
        if runs:
            med[system] = (statistics.median(x["operations_per_s"] for x in runs),
                           statistics.median(x["operations_per_server_core"] or 0 for x in runs))
    if len(med) == 2 and med["etcd"][0] > 0 and med["etcd"][1] > 0:
        print(f"{targeting:8} {c:>7} | medians: proconsul / etcd = {med['proconsul'][0]/med['etcd'][0]:.2f}x writes/s, "
              f"{med['proconsul'][1]/med['etcd'][1]:.2f}x per server-core")
PY
fi

# -------------------------------------------------------------- visibility
if [[ " $PARTS " == *" visibility "* ]]; then
  leader=$(pc_leader)
  log "visibility: writes on $leader, watched on the client agent $PC_CLIENT_IP"
  "$LOADTEST" visibility --leader "$leader:8500" --client "$PC_CLIENT_IP:8500" --client-dns "$PC_CLIENT_IP:8600" \
    --writes "$VIS_WRITES" --label visibility --json-out "$results" || log "visibility run failed"
fi

# ---------------------------------------------------------------- failover
failover_runs() { # system
  local system=$1 r leader idx
  for r in $(seq "$FAILOVERS"); do
    local args=()
    if [[ $system == proconsul ]]; then
      for i in 1 2 3; do args+=(--server-pid "${PC_IPS[$((i - 1))]}=${pid_of[pcs$i]}"); done
      targets=$(printf "%s:8500," "${PC_IPS[@]}")
      proto=consul
    else
      for i in 1 2 3; do args+=(--server-pid "${ETCD_IPS[$((i - 1))]}=${pid_of[e$i]}"); done
      targets=$(printf "%s:2379," "${ETCD_IPS[@]}")
      proto=etcd
    fi
    log "failover: $system, run $r"
    out=$("$LOADTEST" failover --protocol "$proto" --targets "${targets%,}" "${args[@]}" \
      --timeout-ms "$FAILOVER_TIMEOUT_MS" --label "failover_${system}_r$r" --json-out "$results" | tail -n 1) || { log "failover run failed"; continue; }
    leader=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["old_leader"].split(":")[0])' "$out")
    # restart the killed server (same data dir) and let it catch up
    if [[ $system == proconsul ]]; then
      for i in 1 2 3; do [[ ${PC_IPS[$((i - 1))]} == "$leader" ]] && idx=$i; done
      wait "${pid_of[pcs$idx]}" 2>/dev/null || true
      start_pc_server "$idx"
      wait_until 60 "restarted $leader knows a leader" pc_has_leader "$leader"
      pc_pids="${pid_of[pcs1]},${pid_of[pcs2]},${pid_of[pcs3]}"
    else
      for i in 1 2 3; do [[ ${ETCD_IPS[$((i - 1))]} == "$leader" ]] && idx=$i; done
      wait "${pid_of[e$idx]}" 2>/dev/null || true
      start_etcd_member "$idx"
      wait_until 60 "restarted etcd $leader healthy" etcd_healthy "$leader"
    fi
    sleep 3
  done
}

if [[ " $PARTS " == *" failover "* ]]; then
  failover_runs proconsul
  [[ $ETCD_FAILOVER == 1 ]] && failover_runs etcd
  python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"mode":"failover"' in l]
for r in rows:
    print(f"{r['label']:22} old leader {r['old_leader']:18} kill->first ack {r['kill_to_first_ack_ms'] or float('nan'):8.1f} ms"
          f"  kill->new leader {r['kill_to_new_leader_ms'] or float('nan'):8.1f} ms  new {r['new_leader']}  failed writes {r['failed_writes']}")
PY
fi

log "results: $results; logs: $work/proconsul/*.log, $work/etcd/*.log"
