#!/usr/bin/env bash
# Search benchmark at national scale (issue: FHIR search). See bench/README.md.
#
#   bench/search.sh 100000          # patients; loads them into a fresh PostgreSQL database
#   SKIP_LOAD=1 bench/search.sh 100000   # reuse the database of an earlier run
#   EXTEND_FROM=100000 bench/search.sh 1000000   # take the 100,000 database over and load
#                                                # the other 900,000 patients into it
#
# Generates the synthetic Vietnamese population (bench/gen/population.py, seed 7), loads it
# with transaction Bundles of PUT entries (bench/gen/load.py --bundle), then runs each search scenario with wrk at 16 connections
# and writes the figures, the index size per 1,000 resources and the plan of the slowest
# query to bench/results/<date>-search-<patients>.txt.
#
# Environment: DURATION (s per scenario, default 15), CONNS (default 16), POOL (the server's
# database connections, default 32), PGHOST PGPORT
# PGUSER (default 127.0.0.1 5432 postgres), POP_DIR (default /tmp/hb-pop-<patients>),
# SKIP_BUILD=1 (use target/release/healthbook as it is), SKIP_LOAD=1, BURST (creates in the
# burst scenario, default 50000; 0 = skip), SCENARIOS (default: all seven), BUNDLE (resources
# per transaction Bundle when loading, default 100; 0 = one PUT each), EXTEND_FROM, TAG (in
# the result file's name, so that runs of one day do not overwrite each other).
set -euo pipefail

