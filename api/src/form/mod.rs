//! Reports in the official form: the layout a reporting officer signs and sends upward
//! (form number and circular, reporting and receiving units, title and period, two-level
//! headings with the column numbers under them, the rows, the place and date, and the
//! signature block), built once as a [`Form`] and rendered as XLSX ([`xlsx`]) or PDF
//! ([`pdf`]). The layout and its sources are described in `docs/official-forms.md`.

pub mod pdf;
pub mod xlsx;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;

use giamsat_queries::bieu06::{GroupBy, Params, Row};
use giamsat_queries::index766::Index;
use giamsat_queries::period::Period;
use giamsat_queries::QueryError;

/// `[report]` of the data directory's `config.toml`: who reports to whom, and who signs.
/// Every key is optional; the form and circular lines can be changed when a circular
/// replaces the one in force.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormConfig {
    /// The reporting unit (đơn vị báo cáo), e.g. "UBND tỉnh Gia Lai".
    pub unit_name: String,
    /// The receiving unit (đơn vị nhận báo cáo), e.g. "Văn phòng Chính phủ".
    pub receiving_unit: String,
    /// The head of the unit who signs (printed under the signature space).
    pub signer: String,
    /// The signer's title, printed above the signature space.
    pub signer_title: String,
    /// Who prepared the report (người lập biểu); may be empty.
    pub preparer: String,
    /// Place written before the report date ("Gia Lai, ngày … tháng … năm …").
    pub place: String,
    /// The Biểu 06 form's number as the circular prints it.
    pub bieu06_form: String,
    /// The line naming the circular Biểu 06 belongs to.
    pub circular: String,
    /// The Decision 766 summary's heading line.
    pub index766_form: String,
    /// The line naming the decision the 766 summary follows.
    pub index766_source: String,
}

impl Default for FormConfig {
    fn default() -> Self {
        FormConfig {
            unit_name: String::new(),
            receiving_unit: String::new(),
            signer: String::new(),
            signer_title: "THỦ TRƯỞNG ĐƠN VỊ".into(),
            preparer: String::new(),
            place: String::new(),
            bieu06_form: "Biểu số 06a/VPCP/KSTT".into(),
            circular: "Ban hành kèm theo Thông tư số 01/2020/TT-VPCP".into(),
            index766_form: "Bộ chỉ số phục vụ người dân, doanh nghiệp".into(),
            index766_source: "Theo Quyết định số 766/QĐ-TTg ngày 23/6/2022 của Thủ tướng Chính phủ"
                .into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileShape {
    report: Option<toml::Value>,
}

impl FormConfig {
    /// `[report]` of `<data>/config.toml`; defaults when the file or the section is absent.
    pub fn for_data_dir(data: &std::path::Path) -> Result<FormConfig, QueryError> {
        let p = data.join("config.toml");
        if !p.exists() {
            return Ok(FormConfig::default());
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| QueryError::BadInput(format!("không đọc được config.toml: {e}")))?;
        FormConfig::from_toml(&text)
    }

    /// The `[report]` section of a configuration file's text; an unknown key is an error.
    pub fn from_toml(text: &str) -> Result<FormConfig, QueryError> {
        let f: FileShape = giamsat_warehouse::config::parse_toml("config.toml", text)
            .map_err(|e| QueryError::BadInput(e.to_string()))?;
        match f.report {
            None => Ok(FormConfig::default()),
            Some(v) => v
                .try_into()
                .map_err(|e| QueryError::BadInput(format!("config.toml [report]: {e}"))),
        }
    }
}

/// One cell of a form's table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A count (written as a number, thousands separated by ".").
    Int(i64),
    /// Points, two decimals.
    Points(f64),
    /// A ratio shown as a percentage with two decimals; empty when there is none.
    Percent(Option<f64>),
}

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

/// One column of the table: its number as printed under the headings, its relative
/// width, and its alignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub number: String,
    pub width: f64,
    pub align: Align,
}

/// One heading cell: `row` 0 (top) or 1; a cell of row 0 with `rows` = 2 spans both.
#[derive(Debug, Clone, PartialEq)]
pub struct Heading {
    pub row: u8,
    pub col: u16,
    pub rows: u8,
    pub cols: u16,
    pub text: String,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub cells: Vec<Cell>,
    pub bold: bool,
}

/// A titled group of lines (a unit of a grouped 766 summary starts a new page in PDF).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub caption: Option<String>,
    pub lines: Vec<Line>,
}

