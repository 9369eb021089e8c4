#!/usr/bin/env bash
# One fleet cycle end to end: D `farewatch daemon --fleet` processes on one
# PostgreSQL and one Redis share N routes (none alerting) against a local
# Amadeus fake answering at once (examples/fake_providers.rs, the real
# payloads in tests/fixtures/; built by this script). Prints the cycle's wall time (first start
# to every route checked), the provider requests, the daemons' CPU time in
# all (and per route) and their largest peak RSS.
#
#   cargo build --release && bash scripts/bench/fleet.sh [BINARY] [N] [DAEMONS]
#
# Needs psql and redis-server; BENCH_POSTGRES names the server (default
# postgres://postgres@127.0.0.1:5432/postgres); a database is created and
# dropped. Defaults: N=10000, DAEMONS=1. BENCH_RATE=R paces Amadeus at R
# requests a second for the whole fleet (the Redis limiter; the bound is
# then N / R); unset or 0, unpaced. The fake runs on BENCH_FAKE_THREADS
# threads (default 1), on the same machine as the daemons; BENCH_FAKE names
# an already built fake instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/release/farewatch}
n=${2:-10000}
daemons=${3:-1}
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
db=fw_fleet_bench_$$
psql "$pg" -qc "CREATE DATABASE $db" >/dev/null
database_url=${pg%/*}/$db
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
redis_port=$(free_port)
pids=()
cleanup() {
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; done
  kill "${fake:-0}" "${redis:-0}" 2>/dev/null || true
  sleep 0.5
  psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$n" "$work/routes.csv" <<'PY'
import datetime, string, sys
n, out = int(sys.argv[1]), sys.argv[2]
L = string.ascii_uppercase
codes = [a + b + c for a in L for b in L for c in L if a + b + c != "JFK"]
today = datetime.date.today()
with open(out, "w") as f:
    f.write("origin,destination,depart_date,max_price,currency,phone\n")
    for i in range(n):
        # Distinct searches: a code, then the next day once every code is used.
        day = (today + datetime.timedelta(days=40 + i // len(codes))).isoformat()
        # The fake's fare is GBP 312.46: a maximum of 300 never alerts.
        f.write(f"{codes[i % len(codes)]},JFK,{day},300,GBP,+4479111{i % 100000:05d}\n")
PY

redis-server --port "$redis_port" --save '' --appendonly no >/dev/null &
redis=$!
fake_bin=${BENCH_FAKE:-}
if [ -z "$fake_bin" ]; then
  cargo build --release --example fake_providers -q --manifest-path "$root/Cargo.toml"
  fake_bin=${CARGO_TARGET_DIR:-$root/target}/release/examples/fake_providers
fi
FIXTURES=$root/tests/fixtures "$fake_bin" "$port" "${BENCH_FAKE_THREADS:-1}" &
fake=$!
sleep 0.5
"$bin" migrate --database-url "$database_url" >/dev/null

export HOME=$work AMADEUS_CLIENT_ID=bench AMADEUS_CLIENT_SECRET=bench-secret \
  AMADEUS_BASE_URL=http://127.0.0.1:$port AMADEUS_RATE_LIMIT=${BENCH_RATE:-0} FARE_SOURCES=amadeus \
  TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=bench \
  TWILIO_FROM=+15005550006 TWILIO_BASE_URL=http://127.0.0.1:$port \
  DATABASE_URL=$database_url REDIS_URL=redis://127.0.0.1:$redis_port/ \
  FAREWATCH_FLEET_SIZE=$daemons
start=$(date +%s.%N)
for d in $(seq 1 "$daemons"); do
  /usr/bin/time -f "%U %S %M" -o "$work/time.$d" "$bin" daemon --fleet --interval 1h \
    --routes "$work/routes.csv" -q --format json >/dev/null 2>"$work/err.$d" &
  pids+=($!)
done
# Done when every route is known, none is held and none is due.
while :; do
  read -r routes due held < <(psql "$database_url" -Atc \
    "SELECT count(*), count(*) FILTER (WHERE next_due <= now()), count(*) FILTER (WHERE lease_until >= now()) FROM fleet_due" | tr '|' ' ')
  if [ "$routes" -ge "$n" ] && [ "$due" -eq 0 ] && [ "$held" -eq 0 ]; then break; fi
  sleep 0.1
done
end=$(date +%s.%N)
# SIGTERM to the daemons themselves (`time` does not pass signals on); it
# writes their figures once they exit.
for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; done
wait "${pids[@]}" 2>/dev/null || true
requests=$(curl -s "http://127.0.0.1:$port/count" | python3 -c 'import json,sys; print(json.load(sys.stdin)["search"])')
python3 - "$n" "$daemons" "$start" "$end" "$requests" "$work" "${BENCH_RATE:-0}" <<'PY'
import glob, sys
n, daemons, start, end, requests, work, rate = sys.argv[1:]
cpu, rss = 0.0, 0
for path in glob.glob(f"{work}/time.*"):
    user, sys_, peak = open(path).read().split()[-3:]
    cpu += float(user) + float(sys_)
    rss = max(rss, int(peak))
wall = float(end) - float(start)
bound = f" (bound at {rate}/s: {int(n) / float(rate):.1f} s)" if float(rate) > 0 else ""
print(f"routes {n}, daemons {daemons}: wall {wall:.2f} s{bound}, provider requests {requests}, "
      f"cpu {cpu:.2f} s ({cpu / int(n) * 1e6:.0f} us per route), largest peak RSS {rss / 1024:.0f} MiB")
PY
