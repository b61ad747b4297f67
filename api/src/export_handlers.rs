//! The exports endpoints: the runs a caller may see and their files.

use crate::auth::Principal;
use crate::auth::Role;
use crate::caller::principal;
use crate::caller::reader;
use crate::caller::require;
use crate::caller::restricted;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::exports;
use crate::reports;
use crate::run::rendered;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Json;
use giamsat_queries::ErrorKind;
use serde::Deserialize;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa::ToSchema;

/// Query parameters of `GET /api/v1/exports`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportsQuery {
    /// Only this job.
    job: Option<String>,
    /// Newest runs first, at most this many (default 100).
    limit: Option<usize>,
}

/// An export run with its download link.
#[derive(Serialize, ToSchema)]
pub struct ExportListItem {
    #[serde(flatten)]
    run: exports::ExportRun,
    /// `/api/v1/exports/{run_id}/file` for successful runs.
    download: Option<String>,
}

/// The runs of the exports.
#[derive(Serialize, ToSchema)]
pub struct ExportList {
    /// Configured jobs the caller may see.
    jobs: Vec<String>,
    runs: Vec<ExportListItem>,
}

pub(crate) fn export_error(state: &AppState, e: exports::ExportError) -> ApiError {
    match e.kind() {
        k @ (ErrorKind::BadInput | ErrorKind::NotFound) => ApiError::of(k, e),
        k => ApiError::of(k, state.scrub(&e.to_string())),
    }
}

/// Which exports a caller may see: an unrestricted caller sees all; a restricted one only
/// exports whose scope lies inside its own territory (a commune counts as inside when the
/// caller has that commune or its province).
pub(crate) struct ExportVisibility<'a> {
    p: &'a Principal,
    /// Commune → province, loaded only for a restricted caller.
    province_of: HashMap<String, String>,
}

impl<'a> ExportVisibility<'a> {
    pub(crate) fn new(p: &'a Principal) -> ExportVisibility<'a> {
        let province_of = if restricted(p) {
            giamsat_warehouse::refdata::communes()
                .map(|all| {
                    all.into_iter()
                        .map(|c| (c.commune_code, c.province_code))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            HashMap::new()
        };
        ExportVisibility { p, province_of }
    }

    /// The access log's exports are for admins only.
    pub(crate) fn sees_report(&self, report: &str) -> bool {
        report != "access-log" || self.p.role == Role::Admin
    }

    pub(crate) fn sees(&self, province: &Option<String>, commune: &Option<String>) -> bool {
        let p = self.p;
        if !restricted(p) {
            return true;
        }
        match (province, commune) {
            (_, Some(c)) => {
                p.scope.communes.contains(c)
                    || self
                        .province_of
                        .get(c)
                        .is_some_and(|pr| p.scope.provinces.contains(pr))
            }
            (Some(pr), None) => p.scope.provinces.contains(pr),
            (None, None) => false,
        }
    }
}

/// History of the scheduled and manual exports, newest first, with download links.
#[utoipa::path(
    get,
    path = "/api/v1/exports",
    params(ExportsQuery),
    responses(
        (status = 200, description = "Runs (job, period, table versions, checksum, status, error)", body = ExportList),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn exports_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<ExportsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    let visible = ExportVisibility::new(&p);
    let limit = q.limit.unwrap_or(100).min(10_000);
    let runs = state
        .exporter
        .history()
        .await
        .map_err(|e| export_error(&state, e))?;
    let runs: Vec<ExportListItem> = runs
        .into_iter()
        .rev()
        .filter(|r| q.job.as_ref().is_none_or(|j| &r.job == j))
        .filter(|r| visible.sees(&r.province, &r.commune))
        .filter(|r| visible.sees_report(&r.report))
        .take(limit)
        .map(|r| ExportListItem {
            download: (r.status == "ok").then(|| format!("/api/v1/exports/{}/file", r.run_id)),
            run: r,
        })
        .collect();
    let jobs = state
        .exporter
        .config
        .jobs
        .iter()
        .filter(|j| visible.sees(&j.province, &j.commune))
        .filter(|j| j.report != exports::ReportKind::AccessLog || p.role == Role::Admin)
        .map(|j| j.name.clone())
        .collect();
    Ok(Json(ExportList { jobs, runs }).into_response())
}

/// The file of one export run (as it was written; its SHA-256 is in the run).
#[utoipa::path(
    get,
    path = "/api/v1/exports/{run_id}/file",
    params(("run_id" = String, Path, description = "Run id from `GET /api/v1/exports`")),
    responses(
        (status = 200, description = "The file (XLSX, CSV or JSON)"),
        (status = 400, description = "Bad run id or run without a file", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role not allowed", body = ErrorBody),
        (status = 404, description = "No such run (or not visible to the caller)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn export_file_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(run_id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &headers)?;
    require(&p, &[Role::Admin, Role::Analyst, Role::Viewer])?;
    let run = state
        .exporter
        .find(&run_id)
        .await
        .map_err(|e| export_error(&state, e))?;
    let visible = ExportVisibility::new(&p);
    if !visible.sees(&run.province, &run.commune) || !visible.sees_report(&run.report) {
        return Err(export_error(&state, exports::ExportError::NotFound(run_id)));
    }
    let f = state
        .exporter
        .file(&run)
        .await
        .map_err(|e| export_error(&state, e))?;
    Ok(rendered(reports::Rendered {
        content_type: f.content_type,
        body: f.body,
        filename: f.run.object_key.clone(),
    }))
}
