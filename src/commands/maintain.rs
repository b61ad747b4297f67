//! `giamsat maintain`, `backup` and `restore`: the upkeep of a data directory.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::fail::{classify_backup, classify_export};
use crate::open::{open_exporter, open_wh};

// the options of `maintain`
#[derive(Args)]
pub struct MaintainArgs {
    /// Keep removed files younger than this (default: `[ingest] vacuum_retention_hours`).
    #[arg(long)]
    pub retention_hours: Option<u64>,
}

// the options of `backup`
#[derive(Args)]
pub struct BackupArgs {
    pub dest: PathBuf,
}

// the options of `restore`
#[derive(Args)]
pub struct RestoreArgs {
    pub backup: PathBuf,
    pub data_dir: PathBuf,
}

pub async fn run(data: &Path, args: MaintainArgs) -> anyhow::Result<()> {
    let MaintainArgs { retention_hours } = args;
    let pinned = open_exporter(data)?
        .pinned_versions()
        .await
        .map_err(classify_export)?;
    let wh = open_wh(data)?;
    let hours = retention_hours.unwrap_or(wh.config.ingest.vacuum_retention_hours);
    for m in wh.maintain(&pinned, hours, chrono::Utc::now()).await? {
        println!("{}", serde_json::to_string(&m)?);
    }

    Ok(())
}

pub async fn backup(data: &Path, args: BackupArgs) -> anyhow::Result<()> {
    let BackupArgs { dest } = args;
    let m = giamsat_warehouse::backup::backup(data, &dest)
        .await
        .map_err(classify_backup)?;
    let (files, bytes) = m.totals();
    let versions: std::collections::BTreeMap<_, _> =
        m.tables.iter().map(|t| (&t.name, t.version)).collect();
    println!(
        "{}",
        serde_json::json!({
            "backup": dest.display().to_string(), "created_at": m.created_at, "tables": versions,
            "files": files, "bytes": bytes, "attempts": m.attempts,
        })
    );
    eprintln!(
        "Đã sao lưu {} bảng ({files} tệp, {bytes} byte) vào {}",
        m.tables.len(),
        dest.display()
    );

    Ok(())
}

pub async fn restore(_data: &Path, args: RestoreArgs) -> anyhow::Result<()> {
    let RestoreArgs { backup, data_dir } = args;
    let r = giamsat_warehouse::backup::restore(&backup, &data_dir)
        .await
        .map_err(classify_backup)?;
    println!("{}", serde_json::to_string(&r)?);
    eprintln!(
        "Đã khôi phục {} bảng ({} tệp, đã kiểm tra SHA-256) vào {}",
        r.tables,
        r.files,
        data_dir.display()
    );

    Ok(())
}
