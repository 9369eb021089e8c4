#!/usr/bin/env bash
# End-to-end cost of one `farewatch check` over N routes (default 10,000),
# half of them alerting, against local fakes of Amadeus and Twilio that
# answer at once (examples/fake_providers.rs, built by this script, from the
# real payloads in tests/fixtures/; BENCH_FAKE=python for the earlier
# scripts/bench/fake_providers.py, BENCH_FAKE=PATH for a built fake). Prints
# farewatch's own CPU time (user + sys, and each alone), its peak RSS, its peak thread count
# and the wall time. BENCH_KEEP=1 keeps the work folder (state database,
# sheet, output) and prints its path.
#
#   cargo build --release && bash scripts/bench/check_10k.sh [BINARY] [N]
#
# The state database is a new SQLite file; with BENCH_POSTGRES set to a
# server's URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) it is a new
# PostgreSQL database on that server instead, dropped afterwards. With
# BENCH_NO_ALERTS=1 no row alerts (every maximum is below the fare).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/release/farewatch}
n=${2:-10000}
work=$(mktemp -d)
database_url=sqlite://$work/state.db
pg_db=
if [ -n "${BENCH_POSTGRES:-}" ]; then
  pg_db=fw_bench_$$
  psql "$BENCH_POSTGRES" -qc "CREATE DATABASE $pg_db" >/dev/null
  database_url=${BENCH_POSTGRES%/*}/$pg_db
fi
cleanup() {
  kill "${fake:-0}" 2>/dev/null || true
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
  if [ -n "$pg_db" ]; then psql "$BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null; fi
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 - "$n" "$work/routes.csv" "${BENCH_NO_ALERTS:-0}" <<'PY'
import datetime, string, sys
n, out, none_alert = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
L = string.ascii_uppercase
codes = [a + b + c for a in L for b in L for c in L if a + b + c != "JFK"]
day = (datetime.date.today() + datetime.timedelta(days=40)).isoformat()
with open(out, "w") as f:
    f.write("origin,destination,depart_date,max_price,currency,phone\n")
    for i in range(n):
        # The fake's fare is GBP 312.46: even rows (max 350) alert, odd (300) do not.
        f.write(f"{codes[i % len(codes)]},JFK,{day},{350 if i % 2 == 0 and not none_alert else 300},GBP,+4479111{i % 100000:05d}\n")
PY

case "${BENCH_FAKE:-}" in
  python) FIXTURES=$root/tests/fixtures python3 "$root/scripts/bench/fake_providers.py" "$port" & ;;
  "")
    cargo build --release --example fake_providers -q --manifest-path "$root/Cargo.toml"
    FIXTURES=$root/tests/fixtures "${CARGO_TARGET_DIR:-$root/target}/release/examples/fake_providers" "$port" & ;;
  *) FIXTURES=$root/tests/fixtures "$BENCH_FAKE" "$port" & ;;
esac
fake=$!
sleep 0.5

export HOME=$work AMADEUS_CLIENT_ID=bench AMADEUS_CLIENT_SECRET=bench-secret \
  AMADEUS_BASE_URL=http://127.0.0.1:$port AMADEUS_RATE_LIMIT=0 FARE_SOURCES=amadeus \
  TWILIO_ACCOUNT_SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa TWILIO_AUTH_TOKEN=bench \
  TWILIO_FROM=+15005550006 TWILIO_BASE_URL=http://127.0.0.1:$port \
  DATABASE_URL=$database_url FAREWATCH_QUOTE_TTL=0
/usr/bin/time -f "%U %S %M %e" -o "$work/time" "$bin" check --routes "$work/routes.csv" -q --format json >"$work/out.json" 2>"$work/err" &
timer=$!
sleep 0.2
pid=$(pgrep -P "$timer" | head -1 || true)
peak=0
while kill -0 "$timer" 2>/dev/null; do
  t=$(awk '/^Threads/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  if [ -n "$t" ] && [ "$t" -gt "$peak" ]; then peak=$t; fi
  sleep 0.05
done
wait "$timer" || true
if grep -q "exited with non-zero" "$work/time"; then echo "farewatch failed:"; tail -5 "$work/err"; fi
read -r user sys rss wall < <(tail -1 "$work/time")
python3 - "$work/out.json" "$user" "$sys" "$rss" "$wall" "$peak" "$n" <<'PY'
import json, sys
out, user, sys_, rss, wall, peak, n = sys.argv[1:]
s = json.load(open(out))["summary"]
cpu = float(user) + float(sys_)
print(f"routes {s['routes']}, alerts sent {s['alerts_sent']}, failed {s['alerts_failed']}, lookup errors {s['lookup_errors']}")
print(f"cpu {cpu:.2f} s ({cpu / int(n) * 1e6:.0f} us per route: user {float(user) / int(n) * 1e6:.0f}, system {float(sys_) / int(n) * 1e6:.0f}), peak RSS {int(rss) / 1024:.0f} MiB, peak threads {peak}, wall {wall} s")
PY
