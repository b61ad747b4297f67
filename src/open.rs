//! Opening what a command works on: the warehouse of `--data`, its report environment,
//! its exporter; and writing a rendered report.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use giamsat_warehouse::store::Warehouse;

use crate::fail::{bad, classify_export, classify_query};

pub fn open_wh(data: &Path) -> anyhow::Result<Warehouse> {
    Warehouse::open(data).map_err(|e| match e {
        giamsat_warehouse::WarehouseError::Config(m) => bad(m),
        other => {
            anyhow::Error::new(other).context(format!("mở thư mục dữ liệu {}", data.display()))
        }
    })
}

/// The warehouse and the report environment of a data directory.
pub fn open_env(data: &Path) -> anyhow::Result<(Warehouse, giamsat_api::reports::ReportEnv)> {
    let wh = open_wh(data)?;
    let env = giamsat_api::reports::ReportEnv::for_warehouse(&wh).map_err(classify_query)?;
    Ok((wh, env))
}

/// The exporter of a data directory (jobs of its config.toml), for the CLI.
pub fn open_exporter(data: &Path) -> anyhow::Result<giamsat_api::exports::Exporter> {
    let (wh, env) = open_env(data)?;
    let cfg =
        giamsat_api::exports::ExportsConfig::for_data_dir(wh.root()).map_err(classify_export)?;
    giamsat_api::exports::Exporter::new(
        Arc::new(wh),
        env,
        Arc::new(giamsat_queries::RuntimeEnv::default()),
        cfg,
    )
    .map_err(classify_export)
}

/// Write a rendered report to `output` or stdout.
pub fn emit(r: giamsat_api::reports::Rendered, output: Option<PathBuf>) -> anyhow::Result<()> {
    let mut body = r.body;
    if r.content_type.starts_with("application/json") {
        body.push(b'\n');
    }
    match output {
        Some(p) => std::fs::write(&p, body).with_context(|| format!("ghi {}", p.display()))?,
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}

/// Formats written only to a file (`-o`), never to the terminal.
pub fn binary_format(format: &str) -> bool {
    matches!(format, "xlsx" | "form-xlsx" | "pdf")
}
