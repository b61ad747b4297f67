//! End-to-end: the real `giamsat` binary, generate → ingest → report, re-ingest, bad
//! input, SQL, and the HTTP server on a random port answering the same numbers.

use std::process::Output;

use serde_json::Value;

use crate::common::{http, run, start_server};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf8")
}

fn bad_input(out: &Output, mention: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(mention), "{err} should mention {mention}");
}

fn json_line(s: &str) -> Value {
    serde_json::from_str(s.trim()).expect("json line")
}

#[test]
fn generate_ingest_report_reingest_and_serve() {
    let tmp = tempfile::tempdir().expect("tmp");
    let gen = tmp.path().join("gen");
    let data = tmp.path().join("data");
    let g = json_line(&ok(&run(
        &data,
        &[
            "generate",
            "--out",
            gen.to_str().expect("p"),
            "--dossiers",
            "800",
            "--seed",
            "3",
        ],
    )));
    assert!(g["lines"].as_u64().expect("lines") > 3000, "{g}");

    let procs = gen.join("procedures.csv");
    let events = gen.join("events.ndjson");
    let c = json_line(&ok(&run(
        &data,
        &[
            "ingest",
            "--format",
            "procedures",
            procs.to_str().expect("p"),
        ],
    )));
    assert_eq!(c["accepted"], 21);

    let first = json_line(&ok(&run(&data, &["ingest", events.to_str().expect("p")])));
    let accepted = first["accepted"].as_u64().expect("n");
    assert!(accepted > 3000, "{first}");
    assert!(
        first["duplicates"].as_u64().expect("d") > 0,
        "the generator delivers duplicates: {first}"
    );
    assert!(
        first["quarantined"].as_u64().expect("q") > 0,
        "the generator writes malformed lines: {first}"
    );
    assert_eq!(
        accepted
            + first["duplicates"].as_u64().expect("d")
            + first["quarantined"].as_u64().expect("q"),
        g["lines"].as_u64().expect("lines"),
        "every line is accepted, a duplicate or quarantined"
    );

    // the same file again adds nothing
    let again = json_line(&ok(&run(&data, &["ingest", events.to_str().expect("p")])));
    assert_eq!(again["accepted"], 0, "{again}");
    assert_eq!(
        again["duplicates"].as_u64().expect("d"),
        accepted + first["duplicates"].as_u64().expect("d")
    );

    // quarantine keeps reason and bytes
    let q = ok(&run(&data, &["sql", "SELECT count(*) AS n, min(length(reason)) AS r, min(length(encode(original, 'hex'))) AS o FROM quarantine", "--format", "json"]));
    let q = json_line(q.lines().next().expect("row"));
    assert_eq!(
        q["n"].as_u64().expect("n"),
        first["quarantined"].as_u64().expect("q"),
        "the file's checksum is its idempotency key: a re-run quarantines nothing again"
    );
    assert_eq!(again["quarantined"], 0, "{again}");
    assert!(
        q["r"].as_u64().expect("r") > 0 && q["o"].as_u64().expect("o") > 0,
        "{q}"
    );

    // the report: docs/contract.md §4 header, identities, TOTAL last
    let csv = ok(&run(
        &data,
        &[
            "report",
            "bieu06",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--format",
            "csv",
        ],
    ));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("group,group_name,total,received_online,received_offline,carried_over,ended,ended_early,ended_on_day,ended_late,in_progress,in_progress_in_time,in_progress_overdue")
    );
    let json: Value = serde_json::from_str(&ok(&run(
        &data,
        &[
            "report",
            "bieu06",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--format",
            "json",
        ],
    )))
    .expect("json");
    let rows = json.as_array().expect("array");
    assert_eq!(rows.last().expect("total")["group"], "TOTAL");
    assert_eq!(
        rows.len(),
        csv.lines().count() - 1,
        "CSV and JSON have the same rows"
    );
    let total = rows.last().expect("total");
    let n = |k: &str| total[k].as_i64().expect(k);
    assert!(n("total") > 100);
    assert_eq!(n("total"), n("ended") + n("in_progress"));
    assert_eq!(
        n("total"),
        n("received_online") + n("received_offline") + n("carried_over")
    );
    assert!(
        n("received_online") * 10 > n("total") * 8,
        "mostly online: {total}"
    );

    // XLSX to a file (numbers as numbers, TOTAL labelled)
    let x = tmp.path().join("b06.xlsx");
    ok(&run(
        &data,
        &[
            "report",
            "bieu06",
            "--from",
            "2026-01-01",
            "--to",
            "2026-06-30",
            "--format",
            "xlsx",
            "-o",
            x.to_str().expect("p"),
        ],
    ));
    {
        use calamine::{Data, Reader, Xlsx};
        let mut wb: Xlsx<_> = calamine::open_workbook(&x).expect("xlsx");
        let sheet = wb.worksheet_range("Biểu 06").expect("sheet");
        let last = 4 + rows.len() as u32 - 1;
        assert_eq!(
            sheet.get_value((last, 1)),
            Some(&Data::String("Tổng cộng".into()))
        );
        assert_eq!(
            sheet.get_value((last, 2)),
            Some(&Data::Float(n("total") as f64))
        );
    }
    bad_input(
        &run(
            &data,
            &[
                "report",
                "bieu06",
                "--from",
                "2026-01-01",
                "--to",
                "2026-06-30",
                "--format",
                "xlsx",
            ],
        ),
        "-o",
    );

    // bad input: exit 2, one line
    bad_input(
        &run(
            &data,
            &[
                "report",
                "bieu06",
                "--from",
                "2026-03-01",
                "--to",
                "2026-01-01",
            ],
        ),
        "from",
    );
    bad_input(
        &run(
            &data,
            &[
                "report",
                "bieu06",
                "--from",
                "2026-01-01",
                "--to",
                "2026-01-31",
                "--group-by",
                "x",
            ],
        ),
        "group_by",
    );
    bad_input(
        &run(
            &data,
            &[
                "report",
                "bieu06",
                "--from",
                "01/01/2026",
                "--to",
                "2026-01-31",
            ],
        ),
        "YYYY-MM-DD",
    );
    bad_input(
        &run(
            &data,
            &[
                "ingest",
                tmp.path().join("missing.ndjson").to_str().expect("p"),
            ],
        ),
        "missing.ndjson",
    );
    bad_input(&run(&data, &["sql", "DROP TABLE events"]), "SQL");
    bad_input(&run(&data, &["sql", "SELEC 1"]), "SQL");

    // SQL over the tables
    let s = ok(&run(
        &data,
        &[
            "sql",
            "SELECT count(*) AS n FROM dossiers WHERE counted",
            "--format",
            "csv",
        ],
    ));
    assert!(
        s.lines()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .expect("count")
            > 700
    );

    // HTTP: same numbers as the CLI
    let (server, port) = start_server(&data, &["--token", "bi-mat"]);
    assert_eq!(http(port, "/healthz", None).0, 200);
    let q = "/api/v1/reports/bieu06?from=2026-01-01&to=2026-06-30";
    let (status, body) = http(port, q, None);
    assert_eq!(status, 401, "{body}");
    assert!(json_line(&body)["error"].is_string());
    assert_eq!(http(port, q, Some("sai")).0, 401);
    let (status, body) = http(port, q, Some("bi-mat"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json,
        "HTTP equals CLI"
    );
    let (status, body) = http(port, &format!("{q}&format=csv"), Some("bi-mat"));
    assert_eq!((status, body.as_str()), (200, csv.as_str()));
    let (status, body) = http(
        port,
        "/api/v1/reports/bieu06?from=2026-02-30&to=2026-06-30",
        Some("bi-mat"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(json_line(&body)["error"]
        .as_str()
        .expect("error")
        .contains("from"));
    let (status, page) = http(port, "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("Biểu 06"));
    drop(server);
}

#[test]
fn dvcqg_and_csv_formats_through_the_cli_with_quarantine_replay() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let root = crate::common::root();
    let f = |p: &str| root.join(p).to_str().expect("p").to_string();
    let ingest = |args: &[&str]| json_line(&ok(&run(&data, args)));
    let counts = |v: &Value| {
        (
            v["accepted"].as_u64(),
            v["duplicates"].as_u64(),
            v["quarantined"].as_u64(),
        )
    };

    // dvcqg: envelope (5 + 3 events, 3 repeats inside the records), bare progress array,
    // and one record per line with a resend, a bad date and a refused dossier
    let env = ingest(&[
        "ingest",
        "--format",
        "dvcqg",
        &f("fixtures/dvcqg/dongbo_envelope.json"),
    ]);
    assert_eq!(counts(&env), (Some(8), Some(3), Some(0)), "{env}");
    let prog = ingest(&[
        "ingest",
        "--format",
        "dvcqg",
        &f("fixtures/dvcqg/tiendo_array.json"),
    ]);
    assert_eq!(counts(&prog), (Some(2), Some(0), Some(0)), "{prog}");
    let lines = ingest(&[
        "ingest",
        "--format",
        "dvcqg",
        &f("fixtures/dvcqg/records.ndjson"),
    ]);
    assert_eq!(counts(&lines), (Some(6), Some(6), Some(1)), "{lines}");
    let s = ok(&run(
        &data,
        &[
            "sql",
            "SELECT count(*) AS n FROM events WHERE source = 'dvcqg'",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(s.lines().nth(1), Some("16"));
    // resending everything adds nothing
    let again = ingest(&[
        "ingest",
        "--format",
        "dvcqg",
        &f("fixtures/dvcqg/records.ndjson"),
    ]);
    assert_eq!(again["accepted"], 0);

    // csv with profiles
    let hotich = ingest(&[
        "ingest",
        "--format",
        "csv",
        "--profile",
        &f("ingest/profiles/bo-tuphap-hotich.toml"),
        &f("fixtures/csv/hotich.csv"),
    ]);
    assert_eq!(
        counts(&hotich),
        (Some(8), Some(0), Some(2)),
        "unknown status and 31/02: {hotich}"
    );
    let hkd = ingest(&[
        "ingest",
        "--format",
        "csv",
        "--profile",
        &f("ingest/profiles/dkkd-hokinhdoanh.toml"),
        &f("fixtures/csv/hokinhdoanh.csv"),
    ]);
    assert_eq!(counts(&hkd), (Some(5), Some(0), Some(1)), "{hkd}");
    let paid = ok(&run(
        &data,
        &[
            "sql",
            "SELECT count(*) AS n FROM events WHERE source = 'bo-dkkd' AND paid_online",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(paid.lines().nth(1), Some("3"), "1 and có are true");

    // a bad profile is refused before any data is read
    let bad_profile = tmp.path().join("bad.toml");
    std::fs::write(
        &bad_profile,
        "date_format = \"%d/%m/%Y\"\n[columns]\n\"Số hồ sơ\" = \"dossier_number\"\n",
    )
    .expect("w");
    let fresh = tmp.path().join("fresh");
    bad_input(
        &run(
            &fresh,
            &[
                "ingest",
                "--format",
                "csv",
                "--profile",
                bad_profile.to_str().expect("p"),
                &f("fixtures/csv/hotich.csv"),
            ],
        ),
        "dossier_number",
    );
    assert!(!fresh.join("tables/events").exists(), "nothing written");
    bad_input(
        &run(
            &data,
            &["ingest", "--format", "csv", &f("fixtures/csv/hotich.csv")],
        ),
        "--profile",
    );

    // quarantine: list, then replay after fixing the profile
    let list = ok(&run(
        &data,
        &["quarantine", "list", "--source", "bo-tuphap"],
    ));
    assert_eq!(list.lines().count(), 3, "header + 2 records:\n{list}");
    assert!(list.contains("Đã chuyển cấp trên") && list.contains("31/02/2026"));
    let fixed = tmp.path().join("fixed.toml");
    let profile = std::fs::read_to_string(root.join("ingest/profiles/bo-tuphap-hotich.toml"))
        .expect("profile");
    std::fs::write(
        &fixed,
        profile.replace(
            "[channel]",
            "\"Đã chuyển cấp trên\" = \"transferred\"\n\n[channel]",
        ),
    )
    .expect("w");
    let r = json_line(&ok(&run(
        &data,
        &[
            "quarantine",
            "replay",
            "--format",
            "csv",
            "--profile",
            fixed.to_str().expect("p"),
            "--source",
            "bo-tuphap",
        ],
    )));
    assert_eq!(
        (
            r["replayed"].as_u64(),
            r["accepted"].as_u64(),
            r["still_quarantined"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{r}"
    );
    let list = ok(&run(
        &data,
        &["quarantine", "list", "--source", "bo-tuphap"],
    ));
    assert_eq!(list.lines().count(), 2, "only 31/02 is left:\n{list}");
}
