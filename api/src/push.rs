//! Pushed events (`POST /api/v1/events`) and the group committer that lands them.

use crate::auth::Role;
use crate::caller::principal;
use crate::caller::require;
use crate::error::bad;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::state::Job;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::Json;
use giamsat_ingest::Batch;
use giamsat_ingest::Format;
use giamsat_ingest::Input;
use serde::Deserialize;
use serde::Serialize;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa::ToSchema;

/// Query parameters of `POST /api/v1/events`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Source system code `[a-z0-9-]{1,64}`; records without `source` get it. An
    /// `ingest` token may push only its own sources.
    #[param(required = true, value_type = String, pattern = "^[a-z0-9-]{1,64}$", example = "hp-motcua")]
    source: Option<String>,
    /// `canonical` (default: NDJSON events) or `dvcqg` (portal sync records).
    #[param(value_type = Option<IngestFormat>)]
    format: Option<String>,
}

/// Push formats (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum IngestFormat {
    Canonical,
    Dvcqg,
}

/// What one push did (same as `giamsat ingest`).
#[derive(Serialize, ToSchema)]
pub struct IngestReply {
    pub accepted: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

/// Push events. The reply comes only once the batch is durably committed (fsync'd
/// files and a Delta commit); concurrent pushes are committed together. An
/// `Idempotency-Key` header makes a retried batch a no-op.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    params(EventsQuery, ("Idempotency-Key" = Option<String>, Header, description = "Retry key of the batch")),
    request_body(content = String, content_type = "text/plain", description = "NDJSON text, one record per line (any content type is accepted, e.g. application/x-ndjson)"),
    responses(
        (status = 200, description = "Committed", body = IngestReply),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Role or source not allowed", body = ErrorBody),
        (status = 413, description = "Body too large"),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn events_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<IngestReply>, ApiError> {
    let p = principal(&state, &headers)?;
    require(&p, &[Role::Admin, Role::Ingest])?;
    let Query(q) = q.map_err(|e| bad(format!("tham số không hợp lệ: {e}")))?;
    let source = q.source.ok_or_else(|| bad("thiếu tham số source"))?;
    if !giamsat_ingest::canonical::valid_source(&source) {
        return Err(bad(format!("source không hợp lệ: {source:?}")));
    }
    if p.role == Role::Ingest && !p.sources.contains(&source) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("mã truy cập không được gửi nguồn {source:?}"),
        ));
    }
    let format = match Format::parse(q.format.as_deref().unwrap_or("canonical")) {
        Some(f @ (Format::Canonical | Format::Dvcqg)) => f,
        _ => {
            return Err(bad(format!(
                "format phải là canonical hoặc dvcqg: {:?}",
                q.format.as_deref().unwrap_or_default()
            )))
        }
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| giamsat_ingest::canonical::key_digest(&format!("{source}|{k}")));
    let inputs = vec![Input {
        name: "http".into(),
        bytes: body.to_vec(),
    }];
    let (mut events, mut quarantine) = format
        .parse_events(&inputs, Some(&source))
        .map_err(|e| ApiError::of(e.kind(), e))?;
    if p.role == Role::Ingest {
        // a record naming another source is kept, in quarantine, not committed
        let (ok, foreign): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| p.sources.contains(&e.source));
        events = ok;
        quarantine.extend(
            foreign
                .into_iter()
                .map(|e| giamsat_warehouse::store::QuarantineRow {
                    source: Some(e.source.clone()),
                    input: "http".into(),
                    line: 0,
                    reason: format!("nguồn {:?} không thuộc mã truy cập", e.source),
                    original: serde_json::to_vec(&e).unwrap_or_default(),
                }),
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    state
        .committer
        .send((
            Batch {
                events,
                quarantine,
                key,
            },
            tx,
        ))
        .await
        .map_err(|_| state.internal("committer stopped"))?;
    let counts = rx
        .await
        .map_err(|_| state.internal("commit dropped"))?
        .map_err(|e| state.internal(e))?;
    Ok(Json(IngestReply {
        accepted: counts.accepted,
        duplicates: counts.duplicates,
        quarantined: counts.quarantined,
    }))
}

/// The group committer: takes every batch waiting, commits them together, refreshes the
/// session, then answers each request.
pub(crate) async fn committer(state: Arc<AppState>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut group = vec![first];
        while group.len() < 256 {
            match jobs.try_recv() {
                Ok(j) => group.push(j),
                Err(_) => break,
            }
        }
        let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
        let n = batches.len();
        let result = giamsat_ingest::commit_batches(&state.warehouse, batches).await;
        if result.is_ok() {
            match giamsat_queries::session_with(&state.warehouse, state.runtime.clone()).await {
                Ok(ctx) => {
                    if let Ok(mut b) = state.base.write() {
                        *b = ctx;
                    }
                    state.cache.clear();
                }
                Err(e) => tracing::error!(error = %e, "session refresh failed"),
            }
        }
        tracing::info!(batches = n, ok = result.is_ok(), "group commit");
        match result {
            Ok(counts) => {
                for (reply, c) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(c));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
    }
}
