//! Reports in the official form: Biểu 06 and the Decision 766 summary as XLSX (read back
//! cell by cell: units, form number, period, merged two-level headings, column numbers,
//! TOTAL, signature block, print setup) and as PDF (text extracted with Debian's
//! `pdftotext`: every heading with its diacritics and the TOTAL line), from the CLI, the
//! API and scheduled exports; a re-run export is byte-identical.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use calamine::{Data, Reader, Xlsx};
use chrono::{DateTime, Utc};
use serde_json::Value;

use giamsat_api::exports::{Exporter, ExportsConfig};
use giamsat_api::form::{BIEU06_GROUPS, BIEU06_SUBHEADINGS, BIEU06_TITLE, INDEX766_TITLE};
use giamsat_api::reports::ReportEnv;
use giamsat_warehouse::store::Warehouse;

use crate::common::{self, cli, request, start_server};

/// The official first quarter of 2026 (15/12/2025–14/3/2026) of the golden fixture, by
/// hand (tests/it/golden.rs): received 24 (online 17, in person 7, carried over 0), ended
/// 22 (early 9, on the day 7, late 6), in progress 2 (in time 1, overdue 1).
const OQ1_TOTAL: [i64; 11] = [24, 17, 7, 0, 22, 9, 7, 6, 2, 1, 1];

const REPORT: &str = r#"
[report]
unit_name = "UBND thành phố Hải Phòng"
receiving_unit = "Văn phòng Chính phủ"
signer = "Nguyễn Văn Ký"
signer_title = "KT. CHỦ TỊCH"
preparer = "Trần Thị Lập"
place = "Hải Phòng"
"#;

/// A warehouse with the golden fixture and a `[report]` section.
fn golden_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let g = common::root().join("fixtures/golden");
    common::ingest_all(&data, &g.join("procedures.csv"), &[g.join("events.ndjson")]);
    std::fs::write(data.join("config.toml"), REPORT).expect("config");
    (dir, data)
}

/// `pdftotext -raw`: the text of a PDF in content order, pages ended by form feeds.
fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f.pdf");
    std::fs::write(&p, pdf).expect("write");
    let out = Command::new("pdftotext")
        .arg("-raw")
        .arg(&p)
        .arg("-")
        .output()
        .unwrap_or_else(|e| {
            panic!("pdftotext is needed (Debian's poppler-utils; .ci/run installs it): {e}")
        });
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8(out.stdout).expect("utf8")
}

