//! The Arrow Flight SQL door (`[flight] listen`, `giamsat serve --flight-port`): ADBC
//! (Python, R, Go, Java), the Flight SQL JDBC driver (DBeaver) and BI engines read
//! giamsat's tables as Arrow, with the same rules as `POST /api/v1/sql`.
//!
//! * Every call carries a giamsat token: `authorization: Bearer <token>`, or HTTP Basic
//!   with the token as password (the user name is free; the handshake answers with the
//!   bearer header clients then send). Only the admin and analyst roles are served; a
//!   wrong token counts as a failed sign-in, as on the other doors.
//! * Every statement is parsed, measured, planned and run on a session scoped to the
//!   token's territory, through the guard of HTTP SQL: read-only, the statement limits,
//!   the time limit (the whole call, including the wait for a turn), the analyst SQL
//!   memory pool and admission. A result over `max_rows` rows ends, after those rows,
//!   with an error that says so (a client cannot miss that it was cut).
//! * Results are streamed: a turn of the admission is held while the client reads, at
//!   most until the time limit; a client that cancels or goes away stops the work.
//! * Prepared statements are stateless: the handle carries the statement and its bound
//!   parameters, and every call checks the token and plans again, so a handle is worth
//!   nothing without a token and gives no more than the statement itself would.
//! * Metadata: `GetCatalogs`, `GetDbSchemas`, `GetTables` (with the tables' schemas),
//!   `GetTableTypes` and `GetSqlInfo`, from the caller's scoped session.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementQuery, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    SqlSupportedTransaction, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::prelude::SessionContext;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use giamsat_queries::guard;
use giamsat_queries::QueryError;

use crate::auth::{Principal, Role};
use crate::state::AppState;

/// `[flight]` of the server configuration.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlightConfig {
    /// Address to listen on, e.g. `127.0.0.1:50051`; none = no Flight SQL door.
    pub listen: Option<String>,
    /// PEM certificate chain and key: with both, the door speaks TLS only
    /// (`grpc+tls://`), since every call carries a token.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

/// The TLS settings of `[flight]`, when a certificate and key are configured.
pub fn tls_config(c: &FlightConfig) -> Result<Option<tonic::transport::ServerTlsConfig>, String> {
    let (Some(cert), Some(key)) = (&c.tls_cert, &c.tls_key) else {
        return Ok(None);
    };
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("[flight] không mở được {p}: {e}"));
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    Ok(Some(
        tonic::transport::ServerTlsConfig::new().identity(identity),
    ))
}

/// Serve the Flight SQL door on `listener` until the process ends; calls run on `rt`
/// (the analyst SQL runtime).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    rt: tokio::runtime::Handle,
) -> Result<(), String> {
    let service = FlightServiceServer::new(FlightSql { state });
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .map_err(|e| format!("[flight] chứng chỉ TLS không dùng được: {e}"))?;
    }
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let router = builder.add_service(service);
    rt.spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!(error = %e, "flight: server stopped");
        }
    });
    Ok(())
}

/// The Flight SQL service.
#[derive(Clone)]
pub struct FlightSql {
    state: Arc<AppState>,
}

type Reply<T> = Result<Response<T>, Status>;
type DoGetStream = <FlightSql as FlightService>::DoGetStream;

/// A giamsat error reply as a gRPC status.
fn status(e: crate::error::ApiError) -> Status {
    let msg = e.1;
    match e.0.as_u16() {
        400 | 413 | 422 => Status::invalid_argument(msg),
        401 => Status::unauthenticated(msg),
        403 => Status::permission_denied(msg),
        404 => Status::not_found(msg),
        408 => Status::deadline_exceeded(msg),
        429 => Status::resource_exhausted(msg),
        503 => Status::unavailable(msg),
        _ => Status::internal(msg),
    }
}

/// The busy reply of the admission.
fn busy() -> Status {
    Status::resource_exhausted(
        "máy chủ đang bận hoặc mã truy cập này có quá nhiều truy vấn; thử lại sau",
    )
}

/// A request id for the log line of a failed query (the client sees it, not the detail,
/// when its token is restricted).
fn request_id() -> String {
    format!("fl-{:016x}", rand::random::<u64>())
}

/// What a prepared statement's handle and a statement's ticket carry: the statement and,
/// once bound, its parameters (a one-row Arrow IPC stream).
struct Handle {
    sql: String,
    params: Option<Vec<u8>>,
}

