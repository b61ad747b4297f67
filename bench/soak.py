#!/usr/bin/env python3
"""Soak: sustained pushes plus dashboard reads against a real server, with the server's
RSS, open files and latencies sampled.

  python3 bench/soak.py --bin target/release/giamsat --minutes 60 --out bench/results/DATE-soak.md
  python3 bench/soak.py --bin target/debug/giamsat --minutes 2 --check     # what CI runs

The server serves a warehouse of the golden fixture plus everything pushed during the run.
A pusher sends batches of new dossiers' events (received, then completed for earlier
ones) every --push-interval seconds through `POST /api/v1/events`; a reader asks for the
dashboard's requests (overview, Biểu 06, 766, alerts, on-time) with a viewer token every
--read-interval seconds. Every --sample seconds the server's RSS (/proc/PID/status VmRSS),
its open file descriptors (/proc/PID/fd) and the data directory's size are recorded.

--check fails (exit 1) when, over the run after the first quarter (warm-up):
  * the anonymous RSS (RssAnon: heap and stacks; the resident pages of the binary grow
    as more of its code runs and are not counted) grows faster than --max-rss-slope MiB
    per minute (least squares), or
  * open files grow by more than --max-fd-growth (the fewest in the last third of the
    samples against the fewest in the first third: descriptors come and go with
    requests, a leak raises the floor), or
  * any request fails (status other than 200).
Only the Python standard library is used.
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ICT = timezone(timedelta(hours=7))
READS = [
    "/api/v1/dashboard/overview?from=2026-01-01&to=2026-03-31",
    "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31&group_by=commune",
    "/api/v1/indicators/766?period=2026-Q1",
    "/api/v1/alerts",
    "/api/v1/indicators/on-time?period=2026&series=month",
]


def cli(binary, data, *args):
    out = subprocess.run([binary, "--data", data, *args], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def request(url, token, method="GET", body=None):
    req = urllib.request.Request(url, data=body, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except OSError as e:
        status = f"error: {e}"
    return status, time.monotonic() - t


def rss_mib(pid, field="VmRSS"):
    """A memory figure of /proc/PID/status in MiB: VmRSS (all resident pages) or
    RssAnon (the heap and stacks, without the pages of the binary and mapped files)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def dir_mib(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(d, f))
            except OSError:
                pass
    return total / 2**20


def slope_per_minute(points):
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 60


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat = {"push": [], "read": []}
        self.window = {"push": [], "read": []}
        self.failures = []
        self.events = 0

    def add(self, kind, status, seconds, what):
        with self.lock:
            self.lat[kind].append(seconds)
            self.window[kind].append(seconds)
            if status != 200:
                self.failures.append(f"{what}: {status}")

    def take_window(self):
        with self.lock:
            w = self.window
            self.window = {"push": [], "read": []}
            return w


def p95(xs):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def pusher(url, token, stats, stop, interval, per_push):
    rng = random.Random(7)
    n = 0
    received = []
    while not stop.is_set():
        lines = []
        now = datetime.now(ICT)
        for _ in range(per_push):
            if received and rng.random() < 0.4:
                d = received.pop(rng.randrange(len(received)))
                lines.append({"event_id": f"soak-{d}-done", "dossier_id": f"soak-{d}",
                              "type": "completed", "at": now.isoformat(timespec="seconds")})
            else:
                n += 1
                received.append(n)
                lines.append({
                    "event_id": f"soak-{n}-recv", "dossier_id": f"soak-{n}", "type": "received",
                    "at": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
                    "procedure_code": "1.000001", "agency_code": "31.11311",
                    "province_code": "31", "commune_code": "11311",
                    "channel": "online" if n % 3 else "offline",
                    "due_at": (now + timedelta(days=3)).isoformat(timespec="seconds"),
                })
        body = "".join(json.dumps(l) + "\n" for l in lines).encode()
        status, took = request(f"{url}/api/v1/events?source=soak", token, "POST", body)
        stats.add("push", status, took, "push")
        if status == 200:
            with stats.lock:
                stats.events += len(lines)
        stop.wait(max(0.0, interval - took))


