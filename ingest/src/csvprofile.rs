//! Ministry-system CSV exports with a TOML mapping profile (CONTRACT §1 "csv").
//!
//! ```toml
//! source = "bo-tuphap"                 # default source code (--source overrides)
//! delimiter = ","                      # one character
//! date_format = "%d/%m/%Y %H:%M:%S"    # chrono format, local time Asia/Ho_Chi_Minh
//! [columns]                            # CSV column → canonical field
//! "Mã hồ sơ" = "dossier_id"
//! "Trạng thái" = "type"                # values mapped through [status]
//! "Thời điểm" = "at"
//! [status]                             # the system's status values → canonical types
//! "Đã tiếp nhận" = "received"
//! [channel]                            # the system's channel values → online|in_person|postal
//! "Trực tuyến" = "online"
//! [constants]                          # fields every row gets
//! field_code = "HT"
//! ```
//!
//! Each row becomes a canonical record and goes through the same validation and
//! content-derived ids as canonical NDJSON; columns not mapped are kept in `attrs`.
//! A bad profile is an error before any data is read.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Asia::Ho_Chi_Minh;
use serde::Deserialize;
use serde_json::{Map, Value};

use giamsat_warehouse::event::{EventType, DIM_COLUMNS, FLAG_COLUMNS};
use giamsat_warehouse::store::QuarantineRow;
use giamsat_warehouse::Event;

use crate::{canonical, IngestError, Input};

/// A mapping profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub source: Option<String>,
    #[serde(default = "comma")]
    pub delimiter: String,
    pub date_format: String,
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub status: BTreeMap<String, String>,
    #[serde(default)]
    pub channel: BTreeMap<String, String>,
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
}

fn comma() -> String {
    ",".into()
}

const TIME_FIELDS: [&str; 2] = ["at", "due_at"];
const ID_FIELDS: [&str; 5] = ["source", "event_id", "dossier_id", "feedback_id", "type"];

fn known(field: &str) -> bool {
    ID_FIELDS.contains(&field)
        || TIME_FIELDS.contains(&field)
        || DIM_COLUMNS.contains(&field)
        || FLAG_COLUMNS.contains(&field)
}

impl Profile {
    /// Read and check a profile file.
    pub fn load(path: &Path) -> Result<Profile, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text)
            .map_err(|e| IngestError::Input(format!("hồ sơ ánh xạ {} sai: {e}", path.display())))
    }

    /// Parse and check profile text.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let p: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
        if p.delimiter.len() != 1 {
            return Err(format!("delimiter phải là một ký tự: {:?}", p.delimiter));
        }
        if StrftimeItems::new(&p.date_format).any(|i| matches!(i, Item::Error)) {
            return Err(format!("date_format không hợp lệ: {:?}", p.date_format));
        }
        for (col, field) in &p.columns {
            if !known(field) {
                return Err(format!(
                    "cột {col:?} ánh xạ tới trường không tồn tại {field:?}"
                ));
            }
        }
        for field in p.constants.keys() {
            if !known(field) || TIME_FIELDS.iter().any(|t| t == field) {
                return Err(format!("constants: trường không dùng được {field:?}"));
            }
        }
        let mapped = |f: &str| p.columns.values().any(|v| v == f) || p.constants.contains_key(f);
        for required in ["type", "at"] {
            if !mapped(required) {
                return Err(format!("cần một cột ánh xạ tới {required}"));
            }
        }
        if !mapped("dossier_id") && !mapped("feedback_id") {
            return Err("cần một cột ánh xạ tới dossier_id".into());
        }
        for (v, t) in &p.status {
            if EventType::parse(t).is_none() {
                return Err(format!("status {v:?} → {t:?}: không phải loại sự kiện"));
            }
        }
        for (v, c) in &p.channel {
            if !matches!(c.as_str(), "online" | "in_person" | "postal") {
                return Err(format!(
                    "channel {v:?} → {c:?}: phải là online|in_person|postal"
                ));
            }
        }
        Ok(p)
    }

    fn time(&self, s: &str) -> Result<String, String> {
        let n = NaiveDateTime::parse_from_str(s.trim(), &self.date_format)
            .map_err(|_| format!("thời điểm {s:?} không đúng dạng {:?}", self.date_format))?;
        Ho_Chi_Minh
            .from_local_datetime(&n)
            .single()
            .map(|t| t.to_rfc3339())
            .ok_or_else(|| format!("thời điểm không tồn tại: {s:?}"))
    }

    /// One CSV row (with its header) → a canonical record.
    fn record(
        &self,
        header: &csv::StringRecord,
        row: &csv::StringRecord,
        source: &str,
    ) -> Result<Vec<u8>, String> {
        let mut obj = Map::new();
        let mut attrs = Map::new();
        obj.insert("source".into(), Value::String(source.to_string()));
        for (k, v) in &self.constants {
            obj.insert(k.clone(), Value::String(v.clone()));
        }
        for (col, value) in header.iter().zip(row.iter()) {
            let value = value.trim();
            let Some(field) = self.columns.get(col.trim()) else {
                if !value.is_empty() {
                    attrs.insert(col.trim().to_string(), Value::String(value.to_string()));
                }
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let v = match field.as_str() {
                "at" | "due_at" => Value::String(self.time(value)?),
                "type" if !self.status.is_empty() => {
                    Value::String(self.status.get(value).cloned().ok_or_else(|| {
                        format!("trạng thái không có trong hồ sơ ánh xạ: {value:?}")
                    })?)
                }
                "channel" if !self.channel.is_empty() => Value::String(
                    self.channel
                        .get(value)
                        .cloned()
                        .ok_or_else(|| format!("kênh không có trong hồ sơ ánh xạ: {value:?}"))?,
                ),
                f if FLAG_COLUMNS.contains(&f) => match value.to_lowercase().as_str() {
                    "1" | "true" | "có" | "x" => Value::Bool(true),
                    "0" | "false" | "không" => Value::Bool(false),
                    o => return Err(format!("{f} phải là có/không: {o:?}")),
                },
                _ => Value::String(value.to_string()),
            };
            obj.insert(field.clone(), v);
        }
        if !attrs.is_empty() {
            obj.insert("attrs".into(), Value::Object(attrs));
        }
        Ok(Value::Object(obj).to_string().into_bytes())
    }
}

