//! The HTTP error replies: one JSON body `{"error": "..."}` and the statuses the
//! server answers with (400, 404, 408, 429, 500, 503). The status of an error of the
//! crates below is [`status_of`] its [`ErrorKind`], and every error reply names its kind
//! in the `x-giamsat-error-kind` header ([`kind_of_status`]).

use crate::admission;
use axum::http::header;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Json;
use giamsat_queries::{ErrorKind, QueryError};
use serde::Serialize;
use utoipa::ToSchema;

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
        let kind = HeaderValue::from_static(kind_of_status(self.0));
        let mut r = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        r.headers_mut().insert("x-giamsat-error-kind", kind);
        r
    }
}

/// The HTTP status of an error of each kind: the one mapping from [`ErrorKind`].
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
        // a wrong configuration is the operator's, not the caller's
        ErrorKind::Config | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The kind an error reply names in `x-giamsat-error-kind`: an [`ErrorKind`]'s name, or
/// `unauthorized` / `forbidden` for the replies of the token check.
pub fn kind_of_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::BadInput.as_str(),
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => ErrorKind::NotFound.as_str(),
        StatusCode::REQUEST_TIMEOUT => ErrorKind::Timeout.as_str(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => ErrorKind::Busy.as_str(),
        _ => ErrorKind::Internal.as_str(),
    }
}

impl ApiError {
    /// The reply of an error of `kind` whose message is `message` (a 500's message goes
    /// to the log only).
    pub fn of(kind: ErrorKind, message: impl std::fmt::Display) -> ApiError {
        match kind {
            ErrorKind::BadInput | ErrorKind::NotFound | ErrorKind::Timeout => {
                ApiError(status_of(kind), message.to_string())
            }
            ErrorKind::Busy => {
                tracing::warn!(error = %message, "query memory pool exhausted");
                ApiError(
                    status_of(kind),
                    "máy chủ đang bận (hết bộ nhớ dành cho truy vấn); vui lòng thử lại sau ít giây"
                        .into(),
                )
            }
            ErrorKind::Config | ErrorKind::Internal => internal(message),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        // the user's kinds display their message as it is
        ApiError::of(e.kind(), e)
    }
}

/// A 500 reply: the cause goes to the log (with the request id), not to the client.
pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError(
        status_of(ErrorKind::Internal),
        "lỗi nội bộ; xem nhật ký máy chủ theo mã yêu cầu".into(),
    )
}

pub(crate) fn bad(m: impl Into<String>) -> ApiError {
    ApiError(status_of(ErrorKind::BadInput), m.into())
}

/// The 429 reply of a request refused because every waiting place is taken.
pub(crate) fn busy(refused: admission::Refused, timeout_seconds: f64) -> Response {
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

/// The 408 reply of work stopped at its time limit.
pub(crate) fn timed_out(seconds: f64) -> ApiError {
    ApiError::of(
        ErrorKind::Timeout,
        format!("truy vấn vượt quá thời gian cho phép ({seconds} giây) và đã bị dừng"),
    )
}