def reader(url, token, stats, stop, interval):
    i = 0
    while not stop.is_set():
        path = READS[i % len(READS)]
        i += 1
        status, took = request(url + path, token)
        stats.add("read", status, took, path)
        stop.wait(max(0.0, interval - took))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/giamsat"))
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--push-interval", type=float, default=0.5)
    ap.add_argument("--events-per-push", type=int, default=100)
    ap.add_argument("--read-interval", type=float, default=1.0)
    ap.add_argument("--sample", type=float, default=10.0)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--max-rss-slope", type=float, default=5.0, help="anonymous RSS, MiB per minute after warm-up")
    ap.add_argument("--max-fd-growth", type=int, default=16)
    ap.add_argument("--out", help="markdown file for the results")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="giamsat-soak-")
    data = os.path.join(work, "data")
    g = os.path.join(ROOT, "fixtures/golden")
    cli(args.bin, data, "ingest", "--format", "procedures", os.path.join(g, "procedures.csv"))
    cli(args.bin, data, "ingest", os.path.join(g, "events.ndjson"))
    ingest = cli(args.bin, data, "token", "add", "--role", "ingest", "--source", "soak")
    viewer = cli(args.bin, data, "token", "add", "--role", "viewer", "--province", "31")
    out = open(os.path.join(work, "serve.out"), "w+")
    err = open(os.path.join(work, "serve.err"), "w")
    server = subprocess.Popen([args.bin, "--data", data, "serve", "--port", "0"], stdout=out, stderr=err)
    url = None
    for _ in range(300):
        out.seek(0)
        m = re.search(r"^listening on (\S+)", out.read(), re.M)
        if m:
            url = m.group(1)
            break
        time.sleep(0.1)
    if not url:
        server.kill()
        sys.exit("soak: the server did not start")

    stats = Stats()
    stop = threading.Event()
    threads = [
        threading.Thread(target=pusher, args=(url, ingest, stats, stop, args.push_interval, args.events_per_push)),
        threading.Thread(target=reader, args=(url, viewer, stats, stop, args.read_interval)),
    ]
    for t in threads:
        t.start()
    started = time.monotonic()
    samples = []
    try:
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(args.sample)
            w = stats.take_window()
            s = {
                "t": time.monotonic() - started,
                "rss": rss_mib(server.pid),
                "anon": rss_mib(server.pid, "RssAnon"),
                "fds": open_files(server.pid),
                "disk": dir_mib(data),
                "events": stats.events,
                "push_p95": p95(w["push"]),
                "read_p95": p95(w["read"]),
                "pushes": len(w["push"]),
                "reads": len(w["read"]),
            }
            samples.append(s)
            print(f"soak: {s['t']:6.0f} s  rss {s['rss']:7.1f} MiB  anon {s['anon']:7.1f} MiB  fds {s['fds']:4d}  "
                  f"disk {s['disk']:7.1f} MiB  events {s['events']:8d}  "
                  f"push p95 {s['push_p95'] * 1000:6.0f} ms  read p95 {s['read_p95'] * 1000:6.0f} ms",
                  flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join()
        alive = server.poll() is None
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    steady = [s for s in samples if s["t"] >= args.minutes * 60 / 4]
    rss_slope = slope_per_minute([(s["t"], s["anon"]) for s in steady])
    # open files come and go with requests in flight (a 2-minute run saw 25, 111, 26 in
    # three samples): a leak raises the floor, so compare the fewest open files of the
    # first and of the last third of the steady samples
    third = max(1, len(steady) // 3)
    fd_growth = (min(s["fds"] for s in steady[-third:])
                 - min(s["fds"] for s in steady[:third])) if steady else 0
    push, read = stats.lat["push"], stats.lat["read"]
    verdicts = []
    if not alive:
        verdicts.append("the server exited during the run")
    if rss_slope > args.max_rss_slope:
        verdicts.append(f"anonymous RSS grows {rss_slope:.2f} MiB/min after warm-up (limit {args.max_rss_slope})")
    if fd_growth > args.max_fd_growth:
        verdicts.append(f"open files grew by {fd_growth} after warm-up (limit {args.max_fd_growth})")
    if stats.failures:
        verdicts.append(f"{len(stats.failures)} failed requests, first: {stats.failures[0]}")
    summary = (f"{args.minutes:g} min: {stats.events} events in {len(push)} pushes, {len(read)} reads; "
               f"RSS {samples[0]['rss']:.0f} → {samples[-1]['rss']:.0f} MiB, "
               f"anonymous RSS {samples[0]['anon']:.0f} → {samples[-1]['anon']:.0f} MiB "
               f"(slope after warm-up {rss_slope:+.2f} MiB/min), "
               f"open files {samples[0]['fds']} → {samples[-1]['fds']}, "
               f"push p50/p95/max {statistics.median(push) * 1000:.0f}/{p95(push) * 1000:.0f}/{max(push) * 1000:.0f} ms, "
               f"read p50/p95/max {statistics.median(read) * 1000:.0f}/{p95(read) * 1000:.0f}/{max(read) * 1000:.0f} ms")
    print("soak:", summary)
    if args.out:
        lines = [
            f"# Soak: {args.minutes:g} minutes of pushes and dashboard reads",
            "",
            f"Run {datetime.now(ICT).strftime('%Y-%m-%d %H:%M')} ICT, binary `{args.bin}`, "
            f"`python3 bench/soak.py --minutes {args.minutes:g} --push-interval {args.push_interval:g} "
            f"--events-per-push {args.events_per_push} --read-interval {args.read_interval:g}`; "
            f"{os.cpu_count()} cores.",
            "",
            summary + ".",
            "",
            "Verdict: " + ("; ".join(verdicts) if verdicts else
                           f"no failed request; anonymous RSS slope within {args.max_rss_slope} MiB/min and "
                           f"open files within +{args.max_fd_growth} after warm-up."),
            "",
            "| time (s) | RSS (MiB) | anonymous RSS (MiB) | open files | data dir (MiB) | events pushed | pushes | push p95 (ms) | reads | read p95 (ms) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        every = max(1, len(samples) // 60)
        for s in samples[::every]:
            lines.append(f"| {s['t']:.0f} | {s['rss']:.1f} | {s['anon']:.1f} | {s['fds']} | {s['disk']:.1f} | {s['events']} | "
                         f"{s['pushes']} | {s['push_p95'] * 1000:.0f} | {s['reads']} | {s['read_p95'] * 1000:.0f} |")
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    if args.check and verdicts:
        print("soak: FAILED:", "; ".join(verdicts))
        sys.exit(1)


if __name__ == "__main__":
    main()
