#!/usr/bin/env python3
"""giamsat against DuckDB on the same data (issue #9).

For each size (dossiers): generate, file ingest, HTTP push, then the report workload
(Biểu 06 for a year by field and by commune, on-time by commune for a quarter, the
Decision 766 index for a quarter, the dashboard overview, ten ad-hoc analyst queries),
cold (a new process) and warm (median of repeated runs in one server), with the same
report SQL run by DuckDB directly on the Parquet files of the same Delta tables, the
ratio giamsat/DuckDB per query and a check that both give identical numbers. Writes
bench/results/<date>.md, .json and .png.

    pip install duckdb matplotlib          # (--break-system-packages on Debian's python)
    cargo build --release --bin giamsat
    python3 bench/run.py --sizes 100k,1m   # --bin, --work, --keep, --max-ingest

Requires Linux (/proc, os.wait4). Nothing here is a test; see README "Benchmarks".
"""

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "queries" / "sql"
UTC = dt.timezone.utc
LOCAL = dt.timezone(dt.timedelta(hours=7))

# The report workload's periods (the generated data spans 1/7/2025 – 20/11/2026).
YEAR = ("2026-01-01", "2026-12-31")
QUARTER = "2026-Q2"  # official quarter: 15/3/2026 – 14/6/2026
QUARTER_DATES = ("2026-03-15", "2026-06-14")
PORTAL_SOURCE = "dvcqg"
CERTIFIED_FIELDS = ["CT"]  # queries/config/index766.toml certified_copy_fields

# Ten ad-hoc analyst queries, in SQL both engines accept unchanged.
ADHOC = [
    ("received per local month",
     "SELECT CAST(date_part('year', received_at + INTERVAL '7 hours') AS BIGINT) * 100 "
     "+ CAST(date_part('month', received_at + INTERVAL '7 hours') AS BIGINT) AS ym, count(*) AS n "
     "FROM dossier_facts WHERE counted GROUP BY 1 ORDER BY 1"),
    ("late among ended, by field",
     "SELECT field_code, count(*) AS ended, sum(CASE WHEN end_class = 'late' THEN 1 ELSE 0 END) AS late "
     "FROM dossier_facts WHERE counted AND ended_at IS NOT NULL GROUP BY field_code ORDER BY field_code"),
    ("top 10 communes with names",
     "SELECT t.commune_name, f.commune_code, count(*) AS n FROM dossier_facts f "
     "JOIN territories t ON t.commune_code = f.commune_code "
     "GROUP BY t.commune_name, f.commune_code ORDER BY n DESC, f.commune_code LIMIT 10"),
    ("mean hours to end, by procedure",
     "SELECT procedure_code, count(*) AS n, round(avg(date_part('epoch', ended_at) - "
     "date_part('epoch', received_at)) / 3600.0, 2) AS avg_hours FROM dossier_facts "
     "WHERE counted AND ended_at IS NOT NULL GROUP BY procedure_code ORDER BY procedure_code"),
    ("events by source and type (full scan)",
     "SELECT source, type, count(*) AS n FROM events GROUP BY source, type ORDER BY source, type"),
    ("procedures with most supplement rounds",
     "SELECT procedure_code, sum(supplement_requests) AS rounds, "
     "sum(CASE WHEN supplement_requests > 0 THEN 1 ELSE 0 END) AS with_rounds FROM dossier_facts "
     "WHERE counted GROUP BY procedure_code ORDER BY rounds DESC, procedure_code LIMIT 10"),
    ("phi địa giới by commune",
     "SELECT commune_code, sum(CASE WHEN non_territorial THEN 1 ELSE 0 END) AS nt, count(*) AS n "
     "FROM dossier_facts WHERE counted GROUP BY commune_code ORDER BY nt DESC, commune_code LIMIT 20"),
    ("channel × procedure level, VNeID",
     "SELECT channel, procedure_level, count(*) AS n, sum(CASE WHEN vneid THEN 1 ELSE 0 END) AS vneid "
     "FROM dossier_facts WHERE counted GROUP BY channel, procedure_level ORDER BY channel, procedure_level"),
    ("events per dossier histogram",
     "SELECT event_count, count(*) AS n FROM dossier_facts GROUP BY event_count ORDER BY event_count"),
    ("March 2026 events joined to facts, by field",
     "SELECT f.field_code, count(DISTINCT e.dossier_id) AS dossiers, count(*) AS events FROM events e "
     "JOIN dossier_facts f ON f.dossier_id = e.dossier_id WHERE e.month = '2026-03' "
     "GROUP BY f.field_code ORDER BY f.field_code"),
]

