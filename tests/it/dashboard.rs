//! The dashboard in a real browser (issue #7): playwright-core (npm, `dashboards/e2e/`)
//! drives Debian's chromium against the real binary on a random port with generated data.
//! `dashboards/e2e/dashboard.mjs` checks every number on screen against the API; this test
//! then reads the downloaded XLSX back and compares it cell by cell with the report
//! endpoint. Screenshots stay in `target/dashboard-e2e/<mode>/`.
//!
//! Needs `node` and `npm` (the test runs `npm ci` in `dashboards/e2e` when its packages
//! are missing) and `/usr/bin/chromium`; `.ci/run`
//! installs them. Set `GIAMSAT_SKIP_BROWSER=1` to skip on a machine without them (the test
//! then says so loudly instead of passing silently).

use std::path::Path;
use std::process::Command;

use calamine::{open_workbook, Data, Reader, Xlsx};
use serde_json::Value;

use crate::common::{self, cli, request, start_server};

const FROM: &str = "2026-01-01";
const TO: &str = "2026-03-31";

fn browser_available() -> Result<(), String> {
    let e2e = common::root().join("dashboards/e2e");
    if !e2e.join("node_modules/playwright-core").exists() {
        // a fresh clone: install the locked npm packages (the registry is all it needs)
        let installed = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&e2e)
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !e2e.join("node_modules/playwright-core").exists() {
            return Err(format!("npm ci failed in {}", e2e.display()));
        }
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} not found (apt-get install chromium)"));
    }
    Ok(())
}

