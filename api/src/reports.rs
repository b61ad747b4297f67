//! Indicator reports as rendered bodies: the one code path behind both the HTTP endpoints
//! and the `giamsat report …` commands. Each takes the query parameters as the HTTP query
//! string carries them (the CLI fills the same struct), validates them, runs the
//! `giamsat_queries` runner on the given (possibly scoped) session, and renders JSON, CSV
//! or XLSX bytes.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use giamsat_queries::bieu06::{self, Filters, GroupBy};
use giamsat_queries::index766::{self, Index, Index766Config, Unit};
use giamsat_queries::on_time::{self, Series};
use giamsat_queries::period::Period;
use giamsat_queries::QueryError;
use giamsat_warehouse::config::Config;
use giamsat_warehouse::Calendar;

/// What the reports need besides a session: the calendar and the configuration.
#[derive(Debug, Clone)]
pub struct ReportEnv {
    pub calendar: Arc<Calendar>,
    pub config: Config,
    pub index766: Index766Config,
    /// `[report]` of `config.toml`: the units and signers of the official forms.
    pub form: crate::form::FormConfig,
    /// Creation time written into XLSX files (microseconds UTC); `None` = now. An export
    /// sets its pinned instant so that a re-run gives the same bytes.
    pub created_at: Option<i64>,
}

impl ReportEnv {
    /// The environment of a data directory (`config.toml`, `index766.toml`).
    pub fn for_warehouse(
        wh: &giamsat_warehouse::store::Warehouse,
    ) -> Result<ReportEnv, QueryError> {
        Ok(ReportEnv {
            calendar: Arc::new(wh.calendar.clone()),
            config: wh.config.clone(),
            index766: Index766Config::for_data_dir(wh.root())?,
            form: crate::form::FormConfig::for_data_dir(wh.root())?,
            created_at: None,
        })
    }
}

/// A rendered report.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Suggested file name (attachments).
    pub filename: Option<String>,
}

const JSON: &str = "application/json";
const CSV: &str = "text/csv; charset=utf-8";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PDF: &str = "application/pdf";

/// The formats of the reports that have an official form: `form-xlsx` and `pdf` are
/// that form, the others the plain table.
const FORM_FORMATS: [&str; 5] = ["json", "csv", "xlsx", "form-xlsx", "pdf"];

/// A report in its official form, as XLSX or PDF.
fn form_rendered(
    form: &crate::form::Form,
    format: &str,
    stem: String,
) -> Result<Rendered, QueryError> {
    if format == "pdf" {
        Ok(Rendered {
            content_type: PDF,
            body: crate::form::pdf::render(form)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!("{stem}.pdf")),
        })
    } else {
        Ok(Rendered {
            content_type: XLSX,
            body: crate::form::xlsx::render(form)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!("{stem}_mau.xlsx")),
        })
    }
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn json<T: Serialize>(v: &T) -> Result<Rendered, QueryError> {
    let body = serde_json::to_vec(v).map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(Rendered {
        content_type: JSON,
        body,
        filename: None,
    })
}

fn format_of(f: &Option<String>, allowed: &[&str]) -> Result<String, QueryError> {
    let f = opt(f).unwrap_or_else(|| "json".to_string());
    if allowed.contains(&f.as_str()) {
        Ok(f)
    } else {
        Err(QueryError::BadInput(format!(
            "format phải là một trong: {}",
            allowed.join(", ")
        )))
    }
}

/// A period from `period=` or from `from`/`to` (one of the two is required).
pub fn period_of(
    env: &ReportEnv,
    period: &Option<String>,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<Period, QueryError> {
    match (opt(period), opt(from), opt(to)) {
        (Some(p), None, None) => Period::parse(&p, env.config.periods.quarters),
        (None, Some(f), Some(t)) => Period::between(
            bieu06::parse_date("from", &f)?,
            bieu06::parse_date("to", &t)?,
        ),
        (Some(_), _, _) => Err(QueryError::BadInput(
            "dùng period hoặc from/to, không dùng cả hai".into(),
        )),
        _ => Err(QueryError::BadInput(
            "thiếu kỳ báo cáo: period (vd 2026-Q1) hoặc from và to".into(),
        )),
    }
}

/// Query parameters of `GET /api/v1/indicators/766` (and `giamsat report 766`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Index766Query {
    /// `2026-Q1` (official quarter 15/12–14/3 by default), `2026-03` (month), `2026-H1`,
    /// `2026` (official year), `2026-CQ1` (calendar quarter), or `2026-01-01..2026-03-31`.
    #[param(required = true, example = "2026-Q1")]
    pub period: Option<String>,
    /// Province code.
    #[param(example = "31")]
    pub province: Option<String>,
    /// Commune code.
    #[param(example = "11311")]
    pub commune: Option<String>,
    /// Agency code.
    pub agency: Option<String>,
    /// One index per `province`, `commune` or `agency` (default: one for the whole scope).
    pub group_by: Option<String>,
    /// `json` (default), `csv`, `xlsx`, or the summary in the official form: `form-xlsx`,
    /// `pdf`.
    #[param(value_type = Option<crate::openapi::ReportFormat>)]
    pub format: Option<String>,
}

/// Check the parameters of a Decision 766 query before any work.
pub fn index766_params(env: &ReportEnv, q: &Index766Query) -> Result<(), QueryError> {
    period_of(env, &q.period, &None, &None)?;
    format_of(&q.format, &FORM_FORMATS)?;
    Unit::parse(opt(&q.group_by).as_deref().unwrap_or(""))?;
    Ok(())
}

