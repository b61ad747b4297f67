//! The PostgreSQL door with real clients: Debian's `psql`, and Python's psycopg, pandas
//! and SQLAlchemy (`tests/clients/pg_client.py`; `.ci/run` installs them). Data: the
//! golden fixture; the analyst is scoped to commune 11311, as in `hardening.rs`.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, cli, start_server_pg};
use crate::hardening::{self, alive, http_sql, secrets, setup, text_columns};

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
    let as_text = |v: &Value| -> Vec<Vec<String>> {
        v.as_array()
            .expect("rows")
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
    };
    // the analyst sees its commune only, by both clients, as over HTTP
    assert_eq!(as_text(&out["pandas"]), want);
    assert_eq!(want.len(), 1, "{want:?}");
    assert_eq!(as_text(&out["bound"]), want);
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
}

#[test]
fn scoped_analyst_sees_no_other_commune_through_pg() {
    let s = setup();
    let (_server, http, pg) = start_server_pg(&s.data, &[]);
    let secret = secrets(http, &s);
    // the probes of the HTTP scope test: failing expressions in every place
    let mut probes = Vec::new();
    for t in hardening::SCOPED {
        let cols = text_columns(http, &s, t);
        let x = format!("concat_ws('|', {})", cols.join(", "));
        for f in hardening::QUOTING {
            let f = f.replace('X', &x);
            for place in hardening::PLACES {
                if t == "quarantine" && place.contains("dossier_id") {
                    continue;
                }
                probes.push(place.replace('F', &f).replace('T', t));
            }
        }
        // UNION, joins and subqueries over whole tables
        probes.push(format!("SELECT * FROM {t}"));
        probes.push(format!(
            "SELECT * FROM {t} UNION ALL SELECT * FROM {t} WHERE 1 = 0"
        ));
    }
    probes.extend(
        [
            "SELECT e.* FROM events e JOIN dossier_facts f ON e.dossier_id = f.dossier_id",
            "SELECT * FROM events WHERE dossier_id IN (SELECT dossier_id FROM dossier_states)",
            "SELECT t.*, (SELECT count(*) FROM events) AS n FROM territories t",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM information_schema.columns",
            "SELECT * FROM pg_catalog.pg_class",
            "SELECT * FROM pg_catalog.pg_attribute",
            "SELECT * FROM pg_catalog.pg_namespace",
            "SELECT count(*) FROM events WHERE CASE WHEN commune_code = '11224' THEN \
             CAST(concat_ws('|', dossier_id, agency_name) AS INT) ELSE 0 END = 0",
        ]
        .map(str::to_string),
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
