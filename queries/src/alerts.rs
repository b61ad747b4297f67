//! Overdue and due-soon alerts (issue #5): binds the parameters of `sql/alerts.sql` and
//! returns typed rows plus counts per status.
//!
//! A dossier is listed when it is counted, received at or before `as_of`, not ended at
//! `as_of`, and — judged by its state segment containing `as_of` — overdue
//! (`as_of > overdue_after`) or due soon (`working_seconds(as_of, overdue_after) <=
//! due_within_hours`). When every origin system of the dossier (its sources minus the
//! portal) has been silent for more than `stale_after_hours` at `as_of`, the dossier may
//! just not have been synced: its status is then `stale` ("Chưa đồng bộ"), with the
//! underlying `overdue` kept.

use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use giamsat_warehouse::facts::ALWAYS_OVERDUE;
use giamsat_warehouse::Calendar;

use crate::common::{self, Cols};
use crate::QueryError;

/// The SQL file, verbatim.
pub const SQL: &str = include_str!("../sql/alerts.sql");
/// The CTE bodies of [`SQL`] from the events and the facts (the definitions).
pub const SOURCE_LAST_SQL: &str = include_str!("../sql/alerts_source_last.sql");
pub const OPEN_DOSSIERS_SQL: &str = include_str!("../sql/alerts_open_dossiers.sql");
/// The open dossiers from `open_states` (kept at ingest).
pub const OPEN_KEPT_SQL: &str = include_str!("../sql/alerts_open_kept.sql");

/// Where the two CTE bodies come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Events, facts and state segments.
    Events,
    /// What ingest keeps (`source_days`, `open_states`), where the session has it and
    /// it gives the same rows.
    Kept,
}

/// The statement and its extra parameters ($7…: the last event per source).
async fn statement(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
    path: Path,
) -> Result<(String, Vec<ScalarValue>), QueryError> {
    let mut extra = Vec::new();
    let (source_last, open) = match path {
        Path::Events => (SOURCE_LAST_SQL.to_string(), OPEN_DOSSIERS_SQL),
        Path::Kept => {
            let open_kept = ctx.table_exist(giamsat_warehouse::open::OPEN_STATES)?
                && no_end_after(ctx, p.as_of).await?;
            let open = if open_kept {
                OPEN_KEPT_SQL
            } else {
                OPEN_DOSSIERS_SQL
            };
            let source_last = if ctx.table_exist(giamsat_warehouse::health::SOURCE_DAYS)? {
                let last = crate::health_fast::last_events(ctx, cal, p.as_of).await?;
                if last.is_empty() {
                    "SELECT CAST(NULL AS VARCHAR) AS source, \
                     arrow_cast(NULL, 'Timestamp(Microsecond, Some(\"UTC\"))') AS last_event_at \
                     WHERE false"
                        .to_string()
                } else {
                    let rows: Vec<String> = (0..last.len())
                        .map(|i| format!("(${}, ${})", 7 + 2 * i, 8 + 2 * i))
                        .collect();
                    for (src, at) in &last {
                        extra.push(ScalarValue::Utf8(Some(src.clone())));
                        extra.push(common::ts_param(Some(*at)));
                    }
                    format!(
                        "SELECT column1 AS source, column2 AS last_event_at FROM (VALUES {}) v",
                        rows.join(", ")
                    )
                }
            } else {
                SOURCE_LAST_SQL.to_string()
            };
            (source_last, open)
        }
    };
    Ok((
        SQL.replace("{source_last}", &source_last)
            .replace("{open_dossiers}", open),
        extra,
    ))
}

/// Whether no dossier ended after `as_of` (then the dossiers in progress at `as_of` are
/// exactly the ones not ended).
async fn no_end_after(ctx: &SessionContext, as_of: i64) -> Result<bool, QueryError> {
    let b = ctx
        .sql("SELECT COUNT(*) AS n FROM dossier_facts WHERE ended_at > $1")
        .await?
        .with_param_values(vec![common::ts_param(Some(as_of))])?
        .collect()
        .await?;
    let mut n = 0;
    for batch in &b {
        n += Cols(batch).ints("n")?.or_zero(0);
    }
    Ok(n == 0)
}

