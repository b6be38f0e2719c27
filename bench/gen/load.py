#!/usr/bin/env python3
"""Upload NDJSON FHIR resources to a Healthbook server with PUT (update-as-create).

    python3 bench/gen/load.py --base http://127.0.0.1:8080/fhir --dir /tmp/pop \\
        [--connections 16] [--types Patient,Immunization,Observation,Condition] \\
        [--limit N] [--offset K] [--bundle B] [--token TOKEN]

With --limit N: the first N Patients, and of the other types only the resources that
reference one of them (no dangling references in a partial load). With --offset K: the
Patients after the first K (and what references them), so that a database loaded with
--limit K can be extended to the whole population.

With --bundle B: B resources of one type per transaction Bundle of PUT entries
(`POST {base}`), instead of one PUT each; the server writes the new ones together.

Reads DIR/<Type>.ndjson lazily (a bounded queue feeds the workers, so memory stays flat at
millions of lines) and sends every line as `PUT {base}/{Type}/{id}` with
`Content-Type: application/fhir+json` and `Prefer: return=minimal`. Patients go first; each
type is finished before the next one starts, so references to Patients always resolve.

Each of the --connections threads keeps one persistent HTTP/1.1 connection (keep-alive) and
reconnects after an error. A request is retried up to 5 times (short exponential backoff)
on connection errors and on 429 / 503; any other status outside 2xx is a failure (the first
few bodies are printed). Progress every ~10 s; a summary at the end; the exit status is 1 when
any resource failed, 130 when interrupted.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter

DEFAULT_TYPES = ("Patient", "Immunization", "Observation", "Condition")
MAX_RETRIES = 5
SHOW_FAILURES = 5

# The generator writes resourceType and id first; anything else falls back to json.loads.
FAST_HEAD = re.compile(rb'^\{"resourceType":"([A-Za-z]+)","id":"([A-Za-z0-9\-.]{1,64})"')
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
PATIENT_REF = re.compile(
    rb'"(?:patient|subject)":\{"reference":"Patient/([A-Za-z0-9\-.]{1,64})"')


class Stats:
    """Counters shared by the workers (one lock; contention is negligible next to HTTP)."""

    def __init__(self, max_failures: int = 0, stop: threading.Event | None = None):
        self.lock = threading.Lock()
        self.max_failures = max_failures
        self.stop = stop
        self.done = 0
        self.ok = 0
        self.failed = 0
        self.retries = 0
        self.skipped = 0
        self.connects = 0
        self.by_type_ok: Counter = Counter()
        self.by_type_failed: Counter = Counter()
        self.statuses: Counter = Counter()
        self.failure_samples: list[str] = []
        self.failure_reasons: Counter = Counter()

    def record_ok(self, rtype: str, status: int):
        with self.lock:
            self.done += 1
            self.ok += 1
            self.by_type_ok[rtype] += 1
            self.statuses[status] += 1

    def record_failure(self, rtype: str, rid: str, reason: str, detail: str = ""):
        with self.lock:
            self.done += 1
            self.failed += 1
            self.by_type_failed[rtype] += 1
            self.failure_reasons[reason] += 1
            if reason.isdigit():
                self.statuses[int(reason)] += 1
            if self.max_failures and self.failed >= self.max_failures and self.stop:
                self.stop.set()
            if len(self.failure_samples) < SHOW_FAILURES:  # printed under the lock: whole
                self.failure_samples.append(f"{rtype}/{rid}: {reason}")
                body = detail if len(detail) <= 600 else detail[:600] + "..."
                sys.stdout.write(f"FAILED {rtype}/{rid}: {reason}"
                                 + (f"\n  {body}" if body else "") + "\n")
                sys.stdout.flush()

    def add(self, field: str, n: int = 1):
        with self.lock:
            setattr(self, field, getattr(self, field) + n)


def connection_class(scheme: str, stats: Stats):
    base = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection

    class Counting(base):  # counts real TCP connects, including http.client's re-opens
        def connect(self):
            super().connect()
            stats.add("connects")

    return Counting


class Worker(threading.Thread):
    def __init__(self, n, work: queue.Queue, args, url, stats: Stats, stop: threading.Event):
        super().__init__(name=f"load-{n}", daemon=True)
        self.work = work
        self.stats = stats
        self.stop = stop
        self.timeout = args.timeout
        self.host = url.hostname
        self.port = url.port
        self.prefix = url.path.rstrip("/")
        self.conn_class = connection_class(url.scheme, stats)
        self.conn = None
        self.headers = {
            "Content-Type": "application/fhir+json",
            "Accept": "application/fhir+json",
            "Prefer": "return=minimal",
        }
        if args.token:
            self.headers["Authorization"] = f"Bearer {args.token}"

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def run(self):
        try:
            while True:
                item = self.work.get()
                try:
                    if item is None:
                        return
                    if self.stop.is_set():
                        self.stats.add("skipped", len(item) if isinstance(item, list) else 1)
                        continue
                    if isinstance(item, list):
                        self.send_bundle(item)
                    else:
                        self.put(*item)
                finally:
                    self.work.task_done()
        finally:
            self.close()

    def backoff(self, attempt: int, retry_after: str | None = None):
        delay = min(0.1 * (2**attempt), 2.0) * (0.5 + random.random())
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), 10.0))
            except ValueError:
                pass
        self.stop.wait(delay)

    def put(self, rtype: str, rid: str, body: bytes | None, error: str | None):
        if error:
            self.stats.record_failure(rtype, rid, "bad-line", error)
            return
        path = f"{self.prefix}/{rtype}/{urllib.parse.quote(rid, safe='')}"
        self.send("PUT", path, body, [(rtype, rid)])

    def send_bundle(self, items: list):
        """One transaction Bundle of PUT entries for `items` (parsed lines of one type)."""
        entries = b",".join(
            b'{"resource":' + body + b',"request":{"method":"PUT","url":"'
            + f"{rtype}/{urllib.parse.quote(rid, safe='')}".encode() + b'"}}'
            for rtype, rid, body, _ in items)
        body = b'{"resourceType":"Bundle","type":"transaction","entry":[' + entries + b"]}"
        self.send("POST", self.prefix or "/", body, [(rtype, rid) for rtype, rid, _, _ in items])

    def send(self, method: str, path: str, body: bytes, resources: list):
        """Sends one request for `resources` ((type, id) pairs), with retries."""
        rtype, rid = resources[0]
        for attempt in range(MAX_RETRIES + 1):
            last = attempt == MAX_RETRIES
            try:
                if self.conn is None:
                    self.conn = self.conn_class(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if last or self.stop.is_set():
                    for rtype, rid in resources:
                        self.stats.record_failure(rtype, rid, "connection-error",
                                                  f"{type(e).__name__}: {e}")
                    return
                self.stats.add("retries")
                self.backoff(attempt)
                continue
            status = resp.status
            if 200 <= status < 300:
                for rtype, _ in resources:
                    self.stats.record_ok(rtype, status)
                return
            if status in (429, 503) and not last and not self.stop.is_set():
                self.stats.add("retries")
                self.backoff(attempt, resp.getheader("Retry-After"))
                continue
            detail = data.decode("utf-8", "replace").strip()
            for rtype, rid in resources:
                self.stats.record_failure(rtype, rid, str(status), detail)
            return


def patient_reference(line: bytes) -> str | None:
    """The Patient id in `patient` or `subject` of an NDJSON line, if any."""
    m = PATIENT_REF.search(line)
    if m:
        return m.group(1).decode()
    if b'"Patient/' not in line:
        return None
    try:
        res = json.loads(line)
        ref = (res.get("patient") or res.get("subject") or {}).get("reference", "")
    except (ValueError, AttributeError):
        return None
    return ref[len("Patient/"):] if isinstance(ref, str) and ref.startswith("Patient/") else None


def parse_line(line: bytes, expected_type: str):
    """(resourceType, id, body, error) for one NDJSON line; error is None when it is usable."""
    body = line.rstrip(b"\r\n")
    m = FAST_HEAD.match(body)
    if m:
        return m.group(1).decode(), m.group(2).decode(), body, None
    try:
        res = json.loads(body)
    except ValueError as e:
        return expected_type, "?", None, f"invalid JSON: {e}"
    if not isinstance(res, dict):
        return expected_type, "?", None, "not a JSON object"
    rtype = res.get("resourceType")
    rid = res.get("id")
    if not isinstance(rtype, str) or not rtype:
        return expected_type, str(rid or "?"), None, "no resourceType"
    if not isinstance(rid, str) or not FHIR_ID.match(rid):
        return rtype, str(rid or "?"), None, "no valid id (PUT needs one)"
    return rtype, rid, body, None


class Reporter(threading.Thread):
    def __init__(self, stats: Stats, interval: float, started: float):
        super().__init__(name="progress", daemon=True)
        self.stats = stats
        self.interval = interval
        self.started = started
        self.finished = threading.Event()
        self.phase = ""

    def run(self):
        last_t, last_done = self.started, 0
        while not self.finished.wait(self.interval):
            now = time.monotonic()
            with self.stats.lock:
                done, failed, retries = self.stats.done, self.stats.failed, self.stats.retries
            elapsed = now - self.started
            recent = (done - last_done) / (now - last_t) if now > last_t else 0.0
            print(f"[{elapsed:7.1f} s] {self.phase:<12} done {done:>11,}  "
                  f"({done / elapsed if elapsed else 0:,.0f}/s overall, {recent:,.0f}/s last "
                  f"{now - last_t:.0f} s)  failed {failed:,}  retries {retries:,}", flush=True)
            last_t, last_done = now, done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8080/fhir")
    ap.add_argument("--dir", required=True, help="folder with <Type>.ndjson files")
    ap.add_argument("--connections", type=int, default=16, help="threads/connections (16)")
    ap.add_argument("--types", default=None,
                    help="comma-separated types, default: " + ",".join(DEFAULT_TYPES) +
                         " (Patient always goes first)")
    ap.add_argument("--limit", type=int, default=None,
                    help="upload the first N Patients and only the resources that reference "
                         "them (without Patient: the first N lines of each file)")
    ap.add_argument("--offset", type=int, default=0,
                    help="skip the first K Patients and the resources that reference them")
    ap.add_argument("--bundle", type=int, default=0,
                    help="resources per transaction Bundle (0: one PUT each)")
    ap.add_argument("--token", default=None, help="bearer token (Authorization header)")
    ap.add_argument("--timeout", type=float, default=60.0, help="per-request timeout, s (60)")
    ap.add_argument("--progress", type=float, default=10.0, help="progress interval, s (10)")
    ap.add_argument("--max-failures", type=int, default=1000,
                    help="stop after this many failed resources (1000; 0 = never stop)")
    args = ap.parse_args(argv)

    url = urllib.parse.urlsplit(args.base)
    if url.scheme not in ("http", "https") or not url.hostname:
        ap.error(f"--base must be an http(s) URL, got {args.base!r}")
    if args.connections < 1:
        ap.error("--connections must be at least 1")
    if args.limit is not None and args.limit < 0:
        ap.error("--limit must be >= 0")
    if args.offset < 0 or args.bundle < 0:
        ap.error("--offset and --bundle must be >= 0")

    explicit = args.types is not None
    types = [t.strip() for t in (args.types or ",".join(DEFAULT_TYPES)).split(",") if t.strip()]
    if "Patient" in types:
        types = ["Patient"] + [t for t in types if t != "Patient"]
    files = []
    for t in types:
        path = os.path.join(args.dir, f"{t}.ndjson")
        if os.path.isfile(path):
            files.append((t, path))
        elif explicit:
            print(f"error: {path} not found", file=sys.stderr)
            return 2
        else:
            print(f"note: {path} not found, skipping {t}", file=sys.stderr)
    if not files:
        print("error: nothing to upload", file=sys.stderr)
        return 2

    stop = threading.Event()
    stats = Stats(args.max_failures, stop)
    work: queue.Queue = queue.Queue(maxsize=args.connections * 64)
    workers = [Worker(i, work, args, url, stats, stop) for i in range(args.connections)]
    for w in workers:
        w.start()
    started = time.monotonic()
    reporter = Reporter(stats, args.progress, started)
    reporter.start()
    print(f"uploading {', '.join(t for t, _ in files)} from {args.dir} to {args.base} "
          f"with {args.connections} connections", flush=True)

    interrupted = False
    type_times = {}
    # --limit N / --offset K with Patients: the Patients sent, then only resources that
    # reference them (resources without a Patient reference: the first N lines of their file).
    tracked = (args.limit is not None or args.offset) and files[0][0] == "Patient"
    limited_patients = set() if tracked else None
    limit = args.limit if args.limit is not None else float("inf")
    not_sent = 0
    pending: list = []

    def submit(item):
        if not args.bundle:
            work.put(item)
            return
        if item[3] is not None:  # a bad line fails alone
            stats.record_failure(item[0], item[1], "bad-line", item[3])
            return
        pending.append(item)
        if len(pending) >= args.bundle:
            work.put(pending.copy())
            pending.clear()
    try:
        for rtype, path in files:
            reporter.phase = rtype
            t0 = time.monotonic()
            with open(path, "rb", buffering=1 << 20) as f:
                sent = unreferenced = skipped = 0
                for line in f:
                    if stop.is_set():
                        break
                    if not line.strip():
                        continue
                    if limited_patients is not None and rtype != "Patient":
                        ref = patient_reference(line)
                        if ref is not None:
                            if ref not in limited_patients:
                                not_sent += 1
                                continue
                        elif unreferenced >= limit:
                            not_sent += 1
                            continue
                        else:
                            unreferenced += 1
                    elif rtype == "Patient" and skipped < args.offset:
                        skipped += 1
                        continue
                    elif sent >= limit:
                        break
                    item = parse_line(line, rtype)
                    if limited_patients is not None and rtype == "Patient":
                        limited_patients.add(item[1])
                    submit(item)
                    sent += 1
            if pending:
                work.put(pending.copy())
                pending.clear()
            work.join()  # the next type only starts when this one is complete
            type_times[rtype] = time.monotonic() - t0
            if stop.is_set():
                break
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        print("\ninterrupted: stopping", file=sys.stderr, flush=True)
        # drain what is queued so the workers see the stop flag and end
        try:
            while True:
                work.get_nowait()
                work.task_done()
        except queue.Empty:
            pass
    for _ in workers:
        try:
            work.put(None, timeout=5)
        except queue.Full:
            break
    for w in workers:
        w.join(timeout=args.timeout + 5)
    reporter.finished.set()
    elapsed = time.monotonic() - started

    s = stats
    print()
    print(f"summary: {s.done:,} resources in {elapsed:.1f} s, {s.done / elapsed:,.0f}/s "
          f"({args.connections} connections)")
    for rtype, _ in files:
        ok, bad = s.by_type_ok[rtype], s.by_type_failed[rtype]
        took = type_times.get(rtype)
        if took is None and ok + bad == 0:
            continue  # not started (stopped early)
        rate = f"{(ok + bad) / took:,.0f}/s" if took else "-"
        print(f"  {rtype:<13} ok {ok:>11,}  failed {bad:>8,}  "
              f"{took if took is not None else 0:8.1f} s  {rate}")
    other = Counter({t: n for t, n in (s.by_type_ok + s.by_type_failed).items()
                     if t not in dict(files)})
    for rtype, n in other.items():  # lines whose resourceType differs from their file
        print(f"  {rtype:<13} ok {s.by_type_ok[rtype]:>11,}  failed {s.by_type_failed[rtype]:>8,}")
    statuses = " ".join(f"{k}={v:,}" for k, v in sorted(s.statuses.items()))
    print(f"  total {s.done:,}  ok {s.ok:,}  failures {s.failed:,}  retries {s.retries:,}  "
          f"connections opened {s.connects:,}  statuses: {statuses or '-'}")
    if not_sent:
        print(f"  not sent because of --limit: {not_sent:,}")
    if s.skipped:
        print(f"  skipped after the stop: {s.skipped:,} queued resources")
    if s.failed:
        reasons = " ".join(f"{k}={v:,}" for k, v in s.failure_reasons.most_common())
        print(f"  failure reasons: {reasons}")
    if interrupted:
        return 130
    if stop.is_set():
        print(f"  stopped early after {s.failed:,} failures (--max-failures)")
    return 1 if s.failed else 0


if __name__ == "__main__":
    sys.exit(main())