/// Indices per unit (`group_by` given).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Index766Units {
    pub period: String,
    #[schema(value_type = String)]
    pub from: NaiveDate,
    #[schema(value_type = String)]
    pub to: NaiveDate,
    pub group_by: String,
    pub units: Vec<Index>,
}

/// Decision 766 index: validate, run, render.
pub async fn index766(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &Index766Query,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &FORM_FORMATS)?;
    let period = period_of(env, &q.period, &None, &None)?;
    let unit = Unit::parse(opt(&q.group_by).as_deref().unwrap_or(""))?;
    let params = index766::Params::new(
        period.clone(),
        opt(&q.province),
        opt(&q.commune),
        opt(&q.agency),
        unit,
    )?;
    let indices = index766::run(ctx, &env.calendar, &env.index766, &params).await?;
    match format.as_str() {
        "csv" => Ok(Rendered {
            content_type: CSV,
            body: index766::to_csv(&indices)?.into_bytes(),
            filename: None,
        }),
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::index766(&indices, &period, env.created_at)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!(
                "chi_so_766_{}.xlsx",
                period.label.replace("..", "_")
            )),
        }),
        "form-xlsx" | "pdf" => form_rendered(
            &crate::form::index766(&indices, &period, &env.form, env.created_at),
            &format,
            format!("chi_so_766_{}", period.label.replace("..", "_")),
        ),
        _ if unit == Unit::Total => match indices.first() {
            Some(ix) => json(ix),
            None => Err(QueryError::BadInput("không có dữ liệu".into())),
        },
        _ => json(&Index766Units {
            period: period.label.clone(),
            from: period.from,
            to: period.to,
            group_by: opt(&q.group_by).unwrap_or_default(),
            units: indices,
        }),
    }
}

/// Query parameters of `GET /api/v1/indicators/on-time` (and `giamsat report on-time`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OnTimeQuery {
    /// First day `YYYY-MM-DD` (with `to`; or use `period`).
    pub from: Option<String>,
    /// Last day `YYYY-MM-DD`, inclusive.
    pub to: Option<String>,
    /// A preset instead of from/to: `2026-03`, `2026-Q1` (official), `2026-CQ1`, `2026-H1`, `2026`.
    pub period: Option<String>,
    /// `field` (default), `agency`, `commune`, `procedure`, `province`, `procedure_level`,
    /// `channel`, `source`, `non_territorial`.
    pub group_by: Option<String>,
    /// Province code filter.
    pub province: Option<String>,
    /// Commune code filter.
    pub commune: Option<String>,
    /// Agency code filter.
    pub agency: Option<String>,
    /// Field code filter.
    pub field: Option<String>,
    /// Procedure code filter.
    pub procedure: Option<String>,
    /// `full_online`, `partial_online` or `offline`.
    pub procedure_level: Option<String>,
    /// `true` = only phi địa giới dossiers, `false` = only the others.
    pub non_territorial: Option<String>,
    /// `month` or `quarter`: also a series of the TOTAL row per calendar month/quarter.
    pub series: Option<String>,
    /// `json` (default), `csv` (the rows, then the series) or `xlsx` (the rows).
    pub format: Option<String>,
}

/// On-time rate: validate, run, render.
pub async fn on_time(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &OnTimeQuery,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &["json", "csv", "xlsx"])?;
    let params = on_time_params(env, q)?;
    let report = on_time::run(ctx, &env.calendar, &params).await?;
    match format.as_str() {
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::on_time(&report, env.created_at)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!(
                "dung_han_{}.xlsx",
                report.period.label.replace("..", "_")
            )),
        }),
        "csv" => {
            let mut rows = report.rows.clone();
            rows.extend(report.series.iter().cloned());
            Ok(Rendered {
                content_type: CSV,
                body: on_time::to_csv(&rows)?.into_bytes(),
                filename: None,
            })
        }
        _ => json(&report),
    }
}

/// The drill-down filters of the query string (shared by Biểu 06, on-time and the
/// overview), validated; empty values mean "any".
pub fn filters_of(
    agency: &Option<String>,
    field: &Option<String>,
    procedure: &Option<String>,
    procedure_level: &Option<String>,
    non_territorial: &Option<String>,
) -> Result<Filters, QueryError> {
    let non_territorial = match opt(non_territorial).as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(o) => {
            return Err(QueryError::BadInput(format!(
                "non_territorial phải là true hoặc false: {o:?}"
            )))
        }
    };
    let filters = Filters {
        agency: opt(agency),
        field: opt(field),
        procedure: opt(procedure),
        procedure_level: opt(procedure_level),
        non_territorial,
    };
    filters.validate()?;
    Ok(filters)
}

/// The validated parameters of an on-time query.
pub fn on_time_params(env: &ReportEnv, q: &OnTimeQuery) -> Result<on_time::Params, QueryError> {
    let period = period_of(env, &q.period, &q.from, &q.to)?;
    let group_by = GroupBy::parse(opt(&q.group_by).as_deref().unwrap_or("field"))?;
    let filters = filters_of(
        &q.agency,
        &q.field,
        &q.procedure,
        &q.procedure_level,
        &q.non_territorial,
    )?;
    let check = bieu06::Params::new(
        period.from,
        period.to,
        opt(&q.province),
        opt(&q.commune),
        group_by,
    )?;
    Ok(on_time::Params {
        period,
        province: check.province,
        commune: check.commune,
        group_by,
        filters,
        series: Series::parse(opt(&q.series).as_deref().unwrap_or(""))?,
    })
}

