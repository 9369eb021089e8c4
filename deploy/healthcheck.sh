#!/bin/bash
# farewatch-healthcheck HOST:PORT PATH EXPECTED
#
# A container health check without curl: GET http://HOST:PORT/PATH through
# bash's /dev/tcp and succeed when the answer is 200 and a body line is
# EXPECTED. Installed in the image as /usr/local/bin/farewatch-healthcheck:
#
#   farewatch-healthcheck 127.0.0.1:9100 /healthz ok     # daemon --metrics-addr
#   farewatch-healthcheck 127.0.0.1:8080 /ping pong      # serve
#
# Exit 0 healthy, 1 unhealthy (with one line saying why), 2 usage.
set -uo pipefail

if [ $# -ne 3 ]; then
  echo "usage: farewatch-healthcheck HOST:PORT PATH EXPECTED_BODY" >&2
  exit 2
fi
addr=$1 path=$2 expect=$3
host=${addr%:*} port=${addr##*:}
host=${host#[} host=${host%]}
timeout=${FAREWATCH_HEALTHCHECK_TIMEOUT:-5}

if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
  echo "unhealthy: cannot connect to $addr"
  exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$addr" >&3

if ! IFS= read -r -t "$timeout" status <&3; then
  echo "unhealthy: no answer from $addr$path within ${timeout}s"
  exit 1
fi
status=${status%$'\r'}
case $status in
  "HTTP/1."?" 200"*) ;;
  *) echo "unhealthy: $addr$path answered '$status'"; exit 1 ;;
esac
# Skip the headers, then look for the expected line in the (short) body.
while IFS= read -r -t "$timeout" line <&3; do
  [ -z "${line%$'\r'}" ] && break
done
for _ in 1 2 3 4 5; do
  IFS= read -r -t "$timeout" line <&3 || break
  if [ "${line%$'\r'}" = "$expect" ]; then
    echo "healthy: $addr$path"
    exit 0
  fi
done
echo "unhealthy: $addr$path answered 200 without '$expect'"
exit 1
