//! Tokens, roles and scopes.
//!
//! Tokens are stored only as SHA-256 hashes: in `<data>/tokens.toml` (written by
//! `giamsat token add`) and/or in the server configuration file (`serve --config F`),
//! as `[[token]]` tables:
//!
//! ```toml
//! [[token]]
//! hash = "9f86d08188…"          # hex SHA-256 of the token
//! role = "viewer"               # admin | analyst | viewer | ingest
//! provinces = ["31"]            # territorial scope (viewer, analyst); empty = everything
//! communes = ["11311"]
//! sources = []                  # ingest tokens: the source codes they may push
//! label = "Văn phòng UBND phường Hồng Bàng"
//! expires_at = "2027-01-01T00:00:00+07:00"   # optional: refused from this instant on
//! revoked_at = "2026-12-05T10:00:00+00:00"   # set by `giamsat token revoke`
//! ```
//!
//! A running server re-reads `<data>/tokens.toml` when it changes (checked at most once
//! a second, on the next request), so a revocation takes effect within about a second.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use giamsat_warehouse::refdata;

/// A role (docs/contract.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Analyst,
    Viewer,
    Ingest,
}

impl Role {
    /// The role's name, as written in `tokens.toml` and the access log.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Parse a role name.
    pub fn parse(s: &str) -> Result<Role, AuthError> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "viewer" => Ok(Role::Viewer),
            "ingest" => Ok(Role::Ingest),
            o => Err(AuthError::Invalid(format!(
                "vai trò không hợp lệ: {o:?} (admin|analyst|viewer|ingest)"
            ))),
        }
    }
}

/// Territory a token may see. Empty lists = no territorial restriction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub provinces: Vec<String>,
    pub communes: Vec<String>,
}

impl Scope {
    /// Whether the scope restricts anything.
    pub fn is_restricted(&self) -> bool {
        !self.provinces.is_empty() || !self.communes.is_empty()
    }
}

/// One stored token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Hex SHA-256 of the token.
    pub hash: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provinces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_at: String,
    /// RFC 3339; the token is refused from this instant on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
    /// RFC 3339; set by `giamsat token revoke`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revoked_at: String,
}

/// Whether a stored token may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenEntry {
    /// A short public id (the first 12 hex digits of the hash): safe to print and to
    /// pass to `token revoke`.
    pub fn id(&self) -> &str {
        self.hash.get(..12).unwrap_or(&self.hash)
    }

    /// Active, expired or revoked at `now`. An expiry that does not parse counts as
    /// expired: a token is never accepted on a date nobody can read.
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        if !self.revoked_at.is_empty() {
            return TokenStatus::Revoked;
        }
        if self.expires_at.is_empty() {
            return TokenStatus::Active;
        }
        match DateTime::parse_from_rfc3339(&self.expires_at) {
            Ok(t) if now < t => TokenStatus::Active,
            _ => TokenStatus::Expired,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's id (the start of its hash), the key of per-token limits.
    pub token_id: String,
    pub role: Role,
    pub scope: Scope,
    pub sources: Vec<String>,
}

impl From<&TokenEntry> for Principal {
    fn from(t: &TokenEntry) -> Self {
        Principal {
            token_id: t.id().to_string(),
            role: t.role,
            scope: Scope {
                provinces: t.provinces.clone(),
                communes: t.communes.clone(),
            },
            sources: t.sources.clone(),
        }
    }
}

/// Errors of token management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("không đọc/ghi được {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenEntry>,
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new random token (256 bits, hex).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("gs_{}", hex::encode(bytes))
}

/// Where `token add` stores tokens.
pub fn tokens_path(data: &Path) -> PathBuf {
    data.join("tokens.toml")
}

/// Parse `[[token]]` tables from TOML text.
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>, AuthError> {
    let f: TokenFile = giamsat_warehouse::config::parse_toml("tokens.toml", text)
        .map_err(|e| AuthError::Invalid(format!("tệp mã truy cập sai: {e}")))?;
    Ok(f.tokens)
}