fn mini_csv(header: &csv::StringRecord, row: &csv::StringRecord, delimiter: u8) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::new());
    let _ = w.write_record(header);
    let _ = w.write_record(row);
    w.into_inner().unwrap_or_default()
}

/// Parse CSV inputs with a profile; `source` overrides the profile's.
pub fn parse(
    inputs: &[Input],
    profile: &Profile,
    source: Option<&str>,
) -> Result<(Vec<Event>, Vec<QuarantineRow>), IngestError> {
    let source = source
        .or(profile.source.as_deref())
        .ok_or_else(|| IngestError::Input("cần --source hoặc source trong hồ sơ ánh xạ".into()))?;
    if !canonical::valid_source(source) {
        return Err(IngestError::Input(format!(
            "source không hợp lệ: {source:?}"
        )));
    }
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(profile.delimiter.as_bytes()[0])
            .flexible(true)
            .from_reader(input.bytes.as_slice());
        let header = rdr
            .headers()
            .map_err(|e| IngestError::Input(format!("{}: dòng tiêu đề CSV sai: {e}", input.name)))?
            .clone();
        let header = csv::StringRecord::from(
            header
                .iter()
                .map(|h| h.trim_start_matches('\u{feff}').trim())
                .collect::<Vec<_>>(),
        );
        for col in profile.columns.keys() {
            if !header.iter().any(|h| h == col) {
                return Err(IngestError::Input(format!(
                    "{}: thiếu cột {col:?} của hồ sơ ánh xạ",
                    input.name
                )));
            }
        }
        for (i, row) in rdr.records().enumerate() {
            let line = i as i64 + 2;
            let quarantine = |reason: String, original: Vec<u8>| QuarantineRow {
                source: Some(source.to_string()),
                input: input.name.clone(),
                line,
                reason,
                original,
            };
            match row {
                Err(e) => bad.push(quarantine(format!("CSV sai: {e}"), Vec::new())),
                Ok(row) => {
                    // the row with its header, as a small CSV document: replayable on its own
                    let original = mini_csv(&header, &row, profile.delimiter.as_bytes()[0]);
                    match profile
                        .record(&header, &row, source)
                        .and_then(|rec| canonical::parse_event(&rec, Some(source)))
                    {
                        Ok(e) => good.push(e),
                        Err(reason) => bad.push(quarantine(reason, original)),
                    }
                }
            }
        }
    }
    Ok((good, bad))
}
