#!/usr/bin/env bash
# Bundles and $everything benchmark (issue: batch, transaction, Patient/$everything). See
# bench/README.md.
#
#   bench/bundles.sh
#
# On a fresh PostgreSQL database: transactions of one site visit (1 Patient + 3
# Immunizations by urn:uuid, conditional creates) at 1, 8 and 32 connections; batches of
# 100 Immunizations at 1 and 8; then Patient/$everything of a person with 20 resources and
# of one with 500, at 1 and 16 connections. Figures go to
# bench/results/<date>-bundles.txt.
#
# Environment: DURATION (s per scenario, default 15), POOL (database connections, default 8:
# on 2 cores more connections only add contention, see bench/README.md), PGHOST PGPORT
# PGUSER (default 127.0.0.1 5432 postgres), SKIP_BUILD=1 (use target/release/healthbook as
# it is).
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
duration=${DURATION:-15}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}
db=hb_bench_bundles
out=$bench_dir/results/$(date -u +%Y-%m-%d)-bundles.txt
tmp=$(mktemp -d)
psql_admin() { psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
say() { echo "$*" | tee -a "$out"; }

command -v wrk >/dev/null || { echo "wrk not found; installing the Debian package" >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }
[[ ${SKIP_BUILD:-} == 1 ]] || (cd "$root" && cargo build --release -p healthbook)
bin=$root/target/release/healthbook

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HEALTHBOOK__DATABASE__URL="postgres://$pg_user@$pg_host:$pg_port/$db"
export HEALTHBOOK__SERVER__BIND="127.0.0.1:$port"
export HEALTHBOOK__DATABASE__POOL_MAX_SIZE=${POOL:-8}
export HEALTHBOOK__LOG__LEVEL=warn
psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"$bin" migrate >/dev/null
"$bin" serve >"$tmp/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"; psql_admin -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 100); do curl -fs "$base/health/ready" >/dev/null && break; sleep 0.1; done

run_wrk() { # scenario conns script [env...]
  local scenario=$1 conns=$2 script=$3
  shift 3
  local threads=$((conns < 2 ? 1 : 2))
  env BENCH_SCENARIO="$scenario" BENCH_CONNS="$conns" "$@" \
    wrk -t"$threads" -c"$conns" -d"${duration}s" --latency --timeout 30s -s "$bench_dir/lua/$script" "$base" 2>&1 \
    | grep '^RESULT' | tee -a "$out"
  sleep 2
}

: >"$out"
say "# Bundles and \$everything benchmark, $(date -u +%FT%TZ)"
say "# $(nproc) cores; wrk and the server on the same machine; PostgreSQL $(psql_admin -c 'SHOW server_version'); fresh database; pool ${POOL:-8}"
# Warm up, then give the planner statistics (a production database has them; an empty one
# makes PostgreSQL plan the conditional creates' lookups for empty tables).
BENCH_SCENARIO=warmup BENCH_CONNS=8 BENCH_BUNDLE=transaction \
  wrk -t2 -c8 -d10s -s "$bench_dir/lua/bundle.lua" "$base" >/dev/null 2>&1
psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$db" -qc "VACUUM ANALYZE"
say "## transaction: 1 Patient + 3 Immunizations (urn:uuid, conditional creates), bundles/s (after 10 s of warm-up and ANALYZE)"
for conns in 1 8 32; do
  run_wrk "transaction" "$conns" bundle.lua BENCH_BUNDLE=transaction
done

say "## batch of 100 Immunizations, bundles/s"
post() { curl -fsS -X POST "$base/fhir/$1" -H 'Content-Type: application/fhir+json' -d @- ; }
# Patients as the national profile (validation.vn_core = all, the default) takes them.
holder=$(echo '{"resourceType":"Patient","identifier":[{"system":"https://bench.example/uid","value":"batch"}],"name":[{"family":"Batch","given":["An"]}],"gender":"male","birthDate":"1990-02-14","telecom":[{"system":"phone","value":"+84912345678"}],"address":[{"city":"Hà Nội","country":"VN"}]}' | post Patient | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for conns in 1 8; do
  run_wrk "batch-100" "$conns" bundle.lua BENCH_BUNDLE=batch BENCH_SIZE=100 BENCH_PATIENT="$holder"
done

say "## Patient/\$everything"
# A person with n resources in all: the Patient and n-1 Immunizations and Observations.
person() {
  python3 - "$1" <<'PY' | post ""  | python3 -c 'import json,sys; b=json.load(sys.stdin); print(b["entry"][0]["response"]["location"].split("/")[1])'
import json, sys
n = int(sys.argv[1])
p = "urn:uuid:00000000-0000-4000-8000-000000000000"
entries = [{"fullUrl": p, "resource": {"resourceType": "Patient", "identifier": [{"system": "https://bench.example/uid", "value": f"person-{n}"}], "name": [{"family": "Trần", "given": ["Thị", "Bình"]}], "gender": "female", "birthDate": "1985-03-02", "telecom": [{"system": "phone", "value": "+84912345678"}], "address": [{"city": "Hà Nội", "country": "VN"}]}, "request": {"method": "POST", "url": "Patient"}}]
for i in range(1, n):
    if i % 2:
        r = {"resourceType": "Immunization", "identifier": [{"system": "https://bench.example/dose", "value": f"person-{n}-{i}"}], "status": "completed", "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]}, "patient": {"reference": p}, "occurrenceDateTime": "2021-08-01T09:00:00+07:00", "lotNumber": f"L{i}", "performer": [{"actor": {"display": "Trạm Y tế Phường 1"}}], "protocolApplied": [{"doseNumberPositiveInt": i % 3 + 1}]}
    else:
        r = {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "subject": {"reference": p}, "valueQuantity": {"value": 60 + i % 40, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
    entries.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
print(json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
PY
}
for n in 20 500; do
  id=$(person "$n")
  got=$(curl -fsS "$base/fhir/Patient/$id/\$everything?_count=1000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("entry", [])))')
  say "person with $n resources: \$everything returns $got entries in one page (_count=1000)"
  echo "Patient/$id/\$everything?_count=1000" >"$tmp/everything-$n.txt"
  for conns in 1 16; do
    run_wrk "everything-$n" "$conns" search.lua BENCH_QUERIES="$tmp/everything-$n.txt"
  done
done

say "## server log warnings/errors"
grep -ciE 'error|panic' "$tmp/server.log" | sed 's/^/lines: /' | tee -a "$out" || true
say "results: $out"
