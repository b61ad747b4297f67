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
//! ```

use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use giamsat_warehouse::refdata;

/// A role (CONTRACT §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Analyst,
    Viewer,
    Ingest,
}

impl Role {
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
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub role: Role,
    pub scope: Scope,
    pub sources: Vec<String>,
}

impl From<&TokenEntry> for Principal {
    fn from(t: &TokenEntry) -> Self {
        Principal {
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
    let f: TokenFile = toml::from_str(text)
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
) -> Result<String, AuthError> {
    let token = new_token();
    let entry = TokenEntry {
        hash: hash_token(&token),
        role,
        provinces,
        communes,
        sources,
        label,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    validate(&entry)?;
    let mut all = load_tokens(data)?;
    all.push(entry);
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
    Ok(token)
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
            String::new()
        )
        .is_err());
        assert!(add_token(&dir, Role::Ingest, vec![], vec![], vec![], String::new()).is_err());
        assert!(add_token(
            &dir,
            Role::Admin,
            vec!["31".into()],
            vec![],
            vec![],
            String::new()
        )
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
