//! The dashboard's static files, embedded into the binary (no CDN, works offline).

/// The dashboard page (sign-in, overview, drill-down, Biểu 06, Decision 766, alerts, sources;
/// behind every count the list of its dossiers, `#/danh-sach?…`, and each dossier explained,
/// `#/ho-so/<id>`).
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The dashboard's script.
pub const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");

/// ECharts 5.6.0, vendored from npm (see `assets/vendor/README.md`).
pub const ECHARTS_JS: &str = include_str!("../assets/vendor/echarts.min.js");

/// The API documentation page (renders `/api/openapi.json`).
pub const DOCS_HTML: &str = include_str!("../assets/docs.html");

/// A static asset by its name under `/assets/` (a fixed list: no path reaches the file
/// system).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "dashboard.js" => Some(("text/javascript; charset=utf-8", DASHBOARD_JS)),
        "echarts.min.js" => Some(("text/javascript; charset=utf-8", ECHARTS_JS)),
        _ => None,
    }
}
