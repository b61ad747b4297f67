#!/usr/bin/env python3
"""The dashboard's read path at scale (issue #16). For each size:

  1. `giamsat generate --dossiers N --seed 1`, file ingest of events and portal records
     (skipped with --reuse when the data directory is already there);
  2. a server with the report cache off;
  3. each dashboard endpoint alone, --repeat times over different periods and drill
     steps: p50 and p95 per endpoint;
  4. --leaders simulated leaders, each refreshing the dashboard (its 7 requests in
     parallel, a different period and drill step each time) for --seconds: refresh p95,
     request p95, 5xx, 408 and 429 counts, server peak RSS (each leader signs in with
     its own viewer token; a refresh with a refused request is not counted as a refresh);
  5. Biểu 06 for a year by field and by commune: giamsat warm (HTTP, median of
     --repeat) against DuckDB running the dossier-level SQL (period_dossiers.sql) on the
     Parquet files of the same Delta tables; numbers compared cell by cell.

    python3 bench/read_path.py --sizes 1m,10m --work /tmp/rp
Writes bench/results/<date>-read-path.md and .json. Not a test.
"""

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402

# periods a leader looks at (the generated data spans 1/7/2025 – 20/11/2026)
PERIODS = [
    ("2026-01-01", "2026-03-31"), ("2025-12-15", "2026-03-14"), ("2026-03-15", "2026-06-14"),
    ("2026-04-01", "2026-04-30"), ("2026-06-15", "2026-09-14"), ("2025-12-15", "2026-06-14"),
    ("2026-10-01", "2026-10-31"), ("2025-07-01", "2025-12-31"), ("2026-01-01", "2026-11-20"),
    ("2026-08-01", "2026-08-31"),
]
DRILL = [{}, {"field": "HT"}, {"field": "DD"}, {"procedure_level": "full_online"},
         {"field": "CT"}, {"non_territorial": "true"}]


def requests_for(rng, cursor=None):
    frm, to = rng.choice(PERIODS)
    f = {"from": frm, "to": to, **rng.choice(DRILL)}
    plain = {"from": frm, "to": to}
    rec = {**plain, "limit": 50}
    if cursor:
        rec["cursor"] = cursor
    return [
        ("/api/v1/dashboard/overview", f),
        ("/api/v1/indicators/on-time", {**f, "series": "month", "group_by": "field"}),
        ("/api/v1/indicators/on-time", {**f, "group_by": "commune"}),
        ("/api/v1/reports/bieu06", {**f, "group_by": "field"}),
        ("/api/v1/alerts", {"limit": 50}),
        ("/api/v1/sources", {}),
        ("/api/v1/reconciliation", rec),
    ]


def key(p, q):
    return p + ("?series" if "series" in q else "")


def one(srv, pq, per, errors, lock, token=None):
    p, q = pq
    k = key(p, q)
    try:
        secs, _ = srv.request("GET", p, q, timeout=120, token=token)
        with lock:
            per.setdefault(k, []).append(secs)
        return secs
    except urllib.error.HTTPError as e:
        with lock:
            errors[f"{k} HTTP {e.code}"] = errors.get(f"{k} HTTP {e.code}", 0) + 1
    except OSError as e:
        with lock:
            errors[f"{k} {type(e).__name__}"] = errors.get(f"{k} {type(e).__name__}", 0) + 1
    return None


def single_user(srv, repeat):
    """Every endpoint alone (nothing else running), over different periods and drills."""
    rng = random.Random(1)
    per, errors, lock = {}, {}, threading.Lock()
    for pq in requests_for(rng):  # warm-up
        one(srv, pq, {}, {}, lock)
    for _ in range(repeat):
        for pq in requests_for(rng):
            one(srv, pq, per, errors, lock)
    return {"p50": {k: R.median(v) for k, v in per.items()},
            "p95": {k: R.p95(v) for k, v in per.items()}, "errors": errors}


