//! The `giamsat` binary: wires ingest, warehouse, queries and api together (CONTRACT §3).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use giamsat_ingest::{generate, Format, IngestError};
use giamsat_queries::QueryError;
use giamsat_warehouse::store::Warehouse;

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

// parsed once per run; boxing the report variants would only obscure the match below
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Generate realistic synthetic events and a procedure catalog for one province.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        dossiers: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Province code (default 31, Hải Phòng).
        #[arg(long, default_value = "31")]
        province: String,
    },
    /// Ingest files into the warehouse.
    Ingest {
        #[arg(long, default_value = "canonical")]
        format: String,
        /// Source code for formats whose records do not carry one.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        profile: Option<PathBuf>,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        report: ReportCmd,
    },
    /// Explain one dossier: its events from every source, its facts and how each was
    /// reached, its class and why.
    Explain {
        dossier_id: String,
        /// Judge the class at the end of this day (YYYY-MM-DD), as a period ending then.
        #[arg(long)]
        as_of: Option<String>,
        /// `text` (default) or `json` (the body of GET /api/v1/dossiers/{id}).
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Run a read-only SQL query over the tables.
    Sql {
        sql: String,
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Serve the API and dashboard.
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Server configuration (TOML: `[sql]` limits, `[[token]]` hashed tokens).
        #[arg(long)]
        config: Option<PathBuf>,
        /// An extra admin token to accept for this run (tokens are normally added
        /// with `giamsat token add`).
        #[arg(long, env = "GIAMSAT_TOKEN")]
        token: Option<String>,
        /// Also serve the PostgreSQL wire protocol on this port of `--bind` (0: any free
        /// port; printed as the second line); or `[pg] listen` in the configuration.
        #[arg(long)]
        pg_port: Option<u16>,
        /// Also serve Arrow Flight SQL (gRPC) on this port of `--bind` (0: any free port;
        /// printed on its own line after the PostgreSQL one); or `[flight] listen`.
        #[arg(long)]
        flight_port: Option<u16>,
    },
    /// Scheduled exports (`[[export]]` in <data>/config.toml): run one now, list the runs,
    /// re-run a past one at its recorded table versions.
    Export {
        #[command(subcommand)]
        cmd: ExportCmd,
    },
    /// Quarantined records: list them, or replay them after fixing a profile.
    Quarantine {
        #[command(subcommand)]
        cmd: QuarantineCmd,
    },
    /// Mapping profiles of exported sheets (CSV, XLSX).
    Profile {
        #[command(subcommand)]
        cmd: ProfileCmd,
    },
    /// Manage access tokens (stored hashed under --data).
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Compact small files, checkpoint every table's log and delete files no version
    /// needs any more (never one that a recorded export run reads); one JSON line per table.
    Maintain {
        /// Keep removed files younger than this (default: `[ingest] vacuum_retention_hours`).
        #[arg(long)]
        retention_hours: Option<u64>,
    },
    /// Back up --data into DEST (new or empty), also while a server writes: every table
    /// at one consistent version, the other files, and a manifest DEST/BACKUP.json
    /// (docs/backup.md); one JSON line.
    Backup { dest: PathBuf },
    /// Check a backup against its manifest and copy it into DATA_DIR (new or empty),
    /// then bring the derived tables up to its events; one JSON line.
    Restore { backup: PathBuf, data_dir: PathBuf },
    /// Generate a province, ingest it and serve it (first run: ~100k dossiers).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value_t = 100_000)]
        dossiers: u64,
    },
}

