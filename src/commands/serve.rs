//! `giamsat serve` and `demo`: the HTTP server (and its PostgreSQL and Flight SQL doors)
//! on a data directory; the demo generates and loads a province first.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::runtime::Runtimes;
use anyhow::Context;
use clap::Args;
use giamsat_ingest::{generate, Format};
use giamsat_warehouse::store::Warehouse;

use crate::fail::{bad, classify_ingest, classify_query};
use crate::open::open_wh;

// the options of `serve`
#[derive(Args)]
pub struct ServeArgs {
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Server configuration (TOML: `[sql]` limits, `[[token]]` hashed tokens).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// An extra admin token to accept for this run (tokens are normally added
    /// with `giamsat token add`).
    #[arg(long, env = "GIAMSAT_TOKEN")]
    pub token: Option<String>,
    /// Also serve the PostgreSQL wire protocol on this port of `--bind` (0: any free
    /// port; printed as the second line); or `[pg] listen` in the configuration.
    #[arg(long)]
    pub pg_port: Option<u16>,
    /// Also serve Arrow Flight SQL (gRPC) on this port of `--bind` (0: any free port;
    /// printed on its own line after the PostgreSQL one); or `[flight] listen`.
    #[arg(long)]
    pub flight_port: Option<u16>,
}

// the options of `demo`
#[derive(Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long, default_value_t = 100_000)]
    pub dossiers: u64,
}

pub async fn run(data: &Path, args: ServeArgs, rts: Runtimes) -> anyhow::Result<()> {
    let ServeArgs {
        port,
        bind,
        config,
        token,
        pg_port,
        flight_port,
    } = args;
    let wh = open_wh(data)?;
    let mut cfg = match config {
        Some(p) => giamsat_api::ServerConfig::from_file(&p).map_err(bad)?,
        None => giamsat_api::ServerConfig::default(),
    };
    // the server re-reads <data>/tokens.toml itself; read here only to refuse a
    // broken file at start and to say when there is no token at all
    let stored = giamsat_api::auth::load_tokens(data).map_err(|e| bad(e.to_string()))?;
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
    serve_on(wh, &bind, port, cfg, None, rts).await?;

    Ok(())
}

pub async fn demo(data: &Path, args: DemoArgs, rts: Runtimes) -> anyhow::Result<()> {
    let DemoArgs { port, dossiers } = args;
    let data = data.to_path_buf();
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
    serve_on(wh, "127.0.0.1", port, cfg, Some(&token), rts).await?;

    Ok(())
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

/// Serve; `demo_token` also prints the demo's how-to with that token.
async fn serve_on(
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