def leaders(srv, n, seconds, tokens):
    """`n` leaders, each with its own viewer token (`tokens[i]`): the server's admission
    queues per token, as it would for real leaders, each signed in as themselves."""
    per, errors, lock = {}, {}, threading.Lock()
    refresh = []
    stop = time.perf_counter() + seconds

    def leader(i):
        rng = random.Random(100 + i)
        token = tokens[i % len(tokens)]
        with ThreadPoolExecutor(7) as ex:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                ok = list(ex.map(lambda pq: one(srv, pq, per, errors, lock, token),
                                 requests_for(rng)))
                with lock:
                    # a refresh with a refused request is not a refresh the leader saw
                    if all(x is not None for x in ok):
                        refresh.append(time.perf_counter() - t0)

    with ThreadPoolExecutor(n) as ex:
        list(ex.map(leader, range(n)))
    allt = [t for v in per.values() for t in v]
    five = sum(c for k, c in errors.items() if " HTTP 5" in k)
    timeouts = sum(c for k, c in errors.items() if "HTTP 408" in k or "timeout" in k.lower())
    busy = sum(c for k, c in errors.items() if " HTTP 429" in k)
    return {"leaders": n, "seconds": seconds, "refreshes": len(refresh),
            "p95_refresh": R.p95(refresh) if refresh else None,
            "p50_refresh": R.median(refresh) if refresh else None,
            "p95_request": R.p95(allt) if allt else None,
            "p95_by_endpoint": {k: R.p95(v) for k, v in per.items()},
            "errors": errors, "5xx": five, "408_or_timeout": timeouts, "429": busy,
            "server_peak_rss": srv.peak_rss()}


def year_vs_duckdb(binary, srv, data, work, repeat):
    terr = work / "territories.csv"
    terr.write_text(R.subprocess.run([binary, "--data", str(data), "sql", "SELECT * FROM territories",
                                      "--format", "csv"], check=True, capture_output=True,
                                     text=True).stdout)
    duck = R.Duck(data, terr)
    out = []
    frm, to = R.YEAR
    for g in ["field", "commune"]:
        q = {"from": frm, "to": to, "group_by": g, "format": "json"}
        srv.request("GET", "/api/v1/reports/bieu06", q)
        ts = []
        for _ in range(repeat):
            secs, body = srv.request("GET", "/api/v1/reports/bieu06", q)
            ts.append(secs)
        ours = json.loads(body)
        sql = R.bieu06_duck(frm, to, g)
        duck.query(sql)
        dts = []
        for _ in range(repeat):
            secs, rows = duck.query(sql)
            dts.append(secs)
        a, b = R.b06_map(ours.get("rows", ours) if isinstance(ours, dict) else ours), R.b06_map(rows)
        out.append({"name": f"Biểu 06, year, by {g}", "giamsat_warm": R.median(ts),
                    "duckdb_warm": R.median(dts), "ratio": R.median(ts) / R.median(dts),
                    "identical": R.compare(a, b)[0], "diff": R.compare(a, b)[1]})
    duck.con.close()
    return out


def bench_size(args, n, work, res):
    b = args.bin
    gen, data = work / "gen", work / "data"
    if not (args.reuse and (data / "tables").exists()):
        R.log(f"[{R.size_label(n)}] generate + ingest")
        R.run_measured([b, "generate", "--out", str(gen), "--dossiers", str(n), "--seed", "1"])
        R.run_measured([b, "--data", str(data), "ingest", "--format", "procedures",
                        str(gen / "procedures.csv")])
        lines = sum(1 for _ in open(gen / "events.ndjson", "rb"))
        secs, rss, _ = R.run_measured([b, "--data", str(data), "ingest", str(gen / "events.ndjson")])
        res["file_ingest"] = {"seconds": secs, "peak_rss": rss, "lines": lines,
                              "lines_per_s": lines / secs}
        R.log(f"[{R.size_label(n)}] file ingest: {res['file_ingest']}")
        if args.drop_input:
            (gen / "events.ndjson").unlink()
        secs, rss, _ = R.run_measured([b, "--data", str(data), "ingest", "--format", "dvcqg",
                                       str(gen / "dvcqg.ndjson")])
        res["portal_ingest"] = {"seconds": secs, "peak_rss": rss}
        R.log(f"[{R.size_label(n)}] portal ingest: {res['portal_ingest']}")
        if args.drop_input:
            (gen / "dvcqg.ndjson").unlink()
    token = R.add_token(b, data)
    viewers = [R.add_token(b, data, "viewer") for _ in range(args.leaders)]
    time.sleep(1.2)  # the server reads the token file at most once a second
    srv = R.Server(b, data, token)
    try:
        R.log(f"[{R.size_label(n)}] each endpoint alone")
        res["single"] = single_user(srv, args.repeat)
        R.log(f"[{R.size_label(n)}] single: {json.dumps(res['single'], default=str)}")
        R.log(f"[{R.size_label(n)}] {args.leaders} leaders for {args.seconds:.0f} s")
        res["leaders"] = leaders(srv, args.leaders, args.seconds, viewers)
        R.log(f"[{R.size_label(n)}] Biểu 06 for a year against DuckDB")
        res["year"] = year_vs_duckdb(b, srv, data, work, args.repeat)
    finally:
        srv.stop()
    if args.cached_leaders:
        srv = R.Server(b, data, token, cache=True)
        try:
            R.log(f"[{R.size_label(n)}] {args.leaders} leaders for {args.seconds:.0f} s, cache on")
            res["leaders_cached"] = leaders(srv, args.leaders, args.seconds, viewers)
        finally:
            srv.stop()


