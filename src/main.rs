//! The `giamsat` binary: wires ingest, warehouse, queries and api together (CONTRACT §3).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use giamsat_ingest::{generate, Format, IngestError};
use giamsat_queries::{bieu06, QueryError};
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
        /// Bearer token to accept (default: a new random one, printed once).
        #[arg(long, env = "GIAMSAT_TOKEN")]
        token: Option<String>,
    },
    /// Generate a province, ingest it and serve it (first run: ~100k dossiers).
    Demo {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value_t = 100_000)]
        dossiers: u64,
    },
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
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
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
        QueryError::BadInput(m) => bad(m),
        QueryError::Warehouse(giamsat_warehouse::WarehouseError::Config(m)) => bad(m),
        other => anyhow::Error::new(other),
    }
}

fn open_wh(data: &Path) -> anyhow::Result<Warehouse> {
    Warehouse::open(data).map_err(|e| match e {
        giamsat_warehouse::WarehouseError::Config(m) => bad(m),
        other => {
            anyhow::Error::new(other).context(format!("mở thư mục dữ liệu {}", data.display()))
        }
    })
}

fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    // 128 bits from the OS-seeded hasher keys of two RandomStates plus time and pid
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

async fn run(cli: Cli, query_rt: tokio::runtime::Handle) -> anyhow::Result<()> {
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
            let stats = generate::generate(&out, &p).map_err(classify_ingest)?;
            println!("{}", serde_json::to_string(&stats)?);
        }
        Cmd::Ingest {
            format,
            source,
            profile,
            paths,
        } => {
            let format = match format.as_str() {
                "canonical" => Format::Canonical,
                "procedures" => Format::Procedures,
                "dvcqg" | "csv" => {
                    return Err(bad(format!(
                        "định dạng {format} chưa được hỗ trợ trong phiên bản này"
                    )))
                }
                o => {
                    return Err(bad(format!(
                        "định dạng không hợp lệ: {o} (canonical|dvcqg|csv|procedures)"
                    )))
                }
            };
            if profile.is_some() {
                return Err(bad("--profile chỉ dùng với --format csv"));
            }
            let wh = open_wh(&cli.data)?;
            let counts = giamsat_ingest::ingest_paths(&wh, format, source.as_deref(), &paths)
                .await
                .map_err(classify_ingest)?;
            println!("{}", serde_json::to_string(&counts)?);
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
            let from = bieu06::parse_date("--from", &from).map_err(classify_query)?;
            let to = bieu06::parse_date("--to", &to).map_err(classify_query)?;
            let group_by = bieu06::GroupBy::parse(&group_by).map_err(classify_query)?;
            let params = bieu06::Params::new(from, to, province, commune, group_by)
                .map_err(classify_query)?;
            if !matches!(format.as_str(), "csv" | "json") {
                return Err(bad(format!("--format phải là csv hoặc json: {format}")));
            }
            let wh = open_wh(&cli.data)?;
            let ctx = giamsat_queries::session(&wh)
                .await
                .map_err(classify_query)?;
            let rows = bieu06::run(&ctx, &wh.calendar, &params)
                .await
                .map_err(classify_query)?;
            let text = if format == "json" {
                serde_json::to_string_pretty(&rows)? + "\n"
            } else {
                bieu06::to_csv(&rows).map_err(classify_query)?
            };
            match output {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("ghi {}", p.display()))?
                }
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
        }
        Cmd::Sql { sql, format } => {
            let wh = open_wh(&cli.data)?;
            let ctx = giamsat_queries::session(&wh)
                .await
                .map_err(classify_query)?;
            let batches = giamsat_queries::run_sql(&ctx, &sql)
                .await
                .map_err(classify_query)?;
            print_batches(&batches, &format)?;
        }
        Cmd::Serve { port, bind, token } => {
            let wh = open_wh(&cli.data)?;
            let token = token.unwrap_or_else(random_token);
            serve(wh, &bind, port, &token, query_rt, false).await?;
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
                giamsat_ingest::ingest_paths(
                    &wh,
                    Format::Procedures,
                    None,
                    &[gen_dir.join("procedures.csv")],
                )
                .await
                .map_err(classify_ingest)?;
                let c = giamsat_ingest::ingest_paths(
                    &wh,
                    Format::Canonical,
                    None,
                    &[gen_dir.join("events.ndjson")],
                )
                .await
                .map_err(classify_ingest)?;
                eprintln!("Đã nạp: {}", serde_json::to_string(&c)?);
            }
            let token = random_token();
            serve(wh, "127.0.0.1", port, &token, query_rt, true).await?;
        }
    }
    Ok(())
}

async fn serve(
    wh: Warehouse,
    bind: &str,
    port: u16,
    token: &str,
    query_rt: tokio::runtime::Handle,
    demo: bool,
) -> anyhow::Result<()> {
    let ctx = giamsat_queries::session(&wh)
        .await
        .map_err(classify_query)?;
    let addr: SocketAddr = format!("{bind}:{port}")
        .parse()
        .map_err(|_| bad(format!("địa chỉ không hợp lệ: {bind}:{port}")))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("không mở được cổng {addr}"))?;
    let local = listener.local_addr()?;
    // A closed stdout (e.g. a supervisor that read only the first line) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{local}");
    let _ = writeln!(out, "token: {token}");
    if demo {
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
            "Thử SQL:  cargo run -- --data {} sql \"SELECT field_name, count(*) FROM dossiers GROUP BY 1 ORDER BY 2 DESC\"",
            wh.root().display()
        );
        let _ = writeln!(out, "Dừng: Ctrl-C");
    }
    let _ = out.flush();
    let state = Arc::new(giamsat_api::AppState {
        warehouse: Arc::new(wh),
        ctx,
        token_hashes: vec![giamsat_api::hash_token(token)],
        query_rt,
    });
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

fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GIAMSAT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,buoyant_kernel=off,deltalake_core=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = (|| -> anyhow::Result<()> {
        let query_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("giamsat-query")
            .enable_all()
            .build()?;
        let io_rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let handle = query_rt.handle().clone();
        let r = io_rt.block_on(run(cli, handle));
        io_rt.shutdown_background();
        query_rt.shutdown_background();
        r
    })();
    if let Err(e) = result {
        let code = if e.downcast_ref::<BadInput>().is_some() {
            2
        } else {
            1
        };
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("giamsat: {msg}");
        std::process::exit(code);
    }
}
