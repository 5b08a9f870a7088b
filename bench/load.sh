#!/usr/bin/env bash
# Load benchmark (issue 6): the same signed RecordActivityTaskHeartbeat load through HAProxy
# doing plain HTTP pass-through (no authentication, no policy) and through swf-warden
# (verifying, authorizing, unsealing and re-signing every call), both in front of the same
# nginx stub upstream, on this machine, in one run, alternating. Then the denial path with the
# audit log on, counting records against answered requests. Loopback only.
# Each round also drives both at the same fixed pace (every connection waits PACE_MS, default
# 4, after each answer), to compare the latency each adds below saturation.
# With QUOTAS=1, a second swf-warden with the same configuration plus a heartbeat quota (a
# rate bucket and a cap on calls in flight per principal, set never to refuse) takes the same
# allowed load in each round, to measure what the quota check costs. QUOTAS=redis keeps that
# bucket in a redis-server started here (LEASE_MS, default 50; 0 asks Redis on every call).
# With SESSION=1 (not with QUOTAS), the same swf-warden also takes the allowed load signed
# with a role session's temporary credentials (issue 14), to compare with the static key.
# swf-warden runs in its default configuration (log level `info`, access log on, its standard
# error to a file as a service manager would take it); a second swf-warden, the same with
# `[log] access = false`, takes the same load in each round beside it (issue 28).
# Per call, for both proxies: user and system CPU, voluntary and involuntary context switches
# (issue 15), and in one more run each under `perf stat`, the syscalls.
# Usage: bench/load.sh [SECONDS_PER_RUN] [ROUNDS] [CONNECTIONS]
#        PROFILE=perf.data bench/load.sh 10   (perf record swf-warden under the allowed load;
#        CALL_GRAPH=dwarf for call graphs through code built without frame pointers)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; rounds=${2:-2}; conns=${3:-64}

for tool in nginx haproxy wrk perf; do
  command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx haproxy wrk linux-perf >/dev/null; break; }
done
cargo build --release --locked --quiet
cargo build --release --locked --quiet --example bench_request

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 0.5; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stub=$(free_port); ha=$(free_port); warden=$(free_port); warden_q=$(free_port); warden_n=$(free_port)
token_key=bench-token-key-0123456789abcdefghij

cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
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

cat > "$work/haproxy.cfg" <<HAPROXY
global
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 75s
  timeout server 75s
  option http-keep-alive
frontend in
  bind 127.0.0.1:$ha
  default_backend stub
backend stub
  http-reuse always
  server s1 127.0.0.1:$stub
HAPROXY
haproxy -f "$work/haproxy.cfg" -q &
ha_pid=$!

mkdir -p "$work/policies"
cat > "$work/policies/bench.toml" <<'POLICY'
Version = "2012-10-17"
[[Statement]]
Sid = "Work"
Effect = "Allow"
Action = ["swf:PollForActivityTask", "swf:RecordActivityTaskHeartbeat", "swf:RespondActivityTask*"]
Resource = "arn:aws:swf:*:123456789012:/domain/bench"
POLICY
cat > "$work/config.toml" <<CONFIG
[listen]
address = "127.0.0.1:$warden"
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
path = "audit.log"
[[principal]]
name = "bench"
access_key_id = "AKIABENCH00000000001"
secret_access_key_env = "BENCH_SECRET"
policies = ["bench"]
[[principal]]
name = "denied"
access_key_id = "AKIADENIED0000000001"
secret_access_key_env = "BENCH_SECRET"
CONFIG
if [ -n "${SESSION:-}" ]; then
  [ -z "${QUOTAS:-}" ] || { echo "SESSION and QUOTAS are measured apart" >&2; exit 64; }
  printf '{"keys": [%s]}' "$(cat tests/fixtures/oidc/rsa-2048.jwk.json)" > "$work/jwks.json"
  cat >> "$work/config.toml" <<STS
[sts]
session_keys = [{ id = "bench", secret_env = "BENCH_TOKEN" }]
[[oidc_provider]]
name = "bench"
issuer = "https://bench.test"
audiences = ["swf-warden"]
jwks_file = "jwks.json"
[[role]]
name = "bench-role"
provider = "bench"
subjects = ["*"]
policies = ["bench"]
STS
fi
BENCH_UPSTREAM=x BENCH_TOKEN=$token_key BENCH_SECRET=bench-secret \
  "${WARDEN_BIN:-target/release/swf-warden}" serve --config "$work/config.toml" 2> "$work/warden.err" &
