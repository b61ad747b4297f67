//! giamsat HTTP server (axum).
//!
//! * Every endpoint but `/healthz`, `/api/openapi.json`, `/api/docs` and the dashboard's
//!   static page needs `Authorization: Bearer <token>`; tokens are stored hashed
//!   ([`auth`]).
//! * Territorial scope is enforced below the endpoints: each request runs on a session
//!   whose tables are filtered to the caller's territory below every user expression
//!   (`giamsat_queries::scoped_session`).
//! * Query work runs on its own Tokio runtime, with a time limit, a shared memory pool
//!   and a row limit for analyst SQL, so `/healthz` stays fast.
//! * Errors are JSON `{"error": "..."}`; 5xx are logged with the request id.

pub mod access;
pub mod admission;
pub mod auth;
pub mod exports;
pub mod flight;
pub mod form;
pub mod pg;
mod pg_rewrite;
pub mod reports;
pub mod xlsx;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use datafusion::arrow::array::RecordBatch;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tracing::Instrument;
use utoipa::{IntoParams, OpenApi, ToSchema};

use giamsat_ingest::{Batch, Format, IngestCounts, Input};
use giamsat_queries::bieu06::Row;
use giamsat_queries::QueryError;
use giamsat_warehouse::store::Warehouse;
use giamsat_warehouse::Calendar;

use auth::{Principal, Role, TokenEntry};

/// Limits of analyst SQL (`[sql]` in the server configuration).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SqlConfig {
    /// Wall-clock limit of one query (time spent waiting for a turn counts).
    pub timeout_seconds: f64,
    /// Memory pool shared by all analyst queries of the server.
    pub memory_mb: u64,
    /// Memory pool shared by all report requests (their own, so analyst SQL cannot
    /// exhaust it).
    pub report_memory_mb: u64,
    /// Analyst queries computed at once, overall; more wait their turn.
    pub max_concurrent_queries: usize,
    /// Analyst queries computed at once for one token.
    pub max_queries_per_token: usize,
    /// Analyst queries waiting for a turn, overall; beyond it 429 with `Retry-After`.
    pub max_queued_queries: usize,
    /// Analyst queries waiting for a turn for one token; beyond it 429.
    pub max_queued_queries_per_token: usize,
    /// Report requests waiting for a turn; beyond it 429 with `Retry-After`.
    pub max_queued_reports: usize,
    /// Rows returned at most (the reply says when it was cut).
    pub max_rows: usize,
    /// Wall-clock limit of one report request (Biểu 06, 766, overview, alerts…); past it
    /// the work is stopped and the caller gets 408.
    pub report_timeout_seconds: f64,
    /// Report requests computed at once; more wait their turn (in arrival order) rather
    /// than share the cores and the memory pool with all the others (counted in their
    /// time limit).
    pub max_concurrent_reports: usize,
    /// Size and shape of one statement (`max_sql_bytes`, `max_depth`, …), checked
    /// before it is planned.
    #[serde(flatten)]
    pub limits: giamsat_queries::guard::SqlLimits,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig {
            timeout_seconds: 30.0,
            memory_mb: 1024,
            report_memory_mb: 1024,
            max_concurrent_queries: 4,
            max_queries_per_token: 2,
            max_queued_queries: 16,
            max_queued_queries_per_token: 4,
            max_queued_reports: 64,
            max_rows: 100_000,
            report_timeout_seconds: 120.0,
            max_concurrent_reports: 4,
            limits: Default::default(),
        }
    }
}

/// The report cache (`[cache]` in the server configuration): answers of the report
/// endpoints, per URL and territorial scope, dropped after each commit of the server and
/// after `ttl_seconds` (alerts and the overview depend on "now").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    pub ttl_seconds: f64,
    /// Entries at most (0 = no cache).
    pub max_entries: usize,
    /// Larger answers are not kept.
    pub max_body_bytes: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            ttl_seconds: 60.0,
            max_entries: 512,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// A cached answer.
