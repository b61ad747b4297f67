//! The PostgreSQL wire protocol door (`[pg] listen`, `giamsat serve --pg-port`): psql,
//! DBeaver, Metabase, Superset, Power BI and Python's psycopg connect to giamsat as to a
//! PostgreSQL server, with the same rules as `POST /api/v1/sql`.
//!
//! * The password is a giamsat token (the user name is free); only the admin and analyst
//!   roles may sign in; a wrong token is refused at login and counts as a failed sign-in.
//! * Every statement runs on a fresh session scoped to the token's territory
//!   (`scoped_session_in`), with PostgreSQL's catalog (`pg_catalog`, for `\dt` and
//!   `\d` and the BI tools' table lists) added, through the same guard as HTTP SQL:
//!   measured before planning, read-only, at most `max_rows` rows, stopped at the time
//!   limit, in the analyst SQL memory pool, one turn of the analyst SQL admission per
//!   statement. `SET` of the engine's options, writes, `COPY` and file-reading functions
//!   are refused; `SET` of client settings (`application_name`, `datestyle`, …),
//!   `SHOW` and transaction statements are answered by the protocol library's hooks.
//! * A cancel request (psql's Ctrl-C) stops the running statement.
//!
//! The protocol (simple and extended queries, startup, cancel, TLS) is `pgwire`, with the
//! result encoding and the `pg_catalog` tables of `datafusion-postgres`.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::PgCatalogContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, LoginInfo, StartupHandler,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::Format;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PgWireServerHandlers, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::types::format::FormatOptions;
use tokio::net::TcpListener;

use giamsat_queries::guard;
use giamsat_queries::QueryError;

use crate::auth::{Principal, Role};
use crate::state::AppState;

/// `[pg]` of the server configuration.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgConfig {
    /// Address to listen on, e.g. `127.0.0.1:5432`; none = no PostgreSQL door.
    pub listen: Option<String>,
    /// PEM certificate chain and PKCS#8 key: with both, clients may (and should) use TLS
    /// (`sslmode=require`), since the password is sent as typed.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

/// The signed-in caller of a connection (kept in its session extensions), and the
/// connection's `pg_catalog`: one per connection, so that an object keeps its OID from
/// one statement to the next (psql's `\d` looks a table up by name, then its columns by
/// OID), while every statement reads the data through a fresh session.
struct Login {
    principal: Principal,
    pg_catalog: Arc<dyn datafusion::catalog::SchemaProvider>,
    /// The connection's scoped session and the id of the server's session it was built
    /// from: rebuilt when a commit has replaced that (so a statement always reads the
    /// latest committed data), kept otherwise.
    session: std::sync::Mutex<Option<(String, SessionContext)>>,
}

/// An error sent to the client: SQLSTATE and message (Vietnamese).
fn pg_error(code: &str, msg: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        msg.into(),
    )))
}

/// A giamsat error as the SQLSTATE a PostgreSQL client expects.
fn from_query(state: &AppState, e: QueryError, p: &Principal) -> PgWireError {
    let restricted = crate::caller::restricted(p);
    let api = crate::sql::sql_error(state, e, restricted, "pg");
    let code = match api.0.as_u16() {
        408 => "57014",
        429 | 503 => "53000",
        500 => "XX000",
        _ => "42000",
    };
    pg_error(code, api.1)
}

/// A fresh session scoped to `p`, with PostgreSQL's catalog and functions.
async fn scoped_with_catalog(state: &AppState, p: &Principal) -> PgWireResult<SessionContext> {
    let ctx = state
        .session_in(p, state.sql_env.clone())
        .await
        .map_err(|e| pg_error("XX000", e.1))?;
    setup_pg_catalog(&ctx, "datafusion", NoRoles)
        .map_err(|e| pg_error("XX000", format!("pg_catalog: {e}")))?;
    use datafusion::common::ScalarValue;
    // functions of PostgreSQL's catalog that clients call and the catalog library does
    // not define, each with a constant answer for any arguments
    for (name, value) in [
        // the server's version (SQLAlchemy parses it)
        (
            "version",
            ScalarValue::Utf8(Some(SERVER_VERSION.to_string())),
        ),
        // psycopg looks optional types (hstore) up: none is defined
        ("to_regtype", ScalarValue::Int32(None)),
        // SQLAlchemy's reflection: no column has a sequence, no view or index a
        // definition to show, every type and collation is visible, no identity column
        ("pg_get_serial_sequence", ScalarValue::Utf8(None)),
        ("pg_get_viewdef", ScalarValue::Utf8(None)),
        ("pg_get_indexdef", ScalarValue::Utf8(None)),
        ("pg_type_is_visible", ScalarValue::Boolean(Some(true))),
        ("pg_collation_is_visible", ScalarValue::Boolean(Some(true))),
        ("json_build_object", ScalarValue::Utf8(None)),
    ] {
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            ConstFunction::new(name, value),
        ));
    }
    Ok(ctx)
}

