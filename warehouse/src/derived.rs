//! The derived tables `dossier_facts` and `dossier_states`, kept equal to a full
//! derivation from `events` + catalog + calendar + rules at a cost that follows what a
//! commit adds, not the size of the table.
//!
//! - Both tables are partitioned by [`PART`], the local month of the dossier's first
//!   event. A commit re-derives the dossiers it touched (from all their stored events,
//!   read from the months their events span) and rewrites only the partitions those
//!   dossiers were in or move to (Delta `replaceWhere` on the partition column).
//! - `facts_stamp.json` records the versions of `events`, `dossier_facts` and
//!   `dossier_states` that agree. Readers open those versions
//!   ([`Warehouse::stamped_versions`]), so a reader never sees facts that disagree with
//!   the events they are read with, even while a commit or a rebuild is under way.
//! - When the facts lag behind `events` (a chunked file ingest, a crash between the
//!   events commit and the facts commit), [`Warehouse::ensure_facts`] catches up from the
//!   files added to `events` since the stamped version; a change of catalog, calendar,
//!   rules or layout rebuilds everything, streaming (events sorted by dossier with a
//!   bounded, spilling sort), so memory does not follow the table.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::JoinType;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{col, lit, DataFrame, SessionConfig, SessionContext};
use deltalake::protocol::SaveMode;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::discrepancy::{discrepancies_batch, discrepancies_schema, DISCREPANCIES};
use crate::event::{self, events_from_batches, month_of, Event};
use crate::facts::{DossierFacts, StateRow};
use crate::health::{
    dossier_sources_batch, dossier_sources_schema, merge_summaries, summaries_from_batch,
    summarize, SourceSummary, DOSSIER_SOURCES, SOURCE_DAYS,
};
use crate::open::{open_states_batch, open_states_schema, OPEN_STATES};
use crate::rollup::DAILY_ROLLUP;
use crate::store::{
    facts_batch, facts_schema, states_batch, states_schema, Commit, Warehouse, DOSSIER_FACTS,
    DOSSIER_STATES, EVENTS, PART, PROCEDURES,
};
use crate::WarehouseError;

/// Version of the derived tables' layout; a stamp of another layout means "rebuild".
/// 4: the rollup carries the Decision 766 flows and flagged stocks.
const LAYOUT: u32 = 4;

/// A catch-up that would re-derive more than this share of the events rebuilds instead.
const CATCH_UP_MAX_SHARE: f64 = 0.25;

/// Up to this many touched dossiers are looked up with an `IN` filter on the scan.
const ID_FILTER_MAX: usize = 1_000;

/// Dossiers derived and written per commit of a full rebuild.
const REBUILD_FLUSH_DOSSIERS: usize = 100_000;

/// Memory of the sort of a full rebuild (it spills to disk beyond this).
const REBUILD_SORT_MEMORY: usize = 256 << 20;

/// Which inputs the derived tables were computed from, and which versions agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactsStamp {
    pub events_version: Option<u64>,
    pub procedures_version: Option<u64>,
    pub calendar: String,
    pub rules: String,
    /// Dossiers and state segments written by the last update.
    pub dossiers: usize,
    pub states: usize,
    #[serde(default)]
    pub facts_version: Option<u64>,
    #[serde(default)]
    pub states_version: Option<u64>,
    #[serde(default)]
    pub layout: u32,
    /// The version of `daily_rollup` that agrees with the facts.
    #[serde(default)]
    pub rollup_version: Option<u64>,
    /// The versions of `dossier_sources` and `source_days` that agree with the facts.
    #[serde(default)]
    pub dossier_sources_version: Option<u64>,
    #[serde(default)]
    pub source_days_version: Option<u64>,
    /// The version of `open_states` that agrees with the facts.
    #[serde(default)]
    pub open_states_version: Option<u64>,
    /// The version of `discrepancies` that agrees with the facts.
    #[serde(default)]
    pub discrepancies_version: Option<u64>,
    /// The events version `source_days` summarises up to, when a compaction moved it
    /// past the versions recorded in its rows (see `health`).
    #[serde(default)]
    pub health_watermark: Option<i64>,
}