struct Cached {
    at: Instant,
    headers: Vec<(header::HeaderName, HeaderValue)>,
    body: axum::body::Bytes,
}

/// The report cache: (path and query, scope) → answer.
#[derive(Default)]
struct ReportCache {
    entries: std::sync::Mutex<HashMap<(String, String), Cached>>,
}

impl ReportCache {
    fn clear(&self) {
        if let Ok(mut e) = self.entries.lock() {
            e.clear();
        }
    }
}

/// `[auth]` of the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Requests without a valid token from one client address that end in 401, per
    /// minute; beyond it the address gets 429 (with `Retry-After`) for any request
    /// without a valid token until the minute has passed. 0 = no limit.
    pub failed_per_minute: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            failed_per_minute: 30,
        }
    }
}

/// Failed sign-ins per client address over the last minute.
#[derive(Default)]
struct FailedLogins {
    by_addr: std::sync::Mutex<HashMap<std::net::IpAddr, std::collections::VecDeque<Instant>>>,
}

impl FailedLogins {
    const WINDOW: Duration = Duration::from_secs(60);
    /// Addresses remembered at most (a flood from many addresses resets the memory).
    const MAX_ADDRS: usize = 100_000;

    /// Seconds until `addr` may try again, when it is over `limit`.
    fn blocked(&self, addr: std::net::IpAddr, limit: usize) -> Option<u64> {
        let mut m = self.by_addr.lock().ok()?;
        let q = m.get_mut(&addr)?;
        while q.front().is_some_and(|t| t.elapsed() >= Self::WINDOW) {
            q.pop_front();
        }
        if q.len() < limit {
            return None;
        }
        let oldest = q.front()?;
        Some(
            Self::WINDOW
                .saturating_sub(oldest.elapsed())
                .as_secs()
                .max(1),
        )
    }

    fn failed(&self, addr: std::net::IpAddr) {
        if let Ok(mut m) = self.by_addr.lock() {
            if m.len() >= Self::MAX_ADDRS && !m.contains_key(&addr) {
                m.clear();
            }
            m.entry(addr).or_default().push_back(Instant::now());
        }
    }
}

/// The server configuration file (`giamsat serve --config F`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub sql: SqlConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    /// The PostgreSQL wire protocol door.
    pub pg: pg::PgConfig,
    /// The Arrow Flight SQL door.
    pub flight: flight::FlightConfig,
    #[serde(rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

impl ServerConfig {
    /// Parse TOML text.
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        toml::from_str(text).map_err(|e| format!("cấu hình máy chủ sai: {e}"))
    }
}

/// A pushed batch waiting for the group committer, with where to send its counts.
type Job = (
    Batch,
    tokio::sync::oneshot::Sender<Result<IngestCounts, String>>,
);

/// Shared server state.
pub struct AppState {
    pub warehouse: Arc<Warehouse>,
    /// The unscoped session, replaced after each commit; requests never use it directly.
    base: std::sync::RwLock<SessionContext>,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Memory pool of analyst SQL.
    sql_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    committer: tokio::sync::mpsc::Sender<Job>,
    jobs: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Job>>>,
    pub calendar: Arc<Calendar>,
    /// The accepted tokens (configuration + `<data>/tokens.toml`, re-read on change).
    pub tokens: auth::TokenStore,
    /// Runtime that executes reports and scheduled exports.
    pub query_rt: Handle,
    /// Runtime of the writers: pushes' group commits and the access log. Its own
    /// threads, so a push is acknowledged while reports keep the query threads busy.
    pub commit_rt: Handle,
    /// Runtime that executes analyst SQL: its threads run at a lower priority than the
    /// rest of the server, so analyst queries take the cores only when nothing else
    /// needs them.
    pub sql_rt: Handle,
    pub sql: SqlConfig,
    /// Calendar and configuration of the indicator reports.
    pub env: reports::ReportEnv,
    /// Scheduled exports (`[[export]]` in `<data>/config.toml`).
    pub exporter: Arc<exports::Exporter>,
    /// Report answers (see [`CacheConfig`]); set with [`AppState::with_cache`].
    pub cache_config: CacheConfig,
    cache: ReportCache,
    /// Admission of report requests ([`SqlConfig::max_concurrent_reports`]).
    report_gate: admission::Admission,
    /// Admission of analyst SQL ([`SqlConfig::max_concurrent_queries`] and the rest).
    sql_gate: admission::Admission,
    /// One row per API request, written to `access_log` by [`access::writer`].
    pub access: access::AccessLog,
    /// `[auth]`; set with [`AppState::with_auth`].
    pub auth_config: AuthConfig,
    failed_logins: FailedLogins,
    access_rx: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<access::AccessRecord>>>,
}

