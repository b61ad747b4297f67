//! XLSX output (rust_xlsxwriter): official Vietnamese headings, numbers as numbers.

use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, XlsxError};

use giamsat_queries::bieu06::{Params, Row, HEADINGS_VI};

/// Title of the Biểu 06 sheet.
pub const TITLE: &str = "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH (Biểu 06)";
/// Row (0-based) of the column headings.
pub const HEADER_ROW: u32 = 3;

/// Biểu 06 as an XLSX workbook: title, period, one heading row, then the rows
/// (the TOTAL row labelled "Tổng cộng").
pub fn bieu06(rows: &[Row], p: &Params) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Biểu 06")?;
    let bold = Format::new().set_bold();
    let head = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_border(FormatBorder::Thin);
    let num = Format::new()
        .set_num_format("#,##0")
        .set_border(FormatBorder::Thin);
    let text = Format::new().set_border(FormatBorder::Thin);
    ws.write_string_with_format(0, 0, TITLE, &bold)?;
    ws.write_string(
        1,
        0,
        format!(
            "Kỳ báo cáo: từ ngày {} đến ngày {}",
            p.from.format("%d/%m/%Y"),
            p.to.format("%d/%m/%Y")
        ),
    )?;
    for (c, h) in HEADINGS_VI.iter().enumerate() {
        ws.write_string_with_format(HEADER_ROW, c as u16, *h, &head)?;
    }
    ws.set_row_height(HEADER_ROW, 45)?;
    ws.set_column_width(0, 12)?;
    ws.set_column_width(1, 40)?;
    for c in 2..HEADINGS_VI.len() as u16 {
        ws.set_column_width(c, 14)?;
    }
    for (i, r) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + i as u32;
        let total = r.group == "TOTAL";
        ws.write_string_with_format(row, 0, if total { "" } else { r.group.as_str() }, &text)?;
        ws.write_string_with_format(
            row,
            1,
            if total {
                "Tổng cộng"
            } else {
                r.group_name.as_str()
            },
            &text,
        )?;
        for (c, v) in r.counts().iter().enumerate() {
            ws.write_number_with_format(row, 2 + c as u16, *v as f64, &num)?;
        }
    }
    wb.save_to_buffer()
}

/// Decision 766 indices as an XLSX workbook: per unit, one line per criterion (rate,
/// target, numerator, denominator, points), a line per group and the total.
pub fn index766(
    indices: &[giamsat_queries::index766::Index],
    period: &giamsat_queries::period::Period,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("Chỉ số 766")?;
    let bold = Format::new().set_bold();
    let head = Format::new()
        .set_bold()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_border(FormatBorder::Thin);
    let text = Format::new().set_border(FormatBorder::Thin);
    let btext = Format::new().set_bold().set_border(FormatBorder::Thin);
    let pts = Format::new()
        .set_num_format("0.00")
        .set_border(FormatBorder::Thin);
    let bpts = Format::new()
        .set_bold()
        .set_num_format("0.00")
        .set_border(FormatBorder::Thin);
    let pct = Format::new()
        .set_num_format("0.00%")
        .set_border(FormatBorder::Thin);
    let int = Format::new()
        .set_num_format("#,##0")
        .set_border(FormatBorder::Thin);
    ws.write_string_with_format(
        0,
        0,
        "BỘ CHỈ SỐ CHỈ ĐẠO, ĐIỀU HÀNH VÀ ĐÁNH GIÁ CHẤT LƯỢNG PHỤC VỤ NGƯỜI DÂN, DOANH NGHIỆP (QĐ 766/QĐ-TTg)",
        &bold,
    )?;
    ws.write_string(
        1,
        0,
        format!(
            "Kỳ: {} (từ ngày {} đến ngày {})",
            period.label,
            period.from.format("%d/%m/%Y"),
            period.to.format("%d/%m/%Y")
        ),
    )?;
    let headings = [
        "Đơn vị",
        "Tiêu chí",
        "Nội dung",
        "Điểm tối đa",
        "Chỉ tiêu",
        "Tỷ lệ",
        "Tử số",
        "Mẫu số",
        "Điểm",
    ];
    for (c, h) in headings.iter().enumerate() {
        ws.write_string_with_format(HEADER_ROW, c as u16, *h, &head)?;
    }
    ws.set_column_width(0, 24)?;
    ws.set_column_width(2, 60)?;
    let mut row = HEADER_ROW + 1;
    for ix in indices {
        let unit = ix.unit_name.clone().unwrap_or_else(|| ix.unit.clone());
        for g in &ix.groups {
            for c in &g.criteria {
                ws.write_string_with_format(row, 0, &unit, &text)?;
                ws.write_string_with_format(row, 1, &c.key, &text)?;
                ws.write_string_with_format(row, 2, &c.name, &text)?;
                ws.write_number_with_format(row, 3, c.max, &pts)?;
                ws.write_number_with_format(row, 4, c.target, &pct)?;
                match c.rate {
                    Some(r) => ws.write_number_with_format(row, 5, r, &pct)?,
                    None => ws.write_string_with_format(row, 5, "", &text)?,
                };
                ws.write_number_with_format(row, 6, c.numerator as f64, &int)?;
                ws.write_number_with_format(row, 7, c.denominator as f64, &int)?;
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
