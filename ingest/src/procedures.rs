//! The procedure catalog (docs/contract.md §2), as CSV with a header row or as NDJSON.

use chrono::NaiveDate;
use serde_json::Value;

use giamsat_warehouse::store::{Procedure, QuarantineRow};

use crate::{lines, IngestError, Input};

/// Catalog columns (docs/contract.md §2), in order.
pub const COLUMNS: [&str; 12] = [
    "procedure_code",
    "procedure_name",
    "field_code",
    "field_name",
    "procedure_level",
    "authority_level",
    "max_working_days",
    "has_fee",
    "fee_online_integrated",
    "published_at",
    "publish_due_at",
    "content_complete",
];

fn text(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn boolean(name: &str, v: Option<&str>) -> Result<Option<bool>, String> {
    match v.map(|s| s.trim().to_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("true" | "1" | "yes" | "có" | "x") => Ok(Some(true)),
        Some("false" | "0" | "no" | "không") => Ok(Some(false)),
        Some(o) => Err(format!("{name} phải là true/false: {o:?}")),
    }
}

fn date(name: &str, v: Option<&str>) -> Result<Option<NaiveDate>, String> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("{name} phải là ngày YYYY-MM-DD: {s:?}")),
    }
}

fn row(get: &dyn Fn(&str) -> Option<String>) -> Result<Procedure, String> {
    let g = |k: &str| get(k);
    let code = text(g("procedure_code").as_deref()).ok_or("thiếu procedure_code")?;
    let level = text(g("procedure_level").as_deref());
    if let Some(l) = &level {
        if !matches!(l.as_str(), "full_online" | "partial_online" | "offline") {
            return Err(format!("procedure_level không hợp lệ: {l:?}"));
        }
    }
    let authority = text(g("authority_level").as_deref());
    if let Some(a) = &authority {
        if !matches!(a.as_str(), "province" | "commune" | "ministry") {
            return Err(format!("authority_level không hợp lệ: {a:?}"));
        }
    }
    let days = match text(g("max_working_days").as_deref()) {
        None => None,
        Some(s) => match s.replace(',', ".").parse::<f64>() {
            Ok(d) if d.is_finite() && d >= 0.0 => Some(d),
            _ => return Err(format!("max_working_days phải là số không âm: {s:?}")),
        },
    };
    Ok(Procedure {
        procedure_code: code,
        procedure_name: text(g("procedure_name").as_deref()),
        field_code: text(g("field_code").as_deref()),
        field_name: text(g("field_name").as_deref()),
        procedure_level: level,
        authority_level: authority,
        max_working_days: days,
        has_fee: boolean("has_fee", g("has_fee").as_deref())?,
        fee_online_integrated: boolean(
            "fee_online_integrated",
            g("fee_online_integrated").as_deref(),
        )?,
        published_at: date("published_at", g("published_at").as_deref())?,
        publish_due_at: date("publish_due_at", g("publish_due_at").as_deref())?,
        content_complete: boolean("content_complete", g("content_complete").as_deref())?,
    })
}

fn bad(input: &Input, line: i64, reason: String, original: Vec<u8>) -> QuarantineRow {
    QuarantineRow {
        source: Some("procedures".into()),
        input: input.name.clone(),
        line,
        reason,
        original,
    }
}

/// Parse one catalog input. NDJSON when it starts with `{`, CSV otherwise.
pub fn parse(input: &Input) -> Result<(Vec<Procedure>, Vec<QuarantineRow>), IngestError> {
    let first = input.bytes.iter().find(|b| !b.is_ascii_whitespace());
    let mut good = Vec::new();
    let mut quarantined = Vec::new();
    if first == Some(&b'{') {
        for (no, line) in lines(&input.bytes) {
            let parsed = serde_json::from_slice::<Value>(line)
                .map_err(|e| format!("JSON sai: {e}"))
                .and_then(|v| {
                    row(&|k| match v.get(k) {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Null) | None => None,
                        Some(other) => Some(other.to_string()),
                    })
                });
            match parsed {
                Ok(p) => good.push(p),
                Err(reason) => quarantined.push(bad(input, no, reason, line.to_vec())),
            }
        }
        return Ok((good, quarantined));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(input.bytes.as_slice());
    let headers = rdr
        .headers()
        .map_err(|e| IngestError::Input(format!("{}: dòng tiêu đề CSV sai: {e}", input.name)))?
        .clone();
    let index = |k: &str| {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == k)
    };
    if index("procedure_code").is_none() {
        return Err(IngestError::Input(format!(
            "{}: danh mục thủ tục cần cột procedure_code (các cột: {})",
            input.name,
            COLUMNS.join(",")
        )));
    }
    for (i, rec) in rdr.byte_records().enumerate() {
        let no = i as i64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                quarantined.push(bad(input, no, format!("CSV sai: {e}"), Vec::new()));
                continue;
            }
        };
        let original = csv_line(&rec);
        let r = match csv::StringRecord::from_byte_record(rec) {
            Ok(r) => r,
            Err(e) => {
                let u = e.utf8_error();
                let reason = format!(
                    "CSV sai: hàng không phải UTF-8 (cột {}, byte {})",
                    u.field() + 1,
                    u.valid_up_to()
                );
                quarantined.push(bad(input, no, reason, original));
                continue;
            }
        };
        match row(&|k| index(k).and_then(|j| r.get(j)).map(str::to_string)) {
            Ok(p) => good.push(p),
            Err(reason) => quarantined.push(bad(input, no, reason, original)),
        }
    }
    Ok((good, quarantined))
}

/// A record as one CSV line, quoted where needed: the bytes a quarantined row keeps.
fn csv_line(record: &csv::ByteRecord) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = w.write_byte_record(record);
    let mut line = w.into_inner().unwrap_or_default();
    line.pop();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_that_is_not_utf8_is_quarantined_with_its_bytes() {
        let mut bytes = b"procedure_code,procedure_name\n1.1,A\n1.2,\"B, \xff\"\n".to_vec();
        bytes.extend_from_slice(b"1.3,C\n");
        let input = Input {
            name: "p.csv".into(),
            bytes,
        };
        let (good, bad) = parse(&input).expect("catalog");
        assert_eq!(good.len(), 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert!(bad[0].reason.contains("UTF-8 (cột 2"), "{}", bad[0].reason);
        assert_eq!(bad[0].original, b"1.2,\"B, \xff\"".to_vec());
    }
}
