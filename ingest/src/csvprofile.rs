//! Exported sheets (CSV, or XLSX/XLS/ODS through [`crate::sheet`]) read with a TOML
//! mapping profile (docs/contract.md §1 "csv"), in two shapes:
//!
//! - **long**: one row per status change; a column maps to `type` (values through
//!   `[status]`) and a column to `at`.
//! - **wide**: one row per dossier (`[events]` present); each date column becomes the
//!   event type it names, the status column adds the final state no date column shows.
//!
//! ```toml
//! source = "bo-yte"                   # default source code (--source overrides)
//! delimiter = ","                     # CSV: one character
//! sheet = "Danh sách hồ sơ"           # workbook: sheet name, or 1-based index (default 1)
//! date_formats = ["%d/%m/%Y %H:%M", "%d/%m/%Y"]   # chrono formats, local time, in order
//! time_if_missing = "00:00"           # time of an event date written without one
//! due_time_if_missing = "17:00"       # time of a due date written without one
//! status_column = "Trạng thái"        # wide: the status column (values through [status])
//! status_at = "Ngày cập nhật"         # wide: the date a status-only event takes
//! [columns]                           # column heading → canonical field
//! "Mã hồ sơ" = "dossier_id"
//! "Ngày hẹn trả" = "due_at"
//! [events]                            # wide: date column → event type
//! "Ngày tiếp nhận" = "received"
//! "Ngày có kết quả" = { type = "resolved", date_formats = ["%d/%m/%Y"] }
//! [status]                            # status value → event type ("" adds nothing)
//! "Đang giải quyết" = ""
//! [channel]                           # values → online|in_person|postal
//! "Trực tuyến" = "online"
//! [constants]                         # fields every event gets
//! field_code = "HT"
//! ```
//!
//! Dates: the profile's formats first, then an Excel serial number (a workbook's date
//! cells arrive as ISO text, see [`crate::sheet`]) and ISO `YYYY-MM-DD[ HH:MM[:SS]]`.
//! The header row is found by the headings the profile names (title rows above it are
//! skipped; two heading rows of merged cells are combined). Blank rows, totals rows
//! ("Tổng…", "Cộng…") and rows with neither a dossier id nor a date (section titles,
//! signature blocks) are ignored; every other row becomes events or is quarantined whole
//! with its row number and cells. Long rows get content-derived ids like canonical
//! records; wide rows get ids from (dossier, type, instant), so a sheet sent again adds
//! only the events whose dates are new. A bad profile is an error naming its TOML line
//! before any data is read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Asia::Ho_Chi_Minh;
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Map, Value};

use giamsat_warehouse::event::{EventType, DIM_COLUMNS, FLAG_COLUMNS};
use giamsat_warehouse::store::QuarantineRow;
use giamsat_warehouse::Event;

use crate::{canonical, IngestError, Input};

/// Rows searched for the header.
pub const HEADER_SEARCH_ROWS: usize = 30;

/// A workbook sheet: by name or by 1-based position.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SheetRef {
    Index(usize),
    Name(String),
}

/// A wide profile's date column: the event type, optionally with its own formats.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EventColumn {
    Type(String),
    Detailed(DetailedEventColumn),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailedEventColumn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub date_formats: Vec<String>,
}

impl EventColumn {
    fn kind(&self) -> &str {
        match self {
            EventColumn::Type(t) => t,
            EventColumn::Detailed(d) => &d.kind,
        }
    }
}

/// A mapping profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub source: Option<String>,
    #[serde(default = "comma")]
    pub delimiter: String,
    /// One format (older profiles); tried before `date_formats`.
    pub date_format: Option<String>,
    #[serde(default)]
    pub date_formats: Vec<String>,
    pub time_if_missing: Option<String>,
    pub due_time_if_missing: Option<String>,
    pub sheet: Option<SheetRef>,
    pub status_column: Option<String>,
    pub status_at: Option<String>,
    /// A row whose first non-empty cell starts with one of these is a totals row.
    pub totals_start_with: Option<Vec<String>>,
    pub columns: BTreeMap<String, String>,
    #[serde(default)]
    pub events: BTreeMap<String, EventColumn>,
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
const TOTALS: [&str; 2] = ["tổng", "cộng"];

fn known(field: &str) -> bool {
    ID_FIELDS.contains(&field)
        || TIME_FIELDS.contains(&field)
        || DIM_COLUMNS.contains(&field)
        || FLAG_COLUMNS.contains(&field)
}

