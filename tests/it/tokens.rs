//! Token life: `token list`, `token revoke` (by label or id) and `--expires`, seen by a
//! running server within seconds, through the API and the dashboard's sign-in call.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, cli, request, start_server, BIN};

/// Poll `/api/v1/me` with `token` until it answers `want`; the time it took.
fn until_status(port: u16, token: &str, want: u16, limit: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let r = request(port, "GET", "/api/v1/me", Some(token), None);
        if r.status == want {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "still {} after {:?}: {}",
            r.status,
            t.elapsed(),
            r.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn list(data: &std::path::Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&cli(data, &["token", "list", "--format", "json"]))
        .expect("json")
        .as_array()
        .expect("rows")
        .clone()
}

/// A data directory with the golden fixture.
fn golden() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    (dir, data)
}

#[test]
fn revoked_and_expired_tokens_are_refused_by_a_running_server() {
    let (_dir, data) = golden();
    let admin = cli(
        &data,
        &["token", "add", "--role", "admin", "--label", "quản trị"],
    );
    let viewer = cli(
        &data,
        &[
            "token",
            "add",
            "--role",
            "viewer",
            "--commune",
            "11311",
            "--label",
            "Hồng Bàng",
        ],
    );
    let analyst = cli(
        &data,
        &["token", "add", "--role", "analyst", "--label", "phân tích"],
    );
    // an expiry already past, or unreadable, is refused at once (exit 2)
    for bad in ["2020-01-01", "mai"] {
        let out = std::process::Command::new(BIN)
            .arg("--data")
            .arg(&data)
            .args(["token", "add", "--role", "viewer", "--expires", bad])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "--expires {bad}");
    }
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(4)).to_rfc3339();
    let short = cli(
        &data,
        &[
            "token",
            "add",
            "--role",
            "viewer",
            "--expires",
            &soon,
            "--label",
            "tạm",
        ],
    );
    // the list: ids, roles, labels, statuses, never a token or its hash
    let rows = list(&data);
    assert_eq!(rows.len(), 4);
    let listing = cli(&data, &["token", "list"]);
    for t in [&admin, &viewer, &analyst, &short] {
        assert!(!listing.contains(t.as_str()));
        let h = giamsat_api::auth::hash_token(t);
        assert!(!listing.contains(&h) && !rows.iter().any(|r| r.to_string().contains(&h)));
    }
    assert!(rows.iter().all(|r| r["status"] == "active"));
    assert_eq!(rows[1]["communes"][0], "11311");

    let (_server, port) = start_server(&data, &[]);
    for t in [&admin, &viewer, &analyst, &short] {
        assert_eq!(
            request(port, "GET", "/api/v1/me", Some(t), None).status,
            200
        );
    }
    // revoked by label while the server runs: refused within 3 s; the others still work
    let out = cli(&data, &["token", "revoke", "Hồng Bàng"]);
    assert!(out.contains(rows[1]["id"].as_str().expect("id")), "{out}");
    let took = until_status(port, &viewer, 401, Duration::from_secs(3));
    let r = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31",
        Some(&viewer),
        None,
    );
    assert_eq!(r.status, 401);
    assert!(r.text().contains("thu hồi"), "{}", r.text());
    assert_eq!(
        request(port, "GET", "/api/v1/me", Some(&admin), None).status,
        200
    );
    // revoked by id: SQL is refused too
    let id = rows[2]["id"].as_str().expect("id").to_string();
    cli(&data, &["token", "revoke", &id]);
    until_status(port, &analyst, 401, Duration::from_secs(3));
    let r = request(
        port,
        "POST",
        "/api/v1/sql",
        Some(&analyst),
        Some(r#"{"sql":"SELECT 1"}"#),
    );
    assert_eq!(r.status, 401);
    // revoking again is an error (exit 2), and the list says who is revoked
    let out = std::process::Command::new(BIN)
        .arg("--data")
        .arg(&data)
        .args(["token", "revoke", &id])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    // the short-lived token expires on its own
    until_status(port, &short, 401, Duration::from_secs(10));
    let r = request(port, "GET", "/api/v1/me", Some(&short), None);
    assert!(r.text().contains("hết hạn"), "{}", r.text());
    let statuses: Vec<String> = list(&data)
        .iter()
        .map(|r| r["status"].as_str().expect("status").to_string())
        .collect();
    assert_eq!(statuses, ["active", "revoked", "revoked", "expired"]);
    assert!(took < Duration::from_secs(3));
}

