//! The dashboard's static files, embedded into the binary (no CDN, works offline).

/// The first page: the Biểu 06 table for a chosen date range.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// The API documentation page (renders `/api/openapi.json`).
pub const DOCS_HTML: &str = include_str!("../assets/docs.html");