/// A heading as compared: BOM, line breaks and repeated spaces removed.
pub fn norm(s: &str) -> String {
    s.trim_start_matches('\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `message` prefixed with the TOML line that first mentions `key` (quoted, or as a
/// bare key), when there is one.
fn at_line(text: &str, key: &str, message: String) -> String {
    let quoted = format!("\"{key}\"");
    let line = text.lines().position(|l| {
        let t = l.trim_start();
        l.contains(&quoted)
            || t.starts_with(&format!("{key} "))
            || t.starts_with(&format!("{key}="))
    });
    match line {
        Some(i) => format!("dòng {}: {message}", i + 1),
        None => message,
    }
}

fn valid_format(f: &str) -> bool {
    !f.is_empty() && !StrftimeItems::new(f).any(|i| matches!(i, Item::Error))
}

fn clock(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M:%S"))
        .ok()
}

/// Excel serial days → local date-time (1900 system; 60 is Excel's fictitious 29/02/1900).
/// `None` outside 1950–2100, so a year or a count in a date column is not taken as a date.
pub fn excel_serial(v: f64) -> Option<(NaiveDateTime, bool)> {
    if !(18_264.0..73_051.0).contains(&v) {
        return None;
    }
    let days = v.floor();
    let seconds = ((v - days) * 86_400.0).round() as i64;
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    Some((
        base + Duration::days(days as i64) + Duration::seconds(seconds),
        seconds == 0,
    ))
}

/// A checked profile's view of one sheet's header: heading → column index.
pub struct Header {
    pub cells: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    pub fn new(cells: Vec<String>) -> Header {
        let cells: Vec<String> = cells.iter().map(|c| norm(c)).collect();
        let mut index = HashMap::new();
        for (i, c) in cells.iter().enumerate() {
            if !c.is_empty() {
                index.entry(c.clone()).or_insert(i);
            }
        }
        Header { cells, index }
    }

    fn get<'r>(&self, row: &'r [String], heading: &str) -> Option<&'r str> {
        let i = *self.index.get(&norm(heading))?;
        row.get(i).map(|s| s.trim()).filter(|s| !s.is_empty())
    }
}

/// What a data row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Blank,
    Totals,
    /// Neither a dossier id nor a date: a section title, a note, a signature block.
    NoData,
    /// Under a totals row, without a date: the signature block.
    Footer,
    Data,
}

impl RowKind {
    pub fn label(self) -> &'static str {
        match self {
            RowKind::Blank => "hàng trống",
            RowKind::Totals => "hàng tổng",
            RowKind::NoData => "không có mã hồ sơ và ngày (tiêu đề mục, ghi chú)",
            RowKind::Footer => "dưới hàng tổng, không có ngày (chữ ký, ghi chú)",
            RowKind::Data => "dữ liệu",
        }
    }
}

/// The events of one sheet (or chunk of one), and what was set aside.
#[derive(Default)]
pub struct Rows {
    pub events: Vec<Event>,
    pub quarantine: Vec<QuarantineRow>,
    /// Rows ignored, with their number and kind.
    pub ignored: Vec<(i64, RowKind)>,
    /// Rows that gave events, with their number and how many.
    pub good: Vec<(i64, usize)>,
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

