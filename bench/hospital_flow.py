#!/usr/bin/env python3
"""The hospital flow, timed end to end (issue 15's target; see bench/README.md):

    python3 bench/hospital_flow.py --base http://127.0.0.1:8080/fhir \\
        [--persons 200] [--resources 20] [--flows 3000] [--connections 1,4] [--token T]

Setup (not timed): --persons people, each written as one transaction Bundle of a Patient
and --resources - 1 resources of their record (Immunizations, Observations, Conditions,
alternating), and each issued a personal QR (`$qr-issue`).

Then, for each --connections value, --flows flows spread over that many threads, each with
one kept-alive HTTP/1.1 connection: a flow is what the hospital does when a person shows
their code, one request after the other:

    GET /Patient/$qr-resolve?code=HB1:<token>      the scan, answered with the Patient
    GET /Patient/<id>/$everything                  the whole record (every entry checked)

and its time is from the first byte sent to the last byte of the record read. Prints, per
connection count: flows/s and the p50 / p90 / p99 of the flow and of each step, in ms.

With --token, every request carries it (a system/ token: with a practitioner's user/ token
the first scan of each person also writes their access grant).

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse
import uuid


def connect(base: urllib.parse.SplitResult) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(base.hostname, base.port or 80, timeout=60)


def call(conn, method: str, path: str, headers: dict, body: bytes | None = None):
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
    return data


def record(n: int, resources: int) -> dict:
    """A person and their record as a transaction Bundle."""
    person = f"urn:uuid:{uuid.uuid4()}"
    serial = f"{random.randrange(10**6):06d}"
    entries = [{
        "fullUrl": person,
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "https://bench.example/hospital-flow", "value": f"{uuid.uuid4()}"}],
            "name": [{"family": "Trần", "given": ["Thị", f"Flow{n}"]}],
            "gender": "female",
            "birthDate": "1985-03-0" + str(1 + n % 9),
            "telecom": [{"system": "phone", "value": "+8491" + serial + "2"}],
        },
        "request": {"method": "POST", "url": "Patient"},
    }]
    for i in range(resources - 1):
        kind = i % 3
        if kind == 0:
            resource = {
                "resourceType": "Immunization", "status": "completed",
                "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
                "patient": {"reference": person},
                "occurrenceDateTime": f"2021-{1 + i % 12:02d}-15",
                "lotNumber": f"LOT{i:04d}",
                "location": {"display": "Trạm Y tế phường Bến Nghé"},
            }
        elif kind == 1:
            resource = {
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
                "subject": {"reference": person},
                "effectiveDateTime": f"2022-{1 + i % 12:02d}-10",
                "valueQuantity": {"value": 60 + i, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
            }
        else:
            resource = {
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003", "display": "Hypertension"}]},
                "subject": {"reference": person},
                "recordedDate": f"2020-{1 + i % 12:02d}-01",
            }
        entries.append({"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def setup(base, headers, persons: int, resources: int) -> list[str]:
    conn = connect(base)
    payloads = []
    json_headers = dict(headers, **{"Content-Type": "application/fhir+json"})
    for n in range(persons):
        answer = json.loads(call(conn, "POST", base.path, json_headers, json.dumps(record(n, resources)).encode()))
        location = answer["entry"][0]["response"]["location"]
        patient = location.split("/")[1]
        issued = json.loads(call(conn, "POST", f"{base.path}/Patient/{patient}/$qr-issue", headers))
        payloads.append(next(p["valueString"] for p in issued["parameter"] if p["name"] == "payload"))
    conn.close()
    return payloads


def run(base, headers, payloads: list[str], flows: int, connections: int, expect: int):
    times: list[tuple[float, float, float]] = []
    lock = threading.Lock()
    errors: list[str] = []
    per_thread = [flows // connections + (1 if i < flows % connections else 0) for i in range(connections)]

    def worker(count: int, seed: int):
        rng = random.Random(seed)
        conn = connect(base)
        mine = []
        try:
            for _ in range(count):
                payload = rng.choice(payloads)
                t0 = time.perf_counter()
                patient = json.loads(call(conn, "GET", f"{base.path}/Patient/$qr-resolve?code={urllib.parse.quote(payload)}", headers))
                t1 = time.perf_counter()
                record = json.loads(call(conn, "GET", f"{base.path}/Patient/{patient['id']}/$everything", headers))
                t2 = time.perf_counter()
                got = len(record.get("entry", []))
                if got != expect:
                    raise RuntimeError(f"$everything gave {got} entries, not {expect}")
                mine.append((t2 - t0, t1 - t0, t2 - t1))
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(str(e))
        finally:
            conn.close()
            with lock:
                times.extend(mine)

    threads = [threading.Thread(target=worker, args=(c, i)) for i, c in enumerate(per_thread)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return times, elapsed, errors


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--persons", type=int, default=200)
    ap.add_argument("--resources", type=int, default=20)
    ap.add_argument("--flows", type=int, default=3000)
    ap.add_argument("--connections", default="1,4")
    ap.add_argument("--token")
    args = ap.parse_args()
    base = urllib.parse.urlsplit(args.base.rstrip("/"))
    headers = {"Accept": "application/fhir+json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    t = time.perf_counter()
    payloads = setup(base, headers, args.persons, args.resources)
    print(f"setup: {args.persons} persons of {args.resources} resources with a QR each in {time.perf_counter() - t:.1f} s")
    # Warm up (statements prepared, pages cached), not measured.
    run(base, headers, payloads, min(200, args.flows), 1, args.resources)
    failed = False
    for conns in (int(c) for c in args.connections.split(",")):
        times, elapsed, errors = run(base, headers, payloads, args.flows, conns, args.resources)
        if errors:
            print(f"errors at {conns} connection(s): {errors[:3]}", file=sys.stderr)
            failed = True
        if not times:
            continue
        flow, scan, everything = zip(*times)
        print(
            f"RESULT hospital-flow conns={conns} flows={len(times)} flows_per_s={len(times) / elapsed:.1f} "
            f"p50_ms={pct(flow, 50):.2f} p90_ms={pct(flow, 90):.2f} p99_ms={pct(flow, 99):.2f} "
            f"scan_p50_ms={pct(scan, 50):.2f} everything_p50_ms={pct(everything, 50):.2f} "
            f"mean_ms={statistics.fmean(flow) * 1000:.2f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
