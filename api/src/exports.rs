//! Scheduled indicator exports: jobs in `<data>/config.toml` (`[[export]]`, settings in
//! `[exports]`), fired by a cron schedule in Asia/Ho_Chi_Minh, each run computed on a
//! session pinned to the Delta table versions it read and to its instant, written to a
//! directory of an object store, and recorded in the `export_runs` Delta table.
//!
//! * **Reproducible**: a run records the version of every table it read and its instant;
//!   [`Exporter::rerun`] computes it again on exactly that and must give the same bytes
//!   (XLSX creation time is the instant, not the wall clock).
//! * **Catch-up**: every tick looks at all the slots since the job was first seen (at most
//!   `catch_up_days` back) that have no successful run, so slots missed while no server
//!   was up run at the next start.
//! * **Retries** with exponential backoff, per slot, decided from the recorded runs (so
//!   they survive restarts); a failing job never holds up another (jobs run concurrently,
//!   each with its own time limit).
//! * **One server per slot**: before running slot *s*, attempt *n*, a server creates the
//!   object `_exports/leases/<job>/<s>/<n>` with an atomic create-if-absent in the data
//!   directory's object store; whoever fails to create it skips. A lease older than
//!   `lease_seconds` without a run record is a crashed attempt and counts as failed.
//!
//! The clock is injected: [`Exporter::tick`] takes "now", the server loop passes the
//! wall clock, tests pass chosen instants.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, SubsecRound, Utc};
use chrono_tz::Asia::Ho_Chi_Minh;
use croner::Cron;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::execution::runtime_env::RuntimeEnv;
use futures::StreamExt;
use giamsat_warehouse::ErrorKind;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use giamsat_queries::period::{Period, QuarterRule};
use giamsat_queries::{Pin, QueryError};
use giamsat_warehouse::store::{Warehouse, EXPORT_RUNS};

use crate::reports::{self, Rendered, ReportEnv};

/// Errors of the exporter. `Config` and `BadInput` are the operator's or caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cấu hình xuất báo cáo sai: {0}")]
    Config(String),
    #[error("{0}")]
    BadInput(String),
    /// No such run (HTTP 404).
    #[error("không có lần chạy {0}")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Warehouse(#[from] giamsat_warehouse::WarehouseError),
    #[error("kho tệp: {0}")]
    Store(#[from] object_store::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl ExportError {
    /// Whose fault it is ([`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExportError::Config(_) => ErrorKind::Config,
            ExportError::BadInput(_) => ErrorKind::BadInput,
            ExportError::NotFound(_) => ErrorKind::NotFound,
            ExportError::Query(q) => q.kind(),
            ExportError::Warehouse(w) => w.kind(),
            ExportError::Store(_) | ExportError::Arrow(_) | ExportError::Json(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// `[exports]`: how the scheduler behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSettings {
    /// Seconds between two looks at the schedules (the server loop).
    pub poll_seconds: f64,
    /// Missed slots older than this are not caught up.
    pub catch_up_days: u32,
    /// Attempts of one slot before giving up.
    pub max_attempts: u32,
    /// First retry after this many seconds, then doubling…
    pub retry_base_seconds: f64,
    /// …up to this.
    pub retry_max_seconds: f64,
    /// An attempt that holds its lease longer than this without recording a result is
    /// taken as crashed.
    pub lease_seconds: f64,
    /// Time limit of one run.
    pub job_timeout_seconds: f64,
    /// Rows of a saved-SQL export at most.
    pub max_rows: usize,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            poll_seconds: 30.0,
            catch_up_days: 40,
            max_attempts: 5,
            retry_base_seconds: 60.0,
            retry_max_seconds: 3600.0,
            lease_seconds: 900.0,
            job_timeout_seconds: 600.0,
            max_rows: 1_000_000,
        }
    }
}

/// What a job exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportKind {
    #[serde(rename = "bieu06")]
    Bieu06,
    #[serde(rename = "766")]
    Index766,
    #[serde(rename = "on-time")]
    OnTime,
    #[serde(rename = "sql")]
    Sql,
    /// The access log's rows of the period (admins only: its runs are invisible to
    /// every other role).
    #[serde(rename = "access-log")]
    AccessLog,
}

/// When a slot falls on a day off (weekend, holiday, Tết) of the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HolidayRule {
    /// Run anyway (default).
    #[default]
    Run,
    /// Run at the same local time on the next working day.
    NextWorkingDay,
}

/// One `[[export]]` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Unique name: letters, digits, `-`, `_`.
    pub name: String,
    /// `bieu06`, `766`, `on-time`, `sql` or `access-log`.
    pub report: ReportKind,
    /// Cron in Asia/Ho_Chi_Minh: `min hour day month weekday`, optionally with seconds
    /// first; `L` = last day of the month (croner syntax).
    pub schedule: String,
    /// A period rule (see [`PeriodRule`]) or a fixed period (`2026-Q1`, `FROM..TO`).
    pub period: String,
    /// `xlsx` (default), `csv` or `json`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Scope: the export sees only this province / commune (as a viewer token would).
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub commune: Option<String>,
    /// Rows of the report (Biểu 06 / on-time: field, commune…; 766: province, commune, agency).
    #[serde(default)]
    pub group_by: Option<String>,
    /// The saved query of a `sql` job; `{from}` and `{to}` become the period's dates
    /// (`DATE 'YYYY-MM-DD'`).
    #[serde(default)]
    pub sql: Option<String>,
    /// Directory: relative = under the data directory; `file:///abs/dir`. Default
    /// `exports/<name>` under the data directory.
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub on_holiday: HolidayRule,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_format() -> String {
    "xlsx".into()
}
fn yes() -> bool {
    true
}