/// Tokens stored under the data directory (none if the file does not exist).
pub fn load_tokens(data: &Path) -> Result<Vec<TokenEntry>, AuthError> {
    let p = tokens_path(data);
    match std::fs::read_to_string(&p) {
        Ok(t) => parse_tokens(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(AuthError::Io { path: p, source }),
    }
}

/// Check a scope against the territory list and the role.
pub fn validate(entry: &TokenEntry) -> Result<(), AuthError> {
    let provinces = refdata::provinces().map_err(|e| AuthError::Invalid(e.to_string()))?;
    let communes = refdata::communes().map_err(|e| AuthError::Invalid(e.to_string()))?;
    for p in &entry.provinces {
        if !provinces.iter().any(|x| &x.province_code == p) {
            return Err(AuthError::Invalid(format!("mã tỉnh không tồn tại: {p:?}")));
        }
    }
    for c in &entry.communes {
        if !communes.iter().any(|x| &x.commune_code == c) {
            return Err(AuthError::Invalid(format!("mã xã không tồn tại: {c:?}")));
        }
    }
    for s in &entry.sources {
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(AuthError::Invalid(format!("mã nguồn không hợp lệ: {s:?}")));
        }
    }
    match entry.role {
        Role::Ingest if entry.sources.is_empty() => Err(AuthError::Invalid(
            "mã truy cập ingest cần ít nhất một --source".into(),
        )),
        Role::Ingest if !entry.provinces.is_empty() || !entry.communes.is_empty() => Err(
            AuthError::Invalid("mã truy cập ingest chỉ giới hạn theo --source".into()),
        ),
        Role::Admin
            if !entry.provinces.is_empty()
                || !entry.communes.is_empty()
                || !entry.sources.is_empty() =>
        {
            Err(AuthError::Invalid("admin không có phạm vi".into()))
        }
        Role::Viewer | Role::Analyst if !entry.sources.is_empty() => Err(AuthError::Invalid(
            "--source chỉ dùng cho vai trò ingest".into(),
        )),
        _ => Ok(()),
    }
}

/// Create a token, store its hash under the data directory, and return the token.
pub fn add_token(
    data: &Path,
    role: Role,
    provinces: Vec<String>,
    communes: Vec<String>,
    sources: Vec<String>,
    label: String,
    expires_at: Option<DateTime<Utc>>,
) -> Result<String, AuthError> {
    let token = new_token();
    let now = Utc::now();
    if expires_at.is_some_and(|t| t <= now) {
        return Err(AuthError::Invalid("thời hạn của mã truy cập đã qua".into()));
    }
    let entry = TokenEntry {
        hash: hash_token(&token),
        role,
        provinces,
        communes,
        sources,
        label,
        created_at: now.to_rfc3339(),
        expires_at: expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        revoked_at: String::new(),
    };
    validate(&entry)?;
    let mut all = load_tokens(data)?;
    all.push(entry);
    store_tokens(data, all)?;
    Ok(token)
}

