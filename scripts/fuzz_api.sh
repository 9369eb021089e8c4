#!/usr/bin/env bash
# Validates `farewatch serve`'s OpenAPI document (openapi-spec-validator),
# then fuzzes the server from it with schemathesis (both from PyPI): every
# operation gets generated requests; the run
# fails on any 5xx, any status code or content type the document does not
# list, and any response body that does not match its schema.
#
#   pip install schemathesis openapi-spec-validator && cargo build && bash scripts/fuzz_api.sh [EXAMPLES]
#
# The server runs on a throwaway SQLite file on 127.0.0.1 with an operator
# token and no rate limit; set DATABASE_URL=postgres://... to fuzz PostgreSQL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/debug/farewatch}
examples=${1:-100}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export FAREWATCH_API_TOKEN=fuzz-$$-token FAREWATCH_API_RATE_LIMIT=0
export DATABASE_URL=${DATABASE_URL:-sqlite://$work/farewatch.db}
"$bin" serve --addr "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/openapi.json" >"$work/openapi.json"
openapi-spec-validator "$work/openapi.json"
schemathesis run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $FAREWATCH_API_TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$examples"