/// The exports section of the data directory's configuration.
#[derive(Debug, Clone, Default)]
pub struct ExportsConfig {
    pub settings: ExportSettings,
    pub jobs: Vec<JobSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileShape {
    exports: ExportSettings,
    #[serde(rename = "export")]
    jobs: Vec<JobSpec>,
}

impl ExportsConfig {
    /// `[exports]` and `[[export]]` of `<data>/config.toml` (none if absent), checked.
    pub fn for_data_dir(data: &std::path::Path) -> Result<ExportsConfig, ExportError> {
        let p = data.join("config.toml");
        if !p.exists() {
            return Ok(ExportsConfig::default());
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| ExportError::Config(format!("không đọc được config.toml: {e}")))?;
        ExportsConfig::from_toml(&text)
    }

    /// Parse and check.
    pub fn from_toml(text: &str) -> Result<ExportsConfig, ExportError> {
        let f: FileShape = giamsat_warehouse::config::parse_toml("config.toml", text)
            .map_err(|e| ExportError::Config(e.to_string()))?;
        let cfg = ExportsConfig {
            settings: f.exports,
            jobs: f.jobs,
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ExportError> {
        let s = &self.settings;
        if !(s.poll_seconds > 0.0
            && s.retry_base_seconds >= 0.0
            && s.retry_max_seconds >= 0.0
            && s.lease_seconds > 0.0
            && s.job_timeout_seconds > 0.0
            && s.max_attempts >= 1)
        {
            return Err(ExportError::Config(
                "[exports]: thời gian phải dương, max_attempts ≥ 1".into(),
            ));
        }
        let mut names = HashSet::new();
        for j in &self.jobs {
            j.check()?;
            if !names.insert(j.name.clone()) {
                return Err(ExportError::Config(format!("trùng tên job: {}", j.name)));
            }
        }
        Ok(())
    }

    /// The job called `name`.
    pub fn job(&self, name: &str) -> Result<&JobSpec, ExportError> {
        self.jobs.iter().find(|j| j.name == name).ok_or_else(|| {
            ExportError::BadInput(format!(
                "không có job xuất báo cáo tên {name:?} trong config.toml"
            ))
        })
    }
}

fn code_ok(v: &Option<String>, len: usize) -> bool {
    v.as_ref()
        .is_none_or(|c| c.len() == len && c.chars().all(|ch| ch.is_ascii_digit()))
}

impl JobSpec {
    fn check(&self) -> Result<(), ExportError> {
        let bad = |m: String| ExportError::Config(format!("job {:?}: {m}", self.name));
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("tên chỉ gồm chữ, số, - và _ (tối đa 64 ký tự)".into()));
        }
        self.cron().map_err(|e| bad(e.to_string()))?;
        PeriodRule::parse(&self.period).map_err(|e| bad(e.to_string()))?;
        match (self.format.as_str(), self.report) {
            ("xlsx" | "csv" | "json", _) => {}
            ("form-xlsx" | "pdf", ReportKind::Bieu06 | ReportKind::Index766) => {}
            ("form-xlsx" | "pdf", _) => {
                return Err(bad(
                    "form-xlsx và pdf (mẫu chính thức) chỉ có cho bieu06 và 766".into(),
                ))
            }
            _ => {
                return Err(bad(
                    "format phải là xlsx, csv, json, form-xlsx hoặc pdf".into()
                ))
            }
        }
        if !code_ok(&self.province, 2) || !code_ok(&self.commune, 5) {
            return Err(bad("mã tỉnh 2 chữ số, mã xã 5 chữ số".into()));
        }
        match (self.report, &self.sql) {
            (ReportKind::Sql, None) => return Err(bad("report = \"sql\" cần sql".into())),
            (ReportKind::Sql, Some(_)) => {}
            (_, Some(_)) => return Err(bad("sql chỉ dùng với report = \"sql\"".into())),
            _ => {}
        }
        if self.report == ReportKind::AccessLog
            && (self.province.is_some() || self.commune.is_some() || self.group_by.is_some())
        {
            return Err(bad(
                "report = \"access-log\" là nhật ký toàn hệ thống: không có province, commune \
                 hay group_by"
                    .into(),
            ));
        }
        Destination::parse(self.destination.as_deref(), &self.name)
            .map_err(|e| bad(e.to_string()))?;
        Ok(())
    }

    /// The parsed schedule.
    pub fn cron(&self) -> Result<Cron, ExportError> {
        Cron::from_str(&self.schedule).map_err(|e| {
            ExportError::Config(format!("lịch cron không hợp lệ {:?}: {e}", self.schedule))
        })
    }