/// Rows of `access_log` as an admin sees them through `POST /api/v1/sql`.
fn access_rows(port: u16, admin: &str, sql: &str) -> Vec<Value> {
    let r = request(
        port,
        "POST",
        "/api/v1/sql",
        Some(admin),
        Some(&serde_json::json!({ "sql": sql }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().cloned().expect("rows")
}

#[test]
fn the_access_log_records_a_scoped_analysts_sql_and_only_admins_read_it() {
    let (_dir, data) = golden();
    let admin = cli(
        &data,
        &["token", "add", "--role", "admin", "--label", "quản trị"],
    );
    let analyst = cli(
        &data,
        &[
            "token",
            "add",
            "--role",
            "analyst",
            "--commune",
            "11311",
            "--label",
            "phân tích xã",
        ],
    );
    let (_server, port) = start_server(&data, &[]);
    // the scoped analyst's query: the rows it got back, counted independently
    let sql = "SELECT dossier_id FROM dossiers ORDER BY dossier_id";
    let r = request(
        port,
        "POST",
        "/api/v1/sql",
        Some(&analyst),
        Some(&serde_json::json!({ "sql": sql }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let got = r.json().as_array().expect("rows").len() as i64;
    assert!(got > 0);
    // a report and an unknown token are logged too
    let r = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31",
        Some(&analyst),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        request(port, "GET", "/api/v1/me", Some("gs_not_a_token"), None).status,
        401
    );
    // the analyst cannot read the log, whatever the query
    for q in [
        "SELECT * FROM access_log",
        "SELECT count(*) FROM giamsat.public.access_log",
    ] {
        let r = request(
            port,
            "POST",
            "/api/v1/sql",
            Some(&analyst),
            Some(&serde_json::json!({ "sql": q }).to_string()),
        );
        assert_eq!(r.status, 400, "{q}: {}", r.text());
    }
    // the writer commits within about a second: wait for the rows
    let t = Instant::now();
    let rows = loop {
        let rows = access_rows(
            port,
            &admin,
            "SELECT label, role, scope, method, target, sql, \"rows\", status, token_id \
             FROM access_log ORDER BY at",
        );
        if rows.len() >= 5 || t.elapsed() > Duration::from_secs(10) {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mine = rows
        .iter()
        .find(|r| r["sql"] == sql)
        .unwrap_or_else(|| panic!("the analyst's SQL in {rows:#?}"));
    assert_eq!(mine["label"], "phân tích xã");
    assert_eq!(mine["role"], "analyst");
    assert_eq!(mine["scope"], "xã 11311");
    assert_eq!(mine["rows"], got);
    assert_eq!(mine["status"], 200);
    assert_eq!(mine["target"], "/api/v1/sql");
    let ids: Vec<Value> = list(&data).iter().map(|r| r["id"].clone()).collect();
    assert_eq!(mine["token_id"], ids[1]);
    assert!(rows.iter().any(|r| r["target"]
        == "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31"
        && r["label"] == "phân tích xã"));
    assert!(rows
        .iter()
        .any(|r| r["target"] == "/api/v1/me" && r["status"] == 401 && r["label"].is_null()));
    // no token is ever written to the log
    let all = access_rows(port, &admin, "SELECT * FROM access_log")
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    assert!(!all.contains(&analyst) && !all.contains(&admin) && !all.contains("gs_not_a_token"));
    // the CLI, which reads the data directory, sees the same table
    let n: Value = serde_json::from_str(&cli(
        &data,
        &[
            "sql",
            "--format",
            "json",
            "SELECT count(*) AS n FROM access_log WHERE sql IS NOT NULL",
        ],
    ))
    .expect("json");
    // (one JSON object per row)
    assert!(n["n"].as_i64().expect("n") >= 1, "{n}");
    access_log_exports(&data, port, &admin, sql, got);
}

/// The access log exported like any report: a job of the CLI writes today's rows (in
/// Asia/Ho_Chi_Minh) to a file; the runs are listed and served to admins only.
fn access_log_exports(data: &std::path::Path, port: u16, admin: &str, sql: &str, got: i64) {
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive();
    let before = access_rows(
        port,
        admin,
        &format!(
            "SELECT count(*) AS n FROM access_log WHERE at >= TIMESTAMP '{today}T00:00:00+07:00'"
        ),
    )[0]["n"]
        .as_i64()
        .expect("n");
    std::fs::write(
        data.join("config.toml"),
        "[[export]]\nname = \"nhat-ky\"\nreport = \"access-log\"\nschedule = \"0 6 * * *\"\n\
         period = \"previous_day\"\nformat = \"json\"\n",
    )
    .expect("config");
    let run: Value = serde_json::from_str(&cli(
        data,
        &[
            "export",
            "run",
            "nhat-ky",
            "--period",
            &format!("{today}..{today}"),
        ],
    ))
    .expect("run");
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["report"], "access-log");
    let file = data
        .join("exports/nhat-ky")
        .join(run["object_key"].as_str().expect("key"));
    let rows: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&file).expect("file")).expect("json rows");
    assert!(rows.len() as i64 >= before, "{} < {before}", rows.len());
    let mine = rows
        .iter()
        .find(|r| r["sql"] == sql)
        .unwrap_or_else(|| panic!("the analyst's SQL in {rows:#?}"));
    assert_eq!(mine["rows"], got);
    assert_eq!(mine["label"], "phân tích xã");
    // in time order
    let times: Vec<&str> = rows.iter().filter_map(|r| r["at"].as_str()).collect();
    assert_eq!(times.len(), rows.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    // a scope on such a job is refused
    std::fs::write(
        data.join("config.toml"),
        "[[export]]\nname = \"nhat-ky\"\nreport = \"access-log\"\nschedule = \"0 6 * * *\"\n\
         period = \"previous_day\"\nprovince = \"31\"\n",
    )
    .expect("config");
    let out = std::process::Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["export", "list"])
        .output()
        .expect("list");
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_file(data.join("config.toml")).expect("rm config");
    // the server lists and serves the run to admins only (an unrestricted analyst too
    // is refused)
    let whole = cli(data, &["token", "add", "--role", "analyst"]);
    let id = run["run_id"].as_str().expect("run id");
    let listed = |token: &str| {
        let r = request(port, "GET", "/api/v1/exports", Some(token), None);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .any(|r| r["run_id"] == id)
    };
    // the server re-reads tokens.toml within about a second
    std::thread::sleep(Duration::from_millis(1500));
    assert!(listed(admin));
    assert!(!listed(&whole));
    let path = format!("/api/v1/exports/{id}/file");
    let r = request(port, "GET", &path, Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, std::fs::read(&file).expect("file"));
    assert_eq!(request(port, "GET", &path, Some(&whole), None).status, 404);
}

#[test]
fn failed_sign_ins_are_limited_per_address() {
    let (_dir, data) = golden();
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let cfg = data.parent().expect("parent").join("server.toml");
    std::fs::write(&cfg, "[auth]\nfailed_per_minute = 5\n").expect("cfg");
    let (_server, port) = start_server(&data, &["--config", cfg.to_str().expect("p")]);
    // five guesses are answered 401 (no token counts as a failure too)
    for i in 0..5 {
        let token = format!("gs_guess_{i}");
        let r = request(
            port,
            "GET",
            "/api/v1/me",
            (i > 0).then_some(token.as_str()),
            None,
        );
        assert_eq!(r.status, 401, "guess {i}: {}", r.text());
    }
    // the sixth, and any other without a valid token, waits
    for path in [
        "/api/v1/me",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-01-31",
    ] {
        let r = request(port, "GET", path, Some("gs_guess_6"), None);
        assert_eq!(r.status, 429, "{path}: {}", r.text());
        let wait: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(r.json()["error"].is_string());
    }
    // a valid token from the same address still works
    assert_eq!(
        request(port, "GET", "/api/v1/me", Some(&admin), None).status,
        200
    );
    assert_eq!(request(port, "GET", "/healthz", None, None).status, 200);
}