patients=${1:-100000}
[[ $patients =~ ^[0-9]+$ ]] || { echo "usage: $0 <patients>" >&2; exit 2; }
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
duration=${DURATION:-15}
conns=${CONNS:-16}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}
pop=${POP_DIR:-/tmp/hb-pop-$patients}
db=hb_bench_search_$patients
out=$bench_dir/results/$(date -u +%Y-%m-%d)${TAG:+-$TAG}-search-$patients.txt
tmp=$(mktemp -d)
psql_db() { psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$db" -v ON_ERROR_STOP=1 -qtA "$@"; }
psql_admin() { psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
say() { echo "$*" | tee -a "$out"; }

command -v wrk >/dev/null || { echo "wrk not found; installing the Debian package" >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null; }
[[ ${SKIP_BUILD:-} == 1 ]] || (cd "$root" && cargo build --release -p healthbook)
bin=$root/target/release/healthbook

if [[ ! -f $pop/queries/identifiers.txt ]]; then
  python3 "$bench_dir/gen/population.py" --patients "$patients" --seed 7 --out "$pop"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HEALTHBOOK__DATABASE__URL="postgres://$pg_user@$pg_host:$pg_port/$db"
export HEALTHBOOK__SERVER__BIND="127.0.0.1:$port"
export HEALTHBOOK__DATABASE__POOL_MAX_SIZE=${POOL:-32}
export HEALTHBOOK__LOG__LEVEL=warn
offset=0
if [[ -n ${EXTEND_FROM:-} ]]; then
  # The first EXTEND_FROM patients of this population are those of the smaller one
  # (population.py: the output depends only on the seed and the count).
  psql_admin -c "DROP DATABASE IF EXISTS $db" -c "ALTER DATABASE hb_bench_search_$EXTEND_FROM RENAME TO $db"
  "$bin" migrate >/dev/null
  offset=$EXTEND_FROM
elif [[ ${SKIP_LOAD:-} != 1 ]]; then
  psql_admin -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  "$bin" migrate >/dev/null
fi
# Plans of slow statements (auto_explain) go to the PostgreSQL log, for the slowest query.
# Only a sample of statements (2%) is instrumented, so the measurement is hardly disturbed.
pg_log=${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -n 1)}
psql_admin -c "ALTER DATABASE $db SET session_preload_libraries = 'auto_explain'" \
  -c "ALTER DATABASE $db SET auto_explain.log_min_duration = '5ms'" \
  -c "ALTER DATABASE $db SET auto_explain.sample_rate = 0.02" \
  -c "ALTER DATABASE $db SET auto_explain.log_analyze = on" >/dev/null
log_start=$( [[ -n $pg_log ]] && wc -l <"$pg_log" || echo 0)
"$bin" serve >"$tmp/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 100); do curl -fs "$base/health/ready" >/dev/null && break; sleep 0.1; done

: >"$out"
say "# Search benchmark, $patients patients, $(date -u +%FT%TZ)"
say "# $(nproc) cores; wrk and the server on the same machine; PostgreSQL $(psql_admin -c 'SHOW server_version')"
if [[ ${SKIP_LOAD:-} != 1 ]]; then
  say "## load"
  started=$(date +%s)
  python3 "$bench_dir/gen/load.py" --base "$base/fhir" --dir "$pop" --connections "${LOAD_CONNS:-8}" \
    --bundle "${BUNDLE:-100}" --offset "$offset" --progress 60 2>&1 | tail -n 8 | tee -a "$out"
  say "loaded in $(( $(date +%s) - started )) s (from patient $offset)"
  psql_db -c "VACUUM ANALYZE" >/dev/null
fi

# Query files, one search path per line (URL-encoded values).
enc() { python3 -c 'import sys,urllib.parse as u; [print(u.quote(l.rstrip("\n"), safe="")) for l in sys.stdin]'; }
q=$pop/queries
enc <"$q/identifiers.txt" | sed 's/^/Patient?identifier=/' >"$tmp/identifier.txt"
python3 - "$q/family_birthdate.txt" >"$tmp/family_birthdate.txt" <<'PY'
import sys, urllib.parse as u
for line in open(sys.argv[1], encoding="utf-8"):
    family, birth = line.rstrip("\n").split("\t")
    print(f"Patient?family={u.quote(family)}&birthdate={birth}")
PY
printf 'Patient?name=nguyen\nPatient?name=tran\nPatient?name=le\nPatient?name=pham\n' >"$tmp/name.txt"
sed 's/^/Immunization?patient=/' "$q/patient_ids.txt" >"$tmp/imm_patient.txt"
for cvx in 207 208 210 510 511; do
  echo "Immunization?date=ge2021-07-01&vaccine-code=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fcvx%7C$cvx"
done >"$tmp/imm_date_code.txt"
enc <"$q/identifiers.txt" | sed 's/^/Immunization?patient.identifier=/' >"$tmp/chain.txt"
sed 's/^/Immunization?_include=Immunization:patient\&patient=/' "$q/patient_ids.txt" >"$tmp/include.txt"

declare -A slowest=()
summary=()
for scenario in ${SCENARIOS:-identifier family_birthdate name imm_patient imm_date_code chain include}; do
  log=$tmp/wrk-$scenario.txt
  BENCH_SCENARIO=$scenario BENCH_CONNS=$conns BENCH_QUERIES=$tmp/$scenario.txt \
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$bench_dir/lua/search.lua" "$base" >"$log" 2>&1
  line=$(grep '^RESULT ' "$log" | tail -n 1)
  summary+=("$line")
  say "$line"
  sleep 2
done

# A burst of creates (issue 3: "no collapse during and right after a burst of 50,000
# creates"): identifier lookups in 5-second windows while BURST Patients are created at 16
# connections, then for 30 seconds after. The index is written in each create's
# transaction, so there is no backlog to catch up on afterwards.
burst=${BURST:-50000}
if [[ $burst -gt 0 ]]; then
  say "## burst of $burst creates, identifier lookups in 5 s windows (8 connections)"
  # wrk's threads stop at the limit, but wrk itself waits out -d: watch the database and
  # interrupt it (SIGINT makes wrk report) when the burst is written. The target is taken
  # before the first create.
  patients_now() { psql_db -c "SELECT count(*) FROM resource_versions WHERE res_type = 'Patient' AND is_current"; }
  target=$(($(patients_now) + burst))
  BENCH_SCENARIO=burst-create BENCH_CONNS=16 BENCH_LIMIT=$burst BENCH_THREADS=2 \
    wrk -t2 -c16 -d3600s --latency -s "$bench_dir/lua/create.lua" "$base" >"$tmp/burst.txt" 2>&1 &
  burst_pid=$!
  window=0
  while kill -0 "$burst_pid" 2>/dev/null && [[ $(patients_now) -lt $target ]]; do
    window=$((window + 1))
    BENCH_SCENARIO=during-$window BENCH_CONNS=8 BENCH_QUERIES=$tmp/identifier.txt \
      wrk -t1 -c8 -d5s --latency -s "$bench_dir/lua/search.lua" "$base" 2>&1 | grep '^RESULT' | tee -a "$out"
  done
  kill -INT "$burst_pid" 2>/dev/null || true
  wait "$burst_pid" || true
  grep '^RESULT' "$tmp/burst.txt" | tee -a "$out"
  for window in 1 2 3 4 5 6; do
    BENCH_SCENARIO=after-$window BENCH_CONNS=8 BENCH_QUERIES=$tmp/identifier.txt \
      wrk -t1 -c8 -d5s --latency -s "$bench_dir/lua/search.lua" "$base" 2>&1 | grep '^RESULT' | tee -a "$out"
  done
fi

say "## index size on disk"
# AuditEvents (one per request) carry no index rows: count the indexed resources only.
total=$(psql_db -c "SELECT count(*) FROM resource_versions WHERE is_current AND NOT deleted AND res_type <> 'AuditEvent'")
psql_db -c "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) FROM pg_class WHERE relname LIKE 'search_%' AND relkind = 'r' ORDER BY 1" | tee -a "$out"
index_bytes=$(psql_db -c "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relname LIKE 'search_%' AND relkind = 'r'")
say "resources: $total; search index tables: $((index_bytes / 1024 / 1024)) MiB; per 1,000 resources: $((index_bytes / (total / 1000) / 1024)) KiB"
say "resource_versions: $(psql_db -c "SELECT pg_size_pretty(pg_total_relation_size('resource_versions'))")"

say "## slowest search statement during the scenarios (auto_explain, sampled, > 5 ms)"
if [[ -n $pg_log ]]; then
  tail -n +"$((log_start + 1))" "$pg_log" | python3 -c '
import re, sys
text = sys.stdin.read()
blocks = re.split(r"\n(?=\S+ \S+ \S+ \[\d+\])", text)
best = max((b for b in blocks if "duration:" in b and "plan:" in b and "Query Text: SELECT" in b),
           key=lambda b: float(re.search(r"duration: ([\d.]+) ms", b).group(1)), default="")
print(best[:6000] or "no statement over 5 ms")' | tee -a "$out"
fi

say "## server log warnings/errors"
grep -ciE 'error|panic' "$tmp/server.log" | sed 's/^/lines: /' | tee -a "$out" || true
say "results: $out"
