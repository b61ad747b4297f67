#!/usr/bin/env python3
"""The write path at scale (issue #15): peak memory and speed of every ingest command,
a daily increment into a large warehouse against the same increment into an empty one,
HTTP push into the large warehouse, and the report numbers against DuckDB.

For each size:
  1. `giamsat generate --dossiers N --seed 1`;
  2. split events.ndjson by time: the last days holding ~1 % of the lines are the
     "daily increment", the rest the base (a duplicate or malformed line goes with the
     line it follows);
  3. DuckDB converts the base NDJSON to Parquet (the reference speed);
  4. file ingest of the base into an empty warehouse; copy it (for the push);
  5. the increment, file ingest, into that warehouse and into an empty one;
  6. the increment, HTTP push (--push-lines per body, 4 clients), into the copy:
     events/s, acknowledgement p99, server peak RSS;
  7. the portal records (dvcqg.ndjson) into the warehouse;
  8. `giamsat maintain`;
  9. the report workload of bench/run.py (numbers compared with DuckDB on the same
     Parquet files), unless --no-reports.

    python3 bench/write_path.py --sizes 1m,10m
Writes bench/results/<date>-write-path.md and .json. Not a test.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402


def split_by_time(src, base, inc, share):
    """Write the lines of src whose day is among the last days holding `share` of the
    lines to inc, the others to base. Returns (base lines, increment lines, first day)."""
    days = {}
    key = b'"at":"'

    def day(line):
        i = line.find(key)
        return line[i + 6:i + 16] if i >= 0 else None

    n = 0
    with open(src, "rb") as f:
        for line in f:
            d = day(line)
            n += 1
            if d:
                days[d] = days.get(d, 0) + 1
    tail, first = 0, None
    for d in sorted(days, reverse=True):
        if tail >= share * n:
            break
        tail += days[d]
        first = d
    nb = ni = 0
    last = None
    with open(src, "rb") as f, open(base, "wb") as b, open(inc, "wb") as i:
        for line in f:
            d = day(line) or last
            last = d
            if d is not None and first is not None and d >= first:
                i.write(line)
                ni += 1
            else:
                b.write(line)
                nb += 1
    return nb, ni, first.decode() if first else None


CONFIG = ""


def ingest(b, data, path, fmt="canonical"):
    if CONFIG and not (Path(data) / "config.toml").exists():
        Path(data).mkdir(parents=True, exist_ok=True)
        (Path(data) / "config.toml").write_text(CONFIG)
    secs, rss, out = R.run_measured([b, "--data", str(data), "ingest", "--format", fmt, str(path)])
    c = json.loads(out)
    lines = c["accepted"] + c["duplicates"] + c["quarantined"]
    return {"seconds": secs, "peak_rss": rss, **c, "events_per_s": c["accepted"] / secs,
            "lines_per_s": lines / secs}


def push(b, data, path, lines_per_body, clients):
    token = R.add_token(b, data)
    srv = R.Server(b, data, token)
    bodies, buf = [], []
    with open(path, "rb") as f:
        for line in f:
            buf.append(line)
            if len(buf) == lines_per_body:
                bodies.append(b"".join(buf))
                buf = []
    if buf:
        bodies.append(b"".join(buf))
    lat, errors, accepted = [], [], [0]

    def one(body):
        for attempt in range(5):
            try:
                secs, data = srv.request("POST", "/api/v1/events", {"source": "hp-motcua"}, body,
                                         "application/x-ndjson")
                lat.append(secs)
                accepted[0] += json.loads(data)["accepted"]
                return
            except urllib.error.HTTPError as e:
                if e.code not in (503, 429) or attempt == 4:
                    errors.append(f"HTTP {e.code}")
                    return
                time.sleep(1)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, bodies))
    secs = time.perf_counter() - t0
    rss = srv.peak_rss()
    srv.stop()
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None
    return {"seconds": secs, "bodies": len(bodies), "lines_per_body": lines_per_body, "clients": clients,
            "accepted": accepted[0], "events_per_s": accepted[0] / secs, "ack_p50": R.median(lat),
            "ack_p99": p99, "server_peak_rss": rss, "errors": errors}


def ingest_config(data):
    if CONFIG:
        Path(data).mkdir(parents=True, exist_ok=True)
        (Path(data) / "config.toml").write_text(CONFIG)


def duck_convert(src, out):
    import duckdb
    con = duckdb.connect()
    t0 = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_ndjson_auto('{src}', ignore_errors=true)) "
                f"TO '{out}' (FORMAT parquet)")
    return time.perf_counter() - t0


def bench_size(args, n, work, res, save):
    """Fills `res` step by step and saves the results after each step (a run stopped
    midway keeps its figures)."""
    b = args.bin
    gen = work / "gen"
    R.log(f"[{R.size_label(n)}] generate")
    secs, rss, out = R.run_measured([b, "generate", "--out", str(gen), "--dossiers", str(n), "--seed", "1"])
    res["generate"] = {"seconds": secs, "peak_rss": rss, **json.loads(out)}
    base, inc = work / "base.ndjson", work / "increment.ndjson"
    nb, ni, first = split_by_time(gen / "events.ndjson", base, inc, args.increment)
    res["split"] = {"base_lines": nb, "increment_lines": ni, "increment_from_day": first}
    R.log(f"[{R.size_label(n)}] split: {nb} + {ni} lines from {first}")
    save()
    (gen / "events.ndjson").unlink()

    R.log(f"[{R.size_label(n)}] DuckDB NDJSON → Parquet")
    res["duckdb_convert_seconds"] = duck_convert(base, work / "duck.parquet")
    (work / "duck.parquet").unlink()

    data = work / "data"
    ingest_config(data)
    R.run_measured([b, "--data", str(data), "ingest", "--format", "procedures", str(gen / "procedures.csv")])
    R.log(f"[{R.size_label(n)}] file ingest of the base")
    res["file_ingest"] = ingest(b, data, base)
    R.log(f"[{R.size_label(n)}] {res['file_ingest']}")
    save()
    copy = work / "push"
    shutil.copytree(data, copy)

    R.log(f"[{R.size_label(n)}] increment into the warehouse")
    res["increment_into_full"] = ingest(b, data, inc)
    empty = work / "empty"
    ingest_config(empty)
    R.run_measured([b, "--data", str(empty), "ingest", "--format", "procedures", str(gen / "procedures.csv")])
    R.log(f"[{R.size_label(n)}] increment into an empty warehouse")
    res["increment_into_empty"] = ingest(b, empty, inc)
    shutil.rmtree(empty, ignore_errors=True)
    res["increment_ratio"] = res["increment_into_full"]["seconds"] / res["increment_into_empty"]["seconds"]
    R.log(f"[{R.size_label(n)}] increment: {res['increment_into_full']} vs {res['increment_into_empty']}")
    save()

    R.log(f"[{R.size_label(n)}] HTTP push of the increment")
    res["http_push"] = push(b, copy, inc, args.push_lines, args.parallel)
    shutil.rmtree(copy, ignore_errors=True)
    R.log(f"[{R.size_label(n)}] push: {res['http_push']}")
    save()

    R.log(f"[{R.size_label(n)}] portal records")
    pr = ingest(b, data, gen / "dvcqg.ndjson", "dvcqg")
    pr["records_per_s"] = res["generate"]["portal_records"] / pr["seconds"]
    res["portal_ingest"] = pr
    (gen / "dvcqg.ndjson").unlink()
    save()

    R.log(f"[{R.size_label(n)}] maintain")
    secs, rss, out = R.run_measured([b, "--data", str(data), "maintain"])
    res["maintain"] = {"seconds": secs, "peak_rss": rss,
                       "tables": [json.loads(l) for l in out.splitlines() if l.strip()]}
    save()
    if not args.no_reports:
        R.log(f"[{R.size_label(n)}] reports")
        res["queries"] = []
        R.reports(args, data, work, res["queries"])


def write(results, args, started):
    out_dir = R.ROOT / "bench" / "results"
    stem = out_dir / f"{started:%Y-%m-%d}-write-path"
    results["machine"]["loadavg_end"] = os.getloadavg()
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    m = results["machine"]
    g = R.gib
    L = [f"# The write path at scale, {started:%Y-%m-%d %H:%M} UTC", "",
         f"Machine: {m['cpus']} cores ({m['cpu']}), {g(m['mem_bytes'])}; DuckDB {m['duckdb']}; "
         f"giamsat `{args.bin}` (release). {args.note}".rstrip(), "",
         f"config.toml of every data directory: `{args.config or '(defaults)'}`.", "",
         f"Reproduce: `python3 bench/write_path.py --sizes {args.sizes}`. Data: `giamsat generate "
         "--seed 1`; the increment is the last days of events.ndjson holding "
         f"{args.increment:.0%} of its lines; the base is the rest.", "",
         "| dossiers | base lines | file ingest | events/s | peak RSS | DuckDB NDJSON→Parquet | "
         "ratio | increment lines | into full | into empty | ratio | inc. peak RSS | "
         "portal records/s | portal peak RSS | maintain |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["sizes"]:
        fi = r.get("file_ingest")
        if not fi or "split" not in r:
            L.append(f"| {r['label']} | failed: {r.get('error', '')[:300]} |" + "|" * 13)
            continue
        full, empty, pr, mt = (r.get("increment_into_full"), r.get("increment_into_empty"),
                               r.get("portal_ingest"), r.get("maintain"))
        L.append("| " + " | ".join([
            r["label"], f"{r['split']['base_lines']:,}", R.fmt_s(fi["seconds"]), f"{fi['events_per_s']:,.0f}",
            g(fi["peak_rss"]), R.fmt_s(r["duckdb_convert_seconds"]),
            f"{fi['seconds'] / r['duckdb_convert_seconds']:.1f}",
            f"{r['split']['increment_lines']:,}",
            R.fmt_s(full["seconds"]) if full else "–", R.fmt_s(empty["seconds"]) if empty else "–",
            f"{r['increment_ratio']:.2f}" if "increment_ratio" in r else "–",
            g(full["peak_rss"]) if full else "–",
            f"{pr['records_per_s']:,.0f}" if pr else "–", g(pr["peak_rss"]) if pr else "–",
            R.fmt_s(mt["seconds"]) if mt else "–"]) + " |")
    L += ["", "HTTP push of the increment into the warehouse of the base (a copy taken before the "
          "increment's file ingest):", "",
          "| dossiers | bodies × lines | clients | events/s | ack p50 | ack p99 | server peak RSS | errors |",
          "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results["sizes"]:
        hp = r.get("http_push")
        if hp:
            L.append(f"| {r['label']} | {hp['bodies']} × {hp['lines_per_body']} | {hp['clients']} | "
                     f"{hp['events_per_s']:,.0f} | {R.fmt_s(hp['ack_p50'])} | {R.fmt_s(hp['ack_p99'])} | "
                     f"{g(hp['server_peak_rss'] or 0)} | {hp['errors'] or 'none'} |")
    for r in results["sizes"]:
        if "error" in r:
            L += ["", f"{r['label']}: failed after the steps above: {r['error'][:500]}"]
        if r.get("queries"):
            L += ["", f"## Reports, {r['label']} dossiers (giamsat against DuckDB on the same files)", "",
                  "| query | giamsat warm | DuckDB warm | identical |", "|---|---:|---:|---|"]
            for q in r["queries"]:
                if "giamsat_warm" in q:
                    ident = {True: "yes", False: "**NO**", None: "–"}[q.get("identical")]
                    L.append(f"| {q['name']} | {R.fmt_s(q['giamsat_warm'])} | "
                             f"{R.fmt_s(q.get('duckdb_warm'))} | {ident} |")
    stem.with_suffix(".md").write_text("\n".join(L) + "\n")
    R.log("wrote", stem.with_suffix(".md"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1m")
    ap.add_argument("--bin", default=str(R.ROOT / "target" / "release" / "giamsat"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--increment", type=float, default=0.01, help="share of the lines in the increment")
    ap.add_argument("--push-lines", type=int, default=10000, help="lines per HTTP push body")
    ap.add_argument("--config", default="", help="TOML written to every data directory's config.toml "
                    "(e.g. '[ingest]\\ndedup = \"month\"')")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--no-reports", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dashboard-seconds", type=float, default=30)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    global CONFIG
    CONFIG = args.config.replace("\\n", "\n")
    started = dt.datetime.now(R.UTC)
    results = {"started": started.isoformat(), "machine": R.machine_info(), "args": vars(args), "sizes": []}
    base = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="giamsat-write-"))
    for s in args.sizes.split(","):
        n = R.parse_size(s)
        work = base / R.size_label(n)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        res = {"dossiers": n, "label": R.size_label(n)}
        results["sizes"].append(res)
        try:
            bench_size(args, n, work, res, lambda: write(results, args, started))
        except Exception as e:  # report where it got
            R.log(f"[{R.size_label(n)}] failed: {e}")
            res["error"] = f"{type(e).__name__}: {e}"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        write(results, args, started)


if __name__ == "__main__":
    main()
