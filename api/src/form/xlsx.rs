//! A [`Form`] as an XLSX workbook (rust_xlsxwriter): merged two-level headings, the
//! column-number row, numbers as numbers, and print setup (A4 landscape, heading rows
//! repeated on every page, fitted to the page width).

use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError,
};

use super::{sign_notes, Align, Cell, Form};

/// Row (0-based) of the first heading row; the second is the next one, the column
/// numbers the one after.
pub const HEAD_ROW: u32 = 6;

struct Styles {
    bold: Format,
    italic: Format,
    title: Format,
    right_italic: Format,
    head: Format,
    number_row: Format,
    caption: Format,
}

impl Styles {
    fn new() -> Styles {
        let center = Format::new()
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter)
            .set_text_wrap();
        Styles {
            bold: center.clone().set_bold(),
            italic: center.clone().set_italic(),
            title: center.clone().set_bold().set_font_size(13),
            right_italic: Format::new().set_italic().set_align(FormatAlign::Right),
            head: center.clone().set_bold().set_border(FormatBorder::Thin),
            number_row: center.clone().set_italic().set_border(FormatBorder::Thin),
            caption: Format::new().set_bold().set_border(FormatBorder::Thin),
        }
    }

    /// The format of a table cell.
    fn cell(cell: &Cell, align: Align, bold: bool) -> Format {
        let mut f = Format::new()
            .set_border(FormatBorder::Thin)
            .set_align(FormatAlign::VerticalCenter);
        f = match align {
            Align::Left => f.set_align(FormatAlign::Left).set_text_wrap(),
            Align::Center => f.set_align(FormatAlign::Center),
            Align::Right => f.set_align(FormatAlign::Right),
        };
        f = match cell {
            Cell::Int(_) => f.set_num_format("#,##0"),
            Cell::Points(_) => f.set_num_format("#,##0.00"),
            Cell::Percent(_) => f.set_num_format("0.00%"),
            Cell::Text(_) => f,
        };
        if bold {
            f = f.set_bold();
        }
        f
    }
}

fn merge(
    ws: &mut Worksheet,
    row: u32,
    first: u16,
    last: u16,
    text: &str,
    f: &Format,
) -> Result<(), XlsxError> {
    if first == last {
        ws.write_string_with_format(row, first, text, f)?;
    } else {
        ws.merge_range(row, first, row, last, text, f)?;
    }
    Ok(())
}

/// The form as a workbook of one sheet.
pub fn render(form: &Form) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_timestamp(form.created.timestamp())?;
    wb.set_properties(
        &DocProperties::new()
            .set_creation_datetime(&created)
            .set_title(&form.title),
    );
    let st = Styles::new();
    let ws = wb.add_worksheet();
    ws.set_name(&form.name)?;
    let n = form.columns.len() as u16;
    let last = n.saturating_sub(1);
    for (c, col) in form.columns.iter().enumerate() {
        ws.set_column_width(c as u16, col.width)?;
    }
    // the units on the left, the form's number and circular on the right
    let left_last = 2.min(last);
    let right_first = n.saturating_sub(4).max(left_last + 1).min(last);
    merge(ws, 0, 0, left_last, &form.unit_name, &st.bold)?;
    merge(ws, 1, 0, left_last, &form.receiving_unit, &st.bold)?;
    merge(ws, 0, right_first, last, &form.form_number, &st.bold)?;
    merge(ws, 1, right_first, last, &form.circular, &st.italic)?;
    ws.set_row_height(1, 30)?;
    merge(ws, 3, 0, last, &form.title, &st.title)?;
    merge(ws, 4, 0, last, &form.period_line, &st.italic)?;
    merge(ws, 5, right_first, last, &form.unit_note, &st.right_italic)?;
    // two heading rows, then the column numbers
    for h in &form.headings {
        let r0 = HEAD_ROW + u32::from(h.row);
        let r1 = r0 + u32::from(h.rows) - 1;
        let c1 = h.col + h.cols - 1;
        if r0 == r1 && h.col == c1 {
            ws.write_string_with_format(r0, h.col, &h.text, &st.head)?;
        } else {
            ws.merge_range(r0, h.col, r1, c1, &h.text, &st.head)?;
        }
    }
    ws.set_row_height(HEAD_ROW, 30)?;
    ws.set_row_height(HEAD_ROW + 1, 45)?;
    for (c, col) in form.columns.iter().enumerate() {
        ws.write_string_with_format(HEAD_ROW + 2, c as u16, &col.number, &st.number_row)?;
    }
    let mut row = HEAD_ROW + 3;
    for s in &form.sections {
        if let Some(caption) = &s.caption {
            merge(ws, row, 0, last, caption, &st.caption)?;
            row += 1;
        }
        for line in &s.lines {
            for (c, (cell, col)) in line.cells.iter().zip(&form.columns).enumerate() {
                let f = Styles::cell(cell, col.align, line.bold);
                let c = c as u16;
                match cell {
                    Cell::Text(t) => ws.write_string_with_format(row, c, t, &f)?,
                    Cell::Int(v) => ws.write_number_with_format(row, c, *v as f64, &f)?,
                    Cell::Points(v) => ws.write_number_with_format(row, c, *v, &f)?,
                    Cell::Percent(Some(v)) => ws.write_number_with_format(row, c, *v, &f)?,
                    Cell::Percent(None) => ws.write_blank(row, c, &f)?,
                };
            }
            row += 1;
        }
    }
    // place and date, then the two signature blocks side by side
    let (sign, seal) = sign_notes();
    let mid = n / 2;
    let mid_last = mid.saturating_sub(1);
    row += 1;
    merge(ws, row, mid, last, &form.place_date, &st.italic)?;
    row += 1;
    merge(ws, row, 0, mid_last, &form.preparer_title, &st.bold)?;
    merge(ws, row, mid, last, &form.signer_title, &st.bold)?;
    row += 1;
    merge(ws, row, 0, mid_last, sign, &st.italic)?;
    merge(ws, row, mid, last, seal, &st.italic)?;
    row += 4;
    merge(ws, row, 0, mid_last, &form.preparer, &st.bold)?;
    merge(ws, row, mid, last, &form.signer, &st.bold)?;
    // print setup: A4 landscape, headings on every page, one page wide
    ws.set_paper_size(9);
    ws.set_landscape();
    ws.set_margins(0.4, 0.4, 0.6, 0.6, 0.3, 0.3);
    ws.set_print_center_horizontally(true);
    ws.set_repeat_rows(HEAD_ROW, HEAD_ROW + 2)?;
    ws.set_print_fit_to_pages(1, 0);
    wb.save_to_buffer()
}
