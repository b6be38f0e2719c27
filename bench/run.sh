#!/usr/bin/env bash
# Healthbook load benchmark (wrk + Lua scenarios). See bench/README.md.
#
#   bench/run.sh sqlite
#   bench/run.sh postgres
#
# Environment:
#   DURATION     seconds per scenario (default 15)
#   SEED_COUNT   Patients seeded for GET by id (default 1000)
#   CC_RANGE     distinct identifier values of the conditional-create scenario (default 5000)
#   WARMUP       seconds of unrecorded GET load before measuring (default 3; 0 = none)
#   PAUSE        seconds of idle between scenarios (default 2)
#   SCENARIOS    the scenarios to run, in this order, comma-separated (default: all, as below)
#   PORT         server port (default: a free random port)
#   PGHOST PGPORT PGUSER   PostgreSQL admin connection (default 127.0.0.1, 5432, postgres)
#   SKIP_BUILD=1 use target/release/healthbook as it is (default: cargo build --release first)
set -euo pipefail

usage() {
  echo "usage: $0 sqlite|postgres" >&2
}

backend=${1:-}
case $backend in
  sqlite | postgres) ;;
  *)
    usage
    exit 2
    ;;
esac

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$bench_dir/.." && pwd)
lua_dir=$bench_dir/lua

duration=${DURATION:-15}
duration=${duration%s}
seed_count=${SEED_COUNT:-1000}
cc_range=${CC_RANGE:-5000}
warmup=${WARMUP:-3}
pause=${PAUSE:-2}
pg_host=${PGHOST:-127.0.0.1}
pg_port=${PGPORT:-5432}
pg_user=${PGUSER:-postgres}

for v in duration seed_count cc_range warmup pause; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
    echo "error: $v must be a whole number, got '${!v}'" >&2
    exit 2
  fi
done

# --- tools ----------------------------------------------------------------------------------

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing the Debian package" >&2
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
fi
for tool in curl git; do
  command -v "$tool" >/dev/null || {
    echo "error: $tool is required" >&2
    exit 1
  }
done
if [[ $backend == postgres ]]; then
  command -v psql >/dev/null || {
    echo "error: psql is required for the postgres backend (Debian: postgresql-client)" >&2
    exit 1
  }
fi

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "building the server (cargo build --release -p healthbook)" >&2
  (cd "$root" && cargo build --release -p healthbook) >&2
fi
server_bin=$root/target/release/healthbook
[[ -x $server_bin ]] || {
  echo "error: $server_bin not found (build it or unset SKIP_BUILD)" >&2
  exit 1
}

# --- state and cleanup ----------------------------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hb-bench.XXXXXX")
out=$tmp/results.txt
server_pid=
pg_db=
finished=0

psql_admin() {
  psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

cleanup() {
  [[ -z ${idp_pid:-} ]] || kill "$idp_pid" 2>/dev/null || true
  local rc=$?
  set +e
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [[ $finished != 1 && -s $tmp/server.log ]]; then
    echo "--- last lines of the server log ---" >&2
    tail -n 30 "$tmp/server.log" >&2
  fi
  if [[ -n $pg_db ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null ||
      echo "warning: could not drop database $pg_db" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() {
  printf '%s\n' "$*" | tee -a "$out"
}

# --- server ---------------------------------------------------------------------------------

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port=${PORT:-}
if [[ -z $port ]]; then
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 30000))
    port_in_use "$port" || break
  done
fi
if port_in_use "$port"; then
  echo "error: port $port is in use" >&2
  exit 1
fi

case $backend in
  sqlite)
    db_url="sqlite://$tmp/bench.db"
    ;;
  postgres)
    pg_db="hb_bench_$(date +%s)_$RANDOM"
    psql_admin -c "CREATE DATABASE \"$pg_db\""
    db_url="postgres://$pg_user@$pg_host:$pg_port/$pg_db"
    ;;
esac

