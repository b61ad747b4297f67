//! Helpers shared by the integration tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// `giamsat --data DATA ARGS…` (without `GIAMSAT_DATA` from the environment): its output.
pub fn run(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env_remove("GIAMSAT_DATA")
        .output()
        .expect("run giamsat")
}

/// Ingest a catalog and event files into a fresh warehouse with `config`.
pub async fn load(config: Config, procedures: &Path, events: &[PathBuf]) -> Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    let wh = Warehouse::open_with(dir.path(), config).expect("open");
    giamsat_ingest::ingest_paths(&wh, &Format::Procedures, None, &[procedures.to_path_buf()])
        .await
        .expect("procedures");
    let counts = giamsat_ingest::ingest_paths(&wh, &Format::Canonical, None, events)
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

/// The recon fixture (four sources, future events, quarantined records), loaded.
pub async fn load_recon(config: Config) -> Loaded {
    let f = root().join("fixtures/recon");
    load(
        config,
        &f.join("procedures.csv"),
        &[f.join("events.ndjson")],
    )
    .await
}

/// The `giamsat` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_giamsat");

/// A running server, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `giamsat serve --port 0` on `data` and return it with its port (from the
/// first stdout line, docs/contract.md §3).
pub fn start_server(data: &Path, extra: &[&str]) -> (Server, u16) {
    let (server, lines) = start_server_lines(data, extra, 1);
    let port = lines[0]
        .strip_prefix("listening on http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("first line: {:?}", lines[0]));
    (server, port)
}

/// Start `giamsat serve --port 0 --pg-port 0`: the server, its HTTP port and its
/// PostgreSQL port.
pub fn start_server_pg(data: &Path, extra: &[&str]) -> (Server, u16, u16) {
    start_server_door(data, "--pg-port", "postgresql on 127.0.0.1:", extra)
}

/// Start `giamsat serve --port 0 --flight-port 0`: the server, its HTTP port and its
/// Flight SQL port.
pub fn start_server_flight(data: &Path, extra: &[&str]) -> (Server, u16, u16) {
    start_server_door(data, "--flight-port", "flight sql on 127.0.0.1:", extra)
}

/// Start `giamsat serve` with one more door (`flag` 0), whose port the second line of
/// stdout gives after `prefix`.
fn start_server_door(data: &Path, flag: &str, prefix: &str, extra: &[&str]) -> (Server, u16, u16) {
    let mut args = vec![flag, "0"];
    args.extend_from_slice(extra);
    let (server, lines) = start_server_lines(data, &args, 2);
    let port = |l: &str, prefix: &str| -> u16 {
        l.strip_prefix(prefix)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("line: {l:?}"))
    };
    let http = port(&lines[0], "listening on http://127.0.0.1:");
    let door = port(&lines[1], prefix);
    (server, http, door)
}

/// Start `giamsat serve --port 0` and read the first `n` lines of its stdout.
fn start_server_lines(data: &Path, extra: &[&str], n: usize) -> (Server, Vec<String>) {
    let mut child = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(["serve", "--port", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a line");
        lines.push(line.trim().to_string());
    }
    (server, lines)
}

/// A reply: status, lower-case headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Run the binary on a data directory; it must succeed; its trimmed stdout.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

/// Ingest a procedure catalog, then event files one by one, through the binary.
pub fn ingest_all(data: &Path, procedures: &Path, events: &[PathBuf]) {
    cli(
        data,
        &[
            "ingest",
            "--format",
            "procedures",
            procedures.to_str().expect("path"),
        ],
    );
    for f in events {
        cli(data, &["ingest", f.to_str().expect("path")]);
    }
}

/// One HTTP/1.1 request over a fresh connection (Connection: close).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    request_with(port, method, path, token, &[], body)
}

/// [`request`] with extra headers.
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = body.unwrap_or("");
    let mut extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        extra.push_str("Content-Type: application/json\r\n");
    }
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http response");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: buf[split + 4..].to_vec(),
    }
}

/// GET, returning status and body text.
pub fn http(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let r = request(port, "GET", path, token, None);
    (r.status, r.text())
}