    /// Nominal slots (cron occurrences) in `(after, until]`, at most `cap`.
    pub fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        cap: usize,
    ) -> Result<Vec<DateTime<Utc>>, ExportError> {
        let cron = self.cron()?;
        // slots are whole seconds whatever the sub-second part of `after`
        let after = after.trunc_subsecs(0);
        Ok(cron
            .iter_after(after.with_timezone(&Ho_Chi_Minh))
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= until)
            .take(cap)
            .collect())
    }

    /// When a slot actually runs: itself, or the same local time on the next working day
    /// (`on_holiday = "next_working_day"`).
    pub fn effective(
        &self,
        slot: DateTime<Utc>,
        cal: &giamsat_warehouse::Calendar,
    ) -> DateTime<Utc> {
        if self.on_holiday == HolidayRule::Run {
            return slot;
        }
        let local = slot.with_timezone(&Ho_Chi_Minh);
        let mut day = local.date_naive();
        for _ in 0..60 {
            if cal.is_working_day(day).unwrap_or(true) {
                break;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        day.and_time(local.time())
            .and_local_timezone(Ho_Chi_Minh)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(slot)
    }
}

/// Which period a run reports, from the local date of its slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodRule {
    /// `previous_day`
    PreviousDay,
    /// `previous_month`: the calendar month before.
    PreviousMonth,
    /// `previous_official_month`: the last 15th-to-14th month that ended before the day.
    PreviousOfficialMonth,
    /// `previous_official_quarter`: the last official quarter (15/12–14/3, …) that ended.
    PreviousOfficialQuarter,
    /// `previous_calendar_quarter`
    PreviousCalendarQuarter,
    /// `previous_official_year`: 15/12–14/12, the last that ended.
    PreviousOfficialYear,
    /// `previous_year`: the calendar year before.
    PreviousYear,
    /// `year_to_date`: 1 January to the day before.
    YearToDate,
    /// A fixed period (`2026-Q1`, `2026-03`, `FROM..TO`).
    Fixed(String),
}

impl PeriodRule {
    /// Parse a rule name or a fixed period.
    pub fn parse(s: &str) -> Result<PeriodRule, ExportError> {
        Ok(match s.trim() {
            "previous_day" => PeriodRule::PreviousDay,
            "previous_month" => PeriodRule::PreviousMonth,
            "previous_official_month" => PeriodRule::PreviousOfficialMonth,
            "previous_official_quarter" => PeriodRule::PreviousOfficialQuarter,
            "previous_calendar_quarter" => PeriodRule::PreviousCalendarQuarter,
            "previous_official_year" => PeriodRule::PreviousOfficialYear,
            "previous_year" => PeriodRule::PreviousYear,
            "year_to_date" => PeriodRule::YearToDate,
            other => {
                Period::parse(other, QuarterRule::Official).map_err(|_| {
                    ExportError::Config(format!(
                        "period {other:?}: dùng previous_day, previous_month, previous_official_month, \
                         previous_official_quarter, previous_calendar_quarter, previous_official_year, \
                         previous_year, year_to_date hoặc một kỳ cố định (2026-Q1, 2026-03, FROM..TO)"
                    ))
                })?;
                PeriodRule::Fixed(other.to_string())
            }
        })
    }

    /// The period for a slot whose local date is `day`.
    pub fn resolve(&self, day: NaiveDate, quarters: QuarterRule) -> Result<Period, QueryError> {
        let bad = || QueryError::BadInput(format!("không tính được kỳ cho ngày {day}"));
        let prev_day = day.pred_opt().ok_or_else(bad)?;
        let ymd = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad);
        let parse = |s: String| Period::parse(&s, quarters);
        match self {
            PeriodRule::PreviousDay => Ok(Period::range(prev_day, prev_day)),
            PeriodRule::PreviousMonth => {
                let m = ymd(day.year(), day.month(), 1)?
                    .checked_sub_months(Months::new(1))
                    .ok_or_else(bad)?;
                parse(format!("{:04}-{:02}", m.year(), m.month()))
            }
            PeriodRule::PreviousOfficialMonth => {
                let this14 = ymd(day.year(), day.month(), 14)?;
                let end = if day > this14 {
                    this14
                } else {
                    this14.checked_sub_months(Months::new(1)).ok_or_else(bad)?
                };
                let start = end
                    .checked_sub_months(Months::new(1))
                    .and_then(|d| d.succ_opt())
                    .ok_or_else(bad)?;
                Ok(Period::range(start, end))
            }
            PeriodRule::PreviousOfficialQuarter => {
                for y in [day.year(), day.year() - 1] {
                    for q in (1..=4u32).rev() {
                        if ymd(y, 3 * q, 14)? < day {
                            return parse(format!("{y}-OQ{q}"));
                        }
                    }
                }
                Err(bad())
            }
            PeriodRule::PreviousCalendarQuarter => {
                let q = (day.month() - 1) / 3 + 1;
                let (y, q) = if q == 1 {
                    (day.year() - 1, 4)
                } else {
                    (day.year(), q - 1)
                };
                parse(format!("{y}-CQ{q}"))
            }
            PeriodRule::PreviousOfficialYear => {
                let y = if ymd(day.year(), 12, 14)? < day {
                    day.year()
                } else {
                    day.year() - 1
                };
                parse(format!("{y}-OY"))
            }
            PeriodRule::PreviousYear => parse(format!("{}-CY", day.year() - 1)),
            PeriodRule::YearToDate => Ok(Period::range(ymd(prev_day.year(), 1, 1)?, prev_day)),
            PeriodRule::Fixed(s) => parse(s.clone()),
        }
    }
}

/// Where a job's files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A directory under the data directory (relative, no `..`).
    Data(String),
    /// An absolute local directory (`file:///…`).
    Local(std::path::PathBuf),
}