/// The text, whitespace collapsed (a heading wrapped over several lines of its cell
/// reads as one phrase).
fn pdf_text(pdf: &[u8]) -> String {
    pdftotext(pdf)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The number of pages.
fn pdf_pages(pdf: &[u8]) -> usize {
    pdftotext(pdf).matches('\u{c}').count()
}

fn cell_text(v: Option<&Data>) -> String {
    match v {
        Some(Data::String(s)) => s.clone(),
        Some(Data::Float(f)) => f.to_string(),
        Some(Data::Int(i)) => i.to_string(),
        Some(Data::Empty) | None => String::new(),
        Some(other) => format!("{other:?}"),
    }
}

fn number(v: Option<&Data>) -> f64 {
    match v {
        Some(Data::Float(f)) => *f,
        Some(Data::Int(i)) => *i as f64,
        other => panic!("not a number: {other:?}"),
    }
}

/// A workbook's sheet as cells by absolute position, its merged regions, and the raw
/// XML of the sheet and the workbook (for the print setup).
struct Sheet {
    range: calamine::Range<Data>,
    merged: Vec<((u32, u32), (u32, u32))>,
    sheet_xml: String,
    workbook_xml: String,
}

impl Sheet {
    fn open(xlsx: &[u8], name: &str) -> Sheet {
        let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(xlsx.to_vec())).expect("xlsx");
        let merged = wb
            .merge_cells_by_sheet_name(name)
            .expect("merged")
            .iter()
            .map(|d| (d.start, d.end))
            .collect();
        let range = wb.worksheet_range(name).expect("sheet");
        let mut zip = zip::ZipArchive::new(Cursor::new(xlsx.to_vec())).expect("zip");
        let mut read = |path: &str| {
            let mut s = String::new();
            zip.by_name(path)
                .expect(path)
                .read_to_string(&mut s)
                .expect("read");
            s
        };
        Sheet {
            sheet_xml: read("xl/worksheets/sheet1.xml"),
            workbook_xml: read("xl/workbook.xml"),
            range,
            merged,
        }
    }

    fn at(&self, r: u32, c: u32) -> String {
        cell_text(self.range.get_value((r, c)))
    }

    fn num(&self, r: u32, c: u32) -> f64 {
        number(self.range.get_value((r, c)))
    }

    fn is_merged(&self, from: (u32, u32), to: (u32, u32)) -> bool {
        self.merged.contains(&(from, to))
    }

    /// The first row at or below `from` whose cell `c` is `text`.
    fn find(&self, from: u32, c: u32, text: &str) -> Option<u32> {
        (from..=self.range.end().map(|e| e.0).unwrap_or(0)).find(|r| self.at(*r, c) == text)
    }

    /// The print setup the form asks for: A4 landscape, one page wide, heading rows
    /// (7–9 in Excel's numbering) repeated on every page.
    fn assert_print_setup(&self) {
        for needle in [
            "paperSize=\"9\"",
            "orientation=\"landscape\"",
            "fitToHeight=\"0\"",
        ] {
            assert!(self.sheet_xml.contains(needle), "{needle} in the sheet");
        }
        assert!(self.sheet_xml.contains("fitToPage=\"1\""), "fit to page");
        assert!(
            self.workbook_xml.contains("_xlnm.Print_Titles") && self.workbook_xml.contains("$7:$9"),
            "repeated heading rows: {}",
            self.workbook_xml
        );
    }
}

fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&cli(data, args)).expect("json")
}

fn bieu06_rows(data: &Path, from: &str, to: &str, group_by: &str) -> Vec<Value> {
    json(
        data,
        &[
            "report",
            "bieu06",
            "--from",
            from,
            "--to",
            to,
            "--group-by",
            group_by,
            "--format",
            "json",
        ],
    )
    .as_array()
    .expect("rows")
    .clone()
}

fn counts(row: &Value) -> Vec<i64> {
    giamsat_queries::bieu06::COLUMNS[2..]
        .iter()
        .map(|k| row[*k].as_i64().unwrap_or_else(|| panic!("{k} in {row}")))
        .collect()
}

fn vi(v: i64) -> String {
    giamsat_api::form::vi_int(v)
}

/// Biểu 06 of the official first quarter in a form format, written to `out`.
fn official_q1_form(data: &Path, group_by: &str, format: &str, out: &Path) {
    cli(
        data,
        &[
            "report",
            "bieu06",
            "--from",
            "2025-12-15",
            "--to",
            "2026-03-14",
            "--group-by",
            group_by,
            "--format",
            format,
            "-o",
            out.to_str().expect("path"),
        ],
    );
}

