#!/usr/bin/env bash
# The project's test command (README): makes sure the services the tests
# talk to are up, then runs formatting, lints and the whole test suite.
# Works on a fresh machine: it installs and starts Redis when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

redis_port=6379
ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
    log "Redis answers on 127.0.0.1:$redis_port"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi
  fi
  log "starting redis-server on 127.0.0.1:$redis_port"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/farewatch-redis.log
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  log "redis-server did not come up; see /tmp/farewatch-redis.log"
  exit 1
}

ensure_redis
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$redis_port/}"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test"
cargo test --locked --all-targets
cargo test --locked --doc
