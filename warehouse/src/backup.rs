//! Backup and restore of a data directory (`giamsat backup`, `giamsat restore`), safe
//! while a server writes to it.
//!
//! A backup is a copy of every Delta table at one pinned version — its log entries up to
//! that version (commits, checkpoints, `_last_checkpoint` only when it names a copied
//! checkpoint) and exactly the data files (and deletion vectors) that version reads —
//! plus the other files of the data directory (`config.toml`, `tokens.toml`, exported
//! files…), and a manifest, `BACKUP.json`, with every file's size and SHA-256.
//! Nothing a commit after the pinned version wrote is copied, so files appearing while
//! the copy runs do not matter; a file that disappears (vacuumed by `giamsat maintain`
//! under a short retention) makes the backup start again from newer versions, a bounded
//! number of times.
//!
//! The versions are chosen in the reverse of the order writers commit in, so that the
//! backup is a state the warehouse was in (or passes through when a writer stops between
//! two commits):
//!
//! 1. the tables nothing else depends on (`export_runs`, `access_log`,
//!    `quarantine_resolved`, any other), at their latest versions — a replay marks
//!    records resolved after committing their events, an export records the versions it
//!    read after reading them;
//! 2. `facts_stamp.json`, then the derived tables at the versions it names (they agree
//!    with the events version it names);
//! 3. `events`, then `procedures`, then `quarantine`, at their latest versions — a push
//!    commits its quarantined records before its events, and its events before the
//!    derived tables.
//!
//! The events of a backup can therefore be ahead of its derived tables, exactly as after
//! a crash between the events commit and the facts commit: the warehouse catches them up
//! when it next opens a session ([`Warehouse::ensure_facts`]); `restore` does it at once.
//!
//! The versions recorded export runs read (`export_runs.table_versions`) stay readable in
//! the backup (their data files are copied too), so `giamsat export rerun` of a run
//! recorded before the backup gives the same bytes from the restored directory.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use datafusion::prelude::SessionContext;
use deltalake::kernel::StorageType;
use deltalake::logstore::LogStore;
use deltalake::DeltaTable;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::derived::{local_path, FactsStamp};
use crate::store::{Warehouse, EVENTS, EXPORT_RUNS, PROCEDURES, QUARANTINE};
use crate::WarehouseError;

/// The manifest written last into a backup.
pub const MANIFEST: &str = "BACKUP.json";
/// Format of [`MANIFEST`].
pub const FORMAT: u32 = 1;
/// Attempts before a backup whose files keep disappearing gives up.
const MAX_ATTEMPTS: usize = 3;
const STAMP: &str = "facts_stamp.json";
const LAST_CHECKPOINT: &str = "_last_checkpoint";

/// Errors of backup and restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("thư mục {0} đã có dữ liệu: hãy chọn một thư mục mới hoặc rỗng")]
    NotEmpty(PathBuf),
    #[error("thư mục đích {0} không được nằm trong {1} hay chứa nó")]
    Nested(PathBuf, PathBuf),
    #[error("không có thư mục dữ liệu {0}")]
    NoData(PathBuf),
    #[error("{0} không phải bản sao lưu hoàn chỉnh của giamsat (thiếu {MANIFEST})")]
    NotABackup(PathBuf),
    #[error("bản sao lưu không hợp lệ: {0}")]
    Corrupt(String),
    #[error("bảng {table}: {message}")]
    Unsupported { table: String, message: String },
    #[error(
        "không còn tệp {0} mà nhật ký Delta cần (đã thử {MAX_ATTEMPTS} lần): `giamsat maintain` với thời gian giữ tệp quá ngắn đang chạy, hoặc thư mục dữ liệu đã hỏng"
    )]
    Vanished(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

impl BackupError {
    /// Whether the user can fix it (a wrong directory, a damaged backup), as opposed to a
    /// failure of the machine.
    /// Whose fault it is ([`ErrorKind`](crate::ErrorKind)).
    pub fn kind(&self) -> crate::ErrorKind {
        if self.is_user_error() {
            crate::ErrorKind::BadInput
        } else {
            crate::ErrorKind::Internal
        }
    }

    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            BackupError::NotEmpty(_)
                | BackupError::Nested(..)
                | BackupError::NoData(_)
                | BackupError::NotABackup(_)
                | BackupError::Corrupt(_)
                | BackupError::Warehouse(WarehouseError::Config(_))
        )
    }
}