impl Destination {
    /// Parse a job's `destination` (default `exports/<name>`).
    pub fn parse(s: Option<&str>, job: &str) -> Result<Destination, ExportError> {
        let s = s.map(str::trim).filter(|s| !s.is_empty());
        let Some(s) = s else {
            return Ok(Destination::Data(format!("exports/{job}")));
        };
        if let Some(rest) = s.strip_prefix("file://") {
            let p = std::path::PathBuf::from(rest);
            if !p.is_absolute() {
                return Err(ExportError::Config(format!(
                    "destination {s:?}: file:// cần đường dẫn tuyệt đối"
                )));
            }
            return Ok(Destination::Local(p));
        }
        if s.contains("://") {
            return Err(ExportError::Config(format!(
                "destination {s:?}: chỉ hỗ trợ thư mục cục bộ (tương đối với thư mục dữ liệu, hoặc file:///…)"
            )));
        }
        let p = std::path::Path::new(s);
        if p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(ExportError::Config(format!(
                "destination {s:?}: đường dẫn tương đối, không có .. (hoặc file:///…)"
            )));
        }
        Ok(Destination::Data(s.trim_end_matches('/').to_string()))
    }

    /// The text stored in a run record.
    pub fn as_text(&self) -> String {
        match self {
            Destination::Data(p) => p.clone(),
            Destination::Local(p) => format!("file://{}", p.display()),
        }
    }

    /// The object store and the key prefix of the directory.
    fn open(&self, data: &std::path::Path) -> Result<(Arc<dyn ObjectStore>, String), ExportError> {
        let dir = match self {
            Destination::Data(rel) => data.join(rel),
            Destination::Local(p) => p.clone(),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| ExportError::BadInput(format!("không tạo được thư mục đích: {e}")))?;
        Ok((
            Arc::new(LocalFileSystem::new_with_prefix(&dir)?),
            String::new(),
        ))
    }
}

/// One run of a job, as stored in `export_runs` and listed by `GET /api/v1/exports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExportRun {
    pub run_id: String,
    pub job: String,
    /// `schedule`, `catch_up`, `retry` or `manual`.
    pub trigger: String,
    /// The cron slot (none for manual runs).
    #[schema(value_type = Option<String>)]
    pub scheduled_for: Option<DateTime<Utc>>,
    pub attempt: i64,
    pub period_label: String,
    #[schema(value_type = String)]
    pub period_from: NaiveDate,
    #[schema(value_type = String)]
    pub period_to: NaiveDate,
    pub report: String,
    pub format: String,
    pub province: Option<String>,
    pub commune: Option<String>,
    /// JSON object: Delta version of each table read.
    pub table_versions: String,
    /// The instant the run computed "now" as.
    #[schema(value_type = String)]
    pub as_of: DateTime<Utc>,
    #[schema(value_type = String)]
    pub started_at: DateTime<Utc>,
    #[schema(value_type = String)]
    pub finished_at: DateTime<Utc>,
    /// `ok` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub destination: String,
    /// File name inside the destination directory (ok runs).
    pub object_key: Option<String>,
    pub bytes: Option<i64>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// Which server ran it.
    pub server: String,
    /// The job's definition at the time (JSON), so that a re-run does what it did.
    pub spec: String,
}

fn export_runs_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("job", DataType::Utf8, false),
        Field::new("trigger", DataType::Utf8, false),
        Field::new("scheduled_for", ts(), true),
        Field::new("attempt", DataType::Int64, false),
        Field::new("period_label", DataType::Utf8, false),
        Field::new("period_from", DataType::Date32, false),
        Field::new("period_to", DataType::Date32, false),
        Field::new("report", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, false),
        Field::new("province", DataType::Utf8, true),
        Field::new("commune", DataType::Utf8, true),
        Field::new("table_versions", DataType::Utf8, false),
        Field::new("as_of", ts(), false),
        Field::new("started_at", ts(), false),
        Field::new("finished_at", ts(), false),
        Field::new("status", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, true),
        Field::new("destination", DataType::Utf8, false),
        Field::new("object_key", DataType::Utf8, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("sha256", DataType::Utf8, true),
        Field::new("server", DataType::Utf8, false),
        Field::new("spec", DataType::Utf8, false),
    ]))
}

/// A lease object's content.
#[derive(Serialize, Deserialize)]
struct Lease {
    owner: String,
    acquired_at: DateTime<Utc>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn ext(format: &str) -> &str {
    match format {
        "csv" => "csv",
        "json" => "json",
        "pdf" => "pdf",
        _ => "xlsx",
    }
}

fn content_type(format: &str) -> &'static str {
    match format {
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        _ => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
}

/// A run's file, to download.
pub struct ExportFile {
    pub run: ExportRun,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The scheduler and runner of exports over one warehouse.
pub struct Exporter {
    wh: Arc<Warehouse>,
    env: ReportEnv,
    runtime: Arc<RuntimeEnv>,
    pub config: ExportsConfig,
    data_store: Arc<dyn ObjectStore>,
    owner: String,
    running: Mutex<HashSet<String>>,
    /// Serialises appends to `export_runs` from this process.
    record_lock: tokio::sync::Mutex<()>,
}

impl Exporter {
    /// An exporter for the warehouse with the jobs of its `config.toml`.
    pub fn new(
        wh: Arc<Warehouse>,
        env: ReportEnv,
        runtime: Arc<RuntimeEnv>,
        config: ExportsConfig,
    ) -> Result<Exporter, ExportError> {
        let data_store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(wh.root())?);
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let owner = format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Exporter {
            wh,
            env,
            runtime,
            config,
            data_store,
            owner,
            running: Mutex::new(HashSet::new()),
            record_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Every recorded run, oldest first.
    pub async fn history(&self) -> Result<Vec<ExportRun>, ExportError> {
        let batches = self.wh.read(EXPORT_RUNS, "*").await?;
        let (_, body) = crate::sql::encode(&batches, "json")
            .map_err(|e| ExportError::Query(QueryError::Internal(e)))?;
        let mut runs: Vec<ExportRun> = serde_json::from_slice(&body)?;
        runs.sort_by(|a, b| (a.finished_at, &a.run_id).cmp(&(b.finished_at, &b.run_id)));
        Ok(runs)
    }

    /// Per table, the oldest version a recorded run reads: what table maintenance must
    /// keep readable so that every run can be computed again byte for byte.
    pub async fn pinned_versions(&self) -> Result<BTreeMap<String, i64>, ExportError> {
        let mut pinned = BTreeMap::new();
        for run in self.history().await? {
            let versions: BTreeMap<String, i64> = serde_json::from_str(&run.table_versions)?;
            for (table, v) in versions {
                let e = pinned.entry(table).or_insert(v);
                *e = (*e).min(v);
            }
        }
        Ok(pinned)
    }

    /// One recorded run.
    pub async fn find(&self, run_id: &str) -> Result<ExportRun, ExportError> {
        if run_id.is_empty() || run_id.len() > 64 || !run_id.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(ExportError::BadInput(format!(
                "mã lần chạy không hợp lệ: {run_id:?}"
            )));
        }
        self.history()
            .await?
            .into_iter()
            .find(|r| r.run_id == run_id)
            .ok_or_else(|| ExportError::NotFound(run_id.to_string()))
    }

