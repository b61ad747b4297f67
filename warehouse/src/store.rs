//! Delta tables on local disk: `events` (partitioned by month), `quarantine`,
//! `procedures`, and the derived `dossier_facts` / `dossier_states`.
//!
//! Layout under the data directory:
//! ```text
//! <data>/config.toml            optional operator configuration
//! <data>/tables/events/         Delta, partition column `month` (local YYYY-MM of `at`)
//! <data>/tables/quarantine/     Delta
//! <data>/tables/procedures/     Delta (overwritten with the merged catalog on each ingest)
//! <data>/tables/dossier_facts/  Delta (derived, overwritten on rebuild)
//! <data>/tables/dossier_states/ Delta (derived, overwritten on rebuild)
//! <data>/tables/export_runs/  Delta (export history, appended by the scheduler)
//! <data>/facts_stamp.json       which inputs the derived tables were built from
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Array, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::prelude::SessionContext;
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::config::Config;
use crate::event::{self, events_from_batches, events_to_batch, Event, DIM_COLUMNS, FLAG_COLUMNS};
use crate::facts::{CatalogEntry, DossierFacts, StateRow};
use crate::WarehouseError;

pub const EVENTS: &str = "events";
pub const QUARANTINE: &str = "quarantine";
pub const PROCEDURES: &str = "procedures";
pub const DOSSIER_FACTS: &str = "dossier_facts";
pub const DOSSIER_STATES: &str = "dossier_states";
/// Partition column of `dossier_facts` and `dossier_states` ([`part_of`]).
pub const PART: &str = "first_event_month";
/// Quarantined records that a replay turned into events (the quarantine stays append-only).
pub const QUARANTINE_RESOLVED: &str = "quarantine_resolved";
/// History of scheduled and manual export runs (owned by the `api` crate).
pub const EXPORT_RUNS: &str = "export_runs";
/// The tables a report session reads; an export records their versions.
pub const REPORT_TABLES: [&str; 5] = [
    EVENTS,
    QUARANTINE,
    PROCEDURES,
    DOSSIER_FACTS,
    DOSSIER_STATES,
];

/// A stored quarantined record.
#[derive(Debug, Clone)]
pub struct StoredQuarantine {
    /// Stable id: digest of input, line and original bytes.
    pub record_id: String,
    pub source: Option<String>,
    pub received_at: i64,
    pub input: String,
    pub line: i64,
    pub reason: String,
    pub original: Vec<u8>,
}

/// A quarantined record: why, and its original bytes.
#[derive(Debug, Clone)]
pub struct QuarantineRow {
    pub source: Option<String>,
    pub input: String,
    pub line: i64,
    pub reason: String,
    pub original: Vec<u8>,
}

/// One procedure of the catalog (docs/contract.md §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Procedure {
    pub procedure_code: String,
    pub procedure_name: Option<String>,
    pub field_code: Option<String>,
    pub field_name: Option<String>,
    pub procedure_level: Option<String>,
    pub authority_level: Option<String>,
    pub max_working_days: Option<f64>,
    pub has_fee: Option<bool>,
    pub fee_online_integrated: Option<bool>,
    pub published_at: Option<NaiveDate>,
    pub publish_due_at: Option<NaiveDate>,
    pub content_complete: Option<bool>,
}

/// How [`Warehouse::commit`] writes.
pub(crate) struct Commit<'a> {
    pub mode: SaveMode,
    /// Partition columns (must match the table's, unless `overwrite_schema`).
    pub partitions: &'a [&'a str],
    /// Idempotency keys recorded in the same commit.
    pub app_ids: &'a [String],
    /// With `SaveMode::Overwrite`: replace only the rows this predicate selects.
    pub replace_where: Option<datafusion::prelude::Expr>,
    /// With `SaveMode::Overwrite`: the new schema and partitioning replace the old.
    pub overwrite_schema: bool,
}

impl Commit<'static> {
    /// One commit of a table rebuilt in several, partitioned by [`PART`]: the first
    /// replaces the table (and its schema), the others append.
    pub(crate) fn rebuild_step(first: bool) -> Commit<'static> {
        Commit {
            mode: if first {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            },
            partitions: &[PART],
            overwrite_schema: first,
            ..Commit::default()
        }
    }
}