impl FactsStamp {
    fn same_inputs_but_events(&self, other: &FactsStamp) -> bool {
        self.procedures_version == other.procedures_version
            && self.calendar == other.calendar
            && self.rules == other.rules
            && self.layout == other.layout
    }
}

/// Deterministic months from `a` to `b` (`YYYY-MM`, inclusive).
fn months_between(a: &str, b: &str) -> Vec<String> {
    let parse = |m: &str| -> Option<(i32, u32)> {
        let (y, mo) = m.split_once('-')?;
        Some((y.parse().ok()?, mo.parse().ok()?))
    };
    let (Some((mut y, mut m)), Some(end)) = (parse(a), parse(b)) else {
        return vec![a.to_string(), b.to_string()];
    };
    let mut out = Vec::new();
    while (y, m) <= end {
        out.push(format!("{y:04}-{m:02}"));
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    out
}

fn in_list(column: &str, values: &BTreeSet<String>) -> datafusion::prelude::Expr {
    col(column).in_list(values.iter().map(|v| lit(v.as_str())).collect(), false)
}

/// The ids as a one-column table (`touched_id`), for semi and anti joins.
fn ids_frame(ctx: &SessionContext, ids: &HashSet<String>) -> Result<DataFrame, WarehouseError> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "touched_id",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(
            ids.iter().map(String::as_str).collect::<Vec<_>>(),
        ))],
    )?;
    Ok(ctx.read_batch(batch)?)
}

/// A data file of a local table: its URI is a `file://` URL or a plain path.
pub(crate) fn local_path(uri: &str) -> Result<PathBuf, WarehouseError> {
    if uri.starts_with('/') {
        return Ok(PathBuf::from(uri));
    }
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| WarehouseError::Data(format!("not a local file: {uri}")))
}

impl Warehouse {
    fn stamp_path(&self) -> PathBuf {
        self.root().join("facts_stamp.json")
    }

    /// The stamp of the derived tables, if any.
    pub fn read_stamp(&self) -> Option<FactsStamp> {
        std::fs::read_to_string(self.stamp_path())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    }