#[test]
fn bieu06_form_xlsx_has_the_official_layout_and_the_report_numbers() {
    let (_dir, data) = golden_dir();
    let out = data.parent().expect("parent").join("b06.xlsx");
    for (group_by, label) in [
        ("field", "Lĩnh vực giải quyết"),
        ("commune", "Xã, phường, đặc khu"),
    ] {
        official_q1_form(&data, group_by, "form-xlsx", &out);
        let s = Sheet::open(&std::fs::read(&out).expect("read"), "Biểu 06");
        // units on the left, form and circular on the right, title and period centred
        assert_eq!(s.at(0, 0), "Đơn vị báo cáo: UBND thành phố Hải Phòng");
        assert_eq!(s.at(1, 0), "Đơn vị nhận báo cáo: Văn phòng Chính phủ");
        assert_eq!(s.at(0, 9), "Biểu số 06a/VPCP/KSTT");
        assert!(s.at(1, 9).contains("01/2020/TT-VPCP"), "{}", s.at(1, 9));
        assert_eq!(s.at(3, 0), BIEU06_TITLE);
        assert!(s.is_merged((3, 0), (3, 12)));
        assert_eq!(
            s.at(4, 0),
            "Kỳ báo cáo: từ ngày 15/12/2025 đến ngày 14/03/2026"
        );
        // two heading rows: STT and the grouping over both, three groups over their columns
        assert_eq!(
            (s.at(6, 0), s.at(6, 1)),
            ("STT".to_string(), label.to_string())
        );
        assert!(s.is_merged((6, 0), (7, 0)) && s.is_merged((6, 1), (7, 1)));
        for (text, first, span) in BIEU06_GROUPS {
            let c = 1 + u32::from(first);
            assert_eq!(s.at(6, c), text);
            assert!(
                s.is_merged((6, c), (6, c + u32::from(span) - 1)),
                "{text} over {span} columns: {:?}",
                s.merged
            );
        }
        for (i, h) in BIEU06_SUBHEADINGS.iter().enumerate() {
            assert_eq!(s.at(7, 2 + i as u32), *h);
        }
        // the column numbers (A), (B), (1)…(11)
        let numbers: Vec<String> = (0..13).map(|c| s.at(8, c)).collect();
        let mut expected = vec!["(A)".to_string(), "(B)".to_string()];
        expected.extend((1..=11).map(|i| format!("({i})")));
        assert_eq!(numbers, expected);
        // the rows: numbered, in the report's order, numbers as numbers equal to the report
        let rows = bieu06_rows(&data, "2025-12-15", "2026-03-14", group_by);
        for (i, row) in rows.iter().enumerate() {
            let r = 9 + i as u32;
            let total = row["group"] == "TOTAL";
            if total {
                assert_eq!(
                    (s.at(r, 0), s.at(r, 1)),
                    (String::new(), "TỔNG CỘNG".into())
                );
            } else {
                assert_eq!(s.at(r, 0), (i + 1).to_string());
            }
            let got: Vec<i64> = (2..13).map(|c| s.num(r, c) as i64).collect();
            assert_eq!(got, counts(row), "row {i}: {row}");
            if total {
                assert_eq!(got, OQ1_TOTAL, "TOTAL by hand");
            }
        }
        // place and date, the two titles, the sign notes, the names
        let after = 9 + rows.len() as u32;
        let place = (after..after + 3)
            .find(|r| s.at(*r, 6).starts_with("Hải Phòng, ngày "))
            .expect("place and date");
        assert_eq!(s.at(place + 1, 0), "NGƯỜI LẬP BIỂU");
        assert_eq!(s.at(place + 1, 6), "KT. CHỦ TỊCH");
        assert_eq!(s.at(place + 2, 0), "(Ký, ghi rõ họ tên)");
        assert_eq!(s.at(place + 2, 6), "(Ký tên, đóng dấu)");
        let names = s.find(place + 3, 6, "Nguyễn Văn Ký").expect("signer");
        assert_eq!(s.at(names, 0), "Trần Thị Lập");
        s.assert_print_setup();
    }
}

