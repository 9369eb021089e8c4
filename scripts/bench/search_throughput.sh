#!/usr/bin/env bash
# Is a search job's pace the provider's rate limit, or farewatch? Runs one
# `farewatch search` of N combinations (default 240: 4 origins x 2
# destinations x 15 departure days x 2 stays) against a local Amadeus fake
# that answers at once (scripts/bench/fake_providers.py, the real payloads in
# tests/fixtures/), once per rate limit given (requests per second; 0 =
# unpaced, farewatch's own ceiling), and prints the wall time, the
# combinations per second and the bound N / rate.
#
#   cargo build --release && bash scripts/bench/search_throughput.sh [BINARY] [RATES...]
#
# Default rates: 10 40 0. Each run has a new SQLite state file and no quote
# cache, so every combination is one provider request.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$root/target/release/farewatch}
shift || true
rates=("$@")
if [ ${#rates[@]} -eq 0 ]; then rates=(10 40 0); fi
work=$(mktemp -d)
cleanup() {
  kill "${fake:-0}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
FIXTURES=$root/tests/fixtures python3 "$root/scripts/bench/fake_providers.py" "$port" &
fake=$!
sleep 0.5

first=$(date -d "+40 days" +%F)
last=$(date -d "+54 days" +%F)
export HOME=$work AMADEUS_CLIENT_ID=bench AMADEUS_CLIENT_SECRET=bench-secret \
  AMADEUS_BASE_URL=http://127.0.0.1:$port FARE_SOURCES=amadeus \
  FAREWATCH_QUOTE_TTL=0 FAREWATCH_CURRENCY=GBP
printf '%-12s %8s %10s %14s %12s %10s\n' "rate (req/s)" "combos" "wall (s)" "combos per s" "bound (s)" "cpu (s)"
for rate in "${rates[@]}"; do
  db=$work/state-$rate.db
  /usr/bin/time -f "%U %S %e" -o "$work/time" env AMADEUS_RATE_LIMIT="$rate" DATABASE_URL="sqlite://$db" \
    "$bin" search --from LHR,LGW,STN,LTN --to JFK,EWR --depart "$first..$last" --nights 6..7 \
    --format json --top 1 --no-progress -q >"$work/out.json" 2>"$work/err" || {
    echo "farewatch failed:"; tail -5 "$work/err"; exit 1; }
  read -r user sys wall < <(tail -1 "$work/time")
  python3 - "$work/out.json" "$rate" "$wall" "$user" "$sys" <<'PY'
import json, sys
out, rate, wall, user, sys_ = sys.argv[1:]
job = json.load(open(out))["job"]
n, wall, rate = job["done"], float(wall), float(rate)
bound = f"{n / rate:.1f}" if rate > 0 else "-"
assert job["state"] == "completed" and job["found"] == n, job
print(f"{rate if rate else 'unpaced':<12} {n:>8} {wall:>10.2f} {n / wall:>14.1f} {bound:>12} {float(user) + float(sys_):>10.2f}")
PY
done
