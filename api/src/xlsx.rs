//! XLSX output (rust_xlsxwriter): official Vietnamese headings, numbers as numbers.

use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, XlsxError,
};

use giamsat_queries::bieu06::{Params, Row, HEADINGS_VI};

/// Title of the Biểu 06 sheet.
pub const TITLE: &str = "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH (Biểu 06)";
/// Row (0-based) of the column headings.
pub const HEADER_ROW: u32 = 3;

/// A workbook whose creation time is `created` (microseconds UTC) when given, so that
/// the same report at the same instant gives the same bytes; now otherwise.
fn workbook(created: Option<i64>) -> Workbook {
    let mut wb = Workbook::new();
    if let Some(t) = created.and_then(|us| ExcelDateTime::from_timestamp(us / 1_000_000).ok()) {
        wb.set_properties(&DocProperties::new().set_creation_datetime(&t));
    }
    wb
}

/// The cell formats of every sheet.
struct Styles {
    bold: Format,
    head: Format,
    text: Format,
    num: Format,
    pct: Format,
}

impl Styles {
    fn new() -> Styles {
        Styles {
            bold: Format::new().set_bold(),
            head: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_border(FormatBorder::Thin),
            text: Format::new().set_border(FormatBorder::Thin),
            num: Format::new()
                .set_num_format("#,##0")
                .set_border(FormatBorder::Thin),
            pct: Format::new()
                .set_num_format("0.00%")
                .set_border(FormatBorder::Thin),
        }
    }
}

/// A sheet with its title (row 0), the period line (row 1) and the headings
/// ([`HEADER_ROW`]).
fn sheet<'a>(
    wb: &'a mut Workbook,
    name: &str,
    title: &str,
    period_line: String,
    headings: &[&str],
    st: &Styles,
) -> Result<&'a mut rust_xlsxwriter::Worksheet, XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    ws.write_string_with_format(0, 0, title, &st.bold)?;
    ws.write_string(1, 0, period_line)?;
    for (c, h) in headings.iter().enumerate() {
        ws.write_string_with_format(HEADER_ROW, c as u16, *h, &st.head)?;
    }
    Ok(ws)
}

/// The first two cells of a group line: code and name; the TOTAL line has no code and is
/// labelled "Tổng cộng".
fn group_cells(
    ws: &mut rust_xlsxwriter::Worksheet,
    row: u32,
    group: &str,
    name: &str,
    st: &Styles,
) -> Result<(), XlsxError> {
    let total = group == "TOTAL";
    ws.write_string_with_format(row, 0, if total { "" } else { group }, &st.text)?;
    ws.write_string_with_format(row, 1, if total { "Tổng cộng" } else { name }, &st.text)?;
    Ok(())
}

/// Biểu 06 as an XLSX workbook: title, period, one heading row, then the rows
/// (the TOTAL row labelled "Tổng cộng").
pub fn bieu06(rows: &[Row], p: &Params, created: Option<i64>) -> Result<Vec<u8>, XlsxError> {
    let mut wb = workbook(created);
    let st = Styles::new();
    let ws = sheet(
        &mut wb,
        "Biểu 06",
        TITLE,
        format!(
            "Kỳ báo cáo: từ ngày {} đến ngày {}",
            p.from.format("%d/%m/%Y"),
            p.to.format("%d/%m/%Y")
        ),
        &HEADINGS_VI,
        &st,
    )?;
    ws.set_row_height(HEADER_ROW, 45)?;
    ws.set_column_width(0, 12)?;
    ws.set_column_width(1, 40)?;
    for c in 2..HEADINGS_VI.len() as u16 {
        ws.set_column_width(c, 14)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + i as u32;
        group_cells(ws, row, &r.group, &r.group_name, &st)?;
        for (c, v) in r.counts().iter().enumerate() {
            ws.write_number_with_format(row, 2 + c as u16, *v as f64, &st.num)?;
        }
    }
    wb.save_to_buffer()
}