B06_COLS = ["total", "received_online", "received_offline", "carried_over", "ended", "ended_early",
            "ended_on_day", "ended_late", "in_progress", "in_progress_in_time", "in_progress_overdue"]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def parse_size(s):
    s = s.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(s[-1], 1)
    return int(float(s[:-1] if s[-1] in "km" else s) * mult)


def size_label(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


# ---------------------------------------------------------------- processes


GNU_TIME = "/usr/bin/time"


def run_measured(cmd, stdout_path=None, env=None):
    """Run cmd; (seconds, peak RSS bytes of the child, stdout text).

    The peak RSS comes from GNU time when installed: a child's own `ru_maxrss` also counts
    the memory of this Python process at the fork (the kernel records the old image's
    high-water mark at exec), which is hundreds of MB once DuckDB has run."""
    out = open(stdout_path, "w+b") if stdout_path else tempfile.TemporaryFile()
    rss_file = None
    if os.access(GNU_TIME, os.X_OK):
        rss_file = tempfile.NamedTemporaryFile(suffix=".rss", delete=False).name
        cmd = [GNU_TIME, "-f", "%M", "-o", rss_file] + list(cmd)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    maxrss = ru.ru_maxrss * 1024
    if rss_file:
        try:
            maxrss = int(Path(rss_file).read_text().split()[-1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(rss_file)
    out.seek(0)
    text = out.read().decode("utf-8", "replace") if not stdout_path else ""
    out.close()
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}… exit {p.returncode}: {err.decode('utf-8', 'replace')[-800:]}")
    return secs, maxrss, text


def vm_hwm(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Server:
    def __init__(self, binary, data, token, cache=False):
        # the report cache is off unless asked: warm figures are the query engine's, not
        # cache hits
        args = [binary, "--data", str(data), "serve", "--port", "0"]
        if not cache:
            conf = Path(data) / "bench-server.toml"
            conf.write_text("[cache]\nmax_entries = 0\n")
            args += ["--config", str(conf)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on (\S+)", line)
        if not m:
            raise RuntimeError(f"serve did not start: {line!r}")
        self.url = m.group(1).rstrip("/")
        self.token = token
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def request(self, method, path, params=None, body=None, ctype="application/json", timeout=600,
                token=None):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        req = urllib.request.Request(url, data=body, method=method, headers={
            "Authorization": f"Bearer {token or self.token}", "Content-Type": ctype})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
        return time.perf_counter() - t0, data

    def get_json(self, path, params=None):
        secs, data = self.request("GET", path, params)
        return secs, json.loads(data)

    def sql(self, sql):
        secs, data = self.request("POST", "/api/v1/sql", {"format": "json"},
                                  json.dumps({"sql": sql}).encode())
        return secs, json.loads(data)

    def peak_rss(self):
        return vm_hwm(self.proc.pid)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def add_token(binary, data, role="admin"):
    out = subprocess.run([binary, "--data", str(data), "token", "add", "--role", role],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].strip()


# ---------------------------------------------------------------- Delta → Parquet


def delta_files(table_dir):
    """The Parquet files of the current snapshot of a Delta table (JSON log replay; a
    checkpoint, if any, is read with DuckDB)."""
    log_dir = Path(table_dir) / "_delta_log"
    active = {}
    start = -1
    cp = log_dir / "_last_checkpoint"
    if cp.exists():
        import duckdb
        meta = json.loads(cp.read_text())
        start = int(meta["version"])
        parts = sorted(log_dir.glob(f"{start:020d}.checkpoint*.parquet"))
        con = duckdb.connect()
        for (path,) in con.execute(
                "SELECT add.path FROM read_parquet(?) WHERE add IS NOT NULL",
                [[str(p) for p in parts]]).fetchall():
            active[urllib.parse.unquote(path)] = True
    for f in sorted(log_dir.glob("*.json")):
        if int(f.stem) <= start:
            continue
        for line in f.read_text().splitlines():
            a = json.loads(line)
            if "add" in a:
                active[urllib.parse.unquote(a["add"]["path"])] = True
            elif "remove" in a:
                active.pop(urllib.parse.unquote(a["remove"]["path"]), None)
    return [str(Path(table_dir) / p) for p in active]


class Duck:
    """A DuckDB session whose views are the active Parquet files of the Delta tables."""

    def __init__(self, data, territories_csv):
        import duckdb
        t0 = time.perf_counter()
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        tables = Path(data) / "tables"
        for name in ["dossier_facts", "dossier_states", "events", "procedures"]:
            files = delta_files(tables / name)
            lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            hive = ", hive_partitioning = true" if name == "events" else ""
            self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({lst}{hive})")
        self.con.execute(f"CREATE TABLE territories AS SELECT * FROM read_csv('{territories_csv}', "
                         "all_varchar = true, header = true)")
        self.setup_seconds = time.perf_counter() - t0

    def query(self, sql):
        t0 = time.perf_counter()
        cur = self.con.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        return time.perf_counter() - t0, rows


# ---------------------------------------------------------------- report SQL for DuckDB


def instant(date_str, plus_days=0):
    d = dt.date.fromisoformat(date_str) + dt.timedelta(days=plus_days)
    t = dt.datetime(d.year, d.month, d.day, tzinfo=LOCAL).astimezone(UTC)
    return f"TIMESTAMPTZ '{t.strftime('%Y-%m-%d %H:%M:%S')}+00'"


def duck_sql(sql, params):
    """giamsat's SQL for DuckDB: bound parameters as literals (these are the bench's own
    constants), DataFusion's ordered first_value aggregate as DuckDB's first."""
    for i in range(len(params), 0, -1):
        sql = sql.replace(f"${i}", params[i - 1])
    sql = "\n".join(line.split("--")[0] for line in sql.splitlines())
    sql = re.sub(r"(?<![\w.\"])at(?![\w\"(])", '"at"', sql)  # a keyword in DuckDB
    return sql.replace("first_value(", "first(")


def period_params(frm, to):
    return [instant(frm), instant(to, 1)] + ["NULL"] * 7


def bieu06_duck(frm, to, group_by):
    cols = {"field": ("c.field_code", "c.field_name"), "commune": ("c.commune_code", "c.commune_name")}
    code, name = cols[group_by]
    sql = (SQL_DIR / "bieu06.sql").read_text()
    sql = sql.replace("{period_dossiers}", (SQL_DIR / "period_dossiers.sql").read_text())
    sql = sql.replace("{group_code}", code).replace("{group_name}", name)
    return duck_sql(sql, period_params(frm, to))


def index766_duck(frm, to):
    sql = (SQL_DIR / "index766_dossiers.sql").read_text()
    sql = sql.replace("{period_dossiers}", (SQL_DIR / "period_dossiers.sql").read_text())
    sql = sql.replace("{unit_code}", "'TOTAL'").replace("{unit_name}", "'Tổng cộng'")
    sql = sql.replace("{certified_fields}", ", ".join(f"'{f}'" for f in CERTIFIED_FIELDS))
    dossiers = duck_sql(sql, period_params(frm, to) + [f"'{PORTAL_SOURCE}'"])
    cat = (SQL_DIR / "index766_catalog.sql").read_text()
    cat = duck_sql(cat, [f"DATE '{frm}'", f"DATE '{to}'"])
    return dossiers, cat


# ---------------------------------------------------------------- normalised answers


def norm(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return round(v, 2)
    if hasattr(v, "as_integer_ratio") and not isinstance(v, int):  # Decimal
        return round(float(v), 2)
    return v


def b06_map(rows):
    return {r["group"]: tuple(int(r[c]) for c in B06_COLS) for r in rows}


def ontime_map(rows):
    return {r["group"]: (int(r["total"]), int(r["on_time"]), int(r["late"])) for r in rows}


def ontime_from_b06(rows):
    out = {}
    for r in rows:
        on_time = int(r["ended_early"]) + int(r["ended_on_day"]) + int(r["in_progress_in_time"])
        late = int(r["ended_late"]) + int(r["in_progress_overdue"])
        out[r["group"]] = (int(r["total"]), on_time, late)
    return out


def index766_map(index):
    """numerator/denominator of every criterion (dossier and catalog counts)."""
    out = {}
    for g in index["groups"]:
        for c in g["criteria"]:
            out[c["numerator_name"]] = c["numerator"]
            out[c["denominator_name"]] = c["denominator"]
    return out


def rows_norm(rows):
    return [tuple(norm(v) for v in r.values()) for r in rows]


def compare(a, b):
    if a == b:
        return True, ""
    if isinstance(a, dict) and isinstance(b, dict):
        diff = [k for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
        return False, f"{len(diff)} keys differ, e.g. {diff[:3]}: {[a.get(k) for k in diff[:2]]} vs {[b.get(k) for k in diff[:2]]}"
    return False, f"giamsat {str(a)[:200]} vs duckdb {str(b)[:200]}"


# ---------------------------------------------------------------- one size


def median(xs):
    return statistics.median(xs) if xs else None


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] if xs else None


def bench_size(args, n, work, res):
    """Fills `res` as it goes, so a failure keeps the figures up to where it got."""
    b = args.bin
    gen = work / "gen"
    log(f"[{size_label(n)}] generate")
    secs, rss, out = run_measured([b, "generate", "--out", str(gen), "--dossiers", str(n), "--seed", "1"])
    g = json.loads(out)
    res["generate"] = {"seconds": secs, "peak_rss": rss, **g,
                       "events_bytes": (gen / "events.ndjson").stat().st_size,
                       "portal_bytes": (gen / "dvcqg.ndjson").stat().st_size}
    if n > args.max_ingest:
        res["skipped"] = (f"ingest not attempted above --max-ingest {args.max_ingest}: file ingest "
                          "holds the whole input and every parsed event in memory")
        return

    # 1. file ingest (a fresh data dir; each Delta table of it written by this ingest only)
    data = work / "data"
    run_measured([b, "--data", str(data), "ingest", "--format", "procedures", str(gen / "procedures.csv")])
    log(f"[{size_label(n)}] file ingest")
    secs, rss, out = run_measured([b, "--data", str(data), "ingest", str(gen / "events.ndjson")])
    c = json.loads(out)
    res["file_ingest"] = {"seconds": secs, "peak_rss": rss, **c, "events_per_s": c["accepted"] / secs,
                          "lines_per_s": (c["accepted"] + c["duplicates"] + c["quarantined"]) / secs}
    log(f"[{size_label(n)}] portal ingest")
    secs, rss, out = run_measured([b, "--data", str(data), "ingest", "--format", "dvcqg", str(gen / "dvcqg.ndjson")])
    c = json.loads(out)
    res["portal_ingest"] = {"seconds": secs, "peak_rss": rss, **c,
                            "records_per_s": res["generate"]["portal_records"] / secs}

    # 2. HTTP push into another data dir
    if not args.no_push:
        log(f"[{size_label(n)}] HTTP push")
        res["http_push"] = http_push(args, gen, work / "push")
        shutil.rmtree(work / "push", ignore_errors=True)
    if not args.keep:
        (gen / "events.ndjson").unlink()
        (gen / "dvcqg.ndjson").unlink()

    # 3. report workload
    log(f"[{size_label(n)}] reports")
    res["queries"] = []
    reports(args, data, work, res["queries"])


def http_push(args, gen, data):
    b = args.bin
    run_measured([b, "--data", str(data), "ingest", "--format", "procedures", str(gen / "procedures.csv")])
    token = add_token(b, data)
    srv = Server(b, data, token)
    chunks = []
    with open(gen / "events.ndjson", "rb") as f:
        buf = []
        for line in f:
            buf.append(line)
            if len(buf) == args.chunk:
                chunks.append(b"".join(buf))
                buf = []
        if buf:
            chunks.append(b"".join(buf))
    errors = []

    def push(body):
        for attempt in range(5):
            try:
                return srv.request("POST", "/api/v1/events", {"source": "hp-motcua"}, body,
                                   "application/x-ndjson")[0]
            except urllib.error.HTTPError as e:
                if e.code not in (503, 429) or attempt == 4:
                    errors.append(f"HTTP {e.code}")
                    return None
                time.sleep(1)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as ex:
        list(ex.map(push, chunks))
    secs = time.perf_counter() - t0
    rss = srv.peak_rss()
    _, rows = srv.sql("SELECT count(*) AS n FROM events")
    srv.stop()
    events = rows[0]["n"]
    return {"seconds": secs, "events": events, "events_per_s": events / secs, "chunk_lines": args.chunk,
            "clients": args.parallel, "server_peak_rss": rss, "errors": errors}


def reports(args, data, work, out):
    b = args.bin
    terr = work / "territories.csv"
    terr.write_text(subprocess.run([b, "--data", str(data), "sql", "SELECT * FROM territories", "--format", "csv"],
                                   check=True, capture_output=True, text=True).stdout)
    q_frm, q_to = QUARTER_DATES
    # (name, giamsat CLI args (cold), HTTP GET (path, params) or SQL, DuckDB SQL, how to compare)
    work_items = [
        ("Biểu 06, year, by field",
         ["report", "bieu06", "--from", YEAR[0], "--to", YEAR[1], "--group-by", "field", "--format", "json"],
         ("/api/v1/reports/bieu06", {"from": YEAR[0], "to": YEAR[1], "group_by": "field"}),
         bieu06_duck(*YEAR, "field"), "b06"),
        ("Biểu 06, year, by commune",
         ["report", "bieu06", "--from", YEAR[0], "--to", YEAR[1], "--group-by", "commune", "--format", "json"],
         ("/api/v1/reports/bieu06", {"from": YEAR[0], "to": YEAR[1], "group_by": "commune"}),
         bieu06_duck(*YEAR, "commune"), "b06"),
        ("on-time by commune, quarter",
         ["report", "on-time", "--period", QUARTER, "--group-by", "commune", "--format", "json"],
         ("/api/v1/indicators/on-time", {"period": QUARTER, "group_by": "commune"}),
         bieu06_duck(q_frm, q_to, "commune"), "ontime"),
        ("Decision 766 index, quarter",
         ["report", "766", "--period", QUARTER, "--format", "json"],
         ("/api/v1/indicators/766", {"period": QUARTER}),
         index766_duck(q_frm, q_to), "766"),
        ("dashboard overview, quarter", None,
         ("/api/v1/dashboard/overview", {"from": q_frm, "to": q_to}), None, None),
    ]
    for name, sql in ADHOC:
        work_items.append((f"ad hoc: {name}", ["sql", sql, "--format", "json"], sql, sql, "rows"))

    token = add_token(b, data)
    # cold: a new giamsat process per query (OS page cache warm: no root to drop it)
    for name, cli, http, dsql, kind in work_items:
        item = {"name": name}
        if cli:
            secs, rss, text = run_measured([b, "--data", str(data)] + cli)
            item["giamsat_cold"] = secs
            item["giamsat_cold_rss"] = rss
        out.append(item)
    # DuckDB cold: a new in-memory database per query, views created, then the query
    for item, (name, cli, http, dsql, kind) in zip(out, work_items):
        if dsql is None:
            continue
        t0 = time.perf_counter()
        d = Duck(data, terr)
        if isinstance(dsql, tuple):
            d.query(dsql[0])
            d.query(dsql[1])
        else:
            d.query(dsql)
        item["duckdb_cold"] = time.perf_counter() - t0
        d.con.close()
    # warm: one server, one DuckDB session, median of --repeat after one warm-up
    srv = Server(b, data, token)
    duck = Duck(data, terr)
    try:
        for item, (name, cli, http, dsql, kind) in zip(out, work_items):
            log("  ", name)
            times, answer = [], None
            for _ in range(args.repeat + 1):
                if isinstance(http, tuple):
                    secs, answer = srv.get_json(*http)
                else:
                    secs, answer = srv.sql(http)
                times.append(secs)
            item["giamsat_warm"] = median(times[1:])
            if dsql is None:
                continue
            dtimes, danswer = [], None
            for _ in range(args.repeat + 1):
                if isinstance(dsql, tuple):
                    s1, rows = duck.query(dsql[0])
                    s2, cat = duck.query(dsql[1])
                    secs, danswer = s1 + s2, (rows, cat)
                else:
                    secs, danswer = duck.query(dsql)
                dtimes.append(secs)
            item["duckdb_warm"] = median(dtimes[1:])
            item["ratio_warm"] = item["giamsat_warm"] / item["duckdb_warm"]
            if "giamsat_cold" in item and "duckdb_cold" in item:
                item["ratio_cold"] = item["giamsat_cold"] / item["duckdb_cold"]
            if kind == "b06":
                ok, why = compare(b06_map(answer), b06_map(danswer))
            elif kind == "ontime":
                ok, why = compare(ontime_map(answer["rows"]), ontime_from_b06(danswer))
            elif kind == "766":
                ix = answer[0] if isinstance(answer, list) else answer
                g = index766_map(ix)
                dd = {**{k: int(norm(v) or 0) for k, v in danswer[0][0].items() if k not in ("unit", "unit_name")},
                      **{k: int(norm(v) or 0) for k, v in danswer[1][0].items()}}
                common = {k for k in g if k in dd}
                item["compared"] = f"{len(common)} numerators/denominators (feedback ones not: no feedback in the data)"
                ok, why = compare({k: g[k] for k in common}, {k: dd[k] for k in common})
            else:
                ok, why = compare(rows_norm(answer), rows_norm(danswer))
            item["identical"] = ok
            if not ok:
                item["mismatch"] = why
                log("   MISMATCH", why)
        # dashboard: the page's 7 requests in parallel, --rounds times
        item = {"name": "dashboard: 7 parallel requests per refresh"}
        item.update(dashboard(srv, args.rounds, args.dashboard_seconds))
        out.append(item)
        item = {"name": "server peak RSS (reports)", "server_peak_rss": srv.peak_rss()}
        out.append(item)
    finally:
        srv.stop()
        duck.con.close()


def dashboard(srv, rounds, budget):
    frm, to = QUARTER_DATES
    f = {"from": frm, "to": to}
    reqs = [
        ("/api/v1/dashboard/overview", f),
        ("/api/v1/indicators/on-time", {**f, "series": "month", "group_by": "field"}),
        ("/api/v1/indicators/on-time", {**f, "group_by": "commune"}),
        ("/api/v1/reports/bieu06", {**f, "group_by": "field"}),
        ("/api/v1/alerts", {"limit": 50}),
        ("/api/v1/sources", {}),
        ("/api/v1/reconciliation", {**f, "limit": 1}),
    ]
    per = {f"{p}{'?series' if 'series' in q else ''}": [] for p, q in reqs}
    errors = {}

    def one(pq):
        p, q = pq
        key = f"{p}{'?series' if 'series' in q else ''}"
        try:
            secs, _ = srv.request("GET", p, q, timeout=120)
            per[key].append(secs)
        except urllib.error.HTTPError as e:
            errors[f"{key} HTTP {e.code}"] = errors.get(f"{key} HTTP {e.code}", 0) + 1
        except OSError as e:  # timeouts, resets
            errors[f"{key} {type(e).__name__}"] = errors.get(f"{key} {type(e).__name__}", 0) + 1

    refresh = []
    with ThreadPoolExecutor(7) as ex:
        list(ex.map(one, reqs))  # warm-up
        for k in per:
            per[k].clear()
        start = time.perf_counter()
        for i in range(rounds):
            t0 = time.perf_counter()
            list(ex.map(one, reqs))
            refresh.append(time.perf_counter() - t0)
            if i >= 4 and time.perf_counter() - start > budget:
                break
    allt = [t for v in per.values() for t in v]
    return {"rounds": len(refresh), "p95_request": p95(allt), "p50_request": median(allt),
            "p95_refresh": p95(refresh), "p95_by_endpoint": {k: p95(v) for k, v in per.items()},
            "errors": errors}


# ---------------------------------------------------------------- output


def machine_info():
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import duckdb
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_bytes": mem, "kernel": platform.release(),
            "python": platform.python_version(), "duckdb": duckdb.__version__,
            "loadavg_start": os.getloadavg()}


def gib(x):
    return f"{x / 2**30:.2f} GiB" if x else "–"


def fmt_s(x):
    if x is None:
        return "–"
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def write_results(results, args, started):
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{started:%Y-%m-%d}"
    results["machine"]["loadavg_end"] = os.getloadavg()
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    m = results["machine"]
    L = [f"# giamsat vs DuckDB, {started:%Y-%m-%d %H:%M} UTC", "",
         f"Machine: {m['cpus']} cores ({m['cpu']}), {gib(m['mem_bytes'])}, Linux {m['kernel']}; "
         f"DuckDB {m['duckdb']} (Python {m['python']}); giamsat `{args.bin}` (release).",
         f"Load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f} "
         f"{args.note}".rstrip() + ".",
         "",
         f"Reproduce: `python3 bench/run.py --sizes {args.sizes} --repeat {args.repeat}` "
         "(README, Benchmarks). Data: `giamsat generate --seed 1` (synthetic Hải Phòng).",
         "DuckDB reads the Parquet files of the current snapshot of each Delta table (the `add`s "
         "not `remove`d in `_delta_log`), so both engines read exactly the same files.",
         "Cold = a new process for giamsat (`giamsat report …` / `giamsat sql …`, includes process "
         "start and opening the Delta tables) and a new in-memory DuckDB database for DuckDB "
         "(views created, then the query); the OS page cache is warm for both (dropping it needs "
         "root). Warm = median of the repeats after one warm-up, giamsat through its HTTP API "
         "(includes HTTP and JSON), DuckDB in one Python session.", ""]
    L += ["## Ingest", "", "| dossiers | generate | events | file ingest | events/s | peak RSS | portal records/s "
          "| HTTP push events/s | push server peak RSS |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["sizes"]:
        if "generate" not in r:
            L.append(f"| {r['label']} | failed: {r.get('error', '')[:300]} |||||||")
            continue
        g, fi, pi, hp = r["generate"], r.get("file_ingest"), r.get("portal_ingest"), r.get("http_push")
        cells = [r["label"], f"{g['seconds']:.0f} s, {gib(g['peak_rss'])}"]
        if fi:
            cells += [f"{fi['accepted']:,}", fmt_s(fi["seconds"]), f"{fi['events_per_s']:,.0f}", gib(fi["peak_rss"]),
                      f"{pi['records_per_s']:,.0f}" if pi else "–",
                      f"{hp['events_per_s']:,.0f}" if hp else "–", gib(hp["server_peak_rss"]) if hp else "–"]
        else:
            cells += [f"{g['lines']:,} lines", "–", "–", "–", "–", "–", r.get("skipped", r.get("error", ""))]
        L.append("| " + " | ".join(cells) + " |")
    for r in results["sizes"]:
        if "error" in r:
            L += ["", f"{r['label']}: failed after the steps above: {r['error'][:500]}"]
    L.append("")
    for r in results["sizes"]:
        if "queries" not in r:
            continue
        L += [f"## Reports, {r['label']} dossiers", "",
              "| query | giamsat cold | DuckDB cold | ratio | giamsat warm | DuckDB warm | ratio | identical |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
        for q in r["queries"]:
            if "giamsat_warm" not in q:
                continue
            ident = {True: "yes", False: "**NO**", None: "–"}[q.get("identical")]
            if q.get("compared"):
                ident += f" ({q['compared']})"
            if q.get("mismatch"):
                ident += f": {q['mismatch']}"
            L.append(f"| {q['name']} | {fmt_s(q.get('giamsat_cold'))} | {fmt_s(q.get('duckdb_cold'))} | "
                     f"{q['ratio_cold']:.2f} | " if "ratio_cold" in q else
                     f"| {q['name']} | {fmt_s(q.get('giamsat_cold'))} | {fmt_s(q.get('duckdb_cold'))} | – | ")
            L[-1] += (f"{fmt_s(q['giamsat_warm'])} | {fmt_s(q.get('duckdb_warm'))} | "
                      f"{q['ratio_warm']:.2f} | {ident} |" if "ratio_warm" in q else
                      f"{fmt_s(q['giamsat_warm'])} | – | – | {ident} |")
        for q in r["queries"]:
            if "p95_request" in q:
                L += ["", f"Dashboard ({q['rounds']} refreshes of its 7 parallel requests, quarter): "
                      f"request p50 {fmt_s(q['p50_request'])}, p95 {fmt_s(q['p95_request'])}; "
                      f"whole refresh p95 {fmt_s(q['p95_refresh'])}; errors {q['errors'] or 'none'}.", "",
                      "| endpoint | p95 |", "|---|---:|"]
                L += [f"| `{k}` | {fmt_s(v)} |" for k, v in q["p95_by_endpoint"].items()]
            if "server_peak_rss" in q:
                L += ["", f"Server peak RSS over the report workload: {gib(q['server_peak_rss'])}; "
                      "largest cold report process: "
                      f"{gib(max(x.get('giamsat_cold_rss', 0) for x in r['queries']))}."]
        L.append("")
    L += ["![time versus data size](" + stem.with_suffix(".png").name + ")", ""]
    stem.with_suffix(".md").write_text("\n".join(L))
    plot(results, stem.with_suffix(".png"))
    log("wrote", stem.with_suffix(".md"))


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib missing: no plot")
        return
    sizes = [r for r in results["sizes"]
             if r.get("queries") and all("giamsat_warm" in q or "p95_request" in q or "server_peak_rss" in q
                                         for q in r["queries"])]
    if not sizes:
        return
    names = [q["name"] for q in sizes[0]["queries"] if "duckdb_warm" in q and not q["name"].startswith("ad hoc")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    xs = [r["dossiers"] for r in sizes]
    for i, name in enumerate(names):
        color = f"C{i}"
        g = [next(q["giamsat_warm"] for q in r["queries"] if q["name"] == name) for r in sizes]
        d = [next(q["duckdb_warm"] for q in r["queries"] if q["name"] == name) for r in sizes]
        axes[0].plot(xs, g, "-o", color=color, label=f"giamsat: {name}")
        axes[0].plot(xs, d, "--x", color=color, label=f"DuckDB: {name}")
    adhoc_g = [sum(q["giamsat_warm"] for q in r["queries"] if q["name"].startswith("ad hoc")) for r in sizes]
    adhoc_d = [sum(q.get("duckdb_warm", 0) for q in r["queries"] if q["name"].startswith("ad hoc")) for r in sizes]
    axes[0].plot(xs, adhoc_g, "-o", color="black", label="giamsat: 10 ad-hoc queries (sum)")
    axes[0].plot(xs, adhoc_d, "--x", color="black", label="DuckDB: 10 ad-hoc queries (sum)")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("dossiers")
    axes[0].set_ylabel("warm time (s)")
    axes[0].set_title("Reports, warm (solid giamsat, dashed DuckDB)")
    axes[0].legend(fontsize=6)
    ing = [r for r in results["sizes"] if "file_ingest" in r]
    axes[1].plot([r["dossiers"] for r in ing], [r["file_ingest"]["events_per_s"] for r in ing], "-o", label="file ingest")
    hp = [r for r in ing if "http_push" in r]
    axes[1].plot([r["dossiers"] for r in hp], [r["http_push"]["events_per_s"] for r in hp], "-o", label="HTTP push")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("dossiers")
    axes[1].set_ylabel("events/s")
    axes[1].set_title("Ingest")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100k,1m")
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "giamsat"))
    ap.add_argument("--work", default=None, help="work directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep generated files and data dirs")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=30, help="dashboard refreshes")
    ap.add_argument("--dashboard-seconds", type=float, default=180,
                    help="stop the dashboard refreshes after this long (at least 5)")
    ap.add_argument("--chunk", type=int, default=50_000, help="lines per HTTP push body")
    ap.add_argument("--parallel", type=int, default=4, help="HTTP push clients")
    ap.add_argument("--no-push", action="store_true")
    ap.add_argument("--max-ingest", type=parse_size, default=parse_size("3m"),
                    help="largest size to ingest (bigger ones are only generated)")
    ap.add_argument("--note", default="", help="a note on the machine's load, for the results")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no binary at {args.bin}: cargo build --release --bin giamsat, or --bin")
    started = dt.datetime.now(UTC)
    results = {"started": started.isoformat(), "machine": machine_info(), "args": vars(args), "sizes": []}
    base = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="giamsat-bench-"))
    try:
        for s in args.sizes.split(","):
            n = parse_size(s)
            work = base / size_label(n)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            res = {"dossiers": n, "label": size_label(n)}
            results["sizes"].append(res)
            try:
                bench_size(args, n, work, res)
            except Exception as e:  # report where it got, do not hide it
                log(f"[{size_label(n)}] failed: {e}")
                res["error"] = f"{type(e).__name__}: {e}"
            finally:
                if not args.keep:
                    shutil.rmtree(work, ignore_errors=True)
            results["max_rss_driver"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            write_results(results, args, started)
    finally:
        if not args.keep and not args.work:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
