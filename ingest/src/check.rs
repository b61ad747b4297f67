//! `giamsat profile check`: a dry run of a mapping profile on one file. It reads the
//! file as an ingest would and reports the mapping, the first rows as events, what
//! would be quarantined and why, and what is ignored; it writes nothing.

use std::path::Path;

use serde_json::Value;

use crate::csvprofile::{self, Header, Profile, Rows};
use crate::{IngestError, Input};

/// What a dry run found.
pub struct Check {
    /// `một hàng một hồ sơ` (wide) or `một hàng một sự kiện` (long).
    pub shape: &'static str,
    pub source: String,
    /// The sheet read (workbooks).
    pub sheet: Option<String>,
    /// Row number of the header's last row.
    pub header_row: i64,
    /// (column letter, heading, what it becomes).
    pub mapping: Vec<(String, String, String)>,
    pub rows: Rows,
}

/// Spreadsheet column letters: 0 → A, 26 → AA.
pub fn column_letter(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

fn role(profile: &Profile, heading: &str) -> String {
    let is = |k: &String| csvprofile::norm(k) == heading;
    if let Some((_, f)) = profile.columns.iter().find(|(k, _)| is(k)) {
        let via = match f.as_str() {
            "type" if !profile.status.is_empty() => " (qua [status])",
            "channel" if !profile.channel.is_empty() => " (qua [channel])",
            _ => "",
        };
        return format!("{f}{via}");
    }
    if let Some((_, e)) = profile.events.iter().find(|(k, _)| is(k)) {
        let kind = match e {
            csvprofile::EventColumn::Type(t) => t.as_str(),
            csvprofile::EventColumn::Detailed(d) => d.kind.as_str(),
        };
        return format!("sự kiện {kind}");
    }
    if profile.status_column.as_ref().is_some_and(is) {
        return "trạng thái (qua [status]) và attrs".into();
    }
    if profile.status_at.as_ref().is_some_and(is) {
        return "thời điểm của sự kiện theo trạng thái".into();
    }
    "attrs (không ánh xạ, giữ nguyên)".into()
}

/// An event as a reader checks it: no empty fields, instants in local time.
fn readable(e: &giamsat_warehouse::Event) -> Value {
    let local = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| {
                t.with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
                    .format("%d/%m/%Y %H:%M:%S")
                    .to_string()
            })
            .map(Value::String)
            .unwrap_or(Value::Null)
    };
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.retain(|k, x| !x.is_null() && k != "ingested_at");
        m.insert("at".into(), local(e.at));
        if let Some(d) = e.due_at {
            m.insert("due_at".into(), local(d));
        }
    }
    v
}

/// Read `path` (CSV or workbook) with `profile`; nothing is written.
pub fn check(path: &Path, profile: &Profile, source: Option<&str>) -> Result<Check, IngestError> {
    let source = profile.source_for(source)?;
    let (sheet, header_row, header, rows): (Option<String>, i64, Header, Rows) =
        if crate::sheet::is_workbook(path) {
            let s = crate::sheet::read(path, profile)?;
            let rows = profile.map_rows(
                &path.display().to_string(),
                &s.header,
                s.rows.into_iter().map(|(l, c)| (l, Ok(c))),
                &source,
                &mut false,
            );
            (Some(s.name), s.header_row, s.header, rows)
        } else {
            let bytes = std::fs::read(path).map_err(|e| IngestError::Read {
                path: path.to_path_buf(),
                source: e,
            })?;
            let input = Input {
                name: path.display().to_string(),
                bytes,
            };
            let doc = csvprofile::parse_document(&input, profile, &source)?;
            (None, doc.header_row, doc.header, doc.rows)
        };
    let mapping = header
        .cells
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.is_empty())
        .map(|(i, h)| (column_letter(i), h.clone(), role(profile, h)))
        .collect();
    Ok(Check {
        shape: if profile.is_wide() {
            "một hàng một hồ sơ"
        } else {
            "một hàng một sự kiện"
        },
        source,
        sheet,
        header_row,
        mapping,
        rows,
    })
}

impl Check {
    /// The report as text lines (Vietnamese), with the events of the first `first` rows.
    pub fn render(&self, first: usize) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!("Dạng: {}; nguồn: {}", self.shape, self.source));
        if let Some(s) = &self.sheet {
            line(format!("Trang tính: {s:?}"));
        }
        line(format!("Dòng tiêu đề: {}", self.header_row));
        line("Cột → trường:".into());
        for (letter, heading, role) in &self.mapping {
            line(format!("  {letter:>3}  {heading:?} → {role}"));
        }
        let events: usize = self.rows.good.iter().map(|(_, n)| n).sum();
        line(format!(
            "Hàng hợp lệ: {} → {} sự kiện; cách ly: {}; bỏ qua: {}",
            self.rows.good.len(),
            events,
            self.rows.quarantine.len(),
            self.rows.ignored.len()
        ));
        line(format!(
            "Sự kiện của {} hàng đầu:",
            first.min(self.rows.good.len())
        ));
        let mut rest = &self.rows.events[..];
        for (row, n) in self.rows.good.iter().take(first) {
            let (these, after) = rest.split_at((*n).min(rest.len()));
            rest = after;
            for e in these {
                line(format!("  dòng {row}: {}", readable(e)));
            }
        }
        if !self.rows.quarantine.is_empty() {
            line("Sẽ cách ly:".into());
            for q in &self.rows.quarantine {
                line(format!("  dòng {}: {}", q.line, q.reason));
            }
        }
        if !self.rows.ignored.is_empty() {
            line("Bỏ qua:".into());
            for (row, kind) in &self.rows.ignored {
                line(format!("  dòng {row}: {}", kind.label()));
            }
        }
        line("Chưa ghi gì vào kho (chạy thử).".into());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::column_letter;

    #[test]
    fn letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
    }
}
