//! The Arrow Flight SQL door with a real client: ADBC's Flight SQL driver from PyPI
//! (`tests/clients/flight_client.py`; `.ci/run` installs it). Data: the golden fixture;
//! the analyst is scoped to commune 11311, as in `hardening.rs`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, cli, start_server_flight};
use crate::hardening::{self, alive, http_sql, secrets, setup};

/// The ADBC client with a command and its stdin; its stdout.
fn adbc(port: u16, token: &str, args: &[&str], stdin: &str) -> String {
    let script = common::root().join("tests/clients/flight_client.py");
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
    let input = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("python");
    let _ = writer.join();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || args[0] == "drop",
        "flight_client.py {args:?} failed (adbc-driver-flightsql, pyarrow installed?): {err}"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn lines(sqls: &[&str]) -> String {
    sqls.iter()
        .map(|q| format!("{}\n", serde_json::json!({ "sql": q })))
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

fn text_rows(v: &Value) -> Vec<Vec<String>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|c| c.as_str().expect("text").to_string())
                .collect()
        })
        .collect()
}

const BIEU06_SQL: &str = "SELECT commune_code, count(*) AS total, \
    sum(CASE WHEN end_class = 'late' THEN 1 ELSE 0 END) AS ended_late \
    FROM dossier_facts WHERE counted GROUP BY commune_code ORDER BY commune_code";

#[test]
fn adbc_reads_what_http_reads_lists_tables_and_refuses_writes() {
    let s = setup();
    let (_server, http, port) = start_server_flight(&s.data, &[]);
    for token in [&s.admin, &s.analyst] {
        let input = serde_json::json!({ "sql": BIEU06_SQL }).to_string();
        let out = json(&adbc(port, token, &["read"], &input));
        let want = http_rows(
            http,
            token,
            BIEU06_SQL,
            &["commune_code", "total", "ended_late"],
        );
        assert!(!want.is_empty());
        // the same numbers as HTTP SQL, read as Arrow, signed in either way
        assert_eq!(text_rows(&out["rows"]), want, "{out}");
        assert_eq!(text_rows(&out["basic_rows"]), want, "{out}");
        assert_eq!(
            out["columns"],
            serde_json::json!(["commune_code", "total", "ended_late"])
        );
        // a bound parameter of a prepared statement
        let bound = text_rows(&out["bound"]);
        let want_bound: Vec<Vec<String>> = want
            .iter()
            .filter(|r| r[0] == "11311")
            .map(|r| r[..2].to_vec())
            .collect();
        assert_eq!(bound, want_bound, "{out}");
        // the tables and their columns, as a BI tool lists them
        for t in [
            "dossier_facts",
            "events",
            "dossier_states",
            "dossiers",
            "procedures",
        ] {
            let cols = &out["tables"][format!("public.{t}")];
            assert!(
                cols.as_array().is_some_and(|c| !c.is_empty()),
                "{t} listed with columns: {}",
                out["tables"]
            );
        }
        let schema = out["dossiers_schema"].as_array().expect("schema");
        for c in ["dossier_id", "commune_code", "received_at"] {
            assert!(schema.contains(&Value::from(c)), "{c} in {schema:?}");
        }
        assert_eq!(out["vendor"], "giamsat");
    }
    // writes, engine settings and file reads are refused, with a reason
    let refused = [
        "CREATE TABLE x (a INT)",
        "INSERT INTO events SELECT * FROM events LIMIT 0",
        "DELETE FROM events",
        "COPY (SELECT 1) TO '/tmp/giamsat-flight-copy.csv'",
        "SET datafusion.execution.target_partitions = 64",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM '/etc/passwd'",
    ];
    let out = adbc(port, &s.admin, &["refuse"], &lines(&refused));
    let answers: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(answers.len(), refused.len(), "{out}");
    for (sql, a) in refused.iter().zip(&answers) {
        let msg = a
            .as_str()
            .unwrap_or_else(|| panic!("{sql} must be refused"));
        assert!(
            msg.contains("InvalidArgument"),
            "{sql}: refused as the caller's fault: {msg}"
        );
    }
    assert!(!std::path::Path::new("/tmp/giamsat-flight-copy.csv").exists());
    // a wrong token, and roles without SQL, are refused
    let viewer = cli(&s.data, &["token", "add", "--role", "viewer"]);
    let ingest = cli(
        &s.data,
        &["token", "add", "--role", "ingest", "--source", "gs"],
    );
    // the server re-reads the token file at most once a second
    std::thread::sleep(Duration::from_millis(1100));
    for (bad, code) in [
        ("gs_not-a-token", "Unauthenticated"),
        (viewer.as_str(), "PermissionDenied"),
        (ingest.as_str(), "PermissionDenied"),
    ] {
        let out = json(&adbc(port, bad, &["signin"], ""));
        let err = out["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{bad} refused"));
        assert!(err.contains(code), "{code}: {err}");
    }
    alive(http);
}