#[derive(Subcommand)]
enum ExportCmd {
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

#[derive(Subcommand)]
enum QuarantineCmd {
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
enum ProfileCmd {
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

#[derive(Subcommand)]
enum TokenCmd {
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

#[derive(Subcommand)]
enum ReportCmd {
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
struct AlertsArgs {
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
struct ReconArgs {
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

/// One `giamsat report …` run through the same code path as its HTTP endpoint: validate
/// the query, open a session, render, write.
macro_rules! report {
    ($data:expr, $q:expr, $check:expr, $run:path, $out:expr) => {{
        let q = $q;
        let (wh, env) = open_env($data)?;
        $check(&env, &q).map_err(classify_query)?;
        let ctx = giamsat_queries::session(&wh)
            .await
            .map_err(classify_query)?;
        let r = $run(&ctx, &env, &q).await.map_err(classify_query)?;
        emit(r, $out)?;
    }};
}

/// Write a rendered report to `output` or stdout.
fn emit(r: giamsat_api::reports::Rendered, output: Option<PathBuf>) -> anyhow::Result<()> {
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

/// An error the user caused: one line on stderr, exit 2.
#[derive(Debug)]
struct BadInput(String);
impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

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

/// Formats written only to a file (`-o`), never to the terminal.
fn binary_format(format: &str) -> bool {
    matches!(format, "xlsx" | "form-xlsx" | "pdf")
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

fn classify_ingest(e: IngestError) -> anyhow::Error {
    match e {
        IngestError::Read { .. } | IngestError::Input(_) => bad(e.to_string()),
        IngestError::Warehouse(giamsat_warehouse::WarehouseError::Config(m)) => bad(m),
        other => anyhow::Error::new(other),
    }
}

fn classify_query(e: QueryError) -> anyhow::Error {
    match e {
        QueryError::BadInput(m) | QueryError::NotFound(m) => bad(m),
        QueryError::Limit(l) => bad(l.to_string()),
        QueryError::Warehouse(giamsat_warehouse::WarehouseError::Config(m)) => bad(m),
        other => anyhow::Error::new(other),
    }
}

/// The warehouse and the report environment of a data directory.
fn open_env(data: &Path) -> anyhow::Result<(Warehouse, giamsat_api::reports::ReportEnv)> {
    let wh = open_wh(data)?;
    let env = giamsat_api::reports::ReportEnv::for_warehouse(&wh).map_err(classify_query)?;
    Ok((wh, env))
}

fn classify_backup(e: giamsat_warehouse::backup::BackupError) -> anyhow::Error {
    if e.is_user_error() {
        bad(e.to_string())
    } else {
        anyhow::Error::new(e)
    }
}

fn classify_export(e: giamsat_api::exports::ExportError) -> anyhow::Error {
    use giamsat_api::exports::ExportError as E;
    match e {
        E::Config(_) | E::BadInput(_) | E::NotFound(_) => bad(e.to_string()),
        E::Query(q) => classify_query(q),
        other => anyhow::Error::new(other),
    }
}

/// The exporter of a data directory (jobs of its config.toml), for the CLI.
fn open_exporter(data: &Path) -> anyhow::Result<giamsat_api::exports::Exporter> {
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

fn open_wh(data: &Path) -> anyhow::Result<Warehouse> {
    Warehouse::open(data).map_err(|e| match e {
        giamsat_warehouse::WarehouseError::Config(m) => bad(m),
        other => {
            anyhow::Error::new(other).context(format!("mở thư mục dữ liệu {}", data.display()))
        }
    })
}

async fn run(cli: Cli, rts: Runtimes) -> anyhow::Result<()> {
    // testing only: GIAMSAT_FAULTS makes table writes fail on purpose (docs/faults.md)
    giamsat_warehouse::faults::install_from_env().map_err(bad)?;
    match cli.cmd {
        Cmd::Generate {
            out,
            dossiers,
            seed,
            province,
        } => {
            let p = generate::Params {
                province,
                dossiers,
                seed,
                ..Default::default()
            };
            let bar = generate_bar(dossiers);
            let stats = generate::generate_with(&out, &p, &|n| bar.set_position(n))
                .map_err(classify_ingest)?;
            bar.finish_and_clear();
            println!("{}", serde_json::to_string(&stats)?);
        }
        Cmd::Ingest {
            format,
            source,
            profile,
            paths,
        } => {
            let format = parse_format(&format, profile.as_deref())?;
            let wh = open_wh(&cli.data)?;
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
        }
        Cmd::Explain {
            dossier_id,
            as_of,
            format,
        } => {
            if !["text", "json"].contains(&format.as_str()) {
                return Err(bad(format!("--format phải là text hoặc json: {format:?}")));
            }
            let q = giamsat_api::reports::DossierQuery { as_of };
            let as_of = giamsat_api::reports::dossier_as_of(&q).map_err(classify_query)?;
            let (wh, env) = open_env(&cli.data)?;
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
        }
        Cmd::Report {
            report:
                ReportCmd::Bieu06 {
                    from,
                    to,
                    province,
                    commune,
                    group_by,
                    format,
                    output,
                },
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
            report!(
                &cli.data,
                q,
                |_: &giamsat_api::reports::ReportEnv, q: &giamsat_api::reports::Bieu06Query| {
                    giamsat_api::reports::bieu06_params(q)
                },
                giamsat_api::reports::bieu06,
                output
            );
        }
        Cmd::Report {
            report:
                ReportCmd::Index766 {
                    period,
                    province,
                    commune,
                    agency,
                    group_by,
                    format,
                    output,
                },
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
            report!(
                &cli.data,
                q,
                giamsat_api::reports::index766_params,
                giamsat_api::reports::index766,
                output
            );
        }
        Cmd::Report {
            report:
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
                },
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
            report!(
                &cli.data,
                q,
                giamsat_api::reports::on_time_params,
                giamsat_api::reports::on_time,
                output
            );
        }
        Cmd::Report {
            report: ReportCmd::Overdue(a),
        } => {
            let q = giamsat_api::reports::AlertsQuery {
                as_of: a.as_of,
                due_within_hours: a.due_within_hours,
                stale_after_hours: a.stale_after_hours,
                province: a.province,
                commune: a.commune,
                limit: a.limit,
                format: Some(a.format),
            };
            report!(
                &cli.data,
                q,
                giamsat_api::reports::alerts_params,
                giamsat_api::reports::alerts,
                None
            );
        }
        Cmd::Report {
            report: ReportCmd::Reconciliation(a),
        } => {
            let q = giamsat_api::reports::ReconQuery {
                from: a.from,
                to: a.to,
                tolerance_seconds: a.tolerance_seconds,
                kind: a.kind,
                limit: a.limit,
                cursor: a.cursor,
                format: Some(a.format),
            };
            report!(
                &cli.data,
                q,
                giamsat_api::reports::recon_params,
                giamsat_api::reports::reconciliation,
                None
            );
        }
        Cmd::Report {
            report:
                ReportCmd::Sources {
                    as_of,
                    stale_after_hours,
                },
        } => {
            let q = giamsat_api::reports::SourcesQuery {
                as_of,
                stale_after_hours,
            };
            report!(
                &cli.data,
                q,
                giamsat_api::reports::sources_params,
                giamsat_api::reports::sources,
                None
            );
        }
        Cmd::Report {
            report:
                ReportCmd::DataQuality {
                    province,
                    commune,
                    limit,
                    format,
                },
        } => {
            let q = giamsat_api::reports::QualityQuery {
                province,
                commune,
                limit,
                format: Some(format),
            };
            report!(
                &cli.data,
                q,
                giamsat_api::reports::quality_params,
                giamsat_api::reports::quality,
                None
            );
        }
        Cmd::Sql { sql, format } => {
            let wh = open_wh(&cli.data)?;
            let ctx = giamsat_queries::session(&wh)
                .await
                .map_err(classify_query)?;
            // whoever can read the data directory is its administrator
            giamsat_api::access::register(&ctx, &wh)
                .await
                .map_err(classify_query)?;
            let batches = giamsat_queries::run_sql(&ctx, &sql)
                .await
                .map_err(classify_query)?;
            print_batches(&batches, &format)?;
        }
        Cmd::Serve {
            port,
            bind,
            config,
            token,
            pg_port,
            flight_port,
        } => {
            let wh = open_wh(&cli.data)?;
            let mut cfg = match config {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| bad(format!("không đọc được {}: {e}", p.display())))?;
                    giamsat_api::ServerConfig::from_toml(&text).map_err(bad)?
                }
                None => giamsat_api::ServerConfig::default(),
            };
            // the server re-reads <data>/tokens.toml itself; read here only to refuse a
            // broken file at start and to say when there is no token at all
            let stored =
                giamsat_api::auth::load_tokens(&cli.data).map_err(|e| bad(e.to_string()))?;
            if let Some(t) = &token {
                cfg.tokens.push(admin_entry(t));
            }
            if cfg.tokens.is_empty() && stored.is_empty() {
                eprintln!("Chưa có mã truy cập nào: tạo bằng `giamsat token add --role admin`.");
            }
            if let Some(p) = pg_port {
                cfg.pg.listen = Some(format!("{bind}:{p}"));
            }
            if let Some(p) = flight_port {
                cfg.flight.listen = Some(format!("{bind}:{p}"));
            }
            serve(wh, &bind, port, cfg, None, rts).await?;
        }
        Cmd::Export { cmd } => {
            let exporter = open_exporter(&cli.data)?;
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
                        other => {
                            return Err(bad(format!("--format phải là tsv hoặc json: {other}")))
                        }
                    }
                }
                ExportCmd::Rerun { run_id, output } => {
                    let (run, body, same) =
                        exporter.rerun(&run_id).await.map_err(classify_export)?;
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
        }
        Cmd::Quarantine {
            cmd: QuarantineCmd::List { source, limit },
        } => {
            let wh = open_wh(&cli.data)?;
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
        Cmd::Quarantine {
            cmd:
                QuarantineCmd::Replay {
                    format,
                    profile,
                    source,
                },
        } => {
            let format = parse_format(&format, profile.as_deref())?;
            let wh = open_wh(&cli.data)?;
            let c = giamsat_ingest::replay_quarantine(&wh, &format, source.as_deref())
                .await
                .map_err(classify_ingest)?;
            println!("{}", serde_json::to_string(&c)?);
        }
        Cmd::Profile {
            cmd:
                ProfileCmd::Check {
                    profile,
                    source,
                    rows,
                    file,
                },
        } => {
            let profile =
                giamsat_ingest::csvprofile::Profile::load(&profile).map_err(classify_ingest)?;
            let check = giamsat_ingest::check::check(&file, &profile, source.as_deref())
                .map_err(classify_ingest)?;
            print!("{}", check.render(rows));
        }
        Cmd::Maintain { retention_hours } => {
            let pinned = open_exporter(&cli.data)?
                .pinned_versions()
                .await
                .map_err(classify_export)?;
            let wh = open_wh(&cli.data)?;
            let hours = retention_hours.unwrap_or(wh.config.ingest.vacuum_retention_hours);
            for m in wh.maintain(&pinned, hours, chrono::Utc::now()).await? {
                println!("{}", serde_json::to_string(&m)?);
            }
        }
        Cmd::Backup { dest } => {
            let m = giamsat_warehouse::backup::backup(&cli.data, &dest)
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
        }
        Cmd::Restore { backup, data_dir } => {
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
        }
        Cmd::Token {
            cmd:
                TokenCmd::Add {
                    role,
                    province,
                    commune,
                    source,
                    label,
                    expires,
                },
        } => {
            let role = giamsat_api::auth::Role::parse(&role).map_err(|e| bad(e.to_string()))?;
            let expires = expires.as_deref().map(expiry).transpose()?;
            let t = giamsat_api::auth::add_token(
                &cli.data, role, province, commune, source, label, expires,
            )
            .map_err(|e| bad(e.to_string()))?;
            println!("{t}");
        }
        Cmd::Token {
            cmd: TokenCmd::List { format },
        } => {
            let now = chrono::Utc::now();
            let all = giamsat_api::auth::load_tokens(&cli.data).map_err(|e| bad(e.to_string()))?;
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
        Cmd::Token {
            cmd: TokenCmd::Revoke { label_or_id },
        } => {
            let revoked =
                giamsat_api::auth::revoke_tokens(&cli.data, &label_or_id, chrono::Utc::now())
                    .map_err(|e| bad(e.to_string()))?;
            for t in revoked {
                println!("{}\t{}\t{}", t.id(), t.label, t.revoked_at);
            }
        }
        Cmd::Demo { port, dossiers } => {
            let data = cli.data.clone();
            let wh = open_wh(&data)?;
            let have = wh
                .open_table(giamsat_warehouse::store::EVENTS)
                .await?
                .is_some();
            if !have {
                let gen_dir = data.join("generated");
                eprintln!("Đang tạo dữ liệu mẫu: {dossiers} hồ sơ của Thành phố Hải Phòng…");
                let p = generate::Params {
                    dossiers,
                    ..Default::default()
                };
                generate::generate(&gen_dir, &p).map_err(classify_ingest)?;
                eprintln!("Đang nạp danh mục thủ tục và sự kiện vào kho…");
                for (format, file, what) in [
                    (Format::Procedures, "procedures.csv", "Danh mục thủ tục"),
                    (
                        Format::Canonical,
                        "events.ndjson",
                        "Sự kiện các hệ thống một cửa, bộ ngành",
                    ),
                    (Format::Dvcqg, "dvcqg.ndjson", "Bản ghi đồng bộ Cổng DVCQG"),
                ] {
                    let c = giamsat_ingest::ingest_paths(&wh, &format, None, &[gen_dir.join(file)])
                        .await
                        .map_err(classify_ingest)?;
                    eprintln!("{what}: {}", serde_json::to_string(&c)?);
                }
            }
            let token = giamsat_api::auth::new_token();
            let mut cfg = giamsat_api::ServerConfig::default();
            cfg.tokens.push(admin_entry(&token));
            serve(wh, "127.0.0.1", port, cfg, Some(&token), rts).await?;
        }
    }
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

fn admin_entry(token: &str) -> giamsat_api::auth::TokenEntry {
    giamsat_api::auth::TokenEntry {
        hash: giamsat_api::auth::hash_token(token),
        role: giamsat_api::auth::Role::Admin,
        provinces: vec![],
        communes: vec![],
        sources: vec![],
        label: "command line".into(),
        created_at: String::new(),
        expires_at: String::new(),
        revoked_at: String::new(),
    }
}

/// An error and its causes on one line, each cause once: layers that already quote
/// their source's message (deltalake, object_store) are not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if text.is_empty() || out.contains(text.trim()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The one panic a dependency raises and catches by design: deltalake aborts the
/// buffered upload of a data file whose completion failed (a full disk, a failed
/// write), object_store's `BufWriter::abort` panics once shutdown has begun, and
/// deltalake catches that panic and returns the write's error. It is not a failure of
/// ours and must not read like one on stderr.
fn is_caught_upload_abort(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let from_buffered = info
        .location()
        .is_some_and(|l| l.file().contains("object_store") && l.file().ends_with("buffered.rs"));
    let text = info
        .payload()
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
    from_buffered && text == Some("Already shut down")
}

/// The runtimes of query work (see `main`).
struct Runtimes {
    /// Reports, scheduled exports.
    query: tokio::runtime::Handle,
    /// Commits of pushes, the access log.
    commit: tokio::runtime::Handle,
    /// Analyst SQL, at a lower priority.
    sql: tokio::runtime::Handle,
}

/// Worker threads of analyst SQL. A plan that computes without waiting holds its
/// thread until it yields, which a CPU-bound operator seldom does; more threads than
/// cores (the kernel time-slices them) keep a thread free for a short query while long
/// ones run.
const SQL_THREADS: usize = 8;

/// Nice level of the analyst-SQL threads: under contention a thread at nice 10 gets
/// about a tenth of the CPU time of one at nice 0 (the kernel's weights 110 and 1024).
const SQL_THREAD_NICE: i32 = 10;

/// Lower the calling thread's priority to [`SQL_THREAD_NICE`] (Linux: the priority of a
/// thread id is the thread's own). Failure only costs fairness: it is logged.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), SQL_THREAD_NICE) {
        tracing::warn!(error = %e, "could not lower the priority of an analyst-SQL thread");
    }
}

/// Serve; `demo_token` also prints the demo's how-to with that token.
async fn serve(
    wh: Warehouse,
    bind: &str,
    port: u16,
    cfg: giamsat_api::ServerConfig,
    demo_token: Option<&str>,
    rts: Runtimes,
) -> anyhow::Result<()> {
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .map_err(|_| bad(format!("địa chỉ không hợp lệ: {bind}:{port}")))?;
    let root = wh.root().display().to_string();
    let pg_tls = giamsat_api::pg::tls_acceptor(&cfg.pg).map_err(bad)?;
    let pg_listen = cfg.pg.listen.clone();
    let flight_tls = giamsat_api::flight::tls_config(&cfg.flight).map_err(bad)?;
    let flight_listen = cfg.flight.listen.clone();
    let state = Arc::new(
        giamsat_api::AppState::new(wh, cfg.tokens, cfg.sql, rts.query, rts.sql, rts.commit)
            .await
            .map_err(classify_query)?
            .with_cache(cfg.cache)
            .with_auth(cfg.auth),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("không mở được cổng {addr}"))?;
    let local = listener.local_addr()?;
    // A closed stdout (e.g. a supervisor that read only the first line) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{local}");
    if let Some(a) = pg_listen {
        let pg = tokio::net::TcpListener::bind(&a)
            .await
            .with_context(|| format!("không mở được cổng PostgreSQL {a}"))?;
        let _ = writeln!(out, "postgresql on {}", pg.local_addr()?);
        tokio::spawn(giamsat_api::pg::serve(
            pg,
            state.clone(),
            pg_tls,
            state.sql_rt.clone(),
        ));
    }
    if let Some(a) = flight_listen {
        let flight = tokio::net::TcpListener::bind(&a)
            .await
            .with_context(|| format!("không mở được cổng Flight SQL {a}"))?;
        let _ = writeln!(out, "flight sql on {}", flight.local_addr()?);
        giamsat_api::flight::serve(flight, state.clone(), flight_tls, state.sql_rt.clone())
            .await
            .map_err(bad)?;
    }
    if let Some(token) = demo_token {
        let _ = writeln!(out, "token: {token}");
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Mở trình duyệt: http://{local}/#token={token}&from=2026-01-01&to=2026-03-31"
        );
        let _ = writeln!(
            out,
            "Thử API:  curl -H 'Authorization: Bearer {token}' 'http://{local}/api/v1/reports/bieu06?from=2026-01-01&to=2026-03-31&format=csv'"
        );
        let _ = writeln!(
            out,
            "Thử SQL:  cargo run -- --data {root} sql \"SELECT field_name, count(*) FROM dossiers GROUP BY 1 ORDER BY 2 DESC\""
        );
        let _ = writeln!(out, "Tài liệu API: http://{local}/api/docs");
        let _ = writeln!(out, "Dừng: Ctrl-C");
    }
    let _ = out.flush();
    giamsat_api::serve(listener, state).await?;
    Ok(())
}

fn print_batches(batches: &[datafusion_arrow::RecordBatch], format: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match format {
        "table" => {
            writeln!(
                out,
                "{}",
                datafusion_arrow::pretty::pretty_format_batches(batches)?
            )?;
        }
        "csv" => {
            let mut w = datafusion_arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
        }
        "json" => {
            let mut w = datafusion_arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        o => return Err(bad(format!("--format phải là table, csv hoặc json: {o}"))),
    }
    Ok(())
}

mod datafusion_arrow {
    pub use giamsat_queries::arrow::array::RecordBatch;
    pub use giamsat_queries::arrow::util::pretty;
    pub use giamsat_queries::arrow::{csv, json};
}

/// Stack of every runtime thread.
const QUERY_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GIAMSAT_LOG").unwrap_or_else(|_| {
        // deltalake logs a failed commit at error level before returning it; the
        // command reports that error itself, once
        tracing_subscriber::EnvFilter::new(
            "warn,buoyant_kernel=off,deltalake_core=error,deltalake_core::kernel::transaction=off",
        )
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    // A panic in a query task is answered (400/500) and the server goes on: one log
    // line, not a backtrace on stderr.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        if is_caught_upload_abort(info) {
            tracing::debug!(panic = %msg, "an upload that failed to complete was not aborted");
        } else {
            tracing::error!(panic = %msg, "panic");
        }
    }));
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<()> {
        // Query threads run plans whose depth the SQL limits bound (queries::guard);
        // 16 MiB holds every plan within them with room to spare.
        let query_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("giamsat-query")
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()?;
        let io_rt = tokio::runtime::Builder::new_multi_thread()
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()?;
        // analyst SQL: its own threads at a lower priority (nice), so the scheduler
        // gives the cores to reports, pushes and the HTTP threads first
        let sql_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(SQL_THREADS)
            .thread_name("giamsat-sql")
            .thread_stack_size(QUERY_STACK_BYTES)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        // the writers (group commits of pushes, the access log): their own threads, so
        // reports on the query threads never hold back an acknowledgement
        let commit_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("giamsat-commit")
            .thread_stack_size(QUERY_STACK_BYTES)
            .enable_all()
            .build()?;
        let rts = Runtimes {
            query: query_rt.handle().clone(),
            sql: sql_rt.handle().clone(),
            commit: commit_rt.handle().clone(),
        };
        let r = io_rt.block_on(run(cli, rts));
        io_rt.shutdown_background();
        query_rt.shutdown_background();
        sql_rt.shutdown_background();
        commit_rt.shutdown_background();
        r
    })();
    if let Err(e) = result {
        let code = if e.downcast_ref::<BadInput>().is_some() {
            2
        } else {
            1
        };
        eprintln!("giamsat: {}", one_line(&e));
        std::process::exit(code);
    }
}
