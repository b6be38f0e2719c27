#!/usr/bin/env bash
# The launch-day surge (issue 16): normal load, 6x the citizens' connections, then normal
# again, with a hospital's steady scans beside the citizens' flood; per class the 2xx
# share, p99 and shed counts (bench/surge.py; figures in bench/README.md).
#
#   bench/surge.sh                       # PostgreSQL on 127.0.0.1:5432, release build
#   SKIP_BUILD=1 PHASE_SECS=20 CONNS=24 THINK_MS=20 FACTOR=6 RATE=10 bench/surge.sh
#
# Starts the test OpenID provider (conformance-tests/idp) and the server on a fresh
# PostgreSQL database with auth.mode = oidc (the classes come from the tokens), writes
# 200 persons of 20 resources with a personal QR each (bench/hospital_flow.py's setup),
# then runs the phases. Server settings pass through as HEALTHBOOK__* variables (e.g.
# HEALTHBOOK__ADMISSION__MAX_IN_FLIGHT=64). Result: bench/results/<date>[-TAG]-surge.txt.
set -euo pipefail
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench/.." && pwd)
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}
out=$bench/results/$(date -u +%Y-%m-%d)${TAG:+-$TAG}-surge.txt
tmp=$(mktemp -d)
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
[[ ${SKIP_BUILD:-} == 1 ]] || (cd "$root" && cargo build --release)
[[ -d $root/conformance-tests/idp/node_modules ]] ||
  (cd "$root/conformance-tests/idp" && npm ci --no-audit --no-fund --loglevel=error)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
idp_port=$(free_port)
db=hb_bench_surge_$$
psql_admin() { psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
psql_admin -c "CREATE DATABASE $db"
cleanup() {
  kill "${server:-}" "${idp:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql_admin -c "DROP DATABASE IF EXISTS $db" >/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

IDP_PORT=$idp_port FHIR_AUD=http://127.0.0.1:$port/fhir node "$root/conformance-tests/idp/idp.mjs" >"$tmp/idp.log" 2>&1 &
idp=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$idp_port/.well-known/openid-configuration" && break; sleep 0.1; done
export HEALTHBOOK__DATABASE__URL=postgres://$pg_user@$pg_host:$pg_port/$db
export HEALTHBOOK__SERVER__BIND=127.0.0.1:$port
export HEALTHBOOK__AUTH__MODE=oidc
export HEALTHBOOK__AUTH__ISSUER=http://127.0.0.1:$idp_port
export HEALTHBOOK__LOG__LEVEL=${LOG_LEVEL:-warn}
"$root/target/release/healthbook" migrate >/dev/null
"$root/target/release/healthbook" serve >"$tmp/server.log" 2>&1 &
server=$!
base=http://127.0.0.1:$port/fhir
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.1; done

token() { # scope, extra header
  curl -sf -u tester:tester-secret -H 'X-Test-Ttl: 7200' ${2:+-H "$2"} \
    -d grant_type=client_credentials --data-urlencode "scope=$1" \
    "http://127.0.0.1:$idp_port/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
system=$(token 'system/*.cruds')
(cd "$bench" && python3 -c "
import sys, urllib.parse, hospital_flow as h
base = urllib.parse.urlsplit(sys.argv[1])
payloads = h.setup(base, {'Accept': 'application/fhir+json', 'Authorization': 'Bearer ' + sys.argv[2]}, 200, 20)
open(sys.argv[3] + '/codes.txt', 'w').write('\n'.join(payloads) + '\n')
" "$base" "$system" "$tmp")
citizen_id=$(curl -sf -H "Authorization: Bearer $system" "$base/Patient?_count=1&_elements=id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
citizen=$(token 'patient/*.rs' "X-Test-Patient: $citizen_id")
hospital=$(token 'user/*.rs' 'X-Test-FhirUser: Practitioner/surge-nurse')
psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$db" -qc 'VACUUM ANALYZE' >/dev/null

{
  echo "# $(date -u +%FT%TZ), $(nproc) cores, PostgreSQL $(psql_admin -c 'SHOW server_version'), build $(git -C "$root" rev-parse --short HEAD)"
  echo "# admission: $(env | grep '^HEALTHBOOK__ADMISSION' | tr '\n' ' ')"
  python3 "$bench/surge.py" --base "$base" --hospital-token "$hospital" --citizen-token "$citizen" \
    --citizen-id "$citizen_id" --codes "$tmp/codes.txt" --phase-secs "${PHASE_SECS:-20}" \
    --citizen-conns "${CONNS:-24}" --factor "${FACTOR:-6}" --hospital-rate "${RATE:-10}" \
    --think-ms "${THINK_MS:-20}"
  echo "## server log (warnings)"
  grep -v '^$' "$tmp/server.log" | tail -n 20
} | tee "$out"