# AUTH=oidc: verify a bearer token from the test OpenID provider (conformance-tests/idp) on
# every request, to measure what token verification costs.
auth=${AUTH:-none}
idp_pid=
if [[ $auth == oidc ]]; then
  idp_port=$((port + 1))
  [[ -d $root/conformance-tests/idp/node_modules ]] ||
    (cd "$root/conformance-tests/idp" && npm ci --no-audit --no-fund --loglevel=error)
  IDP_PORT=$idp_port FHIR_AUD=http://127.0.0.1:$port/fhir \
    node "$root/conformance-tests/idp/idp.mjs" >"$tmp/idp.log" 2>&1 &
  idp_pid=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$idp_port/.well-known/openid-configuration" && break
    sleep 0.1
  done
  export HEALTHBOOK__AUTH__MODE=oidc
  export HEALTHBOOK__AUTH__ISSUER=http://127.0.0.1:$idp_port
  BENCH_TOKEN=$(curl -sf -u tester:tester-secret -H 'X-Test-Ttl: 3600' \
    -d grant_type=client_credentials -d 'scope=system/*.cruds' \
    "http://127.0.0.1:$idp_port/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  export BENCH_TOKEN
fi

export HEALTHBOOK__SERVER__BIND=127.0.0.1:$port
export HEALTHBOOK__DATABASE__URL=$db_url
export HEALTHBOOK__LOG__LEVEL=warn
unset RUST_LOG

if [[ $backend == postgres ]]; then
  (cd "$root" && "$server_bin" migrate) >"$tmp/migrate.log" 2>&1 || {
    cat "$tmp/migrate.log" >&2
    echo "error: migrate failed" >&2
    exit 1
  }
fi

(cd "$root" && exec "$server_bin" serve) >"$tmp/server.log" 2>&1 &
server_pid=$!

origin=http://127.0.0.1:$port
base=$origin/fhir
ready=0
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server exited during start-up" >&2
    exit 1
  fi
  code=$(curl -s -o /dev/null -w '%{http_code}' "$origin/health/ready" || true)
  if [[ $code == 200 ]]; then
    ready=1
    break
  fi
  sleep 0.1
done
[[ $ready == 1 ]] || {
  echo "error: $origin/health/ready did not answer 200 within 30 s" >&2
  exit 1
}

# --- header ---------------------------------------------------------------------------------

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit (+ uncommitted changes)"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
say "Healthbook benchmark"
say "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "commit:    $commit"
say "nproc:     $(nproc)${cpu_model:+ ($cpu_model)}"
say "load avg:  $(cut -d' ' -f1-3 /proc/loadavg) (other work on the box skews the figures)"
say "backend:   $backend (auth: $auth)"
if [[ $backend == postgres ]]; then
  say "postgres:  $(psql_admin -c 'SHOW server_version') on $pg_host:$pg_port (synchronous_commit=$(psql_admin -c 'SHOW synchronous_commit'), fsync=$(psql_admin -c 'SHOW fsync'))"
fi
say "wrk:       $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
say "duration:  ${duration}s per scenario; seeded Patients: $seed_count; conditional-create range: $cc_range"
say ""

# --- seed -----------------------------------------------------------------------------------

patient_body() {
  printf '{"resourceType":"Patient","identifier":[{"system":"https://bench.example/seed","value":"%s"}],"name":[{"family":"Nguyễn","given":["Văn","An"]}],"gender":"male","birthDate":"1990-02-14","telecom":[{"system":"phone","value":"+84912345678"}],"address":[{"city":"Hà Nội","country":"VN"}]}' "$1"
}

# One curl process, one kept-alive connection, one config section per Patient.
seed_cfg=$tmp/seed.curl
: >"$seed_cfg"
for i in $(seq "$seed_count"); do
  body=$(patient_body "$(printf 'seed%08d' "$i")")
  {
    [[ $i -eq 1 ]] || printf 'next\n'
    printf 'url = "%s/Patient"\n' "$base"
    printf 'header = "Content-Type: application/fhir+json"\n'
    printf 'header = "Prefer: return=minimal"\n'
    [[ -z ${BENCH_TOKEN:-} ]] || printf 'header = "Authorization: Bearer %s"\n' "$BENCH_TOKEN"
    printf 'data-binary = "%s"\n' "${body//\"/\\\"}"
    printf 'output = "/dev/null"\n'
    printf 'dump-header = "-"\n'
  } >>"$seed_cfg"
done
seed_start=$(date +%s.%N)
curl -sS --config "$seed_cfg" >"$tmp/seed.headers"
seed_end=$(date +%s.%N)
ids=$tmp/ids.txt
tr -d '\r' <"$tmp/seed.headers" |
  sed -n 's#^[Ll]ocation:.*/Patient/\([^/]*\)/_history/.*#\1#p' >"$ids"
seeded=$(wc -l <"$ids")
if [[ $seeded -ne $seed_count ]]; then
  echo "error: seeded $seeded of $seed_count Patients; status lines seen:" >&2
  grep '^HTTP/' "$tmp/seed.headers" | sort | uniq -c >&2
  exit 1
fi
say "seeded $seeded Patients in $(awk -v a="$seed_start" -v b="$seed_end" 'BEGIN { printf "%.1f", b - a }') s (sequential, 1 connection)"

# A personal QR for each seeded Patient (the hospital-scan scenarios).
qr_tokens=$tmp/qr.txt
python3 - "$origin" "$ids" "$qr_tokens" <<'PY'
import json, os, sys, urllib.request
base, ids, out = sys.argv[1:4]
headers = {"Accept": "application/fhir+json"}
token = os.environ.get("BENCH_TOKEN")
if token:
    headers["Authorization"] = "Bearer " + token
with open(ids) as f, open(out, "w") as o:
    for pid in filter(None, (l.strip() for l in f)):
        req = urllib.request.Request(f"{base}/fhir/Patient/{pid}/$qr-issue", method="POST", headers=headers)
        p = json.load(urllib.request.urlopen(req))
        o.write(next(x["valueString"] for x in p["parameter"] if x["name"] == "token") + "\n")
PY
# PostgreSQL on these machines runs without autovacuum: give the planner the statistics a
# production database has before anything is measured.
if [[ $backend == postgres ]]; then
  psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" -qc "VACUUM ANALYZE"
fi
say ""

# --- scenarios ------------------------------------------------------------------------------

summary=()

# run_wrk <scenario> <threads> <connections> <lua script>
run_wrk() {
  local name=$1 threads=$2 conns=$3 script=$4 log=$tmp/wrk-$1-$3.txt
  say "=== $name, $conns connection(s), ${duration}s ==="
  BENCH_SCENARIO=$name BENCH_CONNS=$conns BENCH_IDS=$ids BENCH_CC_RANGE=$cc_range \
    BENCH_QR=$qr_tokens BENCH_QR_MODE=${name#qr-} \
    wrk -t"$threads" -c"$conns" -d"${duration}s" --latency -s "$lua_dir/$script" "$base" \
    >"$log" 2>&1 || {
    cat "$log" >&2
    echo "error: wrk failed in scenario $name" >&2
    exit 1
  }
  tee -a "$out" <"$log"
  summary+=("$(grep '^RESULT ' "$log" | tail -n 1)")
  say ""
  sleep "$pause"
  audit_drained
}

# Every request leaves an AuditEvent, written in batches behind the answers: a scenario
# can end with thousands still queued, which the next scenario would pay for. On
# PostgreSQL, wait (up to 120 s) until the count of written AuditEvents stops growing.
audit_drained() {
  [[ $backend == postgres ]] || return 0
  local last=-1 now waited=0
  while [[ $waited -lt 120 ]]; do
    now=$(psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d "$pg_db" -Atc \
      "SELECT count(*) FROM resource_versions WHERE res_type = 'AuditEvent'")
    [[ $now == "$last" ]] && return 0
    last=$now
    sleep 1
    waited=$((waited + 1))
  done
  say "(audit events still being written after 120 s)"
}

if [[ $warmup -gt 0 ]]; then
  BENCH_IDS=$ids wrk -t2 -c32 -d"${warmup}s" -s "$lua_dir/get_by_id.lua" "$base" >/dev/null 2>&1 || true
  sleep 1
  audit_drained
fi

scenarios=${SCENARIOS:-get-by-id-1,get-by-id,qr-resolve,qr-identifier,create,conditional-create}
IFS=, read -ra scenario_list <<<"$scenarios"
for scenario in "${scenario_list[@]}"; do
  case $scenario in
    get-by-id-1) run_wrk get-by-id 1 1 get_by_id.lua ;;
    get-by-id) run_wrk get-by-id 2 32 get_by_id.lua ;;
    qr-resolve) run_wrk qr-resolve 2 32 qr_lookup.lua ;;
    qr-identifier) run_wrk qr-identifier 2 32 qr_lookup.lua ;;
    create) run_wrk create 2 32 create.lua ;;
    conditional-create) run_wrk conditional-create 2 32 conditional_create.lua ;;
    *)
      echo "error: unknown scenario '$scenario'" >&2
      exit 2
      ;;
  esac
done

say "=== summary ($backend, nproc $(nproc), commit $commit) ==="
for line in "${summary[@]}"; do
  say "$line"
done

# --- results file ---------------------------------------------------------------------------

mkdir -p "$bench_dir/results"
stem=$bench_dir/results/$(date +%Y-%m-%d)-$backend
dest=$stem.txt
n=2
while [[ -e $dest ]]; do
  dest=$stem-$n.txt
  n=$((n + 1))
done
cp "$out" "$dest"
finished=1
echo "results written to ${dest#"$root"/}"
