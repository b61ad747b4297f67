//! Operator configuration (`config.toml` under the data directory, or `--config`).
//!
//! Every rule that docs/domain.md marks configurable lives here, with the default given there.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::calendar::CalendarConfig;
use crate::WarehouseError;

/// How "late" compares the judged instant with the due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompareMode {
    /// Compare instants (the portal's rule, default).
    #[default]
    Timestamp,
    /// Compare local dates only (some systems do this).
    Date,
}

/// Which event gives a dossier its channel (docs/domain.md does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChannelRule {
    /// The latest non-null `channel` of any event, like the other dimensions (default).
    #[default]
    Latest,
    /// The `channel` of the earliest `received` event; absent there means in person.
    Received,
}

/// Rules of docs/domain.md "Time rules" that real systems disagree on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Subtract the wall-clock length of closed supplement rounds from the judged
    /// instant when the due time is reported (QĐ 766 formula sheet §2.1). Default true.
    pub subtract_pauses: bool,
    /// Timestamp (default) or date comparison for late / on-time.
    pub compare: CompareMode,
    /// Which event's channel counts for "received online / in person".
    pub channel: ChannelRule,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            subtract_pauses: true,
            compare: CompareMode::Timestamp,
            channel: ChannelRule::Latest,
        }
    }
}

/// What `2026-Q1`, `2026-H1` and `2026` mean (docs/domain.md "Official reporting periods").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuarterRule {
    /// 15th of the month before to the 14th of the last month (default).
    #[default]
    Official,
    /// Calendar quarters, half years and years.
    Calendar,
}

/// Reporting-period conventions.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodsConfig {
    pub quarters: QuarterRule,
}

/// Source-system synchronisation (overdue alerts, reconciliation).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// The national portal's source code.
    pub portal_source: String,
    /// A source that has sent nothing for longer than this is stale ("chưa đồng bộ").
    pub stale_after_hours: f64,
    /// End times of one dossier in two systems further apart than this disagree.
    pub end_time_tolerance_seconds: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            portal_source: "dvcqg".to_string(),
            stale_after_hours: 24.0,
            end_time_tolerance_seconds: 3600,
        }
    }
}

/// Where a new event's `(source, event_id)` is looked for among the stored events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DedupScope {
    /// Every stored event (default; the literal reading of "unique per source"). The
    /// commit streams the stored keys past the batch's keys: memory follows the batch,
    /// time follows the table (two narrow columns).
    #[default]
    Table,
    /// Only the stored events of the local months of the batch's events. The same
    /// record sent twice has the same `at`, so it is always caught; an `event_id` reused
    /// by a sender for an event in another month is stored a second time.
    Month,
}

/// The write path.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// A file is read, parsed and committed in chunks of at most this many lines
    /// (records for a JSON array or envelope) …
    pub chunk_lines: usize,
    /// … and at most this many bytes.
    pub chunk_bytes: usize,
    pub dedup: DedupScope,
    /// `giamsat maintain`: files older than this many hours that no current version
    /// and no export run needs are deleted.
    pub vacuum_retention_hours: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            chunk_lines: 100_000,
            chunk_bytes: 64 << 20,
            dedup: DedupScope::Table,
            vacuum_retention_hours: 7 * 24,
        }
    }
}

/// The whole configuration file: every section it may hold. A key no section knows is
/// refused, with the file and the line ([`parse_toml`]).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub calendar: CalendarConfig,
    pub rules: RulesConfig,
    pub periods: PeriodsConfig,
    pub sync: SyncConfig,
    pub ingest: IngestConfig,
    /// `[report]`: the official forms' signatures and headings; read (and checked key by
    /// key) by the reports (`giamsat_api::form`).
    #[serde(skip_serializing)]
    pub report: Option<toml::Value>,
    /// `[exports]`: settings of the scheduled exports; read and checked by the exporter.
    #[serde(skip_serializing)]
    pub exports: Option<toml::Value>,
    /// `[[export]]`: the export jobs; read and checked by the exporter.
    #[serde(skip_serializing)]
    pub export: Option<toml::Value>,
}

/// Read a TOML configuration file into `T`: the one way every configuration file of
/// giamsat is read (`config.toml`, the server's `--config`, `index766.toml`, mapping
/// profiles, `tokens.toml`). Its structs refuse unknown keys, so a misspelt key is an
/// error naming the file and the line, never a silent default.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, WarehouseError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| WarehouseError::Config(format!("không đọc được {}: {e}", path.display())))?;
    parse_toml(&path.display().to_string(), &text)
}

/// Parse the text of the TOML file `file` into `T` (see [`read_toml`]).
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, WarehouseError> {
    toml::from_str(text).map_err(|e| WarehouseError::Config(toml_error(file, text, &e)))
}

/// One line: `FILE, dòng N: what is wrong` (the line where the offending key or value
/// starts).
pub fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> String {
    format!("{file}, {}", toml_line_error(text, e))
}

/// `dòng N: what is wrong`, or only what is wrong when the error has no place.
pub fn toml_line_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text
                .get(..span.start)
                .map_or(0, |t| t.matches('\n').count())
                + 1;
            format!("dòng {line}: {msg}")
        }
        None => msg,
    }
}

impl Config {
    /// Read a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Config, WarehouseError> {
        read_toml(path)
    }

    /// Parse TOML text (of a file named `config.toml` in messages).
    pub fn from_toml(text: &str) -> Result<Config, WarehouseError> {
        parse_toml("config.toml", text)
    }

    /// The configuration of a data directory: `<data>/config.toml` if present, else defaults.
    pub fn for_data_dir(data: &Path) -> Result<Config, WarehouseError> {
        let p = data.join("config.toml");
        if p.exists() {
            Config::from_file(&p)
        } else {
            Ok(Config::default())
        }
    }

    /// Fingerprint of the rules (part of the derived-facts stamp).
    pub fn rules_fingerprint(&self) -> String {
        // the derived tables also hold the reconciliation's findings under `[sync]`
        format!(
            "{:?} portal={} tolerance={}",
            self.rules, self.sync.portal_source, self.sync.end_time_tolerance_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_overrides_and_rules() {
        let c = super::Config::from_toml(
            r#"
[rules]
subtract_pauses = false
compare = "date"
channel = "received"
[calendar]
office_hours = ["07:00-11:00", "13:00-17:00"]
[[calendar.override]]
date = "2026-11-23"
kind = "holiday"
name = "Nghỉ bù"
"#,
        )
        .expect("parse");
        assert!(!c.rules.subtract_pauses);
        assert_eq!(c.rules.compare, super::CompareMode::Date);
        assert_eq!(c.rules.channel, super::ChannelRule::Received);
        assert_eq!(c.calendar.overrides.len(), 1);
        let cal = crate::calendar::Calendar::new(&c.calendar).expect("cal");
        assert_eq!(cal.day_len_micros(), 8 * 3600 * 1_000_000);
    }
}
