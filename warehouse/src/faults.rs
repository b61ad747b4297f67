//! Storage that fails on purpose, for testing: an [`ObjectStore`] wrapper that injects
//! failures into writes (an error, a full disk, a torn write, a failed conditional put
//! or rename, a delay), deterministically from a seed.
//!
//! Installed for the `file://` scheme of every Delta table of the process by
//! [`install_from_env`] when `GIAMSAT_FAULTS` is set (`seed=42,rate=0.05`), so the real
//! commands (ingest, maintain, export, serve) run on it unchanged. Without the variable
//! nothing is wrapped. The n-th write operation of the process draws its fate from
//! `(seed, n)`: a run of a single-threaded command reproduces from its seed.
//!
//! Faults model what the local store can really do: a data file may be left partly
//! written (a torn write, then an error), but a commit in `_delta_log` is created
//! atomically or not at all, as `LocalFileSystem` guarantees (it writes a staging file
//! and links it into place).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deltalake::logstore::{object_store_factories, ObjectStoreFactory, ObjectStoreRef};
use deltalake::DeltaResult;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use url::Url;

/// The environment variable that turns fault injection on.
pub const ENV: &str = "GIAMSAT_FAULTS";

/// What to inject and how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Probability that one write operation fails.
    pub rate: f64,
    /// Write operations before the first fault may happen (e.g. past the set-up).
    pub after: u64,
}

impl FaultPlan {
    /// Parse `seed=42,rate=0.05[,after=N]`.
    pub fn parse(s: &str) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan {
            seed: 0,
            rate: 0.05,
            after: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{ENV}: '{part}' không có dạng khóa=giá trị"))?;
            let bad = || format!("{ENV}: giá trị không hợp lệ '{part}'");
            match k {
                "seed" => plan.seed = v.parse().map_err(|_| bad())?,
                "rate" => plan.rate = v.parse().map_err(|_| bad())?,
                "after" => plan.after = v.parse().map_err(|_| bad())?,
                _ => return Err(format!("{ENV}: khóa không biết '{k}' (seed, rate, after)")),
            }
        }
        if !(0.0..=1.0).contains(&plan.rate) {
            return Err(format!("{ENV}: rate phải trong [0, 1]"));
        }
        Ok(plan)
    }
}

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The operation fails with an I/O error and writes nothing.
    Error,
    /// No space left on the device (nothing written).
    DiskFull,
    /// Part of the data is written, then the operation fails (data files only).
    Torn,
    /// The operation waits, then succeeds.
    Delay,
}

/// The state shared by every wrapped store of the process.
#[derive(Debug)]
struct Dice {
    plan: FaultPlan,
    ops: AtomicU64,
    /// Operations seen per key (see [`Dice::roll`]).
    seen: Mutex<HashMap<String, u64>>,
}

impl Dice {
    fn new(plan: FaultPlan) -> Dice {
        Dice {
            plan,
            ops: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The fate of a write operation `op` on `path`. It depends on the seed, the
    /// operation, the path without its random parts (the UUID of a data file's name)
    /// and how many such operations came before: not on the order in which parallel
    /// writes happen to reach the store, so a seed reproduces.
    fn roll(&self, op: &str, path: &Path) -> Option<Fault> {
        let n = self.ops.fetch_add(1, Ordering::SeqCst);
        if n < self.plan.after {
            return None;
        }
        let key = format!("{op} {}", without_uuids(path.as_ref()));
        let k = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let c = seen.entry(key.clone()).or_insert(0);
            *c += 1;
            *c
        };
        let mut h = self.plan.seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in key.bytes() {
            h = mix(h ^ u64::from(b));
        }
        let h = mix(h ^ k);
        let p = (h >> 11) as f64 / (1u64 << 53) as f64;
        if p >= self.plan.rate {
            return None;
        }
        Some(match mix(h) % 4 {
            0 => Fault::Error,
            1 => Fault::DiskFull,
            2 => Fault::Torn,
            _ => Fault::Delay,
        })
    }
}

/// SplitMix64's finaliser: a well-spread hash of one word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn injected(op: &str, f: Fault, path: &Path) -> object_store::Error {
    let source: std::io::Error = match f {
        Fault::DiskFull => std::io::Error::from(std::io::ErrorKind::StorageFull),
        _ => std::io::Error::other(format!("injected fault ({f:?})")),
    };
    object_store::Error::Generic {
        store: "faults",
        source: Box::new(std::io::Error::new(
            source.kind(),
            format!("{op} {path}: {source}"),
        )),
    }
}

