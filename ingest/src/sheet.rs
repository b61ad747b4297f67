//! Workbooks (XLSX, and the XLS/XLSB/ODS that the same reader opens) read through a
//! mapping profile: the sheet the profile names, its header found by the profile's
//! headings, every cell as text.
//!
//! - Text cells stay text (codes keep their leading zeros); whole numbers lose the
//!   `.0` a spreadsheet stores them with.
//! - Date cells become ISO text (`2026-03-05` for a date alone, `2026-03-05 08:30:00`
//!   with a time), which [`Profile::instant`] reads; a number in a date column is read
//!   as an Excel serial date.
//! - Row numbers are the sheet's own (1-based), so a quarantined row can be found in the
//!   file that was sent.
//!
//! A workbook is read whole (the reader has no streaming mode); the events are then
//! committed in chunks like any file.

use std::io::Read;
use std::path::Path;

use calamine::{open_workbook_auto, Data, Reader};

use crate::csvprofile::{Header, Profile, SheetRef};
use crate::IngestError;

/// One sheet: its name, the header and the rows under it.
pub struct Sheet {
    pub name: String,
    /// Sheet row number (1-based) of the header's last row.
    pub header_row: i64,
    pub header: Header,
    /// Rows under the header: (sheet row number, cells).
    pub rows: Vec<(i64, Vec<String>)>,
}

/// Whether a file is a workbook: by extension, else by its first bytes (ZIP or OLE).
pub fn is_workbook(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if matches!(
        ext.as_deref(),
        Some("xlsx" | "xlsm" | "xlsb" | "xls" | "ods")
    ) {
        return true;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && (magic == *b"PK\x03\x04" || magic == [0xD0, 0xCF, 0x11, 0xE0])
}

fn text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) if d.is_duration() => d.as_f64().to_string(),
        Data::DateTime(d) => {
            // the reader already rounds a whole second's float error; milliseconds drop
            let (y, mo, da, h, mi, s, _) = d.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{da:02}")
            } else {
                format!("{y:04}-{mo:02}-{da:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        Data::Error(e) => format!("{e}"),
    }
}

/// Open a workbook and read the profile's sheet.
pub fn read(path: &Path, profile: &Profile) -> Result<Sheet, IngestError> {
    let name = path.display();
    let bad = |m: String| IngestError::Input(format!("{name}: {m}"));
    let mut wb =
        open_workbook_auto(path).map_err(|e| bad(format!("không mở được bảng tính: {e}")))?;
    let names = wb.sheet_names();
    let sheet = match &profile.sheet {
        None => names.first().cloned(),
        Some(SheetRef::Name(n)) => names.iter().find(|s| s.trim() == n.trim()).cloned(),
        Some(SheetRef::Index(i)) => i.checked_sub(1).and_then(|i| names.get(i)).cloned(),
    }
    .ok_or_else(|| {
        bad(format!(
            "không có trang tính {:?}; các trang: {names:?}",
            profile.sheet
        ))
    })?;
    let range = wb
        .worksheet_range(&sheet)
        .map_err(|e| bad(format!("không đọc được trang tính {sheet:?}: {e}")))?;
    let first_row = range.start().map(|(r, _)| r as i64 + 1).unwrap_or(1);
    let mut rows = range.rows().enumerate().map(|(i, r)| {
        (
            first_row + i as i64,
            r.iter().map(text).collect::<Vec<String>>(),
        )
    });
    // the rows searched for the header, and their sheet row numbers
    let (mut head, mut numbers): (Vec<Vec<String>>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut found = None;
    for (number, cells) in rows.by_ref() {
        head.push(cells);
        numbers.push(number);
        if let Some(h) = profile.find_header(&head) {
            found = Some(h);
            break;
        }
        if head.len() >= crate::csvprofile::HEADER_SEARCH_ROWS {
            break;
        }
    }
    let Some((at, cells)) = found else {
        let first = head
            .iter()
            .find(|c| c.iter().any(|x| !x.trim().is_empty()))
            .cloned()
            .unwrap_or_default();
        return Err(bad(format!(
            "trang tính {sheet:?}: không tìm thấy dòng tiêu đề trong {} dòng đầu; thiếu cột {:?} của hồ sơ ánh xạ",
            crate::csvprofile::HEADER_SEARCH_ROWS,
            profile.missing(&first)
        )));
    };
    let header_row = numbers[at];
    Ok(Sheet {
        name: sheet,
        header_row,
        header: Header::new(cells),
        rows: rows.collect(),
    })
}
