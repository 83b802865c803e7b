#!/usr/bin/env bash
# KV GET of one small value (SUBJECT=kv, the default), or
# GET /v1/health/service/web?passing with INSTANCES (50) passing instances
# (SUBJECT=health): Proconsul's data plane versus nginx serving the
# same bytes (same JSON body, the same X-Consul-* headers), one server
# thread each, the same keep-alive load from proconsul-loadtest, in one
# session, compared per server CPU-core.
#
# usage: loadtest/scripts/kv_vs_nginx.sh [WORKDIR]
#
# Which Proconsul is measured:
#   PROCONSUL_PID=<pid> PROCONSUL_ADDR=127.0.0.1:8500   an agent you started (left running)
#   otherwise, if $PROCONSUL_BIN exists (default target/release/proconsul), the
#   script starts `$PROCONSUL_BIN $PROCONSUL_ARGS` itself and stops it at the end
#   NGINX_ONLY=1                                         skip Proconsul (validates the tool and nginx)
# Knobs (environment): SUBJECT (kv | health), INSTANCES (50, health only),
#   KEY (bench/key-000000), VALUE_BYTES (300), DUR (10 s),
#   WARMUP (2 s), CONNS (64), THREADS (1 generator thread), PIPELINE (1),
#   ROUNDS (3; each round measures nginx then Proconsul), NGINX_PORT (18080),
#   LOADTEST (target/release/proconsul-loadtest).
#
# Everything this script starts (nginx, and Proconsul unless PROCONSUL_PID was
# given) is stopped at exit by its PID. nginx runs from a private config in
# WORKDIR, never as the system service.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/kv_vs_nginx.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)

KEY=${KEY:-bench/key-000000}
SUBJECT=${SUBJECT:-kv}
INSTANCES=${INSTANCES:-50}
case "$SUBJECT" in
  kv) BENCH_PATH="/v1/kv/$KEY" ;;
  health) BENCH_PATH="/v1/health/service/web?passing" ;;
  *) echo "SUBJECT must be kv or health" >&2; exit 1 ;;
esac
[ "$INSTANCES" -ge 1 ] && [ "$INSTANCES" -le 1000 ] || { echo "INSTANCES must be in 1..=1000" >&2; exit 1; }
VALUE_BYTES=${VALUE_BYTES:-300}
DUR=${DUR:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
THREADS=${THREADS:-1}
PIPELINE=${PIPELINE:-1}
ROUNDS=${ROUNDS:-3}
NGINX_PORT=${NGINX_PORT:-18080}
LOADTEST=${LOADTEST:-$repo/target/release/proconsul-loadtest}
PROCONSUL_BIN=${PROCONSUL_BIN:-$repo/target/release/proconsul}
PROCONSUL_HTTP_PORT=${PROCONSUL_HTTP_PORT:-18500}
PROCONSUL_ADDR=${PROCONSUL_ADDR:-127.0.0.1:$PROCONSUL_HTTP_PORT}
# A durable single server (production shape: compact JSON, WAL on disk) with
# ONE data-plane serving thread, like nginx's worker_processes 1.
PROCONSUL_ARGS=${PROCONSUL_ARGS:-agent -server -bootstrap -data-dir $work/proconsul-data -dataplane-threads 1 -http-port $PROCONSUL_HTTP_PORT -dns-port 18600 -server-port 18300}
NGINX_ONLY=${NGINX_ONLY:-}

results=$work/results.jsonl
: >"$results"
started_pids=()

log() { printf '== %s\n' "$*" >&2; }

stop_pid() { # pid signal: signal, wait up to 5 s, then SIGKILL
  local pid=$1 sig=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local i
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${started_pids[$i]}" TERM
  done
}
trap cleanup EXIT

wait_http() { # url: up to 10 s for any HTTP answer
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  return 1
}

wait_leader() { # addr: up to 10 s for /v1/status/leader to name a leader
  local body
  for _ in $(seq 100); do
    body=$(curl -s --max-time 1 "http://$1/v1/status/leader" || true)
    case $body in '"'?*'"') return 0 ;; esac
    sleep 0.1
  done
  return 1
}

# --- tools ---------------------------------------------------------------
if ! command -v nginx >/dev/null; then
  log "installing nginx-light from Debian (service start is denied by policy-rc.d)"
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
if [ ! -x "$LOADTEST" ]; then
  log "building the load generator (release)"
  (cd "$repo" && cargo build --release -p proconsul-loadtest)