/// `s` with every UUID (8-4-4-4-12 hexadecimal digits) replaced by `*`.
fn without_uuids(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let is_uuid_at = |i: usize| {
        let mut j = i;
        for (g, len) in SHAPE.iter().enumerate() {
            if g > 0 {
                if b.get(j) != Some(&b'-') {
                    return false;
                }
                j += 1;
            }
            for _ in 0..*len {
                if !b.get(j).is_some_and(|c| c.is_ascii_hexdigit()) {
                    return false;
                }
                j += 1;
            }
        }
        true
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if is_uuid_at(i) {
            out.push('*');
            i += 36;
        } else {
            // the pattern is ASCII: copy one UTF-8 character
            let ch = s[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

fn in_log(path: &Path) -> bool {
    path.as_ref().contains("_delta_log")
}

/// An [`ObjectStore`] that fails some writes (see the module documentation).
#[derive(Debug)]
pub struct FaultStore {
    inner: ObjectStoreRef,
    dice: Arc<Dice>,
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

async fn pause() {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        match self.dice.roll("put", location) {
            None => self.inner.put_opts(location, payload, opts).await,
            Some(Fault::Delay) => {
                pause().await;
                self.inner.put_opts(location, payload, opts).await
            }
            Some(Fault::Torn) if !in_log(location) => {
                let bytes: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
                let cut = bytes.len() / 2;
                let _ = self
                    .inner
                    .put_opts(
                        location,
                        PutPayload::from(bytes[..cut].to_vec()),
                        PutOptions::default(),
                    )
                    .await;
                Err(injected("put", Fault::Torn, location))
            }
            Some(f) => Err(injected("put", f, location)),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        if let Some(f @ (Fault::Error | Fault::DiskFull)) = self.dice.roll("multipart", location) {
            return Err(injected("put_multipart", f, location));
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultUpload {
            inner,
            dice: self.dice.clone(),
            location: location.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        match self.dice.roll("copy", to) {
            Some(f @ (Fault::Error | Fault::DiskFull | Fault::Torn)) => {
                Err(injected("copy", f, to))
            }
            _ => self.inner.copy_opts(from, to, options).await,
        }
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        match self.dice.roll("rename", to) {
            Some(f @ (Fault::Error | Fault::DiskFull | Fault::Torn)) => {
                Err(injected("rename", f, to))
            }
            _ => self.inner.rename_opts(from, to, options).await,
        }
    }
}

/// A multipart upload whose parts or completion may fail.
#[derive(Debug)]
struct FaultUpload {
    inner: Box<dyn MultipartUpload>,
    dice: Arc<Dice>,
    location: Path,
}

#[async_trait]
impl MultipartUpload for FaultUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        match self.dice.roll("part", &self.location) {
            Some(f @ (Fault::Error | Fault::DiskFull)) => {
                let e = injected("put_part", f, &self.location);
                Box::pin(async move { Err(e) })
            }
            Some(Fault::Torn) => {
                // half of the part reaches the file, then the upload fails
                let bytes: Vec<u8> = data.iter().flat_map(|b| b.iter().copied()).collect();
                let half = self
                    .inner
                    .put_part(PutPayload::from(bytes[..bytes.len() / 2].to_vec()));
                let e = injected("put_part", Fault::Torn, &self.location);
                Box::pin(async move {
                    let _ = half.await;
                    Err(e)
                })
            }
            Some(Fault::Delay) => {
                let part = self.inner.put_part(data);
                Box::pin(async move {
                    pause().await;
                    part.await
                })
            }
            None => self.inner.put_part(data),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        match self.dice.roll("complete", &self.location) {
            Some(f @ (Fault::Error | Fault::DiskFull | Fault::Torn)) => {
                let _ = self.inner.abort().await;
                Err(injected("complete", f, &self.location))
            }
            _ => self.inner.complete().await,
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

/// Wraps the stores deltalake makes for `file://` tables.
struct FaultFactory {
    dice: Arc<Dice>,
}

impl ObjectStoreFactory for FaultFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &deltalake::logstore::StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let (store, path) = object_store::parse_url(url)?;
        let store: ObjectStoreRef = Arc::new(FaultStore {
            inner: Arc::from(store),
            dice: self.dice.clone(),
        });
        Ok((store, path))
    }
}

/// Wrap every `file://` table of this process in a [`FaultStore`] following `plan`.
pub fn install(plan: FaultPlan) {
    let dice = Arc::new(Dice::new(plan));
    let url = Url::parse("file://").unwrap_or_else(|_| unreachable!("a constant URL"));
    object_store_factories().insert(url, Arc::new(FaultFactory { dice }));
}

/// [`install`] the plan of `GIAMSAT_FAULTS` if it is set; a malformed value is an error.
pub fn install_from_env() -> Result<Option<FaultPlan>, String> {
    match std::env::var(ENV) {
        Ok(v) => {
            let plan = FaultPlan::parse(&v)?;
            install(plan);
            tracing::warn!(
                ?plan,
                "fault injection is on: writes to tables fail on purpose"
            );
            Ok(Some(plan))
        }
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_faults() {
        let plan = FaultPlan::parse("seed=7,rate=0.3").expect("plan");
        let run = || {
            let d = Dice::new(plan);
            (0..200)
                .map(|i| {
                    let p = Path::from(format!(
                        "t/part-0000{}-6a46d927-0be4-4048-bda5-540cd454114a-c000.parquet",
                        i % 3
                    ));
                    d.roll("put", &p)
                })
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().filter(|f| f.is_some()).count();
        // 30 % of 200, give or take
        assert!((35..=85).contains(&n), "{n}");
        for kind in [Fault::Error, Fault::DiskFull, Fault::Torn, Fault::Delay] {
            assert!(a.contains(&Some(kind)), "{kind:?}");
        }
        // the UUID of a file's name does not change its fate
        let d = Dice::new(plan);
        let e = Dice::new(plan);
        for i in 0..50 {
            let a = Path::from(format!(
                "t/part-00000-{:08x}-0be4-4048-bda5-540cd454114a-c000",
                i
            ));
            let b = Path::from(format!(
                "t/part-00000-{:08x}-1111-2222-3333-444455556666-c000",
                i + 7
            ));
            assert_eq!(d.roll("put", &a), e.roll("put", &b));
        }
        assert_eq!(
            without_uuids("a/x-6a46d927-0be4-4048-bda5-540cd454114a-c.json"),
            "a/x-*-c.json"
        );
        assert!(FaultPlan::parse("seed=x").is_err());
        assert!(FaultPlan::parse("rate=2").is_err());
        assert!(FaultPlan::parse("speed=1").is_err());
    }
}