/// Query parameters of `GET /api/v1/dashboard/overview`: a period and the drill-down
/// filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// First day `YYYY-MM-DD` (with `to`; or use `period`).
    pub from: Option<String>,
    /// Last day `YYYY-MM-DD`, inclusive.
    pub to: Option<String>,
    /// A preset instead of from/to.
    pub period: Option<String>,
    pub province: Option<String>,
    pub commune: Option<String>,
    pub agency: Option<String>,
    pub field: Option<String>,
    pub procedure: Option<String>,
    /// `full_online`, `partial_online` or `offline`.
    pub procedure_level: Option<String>,
    /// `true` / `false`.
    pub non_territorial: Option<String>,
}

/// The dashboard's overview: the period's counts and rates against the previous period of
/// the same length, the Decision 766 index, and the alerts now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    pub period: Period,
    pub previous: Option<Period>,
    /// TOTAL row of the on-time report (Biểu 06 counts + rates) of the period.
    pub current: on_time::Row,
    /// The same for the previous period.
    pub before: Option<on_time::Row>,
    /// Decision 766 for the period (territory and agency of the filters).
    pub index766: Index,
    /// Its total for the previous period.
    pub index766_previous: Option<f64>,
    /// In progress and overdue / due soon / not synced, now.
    pub alerts: giamsat_queries::alerts::Summary,
}

impl OverviewQuery {
    /// The same period and filters as an on-time query (TOTAL row wanted).
    fn on_time_query(&self) -> OnTimeQuery {
        OnTimeQuery {
            from: self.from.clone(),
            to: self.to.clone(),
            period: self.period.clone(),
            province: self.province.clone(),
            commune: self.commune.clone(),
            agency: self.agency.clone(),
            field: self.field.clone(),
            procedure: self.procedure.clone(),
            procedure_level: self.procedure_level.clone(),
            non_territorial: self.non_territorial.clone(),
            group_by: Some("province".into()),
            ..Default::default()
        }
    }
}

fn total_row(report: on_time::Report) -> Result<on_time::Row, QueryError> {
    report
        .rows
        .into_iter()
        .find(|r| r.group == "TOTAL")
        .ok_or_else(|| QueryError::BadInput("không có dòng tổng".into()))
}

/// The overview (one code path for the endpoint and anything else that needs it).
pub async fn overview(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &OverviewQuery,
) -> Result<Overview, QueryError> {
    let oq = q.on_time_query();
    let p = on_time_params(env, &oq)?;
    let period = p.period.clone();
    let previous = period.previous();
    let ip = |period: Period| {
        index766::Params::new(
            period,
            opt(&q.province),
            opt(&q.commune),
            opt(&q.agency),
            Unit::Total,
        )
    };
    let mut ap = giamsat_queries::alerts::Params::new(now_in_calendar(&env.calendar));
    ap.portal_source = env.config.sync.portal_source.clone();
    ap.stale_after_hours = env.config.sync.stale_after_hours;
    ap.province = opt(&q.province);
    ap.commune = opt(&q.commune);
    ap.limit = 1;
    let this_index = ip(period.clone())?;
    let prev_index = previous.clone().map(ip).transpose()?;
    let prev_on_time = previous.clone().map(|prev| {
        let mut pp = p.clone();
        pp.period = prev;
        pp
    });
    // the sub-reports are independent: they run concurrently
    let (current, before, index, index766_previous, alerts) = tokio::try_join!(
        async { total_row(on_time::run(ctx, &env.calendar, &p).await?) },
        async {
            match &prev_on_time {
                Some(pp) => Ok(Some(total_row(
                    on_time::run(ctx, &env.calendar, pp).await?,
                )?)),
                None => Ok(None),
            }
        },
        async {
            index766::run(ctx, &env.calendar, &env.index766, &this_index)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| QueryError::BadInput("không tính được chỉ số 766".into()))
        },
        async {
            match &prev_index {
                Some(pi) => Ok(index766::run(ctx, &env.calendar, &env.index766, pi)
                    .await?
                    .first()
                    .map(|i| i.total)),
                None => Ok::<_, QueryError>(None),
            }
        },
        async {
            Ok::<_, QueryError>(
                giamsat_queries::alerts::run(ctx, &env.calendar, &ap)
                    .await?
                    .summary,
            )
        },
    )?;
    Ok(Overview {
        period,
        previous,
        current,
        before,
        index766: index,
        index766_previous,
        alerts,
    })
}

/// Now, clamped into the calendar's range (working time exists only inside it).
pub fn now_in_calendar(cal: &Calendar) -> i64 {
    let now = giamsat_warehouse::store::now_micros();
    let (first, last) = cal.range();
    now.clamp(
        cal.local_midnight(first),
        cal.local_midnight(last) + giamsat_warehouse::calendar::DAY_MICROS - 1,
    )
}

fn parse_f64(name: &str, v: &Option<String>) -> Result<Option<f64>, QueryError> {
    match opt(v) {
        None => Ok(None),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| QueryError::BadInput(format!("{name} phải là một số: {s:?}"))),
    }
}