impl Default for Commit<'_> {
    fn default() -> Self {
        Commit {
            mode: SaveMode::Append,
            partitions: &[],
            app_ids: &[],
            replace_where: None,
            overwrite_schema: false,
        }
    }
}

/// The warehouse of one data directory.
pub struct Warehouse {
    root: PathBuf,
    pub config: Config,
    pub calendar: Calendar,
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn strings<T>(rows: &[T], f: impl Fn(&T) -> Option<&str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn times<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish().with_timezone("UTC"))
}

fn bools<T>(rows: &[T], f: impl Fn(&T) -> Option<bool>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn floats<T>(rows: &[T], f: impl Fn(&T) -> Option<f64>) -> ArrayRef {
    let mut b = Float64Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn ints<T>(rows: &[T], f: impl Fn(&T) -> Option<i64>) -> ArrayRef {
    let mut b = Int64Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    Arc::new(b.finish())
}

fn dates<T>(rows: &[T], f: impl Fn(&T) -> Option<NaiveDate>) -> ArrayRef {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    Arc::new(Date32Array::from(
        rows.iter()
            .map(|r| f(r).map(|d| (d - epoch).num_days() as i32))
            .collect::<Vec<_>>(),
    ))
}

/// Schema of `quarantine`.
pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, true),
        Field::new("received_at", ts(), false),
        Field::new("input", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("original", DataType::Binary, false),
    ]))
}

/// Schema of `procedures`.
pub fn procedures_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("procedure_code", DataType::Utf8, false),
        Field::new("procedure_name", DataType::Utf8, true),
        Field::new("field_code", DataType::Utf8, true),
        Field::new("field_name", DataType::Utf8, true),
        Field::new("procedure_level", DataType::Utf8, true),
        Field::new("authority_level", DataType::Utf8, true),
        Field::new("max_working_days", DataType::Float64, true),
        Field::new("has_fee", DataType::Boolean, true),
        Field::new("fee_online_integrated", DataType::Boolean, true),
        Field::new("published_at", DataType::Date32, true),
        Field::new("publish_due_at", DataType::Date32, true),
        Field::new("content_complete", DataType::Boolean, true),
    ]))
}

/// Schema of `dossier_facts`.
pub fn facts_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("dossier_id", DataType::Utf8, false),
        Field::new("sources", DataType::Utf8, false),
    ];
    for c in DIM_COLUMNS {
        // `channel` is never null in facts (absent means in person)
        fields.push(Field::new(c, DataType::Utf8, c != "channel"));
    }
    fields.push(Field::new("non_territorial", DataType::Boolean, true));
    fields.extend(
        FLAG_COLUMNS
            .iter()
            .map(|c| Field::new(*c, DataType::Boolean, true)),
    );
    fields.extend([
        Field::new("event_count", DataType::Int64, false),
        Field::new("first_event_at", ts(), false),
        Field::new("last_event_at", ts(), false),
        Field::new("received_at", ts(), true),
        Field::new("rejected", DataType::Boolean, false),
        Field::new("counted", DataType::Boolean, false),
        Field::new("ended_at", ts(), true),
        Field::new("end_type", DataType::Utf8, true),
        Field::new("due_at", ts(), true),
        Field::new("due_kind", DataType::Utf8, true),
        Field::new("max_working_days", DataType::Float64, true),
        Field::new("supplement_requests", DataType::Int64, false),
        Field::new("open_supplement", DataType::Boolean, false),
        Field::new("paused_working_seconds", DataType::Float64, false),
        Field::new("paused_wall_seconds", DataType::Float64, false),
        Field::new("judged_at", ts(), true),
        Field::new("end_class", DataType::Utf8, true),
        Field::new("overdue_after", ts(), true),
        Field::new("dq_issues", DataType::Utf8, false),
        Field::new(PART, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// Schema of `dossier_states`.
pub fn states_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dossier_id", DataType::Utf8, false),
        Field::new("valid_from", ts(), false),
        Field::new("valid_to", ts(), true),
        Field::new("overdue_after", ts(), true),
        Field::new("due_at", ts(), true),
        Field::new("supplement_requests", DataType::Int64, false),
        Field::new(PART, DataType::Utf8, false),
    ]))
}

