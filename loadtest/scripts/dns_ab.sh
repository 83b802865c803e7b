#!/usr/bin/env bash
# Paired, interleaved DNS A/B against the peer kit's canned responder
# (BENCHMARKS.md (b), "Session 6"): the canned responder and each given
# Proconsul binary are started once (one data-plane thread, 10,000 services
# each, distinct ports), then ROUNDS rounds of DUR-second dnsblast runs go
# canned -> binary 1 -> binary 2 ..., each measured by the peer kit's
# cpu_meter.py, so every round compares the servers seconds apart. Prints
# QPS per server-core per round and each binary's ratio to canned.
#
# usage: loadtest/scripts/dns_ab.sh ROUNDS DUR BINARY... 
# env:   PEERS  a peers.sh work dir (canned, dnsblast, queries_a.txt built
#               there by a previous `bash /work/shared/bench/peers.sh DIR`),
#               default /tmp/peers
#        LOADTEST  proconsul-loadtest binary, default target/release/proconsul-loadtest
#        Q      a | srv (query file), default a
# Everything listens on 127.0.0.1; every process started here is killed by PID at the end.
set -euo pipefail
ROUNDS=$1; DUR=$2; shift 2
KIT=/work/shared/bench
PEERS=${PEERS:-/tmp/peers}
LOADTEST=${LOADTEST:-target/release/proconsul-loadtest}
Q=${Q:-a}
OUT=$(mktemp -d /tmp/dns_ab.XXXXXX); mkdir -p "$OUT/raw"
cp "$PEERS"/queries_*.txt "$PEERS/dnsblast" "$OUT/"
pids=(); ports=(); labels=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$PEERS/canned" 5355 1 32 2>/dev/null & pids+=($!); ports+=(5355); labels+=(canned)
i=0
for bin in "$@"; do
  hp=$((18500 + i * 10)); dp=$((18600 + i * 10)); sp=$((18300 + i * 10)); lp=$((18301 + i * 10))
  "$bin" agent -dev -dataplane-threads 1 -http-port $hp -dns-port $dp -server-port $sp -serf-lan-port $lp \
    > "$OUT/agent_$i.log" 2>&1 &
  pids+=($!); ports+=($dp); labels+=("b$i-$(basename "$bin")")
  sleep 3
  "$LOADTEST" prepare-catalog --target 127.0.0.1:$hp --services 10000 > /dev/null
  i=$((i + 1))
done
sleep 2
cd "$OUT"
for r in $(seq "$ROUNDS"); do
  for k in "${!pids[@]}"; do
    python3 "$KIT/cpu_meter.py" "r${r}_${labels[$k]}" "${pids[$k]}" -- \
      ./dnsblast 127.0.0.1 "${ports[$k]}" "queries_$Q.txt" "$DUR" 512 8 32 > /dev/null
  done
done
python3 - "$OUT/raw/results.jsonl" "${labels[@]}" <<'PY'
import collections, json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = sys.argv[2:]
by = collections.defaultdict(dict)
for r in rows:
    rnd, lab = r["label"].split("_", 1)
    by[rnd][lab] = r["qps_per_server_core"]
for rnd in by:
    print(rnd, " ".join(f"{l}={int(by[rnd][l])}" for l in labels))
for l in labels[1:]:
    ratios = [by[k][l] / by[k]["canned"] for k in by]
    print(f"{l}: / canned per round {[round(x, 2) for x in ratios]}, median {statistics.median(ratios):.2f}")
PY
echo "raw results: $OUT/raw/results.jsonl"