/// A function of any arguments with a constant answer.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ConstFunction {
    name: &'static str,
    value: datafusion::common::ScalarValue,
    signature: datafusion::logical_expr::Signature,
}

impl ConstFunction {
    fn new(name: &'static str, value: datafusion::common::ScalarValue) -> ConstFunction {
        ConstFunction {
            name,
            value,
            signature: datafusion::logical_expr::Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Nullary,
                    datafusion::logical_expr::TypeSignature::VariadicAny,
                ],
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for ConstFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        _args: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(
        &self,
        _args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::common::Result<datafusion::logical_expr::ColumnarValue> {
        Ok(datafusion::logical_expr::ColumnarValue::Scalar(
            self.value.clone(),
        ))
    }
}

/// What `version()` answers: PostgreSQL's form, which clients parse.
const SERVER_VERSION: &str = concat!(
    "PostgreSQL 16.6 (giamsat ",
    env!("CARGO_PKG_VERSION"),
    ", Apache DataFusion 55)"
);

/// The catalog context of `pg_catalog`: no database roles are listed.
#[derive(Debug, Clone, Default)]
struct NoRoles;

impl PgCatalogContextProvider for NoRoles {}

/// Start the PostgreSQL door on `listener`; connections are served on `rt` (the analyst
/// SQL runtime).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    rt: tokio::runtime::Handle,
) {
    let manager = Arc::new(ConnectionManager::new());
    loop {
        let (socket, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "pg: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handlers = Arc::new(Connection::new(state.clone(), manager.clone()));
        let tls = tls.clone();
        rt.spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                tracing::debug!(error = %e, client = %addr, "pg: connection ended");
            }
        });
    }
}

/// The TLS acceptor of `[pg]`, when a certificate and key are configured.
pub fn tls_acceptor(c: &PgConfig) -> Result<Option<pgwire::tokio::TlsAcceptor>, String> {
    use std::io::BufReader;
    use tokio_rustls::rustls;
    let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) else {
        return Ok(None);
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let open = |p: &str| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|e| format!("[pg] không mở được {p}: {e}"))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("[pg] tls_cert không hợp lệ: {e}"))?;
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| format!("[pg] tls_key không hợp lệ: {e}"))?
        .ok_or_else(|| "[pg] tls_key không có khóa riêng".to_string())?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("[pg] chứng chỉ TLS không dùng được: {e}"))?;
    Ok(Some(pgwire::tokio::TlsAcceptor::from(Arc::new(config))))
}

