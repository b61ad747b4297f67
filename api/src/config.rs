//! Configuration of the server (`giamsat serve --config F`): `[sql]`, `[cache]`, `[auth]`,
//! the doors and the tokens.

use crate::auth::TokenEntry;
use crate::flight;
use crate::pg;
use serde::Deserialize;
use serde::Serialize;

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
    /// Keys of `[sql]` that neither the fields above nor the statement limits know
    /// (`deny_unknown_fields` does not work beside `flatten`): refused by
    /// [`ServerConfig::from_toml`].
    #[serde(flatten, skip_serializing)]
    pub unknown: std::collections::BTreeMap<String, toml::Value>,
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
            unknown: Default::default(),
        }
    }
}

/// The report cache (`[cache]` in the server configuration): answers of the report
/// endpoints, per URL and territorial scope, dropped after each commit of the server and
/// after `ttl_seconds` (alerts and the overview depend on "now").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

/// `[auth]` of the server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

/// The server configuration file (`giamsat serve --config F`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Read the configuration file `path`.
    pub fn from_file(path: &std::path::Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("không đọc được {}: {e}", path.display()))?;
        ServerConfig::parse(&path.display().to_string(), &text)
    }

    /// Parse TOML text (of a file named `server.toml` in messages).
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        ServerConfig::parse("server.toml", text)
    }

    /// Parse the text of the file `file`: a key no section knows is refused with the
    /// file and the line.
    fn parse(file: &str, text: &str) -> Result<ServerConfig, String> {
        let c: ServerConfig = giamsat_warehouse::config::parse_toml(file, text)
            .map_err(|e| format!("cấu hình máy chủ sai: {e}"))?;
        if let Some(key) = c.sql.unknown.keys().next() {
            let line = line_of_key(text, "sql", key)
                .map(|n| format!(", dòng {n}"))
                .unwrap_or_default();
            return Err(format!(
                "cấu hình máy chủ sai: {file}{line}: unknown field `{key}` in [sql]"
            ));
        }
        Ok(c)
    }
}

/// The line (from 1) of `key = …` inside the table `[section]` of TOML `text`.
fn line_of_key(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
        } else if inside
            && t.split('=')
                .next()
                .is_some_and(|k| k.trim().trim_matches('"') == key)
        {
            return Some(i + 1);
        }
    }
    None
}
