#!/bin/sh
# A Lambda custom runtime in POSIX sh and curl: answers every event with {"echo": EVENT, "requestId": ID}.
#   fastric emulate -- sh examples/bootstrap-curl.sh
set -eu
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
headers="$(mktemp)"
trap 'rm -f "$headers"' EXIT
while :; do
    event="$(curl -sS --fail -D "$headers" "$api/invocation/next")"
    request_id="$(tr -d '\r' < "$headers" | sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: *//p')"
    printf '{"echo":%s,"requestId":"%s"}' "$event" "$request_id" |
        curl -sS --fail -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
            "$api/invocation/$request_id/response"
done
