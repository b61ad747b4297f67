//! Exported sheets through wide mapping profiles (CSV and XLSX): each shipped profile on
//! its sample gives the hand-computed Biểu 06 rows of `fixtures/sheets/expected.json`
//! (computed dossier by dossier in `fixtures/sheets/README.md`); resending adds nothing;
//! a changed row adds only its new events; an unreadable date quarantines its row with
//! the sheet's row number and cells; `profile check` writes nothing.

use std::path::Path;

use serde_json::Value;

use crate::common::{cli, root, run};

fn path(rel: &str) -> String {
    root().join(rel).to_str().expect("path").to_string()
}

fn ingest(data: &Path, profile: &str, file: &str) -> Value {
    let out = cli(
        data,
        &["ingest", "--format", "csv", "--profile", profile, file],
    );
    serde_json::from_str(out.lines().last().expect("line")).expect("json")
}

fn counts(v: &Value) -> (u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().expect("count");
    (n("accepted"), n("duplicates"), n("quarantined"))
}

/// Biểu 06 as CSV → rows of [group, the 11 numbers].
fn bieu06(data: &Path, from: &str, to: &str) -> Vec<Vec<String>> {
    let csv = cli(
        data,
        &[
            "report", "bieu06", "--from", from, "--to", to, "--format", "csv",
        ],
    );
    csv.lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            std::iter::once(cells[0].to_string())
                .chain(cells[cells.len() - 11..].iter().map(|c| c.to_string()))
                .collect()
        })
        .collect()
}

fn expected_rows(e: &Value) -> Vec<Vec<String>> {
    e["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|c| match c {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn shipped_profiles_give_hand_computed_bieu06() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/sheets/expected.json")).expect("read"),
    )
    .expect("json");
    for e in expected.as_array().expect("array") {
        let name = e["name"].as_str().expect("name");
        let tmp = tempfile::tempdir().expect("tmp");
        let data = tmp.path().join("data");
        let (profile, file) = (
            path(e["profile"].as_str().expect("profile")),
            path(e["file"].as_str().expect("file")),
        );
        let events = e["events"].as_u64().expect("events");
        let quarantined = e["quarantined"].as_u64().expect("quarantined");
        assert_eq!(
            counts(&ingest(&data, &profile, &file)),
            (events, 0, quarantined),
            "{name}: events of the good rows, bad rows"
        );
        let (from, to) = (
            e["from"].as_str().expect("from"),
            e["to"].as_str().expect("to"),
        );
        assert_eq!(bieu06(&data, from, to), expected_rows(e), "{name}");

        // the quarantined rows carry the sheet's row numbers and their cells
        let list = cli(&data, &["quarantine", "list"]);
        let file_name = Path::new(&file)
            .file_name()
            .and_then(|f| f.to_str())
            .expect("name");
        for row in e["quarantined_rows"].as_array().expect("rows") {
            let at = format!("{file_name}:{row}");
            assert!(list.contains(&at), "{name}: {at} in\n{list}");
        }

        // the same sheet again adds nothing
        assert_eq!(
            counts(&ingest(&data, &profile, &file)),
            (0, events, 0),
            "{name}: resent (its quarantined rows are not set aside twice)"
        );
        assert_eq!(
            cli(
                &data,
                &["sql", "SELECT count(*) FROM quarantine", "--format", "csv"]
            )
            .lines()
            .nth(1),
            Some(quarantined.to_string().as_str())
        );
        assert_eq!(bieu06(&data, from, to), expected_rows(e), "{name} resent");
    }
}

#[test]
fn a_changed_row_adds_only_its_new_events() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let profile = path("ingest/profiles/motcua-hotich-danhsach.toml");
    let file = path("fixtures/sheets/hotich_motcua_hp.csv");
    assert_eq!(counts(&ingest(&data, &profile, &file)), (28, 0, 0));
    // next month's export: row 7's documents came back (one new date), row 9 was
    // resolved and returned late (two new dates, and a status that adds nothing more)
    let text = std::fs::read_to_string(&file).expect("read");
    let changed = text
        .replace(
            "12/03/2026 14:00,10/03/2026 09:00,,,,Chờ bổ sung",
            "12/03/2026 14:00,10/03/2026 09:00,11/03/2026 08:00,,,Đang giải quyết",
        )
        .replace(
            "25/03/2026 09:00,,,,,Đang giải quyết",
            "25/03/2026 09:00,,,27/03/2026 10:00,27/03/2026 15:00,Đã trả kết quả",
        );
    assert_ne!(changed, text);
    assert_eq!(changed.lines().count(), text.lines().count());
    let next = tmp.path().join("hotich-thang-sau.csv");
    std::fs::write(&next, &changed).expect("write");
    assert_eq!(
        counts(&ingest(&data, &profile, next.to_str().expect("p"))),
        (3, 28, 0),
        "exactly the three new dates"
    );
    // by hand: row 9 ends 27/03 10:00 after its due 25/03 09:00 (late); row 7's round is
    // closed (10/03 09:00 → 11/03 08:00, 23 h), so it is judged at 01/04 00:00 − 23 h,
    // after its due 12/03 14:00 (overdue); in progress: rows 2 and 7 overdue, 11 and 12
    // in time
    let want: Vec<Vec<String>> = [
        ["HT", "11", "4", "5", "2", "7", "2", "2", "3", "4", "2", "2"],
        [
            "TOTAL", "11", "4", "5", "2", "7", "2", "2", "3", "4", "2", "2",
        ],
    ]
    .iter()
    .map(|r| r.iter().map(|c| c.to_string()).collect())
    .collect();
    assert_eq!(bieu06(&data, "2026-03-01", "2026-03-31"), want);
}

