//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use giamsat_ingest::{Format, IngestCounts};
use giamsat_queries::SessionContext;
use giamsat_warehouse::config::Config;
use giamsat_warehouse::store::Warehouse;

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loaded warehouse in a temporary directory.
pub struct Loaded {
    pub _dir: tempfile::TempDir,
    pub wh: Warehouse,
    pub ctx: SessionContext,
    pub counts: IngestCounts,
}

/// Ingest a catalog and event files into a fresh warehouse with `config`.
pub async fn load(config: Config, procedures: &Path, events: &[PathBuf]) -> Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open_with(dir.path(), config).expect("open");
    giamsat_ingest::ingest_paths(&wh, Format::Procedures, None, &[procedures.to_path_buf()])
        .await
        .expect("procedures");
    let counts = giamsat_ingest::ingest_paths(&wh, Format::Canonical, None, events)
        .await
        .expect("events");
    let ctx = giamsat_queries::session(&wh).await.expect("session");
    Loaded {
        _dir: dir,
        wh,
        ctx,
        counts,
    }
}

/// The golden fixture, loaded.
pub async fn load_golden(config: Config) -> Loaded {
    let g = root().join("fixtures/golden");
    load(
        config,
        &g.join("procedures.csv"),
        &[g.join("events.ndjson")],
    )
    .await
}
