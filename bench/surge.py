#!/usr/bin/env python3
"""The launch-day surge (issue 16; run by bench/surge.sh, see bench/README.md):

    python3 bench/surge.py --base http://127.0.0.1:8080/fhir --hospital-token T \\
        --citizen-token C --citizen-id <Patient id> --codes codes.txt \\
        [--phase-secs 20] [--citizen-conns 24] [--factor 6] [--hospital-rate 10] [--think-ms 20]

Three phases: normal, surge (the citizens' connections times --factor), and after (normal
again). In every phase two classes of clients run at once:

- the citizens' apps: reads of the person's own Patient with a `patient/` token, by wrk
  (`lua/citizen.lua`): --citizen-conns app users (x --factor in the surge), each reading
  once per --think-ms of think time, so six times the users offer six times the load; plus
  a probe at 20 requests/s that times each answer, shed ones included;
- a hospital: scans at --hospital-rate flows per second, open loop (a flow is due at its
  time whatever the server does, so a slow server is not hidden by a slow client): `GET
  Patient/$qr-resolve?code=` then `GET Patient/<id>/$everything`, with a practitioner's
  `user/` token. Latency is from the time the request was due.

Prints per phase and class: requests, the share answered 2xx, p50/p99 of the 2xx answers,
the shed answers (503/429) and the p99 of their latency, socket errors; the shed counts by
class from /metrics; and for the after phase the hospital's p99 second by second.

--codes: a file of personal QR payloads, one per line (the persons the hospital scans).
Python 3.11 standard library and wrk.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

LOCAL = threading.local()


def connection(base: urllib.parse.SplitResult) -> http.client.HTTPConnection:
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=30)
        LOCAL.conn = conn
    return conn


def call(base, path: str, token: str) -> tuple[int, bytes]:
    """GET path; its status (0 for a socket error) and body."""
    headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
    for attempt in range(2):
        conn = connection(base)
        try:
            conn.request("GET", base.path + path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                LOCAL.conn = None
            return resp.status, body
        except (OSError, http.client.HTTPException):
            conn.close()
            LOCAL.conn = None
            if attempt == 1:
                return 0, b""
    return 0, b""


class Samples:
    """(due time, latency s, status) of one class in one phase."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[float, float, int]] = []

    def add(self, due: float, latency: float, status: int):
        with self.lock:
            self.rows.append((due, latency, status))

    def summary(self) -> dict:
        ok = sorted(l for _, l, s in self.rows if 200 <= s < 300)
        shed = sorted(l for _, l, s in self.rows if s in (429, 503))
        errors = sum(1 for _, _, s in self.rows if s == 0)
        other = sum(1 for _, _, s in self.rows if s and not (200 <= s < 300) and s not in (429, 503))
        total = len(self.rows)
        return {
            "requests": total,
            "ok_share": len(ok) / total if total else 0.0,
            "p50_ms": pct(ok, 50) * 1000,
            "p99_ms": pct(ok, 99) * 1000,
            "shed": len(shed),
            "shed_p99_ms": pct(shed, 99) * 1000,
            "socket_errors": errors,
            "other": other,
        }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))
    return values[k]


