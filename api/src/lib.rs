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
mod cache;
mod caller;
pub mod config;
pub mod error;
mod export_handlers;
pub mod exports;
pub mod flight;
pub mod form;
pub mod openapi;
mod pages;
pub mod pg;
mod pg_rewrite;
mod push;
mod report_handlers;
pub mod reports;
mod router;
mod run;
mod sql;
pub mod state;
pub mod xlsx;

pub use config::{AuthConfig, CacheConfig, ServerConfig, SqlConfig};
pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use router::{router, serve};
pub use state::AppState;
