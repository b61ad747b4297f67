//! Data-quality report (issue #5): binds the parameters of `sql/quality.sql` and returns
//! the number of dossiers per issue (every issue, zero included) and the first `limit`
//! dossiers of each issue.

use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::common::{self, Cols};
use crate::QueryError;

/// The SQL file, verbatim.
pub const SQL: &str = include_str!("../sql/quality.sql");

/// Default number of dossiers listed per issue.
pub const DEFAULT_LIMIT: usize = 100;

/// A data-quality issue, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Issue {
    NoReceived,
    Rejected,
    NoDeadline,
    NoProcedure,
    UnknownProcedure,
    UnknownCommune,
    EndedBeforeReceived,
    OverdueReset,
    ResolvedOpenSupplement,
}

impl Issue {
    pub const ALL: [Issue; 9] = [
        Issue::NoReceived,
        Issue::Rejected,
        Issue::NoDeadline,
        Issue::NoProcedure,
        Issue::UnknownProcedure,
        Issue::UnknownCommune,
        Issue::EndedBeforeReceived,
        Issue::OverdueReset,
        Issue::ResolvedOpenSupplement,
    ];

    /// The code used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Issue::NoReceived => "no_received",
            Issue::Rejected => "rejected",
            Issue::NoDeadline => "no_deadline",
            Issue::NoProcedure => "no_procedure",
            Issue::UnknownProcedure => "unknown_procedure",
            Issue::UnknownCommune => "unknown_commune",
            Issue::EndedBeforeReceived => "ended_before_received",
            Issue::OverdueReset => "overdue_reset",
            Issue::ResolvedOpenSupplement => "resolved_open_supplement",
        }
    }

    /// Parse an issue code.
    pub fn parse(s: &str) -> Option<Issue> {
        Issue::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Vietnamese label.
    pub fn label(self) -> &'static str {
        match self {
            Issue::NoReceived => "Không có sự kiện tiếp nhận",
            Issue::Rejected => "Không được tiếp nhận (bị từ chối)",
            Issue::NoDeadline => "Không xác định được hạn giải quyết",
            Issue::NoProcedure => "Thiếu mã thủ tục",
            Issue::UnknownProcedure => "Mã thủ tục không có trong danh mục",
            Issue::UnknownCommune => "Thiếu hoặc sai mã đơn vị hành chính cấp xã",
            Issue::EndedBeforeReceived => "Kết thúc trước khi tiếp nhận",
            Issue::OverdueReset => "Thời điểm kết thúc trùng đúng hạn trả (nghi “xóa quá hạn”)",
            Issue::ResolvedOpenSupplement => "Báo đã xử lý xong khi đang chờ bổ sung hồ sơ",
        }
    }
}

/// Parameters. [`run`] validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub province: Option<String>,
    pub commune: Option<String>,
    /// Dossiers listed per issue (counts are over all).
    pub limit: usize,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            province: None,
            commune: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Params {
    /// Check the parameters.
    pub fn validate(&self) -> Result<(), QueryError> {
        common::check_codes(self.province.as_deref(), self.commune.as_deref())?;
        common::check_limit(self.limit)
    }
}

/// Number of dossiers with one issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IssueCount {
    pub issue: Issue,
    pub label: String,
    pub count: i64,
}

/// One dossier with one issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Item {
    pub dossier_id: String,
    pub issue: Issue,
    /// Source systems reporting the dossier, sorted, comma separated.
    pub sources: String,
    pub procedure_code: Option<String>,
    pub commune_code: Option<String>,
}

/// The data-quality report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Every issue in report order, zero included.
    pub issues: Vec<IssueCount>,
    /// Sorted by issue (report order), then dossier; at most `limit` per issue.
    pub items: Vec<Item>,
}

/// Compute the data-quality report.
pub async fn run(ctx: &SessionContext, p: &Params) -> Result<Report, QueryError> {
    p.validate()?;
    let df = ctx.sql(SQL).await?.with_param_values(vec![
        ScalarValue::Utf8(p.province.clone()),
        ScalarValue::Utf8(p.commune.clone()),
        ScalarValue::Int64(Some(p.limit as i64)),
    ])?;
    let mut issues: Vec<IssueCount> = Issue::ALL
        .iter()
        .map(|i| IssueCount {
            issue: *i,
            label: i.label().to_string(),
            count: 0,
        })
        .collect();
    let mut items = Vec::new();
    for b in &df.collect().await? {
        let c = Cols(b);
        let issue = c.strings("issue")?;
        let n = c.ints("issue_count")?;
        let id = c.strings("dossier_id")?;
        let sources = c.strings("sources")?;
        let procedure = c.strings("procedure_code")?;
        let commune = c.strings("commune_code")?;
        for i in 0..c.rows() {
            let Some(x) = Issue::parse(&issue.text(i)) else {
                continue;
            };
            if let Some(t) = issues.iter_mut().find(|t| t.issue == x) {
                t.count = n.or_zero(i);
            }
            items.push(Item {
                dossier_id: id.text(i),
                issue: x,
                sources: sources.text(i),
                procedure_code: procedure.get(i),
                commune_code: commune.get(i),
            });
        }
    }
    items.sort_by(|a, b| (a.issue, &a.dossier_id).cmp(&(b.issue, &b.dossier_id)));
    Ok(Report { issues, items })
}