    async fn record(&self, run: &ExportRun) -> Result<(), ExportError> {
        let _g = self.record_lock.lock().await;
        let mut dec =
            datafusion::arrow::json::ReaderBuilder::new(export_runs_schema()).build_decoder()?;
        dec.serialize(std::slice::from_ref(run))?;
        let Some(batch) = dec.flush()? else {
            return Ok(());
        };
        self.wh.append_batch(EXPORT_RUNS, batch).await?;
        Ok(())
    }

    /// Compute a job's file for a period on a pinned session (fresh pin when `pin` is
    /// `None`: facts brought up to date, current versions, `as_of`).
    async fn compute(
        &self,
        job: &JobSpec,
        period: &Period,
        as_of: DateTime<Utc>,
        pin: Option<Pin>,
    ) -> Result<(Rendered, Pin), ExportError> {
        let pin = match pin {
            Some(p) => p,
            None => {
                self.wh.ensure_facts().await?;
                Pin {
                    versions: self.wh.table_versions().await?,
                    as_of_micros: as_of.timestamp_micros(),
                }
            }
        };
        let base = giamsat_queries::session_pinned(&self.wh, self.runtime.clone(), &pin).await?;
        let provinces: Vec<String> = job.province.iter().cloned().collect();
        let communes: Vec<String> = job.commune.iter().cloned().collect();
        let scope = (!provinces.is_empty() || !communes.is_empty())
            .then_some((provinces.as_slice(), communes.as_slice()));
        let ctx = giamsat_queries::scoped_session_at(
            &base,
            self.env.calendar.clone(),
            scope,
            Some(pin.as_of_micros),
        )
        .await?;
        let mut env = self.env.clone();
        env.created_at = Some(pin.as_of_micros);
        let format = Some(job.format.clone());
        let label = if period.label.contains("..") {
            format!("{}..{}", period.from, period.to)
        } else {
            period.label.clone()
        };
        let r = match job.report {
            ReportKind::Bieu06 => {
                let q = reports::Bieu06Query {
                    from: Some(period.from.to_string()),
                    to: Some(period.to.to_string()),
                    province: job.province.clone(),
                    commune: job.commune.clone(),
                    group_by: job.group_by.clone(),
                    format,
                    ..Default::default()
                };
                reports::bieu06(&ctx, &env, &q).await?
            }
            ReportKind::Index766 => {
                let q = reports::Index766Query {
                    period: Some(label),
                    province: job.province.clone(),
                    commune: job.commune.clone(),
                    group_by: job.group_by.clone(),
                    format,
                    ..Default::default()
                };
                reports::index766(&ctx, &env, &q).await?
            }
            ReportKind::OnTime => {
                let q = reports::OnTimeQuery {
                    period: Some(label),
                    province: job.province.clone(),
                    commune: job.commune.clone(),
                    group_by: job.group_by.clone(),
                    format,
                    ..Default::default()
                };
                reports::on_time(&ctx, &env, &q).await?
            }
            ReportKind::Sql => {
                let sql = job
                    .sql
                    .as_deref()
                    .unwrap_or_default()
                    .replace("{from}", &format!("DATE '{}'", period.from))
                    .replace("{to}", &format!("DATE '{}'", period.to));
                reports::saved_sql(&ctx, &env, &sql, &job.format, self.config.settings.max_rows)
                    .await?
            }
            ReportKind::AccessLog => {
                crate::access::register(&ctx, &self.wh).await?;
                reports::saved_sql(
                    &ctx,
                    &env,
                    &crate::access::period_sql(period.from, period.to),
                    &job.format,
                    self.config.settings.max_rows,
                )
                .await?
            }
        };
        Ok((r, pin))
    }

