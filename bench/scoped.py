#!/usr/bin/env python3
"""The cost of the territorial scope: the same reports and SQL over HTTP for an admin
(unscoped tables), a viewer/analyst of the whole province (scoped tables that hold every
row: the scope's pure overhead) and of one commune. Warm medians, report cache off.
The province-scoped answers must equal the admin's.

    cargo build --release --bin giamsat
    target/release/giamsat generate --out gen --dossiers 1000000 --seed 1
    target/release/giamsat --data wh ingest --format procedures gen/procedures.csv
    target/release/giamsat --data wh ingest gen/events.ndjson
    python3 bench/scoped.py --data wh --out bench/results/DATE-scoped.md
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the benchmark's server driver and constants)


def token(binary, data, *args):
    out = subprocess.run([binary, "--data", str(data), "token", "add", *args],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1].strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--bin", default=str(run.ROOT / "target" / "release" / "giamsat"))
    ap.add_argument("--commune", default="11311")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    who = {
        "admin": token(a.bin, a.data, "--role", "admin"),
        "province 31": token(a.bin, a.data, "--role", "analyst", "--province", "31"),
        f"commune {a.commune}": token(a.bin, a.data, "--role", "analyst", "--commune", a.commune),
    }
    q_frm, q_to = run.QUARTER_DATES
    work = [
        ("Biểu 06, year, by field", "/api/v1/reports/bieu06",
         {"from": run.YEAR[0], "to": run.YEAR[1], "group_by": "field"}),
        ("on-time, quarter, by commune", "/api/v1/indicators/on-time",
         {"period": run.QUARTER, "group_by": "commune"}),
        ("766, quarter", "/api/v1/indicators/766", {"period": run.QUARTER}),
        ("overview, quarter", "/api/v1/dashboard/overview", {"from": q_frm, "to": q_to}),
        ("SQL: events of the year per type", None,
         "SELECT type, count(*) AS n FROM events WHERE at >= TIMESTAMP '2026-01-01T00:00:00+07:00' "
         "GROUP BY type ORDER BY type"),
    ]
    srv = run.Server(a.bin, a.data, who["admin"])
    rows, answers = [], {}
    try:
        for name, path, params in work:
            line = {"name": name}
            for label, tok in who.items():
                srv.token = tok
                times = []
                for _ in range(a.repeat + 1):
                    if path:
                        secs, ans = srv.get_json(path, params)
                    else:
                        secs, ans = srv.sql(params)
                    times.append(secs)
                line[label] = run.median(times[1:])
                answers[(name, label)] = json.dumps(ans, sort_keys=True)
            line["province = admin"] = answers[(name, "admin")] == answers[(name, "province 31")]
            rows.append(line)
            run.log(" ", line)
    finally:
        srv.stop()
    labels = list(who)
    md = ["| warm median, s | " + " | ".join(labels) + " | province answer = admin |",
          "|---|" + "---:|" * len(labels) + "---|"]
    for r in rows:
        md.append(f"| {r['name']} | " + " | ".join(f"{r[k]:.3f}" for k in labels)
                  + f" | {'yes' if r['province = admin'] else 'NO'} |")
    text = "\n".join(md) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    if not all(r["province = admin"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
