#!/usr/bin/env python3
"""Record giamsat's answers on the golden fixture, to compare two builds byte for byte.

A refactor must not change what users see. This script loads the golden and
reconciliation fixtures into a fresh data directory with the given binary, then records
the exact stdout, stderr and exit code of CLI commands and the status, content type and
body of HTTP requests (good and bad ones: error messages are answers too) into one file
per case under OUT.

    python3 tests/compare/answers.py --bin OLD/giamsat --out /tmp/before
    python3 tests/compare/answers.py --bin NEW/giamsat --out /tmp/after
    python3 tests/compare/answers.py --diff /tmp/before /tmp/after   # exit 1 on any change

Only the standard library is used. Answers that depend on the wall clock are asked with
an explicit `as_of`, so two runs of one build record the same bytes (`--diff` of two
runs of one build is the check that the list has no clock-dependent case).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "compare-admin-token-0123456789abcdef"

CLI = {
    "bieu06_field_csv": ["report", "bieu06", "--from", "2026-01-01", "--to", "2026-03-31"],
    "bieu06_oq1_json": ["report", "bieu06", "--from", "2025-12-15", "--to", "2026-03-14",
                        "--group-by", "commune", "--format", "json"],
    "bieu06_bad_group": ["report", "bieu06", "--from", "2026-01-01", "--to", "2026-03-31",
                         "--group-by", "planet"],
    "bieu06_bad_date": ["report", "bieu06", "--from", "2026-13-01", "--to", "2026-03-31"],
    "766_q1_json": ["report", "766", "--period", "2026-Q1"],
    "766_q1_csv": ["report", "766", "--period", "2026-Q1", "--format", "csv"],
    "766_commune": ["report", "766", "--period", "2026", "--group-by", "commune"],
    "766_bad_period": ["report", "766", "--period", "2026-Q7"],
    "on_time_series": ["report", "on-time", "--from", "2026-01-01", "--to", "2026-04-30",
                       "--group-by", "source", "--series", "month"],
    "on_time_json": ["report", "on-time", "--period", "2026-CQ1", "--format", "json"],
    "on_time_bad": ["report", "on-time", "--period", "2026-CQ1", "--group-by", "x"],
    "overdue": ["report", "overdue", "--as-of", "2026-02-10T15:00:00+07:00"],
    "overdue_json": ["report", "overdue", "--as-of", "2026-02-10T15:00:00+07:00",
                     "--due-within-hours", "48", "--format", "json"],
    "recon": ["report", "reconciliation", "--from", "2026-01-01", "--to", "2026-12-31"],
    "recon_json": ["report", "reconciliation", "--from", "2026-01-01", "--to", "2026-12-31",
                   "--format", "json", "--limit", "3"],
    "sources": ["report", "sources", "--as-of", "2026-04-01T00:00:00+07:00"],
    "data_quality": ["report", "data-quality"],
    "data_quality_csv": ["report", "data-quality", "--format", "csv"],
    "explain_text": ["explain", "G01", "--as-of", "2026-03-31"],
    "explain_json": ["explain", "G05", "--as-of", "2026-03-31", "--format", "json"],
    "explain_missing": ["explain", "NO-SUCH-DOSSIER"],
    "sql_table": ["sql", "SELECT field_code, count(*) AS n FROM dossiers GROUP BY 1 ORDER BY 1"],
    "sql_json": ["sql", "SELECT dossier_id, class FROM dossiers ORDER BY 1 LIMIT 5",
                 "--format", "json"],
    "sql_write": ["sql", "DROP TABLE events"],
    "sql_bad": ["sql", "SELEC 1"],
    "bad_subcommand": ["report", "nothing"],
    "help": ["--help"],
    "help_report": ["report", "--help"],
    "help_on_time": ["report", "on-time", "--help"],
    "help_ingest": ["ingest", "--help"],
    "help_serve": ["serve", "--help"],
    "help_token_add": ["token", "add", "--help"],
    "help_export": ["export", "--help"],
    "help_restore": ["restore", "--help"],
}

H = "/api/v1"
HTTP = {
    "healthz": "/healthz",
    "openapi": "/api/openapi.json",
    "me": f"{H}/me",
    "bieu06": f"{H}/reports/bieu06?from=2026-01-01&to=2026-03-31",
    "bieu06_csv": f"{H}/reports/bieu06?from=2025-12-15&to=2026-03-14&group_by=commune&format=csv",
    "bieu06_bad": f"{H}/reports/bieu06?from=2026-01-01&to=2026-03-31&group_by=planet",
    "bieu06_missing": f"{H}/reports/bieu06?from=2026-01-01",
    "bieu06_dossiers": f"{H}/reports/bieu06/dossiers?from=2026-01-01&to=2026-03-31&group_by=field"
                       "&group=CT&column=received_total",
    "766": f"{H}/indicators/766?period=2026-Q1",
    "766_csv": f"{H}/indicators/766?period=2026-Q1&format=csv",
    "766_group": f"{H}/indicators/766?period=2026&group_by=commune",
    "766_bad": f"{H}/indicators/766?period=2026-Q9",
    "766_dossiers": f"{H}/indicators/766/dossiers?period=2026-Q1&criterion=1.1",
    "on_time": f"{H}/indicators/on-time?from=2026-01-01&to=2026-03-31&group_by=commune",
    "on_time_series": f"{H}/indicators/on-time?period=2026-CQ1&series=month&group_by=source",
    "on_time_bad": f"{H}/indicators/on-time?period=2026-CQ1&limit=x&group_by=planet",
    "overview": f"{H}/dashboard/overview?from=2026-01-01&to=2026-03-31",
    "overview_scoped_param": f"{H}/dashboard/overview?period=2026-Q1&commune=11311",
    "alerts": f"{H}/alerts?as_of=2026-02-10T15:00:00%2B07:00&due_within_hours=48",
    "alerts_csv": f"{H}/alerts?as_of=2026-02-10T15:00:00%2B07:00&format=csv",
    "alerts_bad": f"{H}/alerts?as_of=yesterday",
    "recon": f"{H}/reconciliation?from=2026-01-01&to=2026-12-31",
    "recon_page": f"{H}/reconciliation?from=2026-01-01&to=2026-12-31&limit=2",
    "sources": f"{H}/sources?as_of=2026-04-01T00:00:00%2B07:00",
    "quality": f"{H}/data-quality",
    "dossier": f"{H}/dossiers/G01",
    "dossier_missing": f"{H}/dossiers/NOPE",
    "exports": f"{H}/exports",
    "sql_get": f"{H}/sql?q=" + urllib.parse.quote("SELECT count(*) AS n FROM dossiers"),
    "not_found": f"{H}/nothing-here",
}
# (name, path, body): POSTed as JSON.
POSTS = [
    ("sql_post_json", f"{H}/sql", {"sql": "SELECT dossier_id, class FROM dossiers ORDER BY 1 LIMIT 4"}),
    ("sql_post_csv", f"{H}/sql?format=csv", {"sql": "SELECT field_code FROM dossiers ORDER BY 1 LIMIT 3"}),
    ("sql_post_write", f"{H}/sql", {"sql": "INSERT INTO events VALUES (1)"}),
    ("sql_post_bad", f"{H}/sql", {"sql": "SELECT * FROM nowhere"}),
    ("sql_post_no_body", f"{H}/sql", None),
]


# The instants of this run's ingestion (and the lags measured from them) are the only
# answers that change from one run to the next; they are masked.
VOLATILE = [
    (re.compile(rb'"((?:last_)?ingested_at)":"[^"]*"'), rb'"\1":"<ingestion>"'),
    (re.compile(rb'"(lag_(?:p50|p90|max)_seconds)":[0-9.e+-]+'), rb'"\1":"<lag>"'),
]


def masked(payload):
    for pattern, repl in VOLATILE:
        payload = pattern.sub(repl, payload)
    return payload


def run(binary, data, args, check=False):
    p = subprocess.run([binary, "--data", data, *args], capture_output=True)
    if check and p.returncode != 0:
        sys.exit(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p


def request(port, path, token, body=None, method="GET"):
    data = None
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if method == "POST":
        data = b"" if body is None else json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


def record(out, binary):
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        for fixture in ("golden", "recon"):
            d = os.path.join(ROOT, "fixtures", fixture)
            run(binary, data, ["ingest", "--format", "procedures", f"{d}/procedures.csv"], True)
            run(binary, data, ["ingest", f"{d}/events.ndjson"], True)
        for name, args in CLI.items():
            p = run(binary, data, args)
            with open(os.path.join(out, f"cli.{name}"), "wb") as f:
                f.write(b"exit %d\n--- stdout\n" % p.returncode + masked(p.stdout) + b"\n--- stderr\n" + p.stderr)
        viewer = run(binary, data, ["token", "add", "--role", "viewer", "--commune", "11311",
                                    "--label", "compare viewer"], True).stdout.decode().strip()
        viewer = viewer.splitlines()[0].split()[-1]
        analyst = run(binary, data, ["token", "add", "--role", "analyst", "--commune", "11311",
                                     "--label", "compare analyst"], True).stdout.decode().strip()
        analyst = analyst.splitlines()[0].split()[-1]
        server = subprocess.Popen([binary, "--data", data, "serve", "--port", "0", "--token", TOKEN],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            line = server.stdout.readline().decode().strip()
            port = int(line.rsplit(":", 1)[1])
            cases = []
            for name, path in HTTP.items():
                cases.append((f"http.{name}", path, TOKEN, None, "GET"))
                cases.append((f"http.viewer.{name}", path, viewer, None, "GET"))
            cases.append(("http.no_token.bieu06", HTTP["bieu06"], None, None, "GET"))
            cases.append(("http.bad_token.bieu06", HTTP["bieu06"], "nope", None, "GET"))
            for name, path, body in POSTS:
                cases.append((f"http.{name}", path, TOKEN, body, "POST"))
                cases.append((f"http.viewer.{name}", path, viewer, body, "POST"))
                cases.append((f"http.analyst.{name}", path, analyst, body, "POST"))
            for name, path, token, body, method in cases:
                status, ctype, payload = request(port, path, token, body, method)
                with open(os.path.join(out, name), "wb") as f:
                    f.write(f"status {status}\ncontent-type {ctype}\n\n".encode() + masked(payload))
        finally:
            server.kill()
            server.wait()
    print(f"{len(os.listdir(out))} answers in {out}")


def diff(a, b):
    names = sorted(set(os.listdir(a)) | set(os.listdir(b)))
    changed = []
    for n in names:
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        if not (os.path.exists(pa) and os.path.exists(pb)):
            changed.append(f"{n}: only in {'the first' if os.path.exists(pa) else 'the second'}")
            continue
        with open(pa, "rb") as fa, open(pb, "rb") as fb:
            if fa.read() != fb.read():
                changed.append(f"{n}: differs")
    for c in changed:
        print(c)
    print(f"{len(names)} answers compared, {len(changed)} changed")
    return 1 if changed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin")
    ap.add_argument("--out")
    ap.add_argument("--diff", nargs=2, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args()
    if a.diff:
        sys.exit(diff(*a.diff))
    if not (a.bin and a.out):
        ap.error("--bin and --out, or --diff BEFORE AFTER")
    record(a.out, a.bin)


if __name__ == "__main__":
    main()