fn run_browser(port: u16, token: &str, out: &Path, mode: &str, commune: &str, outside: &str) {
    let e2e = common::root().join("dashboards/e2e");
    let res = Command::new("node")
        .current_dir(&e2e)
        .arg("dashboard.mjs")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(token)
        .arg(out)
        .args([FROM, TO, mode, commune, outside])
        .output()
        .expect("node");
    assert!(
        res.status.success(),
        "browser run {mode} failed:\n{}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The XLSX rows under the heading row, as (group label, eleven numbers).
fn xlsx_rows(path: &Path) -> Vec<(String, Vec<f64>)> {
    let mut wb: Xlsx<_> = open_workbook(path).expect("xlsx");
    let range = wb.worksheet_range("Biểu 06").expect("sheet");
    range
        .rows()
        .skip(giamsat_api::xlsx::HEADER_ROW as usize + 1)
        .map(|r| {
            let label = match &r[1] {
                Data::String(s) => s.clone(),
                other => other.to_string(),
            };
            let nums = r[2..13]
                .iter()
                .map(|c| match c {
                    Data::Float(f) => *f,
                    Data::Int(i) => *i as f64,
                    other => panic!("not a number: {other:?}"),
                })
                .collect();
            (label, nums)
        })
        .collect()
}

#[test]
fn dashboard_in_a_real_browser() {
    if let Err(why) = browser_available() {
        if std::env::var("GIAMSAT_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("SKIPPED dashboard browser test: {why}");
            return;
        }
        panic!("browser test cannot run: {why} (GIAMSAT_SKIP_BROWSER=1 to skip)");
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let gen = tmp.path().join("gen");
    let data = tmp.path().join("data");
    cli(
        &data,
        &[
            "generate",
            "--out",
            gen.to_str().expect("p"),
            "--dossiers",
            "3000",
            "--seed",
            "7",
        ],
    );
    let mut files: Vec<_> = std::fs::read_dir(&gen)
        .expect("gen")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    files.sort();
    cli(
        &data,
        &[
            "ingest",
            "--format",
            "procedures",
            gen.join("procedures.csv").to_str().expect("p"),
        ],
    );
    for f in &files {
        let fmt = if f
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("dvcqg"))
        {
            "dvcqg"
        } else {
            "canonical"
        };
        let mut args = vec!["ingest", "--format", fmt];
        if fmt == "dvcqg" {
            args.extend(["--source", "dvcqg"]);
        }
        args.push(f.to_str().expect("p"));
        cli(&data, &args);
    }
    // the busiest commune of the period, for the drill-down and the scoped token (tokens
    // are read when the server starts, so they are made first)
    let report: Value = serde_json::from_str(&cli(
        &data,
        &[
            "report",
            "on-time",
            "--from",
            FROM,
            "--to",
            TO,
            "--group-by",
            "commune",
        ],
    ))
    .expect("json");
    let busiest = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["group"] != "TOTAL" && r["group"] != "")
        .max_by_key(|r| r["total"].as_i64().unwrap_or(0))
        .and_then(|r| r["group"].as_str())
        .expect("a commune")
        .to_string();
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let viewer = cli(
        &data,
        &["token", "add", "--role", "viewer", "--commune", &busiest],
    );
    // an export job run once by hand, for the dashboard's list of exported reports
    std::fs::write(
        data.join("config.toml"),
        "[[export]]\nname = \"bieu06-quy\"\nreport = \"bieu06\"\nschedule = \"0 7 16 3,6,9,12 *\"\nperiod = \"previous_official_quarter\"\n",
    )
    .expect("config");
    cli(
        &data,
        &["export", "run", "bieu06-quy", "--period", "2026-Q1"],
    );
    let (_server, port) = start_server(&data, &[]);
    // a dossier of another commune: the commune viewer must not find it
    let all = request(
        port,
        "GET",
        &format!(
            "/api/v1/reports/bieu06/dossiers?from={FROM}&to={TO}&group_by=commune&column=total&limit=10000"
        ),
        Some(&admin),
        None,
    );
    assert_eq!(all.status, 200, "{}", all.text());
    let outside = all.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|d| d["commune_code"] != busiest.as_str())
        .and_then(|d| d["dossier_id"].as_str())
        .expect("a dossier outside the busiest commune")
        .to_string();

    let out = common::root().join("target/dashboard-e2e");
    for (mode, token) in [("admin", &admin), ("commune", &viewer)] {
        let dir = out.join(mode);
        let _ = std::fs::remove_dir_all(&dir);
        run_browser(port, token, &dir, mode, &busiest, &outside);
        assert!(
            std::fs::read_dir(&dir)
                .expect("out")
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .count()
                >= 3,
            "screenshots of {mode}"
        );

        // the downloaded XLSX, cell by cell, equals the report endpoint for the same token
        let api = request(
            port,
            "GET",
            &format!("/api/v1/reports/bieu06?from={FROM}&to={TO}&group_by=field"),
            Some(token),
            None,
        );
        let api: Vec<Value> = api.json().as_array().cloned().expect("rows");
        let xlsx = xlsx_rows(&dir.join("bieu06.xlsx"));
        assert_eq!(xlsx.len(), api.len(), "{mode}: rows");
        for ((label, nums), row) in xlsx.iter().zip(&api) {
            let expected_label = if row["group"] == "TOTAL" {
                "Tổng cộng"
            } else {
                row["group_name"].as_str().expect("name")
            };
            assert_eq!(label, expected_label, "{mode}");
            let expected: Vec<f64> = giamsat_queries::bieu06::COLUMNS[2..]
                .iter()
                .map(|k| row[*k].as_f64().expect("n"))
                .collect();
            assert_eq!(nums, &expected, "{mode}: {label}");
        }
        // the form downloaded as PDF carries the same TOTAL line
        let total = api.last().expect("TOTAL");
        let line: Vec<String> = giamsat_queries::bieu06::COLUMNS[2..]
            .iter()
            .map(|k| giamsat_api::form::vi_int(total[*k].as_i64().expect("n")))
            .collect();
        let out = std::process::Command::new("pdftotext")
            .arg("-raw")
            .arg(dir.join("bieu06.pdf"))
            .arg("-")
            .output()
            .expect("pdftotext (Debian's poppler-utils; .ci/run installs it)");
        let text = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let want = format!("TỔNG CỘNG {}", line.join(" "));
        assert!(text.contains(&want), "{mode}: {want:?} in {text}");
    }
}