def open_loop(rate: float, secs: float, job, workers: int = 64):
    """Runs job(due) at `rate` per second for `secs`, each at its due time."""
    start = time.monotonic()
    n = int(rate * secs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(n):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(job, due)


def metrics(base) -> dict:
    conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    shed = {m[0]: int(m[1]) for m in re.findall(r'healthbook_admission_shed_total\{class="(\w+)"\} (\d+)', text)}
    limited = re.search(r"healthbook_admission_rate_limited_total (\d+)", text)
    shed["rate-limited"] = int(limited.group(1)) if limited else 0
    depth = re.search(r"healthbook_audit_queue_depth (\d+)", text)
    shed["audit queue"] = int(depth.group(1)) if depth else 0
    return shed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--hospital-token", required=True)
    ap.add_argument("--citizen-token", required=True)
    ap.add_argument("--citizen-id", required=True)
    ap.add_argument("--codes", required=True)
    ap.add_argument("--phase-secs", type=float, default=20)
    ap.add_argument("--citizen-conns", type=int, default=24)
    ap.add_argument("--factor", type=int, default=6)
    ap.add_argument("--hospital-rate", type=float, default=10)
    ap.add_argument("--think-ms", type=float, default=20)
    ap.add_argument("--wrk", default="wrk")
    args = ap.parse_args()
    base = urllib.parse.urlsplit(args.base)
    codes = [line for line in open(args.codes).read().splitlines() if line]
    bench = os.path.dirname(os.path.abspath(__file__))
    ids_file = os.path.join(os.path.dirname(os.path.abspath(args.codes)), "citizen-ids.txt")
    with open(ids_file, "w") as f:
        f.write(args.citizen_id + "\n")

    phases = [("normal", args.citizen_conns), ("surge", args.citizen_conns * args.factor),
              ("after", args.citizen_conns)]
    print(f"# surge: {args.phase_secs:.0f} s per phase; citizens {args.citizen_conns} app users "
          f"(x{args.factor} in the surge), each one read per {args.think_ms:g} ms of think time "
          f"(offered {args.citizen_conns * 1000 / args.think_ms:.0f}/s, x{args.factor} in the "
          f"surge), + a 20/s probe; hospital {args.hospital_rate:g} flows/s (2 requests each), "
          f"open loop")
    for name, conns in phases:
        before = metrics(base)
        env = dict(os.environ, BENCH_TOKEN=args.citizen_token, BENCH_IDS=ids_file,
                   BENCH_THINK_MS=str(args.think_ms), BENCH_SCENARIO="citizens", BENCH_CONNS=str(conns))
        wrk = subprocess.Popen(
            [args.wrk, "-t2", f"-c{conns}", f"-d{args.phase_secs:.0f}s", "--latency", "-s",
             os.path.join(bench, "lua", "citizen.lua"), f"{base.scheme}://{base.netloc}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        hospital, citizen = Samples(), Samples()
        counter = iter(range(10**9))
        lock = threading.Lock()

        def flow(due):
            with lock:
                code = codes[next(counter) % len(codes)]
            status, body = call(base, f"/Patient/$qr-resolve?code={urllib.parse.quote(code)}", args.hospital_token)
            hospital.add(due, time.monotonic() - due, status)
            if not 200 <= status < 300:
                return
            patient = json.loads(body)["id"]
            due = time.monotonic()
            status, _ = call(base, f"/Patient/{patient}/$everything", args.hospital_token)
            hospital.add(due, time.monotonic() - due, status)

        def probe(due):
            status, _ = call(base, f"/Patient/{args.citizen_id}", args.citizen_token)
            citizen.add(due, time.monotonic() - due, status)

        t0 = time.monotonic()
        threads = [threading.Thread(target=open_loop, args=(args.hospital_rate, args.phase_secs, flow)),
                   threading.Thread(target=open_loop, args=(20, args.phase_secs, probe, 16))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out, _ = wrk.communicate()
        after = metrics(base)
        result = next((l for l in out.splitlines() if l.startswith("RESULT")), out.strip()[-300:])
        shed = {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "audit queue"}
        print(f"\n## {name}: citizens {conns} connections")
        print(f"citizen flood (wrk): {result}")
        for label, samples in (("hospital", hospital), ("citizen probe", citizen)):
            s = samples.summary()
            print(f"{label:14} requests {s['requests']:6d}  2xx {s['ok_share']*100:5.1f}%  "
                  f"p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  shed {s['shed']:6d} "
                  f"(p99 {s['shed_p99_ms']:.1f} ms)  socket errors {s['socket_errors']}  other {s['other']}")
        print(f"shed by class (/metrics): {shed}; audit events queued at the end: {after['audit queue']}")
        if name == "after":
            print("hospital p99 of 2xx by second after the surge:")
            for sec in range(5):
                lat = sorted(l for d, l, st in hospital.rows if 200 <= st < 300 and sec <= d - t0 < sec + 1)
                ok = sum(1 for d, _, st in hospital.rows if 200 <= st < 300 and sec <= d - t0 < sec + 1)
                n = sum(1 for d, _, _ in hospital.rows if sec <= d - t0 < sec + 1)
                print(f"  second {sec + 1}: {ok}/{n} 2xx, p99 {pct(lat, 99)*1000:.1f} ms")


if __name__ == "__main__":
    main()