const HANDLE_MAGIC: &[u8; 4] = b"GSQ1";

impl Handle {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.sql.len());
        out.extend_from_slice(HANDLE_MAGIC);
        out.extend_from_slice(&(self.sql.len() as u32).to_le_bytes());
        out.extend_from_slice(self.sql.as_bytes());
        if let Some(p) = &self.params {
            out.extend_from_slice(p);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Handle, Status> {
        let bad = || Status::invalid_argument("mã câu lệnh (handle) không hợp lệ");
        let rest = bytes.strip_prefix(HANDLE_MAGIC).ok_or_else(bad)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (sql, params) = rest.split_at(len);
        Ok(Handle {
            sql: String::from_utf8(sql.to_vec()).map_err(|_| bad())?,
            params: (!params.is_empty()).then(|| params.to_vec()),
        })
    }

    /// The bound parameter values, in order.
    fn values(&self) -> Result<Option<Vec<ScalarValue>>, Status> {
        let Some(bytes) = &self.params else {
            return Ok(None);
        };
        let bad = |e: &dyn std::fmt::Display| {
            Status::invalid_argument(format!("tham số không hợp lệ: {e}"))
        };
        let reader = datafusion::arrow::ipc::reader::StreamReader::try_new(
            std::io::Cursor::new(bytes.as_slice()),
            None,
        )
        .map_err(|e| bad(&e))?;
        let mut batches = Vec::new();
        for b in reader {
            batches.push(b.map_err(|e| bad(&e))?);
        }
        let Some(batch) = batches.first() else {
            return Ok(Some(Vec::new()));
        };
        one_row(batch).map(Some)
    }
}

/// The values of the single row of a parameter batch.
fn one_row(batch: &RecordBatch) -> Result<Vec<ScalarValue>, Status> {
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "cần đúng một bộ tham số, nhận được {} bộ",
            batch.num_rows()
        )));
    }
    batch
        .columns()
        .iter()
        .map(|c| {
            ScalarValue::try_from_array(c, 0)
                .map_err(|e| Status::invalid_argument(format!("tham số không hợp lệ: {e}")))
        })
        .collect()
}

/// The IPC bytes of a schema, as Flight SQL sends schemas.
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// The answer of `GetSqlInfo`: what this server is and does.
fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "giamsat");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        // built from constants of the right types: it cannot fail
        b.build().unwrap_or_else(|_| {
            SqlInfoDataBuilder::new()
                .build()
                .unwrap_or_else(|_| unreachable!("an empty SqlInfoData builds"))
        })
    })
}

/// `schema` as the encoder sends it: a dictionary column as its values (the stream
/// carries them so, and a client checks the stream against the announced schema).
fn as_sent(schema: &Schema) -> Schema {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, values) => {
                Arc::new(f.as_ref().clone().with_data_type(values.as_ref().clone()))
            }
            _ => f.clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// A FlightInfo whose one endpoint's ticket is `ticket`.
