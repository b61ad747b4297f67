//! HTTP API end-to-end (issue: tokens, roles, territorial scope, read-only SQL, formats),
//! against the real binary on a random port, with the golden fixture as data:
//! communes 11311 (Hồng Bàng: G01, G02, G05–G16) and 11224 (Khúc Thừa Dụ: the rest).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, cli, request, start_server, BIN};

fn sql(port: u16, token: &str, q: &str) -> common::Reply {
    request(
        port,
        "POST",
        "/api/v1/sql",
        Some(token),
        Some(&json!({ "sql": q }).to_string()),
    )
}

fn sql_ok(port: u16, token: &str, q: &str) -> Vec<Value> {
    let r = sql(port, token, q);
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    r.json().as_array().cloned().expect("array")
}

fn total(rows: &Value) -> Vec<i64> {
    let t = rows.as_array().and_then(|a| a.last()).expect("TOTAL row");
    assert_eq!(t["group"], "TOTAL");
    giamsat_queries::bieu06::COLUMNS[2..]
        .iter()
        .map(|k| t[*k].as_i64().expect("number"))
        .collect()
}

#[test]
fn tokens_roles_scopes_sql_and_formats() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let analyst_x = cli(
        &data,
        &["token", "add", "--role", "analyst", "--commune", "11311"],
    );
    let viewer_x = cli(
        &data,
        &["token", "add", "--role", "viewer", "--commune", "11311"],
    );
    let viewer_31 = cli(
        &data,
        &["token", "add", "--role", "viewer", "--province", "31"],
    );
    let ingest = cli(
        &data,
        &["token", "add", "--role", "ingest", "--source", "gs"],
    );
    assert!(!std::fs::read_to_string(data.join("tokens.toml"))
        .expect("tokens")
        .contains(&admin));
    // a bad scope is refused before anything is stored
    let out = Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["token", "add", "--role", "viewer", "--commune", "99999"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));

    let cfg = tmp.path().join("server.toml");
    std::fs::write(&cfg, "[sql]\ntimeout_seconds = 1.5\nmax_rows = 5\n").expect("cfg");
    let (_server, port) = start_server(&data, &["--config", cfg.to_str().expect("p")]);

    // no token → 401; unknown token → 401; public endpoints stay public
    let jan = "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31";
    for r in [
        request(port, "GET", jan, None, None),
        request(port, "GET", jan, Some("gs_unknown"), None),
        request(
            port,
            "POST",
            "/api/v1/sql",
            None,
            Some(r#"{"sql":"SELECT 1"}"#),
        ),
    ] {
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.json()["error"].is_string());
    }
    assert_eq!(request(port, "GET", "/healthz", None, None).status, 200);
    let api = request(port, "GET", "/api/openapi.json", None, None).json();
    assert!(api["openapi"].as_str().expect("version").starts_with("3."));
    for p in ["/api/v1/reports/bieu06", "/api/v1/sql", "/healthz"] {
        assert!(api["paths"][p].is_object(), "{p} documented");
    }
    assert_eq!(request(port, "GET", "/api/docs", None, None).status, 200);
    let nf = request(port, "GET", "/api/v1/nope", Some(&admin), None);
    assert_eq!(nf.status, 404);
    assert!(nf.json()["error"].is_string());

    // wrong role → 403
    assert_eq!(sql(port, &viewer_x, "SELECT 1").status, 403);
    assert_eq!(request(port, "GET", jan, Some(&ingest), None).status, 403);

    // reports are scoped: Hồng Bàng's January is 10 dossiers, all ended (golden.rs)
    let all = request(port, "GET", jan, Some(&admin), None).json();
    assert_eq!(total(&all), vec![15, 11, 3, 1, 11, 4, 3, 4, 4, 3, 1]);
    assert_eq!(
        total(&request(port, "GET", jan, Some(&viewer_31), None).json()),
        total(&all)
    );
    let x = request(port, "GET", jan, Some(&viewer_x), None).json();
    assert_eq!(total(&x), vec![10, 7, 3, 0, 10, 3, 3, 4, 0, 0, 0]);
    let other = request(
        port,
        "GET",
        &format!("{jan}&commune=11224"),
        Some(&viewer_x),
        None,
    )
    .json();
    assert_eq!(
        total(&other),
        vec![0; 11],
        "asking for another commune shows nothing"
    );
    let by_commune = request(
        port,
        "GET",
        &format!("{jan}&group_by=commune"),
        Some(&analyst_x),
        None,
    )
    .json();
    let groups: Vec<&str> = by_commune
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["group"].as_str().expect("g"))
        .collect();
    assert_eq!(groups, vec!["11311", "TOTAL"]);

    // bad parameters → 400 JSON
    for q in [
        "/api/v1/reports/bieu06?from=2026-02-01&to=2026-01-01",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31&group_by=x",
        "/api/v1/reports/bieu06?to=2026-01-31",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31&format=docx",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31&commune=1%27%20OR%201=1",
    ] {
        let r = request(port, "GET", q, Some(&admin), None);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }

    // crafted SQL cannot leave the analyst's commune
    let one_commune = |q: &str| {
        let rows = sql_ok(port, &analyst_x, q);
        let codes: Vec<&str> = rows.iter().filter_map(|r| r["c"].as_str()).collect();
        assert_eq!(codes, vec!["11311"], "{q}");
    };
    one_commune("SELECT DISTINCT commune_code AS c FROM dossier_facts");
    one_commune("SELECT DISTINCT commune_code AS c FROM dossiers");
    one_commune(
        "SELECT commune_code AS c FROM dossier_facts UNION SELECT commune_code FROM dossiers \
         UNION SELECT commune_code FROM events WHERE commune_code IS NOT NULL",
    );
    one_commune(
        "SELECT DISTINCT t.commune_code AS c FROM territories t JOIN dossier_facts f ON f.commune_code = t.commune_code",
    );
    let n = |token: &str, q: &str| sql_ok(port, token, q)[0]["n"].as_i64().expect("n");
    assert_eq!(
        n(
            &analyst_x,
            "SELECT count(*) AS n FROM events WHERE dossier_id IN ('G17', 'G18', 'G22')"
        ),
        0
    );
    assert_eq!(
        n(&analyst_x, "SELECT (SELECT count(*) FROM events) AS n"),
        37
    );
    assert_eq!(n(&admin, "SELECT (SELECT count(*) FROM events) AS n"), 86);
    assert_eq!(
        n(&analyst_x, "SELECT count(*) AS n FROM dossier_states WHERE dossier_id IN (SELECT 'G18' UNION SELECT 'G19')"),
        0
    );
    assert_eq!(n(&analyst_x, "SELECT count(*) AS n FROM quarantine"), 0);
    assert_eq!(n(&admin, "SELECT count(*) AS n FROM quarantine"), 1);
    // the daily rollup is scoped like the facts: only Hồng Bàng's rows
    assert_eq!(
        n(
            &analyst_x,
            "SELECT count(*) AS n FROM daily_rollup WHERE commune_code IS DISTINCT FROM '11311'"
        ),
        0
    );
    assert!(n(&analyst_x, "SELECT count(*) AS n FROM daily_rollup") > 0);
    assert_eq!(
        n(
            &analyst_x,
            "SELECT count(*) AS n FROM open_states WHERE commune_code IS DISTINCT FROM '11311'"
        ),
        0
    );
    assert_eq!(
        n(
            &analyst_x,
            "SELECT count(*) AS n FROM dossier_sources WHERE dossier_id NOT IN \
             (SELECT dossier_id FROM dossier_facts)"
        ),
        0
    );
    assert!(
        n(&admin, "SELECT count(*) AS n FROM dossier_sources")
            > n(&analyst_x, "SELECT count(*) AS n FROM dossier_sources")
    );
    assert!(
        n(
            &admin,
            "SELECT count(*) AS n FROM daily_rollup WHERE commune_code IS DISTINCT FROM '11311'"
        ) > 0
    );
    let tables = sql_ok(
        port,
        &analyst_x,
        "SELECT array_to_string(array_agg(table_name ORDER BY table_name), ',') AS t \
         FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert_eq!(
        tables[0]["t"],
        "calendar,daily_rollup,discrepancies,dossier_facts,dossier_sources,dossier_states,dossiers,events,open_states,procedures,quarantine,territories",
        "the row limit (5) does not hide this: one row"
    );

    // writes, settings and file reads are refused
    for q in [
        "CREATE TABLE x AS SELECT 1",
        "INSERT INTO events SELECT * FROM events",
        "DELETE FROM events",
        "DROP TABLE events",
        "COPY (SELECT 1) TO '/tmp/giamsat-leak.csv'",
        "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'",
        "SET datafusion.execution.batch_size = 1",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "CREATE VIEW v AS SELECT 1",
        "SELEC 1",
    ] {
        let r = sql(port, &analyst_x, q);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        let msg = r.json()["error"].as_str().expect("error").to_string();
        assert!(
            !msg.contains(data.to_str().expect("p")),
            "no server paths: {msg}"
        );
    }
    assert!(!Path::new("/tmp/giamsat-leak.csv").exists());
    let r = request(
        port,
        "POST",
        "/api/v1/sql",
        Some(&analyst_x),
        Some("not json"),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // row limit and formats
    let r = sql(
        port,
        &admin,
        "SELECT dossier_id FROM dossier_facts ORDER BY 1",
    );
    assert_eq!(r.json().as_array().expect("rows").len(), 5);
    assert_eq!(r.header("x-giamsat-truncated"), Some("true"));
    let q = json!({"sql": "SELECT dossier_id, counted FROM dossier_facts WHERE dossier_id IN ('G01', 'G13') ORDER BY 1"}).to_string();
    let csv = request(
        port,
        "POST",
        "/api/v1/sql?format=csv",
        Some(&admin),
        Some(&q),
    );
    assert_eq!(csv.text(), "dossier_id,counted\nG01,true\nG13,false\n");
    assert_eq!(csv.header("x-giamsat-truncated"), Some("false"));
    let pq = request(
        port,
        "POST",
        "/api/v1/sql?format=parquet",
        Some(&admin),
        Some(&q),
    );
    assert_eq!(&pq.body[..4], b"PAR1");
    let ipc = request(
        port,
        "POST",
        "/api/v1/sql?format=arrow",
        Some(&admin),
        Some(&q),
    );
    assert_eq!(
        &ipc.body[..4],
        &[0xff, 0xff, 0xff, 0xff],
        "Arrow IPC stream"
    );
    assert_eq!(
        request(
            port,
            "POST",
            "/api/v1/sql?format=xml",
            Some(&admin),
            Some(&q)
        )
        .status,
        400
    );

    // XLSX: official headings, numbers as numbers, same values as JSON
    let x = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31&format=xlsx",
        Some(&admin),
        None,
    );
    assert_eq!(x.status, 200);
    let json_rows = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31",
        Some(&admin),
        None,
    )
    .json();
    check_xlsx(&x.body, &json_rows);

    // an expensive query is cut at the time limit while /healthz stays fast
    let heavy = std::thread::spawn(move || {
        let start = Instant::now();
        let r = sql(
            port,
            &analyst_x,
            "SELECT sum(value % 7) AS s FROM generate_series(1, 100000000000)",
        );
        (r.status, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(request(port, "GET", "/healthz", None, None).status, 200);
    let health = start.elapsed();
    let (status, took) = heavy.join().expect("thread");
    assert_eq!(status, 408);
    assert!(
        took < Duration::from_secs(10),
        "cut near the 1.5 s limit, took {took:?}"
    );
    assert!(
        health < Duration::from_millis(500),
        "/healthz took {health:?} during the heavy query"
    );
    assert_eq!(
        n(&admin, "SELECT count(*) AS n FROM dossier_facts"),
        33,
        "still serving after the cut"
    );
}

fn check_xlsx(bytes: &[u8], json_rows: &Value) {
    use calamine::{Data, Reader, Xlsx};
    let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    let range = wb.worksheet_range("Biểu 06").expect("sheet");
    let cell = |r: u32, c: u32| range.get_value((r, c)).cloned().unwrap_or(Data::Empty);
    let head: Vec<String> = (0..13).map(|c| cell(3, c).to_string()).collect();
    assert_eq!(head[2], "Tổng số nhận giải quyết");
    assert_eq!(head[3], "Mới tiếp nhận trực tuyến");
    assert_eq!(head[5], "Từ kỳ trước chuyển sang");
    assert_eq!(head[12], "Quá hạn");
    let rows = json_rows.as_array().expect("rows");
    for (i, r) in rows.iter().enumerate() {
        let row = 4 + i as u32;
        for (c, k) in giamsat_queries::bieu06::COLUMNS[2..].iter().enumerate() {
            match cell(row, 2 + c as u32) {
                Data::Float(f) => assert_eq!(f as i64, r[*k].as_i64().expect("n"), "row {i} {k}"),
                other => panic!("row {i} {k}: a number expected, got {other:?}"),
            }
        }
    }
    assert_eq!(cell(4 + rows.len() as u32 - 1, 1).to_string(), "Tổng cộng");
}

/// The report cache: a second identical request is a hit with the same body; another
/// territory never gets the first one's answer; an ingest token is still refused; a push
/// drops the cache so the next answer counts the new dossier.
#[test]
fn report_cache_per_scope_and_dropped_after_a_push() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path();
    let g = common::root().join("fixtures/golden");
    common::ingest_all(data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    let admin = cli(data, &["token", "add", "--role", "admin"]);
    let viewer = cli(
        data,
        &["token", "add", "--role", "viewer", "--commune", "11311"],
    );
    let ingest = cli(
        data,
        &["token", "add", "--role", "ingest", "--source", "hp-motcua"],
    );
    let (_s, port) = start_server(data, &[]);
    let url = "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31";
    let first = request(port, "GET", url, Some(&admin), None);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-giamsat-cache"), Some("miss"));
    let second = request(port, "GET", url, Some(&admin), None);
    assert_eq!(second.header("x-giamsat-cache"), Some("hit"));
    assert_eq!(second.body, first.body);
    assert!(second
        .header("content-type")
        .is_some_and(|c| c.contains("json")));
    // hand-computed January (tests/it/golden.rs): 11 online + 3 in person + 1 carried
    // over = 15 in all; Hồng Bàng 7 + 3 = 10
    assert_eq!(total(&first.json())[0], 15);
    let v = request(port, "GET", url, Some(&viewer), None);
    assert_eq!(v.header("x-giamsat-cache"), Some("miss"));
    assert_eq!(total(&v.json())[0], 10);
    assert_eq!(request(port, "GET", url, Some(&ingest), None).status, 403);
    assert_eq!(request(port, "GET", url, None, None).status, 401);
    // a new dossier received in January, pushed: the cache is dropped
    let push = request(
        port,
        "POST",
        "/api/v1/events?source=hp-motcua",
        Some(&admin),
        Some(concat!(
            r#"{"event_id":"C1-r","dossier_id":"C1","source":"hp-motcua","type":"received","at":"2026-01-06T09:00:00+07:00","procedure_code":"P1","agency_code":"A1","province_code":"31","commune_code":"11311","channel":"online"}"#,
            "\n"
        )),
    );
    assert_eq!(push.status, 200, "{}", push.text());
    let after = request(port, "GET", url, Some(&admin), None);
    assert_eq!(after.header("x-giamsat-cache"), Some("miss"));
    assert_eq!(total(&after.json())[..2], [16, 12]);
}