    pub(crate) fn write_stamp(&self, stamp: &FactsStamp) -> Result<(), WarehouseError> {
        let text =
            serde_json::to_string_pretty(stamp).map_err(|e| WarehouseError::Data(e.to_string()))?;
        let tmp = self.stamp_path().with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, self.stamp_path())?;
        if let Ok(d) = std::fs::File::open(self.root()) {
            d.sync_all()?;
        }
        Ok(())
    }

    /// The versions of `events`, `dossier_facts` and `dossier_states` that agree (from
    /// the stamp), for readers; None before the first derivation.
    pub fn stamped_versions(&self) -> Option<BTreeMap<String, i64>> {
        let s = self.read_stamp().filter(|s| s.layout == LAYOUT)?;
        let mut out = BTreeMap::new();
        out.insert(EVENTS.to_string(), s.events_version? as i64);
        out.insert(DOSSIER_FACTS.to_string(), s.facts_version? as i64);
        out.insert(DOSSIER_STATES.to_string(), s.states_version? as i64);
        out.insert(DAILY_ROLLUP.to_string(), s.rollup_version? as i64);
        out.insert(
            DOSSIER_SOURCES.to_string(),
            s.dossier_sources_version? as i64,
        );
        out.insert(SOURCE_DAYS.to_string(), s.source_days_version? as i64);
        out.insert(OPEN_STATES.to_string(), s.open_states_version? as i64);
        out.insert(DISCREPANCIES.to_string(), s.discrepancies_version? as i64);
        Some(out)
    }

    async fn version_of(&self, name: &str) -> Result<Option<u64>, WarehouseError> {
        Ok(self.open_table(name).await?.and_then(|t| t.version()))
    }

    async fn current_stamp(&self) -> Result<FactsStamp, WarehouseError> {
        Ok(FactsStamp {
            events_version: self.version_of(EVENTS).await?,
            procedures_version: self.version_of(PROCEDURES).await?,
            calendar: self.calendar.fingerprint(),
            rules: self.config.rules_fingerprint(),
            dossiers: 0,
            states: 0,
            facts_version: None,
            states_version: None,
            layout: LAYOUT,
            rollup_version: None,
            dossier_sources_version: None,
            source_days_version: None,
            open_states_version: None,
            discrepancies_version: None,
            health_watermark: None,
        })
    }

    /// Whether the derived tables are up to date with events, catalog, calendar and rules.
    pub async fn facts_fresh(&self) -> Result<bool, WarehouseError> {
        let cur = self.current_stamp().await?;
        let (fv, sv, rv) = (
            self.version_of(DOSSIER_FACTS).await?,
            self.version_of(DOSSIER_STATES).await?,
            self.version_of(DAILY_ROLLUP).await?,
        );
        let (dv, hv, ov, xv) = (
            self.version_of(DOSSIER_SOURCES).await?,
            self.version_of(SOURCE_DAYS).await?,
            self.version_of(OPEN_STATES).await?,
            self.version_of(DISCREPANCIES).await?,
        );
        Ok(self.read_stamp().is_some_and(|s| {
            s.events_version == cur.events_version
                && s.same_inputs_but_events(&cur)
                && s.facts_version.is_some()
                && s.facts_version == fv
                && s.states_version == sv
                && s.rollup_version.is_some()
                && s.rollup_version == rv
                && s.dossier_sources_version.is_some()
                && s.dossier_sources_version == dv
                && s.source_days_version.is_some()
                && s.source_days_version == hv
                && s.open_states_version.is_some()
                && s.open_states_version == ov
                && s.discrepancies_version.is_some()
                && s.discrepancies_version == xv
        }))
    }

    /// Bring the derived tables up to date: nothing when fresh; a catch-up from the
    /// events added since the stamp when only events changed (and not too many); else a
    /// full rebuild. Returns true when anything was derived.
    pub async fn ensure_facts(&self) -> Result<bool, WarehouseError> {
        if self.facts_fresh().await? {
            return Ok(false);
        }
        let cur = self.current_stamp().await?;
        let stored = self.read_stamp();
        if let Some(s) = &stored {
            // events added since the stamp tell which dossiers to re-derive (also after a
            // crash between the facts and the states commit of those events)
            if s.same_inputs_but_events(&cur)
                && s.facts_version.is_some()
                && s.events_version != cur.events_version
            {
                if let Some(v) = s.events_version {
                    if let Some((touched, months, rows)) = self.events_added_since(v).await? {
                        let total = self.count_rows(EVENTS).await?;
                        if (rows as f64) <= CATCH_UP_MAX_SHARE * total as f64 {
                            tracing::info!(
                                since = v,
                                events = rows,
                                dossiers = touched.len(),
                                "derived facts catch up"
                            );
                            self.update_facts(&touched, &months, None).await?;
                            return Ok(true);
                        }
                    }
                }
            }
        }
        self.rebuild_facts().await?;
        Ok(true)
    }

    async fn count_rows(&self, name: &str) -> Result<u64, WarehouseError> {
        let Some(t) = self.open_table(name).await? else {
            return Ok(0);
        };
        let ctx = SessionContext::new();
        t.update_datafusion_session(&ctx.state())?;
        ctx.register_table(name, t.table_provider().await?)?;
        let n = ctx.table(name).await?.count().await?;
        Ok(n as u64)
    }

    /// The files of `events` at version `to` (the latest when None) that version `since`
    /// did not have (every file when `since` is None). None when either version cannot
    /// be read.
    pub(crate) async fn events_files_added(
        &self,
        since: Option<i64>,
        to: Option<i64>,
    ) -> Result<Option<Vec<PathBuf>>, WarehouseError> {
        let now = match to {
            None => self.open_table(EVENTS).await?,
            Some(v) => self.open_table_at(EVENTS, v).await?,
        };
        let Some(now) = now else {
            return Ok(None);
        };
        let old: HashSet<String> = match since {
            None => HashSet::new(),
            Some(v) => match self.open_table_at(EVENTS, v).await {
                Ok(Some(then)) => then.get_file_uris()?.collect(),
                _ => return Ok(None),
            },
        };
        let added = now
            .get_file_uris()?
            .filter(|u| !old.contains(u))
            .map(|u| local_path(&u))
            .collect::<Result<_, _>>()?;
        Ok(Some(added))
    }

    /// The dossiers, months and number of the events in files added to `events` after
    /// `version`; None when that version cannot be read (then: rebuild).
    async fn events_added_since(
        &self,
        version: u64,
    ) -> Result<Option<(HashSet<String>, BTreeSet<String>, u64)>, WarehouseError> {
        let Some(added) = self.events_files_added(Some(version as i64), None).await? else {
            return Ok(None);
        };
        let offset = self.calendar.offset_micros();
        let found = read_files(
            added,
            &["dossier_id", "at"],
            (HashSet::new(), BTreeSet::new(), 0u64),
            move |(touched, months, rows), batch| {
                let ids = event::string_col(batch, "dossier_id")?;
                let at = event::ts_col(batch, "at")?;
                *rows += batch.num_rows() as u64;
                for i in 0..batch.num_rows() {
                    if !ids.is_null(i) {
                        touched.insert(ids.value(i).to_string());
                    }
                    months.insert(month_of(at.value(i), offset));
                }
                Ok(())
            },
        )
        .await?;
        Ok(Some(found))
    }

    /// Re-derive the dossiers in `touched` from all their stored events and rewrite only
    /// the partitions they were in or move to. `months` are the local months of the
    /// events just added for them (their older events are found from the stored facts);
    /// `known`, when given, is every stored event of the touched dossiers (the first
    /// commit into an empty table), which saves reading them back. Equal to a full
    /// rebuild (tested).
    pub async fn update_facts(
        &self,
        touched: &HashSet<String>,
        months: &BTreeSet<String>,
        known: Option<&[Event]>,
    ) -> Result<FactsStamp, WarehouseError> {
        let t0 = std::time::Instant::now();
        let mut stamp = self.current_stamp().await?;
        let events_table = match known {
            Some(_) => None,
            None => self.open_table(EVENTS).await?,
        };
        // the stamp must name the events version read, whatever is committed meanwhile
        if let Some(t) = &events_table {
            stamp.events_version = t.version();
        }
        let catalog = self.catalog().await?;
        // filters evaluated while decoding: the id column first, the rest only for hits
        let mut config = SessionConfig::new().with_target_partitions(2);
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config(config);
        let ids = ids_frame(&ctx, touched)?;
        // a few thousand ids (a push) as a filter on the scan, more as a semi join
        let by_id = |df: DataFrame| -> Result<DataFrame, WarehouseError> {
            Ok(if touched.len() <= ID_FILTER_MAX {
                df.filter(
                    col("dossier_id")
                        .in_list(touched.iter().map(|d| lit(d.as_str())).collect(), false),
                )?
            } else {
                df.join(
                    ids.clone(),
                    JoinType::LeftSemi,
                    &["dossier_id"],
                    &["touched_id"],
                    None,
                )?
            })
        };
        let offset = self.calendar.offset_micros();

        // 1. where the touched dossiers are now, and the months of their stored events
        let mut old_parts = BTreeSet::new();
        let mut months = months.clone();
        if let Some(t) = self.open_table(DOSSIER_FACTS).await? {
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table(DOSSIER_FACTS, t.table_provider().await?)?;
            let df = by_id(ctx.table(DOSSIER_FACTS).await?)?.select_columns(&[
                "dossier_id",
                "first_event_at",
                "last_event_at",
            ])?;
            for b in df.collect().await? {
                let first = event::ts_col(&b, "first_event_at")?;
                let last = event::ts_col(&b, "last_event_at")?;
                for i in 0..b.num_rows() {
                    let (a, z) = (
                        month_of(first.value(i), offset),
                        month_of(last.value(i), offset),
                    );
                    months.extend(months_between(&a, &z));
                    old_parts.insert(a);
                }
            }
        }

        // after a crash between the facts and the states commit, `dossier_states` may
        // still hold a touched dossier in a partition the facts no longer name
        let stamped = self.read_stamp();
        let states_behind = stamped.as_ref().and_then(|s| s.states_version)
            != self.version_of(DOSSIER_STATES).await?
            || stamped.as_ref().and_then(|s| s.facts_version)
                != self.version_of(DOSSIER_FACTS).await?
            || stamped.as_ref().and_then(|s| s.dossier_sources_version)
                != self.version_of(DOSSIER_SOURCES).await?
            || stamped.as_ref().and_then(|s| s.open_states_version)
                != self.version_of(OPEN_STATES).await?
            || stamped.as_ref().and_then(|s| s.discrepancies_version)
                != self.version_of(DISCREPANCIES).await?;
        // the rollup is a sum over dossiers: after a crash between the derived commits it
        // cannot tell which partitions hold a moved dossier, so it is rebuilt whole
        let rollup_behind = states_behind
            || stamped.as_ref().and_then(|s| s.rollup_version)
                != self.version_of(DAILY_ROLLUP).await?;
        if states_behind {
            if let Some(t) = self.open_table(DOSSIER_STATES).await? {
                t.update_datafusion_session(&ctx.state())?;
                ctx.register_table("states_parts_lookup", t.table_provider().await?)?;
                let df = ctx
                    .table("states_parts_lookup")
                    .await?
                    .join(
                        ids.clone(),
                        JoinType::LeftSemi,
                        &["dossier_id"],
                        &["touched_id"],
                        None,
                    )?
                    .select_columns(&[PART])?
                    .distinct()?;
                for b in df.collect().await? {
                    let p = event::string_col(&b, PART)?;
                    for i in 0..b.num_rows() {
                        old_parts.insert(p.value(i).to_string());
                    }
                }
            }
        }

        // the first event time per source the touched dossiers had (events are never
        // removed: the new first time is the earlier of this and the events read now)
        let mut old_summaries: BTreeMap<(String, String), SourceSummary> = BTreeMap::new();
        if let Some(t) = self.open_table(DOSSIER_SOURCES).await? {
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table("dossier_sources_lookup", t.table_provider().await?)?;
            let df = by_id(ctx.table("dossier_sources_lookup").await?)?;
            for b in df.collect().await? {
                summaries_from_batch(&b, &mut old_summaries, &mut old_parts)?;
            }
        }

        tracing::debug!(ms = t0.elapsed().as_millis() as u64, "facts looked up");
        // 2. every stored event of the touched dossiers, from those months only
        let mut events = Vec::new();
        if let Some(t) = events_table {
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table(EVENTS, t.table_provider().await?)?;
            let df = by_id(ctx.table(EVENTS).await?.filter(in_list("month", &months))?)?;
            events = events_from_batches(&df.collect().await?)?;
        }

        let t_read = t0.elapsed();
        // 3. derive
        let deriver = crate::facts::Deriver {
            calendar: &self.calendar,
            rules: &self.config.rules,
            catalog: &catalog,
        };
        let (facts, states) = deriver.derive_all(known.unwrap_or(&events));
        let mut firsts = summarize(known.unwrap_or(&events));
        merge_summaries(&mut firsts, old_summaries);
        let rows = self.derived_batches(&facts, &states, &firsts).await?;
        let mut parts = old_parts;
        for b in [&rows.0, &rows.2] {
            let p = event::string_col(b, PART)?;
            parts.extend((0..b.num_rows()).map(|i| p.value(i).to_string()));
        }

        // 4. rewrite those partitions: their other dossiers as they were, plus these
        let v = self.replace_parts(&ctx, &ids, &parts, rows).await?;
        stamp.facts_version = v[0];
        stamp.states_version = v[1];
        stamp.dossier_sources_version = v[2];
        stamp.open_states_version = v[3];
        stamp.discrepancies_version = v[4];
        let watermark = stamped.as_ref().and_then(|s| s.health_watermark);
        stamp.health_watermark = watermark;
        // the rollup follows the rewritten partitions, the lag buckets the new events
        let rollup = async {
            if rollup_behind {
                self.rollup_rebuild().await
            } else {
                self.rollup_parts(&parts).await
            }
        };
        let (health, rollup) = tokio::try_join!(
            self.source_days_catch_up(stamp.events_version, watermark),
            rollup
        )?;
        stamp.source_days_version = health;
        stamp.rollup_version = rollup;
        stamp.dossiers = facts.len();
        stamp.states = states.len();
        self.write_stamp(&stamp)?;
        tracing::info!(
            touched = touched.len(),
            partitions = parts.len(),
            read_ms = t_read.as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64,
            "dossier facts updated"
        );
        Ok(stamp)
    }

    /// The rows of `dossier_facts` and `dossier_states` for these derived dossiers, each
    /// in its dossier's partition.
    async fn derived_batches(
        &self,
        facts: &[DossierFacts],
        states: &[StateRow],
        firsts: &BTreeMap<(String, String), SourceSummary>,
    ) -> Result<DerivedRows, WarehouseError> {
        let offset = self.calendar.offset_micros();
        let part_of: HashMap<&str, String> = facts
            .iter()
            .map(|f| {
                (
                    f.dossier_id.as_str(),
                    crate::store::part_of(f.first_event_at, offset),
                )
            })
            .collect();
        let sources = dossier_sources_batch(firsts, &|d, first| {
            part_of
                .get(d)
                .cloned()
                .unwrap_or_else(|| crate::store::part_of(first, offset))
        })?;
        let discrepancies = discrepancies_batch(&sources, &self.config.sync).await?;
        Ok((
            facts_batch(facts, offset)?,
            states_batch(states, &part_of)?,
            sources,
            open_states_batch(facts, states, offset)?,
            discrepancies,
        ))
    }

    /// Overwrite partitions `parts` of the per-dossier derived tables (facts, states,
    /// dossier sources) with their rows of dossiers not in `ids` plus the new rows.
    /// Returns the new versions, in that order.
    async fn replace_parts(
        &self,
        ctx: &SessionContext,
        ids: &DataFrame,
        parts: &BTreeSet<String>,
        (new_facts, new_states, new_sources, new_open, new_found): DerivedRows,
    ) -> Result<Vec<Option<u64>>, WarehouseError> {
        // five tables, independent until the stamp names them: rewritten concurrently
        futures::future::try_join_all(
            [
                (DOSSIER_FACTS, facts_schema(), new_facts),
                (DOSSIER_STATES, states_schema(), new_states),
                (DOSSIER_SOURCES, dossier_sources_schema(), new_sources),
                (OPEN_STATES, open_states_schema(), new_open),
                (DISCREPANCIES, discrepancies_schema(), new_found),
            ]
            .map(|(name, schema, new)| self.replace_parts_of(ctx, ids, parts, name, schema, new)),
        )
        .await
    }

    /// [`Self::replace_parts`] for one table: its new version.
    async fn replace_parts_of(
        &self,
        ctx: &SessionContext,
        ids: &DataFrame,
        parts: &BTreeSet<String>,
        name: &str,
        schema: SchemaRef,
        new: RecordBatch,
    ) -> Result<Option<u64>, WarehouseError> {
        let Some(table) = self.open_table(name).await? else {
            let v = self
                .commit(
                    name,
                    vec![new],
                    Commit {
                        mode: SaveMode::Overwrite,
                        partitions: &[PART],
                        ..Commit::default()
                    },
                )
                .await?;
            return Ok(Some(v));
        };
        if parts.is_empty() {
            return Ok(table.version());
        }
        table.update_datafusion_session(&ctx.state())?;
        let name_in_ctx = format!("{name}_parts");
        if ctx.table_exist(&name_in_ctx)? {
            ctx.deregister_table(&name_in_ctx)?;
        }
        ctx.register_table(&name_in_ctx, table.table_provider().await?)?;
        let kept = ctx
            .table(&name_in_ctx)
            .await?
            .filter(in_list(PART, parts))?
            .join(
                ids.clone(),
                JoinType::LeftAnti,
                &["dossier_id"],
                &["touched_id"],
                None,
            )?
            .collect()
            .await?;
        let mut batches = kept
            .iter()
            .map(|b| conform(b, &schema))
            .collect::<Result<Vec<_>, _>>()?;
        batches.push(new);
        let v = self
            .commit(
                name,
                batches,
                Commit {
                    mode: SaveMode::Overwrite,
                    partitions: &[PART],
                    replace_where: Some(in_list(PART, parts)),
                    ..Commit::default()
                },
            )
            .await?;
        Ok(Some(v))
    }

    /// Rebuild the derived tables from all events. Streaming: the
    /// events are read sorted by dossier through a sort that spills to disk beyond a
    /// fixed memory, and the facts are written in several commits (readers keep
    /// reading the stamped versions until the stamp names the new ones).
    pub async fn rebuild_facts(&self) -> Result<FactsStamp, WarehouseError> {
        let mut stamp = self.current_stamp().await?;
        let catalog = self.catalog().await?;
        let deriver = crate::facts::Deriver {
            calendar: &self.calendar,
            rules: &self.config.rules,
            catalog: &catalog,
        };
        // one sorter that spills its share of a fixed pool to disk
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(
                datafusion::execution::memory_pool::FairSpillPool::new(REBUILD_SORT_MEMORY),
            ))
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new().with_target_partitions(1),
            runtime,
        );
        let mut written = Written::default();
        if let Some(t) = self.open_table(EVENTS).await? {
            stamp.events_version = t.version();
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table(EVENTS, t.table_provider().await?)?;
            let mut stream = ctx
                .table(EVENTS)
                .await?
                .filter(col("dossier_id").is_not_null())?
                .sort(vec![col("dossier_id").sort(true, false)])?
                .execute_stream()
                .await?;
            // events of whole dossiers, derived in groups
            let mut group: Vec<Event> = Vec::new();
            let mut facts = Vec::new();
            let mut states = Vec::new();
            let mut firsts = BTreeMap::new();
            while let Some(b) = stream.next().await {
                for e in events_from_batches(&[b?])? {
                    let boundary = group.len() >= 50_000
                        && group.last().and_then(|l| l.dossier_id.as_deref())
                            != e.dossier_id.as_deref();
                    if boundary {
                        let (f, s) = deriver.derive_all(&group);
                        facts.extend(f);
                        states.extend(s);
                        firsts.extend(summarize(&group));
                        group.clear();
                        if facts.len() >= REBUILD_FLUSH_DOSSIERS {
                            self.rebuild_write(&mut written, &facts, &states, &firsts)
                                .await?;
                            facts.clear();
                            states.clear();
                            firsts.clear();
                        }
                    }
                    group.push(e);
                }
            }
            let (f, s) = deriver.derive_all(&group);
            facts.extend(f);
            states.extend(s);
            firsts.extend(summarize(&group));
            self.rebuild_write(&mut written, &facts, &states, &firsts)
                .await?;
        } else {
            self.rebuild_write(&mut written, &[], &[], &BTreeMap::new())
                .await?;
        }
        // a rebuild appends every partition in every commit: compact the small files
        // before readers get the new versions (the rows do not change)
        for (name, v) in [
            (DOSSIER_FACTS, &mut written.facts),
            (DOSSIER_STATES, &mut written.states),
            (DOSSIER_SOURCES, &mut written.sources),
            (OPEN_STATES, &mut written.open),
            (DISCREPANCIES, &mut written.found),
        ] {
            if v.is_some() {
                *v = self.compact(name).await?.or(*v);
            }
        }
        stamp.facts_version = written.facts;
        stamp.states_version = written.states;
        stamp.rollup_version = self.rollup_rebuild().await?;
        stamp.dossier_sources_version = written.sources;
        stamp.open_states_version = written.open;
        stamp.discrepancies_version = written.found;
        stamp.source_days_version = self.source_days_rebuild(stamp.events_version).await?;
        stamp.health_watermark = stamp.events_version.map(|v| v as i64);
        stamp.dossiers = written.dossiers;
        stamp.states = written.segments;
        self.write_stamp(&stamp)?;
        tracing::info!(
            dossiers = stamp.dossiers,
            states = stamp.states,
            "dossier facts rebuilt"
        );
        Ok(stamp)
    }

    /// One commit of a rebuild: the first replaces the tables (and their layout), the
    /// others append.
    async fn rebuild_write(
        &self,
        written: &mut Written,
        facts: &[DossierFacts],
        states: &[StateRow],
        firsts: &BTreeMap<(String, String), SourceSummary>,
    ) -> Result<(), WarehouseError> {
        if written.facts.is_some() && facts.is_empty() && states.is_empty() && firsts.is_empty() {
            return Ok(());
        }
        let (facts_rows, states_rows, sources_rows, open_rows, found_rows) =
            self.derived_batches(facts, states, firsts).await?;
        let first = written.facts.is_none();
        let how = || Commit::rebuild_step(first);
        written.facts = Some(self.commit(DOSSIER_FACTS, vec![facts_rows], how()).await?);
        written.states = Some(
            self.commit(DOSSIER_STATES, vec![states_rows], how())
                .await?,
        );
        written.sources = Some(
            self.commit(DOSSIER_SOURCES, vec![sources_rows], how())
                .await?,
        );
        written.open = Some(self.commit(OPEN_STATES, vec![open_rows], how()).await?);
        written.found = Some(self.commit(DISCREPANCIES, vec![found_rows], how()).await?);
        written.dossiers += facts.len();
        written.segments += states.len();
        Ok(())
    }
}