impl AppState {
    /// Build the state: a session over the warehouse on a runtime with the memory pool.
    pub async fn new(
        warehouse: Warehouse,
        tokens: Vec<TokenEntry>,
        sql: SqlConfig,
        query_rt: Handle,
        sql_rt: Handle,
        commit_rt: Handle,
    ) -> Result<AppState, QueryError> {
        let pool = |mb: u64| {
            RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(FairSpillPool::new(
                    (mb.max(16) * 1024 * 1024) as usize,
                )))
                .build_arc()
        };
        let runtime = pool(sql.report_memory_mb)?;
        let sql_env = pool(sql.memory_mb)?;
        let base = giamsat_queries::session_with(&warehouse, runtime.clone()).await?;
        let (committer, jobs) = tokio::sync::mpsc::channel(1024);
        let env = reports::ReportEnv::for_warehouse(&warehouse)?;
        let export_config = exports::ExportsConfig::for_data_dir(warehouse.root())
            .map_err(|e| QueryError::BadInput(e.to_string()))?;
        let (access, access_rx) = access::AccessLog::new();
        let tokens = auth::TokenStore::new(tokens, warehouse.root())
            .map_err(|e| QueryError::BadInput(e.to_string()))?;
        let warehouse = Arc::new(warehouse);
        let exporter = Arc::new(
            exports::Exporter::new(
                warehouse.clone(),
                env.clone(),
                runtime.clone(),
                export_config,
            )
            .map_err(|e| QueryError::BadInput(e.to_string()))?,
        );
        Ok(AppState {
            env,
            exporter,
            cache_config: CacheConfig::default(),
            cache: ReportCache::default(),
            calendar: Arc::new(warehouse.calendar.clone()),
            warehouse,
            base: std::sync::RwLock::new(base),
            runtime,
            sql_env,
            committer,
            jobs: std::sync::Mutex::new(Some(jobs)),
            tokens,
            access,
            auth_config: AuthConfig::default(),
            failed_logins: FailedLogins::default(),
            access_rx: std::sync::Mutex::new(Some(access_rx)),
            query_rt,
            sql_rt,
            commit_rt,
            report_gate: admission::Admission::new(admission::Limits {
                running: sql.max_concurrent_reports,
                // a dashboard asks for several panels at once: reports have no
                // share per token
                running_per_token: sql.max_concurrent_reports,
                queued: sql.max_queued_reports,
                queued_per_token: sql.max_queued_reports,
            }),
            sql_gate: admission::Admission::new(admission::Limits {
                running: sql.max_concurrent_queries,
                running_per_token: sql.max_queries_per_token,
                queued: sql.max_queued_queries,
                queued_per_token: sql.max_queued_queries_per_token,
            }),
            sql,
        })
    }

    /// The same state with another `[auth]` configuration.
    pub fn with_auth(mut self, c: AuthConfig) -> AppState {
        self.auth_config = c;
        self
    }

    /// The same state with another report-cache configuration.
    pub fn with_cache(mut self, c: CacheConfig) -> AppState {
        self.cache_config = c;
        self
    }

    /// A session that sees only what `p` may see (reports' memory pool).
    async fn session_for(&self, p: &Principal) -> Result<SessionContext, ApiError> {
        self.session_in(p, self.runtime.clone()).await
    }

    /// A session that sees only what `p` may see, on the memory pool `env`.
    async fn session_in(
        &self,
        p: &Principal,
        env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Result<SessionContext, ApiError> {
        let scope =
            restricted(p).then_some((p.scope.provinces.as_slice(), p.scope.communes.as_slice()));
        let base = self
            .base
            .read()
            .map(|b| b.clone())
            .map_err(|_| self.internal("session lock poisoned"))?;
        giamsat_queries::scoped_session_in(&base, self.calendar.clone(), scope, None, env)
            .await
            .map_err(|e| self.internal(e))
    }

    fn internal(&self, e: impl std::fmt::Display) -> ApiError {
        internal(e)
    }

    /// A user-facing message with no file paths of the server in it.
    fn scrub(&self, msg: &str) -> String {
        let root = self.warehouse.root().display().to_string();
        msg.replace(&root, "<data>")
    }
}