/// Revoke, at `now`, the token whose id is `label_or_id`, or else every active token
/// with that label; the revoked entries (none: an error naming what was looked for).
pub fn revoke_tokens(
    data: &Path,
    label_or_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<TokenEntry>, AuthError> {
    let mut all = load_tokens(data)?;
    let by_id = label_or_id.len() >= 6
        && all
            .iter()
            .any(|t| t.id() == label_or_id || t.hash == label_or_id);
    let mut revoked = Vec::new();
    for t in all.iter_mut() {
        let hit = if by_id {
            t.id() == label_or_id || t.hash == label_or_id
        } else {
            !t.label.is_empty() && t.label == label_or_id
        };
        if hit && t.revoked_at.is_empty() {
            t.revoked_at = now.to_rfc3339();
            revoked.push(t.clone());
        }
    }
    if revoked.is_empty() {
        return Err(AuthError::Invalid(format!(
            "không có mã truy cập còn hiệu lực với mã hoặc nhãn {label_or_id:?}"
        )));
    }
    store_tokens(data, all)?;
    Ok(revoked)
}

/// Write `<data>/tokens.toml` atomically (a temporary file renamed over it).
fn store_tokens(data: &Path, all: Vec<TokenEntry>) -> Result<(), AuthError> {
    let text = toml::to_string(&TokenFile { tokens: all })
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    let p = tokens_path(data);
    let io = |source| AuthError::Io {
        path: p.clone(),
        source,
    };
    std::fs::create_dir_all(data).map_err(io)?;
    let tmp = p.with_extension("toml.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, &p).map_err(io)?;
    Ok(())
}

/// The tokens a server accepts: those of its configuration (fixed for its life) and
/// those of `<data>/tokens.toml`, re-read when the file changes.
pub struct TokenStore {
    fixed: Vec<TokenEntry>,
    data: PathBuf,
    state: RwLock<StoreState>,
}

struct StoreState {
    checked: Instant,
    /// Modification time and length of the file last read (None: no file).
    seen: Option<(SystemTime, u64)>,
    by_hash: HashMap<String, TokenEntry>,
}

/// How often the file's metadata is looked at.
const RECHECK: Duration = Duration::from_secs(1);

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl TokenStore {
    /// The configured tokens plus those of `<data>/tokens.toml`.
    pub fn new(fixed: Vec<TokenEntry>, data: &Path) -> Result<TokenStore, AuthError> {
        let seen = file_stamp(&tokens_path(data));
        let by_hash = Self::merge(&fixed, load_tokens(data)?);
        Ok(TokenStore {
            fixed,
            data: data.to_path_buf(),
            state: RwLock::new(StoreState {
                checked: Instant::now(),
                seen,
                by_hash,
            }),
        })
    }

    fn merge(fixed: &[TokenEntry], file: Vec<TokenEntry>) -> HashMap<String, TokenEntry> {
        // a token revoked in the file stays revoked even if the configuration lists it
        let mut m: HashMap<String, TokenEntry> =
            fixed.iter().map(|t| (t.hash.clone(), t.clone())).collect();
        for t in file {
            let keep_fixed = m
                .get(&t.hash)
                .is_some_and(|f| t.revoked_at.is_empty() && !f.revoked_at.is_empty());
            if !keep_fixed {
                m.insert(t.hash.clone(), t);
            }
        }
        m
    }

    /// Re-read the file if it changed since the last look (at most once a second). A
    /// file that does not parse keeps the tokens as they were (and says so in the log).
    fn refresh(&self) {
        let due = self
            .state
            .read()
            .map(|s| s.checked.elapsed() >= RECHECK)
            .unwrap_or(true);
        if !due {
            return;
        }
        let Ok(mut s) = self.state.write() else {
            return;
        };
        if s.checked.elapsed() < RECHECK {
            return;
        }
        s.checked = Instant::now();
        let stamp = file_stamp(&tokens_path(&self.data));
        if stamp == s.seen {
            return;
        }
        match load_tokens(&self.data) {
            Ok(file) => {
                s.by_hash = Self::merge(&self.fixed, file);
                s.seen = stamp;
                tracing::info!(tokens = s.by_hash.len(), "tokens re-read");
            }
            Err(e) => {
                tracing::warn!(error = %e, "tokens.toml not re-read; keeping the tokens as they were")
            }
        }
    }

    /// The entry of a presented token (any status), after a refresh if one is due.
    pub fn get(&self, token: &str) -> Option<TokenEntry> {
        self.refresh();
        let h = hash_token(token);
        self.state.read().ok()?.by_hash.get(&h).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_load_and_validate() {
        let dir = std::env::temp_dir().join(format!("giamsat-auth-{}", std::process::id()));
        let t = add_token(
            &dir,
            Role::Viewer,
            vec![],
            vec!["11311".into()],
            vec![],
            "x".into(),
            None,
        )
        .expect("add");
        let all = load_tokens(&dir).expect("load");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].hash, hash_token(&t));
        assert!(
            !std::fs::read_to_string(tokens_path(&dir))
                .expect("file")
                .contains(&t),
            "never stored in clear"
        );
        assert!(add_token(
            &dir,
            Role::Viewer,
            vec![],
            vec!["99999".into()],
            vec![],
            String::new(),
            None,
        )
        .is_err());
        assert!(add_token(
            &dir,
            Role::Ingest,
            vec![],
            vec![],
            vec![],
            String::new(),
            None
        )
        .is_err());
        assert!(add_token(
            &dir,
            Role::Admin,
            vec!["31".into()],
            vec![],
            vec![],
            String::new(),
            None,
        )
        .is_err());
        // an expiry already past is refused; revoke by label, then by id
        let past = Utc::now() - chrono::Duration::seconds(1);
        assert!(add_token(
            &dir,
            Role::Viewer,
            vec![],
            vec![],
            vec![],
            "y".into(),
            Some(past)
        )
        .is_err());
        let soon = Utc::now() + chrono::Duration::hours(1);
        let t2 = add_token(
            &dir,
            Role::Viewer,
            vec![],
            vec![],
            vec![],
            "y".into(),
            Some(soon),
        )
        .expect("add expiring");
        let all = load_tokens(&dir).expect("load");
        let e2 = all
            .iter()
            .find(|e| e.hash == hash_token(&t2))
            .expect("entry");
        assert_eq!(e2.status(Utc::now()), TokenStatus::Active);
        assert_eq!(e2.status(soon), TokenStatus::Expired);
        let r = revoke_tokens(&dir, "x", Utc::now()).expect("revoke by label");
        assert_eq!(r.len(), 1);
        assert!(
            revoke_tokens(&dir, "x", Utc::now()).is_err(),
            "already revoked"
        );
        let r = revoke_tokens(&dir, e2.id(), Utc::now()).expect("revoke by id");
        assert_eq!(r[0].hash, e2.hash);
        assert!(load_tokens(&dir)
            .expect("load")
            .iter()
            .all(|e| e.status(Utc::now()) == TokenStatus::Revoked));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