fn parse_usize(name: &str, v: &Option<String>) -> Result<Option<usize>, QueryError> {
    match opt(v) {
        None => Ok(None),
        Some(s) => s
            .parse::<usize>()
            .map(Some)
            .map_err(|_| QueryError::BadInput(format!("{name} phải là số nguyên không âm: {s:?}"))),
    }
}

/// An instant from `as_of`: RFC 3339, a local date-time `YYYY-MM-DDTHH:MM[:SS]`, or a
/// local date (its 00:00); absent = now.
fn parse_as_of(env: &ReportEnv, v: &Option<String>) -> Result<i64, QueryError> {
    let Some(s) = opt(v) else {
        return Ok(now_in_calendar(&env.calendar));
    };
    if let Ok(d) = NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
        return Ok(env.calendar.local_midnight(d));
    }
    giamsat_ingest::canonical::parse_instant(&s)
        .map_err(|_| QueryError::BadInput(format!("as_of không hợp lệ: {s:?}")))
}

fn csv_of<T: Serialize>(items: &[T]) -> Result<Rendered, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for i in items {
        w.serialize(i)
            .map_err(|e| QueryError::Internal(e.to_string()))?;
    }
    let body = w
        .into_inner()
        .map_err(|e| QueryError::Internal(e.to_string()))?;
    Ok(Rendered {
        content_type: CSV,
        body,
        filename: None,
    })
}

/// Query parameters of `GET /api/v1/alerts` (and `giamsat report overdue`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// The instant of the list (RFC 3339, local date-time or date); default now.
    pub as_of: Option<String>,
    /// Due soon = at most this many working hours left (default 8).
    pub due_within_hours: Option<String>,
    /// A source silent for longer is stale: "chưa đồng bộ" (default from config, 24).
    pub stale_after_hours: Option<String>,
    pub province: Option<String>,
    pub commune: Option<String>,
    /// Rows listed at most (default 1000; the summary counts all).
    pub limit: Option<String>,
    /// `json` (default), `csv` (the items) or `xlsx` (the items, Vietnamese headings).
    pub format: Option<String>,
}

/// The validated parameters of the alert list.
pub fn alerts_params(
    env: &ReportEnv,
    q: &AlertsQuery,
) -> Result<giamsat_queries::alerts::Params, QueryError> {
    let mut p = giamsat_queries::alerts::Params::new(parse_as_of(env, &q.as_of)?);
    p.portal_source = env.config.sync.portal_source.clone();
    p.stale_after_hours = env.config.sync.stale_after_hours;
    if let Some(h) = parse_f64("due_within_hours", &q.due_within_hours)? {
        p.due_within_hours = h;
    }
    if let Some(h) = parse_f64("stale_after_hours", &q.stale_after_hours)? {
        p.stale_after_hours = h;
    }
    if let Some(l) = parse_usize("limit", &q.limit)? {
        p.limit = l;
    }
    p.province = opt(&q.province);
    p.commune = opt(&q.commune);
    p.validate(&env.calendar)?;
    Ok(p)
}

/// Overdue and due-soon dossiers, with the "chưa đồng bộ" marking.
pub async fn alerts(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &AlertsQuery,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &["json", "csv", "xlsx"])?;
    let p = alerts_params(env, q)?;
    let r = giamsat_queries::alerts::run(ctx, &env.calendar, &p).await?;
    match format.as_str() {
        "csv" => csv_of(&r.items),
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::table(
                "HỒ SƠ QUÁ HẠN, SẮP ĐẾN HẠN, CHƯA ĐỒNG BỘ",
                format!("Tại thời điểm: {}", r.as_of.as_deref().unwrap_or("")),
                &crate::xlsx::ALERT_HEADINGS,
                r.items.iter().map(crate::xlsx::alert_row),
                env.created_at,
            )
            .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some("canh_bao_ho_so.xlsx".into()),
        }),
        _ => json(&r),
    }
}

/// Query parameters of `GET /api/v1/reconciliation` (and `giamsat report reconciliation`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconQuery {
    /// Only dossiers whose first event is on or after this local date.
    pub from: Option<String>,
    /// … and on or before this local date.
    pub to: Option<String>,
    /// End times further apart disagree (default from config, 3600).
    pub tolerance_seconds: Option<String>,
    /// Only this kind in `items`: missing_on_portal, missing_in_origin, lost_state,
    /// status_mismatch, end_time_mismatch, duplicate.
    pub kind: Option<String>,
    /// Items listed at most (default 1000; totals count all).
    pub limit: Option<String>,
    /// The next page: `next_cursor` of the previous answer.
    pub cursor: Option<String>,
    /// `json` (default), `csv` (the items) or `xlsx` (the items, Vietnamese headings).
    pub format: Option<String>,
}

/// The validated parameters of the reconciliation.
pub fn recon_params(
    env: &ReportEnv,
    q: &ReconQuery,
) -> Result<giamsat_queries::recon::Params, QueryError> {
    let mut p = giamsat_queries::recon::Params {
        portal_source: env.config.sync.portal_source.clone(),
        tolerance_seconds: env.config.sync.end_time_tolerance_seconds,
        ..Default::default()
    };
    if let Some(f) = opt(&q.from) {
        p.from = Some(env.calendar.local_midnight(bieu06::parse_date("from", &f)?));
    }
    if let Some(t) = opt(&q.to) {
        p.to = Some(
            env.calendar.local_midnight(bieu06::parse_date("to", &t)?)
                + giamsat_warehouse::calendar::DAY_MICROS,
        );
    }
    if let Some(t) = opt(&q.tolerance_seconds) {
        p.tolerance_seconds = t.parse().map_err(|_| {
            QueryError::BadInput(format!("tolerance_seconds phải là số nguyên: {t:?}"))
        })?;
    }
    if let Some(k) = opt(&q.kind) {
        p.kind = Some(giamsat_queries::recon::Kind::parse(&k)?);
    }
    if let Some(l) = parse_usize("limit", &q.limit)? {
        p.limit = l;
    }
    p.cursor = opt(&q.cursor);
    p.kept = Some((
        env.config.sync.portal_source.clone(),
        env.config.sync.end_time_tolerance_seconds,
    ));
    p.validate()?;
    Ok(p)
}