/// Decision 766 indices as an XLSX workbook: per unit, one line per criterion (rate,
/// target, numerator, denominator, points), a line per group and the total.
pub fn index766(
    indices: &[giamsat_queries::index766::Index],
    period: &giamsat_queries::period::Period,
    created: Option<i64>,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = workbook(created);
    let st = Styles::new();
    let btext = Format::new().set_bold().set_border(FormatBorder::Thin);
    let pts = Format::new()
        .set_num_format("0.00")
        .set_border(FormatBorder::Thin);
    let bpts = Format::new()
        .set_bold()
        .set_num_format("0.00")
        .set_border(FormatBorder::Thin);
    let (text, pct, int) = (&st.text, &st.pct, &st.num);
    let ws = sheet(
        &mut wb,
        "Chỉ số 766",
        "BỘ CHỈ SỐ CHỈ ĐẠO, ĐIỀU HÀNH VÀ ĐÁNH GIÁ CHẤT LƯỢNG PHỤC VỤ NGƯỜI DÂN, DOANH NGHIỆP (QĐ 766/QĐ-TTg)",
        format!(
            "Kỳ: {} (từ ngày {} đến ngày {})",
            period.label,
            period.from.format("%d/%m/%Y"),
            period.to.format("%d/%m/%Y")
        ),
        &[
            "Đơn vị",
            "Tiêu chí",
            "Nội dung",
            "Điểm tối đa",
            "Chỉ tiêu",
            "Tỷ lệ",
            "Tử số",
            "Mẫu số",
            "Điểm",
        ],
        &st,
    )?;
    ws.set_column_width(0, 24)?;
    ws.set_column_width(2, 60)?;
    let mut row = HEADER_ROW + 1;
    for ix in indices {
        let unit = ix.unit_name.clone().unwrap_or_else(|| ix.unit.clone());
        for g in &ix.groups {
            for c in &g.criteria {
                ws.write_string_with_format(row, 0, &unit, text)?;
                ws.write_string_with_format(row, 1, &c.key, text)?;
                ws.write_string_with_format(row, 2, &c.name, text)?;
                ws.write_number_with_format(row, 3, c.max, &pts)?;
                ws.write_number_with_format(row, 4, c.target, pct)?;
                match c.rate {
                    Some(r) => ws.write_number_with_format(row, 5, r, pct)?,
                    None => ws.write_string_with_format(row, 5, "", text)?,
                };
                ws.write_number_with_format(row, 6, c.numerator as f64, int)?;
                ws.write_number_with_format(row, 7, c.denominator as f64, int)?;
                ws.write_number_with_format(row, 8, c.points, &pts)?;
                row += 1;
            }
            ws.write_string_with_format(row, 0, &unit, &btext)?;
            ws.write_string_with_format(row, 1, g.group.to_string(), &btext)?;
            ws.write_string_with_format(row, 2, format!("Nhóm {}: {}", g.group, g.name), &btext)?;
            ws.write_number_with_format(row, 3, g.max, &bpts)?;
            ws.write_number_with_format(row, 8, g.points, &bpts)?;
            row += 1;
        }
        ws.write_string_with_format(row, 0, &unit, &btext)?;
        ws.write_string_with_format(row, 2, "Tổng điểm", &btext)?;
        ws.write_number_with_format(row, 3, 100.0, &bpts)?;
        ws.write_number_with_format(row, 8, ix.total, &bpts)?;
        row += 2;
    }
    wb.save_to_buffer()
}

/// Headings of the on-time sheet, in the order of the columns.
pub const ON_TIME_HEADINGS: [&str; 12] = [
    "Mã",
    "Đơn vị / nhóm",
    "Tổng số hồ sơ (1)",
    "Đã giải quyết",
    "Trước hạn",
    "Đúng hạn",
    "Quá hạn",
    "Đang giải quyết",
    "Trong hạn",
    "Quá hạn (đang giải quyết)",
    "Đúng hạn (trước hạn + đúng hạn + trong hạn)",
    "Tỷ lệ đúng hạn",
];

/// The on-time report as an XLSX workbook: title, period, headings, one line per group
/// (TOTAL labelled "Tổng cộng"); rates as percentages, empty when the total is 0.
pub fn on_time(
    report: &giamsat_queries::on_time::Report,
    created: Option<i64>,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = workbook(created);
    let st = Styles::new();
    let p = &report.period;
    let ws = sheet(
        &mut wb,
        "Tỷ lệ đúng hạn",
        "TỶ LỆ GIẢI QUYẾT HỒ SƠ ĐÚNG HẠN",
        format!(
            "Kỳ: {} (từ ngày {} đến ngày {})",
            p.label,
            p.from.format("%d/%m/%Y"),
            p.to.format("%d/%m/%Y")
        ),
        &ON_TIME_HEADINGS,
        &st,
    )?;
    ws.set_row_height(HEADER_ROW, 45)?;
    ws.set_column_width(1, 40)?;
    for (i, r) in report.rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + i as u32;
        group_cells(ws, row, &r.group, &r.group_name, &st)?;
        let counts = [
            r.total,
            r.ended,
            r.ended_early,
            r.ended_on_day,
            r.ended_late,
            r.in_progress,
            r.in_progress_in_time,
            r.in_progress_overdue,
            r.on_time,
        ];
        for (c, v) in counts.iter().enumerate() {
            ws.write_number_with_format(row, 2 + c as u16, *v as f64, &st.num)?;
        }
        match r.rate {
            Some(v) => ws.write_number_with_format(row, 11, v, &st.pct)?,
            None => ws.write_string_with_format(row, 11, "", &st.text)?,
        };
    }
    wb.save_to_buffer()
}

