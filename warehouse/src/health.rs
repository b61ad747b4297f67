//! What sync health needs, kept at ingest so that `/api/v1/sources` reads tables whose
//! size does not follow the number of events:
//!
//! * `source_days`: per source, local day of the event's time and lag bucket, the number
//!   of events, their first and last time, the last ingestion time and the largest lag.
//!   Each derivation appends the aggregates of the events files added since the last
//!   one (`events_version` says up to which events version a row summarises, so a crash
//!   between the append and the stamp never counts a file twice); a rebuild replaces it.
//! * `dossier_sources`: per dossier and source, the time of the source's first event
//!   about the dossier. Partitioned like the facts and rewritten with them.
//!
//! Lags are bucketed logarithmically ([`lag_bucket`]): a percentile read from the
//! buckets is within [`LAG_RELATIVE_ERROR`] of the exact order statistic (plus one second
//! for lags under a second).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::protocol::SaveMode;

use crate::calendar::DAY_MICROS;
use crate::event::{self, Event};
use crate::store::{Commit, Warehouse, PART};
use crate::WarehouseError;

/// Per source, day and lag bucket.
pub const SOURCE_DAYS: &str = "source_days";
/// Per dossier and source, the first event time.
pub const DOSSIER_SOURCES: &str = "dossier_sources";

/// Ratio of consecutive lag bucket bounds.
pub const LAG_GAMMA: f64 = 1.02;
/// Largest relative error of a lag read back from its bucket: (γ − 1) / (γ + 1).
pub const LAG_RELATIVE_ERROR: f64 = (LAG_GAMMA - 1.0) / (LAG_GAMMA + 1.0);

/// The bucket of a lag in seconds: 0 for |lag| < 1 s, else ±i for |lag| in
/// [γ^(i−1), γ^i).
pub fn lag_bucket(lag_seconds: f64) -> i32 {
    let a = lag_seconds.abs();
    if a.is_nan() || a < 1.0 {
        return 0;
    }
    let i = (a.ln() / LAG_GAMMA.ln()).floor() as i32 + 1;
    if lag_seconds < 0.0 {
        -i
    } else {
        i
    }
}

/// The value a bucket stands for (the harmonic mean of its bounds: the relative error is
/// the same at both ends).
pub fn bucket_value(bucket: i32) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    let i = bucket.abs();
    let lo = LAG_GAMMA.powi(i - 1);
    let hi = LAG_GAMMA.powi(i);
    let v = 2.0 * lo * hi / (lo + hi);
    if bucket < 0 {
        -v
    } else {
        v
    }
}

/// Percentile (linear interpolation between the two nearest ranks, as SQL's
/// `percentile_cont`) of a histogram `bucket → count`.
pub fn histogram_percentile(hist: &BTreeMap<i32, i64>, q: f64) -> Option<f64> {
    let n: i64 = hist.values().sum();
    if n <= 0 {
        return None;
    }
    // buckets in value order
    let mut order: Vec<(f64, i64)> = hist
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(b, c)| (bucket_value(*b), *c))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let at_rank = |k: i64| -> f64 {
        let mut seen = 0;
        for (v, c) in &order {
            seen += c;
            if k < seen {
                return *v;
            }
        }
        order.last().map_or(0.0, |x| x.0)
    };
    let r = q * (n - 1) as f64;
    let lo = r.floor() as i64;
    let hi = r.ceil() as i64;
    let (a, b) = (at_rank(lo), at_rank(hi));
    Some(a + (r - lo as f64) * (b - a))
}

/// Schema of `source_days`.
pub fn source_days_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("lag_bucket", DataType::Int32, false),
        Field::new("events", DataType::Int64, false),
        Field::new("first_at", ts(), false),
        Field::new("last_at", ts(), false),
        Field::new("last_ingested_at", ts(), false),
        Field::new("lag_max_seconds", DataType::Float64, false),
        Field::new("events_version", DataType::Int64, false),
    ]))
}

/// Schema of `dossier_sources`.
pub fn dossier_sources_schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("dossier_id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("first_at", ts(), false),
        Field::new("reported", DataType::Boolean, false),
        Field::new("received_at", ts(), true),
        Field::new("received_count", DataType::Int64, false),
        Field::new("end_type", DataType::Utf8, true),
        Field::new("ended_at", ts(), true),
        Field::new("dossier_first_at", ts(), true),
        Field::new(PART, DataType::Utf8, false),
    ]))
}
#[derive(Clone, Copy)]
struct DayStats {
    events: i64,
    first: i64,
    last: i64,
    ingested: i64,
    lag_max: f64,
}