fi

# --- Proconsul and the exact bytes of its answer ----------------------------
have_proconsul=
if [ -z "$NGINX_ONLY" ]; then
  if [ -n "${PROCONSUL_PID:-}" ]; then
    have_proconsul=1
  elif [ -x "$PROCONSUL_BIN" ]; then
    log "starting: $PROCONSUL_BIN $PROCONSUL_ARGS"
    # shellcheck disable=SC2086  # word splitting of the argument list is intended
    "$PROCONSUL_BIN" $PROCONSUL_ARGS >"$work/proconsul.log" 2>&1 &
    PROCONSUL_PID=$!
    started_pids+=("$PROCONSUL_PID")
    wait_http "http://$PROCONSUL_ADDR/v1/status/leader" || { log "proconsul did not answer; see $work/proconsul.log"; exit 1; }
    have_proconsul=1
  else
    log "no Proconsul (PROCONSUL_PID unset, $PROCONSUL_BIN missing): measuring nginx alone"
  fi
fi

if [ -n "$have_proconsul" ]; then
  wait_leader "$PROCONSUL_ADDR" || { log "no raft leader at $PROCONSUL_ADDR after 10 s"; exit 1; }
fi
if [ -n "$have_proconsul" ] && [ "$SUBJECT" = health ]; then
  for i in $(seq "$INSTANCES"); do
    body=$(printf '{"Node":"web-node-%03d","Address":"10.9.%d.%d","Service":{"ID":"web","Service":"web","Port":8080,"Tags":["v1","primary"]},"Check":{"CheckID":"web-alive","Name":"web alive","Status":"passing","ServiceID":"web","Output":"HTTP GET http://10.9.0.1:8080/health: 200 OK Output: ok"}}' "$i" $((i / 256)) $((i % 256)))
    code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --data "$body" "http://$PROCONSUL_ADDR/v1/catalog/register")
    [ "$code" = 200 ] || { log "registering instance $i answered $code"; exit 1; }
  done
  code=$(curl -sS -D "$work/proconsul.headers" -o "$work/body.json" -w '%{http_code}' "http://$PROCONSUL_ADDR$BENCH_PATH")
  [ "$code" = 200 ] || { log "GET $BENCH_PATH answered $code"; exit 1; }
elif [ -n "$have_proconsul" ]; then
  prefix=${KEY%??????}
  [ "$prefix$(printf '%06d' 0)" = "$KEY" ] || { log "KEY must be <prefix>000000 (what prepare-kv writes)"; exit 1; }
  "$LOADTEST" prepare-kv --target "$PROCONSUL_ADDR" --keys 1 --value-bytes "$VALUE_BYTES" --prefix "$prefix" >/dev/null
  code=$(curl -sS -D "$work/proconsul.headers" -o "$work/body.json" -w '%{http_code}' "http://$PROCONSUL_ADDR/v1/kv/$KEY")
  [ "$code" = 200 ] || { log "GET /v1/kv/$KEY answered $code"; exit 1; }
elif [ "$SUBJECT" = health ]; then
  log "SUBJECT=health needs a Proconsul to render the body"; exit 1
else
  # No Proconsul to ask: a body of the same shape and size, a one-element
  # DirEntry array holding a VALUE_BYTES alphanumeric value in base64, and
  # the headers a Consul KV GET carries.
  python3 - "$KEY" "$VALUE_BYTES" >"$work/body.json" <<'PY'
import base64, json, random, string, sys
key, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
value = ''.join(rng.choice(string.ascii_letters + string.digits) for _ in range(n)).encode()
entry = {"LockIndex": 0, "Key": key, "Flags": 0, "Value": base64.b64encode(value).decode(), "CreateIndex": 12, "ModifyIndex": 12}
sys.stdout.write(json.dumps([entry], separators=(",", ":")))
PY
  printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nVary: Accept-Encoding\r\nX-Consul-Default-Acl-Policy: allow\r\nX-Consul-Effective-Consistency: leader\r\nX-Consul-Index: 12\r\nX-Consul-Knownleader: true\r\nX-Consul-Lastcontact: 0\r\n\r\n' >"$work/proconsul.headers"
fi