/// The JSON error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in Vietnamese.
    pub error: String,
}

/// A JSON error reply.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadInput(m) => bad(m),
            QueryError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            QueryError::DataFusion(d)
                if matches!(
                    d.find_root(),
                    datafusion::error::DataFusionError::ResourcesExhausted(_)
                ) =>
            {
                tracing::warn!(error = %d, "query memory pool exhausted");
                ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "máy chủ đang bận (hết bộ nhớ dành cho truy vấn); vui lòng thử lại sau ít giây"
                        .into(),
                )
            }
            other => internal(other),
        }
    }
}

/// A 500 reply: the cause goes to the log (with the request id), not to the client.
fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "lỗi nội bộ; xem nhật ký máy chủ theo mã yêu cầu".into(),
    )
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m.into())
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "thiếu mã truy cập (Authorization: Bearer ...)".into(),
        )
    })?;
    principal_of(state, token)
}

/// The caller holding `token`, if the token is known and active.
fn principal_of(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let entry = state
        .tokens
        .get(token)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "mã truy cập không hợp lệ".into()))?;
    match entry.status(chrono::Utc::now()) {
        auth::TokenStatus::Active => Ok(Principal::from(&entry)),
        auth::TokenStatus::Expired => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "mã truy cập đã hết hạn".into(),
        )),
        auth::TokenStatus::Revoked => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "mã truy cập đã bị thu hồi".into(),
        )),
    }
}

fn require(p: &Principal, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "vai trò của mã truy cập không được dùng chức năng này".into(),
        ))
    }
}

/// What a panic of the work of [`on_query_rt`] means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Panic {
    /// A bug of ours: 500.
    Internal,
    /// An analyst's query made the engine give up (e.g. a string column past 2 GiB in
    /// one batch): 400, the server goes on.
    UserQuery,
}

/// Run `fut` on the query runtime; past `limit` it is aborted (with every task of its
/// plan) and the caller gets 408.
async fn on_query_rt<T: Send + 'static>(
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

/// Report grouping (documentation only; parsed by `bieu06::GroupBy`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum GroupByParam {
    Field,
    Agency,
    Commune,
    Procedure,
}

/// Report formats (documentation only): `form-xlsx` and `pdf` are the official form.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub(crate) enum ReportFormat {
    Json,
    Csv,
    Xlsx,
    FormXlsx,
    Pdf,
}

/// SQL result formats (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum SqlFormat {
    Json,
    Csv,
    Parquet,
    Arrow,
}

/// Biểu 06 for a date range (CONTRACT §4 columns; the last row is TOTAL).
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
async fn bieu06_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::Bieu06Query>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::bieu06_params(&q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::bieu06(&ctx, &st.env, &q).await
    })
    .await
}

