#!/usr/bin/env bash
# The project's test command (README): makes sure the services the tests
# talk to are up, then runs formatting, lints and the whole test suite.
# Works on a fresh machine: it installs and starts Redis and PostgreSQL when
# none answers. Store tests create a throwaway PostgreSQL database each
# (fw_test_<random>) on the server FAREWATCH_TEST_POSTGRES names, and drop it.
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

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Can `$1` (a postgres:// URL) log in and run a query?
pg_login() { psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

pg_default="postgres://postgres@127.0.0.1:5432/postgres"
pg_with_password="postgres://postgres:farewatch-test@127.0.0.1:5432/postgres"
ensure_postgres() {
  if [ -n "${FAREWATCH_TEST_POSTGRES:-}" ]; then
    log "PostgreSQL for the tests: FAREWATCH_TEST_POSTGRES (set by the caller)"
    return
  fi
  if ! command -v psql >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
      log "installing postgresql"
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    if command -v pg_lsclusters >/dev/null 2>&1; then
      pg_lsclusters --no-header | while read -r version cluster _; do
        as_root pg_ctlcluster "$version" "$cluster" start || true
      done
    else
      as_root service postgresql start || true
    fi
    for _ in $(seq 1 100); do
      pg_isready -q -h 127.0.0.1 -p 5432 && break
      sleep 0.1
    done
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL does not answer on 127.0.0.1:5432; set FAREWATCH_TEST_POSTGRES to a server the tests may create databases on"
    exit 1
  fi
  for url in "$pg_default" "$pg_with_password"; do
    if pg_login "$url"; then
      log "PostgreSQL answers on 127.0.0.1:5432"
      export FAREWATCH_TEST_POSTGRES="$url"
      return
    fi
  done
  # A stock Debian cluster asks for a password on TCP: give the postgres
  # role one, over the local socket, for the tests.
  log "setting a test password for the postgres role"
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'farewatch-test'\"" >/dev/null
  if pg_login "$pg_with_password"; then
    export FAREWATCH_TEST_POSTGRES="$pg_with_password"
    return
  fi
  log "cannot log in to PostgreSQL on 127.0.0.1:5432 as postgres; set FAREWATCH_TEST_POSTGRES"
  exit 1
}

ensure_redis
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:$redis_port/}"
ensure_postgres

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test"
cargo test --locked --all-targets
cargo test --locked --doc