    /// Parse and check profile text; an error names the TOML line it is about.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let p: Profile = toml::from_str(text)
            .map_err(|e| giamsat_warehouse::config::toml_line_error(text, &e))?;
        let err = |key: &str, msg: String| at_line(text, key, msg);
        if p.delimiter.len() != 1 {
            return Err(err(
                "delimiter",
                format!("delimiter phải là một ký tự: {:?}", p.delimiter),
            ));
        }
        for f in p
            .date_format
            .iter()
            .chain(&p.date_formats)
            .chain(p.events.values().flat_map(|e| match e {
                EventColumn::Detailed(d) => d.date_formats.iter(),
                EventColumn::Type(_) => [].iter(),
            }))
        {
            if !valid_format(f) {
                return Err(err(f, format!("định dạng ngày không hợp lệ: {f:?}")));
            }
        }
        for (key, v) in [
            ("time_if_missing", &p.time_if_missing),
            ("due_time_if_missing", &p.due_time_if_missing),
        ] {
            if let Some(v) = v {
                if clock(v).is_none() {
                    return Err(err(key, format!("{key} phải có dạng HH:MM: {v:?}")));
                }
            }
        }
        for (col, field) in &p.columns {
            if !known(field) {
                return Err(err(
                    col,
                    format!("cột {col:?} ánh xạ tới trường không tồn tại {field:?}"),
                ));
            }
        }
        for field in p.constants.keys() {
            if !known(field) || TIME_FIELDS.iter().any(|t| t == field) {
                return Err(err(
                    field,
                    format!("constants: trường không dùng được {field:?}"),
                ));
            }
        }
        let mapped = |f: &str| p.columns.values().any(|v| v == f) || p.constants.contains_key(f);
        if p.is_wide() {
            for (col, e) in &p.events {
                let t = e.kind();
                if EventType::parse(t).is_none() {
                    return Err(err(
                        col,
                        format!("cột {col:?} → {t:?}: không phải loại sự kiện"),
                    ));
                }
            }
            for f in ["type", "at"] {
                if let Some((col, _)) = p.columns.iter().find(|(_, v)| *v == f) {
                    return Err(err(
                        col,
                        format!("hồ sơ một hàng một hồ sơ ([events]) không ánh xạ cột tới {f}"),
                    ));
                }
            }
            if !p.columns.values().any(|v| v == "dossier_id") {
                return Err(err("columns", "cần một cột ánh xạ tới dossier_id".into()));
            }
            if p.status_column.is_none() && !p.status.is_empty() {
                return Err(err(
                    "status",
                    "[status] cần status_column (cột trạng thái)".into(),
                ));
            }
        } else {
            for key in ["status_column", "status_at"] {
                if text.lines().any(|l| l.trim_start().starts_with(key)) {
                    return Err(err(key, format!("{key} chỉ dùng với [events]")));
                }
            }
            for required in ["type", "at"] {
                if !mapped(required) {
                    return Err(err(
                        "columns",
                        format!("cần một cột ánh xạ tới {required} (hoặc bảng [events])"),
                    ));
                }
            }
            if !mapped("dossier_id") && !mapped("feedback_id") {
                return Err(err("columns", "cần một cột ánh xạ tới dossier_id".into()));
            }
        }
        for (v, t) in &p.status {
            if !(p.is_wide() && t.is_empty()) && EventType::parse(t).is_none() {
                return Err(err(
                    v,
                    format!("status {v:?} → {t:?}: không phải loại sự kiện"),
                ));
            }
        }
        for (v, c) in &p.channel {
            if !matches!(c.as_str(), "online" | "in_person" | "postal") {
                return Err(err(
                    v,
                    format!("channel {v:?} → {c:?}: phải là online|in_person|postal"),
                ));
            }
        }
        Ok(p)
    }

    /// One row per dossier (`[events]` present).
    pub fn is_wide(&self) -> bool {
        !self.events.is_empty()
    }

    /// The source code to use: `--source`, else the profile's.
    pub fn source_for(&self, source: Option<&str>) -> Result<String, IngestError> {
        let s = source.or(self.source.as_deref()).ok_or_else(|| {
            IngestError::Input("cần --source hoặc source trong hồ sơ ánh xạ".into())
        })?;
        if !canonical::valid_source(s) {
            return Err(IngestError::Input(format!("source không hợp lệ: {s:?}")));
        }
        Ok(s.to_string())
    }

    /// Every heading the profile names (the header row must hold them all).
    pub fn headings(&self) -> Vec<String> {
        let mut h: Vec<String> = self
            .columns
            .keys()
            .chain(self.events.keys())
            .chain(self.status_column.iter())
            .chain(self.status_at.iter())
            .map(|s| norm(s))
            .collect();
        h.sort();
        h.dedup();
        h
    }

    /// The headings of `cells` the profile names but does not find.
    pub fn missing(&self, cells: &[String]) -> Vec<String> {
        let have: Vec<String> = cells.iter().map(|c| norm(c)).collect();
        self.headings()
            .into_iter()
            .filter(|h| !have.contains(h))
            .collect()
    }

    /// The header among the first rows: `(index of its last row, cells)`. One row that
    /// holds every heading, else two consecutive rows combined (the lower cell where it
    /// is filled, else the upper: headings merged over two rows).
    pub fn find_header(&self, rows: &[Vec<String>]) -> Option<(usize, Vec<String>)> {
        let rows = &rows[..rows.len().min(HEADER_SEARCH_ROWS)];
        if let Some(i) = rows.iter().position(|r| self.missing(r).is_empty()) {
            return Some((i, rows[i].clone()));
        }
        rows.windows(2).enumerate().find_map(|(i, w)| {
            let n = w[0].len().max(w[1].len());
            let combined: Vec<String> = (0..n)
                .map(|c| {
                    let lower = w[1].get(c).map(|s| s.trim()).unwrap_or("");
                    if lower.is_empty() {
                        w[0].get(c).cloned().unwrap_or_default()
                    } else {
                        lower.to_string()
                    }
                })
                .collect();
            self.missing(&combined)
                .is_empty()
                .then_some((i + 1, combined))
        })
    }

    /// Blank, totals, no data, footer (`footer`: a totals row came before) or data.
    pub fn classify(&self, header: &Header, row: &[String], footer: bool) -> RowKind {
        let Some(first) = row.iter().map(|c| c.trim()).find(|c| !c.is_empty()) else {
            return RowKind::Blank;
        };
        let first = first.to_lowercase();
        let totals = match &self.totals_start_with {
            Some(list) => list.iter().any(|p| first.starts_with(&p.to_lowercase())),
            None => TOTALS.iter().any(|p| first.starts_with(p)),
        };
        if totals {
            return RowKind::Totals;
        }
        let id = self
            .columns
            .iter()
            .filter(|(_, f)| *f == "dossier_id" || *f == "feedback_id")
            .any(|(c, _)| header.get(row, c).is_some());
        let dated = self
            .columns
            .iter()
            .filter(|(_, f)| *f == "at")
            .map(|(c, _)| c)
            .chain(self.events.keys())
            .chain(self.status_at.iter())
            .any(|c| header.get(row, c).is_some());
        match (id, dated) {
            (_, true) => RowKind::Data,
            (true, false) if footer => RowKind::Footer,
            (true, false) => RowKind::Data,
            (false, false) => RowKind::NoData,
        }
    }

    fn formats<'a>(&'a self, own: &'a [String]) -> impl Iterator<Item = &'a String> {
        own.iter()
            .chain(self.date_format.iter())
            .chain(&self.date_formats)
    }

    /// A date cell → an instant (local time). `due`: a date without time takes
    /// `due_time_if_missing` (default 17:00), else `time_if_missing` (default 00:00).
    pub fn instant(&self, s: &str, own: &[String], due: bool) -> Result<DateTime<Tz>, String> {
        let s = s.trim();
        let missing = if due {
            self.due_time_if_missing.as_deref().and_then(clock)
        } else {
            self.time_if_missing.as_deref().and_then(clock)
        };
        let missing = missing.unwrap_or(if due {
            NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default()
        } else {
            NaiveTime::MIN
        });
        let mut found: Option<NaiveDateTime> = None;
        for f in self.formats(own) {
            if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                found = Some(n);
                break;
            }
            if let Ok(d) = NaiveDate::parse_from_str(s, f) {
                found = Some(d.and_time(missing));
                break;
            }
        }
        if found.is_none() {
            if let Some((n, date_only)) = s.parse::<f64>().ok().and_then(excel_serial) {
                found = Some(if date_only {
                    n.date().and_time(missing)
                } else {
                    n
                });
            }
        }
        if found.is_none() {
            for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
                if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
                    found = Some(n);
                    break;
                }
            }
        }
        if found.is_none() {
            if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                found = Some(d.and_time(missing));
            }
        }
        let n = found.ok_or_else(|| {
            let formats: Vec<&String> = self.formats(own).collect();
            format!("ngày {s:?} không đúng dạng {formats:?}, số ngày Excel hay yyyy-mm-dd")
        })?;
        Ho_Chi_Minh
            .from_local_datetime(&n)
            .single()
            .ok_or_else(|| format!("thời điểm không tồn tại: {s:?}"))
    }

    /// A mapped non-time field's value, through `[status]`, `[channel]` or as a flag.
    fn value(&self, field: &str, value: &str) -> Result<Value, String> {
        Ok(match field {
            "type" if !self.status.is_empty() => Value::String(
                self.status
                    .get(value)
                    .cloned()
                    .ok_or_else(|| format!("trạng thái không có trong hồ sơ ánh xạ: {value:?}"))?,
            ),
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
        })
    }

    /// The fields a row maps (source, constants, mapped columns, unmapped cells in
    /// `attrs`). Wide rows leave their date and status columns to [`Profile::row_events`].
    fn record(
        &self,
        header: &Header,
        row: &[String],
        source: &str,
    ) -> Result<Map<String, Value>, String> {
        let mut obj = Map::new();
        let mut attrs = Map::new();
        obj.insert("source".into(), Value::String(source.to_string()));
        for (k, v) in &self.constants {
            obj.insert(k.clone(), Value::String(v.clone()));
        }
        let wide_only: Vec<String> = self
            .events
            .keys()
            .chain(self.status_at.iter())
            .map(|s| norm(s))
            .collect();
        let mapped: HashMap<String, &String> =
            self.columns.iter().map(|(c, f)| (norm(c), f)).collect();
        for (col, value) in header.cells.iter().zip(row.iter()) {
            let value = value.trim();
            if value.is_empty() || wide_only.contains(col) {
                continue;
            }
            let Some(field) = mapped.get(col) else {
                if !col.is_empty() {
                    attrs.insert(col.clone(), Value::String(value.to_string()));
                }
                continue;
            };
            let v = match field.as_str() {
                "at" => Value::String(self.instant(value, &[], false)?.to_rfc3339()),
                "due_at" => Value::String(self.instant(value, &[], true)?.to_rfc3339()),
                f => self.value(f, value)?,
            };
            obj.insert((*field).clone(), v);
        }
        if !attrs.is_empty() {
            obj.insert("attrs".into(), Value::Object(attrs));
        }
        Ok(obj)
    }

    /// One data row → its events (long: one; wide: one per dated column, plus the
    /// status's when no date column gave that type).
    pub fn row_events(
        &self,
        header: &Header,
        row: &[String],
        source: &str,
    ) -> Result<Vec<Event>, String> {
        let obj = self.record(header, row, source)?;
        if !self.is_wide() {
            let bytes = Value::Object(obj).to_string().into_bytes();
            return Ok(vec![canonical::parse_event(&bytes, Some(source))?]);
        }
        let dossier = obj
            .get("dossier_id")
            .and_then(Value::as_str)
            .ok_or("hàng thiếu mã hồ sơ")?
            .to_string();
        let mut dated: Vec<(String, DateTime<Tz>)> = Vec::new();
        for (col, e) in &self.events {
            if let Some(v) = header.get(row, col) {
                let own = match e {
                    EventColumn::Detailed(d) => d.date_formats.as_slice(),
                    EventColumn::Type(_) => &[],
                };
                let at = self
                    .instant(v, own, false)
                    .map_err(|m| format!("cột {col:?}: {m}"))?;
                dated.push((e.kind().to_string(), at));
            }
        }
        if let Some(col) = &self.status_column {
            if let Some(v) = header.get(row, col) {
                let t = self
                    .status
                    .get(v)
                    .ok_or_else(|| format!("trạng thái không có trong hồ sơ ánh xạ: {v:?}"))?;
                if !t.is_empty() && !dated.iter().any(|(k, _)| k == t) {
                    let at = match self.status_at.as_ref().and_then(|c| header.get(row, c)) {
                        Some(s) => Some(self.instant(s, &[], false).map_err(|m| {
                            format!("cột {:?}: {m}", self.status_at.as_deref().unwrap_or(""))
                        })?),
                        None => dated.iter().map(|(_, a)| *a).max(),
                    };
                    let at = at.ok_or_else(|| {
                        format!("trạng thái {v:?} không có ngày nào để đặt thời điểm")
                    })?;
                    dated.push((t.clone(), at));
                }
            }
        }
        if dated.is_empty() {
            return Err("hàng không có ngày nào thành sự kiện".into());
        }
        dated.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        dated
            .into_iter()
            .map(|(kind, at)| {
                let mut o = obj.clone();
                o.insert("type".into(), Value::String(kind.clone()));
                o.insert("at".into(), Value::String(at.to_rfc3339()));
                let id =
                    canonical::key_digest(&format!("{dossier}|{kind}|{}", at.timestamp_micros()));
                o.insert("event_id".into(), Value::String(format!("w-{id}")));
                canonical::parse_event(Value::Object(o).to_string().as_bytes(), Some(source))
            })
            .collect()
    }

    /// Data rows (number, cells) → events, quarantine (with the header and the row as a
    /// small CSV document, replayable with this profile) and the rows ignored. A row that
    /// could not be read comes as its reason and its bytes (header included). `footer`
    /// carries "a totals row was seen" from one chunk of a sheet to the next.
    pub fn map_rows(
        &self,
        input: &str,
        header: &Header,
        rows: impl IntoIterator<Item = (i64, Result<Vec<String>, (String, Vec<u8>)>)>,
        source: &str,
        footer: &mut bool,
    ) -> Rows {
        let mut out = Rows::default();
        for (line, row) in rows {
            let quarantine = |reason: String, original: Vec<u8>| QuarantineRow {
                source: Some(source.to_string()),
                input: input.to_string(),
                line,
                reason,
                original,
            };
            let row = match row {
                Ok(r) => r,
                Err((e, original)) => {
                    out.quarantine
                        .push(quarantine(format!("CSV sai: {e}"), original));
                    continue;
                }
            };
            match self.classify(header, &row, *footer) {
                RowKind::Data => {}
                kind => {
                    *footer |= kind == RowKind::Totals;
                    out.ignored.push((line, kind));
                    continue;
                }
            }
            match self.row_events(header, &row, source) {
                Ok(events) => {
                    out.good.push((line, events.len()));
                    out.events.extend(events);
                }
                Err(reason) => {
                    let original = mini_csv(&header.cells, &row, self.delimiter_byte());
                    out.quarantine.push(quarantine(reason, original));
                }
            }
        }
        out
    }

    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter.as_bytes().first().copied().unwrap_or(b',')
    }

    /// Whether a CSV line is the header row.
    pub fn is_header_line(&self, line: &[u8]) -> bool {
        csv_cells(line, self.delimiter_byte())
            .into_iter()
            .next()
            .is_some_and(|r| self.missing(&r).is_empty())
    }
}

