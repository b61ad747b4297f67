//! The PostgreSQL door with real clients: Debian's `psql`, Python's psycopg, pandas and
//! SQLAlchemy (`tests/clients/pg_client.py`), and the PostgreSQL JDBC driver that DBeaver
//! uses (Debian's `libpostgresql-jdbc-java`, `tests/clients/JdbcProbe.java`); `.ci/run`
//! installs them. Data: the golden fixture; the analyst is scoped to commune 11311, as in
//! `hardening.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, cli, start_server_pg};
use crate::hardening::{self, alive, http_sql, secrets, setup};

/// `psql` with a token as password: (exit success, stdout, stderr).
fn psql(port: u16, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "analyst"])
        .args(["-d", "giamsat", "-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "30")
        .output()
        .expect("psql (Debian's postgresql-client; .ci/run installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python client with a command; its stdout.
fn python(port: u16, token: &str, args: &[&str], stdin: Option<&str>) -> String {
    let script = common::root().join("tests/clients/pg_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(token)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    // written from another thread: the client answers while it reads
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.unwrap_or("").to_string();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("python");
    let _ = writer.join();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || args[0] == "drop",
        "pg_client.py {args:?} failed (psycopg, pandas, sqlalchemy installed?): {err}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Debian's PostgreSQL JDBC driver (`libpostgresql-jdbc-java`).
const PGJDBC_JAR: &str = "/usr/share/java/postgresql.jar";

/// `tests/clients/JdbcProbe.java` (run from source by `java`) with a token: its JSON
/// answer, a key per step.
fn jdbc(port: u16, token: &str) -> Value {
    assert!(
        std::path::Path::new(PGJDBC_JAR).exists(),
        "{PGJDBC_JAR} (Debian's libpostgresql-jdbc-java; .ci/run installs it)"
    );
    let out = Command::new("java")
        .args(["-cp", PGJDBC_JAR])
        .arg(common::root().join("tests/clients/JdbcProbe.java"))
        .arg(port.to_string())
        .arg(token)
        .output()
        .expect("java (a JDK 11 or later, which runs a source file; .ci/run installs it)");
    assert!(
        out.status.success(),
        "JdbcProbe.java failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "json from JdbcProbe.java ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Rows of a JSON answer (lists of values) as lists of text.
fn rows_as_text(v: &Value) -> Vec<Vec<String>> {
    v.as_array()
        .unwrap_or_else(|| panic!("rows: {v}"))
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    o => o.to_string(),
                })
                .collect()
        })
        .collect()
}

/// `POST /api/v1/sql` rows as lists of text.
fn http_rows(port: u16, token: &str, sql: &str, cols: &[&str]) -> Vec<Vec<String>> {
    let r = http_sql(port, token, sql);
    assert_eq!(r.status, 200, "{sql}: {}", r.text());
    r.json()
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            cols.iter()
                .map(|c| match &row[c] {
                    Value::String(s) => s.clone(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect()
}

const BIEU06_SQL: &str = "SELECT commune_code, count(*) AS total, \
    sum(CASE WHEN end_class = 'late' THEN 1 ELSE 0 END) AS ended_late \
    FROM dossier_facts WHERE counted GROUP BY commune_code ORDER BY commune_code";

#[test]
fn psql_lists_describes_and_reads_what_http_reads_and_refuses_writes() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    // \dt and \d
    let (ok, out, err) = psql(pg, &s.admin, &["-c", "\\dt"]);
    assert!(ok, "{err}");
    for t in ["dossier_facts", "events", "dossier_states", "procedures"] {
        assert!(out.contains(t), "\\dt lists {t}: {out}");
    }
    let (ok, out, err) = psql(pg, &s.admin, &["-c", "\\d dossiers"]);
    assert!(ok, "{err}");
    for c in ["dossier_id", "commune_code", "received_at"] {
        assert!(out.contains(c), "\\d dossiers shows {c}: {out}");
    }
    // the same numbers as HTTP SQL, for the admin and for the scoped analyst
    for token in [&s.admin, &s.analyst] {
        let (ok, out, err) = psql(pg, token, &["-A", "-t", "-F", ",", "-c", BIEU06_SQL]);
        assert!(ok, "{err}");
        let got: Vec<Vec<String>> = out
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        let want = http_rows(
            http,
            token,
            BIEU06_SQL,
            &["commune_code", "total", "ended_late"],
        );
        assert_eq!(got, want);
        assert!(!want.is_empty());
    }
    // writes and engine settings are refused, and the server keeps serving
    for sql in [
        "CREATE TABLE x (a INT)",
        "INSERT INTO events SELECT * FROM events LIMIT 0",
        "DELETE FROM events",
        "COPY (SELECT 1) TO '/tmp/giamsat-pg-copy.csv'",
        "SET datafusion.execution.target_partitions = 64",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
    ] {
        let (ok, _, err) = psql(pg, &s.admin, &["-c", sql]);
        assert!(!ok, "{sql} must be refused");
        assert!(err.contains("ERROR"), "{sql}: {err}");
    }
    assert!(!std::path::Path::new("/tmp/giamsat-pg-copy.csv").exists());
    // a client setting is fine
    let (ok, _, err) = psql(pg, &s.admin, &["-c", "SET application_name = 'thử'"]);
    assert!(ok, "{err}");
    // a wrong password, and roles without SQL, are refused at sign-in
    let viewer = cli(&s.data, &["token", "add", "--role", "viewer"]);
    let ingest = cli(
        &s.data,
        &["token", "add", "--role", "ingest", "--source", "gs"],
    );
    for bad in ["gs_not-a-token", viewer.as_str(), ingest.as_str()] {
        let (ok, _, err) = psql(pg, bad, &["-c", "SELECT 1"]);
        assert!(
            !ok && err.contains("FATAL") || err.contains("ERROR"),
            "{err}"
        );
        assert!(!ok, "refused: {err}");
    }
    alive(http);
}

#[test]
fn python_clients_bind_parameters_and_list_tables() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    let out: Value = serde_json::from_str(&python(pg, &s.analyst, &["param"], None))
        .expect("json from pg_client.py");
    let sql = "SELECT commune_code, count(*) AS n FROM dossier_facts WHERE counted \
               GROUP BY 1 ORDER BY 1";
    let want = http_rows(http, &s.analyst, sql, &["commune_code", "n"]);
    // the analyst sees its commune only, by both clients, as over HTTP
    assert_eq!(rows_as_text(&out["pandas"]), want);
    assert_eq!(want.len(), 1, "{want:?}");
    assert_eq!(rows_as_text(&out["bound"]), want);
    // PostgreSQL's binary format carries the same values as text (integers,
    // timestamps, floats, booleans), and the counts are HTTP's
    let binary = rows_as_text(&out["binary"]);
    assert!(!binary.is_empty());
    assert_eq!(binary, rows_as_text(&out["text"]));
    let counts = http_rows(
        http,
        &s.analyst,
        "SELECT dossier_id, event_count FROM dossier_facts WHERE received_at IS NOT NULL \
         ORDER BY dossier_id",
        &["dossier_id", "event_count"],
    );
    let got: Vec<Vec<String>> = binary.iter().map(|r| r[..2].to_vec()).collect();
    assert_eq!(got, counts);
    let tables: Vec<&str> = out["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in ["dossier_facts", "events"] {
        assert!(tables.contains(&t), "{tables:?}");
    }
    let columns = out["columns"].to_string();
    assert!(columns.contains("commune_code"), "{columns}");
    // SQLAlchemy's column reflection lists the same columns, in order, with types
    let reflected = out["reflected"].as_array().expect("reflected columns");
    let names: Vec<&Value> = reflected.iter().map(|c| &c[0]).collect();
    let listed: Vec<&Value> = out["columns"].as_array().expect("columns").iter().collect();
    assert_eq!(names, listed, "{reflected:?}");
    let type_of = |name: &str| {
        reflected
            .iter()
            .find(|c| c[0] == name)
            .map(|c| c[1].as_str().unwrap_or_default().to_uppercase())
            .unwrap_or_default()
    };
    assert!(
        type_of("commune_code").contains("TEXT") || type_of("commune_code").contains("VARCHAR"),
        "{reflected:?}"
    );
    assert!(
        type_of("received_at").contains("TIMESTAMP"),
        "{reflected:?}"
    );
    assert!(type_of("event_count").contains("BIGINT"), "{reflected:?}");
}

#[test]
fn dbeaver_s_driver_lists_tables_and_columns_and_reads() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    let sql = "SELECT commune_code, count(*) AS n FROM dossier_facts WHERE counted \
               GROUP BY 1 ORDER BY 1";
    // the probe binds '11311' where HTTP has it written out
    let bound = "SELECT commune_code, count(*) AS n FROM dossier_facts WHERE counted \
                 AND commune_code = '11311' GROUP BY 1";
    // a step of the probe's answer, which must not be an error
    fn step<'a>(out: &'a Value, k: &str) -> &'a Value {
        let v = &out[k];
        assert!(!v.is_null() && v.get("error").is_none(), "{k}: {v}");
        v
    }
    fn names(out: &Value, k: &str) -> Vec<String> {
        step(out, k)
            .as_array()
            .unwrap_or_else(|| panic!("{k}: {out}"))
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    }
    for token in [&s.admin, &s.analyst] {
        let out = jdbc(pg, token);
        assert_eq!(step(&out, "connect"), &Value::Bool(true));
        assert_eq!(step(&out, "product")["name"], "PostgreSQL", "{out}");
        // the navigator: schemas, tables, the dossiers view and its columns with types
        assert!(
            names(&out, "schemas").contains(&"public".to_string()),
            "{out}"
        );
        let tables = names(&out, "tables");
        for t in ["dossier_facts", "events", "dossier_states", "procedures"] {
            assert!(
                tables.contains(&t.to_string()),
                "tables list {t}: {tables:?}"
            );
        }
        // dossiers is a view, and listed as one
        assert_eq!(names(&out, "views"), ["dossiers"], "{out}");
        let columns = rows_as_text(step(&out, "columns"));
        let types: BTreeMap<&str, &str> = columns
            .iter()
            .map(|c| (c[0].as_str(), c[1].as_str()))
            .collect();
        for (c, t) in [
            ("dossier_id", "text"),
            ("commune_code", "text"),
            ("received_at", "timestamptz"),
            ("counted", "bool"),
        ] {
            assert_eq!(types.get(c), Some(&t), "dossiers.{c}: {columns:?}");
        }
        // Not checked: getPrimaryKeys and getIndexInfo, whose SQL calls
        // information_schema._pg_expandarray(i.indkey) and reads a field of its rows
        // ((...).n), and getImportedKeys, which first reads max_index_keys from
        // pg_settings (not there) and then indexes pg_constraint.conkey as an array (it
        // is text). The engine plans none of them yet; DBeaver's own navigator reads
        // pg_index and pg_constraint directly instead (below).

        // the data tab of every table and view: the rows HTTP counts (at most 200), each
        // value read. Not checked: dossier_states, whose overdue_after holds the "always
        // overdue" mark (ALWAYS_OVERDUE, i64::MIN / 2 microseconds), sent as the text
        // "-144169-06-28 09:59:32.612096+00", which the driver refuses as a timestamp
        // (SQLSTATE 22007). Nor the column types of a catalog table's result
        // (catalog_types): the driver's pg_type lookup of regnamespace compares typinput
        // (text here) with 'pg_catalog.array_in'::regproc (an integer) and fails.
        let grid = step(&out, "grid");
        let mut shown = tables.clone();
        shown.push("dossiers".to_string());
        for t in shown.iter().filter(|t| *t != "dossier_states") {
            let count = format!("SELECT count(*) AS n FROM {t}");
            let n: u64 = http_rows(http, token, &count, &["n"])[0][0]
                .parse()
                .expect("count");
            let got = &grid[t.as_str()];
            assert_eq!(got["rows"].as_u64(), Some(n.min(200)), "{t}: {got}");
        }

        // DBeaver's own catalog queries: each answers, and the columns of dossiers are
        // those of the JDBC metadata
        let nav = step(&out, "dbeaver");
        for (k, v) in nav.as_object().expect("dbeaver steps") {
            assert!(v.get("error").is_none(), "DBeaver's {k} query: {v}");
        }
        assert_eq!(
            nav["attributes"]["rows"].as_u64(),
            Some(columns.len() as u64),
            "{nav}"
        );
        let classes = nav["classes"]["rows"].as_u64().expect("classes");
        assert!(classes > tables.len() as u64, "{nav}");

        // the same numbers as HTTP SQL, the scoped analyst's commune only
        let want = http_rows(http, token, sql, &["commune_code", "n"]);
        assert!(!want.is_empty());
        assert_eq!(rows_as_text(step(&out, "query")), want);
        assert_eq!(
            step(&out, "query_types"),
            &serde_json::json!(["text", "int8"])
        );
        if *token == s.analyst {
            assert_eq!(want.len(), 1, "{want:?}");
        }
        let want = http_rows(http, token, bound, &["commune_code", "n"]);
        assert_eq!(want.len(), 1, "{want:?}");
        assert_eq!(rows_as_text(step(&out, "bound")), want);
    }
    alive(http);
}

#[test]
fn scoped_analyst_sees_no_other_commune_through_pg() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    let secret = secrets(http, &s);
    let probes = hardening::door_probes(
        http,
        &s,
        &[
            "SELECT * FROM pg_catalog.pg_class",
            "SELECT * FROM pg_catalog.pg_attribute",
            "SELECT * FROM pg_catalog.pg_namespace",
        ],
    );
    let input: String = probes
        .iter()
        .map(|q| format!("{}\n", serde_json::json!({ "sql": q })))
        .collect();
    let out = python(pg, &s.analyst, &["probe"], Some(&input));
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), probes.len(), "one answer per probe");
    let mut answered = 0;
    for (q, a) in probes.iter().zip(&answers) {
        if let Some(v) = secret.iter().find(|v| a.contains(v.as_str())) {
            panic!("pg {q}: the reply quotes {v:?} of another commune: {a}");
        }
        let a: Value = serde_json::from_str(a).expect("json answer");
        if a["ok"] == Value::Bool(true) {
            answered += 1;
        }
    }
    // the plain reads work (they are not all refused)
    assert!(
        answered >= 2 * hardening::SCOPED.len(),
        "{answered} answered"
    );
    assert!(probes.len() > 1000, "{} probes", probes.len());
    // and the commune's own rows are there
    let own: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.contains("G01"))
        .map(|a| a.to_string())
        .collect();
    assert!(!own.is_empty(), "the analyst reads its own dossiers");
    alive(http);
}

#[test]
fn cancel_dropped_clients_and_fifty_connections_leave_the_server_serving() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    // a cancel request stops a query that would run for hours
    let out: Value =
        serde_json::from_str(&python(pg, &s.analyst, &["cancel"], None)).expect("json");
    assert_eq!(out["code"], "57014", "{out}");
    assert!(out["seconds"].as_f64().expect("seconds") < 20.0, "{out}");
    // a client that dies mid-query
    python(pg, &s.analyst, &["drop"], None);
    alive(http);
    // 50 connections at once: every query answers or is told the server is busy
    let t0 = Instant::now();
    let out: Value =
        serde_json::from_str(&python(pg, &s.admin, &["many", "50"], None)).expect("json");
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    let ok = out["ok"].as_u64().expect("ok");
    let busy = out["busy"].as_u64().expect("busy");
    assert_eq!(ok + busy, 50, "{out}");
    assert!(ok >= 1, "{out}");
    assert!(t0.elapsed() < Duration::from_secs(120));
    alive(http);
    // and the door still answers
    let (ok, out, err) = psql(pg, &s.admin, &["-A", "-t", "-c", "SELECT 1 + 1"]);
    assert!(ok && out.trim() == "2", "{out} {err}");
}
