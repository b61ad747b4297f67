//! The `giamsat` binary: parses the command line and hands each command to its module
//! under `commands/` (the interface: docs/contract.md §3).

mod commands;
mod fail;
mod open;
mod runtime;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use commands::{explain, export, generate, ingest, maintain, report, serve, sql, token};

#[derive(Parser)]
#[command(
    name = "giamsat",
    version,
    about = "Kho dữ liệu giám sát giải quyết thủ tục hành chính"
)]
struct Cli {
    /// Data directory (Delta tables, config.toml).
    #[arg(
        long,
        global = true,
        env = "GIAMSAT_DATA",
        default_value = "./giamsat-data"
    )]
    data: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate realistic synthetic events and a procedure catalog for one province.
    Generate(commands::generate::GenerateArgs),
    /// Ingest files into the warehouse.
    Ingest(commands::ingest::IngestArgs),
    /// Reports.
    Report {
        #[command(subcommand)]
        report: commands::report::ReportCmd,
    },
    /// Explain one dossier: its events from every source, its facts and how each was
    /// reached, its class and why.
    Explain(commands::explain::ExplainArgs),
    /// Run a read-only SQL query over the tables.
    Sql(commands::sql::SqlArgs),
    /// Serve the API and dashboard.
    Serve(commands::serve::ServeArgs),
    /// Scheduled exports (`[[export]]` in <data>/config.toml): run one now, list the runs,
    /// re-run a past one at its recorded table versions.
    Export {
        #[command(subcommand)]
        cmd: commands::export::ExportCmd,
    },
    /// Quarantined records: list them, or replay them after fixing a profile.
    Quarantine {
        #[command(subcommand)]
        cmd: commands::ingest::QuarantineCmd,
    },
    /// Mapping profiles of exported sheets (CSV, XLSX).
    Profile {
        #[command(subcommand)]
        cmd: commands::ingest::ProfileCmd,
    },
    /// Manage access tokens (stored hashed under --data).
    Token {
        #[command(subcommand)]
        cmd: commands::token::TokenCmd,
    },
    /// Compact small files, checkpoint every table's log and delete files no version
    /// needs any more (never one that a recorded export run reads); one JSON line per table.
    Maintain(commands::maintain::MaintainArgs),
    /// Back up --data into DEST (new or empty), also while a server writes: every table
    /// at one consistent version, the other files, and a manifest DEST/BACKUP.json
    /// (docs/backup.md); one JSON line.
    Backup(commands::maintain::BackupArgs),
    /// Check a backup against its manifest and copy it into DATA_DIR (new or empty),
    /// then bring the derived tables up to its events; one JSON line.
    Restore(commands::maintain::RestoreArgs),
    /// Generate a province, ingest it and serve it (first run: ~100k dossiers).
    Demo(commands::serve::DemoArgs),
}

async fn dispatch(cli: Cli, rts: runtime::Runtimes) -> anyhow::Result<()> {
    // testing only: GIAMSAT_FAULTS makes table writes fail on purpose (docs/faults.md)
    giamsat_warehouse::faults::install_from_env().map_err(fail::bad)?;
    let data = cli.data.as_path();
    match cli.cmd {
        Cmd::Generate(a) => generate::run(data, a).await,
        Cmd::Ingest(a) => ingest::run(data, a).await,
        Cmd::Report { report } => report::run(data, report).await,
        Cmd::Explain(a) => explain::run(data, a).await,
        Cmd::Sql(a) => sql::run(data, a).await,
        Cmd::Serve(a) => serve::run(data, a, rts).await,
        Cmd::Export { cmd } => export::run(data, cmd).await,
        Cmd::Quarantine { cmd } => ingest::quarantine(data, cmd).await,
        Cmd::Profile { cmd } => ingest::profile(cmd).await,
        Cmd::Token { cmd } => token::run(data, cmd),
        Cmd::Maintain(a) => maintain::run(data, a).await,
        Cmd::Backup(a) => maintain::backup(data, a).await,
        Cmd::Restore(a) => maintain::restore(data, a).await,
        Cmd::Demo(a) => serve::demo(data, a, rts).await,
    }
}

fn main() {
    runtime::init();
    let cli = Cli::parse();
    if let Err(e) = runtime::run(|rts| dispatch(cli, rts)) {
        eprintln!("giamsat: {}", fail::one_line(&e));
        std::process::exit(fail::exit_code(&e));
    }
}