    /// Run a job for a period now and record it (`trigger`, slot, attempt).
    async fn execute(
        &self,
        job: &JobSpec,
        period: Period,
        now: DateTime<Utc>,
        trigger: &str,
        slot: Option<DateTime<Utc>>,
        attempt: i64,
    ) -> Result<ExportRun, ExportError> {
        // times on the injected clock: `now` plus the real time the run took
        let started = now;
        let clock = std::time::Instant::now();
        let dest = Destination::parse(job.destination.as_deref(), &job.name)?;
        let run_id = sha256_hex(
            format!(
                "{}|{:?}|{attempt}|{}|{}|{}",
                job.name,
                slot,
                now.timestamp_micros(),
                self.owner,
                Utc::now().timestamp_nanos_opt().unwrap_or_default()
            )
            .as_bytes(),
        )[..16]
            .to_string();
        let limit = Duration::from_secs_f64(self.config.settings.job_timeout_seconds);
        let result = match tokio::time::timeout(limit, self.compute(job, &period, now, None)).await
        {
            Ok(r) => r,
            Err(_) => Err(ExportError::BadInput(format!(
                "quá thời gian cho phép ({} giây)",
                limit.as_secs_f64()
            ))),
        };
        let mut run = ExportRun {
            run_id: run_id.clone(),
            job: job.name.clone(),
            trigger: trigger.to_string(),
            scheduled_for: slot,
            attempt,
            period_label: period.label.clone(),
            period_from: period.from,
            period_to: period.to,
            report: serde_json::to_value(job.report)?
                .as_str()
                .unwrap_or_default()
                .to_string(),
            format: job.format.clone(),
            province: job.province.clone(),
            commune: job.commune.clone(),
            table_versions: "{}".into(),
            as_of: now,
            started_at: started,
            finished_at: started,
            status: "failed".into(),
            error: None,
            destination: dest.as_text(),
            object_key: None,
            bytes: None,
            sha256: None,
            server: self.owner.clone(),
            spec: serde_json::to_string(job)?,
        };
        let written = match result {
            Ok((r, pin)) => {
                run.table_versions = serde_json::to_string(&pin.versions)?;
                let key = format!(
                    "{}_{}_{}_{}.{}",
                    job.name,
                    period.from,
                    period.to,
                    &run_id[..8],
                    ext(&job.format)
                );
                let sha = sha256_hex(&r.body);
                let len = r.body.len() as i64;
                match self.put(&dest, &key, r.body).await {
                    Ok(()) => {
                        run.object_key = Some(key);
                        run.bytes = Some(len);
                        run.sha256 = Some(sha);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => run.status = "ok".into(),
            Err(e) => {
                tracing::warn!(job = %job.name, error = %e, "export failed");
                run.error = Some(e.to_string());
            }
        }
        run.finished_at = started
            + chrono::Duration::from_std(clock.elapsed())
                .unwrap_or_else(|_| chrono::Duration::zero());
        self.record(&run).await?;
        tracing::info!(job = %run.job, run = %run.run_id, status = %run.status, period = %run.period_label, "export run");
        Ok(run)
    }

    async fn put(&self, dest: &Destination, key: &str, body: Vec<u8>) -> Result<(), ExportError> {
        let (store, prefix) = dest.open(self.wh.root())?;
        let path = ObjPath::from(format!("{prefix}{key}"));
        store.put(&path, PutPayload::from(body)).await?;
        Ok(())
    }

    /// Run job `name` now (`giamsat export run`): for `period` if given, else for the
    /// period its rule gives today.
    pub async fn run_now(
        &self,
        name: &str,
        period: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ExportRun, ExportError> {
        let job = self.config.job(name)?.clone();
        let quarters = self.env.config.periods.quarters;
        let period = match period {
            Some(p) => Period::parse(p, quarters)?,
            None => PeriodRule::parse(&job.period)?
                .resolve(now.with_timezone(&Ho_Chi_Minh).date_naive(), quarters)?,
        };
        self.execute(&job, period, now, "manual", None, 1).await
    }

    /// Compute a recorded run again at its table versions and instant, with the job
    /// definition it had: the bytes and whether they equal the recorded file's checksum.
    pub async fn rerun(&self, run_id: &str) -> Result<(ExportRun, Vec<u8>, bool), ExportError> {
        let run = self.find(run_id).await?;
        if run.status != "ok" {
            return Err(ExportError::BadInput(format!(
                "lần chạy {run_id} không thành công; không có gì để chạy lại"
            )));
        }
        let job: JobSpec = serde_json::from_str(&run.spec)?;
        let pin = Pin {
            versions: serde_json::from_str::<BTreeMap<String, i64>>(&run.table_versions)?,
            as_of_micros: run.as_of.timestamp_micros(),
        };
        let period = Period {
            label: run.period_label.clone(),
            from: run.period_from,
            to: run.period_to,
        };
        let (r, _) = self.compute(&job, &period, run.as_of, Some(pin)).await?;
        let same = run.sha256.as_deref() == Some(sha256_hex(&r.body).as_str());
        Ok((run, r.body, same))
    }

    /// The file of a successful run (as found by [`Exporter::find`]).
    pub async fn file(&self, run: &ExportRun) -> Result<ExportFile, ExportError> {
        let key = run
            .object_key
            .clone()
            .filter(|_| run.status == "ok")
            .ok_or_else(|| {
                ExportError::BadInput(format!("lần chạy {} không có tệp", run.run_id))
            })?;
        let job = serde_json::from_str::<JobSpec>(&run.spec)?;
        let dest = Destination::parse(Some(&run.destination), &job.name)?;
        let (store, prefix) = dest.open(self.wh.root())?;
        let body = store
            .get(&ObjPath::from(format!("{prefix}{key}")))
            .await?
            .bytes()
            .await?
            .to_vec();
        Ok(ExportFile {
            content_type: content_type(&run.format),
            run: run.clone(),
            body,
        })
    }

    /// When the scheduler first saw a job (created on first sight, shared by servers).
    async fn first_seen(
        &self,
        job: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, ExportError> {
        let path = ObjPath::from(format!("_exports/jobs/{job}.json"));
        let body = serde_json::to_vec(&serde_json::json!({ "first_seen": now }))?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.data_store.put_opts(&path, body.into(), opts).await {
            Ok(_) => Ok(now),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let b = self.data_store.get(&path).await?.bytes().await?;
                let v: serde_json::Value = serde_json::from_slice(&b)?;
                Ok(v["first_seen"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(now))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn lease_dir(job: &str, slot: DateTime<Utc>) -> String {
        format!("_exports/leases/{job}/{}", slot.timestamp())
    }

    /// Attempts leased for a slot: attempt → when.
    async fn leases(
        &self,
        job: &str,
        slot: DateTime<Utc>,
    ) -> Result<BTreeMap<i64, DateTime<Utc>>, ExportError> {
        let prefix = ObjPath::from(Self::lease_dir(job, slot));
        let mut out = BTreeMap::new();
        let mut list = self.data_store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            let meta = match meta {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            let Some(n) = meta.location.filename().and_then(|f| f.parse::<i64>().ok()) else {
                continue;
            };
            let b = self.data_store.get(&meta.location).await?.bytes().await?;
            let at = serde_json::from_slice::<Lease>(&b)
                .map(|l| l.acquired_at)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            out.insert(n, at);
        }
        Ok(out)
    }

    /// Take the lease of (job, slot, attempt); false if another server has it.
    async fn acquire(
        &self,
        job: &str,
        slot: DateTime<Utc>,
        attempt: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, ExportError> {
        let path = ObjPath::from(format!("{}/{attempt}", Self::lease_dir(job, slot)));
        let body = serde_json::to_vec(&Lease {
            owner: self.owner.clone(),
            acquired_at: now,
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.data_store.put_opts(&path, body.into(), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn backoff(&self, failures: i64) -> chrono::Duration {
        let s = &self.config.settings;
        let secs = (s.retry_base_seconds * 2f64.powi((failures - 1).clamp(0, 30) as i32))
            .min(s.retry_max_seconds);
        chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    /// Look at every enabled job at `now` and run what is due: missed slots (catch-up),
    /// the current slot, retries whose backoff has passed. Jobs run concurrently; one
    /// failing or slow job does not hold up the others. Returns the runs made.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<Vec<ExportRun>, ExportError> {
        let history = self.history().await?;
        let mut by_slot: HashMap<(String, DateTime<Utc>), Vec<ExportRun>> = HashMap::new();
        for r in history {
            if let Some(s) = r.scheduled_for {
                by_slot.entry((r.job.clone(), s)).or_default().push(r);
            }
        }
        let by_slot = Arc::new(by_slot);
        let jobs: Vec<JobSpec> = self
            .config
            .jobs
            .iter()
            .filter(|j| j.enabled)
            .cloned()
            .collect();
        let futs = jobs.into_iter().map(|job| {
            let by_slot = by_slot.clone();
            async move {
                match self.due(&job, now, &by_slot).await {
                    Ok(runs) => runs,
                    Err(e) => {
                        tracing::warn!(job = %job.name, error = %e, "export scheduling failed");
                        Vec::new()
                    }
                }
            }
        });
        Ok(futures::future::join_all(futs)
            .await
            .into_iter()
            .flatten()
            .collect())
    }

    async fn due(
        &self,
        job: &JobSpec,
        now: DateTime<Utc>,
        by_slot: &HashMap<(String, DateTime<Utc>), Vec<ExportRun>>,
    ) -> Result<Vec<ExportRun>, ExportError> {
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| ExportError::Query(QueryError::Internal("lock poisoned".into())))?;
            if !running.insert(job.name.clone()) {
                return Ok(Vec::new());
            }
        }
        let out = self.due_inner(job, now, by_slot).await;
        if let Ok(mut running) = self.running.lock() {
            running.remove(&job.name);
        }
        out
    }

    async fn due_inner(
        &self,
        job: &JobSpec,
        now: DateTime<Utc>,
        by_slot: &HashMap<(String, DateTime<Utc>), Vec<ExportRun>>,
    ) -> Result<Vec<ExportRun>, ExportError> {
        let s = &self.config.settings;
        let first_seen = self.first_seen(&job.name, now).await?;
        let window = now - chrono::Duration::days(i64::from(s.catch_up_days));
        // a slot exactly at the first sighting counts: start just before it
        let horizon = first_seen.max(window) - chrono::Duration::seconds(1);
        let quarters = self.env.config.periods.quarters;
        let rule = PeriodRule::parse(&job.period)?;
        let poll = chrono::Duration::milliseconds((s.poll_seconds * 2000.0) as i64);
        let mut made = Vec::new();
        for slot in job.slots(horizon, now, 10_000)? {
            let at = job.effective(slot, &self.env.calendar);
            if at > now {
                continue;
            }
            let runs: &[ExportRun] = by_slot
                .get(&(job.name.clone(), slot))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if runs.iter().any(|r| r.status == "ok") {
                continue;
            }
            let leases = self.leases(&job.name, slot).await?;
            let recorded: HashSet<i64> = runs.iter().map(|r| r.attempt).collect();
            // an attempt leased but never recorded: still running elsewhere, or crashed
            let lease_limit = chrono::Duration::milliseconds((s.lease_seconds * 1000.0) as i64);
            if leases
                .iter()
                .any(|(n, t)| !recorded.contains(n) && *t + lease_limit > now)
            {
                continue;
            }
            let failures = leases.len().max(runs.len()) as i64;
            if failures >= i64::from(s.max_attempts) {
                continue;
            }
            let last = runs
                .iter()
                .map(|r| r.finished_at)
                .chain(leases.values().copied())
                .max();
            if failures > 0 {
                if let Some(last) = last {
                    if now < last + self.backoff(failures) {
                        continue;
                    }
                }
            }
            let attempt = leases
                .keys()
                .copied()
                .chain(runs.iter().map(|r| r.attempt))
                .max()
                .unwrap_or(0)
                + 1;
            if !self.acquire(&job.name, slot, attempt, now).await? {
                continue;
            }
            let trigger = if attempt > 1 {
                "retry"
            } else if now - at > poll {
                "catch_up"
            } else {
                "schedule"
            };
            let day = slot.with_timezone(&Ho_Chi_Minh).date_naive();
            let period = match rule.resolve(day, quarters) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(job = %job.name, error = %e, "export period");
                    continue;
                }
            };
            made.push(
                self.execute(job, period, now, trigger, Some(slot), attempt)
                    .await?,
            );
        }
        Ok(made)
    }

    /// The server loop: tick on the wall clock every `poll_seconds`, each tick in the
    /// background (a slow job never delays the next look at the others).
    pub async fn run_forever(self: Arc<Self>) {
        if self.config.jobs.iter().all(|j| !j.enabled) {
            return;
        }
        let every = Duration::from_secs_f64(self.config.settings.poll_seconds);
        loop {
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.tick(Utc::now()).await {
                    tracing::warn!(error = %e, "export tick failed");
                }
            });
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn period_rules_resolve_by_the_slot_day() {
        let q = QuarterRule::Official;
        let r = |rule: &str, day: &str| {
            let p = PeriodRule::parse(rule)
                .expect("rule")
                .resolve(d(day), q)
                .expect("period");
            (p.from.to_string(), p.to.to_string())
        };
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            r("previous_month", "2026-03-01"),
            s("2026-02-01", "2026-02-28")
        );
        assert_eq!(
            r("previous_month", "2026-01-31"),
            s("2025-12-01", "2025-12-31")
        );
        assert_eq!(
            r("previous_official_quarter", "2026-03-15"),
            s("2025-12-15", "2026-03-14")
        );
        assert_eq!(
            r("previous_official_quarter", "2026-03-14"),
            s("2025-09-15", "2025-12-14")
        );
        assert_eq!(
            r("previous_official_quarter", "2026-01-05"),
            s("2025-09-15", "2025-12-14")
        );
        assert_eq!(
            r("previous_official_month", "2026-03-15"),
            s("2026-02-15", "2026-03-14")
        );
        assert_eq!(
            r("previous_official_month", "2026-03-14"),
            s("2026-01-15", "2026-02-14")
        );
        assert_eq!(
            r("previous_calendar_quarter", "2026-01-01"),
            s("2025-10-01", "2025-12-31")
        );
        assert_eq!(
            r("previous_official_year", "2026-12-15"),
            s("2025-12-15", "2026-12-14")
        );
        assert_eq!(
            r("previous_official_year", "2026-12-14"),
            s("2024-12-15", "2025-12-14")
        );
        assert_eq!(
            r("previous_year", "2026-02-01"),
            s("2025-01-01", "2025-12-31")
        );
        assert_eq!(
            r("year_to_date", "2026-04-10"),
            s("2026-01-01", "2026-04-09")
        );
        assert_eq!(
            r("year_to_date", "2026-01-01"),
            s("2025-01-01", "2025-12-31")
        );
        assert_eq!(
            r("previous_day", "2026-03-01"),
            s("2026-02-28", "2026-02-28")
        );
        assert_eq!(r("2026-Q1", "2026-07-01"), s("2025-12-15", "2026-03-14"));
        assert!(PeriodRule::parse("last_quarter").is_err());
    }

    #[test]
    fn destinations_never_leave_their_directory() {
        assert_eq!(
            Destination::parse(None, "b06").expect("default"),
            Destination::Data("exports/b06".into())
        );
        assert!(Destination::parse(Some("../x"), "j").is_err());
        assert!(Destination::parse(Some("/etc"), "j").is_err());
        assert!(Destination::parse(Some("a/../../x"), "j").is_err());
        assert!(Destination::parse(Some("s3://bucket/x"), "j").is_err());
        assert!(Destination::parse(Some("file://relative"), "j").is_err());
        assert_eq!(
            Destination::parse(Some("file:///srv/bao-cao"), "j").expect("abs"),
            Destination::Local("/srv/bao-cao".into())
        );
    }

    #[test]
    fn config_is_checked_on_load() {
        let ok = ExportsConfig::from_toml(
            r#"
[exports]
poll_seconds = 5
[[export]]
name = "bieu06-quy"
report = "bieu06"
schedule = "0 7 16 3,6,9,12 *"
period = "previous_official_quarter"
group_by = "commune"
[[export]]
name = "sql-thang"
report = "sql"
sql = "SELECT count(*) AS n FROM dossiers WHERE received_date BETWEEN {from} AND {to}"
schedule = "0 8 1 * *"
period = "previous_month"
format = "csv"
"#,
        )
        .expect("valid");
        assert_eq!(ok.jobs.len(), 2);
        assert_eq!(ok.jobs[0].format, "xlsx");
        for bad in [
            "[[export]]\nname = \"a b\"\nreport = \"bieu06\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"",
            "[[export]]\nname = \"a\"\nreport = \"bieu06\"\nschedule = \"0 25 * * *\"\nperiod = \"previous_month\"",
            "[[export]]\nname = \"a\"\nreport = \"bieu06\"\nschedule = \"0 7 * * *\"\nperiod = \"sometimes\"",
            "[[export]]\nname = \"a\"\nreport = \"sql\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"",
            "[[export]]\nname = \"a\"\nreport = \"bieu06\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"\nformat = \"docx\"",
            "[[export]]\nname = \"a\"\nreport = \"on-time\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"\nformat = \"pdf\"",
            "[[export]]\nname = \"a\"\nreport = \"bieu06\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"\ndestination = \"../../etc\"",
            "[[export]]\nname = \"a\"\nreport = \"pdf\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"",
            "[[export]]\nname = \"a\"\nreport = \"bieu06\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"\n[[export]]\nname = \"a\"\nreport = \"766\"\nschedule = \"0 7 * * *\"\nperiod = \"previous_month\"",
        ] {
            assert!(ExportsConfig::from_toml(bad).is_err(), "{bad}");
        }
    }
}
