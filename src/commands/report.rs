//! `giamsat report …`: each report through the same code path as its HTTP endpoint.

use giamsat_api::reports::Report;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::fail::{bad, classify_query};
use crate::open::{binary_format, emit, open_env};

#[derive(Subcommand)]
pub enum ReportCmd {
    /// Biểu 06: dossiers received, ended, in progress, by field/agency/commune/procedure.
    Bieu06 {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        commune: Option<String>,
        #[arg(long = "group-by", default_value = "field")]
        group_by: String,
        /// csv, json, xlsx, or the official form: form-xlsx, pdf (these need -o)
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Decision 766 index: six groups and the total, every criterion with its counts.
    #[command(name = "766")]
    Index766 {
        /// 2026-Q1 (official quarter), 2026-03, 2026-H1, 2026, 2026-CQ1, FROM..TO
        #[arg(long)]
        period: String,
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        commune: Option<String>,
        #[arg(long)]
        agency: Option<String>,
        /// One index per province, commune or agency.
        #[arg(long = "group-by")]
        group_by: Option<String>,
        /// json, csv, xlsx, or the official form: form-xlsx, pdf (these need -o)
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Overdue and due-soon dossiers now (or at --as-of), "chưa đồng bộ" when the
    /// dossier's systems are silent.
    Overdue(AlertsArgs),
    /// Reconciliation between source systems for the same dossier.
    Reconciliation(ReconArgs),
    /// Sync health of every source system.
    Sources {
        #[arg(long = "as-of")]
        as_of: Option<String>,
        #[arg(long = "stale-after-hours")]
        stale_after_hours: Option<String>,
    },
    /// Data-quality report.
    #[command(name = "data-quality")]
    DataQuality {
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        commune: Option<String>,
        #[arg(long)]
        limit: Option<String>,
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// On-time rate and counts per group, for a period or a date range.
    #[command(name = "on-time")]
    OnTime {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        period: Option<String>,
        /// field, agency, commune, procedure, province, procedure_level, channel, source, non_territorial
        #[arg(long = "group-by")]
        group_by: Option<String>,
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        commune: Option<String>,
        #[arg(long)]
        agency: Option<String>,
        #[arg(long)]
        field: Option<String>,
        #[arg(long)]
        procedure: Option<String>,
        #[arg(long = "procedure-level")]
        procedure_level: Option<String>,
        #[arg(long = "non-territorial")]
        non_territorial: Option<String>,
        /// month or quarter
        #[arg(long)]
        series: Option<String>,
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

/// Options of `report overdue` (the HTTP `GET /api/v1/alerts` parameters).
#[derive(clap::Args)]
pub struct AlertsArgs {
    /// RFC 3339, local date-time or date; default now
    #[arg(long = "as-of")]
    as_of: Option<String>,
    #[arg(long = "due-within-hours")]
    due_within_hours: Option<String>,
    #[arg(long = "stale-after-hours")]
    stale_after_hours: Option<String>,
    #[arg(long)]
    province: Option<String>,
    #[arg(long)]
    commune: Option<String>,
    #[arg(long)]
    limit: Option<String>,
    #[arg(long, default_value = "json")]
    format: String,
}

/// Options of `report reconciliation` (the HTTP `GET /api/v1/reconciliation` parameters).
#[derive(clap::Args)]
pub struct ReconArgs {
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    #[arg(long = "tolerance-seconds")]
    tolerance_seconds: Option<String>,
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    limit: Option<String>,
    /// The next page of items: `next_cursor` of the previous answer.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, default_value = "json")]
    format: String,
}

/// One `giamsat report …` run through the same code path as its HTTP endpoint
/// ([`Report`]): check the query, open a session, render, write.
async fn run_one<Q: Report>(data: &Path, q: Q, output: Option<PathBuf>) -> anyhow::Result<()> {
    let (wh, env) = open_env(data)?;
    q.check(&env).map_err(classify_query)?;
    let ctx = giamsat_queries::session(&wh)
        .await
        .map_err(classify_query)?;
    let r = q.render(&ctx, &env).await.map_err(classify_query)?;
    emit(r, output)
}

pub async fn run(data: &Path, report: ReportCmd) -> anyhow::Result<()> {
    match report {
        ReportCmd::Bieu06 {
            from,
            to,
            province,
            commune,
            group_by,
            format,
            output,
        } => {
            if binary_format(&format) && output.is_none() {
                return Err(bad(format!("--format {format} cần -o TỆP")));
            }
            let q = giamsat_api::reports::Bieu06Query {
                from: Some(from),
                to: Some(to),
                province,
                commune,
                group_by: Some(group_by),
                format: Some(format),
                ..Default::default()
            };
            run_one(data, q, output).await?;
        }
        ReportCmd::Index766 {
            period,
            province,
            commune,
            agency,
            group_by,
            format,
            output,
        } => {
            let q = giamsat_api::reports::Index766Query {
                period: Some(period),
                province,
                commune,
                agency,
                group_by,
                format: Some(format.clone()),
            };
            if binary_format(&format) && output.is_none() {
                return Err(bad(format!("--format {format} cần -o TỆP")));
            }
            run_one(data, q, output).await?;
        }
        ReportCmd::OnTime {
            from,
            to,
            period,
            group_by,
            province,
            commune,
            agency,
            field,
            procedure,
            procedure_level,
            non_territorial,
            series,
            format,
            output,
        } => {
            let q = giamsat_api::reports::OnTimeQuery {
                from,
                to,
                period,
                group_by,
                province,
                commune,
                agency,
                field,
                procedure,
                procedure_level,
                non_territorial,
                series,
                format: Some(format),
            };
            run_one(data, q, output).await?;
        }
        ReportCmd::Overdue(a) => {
            let q = giamsat_api::reports::AlertsQuery {
                as_of: a.as_of,
                due_within_hours: a.due_within_hours,
                stale_after_hours: a.stale_after_hours,
                province: a.province,
                commune: a.commune,
                limit: a.limit,
                format: Some(a.format),
            };
            run_one(data, q, None).await?;
        }
        ReportCmd::Reconciliation(a) => {
            let q = giamsat_api::reports::ReconQuery {
                from: a.from,
                to: a.to,
                tolerance_seconds: a.tolerance_seconds,
                kind: a.kind,
                limit: a.limit,
                cursor: a.cursor,
                format: Some(a.format),
            };
            run_one(data, q, None).await?;
        }
        ReportCmd::Sources {
            as_of,
            stale_after_hours,
        } => {
            let q = giamsat_api::reports::SourcesQuery {
                as_of,
                stale_after_hours,
            };
            run_one(data, q, None).await?;
        }
        ReportCmd::DataQuality {
            province,
            commune,
            limit,
            format,
        } => {
            let q = giamsat_api::reports::QualityQuery {
                province,
                commune,
                limit,
                format: Some(format),
            };
            run_one(data, q, None).await?;
        }
    }
    Ok(())
}