# --- nginx serving the same bytes --------------------------------------------
mkdir -p "$work/nginx/tmp" "$work/nginx/logs"
python3 - "$work" "$NGINX_PORT" "${BENCH_PATH%%\?*}" >"$work/nginx/nginx.conf" <<'PY'
import sys
work, port, path = sys.argv[1], sys.argv[2], sys.argv[3]
body = open(f"{work}/body.json", "rb").read().decode()
quoted = body.replace("\\", "\\\\").replace("'", "\\'")
skip = {"content-length", "content-type", "date", "connection", "server", "transfer-encoding"}
adds = []
for line in open(f"{work}/proconsul.headers", encoding="latin-1").read().splitlines()[1:]:
    if ":" in line:
        name, value = line.split(":", 1)
        if name.strip().lower() not in skip:
            adds.append(f"        add_header {name.strip()} \"{value.strip()}\" always;")
tmp = f"{work}/nginx/tmp"
# nginx caps one config parameter at a few KiB: a long body is served from
# the file itself (the same bytes, checked with cmp below).
serve = f"return 200 '{quoted}';" if len(body) <= 2048 else f"alias {work}/body.json;"
print(f"""worker_processes 1;
daemon off;
master_process on;
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout 300s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location = {path} {{
            default_type application/json;
{chr(10).join(adds)}
            {serve}
        }}
        location / {{ return 404; }}
    }}
}}""")
PY
nginx -t -q -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf"
nginx -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" &
NGINX_PID=$!
started_pids+=("$NGINX_PID")
wait_http "http://127.0.0.1:$NGINX_PORT/" || { log "nginx did not start; see $work/nginx/logs/error.log"; exit 1; }
curl -sS -D "$work/nginx.headers" -o "$work/nginx.body" "http://127.0.0.1:$NGINX_PORT$BENCH_PATH"
cmp -s "$work/body.json" "$work/nginx.body" || { log "nginx does not serve the same body"; exit 1; }
log "same body ($(wc -c <"$work/body.json") bytes); response heads: proconsul-side $(wc -c <"$work/proconsul.headers") bytes, nginx $(wc -c <"$work/nginx.headers") bytes"

# --- the load ---------------------------------------------------------------
run_load() { # label addr pid
  "$LOADTEST" http --target "$2" --path "$BENCH_PATH" --connections "$CONNS" --threads "$THREADS" \
    --pipeline "$PIPELINE" --duration-s "$DUR" --warmup-s "$WARMUP" --server-pid "$3" \
    --label "$1" --json-out "$results" >"$work/$1.txt"
  log "$1: $(grep -E '^operations per server-core' "$work/$1.txt" | sed 's/  */ /g')"
}
for round in $(seq "$ROUNDS"); do
  run_load "nginx_r$round" "127.0.0.1:$NGINX_PORT" "$NGINX_PID"
  if [ -n "$have_proconsul" ]; then
    run_load "proconsul_r$round" "$PROCONSUL_ADDR" "$PROCONSUL_PID"
  fi
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'run':16} {'req/s':>9} {'srv cores':>9} {'req/core':>9} {'p50 µs':>8} {'p99 µs':>8} {'non-2xx':>7} {'errors':>6} {'other':>6}")
per = {}
for r in rows:
    non2xx = sum(n for s, n in r["status_counts"].items() if not s.startswith("2"))
    errors = r["connect_errors"] + r["io_errors"] + r["protocol_errors"] + r["timeouts"]
    print(f"{r['label']:16} {r['operations_per_s']:9.0f} {r['server_cores'] or 0:9.3f} {r['operations_per_server_core'] or 0:9.0f} "
          f"{r['latency']['p50_us']:8.1f} {r['latency']['p99_us']:8.1f} {non2xx:7} {errors:6} {r['other_cores']:6.2f}")
    if non2xx or errors:
        print(f"  WARNING: {r['label']} had {non2xx} non-2xx responses and {errors} errors", file=sys.stderr)
    per.setdefault(r["label"].rsplit("_r", 1)[0], []).append(r["operations_per_server_core"] or 0)
m = rows[0]["machine"]
print(f"machine: {m['cpus']} cores, kernel {m['kernel']}, {m['cpu_model']}")
for k, v in per.items():
    print(f"median {k}: {statistics.median(v):.0f} requests per server-core over {len(v)} runs")
if "proconsul" in per and "nginx" in per:
    print(f"ratio proconsul / nginx (per server-core, medians): {statistics.median(per['proconsul']) / statistics.median(per['nginx']):.2f}")
PY
log "raw results: $results"
