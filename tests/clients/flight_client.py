"""ADBC's Flight SQL driver (from PyPI) against giamsat's Flight SQL door (tests/it/flight.rs).

Usage: flight_client.py PORT TOKEN COMMAND
  probe    read JSON lines {"sql": ...} on stdin; answer a JSON line each:
           {"ok": true, "rows": [[...], ...]} or {"ok": false, "error": text}
           (one connection for all)
  read     a query as Arrow, the same query with a bound parameter, the same query signed
           in with user name and password (the token), the table list with columns, a
           table's schema and the server's info: one JSON object
  refuse   read JSON lines {"sql": ...} on stdin; answer a JSON line each: the error text,
           or null if the statement was answered
  signin   try a query with TOKEN: JSON {"error": text or null}
  big N    read the N-row result of generate_series, counting the rows that arrive
           before an error: JSON {"rows": n, "error": text or null}
  cancel   start a query that would run for hours, cancel it after 1 s:
           JSON {"error": text, "seconds": s}
  many N   N connections at once, each running a query: JSON {"ok": n, "busy": n, "errors": [...]}
  drop     read the first batch of a large result and exit without reading the rest
"""

import json
import os
import sys
import threading
import time
import warnings

import adbc_driver_flightsql as afs
import adbc_driver_flightsql.dbapi as flight

warnings.simplefilter("ignore")

PORT, TOKEN, COMMAND = int(sys.argv[1]), sys.argv[2], sys.argv[3]
URI = f"grpc://127.0.0.1:{PORT}"


def connect(token=TOKEN):
    return flight.connect(
        URI, db_kwargs={afs.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"}
    )


def plain(v):
    if v is None:
        return None
    return str(v)


def rows_of(table):
    return [[plain(v) for v in row.values()] for row in table.to_pylist()]


def text(e):
    return " ".join(str(e).split())



if COMMAND == "probe":
    conn = connect()
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                out = {"ok": True, "rows": rows_of(cur.fetch_arrow_table())}
        except Exception as e:  # the driver's error, or Arrow's while reading
            out = {"ok": False, "error": text(e)}
        print(json.dumps(out, ensure_ascii=False), flush=True)
elif COMMAND == "read":
    sql = json.loads(sys.stdin.read())["sql"]
    out = {}
    with connect() as conn, conn.cursor() as cur:
        cur.execute(sql)
        table = cur.fetch_arrow_table()
        out["columns"] = table.column_names
        out["rows"] = rows_of(table)
        cur.execute(
            "SELECT commune_code, count(*) AS n FROM dossier_facts "
            "WHERE counted AND commune_code = $1 GROUP BY 1",
            parameters=("11311",),
        )
        out["bound"] = [[plain(v) for v in r] for r in cur.fetchall()]
        objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
        tables = {}
        for c in objects:
            for s in c["catalog_db_schemas"] or []:
                for t in s["db_schema_tables"] or []:
                    tables[f'{s["db_schema_name"]}.{t["table_name"]}'] = [
                        col["column_name"] for col in t["table_columns"] or []
                    ]
        out["tables"] = tables
        out["dossiers_schema"] = conn.adbc_get_table_schema("dossiers").names
        info = conn.adbc_get_info()
        out["vendor"] = info.get("vendor_name")
    # user name and password (the token): the driver signs in with a handshake
    with flight.connect(
        URI, db_kwargs={"username": "analyst", "password": TOKEN}
    ) as conn, conn.cursor() as cur:
        cur.execute(sql)
        out["basic_rows"] = rows_of(cur.fetch_arrow_table())
    print(json.dumps(out, ensure_ascii=False))
elif COMMAND == "refuse":
    conn = connect()
    for line in sys.stdin:
        sql = json.loads(line)["sql"]
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                cur.fetch_arrow_table()
            out = None
        except Exception as e:  # the driver's error, or Arrow's while reading
            out = text(e)
        print(json.dumps(out, ensure_ascii=False), flush=True)
elif COMMAND == "signin":
    try:
        with connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
        print(json.dumps({"error": None}))
    except Exception as e:  # the driver's error, or Arrow's while reading
        print(json.dumps({"error": text(e)}, ensure_ascii=False))
elif COMMAND == "big":
    n = int(sys.argv[4])
    rows, error = 0, None
    with connect() as conn, conn.cursor() as cur:
        try:
            cur.execute(f"SELECT value FROM generate_series(1, {n})")
            reader = cur.fetch_record_batch()
            for batch in reader:
                rows += batch.num_rows
        except Exception as e:  # the driver's error, or Arrow's while reading
            error = text(e)
    print(json.dumps({"rows": rows, "error": error}, ensure_ascii=False))
elif COMMAND == "cancel":
    conn = connect()
    cur = conn.cursor()
    threading.Timer(1.0, cur.adbc_cancel).start()
    t0 = time.time()
    error = None
    try:
        cur.execute("SELECT count(*) FROM generate_series(1, 100000000000) a")
        cur.fetchall()
    except Exception as e:  # the driver's error, or Arrow's while reading
        error = text(e)
    print(json.dumps({"error": error, "seconds": time.time() - t0}, ensure_ascii=False))
elif COMMAND == "many":
    n = int(sys.argv[4])
    result = {"ok": 0, "busy": 0, "errors": []}
    lock = threading.Lock()

    def one():
        try:
            with connect() as c, c.cursor() as cur:
                cur.execute("SELECT count(*) FROM events")
                cur.fetchall()
            with lock:
                result["ok"] += 1
        except Exception as e:  # the driver's error, or Arrow's while reading
            with lock:
                if "ResourceExhausted" in str(e):
                    result["busy"] += 1
                else:
                    result["errors"].append(text(e))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(result, ensure_ascii=False))
elif COMMAND == "drop":
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT value FROM generate_series(1, 100000)")
    reader = cur.fetch_record_batch()
    next(iter(reader))
    os._exit(0)
else:
    sys.exit(f"unknown command {COMMAND}")
