//! `giamsat token`: add, list and revoke access tokens (stored hashed under --data).

use std::path::Path;

use clap::Subcommand;

use crate::fail::bad;

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token; it is printed once and stored only as a hash.
    Add {
        #[arg(long)]
        role: String,
        #[arg(long)]
        province: Vec<String>,
        #[arg(long)]
        commune: Vec<String>,
        #[arg(long)]
        source: Vec<String>,
        /// Who the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Refused from then on: a local date (valid through that day, Vietnam time) or
        /// an RFC 3339 instant.
        #[arg(long)]
        expires: Option<String>,
    },
    /// The stored tokens: id, role, scope, label, dates and status (never the token).
    List {
        #[arg(long, default_value = "tsv")]
        format: String,
    },
    /// Revoke the token with this id, or every active token with this label; a running
    /// server refuses it within about a second.
    Revoke { label_or_id: String },
}

pub fn run(data: &Path, cmd: TokenCmd) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Add {
            role,
            province,
            commune,
            source,
            label,
            expires,
        } => {
            let role = giamsat_api::auth::Role::parse(&role).map_err(|e| bad(e.to_string()))?;
            let expires = expires.as_deref().map(expiry).transpose()?;
            let t =
                giamsat_api::auth::add_token(data, role, province, commune, source, label, expires)
                    .map_err(|e| bad(e.to_string()))?;
            println!("{t}");
        }
        TokenCmd::List { format } => {
            let now = chrono::Utc::now();
            let all = giamsat_api::auth::load_tokens(data).map_err(|e| bad(e.to_string()))?;
            let rows: Vec<serde_json::Value> = all
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "id": t.id(),
                        "role": t.role,
                        "provinces": t.provinces,
                        "communes": t.communes,
                        "sources": t.sources,
                        "label": t.label,
                        "created_at": t.created_at,
                        "expires_at": t.expires_at,
                        "revoked_at": t.revoked_at,
                        "status": t.status(now),
                    })
                })
                .collect();
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string(&rows)?),
                "tsv" => {
                    println!("id\trole\tscope\tlabel\tcreated_at\texpires_at\tstatus");
                    for (t, r) in all.iter().zip(&rows) {
                        let scope = [
                            t.provinces.join(","),
                            t.communes.join(","),
                            t.sources.join(","),
                        ]
                        .into_iter()
                        .filter(|x| !x.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                            t.id(),
                            r["role"].as_str().unwrap_or_default(),
                            scope,
                            t.label,
                            t.created_at,
                            t.expires_at,
                            r["status"].as_str().unwrap_or_default()
                        );
                    }
                }
                other => return Err(bad(format!("--format phải là tsv hoặc json: {other}"))),
            }
        }
        TokenCmd::Revoke { label_or_id } => {
            let revoked = giamsat_api::auth::revoke_tokens(data, &label_or_id, chrono::Utc::now())
                .map_err(|e| bad(e.to_string()))?;
            for t in revoked {
                println!("{}\t{}\t{}", t.id(), t.label, t.revoked_at);
            }
        }
    }
    Ok(())
}

/// `--expires`: a local date (valid through that day in Vietnam) or an RFC 3339 instant.
fn expiry(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        bad(format!(
            "--expires: ngày YYYY-MM-DD hoặc thời điểm RFC 3339, không phải {s:?}"
        ))
    })?;
    // the start of the next local day (UTC+7, no daylight saving)
    let next = d
        .succ_opt()
        .and_then(|n| n.and_hms_opt(0, 0, 0))
        .ok_or_else(|| bad(format!("--expires: ngày không hợp lệ {s:?}")))?;
    Ok(chrono::DateTime::from_naive_utc_and_offset(
        next - chrono::Duration::hours(7),
        chrono::Utc,
    ))
}