/// The records of a CSV text as cells (no header handling).
pub fn csv_cells(bytes: &[u8], delimiter: u8) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .records()
        .filter_map(Result::ok)
        .map(|r| r.iter().map(str::to_string).collect())
        .collect()
}

/// A header and a row (text, or the bytes of a row that is not) as a small CSV
/// document: replayable on its own.
pub fn mini_csv<C: AsRef<[u8]>>(
    header: &[String],
    row: impl IntoIterator<Item = C>,
    delimiter: u8,
) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::new());
    let _ = w.write_record(header);
    let _ = w.write_record(row);
    w.into_inner().unwrap_or_default()
}

/// A CSV document read with a profile.
pub struct Document {
    /// Record number (1-based) of the header.
    pub header_row: i64,
    pub header: Header,
    pub rows: Rows,
}

/// Parse one CSV document (header found among its first rows) with a profile.
pub fn parse_document(
    input: &Input,
    profile: &Profile,
    source: &str,
) -> Result<Document, IngestError> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(profile.delimiter_byte())
        .has_headers(false)
        .flexible(true)
        .from_reader(input.bytes.as_slice());
    // records as bytes: a row that is not UTF-8 is quarantined with its bytes
    let mut records = rdr.byte_records().map(|r| {
        let r = r.map_err(|e| (e.to_string(), None))?;
        csv::StringRecord::from_byte_record(r)
            .map(|r| r.iter().map(str::to_string).collect::<Vec<_>>())
            .map_err(|e| {
                let u = e.utf8_error();
                let reason = format!(
                    "hàng không phải UTF-8 (cột {}, byte {})",
                    u.field() + 1,
                    u.valid_up_to()
                );
                (reason, Some(e.into_byte_record()))
            })
    });
    let mut head: Vec<Vec<String>> = Vec::new();
    let mut found = None;
    while head.len() < HEADER_SEARCH_ROWS {
        match records.next() {
            Some(Ok(r)) => head.push(r),
            Some(Err((e, _))) => {
                return Err(IngestError::Input(format!(
                    "{}: dòng tiêu đề CSV sai: dòng {}: {e}",
                    input.name,
                    head.len() + 1
                )))
            }
            None => break,
        }
        if let Some(h) = profile.find_header(&head) {
            found = Some(h);
            break;
        }
    }
    let Some((at, cells)) = found else {
        let first = head
            .iter()
            .find(|r| r.iter().any(|c| !c.trim().is_empty()))
            .cloned()
            .unwrap_or_default();
        return Err(IngestError::Input(format!(
            "{}: không tìm thấy dòng tiêu đề; thiếu cột {:?} của hồ sơ ánh xạ",
            input.name,
            profile.missing(&first)
        )));
    };
    let header = Header::new(cells);
    // rows after the header in the search window, then the rest of the document
    let rest = head
        .into_iter()
        .enumerate()
        .skip(at + 1)
        .map(|(i, r)| (i as i64 + 1, Ok(r)))
        .chain(records.enumerate().map(|(i, r)| {
            let line = (i + HEADER_SEARCH_ROWS.min(at + 1)) as i64 + 1;
            let r = r.map_err(|(e, row)| {
                let original = row
                    .map(|row| mini_csv(&header.cells, &row, profile.delimiter_byte()))
                    .unwrap_or_default();
                (e, original)
            });
            (line, r)
        }));
    let rows = profile.map_rows(&input.name, &header, rest, source, &mut false);
    Ok(Document {
        header_row: at as i64 + 1,
        header,
        rows,
    })
}

