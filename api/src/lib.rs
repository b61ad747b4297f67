//! giamsat HTTP server (axum). Query work runs on its own Tokio runtime so a heavy
//! query never stalls `/healthz`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use giamsat_queries::{bieu06, QueryError};
use giamsat_warehouse::store::Warehouse;

/// Shared server state.
pub struct AppState {
    pub warehouse: Arc<Warehouse>,
    pub ctx: SessionContext,
    /// SHA-256 of each accepted bearer token.
    pub token_hashes: Vec<[u8; 32]>,
    /// Runtime that executes queries.
    pub query_rt: Handle,
}

/// Hash a token as stored.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A JSON error reply.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadInput(m) => ApiError(StatusCode::BAD_REQUEST, m),
            other => {
                tracing::error!(error = %other, "query failed");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "lỗi nội bộ khi truy vấn".into(),
                )
            }
        }
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "thiếu mã truy cập (Authorization: Bearer ...)".into(),
            )
        })?;
    let h = hash_token(token.trim());
    if state.token_hashes.contains(&h) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "mã truy cập không hợp lệ".into(),
        ))
    }
}

#[derive(Deserialize)]
struct Bieu06Query {
    from: Option<String>,
    to: Option<String>,
    province: Option<String>,
    commune: Option<String>,
    group_by: Option<String>,
    format: Option<String>,
}

async fn bieu06_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<Bieu06Query>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let bad = |m: &str| ApiError(StatusCode::BAD_REQUEST, m.to_string());
    let from = bieu06::parse_date(
        "from",
        q.from.as_deref().ok_or_else(|| bad("thiếu tham số from"))?,
    )?;
    let to = bieu06::parse_date(
        "to",
        q.to.as_deref().ok_or_else(|| bad("thiếu tham số to"))?,
    )?;
    let group_by = bieu06::GroupBy::parse(q.group_by.as_deref().unwrap_or("field"))?;
    let empty = |s: Option<String>| s.filter(|v| !v.is_empty());
    let params = bieu06::Params::new(from, to, empty(q.province), empty(q.commune), group_by)?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv") {
        return Err(bad("format phải là json hoặc csv"));
    }
    let st = state.clone();
    let rows = state
        .query_rt
        .spawn(async move { bieu06::run(&st.ctx, &st.warehouse.calendar, &params).await })
        .await
        .map_err(|_| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "truy vấn bị huỷ".into()))??;
    if format == "csv" {
        let body = bieu06::to_csv(&rows)?;
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    Ok(Json(rows).into_response())
}

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

async fn index() -> impl IntoResponse {
    Html(giamsat_dashboards::INDEX_HTML)
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "không tìm thấy".into())
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/api/v1/reports/bieu06", get(bieu06_handler))
        .fallback(not_found)
        .with_state(state)
}

/// Serve until Ctrl-C / SIGTERM.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