/// Reconciliation between source systems.
pub async fn reconciliation(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &ReconQuery,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &["json", "csv", "xlsx"])?;
    let p = recon_params(env, q)?;
    let r = giamsat_queries::recon::run(ctx, &p).await?;
    match format.as_str() {
        "csv" => csv_of(&r.items),
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::table(
                "SAI LỆCH GIỮA CÁC HỆ THỐNG",
                match p.kind {
                    Some(k) => format!("Loại: {}", k.label()),
                    None => "Mọi loại sai lệch".to_string(),
                },
                &crate::xlsx::RECON_HEADINGS,
                r.items.iter().map(crate::xlsx::recon_row),
                env.created_at,
            )
            .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some("sai_lech.xlsx".into()),
        }),
        _ => json(&r),
    }
}

/// Query parameters of `GET /api/v1/sources` (and `giamsat report sources`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SourcesQuery {
    /// The instant (RFC 3339, local date-time or date); default now.
    pub as_of: Option<String>,
    /// A source silent for longer is stale (default from config, 24).
    pub stale_after_hours: Option<String>,
}

/// The validated parameters of the source health report.
pub fn sources_params(
    env: &ReportEnv,
    q: &SourcesQuery,
) -> Result<giamsat_queries::health::Params, QueryError> {
    let mut p = giamsat_queries::health::Params::new(parse_as_of(env, &q.as_of)?);
    p.stale_after_hours = parse_f64("stale_after_hours", &q.stale_after_hours)?
        .unwrap_or(env.config.sync.stale_after_hours);
    p.validate()?;
    Ok(p)
}

/// Per-source sync health.
pub async fn sources(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &SourcesQuery,
) -> Result<Rendered, QueryError> {
    let p = sources_params(env, q)?;
    json(&giamsat_queries::health::run_with(ctx, &env.calendar, &p).await?)
}

/// Query parameters of `GET /api/v1/data-quality` (and `giamsat report data-quality`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QualityQuery {
    pub province: Option<String>,
    pub commune: Option<String>,
    /// Dossiers listed per issue at most (default 100; counts are over all).
    pub limit: Option<String>,
    /// `json` (default), `csv` (the items) or `xlsx` (the items, Vietnamese headings).
    pub format: Option<String>,
}

/// The validated parameters of the data-quality report.
pub fn quality_params(
    _env: &ReportEnv,
    q: &QualityQuery,
) -> Result<giamsat_queries::quality::Params, QueryError> {
    let mut p = giamsat_queries::quality::Params {
        province: opt(&q.province),
        commune: opt(&q.commune),
        ..Default::default()
    };
    if let Some(l) = parse_usize("limit", &q.limit)? {
        p.limit = l;
    }
    p.validate()?;
    Ok(p)
}

/// Data-quality report.
pub async fn quality(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &QualityQuery,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &["json", "csv"])?;
    let p = quality_params(env, q)?;
    let r = giamsat_queries::quality::run(ctx, &p).await?;
    if format == "csv" {
        csv_of(&r.items)
    } else {
        json(&r)
    }
}

/// The overview as JSON.
pub async fn overview_json(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &OverviewQuery,
) -> Result<Rendered, QueryError> {
    json(&overview(ctx, env, q).await?)
}

/// The validated parameters of the overview (period and filters).
pub fn overview_params(env: &ReportEnv, q: &OverviewQuery) -> Result<(), QueryError> {
    on_time_params(env, &q.on_time_query()).map(|_| ())
}

/// Query parameters of `GET /api/v1/reports/bieu06` (and `giamsat report bieu06`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Bieu06Query {
    /// First day, `YYYY-MM-DD` (local date, inclusive).
    #[param(required = true, value_type = String, format = Date, example = "2026-01-01")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (inclusive), not before `from`.
    #[param(required = true, value_type = String, format = Date, example = "2026-03-31")]
    pub to: Option<String>,
    /// Province code (2 digits).
    #[param(pattern = "^[0-9]{2}$", example = "31")]
    pub province: Option<String>,
    /// Commune code (5 digits).
    #[param(pattern = "^[0-9]{5}$", example = "11311")]
    pub commune: Option<String>,
    /// Grouping of the rows (default `field`).
    #[param(value_type = Option<crate::openapi::GroupByParam>)]
    pub group_by: Option<String>,
    /// Output format (default `json`).
    #[param(value_type = Option<crate::openapi::ReportFormat>)]
    pub format: Option<String>,
    /// Agency code filter (drill-down).
    pub agency: Option<String>,
    /// Field code filter.
    pub field: Option<String>,
    /// Procedure code filter.
    pub procedure: Option<String>,
    /// `full_online`, `partial_online` or `offline`.
    pub procedure_level: Option<String>,
    /// `true`: only phi địa giới dossiers; `false`: only the others.
    pub non_territorial: Option<String>,
}