warden_pid=$!
# The quiet one: the same, without the access log.
sed -e "s/127.0.0.1:$warden/127.0.0.1:$warden_n/" -e 's/audit.log/audit-n.log/' "$work/config.toml" > "$work/config-n.toml"
printf '[log]\naccess = false\n' >> "$work/config-n.toml"
BENCH_UPSTREAM=x BENCH_TOKEN=$token_key BENCH_SECRET=bench-secret \
  "${WARDEN_BIN:-target/release/swf-warden}" serve --config "$work/config-n.toml" 2> "$work/warden-n.err" &
warden_n_pid=$!
ports="$stub $ha $warden $warden_n"
if [ -n "${QUOTAS:-}" ]; then
  sed -e "s/127.0.0.1:$warden/127.0.0.1:$warden_q/" -e 's/audit.log/audit-q.log/' "$work/config.toml" > "$work/config-q.toml"
  cat >> "$work/config-q.toml" <<'QUOTA'
[[quota]]
name = "heartbeats"
actions = ["swf:RecordActivityTaskHeartbeat"]
principals = ["*"]
per = "principal"
rate_per_second = 1000000
burst = 10000000
max_in_flight = 100000
QUOTA
  if [ "$QUOTAS" = redis ]; then
    command -v redis-server >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    redis=$(free_port)
    redis-server --port "$redis" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    printf '[quota_store]\nbackend = "redis"\nurl = "redis://127.0.0.1:%s/0"\nlease_ms = %s\n' "$redis" "${LEASE_MS:-50}" >> "$work/config-q.toml"
    ports="$ports $redis"
  fi
  BENCH_UPSTREAM=x BENCH_TOKEN=$token_key BENCH_SECRET=bench-secret \
    target/release/swf-warden serve --config "$work/config-q.toml" 2> "$work/warden-q.err" &
  warden_q_pid=$!
  ports="$ports $warden_q"
fi
for p in $ports; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done

target/release/examples/bench_request "127.0.0.1:$warden" AKIABENCH00000000001 bench-secret $token_key bench "$work/allowed.lua"
target/release/examples/bench_request "127.0.0.1:$warden" AKIADENIED0000000001 bench-secret $token_key bench "$work/denied.lua"
target/release/examples/bench_request "127.0.0.1:$warden_n" AKIABENCH00000000001 bench-secret $token_key bench "$work/allowed-n.lua"
if [ -n "${QUOTAS:-}" ]; then
  target/release/examples/bench_request "127.0.0.1:$warden_q" AKIABENCH00000000001 bench-secret $token_key bench "$work/allowed-q.lua"
fi
if [ -n "${SESSION:-}" ]; then
  # The second measured configuration is the same process, signed with a session.
  warden_q=$warden warden_q_pid=$warden_pid
  BENCH_SESSION_ROLE=bench-role target/release/examples/bench_request "127.0.0.1:$warden" - $token_key $token_key bench "$work/allowed-q.lua"
fi
second=${QUOTAS:+with a quota}${SESSION:+with a session}
{ cat "$work/allowed.lua"; echo "function delay() return ${PACE_MS:-4} end"; } > "$work/paced.lua"

