//! The report cache: answers of the report endpoints per URL and territorial scope,
//! dropped after each commit of the server and after `[cache] ttl_seconds`.

use crate::auth::Role;
use crate::caller::principal;
use crate::caller::restricted;
use crate::error::internal;
use crate::state::AppState;
use axum::extract::Request;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;

/// A cached answer.
pub(crate) struct Cached {
    pub(crate) at: Instant,
    pub(crate) headers: Vec<(header::HeaderName, HeaderValue)>,
    pub(crate) body: axum::body::Bytes,
}

/// The report cache: (path and query, scope) → answer.
#[derive(Default)]
pub(crate) struct ReportCache {
    pub(crate) entries: std::sync::Mutex<HashMap<(String, String), Cached>>,
}

impl ReportCache {
    pub(crate) fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }
}

/// Serve report answers from the cache (a layer of the cached report routes only,
/// [`crate::report_handlers::routes`]) when the same URL was answered for the same
/// territorial scope since the last commit and within the TTL. The caller is
/// authenticated first (a bad or unauthorised token goes on to the handler and its
/// 401/403); only 200 answers are kept. `x-giamsat-cache: hit|miss` says which.
pub(crate) async fn report_cache(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let cfg = &state.cache_config;
    if cfg.max_entries == 0 || req.method() != axum::http::Method::GET {
        return next.run(req).await;
    }
    let scope = match principal(&state, req.headers()) {
        Ok(p) if matches!(p.role, Role::Admin | Role::Analyst | Role::Viewer) => {
            if !restricted(&p) {
                "*".to_string()
            } else {
                let mut pr = p.scope.provinces.clone();
                let mut co = p.scope.communes.clone();
                pr.sort();
                co.sort();
                format!("{}|{}", pr.join(","), co.join(","))
            }
        }
        _ => return next.run(req).await,
    };
    let key = (
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        scope,
    );
    let ttl = Duration::from_secs_f64(cfg.ttl_seconds.max(0.0));
    if let Ok(entries) = state.cache.entries.lock() {
        if let Some(c) = entries.get(&key).filter(|c| c.at.elapsed() < ttl) {
            let mut res = c.body.clone().into_response();
            for (k, v) in &c.headers {
                res.headers_mut().insert(k.clone(), v.clone());
            }
            res.headers_mut()
                .insert("x-giamsat-cache", HeaderValue::from_static("hit"));
            return res;
        }
    }
    let res = next.run(req).await;
    if res.status() != StatusCode::OK {
        return res;
    }
    // keep only answers of a known size within the limit; others go out untouched
    let size = axum::body::HttpBody::size_hint(res.body()).exact();
    if size.is_none_or(|n| n as usize > cfg.max_body_bytes) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let body = match axum::body::to_bytes(body, cfg.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return internal(e).into_response(),
    };
    let headers: Vec<_> = [header::CONTENT_TYPE, header::CONTENT_DISPOSITION]
        .into_iter()
        .filter_map(|k| parts.headers.get(&k).map(|v| (k, v.clone())))
        .collect();
    if let Ok(mut entries) = state.cache.entries.lock() {
        if entries.len() >= cfg.max_entries {
            entries.retain(|_, c| c.at.elapsed() < ttl);
        }
        if entries.len() >= cfg.max_entries {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, c)| c.at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            key,
            Cached {
                at: Instant::now(),
                headers,
                body: body.clone(),
            },
        );
    }
    parts
        .headers
        .insert("x-giamsat-cache", HeaderValue::from_static("miss"));
    Response::from_parts(parts, axum::body::Body::from(body))
}