/// Default `due_within_hours` (working hours).
pub const DEFAULT_DUE_WITHIN_HOURS: f64 = 8.0;
/// Default `stale_after_hours` (wall-clock hours).
pub const DEFAULT_STALE_AFTER_HOURS: f64 = 24.0;
/// Default portal source code.
pub const DEFAULT_PORTAL: &str = "dvcqg";
/// Default number of listed dossiers.
pub const DEFAULT_LIMIT: usize = 1_000;

/// Parameters of the alert list. Build with [`Params::new`] and adjust the fields;
/// [`run`] validates them.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// The instant of the list, UTC microseconds (the caller chooses, usually now).
    pub as_of: i64,
    /// Due soon ⇔ at most this many working hours left (default 8).
    pub due_within_hours: f64,
    /// A source is stale when silent for more than this many hours (default 24).
    pub stale_after_hours: f64,
    /// The national portal's source code (default `dvcqg`).
    pub portal_source: String,
    pub province: Option<String>,
    pub commune: Option<String>,
    /// At most this many rows in `items` (the summary counts all).
    pub limit: usize,
}

impl Params {
    /// Defaults for an instant.
    pub fn new(as_of: i64) -> Params {
        Params {
            as_of,
            due_within_hours: DEFAULT_DUE_WITHIN_HOURS,
            stale_after_hours: DEFAULT_STALE_AFTER_HOURS,
            portal_source: DEFAULT_PORTAL.to_string(),
            province: None,
            commune: None,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Check the parameters against the calendar (working time exists only inside it).
    pub fn validate(&self, cal: &Calendar) -> Result<(), QueryError> {
        if cal.is_working_day(cal.local_date(self.as_of)).is_none() {
            let (a, b) = cal.range();
            return Err(QueryError::BadInput(format!(
                "as_of nằm ngoài lịch làm việc ({a} – {b})"
            )));
        }
        common::check_hours("due_within_hours", self.due_within_hours, 0.0)?;
        common::check_hours("stale_after_hours", self.stale_after_hours, 0.0)?;
        common::check_source("portal_source", &self.portal_source)?;
        common::check_codes(self.province.as_deref(), self.commune.as_deref())?;
        common::check_limit(self.limit)
    }
}

/// Alert status of a listed dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Quá hạn: in progress after its deadline.
    Overdue,
    /// Sắp đến hạn: at most `due_within_hours` working hours left.
    DueSoon,
    /// Chưa đồng bộ: overdue or due soon, but every origin system is silent.
    Stale,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        match s {
            "overdue" => Some(Status::Overdue),
            "due_soon" => Some(Status::DueSoon),
            "stale" => Some(Status::Stale),
            _ => None,
        }
    }

    /// Vietnamese label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Overdue => "Quá hạn",
            Status::DueSoon => "Sắp đến hạn",
            Status::Stale => "Chưa đồng bộ",
        }
    }
}

/// One listed dossier. Instants are RFC 3339 in local time (+07:00).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub dossier_id: String,
    pub procedure_code: Option<String>,
    pub procedure_name: Option<String>,
    pub field_code: Option<String>,
    pub agency_code: Option<String>,
    pub agency_name: Option<String>,
    pub province_code: Option<String>,
    pub commune_code: Option<String>,
    pub received_at: Option<String>,
    /// Due time in force at `as_of` (from the state segment).
    pub due_at: Option<String>,
    /// Overdue when evaluated after this instant; null when `overdue_by_rule`.
    pub overdue_after: Option<String>,
    /// Late by the supplement rule (more than one request, or waiting on a request made
    /// after the deadline) rather than by the clock.
    pub overdue_by_rule: bool,
    pub status: Status,
    /// "Quá hạn", "Sắp đến hạn" or "Chưa đồng bộ".
    pub status_label: String,
    /// As judged by the deadline, whatever the sync status.
    pub overdue: bool,
    /// Every origin source silent for more than `stale_after_hours`.
    pub stale: bool,
    /// Working hours until `overdue_after`; negative when overdue (working hours since
    /// `overdue_after`); null when `overdue_by_rule`.
    pub working_hours_left: Option<f64>,
    /// Source systems reporting the dossier, sorted, comma separated.
    pub sources: String,
    /// Latest last-event instant among the dossier's origin sources (as of `as_of`).
    pub last_source_event_at: Option<String>,
}

/// Counts per status over the whole list (not only the `limit` rows returned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub overdue: i64,
    pub due_soon: i64,
    pub stale: i64,
    pub total: i64,
}