/// The validated parameters of a Biểu 06 query.
pub fn bieu06_params(q: &Bieu06Query) -> Result<bieu06::Params, QueryError> {
    let from = bieu06::parse_date(
        "from",
        opt(&q.from)
            .as_deref()
            .ok_or_else(|| QueryError::BadInput("thiếu tham số from".into()))?,
    )?;
    let to = bieu06::parse_date(
        "to",
        opt(&q.to)
            .as_deref()
            .ok_or_else(|| QueryError::BadInput("thiếu tham số to".into()))?,
    )?;
    let group_by = GroupBy::parse(opt(&q.group_by).as_deref().unwrap_or("field"))?;
    format_of(&q.format, &FORM_FORMATS)?;
    bieu06::Params::new(from, to, opt(&q.province), opt(&q.commune), group_by)?.with_filters(
        filters_of(
            &q.agency,
            &q.field,
            &q.procedure,
            &q.procedure_level,
            &q.non_territorial,
        )?,
    )
}

/// Biểu 06: validate, run, render (JSON rows, CSV of docs/contract.md §4, or XLSX).
pub async fn bieu06(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &Bieu06Query,
) -> Result<Rendered, QueryError> {
    let format = format_of(&q.format, &FORM_FORMATS)?;
    let params = bieu06_params(q)?;
    let rows = bieu06::run(ctx, &env.calendar, &params).await?;
    match format.as_str() {
        "csv" => Ok(Rendered {
            content_type: CSV,
            body: bieu06::to_csv(&rows)?.into_bytes(),
            filename: None,
        }),
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::bieu06(&rows, &params, env.created_at)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!("bieu06_{}_{}.xlsx", params.from, params.to)),
        }),
        "form-xlsx" | "pdf" => form_rendered(
            &crate::form::bieu06(&rows, &params, &env.form, env.created_at),
            &format,
            format!("bieu06_{}_{}", params.from, params.to),
        ),
        _ => json(&rows),
    }
}

/// A saved (read-only) SQL query rendered as JSON rows, CSV or XLSX.
pub async fn saved_sql(
    ctx: &SessionContext,
    env: &ReportEnv,
    sql: &str,
    format: &str,
    max_rows: usize,
) -> Result<Rendered, QueryError> {
    let format = format_of(&Some(format.to_string()), &["json", "csv", "xlsx"])?;
    let batches = giamsat_queries::run_sql_limited(ctx, sql, Some(max_rows)).await?;
    if format == "xlsx" {
        return Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::batches(&batches, env.created_at)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some("truy_van.xlsx".into()),
        });
    }
    // JSON and CSV exactly as `POST /api/v1/sql` writes them
    let (content_type, body) =
        crate::sql::encode(&batches, &format).map_err(QueryError::Internal)?;
    Ok(Rendered {
        content_type,
        body,
        filename: None,
    })
}

/// The formats of a list of dossiers.
const LIST_FORMATS: [&str; 3] = ["json", "csv", "xlsx"];

/// The most dossiers a CSV or XLSX list holds (a download is the whole list, not a page).
pub const MAX_LIST_DOWNLOAD: usize = 200_000;

/// Query parameters of `GET /api/v1/reports/bieu06/dossiers`: the report's parameters,
/// the row and the column of the cell, and the page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Bieu06DossiersQuery {
    /// First day, `YYYY-MM-DD` (local date, inclusive).
    #[param(required = true, value_type = String, format = Date, example = "2026-01-01")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (inclusive), not before `from`.
    #[param(required = true, value_type = String, format = Date, example = "2026-03-31")]
    pub to: Option<String>,
    /// Province code (2 digits).
    #[param(pattern = "^[0-9]{2}$", example = "31")]
    pub province: Option<String>,
    /// Commune code (5 digits).
    #[param(pattern = "^[0-9]{5}$", example = "11311")]
    pub commune: Option<String>,
    /// Grouping of the report's rows (default `field`).
    #[param(value_type = Option<crate::openapi::GroupByParam>)]
    pub group_by: Option<String>,
    /// The row: its `group` code; absent or `TOTAL` = the TOTAL row; empty = the row of
    /// dossiers without a value ("Không xác định").
    pub group: Option<String>,
    /// The column (a Biểu 06 column, or `on_time` / `late` of the on-time rows).
    #[param(required = true, value_type = giamsat_queries::drill::Column)]
    pub column: Option<String>,
    /// Agency code filter.
    pub agency: Option<String>,
    /// Field code filter.
    pub field: Option<String>,
    /// Procedure code filter.
    pub procedure: Option<String>,
    /// `full_online`, `partial_online` or `offline`.
    pub procedure_level: Option<String>,
    /// `true`: only phi địa giới dossiers; `false`: only the others.
    pub non_territorial: Option<String>,
    /// Dossiers per page (1–10000, default 100).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default, one page), `csv` or `xlsx` (the whole list).
    pub format: Option<String>,
}

impl Bieu06DossiersQuery {
    fn report(&self) -> Bieu06Query {
        Bieu06Query {
            from: self.from.clone(),
            to: self.to.clone(),
            province: self.province.clone(),
            commune: self.commune.clone(),
            group_by: self.group_by.clone(),
            format: None,
            agency: self.agency.clone(),
            field: self.field.clone(),
            procedure: self.procedure.clone(),
            procedure_level: self.procedure_level.clone(),
            non_territorial: self.non_territorial.clone(),
        }
    }
}

