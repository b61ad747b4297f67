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
