//! Analyst SQL over HTTP: `POST /api/v1/sql`, its result formats and its errors.

use crate::access;
use crate::auth::Role;
use crate::caller::principal;
use crate::caller::require;
use crate::caller::restricted;
use crate::error::bad;
use crate::error::busy;
use crate::error::timed_out;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::openapi::SqlFormat;
use crate::router::RequestId;
use crate::run::on_query_rt;
use crate::run::Panic;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::extract::State;
use axum::http::header;
use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Json;
use datafusion::arrow::array::RecordBatch;
use giamsat_queries::QueryError;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use utoipa::IntoParams;
use utoipa::ToSchema;

/// Body of `POST /api/v1/sql`.
#[derive(Deserialize, ToSchema)]
pub struct SqlBody {
    /// One read-only SQL query over the tables of docs/contract.md §6.
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

pub(crate) fn encode(
    batches: &[RecordBatch],
    format: &str,
) -> Result<(&'static str, Vec<u8>), String> {
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
pub(crate) async fn sql_handler(
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

/// The reply to a failed analyst query. Limits and planning errors (which come from the
/// statement and the schema alone) are told as they are. An error met while running
/// may quote a value of a row; a restricted caller gets a generic message with the
/// request id, and the detail goes to the log.
pub(crate) fn sql_error(state: &AppState, e: QueryError, restricted: bool, rid: &str) -> ApiError {
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