/// The validated row and column of a cell: `(params, group, column, format, page)`.
type CellParams = (
    bieu06::Params,
    Option<String>,
    giamsat_queries::drill::Column,
    String,
    giamsat_queries::drill::Page,
);

/// Check the parameters of a list of the dossiers of a Biểu 06 cell.
pub fn bieu06_dossiers_params(q: &Bieu06DossiersQuery) -> Result<CellParams, QueryError> {
    use giamsat_queries::drill::{Column, Page};
    let params = bieu06_params(&q.report())?;
    let column = Column::parse(
        opt(&q.column)
            .as_deref()
            .ok_or_else(|| QueryError::BadInput("thiếu tham số column".into()))?,
    )?;
    let format = format_of(&q.format, &LIST_FORMATS)?;
    // `group=` (empty) is the row without a value; absent or TOTAL the TOTAL row
    let group = match q.group.as_deref().map(str::trim) {
        None | Some("TOTAL") => None,
        Some(g) => {
            if g.len() > 256 {
                return Err(QueryError::BadInput("group quá dài".into()));
            }
            Some(g.to_string())
        }
    };
    let page = if format == "json" {
        Page::new(parse_usize("limit", &q.limit)?, q.cursor.as_deref())?
    } else {
        Page::all(MAX_LIST_DOWNLOAD)
    };
    Ok((params, group, column, format, page))
}

/// A list rendered as JSON (one page) or as a CSV / XLSX download (the whole list).
fn list_rendered(
    list: giamsat_queries::drill::List,
    format: &str,
    title: String,
    period_line: String,
    file: String,
    env: &ReportEnv,
) -> Result<Rendered, QueryError> {
    if format != "json" && list.next_cursor.is_some() {
        return Err(QueryError::BadInput(format!(
            "danh sách có {} hồ sơ, quá {MAX_LIST_DOWNLOAD} hồ sơ của một tệp tải về; hãy \
             thu hẹp kỳ hoặc bộ lọc",
            list.count
        )));
    }
    match format {
        "csv" => Ok(Rendered {
            content_type: CSV,
            body: giamsat_queries::drill::to_csv(&list.items)?.into_bytes(),
            filename: Some(format!("{file}.csv")),
        }),
        "xlsx" => Ok(Rendered {
            content_type: XLSX,
            body: crate::xlsx::dossier_list(&title, period_line, &list.items, env.created_at)
                .map_err(|e| QueryError::Internal(e.to_string()))?,
            filename: Some(format!("{file}.xlsx")),
        }),
        _ => json(&list),
    }
}

fn period_line(from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "Kỳ báo cáo: từ ngày {} đến ngày {}",
        from.format("%d/%m/%Y"),
        to.format("%d/%m/%Y")
    )
}

/// The dossiers of one Biểu 06 cell: validate, run, render.
pub async fn bieu06_dossiers(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &Bieu06DossiersQuery,
) -> Result<Rendered, QueryError> {
    let (params, group, column, format, page) = bieu06_dossiers_params(q)?;
    let list = giamsat_queries::drill::bieu06(
        ctx,
        &env.calendar,
        &params,
        group.as_deref(),
        column,
        &page,
    )
    .await?;
    let row = match &group {
        None => "Tổng cộng".to_string(),
        Some(g) if g.is_empty() => "Không xác định".to_string(),
        Some(g) => format!("{} {g}", params.group_by.name()),
    };
    render_list(
        list,
        &format,
        format!("Hồ sơ của Biểu 06 · {} · {row}", column.label()),
        (params.from, params.to),
        format!(
            "ho_so_bieu06_{}_{}_{}",
            column.as_str(),
            params.from,
            params.to
        ),
        env,
    )
}

fn render_list(
    list: giamsat_queries::drill::List,
    format: &str,
    title: String,
    (from, to): (NaiveDate, NaiveDate),
    file: String,
    env: &ReportEnv,
) -> Result<Rendered, QueryError> {
    list_rendered(list, format, title, period_line(from, to), file, env)
}

/// Query parameters of `GET /api/v1/indicators/766/dossiers`: the index's parameters,
/// the count and the unit, and the page.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Index766DossiersQuery {
    /// The period, as for the index (`2026-Q1`, `2026-03`, `2026-01-01..2026-03-31`, …).
    #[param(required = true, example = "2026-Q1")]
    pub period: Option<String>,
    /// Province code.
    pub province: Option<String>,
    /// Commune code.
    pub commune: Option<String>,
    /// Agency code.
    pub agency: Option<String>,
    /// `province`, `commune` or `agency` with `unit`; default the whole scope.
    pub group_by: Option<String>,
    /// The unit code of the index (with `group_by`).
    pub unit: Option<String>,
    /// A dossier count of the index: a criterion's `numerator_name` or
    /// `denominator_name` that counts dossiers.
    #[param(required = true, example = "dossiers_on_time")]
    pub count: Option<String>,
    /// Dossiers per page (1–10000, default 100).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `json` (default, one page), `csv` or `xlsx` (the whole list).
    pub format: Option<String>,
}

/// The validated parameters of a list behind a 766 count.
type CountParams = (
    index766::Params,
    Option<String>,
    String,
    String,
    giamsat_queries::drill::Page,
);