#[test]
fn pdf_forms_carry_every_heading_and_the_numbers() {
    let (_dir, data) = golden_dir();
    let out = data.parent().expect("parent").join("b06.pdf");
    official_q1_form(&data, "field", "pdf", &out);
    let pdf = std::fs::read(&out).expect("read");
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for needle in [
        "Đơn vị báo cáo: UBND thành phố Hải Phòng",
        "Đơn vị nhận báo cáo: Văn phòng Chính phủ",
        "Biểu số 06a/VPCP/KSTT",
        BIEU06_TITLE,
        "Kỳ báo cáo: từ ngày 15/12/2025 đến ngày 14/03/2026",
        "STT",
        "Lĩnh vực giải quyết",
        "NGƯỜI LẬP BIỂU",
        "KT. CHỦ TỊCH",
        "(Ký, ghi rõ họ tên)",
        "(Ký tên, đóng dấu)",
        "Nguyễn Văn Ký",
        "Trần Thị Lập",
        "Hải Phòng, ngày",
    ]
    .into_iter()
    .chain(BIEU06_GROUPS.iter().map(|g| g.0))
    .chain(BIEU06_SUBHEADINGS)
    {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let numbers: Vec<String> = (1..=11).map(|i| format!("({i})")).collect();
    assert!(
        text.contains(&format!("(A) (B) {}", numbers.join(" "))),
        "{text}"
    );
    // every row with its numbers, and TOTAL as computed by hand
    let rows = bieu06_rows(&data, "2025-12-15", "2026-03-14", "field");
    for (i, row) in rows.iter().enumerate() {
        let nums: Vec<String> = counts(row).into_iter().map(vi).collect();
        let line = if row["group"] == "TOTAL" {
            format!("TỔNG CỘNG {}", nums.join(" "))
        } else {
            format!(
                "{} {} {}",
                i + 1,
                row["group_name"].as_str().expect("name"),
                nums.join(" ")
            )
        };
        assert!(text.contains(&line), "{line:?} in {text}");
    }
    let total: Vec<String> = OQ1_TOTAL.iter().map(|v| vi(*v)).collect();
    assert!(text.contains(&format!("TỔNG CỘNG {}", total.join(" "))));
    assert_eq!(pdf_pages(&pdf), 1);

    // the 766 summary: six groups I…VI with their points, every criterion, total points
    let out = data.parent().expect("parent").join("766.pdf");
    cli(
        &data,
        &[
            "report",
            "766",
            "--period",
            "2026-Q1",
            "--format",
            "pdf",
            "-o",
            out.to_str().expect("p"),
        ],
    );
    let text = pdf_text(&std::fs::read(&out).expect("read"));
    let ix = json(
        &data,
        &["report", "766", "--period", "2026-Q1", "--format", "json"],
    );
    assert!(text.contains(INDEX766_TITLE), "{text}");
    assert!(text.contains("766/QĐ-TTg"));
    assert!(text.contains("Kỳ đánh giá: 2026-Q1 (từ ngày 15/12/2025 đến ngày 14/03/2026)"));
    let roman = ["I", "II", "III", "IV", "V", "VI"];
    let groups = ix["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 6);
    for (g, r) in groups.iter().zip(roman) {
        let line = format!(
            "{r} {} {}",
            g["name"].as_str().expect("name"),
            giamsat_api::form::vi_dec(g["max"].as_f64().expect("max"))
        );
        assert!(text.contains(&line), "{line:?} in {text}");
        for (i, c) in g["criteria"]
            .as_array()
            .expect("criteria")
            .iter()
            .enumerate()
        {
            let line = format!(
                "{}.{} {} {}",
                g["group"],
                i + 1,
                c["name"].as_str().expect("name"),
                giamsat_api::form::vi_dec(c["max"].as_f64().expect("max"))
            );
            assert!(text.contains(&line), "{line:?}");
            let tail = format!(
                "{} {}",
                vi(c["denominator"].as_i64().expect("d")),
                match c["rate"].as_f64() {
                    Some(r) => format!(
                        "{}% {}",
                        giamsat_api::form::vi_dec(r * 100.0),
                        giamsat_api::form::vi_dec(c["points"].as_f64().expect("p"))
                    ),
                    None => giamsat_api::form::vi_dec(c["points"].as_f64().expect("p")),
                }
            );
            assert!(text.contains(&tail), "{tail:?} for {}", c["key"]);
        }
    }
    let total = format!(
        "TỔNG ĐIỂM 100,00 {}",
        giamsat_api::form::vi_dec(ix["total"].as_f64().expect("total"))
    );
    assert!(text.contains(&total), "{total:?} in {text}");

    // through the API: the same form, as PDF and XLSX, under its content types
    let admin = cli(&data, &["token", "add", "--role", "admin"]);
    let (_server, port) = start_server(&data, &[]);
    let r = request(
        port,
        "GET",
        "/api/v1/reports/bieu06?from=2025-12-15&to=2026-03-14&format=pdf",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    assert!(pdf_text(&r.body).contains(&format!("TỔNG CỘNG {}", total_line())));
    let r = request(
        port,
        "GET",
        "/api/v1/indicators/766?period=2026-Q1&format=form-xlsx",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let s = Sheet::open(&r.body, "Chỉ số 766");
    assert_eq!(s.at(3, 0), INDEX766_TITLE);
    let total_row = s.find(9, 1, "TỔNG ĐIỂM").expect("total row");
    assert!((s.num(total_row, 7) - ix["total"].as_f64().expect("t")).abs() < 1e-9);
    assert_eq!(s.at(9, 0), "I");
    s.assert_print_setup();
    let r = request(
        port,
        "GET",
        "/api/v1/indicators/on-time?period=2026-Q1&format=pdf",
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

fn total_line() -> String {
    OQ1_TOTAL
        .iter()
        .map(|v| vi(*v))
        .collect::<Vec<_>>()
        .join(" ")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_form_exports_rerun_byte_for_byte() {
    let (_dir, data) = golden_dir();
    let config = r#"
[[export]]
name = "bieu06-mau"
report = "bieu06"
format = "pdf"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"

[[export]]
name = "chi-so-766-mau"
report = "766"
format = "form-xlsx"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"
"#;
    assert!(ExportsConfig::from_toml(
        "[[export]]\nname = \"x\"\nreport = \"on-time\"\nformat = \"pdf\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"\n"
    )
    .is_err());
    let wh = Warehouse::open(&data).expect("open");
    let env = ReportEnv::for_warehouse(&wh).expect("env");
    let ex = Exporter::new(
        Arc::new(wh),
        env,
        Arc::new(giamsat_queries::RuntimeEnv::default()),
        ExportsConfig::from_toml(config).expect("config"),
    )
    .expect("exporter");
    assert!(ex
        .tick(t("2026-03-01T00:00:00Z"))
        .await
        .expect("tick")
        .is_empty());
    let runs = ex.tick(t("2026-03-20T03:00:00Z")).await.expect("tick");
    assert_eq!(runs.len(), 2, "{runs:#?}");
    for run in &runs {
        assert_eq!(run.status, "ok", "{run:#?}");
        let f = ex.file(run).await.expect("file");
        let (again_run, again, same) = ex.rerun(&run.run_id).await.expect("rerun");
        assert!(same, "{} re-run differs", run.job);
        assert_eq!(again, f.body);
        assert_eq!(again_run.sha256, run.sha256);
        if run.job == "bieu06-mau" {
            assert_eq!(f.content_type, "application/pdf");
            assert!(run
                .object_key
                .as_deref()
                .is_some_and(|k| k.ends_with(".pdf")));
            let text = pdf_text(&f.body);
            assert!(
                text.contains(&format!("TỔNG CỘNG {}", total_line())),
                "{text}"
            );
            // the report date is the day the run was made (its pinned instant: the
            // catch-up at 10:00 on 20/3 in Vietnam, not the missed slot of 16/3)
            assert!(
                text.contains("Hải Phòng, ngày 20 tháng 03 năm 2026"),
                "{text}"
            );
        } else {
            let s = Sheet::open(&f.body, "Chỉ số 766");
            assert_eq!(s.at(0, 0), "Đơn vị báo cáo: UBND thành phố Hải Phòng");
        }
    }
}
