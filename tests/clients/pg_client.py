"""Real PostgreSQL clients against giamsat's PostgreSQL door (tests/it/pg.rs).

Usage: pg_client.py PORT TOKEN COMMAND
  probe    read JSON lines {"sql": ...} on stdin; answer a JSON line each:
           {"ok": true, "rows": [[...], ...]} or {"ok": false, "code": SQLSTATE, "error": text}
           (one psycopg connection for all)
  param    a query with a bound parameter (psycopg), a table listing and a query read by
           pandas through SQLAlchemy: one JSON object
  cancel   start a heavy query, cancel it after 1 s: JSON {"code", "seconds"}
  many N   N connections at once, each running a query: JSON {"ok": n, "busy": n, "errors": [...]}
  drop     start a query and exit without reading its result (the process dies)
"""

import json
import os
import sys
import threading
import time

import psycopg

PORT, TOKEN, COMMAND = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect():
    return psycopg.connect(
        host="127.0.0.1", port=PORT, user="analyst", password=TOKEN, dbname="giamsat",
        autocommit=True, connect_timeout=30,
    )


def plain(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


if COMMAND == "probe":
    conn = connect()
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        try:
            rows = conn.execute(sql).fetchall()
            out = {"ok": True, "rows": [[plain(v) for v in r] for r in rows]}
        except psycopg.Error as e:
            out = {"ok": False, "code": e.sqlstate, "error": str(e)}
            if conn.closed:
                conn = connect()
        print(json.dumps(out, ensure_ascii=False), flush=True)
elif COMMAND == "param":
    import pandas as pd
    import sqlalchemy as sa

    out = {}
    with connect() as c:
        cur = c.execute(
            "SELECT commune_code, count(*) AS n FROM dossier_facts WHERE counted AND commune_code = %s GROUP BY 1",
            ("11311",),
        )
        out["bound"] = [[plain(v) for v in r] for r in cur.fetchall()]
        # the same values read in PostgreSQL's binary format and in text
        typed = (
            "SELECT dossier_id, event_count, received_at, max_working_days, counted "
            "FROM dossier_facts WHERE received_at IS NOT NULL ORDER BY dossier_id"
        )
        out["binary"] = [[plain(v) for v in r] for r in c.cursor(binary=True).execute(typed).fetchall()]
        out["text"] = [[plain(v) for v in r] for r in c.cursor(binary=False).execute(typed).fetchall()]
    engine = sa.create_engine(f"postgresql+psycopg://analyst:{TOKEN}@127.0.0.1:{PORT}/giamsat")
    df = pd.read_sql(
        "SELECT commune_code, count(*) AS n FROM dossier_facts WHERE counted GROUP BY 1 ORDER BY 1", engine
    )
    out["pandas"] = [[plain(v) for v in r] for r in df.itertuples(index=False)]
    out["tables"] = sorted(sa.inspect(engine).get_table_names())
    # SQLAlchemy's column reflection (what Superset and Metabase show)
    out["reflected"] = [
        [c["name"], str(c["type"]), c["nullable"]]
        for c in sa.inspect(engine).get_columns("dossier_facts")
    ]
    with connect() as c:
        out["columns"] = [
            r[0]
            for r in c.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                ("dossier_facts",),
            ).fetchall()
        ]
    print(json.dumps(out, ensure_ascii=False))
elif COMMAND == "cancel":
    conn = connect()
    threading.Timer(1.0, conn.cancel).start()
    t0 = time.time()
    code = None
    try:
        conn.execute(
            "SELECT count(*) FROM generate_series(1, 100000000000) a"
        ).fetchall()
    except psycopg.Error as e:
        code = e.sqlstate
    print(json.dumps({"code": code, "seconds": time.time() - t0}))
elif COMMAND == "many":
    n = int(sys.argv[4])
    result = {"ok": 0, "busy": 0, "errors": []}
    lock = threading.Lock()

    def one():
        try:
            with connect() as c:
                c.execute("SELECT count(*) FROM events").fetchall()
            with lock:
                result["ok"] += 1
        except psycopg.Error as e:
            with lock:
                if e.sqlstate == "53000":
                    result["busy"] += 1
                else:
                    result["errors"].append(f"{e.sqlstate}: {e}")

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(result))
elif COMMAND == "drop":
    conn = connect()
    conn.pgconn.send_query(b"SELECT * FROM events e1 CROSS JOIN events e2 CROSS JOIN events e3")
    conn.pgconn.flush()
    time.sleep(0.5)
    os._exit(0)
