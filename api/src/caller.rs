//! Who is calling: the bearer token, its principal, the roles an endpoint accepts,
//! whether the caller's territory is restricted, and failed sign-ins per address.

use crate::auth;
use crate::auth::Principal;
use crate::auth::Role;
use crate::error::bad;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::header;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use std::collections::HashMap;
use std::time::Duration;
use std::time::Instant;

/// Failed sign-ins per client address over the last minute.
#[derive(Default)]
pub(crate) struct FailedLogins {
    pub(crate) by_addr:
        std::sync::Mutex<HashMap<std::net::IpAddr, std::collections::VecDeque<Instant>>>,
}

impl FailedLogins {
    const WINDOW: Duration = Duration::from_secs(60);
    /// Addresses remembered at most (a flood from many addresses resets the memory).
    const MAX_ADDRS: usize = 100_000;

    /// Seconds until `addr` may try again, when it is over `limit`.
    pub(crate) fn blocked(&self, addr: std::net::IpAddr, limit: usize) -> Option<u64> {
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

    pub(crate) fn failed(&self, addr: std::net::IpAddr) {
        if let Ok(mut m) = self.by_addr.lock() {
            if m.len() >= Self::MAX_ADDRS && !m.contains_key(&addr) {
                m.clear();
            }
            m.entry(addr).or_default().push_back(Instant::now());
        }
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "thiếu mã truy cập (Authorization: Bearer ...)".into(),
        )
    })?;
    principal_of(state, token)
}

/// The caller holding `token`, if the token is known and active.
pub(crate) fn principal_of(state: &AppState, token: &str) -> Result<Principal, ApiError> {
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

pub(crate) fn require(p: &Principal, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "vai trò của mã truy cập không được dùng chức năng này".into(),
        ))
    }
}

/// The caller (dashboard and analyst roles) and its parsed query.
pub(crate) fn reader<Q>(
    state: &AppState,
    headers: &HeaderMap,
    q: Result<Query<Q>, QueryRejection>,
) -> Result<(Principal, Q), ApiError> {
    let p = principal(state, headers)?;
    require(&p, &[Role::Admin, Role::Analyst, Role::Viewer])?;
    let Query(q) = q.map_err(|e| bad(format!("tham số không hợp lệ: {e}")))?;
    Ok((p, q))
}

/// Whether `p` sees only part of the country (its queries run on scoped tables).
pub(crate) fn restricted(p: &Principal) -> bool {
    p.role != Role::Admin && p.scope.is_restricted()
}