/// Aggregates of events per (source, local day, lag bucket).
#[derive(Default)]
pub struct SourceDays {
    rows: HashMap<(String, i32, i32), DayStats>,
}

impl SourceDays {
    /// Add one event.
    pub fn add(&mut self, source: &str, at: i64, ingested: i64, offset: i64) {
        let lag = (ingested - at) as f64 / 1e6;
        let day = (at + offset).div_euclid(DAY_MICROS) as i32;
        let key = (source.to_string(), day, lag_bucket(lag));
        let e = self.rows.entry(key).or_insert(DayStats {
            events: 0,
            first: at,
            last: at,
            ingested,
            lag_max: lag,
        });
        e.events += 1;
        e.first = e.first.min(at);
        e.last = e.last.max(at);
        e.ingested = e.ingested.max(ingested);
        e.lag_max = e.lag_max.max(lag);
    }

    /// Add the events of a batch with columns `source`, `at`, `ingested_at`.
    pub fn add_batch(&mut self, b: &RecordBatch, offset: i64) -> Result<(), WarehouseError> {
        let src = event::string_col(b, "source")?;
        let at = event::ts_col(b, "at")?;
        let ing = event::ts_col(b, "ingested_at")?;
        for i in 0..b.num_rows() {
            self.add(src.value(i), at.value(i), ing.value(i), offset);
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in key order, stamped with the events version they summarise up to.
    fn batch(&self, events_version: i64) -> Result<RecordBatch, WarehouseError> {
        let mut keys: Vec<_> = self.rows.keys().collect();
        keys.sort();
        let s = |f: &dyn Fn(&DayStats) -> i64| {
            TimestampMicrosecondArray::from(
                keys.iter().map(|k| f(&self.rows[*k])).collect::<Vec<_>>(),
            )
            .with_timezone("UTC")
        };
        Ok(RecordBatch::try_new(
            source_days_schema(),
            vec![
                Arc::new(StringArray::from(
                    keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
                )),
                Arc::new(Date32Array::from(
                    keys.iter().map(|k| k.1).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from(
                    keys.iter().map(|k| k.2).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    keys.iter()
                        .map(|k| self.rows[*k].events)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(s(&|d| d.first)),
                Arc::new(s(&|d| d.last)),
                Arc::new(s(&|d| d.ingested)),
                Arc::new(Float64Array::from(
                    keys.iter()
                        .map(|k| self.rows[*k].lag_max)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(vec![events_version; keys.len()])),
            ],
        )?)
    }
}

/// What one source said about one dossier (a row of `dossier_sources`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSummary {
    /// Its first event about the dossier, of any type.
    pub first_at: i64,
    /// It sent an event other than citizens' feedback.
    pub reported: bool,
    /// First `received` instant and the number of distinct ones.
    pub received_at: Option<i64>,
    pub received_count: i64,
    /// Its earliest end (at the same instant: resolved, returned, withdrawn, stopped).
    pub end: Option<(i64, String)>,
    /// The dossier's earliest event other than feedback, any source.
    pub dossier_first_at: Option<i64>,
}

fn end_rank(t: &str) -> u8 {
    match t {
        "resolved" => 1,
        "returned" => 2,
        "withdrawn" => 3,
        _ => 4,
    }
}

/// Per (dossier, source), what the source said, from every event of the dossiers
/// (events without a dossier are skipped).
pub fn summarize(events: &[Event]) -> BTreeMap<(String, String), SourceSummary> {
    let mut received: HashMap<(&str, &str), BTreeSet<i64>> = HashMap::new();
    let mut out: BTreeMap<(String, String), SourceSummary> = BTreeMap::new();
    let mut dossier_first: HashMap<&str, i64> = HashMap::new();
    for e in events {
        let Some(d) = e.dossier_id.as_deref() else {
            continue;
        };
        let t = e.event_type.as_str();
        let feedback = matches!(t, "feedback_received" | "feedback_resolved");
        let s = out
            .entry((d.to_string(), e.source.clone()))
            .or_insert(SourceSummary {
                first_at: e.at,
                reported: false,
                received_at: None,
                received_count: 0,
                end: None,
                dossier_first_at: None,
            });
        s.first_at = s.first_at.min(e.at);
        if feedback {
            continue;
        }
        s.reported = true;
        let f = dossier_first.entry(d).or_insert(e.at);
        *f = (*f).min(e.at);
        if t == "received" {
            s.received_at = Some(s.received_at.map_or(e.at, |r| r.min(e.at)));
            received
                .entry((d, e.source.as_str()))
                .or_default()
                .insert(e.at);
        }
        if matches!(t, "resolved" | "returned" | "withdrawn" | "stopped") {
            let better = s
                .end
                .as_ref()
                .is_none_or(|(at, old)| (e.at, end_rank(t)) < (*at, end_rank(old)));
            if better {
                s.end = Some((e.at, t.to_string()));
            }
        }
    }
    for ((d, src), s) in out.iter_mut() {
        s.received_count = received
            .get(&(d.as_str(), src.as_str()))
            .map_or(0, |r| r.len() as i64);
        s.dossier_first_at = dossier_first.get(d.as_str()).copied();
    }
    out
}

/// Merge stored summaries into fresh ones: a source's first event is the earlier of both
/// (a feedback event may lie outside the months read); a pair not seen now is kept.
pub fn merge_summaries(
    fresh: &mut BTreeMap<(String, String), SourceSummary>,
    stored: BTreeMap<(String, String), SourceSummary>,
) {
    for (k, old) in stored {
        match fresh.get_mut(&k) {
            Some(s) => s.first_at = s.first_at.min(old.first_at),
            None => {
                fresh.insert(k, old);
            }
        }
    }
}

/// Stored summaries read back from `dossier_sources` rows, with their partitions.
pub fn summaries_from_batch(
    b: &RecordBatch,
    out: &mut BTreeMap<(String, String), SourceSummary>,
    parts: &mut BTreeSet<String>,
) -> Result<(), WarehouseError> {
    let d = event::string_col(b, "dossier_id")?;
    let src = event::string_col(b, "source")?;
    let first = event::ts_col(b, "first_at")?;
    let reported = b
        .column_by_name("reported")
        .and_then(|c| {
            c.as_any()
                .downcast_ref::<datafusion::arrow::array::BooleanArray>()
                .cloned()
        })
        .ok_or_else(|| WarehouseError::Data("reported is not a boolean".into()))?;
    let rec = event::ts_col(b, "received_at")?;
    let count = datafusion::arrow::compute::cast(
        b.column_by_name("received_count")
            .ok_or_else(|| WarehouseError::Data("missing received_count".into()))?,
        &DataType::Int64,
    )?;
    let count = count
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| WarehouseError::Data("received_count is not an integer".into()))?;
    let end_type = event::string_col(b, "end_type")?;
    let ended = event::ts_col(b, "ended_at")?;
    let dfirst = event::ts_col(b, "dossier_first_at")?;
    let part = event::string_col(b, PART)?;
    let opt = |a: &TimestampMicrosecondArray, i: usize| (!a.is_null(i)).then(|| a.value(i));
    for i in 0..b.num_rows() {
        parts.insert(part.value(i).to_string());
        out.insert(
            (d.value(i).to_string(), src.value(i).to_string()),
            SourceSummary {
                first_at: first.value(i),
                reported: reported.value(i),
                received_at: opt(&rec, i),
                received_count: count.value(i),
                end: opt(&ended, i).map(|t| (t, end_type.value(i).to_string())),
                dossier_first_at: opt(&dfirst, i),
            },
        );
    }
    Ok(())
}

/// Rows of `dossier_sources`, each in the partition given by `part_of_dossier` (called
/// with the dossier and its first event time).
pub fn dossier_sources_batch(
    rows: &BTreeMap<(String, String), SourceSummary>,
    part_of_dossier: &dyn Fn(&str, i64) -> String,
) -> Result<RecordBatch, WarehouseError> {
    // a dossier without facts (feedback only) goes to the month of its first event
    let mut first_of: HashMap<&str, i64> = HashMap::new();
    for ((d, _), s) in rows {
        let e = first_of.entry(d.as_str()).or_insert(s.first_at);
        *e = (*e).min(s.first_at);
    }
    let ts =
        |v: Vec<Option<i64>>| Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC"));
    let vals: Vec<&SourceSummary> = rows.values().collect();
    Ok(RecordBatch::try_new(
        dossier_sources_schema(),
        vec![
            Arc::new(StringArray::from(
                rows.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
            )),
            ts(vals.iter().map(|s| Some(s.first_at)).collect()),
            Arc::new(datafusion::arrow::array::BooleanArray::from(
                vals.iter().map(|s| s.reported).collect::<Vec<_>>(),
            )),
            ts(vals.iter().map(|s| s.received_at).collect()),
            Arc::new(Int64Array::from(
                vals.iter().map(|s| s.received_count).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                vals.iter()
                    .map(|s| s.end.as_ref().map(|e| e.1.as_str()))
                    .collect::<Vec<_>>(),
            )),
            ts(vals.iter().map(|s| s.end.as_ref().map(|e| e.0)).collect()),
            ts(vals.iter().map(|s| s.dossier_first_at).collect()),
            Arc::new(StringArray::from(
                rows.keys()
                    .map(|k| part_of_dossier(&k.0, first_of[k.0.as_str()]))
                    .collect::<Vec<_>>(),
            )),
        ],
    )?)
}

impl Warehouse {
    /// The events version `source_days` summarises up to (None: nothing yet).
    async fn source_days_watermark(
        &self,
        table: &deltalake::DeltaTable,
    ) -> Result<Option<i64>, WarehouseError> {
        let ctx = datafusion::prelude::SessionContext::new();
        table.update_datafusion_session(&ctx.state())?;
        ctx.register_table("source_days_watermark", table.table_provider().await?)?;
        let b = ctx
            .sql("SELECT MAX(events_version) AS v FROM source_days_watermark")
            .await?
            .collect()
            .await?;
        Ok(b.first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<Int64Array>().cloned())
            .and_then(|a| (!a.is_null(0)).then(|| a.value(0))))
    }

    /// Append to `source_days` the aggregates of the events files added after the
    /// version it summarises, up to `events_version`. Returns its version.
    /// `stamped` is the watermark of the facts stamp (moved by a compaction of `events`).
    pub(crate) async fn source_days_catch_up(
        &self,
        events_version: Option<u64>,
        stamped: Option<i64>,
    ) -> Result<Option<u64>, WarehouseError> {
        let table = self.open_table(SOURCE_DAYS).await?;
        let current = table.as_ref().and_then(|t| t.version());
        let Some(to) = events_version else {
            return Ok(current);
        };
        // nothing summarised yet (no table): every file
        let from = match &table {
            Some(t) => self.source_days_watermark(t).await?.max(stamped),
            None => None,
        };
        if table.is_some() && from.is_some_and(|f| f >= to as i64) {
            return Ok(current);
        }
        let added = match self.events_files_added(from, Some(to as i64)).await? {
            Some(added) => added,
            None if from.is_some() => return self.source_days_rebuild(events_version).await,
            None => return Ok(None),
        };
        let offset = self.calendar.offset_micros();
        let days = crate::derived::read_files(
            added,
            &["source", "at", "ingested_at"],
            SourceDays::default(),
            move |days, batch| days.add_batch(batch, offset),
        )
        .await?;
        if days.is_empty() && table.is_some() {
            return Ok(current);
        }
        let v = self
            .commit(
                SOURCE_DAYS,
                vec![days.batch(to as i64)?],
                Commit {
                    mode: SaveMode::Append,
                    ..Commit::default()
                },
            )
            .await?;
        Ok(Some(v))
    }

    /// Replace `source_days` with the aggregates of every event at `events_version`.
    pub(crate) async fn source_days_rebuild(
        &self,
        events_version: Option<u64>,
    ) -> Result<Option<u64>, WarehouseError> {
        use futures::StreamExt;
        let offset = self.calendar.offset_micros();
        let mut days = SourceDays::default();
        let table = match events_version {
            Some(v) => self.open_table_at(crate::store::EVENTS, v as i64).await?,
            None => None,
        };
        if let Some(t) = table {
            let ctx = datafusion::prelude::SessionContext::new();
            t.update_datafusion_session(&ctx.state())?;
            ctx.register_table("events_for_health", t.table_provider().await?)?;
            let mut s = ctx
                .table("events_for_health")
                .await?
                .select_columns(&["source", "at", "ingested_at"])?
                .execute_stream()
                .await?;
            while let Some(b) = s.next().await {
                days.add_batch(&b?, offset)?;
            }
        }
        let v = self
            .commit(
                SOURCE_DAYS,
                vec![days.batch(events_version.map_or(-1, |v| v as i64))?],
                Commit {
                    mode: SaveMode::Overwrite,
                    overwrite_schema: true,
                    ..Commit::default()
                },
            )
            .await?;
        Ok(Some(v))
    }
}
