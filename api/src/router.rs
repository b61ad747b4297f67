//! The router, its middleware (request ids, access log, failed sign-ins) and `serve`.

use crate::access;
use crate::auth;
use crate::caller::bearer;
use crate::error::ApiError;
use crate::export_handlers::export_file_handler;
use crate::export_handlers::exports_handler;
use crate::openapi::docs;
use crate::openapi::openapi;
use crate::pages::asset;
use crate::pages::healthz;
use crate::pages::index;
use crate::pages::me_handler;
use crate::pages::not_found;
use crate::push::committer;
use crate::push::events_handler;
use crate::report_handlers;
use crate::sql::sql_handler;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tracing::Instrument;

/// The id of a request (in its log lines and its `x-request-id` reply header).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// Request ids and access logs; every reply carries `x-request-id`.
pub(crate) async fn request_log(mut req: Request, next: Next) -> Response {
    let id = format!("{:016x}", rand::random::<u64>());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    let start = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let status = res.status().as_u16();
    let ms = start.elapsed().as_millis() as u64;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else {
            tracing::info!(status, ms, "request");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/api/openapi.json", get(openapi))
        .route("/api/docs", get(docs))
        .route("/assets/{name}", get(asset))
        .route("/api/v1/me", get(me_handler))
        .merge(report_handlers::routes(state.clone()))
        .route("/api/v1/exports", get(exports_handler))
        .route("/api/v1/exports/{run_id}/file", get(export_file_handler))
        .route(
            "/api/v1/sql",
            post(sql_handler).layer(DefaultBodyLimit::max(1024 * 1024)),
        )
        .route(
            "/api/v1/events",
            post(events_handler).layer(DefaultBodyLimit::max(64 * 1024 * 1024)),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(request_log))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

/// Append a row to the access log for every `/api/v1/` request: the token's id, label,
/// role and territory (none when no valid token was shown), the method and target, the
/// SQL text and rows returned (from the handler's [`access::AccessNote`]), the time
/// taken and the status.
pub(crate) async fn access_log(
    State(state): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if !req.uri().path().starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let at_micros = chrono::Utc::now().timestamp_micros();
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let who = bearer(req.headers()).and_then(|t| state.tokens.get(t));
    let valid = who
        .as_ref()
        .is_some_and(|t| t.status(chrono::Utc::now()) == auth::TokenStatus::Active);
    let addr = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let limit = state.auth_config.failed_per_minute;
    // an address that failed too often is refused before any work, unless it shows a
    // valid token (a colleague behind the same address keeps working)
    let blocked = match addr {
        Some(a) if !valid && limit > 0 => state.failed_logins.blocked(a, limit),
        _ => None,
    };
    let res = match blocked {
        Some(wait) => {
            let mut r = ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!("quá nhiều lần đăng nhập sai từ địa chỉ này; thử lại sau {wait} giây"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        None => next.run(req).await,
    };
    if let Some(a) = addr {
        if !valid && res.status() == StatusCode::UNAUTHORIZED {
            state.failed_logins.failed(a);
        }
    }
    let note = res
        .extensions()
        .get::<access::AccessNote>()
        .cloned()
        .unwrap_or_default();
    let scope = who.as_ref().map(|t| {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(t.provinces.iter().map(|p| format!("tỉnh {p}")));
        parts.extend(t.communes.iter().map(|c| format!("xã {c}")));
        parts.extend(t.sources.iter().map(|s| format!("nguồn {s}")));
        parts.join(", ")
    });
    state.access.record(access::AccessRecord {
        at_micros,
        token_id: who.as_ref().map(|t| t.id().to_string()),
        label: who.as_ref().map(|t| t.label.clone()),
        role: who.as_ref().map(|t| t.role.name().to_string()),
        scope,
        method,
        target,
        sql: note.sql,
        rows: note.rows,
        duration_ms: started.elapsed().as_millis() as i64,
        status: i32::from(res.status().as_u16()),
    });
    res
}

/// Serve until Ctrl-C or SIGTERM, finishing requests in flight.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    let jobs = state.jobs.lock().ok().and_then(|mut j| j.take());
    if let Some(jobs) = jobs {
        state.commit_rt.spawn(committer(state.clone(), jobs));
        state.query_rt.spawn(state.exporter.clone().run_forever());
    }
    let access_rx = state.access_rx.lock().ok().and_then(|mut r| r.take());
    if let Some(rx) = access_rx {
        state
            .commit_rt
            .spawn(access::writer(state.warehouse.clone(), rx));
    }
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
}

pub(crate) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