#[test]
fn scoped_analyst_sees_no_other_commune_through_flight() {
    let s = setup();
    let (_server, http, port) = start_server_flight(&s.data, &[]);
    let secret = secrets(http, &s);
    let probes = hardening::door_probes(http, &s, &[]);
    let refs: Vec<&str> = probes.iter().map(String::as_str).collect();
    let out = adbc(port, &s.analyst, &["probe"], &lines(&refs));
    let answers: Vec<&str> = out.lines().collect();
    assert_eq!(answers.len(), probes.len(), "one answer per probe");
    let mut answered = 0;
    for (q, a) in probes.iter().zip(&answers) {
        if let Some(v) = secret.iter().find(|v| a.contains(v.as_str())) {
            panic!("flight {q}: the reply quotes {v:?} of another commune: {a}");
        }
        if json(a)["ok"] == Value::Bool(true) {
            answered += 1;
        }
    }
    // the plain reads work (they are not all refused), and the commune's own rows are there
    assert!(
        answered >= 2 * hardening::SCOPED.len(),
        "{answered} answered"
    );
    assert!(probes.len() > 1000, "{} probes", probes.len());
    assert!(
        answers.iter().any(|a| a.contains("G01")),
        "the analyst reads its own dossiers"
    );
    alive(http);
}

#[test]
fn row_limit_cancel_dropped_clients_and_fifty_connections_leave_the_server_serving() {
    let s = setup();
    let cfg = s.data.join("flight-server.toml");
    std::fs::write(&cfg, "[sql]\nmax_rows = 50000\n").expect("config");
    let (_server, http, port) =
        start_server_flight(&s.data, &["--config", cfg.to_str().expect("path")]);
    // a result within the limit arrives whole; one over it ends, after the first
    // max_rows rows, with an error that says so
    let out = json(&adbc(port, &s.admin, &["big", "50000"], ""));
    assert_eq!(out, serde_json::json!({ "rows": 50000, "error": null }));
    let out = json(&adbc(port, &s.admin, &["big", "50001"], ""));
    assert!(out["rows"].as_u64().expect("rows") <= 50000, "{out}");
    let err = out["error"].as_str().expect("an error");
    assert!(err.contains("50000") && err.contains("max_rows"), "{err}");
    // a cancel stops a query that would run for hours
    let out = json(&adbc(port, &s.analyst, &["cancel"], ""));
    assert!(out["error"].as_str().is_some(), "{out}");
    assert!(out["seconds"].as_f64().expect("seconds") < 20.0, "{out}");
    // clients that die mid-result (each leaves a half-read stream behind)
    for _ in 0..3 {
        adbc(port, &s.analyst, &["drop"], "");
    }
    alive(http);
    // their turns were given back: the token's two turns serve two queries at once
    // (a turn still held would make one of them wait for the 30 s time limit)
    let t0 = Instant::now();
    let out = json(&adbc(port, &s.analyst, &["many", "2"], ""));
    assert_eq!(out["ok"], 2, "{out}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    // 50 connections at once: every query answers or is told the server is busy
    let t0 = Instant::now();
    let out = json(&adbc(port, &s.admin, &["many", "50"], ""));
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    let ok = out["ok"].as_u64().expect("ok");
    let busy = out["busy"].as_u64().expect("busy");
    assert_eq!(ok + busy, 50, "{out}");
    assert!(ok >= 1, "{out}");
    assert!(t0.elapsed() < Duration::from_secs(120));
    alive(http);
    let out = json(&adbc(port, &s.admin, &["signin"], ""));
    assert_eq!(out["error"], Value::Null, "{out}");
}