/// A report laid out as its official form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// Sheet name / PDF title.
    pub name: String,
    pub form_number: String,
    pub circular: String,
    pub unit_name: String,
    pub receiving_unit: String,
    pub title: String,
    pub period_line: String,
    pub unit_note: String,
    pub headings: Vec<Heading>,
    pub columns: Vec<Column>,
    pub sections: Vec<Section>,
    /// "Gia Lai, ngày 05 tháng 12 năm 2026".
    pub place_date: String,
    pub preparer_title: String,
    pub preparer: String,
    pub signer_title: String,
    pub signer: String,
    /// Creation instant written into the file's properties (the export's pinned instant).
    pub created: DateTime<Utc>,
}

const SIGN_NOTE: &str = "(Ký, ghi rõ họ tên)";
const SEAL_NOTE: &str = "(Ký tên, đóng dấu)";

/// The sign notes printed under the two signature titles.
pub fn sign_notes() -> (&'static str, &'static str) {
    (SIGN_NOTE, SEAL_NOTE)
}

fn local_date(created: DateTime<Utc>) -> NaiveDate {
    created
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive()
}

/// "Gia Lai, ngày 05 tháng 12 năm 2026" (without the place when none is configured).
fn place_date(cfg: &FormConfig, created: DateTime<Utc>) -> String {
    let d = local_date(created);
    let date = format!(
        "ngày {:02} tháng {:02} năm {}",
        d.day(),
        d.month(),
        d.year()
    );
    if cfg.place.is_empty() {
        date[..1].to_uppercase() + &date[1..]
    } else {
        format!("{}, {date}", cfg.place)
    }
}

fn instant(created: Option<i64>) -> DateTime<Utc> {
    created
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .unwrap_or_else(Utc::now)
}

fn blank_or(s: &str, dots: &str) -> String {
    if s.is_empty() {
        dots.to_string()
    } else {
        s.to_string()
    }
}

fn base(cfg: &FormConfig, created: Option<i64>) -> Form {
    let created = instant(created);
    Form {
        name: String::new(),
        form_number: String::new(),
        circular: cfg.circular.clone(),
        unit_name: format!("Đơn vị báo cáo: {}", blank_or(&cfg.unit_name, "……………")),
        receiving_unit: format!(
            "Đơn vị nhận báo cáo: {}",
            blank_or(&cfg.receiving_unit, "……………")
        ),
        title: String::new(),
        period_line: String::new(),
        unit_note: String::new(),
        headings: Vec::new(),
        columns: Vec::new(),
        sections: Vec::new(),
        place_date: place_date(cfg, created),
        preparer_title: "NGƯỜI LẬP BIỂU".into(),
        preparer: cfg.preparer.clone(),
        signer_title: cfg.signer_title.clone(),
        signer: cfg.signer.clone(),
        created,
    }
}

fn heading(row: u8, col: u16, rows: u8, cols: u16, text: &str) -> Heading {
    Heading {
        row,
        col,
        rows,
        cols,
        text: text.to_string(),
    }
}

/// The heading of the rows' label column for a Biểu 06 grouping.
fn group_heading(g: GroupBy) -> &'static str {
    match g {
        GroupBy::Field => "Lĩnh vực giải quyết",
        GroupBy::Agency => "Cơ quan, đơn vị giải quyết",
        GroupBy::Commune => "Xã, phường, đặc khu",
        GroupBy::Procedure => "Thủ tục hành chính",
        GroupBy::Province => "Tỉnh, thành phố",
        GroupBy::ProcedureLevel => "Mức độ dịch vụ công",
        GroupBy::Channel => "Kênh tiếp nhận",
        GroupBy::Source => "Hệ thống báo cáo",
        GroupBy::NonTerritorial => "Phi địa giới hành chính",
    }
}

/// The second-level headings of Biểu 06's eleven columns, in order.
pub const BIEU06_SUBHEADINGS: [&str; 11] = [
    "Tổng số",
    "Trực tuyến",
    "Trực tiếp, dịch vụ bưu chính",
    "Từ kỳ trước chuyển sang",
    "Tổng số",
    "Trước hạn",
    "Đúng hạn",
    "Quá hạn",
    "Tổng số",
    "Trong hạn",
    "Quá hạn",
];

/// The first-level headings of Biểu 06: text, first column (1-based), span.
pub const BIEU06_GROUPS: [(&str, u16, u16); 3] = [
    ("Số hồ sơ nhận giải quyết", 1, 4),
    ("Số hồ sơ đã giải quyết", 5, 4),
    ("Số hồ sơ đang giải quyết", 9, 3),
];

/// The title of the Biểu 06 form.
pub const BIEU06_TITLE: &str = "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH";

