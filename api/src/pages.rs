//! Endpoints that are not reports: health, who the caller is, the dashboard's page and
//! assets, the fallback.

use crate::auth::Role;
use crate::caller::principal;
use crate::caller::restricted;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::Html;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up")))]
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

pub(crate) async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match giamsat_dashboards::asset(&name) {
        Some((ct, body)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response(),
        None => ApiError(StatusCode::NOT_FOUND, "không có tệp này".into()).into_response(),
    }
}

/// Who the token is: role and territory, with a Vietnamese label for the dashboard.
#[derive(Serialize, ToSchema)]
pub struct Me {
    pub role: String,
    /// Province codes of the scope (empty: not restricted by province).
    pub provinces: Vec<String>,
    /// Commune codes of the scope (empty: not restricted by commune).
    pub communes: Vec<String>,
    /// "Quản trị viên — toàn bộ dữ liệu", "Người xem — Phường Hồng Bàng", …
    pub label: String,
}

/// The caller's role and territorial scope.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    responses(
        (status = 200, description = "Role and scope of the token", body = Me),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn me_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Me>, ApiError> {
    let p = principal(&state, &headers)?;
    let (role, role_vi) = match p.role {
        Role::Admin => ("admin", "Quản trị viên"),
        Role::Analyst => ("analyst", "Chuyên viên phân tích"),
        Role::Viewer => ("viewer", "Người xem"),
        Role::Ingest => ("ingest", "Hệ thống gửi dữ liệu"),
    };
    let restricted = restricted(&p);
    let (provinces, communes) = if restricted {
        (p.scope.provinces.clone(), p.scope.communes.clone())
    } else {
        (Vec::new(), Vec::new())
    };
    let mut names = Vec::new();
    if let Ok(all) = giamsat_warehouse::refdata::provinces() {
        names.extend(
            all.iter()
                .filter(|x| provinces.contains(&x.province_code))
                .map(|x| x.province_name.clone()),
        );
    }
    if let Ok(all) = giamsat_warehouse::refdata::communes() {
        names.extend(
            all.iter()
                .filter(|x| communes.contains(&x.commune_code))
                .map(|x| x.commune_name.clone()),
        );
    }
    let label = if restricted {
        format!("{role_vi} — {}", names.join(", "))
    } else {
        format!("{role_vi} — toàn bộ dữ liệu")
    };
    Ok(Json(Me {
        role: role.into(),
        provinces,
        communes,
        label,
    }))
}

pub(crate) async fn index() -> impl IntoResponse {
    Html(giamsat_dashboards::INDEX_HTML)
}

pub(crate) async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "không tìm thấy".into())
}