/// The partition of a dossier in `dossier_facts` and `dossier_states`: the local month
/// of its first event. Dossiers that a day's events touch are mostly recent, so a
/// commit rewrites a few recent partitions, not the table.
pub fn part_of(first_event_at: i64, offset_micros: i64) -> String {
    event::month_of(first_event_at, offset_micros)
}

pub(crate) fn facts_batch(
    f: &[DossierFacts],
    offset_micros: i64,
) -> Result<RecordBatch, WarehouseError> {
    let mut cols: Vec<ArrayRef> = vec![
        strings(f, |r| Some(&r.dossier_id)),
        strings(f, |r| Some(&r.sources)),
    ];
    for (i, c) in DIM_COLUMNS.iter().enumerate() {
        if *c == "channel" {
            cols.push(strings(f, |r| Some(&r.channel)));
        } else {
            cols.push(strings(f, |r| r.dims[i].as_deref()));
        }
    }
    cols.push(bools(f, |r| r.non_territorial));
    for i in 0..FLAG_COLUMNS.len() {
        cols.push(bools(f, |r| r.flags[i]));
    }
    cols.extend([
        ints(f, |r| Some(r.event_count)),
        times(f, |r| Some(r.first_event_at)),
        times(f, |r| Some(r.last_event_at)),
        times(f, |r| r.received_at),
        bools(f, |r| Some(r.rejected)),
        bools(f, |r| Some(r.counted)),
        times(f, |r| r.ended_at),
        strings(f, |r| r.end_type.as_deref()),
        times(f, |r| r.due_at),
        strings(f, |r| r.due_kind.map(|k| k.as_str())),
        floats(f, |r| r.max_working_days),
        ints(f, |r| Some(r.supplement_requests)),
        bools(f, |r| Some(r.open_supplement)),
        floats(f, |r| Some(r.paused_working_seconds)),
        floats(f, |r| Some(r.paused_wall_seconds)),
        times(f, |r| r.judged_at),
        strings(f, |r| r.end_class.map(|k| k.as_str())),
        times(f, |r| r.overdue_after),
        strings(f, |r| Some(&r.dq_issues)),
    ]);
    let parts: Vec<String> = f
        .iter()
        .map(|r| part_of(r.first_event_at, offset_micros))
        .collect();
    cols.push(Arc::new(datafusion::arrow::array::StringArray::from(parts)));
    Ok(RecordBatch::try_new(facts_schema(), cols)?)
}

/// `parts` maps each dossier of `s` to its partition ([`part_of`] of its facts).
pub(crate) fn states_batch(
    s: &[StateRow],
    parts: &HashMap<&str, String>,
) -> Result<RecordBatch, WarehouseError> {
    let part: Vec<Option<&str>> = s
        .iter()
        .map(|r| parts.get(r.dossier_id.as_str()).map(String::as_str))
        .collect();
    Ok(RecordBatch::try_new(
        states_schema(),
        vec![
            strings(s, |r| Some(&r.dossier_id)),
            times(s, |r| Some(r.valid_from)),
            times(s, |r| r.valid_to),
            times(s, |r| r.overdue_after),
            times(s, |r| r.due_at),
            ints(s, |r| Some(r.supplement_requests)),
            Arc::new(datafusion::arrow::array::StringArray::from(part)),
        ],
    )?)
}

fn procedures_batch(p: &[Procedure]) -> Result<RecordBatch, WarehouseError> {
    Ok(RecordBatch::try_new(
        procedures_schema(),
        vec![
            strings(p, |r| Some(&r.procedure_code)),
            strings(p, |r| r.procedure_name.as_deref()),
            strings(p, |r| r.field_code.as_deref()),
            strings(p, |r| r.field_name.as_deref()),
            strings(p, |r| r.procedure_level.as_deref()),
            strings(p, |r| r.authority_level.as_deref()),
            floats(p, |r| r.max_working_days),
            bools(p, |r| r.has_fee),
            bools(p, |r| r.fee_online_integrated),
            dates(p, |r| r.published_at),
            dates(p, |r| r.publish_due_at),
            bools(p, |r| r.content_complete),
        ],
    )?)
}

