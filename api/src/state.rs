//! The shared server state: the warehouse, the sessions, the runtimes, the admission
//! gates, the exporter and the access log.

use crate::access;
use crate::admission;
use crate::auth;
use crate::auth::Principal;
use crate::auth::TokenEntry;
use crate::cache::ReportCache;
use crate::caller::restricted;
use crate::caller::FailedLogins;
use crate::config::AuthConfig;
use crate::config::CacheConfig;
use crate::config::SqlConfig;
use crate::error::internal;
use crate::error::ApiError;
use crate::exports;
use crate::reports;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionContext;
use giamsat_ingest::Batch;
use giamsat_ingest::IngestCounts;
use giamsat_queries::QueryError;
use giamsat_warehouse::store::Warehouse;
use giamsat_warehouse::Calendar;
use std::sync::Arc;
use tokio::runtime::Handle;

/// A pushed batch waiting for the group committer, with where to send its counts.
pub(crate) type Job = (
    Batch,
    tokio::sync::oneshot::Sender<Result<IngestCounts, String>>,
);

/// Shared server state.
pub struct AppState {
    pub warehouse: Arc<Warehouse>,
    /// The unscoped session, replaced after each commit; requests never use it directly.
    pub(crate) base: std::sync::RwLock<SessionContext>,
    pub(crate) runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Memory pool of analyst SQL.
    pub(crate) sql_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    pub(crate) committer: tokio::sync::mpsc::Sender<Job>,
    pub(crate) jobs: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Job>>>,
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
    pub(crate) cache: ReportCache,
    /// Admission of report requests ([`SqlConfig::max_concurrent_reports`]).
    pub(crate) report_gate: admission::Admission,
    /// Admission of analyst SQL ([`SqlConfig::max_concurrent_queries`] and the rest).
    pub(crate) sql_gate: admission::Admission,
    /// One row per API request, written to `access_log` by [`access::writer`].
    pub access: access::AccessLog,
    /// `[auth]`; set with [`AppState::with_auth`].
    pub auth_config: AuthConfig,
    pub(crate) failed_logins: FailedLogins,
    pub(crate) access_rx:
        std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<access::AccessRecord>>>,
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
    pub(crate) async fn session_for(&self, p: &Principal) -> Result<SessionContext, ApiError> {
        self.session_in(p, self.runtime.clone()).await
    }

    /// A session that sees only what `p` may see, on the memory pool `env`.
    pub(crate) async fn session_in(
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

    pub(crate) fn internal(&self, e: impl std::fmt::Display) -> ApiError {
        internal(e)
    }

    /// A user-facing message with no file paths of the server in it.
    pub(crate) fn scrub(&self, msg: &str) -> String {
        let root = self.warehouse.root().display().to_string();
        msg.replace(&root, "<data>")
    }
}