#[test]
fn workbook_cells_keep_codes_and_dates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    ingest(
        &data,
        &path("ingest/profiles/dkkd-hokinhdoanh-danhsach.toml"),
        &path("fixtures/sheets/hokinhdoanh_hn.xlsx"),
    );
    let codes = cli(
        &data,
        &[
            "sql",
            "SELECT DISTINCT province_code, commune_code FROM events ORDER BY commune_code",
            "--format",
            "csv",
        ],
    );
    assert!(
        codes.contains("01,00004") && codes.contains("01,00166"),
        "text codes keep their leading zeros:\n{codes}"
    );

    // the education sheet: row 11's date 31/02/2026 is quarantined with its cells, and
    // the rows around it land
    let data = tmp.path().join("gddt");
    let r = ingest(
        &data,
        &path("ingest/profiles/bgddt-vanbang.toml"),
        &path("fixtures/sheets/gddt_vanbang_th.xlsx"),
    );
    assert_eq!(r["quarantined"], 1, "{r}");
    let list = cli(&data, &["quarantine", "list"]);
    assert!(
        list.contains("gddt_vanbang_th.xlsx:11\tcột \"Ngày tiếp nhận\": ngày \"31/02/2026\""),
        "row number and reason:\n{list}"
    );
    let original = cli(
        &data,
        &[
            "sql",
            "SELECT CAST(original AS VARCHAR) AS o FROM quarantine WHERE line = 11",
            "--format",
            "json",
        ],
    );
    assert!(
        original.contains("G38.SGD-260311-0002,GDTH,Giáo dục trung học")
            && original.contains("31/02/2026,17/03/2026")
            && original.contains("STT,Mã hồ sơ"),
        "the header and the row's cells, replayable: {original}"
    );
    let n = cli(
        &data,
        &[
            "sql",
            "SELECT count(DISTINCT dossier_id) FROM events",
            "--format",
            "csv",
        ],
    );
    assert_eq!(n.lines().nth(1), Some("11"), "the other 11 rows landed");
}

#[test]
fn profile_check_is_a_dry_run_and_bad_profiles_name_their_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let out = cli(
        &data,
        &[
            "profile",
            "check",
            "--profile",
            &path("ingest/profiles/byt-hanhnghe.toml"),
            &path("fixtures/sheets/yte_hanhnghe_dn.xlsx"),
        ],
    );
    for want in [
        "Dòng tiêu đề: 8",
        "\"Tiếp nhận\" → sự kiện received",
        "\"Hẹn trả\" → due_at",
        "dòng 20: hàng tổng",
        "dòng 23: dưới hàng tổng",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    let out = cli(
        &data,
        &[
            "profile",
            "check",
            "--profile",
            &path("ingest/profiles/bgddt-vanbang.toml"),
            &path("fixtures/sheets/gddt_vanbang_th.xlsx"),
        ],
    );
    assert!(
        out.contains("Sẽ cách ly:") && out.contains("dòng 11: cột \"Ngày tiếp nhận\""),
        "{out}"
    );
    assert!(!data.join("tables").exists(), "a dry run writes nothing");

    // a profile naming an unknown field: the error names the TOML line
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "source = \"bo-yte\"\n\n[columns]\n\"Mã hồ sơ\" = \"dossier_id\"\n\"Hẹn trả\" = \"han_tra\"\n\n[events]\n\"Tiếp nhận\" = \"received\"\n",
    )
    .expect("write");
    let out = run(
        &data,
        &[
            "profile",
            "check",
            "--profile",
            bad.to_str().expect("p"),
            &path("fixtures/sheets/yte_hanhnghe_dn.xlsx"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dòng 5") && err.contains("han_tra"), "{err}");
    // an event type that does not exist, in the inline-table form
    std::fs::write(
        &bad,
        "source = \"bo-yte\"\n[columns]\n\"Mã hồ sơ\" = \"dossier_id\"\n[events]\n\"Tiếp nhận\" = { type = \"nhan\" }\n",
    )
    .expect("write");
    let out = run(
        &data,
        &[
            "ingest",
            "--format",
            "xlsx",
            "--profile",
            bad.to_str().expect("p"),
            &path("fixtures/sheets/yte_hanhnghe_dn.xlsx"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dòng 5") && err.contains("nhan"), "{err}");
    assert!(!data.join("tables").exists(), "nothing written");
}