/// Check the parameters of a list of the dossiers behind a 766 count.
pub fn index766_dossiers_params(
    env: &ReportEnv,
    q: &Index766DossiersQuery,
) -> Result<CountParams, QueryError> {
    use giamsat_queries::drill::Page;
    let period = period_of(env, &q.period, &None, &None)?;
    let unit = Unit::parse(opt(&q.group_by).as_deref().unwrap_or(""))?;
    let params = index766::Params::new(
        period,
        opt(&q.province),
        opt(&q.commune),
        opt(&q.agency),
        unit,
    )?;
    let count = opt(&q.count).ok_or_else(|| QueryError::BadInput("thiếu tham số count".into()))?;
    let format = format_of(&q.format, &LIST_FORMATS)?;
    let unit_code = match (unit, q.unit.as_deref().map(str::trim)) {
        (Unit::Total, _) => None,
        (_, None) => None,
        (_, Some(u)) => Some(u.to_string()),
    };
    let page = if format == "json" {
        Page::new(parse_usize("limit", &q.limit)?, q.cursor.as_deref())?
    } else {
        Page::all(MAX_LIST_DOWNLOAD)
    };
    Ok((params, unit_code, count, format, page))
}

/// The dossiers behind a 766 count: validate, run, render.
pub async fn index766_dossiers(
    ctx: &SessionContext,
    env: &ReportEnv,
    q: &Index766DossiersQuery,
) -> Result<Rendered, QueryError> {
    let (params, unit, count, format, page) = index766_dossiers_params(env, q)?;
    let list = giamsat_queries::drill::index766(
        ctx,
        &env.calendar,
        &env.index766,
        &params,
        unit.as_deref(),
        &count,
        &page,
    )
    .await?;
    let what = index766::count_label(&count).unwrap_or(&count);
    render_list(
        list,
        &format,
        format!("Hồ sơ của Chỉ số 766 · {what}"),
        (params.period.from, params.period.to),
        format!(
            "ho_so_766_{count}_{}",
            params.period.label.replace("..", "_")
        ),
        env,
    )
}

/// Query parameters of `GET /api/v1/dossiers/{id}`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DossierQuery {
    /// Judge the class at the end of this day (`YYYY-MM-DD`), as a period ending that
    /// day would; default: at the dossier's end, or now.
    #[param(value_type = Option<String>, format = Date, example = "2026-03-31")]
    pub as_of: Option<String>,
}

/// The `as_of` day of a dossier query.
pub fn dossier_as_of(q: &DossierQuery) -> Result<Option<NaiveDate>, QueryError> {
    opt(&q.as_of)
        .map(|d| bieu06::parse_date("as_of", &d))
        .transpose()
}

/// One dossier explained.
pub async fn dossier(
    ctx: &SessionContext,
    env: &ReportEnv,
    id: &str,
    as_of: Option<NaiveDate>,
) -> Result<giamsat_queries::explain::Explanation, QueryError> {
    let cx = giamsat_queries::explain::Context {
        calendar: &env.calendar,
        rules: &env.config.rules,
        portal_source: &env.config.sync.portal_source,
        tolerance_seconds: env.config.sync.end_time_tolerance_seconds,
        now: now_in_calendar(&env.calendar),
    };
    giamsat_queries::explain::run(ctx, &cx, id, as_of).await
}

/// One dossier explained, as JSON.
pub async fn dossier_json(
    ctx: &SessionContext,
    env: &ReportEnv,
    id: &str,
    as_of: Option<NaiveDate>,
) -> Result<Rendered, QueryError> {
    json(&dossier(ctx, env, id, as_of).await?)
}

/// One report as both doors run it (`GET /api/v1/…` and `giamsat report …`): its query
/// is checked before any work (a 400 / exit 2 that touches no data), then computed and
/// rendered on a session. Adding a report is its query, its SQL, one `report!` line here
/// and one registration in the router.
pub trait Report: Send + 'static {
    /// Check the parameters.
    fn check(&self, env: &ReportEnv) -> Result<(), QueryError>;
    /// Compute and render the report on `ctx`.
    fn render(
        &self,
        ctx: &SessionContext,
        env: &ReportEnv,
    ) -> impl std::future::Future<Output = Result<Rendered, QueryError>> + Send;
}

/// `impl Report for QUERY`: its check (`fn(&ReportEnv, &QUERY)`, any checked value
/// dropped) and its renderer.
macro_rules! report {
    ($q:ty, $check:expr, $render:path) => {
        impl Report for $q {
            fn check(&self, env: &ReportEnv) -> Result<(), QueryError> {
                $check(env, self).map(|_| ())
            }
            fn render(
                &self,
                ctx: &SessionContext,
                env: &ReportEnv,
            ) -> impl std::future::Future<Output = Result<Rendered, QueryError>> + Send {
                $render(ctx, env, self)
            }
        }
    };
}

report!(Bieu06Query, |_, q| bieu06_params(q), bieu06);
report!(
    Bieu06DossiersQuery,
    |_, q| bieu06_dossiers_params(q),
    bieu06_dossiers
);
report!(
    Index766DossiersQuery,
    index766_dossiers_params,
    index766_dossiers
);
report!(Index766Query, index766_params, index766);
report!(OnTimeQuery, on_time_params, on_time);
report!(OverviewQuery, overview_params, overview_json);
report!(AlertsQuery, alerts_params, alerts);
report!(ReconQuery, recon_params, reconciliation);
report!(SourcesQuery, sources_params, sources);
report!(QualityQuery, quality_params, quality);
