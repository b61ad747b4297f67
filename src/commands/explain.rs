//! `giamsat explain`: one dossier, its events from every source and how its facts were
//! reached.

use std::path::Path;

use clap::Args;

use crate::fail::{bad, classify_query};
use crate::open::{emit, open_env};

// the options of `explain`
#[derive(Args)]
pub struct ExplainArgs {
    pub dossier_id: String,
    /// Judge the class at the end of this day (YYYY-MM-DD), as a period ending then.
    #[arg(long)]
    pub as_of: Option<String>,
    /// `text` (default) or `json` (the body of GET /api/v1/dossiers/{id}).
    #[arg(long, default_value = "text")]
    pub format: String,
}

pub async fn run(data: &Path, args: ExplainArgs) -> anyhow::Result<()> {
    let ExplainArgs {
        dossier_id,
        as_of,
        format,
    } = args;
    if !["text", "json"].contains(&format.as_str()) {
        return Err(bad(format!("--format phải là text hoặc json: {format:?}")));
    }
    let q = giamsat_api::reports::DossierQuery { as_of };
    let as_of = giamsat_api::reports::dossier_as_of(&q).map_err(classify_query)?;
    let (wh, env) = open_env(data)?;
    let ctx = giamsat_queries::session(&wh)
        .await
        .map_err(classify_query)?;
    if format == "json" {
        let r = giamsat_api::reports::dossier_json(&ctx, &env, &dossier_id, as_of)
            .await
            .map_err(classify_query)?;
        emit(r, None)?;
    } else {
        let e = giamsat_api::reports::dossier(&ctx, &env, &dossier_id, as_of)
            .await
            .map_err(classify_query)?;
        print!("{}", giamsat_queries::explain::to_text(&e));
    }

    Ok(())
}
