//! Sync health per source system (issue #5): binds the parameters of `sql/health.sql`.
//!
//! Per source: events and dossiers that happened by `as_of`, first / last event, last
//! ingestion, ingestion lag (`ingested_at − at`) p50 / p90 (exact, `percentile_cont`)
//! and max, quarantined records and error rate, silence at `as_of` and whether it makes
//! the source stale. In a territorially scoped session `events` holds only the scope's
//! dossiers and `quarantine` is empty, so the figures are those of the scope.

use datafusion::common::ScalarValue;
use datafusion::prelude::{col, SessionContext};
use serde::Serialize;

use crate::common::{self, Cols};
use crate::QueryError;

/// The SQL file, verbatim.
pub const SQL: &str = include_str!("../sql/health.sql");

/// Parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The instant of the check, UTC microseconds (usually now).
    pub as_of: i64,
    /// Silent for more than this many hours ⇒ stale (default 24).
    pub stale_after_hours: f64,
}

impl Params {
    /// Defaults for an instant.
    pub fn new(as_of: i64) -> Params {
        Params {
            as_of,
            stale_after_hours: crate::alerts::DEFAULT_STALE_AFTER_HOURS,
        }
    }

    /// Check the parameters.
    pub fn validate(&self) -> Result<(), QueryError> {
        common::check_hours("stale_after_hours", self.stale_after_hours, 0.0)
    }
}

/// Health of one source. Instants are RFC 3339 in local time (+07:00).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SourceHealth {
    pub source: String,
    /// Events that happened at or before `as_of`.
    pub events: i64,
    /// Distinct dossiers of those events.
    pub dossiers: i64,
    pub first_event_at: Option<String>,
    pub last_event_at: Option<String>,
    pub last_ingested_at: Option<String>,
    /// Ingestion lag `ingested_at − at` in seconds: exact median, 90th percentile
    /// (linear interpolation), maximum.
    pub lag_p50_seconds: Option<f64>,
    pub lag_p90_seconds: Option<f64>,
    pub lag_max_seconds: Option<f64>,
    /// Rows of `quarantine` from this source.
    pub quarantined: i64,
    /// quarantined / (events + quarantined).
    pub error_rate: f64,
    /// `as_of − last_event_at` in seconds.
    pub lag_now_seconds: Option<f64>,
    /// `lag_now_seconds > stale_after_hours` (or no event at all by `as_of`).
    pub stale: bool,
    /// Events dated after `as_of` (not counted above).
    pub future_events: i64,
}

/// The health report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub as_of: Option<String>,
    pub stale_after_hours: f64,
    /// Sorted by source code.
    pub sources: Vec<SourceHealth>,
    /// Quarantined records whose source could not be read (not JSON, no `source`).
    pub unattributed_quarantined: i64,
}

/// Compute the health report.
/// Sync health from the tables kept at ingest (`source_days`, `dossier_sources`) when
/// the session has them (an unscoped session), else [`run`]. Equal to [`run`] except
/// that the lag percentiles come from the lag buckets: each is within
/// `giamsat_warehouse::health::LAG_RELATIVE_ERROR` of the exact one (plus one second).
pub async fn run_with(
    ctx: &SessionContext,
    cal: &giamsat_warehouse::Calendar,
    p: &Params,
) -> Result<Report, QueryError> {
    use giamsat_warehouse::health::{DOSSIER_SOURCES, SOURCE_DAYS};
    if ctx.table_exist(SOURCE_DAYS)? && ctx.table_exist(DOSSIER_SOURCES)? {
        crate::health_fast::run(ctx, cal, p).await
    } else {
        run(ctx, p).await
    }
}

/// Sync health with the event-level SQL (`sql/health.sql`, the definition).
pub async fn run(ctx: &SessionContext, p: &Params) -> Result<Report, QueryError> {
    p.validate()?;
    let df = ctx.sql(SQL).await?.with_param_values(vec![
        common::ts_param(Some(p.as_of)),
        ScalarValue::Int64(Some(common::hours_to_micros(p.stale_after_hours))),
    ])?;
    let mut sources = Vec::new();
    for b in &df.collect().await? {
        let c = Cols(b);
        let source = c.strings("source")?;
        let events = c.ints("events")?;
        let dossiers = c.ints("dossiers")?;
        let first = c.instants("first_event_at")?;
        let last = c.instants("last_event_at")?;
        let ingested = c.instants("last_ingested_at")?;
        let p50 = c.floats("lag_p50_seconds")?;
        let p90 = c.floats("lag_p90_seconds")?;
        let max = c.floats("lag_max_seconds")?;
        let quarantined = c.ints("quarantined")?;
        let error_rate = c.floats("error_rate")?;
        let lag_now = c.floats("lag_now_seconds")?;
        let stale = c.bools("stale")?;
        let future = c.ints("future_events")?;
        for i in 0..c.rows() {
            sources.push(SourceHealth {
                source: source.text(i),
                events: events.or_zero(i),
                dossiers: dossiers.or_zero(i),
                first_event_at: first.get(i).and_then(common::local_rfc3339),
                last_event_at: last.get(i).and_then(common::local_rfc3339),
                last_ingested_at: ingested.get(i).and_then(common::local_rfc3339),
                lag_p50_seconds: p50.get(i),
                lag_p90_seconds: p90.get(i),
                lag_max_seconds: max.get(i),
                quarantined: quarantined.or_zero(i),
                error_rate: error_rate.get(i).unwrap_or(0.0),
                lag_now_seconds: lag_now.get(i),
                stale: stale.get(i),
                future_events: future.or_zero(i),
            });
        }
    }
    let unattributed_quarantined = ctx
        .table(giamsat_warehouse::store::QUARANTINE)
        .await?
        .filter(col("source").is_null())?
        .count()
        .await? as i64;
    Ok(Report {
        as_of: common::local_rfc3339(p.as_of),
        stale_after_hours: p.stale_after_hours,
        sources,
        unattributed_quarantined,
    })
}