# CPU time (user and system, clock ticks) the process has used so far, then its context
# switches (voluntary: it waited; involuntary: it was preempted), summed over its threads.
ticks() {
  awk '{print $14, $15}' "/proc/$1/stat"
  cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt/{v+=$2} /^nonvoluntary_ctxt/{n+=$2} END{print v, n}'
}
# One run against the proxy with process id PID: prints "rps p50_ms p99_ms requests non2xx
# user_us sys_us syscalls voluntary_switches involuntary_switches", the last five per call.
# With COUNT=1, syscalls are counted by `perf stat` (the raw_syscalls tracepoint) over the
# proxy's threads; tracing costs CPU, so the runs that measure CPU do not count them.
run() {
  local url=$1 script=$2 pid=$3 before after perf_pid=
  : > "$work/perf.out"
  if [ -n "${COUNT:-}" ]; then
    perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf.out" -p "$pid" 2>/dev/null &
    perf_pid=$!
    sleep 0.2
  fi
  before=$(ticks "$pid")
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$script" "$url" > "$work/wrk.out"
  after=$(ticks "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  python3 - "$work/wrk.out" "$work/perf.out" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
syscalls = re.search(r"^\s*(\d+),,raw_syscalls:sys_enter", open(sys.argv[2]).read(), re.M)
(u0, s0, v0, n0), (u1, s1, v1, n1) = (map(int, a.split()) for a in sys.argv[3:5])
hz = int(sys.argv[5])
def ms(label):
    m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
total = int(re.search(r"(\d+) requests in", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
per_call = lambda n: n / max(total, 1)
us = lambda t: per_call(t / hz * 1e6)
print(f"{rps:.0f} {ms(50):.3f} {ms(99):.3f} {total} {non2xx.group(1) if non2xx else 0} "
      f"{us(u1 - u0):.2f} {us(s1 - s0):.2f} {per_call(int(syscalls.group(1)) if syscalls else float('nan')):.2f} "
      f"{per_call(v1 - v0):.3f} {per_call(n1 - n0):.3f}")
PY
}

if [ -n "${PROFILE:-}" ]; then
  # Profile swf-warden under the allowed load: perf record for the length of one run.
  pid=$(pgrep -f "swf-warden serve --config $work/config.toml" | head -1)
  perf record -F 499 --call-graph "${CALL_GRAPH:-fp}" -p "$pid" -o "$PROFILE" -- sleep "$secs" >/dev/null 2>&1 &
  wrk -t2 -c"$conns" -d"${secs}s" -s "$work/allowed.lua" "http://127.0.0.1:$warden/" | grep Requests/sec
  wait %%  2>/dev/null || sleep 2
  exit 0
fi
echo "warming up"
run "http://127.0.0.1:$ha/" "$work/allowed.lua" "$ha_pid" >/dev/null
run "http://127.0.0.1:$warden/" "$work/allowed.lua" "$warden_pid" >/dev/null
run "http://127.0.0.1:$warden_n/" "$work/allowed-n.lua" "$warden_n_pid" >/dev/null
declare -a H W HP WP WQ WN
if [ -n "${second}" ]; then run "http://127.0.0.1:$warden_q/" "$work/allowed-q.lua" "$warden_q_pid" >/dev/null; fi
for r in $(seq "$rounds"); do
  H+=("$(run "http://127.0.0.1:$ha/" "$work/allowed.lua" "$ha_pid")")
  W+=("$(run "http://127.0.0.1:$warden/" "$work/allowed.lua" "$warden_pid")")
  WN+=("$(run "http://127.0.0.1:$warden_n/" "$work/allowed-n.lua" "$warden_n_pid")")
  if [ -n "${second}" ]; then WQ+=("$(run "http://127.0.0.1:$warden_q/" "$work/allowed-q.lua" "$warden_q_pid")"); fi
  HP+=("$(run "http://127.0.0.1:$ha/" "$work/paced.lua" "$ha_pid")")
  WP+=("$(run "http://127.0.0.1:$warden/" "$work/paced.lua" "$warden_pid")")
done
HC=$(COUNT=1 run "http://127.0.0.1:$ha/" "$work/allowed.lua" "$ha_pid")
WC=$(COUNT=1 run "http://127.0.0.1:$warden/" "$work/allowed.lua" "$warden_pid")
before=$(wc -l < "$work/audit.log" 2>/dev/null || echo 0)
D=$(run "http://127.0.0.1:$warden/" "$work/denied.lua" "$warden_pid")
sleep 1
after=$(wc -l < "$work/audit.log")

access_lines=$(grep -c 'swf_warden::access' "$work/warden.err" || true)
python3 - "$secs" "$conns" "$D" "$((after - before))" "${PACE_MS:-4}" "${second:-}" "$HC" "$WC" "$access_lines" "${H[@]}" -- "${W[@]}" -- "${HP[@]}" -- "${WP[@]}" -- "${WQ[@]}" -- "${WN[@]}" <<'PY'
import statistics, sys
secs, conns, denied, records, pace, second = sys.argv[1], sys.argv[2], sys.argv[3].split(), int(sys.argv[4]), sys.argv[5], sys.argv[6]
counted = [list(map(float, r.split())) for r in sys.argv[7:9]]
access_lines = int(sys.argv[9])
groups, current = [], []
for arg in sys.argv[10:] + ["--"]:
    if arg == "--":
        groups.append([list(map(float, r.split())) for r in current])
        current = []
    else:
        current.append(arg)
ha, wa, hp, wp, wq, wn = groups
med = lambda rows, i: statistics.median(r[i] for r in rows)
print(f"\nRecordActivityTaskHeartbeat, {conns} connections, {len(ha)} alternating runs of {secs}s each (medians;"
      " per call: CPU, syscalls, voluntary context switches (waits) and involuntary ones (preempt))")
def table(h, w):
    print(f"{'':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU µs/call (user+sys)':>24}"
          f" {'waits':>6} {'preempt':>7}")
    for name, rows in (("HAProxy pass-through", h), ("swf-warden (default config)", w)):
        cpu = f"{med(rows,5) + med(rows,6):.1f} ({med(rows,5):.1f}+{med(rows,6):.1f})"
        print(f"{name:30} {med(rows,0):9.0f} {med(rows,1):8.3f} {med(rows,2):8.3f} {med(rows,4):8.0f} {cpu:>24}"
              f" {med(rows,8):6.2f} {med(rows,9):7.2f}")
    ratio = lambda i: med(w, i) / med(h, i)
    cpu = (med(w,5) + med(w,6)) / (med(h,5) + med(h,6))
    parts = f"{cpu:.2f} ({ratio(5):.2f}, {ratio(6):.2f})"
    print(f"{'ratio swf-warden / HAProxy':30} {ratio(0):9.2f} {ratio(1):8.2f} {ratio(2):8.2f} {'':8} {parts:>24}"
          f" {ratio(8):6.2f} {ratio(9):7.2f}")
    return ratio(2)
allowed_p99 = med(wa, 2)
table(ha, wa)
cpu = lambda rows: med(rows, 5) + med(rows, 6)
print(f"{'swf-warden, access = false':30} {med(wn,0):9.0f} {med(wn,1):8.3f} {med(wn,2):8.3f} {med(wn,4):8.0f} "
      f"{f'{cpu(wn):.1f} ({med(wn,5):.1f}+{med(wn,6):.1f})':>24}")
print(f"{'ratio default / quiet':30} {med(wa,0)/med(wn,0):9.3f} {med(wa,1)/med(wn,1):8.2f} {med(wa,2)/med(wn,2):8.2f} {'':8} {cpu(wa)/cpu(wn):24.3f}")
print(f"access lines written by the default configuration: {access_lines}")
if wq:
    cpu = lambda rows: med(rows, 5) + med(rows, 6)
    print(f"{'swf-warden ' + second:30} {med(wq,0):9.0f} {med(wq,1):8.3f} {med(wq,2):8.3f} {med(wq,4):8.0f} "
          f"{f'{cpu(wq):.1f} ({med(wq,5):.1f}+{med(wq,6):.1f})':>24}")
    print(f"{'ratio with / without':30} {med(wq,0)/med(wa,0):9.3f} {med(wq,1)/med(wa,1):8.2f} {med(wq,2)/med(wa,2):8.2f} {'':8} {cpu(wq)/cpu(wa):24.3f}")
(hc, wc) = counted
print(f"syscalls per call (one more run each under perf stat): HAProxy {hc[7]:.2f}, swf-warden {wc[7]:.2f}"
      f" ({wc[7] / hc[7]:.2f}×); their CPU under tracing: {hc[5] + hc[6]:.1f} and {wc[5] + wc[6]:.1f} µs")
print(f"\nsame calls at a fixed pace ({conns} connections, each waiting {pace} ms after an answer)")
table(hp, wp)
rps, p50, p99, total, non2xx = float(denied[0]), float(denied[1]), float(denied[2]), int(denied[3]), int(denied[4])
print(f"\ndenial path, audit log on: {rps:.0f} req/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms; "
      f"{total} answered (all refused: {non2xx == total}), {records} audit records "
      f"({'none lost' if records >= total else f'{total - records} MISSING'}); "
      f"denial p99 / allowed p99: {p99 / allowed_p99:.2f}")
PY
