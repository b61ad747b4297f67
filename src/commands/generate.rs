//! `giamsat generate`: synthetic events and a procedure catalog for one province.

use std::path::{Path, PathBuf};

use clap::Args;
use giamsat_ingest::generate;

use crate::fail::classify_ingest;

// the options of `generate`
#[derive(Args)]
pub struct GenerateArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10_000)]
    pub dossiers: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Province code (default 31, Hải Phòng).
    #[arg(long, default_value = "31")]
    pub province: String,
}

pub async fn run(_data: &Path, args: GenerateArgs) -> anyhow::Result<()> {
    let GenerateArgs {
        out,
        dossiers,
        seed,
        province,
    } = args;
    let p = generate::Params {
        province,
        dossiers,
        seed,
        ..Default::default()
    };
    let bar = generate_bar(dossiers);
    let stats =
        generate::generate_with(&out, &p, &|n| bar.set_position(n)).map_err(classify_ingest)?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&stats)?);

    Ok(())
}

/// A progress bar on stderr for long generations (dossiers), only on a terminal.
fn generate_bar(dossiers: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() || dossiers < 100_000 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(dossiers);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} [{bar:40}] {human_pos}/{human_len} hồ sơ ({per_sec}, còn {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("đang sinh dữ liệu");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
