//! `giamsat ingest`, `quarantine` and `profile check`: files into the warehouse, refused
//! records back out, and a dry run of a mapping profile.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use giamsat_ingest::Format;

use crate::fail::{bad, classify_ingest};
use crate::open::open_wh;

// the options of `ingest`
#[derive(Args)]
pub struct IngestArgs {
    #[arg(long, default_value = "canonical")]
    pub format: String,
    /// Source code for formats whose records do not carry one.
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// Records not yet replayed, oldest first (tab-separated).
    List {
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Re-parse quarantined records with a format (and fixed profile); those that now
    /// parse are ingested, the rest stay.
    Replay {
        #[arg(long, default_value = "canonical")]
        format: String,
        #[arg(long)]
        profile: Option<PathBuf>,
        #[arg(long)]
        source: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ProfileCmd {
    /// Dry run: the mapping, the first rows as events, what would be quarantined and
    /// why; writes nothing.
    Check {
        #[arg(long)]
        profile: PathBuf,
        /// Source code (default: the profile's).
        #[arg(long)]
        source: Option<String>,
        /// Rows whose events are shown.
        #[arg(long, default_value_t = 5)]
        rows: usize,
        file: PathBuf,
    },
}

pub async fn run(data: &Path, args: IngestArgs) -> anyhow::Result<()> {
    let IngestArgs {
        format,
        source,
        profile,
        paths,
    } = args;
    let format = parse_format(&format, profile.as_deref())?;
    let wh = open_wh(data)?;
    let bar = progress_bar(
        paths
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum(),
    );
    let report = |step: giamsat_ingest::Step| match step {
        giamsat_ingest::Step::Parsed(n) => bar.inc(n),
        giamsat_ingest::Step::Committing => bar.set_message("đang cập nhật dữ kiện hồ sơ…"),
    };
    let counts =
        giamsat_ingest::ingest_paths_with(&wh, &format, source.as_deref(), &paths, &report)
            .await
            .map_err(classify_ingest)?;
    bar.finish_and_clear();
    println!("{}", serde_json::to_string(&counts)?);

    Ok(())
}

pub async fn quarantine(data: &Path, cmd: QuarantineCmd) -> anyhow::Result<()> {
    match cmd {
        QuarantineCmd::List { source, limit } => {
            let wh = open_wh(data)?;
            let rows = wh.unresolved_quarantine().await?;
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|q| source.is_none() || q.source == source)
                .collect();
            let mut out = std::io::stdout();
            writeln!(out, "received_at\tsource\tinput:line\treason\toriginal")?;
            for q in rows.iter().take(limit) {
                let at = chrono::DateTime::from_timestamp_micros(q.received_at)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                let orig: String = String::from_utf8_lossy(&q.original)
                    .replace(['\n', '\t'], " ")
                    .chars()
                    .take(160)
                    .collect();
                writeln!(
                    out,
                    "{at}\t{}\t{}:{}\t{}\t{orig}",
                    q.source.as_deref().unwrap_or("-"),
                    q.input,
                    q.line,
                    q.reason
                )?;
            }
            eprintln!(
                "{} bản ghi đang cách ly ({} hiển thị)",
                rows.len(),
                rows.len().min(limit)
            );
        }
        QuarantineCmd::Replay {
            format,
            profile,
            source,
        } => {
            let format = parse_format(&format, profile.as_deref())?;
            let wh = open_wh(data)?;
            let c = giamsat_ingest::replay_quarantine(&wh, &format, source.as_deref())
                .await
                .map_err(classify_ingest)?;
            println!("{}", serde_json::to_string(&c)?);
        }
    }
    Ok(())
}

pub async fn profile(cmd: ProfileCmd) -> anyhow::Result<()> {
    match cmd {
        ProfileCmd::Check {
            profile,
            source,
            rows,
            file,
        } => {
            let profile =
                giamsat_ingest::csvprofile::Profile::load(&profile).map_err(classify_ingest)?;
            let check = giamsat_ingest::check::check(&file, &profile, source.as_deref())
                .map_err(classify_ingest)?;
            print!("{}", check.render(rows));
        }
    }
    Ok(())
}

/// A progress bar on stderr for long ingests, only on a terminal and outside CI.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || std::env::var_os("CI").is_some() || total < 8 << 20 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, còn {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("đang đọc và kiểm tra");
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// `--format` (+ `--profile`) → an input format; a bad profile fails before any data is read.
fn parse_format(format: &str, profile: Option<&Path>) -> anyhow::Result<Format> {
    Ok(match (format, profile) {
        ("csv" | "xlsx", Some(p)) => Format::Csv(Box::new(
            giamsat_ingest::csvprofile::Profile::load(p).map_err(classify_ingest)?,
        )),
        ("csv" | "xlsx", None) => return Err(bad("--format csv|xlsx cần --profile TỆP.toml")),
        (_, Some(_)) => return Err(bad("--profile chỉ dùng với --format csv hoặc xlsx")),
        (f, None) => Format::parse(f).ok_or_else(|| {
            bad(format!(
                "định dạng không hợp lệ: {f} (canonical|dvcqg|csv|xlsx|procedures)"
            ))
        })?,
    })
}