impl From<deltalake::DeltaTableError> for BackupError {
    fn from(e: deltalake::DeltaTableError) -> Self {
        BackupError::Warehouse(WarehouseError::Delta(e))
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `BACKUP.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// When the versions were pinned (RFC 3339, UTC).
    pub created_at: String,
    /// The data directory backed up.
    pub source: String,
    /// How many times the copy started (more than 1: files disappeared meanwhile).
    pub attempts: usize,
    pub tables: Vec<TableBackup>,
    /// Every file of the backup but the manifest, by path.
    pub files: Vec<FileEntry>,
}

/// One table in a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableBackup {
    pub name: String,
    /// The version copied: the table's last version in the backup.
    pub version: u64,
    /// `latest`, or `facts_stamp` for the derived tables (the versions that agree with
    /// the events version the stamp names).
    pub pinned: String,
    /// Data files of that version, and their bytes.
    pub data_files: usize,
    pub data_bytes: u64,
    /// Older versions kept readable because a recorded export run reads them.
    pub kept_versions: Vec<u64>,
    /// Every file copied for the table (log, data, deletion vectors), and their bytes.
    pub files: usize,
    pub bytes: u64,
}

/// One file of a backup: its path under the backup (`/`-separated), size and SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreSummary {
    pub data: String,
    pub backup_created_at: String,
    pub tables: usize,
    pub files: usize,
    pub bytes: u64,
    /// Whether the derived tables had to be brought up to the restored events.
    pub derived_caught_up: bool,
}

impl Manifest {
    /// Files and bytes in all.
    pub fn totals(&self) -> (usize, u64) {
        (self.files.len(), self.files.iter().map(|f| f.bytes).sum())
    }
}

/// What a file is, for what happens when it disappears before it is copied.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Read by a pinned version (log entry, data file, deletion vector): start again.
    Pinned,
    /// Another file of the data directory (removed meanwhile): left out.
    Other,
}

/// A file to copy: from where, to which path under the backup, and for which table.
struct Planned {
    src: PathBuf,
    rel: String,
    kind: Kind,
    /// Size the Delta log records for a data file.
    size: Option<u64>,
    table: Option<String>,
}

/// The pinned state: files to copy, small files held in memory, the tables.
#[derive(Default)]
struct Plan {
    files: Vec<Planned>,
    contents: Vec<(String, Vec<u8>)>,
    tables: Vec<TableBackup>,
}

/// Back up the data directory `data` into `dest` (new or empty), while writers may be
/// committing. Returns the manifest written as `dest/BACKUP.json`.
pub async fn backup(data: &Path, dest: &Path) -> Result<Manifest, BackupError> {
    if !data.join("tables").is_dir() {
        return Err(BackupError::NoData(data.to_path_buf()));
    }
    let data = std::fs::canonicalize(data).map_err(io_at(data))?;
    let (dest, created) = prepare_dest(dest, &data)?;
    let result = backup_into(&data, &dest).await;
    if result.is_err() {
        clear(&dest, created);
    }
    result
}

async fn backup_into(data: &Path, dest: &Path) -> Result<Manifest, BackupError> {
    // reading needs no configuration: a broken config.toml is backed up as it is
    let wh = Warehouse::open_with(data, Config::default())?;
    let mut attempt = 1;
    loop {
        let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let plan = pin(&wh).await?;
        let to = dest.to_path_buf();
        let copied = tokio::task::spawn_blocking(move || copy_plan(plan, &to))
            .await
            .map_err(|e| WarehouseError::Data(e.to_string()))?;
        match copied {
            Ok((tables, files)) => {
                let manifest = Manifest {
                    format: FORMAT,
                    created_at,
                    source: data.display().to_string(),
                    attempts: attempt,
                    tables,
                    files,
                };
                write_manifest(dest, &manifest)?;
                let (n, bytes) = manifest.totals();
                tracing::info!(files = n, bytes, attempts = attempt, "backup written");
                return Ok(manifest);
            }
            Err(BackupError::Vanished(path)) if attempt < MAX_ATTEMPTS => {
                tracing::info!(file = %path.display(), attempt, "a pinned file disappeared; starting again from newer versions");
                clear_contents(dest)?;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// `dest` made ready: created, or existing and empty; never inside `data` nor holding it.
/// Returns its canonical path and whether it was created.
fn prepare_dest(dest: &Path, data: &Path) -> Result<(PathBuf, bool), BackupError> {
    let created = if dest.exists() {
        let empty = std::fs::read_dir(dest)
            .map_err(|_| BackupError::NotEmpty(dest.to_path_buf()))?
            .next()
            .is_none();
        if !empty {
            return Err(BackupError::NotEmpty(dest.to_path_buf()));
        }
        false
    } else {
        std::fs::create_dir_all(dest).map_err(io_at(dest))?;
        true
    };
    let canonical = std::fs::canonicalize(dest).map_err(io_at(dest))?;
    if canonical.starts_with(data) || data.starts_with(&canonical) {
        clear(&canonical, created);
        return Err(BackupError::Nested(dest.to_path_buf(), data.to_path_buf()));
    }
    Ok((canonical, created))
}

/// Remove what a failed backup or restore left: the directory if it was created, else
/// its contents.
fn clear(dir: &Path, created: bool) {
    let r = if created {
        std::fs::remove_dir_all(dir)
    } else {
        clear_contents(dir).map_err(|e| std::io::Error::other(e.to_string()))
    };
    if let Err(e) = r {
        tracing::warn!(dir = %dir.display(), error = %e, "could not clean up");
    }
}

fn clear_contents(dir: &Path) -> Result<(), BackupError> {
    for e in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let p = e.map_err(io_at(dir))?.path();
        let r = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(io_at(&p))?;
    }
    Ok(())
}

/// Tables of the data directory (directories of `tables/` with a Delta log).
fn table_names(root: &Path) -> Result<Vec<String>, BackupError> {
    let dir = root.join("tables");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
        let e = e.map_err(io_at(&dir))?;
        if e.path().join("_delta_log").is_dir() {
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The derived tables: the stamp names the versions of them that agree with events.
const DERIVED: [&str; 7] = [
    crate::store::DOSSIER_FACTS,
    crate::store::DOSSIER_STATES,
    crate::rollup::DAILY_ROLLUP,
    crate::health::DOSSIER_SOURCES,
    crate::health::SOURCE_DAYS,
    crate::open::OPEN_STATES,
    crate::discrepancy::DISCREPANCIES,
];

/// The version the stamp names for each of [`DERIVED`].
fn stamp_versions(s: &FactsStamp) -> BTreeMap<&'static str, Option<u64>> {
    DERIVED
        .into_iter()
        .zip([
            s.facts_version,
            s.states_version,
            s.rollup_version,
            s.dossier_sources_version,
            s.source_days_version,
            s.open_states_version,
            s.discrepancies_version,
        ])
        .collect()
}

/// Pin every table (in the order of the module documentation) and list what to copy.
async fn pin(wh: &Warehouse) -> Result<Plan, BackupError> {
    let names = table_names(wh.root())?;
    let derived: BTreeSet<&str> = DERIVED.into_iter().collect();
    let last = [EVENTS, PROCEDURES, QUARANTINE];
    let mut plan = Plan::default();
    let mut pinned: Vec<(String, DeltaTable, &'static str)> = Vec::new();

    // 1. tables that only refer to others
    for name in names
        .iter()
        .filter(|n| !derived.contains(n.as_str()) && !last.contains(&n.as_str()))
    {
        if let Some(t) = wh.open_table(name).await? {
            pinned.push((name.clone(), t, "latest"));
        }
    }
    // 2. the stamp, then the derived tables at the versions it names
    let stamp_path = wh.root().join(STAMP);
    let stamp_bytes = match std::fs::read(&stamp_path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_at(&stamp_path)(e)),
    };
    let stamp: Option<FactsStamp> = stamp_bytes
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    let at_stamp = stamp.as_ref().map(stamp_versions).unwrap_or_default();
    for name in names.iter().filter(|n| derived.contains(n.as_str())) {
        let wanted = at_stamp.get(name.as_str()).copied().flatten();
        let table = match wanted {
            Some(v) => match wh.open_table_at(name, v as i64).await {
                Ok(t) => t.map(|t| (t, "facts_stamp")),
                Err(e) => {
                    // a stamp naming a version the table does not have is stale: the
                    // warehouse rebuilds from the events when it next opens
                    tracing::warn!(table = %name, version = v, error = %e, "stamped version unreadable; latest copied");
                    wh.open_table(name).await?.map(|t| (t, "latest"))
                }
            },
            None => wh.open_table(name).await?.map(|t| (t, "latest")),
        };
        if let Some((t, how)) = table {
            pinned.push((name.clone(), t, how));
        }
    }
    if let Some(b) = stamp_bytes {
        plan.contents.push((STAMP.to_string(), b));
    }
    // 3. events, the catalog, the quarantine
    for name in last {
        if names.iter().any(|n| n == name) {
            if let Some(t) = wh.open_table(name).await? {
                pinned.push((name.to_string(), t, "latest"));
            }
        }
    }

    // versions recorded export runs read (in the export history as pinned)
    let mut keep: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    if let Some((_, t, _)) = pinned.iter().find(|(n, _, _)| n == EXPORT_RUNS) {
        for (table, v) in export_pins(t).await? {
            keep.entry(table).or_default().insert(v);
        }
    }

    for (name, table, how) in pinned {
        let keep = keep.remove(&name).unwrap_or_default();
        plan_table(wh, &name, &table, how, &keep, &mut plan).await?;
    }
    plan_other_files(wh.root(), &mut plan)?;
    Ok(plan)
}

/// The (table, version) pairs the export runs of this `export_runs` version read (the
/// api crate records them as a JSON object in `table_versions`).
async fn export_pins(t: &DeltaTable) -> Result<Vec<(String, u64)>, WarehouseError> {
    let ctx = SessionContext::new();
    t.update_datafusion_session(&ctx.state())?;
    ctx.register_table(EXPORT_RUNS, t.table_provider().await?)?;
    let df = ctx.table(EXPORT_RUNS).await?;
    if df
        .schema()
        .field_with_unqualified_name("table_versions")
        .is_err()
    {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for b in &df.select_columns(&["table_versions"])?.collect().await? {
        let col = crate::event::string_col(b, "table_versions")?;
        for i in 0..b.num_rows() {
            let Ok(m) = serde_json::from_str::<BTreeMap<String, i64>>(col.value(i)) else {
                continue;
            };
            out.extend(
                m.into_iter()
                    .filter(|(_, v)| *v >= 0)
                    .map(|(t, v)| (t, v as u64)),
            );
        }
    }
    Ok(out)
}

/// Path of `p` under `base`, `/`-separated.
fn rel_path(p: &Path, base: &Path) -> Option<String> {
    let rel = p.strip_prefix(base).ok()?;
    let parts: Option<Vec<&str>> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    parts.filter(|p| !p.is_empty()).map(|p| p.join("/"))
}

/// The data files (with their recorded sizes) and deletion vectors a table version reads,
/// as paths under the table directory.
fn version_files(
    name: &str,
    table: &DeltaTable,
    dir: &Path,
    out: &mut BTreeMap<String, Option<u64>>,
) -> Result<(usize, u64), BackupError> {
    let unsupported = |message: String| BackupError::Unsupported {
        table: name.to_string(),
        message,
    };
    let store = table.log_store();
    let root = url::Url::from_directory_path(dir)
        .map_err(|_| unsupported(format!("đường dẫn không hợp lệ {}", dir.display())))?;
    let (mut n, mut bytes) = (0, 0);
    for f in table.snapshot()?.log_data() {
        let path = local_path(&store.to_uri(&f.object_store_path()))?;
        let rel = rel_path(&path, dir).ok_or_else(|| {
            unsupported(format!(
                "tệp dữ liệu {} nằm ngoài thư mục của bảng",
                path.display()
            ))
        })?;
        let size = f.size().max(0) as u64;
        out.insert(rel, Some(size));
        n += 1;
        bytes += size;
        if let Some(dv) = f.deletion_vector_descriptor() {
            let dv_path = match dv.storage_type {
                StorageType::Inline => None,
                StorageType::UuidRelativePath => {
                    let rel = dv_relative_path(&dv.path_or_inline_dv).ok_or_else(|| {
                        unsupported(format!(
                            "vector xoá không đọc được: {}",
                            dv.path_or_inline_dv
                        ))
                    })?;
                    Some(local_path(
                        root.join(&rel)
                            .map_err(|e| unsupported(e.to_string()))?
                            .as_str(),
                    )?)
                }
                StorageType::AbsolutePath => Some(local_path(&dv.path_or_inline_dv)?),
            };
            if let Some(p) = dv_path {
                let rel = rel_path(&p, dir).ok_or_else(|| {
                    unsupported(format!(
                        "vector xoá {} nằm ngoài thư mục của bảng",
                        p.display()
                    ))
                })?;
                out.entry(rel).or_insert(None);
            }
        }
    }
    Ok((n, bytes))
}

/// The log entries of versions up to `version`, by file name: commits, checksums and
/// checkpoints (single or multi-part).
fn log_entry_version(file: &str) -> Option<u64> {
    let (digits, rest) = file.split_at_checked(20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v = digits.parse().ok()?;
    let ok = rest == ".json"
        || rest == ".crc"
        || (rest.starts_with(".checkpoint.") && rest.ends_with(".parquet"));
    ok.then_some(v)
}

/// Plan the copy of one pinned table: its log up to the version, the files of that
/// version and of the versions in `keep` (older ones only).
async fn plan_table(
    wh: &Warehouse,
    name: &str,
    table: &DeltaTable,
    how: &str,
    keep: &BTreeSet<u64>,
    plan: &mut Plan,
) -> Result<(), BackupError> {
    let version = table.version().unwrap_or(0);
    let dir = wh.table_path(name);
    let log = dir.join("_delta_log");
    let mut files: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let (data_files, data_bytes) = version_files(name, table, &dir, &mut files)?;
    let mut kept = Vec::new();
    for &v in keep.iter().filter(|v| **v < version) {
        match wh.open_table_at(name, v as i64).await {
            Ok(Some(t)) => {
                version_files(name, &t, &dir, &mut files)?;
                kept.push(v);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(table = name, version = v, error = %e, "a version an export run read is unreadable; not kept");
            }
        }
    }

    // the log up to the version
    let mut checkpoints = BTreeSet::new();
    let mut log_files = Vec::new();
    for e in std::fs::read_dir(&log).map_err(io_at(&log))? {
        let e = e.map_err(io_at(&log))?;
        let file = e.file_name().to_string_lossy().into_owned();
        if file == "_sidecars" && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
        {
            return Err(BackupError::Unsupported {
                table: name.to_string(),
                message: "checkpoint v2 (_sidecars) chưa được hỗ trợ".into(),
            });
        }
        match log_entry_version(&file) {
            Some(v) if v <= version => {
                if file.contains(".checkpoint.") {
                    checkpoints.insert(v);
                }
                log_files.push(file);
            }
            _ => {}
        }
    }
    // `_last_checkpoint` only when it names a checkpoint copied; readers list the log
    // without it
    match std::fs::read(log.join(LAST_CHECKPOINT)) {
        Ok(b) => {
            let named = serde_json::from_slice::<serde_json::Value>(&b)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
            if named.is_some_and(|v| checkpoints.contains(&v)) {
                plan.contents
                    .push((format!("tables/{name}/_delta_log/{LAST_CHECKPOINT}"), b));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at(&log.join(LAST_CHECKPOINT))(e)),
    }
    for file in log_files {
        files.insert(format!("_delta_log/{file}"), None);
    }

    for (rel, size) in files {
        plan.files.push(Planned {
            src: dir.join(&rel),
            rel: format!("tables/{name}/{rel}"),
            kind: Kind::Pinned,
            size,
            table: Some(name.to_string()),
        });
    }
    tracing::debug!(table = name, version, how, data_files, "pinned");
    plan.tables.push(TableBackup {
        name: name.to_string(),
        version,
        pinned: how.to_string(),
        data_files,
        data_bytes,
        kept_versions: kept,
        files: 0,
        bytes: 0,
    });
    Ok(())
}

/// The files of the data directory outside `tables/` (configuration, tokens, exported
/// files…), but the stamp (copied as pinned), a manifest, the lock files and temporary
/// files.
fn plan_other_files(root: &Path, plan: &mut Plan) -> Result<(), BackupError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io_at(&dir))? {
            let e = e.map_err(io_at(&dir))?;
            let p = e.path();
            let Some(rel) = rel_path(&p, root) else {
                tracing::warn!(path = %p.display(), "name not UTF-8; not backed up");
                continue;
            };
            // `locks/` holds the writers' lock files: a state of this machine, not data
            if rel == "tables"
                || rel == "locks"
                || rel == STAMP
                || rel == MANIFEST
                || rel.ends_with(".tmp")
            {
                continue;
            }
            let ft = e.file_type().map_err(io_at(&p))?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                plan.files.push(Planned {
                    src: p,
                    rel,
                    kind: Kind::Other,
                    size: None,
                    table: None,
                });
            } else {
                tracing::warn!(path = %p.display(), "not a regular file; not backed up");
            }
        }
    }
    Ok(())
}

/// Copy `src` to `dst` (creating its directory), fsync'd: its size and SHA-256.
fn copy_file(src: &Path, dst: &Path) -> std::io::Result<(u64, String)> {
    let mut input = std::fs::File::open(src)?;
    if let Some(d) = dst.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut output = std::fs::File::create(dst)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 18];
    let mut n = 0u64;
    loop {
        let k = input.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        output.write_all(&buf[..k])?;
        n += k as u64;
    }
    output.sync_all()?;
    Ok((n, hex::encode(h.finalize())))
}

fn write_bytes(dst: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(d) = dst.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::File::create(dst)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// fsync `root` and every directory under it.
fn sync_dirs(root: &Path) -> std::io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
        }
        std::fs::File::open(&d)?.sync_all()?;
    }
    Ok(())
}

/// Copy a plan into `dest`: the tables (with their copied files and bytes) and every
/// file's entry, sorted by path.
fn copy_plan(plan: Plan, dest: &Path) -> Result<(Vec<TableBackup>, Vec<FileEntry>), BackupError> {
    let mut entries = Vec::with_capacity(plan.files.len() + plan.contents.len());
    let mut per_table: BTreeMap<String, (usize, u64)> = BTreeMap::new();
    for f in plan.files {
        let dst = dest.join(&f.rel);
        let (bytes, sha256) = match copy_file(&f.src, &dst) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && f.kind == Kind::Pinned => {
                // the source disappeared (the destination's directory is ours)
                if !f.src.exists() {
                    return Err(BackupError::Vanished(f.src));
                }
                return Err(io_at(&dst)(e));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !f.src.exists() => {
                tracing::debug!(path = %f.src.display(), "removed before it was copied");
                continue;
            }
            Err(e) => return Err(io_at(&f.src)(e)),
        };
        if let Some(want) = f.size {
            if want != bytes {
                return Err(BackupError::Corrupt(format!(
                    "{}: {bytes} byte, nhật ký Delta ghi {want} byte",
                    f.src.display()
                )));
            }
        }
        if let Some(t) = &f.table {
            let e = per_table.entry(t.clone()).or_default();
            e.0 += 1;
            e.1 += bytes;
        }
        entries.push(FileEntry {
            path: f.rel,
            bytes,
            sha256,
        });
    }
    for (rel, bytes) in plan.contents {
        let dst = dest.join(&rel);
        write_bytes(&dst, &bytes).map_err(io_at(&dst))?;
        if let Some(t) = rel
            .strip_prefix("tables/")
            .and_then(|r| r.split('/').next())
        {
            let e = per_table.entry(t.to_string()).or_default();
            e.0 += 1;
            e.1 += bytes.len() as u64;
        }
        entries.push(FileEntry {
            path: rel,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut tables = plan.tables;
    for t in &mut tables {
        (t.files, t.bytes) = per_table.get(&t.name).copied().unwrap_or_default();
    }
    Ok((tables, entries))
}

/// Write the manifest last (temporary file renamed), then make the directories durable.
fn write_manifest(dest: &Path, m: &Manifest) -> Result<(), BackupError> {
    let text = serde_json::to_vec_pretty(m).map_err(|e| WarehouseError::Data(e.to_string()))?;
    let tmp = dest.join(format!("{MANIFEST}.tmp"));
    write_bytes(&tmp, &text).map_err(io_at(&tmp))?;
    let path = dest.join(MANIFEST);
    std::fs::rename(&tmp, &path).map_err(io_at(&path))?;
    sync_dirs(dest).map_err(io_at(dest))?;
    Ok(())
}

/// Read and check the manifest of a backup.
pub fn read_manifest(backup: &Path) -> Result<Manifest, BackupError> {
    let path = backup.join(MANIFEST);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BackupError::NotABackup(backup.to_path_buf()))
        }
        Err(e) => return Err(io_at(&path)(e)),
    };
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| BackupError::Corrupt(format!("{MANIFEST}: {e}")))?;
    if m.format != FORMAT {
        return Err(BackupError::Corrupt(format!(
            "{MANIFEST}: định dạng {} không được hỗ trợ (cần {FORMAT})",
            m.format
        )));
    }
    for f in &m.files {
        if !safe_rel(&f.path) {
            return Err(BackupError::Corrupt(format!(
                "{MANIFEST}: đường dẫn không hợp lệ {:?}",
                f.path
            )));
        }
    }
    Ok(m)
}

/// A relative path that stays under its directory.
fn safe_rel(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'))
}

/// Verify a backup against its manifest (every file present, with its size and SHA-256)
/// while copying it into `data` (new or empty), check that every table opens at the
/// version backed up with its number of files, then bring the derived tables up to the
/// restored events. On failure `data` is left as it was found.
pub async fn restore(backup: &Path, data: &Path) -> Result<RestoreSummary, BackupError> {
    let m = read_manifest(backup)?;
    let backup = std::fs::canonicalize(backup).map_err(io_at(backup))?;
    let (data, created) = prepare_dest(data, &backup)?;
    let result = restore_into(&m, &backup, &data).await;
    if result.is_err() {
        clear(&data, created);
    }
    result
}

async fn restore_into(
    m: &Manifest,
    backup: &Path,
    data: &Path,
) -> Result<RestoreSummary, BackupError> {
    let (files, from, to) = (m.files.clone(), backup.to_path_buf(), data.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
        let (backup, data) = (from.as_path(), to.as_path());
        for f in &files {
            let src = backup.join(&f.path);
            let dst = data.join(&f.path);
            let (bytes, sha256) = match copy_file(&src, &dst) {
                Ok(x) => x,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !src.exists() => {
                    return Err(BackupError::Corrupt(format!("thiếu tệp {}", f.path)))
                }
                Err(e) => return Err(io_at(&src)(e)),
            };
            if bytes != f.bytes || sha256 != f.sha256 {
                return Err(BackupError::Corrupt(format!(
                    "tệp {} khác bản ghi trong {MANIFEST} ({bytes} byte, SHA-256 {}…; cần {} byte, {}…)",
                    f.path,
                    &sha256[..12.min(sha256.len())],
                    f.bytes,
                    &f.sha256[..12.min(f.sha256.len())]
                )));
            }
        }
        std::fs::create_dir_all(data.join("tables")).map_err(io_at(data))?;
        sync_dirs(data).map_err(io_at(data))
    })
    .await
    .map_err(|e| WarehouseError::Data(e.to_string()))??;
    let wh = Warehouse::open(data)?;
    for t in &m.tables {
        let table = wh.open_table(&t.name).await?.ok_or_else(|| {
            BackupError::Corrupt(format!("bảng {} không có nhật ký Delta", t.name))
        })?;
        let version = table.version().unwrap_or(0);
        let files = table.snapshot()?.log_data().num_files();
        if version != t.version || files != t.data_files {
            return Err(BackupError::Corrupt(format!(
                "bảng {}: phiên bản {version} với {files} tệp dữ liệu, {MANIFEST} ghi phiên bản {} với {} tệp",
                t.name, t.version, t.data_files
            )));
        }
    }
    let caught_up = wh.ensure_facts().await?;
    let (files, bytes) = m.totals();
    tracing::info!(files, bytes, caught_up, "backup restored");
    Ok(RestoreSummary {
        data: data.display().to_string(),
        backup_created_at: m.created_at.clone(),
        tables: m.tables.len(),
        files,
        bytes,
        derived_caught_up: caught_up,
    })
}

/// The path of a deletion vector stored next to the data (`storageType` `u`): an
/// optional directory prefix, then the file named after the UUID that the last 20
/// characters encode in Z85.
fn dv_relative_path(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let split = bytes.len().checked_sub(20)?;
    let uuid = z85_decode(&bytes[split..])?;
    let prefix = std::str::from_utf8(&bytes[..split]).ok()?;
    let h = hex::encode(uuid);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    Some(if prefix.is_empty() {
        format!("deletion_vector_{uuid}.bin")
    } else {
        format!("{prefix}/deletion_vector_{uuid}.bin")
    })
}

/// Z85 (ZeroMQ base-85) decoding of 20 characters into 16 bytes.
fn z85_decode(s: &[u8]) -> Option<[u8; 16]> {
    const ALPHABET: &[u8; 85] =
        b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if s.len() != 20 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, chunk) in s.chunks(5).enumerate() {
        let mut v: u64 = 0;
        for c in chunk {
            let d = ALPHABET.iter().position(|a| a == c)? as u64;
            v = v * 85 + d;
        }
        let v = u32::try_from(v).ok()?;
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_vector_paths_follow_the_delta_protocol() {
        // the examples of the Delta kernel's own tests
        assert_eq!(
            dv_relative_path("vBn[lx{q8@P<9BNH/isA").as_deref(),
            Some("deletion_vector_61d16c75-6994-46b7-a15b-8b538852e50e.bin")
        );
        assert_eq!(
            dv_relative_path("ab^-aqEH.-t@S}K{vb[*k^").as_deref(),
            Some("ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin")
        );
        assert_eq!(dv_relative_path("short"), None);
        assert_eq!(dv_relative_path("ab~~~~~~~~~~~~~~~~~~~~"), None);
    }

    #[test]
    fn log_entries_are_selected_by_version() {
        let v = log_entry_version;
        assert_eq!(v("00000000000000000007.json"), Some(7));
        assert_eq!(v("00000000000000000007.crc"), Some(7));
        assert_eq!(v("00000000000000000010.checkpoint.parquet"), Some(10));
        assert_eq!(
            v("00000000000000000010.checkpoint.0000000001.0000000002.parquet"),
            Some(10)
        );
        assert_eq!(v("_last_checkpoint"), None);
        assert_eq!(v("_commit_3f2a.json.tmp"), None);
        assert_eq!(v("00000000000000000007.json.tmp"), None);
        assert_eq!(v("0000000000000000000x.json"), None);
    }

    #[test]
    fn the_stamp_names_every_derived_table() {
        let s: FactsStamp = serde_json::from_str(
            r#"{"events_version":3,"procedures_version":1,"calendar":"","rules":"",
                "dossiers":0,"states":0,"facts_version":4,"states_version":5,
                "rollup_version":6,"dossier_sources_version":7,"source_days_version":8,
                "open_states_version":9,"discrepancies_version":10}"#,
        )
        .expect("stamp");
        let v = stamp_versions(&s);
        assert_eq!(v.len(), DERIVED.len());
        assert_eq!(v[crate::store::DOSSIER_FACTS], Some(4));
        assert_eq!(v[crate::discrepancy::DISCREPANCIES], Some(10));
        assert!(v.values().all(Option::is_some));
    }

    #[test]
    fn manifest_paths_stay_inside() {
        assert!(safe_rel(
            "tables/events/_delta_log/00000000000000000000.json"
        ));
        assert!(safe_rel("config.toml"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\..\\b",
        ] {
            assert!(!safe_rel(bad), "{bad}");
        }
    }
}