fn rendered(r: reports::Rendered) -> Response {
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
async fn run_report<Q, F, Fut>(
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

/// The 429 reply of a request refused because every waiting place is taken.
fn busy(refused: admission::Refused, timeout_seconds: f64) -> Response {
    let msg = match refused {
        admission::Refused::Full => {
            "máy chủ đang bận: hàng đợi truy vấn đã đầy; vui lòng thử lại sau"
        }
        admission::Refused::TokenFull => {
            "mã truy cập này đã có quá nhiều truy vấn đang chạy hoặc đang chờ; vui lòng đợi \
             chúng xong rồi thử lại"
        }
    };
    // a turn frees up at the latest when a running request reaches its time limit
    let wait = timeout_seconds.clamp(1.0, 30.0).ceil() as u64;
    let mut r = ApiError(StatusCode::TOO_MANY_REQUESTS, msg.into()).into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    r
}

/// The caller (dashboard and analyst roles) and its parsed query.
fn reader<Q>(
    state: &AppState,
    headers: &HeaderMap,
    q: Result<Query<Q>, QueryRejection>,
) -> Result<(Principal, Q), ApiError> {
    let p = principal(state, headers)?;
    require(&p, &[Role::Admin, Role::Analyst, Role::Viewer])?;
    let Query(q) = q.map_err(|e| bad(format!("tham số không hợp lệ: {e}")))?;
    Ok((p, q))
}

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
async fn bieu06_dossiers_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::Bieu06DossiersQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::bieu06_dossiers_params(&q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::bieu06_dossiers(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn index766_dossiers_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::Index766DossiersQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::index766_dossiers_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::index766_dossiers(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn dossier_handler(
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
async fn index766_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::Index766Query>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::index766_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::index766(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn on_time_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::OnTimeQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::on_time_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::on_time(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn overview_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::OverviewQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::overview_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::overview_json(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn alerts_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::AlertsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::alerts_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::alerts(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn recon_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::ReconQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::recon_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::reconciliation(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn sources_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::SourcesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::sources_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::sources(&ctx, &st.env, &q).await
    })
    .await
}

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
async fn quality_handler(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    q: Result<Query<reports::QualityQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (p, q) = reader(&state, &headers, q)?;
    reports::quality_params(&state.env, &q)?;
    run_report(&state, &p, q, |ctx, st, q| async move {
        reports::quality(&ctx, &st.env, &q).await
    })
    .await
}

/// Body of `POST /api/v1/sql`.
#[derive(Deserialize, ToSchema)]
pub struct SqlBody {
    /// One read-only SQL query over the tables of CONTRACT §6.
    pub sql: String,
}

/// Query parameters of `POST /api/v1/sql`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SqlQuery {
    /// `json` (default: an array of row objects), `csv`, `parquet` or `arrow` (IPC stream).
    #[param(value_type = Option<SqlFormat>)]
    format: Option<String>,
}

fn encode(batches: &[RecordBatch], format: &str) -> Result<(&'static str, Vec<u8>), String> {
    use datafusion::arrow::{csv, ipc, json};
    let mut buf = Vec::new();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match format {
        "json" => {
            let mut w = json::ArrayWriter::new(&mut buf);
            for b in batches {
                w.write(b).map_err(|x| e(&x))?;
            }
            w.finish().map_err(|x| e(&x))?;
            if buf.is_empty() {
                buf.extend_from_slice(b"[]");
            }
            Ok(("application/json", buf))
        }
        "csv" => {
            let mut w = csv::Writer::new(&mut buf);
            for b in batches {
                w.write(b).map_err(|x| e(&x))?;
            }
            drop(w);
            Ok(("text/csv; charset=utf-8", buf))
        }
        "parquet" | "arrow" => {
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
            if format == "parquet" {
                let mut w =
                    datafusion::parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None)
                        .map_err(|x| e(&x))?;
                for b in batches {
                    w.write(b).map_err(|x| e(&x))?;
                }
                w.close().map_err(|x| e(&x))?;
                Ok(("application/vnd.apache.parquet", buf))
            } else {
                let mut w =
                    ipc::writer::StreamWriter::try_new(&mut buf, &schema).map_err(|x| e(&x))?;
                for b in batches {
                    w.write(b).map_err(|x| e(&x))?;
                }
                w.finish().map_err(|x| e(&x))?;
                drop(w);
                Ok(("application/vnd.apache.arrow.stream", buf))
            }
        }
        _ => Err("format phải là json, csv, parquet hoặc arrow".into()),
    }
}

/// Read-only SQL for analysts, within the caller's territory, with time, memory and row
/// limits. The reply header `x-giamsat-truncated: true` says the row limit cut it.
#[utoipa::path(
    post,
    path = "/api/v1/sql",
    params(SqlQuery),
    request_body = SqlBody,
    responses(
        (status = 200, description = "Result rows (JSON array of objects, CSV, Parquet or Arrow IPC)"),
        (status = 400, description = "Malformed or forbidden SQL, a statement over a size limit (the message names it), or an error while running it", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Not an analyst", body = ErrorBody),
        (status = 408, description = "Over the time limit", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 429, description = "The token's share of running and waiting queries, or the queue, is full: retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "The shared memory pool is full: retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn sql_handler(
    State(state): State<Arc<AppState>>,
    rid: Option<axum::Extension<RequestId>>,
    headers: HeaderMap,
    q: Result<Query<SqlQuery>, QueryRejection>,
    body: Result<Json<SqlBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p = principal(&state, &headers)?;
    require(&p, &[Role::Admin, Role::Analyst])?;
    let Query(q) = q.map_err(|e| bad(format!("tham số không hợp lệ: {e}")))?;
    let Json(body) = body.map_err(|e| {
        ApiError(
            e.status(),
            format!("thân yêu cầu phải là JSON {{\"sql\": \"...\"}}: {e}"),
        )
    })?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv" | "parquet" | "arrow") {
        return Err(bad("format phải là json, csv, parquet hoặc arrow"));
    }
    let waiting = match state.sql_gate.enqueue(&p.token_id) {
        Ok(w) => w,
        Err(r) => return Ok(busy(r, state.sql.timeout_seconds)),
    };
    let ctx = state.session_in(&p, state.sql_env.clone()).await?;
    if p.role == Role::Admin {
        // the access log, as of now, for admins only
        access::register(&ctx, &state.warehouse)
            .await
            .map_err(|e| state.internal(e))?;
    }
    let sql_text = body.sql.clone();
    let restricted = restricted(&p);
    let explain = if restricted {
        giamsat_queries::guard::Explain::PlanOnly
    } else {
        giamsat_queries::guard::Explain::Any
    };
    let rid = rid.map(|r| r.0 .0).unwrap_or_default();
    let max_rows = state.sql.max_rows;
    let limits = state.sql.limits.clone();
    let limit = Duration::from_secs_f64(state.sql.timeout_seconds.max(0.1));
    let deadline = Instant::now() + limit;
    let st = state.clone();
    let (batches, truncated) = on_query_rt(&state, Some(limit), Panic::UserQuery, async move {
        // the wait for a turn counts in the time limit
        let _turn = waiting.admit().await;
        let err = |e: QueryError| sql_error(&st, e, restricted, &rid);
        let request = giamsat_queries::guard::Request {
            sql: body.sql,
            limits,
            explain,
            max_rows: Some(max_rows + 1),
            deadline: Some(deadline),
            params: None,
        };
        let planned = giamsat_queries::guard::plan(&ctx, request)
            .await
            .map_err(err)?;
        let is_explain = planned.is_explain;
        let batches = planned.collect().await.map_err(err)?;
        if is_explain {
            let batches = giamsat_queries::guard::redact_explain(&batches, &|t| st.scrub(t))
                .map_err(|e| st.internal(e))?;
            return Ok((batches, false));
        }
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        if total <= max_rows {
            return Ok((batches, false));
        }
        let mut kept = Vec::new();
        let mut left = max_rows;
        for b in batches {
            if left == 0 {
                break;
            }
            let n = b.num_rows().min(left);
            kept.push(b.slice(0, n));
            left -= n;
        }
        Ok((kept, true))
    })
    .await?;
    let (ctype, bytes) = encode(&batches, &format).map_err(|e| state.internal(e))?;
    let mut res = ([(header::CONTENT_TYPE, ctype)], bytes).into_response();
    res.extensions_mut().insert(access::AccessNote {
        sql: Some(sql_text),
        rows: Some(batches.iter().map(|b| b.num_rows() as i64).sum()),
    });
    res.headers_mut().insert(
        "x-giamsat-truncated",
        HeaderValue::from_static(if truncated { "true" } else { "false" }),
    );
    Ok(res)
}

/// Whether `p` sees only part of the country (its queries run on scoped tables).
fn restricted(p: &Principal) -> bool {
    p.role != Role::Admin && p.scope.is_restricted()
}

/// The reply to a failed analyst query. Limits and planning errors (which come from the
/// statement and the schema alone) are told as they are. An error met while running
/// may quote a value of a row; a restricted caller gets a generic message with the
/// request id, and the detail goes to the log.
fn sql_error(state: &AppState, e: QueryError, restricted: bool, rid: &str) -> ApiError {
    use datafusion::error::DataFusionError as D;
    let failed = |detail: &dyn std::fmt::Display| {
        if restricted {
            tracing::warn!(request_id = rid, error = %detail, "analyst query failed");
            bad(format!(
                "lỗi khi chạy truy vấn (chi tiết không hiển thị với mã truy cập giới hạn địa \
                 bàn; mã yêu cầu {rid})"
            ))
        } else {
            bad(state.scrub(&format!("lỗi khi chạy truy vấn: {detail}")))
        }
    };
    match e {
        QueryError::Limit(l) => bad(l.to_string()),
        QueryError::BadInput(m) => bad(state.scrub(&m)),
        QueryError::DataFusion(d) => match d.find_root() {
            D::ResourcesExhausted(_) => QueryError::DataFusion(d).into(),
            D::Execution(m) if m == giamsat_queries::deadline::DEADLINE_PASSED => {
                timed_out(state.sql.timeout_seconds)
            }
            _ if giamsat_queries::is_internal(&d) => state.internal(d),
            _ => failed(&d),
        },
        QueryError::Arrow(a) => failed(&a),
        other => state.internal(other),
    }
}

/// The 408 reply of work stopped at its time limit.
fn timed_out(seconds: f64) -> ApiError {
    ApiError(
        StatusCode::REQUEST_TIMEOUT,
        format!("truy vấn vượt quá thời gian cho phép ({seconds} giây) và đã bị dừng"),
    )
}

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
enum IngestFormat {
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
async fn events_handler(
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
    let format = match q.format.as_deref().unwrap_or("canonical") {
        "canonical" => Format::Canonical,
        "dvcqg" => Format::Dvcqg,
        o => return Err(bad(format!("format phải là canonical hoặc dvcqg: {o:?}"))),
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| giamsat_ingest::canonical::key_digest(&format!("{source}|{k}")));
    let inputs = vec![Input {
        name: "http".into(),
        bytes: body.to_vec(),
    }];
    let (mut events, mut quarantine) = match format {
        Format::Dvcqg => giamsat_ingest::dvcqg::parse(&inputs, &source),
        _ => giamsat_ingest::parse_canonical(&inputs, Some(&source)),
    };
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
async fn committer(state: Arc<AppState>, mut jobs: tokio::sync::mpsc::Receiver<Job>) {
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

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up")))]
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok"}))
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the server, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "giamsat", description = "Kho dữ liệu giám sát giải quyết thủ tục hành chính: báo cáo, chỉ số, SQL."),
    paths(healthz, me_handler, bieu06_handler, bieu06_dossiers_handler, index766_handler, index766_dossiers_handler, dossier_handler, on_time_handler, overview_handler, alerts_handler, recon_handler, sources_handler, quality_handler, sql_handler, events_handler, exports_handler, export_file_handler),
    components(schemas(Row, SqlBody, ErrorBody, GroupByParam, ReportFormat, SqlFormat, IngestFormat, IngestReply, giamsat_queries::drill::Column)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

async fn docs() -> impl IntoResponse {
    Html(giamsat_dashboards::DOCS_HTML)
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
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
async fn me_handler(
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

async fn index() -> impl IntoResponse {
    Html(giamsat_dashboards::INDEX_HTML)
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "không tìm thấy".into())
}

/// The id of a request (in its log lines and its `x-request-id` reply header).
#[derive(Debug, Clone)]
struct RequestId(String);

/// Request ids and access logs; every reply carries `x-request-id`.
async fn request_log(mut req: Request, next: Next) -> Response {
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

/// Report endpoints whose answers the cache keeps.
const CACHED_PATHS: [&str; 8] = [
    "/api/v1/reports/bieu06",
    "/api/v1/indicators/766",
    "/api/v1/indicators/on-time",
    "/api/v1/dashboard/overview",
    "/api/v1/alerts",
    "/api/v1/reconciliation",
    "/api/v1/sources",
    "/api/v1/data-quality",
];

/// Serve report answers from the cache when the same URL was answered for the same
/// territorial scope since the last commit and within the TTL. The caller is
/// authenticated first (a bad or unauthorised token goes on to the handler and its
/// 401/403); only 200 answers are kept. `x-giamsat-cache: hit|miss` says which.
async fn report_cache(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let cfg = &state.cache_config;
    let path = req.uri().path();
    if cfg.max_entries == 0
        || req.method() != axum::http::Method::GET
        || !CACHED_PATHS.contains(&path)
    {
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

fn export_error(state: &AppState, e: exports::ExportError) -> ApiError {
    match e {
        exports::ExportError::NotFound(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
        exports::ExportError::BadInput(m) => bad(m),
        other => state.internal(other),
    }
}

/// Which exports a caller may see: an unrestricted caller sees all; a restricted one only
/// exports whose scope lies inside its own territory (a commune counts as inside when the
/// caller has that commune or its province).
struct ExportVisibility<'a> {
    p: &'a Principal,
    /// Commune → province, loaded only for a restricted caller.
    province_of: HashMap<String, String>,
}

impl<'a> ExportVisibility<'a> {
    fn new(p: &'a Principal) -> ExportVisibility<'a> {
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
    fn sees_report(&self, report: &str) -> bool {
        report != "access-log" || self.p.role == Role::Admin
    }

    fn sees(&self, province: &Option<String>, commune: &Option<String>) -> bool {
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
async fn exports_handler(
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
async fn export_file_handler(
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

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .route("/api/openapi.json", get(openapi))
        .route("/api/docs", get(docs))
        .route("/api/v1/reports/bieu06", get(bieu06_handler))
        .route(
            "/api/v1/reports/bieu06/dossiers",
            get(bieu06_dossiers_handler),
        )
        .route(
            "/api/v1/indicators/766/dossiers",
            get(index766_dossiers_handler),
        )
        .route("/api/v1/dossiers/{id}", get(dossier_handler))
        .route("/assets/{name}", get(asset))
        .route("/api/v1/me", get(me_handler))
        .route("/api/v1/indicators/766", get(index766_handler))
        .route("/api/v1/indicators/on-time", get(on_time_handler))
        .route("/api/v1/dashboard/overview", get(overview_handler))
        .route("/api/v1/alerts", get(alerts_handler))
        .route("/api/v1/reconciliation", get(recon_handler))
        .route("/api/v1/sources", get(sources_handler))
        .route("/api/v1/data-quality", get(quality_handler))
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
        .layer(middleware::from_fn_with_state(state.clone(), report_cache))
        .layer(middleware::from_fn(request_log))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .with_state(state)
}

/// Append a row to the access log for every `/api/v1/` request: the token's id, label,
/// role and territory (none when no valid token was shown), the method and target, the
/// SQL text and rows returned (from the handler's [`access::AccessNote`]), the time
/// taken and the status.
async fn access_log(
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

async fn shutdown() {
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