/// The handlers of one connection.
struct Connection {
    startup: Arc<TokenStartup>,
    service: Arc<DfSessionService>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Connection {
    fn new(state: Arc<AppState>, manager: Arc<ConnectionManager>) -> Connection {
        // the protocol library's own session only answers SET/SHOW and plans nothing of
        // ours: every statement is planned and run by `Guarded` on a scoped session
        let empty = Arc::new(SessionContext::new_with_config(SessionConfig::new()));
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(Guarded {
                state: state.clone(),
            }),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        Connection {
            startup: Arc::new(TokenStartup {
                state,
                manager: manager.clone(),
                keys: RandomPidSecretKeyGenerator::default(),
                params: DefaultServerParameterProvider::default(),
            }),
            service: Arc::new(DfSessionService::new_with_hooks(empty, hooks)),
            cancel: Arc::new(DefaultCancelHandler::new(manager)),
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// Sign-in with a cleartext password that is a giamsat token.
struct TokenStartup {
    state: Arc<AppState>,
    manager: Arc<ConnectionManager>,
    keys: RandomPidSecretKeyGenerator,
    params: DefaultServerParameterProvider,
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let user = LoginInfo::from_client_info(client)
                    .user()
                    .map(str::to_string)
                    .unwrap_or_default();
                let addr = client.socket_addr().ip();
                let limit = self.state.auth_config.failed_per_minute;
                if let Some(wait) = (limit > 0)
                    .then(|| self.state.failed_logins.blocked(addr, limit))
                    .flatten()
                {
                    return Err(pg_error(
                        "28000",
                        format!("quá nhiều lần đăng nhập sai; thử lại sau {wait} giây"),
                    ));
                }
                let p = match crate::caller::principal_of(&self.state, &pwd.password) {
                    Ok(p) => p,
                    Err(e) => {
                        self.state.failed_logins.failed(addr);
                        tracing::info!(user, client = %addr, "pg: sign-in refused");
                        return Err(pg_error("28P01", e.1));
                    }
                };
                if !matches!(p.role, Role::Admin | Role::Analyst) {
                    return Err(pg_error(
                        "28000",
                        "chỉ mã truy cập vai trò analyst hoặc admin được dùng SQL",
                    ));
                }
                tracing::info!(user, token = %p.token_id, client = %addr, "pg: signed in");
                let ctx = scoped_with_catalog(&self.state, &p).await?;
                let pg_catalog = ctx
                    .catalog("datafusion")
                    .and_then(|c| c.schema("pg_catalog"))
                    .ok_or_else(|| pg_error("XX000", "pg_catalog không có"))?;
                client.session_extensions().insert(Login {
                    principal: p,
                    pg_catalog,
                    session: std::sync::Mutex::new(None),
                });
                let (pid, secret) = self.keys.generate(client);
                client.set_pid_and_secret_key(pid, secret.clone());
                let (handle, guard) = self.manager.register(pid, secret);
                client
                    .session_extensions()
                    .insert::<Arc<ConnectionHandle>>(handle);
                client.session_extensions().insert::<ConnectionGuard>(guard);
                finish_authentication(client, &self.params).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Plans and runs every statement but SET (of client settings), SHOW and transaction
/// statements, as HTTP SQL does.
struct Guarded {
    state: Arc<AppState>,
}

/// Client settings a `SET` may change; every other name (the engine's options) is
/// refused.
const CLIENT_SETTINGS: [&str; 12] = [
    "application_name",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "standard_conforming_strings",
    "timezone",
    "time zone",
    "bytea_output",
    "lc_messages",
];

/// What the hook does with a statement.
enum Kind {
    /// A query or EXPLAIN: planned and run here.
    Query,
    /// Answered by a later hook (client SET, SHOW, transactions).
    Pass,
    /// Refused, with the reason.
    Refuse(String),
    /// Accepted and answered with this tag (savepoints: nothing is written anyway).
    Tag(&'static str),
}

fn kind(statement: &Statement) -> Kind {
    match statement {
        Statement::Query(_) | Statement::Explain { .. } => Kind::Query,
        Statement::Set(set) => {
            let text = set.to_string().to_lowercase();
            let name = text
                .trim_start_matches("set ")
                .trim_start_matches("session ")
                .trim_start_matches("local ");
            if CLIENT_SETTINGS
                .iter()
                .any(|c| name.starts_with(c) && !name.starts_with("datafusion"))
            {
                Kind::Pass
            } else {
                Kind::Refuse(format!(
                    "không được đổi thiết lập này qua SQL: {set} (chỉ các thiết lập của \
                     trình khách: {})",
                    CLIENT_SETTINGS.join(", ")
                ))
            }
        }
        Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. } => Kind::Pass,
        Statement::Savepoint { .. } => Kind::Tag("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => Kind::Tag("RELEASE"),
        other => Kind::Refuse(format!(
            "chỉ được đọc dữ liệu (SELECT); câu lệnh bị từ chối: {}",
            other.to_string().chars().take(80).collect::<String>()
        )),
    }
}

impl Guarded {
    fn login(client: &(dyn ClientInfo + Send + Sync)) -> PgWireResult<Principal> {
        client
            .session_extensions()
            .get::<Login>()
            .map(|l| l.principal.clone())
            .ok_or_else(|| pg_error("28000", "chưa đăng nhập"))
    }

    /// The caller's scoped session as of the latest commit, with the connection's
    /// `pg_catalog`.
    async fn session(
        &self,
        p: &Principal,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> PgWireResult<SessionContext> {
        let login = client
            .session_extensions()
            .get::<Login>()
            .ok_or_else(|| pg_error("28000", "chưa đăng nhập"))?;
        let current = self
            .state
            .base
            .read()
            .map(|b| b.session_id())
            .map_err(|_| pg_error("XX000", "session lock poisoned"))?;
        if let Ok(cached) = login.session.lock() {
            if let Some((id, ctx)) = cached.as_ref() {
                if *id == current {
                    return Ok(ctx.clone());
                }
            }
        }
        let ctx = scoped_with_catalog(&self.state, p).await?;
        if let Some(c) = ctx.catalog("datafusion") {
            c.register_schema("pg_catalog", login.pg_catalog.clone())
                .map_err(|e| pg_error("XX000", format!("pg_catalog: {e}")))?;
        }
        if let Ok(mut cached) = login.session.lock() {
            *cached = Some((current, ctx.clone()));
        }
        Ok(ctx)
    }

    /// The statement measured against the limits.
    fn measured(&self, statement: &Statement) -> Result<DFStatement, QueryError> {
        let mut statement = statement.clone();
        crate::pg_rewrite::catalog_subqueries(&mut statement);
        let text_len = statement.to_string().len();
        let df = DFStatement::Statement(Box::new(statement));
        let limits = &self.state.sql.limits;
        if text_len > limits.max_sql_bytes {
            return Err(QueryError::Limit(guard::LimitExceeded::Length(
                text_len,
                limits.max_sql_bytes,
            )));
        }
        guard::check(&df, limits).map_err(QueryError::Limit)?;
        Ok(df)
    }

    /// Plan (with `params`) and run a statement within the limits, in the caller's turn;
    /// its rows encoded in `format`.
    async fn run(
        &self,
        statement: &Statement,
        params: Option<&ParamValues>,
        format: Format,
        client: &mut dyn HookClient,
    ) -> PgWireResult<Response> {
        let p = Self::login(client)?;
        let state = self.state.clone();
        let err = |e: QueryError| from_query(&state, e, &p);
        let limit = Duration::from_secs_f64(state.sql.timeout_seconds.max(0.1));
        let deadline = Instant::now() + limit;
        let waiting = state.sql_gate.enqueue(&p.token_id).map_err(|_| {
            pg_error(
                "53000",
                "máy chủ đang bận hoặc mã truy cập này có quá nhiều truy vấn; thử lại sau",
            )
        })?;
        let explain = if crate::caller::restricted(&p) {
            guard::Explain::PlanOnly
        } else {
            guard::Explain::Any
        };
        let statement = self.measured(statement).map_err(err)?;
        let ctx = self.session(&p, client).await?;
        let max_rows = state.sql.max_rows;
        let work = async {
            let _turn = waiting.admit().await;
            let st = ctx.state();
            let mut plan = guard::logical(&st, statement).await?;
            if let Some(v) = params {
                plan = plan
                    .replace_params_with_values(v)
                    .map_err(|e| QueryError::BadInput(format!("tham số không hợp lệ: {e}")))?;
            }
            let planned =
                guard::physical(&st, plan, explain, Some(max_rows), Some(deadline)).await?;
            let schema = planned.plan.schema();
            // run to the end here, so that a cancel request (which stops this future)
            // or the time limit stops the work itself; at most `max_rows` rows
            let batches = planned.collect().await?;
            Ok::<_, QueryError>((schema, batches))
        };
        let (schema, batches) = match tokio::time::timeout(limit, work).await {
            Ok(r) => r.map_err(err)?,
            Err(_) => {
                return Err(pg_error(
                    "57014",
                    format!(
                        "truy vấn vượt quá thời gian cho phép ({} giây) và đã bị dừng",
                        state.sql.timeout_seconds
                    ),
                ))
            }
        };
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        let fields = Arc::new(arrow_schema_to_pg_fields(&schema, &format, Some(options))?);
        let f = fields.clone();
        let rows = futures::stream::iter(batches)
            .map(move |b| futures::stream::iter(encode_recordbatch(f.clone(), b)))
            .flatten();
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

#[async_trait]
impl QueryHook for Guarded {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match kind(statement) {
            Kind::Pass => None,
            Kind::Refuse(m) => Some(Err(pg_error("42501", m))),
            Kind::Tag(t) => Some(Ok(Response::Execution(Tag::new(t)))),
            Kind::Query => Some(self.run(statement, None, Format::UnifiedText, client).await),
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match kind(statement) {
            Kind::Pass => None,
            Kind::Refuse(m) => Some(Err(pg_error("42501", m))),
            Kind::Tag(_) => Some(Ok(LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(datafusion::common::DFSchema::empty()),
                },
            ))),
            Kind::Query => {
                let plan = async {
                    let p = Self::login(client)?;
                    let statement = self
                        .measured(statement)
                        .map_err(|e| from_query(&self.state, e, &p))?;
                    let ctx = self.session(&p, client).await?;
                    guard::logical(&ctx.state(), statement)
                        .await
                        .map_err(|e| from_query(&self.state, e, &p))
                };
                Some(plan.await)
            }
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match kind(statement) {
            Kind::Pass => None,
            Kind::Refuse(m) => Some(Err(pg_error("42501", m))),
            Kind::Tag(t) => Some(Ok(Response::Execution(Tag::new(t)))),
            Kind::Query => {
                // the result format asked at Bind, for the unnamed portal clients use
                // (the hook is not told which portal runs; a named one gets text)
                let format = client
                    .portal_store()
                    .get_portal(pgwire::api::DEFAULT_NAME)
                    .and_then(|e| e.value().map(|p| p.result_column_format.clone()))
                    .unwrap_or(Format::UnifiedText);
                Some(self.run(statement, Some(params), format, client).await)
            }
        }
    }
}