/// The new rows of the per-dossier derived tables: facts, states, dossier sources, open
/// states, discrepancies.
type DerivedRows = (
    RecordBatch,
    RecordBatch,
    RecordBatch,
    RecordBatch,
    RecordBatch,
);

#[derive(Default)]
struct Written {
    facts: Option<u64>,
    states: Option<u64>,
    sources: Option<u64>,
    open: Option<u64>,
    found: Option<u64>,
    dossiers: usize,
    segments: usize,
}

/// Fold the batches of some columns of local Parquet files into `acc`, on a blocking
/// thread (the files of one table version, read without planning a query).
pub(crate) async fn read_files<T: Send + 'static>(
    paths: Vec<PathBuf>,
    columns: &'static [&'static str],
    acc: T,
    mut f: impl FnMut(&mut T, &RecordBatch) -> Result<(), WarehouseError> + Send + 'static,
) -> Result<T, WarehouseError> {
    tokio::task::spawn_blocking(move || {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use datafusion::parquet::arrow::ProjectionMask;
        let mut acc = acc;
        for path in paths {
            let file = std::fs::File::open(&path)?;
            let b = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| WarehouseError::Data(e.to_string()))?;
            let mask = ProjectionMask::columns(b.parquet_schema(), columns.iter().copied());
            for batch in b
                .with_projection(mask)
                .build()
                .map_err(|e| WarehouseError::Data(e.to_string()))?
            {
                f(&mut acc, &batch?)?;
            }
        }
        Ok(acc)
    })
    .await
    .map_err(|e| WarehouseError::Data(e.to_string()))?
}

/// Cast a batch read back through DataFusion (string views etc.) to a table's schema.
pub(crate) fn conform(b: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, WarehouseError> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| {
            let c = b
                .column_by_name(f.name())
                .ok_or_else(|| WarehouseError::Data(format!("missing column {}", f.name())))?;
            Ok(datafusion::arrow::compute::cast(c, f.data_type())?)
        })
        .collect::<Result<Vec<_>, WarehouseError>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::months_between;

    #[test]
    fn months_between_spans_years() {
        assert_eq!(
            months_between("2025-11", "2026-02"),
            vec!["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(months_between("2026-03", "2026-03"), vec!["2026-03"]);
        assert!(months_between("2026-04", "2026-03").is_empty());
    }
}