def ms(x):
    return "–" if x is None else f"{x * 1000:.0f} ms"


def write(results, args, started):
    out = R.ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    day = started.strftime("%Y-%m-%d")
    day += f"-{args.tag}" if args.tag else ""
    (out / f"{day}-read-path.json").write_text(json.dumps(results, indent=2, default=str))
    m = R.machine_info()
    L = [f"# Read path (dashboard) at scale, {started.strftime('%Y-%m-%d %H:%M')} UTC", "",
         f"Machine: {m}", "",
         f"Reproduce: `python3 bench/read_path.py --sizes {args.sizes} --leaders {args.leaders} "
         f"--seconds {args.seconds:.0f} --repeat {args.repeat}`. Report cache off. "
         "Data: `giamsat generate --seed 1`.", ""]
    if args.note:
        L += [args.note, ""]
    for size, r in results.items():
        L += [f"## {size} dossiers", ""]
        s = r.get("single")
        if s:
            L += ["Each endpoint alone (p95 target < 150 ms at 1M, < 500 ms at 10M):", "",
                  "| endpoint | p50 | p95 |", "|---|---:|---:|"]
            for k in s["p95"]:
                L.append(f"| `{k}` | {ms(s['p50'][k])} | {ms(s['p95'][k])} |")
            if s["errors"]:
                L.append(f"\nErrors: {s['errors']}")
            L.append("")
        for title, ld in [("report cache off", r.get("leaders")),
                          ("report cache on (the server's default)", r.get("leaders_cached"))]:
            if not ld:
                continue
            L += [f"{ld['leaders']} leaders × 7 parallel requests for {ld['seconds']:.0f} s, {title}: "
                  f"{ld['refreshes']} refreshes, refresh p50 {ms(ld['p50_refresh'])}, "
                  f"p95 {ms(ld['p95_refresh'])} (target < 1 s); request p95 {ms(ld['p95_request'])}; "
                  f"5xx {ld['5xx']}, 408/timeouts {ld['408_or_timeout']} (target 0), "
                  f"429 {ld.get('429', 0)}; server peak RSS "
                  f"{R.gib(ld['server_peak_rss'])} (target < 3 GiB).", "",
                  "| endpoint under load | p95 |", "|---|---:|"]
            for k, v in ld["p95_by_endpoint"].items():
                L.append(f"| `{k}` | {ms(v)} |")
            if ld["errors"]:
                L.append(f"\nErrors: {ld['errors']}")
            L.append("")
        for y in r.get("year", []):
            L.append(f"- {y['name']}: giamsat warm {ms(y['giamsat_warm'])}, DuckDB (dossier-level SQL) "
                     f"{ms(y['duckdb_warm'])}, ratio {y['ratio']:.2f}; identical: {y['identical']}")
        L.append("")
    (out / f"{day}-read-path.md").write_text("\n".join(L) + "\n")
    R.log(f"wrote {out / (day + '-read-path.md')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1m")
    ap.add_argument("--bin", default=str(R.ROOT / "target" / "release" / "giamsat"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--reuse", action="store_true", help="reuse <work>/<size>/data if present")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--leaders", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--note", default="")
    ap.add_argument("--tag", default="", help="results file <date>-<tag>-read-path.md")
    ap.add_argument("--drop-input", action="store_true",
                    help="delete each generated file once ingested (disk)")
    ap.add_argument("--cached-leaders", action="store_true",
                    help="run the leaders again with the report cache on")
    args = ap.parse_args()
    started = dt.datetime.now(dt.timezone.utc)
    import tempfile
    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="giamsat-rp-"))
    results = {}
    for s in args.sizes.split(","):
        n = R.parse_size(s)
        work = root / R.size_label(n)
        work.mkdir(parents=True, exist_ok=True)
        results[R.size_label(n)] = {}
        try:
            bench_size(args, n, work, results[R.size_label(n)])
        except Exception as e:  # keep what was measured
            results[R.size_label(n)]["error"] = repr(e)
            R.log(f"error: {e!r}")
        write(results, args, started)


if __name__ == "__main__":
    main()
