//! Running a request's work on the query runtime: the time limit, the admission gate,
//! what a panic means, and turning a rendered report into a reply.

use crate::auth::Principal;
use crate::error::bad;
use crate::error::busy;
use crate::error::timed_out;
use crate::error::ApiError;
use crate::reports;
use crate::state::AppState;
use axum::http::header;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::response::Response;
use datafusion::prelude::SessionContext;
use giamsat_queries::QueryError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a panic of the work of [`on_query_rt`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Panic {
    /// A bug of ours: 500.
    Internal,
    /// An analyst's query made the engine give up (e.g. a string column past 2 GiB in
    /// one batch): 400, the server goes on.
    UserQuery,
}

/// Run `fut` on the query runtime; past `limit` it is aborted (with every task of its
/// plan) and the caller gets 408.
pub(crate) async fn on_query_rt<T: Send + 'static>(
    state: &AppState,
    limit: Option<Duration>,
    panic: Panic,
    fut: impl Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    let rt = match panic {
        Panic::UserQuery => &state.sql_rt,
        Panic::Internal => &state.query_rt,
    };
    let mut handle = rt.spawn(fut);
    let joined = match limit {
        Some(d) => match tokio::time::timeout(d, &mut handle).await {
            Ok(j) => j,
            Err(_) => {
                handle.abort();
                return Err(timed_out(d.as_secs_f64()));
            }
        },
        None => handle.await,
    };
    match joined {
        Ok(r) => r,
        Err(e) if e.is_panic() && panic == Panic::UserQuery => {
            tracing::warn!(error = %e, "analyst query panicked");
            Err(bad(
                "truy vấn không chạy được: dữ liệu trung gian vượt giới hạn của máy truy vấn \
                 (ví dụ một cột chuỗi quá 2 GiB); hãy thu hẹp truy vấn",
            ))
        }
        Err(e) => Err(state.internal(e)),
    }
}

pub(crate) fn rendered(r: reports::Rendered) -> Response {
    let mut headers = vec![(header::CONTENT_TYPE, r.content_type.to_string())];
    if let Some(f) = r.filename {
        headers.push((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{f}\""),
        ));
    }
    let mut resp = r.body.into_response();
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// Run a rendered report on the caller's scoped session, on the query runtime.
pub(crate) async fn run_report<Q, F, Fut>(
    state: &Arc<AppState>,
    p: &Principal,
    q: Q,
    f: F,
) -> Result<Response, ApiError>
where
    Q: Send + 'static,
    F: FnOnce(SessionContext, Arc<AppState>, Q) -> Fut + Send + 'static,
    Fut: Future<Output = Result<reports::Rendered, QueryError>> + Send + 'static,
{
    let ctx = state.session_for(p).await?;
    let st = state.clone();
    let limit = Duration::from_secs_f64(state.sql.report_timeout_seconds.max(0.1));
    let waiting = match state.report_gate.enqueue(&p.token_id) {
        Ok(w) => w,
        Err(r) => return Ok(busy(r, state.sql.report_timeout_seconds)),
    };
    let r = on_query_rt(state, Some(limit), Panic::Internal, async move {
        // requests are computed in arrival order; the wait counts in the time limit
        let _turn = waiting.admit().await;
        Ok(f(ctx, st, q).await?)
    })
    .await?;
    Ok(rendered(r))
}