fn info(schema: &Schema, ticket: Vec<u8>, descriptor: FlightDescriptor) -> Reply<FlightInfo> {
    let info = FlightInfo::new()
        .try_with_schema(&as_sent(schema))
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// One batch as a Flight stream.
fn once(schema: SchemaRef, batch: Result<RecordBatch, Status>) -> Reply<DoGetStream> {
    let batch = batch?;
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

fn arrow_status(e: datafusion::arrow::error::ArrowError) -> Status {
    Status::internal(e.to_string())
}

/// What the producer of a result sends to the reply stream.
enum Piece {
    Batch(RecordBatch),
    Fail(Status),
    Done,
}

impl FlightSql {
    /// The caller of a request: its token from `authorization` (Bearer, or Basic with
    /// the token as password), signed in as on the other doors.
    fn caller<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated("thiếu mã truy cập: gửi authorization: Bearer <mã>")
            })?;
        let token = token_of(header)?;
        self.sign_in(&token, req.remote_addr().map(|a| a.ip()))
    }

    fn sign_in(&self, token: &str, addr: Option<IpAddr>) -> Result<Principal, Status> {
        let state = &self.state;
        let limit = state.auth_config.failed_per_minute;
        if let Some(addr) = addr {
            if let Some(wait) = (limit > 0)
                .then(|| state.failed_logins.blocked(addr, limit))
                .flatten()
            {
                return Err(Status::unauthenticated(format!(
                    "quá nhiều lần đăng nhập sai; thử lại sau {wait} giây"
                )));
            }
        }
        let p = match crate::caller::principal_of(state, token) {
            Ok(p) => p,
            Err(e) => {
                if let Some(addr) = addr {
                    state.failed_logins.failed(addr);
                }
                return Err(Status::unauthenticated(e.1));
            }
        };
        if !matches!(p.role, Role::Admin | Role::Analyst) {
            return Err(Status::permission_denied(
                "chỉ mã truy cập vai trò analyst hoặc admin được dùng SQL",
            ));
        }
        Ok(p)
    }

    async fn session(&self, p: &Principal) -> Result<SessionContext, Status> {
        self.state
            .session_in(p, self.state.sql_env.clone())
            .await
            .map_err(status)
    }

    fn query_error(&self, p: &Principal, e: QueryError) -> Status {
        status(crate::sql::sql_error(
            &self.state,
            e,
            crate::caller::restricted(p),
            &request_id(),
        ))
    }

    fn time_limit(&self) -> Duration {
        Duration::from_secs_f64(self.state.sql.timeout_seconds.max(0.1))
    }

    fn timed_out(&self) -> Status {
        Status::deadline_exceeded(format!(
            "truy vấn vượt quá thời gian cho phép ({} giây) và đã bị dừng",
            self.state.sql.timeout_seconds
        ))
    }

    /// The schema and parameter types of `sql` for `p`, planned in a turn of the
    /// admission and within the time limit.
    async fn describe(&self, p: &Principal, sql: String) -> Result<guard::Described, Status> {
        let waiting = self
            .state
            .sql_gate
            .enqueue(&p.token_id)
            .map_err(|_| busy())?;
        let ctx = self.session(p).await?;
        let limits = self.state.sql.limits.clone();
        let work = async {
            let _turn = waiting.admit().await;
            guard::describe(&ctx, sql, limits).await
        };
        match tokio::time::timeout(self.time_limit(), work).await {
            Ok(r) => r.map_err(|e| self.query_error(p, e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Run the statement of `handle` for `p` and stream its rows.
    async fn run(&self, p: Principal, handle: Handle) -> Reply<DoGetStream> {
        let state = self.state.clone();
        let limit = self.time_limit();
        let started = Instant::now();
        let deadline = started + limit;
        let waiting = state.sql_gate.enqueue(&p.token_id).map_err(|_| busy())?;
        let ctx = self.session(&p).await?;
        let params = handle.values()?;
        let max_rows = state.sql.max_rows;
        let restricted = crate::caller::restricted(&p);
        let request = guard::Request {
            sql: handle.sql,
            limits: state.sql.limits.clone(),
            explain: if restricted {
                guard::Explain::PlanOnly
            } else {
                guard::Explain::Any
            },
            max_rows: Some(max_rows + 1),
            deadline: Some(deadline),
            params,
        };
        let (turn, planned) = match tokio::time::timeout(limit, async {
            let turn = waiting.admit().await;
            let planned = guard::plan(&ctx, request).await;
            (turn, planned)
        })
        .await
        {
            Ok((turn, planned)) => (turn, planned.map_err(|e| self.query_error(&p, e))?),
            Err(_) => return Err(self.timed_out()),
        };
        let schema = planned.plan.schema();
        let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(2);
        let this = self.clone();
        // the producer holds the turn until the result is sent, the client goes away or
        // the time limit passes (whichever comes first)
        tokio::spawn(async move {
            let _turn = turn;
            let left = limit.saturating_sub(started.elapsed());
            let produce = async {
                if planned.is_explain {
                    let batches = planned.collect().await?;
                    let batches = guard::redact_explain(&batches, &|t| this.state.scrub(t))?;
                    for b in batches {
                        if tx.send(Piece::Batch(b)).await.is_err() {
                            return Ok(());
                        }
                    }
                    let _ = tx.send(Piece::Done).await;
                    return Ok(());
                }
                let mut stream = planned.stream()?;
                let mut sent = 0usize;
                while let Some(b) = stream.next().await {
                    let b = b?;
                    let room = max_rows - sent;
                    if b.num_rows() > room {
                        let _ = tx.send(Piece::Batch(b.slice(0, room))).await;
                        let _ = tx
                            .send(Piece::Fail(Status::invalid_argument(format!(
                                "kết quả dài hơn {max_rows} dòng (max_rows): đã gửi {max_rows} \
                                 dòng đầu; thêm LIMIT hoặc thu hẹp truy vấn"
                            ))))
                            .await;
                        return Ok(());
                    }
                    sent += b.num_rows();
                    if tx.send(Piece::Batch(b)).await.is_err() {
                        // the client is gone: dropping the stream stops the work
                        return Ok(());
                    }
                }
                let _ = tx.send(Piece::Done).await;
                Ok::<_, QueryError>(())
            };
            let gone = tx.clone();
            let produce = std::panic::AssertUnwindSafe(produce).catch_unwind();
            tokio::select! {
                r = tokio::time::timeout(left, produce) => match r {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(e))) => {
                        let _ = tx.send(Piece::Fail(this.query_error(&p, e))).await;
                    }
                    Ok(Err(_panic)) => {
                        tracing::warn!("flight: analyst query panicked");
                        let _ = tx
                            .send(Piece::Fail(Status::invalid_argument(
                                "truy vấn không chạy được: dữ liệu trung gian vượt giới hạn \
                                 của máy truy vấn; hãy thu hẹp truy vấn",
                            )))
                            .await;
                    }
                    // the channel closes without `Done`: the reply ends with the time-out
                    Err(_) => {}
                },
                // the client cancelled or went away: dropping the work stops it, even
                // in the middle of a batch
                _ = gone.closed() => {}
            }
        });
        let timed_out = self.timed_out();
        let batches = futures::stream::unfold(Some(rx), move |rx| {
            let timed_out = timed_out.clone();
            async move {
                let mut rx = rx?;
                match rx.recv().await {
                    Some(Piece::Batch(b)) => Some((Ok(b), Some(rx))),
                    Some(Piece::Done) => None,
                    Some(Piece::Fail(s)) => Some((Err(FlightError::Tonic(Box::new(s))), None)),
                    None => Some((Err(FlightError::Tonic(Box::new(timed_out))), None)),
                }
            }
        });
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(stream)))
    }

    /// The FlightInfo of a metadata request (its ticket is the request itself), for a
    /// caller who may use SQL.
    fn metadata_info(
        &self,
        schema: SchemaRef,
        ticket: Vec<u8>,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.caller(&request)?;
        info(&schema, ticket, request.into_inner())
    }

    /// The tables of `p`'s scoped session: (catalog, schema, table, type, columns).
    async fn tables(
        &self,
        p: &Principal,
    ) -> Result<Vec<(String, String, String, &'static str, SchemaRef)>, Status> {
        let ctx = self.session(p).await?;
        let mut out = Vec::new();
        for catalog in ctx.catalog_names() {
            let Some(c) = ctx.catalog(&catalog) else {
                continue;
            };
            for schema in c.schema_names() {
                let Some(s) = c.schema(&schema) else {
                    continue;
                };
                for table in s.table_names() {
                    let t = s
                        .table(&table)
                        .await
                        .map_err(|e| Status::internal(e.to_string()))?;
                    if let Some(t) = t {
                        let kind = match t.table_type() {
                            TableType::Base => "TABLE",
                            TableType::View => "VIEW",
                            TableType::Temporary => "LOCAL TEMPORARY",
                        };
                        out.push((catalog.clone(), schema.clone(), table, kind, t.schema()));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The token of an `authorization` header: `Bearer <token>`, or `Basic` with the token
/// as password.
fn token_of(header: &str) -> Result<String, Status> {
    if let Some(t) = header.strip_prefix("Bearer ") {
        return Ok(t.trim().to_string());
    }
    if let Some(b) = header.strip_prefix("Basic ") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|_| Status::unauthenticated("authorization Basic không hợp lệ"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Status::unauthenticated("authorization Basic không hợp lệ"))?;
        let (_user, password) = text
            .split_once(':')
            .ok_or_else(|| Status::unauthenticated("authorization Basic không hợp lệ"))?;
        return Ok(password.to_string());
    }
    Err(Status::unauthenticated(
        "authorization phải là Bearer <mã truy cập> hoặc Basic (mật khẩu là mã truy cập)",
    ))
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Reply<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated("thiếu mã truy cập: mật khẩu (Basic) là mã truy cập")
            })?;
        let token = token_of(header)?;
        let p = self.sign_in(&token, request.remote_addr().map(|a| a.ip()))?;
        tracing::info!(token = %p.token_id, "flight: signed in");
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::unauthenticated("mã truy cập không hợp lệ"))?;
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.into_bytes().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        let p = self.caller(&request)?;
        let described = self.describe(&p, query.query.clone()).await?;
        let handle = Handle {
            sql: query.query,
            params: None,
        };
        let ticket = TicketStatementQuery {
            statement_handle: handle.encode().into(),
        };
        info(
            &described.schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        let p = self.caller(&request)?;
        let handle = Handle::decode(&cmd.prepared_statement_handle)?;
        let described = self.describe(&p, handle.sql.clone()).await?;
        let ticket = TicketStatementQuery {
            statement_handle: cmd.prepared_statement_handle,
        };
        info(
            &described.schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        let p = self.caller(&request)?;
        self.run(p, Handle::decode(&ticket.statement_handle)?).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        let p = self.caller(&request)?;
        self.run(p, Handle::decode(&query.prepared_statement_handle)?)
            .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let p = self.caller(&request)?;
        let described = self.describe(&p, query.query.clone()).await?;
        let params = Schema::new(
            described
                .params
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Field::new(
                        format!("${}", i + 1),
                        t.clone().unwrap_or(DataType::Null),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: Handle {
                sql: query.query,
                params: None,
            }
            .encode()
            .into(),
            dataset_schema: schema_bytes(&as_sent(&described.schema))?,
            parameter_schema: schema_bytes(&params)?,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.caller(&request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?;
        let stream = request.into_inner().map_err(FlightError::from);
        let mut batches = FlightRecordBatchStream::new_from_flight_data(stream);
        let mut rows = Vec::new();
        while let Some(b) = batches.next().await {
            let b =
                b.map_err(|e| Status::invalid_argument(format!("tham số không hợp lệ: {e}")))?;
            if b.num_rows() > 0 {
                rows.push(b);
            }
        }
        let params = match rows.as_slice() {
            [] => None,
            [b] => {
                one_row(b)?;
                let mut buf = Vec::new();
                let mut w =
                    datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut buf, &b.schema())
                        .map_err(arrow_status)?;
                w.write(b).map_err(arrow_status)?;
                w.finish().map_err(arrow_status)?;
                drop(w);
                Some(buf)
            }
            _ => {
                return Err(Status::invalid_argument(
                    "cần đúng một bộ tham số cho một lần chạy",
                ))
            }
        };
        let bound = Handle {
            sql: handle.sql,
            params,
        };
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // nothing is kept on the server
        self.caller(&request)?;
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.metadata_info(
            query.into_builder().schema(),
            query.as_any().encode_to_vec(),
            request,
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        let p = self.caller(&request)?;
        let ctx = self.session(&p).await?;
        let mut b = query.into_builder();
        for c in ctx.catalog_names() {
            b.append(c);
        }
        once(b.schema(), b.build().map_err(Status::from))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.metadata_info(
            query.clone().into_builder().schema(),
            query.as_any().encode_to_vec(),
            request,
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        let p = self.caller(&request)?;
        let ctx = self.session(&p).await?;
        let mut b = query.into_builder();
        for c in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&c) {
                for s in catalog.schema_names() {
                    b.append(&c, s);
                }
            }
        }
        once(b.schema(), b.build().map_err(Status::from))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.metadata_info(
            query.clone().into_builder().schema(),
            query.as_any().encode_to_vec(),
            request,
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        let p = self.caller(&request)?;
        let tables = self.tables(&p).await?;
        let mut b = query.into_builder();
        for (catalog, schema, table, kind, columns) in tables {
            b.append(catalog, schema, table, kind, &columns)
                .map_err(Status::from)?;
        }
        once(b.schema(), b.build().map_err(Status::from))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.metadata_info(
            query.into_builder().schema(),
            query.as_any().encode_to_vec(),
            request,
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        self.caller(&request)?;
        let mut b = query.into_builder();
        for t in ["TABLE", "VIEW"] {
            b.append(t);
        }
        once(b.schema(), b.build().map_err(Status::from))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Reply<FlightInfo> {
        self.metadata_info(
            query.clone().into_builder(sql_info()).schema(),
            query.as_any().encode_to_vec(),
            request,
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Reply<DoGetStream> {
        self.caller(&request)?;
        let b = query.into_builder(sql_info());
        once(b.schema(), b.build().map_err(Status::from))
    }

    async fn do_get_fallback(&self, request: Request<Ticket>, message: Any) -> Reply<DoGetStream> {
        self.caller(&request)?;
        Err(Status::unimplemented(format!(
            "yêu cầu Flight SQL chưa hỗ trợ: {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
