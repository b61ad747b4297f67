//! On-time rate by any grouping over any period, with monthly/quarterly series.
//!
//! One code path with Biểu 06: the counts are the Biểu 06 columns of `sql/bieu06.sql`
//! (same dossiers, same classes), and the rate is Decision 766's criterion 2:
//! on-time dossiers (ended early or on the day, or in progress in time) over the dossiers
//! received (ended + in progress, Biểu 06 column 1).

use chrono::NaiveDate;
use serde::Serialize;

use datafusion::prelude::SessionContext;
use giamsat_warehouse::Calendar;

use crate::bieu06::{self, Filters, GroupBy};
use crate::period::Period;
use crate::QueryError;

/// Sub-periods of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Month,
    Quarter,
}

impl Series {
    /// Parse `month` / `quarter` (empty or `none` = no series).
    pub fn parse(s: &str) -> Result<Option<Series>, QueryError> {
        match s {
            "" | "none" => Ok(None),
            "month" => Ok(Some(Series::Month)),
            "quarter" => Ok(Some(Series::Quarter)),
            o => Err(QueryError::BadInput(format!(
                "series không hợp lệ: {o:?} (month|quarter)"
            ))),
        }
    }
}

/// Parameters of an on-time query.
#[derive(Debug, Clone)]
pub struct Params {
    pub period: Period,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub group_by: GroupBy,
    pub filters: Filters,
    pub series: Option<Series>,
}

/// On-time counts and rates of one group in one period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Row {
    /// The period label (`2026-03`, `2026-Q1`, or the asked range).
    pub period: String,
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    pub group: String,
    pub group_name: String,
    /// Biểu 06 column 1: ended in the period + in progress at its end.
    pub total: i64,
    pub received_online: i64,
    pub received_offline: i64,
    pub carried_over: i64,
    pub ended: i64,
    pub ended_early: i64,
    pub ended_on_day: i64,
    pub ended_late: i64,
    pub in_progress: i64,
    pub in_progress_in_time: i64,
    pub in_progress_overdue: i64,
    /// ended early + ended on the day + in progress in time.
    pub on_time: i64,
    /// ended late + in progress overdue.
    pub late: i64,
    /// on_time / total (null when total is 0).
    pub rate: Option<f64>,
    /// (ended early + on the day) / ended (null when nothing ended).
    pub ended_on_time_rate: Option<f64>,
}

/// The answer: the rows of the period (one per group, TOTAL last), and the series (the
/// TOTAL row of each calendar month or quarter of the period, clipped to it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub period: Period,
    pub group_by: String,
    pub rows: Vec<Row>,
    pub series: Vec<Row>,
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn convert(p: &Period, r: bieu06::Row) -> Row {
    let on_time = r.ended_early + r.ended_on_day + r.in_progress_in_time;
    Row {
        period: p.label.clone(),
        from: p.from,
        to: p.to,
        rate: ratio(on_time, r.total),
        ended_on_time_rate: ratio(r.ended_early + r.ended_on_day, r.ended),
        on_time,
        late: r.ended_late + r.in_progress_overdue,
        group: r.group,
        group_name: r.group_name,
        total: r.total,
        received_online: r.received_online,
        received_offline: r.received_offline,
        carried_over: r.carried_over,
        ended: r.ended,
        ended_early: r.ended_early,
        ended_on_day: r.ended_on_day,
        ended_late: r.ended_late,
        in_progress: r.in_progress,
        in_progress_in_time: r.in_progress_in_time,
        in_progress_overdue: r.in_progress_overdue,
    }
}

async fn one(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
    period: &Period,
) -> Result<Vec<Row>, QueryError> {
    let bp = bieu06::Params::new(
        period.from,
        period.to,
        p.province.clone(),
        p.commune.clone(),
        p.group_by,
    )?
    .with_filters(p.filters.clone())?;
    Ok(bieu06::run(ctx, cal, &bp)
        .await?
        .into_iter()
        .map(|r| convert(period, r))
        .collect())
}

/// The TOTAL row of each sub-period: from the rollup in one pass when the session has it,
/// else one dossier-level report per sub-period.
async fn series(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
    subs: &[Period],
) -> Result<Vec<Row>, QueryError> {
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    if crate::rollup::available(ctx) {
        let bp = bieu06::Params::new(
            p.period.from,
            p.period.to,
            p.province.clone(),
            p.commune.clone(),
            p.group_by,
        )?
        .with_filters(p.filters.clone())?;
        let ranges: Vec<_> = subs.iter().map(|s| (s.from, s.to)).collect();
        let totals = crate::rollup::totals(ctx, cal, &bp, &ranges).await?;
        return Ok(subs
            .iter()
            .zip(totals)
            .map(|(sub, r)| convert(sub, r))
            .collect());
    }
    let parts = futures::future::try_join_all(subs.iter().map(|sub| one(ctx, cal, p, sub))).await?;
    Ok(parts
        .into_iter()
        .flat_map(|rows| rows.into_iter().filter(|r| r.group == "TOTAL"))
        .collect())
}

/// Compute the on-time report.
pub async fn run(ctx: &SessionContext, cal: &Calendar, p: &Params) -> Result<Report, QueryError> {
    let subs = match p.series {
        Some(s) => p.period.split(s == Series::Quarter),
        None => Vec::new(),
    };
    // the period and its sub-periods are independent queries: run together
    let (rows, series) = tokio::try_join!(one(ctx, cal, p, &p.period), series(ctx, cal, p, &subs))?;
    Ok(Report {
        period: p.period.clone(),
        group_by: p.group_by.name().to_string(),
        rows,
        series,
    })
}

/// CSV of on-time rows.
pub fn to_csv(rows: &[Row]) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| QueryError::BadInput(e.to_string()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::BadInput(e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
