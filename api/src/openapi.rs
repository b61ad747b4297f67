//! The OpenAPI document, generated from the handlers, and the page that shows it.

use crate::error::ErrorBody;
use crate::push::IngestFormat;
use crate::push::IngestReply;
use crate::sql::SqlBody;
// the handlers and their generated `__path_` items, unqualified: a qualified path would
// tag each operation with its module name
use crate::export_handlers::{__path_export_file_handler, __path_exports_handler};
use crate::pages::{__path_healthz, __path_me_handler};
use crate::push::__path_events_handler;
use crate::report_handlers::{
    __path_alerts_handler, __path_bieu06_dossiers_handler, __path_bieu06_handler,
    __path_dossier_handler, __path_index766_dossiers_handler, __path_index766_handler,
    __path_on_time_handler, __path_overview_handler, __path_quality_handler, __path_recon_handler,
    __path_sources_handler,
};
use crate::sql::__path_sql_handler;
use axum::response::Html;
use axum::response::IntoResponse;
use axum::Json;
use giamsat_queries::bieu06::Row;
use utoipa::OpenApi;
use utoipa::ToSchema;

/// Report grouping (documentation only; parsed by `bieu06::GroupBy`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum GroupByParam {
    Field,
    Agency,
    Commune,
    Procedure,
}

/// Report formats (documentation only): `form-xlsx` and `pdf` are the official form.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)]
pub(crate) enum ReportFormat {
    Json,
    Csv,
    Xlsx,
    FormXlsx,
    Pdf,
}

/// SQL result formats (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum SqlFormat {
    Json,
    Csv,
    Parquet,
    Arrow,
}

pub(crate) struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of the server, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "giamsat", description = "Kho dữ liệu giám sát giải quyết thủ tục hành chính: báo cáo, chỉ số, SQL."),
    paths(healthz, me_handler, bieu06_handler, bieu06_dossiers_handler, index766_handler, index766_dossiers_handler, dossier_handler, on_time_handler, overview_handler, alerts_handler, recon_handler, sources_handler, quality_handler, sql_handler, events_handler, exports_handler, export_file_handler),
    components(schemas(Row, SqlBody, ErrorBody, GroupByParam, ReportFormat, SqlFormat, IngestFormat, IngestReply, giamsat_queries::drill::Column)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub(crate) async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

pub(crate) async fn docs() -> impl IntoResponse {
    Html(giamsat_dashboards::DOCS_HTML)
}
