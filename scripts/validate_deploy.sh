#!/usr/bin/env bash
# Validates deploy/ (compose file, systemd units, Dockerfile, env example)
# with whatever this machine has, and says which tool checked what:
#
#   python3 scripts/validate_deploy.py   structure of all of them (always, when
#                                        python3 exists; compose needs PyYAML,
#                                        the compose schema needs jsonschema)
#   systemd-analyze verify               the units, as systemd loads them
#   systemd-analyze security --offline   the units' hardening (exposure <= 2.5)
#   docker compose config -q             the compose file, as compose reads it
#   hadolint                             the Dockerfile
#   bash -n                              deploy/healthcheck.sh
#
# A missing tool is skipped with a message; without python3 a grep-level
# check of the units stands in for the structural one. Exit 1 on any
# problem found, 0 otherwise. tests/deploy.rs runs this.
#
#   bash scripts/validate_deploy.sh [DEPLOY_DIR]     (default: deploy)
#
# FAREWATCH_BIN=path/to/farewatch also checks every farewatch command line in
# compose.yaml and the units against that binary (default: target/debug or
# target/release/farewatch when one exists; it may be stale: cargo build first).
set -uo pipefail
if [ $# -gt 0 ]; then
  deploy=$(cd "$1" && pwd) || { echo "no such directory: $1" >&2; exit 2; }
fi
cd "$(dirname "$0")/.."
root=$PWD
deploy=${deploy:-$root/deploy}

failed=() checked=() skipped=()
pass() { checked+=("$1"); echo "ok    $1"; }
fail() { failed+=("$1"); echo "FAIL  $1"; }
skip() { skipped+=("$1"); echo "skip  $1"; }
section() { printf '\n== %s\n' "$1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for file in compose.yaml Dockerfile farewatch.env.example healthcheck.sh \
            systemd/farewatch-daemon.service systemd/farewatch-serve.service systemd/farewatch-worker.service; do
  [ -f "$deploy/$file" ] || fail "$deploy/$file is missing"
done
[ -f "$root/.dockerignore" ] || fail ".dockerignore is missing at the repository root"

bin=${FAREWATCH_BIN:-}
if [ -z "$bin" ]; then
  for candidate in target/debug/farewatch target/release/farewatch; do
    [ -x "$candidate" ] && { bin=$candidate; break; }
  done
fi

# --- bash -n ------------------------------------------------------------------
section "bash -n: deploy/healthcheck.sh"
if bash -n "$deploy/healthcheck.sh"; then pass "bash -n: healthcheck.sh parses"
else fail "bash -n: healthcheck.sh does not parse"; fi
if command -v shellcheck >/dev/null 2>&1; then
  if shellcheck -S warning "$deploy/healthcheck.sh"; then pass "shellcheck: healthcheck.sh"
  else fail "shellcheck: healthcheck.sh"; fi
else
  skip "shellcheck: not installed"
fi

# --- structure (python) ------------------------------------------------------------
section "python3 scripts/validate_deploy.py: structure"
if command -v python3 >/dev/null 2>&1; then
  args=(--deploy-dir "$deploy")
  if [ -n "$bin" ]; then args+=(--farewatch "$bin"); fi
  python3 scripts/validate_deploy.py "${args[@]}" > "$tmp/python.out" 2>&1
  status=$?
  sed 's/^/      /' "$tmp/python.out"
  if [ $status -eq 0 ]; then
    pass "python3: compose.yaml, units, Dockerfile, .dockerignore and env example structure$([ -n "$bin" ] && echo ", command lines against $bin")"
    grep -q '^  SKIP' "$tmp/python.out" && skip "python3: part of it (see SKIP lines above)"
  else
    fail "python3: structural checks (problems listed above)"
  fi
else
  skip "python3: not installed; grep-level unit checks only, compose and Dockerfile structure not checked"
  for unit in "$deploy"/systemd/*.service; do
    missing=()
    for pattern in '^Description=' '^User=[a-z]' '^EnvironmentFile=/etc/farewatch/farewatch.env$' \
                   '^ExecStart=/usr/local/bin/farewatch ' '^ExecStartPre=/usr/local/bin/farewatch migrate$' \
                   '^Restart=' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' '^ProtectHome=' \
                   '^PrivateTmp=yes$' '^StateDirectory=farewatch$' '^WantedBy='; do
      grep -q "$pattern" "$unit" || missing+=("$pattern")
    done
    if grep -q '^User=root$' "$unit"; then missing+=("a non-root User="); fi
    if [ ${#missing[@]} -eq 0 ]; then pass "grep: $(basename "$unit") has the required keys"
    else fail "grep: $(basename "$unit") lacks ${missing[*]}"; fi
  done
fi

# --- systemd-analyze ------------------------------------------------------------------
section "systemd-analyze: units"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify insists that ExecStart's binary exists: point the units at a stub
  # in a scratch directory (the path is the only thing rewritten).
  mkdir -p "$tmp/units" "$tmp/bin"
  printf '#!/bin/sh\nexit 0\n' > "$tmp/bin/farewatch"
  chmod +x "$tmp/bin/farewatch"
  units=()
  for unit in "$deploy"/systemd/*.service; do
    name=$(basename "$unit")
    sed "s|/usr/local/bin/farewatch|$tmp/bin/farewatch|g" "$unit" > "$tmp/units/$name"
    case $name in
      *@.service) instance=${name%@.service}@9101.service
                  ln -s "$name" "$tmp/units/$instance"; units+=("$instance") ;;
      *) units+=("$name") ;;
    esac
  done
  for name in "${units[@]}"; do
    # verify exits 0 on unknown keys and bad values (warnings): any line
    # about the unit counts as a failure; other lines are the host's.
    out=$(cd "$tmp/units" && systemd-analyze verify --man=no "./$name" 2>&1)
    status=$?
    about=$(printf '%s\n' "$out" | grep -F "${name%%@*}" || true)
    if [ $status -eq 0 ] && [ -z "$about" ]; then
      pass "systemd-analyze verify: $name"
    else
      printf '%s\n' "$out" | sed 's/^/      /'
      fail "systemd-analyze verify: $name"
    fi
    [ -n "$out" ] && [ -z "$about" ] && printf '%s\n' "$out" | sed 's/^/      (host) /'
  done
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    for name in "${units[@]}"; do
      out=$(cd "$tmp/units" && systemd-analyze security --offline=yes --threshold=25 --no-pager "./$name" 2>&1)
      status=$?
      level=$(printf '%s\n' "$out" | grep -o 'Overall exposure level.*' | tail -1)
      if [ $status -eq 0 ]; then pass "systemd-analyze security: $name: exposure ${level##*: }"
      else
        printf '%s\n' "$out" | grep -v '^✓' | sed 's/^/      /'
        fail "systemd-analyze security: $name above 2.5: ${level:-no score}"
      fi
    done
  else
    skip "systemd-analyze security --offline: not supported by this systemd"
  fi
else
  skip "systemd-analyze: not installed (units checked by the python/grep checks only)"
fi

# --- docker compose -------------------------------------------------------------------
section "docker compose config: compose.yaml"
compose=()
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
  # The example env file stands in for deploy/farewatch.env, with a dummy
  # password (config -q resolves every variable and needs the file to exist).
  # docker-compose 1.x (Debian 12's) predates the top-level `name:`: it
  # checks a copy without that line, and says so.
  cp -r "$deploy" "$tmp/compose"
  version=$("${compose[@]}" version --short 2>/dev/null || echo 2)
  note=""
  case $version in
    1.*) sed -i '/^name:/d' "$tmp/compose/compose.yaml"; note=" (docker-compose $version: without the top-level name:)" ;;
  esac
  if (cd "$tmp/compose" && POSTGRES_PASSWORD=validate-only FAREWATCH_ENV_FILE=farewatch.env.example \
        "${compose[@]}" -f compose.yaml --env-file farewatch.env.example config -q) > "$tmp/compose.out" 2>&1; then
    pass "${compose[*]} config -q: compose.yaml$note"
  else
    sed 's/^/      /' "$tmp/compose.out"
    fail "${compose[*]} config -q: compose.yaml"
  fi
else
  skip "docker compose: not installed (neither the docker compose plugin nor docker-compose)"
fi

# --- hadolint ---------------------------------------------------------------------------
section "hadolint: Dockerfile"
if command -v hadolint >/dev/null 2>&1; then
  if hadolint "$deploy/Dockerfile"; then pass "hadolint: Dockerfile"
  else fail "hadolint: Dockerfile"; fi
else
  skip "hadolint: not installed (Dockerfile checked by the python checks only)"
fi

printf '\n%d checked, %d skipped, %d failed\n' "${#checked[@]}" "${#skipped[@]}" "${#failed[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "deploy/ is valid as far as this machine can tell"
