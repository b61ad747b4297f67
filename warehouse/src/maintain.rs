//! Table maintenance (`giamsat maintain`): many small commits must not leave many small
//! files, a log too long to open, or files nobody needs — and must never take away a
//! file that a recorded export run reads.
//!
//! For every table: compaction of small files (Delta optimize; the rows are unchanged),
//! a checkpoint of the log, then vacuum of the files no longer in the current version
//! whose removal is older than the retention. The retention is stretched so that every
//! version an export run is pinned to stays readable: a file that version reads was
//! removed by a later commit, so the files removed after the oldest pinned version's
//! commit are kept. The log itself is never cleaned (commits are written with expired
//! log cleanup off), so time travel to a pinned version keeps working.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use deltalake::operations::optimize::OptimizeType;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use serde::Serialize;

use crate::rollup::DAILY_ROLLUP;
use crate::store::{Warehouse, DOSSIER_FACTS, DOSSIER_STATES, EVENTS};
use crate::WarehouseError;

/// Compacted files are written up to this size.
const TARGET_FILE_SIZE: u64 = 128 << 20;

/// Compact a table's small files into files of up to [`TARGET_FILE_SIZE`] (the rows do not
/// change; the log is not cleaned).
/// A compacted table and what compaction did.
type Compacted = (
    deltalake::DeltaTable,
    deltalake::operations::optimize::Metrics,
);

async fn optimize(table: deltalake::DeltaTable) -> Result<Compacted, WarehouseError> {
    Ok(table
        .optimize()
        .with_type(OptimizeType::Compact)
        .with_target_size(NonZeroU64::new(TARGET_FILE_SIZE).unwrap_or(NonZeroU64::MIN))
        // one rewrite at a time: deltalake spawns each rewrite as a task, and after a
        // failed one a second could still be writing when the failed compaction's files
        // are cleaned up (it would leave a file no version references)
        .with_max_concurrent_tasks(1)
        // the codec of every other write: deltalake compacts with ZSTD by default, and a
        // reader builds a ZSTD decoder per column chunk it opens (about a seventh of an
        // alerts request's CPU in a profile at 1M dossiers)
        .with_writer_properties(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build(),
        )
        .with_commit_properties(
            deltalake::kernel::transaction::CommitProperties::default()
                .with_cleanup_expired_logs(Some(false)),
        )
        .await?)
}

/// What maintenance did to one table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableMaintenance {
    pub table: String,
    pub version: i64,
    pub files_before: usize,
    pub files_after: usize,
    pub files_compacted: u64,
    pub checkpoint: bool,
    pub files_vacuumed: usize,
    pub retention_hours: f64,
}

/// The commit time of `version` of a table (milliseconds), from its log entry.
fn commit_millis(wh: &Warehouse, table: &str, version: i64) -> Option<i64> {
    let path = wh
        .table_path(table)
        .join("_delta_log")
        .join(format!("{version:020}.json"));
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        v.get("commitInfo")?.get("timestamp")?.as_i64()
    })
}

impl Warehouse {
    /// Compact one table's small files (rows unchanged); its new version. Only for a
    /// table outside the facts stamp (the stamp names the derived tables' versions:
    /// those are compacted by [`Warehouse::maintain`], which re-stamps them).
    pub async fn compact(&self, name: &str) -> Result<Option<u64>, WarehouseError> {
        let _lock = self.write_lock(name).await?;
        let Some(table) = self.open_table(name).await? else {
            return Ok(None);
        };
        let (table, _) = self.optimize_or_clean(name, table).await?;
        Ok(table.version())
    }

    /// [`optimize`], removing what a failed compaction wrote. The caller holds the
    /// table's write lock.
    async fn optimize_or_clean(
        &self,
        name: &str,
        table: deltalake::DeltaTable,
    ) -> Result<Compacted, WarehouseError> {
        let before = crate::store::list_files(&self.table_path(name));
        match optimize(table).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.remove_orphans(name, &before).await;
                Err(e)
            }
        }
    }

    /// Compact, checkpoint and vacuum every table. `pinned` is, per table, the oldest
    /// version an export run reads; `retention_hours` the configured retention.
    pub async fn maintain(
        &self,
        pinned: &BTreeMap<String, i64>,
        retention_hours: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<TableMaintenance>, WarehouseError> {
        // the derived tables are made fresh first, so that after compaction the stamp
        // can name the compacted versions (compaction changes no row)
        self.ensure_facts().await?;
        let mut names: Vec<String> = std::fs::read_dir(self.root().join("tables"))?
            .flatten()
            .filter(|e| e.path().join("_delta_log").is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            // compaction and vacuum write and delete files: no commit of the table runs
            // meanwhile (its clean-up would take the compacted files for orphans)
            let _lock = self.write_lock(&name).await?;
            let Some(table) = self.open_table(&name).await? else {
                continue;
            };
            let mut m = TableMaintenance {
                table: name.clone(),
                files_before: table.get_file_uris()?.count(),
                ..TableMaintenance::default()
            };
            let (table, metrics) = self.optimize_or_clean(&name, table).await?;
            m.files_compacted = metrics.num_files_removed;
            deltalake::checkpoints::create_checkpoint(&table, None).await?;
            m.checkpoint = true;
            m.version = table.version().unwrap_or(0) as i64;
            // keep what the oldest pinned version reads
            let mut hours = retention_hours as f64;
            if let Some(p) = pinned.get(&name) {
                if let Some(ms) = commit_millis(self, &name, p + 1) {
                    let age = (now.timestamp_millis() - ms) as f64 / 3_600_000.0;
                    hours = hours.max(age + 1.0);
                }
            }
            m.retention_hours = hours;
            let (table, vacuum) = table
                .vacuum()
                .with_retention_period(chrono::Duration::milliseconds((hours * 3_600_000.0) as i64))
                .with_enforce_retention_duration(false)
                .with_commit_properties(
                    deltalake::kernel::transaction::CommitProperties::default()
                        .with_cleanup_expired_logs(Some(false)),
                )
                .await?;
            m.files_vacuumed = vacuum.files_deleted.len();
            m.version = table.version().unwrap_or(0) as i64;
            m.files_after = table.get_file_uris()?.count();
            tracing::info!(table = %name, compacted = m.files_compacted, vacuumed = m.files_vacuumed, "maintained");
            out.push(m);
        }
        // compaction changed versions, not rows: the stamp names the new versions
        if let Some(mut stamp) = self.read_stamp() {
            let v = |n: &str| out.iter().find(|m| m.table == n).map(|m| m.version as u64);
            if stamp.facts_version.is_some() {
                stamp.events_version = v(EVENTS).or(stamp.events_version);
                stamp.facts_version = v(DOSSIER_FACTS).or(stamp.facts_version);
                stamp.states_version = v(DOSSIER_STATES).or(stamp.states_version);
                stamp.rollup_version = v(DAILY_ROLLUP).or(stamp.rollup_version);
                stamp.dossier_sources_version =
                    v(crate::health::DOSSIER_SOURCES).or(stamp.dossier_sources_version);
                stamp.source_days_version =
                    v(crate::health::SOURCE_DAYS).or(stamp.source_days_version);
                stamp.open_states_version =
                    v(crate::open::OPEN_STATES).or(stamp.open_states_version);
                stamp.discrepancies_version =
                    v(crate::discrepancy::DISCREPANCIES).or(stamp.discrepancies_version);
                // source_days summarises every event: after the events' compaction its
                // files are not new events
                stamp.health_watermark = stamp.events_version.map(|v| v as i64);
                self.write_stamp(&stamp)?;
            }
        }
        Ok(out)
    }
}