/// The alert list.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub as_of: Option<String>,
    pub summary: Summary,
    /// Most overdue first, at most `limit`.
    pub items: Vec<Alert>,
}

/// Compute the alert list.
pub async fn run(ctx: &SessionContext, cal: &Calendar, p: &Params) -> Result<Report, QueryError> {
    run_on(ctx, cal, p, Path::Kept).await
}

/// [`run`] from the events and the facts whatever the session has (the definition).
pub async fn run_from_events(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
) -> Result<Report, QueryError> {
    run_on(ctx, cal, p, Path::Events).await
}

async fn run_on(
    ctx: &SessionContext,
    cal: &Calendar,
    p: &Params,
    path: Path,
) -> Result<Report, QueryError> {
    p.validate(cal)?;
    let (sql, extra) = statement(ctx, cal, p, path).await?;
    let mut params = vec![
        common::ts_param(Some(p.as_of)),
        ScalarValue::Float64(Some(p.due_within_hours * 3_600.0)),
        ScalarValue::Int64(Some(common::hours_to_micros(p.stale_after_hours))),
        ScalarValue::Utf8(Some(p.portal_source.clone())),
        ScalarValue::Utf8(p.province.clone()),
        ScalarValue::Utf8(p.commune.clone()),
    ];
    params.extend(extra);
    // one execution: the flagged dossiers, most overdue first; counted, then the first
    // `limit` listed
    let flagged = ctx
        .sql(&sql)
        .await?
        .with_param_values(params)?
        .collect()
        .await?;

    let mut summary = Summary::default();
    let mut listed = Vec::new();
    let mut left = p.limit;
    for b in &flagged {
        let c = Cols(b);
        let status = c.strings("status")?;
        for i in 0..c.rows() {
            match Status::parse(&status.text(i)) {
                Some(Status::Overdue) => summary.overdue += 1,
                Some(Status::DueSoon) => summary.due_soon += 1,
                Some(Status::Stale) => summary.stale += 1,
                None => {}
            }
            summary.total += 1;
        }
        if left > 0 {
            let take = left.min(b.num_rows());
            listed.push(b.slice(0, take));
            left -= take;
        }
    }

    let mut items = Vec::new();
    for b in &listed {
        let c = Cols(b);
        let id = c.strings("dossier_id")?;
        let procedure_code = c.strings("procedure_code")?;
        let procedure_name = c.strings("procedure_name")?;
        let field_code = c.strings("field_code")?;
        let agency_code = c.strings("agency_code")?;
        let agency_name = c.strings("agency_name")?;
        let province_code = c.strings("province_code")?;
        let commune_code = c.strings("commune_code")?;
        let received_at = c.instants("received_at")?;
        let due_at = c.instants("due_at")?;
        let overdue_after = c.instants("overdue_after")?;
        let overdue = c.bools("overdue")?;
        let stale = c.bools("stale")?;
        let status = c.strings("status")?;
        let left = c.floats("working_hours_left")?;
        let sources = c.strings("sources")?;
        let last = c.instants("last_source_event_at")?;
        for i in 0..c.rows() {
            let Some(st) = Status::parse(&status.text(i)) else {
                continue;
            };
            let by_rule = overdue_after.get(i).is_some_and(|t| t <= ALWAYS_OVERDUE);
            items.push(Alert {
                dossier_id: id.text(i),
                procedure_code: procedure_code.get(i),
                procedure_name: procedure_name.get(i),
                field_code: field_code.get(i),
                agency_code: agency_code.get(i),
                agency_name: agency_name.get(i),
                province_code: province_code.get(i),
                commune_code: commune_code.get(i),
                received_at: received_at.get(i).and_then(common::local_rfc3339),
                due_at: due_at.get(i).and_then(common::local_rfc3339),
                overdue_after: overdue_after
                    .get(i)
                    .filter(|_| !by_rule)
                    .and_then(common::local_rfc3339),
                overdue_by_rule: by_rule,
                status: st,
                status_label: st.label().to_string(),
                overdue: overdue.get(i),
                stale: stale.get(i),
                // -0.0 (overdue during a break) reads as 0
                working_hours_left: left.get(i).filter(|_| !by_rule).map(|h| h + 0.0),
                sources: sources.text(i),
                last_source_event_at: last.get(i).and_then(common::local_rfc3339),
            });
        }
    }
    Ok(Report {
        as_of: common::local_rfc3339(p.as_of),
        summary,
        items,
    })
}
