#!/usr/bin/env bash
# Fairness under a noisy neighbour (issue 13): tenant `good` sends heartbeats at its normal
# rate, alone and then while tenant `flood` sends at 10× the quota both have; each runs open
# loop (fixed rate, whatever the answers) through examples/fairness.rs. Local mode: one
# replica. Redis mode: two replicas sharing their rate buckets through one redis-server, each
# tenant's calls spread over both. nginx `return 200` stands for SWF. Loopback only.
# Prints, per mode and phase, each tenant's admitted rate, throttles, other errors, p50, p99.
# Usage: bench/fairness.sh [SECONDS] [QUOTA_PER_SECOND] [GOOD_PER_SECOND]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; quota=${2:-200}; good_rate=${3:-100}
flood_rate=$((quota * 10))

for tool in nginx redis-server; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx redis-server >/dev/null; break; }
done
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example fairness

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.1; done; echo "nothing on $1" >&2; exit 1; }
stub=$(free_port); redis=$(free_port); r1=$(free_port); r2=$(free_port); r3=$(free_port)
token_key=bench-token-key-0123456789abcdefghij

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$stub;
    location / { default_type application/x-amz-json-1.0; return 200 '{"cancelRequested":false}'; }
  }
}
NGINX
nginx -c "$work/nginx.conf" -g 'daemon off;' &
redis-server --port "$redis" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &

mkdir -p "$work/policies"
for t in good flood; do
  cat > "$work/policies/$t.toml" <<POLICY
Version = "2012-10-17"
[[Statement]]
Effect = "Allow"
Action = "swf:RecordActivityTaskHeartbeat"
Resource = "arn:aws:swf:*:123456789012:/domain/$t"
POLICY
done
# config PORT AUDIT STORE-LINES
config() {
  cat <<CONFIG
[listen]
address = "127.0.0.1:$1"
[service]
region = "us-east-1"
account_id = "123456789012"
[upstream]
endpoint = "http://127.0.0.1:$stub"
access_key_id = "AKIDUPSTREAM"
secret_access_key_env = "BENCH_UPSTREAM"
[task_tokens]
keys = [{ id = "bench", secret_env = "BENCH_TOKEN" }]
[audit]
path = "$2"
[log]
level = "error"
[[principal]]
name = "good"
access_key_id = "AKIAGOOD000000000001"
secret_access_key_env = "BENCH_SECRET"
policies = ["good"]
[[principal]]
name = "flood"
access_key_id = "AKIAFLOOD00000000001"
secret_access_key_env = "BENCH_SECRET"
policies = ["flood"]
[[quota]]
name = "heartbeats"
actions = ["swf:RecordActivityTaskHeartbeat"]
principals = ["*"]
per = "principal"
rate_per_second = $quota
burst = $quota
$3
CONFIG
}
redis_store="[quota_store]
backend = \"redis\"
url = \"redis://127.0.0.1:$redis/0\"
on_error = \"local\""
config "$r1" audit-local.log "" > "$work/local.toml"
config "$r2" audit-1.log "$redis_store" > "$work/redis-1.toml"
config "$r3" audit-2.log "$redis_store" > "$work/redis-2.toml"
for c in local redis-1 redis-2; do
  BENCH_UPSTREAM=x BENCH_TOKEN=$token_key BENCH_SECRET=bench-secret \
    target/release/swf-warden serve --config "$work/$c.toml" &
done
for p in $stub $redis $r1 $r2 $r3; do wait_port "$p"; done

good="good:AKIAGOOD000000000001:bench-secret:good:$good_rate"
flood="flood:AKIAFLOOD00000000001:bench-secret:flood:$flood_rate"
load() { target/release/examples/fairness "$secs" "$token_key" "$@"; }
results=$work/results
: > "$results"
for mode in local redis; do
  targets=127.0.0.1:$r1
  [ "$mode" = redis ] && targets=127.0.0.1:$r2,127.0.0.1:$r3
  target/release/examples/fairness 2 "$token_key" "$targets" "$good" > /dev/null # warm-up
  sleep 1
  load "$targets" "$good" | sed "s/^/$mode alone /" >> "$results"
  sleep 2
  load "$targets" "$good" "$flood" | sed "s/^/$mode flood /" >> "$results"
  sleep 2
done

sleep 2 # the audit logs flush once a second
records() { cat "$@" 2>/dev/null | grep -c '"decision":"throttled"' || true; }
audit_local=$(records "$work/audit-local.log")
audit_redis=$(records "$work/audit-1.log" "$work/audit-2.log")
python3 - "$results" "$secs" "$quota" "$good_rate" "$flood_rate" "$audit_local" "$audit_redis" <<'PY'
import json, sys
path, secs, quota, good, flood, audit_local, audit_redis = sys.argv[1:]
throttled = {"local": 0, "redis": 0}
print(f"\nheartbeats, quota {quota}/s (burst {quota}) per principal; good at {good}/s, flood at {flood}/s; {secs} s open-loop runs")
print(f"{'mode':6} {'phase':22} {'tenant':6} {'sent':>7} {'admitted/s':>11} {'throttled':>10} {'other':>6} {'p50 ms':>8} {'p99 ms':>8}")
for line in open(path):
    mode, phase, record = line.split(" ", 2)
    r = json.loads(record)
    throttled[mode] += r["throttled"]
    phase = "good alone" if phase == "alone" else "good + flood at 10x"
    replicas = "2 replicas" if mode == "redis" else "1 replica"
    print(f"{mode:6} {phase:22} {r['tenant']:6} {r['sent']:7} {r['admitted_per_s']:11.1f} {r['throttled']:10} "
          f"{r['other'] + r['not_sent']:6} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f}")
for mode, records in (("local", audit_local), ("redis", audit_redis)):
    print(f"{mode}: {throttled[mode]} calls answered throttled, {records} `throttled` audit records")
PY