/// Parse CSV inputs with a profile; `source` overrides the profile's.
pub fn parse(
    inputs: &[Input],
    profile: &Profile,
    source: Option<&str>,
) -> Result<(Vec<Event>, Vec<QuarantineRow>), IngestError> {
    let source = profile.source_for(source)?;
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for input in inputs {
        let doc = parse_document(input, profile, &source)?;
        good.extend(doc.rows.events);
        bad.extend(doc.rows.quarantine);
    }
    Ok((good, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIDE: &str = r#"source = "bo-yte"
date_formats = ["%d/%m/%Y %H:%M", "%d/%m/%Y"]
status_column = "Trạng thái"

[columns]
"Mã hồ sơ" = "dossier_id"
"Hẹn trả" = "due_at"

[events]
"Tiếp nhận" = "received"
"Có kết quả" = { type = "resolved", date_formats = ["%Y%m%d%H%M%S"] }

[status]
"Đang xử lý" = ""
"Rút hồ sơ" = "withdrawn"
"#;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The header of the test sheet `WIDE` reads.
    fn header() -> Header {
        Header::new(cells(&[
            "STT",
            "Mã hồ sơ",
            "Tiếp nhận",
            "Hẹn trả",
            "Có kết quả",
            "Trạng thái",
        ]))
    }

    fn local(s: &str) -> DateTime<Tz> {
        let n = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("instant");
        Ho_Chi_Minh.from_local_datetime(&n).single().expect("local")
    }

    #[test]
    fn dates_in_every_shape() {
        let p = Profile::parse(WIDE).expect("profile");
        let at = |s: &str, due: bool| p.instant(s, &[], due).expect(s);
        assert_eq!(at("05/03/2026 08:15", false), local("2026-03-05 08:15"));
        assert_eq!(at("05/03/2026", false), local("2026-03-05 00:00"));
        assert_eq!(
            at("05/03/2026", true),
            local("2026-03-05 17:00"),
            "a due date alone"
        );
        // 46086 = 05/03/2026 in Excel's 1900 system; .75 = 18:00
        assert_eq!(at("46086", false), local("2026-03-05 00:00"));
        assert_eq!(at("46086.75", false), local("2026-03-05 18:00"));
        assert_eq!(at("2026-03-05 08:15:00", false), local("2026-03-05 08:15"));
        assert_eq!(at("2026-03-05", true), local("2026-03-05 17:00"));
        for bad in ["31/02/2026", "2026", "hôm qua", "1999"] {
            assert!(p.instant(bad, &[], false).is_err(), "{bad}");
        }
        let own = vec!["%Y%m%d%H%M%S".to_string()];
        assert_eq!(
            p.instant("20260305081500", &own, false).expect("own"),
            local("2026-03-05 08:15")
        );
    }

    #[test]
    fn two_heading_rows_merged_are_combined() {
        let p = Profile::parse(WIDE).expect("profile");
        let rows = vec![
            cells(&["SỞ Y TẾ", "", "", "", ""]),
            cells(&["STT", "Mã hồ sơ", "Ngày", "", "", "Trạng thái"]),
            cells(&["", "", "Tiếp nhận", "Hẹn\ntrả", "Có  kết quả", ""]),
            cells(&["1", "H-1", "05/03/2026", "06/03/2026", "", "Đang xử lý"]),
        ];
        let (at, header) = p.find_header(&rows).expect("header");
        assert_eq!(at, 2);
        assert_eq!(
            Header::new(header).cells,
            cells(&[
                "STT",
                "Mã hồ sơ",
                "Tiếp nhận",
                "Hẹn trả",
                "Có kết quả",
                "Trạng thái"
            ])
        );
        assert!(p.find_header(&rows[..2]).is_none());
    }

    #[test]
    fn wide_rows_become_events_with_ids_from_dossier_type_and_instant() {
        let p = Profile::parse(WIDE).expect("profile");
        let header = header();
        let row = cells(&[
            "1",
            "H-1",
            "05/03/2026 08:00",
            "06/03/2026",
            "20260306101500",
            "Đang xử lý",
        ]);
        let e = p.row_events(&header, &row, "bo-yte").expect("events");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].event_type.as_str(), e[1].event_type.as_str()),
            ("received", "resolved")
        );
        assert_eq!(
            e[1].due_at,
            Some(local("2026-03-06 17:00").timestamp_micros())
        );
        // another STT, status and due: the same two events
        let again = cells(&[
            "7",
            "H-1",
            "05/03/2026 08:00",
            "09/03/2026",
            "20260306101500",
            "Rút hồ sơ",
        ]);
        let f = p.row_events(&header, &again, "bo-yte").expect("events");
        assert_eq!(f[0].event_id, e[0].event_id);
        assert_eq!(f[1].event_id, e[1].event_id);
        // the status adds withdrawn at the row's latest date
        assert_eq!(f.len(), 3);
        assert_eq!(f[2].event_type, "withdrawn");
        assert_eq!(f[2].at, f[1].at);
        let unknown = cells(&["1", "H-1", "05/03/2026", "", "", "Lạ"]);
        assert!(p
            .row_events(&header, &unknown, "bo-yte")
            .expect_err("unknown status")
            .contains("Lạ"));
        let no_dates = cells(&["1", "H-1", "", "06/03/2026", "", "Đang xử lý"]);
        assert!(p.row_events(&header, &no_dates, "bo-yte").is_err());
    }

    #[test]
    fn row_kinds() {
        let p = Profile::parse(WIDE).expect("profile");
        let header = header();
        let kind = |r: &[&str], footer| p.classify(&header, &cells(r), footer);
        assert_eq!(kind(&["", " ", ""], false), RowKind::Blank);
        assert_eq!(kind(&["TỔNG CỘNG", "", "12"], false), RowKind::Totals);
        assert_eq!(kind(&["Cộng lĩnh vực", "", ""], false), RowKind::Totals);
        assert_eq!(kind(&["I. Lĩnh vực y tế", "", ""], false), RowKind::NoData);
        assert_eq!(kind(&["", "Người lập biểu", ""], true), RowKind::Footer);
        assert_eq!(kind(&["", "Người lập biểu", ""], false), RowKind::Data);
        assert_eq!(kind(&["3", "H-3", "05/03/2026"], true), RowKind::Data);
    }

    #[test]
    fn a_row_that_is_not_utf8_is_quarantined_with_its_bytes() {
        let p = Profile::parse(WIDE).expect("profile");
        let mut bytes = "Mã hồ sơ,Tiếp nhận,Hẹn trả,Có kết quả,Trạng thái\n"
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(b"H-1,05/03/2026,,,\xff\xfe\n");
        bytes.extend_from_slice("H-2,05/03/2026,,,Đang xử lý\n".as_bytes());
        let input = Input {
            name: "t.csv".into(),
            bytes,
        };
        let doc = parse_document(&input, &p, "bo-yte").expect("document");
        assert_eq!(doc.rows.good, vec![(3, 1)]);
        let q = &doc.rows.quarantine;
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].line, 2);
        assert!(q[0].reason.contains("UTF-8 (cột 5"), "{}", q[0].reason);
        assert!(q[0].original.starts_with("Mã hồ sơ,".as_bytes()));
        assert!(q[0].original.ends_with(b"H-1,05/03/2026,,,\xff\xfe\n"));
    }

    #[test]
    fn a_bad_profile_names_its_line() {
        let bad = WIDE.replace("\"Hẹn trả\" = \"due_at\"", "\"Hẹn trả\" = \"han\"");
        let e = Profile::parse(&bad).expect_err("unknown field");
        assert!(e.starts_with("dòng 7:") && e.contains("han"), "{e}");
        let bad = WIDE.replace("\"Rút hồ sơ\" = \"withdrawn\"", "\"Rút hồ sơ\" = \"rut\"");
        let e = Profile::parse(&bad).expect_err("unknown type");
        assert!(e.starts_with("dòng 15:"), "{e}");
        let bad = WIDE.replace("[events]", "[events\n");
        let e = Profile::parse(&bad).expect_err("syntax");
        assert!(e.starts_with("dòng 9:"), "{e}");
        let e = Profile::parse(&WIDE.replace("source =", "nguon =")).expect_err("unknown key");
        assert!(e.starts_with("dòng 1:") && e.contains("nguon"), "{e}");
        let bad = WIDE.replace("\"%d/%m/%Y\"]", "\"%d/%m/%Q\"]");
        assert!(Profile::parse(&bad)
            .expect_err("format")
            .starts_with("dòng 2:"));
        let long_with_status_column = "date_format = \"%d/%m/%Y\"\nstatus_column = \"X\"\n[columns]\n\"A\" = \"dossier_id\"\n\"B\" = \"type\"\n\"C\" = \"at\"\n";
        assert!(Profile::parse(long_with_status_column)
            .expect_err("long")
            .starts_with("dòng 2:"));
    }
}