/// Biểu 06 in its official form: columns A (STT), B (the grouping), then (1)…(11) under
/// three first-level headings; one numbered line per row and the TOTAL line last, bold.
pub fn bieu06(rows: &[Row], p: &Params, cfg: &FormConfig, created: Option<i64>) -> Form {
    let mut f = base(cfg, created);
    f.name = "Biểu 06".into();
    f.form_number = cfg.bieu06_form.clone();
    f.title = BIEU06_TITLE.into();
    f.period_line = format!(
        "Kỳ báo cáo: từ ngày {} đến ngày {}",
        p.from.format("%d/%m/%Y"),
        p.to.format("%d/%m/%Y")
    );
    f.unit_note = "Đơn vị tính: hồ sơ".into();
    f.headings.push(heading(0, 0, 2, 1, "STT"));
    f.headings
        .push(heading(0, 1, 2, 1, group_heading(p.group_by)));
    for (text, first, span) in BIEU06_GROUPS {
        f.headings.push(heading(0, 1 + first, 1, span, text));
    }
    for (i, h) in BIEU06_SUBHEADINGS.iter().enumerate() {
        f.headings.push(heading(1, 2 + i as u16, 1, 1, h));
    }
    f.columns.push(Column {
        number: "(A)".into(),
        width: 5.0,
        align: Align::Center,
    });
    f.columns.push(Column {
        number: "(B)".into(),
        width: 30.0,
        align: Align::Left,
    });
    for i in 1..=11 {
        f.columns.push(Column {
            number: format!("({i})"),
            width: 9.5,
            align: Align::Right,
        });
    }
    let mut lines = Vec::with_capacity(rows.len());
    let mut n = 0;
    for r in rows {
        let total = r.group == "TOTAL";
        let stt = if total {
            String::new()
        } else {
            n += 1;
            n.to_string()
        };
        let label = if total {
            "TỔNG CỘNG".to_string()
        } else if r.group_name.is_empty() || r.group_name == r.group {
            r.group.clone()
        } else {
            r.group_name.clone()
        };
        let mut cells = vec![Cell::Text(stt), Cell::Text(label)];
        cells.extend(r.counts().iter().map(|v| Cell::Int(*v)));
        lines.push(Line { cells, bold: total });
    }
    f.sections.push(Section {
        caption: None,
        lines,
    });
    f
}

const ROMAN: [&str; 6] = ["I", "II", "III", "IV", "V", "VI"];

/// The title of the Decision 766 summary.
pub const INDEX766_TITLE: &str =
    "KẾT QUẢ ĐÁNH GIÁ CHẤT LƯỢNG PHỤC VỤ NGƯỜI DÂN, DOANH NGHIỆP THEO QUYẾT ĐỊNH SỐ 766/QĐ-TTg";

/// The Decision 766 summary in the same form: per unit, the six groups (bold, numbered
/// I…VI) each followed by its criteria, then the total points.
pub fn index766(
    indices: &[Index],
    period: &Period,
    cfg: &FormConfig,
    created: Option<i64>,
) -> Form {
    let mut f = base(cfg, created);
    f.name = "Chỉ số 766".into();
    f.form_number = cfg.index766_form.clone();
    f.circular = cfg.index766_source.clone();
    f.title = INDEX766_TITLE.into();
    f.period_line = format!(
        "Kỳ đánh giá: {} (từ ngày {} đến ngày {})",
        period.label,
        period.from.format("%d/%m/%Y"),
        period.to.format("%d/%m/%Y")
    );
    f.unit_note = "Đơn vị tính: điểm, hồ sơ, %".into();
    f.headings.push(heading(0, 0, 2, 1, "STT"));
    f.headings
        .push(heading(0, 1, 2, 1, "Nhóm chỉ số, tiêu chí"));
    f.headings.push(heading(0, 2, 2, 1, "Điểm tối đa"));
    f.headings.push(heading(0, 3, 2, 1, "Chỉ tiêu"));
    f.headings.push(heading(0, 4, 1, 3, "Kết quả"));
    f.headings.push(heading(1, 4, 1, 1, "Tử số"));
    f.headings.push(heading(1, 5, 1, 1, "Mẫu số"));
    f.headings.push(heading(1, 6, 1, 1, "Tỷ lệ"));
    f.headings.push(heading(0, 7, 2, 1, "Điểm đạt"));
    let widths = [6.0, 52.0, 10.0, 10.0, 11.0, 11.0, 10.0, 10.0];
    for (i, w) in widths.iter().enumerate() {
        f.columns.push(Column {
            number: match i {
                0 => "(A)".into(),
                1 => "(B)".into(),
                _ => format!("({})", i - 1),
            },
            width: *w,
            align: match i {
                0 => Align::Center,
                1 => Align::Left,
                _ => Align::Right,
            },
        });
    }
    for ix in indices {
        let caption = (indices.len() > 1 || ix.unit != "TOTAL").then(|| {
            format!(
                "Đơn vị: {}",
                ix.unit_name.clone().unwrap_or_else(|| ix.unit.clone())
            )
        });
        let mut lines = Vec::new();
        for g in &ix.groups {
            let roman = ROMAN
                .get(usize::from(g.group).saturating_sub(1))
                .copied()
                .unwrap_or("");
            lines.push(Line {
                cells: vec![
                    Cell::Text(roman.to_string()),
                    Cell::Text(g.name.clone()),
                    Cell::Points(g.max),
                    Cell::Text(String::new()),
                    Cell::Text(String::new()),
                    Cell::Text(String::new()),
                    Cell::Text(String::new()),
                    Cell::Points(g.points),
                ],
                bold: true,
            });
            for (i, c) in g.criteria.iter().enumerate() {
                lines.push(Line {
                    cells: vec![
                        Cell::Text(format!("{}.{}", g.group, i + 1)),
                        Cell::Text(c.name.clone()),
                        Cell::Points(c.max),
                        Cell::Percent(Some(c.target)),
                        Cell::Int(c.numerator),
                        Cell::Int(c.denominator),
                        Cell::Percent(c.rate),
                        Cell::Points(c.points),
                    ],
                    bold: false,
                });
            }
        }
        lines.push(Line {
            cells: vec![
                Cell::Text(String::new()),
                Cell::Text("TỔNG ĐIỂM".into()),
                Cell::Points(100.0),
                Cell::Text(String::new()),
                Cell::Text(String::new()),
                Cell::Text(String::new()),
                Cell::Text(String::new()),
                Cell::Points(ix.total),
            ],
            bold: true,
        });
        f.sections.push(Section { caption, lines });
    }
    f
}

