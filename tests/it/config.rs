//! One configuration loader, one error taxonomy: a misspelt key in any configuration file
//! is refused with the file and the line (never a silent default), and every error reply
//! says its kind (an encoding failure is ours, 500; a bad parameter the caller's, 400).

use std::process::{Command, Stdio};

use crate::common;

const TOKEN: &str = "config-test-admin-token-000000000000";

/// The golden fixture in a fresh data directory.
fn golden() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(
        tmp.path(),
        &g.join("procedures.csv"),
        &[g.join("events.ndjson")],
    );
    tmp
}

#[test]
fn a_misspelt_key_of_the_data_directory_config_is_refused_with_its_line() {
    let tmp = golden();
    let data = tmp.path();
    let bieu06 = [
        "report",
        "bieu06",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
    ];
    // a key of a section, misspelt (`subtract_pause` for `subtract_pauses`) on line 3
    std::fs::write(
        data.join("config.toml"),
        "# rules\n[rules]\nsubtract_pause = false\n",
    )
    .expect("write");
    let out = common::run(data, &bieu06);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("config.toml, dòng 3") && err.contains("subtract_pause"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // a section that does not exist (`[rule]`), on line 2
    std::fs::write(
        data.join("config.toml"),
        "\n[rule]\nsubtract_pauses = false\n",
    )
    .expect("w");
    let out = common::run(data, &bieu06);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("config.toml, dòng 2") && err.contains("rule"),
        "{err}"
    );
    // spelt right, the same key is taken: pauses counted in the time taken change
    // nothing for January's Biểu 06 of the fixture but the run succeeds
    std::fs::write(
        data.join("config.toml"),
        "[rules]\nsubtract_pauses = false\n",
    )
    .expect("w");
    let out = common::run(data, &bieu06);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `giamsat serve --config F` with `text` in F: its exit code and stderr.
fn serve_with(data: &std::path::Path, text: &str) -> (Option<i32>, String, String) {
    let f = data.join("server.toml");
    std::fs::write(&f, text).expect("write");
    let out = Command::new(common::BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--port", "0", "--token", TOKEN, "--config"])
        .arg(&f)
        .stdin(Stdio::null())
        .output()
        .expect("serve");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        f.display().to_string(),
    )
}

#[test]
fn a_misspelt_key_of_the_server_config_is_refused_with_its_file_and_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path();
    // `[cache] ttl_second` (for `ttl_seconds`), line 2
    let (code, err, file) = serve_with(data, "[cache]\nttl_second = 5\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{file}, dòng 2")) && err.contains("ttl_second"),
        "{err}"
    );
    // `[sql]` mixes its own keys with the statement limits: a misspelt one (`max_row`)
    // is refused too, line 4
    let (code, err, file) = serve_with(
        data,
        "[sql]\ntimeout_seconds = 5\nmax_depth = 64\nmax_row = 10\n",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{file}, dòng 4")) && err.contains("max_row"),
        "{err}"
    );
    // an unknown section, line 1
    let (code, err, _) = serve_with(data, "[caches]\nttl_seconds = 5\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("dòng 1") && err.contains("caches"), "{err}");
}

#[test]
fn a_well_spelt_server_config_is_taken() {
    let tmp = golden();
    let f = tmp.path().join("server.toml");
    // every key spelt right: the server starts (and its row limit applies)
    std::fs::write(
        &f,
        "[sql]\nmax_rows = 2\nmax_depth = 64\n[cache]\nttl_seconds = 5\n[auth]\nfailed_per_minute = 10\n",
    )
    .expect("write");
    let config = f.to_str().expect("path");
    let (server, port) = common::start_server(tmp.path(), &["--token", TOKEN, "--config", config]);
    let r = common::request(
        port,
        "POST",
        "/api/v1/sql",
        Some(TOKEN),
        Some(r#"{"sql": "SELECT dossier_id FROM dossiers"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().map(Vec::len), Some(2), "{}", r.text());
    assert_eq!(r.header("x-giamsat-truncated"), Some("true"));
    drop(server);
}

#[test]
fn every_error_reply_says_its_kind() {
    let tmp = golden();
    let data = tmp.path();
    let (_server, port) = common::start_server(data, &["--token", TOKEN]);
    // the caller's fault: a bad parameter is 400, kind bad_input
    let r = common::request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31&group_by=planet",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("x-giamsat-error-kind"), Some("bad_input"));
    assert!(r.json()["error"].is_string());
    // ours: a result CSV cannot hold (a list column) is an encoding failure, 500, kind
    // internal, and its cause stays in the log
    let r = common::request(
        port,
        "POST",
        "/api/v1/sql?format=csv",
        Some(TOKEN),
        Some(r#"{"sql": "SELECT make_array(1, 2) AS l"}"#),
    );
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.header("x-giamsat-error-kind"), Some("internal"));
    assert!(!r.text().contains("List"), "{}", r.text());
    // not found and no token say theirs
    let r = common::request(port, "GET", "/api/v1/dossiers/NOPE", Some(TOKEN), None);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.header("x-giamsat-error-kind"), Some("not_found"));
    let r = common::request(port, "GET", "/api/v1/me", None, None);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("x-giamsat-error-kind"), Some("unauthorized"));
    // the same kinds make the exit codes: the caller's fault 2, ours 1
    let out = common::run(
        data,
        &["report", "bieu06", "--from", "2026-01-01", "--to", "x"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = common::run(
        data,
        &["sql", "--format", "csv", "SELECT make_array(1, 2) AS l"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