/// Query results as an XLSX workbook: a heading row of column names, then the rows
/// (numbers as numbers, everything else as its text; nulls empty).
pub fn batches(
    batches: &[datafusion::arrow::array::RecordBatch],
    created: Option<i64>,
) -> Result<Vec<u8>, XlsxError> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::datatypes::DataType;
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut wb = workbook(created);
    let ws = wb.add_worksheet();
    ws.set_name("Kết quả")?;
    let head = Format::new().set_bold().set_border(FormatBorder::Thin);
    let mut row = 0u32;
    if let Some(b) = batches.first() {
        for (c, f) in b.schema().fields().iter().enumerate() {
            ws.write_string_with_format(0, c as u16, f.name(), &head)?;
        }
        row = 1;
    }
    let opts = FormatOptions::default();
    for b in batches {
        for (c, a) in b.columns().iter().enumerate() {
            let numeric = matches!(
                a.data_type(),
                DataType::Int8
                    | DataType::Int16
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::UInt8
                    | DataType::UInt16
                    | DataType::UInt32
                    | DataType::UInt64
                    | DataType::Float32
                    | DataType::Float64
                    | DataType::Decimal128(_, _)
            );
            let fmt = ArrayFormatter::try_new(a.as_ref(), &opts)
                .map_err(|e| XlsxError::ParameterError(e.to_string()))?;
            for i in 0..b.num_rows() {
                if a.is_null(i) {
                    continue;
                }
                let text = fmt.value(i).to_string();
                let r = row + i as u32;
                match (numeric, text.parse::<f64>()) {
                    (true, Ok(v)) => ws.write_number(r, c as u16, v)?,
                    _ => ws.write_string(r, c as u16, text)?,
                };
            }
        }
        row += b.num_rows() as u32;
    }
    wb.save_to_buffer()
}

/// A list as an XLSX workbook: title, a line saying what is listed, the headings, then
/// one line per row, every cell as text.
pub fn table<R: IntoIterator<Item = Vec<String>>>(
    title: &str,
    line: String,
    headings: &[&str],
    rows: R,
    created: Option<i64>,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = workbook(created);
    let st = Styles::new();
    let ws = sheet(&mut wb, "Danh sách", title, line, headings, &st)?;
    ws.set_row_height(HEADER_ROW, 30)?;
    for c in 0..headings.len() as u16 {
        ws.set_column_width(c, 18)?;
    }
    for (i, cells) in rows.into_iter().enumerate() {
        let row = HEADER_ROW + 1 + i as u32;
        for (c, v) in cells.iter().enumerate() {
            ws.write_string_with_format(row, c as u16, v, &st.text)?;
        }
    }
    wb.save_to_buffer()
}

/// An RFC 3339 instant as dd/mm/yyyy HH:MM (empty when absent).
fn short(t: &Option<String>) -> String {
    giamsat_queries::common::rfc3339_short(t.as_deref()).unwrap_or_default()
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Headings of the alert list.
pub const ALERT_HEADINGS: [&str; 12] = [
    "Mã hồ sơ",
    "Mã thủ tục",
    "Tên thủ tục",
    "Mã cơ quan",
    "Tên cơ quan",
    "Mã xã",
    "Thời điểm tiếp nhận",
    "Hạn xử lý",
    "Tình trạng",
    "Giờ làm việc còn lại (âm: đã quá)",
    "Hệ thống nguồn",
    "Sự kiện gần nhất của nguồn",
];

/// One alert in the order of [`ALERT_HEADINGS`].
pub fn alert_row(a: &giamsat_queries::alerts::Alert) -> Vec<String> {
    vec![
        a.dossier_id.clone(),
        text(&a.procedure_code),
        text(&a.procedure_name),
        text(&a.agency_code),
        text(&a.agency_name),
        text(&a.commune_code),
        short(&a.received_at),
        short(&a.due_at),
        a.status_label.clone(),
        a.working_hours_left
            .map(|h| format!("{:.1}", h).replace('.', ","))
            .unwrap_or_default(),
        a.sources.clone(),
        short(&a.last_source_event_at),
    ]
}

/// Headings of the reconciliation list.
pub const RECON_HEADINGS: [&str; 8] = [
    "Mã hồ sơ",
    "Loại sai lệch",
    "Hệ thống A",
    "Hệ thống B",
    "Kết thúc theo A",
    "Kết thúc theo B",
    "Lệch (giây)",
    "Chi tiết",
];

/// One discrepancy in the order of [`RECON_HEADINGS`].
pub fn recon_row(i: &giamsat_queries::recon::Item) -> Vec<String> {
    vec![
        i.dossier_id.clone(),
        i.kind.label().to_string(),
        i.source_a.clone(),
        text(&i.source_b),
        short(&i.a_ended_at),
        short(&i.b_ended_at),
        i.end_diff_seconds
            .map(|d| d.to_string())
            .unwrap_or_default(),
        i.detail.clone(),
    ]
}

/// The dossiers behind a number as an XLSX workbook: the title says which number, then
/// one line per dossier with the list's Vietnamese headings.
pub fn dossier_list(
    title: &str,
    period_line: String,
    items: &[giamsat_queries::drill::Item],
    created: Option<i64>,
) -> Result<Vec<u8>, XlsxError> {
    use giamsat_queries::drill::{row_of, HEADINGS_VI};
    table(
        title,
        period_line,
        &HEADINGS_VI,
        items.iter().map(|i| row_of(i).to_vec()),
        created,
    )
}
