//! The report endpoints: Biểu 06, the 766 index, on-time, the overview, alerts,
//! reconciliation, sources, data quality, and the dossier lists behind their counts.

use crate::cache::report_cache;
use crate::caller::reader;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::reports;
use crate::run::run_report;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use giamsat_queries::bieu06::Row;
use std::sync::Arc;

/// Biểu 06 for a date range (docs/contract.md §4 columns; the last row is TOTAL).
#[utoipa::path(
    get,
    path = "/api/v1/reports/bieu06",
    params(reports::Bieu06Query),
    responses(
        (status = 200, description = "Rows sorted by group, TOTAL last (JSON; CSV or XLSX with `format`; the official form with `format=form-xlsx` or `pdf`)", body = [Row]),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::Bieu06Query`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn bieu06_handler() {}

/// The dossiers counted in one cell of Biểu 06 (or of an on-time row): the same rule as
/// the report, so `count` equals the cell.
#[utoipa::path(
    get,
    path = "/api/v1/reports/bieu06/dossiers",
    params(reports::Bieu06DossiersQuery),
    responses(
        (status = 200, description = "One page of the list (JSON); the whole list as CSV or XLSX with `format`", body = giamsat_queries::drill::List),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 429, description = "Too many requests waiting", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::Bieu06DossiersQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn bieu06_dossiers_handler() {}

/// The dossiers behind a dossier count of the Decision 766 index (a criterion's
/// numerator or denominator).
#[utoipa::path(
    get,
    path = "/api/v1/indicators/766/dossiers",
    params(reports::Index766DossiersQuery),
    responses(
        (status = 200, description = "One page of the list (JSON); the whole list as CSV or XLSX with `format`", body = giamsat_queries::drill::List),
        (status = 400, description = "Bad parameters, or a count that does not count dossiers", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 429, description = "Too many requests waiting", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::Index766DossiersQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn index766_dossiers_handler() {}

/// One dossier explained: every event of every source, the facts and how each was
/// reached, the class and why. 404 for a dossier outside the caller's territory, exactly
/// as for one that does not exist.
#[utoipa::path(
    get,
    path = "/api/v1/dossiers/{id}",
    params(
        ("id" = String, Path, description = "Dossier id"),
        reports::DossierQuery
    ),
    responses(
        (status = 200, description = "The dossier explained", body = giamsat_queries::explain::Explanation),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such dossier in the caller's territory", body = ErrorBody),
        (status = 429, description = "Too many requests waiting", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn dossier_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    q: Result<Query<reports::DossierQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    let as_of = reports::dossier_as_of(&q)?;
    run_report(&state, &p, id, move |ctx, st, id| async move {
        reports::dossier_json(&ctx, &st.env, &id, as_of).await
    })
    .await
}

/// Decision 766 index of the caller's scope (or of a province/commune/agency in it).
#[utoipa::path(
    get,
    path = "/api/v1/indicators/766",
    params(reports::Index766Query),
    responses(
        (status = 200, description = "The six groups and the total (JSON; one index per unit with `group_by`; CSV or XLSX with `format`; the summary form with `format=form-xlsx` or `pdf`)", body = giamsat_queries::index766::Index),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::Index766Query`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn index766_handler() {}

/// On-time rate and counts per group, for any period, with an optional monthly/quarterly series.
#[utoipa::path(
    get,
    path = "/api/v1/indicators/on-time",
    params(reports::OnTimeQuery),
    responses(
        (status = 200, description = "Rows per group (TOTAL last) and the series", body = giamsat_queries::on_time::Report),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::OnTimeQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn on_time_handler() {}

/// The dashboard's overview: counts and rates of a period against the previous one,
/// Decision 766, alerts now.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/overview",
    params(reports::OverviewQuery),
    responses(
        (status = 200, description = "Overview", body = reports::Overview),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::OverviewQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn overview_handler() {}

/// Dossiers in progress that are overdue or due soon; "chưa đồng bộ" when every system
/// reporting them has gone silent.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    params(reports::AlertsQuery),
    responses(
        (status = 200, description = "Summary and the list, most overdue first", body = giamsat_queries::alerts::Report),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::AlertsQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn alerts_handler() {}

/// Reconciliation of the same dossiers across source systems.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliation",
    params(reports::ReconQuery),
    responses(
        (status = 200, description = "Totals per kind, counts per source pair, and the list", body = giamsat_queries::recon::Report),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::ReconQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn recon_handler() {}

/// Sync health of every source system: last event, lag, quarantine error rate.
#[utoipa::path(
    get,
    path = "/api/v1/sources",
    params(reports::SourcesQuery),
    responses(
        (status = 200, description = "One row per source", body = giamsat_queries::health::Report),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::SourcesQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn sources_handler() {}

/// Data quality: dossiers without received event or deadline, unknown codes, suspicious
/// reporting patterns.
#[utoipa::path(
    get,
    path = "/api/v1/data-quality",
    params(reports::QualityQuery),
    responses(
        (status = 200, description = "Counts per issue and the dossiers", body = giamsat_queries::quality::Report),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// documentation of `GET` with [`reports::QualityQuery`]: served by [`report`]
#[allow(dead_code)]
pub(crate) fn quality_handler() {}

/// Any report endpoint: the caller (dashboard and analyst roles), its parsed query, the
/// query's check, then the report on the caller's scoped session, on the query runtime.
pub(crate) async fn report<Q: reports::Report + serde::de::DeserializeOwned>(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<Q>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    q.check(&state.env)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        q.render(&ctx, &st.env).await
    })
    .await
}

/// The report endpoints, each registered once: its path, its handler, and whether the
/// report cache keeps its answers (the lists of dossiers and the dossier page are not
/// kept: they are paged or per dossier).
pub(crate) fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let cached = Router::new()
        .route(
            "/api/v1/reports/bieu06",
            get(report::<reports::Bieu06Query>),
        )
        .route(
            "/api/v1/indicators/766",
            get(report::<reports::Index766Query>),
        )
        .route(
            "/api/v1/indicators/on-time",
            get(report::<reports::OnTimeQuery>),
        )
        .route(
            "/api/v1/dashboard/overview",
            get(report::<reports::OverviewQuery>),
        )
        .route("/api/v1/alerts", get(report::<reports::AlertsQuery>))
        .route("/api/v1/reconciliation", get(report::<reports::ReconQuery>))
        .route("/api/v1/sources", get(report::<reports::SourcesQuery>))
        .route("/api/v1/data-quality", get(report::<reports::QualityQuery>))
        .route_layer(middleware::from_fn_with_state(state, report_cache));
    Router::new()
        .route(
            "/api/v1/reports/bieu06/dossiers",
            get(report::<reports::Bieu06DossiersQuery>),
        )
        .route(
            "/api/v1/indicators/766/dossiers",
            get(report::<reports::Index766DossiersQuery>),
        )
        .route("/api/v1/dossiers/{id}", get(dossier_handler))
        .merge(cached)
}