/// vi-VN integer: 12.345.
pub fn vi_int(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    if v < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// vi-VN decimal with two places: 1.234,50.
pub fn vi_dec(v: f64) -> String {
    let cents = (v * 100.0).round() as i64;
    let whole = vi_int(cents / 100);
    let frac = (cents % 100).unsigned_abs();
    let sign = if cents < 0 && cents / 100 == 0 {
        "-"
    } else {
        ""
    };
    format!("{sign}{whole},{frac:02}")
}

impl Cell {
    /// The cell as printed (vi-VN numbers).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(v) => vi_int(*v),
            Cell::Points(v) => vi_dec(*v),
            Cell::Percent(Some(v)) => format!("{}%", vi_dec(v * 100.0)),
            Cell::Percent(None) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vi_numbers() {
        assert_eq!(vi_int(0), "0");
        assert_eq!(vi_int(999), "999");
        assert_eq!(vi_int(1000), "1.000");
        assert_eq!(vi_int(1_234_567), "1.234.567");
        assert_eq!(vi_int(-1234), "-1.234");
        assert_eq!(vi_dec(1234.5), "1.234,50");
        assert_eq!(vi_dec(0.004), "0,00");
        assert_eq!(vi_dec(-0.5), "-0,50");
        assert_eq!(Cell::Percent(Some(0.9876)).text(), "98,76%");
    }

    #[test]
    fn report_section_is_optional_and_strict() {
        assert_eq!(
            FormConfig::from_toml("[rules]\ncompare = \"date\"\n").expect("no section"),
            FormConfig::default()
        );
        let c = FormConfig::from_toml(
            "[report]\nunit_name = \"UBND tỉnh Gia Lai\"\nplace = \"Gia Lai\"\n",
        )
        .expect("section");
        assert_eq!(c.unit_name, "UBND tỉnh Gia Lai");
        assert_eq!(c.signer_title, "THỦ TRƯỞNG ĐƠN VỊ");
        let e = FormConfig::from_toml("[report]\nunit_nme = \"x\"\n").expect_err("typo");
        assert!(e.to_string().contains("unit_nme"), "{e}");
    }

    #[test]
    fn place_and_date_are_local() {
        let cfg = FormConfig {
            place: "Gia Lai".into(),
            ..FormConfig::default()
        };
        // 2026-03-14 20:00 UTC is already the 15th in Vietnam
        let t = DateTime::<Utc>::from_timestamp(1_773_518_400, 0).expect("t");
        assert_eq!(place_date(&cfg, t), "Gia Lai, ngày 15 tháng 03 năm 2026");
        assert_eq!(
            place_date(&FormConfig::default(), t),
            "Ngày 15 tháng 03 năm 2026"
        );
    }
}
