//! `giamsat export`: run a scheduled export now, list the runs, re-run a past one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;

use crate::fail::{bad, classify_export};
use crate::open::open_exporter;

#[derive(Subcommand)]
pub enum ExportCmd {
    /// Run a job now (for --period, else for the period its rule gives today) and record it.
    Run {
        name: String,
        /// 2026-Q1, 2026-03, 2026-01-01..2026-03-31, …
        #[arg(long)]
        period: Option<String>,
    },
    /// The recorded runs, oldest first (JSON lines, or a table with --format tsv).
    List {
        #[arg(long)]
        job: Option<String>,
        #[arg(long, default_value = "tsv")]
        format: String,
    },
    /// Compute a recorded run again at its table versions and instant; exit 1 unless the
    /// bytes equal the recorded checksum.
    Rerun {
        run_id: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

pub async fn run(data: &Path, cmd: ExportCmd) -> anyhow::Result<()> {
    let exporter = open_exporter(data)?;
    match cmd {
        ExportCmd::Run { name, period } => {
            let run = exporter
                .run_now(&name, period.as_deref(), chrono::Utc::now())
                .await
                .map_err(classify_export)?;
            println!("{}", serde_json::to_string(&run)?);
            if run.status != "ok" {
                anyhow::bail!(
                    "xuất báo cáo {name} không thành công: {}",
                    run.error.unwrap_or_default()
                );
            }
        }
        ExportCmd::List { job, format } => {
            let runs = exporter.history().await.map_err(classify_export)?;
            let runs = runs
                .into_iter()
                .filter(|r| job.as_ref().is_none_or(|j| &r.job == j));
            let mut out = std::io::stdout();
            match format.as_str() {
                "json" => {
                    for r in runs {
                        writeln!(out, "{}", serde_json::to_string(&r)?)?;
                    }
                }
                "tsv" => {
                    writeln!(
                        out,
                        "run_id\tjob\ttrigger\tscheduled_for\tattempt\tperiod\tstatus\tsha256\tfile\terror"
                    )?;
                    for r in runs {
                        writeln!(
                            out,
                            "{}\t{}\t{}\t{}\t{}\t{}..{}\t{}\t{}\t{}\t{}",
                            r.run_id,
                            r.job,
                            r.trigger,
                            r.scheduled_for.map(|t| t.to_rfc3339()).unwrap_or_default(),
                            r.attempt,
                            r.period_from,
                            r.period_to,
                            r.status,
                            r.sha256.unwrap_or_default(),
                            r.object_key
                                .map(|k| format!("{}/{k}", r.destination))
                                .unwrap_or_default(),
                            r.error.unwrap_or_default().replace(['\n', '\t'], " ")
                        )?;
                    }
                }
                other => return Err(bad(format!("--format phải là tsv hoặc json: {other}"))),
            }
        }
        ExportCmd::Rerun { run_id, output } => {
            let (run, body, same) = exporter.rerun(&run_id).await.map_err(classify_export)?;
            if let Some(p) = &output {
                std::fs::write(p, &body).with_context(|| format!("ghi {}", p.display()))?;
            }
            println!(
                "{}",
                serde_json::json!({
                    "run_id": run.run_id,
                    "recorded_sha256": run.sha256,
                    "identical": same,
                    "bytes": body.len(),
                })
            );
            if !same {
                anyhow::bail!("kết quả chạy lại khác tệp đã xuất ({run_id})");
            }
        }
    }

    Ok(())
}
