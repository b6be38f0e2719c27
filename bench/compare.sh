#!/usr/bin/env bash
# Side by side (issue 16): the same workloads, in the same run, against several FHIR R4 base
# URLs, so that Healthbook and a peer server are measured on the same machine at the same
# time of day. See bench/README.md.
#
#   bench/compare.sh http://127.0.0.1:8080/fhir http://127.0.0.1:8090/fhir
#
# Environment: DURATION (s per workload, default 10), CONNS (default 32), SEED (Patients
# seeded on each server for the reads, default 1000), TOKENS (bearer tokens, one per base
# URL in order, space-separated; "-" for none), SCENARIOS (default
# get-by-id,identifier,create,transaction), OUT (result file; default
# bench/results/<date>-compare.txt).
#
# Each server is seeded through its own API with the same Patients (POST, one identifier
# each); then each workload runs against every server in turn, with a pause between them:
# GET Patient/<id>, Patient?identifier=<system>|<value>, POST Patient (Prefer:
# return=minimal), and a transaction of 1 Patient + 3 Immunizations (conditional creates, as
# a vaccination site sends a visit). Only the FHIR REST API is used: any R4 server will do.
set -euo pipefail
bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lua=$bench/lua
[[ $# -ge 1 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
duration=${DURATION:-10}
conns=${CONNS:-32}
seed=${SEED:-1000}
scenarios=${SCENARIOS:-get-by-id,identifier,create,transaction}
out=${OUT:-$bench/results/$(date -u +%Y-%m-%d)-compare.txt}
read -r -a tokens <<<"${TOKENS:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v wrk >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y wrk >/dev/null
say() { echo "$*" | tee -a "$out"; }
: >"$out"
say "# compare: $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); ${duration}s per workload, $conns connections, $seed seeded Patients"

run=$(date +%s)
n=0
for base in "$@"; do
  token=${tokens[$n]:--}
  [[ $token == - ]] && token=
  dir=$tmp/$n
  mkdir -p "$dir"
  # Seed: the same Patients on every server; ids from the Location headers.
  python3 - "$base" "$token" "$seed" "$run" "$dir" <<'PY'
import http.client, json, sys, urllib.parse
base, token, seed, run, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
u = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
if token:
    headers["Authorization"] = "Bearer " + token
ids, queries = [], []
for i in range(seed):
    value = f"cmp-{run}-{i:06d}"
    body = {"resourceType": "Patient",
            "identifier": [{"system": "https://bench.example/compare", "value": value}],
            "name": [{"family": "Nguyễn", "given": ["Văn", "An"]}], "gender": "male",
            "birthDate": "1990-02-14", "telecom": [{"system": "phone", "value": "+84912345678"}]}
    conn.request("POST", u.path + "/Patient", body=json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 201:
        sys.exit(f"{base}: seeding answered {resp.status}: {data[:300]!r}")
    location = resp.getheader("Location") or ""
    pid = json.loads(data)["id"] if data else location.split("/Patient/")[1].split("/")[0]
    ids.append(pid)
    queries.append(f"Patient?identifier=https://bench.example/compare%7C{value}")
open(f"{out}/ids.txt", "w").write("\n".join(ids) + "\n")
open(f"{out}/queries.txt", "w").write("\n".join(queries) + "\n")
PY
  n=$((n + 1))
done
say "seeded $seed Patients on each of $# servers"
say ""

declare -A script=([get-by-id]=get_by_id.lua [identifier]=search.lua [create]=create.lua [transaction]=bundle.lua)
printf '%-12s %-40s %10s %9s %9s %8s\n' workload server req/s p50_ms p99_ms non2xx | tee -a "$out"
IFS=, read -r -a wanted <<<"$scenarios"
for scenario in "${wanted[@]}"; do
  [[ -n ${script[$scenario]:-} ]] || { echo "unknown scenario $scenario" >&2; exit 2; }
  n=0
  for base in "$@"; do
    token=${tokens[$n]:--}
    [[ $token == - ]] && token=
    path=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path.rstrip("/"))' "$base")
    origin=${base%"$path"}
    log=$tmp/$n-$scenario.txt
    BENCH_BASE_PATH=$path BENCH_TOKEN=$token BENCH_IDS=$tmp/$n/ids.txt \
      BENCH_QUERIES=$tmp/$n/queries.txt BENCH_BUNDLE=transaction BENCH_SCENARIO=$scenario \
      BENCH_CONNS=$conns wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$lua/${script[$scenario]}" "$origin" >"$log" 2>&1 || {
      cat "$log" >&2
      exit 1
    }
    awk -v w="$scenario" -v b="$base" '/^RESULT/ {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      printf "%-12s %-40s %10s %9s %9s %8s\n", w, b, v["rps"], v["p50_ms"], v["p99_ms"], v["non2xx"] }' "$log" | tee -a "$out"
    n=$((n + 1))
    sleep 3
  done
done