fn quarantine_batch(q: &[QuarantineRow], now: i64) -> Result<RecordBatch, WarehouseError> {
    let mut orig = BinaryBuilder::new();
    for r in q {
        orig.append_value(&r.original);
    }
    Ok(RecordBatch::try_new(
        quarantine_schema(),
        vec![
            strings(q, |r| r.source.as_deref()),
            times(q, |_| Some(now)),
            strings(q, |r| Some(&r.input)),
            ints(q, |r| Some(r.line)),
            strings(q, |r| Some(&r.reason)),
            Arc::new(orig.finish()),
        ],
    )?)
}

pub(crate) fn list_files(dir: &Path) -> HashSet<PathBuf> {
    let mut out = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

/// fsync the files created under `dir` since `before`, then their directories.
fn sync_new_files(dir: &Path, before: &HashSet<PathBuf>) -> Result<(), WarehouseError> {
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    for p in list_files(dir).difference(before) {
        std::fs::File::open(p)?.sync_all()?;
        let mut d = p.parent();
        while let Some(x) = d {
            dirs.insert(x.to_path_buf());
            if x == dir {
                break;
            }
            d = x.parent();
        }
    }
    for d in dirs {
        std::fs::File::open(&d)?.sync_all()?;
    }
    Ok(())
}

/// Commits between two checkpoints of a table. Opening a table reads its last
/// checkpoint and the commits after it: without checkpoints every open (every commit,
/// every refresh of the server's session) would read the whole log, and a server taking
/// a push a second would slow down day by day.
pub const CHECKPOINT_EVERY: u64 = 100;

/// Current time in microseconds.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Warehouse {
    /// Open (creating if needed) the warehouse in `root`, with `root/config.toml` if any.
    pub fn open(root: &Path) -> Result<Warehouse, WarehouseError> {
        let config = Config::for_data_dir(root)?;
        Warehouse::open_with(root, config)
    }

    /// Open with an explicit configuration.
    pub fn open_with(root: &Path, config: Config) -> Result<Warehouse, WarehouseError> {
        std::fs::create_dir_all(root.join("tables"))?;
        let root = std::fs::canonicalize(root)?;
        let calendar = Calendar::new(&config.calendar)?;
        Ok(Warehouse {
            root,
            config,
            calendar,
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn table_path(&self, name: &str) -> PathBuf {
        self.root.join("tables").join(name)
    }

    fn table_url(&self, name: &str) -> Result<url::Url, WarehouseError> {
        let p = self.table_path(name);
        std::fs::create_dir_all(&p)?;
        Ok(deltalake::ensure_table_uri(p.to_string_lossy())?)
    }

    /// Open a table if it exists.
    pub async fn open_table(&self, name: &str) -> Result<Option<DeltaTable>, WarehouseError> {
        if !self.table_path(name).join("_delta_log").exists() {
            return Ok(None);
        }
        Ok(Some(deltalake::open_table(self.table_url(name)?).await?))
    }

    /// Open a table as it was at `version` (Delta time travel).
    pub async fn open_table_at(
        &self,
        name: &str,
        version: i64,
    ) -> Result<Option<DeltaTable>, WarehouseError> {
        if !self.table_path(name).join("_delta_log").exists() {
            return Ok(None);
        }
        Ok(Some(
            deltalake::open_table_with_version(self.table_url(name)?, version.max(0) as u64)
                .await?,
        ))
    }

    /// The current version of each table that reports read (absent tables are left out).
    pub async fn table_versions(
        &self,
    ) -> Result<std::collections::BTreeMap<String, i64>, WarehouseError> {
        let mut out = std::collections::BTreeMap::new();
        for name in REPORT_TABLES {
            if let Some(t) = self.open_table(name).await? {
                out.insert(name.to_string(), t.version().unwrap_or(0) as i64);
            }
        }
        // events and the facts derived from them, at the versions that agree
        if let Some(stamped) = self.stamped_versions() {
            out.extend(stamped);
        }
        Ok(out)
    }

    /// Append a batch to a table owned by a higher layer (e.g. `export_runs`) in one
    /// durable Delta commit.
    pub async fn append_batch(
        &self,
        name: &str,
        batch: RecordBatch,
    ) -> Result<u64, WarehouseError> {
        self.write(name, batch, SaveMode::Append, &[]).await
    }

    pub(crate) async fn write(
        &self,
        name: &str,
        batch: RecordBatch,
        mode: SaveMode,
        partitions: &[&str],
    ) -> Result<u64, WarehouseError> {
        self.write_txn(name, batch, mode, partitions, &[]).await
    }

    /// Write one Delta commit, optionally recording an application transaction
    /// (`app_id`, version 1) in the same commit, then fsync every file the commit
    /// created and their directories: when this returns, the commit is on disk.
    async fn write_txn(
        &self,
        name: &str,
        batch: RecordBatch,
        mode: SaveMode,
        partitions: &[&str],
        app_ids: &[String],
    ) -> Result<u64, WarehouseError> {
        self.commit(
            name,
            vec![batch],
            Commit {
                mode,
                partitions,
                app_ids,
                ..Commit::default()
            },
        )
        .await
    }

    /// Write one durable Delta commit as `how` says (see [`Commit`]).
    pub(crate) async fn commit(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        how: Commit<'_>,
    ) -> Result<u64, WarehouseError> {
        if batches.is_empty() {
            // deltalake refuses a write with no input, with an error that names neither
            // the table nor the cause
            return Err(WarehouseError::Data(format!(
                "commit of {name} without any batch (a write needs at least one, possibly empty, batch)"
            )));
        }
        let dir = self.table_path(name);
        // one writer of the table at a time, across processes: the files that appear
        // during this commit are this commit's, so a failed commit can remove them
        let _lock = self.write_lock(name).await?;
        let before = list_files(&dir);
        match self.commit_unlocked(name, batches, how).await {
            Ok(version) => {
                sync_new_files(&dir, &before)?;
                if version > 0 && version % CHECKPOINT_EVERY == 0 {
                    self.checkpoint(name).await;
                }
                Ok(version)
            }
            Err(e) => {
                self.remove_orphans(name, &before).await;
                Err(e)
            }
        }
    }

    /// Write a checkpoint of table `name`'s latest version. The commit it follows is
    /// durable already: a failure only costs readers time, and is logged.
    async fn checkpoint(&self, name: &str) {
        let result = match self.open_table(name).await {
            Ok(Some(t)) => deltalake::checkpoints::create_checkpoint(&t, None)
                .await
                .map_err(WarehouseError::from),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(table = name, error = %e, "checkpoint not written");
        }
    }

    /// Hold the exclusive right to write table `name` (all processes on this data
    /// directory) until the returned file is dropped: an advisory lock on
    /// `<data>/locks/<name>.lock`, released by the kernel if the process dies.
    pub(crate) async fn write_lock(&self, name: &str) -> Result<std::fs::File, WarehouseError> {
        let dir = self.root.join("locks");
        std::fs::create_dir_all(&dir)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{name}.lock")))?;
        tokio::task::spawn_blocking(move || f.lock().map(|_| f))
            .await
            .map_err(|e| WarehouseError::Data(format!("write lock: {e}")))?
            .map_err(WarehouseError::from)
    }

    /// Remove the data files that appeared under table `name` since `before` and that
    /// its latest version does not reference: what a failed commit wrote (whole or
    /// torn). Called with the table's write lock held. The log is never touched: a
    /// commit file that exists is a commit. If the table cannot be read the files stay
    /// (orphans cost space, never correctness) and a warning says so.
    pub(crate) async fn remove_orphans(&self, name: &str, before: &HashSet<PathBuf>) {
        let dir = self.table_path(name);
        let new: Vec<PathBuf> = list_files(&dir)
            .difference(before)
            .filter(|p| !p.components().any(|c| c.as_os_str() == "_delta_log"))
            .cloned()
            .collect();
        if new.is_empty() {
            return;
        }
        let referenced: HashSet<String> = match self.open_table(name).await {
            Ok(None) => HashSet::new(),
            Ok(Some(t)) => match t.get_file_uris() {
                Ok(uris) => uris
                    .filter_map(|u| u.rsplit('/').next().map(str::to_string))
                    .collect(),
                Err(e) => {
                    tracing::warn!(table = name, error = %e, "failed commit: files left behind");
                    return;
                }
            },
            Err(e) => {
                tracing::warn!(table = name, error = %e, "failed commit: files left behind");
                return;
            }
        };
        for p in new {
            let file = p.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            if !referenced.contains(file) {
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(file = %p.display(), error = %e, "failed commit: file left behind");
                }
            }
        }
    }

    /// [`Warehouse::commit`] without the lock, the clean-up and the fsync.
    async fn commit_unlocked(
        &self,
        name: &str,
        batches: Vec<RecordBatch>,
        how: Commit<'_>,
    ) -> Result<u64, WarehouseError> {
        let table = DeltaTable::try_from_url(self.table_url(name)?).await?;
        let mut w = table.write(batches).with_save_mode(how.mode);
        if !how.partitions.is_empty() {
            w = w.with_partition_columns(how.partitions.iter().map(|s| s.to_string()));
        }
        if let Some(p) = how.replace_where {
            w = w.with_replace_where(p);
        }
        if how.overwrite_schema {
            w = w.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        }
        // the log is never cleaned up behind our back: an export run is pinned to
        // table versions, and time travel needs their log entries (see `maintain`)
        let mut props = deltalake::kernel::transaction::CommitProperties::default()
            .with_cleanup_expired_logs(Some(false));
        if !how.app_ids.is_empty() {
            props = props.with_application_transactions(
                how.app_ids
                    .iter()
                    .map(|a| deltalake::kernel::Transaction::new(a, 1))
                    .collect(),
            );
        }
        let t = w.with_commit_properties(props).await?;
        Ok(t.version().unwrap_or(0))
    }

    /// Whether a commit of `table` recorded the application transaction `app_id`.
    pub async fn has_txn(&self, table: &str, app_id: &str) -> Result<bool, WarehouseError> {
        let Some(t) = self.open_table(table).await? else {
            return Ok(false);
        };
        let v = t
            .snapshot()?
            .transaction_version(t.log_store().as_ref(), app_id)
            .await?;
        Ok(v.is_some())
    }

    /// Read chosen columns of a table (all rows).
    pub async fn read(
        &self,
        name: &str,
        sql_select: &str,
    ) -> Result<Vec<RecordBatch>, WarehouseError> {
        let Some(table) = self.open_table(name).await? else {
            return Ok(Vec::new());
        };
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table(name, table.table_provider().await?)?;
        let df = ctx.sql(&format!("SELECT {sql_select} FROM {name}")).await?;
        Ok(df.collect().await?)
    }

    /// Which of `keys` (`(source, event_id)`) are stored already. The stored keys are
    /// streamed past the given ones, so memory follows `keys`, not the table; with
    /// `months`, only those partitions of `events` are read ([`DedupScope::Month`]).
    ///
    /// [`DedupScope::Month`]: crate::config::DedupScope::Month
    pub async fn stored_keys(
        &self,
        keys: &HashSet<(String, String)>,
        months: Option<&BTreeSet<String>>,
    ) -> Result<HashSet<(String, String)>, WarehouseError> {
        use futures::StreamExt;
        let mut found = HashSet::new();
        if keys.is_empty() {
            return Ok(found);
        }
        let Some(table) = self.open_table(EVENTS).await? else {
            return Ok(found);
        };
        // probe by event_id without allocating, then check the source
        let mut by_id: HashMap<&str, Vec<&str>> = HashMap::with_capacity(keys.len());
        for (src, id) in keys {
            by_id.entry(id.as_str()).or_default().push(src.as_str());
        }
        let ctx = SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table(EVENTS, table.table_provider().await?)?;
        let mut df = ctx.table(EVENTS).await?;
        if let Some(months) = months {
            use datafusion::prelude::{col, lit};
            df = df.filter(
                col("month").in_list(months.iter().map(|m| lit(m.as_str())).collect(), false),
            )?;
        }
        let mut stream = df
            .select_columns(&["source", "event_id"])?
            .execute_stream()
            .await?;
        while let Some(b) = stream.next().await {
            let b = b?;
            let s = event::string_col(&b, "source")?;
            let e = event::string_col(&b, "event_id")?;
            for i in 0..b.num_rows() {
                if let Some(srcs) = by_id.get(e.value(i)) {
                    if srcs.contains(&s.value(i)) {
                        found.insert((s.value(i).to_string(), e.value(i).to_string()));
                    }
                }
            }
        }
        Ok(found)
    }

    /// Append events (already validated and de-duplicated) in one durable Delta commit
    /// that also records the batches' idempotency keys (`app_ids`).
    pub async fn append_events(
        &self,
        events: &[Event],
        app_ids: &[String],
    ) -> Result<(), WarehouseError> {
        if events.is_empty() {
            return Ok(());
        }
        let batch = events_to_batch(events, now_micros(), self.calendar.offset_micros())?;
        self.write_txn(EVENTS, batch, SaveMode::Append, &["month"], app_ids)
            .await?;
        Ok(())
    }

    /// Append quarantined records in one durable Delta commit (with idempotency keys).
    pub async fn append_quarantine(
        &self,
        rows: &[QuarantineRow],
        app_ids: &[String],
    ) -> Result<(), WarehouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = quarantine_batch(rows, now_micros())?;
        self.write_txn(QUARANTINE, batch, SaveMode::Append, &[], app_ids)
            .await?;
        Ok(())
    }

    /// Quarantined records not yet resolved by a replay, oldest first.
    pub async fn unresolved_quarantine(&self) -> Result<Vec<StoredQuarantine>, WarehouseError> {
        use datafusion::arrow::array::{Array, BinaryArray};
        use sha2::{Digest, Sha256};
        let mut resolved = HashSet::new();
        for b in self.read(QUARANTINE_RESOLVED, "record_id").await? {
            let ids = event::string_col(&b, "record_id")?;
            for i in 0..b.num_rows() {
                resolved.insert(ids.value(i).to_string());
            }
        }
        let mut out = Vec::new();
        for b in self
            .read(
                QUARANTINE,
                "source, received_at, input, line, reason, original",
            )
            .await?
        {
            let (src, at, input, reason) = (
                event::string_col(&b, "source")?,
                event::ts_col(&b, "received_at")?,
                event::string_col(&b, "input")?,
                event::string_col(&b, "reason")?,
            );
            let line = datafusion::arrow::compute::cast(
                b.column_by_name("line")
                    .ok_or_else(|| WarehouseError::Data("line".into()))?,
                &DataType::Int64,
            )?;
            let line = line
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .ok_or_else(|| WarehouseError::Data("line".into()))?
                .clone();
            let orig = datafusion::arrow::compute::cast(
                b.column_by_name("original")
                    .ok_or_else(|| WarehouseError::Data("original".into()))?,
                &DataType::Binary,
            )?;
            let orig = orig
                .as_any()
                .downcast_ref::<BinaryArray>()
                .ok_or_else(|| WarehouseError::Data("original".into()))?
                .clone();
            for i in 0..b.num_rows() {
                let mut h = Sha256::new();
                h.update(input.value(i).as_bytes());
                h.update(line.value(i).to_le_bytes());
                h.update(orig.value(i));
                let record_id = hex::encode(&h.finalize()[..16]);
                if resolved.contains(&record_id) {
                    continue;
                }
                out.push(StoredQuarantine {
                    record_id,
                    source: (!src.is_null(i)).then(|| src.value(i).to_string()),
                    received_at: at.value(i),
                    input: input.value(i).to_string(),
                    line: line.value(i),
                    reason: reason.value(i).to_string(),
                    original: orig.value(i).to_vec(),
                });
            }
        }
        out.sort_by(|a, b| {
            (a.received_at, &a.input, a.line).cmp(&(b.received_at, &b.input, b.line))
        });
        // the same record quarantined twice (re-sent) is listed once
        let mut seen = HashSet::new();
        out.retain(|q| seen.insert(q.record_id.clone()));
        Ok(out)
    }

    /// Record that these quarantined records were replayed into events.
    pub async fn mark_resolved(&self, record_ids: &[String]) -> Result<(), WarehouseError> {
        if record_ids.is_empty() {
            return Ok(());
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("record_id", DataType::Utf8, false),
            Field::new("resolved_at", ts(), false),
        ]));
        let now = now_micros();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                strings(record_ids, |r| Some(r.as_str())),
                times(record_ids, |_| Some(now)),
            ],
        )?;
        self.write(QUARANTINE_RESOLVED, batch, SaveMode::Append, &[])
            .await?;
        Ok(())
    }

    /// All events.
    pub async fn load_events(&self) -> Result<Vec<Event>, WarehouseError> {
        events_from_batches(&self.read(EVENTS, "*").await?)
    }

    /// The stored catalog.
    pub async fn load_procedures(&self) -> Result<Vec<Procedure>, WarehouseError> {
        let mut out = Vec::new();
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        for b in self.read(PROCEDURES, "*").await? {
            let s = |n: &str| event::string_col(&b, n);
            let (code, name, fc, fname, lvl, auth) = (
                s("procedure_code")?,
                s("procedure_name")?,
                s("field_code")?,
                s("field_name")?,
                s("procedure_level")?,
                s("authority_level")?,
            );
            let f = |n: &str| {
                b.column_by_name(n).and_then(|c| {
                    c.as_any()
                        .downcast_ref::<datafusion::arrow::array::Float64Array>()
                        .cloned()
                })
            };
            let d = |n: &str| {
                b.column_by_name(n)
                    .and_then(|c| c.as_any().downcast_ref::<Date32Array>().cloned())
            };
            let days = f("max_working_days");
            let (has_fee, fee_int, complete) = (
                event::bool_col(&b, "has_fee")?,
                event::bool_col(&b, "fee_online_integrated")?,
                event::bool_col(&b, "content_complete")?,
            );
            let (pubd, pubdue) = (d("published_at"), d("publish_due_at"));
            use datafusion::arrow::array::Array;
            let os = |a: &datafusion::arrow::array::StringArray, i: usize| {
                (!a.is_null(i)).then(|| a.value(i).to_string())
            };
            let ob = |a: &datafusion::arrow::array::BooleanArray, i: usize| {
                (!a.is_null(i)).then(|| a.value(i))
            };
            let od = |a: &Option<Date32Array>, i: usize| {
                a.as_ref()
                    .filter(|a| !a.is_null(i))
                    .map(|a| epoch + chrono::Days::new(a.value(i).max(0) as u64))
            };
            for i in 0..b.num_rows() {
                out.push(Procedure {
                    procedure_code: code.value(i).to_string(),
                    procedure_name: os(&name, i),
                    field_code: os(&fc, i),
                    field_name: os(&fname, i),
                    procedure_level: os(&lvl, i),
                    authority_level: os(&auth, i),
                    max_working_days: days.as_ref().filter(|a| !a.is_null(i)).map(|a| a.value(i)),
                    has_fee: ob(&has_fee, i),
                    fee_online_integrated: ob(&fee_int, i),
                    published_at: od(&pubd, i),
                    publish_due_at: od(&pubdue, i),
                    content_complete: ob(&complete, i),
                });
            }
        }
        Ok(out)
    }

    /// Merge procedures into the catalog (a later row for the same code replaces the
    /// earlier one) and commit the merged catalog. Returns the number of rows given.
    pub async fn upsert_procedures(&self, rows: &[Procedure]) -> Result<usize, WarehouseError> {
        let mut all: Vec<Procedure> = self.load_procedures().await?;
        let mut index: HashMap<String, usize> = all
            .iter()
            .enumerate()
            .map(|(i, p)| (p.procedure_code.clone(), i))
            .collect();
        for p in rows {
            match index.get(&p.procedure_code) {
                Some(&i) => all[i] = p.clone(),
                None => {
                    index.insert(p.procedure_code.clone(), all.len());
                    all.push(p.clone());
                }
            }
        }
        all.sort_by(|a, b| a.procedure_code.cmp(&b.procedure_code));
        self.write(
            PROCEDURES,
            procedures_batch(&all)?,
            SaveMode::Overwrite,
            &[],
        )
        .await?;
        Ok(rows.len())
    }

    /// The catalog as the derivation needs it.
    pub async fn catalog(&self) -> Result<HashMap<String, CatalogEntry>, WarehouseError> {
        Ok(self
            .load_procedures()
            .await?
            .into_iter()
            .map(|p| {
                (
                    p.procedure_code.clone(),
                    CatalogEntry {
                        max_working_days: p.max_working_days,
                        procedure_name: p.procedure_name,
                        field_code: p.field_code,
                        field_name: p.field_name,
                        procedure_level: p.procedure_level,
                    },
                )
            })
            .collect())
    }
}
